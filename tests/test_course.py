"""tools/course.py: the one source of `make lab`, `make test` and the README's make-free commands, which
first checks the Python against pyproject.toml's requires-python (the one statement of the supported range)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from utils import check_env

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import course  # noqa: E402

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")


def requires_python() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]


def test_the_supported_range_is_read_from_pyproject():
    low, high = course.supported_range()
    assert requires_python().replace(" ", "") == f">=3.{low[1]},<3.{high[1]}"
    assert course.supported_versions()[0] == f"3.{low[1]}" and course.supported_versions()[-1] == f"3.{high[1] - 1}"
    assert low <= tuple(sys.version_info[:2]) < high, "the tests themselves run on a supported Python"


def test_readme_environment_and_check_env_agree_with_pyproject():
    versions = course.supported_versions()
    readme = (ROOT / "README.md").read_text()
    stated = set(re.findall(r"Python (3\.\d+) to (3\.\d+)", readme))
    assert stated == {(versions[0], versions[-1])}, f"README states {stated}; pyproject.toml says {versions}"
    assert not re.search(r"Python 3\.\d+-3\.\d+", readme), "state the range as 'Python 3.A to 3.B'"
    table = readme.split("<!-- platform-table -->", 1)[1].split("<!-- /platform-table -->", 1)[0]
    assert re.findall(r"Python (3\.\d+)", table.splitlines()[1]) == versions
    env = (ROOT / "environment.yml").read_text()
    assert f"python{requires_python().replace(' ', '')}" in env.replace(" ", "")
    spec = check_env.supported_pythons()
    assert str(spec) == str(type(spec)(requires_python()))
    assert check_env.describe_pythons(spec) == f"{versions[0]} to {versions[-1]}"
    assert [v for v in ("3.9", *versions, f"3.{course.supported_range()[1][1]}") if spec.contains(v + ".0")] == versions


@pytest.mark.parametrize("found", [(3, 9, 18), (3, 15, 0), (2, 7, 18)])
def test_an_unsupported_python_gets_one_message_naming_it_the_range_and_how_to_pick_another(found):
    message = course.python_problem(found, "/usr/bin/pythonX")
    version = ".".join(map(str, found))
    assert message.startswith(f"Python {version} (/usr/bin/pythonX) is not supported: "
                              "the course needs Python 3.10 to 3.14.")
    for way in ["make lab PYTHON=python3.13", "python3.13 tools/course.py lab", "py -3.13 tools\\course.py lab"]:
        assert way in message


def test_a_supported_python_passes():
    for minor in range(10, 15):
        assert course.python_problem((3, minor, 0), "x") is None


def other_pythons() -> list[str]:
    """Interpreters outside the supported range found on this machine (on PATH, or installed by pyenv)."""
    candidates = [shutil.which(name) for name in ["python2.7", "python3.6", "python3.8", "python3.9"]]
    candidates += sorted(str(p) for p in (Path.home() / ".pyenv" / "versions").glob("[23].*/bin/python[23].[0-9]"))
    found = {}
    for path in filter(None, candidates):
        try:
            out = subprocess.run([path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            continue
        version = out.stdout.strip()
        if out.returncode == 0 and version and version not in course.supported_versions():
            found.setdefault(version, path)
    return list(found.values())


@pytest.mark.parametrize("python", other_pythons() or [pytest.param("none", marks=pytest.mark.skip(
    reason="no Python outside 3.10-3.14 on this machine"))])
def test_make_setup_with_an_unsupported_python_stops_within_seconds(python, tmp_path):
    if not shutil.which("make"):
        pytest.skip("no make")
    started = time.perf_counter()
    result = subprocess.run(["make", "-C", str(ROOT), "setup", f"PYTHON={python}", f"VENV={tmp_path / 'venv'}"],
                            capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - started
    assert result.returncode != 0
    assert "is not supported: the course needs Python 3.10 to 3.14" in result.stderr
    assert "make lab PYTHON=python3.13" in result.stderr
    assert elapsed < 5, f"took {elapsed:.1f} s"
    assert not (tmp_path / "venv").exists(), "nothing is installed for an unsupported Python"


def test_course_py_runs_on_the_current_python_without_the_course_installed():
    """check-python needs only the standard library: it runs before anything is installed."""
    result = subprocess.run([sys.executable, "-S", "-I", str(ROOT / "tools" / "course.py"), "check-python"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "is supported (Python 3.10 to 3.14)" in result.stdout, result.stderr


def recipe(target: str) -> str:
    makefile = (ROOT / "Makefile").read_text()
    match = re.search(rf"^{target}:[^\n]*\n((?:\t[^\n]*\n)+)", makefile, re.M)
    assert match, f"the Makefile has no {target} target"
    return match.group(1)


def test_make_lab_and_make_test_are_the_make_free_commands():
    """The Makefile's recipes call tools/course.py, which the README's make-free commands call: one source."""
    assert recipe("lab").strip() == "$(COURSE) lab --venv $(VENV) -- $(LAB_ARGS)"
    assert recipe("test").strip() == "$(COURSE) test --venv $(VENV) -- $(PYTEST_ARGS)"
    assert recipe("setup").strip() == "@$(COURSE) setup --venv $(VENV)"
    assert re.search(r"^COURSE := \$\(PYTHON\) tools/course\.py$", (ROOT / "Makefile").read_text(), re.M)
    readme = (ROOT / "README.md").read_text()
    for command in ["python3 tools/course.py lab", "python3 tools/course.py test", "py tools\\course.py lab",
                    "py tools\\course.py test", "python tools/course.py lab --here",
                    "python tools/course.py test --here"]:
        assert re.search(rf"(`|^){re.escape(command)}\b", readme, re.M), f"the README lacks {command}"


def test_test_command_lints_then_runs_pytest_in_quick_mode(monkeypatch):
    calls = []
    monkeypatch.setattr(course, "run", lambda command, env=None: calls.append((command, env)))
    monkeypatch.delenv("ADL_QUICK", raising=False)
    course.test("PY", ["-k", "ch01"])
    (lint, _), (pytest_command, env) = calls
    assert lint == ["PY", "-m", "ruff", "check", "utils", "tests", "tools", "chapters", "solutions"]
    assert pytest_command == ["PY", "-m", "pytest", "-n", "2", "-k", "ch01"], "two workers by default"
    assert env["ADL_QUICK"] == "1" and env["ADL_PLAIN_PROGRESS"] == "1"
    monkeypatch.setenv("ADL_QUICK", "0")
    assert course.test_environment()["ADL_QUICK"] == "0", "ADL_QUICK=0 make test runs full mode"
    for chosen in (["-n", "0"], ["-n0"], ["--numprocesses=4"], ["-p", "no:xdist"]):
        assert course.parallel(chosen) == [], f"{chosen} chooses the workers itself"


def test_lab_opens_jupyterlab_on_the_chapters(monkeypatch):
    calls = []
    monkeypatch.setattr(course, "run", lambda command, env=None: calls.append(command))
    course.lab("PY", ["--no-browser"])
    (command,) = calls
    assert command[:4] == ["PY", "-m", "jupyter", "lab"]
    assert "--LabApp.default_url=/lab/tree/chapters" in command and command[-1] == "--no-browser"


def test_setup_is_skipped_when_the_stamp_is_newer_than_the_lock(monkeypatch, tmp_path):
    venv = tmp_path / "venv"
    python = Path(course.venv_python(str(venv)))
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    (venv / ".installed").write_text("x")
    calls = []
    monkeypatch.setattr(course, "run", lambda command, env=None: calls.append(command))
    assert course.setup(str(venv)) == str(python)
    assert calls == [], "an up-to-date environment is not reinstalled"
    import os
    os.utime(venv / ".installed", (0, 0))
    course.setup(str(venv))
    assert any("requirements.lock" in command for command in calls), "a newer lock is installed"


def test_here_uses_the_current_interpreter_and_installs_nothing(monkeypatch):
    monkeypatch.setattr(course, "run", lambda command, env=None: pytest.fail(f"ran {command}"))
    assert course.setup(".venv", here=True) == sys.executable
