"""Chapter 3's hand-offs (utils.ch03_handoffs): every reader works on an empty outputs folder, with a
damaged file and with a stale one, rebuilds with a printed note, and never prints this machine's paths."""

import numpy as np
import pandas as pd
import pytest
import torch

import utils.ch03_handoffs as ch03
from utils.credit_data import TARGET, CreditSplits
from utils.credit_model import MLPClassifier


def raw_table(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    target = (rng.random(n) < 0.2).astype(int)
    return pd.DataFrame({"ID": np.arange(1, n + 1), "LIMIT_BAL": rng.integers(10, 100, n) * 1000,
                         "SEX": rng.integers(1, 3, n), "PAY_0": target * 2 + rng.integers(-1, 1, n),
                         "AGE": rng.integers(21, 70, n), TARGET: target})


@pytest.fixture
def outputs(tmp_path, monkeypatch):
    """An empty outputs folder (ADL_OUTPUTS_DIR), quick mode, a small synthetic raw table, one CPU thread."""
    folder = tmp_path / "outputs"
    monkeypatch.setenv("ADL_OUTPUTS_DIR", str(folder))
    monkeypatch.setenv("ADL_QUICK", "1")
    monkeypatch.setenv("ADL_DEVICE", "cpu")
    monkeypatch.setattr(ch03, "load_credit_default", lambda: raw_table())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield folder
    torch.set_num_threads(threads)


def no_raw_data(monkeypatch):
    monkeypatch.setattr(ch03, "load_credit_default", lambda: pytest.fail("should have read the saved file"))


def test_paths_follow_the_outputs_folder_and_the_mode(outputs):
    assert ch03.prepared_splits_path() == outputs / "ch03" / "prepared_splits_quick.pt"
    assert ch03.activity4_figures_path(quick_mode=False).name == "activity04_figures_full.pt"
    assert ch03.activity5_model_path().name == "activity05_best_quick.pt"
    assert ch03.chapter_dir() == outputs / "ch03"


def test_prepared_splits_empty_folder_then_saved_then_corrupt(outputs, monkeypatch, capsys):
    first = ch03.load_prepared_splits()
    note = capsys.readouterr().out
    assert "Rebuilding the prepared splits" in note and "is missing" in note
    assert str(outputs) not in note  # the note never shows this machine's folders
    assert ch03.prepared_splits_path().is_file()
    no_raw_data(monkeypatch)
    again = ch03.load_prepared_splits()
    assert "Loaded the prepared splits" in capsys.readouterr().out
    assert again.shapes() == first.shapes() and again.y_val.tolist() == first.y_val.tolist()

    ch03.prepared_splits_path().write_bytes(b"\x00garbage, not a torch file")
    monkeypatch.setattr(ch03, "load_credit_default", lambda: raw_table())
    rebuilt = ch03.load_prepared_splits()
    assert "is damaged" in capsys.readouterr().out
    assert rebuilt.shapes() == first.shapes()


def test_prepared_splits_with_a_broken_payload_are_rebuilt(outputs, capsys):
    splits = ch03.rebuild_prepared_splits()
    payload = splits.to_payload()
    payload["train"]["y"] = payload["train"]["y"][:3]
    ch03.save(ch03.prepared_splits_path(), payload, ch03.splits_stamp())
    back = ch03.load_prepared_splits()
    assert "does not hold what it should" in capsys.readouterr().out
    assert isinstance(back, CreditSplits) and back.shapes() == splits.shapes()


def test_data_preparation_save_is_what_the_readers_load(outputs, monkeypatch, capsys):
    splits = ch03.rebuild_prepared_splits()
    ch03.save_prepared_splits(splits)
    no_raw_data(monkeypatch)
    assert ch03.load_prepared_splits().X_test.equals(splits.X_test)


def test_activity4_figures_retrained_when_missing_read_when_saved_rebuilt_when_stale(outputs, monkeypatch, capsys):
    record = ch03.activity4_figures()
    assert "Rebuilding the Activity 4 figures" in capsys.readouterr().out
    assert record["epochs"] == 5 and record["mode"] == "quick" and record["source"].endswith("retrain_activity4")
    ch03.save_activity4_figures({"accuracy": 0.7, "balanced_accuracy": 0.71},
                                {"accuracy": 0.8, "balanced_accuracy": 0.69}, epochs=5)
    no_raw_data(monkeypatch)
    again = ch03.activity4_figures()
    assert "Loaded the Activity 4 figures" in capsys.readouterr().out
    assert again["validation"]["balanced_accuracy"] == 0.69
    assert not ch03.activity4_figures_path(quick_mode=False).exists()

    monkeypatch.setattr(ch03, "load_credit_default", lambda: raw_table())
    ch03.save_activity4_figures({"accuracy": 0.7, "balanced_accuracy": 0.71},
                                {"accuracy": 0.8, "balanced_accuracy": 0.69}, epochs=7)  # not the book's settings
    stale = ch03.activity4_figures()
    assert "other settings (epochs differ)" in capsys.readouterr().out
    assert stale["epochs"] == 5 and stale["validation"]["balanced_accuracy"] != 0.69


def test_activity4_figures_survive_a_corrupt_or_truncated_file(outputs, capsys):
    ch03.save_activity4_figures({"accuracy": 0.7, "balanced_accuracy": 0.71},
                                {"accuracy": 0.8, "balanced_accuracy": 0.69}, epochs=5)
    path = ch03.activity4_figures_path()
    path.write_bytes(path.read_bytes()[:40])  # an interrupted copy
    record = ch03.activity4_figures()
    out = capsys.readouterr().out
    assert "is damaged" in out and "Traceback" not in out
    assert set(record["train"]) >= {"accuracy", "balanced_accuracy"}


def test_activity5_model_rebuilt_when_missing_then_round_trips(outputs, monkeypatch, capsys):
    model, record = ch03.activity5_model()
    assert "Rebuilding the Activity 5 model" in capsys.readouterr().out
    assert record["config"]["hidden_sizes"] == ch03.FINAL_CONFIG["hidden_sizes"] and not model.training
    no_raw_data(monkeypatch)
    again, _ = ch03.activity5_model()
    x = torch.rand(4, model.config["input_size"])
    assert torch.equal(model(x), again(x))


def test_activity5_model_saved_by_activity5_is_what_activity6_reads(outputs, capsys):
    chosen = MLPClassifier(3, (4,)).eval()
    ch03.save_activity5_model(chosen, {"balanced_accuracy": 0.7}, epochs=2)
    model, record = ch03.activity5_model()
    assert "Loaded" in capsys.readouterr().out and record["epochs"] == 2
    x = torch.rand(5, 3)
    with torch.no_grad():
        assert torch.equal(model(x), chosen(x))
    with pytest.raises(TypeError, match="config"):
        ch03.save_activity5_model(torch.nn.Linear(3, 2), {}, epochs=1)


@pytest.mark.parametrize("damage", ["garbage", "weights that do not fit"])
def test_activity5_model_damaged_is_rebuilt_with_a_note(outputs, capsys, damage):
    path = ch03.activity5_model_path()
    if damage == "garbage":
        path.parent.mkdir(parents=True)
        path.write_text("not a model")
        expected = "is damaged"
    else:
        record = ch03._model_record(MLPClassifier(3, (4,)), {}, 1, "test")
        record["config"]["hidden_sizes"] = [5]
        ch03.save(path, record, ch03.activity5_stamp())
        expected = "does not hold what it should"
    model, record = ch03.activity5_model()
    out = capsys.readouterr().out
    assert expected in out and "Traceback" not in out
    assert record["source"].endswith("retrain_activity5") and not model.training
