import os
import shutil
import subprocess
import sys
import time

import pytest

from utils import check_env, data


def test_requirement_status_flags_missing_and_wrong_versions(tmp_path):
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("# comment\ntorch>=2.0\nnumpy<1.0\nsurely-not-installed-pkg>=1\n")
    rows = {name: (installed, ok) for name, _, installed, ok in check_env.requirement_status(reqs)}
    assert rows["torch"][1] is True
    assert rows["numpy"][1] is False
    assert rows["surely-not-installed-pkg"] == ("not installed", False)


def clean_environment(**settings: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("ADL_")}
    return {**env, **settings}


def test_command_prints_one_block_with_all_the_bug_report_asks_for():
    result = subprocess.run([sys.executable, "-m", "utils.check_env"], capture_output=True, text=True, timeout=120,
                            env=clean_environment(ADL_QUICK="1"))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    block = out.split("--- check-env: paste from here into the bug report ---\n", 1)[1]
    block = block.split("--- check-env: to here", 1)[0]
    for expected in ["Course: ", "OS: ", "Runs in: ", "Python 3.", "supported; the course supports Python 3.10 to 3.14",
                     "torch", "torchvision", "Settings (ADL_* variables set):", "ok  ADL_QUICK=1",
                     "Device the notebooks will use:", "devices here: ", "energy", "VGG-19"]:
        assert expected in block, expected
    assert "Everything required is installed and every setting is valid." in out


def test_command_names_each_wrong_setting_and_fails():
    result = subprocess.run([sys.executable, "-m", "utils.check_env"], capture_output=True, text=True, timeout=120,
                            env=clean_environment(ADL_QUICK="2", ADL_DEVICE="gpu", ADL_DATA_MIRROR="/no/such/folder"))
    assert result.returncode == 1
    out = result.stdout
    assert "BAD ADL_QUICK='2' is neither on nor off" in out
    assert "BAD ADL_DEVICE='gpu' is not a device name" in out
    assert "BAD ADL_DATA_MIRROR=/no/such/folder: no such folder" in out
    assert "Some ADL_* settings are not valid" in out


def test_where_it_runs_recognises_hosted_notebooks_and_wsl():
    assert check_env.where_it_runs({"COLAB_RELEASE_TAG": "x"}, "") == "hosted notebook (Google Colab)"
    assert check_env.where_it_runs({"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}, "") == "hosted notebook (Kaggle)"
    assert check_env.where_it_runs({}, "Linux version 5.15.0-microsoft-standard-WSL2") == \
        "Windows Subsystem for Linux (WSL)"


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """An empty cache, no mirror, no VGG weights, offline: a fresh machine without internet."""
    monkeypatch.setenv("ADL_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("ADL_DATA_MIRROR", raising=False)
    monkeypatch.setenv("ADL_OFFLINE", "1")
    return tmp_path


def test_preflight_offline_without_data_names_every_missing_file_and_the_two_ways_out(no_data):
    message = check_env.preflight()
    for entry in data.REGISTRY.values():
        if entry.name != "year_prediction":  # offline, an announced stand-in replaces it
            assert entry.filename in message
    assert "YearPredictionMSD" not in message and "VGG-19" not in message
    assert "Connect to the internet" in message and "ADL_DATA_MIRROR" in message


def test_preflight_passes_offline_when_everything_is_cached(no_data, mirror, monkeypatch):
    monkeypatch.setenv("ADL_DATA_MIRROR", str(mirror))
    for name, entry in data.REGISTRY.items():
        if entry.in_mirror:
            data.fetch(name)
    monkeypatch.delenv("ADL_DATA_MIRROR")
    assert check_env.preflight() is None
    data.fetch("alice").write_text("truncated")
    assert "alice.txt: in the cache but failed its sha256 check" in check_env.preflight()


def test_preflight_with_a_mirror_names_what_the_mirror_lacks(no_data, tmp_path, mirror, monkeypatch):
    partial = tmp_path / "partial"
    shutil.copytree(mirror, partial)
    (partial / "alice.txt").unlink()
    monkeypatch.setenv("ADL_DATA_MIRROR", str(partial))
    message = check_env.preflight()
    assert message.count("\n  - ") == 1 and f"alice.txt: not in ADL_DATA_MIRROR ({partial / 'alice.txt'})" in message


def test_preflight_online_probes_the_hosts_once_and_reports_the_unreachable(no_data, monkeypatch):
    monkeypatch.delenv("ADL_OFFLINE")
    probed = []

    def fake_probe(hosts, timeout):
        probed.append(sorted(hosts))
        return {"raw.githubusercontent.com", "download.pytorch.org", "www.cs.toronto.edu"}

    monkeypatch.setattr(check_env, "reachable_hosts", fake_probe)
    message = check_env.preflight()
    assert len(probed) == 1 and "archive.ics.uci.edu" in probed[0]
    assert "YearPredictionMSD.txt.zip: not in the cache, and archive.ics.uci.edu did not answer" in message
    assert "alice.txt" not in message
    monkeypatch.setattr(check_env, "reachable_hosts", lambda hosts, timeout: set(hosts))
    assert check_env.preflight() is None


def test_preflight_command_fails_fast_with_one_message(no_data):
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "utils.check_env", "--preflight"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1 and result.stderr.count("Two ways out") == 1
    assert "Traceback" not in result.stderr and time.perf_counter() - started < 60
