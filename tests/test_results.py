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


def _results_tool():
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("results_tool", root / "tools" / "results.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool, root


def test_practitioner_baseline_is_recorded_and_the_table_says_who_wins(tmp_path, monkeypatch, capsys):
    tool, root = _results_tool()
    monkeypatch.setattr(tool, "recorded_notebooks", lambda: {
        "ch06/sentiment": (root / "README.md", "~0.77"), "ch03/credit": (root / "README.md", ""),
        "ch02/energy": (root / "README.md", ""), "ch01/none": (root / "README.md", "")})
    monkeypatch.setenv("ADL_RESULTS_DIR", str(tmp_path))
    monkeypatch.delenv("ADL_QUICK", raising=False)
    path = record_result("ch06/sentiment", metric="accuracy", value=0.755, baseline=0.5, higher_is_better=True,
                         practitioner=0.83, practitioner_name="TF-IDF + logistic regression")
    assert "0.83 (TF-IDF + logistic regression): it beats the network" in capsys.readouterr().out
    record = json.loads(path.read_text())
    assert record["practitioner"] == 0.83 and record["practitioner_name"] == "TF-IDF + logistic regression"
    record_result("ch03/credit", metric="balanced_accuracy", value=0.72, baseline=0.5, higher_is_better=True,
                  practitioner=0.715, practitioner_name="gradient boosting")
    record_result("ch02/energy", metric="rmse", value=104.2, baseline=106.8, higher_is_better=False,
                  practitioner=80.0, practitioner_name="gradient boosting")
    record_result("ch01/none", metric="loss", value=0.2, baseline=0.3, higher_is_better=False)
    lines = tool.table().splitlines()
    header = next(line for line in lines if line.startswith("| notebook"))
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert cells.index("practitioner baseline") == cells.index("trivial baseline") + 1

    def row(result_id):
        line = next(line for line in lines if f"[{result_id}]" in line)
        return [c.strip() for c in line.strip("|").split("|")][cells.index("practitioner baseline")]

    assert row("ch06/sentiment") == "0.83 (TF-IDF + logistic regression) — **beats the network**"
    assert row("ch03/credit") == "0.715 (gradient boosting) — the network beats it"
    assert row("ch02/energy") == "80 (gradient boosting) — **beats the network**"  # lower RMSE is better
    assert row("ch01/none") == ""
    assert all(line.count("|") == header.count("|") for line in lines if line.startswith("| ["))


def test_practitioner_baseline_needs_a_name(tmp_path, monkeypatch):
    monkeypatch.setenv("ADL_RESULTS_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="practitioner_name"):
        record_result("x", metric="acc", value=0.7, baseline=0.5, higher_is_better=True, practitioner=0.8)


def test_gpu_records_get_their_own_table_next_to_the_cpu_figure(tmp_path, monkeypatch):
    tool, root = _results_tool()
    monkeypatch.setattr(tool, "recorded_notebooks", lambda: {
        "ch04/cnn": (root / "README.md", "~72%"), "ch04/cpu_only": (root / "README.md", "")})
    monkeypatch.setenv("ADL_RESULTS_DIR", str(tmp_path))
    monkeypatch.delenv("ADL_QUICK", raising=False)
    assert "on a GPU" not in tool.table()  # no GPU records: no GPU section
    for result_id in ("ch04/cnn", "ch04/cpu_only"):
        cpu = json.loads(record_result(result_id, metric="test_accuracy", value=0.70, baseline=0.1,
                                       higher_is_better=True).read_text())
    (tmp_path / "full" / "ch04__cnn.json").write_text(json.dumps({**cpu, "notebook": "ch04/cnn", "wall_time_s": 300.0}))
    (tmp_path / "full-gpu").mkdir()
    gpu = {**cpu, "notebook": "ch04/cnn", "value": 0.71, "wall_time_s": 30.0, "device": "cuda",
           "device_name": "NVIDIA H200"}
    (tmp_path / "full-gpu" / "ch04__cnn.json").write_text(json.dumps(gpu))
    lines = tool.table(gpu_note="One H200.").splitlines()
    section = lines[lines.index("## Full mode on a GPU"):]
    assert "One H200." in section
    row = next(line for line in section if "[ch04/cnn]" in line)
    assert "**0.71**" in row and "| 0.7 |" in row and "10.0×" in row and "NVIDIA H200 (cuda)" in row
    assert not any("[ch04/cpu_only]" in line for line in section)  # only notebooks that ran on the GPU
