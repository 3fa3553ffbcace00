import json

import pytest

from utils.results import record_result


def test_record_result_writes_mode_device_and_baseline(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ADL_RESULTS_DIR", str(tmp_path))
    monkeypatch.setenv("ADL_QUICK", "1")
    path = record_result("ch01/activity01", metric="final_loss", value=0.2, baseline=0.3,
                         higher_is_better=False, book="~0.238", iterations=100)
    record = json.loads(path.read_text())
    assert path.parent == tmp_path / "quick"
    assert record["mode"] == "quick" and record["device"] and record["extra"] == {"iterations": 100.0}
    assert "better than baseline" in capsys.readouterr().out


def test_record_result_refuses_a_diverged_run(tmp_path, monkeypatch):
    monkeypatch.setenv("ADL_RESULTS_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="diverged"):
        record_result("x", metric="loss", value=float("nan"), baseline=1.0, higher_is_better=False)
