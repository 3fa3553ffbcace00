"""Every ADL_* variable is read in utils.settings and checked when first used: a value outside the documented
set stops with a message naming the variable, the value given and the values accepted."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch

from utils import data, handoff, progress, results, runtime, settings
from utils.settings import SettingError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def clean_env(monkeypatch):
    """No ADL_* variable set, so each test sets exactly what it checks."""
    for name in list(__import__("os").environ):
        if name.startswith("ADL_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize("name, reader", [
    ("ADL_QUICK", runtime.is_quick), ("ADL_OFFLINE", runtime.is_offline),
    ("ADL_PLAIN_PROGRESS", progress.plain_progress)])
def test_flags_accept_on_and_off_and_stop_on_anything_else(clean_env, name, reader):
    assert reader() is False
    for value in ["1", "true", "Yes", " on "]:
        clean_env.setenv(name, value)
        assert reader() is True, value
    for value in ["0", "false", "NO", "off", ""]:
        clean_env.setenv(name, value)
        assert reader() is False, value
    for value in ["2", "quick", "y", "-1"]:
        clean_env.setenv(name, value)
        with pytest.raises(SettingError) as error:
            reader()
        message = str(error.value)
        assert f"{name}={value!r}" in message and "neither on nor off" in message and "0 (off)" in message


def test_a_misspelt_setting_stops_and_names_the_one_meant(clean_env):
    clean_env.setenv("ADL_QUIK", "1")
    with pytest.raises(SettingError, match=r"ADL_QUIK='1' is not a setting of the course: did you mean ADL_QUICK\?"):
        runtime.is_quick()


def test_data_mirror_must_be_an_existing_folder(clean_env, tmp_path):
    assert data.mirror_dir() is None
    clean_env.setenv("ADL_DATA_MIRROR", str(tmp_path))
    assert data.mirror_dir() == tmp_path
    clean_env.setenv("ADL_DATA_MIRROR", str(tmp_path / "missing"))
    with pytest.raises(SettingError, match=r"ADL_DATA_MIRROR=.*missing: no such folder"):
        data.mirror_dir()
    (tmp_path / "file").write_text("x")
    clean_env.setenv("ADL_DATA_MIRROR", str(tmp_path / "file"))
    with pytest.raises(SettingError, match="is a file, not a folder"):
        data.mirror_dir()


def test_a_relative_folder_is_taken_from_the_project_root(clean_env):
    clean_env.setenv("ADL_DATA_MIRROR", "utils")
    assert data.mirror_dir() == ROOT / "utils"
    clean_env.setenv("ADL_DATA_MIRROR", "no-such-folder")
    with pytest.raises(SettingError, match=r"no-such-folder \(that is, .*no-such-folder\): no such folder"):
        data.mirror_dir()


@pytest.mark.parametrize("name, reader", [
    ("ADL_DATA_DIR", lambda: data.cache_dir().parent), ("ADL_OUTPUTS_DIR", handoff.outputs_dir),
    ("ADL_RESULTS_DIR", lambda: results.results_dir("quick").parent)])
def test_output_folders_are_made_when_missing_and_a_file_stops(clean_env, tmp_path, name, reader):
    clean_env.setenv(name, str(tmp_path / "new" / "folder"))
    assert reader() == tmp_path / "new" / "folder"
    assert (tmp_path / "new" / "folder").is_dir()
    (tmp_path / "a-file").write_text("x")
    clean_env.setenv(name, str(tmp_path / "a-file"))
    with pytest.raises(SettingError, match=f"{name}=.*a-file is a file, not a folder"):
        reader()


def test_notebook_timeout_is_a_positive_whole_number(clean_env):
    assert settings.positive_int("ADL_NOTEBOOK_TIMEOUT", 600) == 600
    clean_env.setenv("ADL_NOTEBOOK_TIMEOUT", "1200")
    assert settings.positive_int("ADL_NOTEBOOK_TIMEOUT", 600) == 1200
    for value in ["0", "-5", "10m", "1.5"]:
        clean_env.setenv("ADL_NOTEBOOK_TIMEOUT", value)
        with pytest.raises(SettingError, match=f"ADL_NOTEBOOK_TIMEOUT={value!r} is not a positive whole number"):
            settings.positive_int("ADL_NOTEBOOK_TIMEOUT", 600)


def test_slides_assets_folder(clean_env, tmp_path):
    clean_env.setenv("ADL_SLIDES_ASSETS", str(tmp_path / "reveal"))
    assert settings.folder("ADL_SLIDES_ASSETS", must_exist=False) == tmp_path / "reveal"


def test_device_name_is_spelled_as_torch_spells_it(clean_env):
    assert settings.device_name() is None
    for value in ["cpu", "cuda", "cuda:1", "MPS"]:
        clean_env.setenv("ADL_DEVICE", value)
        assert settings.device_name() == value.lower()
    for value in ["gpu", "cuda1", "metal", "cuda:x"]:
        clean_env.setenv("ADL_DEVICE", value)
        with pytest.raises(SettingError, match=f"ADL_DEVICE={value!r} is not a device name: use cpu, cuda"):
            settings.device_name()


def test_get_device_stops_at_once_for_a_device_this_machine_lacks(clean_env, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    clean_env.setenv("ADL_DEVICE", "cuda")
    with pytest.raises(SettingError) as error:
        runtime.get_device()
    assert "ADL_DEVICE=cuda asks for cuda, but this machine has no CUDA GPU. Devices here: cpu." in str(error.value)
    clean_env.setenv("ADL_DEVICE", "mps")
    with pytest.raises(SettingError, match=r"no Apple-silicon GPU \(MPS\). Devices here: cpu"):
        runtime.get_device()
    with pytest.raises(SettingError, match=r"get_device\('cuda:0'\) asks for cuda:0"):
        runtime.get_device("cuda:0")
    clean_env.setenv("ADL_DEVICE", "cpu")
    assert runtime.get_device() == torch.device("cpu")


def test_get_device_accepts_a_gpu_the_machine_has(clean_env, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert runtime.available_devices() == ["cuda:0", "cuda:1", "cpu"]
    clean_env.setenv("ADL_DEVICE", "cuda:1")
    assert runtime.get_device() == torch.device("cuda:1")
    clean_env.setenv("ADL_DEVICE", "cuda:2")
    with pytest.raises(SettingError, match="no CUDA GPU number 2. Devices here: cuda:0, cuda:1, cpu"):
        runtime.get_device()


def is_os_environ(node: ast.AST) -> bool:
    return ast.unparse(node) in ("os.environ", "environ")


def test_settings_are_read_nowhere_else():
    """No module of utils, tools or tests reads os.environ["ADL_..."] itself (tests may set them)."""
    offenders = []
    # tools/course.py runs before anything is installed: it only defaults ADL_QUICK for the test run, which
    # then validates it through utils.settings.
    exempt = {ROOT / "utils" / "settings.py", ROOT / "tools" / "course.py"}
    for path in sorted([*(ROOT / "utils").rglob("*.py"), *(ROOT / "tools").glob("*.py"),
                        *(ROOT / "tests").glob("*.py")]):
        if path in exempt:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                    and str(node.args[0].value).startswith("ADL_") and isinstance(node.func, ast.Attribute) \
                    and (is_os_environ(node.func.value) and node.func.attr == "get"
                         or ast.unparse(node.func) == "os.getenv"):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.Subscript) and is_os_environ(node.value) and isinstance(node.slice, ast.Constant) \
                    and str(node.slice.value).startswith("ADL_") and isinstance(node.ctx, ast.Load):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, f"read ADL_* through utils.settings instead: {offenders}"


def test_every_setting_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(ADL_[A-Z_]+)`", section, re.M))
    assert documented == set(settings.SETTINGS), \
        f"README's Settings table and utils.settings differ: {sorted(documented ^ set(settings.SETTINGS))}"


def test_the_test_session_folder_holds_this_sessions_outputs_and_results():
    """ADL_TEST_SESSION_DIR (set by tests/conftest.py) is where this session's hand-offs and records go."""
    session = settings.folder("ADL_TEST_SESSION_DIR", must_exist=True)
    assert session is not None and session.is_dir()
    assert handoff.outputs_dir() == session / "outputs"
    assert results.results_dir("quick") == session / "results" / "quick"


