import subprocess
import sys

from utils import check_env


def test_requirement_status_flags_missing_and_wrong_versions(tmp_path):
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("# comment\ntorch>=2.0\nnumpy<1.0\nsurely-not-installed-pkg>=1\n")
    rows = {name: (installed, ok) for name, _, installed, ok in check_env.requirement_status(reqs)}
    assert rows["torch"][1] is True
    assert rows["numpy"][1] is False
    assert rows["surely-not-installed-pkg"] == ("not installed", False)


def test_command_prints_versions_device_and_cache():
    result = subprocess.run([sys.executable, "-m", "utils.check_env"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for expected in ["Python 3.", "torch", "torchvision", "Device the notebooks will use:", "energy", "VGG-19"]:
        assert expected in out
