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


def test_results_table_marks_missing_full_runs_and_shows_recorded_ones(tmp_path, monkeypatch):
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("results_tool", root / "tools" / "results.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    monkeypatch.setattr(tool, "recorded_notebooks", lambda: {
        "ch09/done": (root / "README.md", "~80%"), "ch09/missing": (root / "README.md", "~70%")})
    monkeypatch.setenv("ADL_RESULTS_DIR", str(tmp_path))
    monkeypatch.delenv("ADL_QUICK", raising=False)
    record_result("ch09/done", metric="test_accuracy", value=0.75, baseline=0.5, higher_is_better=True, book="~80%")
    table = tool.table()
    done = next(line for line in table.splitlines() if "ch09/done" in line)
    missing = next(line for line in table.splitlines() if "ch09/missing" in line)
    assert "**0.75**" in done and "~80%" in done and "0.5" in done
    assert "not yet run in full mode" in missing


def test_record_result_remembers_stand_ins(tmp_path, monkeypatch):
    from utils import standins

    monkeypatch.setenv("ADL_RESULTS_DIR", str(tmp_path))
    monkeypatch.setattr(standins, "USED", [])
    standins.announce_standin("YearPredictionMSD", "a synthetic sample")
    record = json.loads(record_result("x", metric="mae", value=1.0, baseline=2.0, higher_is_better=False).read_text())
    assert record["standins"] == ["YearPredictionMSD"]