def test_check_judges_every_setting_by_its_kind_and_makes_nothing(tmp_path):
    """utils.settings.check (what make check-env reports) covers every variable, folders included."""
    good = {"ADL_QUICK": "yes", "ADL_DEVICE": "cuda:1", "ADL_NOTEBOOK_TIMEOUT": "60", "ADL_DATA_MIRROR": str(tmp_path)}
    bad = {"ADL_OFFLINE": "maybe", "ADL_DEVICE": "gpu", "ADL_NOTEBOOK_TIMEOUT": "0",
           "ADL_DATA_MIRROR": str(tmp_path / "missing"), "ADL_QUIK": "1"}
    for name in settings.SETTINGS:
        if name not in good and settings.SETTINGS[name] == settings.FOLDER:
            good[name] = str(tmp_path / "later" / name)
            (tmp_path / f"{name}.txt").write_text("x")
            bad[name] = str(tmp_path / f"{name}.txt")
    for name, value in good.items():
        settings.check(name, {name: value})
    assert not (tmp_path / "later").exists(), "check makes no folder"
    assert set(good) | {"ADL_PLAIN_PROGRESS", "ADL_OFFLINE"} == set(settings.SETTINGS)
    for name, value in bad.items():
        with pytest.raises(SettingError, match=re.escape(name)):
            settings.check(name, {name: value})
