"""utils.year_prediction: the splits, the training-only scaling, the UCI split and the hand-off to Activity 3."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from utils import year_prediction as yp
from utils.standins import synthetic_year_prediction


def _linked_frame(n: int = 1000) -> pd.DataFrame:
    """A YearPredictionMSD-shaped table where feature 1 is exactly twice the year, so rows can be traced."""
    frame = synthetic_year_prediction(n, seed=1)
    frame[1] = frame[0] * 2.0
    return frame


@pytest.fixture
def offline_without_cache(monkeypatch, empty_cache):
    """Offline, with an empty cache: the loader generates the stand-in."""
    monkeypatch.setenv("ADL_OFFLINE", "1")
    monkeypatch.delenv("ADL_DATA_MIRROR", raising=False)
    return empty_cache


def test_default_is_the_books_50000_rows_split_60_20_20(offline_without_cache, capsys):
    data = yp.prepare_year_prediction()
    assert data.shapes() == {"train": (30000, 90), "val": (10000, 90), "test": (10000, 90)}
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (30000, 10000, 10000)
    assert data.config["source"] == "stand-in"
    assert "OFFLINE STAND-IN" in capsys.readouterr().out, "the stand-in must be announced"


def test_rows_stay_together_and_no_row_is_lost():
    frame = _linked_frame()
    data = yp.prepare_year_prediction(1000, frame=frame)
    for part in yp.PARTS:
        X, years = getattr(data, f"X_{part}"), getattr(data, f"y_{part}")
        feature_1 = X[:, 0] * data.feature_std[0] + data.feature_mean[0]  # undo the standardisation
        np.testing.assert_allclose(feature_1, years * 2.0, rtol=1e-6)
    all_years = np.concatenate([data.y_train, data.y_val, data.y_test])
    assert sorted(all_years.tolist()) == sorted(frame[0].tolist())


def test_standardisation_uses_training_rows_only():
    frame = _linked_frame()
    frame.loc[frame.index[-50:], 2] += 10_000.0  # extreme values, most of them outside the training rows
    data = yp.prepare_year_prediction(1000, frame=frame)
    np.testing.assert_allclose(data.X_train.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(data.X_train.std(axis=0, ddof=1), 1.0, atol=1e-4)
    full_mean = frame.drop(columns=[0]).mean().to_numpy()
    assert not np.allclose(data.feature_mean, full_mean), "the mean was fitted on every row, test rows included"


def test_standardise_survives_a_constant_column():
    train = pd.DataFrame({"a": [1.0, 1.0, 1.0], "b": [1.0, 2.0, 3.0]})
    (scaled,), _, std = yp.standardise(train)
    assert scaled["a"].tolist() == [0.0, 0.0, 0.0]
    assert std["a"] == 1.0


def test_same_seed_same_split_other_seed_other_split():
    frame = _linked_frame()
    a, b = (yp.prepare_year_prediction(1000, frame=frame, seed=0) for _ in range(2))
    c = yp.prepare_year_prediction(1000, frame=frame, seed=1)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_test, c.y_test)


def test_uci_split_keeps_test_rows_in_uci_test_section():
    frame = _linked_frame(1000)
    frame[2] = np.arange(1000, dtype=float)  # the row's position in the file
    head, tail = yp.uci_split(frame, 80, 20, train_rows=900)
    assert head[2].max() < 900 <= tail[2].min()
    assert (len(head), len(tail)) == (80, 20)


def test_prepare_with_uci_split_uses_the_whole_file(monkeypatch):
    frame = _linked_frame(1000)
    frame[2] = np.arange(1000, dtype=float)
    monkeypatch.setattr(yp, "UCI_TRAIN_ROWS", 900)
    data = yp.prepare_year_prediction(100, split="uci", frame=frame)
    assert data.shapes() == {"train": (60, 90), "val": (20, 90), "test": (20, 90)}
    test_positions = data.X_test[:, 1] * data.feature_std[1] + data.feature_mean[1]
    assert test_positions.min() >= 900 - 1e-3


def test_uci_split_refuses_the_first_rows_only():
    with pytest.raises(ValueError, match="whole file"):
        yp.uci_split(_linked_frame(1000), 80, 20)


@pytest.mark.parametrize("kwargs, message", [
    ({"split": "by-artist"}, "split must be"),
    ({"val": 0.5, "test": 0.5}, "together below 1"),
    ({"test": 0.0}, "each in"),
])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        yp.prepare_year_prediction(1000, frame=_linked_frame(), **kwargs)


def test_bad_tables_are_refused():
    with pytest.raises(ValueError, match="91 columns"):
        yp.features_and_years(_linked_frame().iloc[:, :50])
    text = _linked_frame()
    text[5] = "x"
    with pytest.raises(ValueError, match="numeric"):
        yp.features_and_years(text)
    with pytest.raises(ValueError, match="first 2,000 rows"):
        yp.prepare_year_prediction(2000, frame=_linked_frame(1000))


def test_tensors_have_column_targets():
    data = yp.prepare_year_prediction(1000, frame=_linked_frame())
    X, y = data.tensors("test")
    assert tuple(X.shape) == (200, 90) and tuple(y.shape) == (200, 1)
    assert y[:, 0].tolist() == data.y_test.astype(float).tolist()
    with pytest.raises(ValueError, match="part must be"):
        data.tensors("dev")


@pytest.fixture
def outputs(tmp_path, monkeypatch):
    """An empty hand-off folder (``ADL_OUTPUTS_DIR``), as on a fresh clone."""
    folder = tmp_path / "outputs"
    monkeypatch.setenv("ADL_OUTPUTS_DIR", str(folder))
    return folder


def test_save_and_load_round_trip(outputs, offline_without_cache):
    data = yp.prepare_year_prediction(1000, frame=_linked_frame())
    path = yp.save_prepared(data)
    assert path.parent == outputs / "ch02" and path.name.startswith("year_prediction_prepared_")
    again = yp.load_prepared(nrows=1000)
    assert again.config == data.config
    for name in ("X_train", "X_val", "X_test", "y_train", "y_val", "y_test", "feature_mean", "feature_std"):
        np.testing.assert_array_equal(getattr(again, name), getattr(data, name))
    assert [p.name for p in path.parent.iterdir()] == [path.name], "a temporary file was left behind"


def test_quick_and_full_mode_use_separate_files(outputs):
    assert yp.prepared_path(quick_mode=True) != yp.prepared_path(quick_mode=False)
    assert yp.prepared_path(quick_mode=True).parent == outputs / "ch02"


def test_load_prepared_reports_missing_damaged_and_stale_files(outputs, offline_without_cache):
    from utils.handoff import HandoffError

    with pytest.raises(HandoffError, match="missing"):
        yp.load_prepared(nrows=1000)
    path = yp.prepared_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a zip")
    with pytest.raises(HandoffError, match="damaged"):
        yp.load_prepared(nrows=1000)
    yp.save_prepared(yp.prepare_year_prediction(1000, frame=_linked_frame()))
    with pytest.raises(HandoffError, match="other settings .*seed"):
        yp.load_prepared(nrows=1000, seed=1)


def test_activity3_reads_on_an_empty_outputs_folder(outputs, offline_without_cache, capsys):
    """Activity 3 run alone on a fresh clone: nothing saved yet, so the data is prepared and saved."""
    data = yp.load_or_prepare(nrows=2000)
    out = capsys.readouterr().out
    assert "Rebuilding the prepared YearPredictionMSD data" in out and "is missing" in out
    assert data.shapes() == {"train": (1200, 90), "val": (400, 90), "test": (400, 90)}
    assert yp.prepared_path().is_file()
    assert str(outputs) not in out, "the note must not print an absolute path"
    again = yp.load_or_prepare(nrows=2000)
    assert "Loaded the prepared YearPredictionMSD data" in capsys.readouterr().out
    np.testing.assert_array_equal(again.X_test, data.X_test)


@pytest.mark.parametrize("garbage", [b"garbage", b"PK\x03\x04 half-written zip", b""])
def test_activity3_rebuilds_a_corrupt_file_with_a_note(outputs, offline_without_cache, capsys, garbage):
    path = yp.prepared_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(garbage)
    data = yp.load_or_prepare(nrows=1000)
    out = capsys.readouterr().out
    assert "Rebuilding" in out and "damaged" in out
    assert data.shapes()["train"] == (600, 90)
    assert yp.load_prepared(nrows=1000).shapes() == data.shapes(), "the rebuilt data was not saved"


def test_activity3_rebuilds_a_file_with_the_right_stamp_but_wrong_content(outputs, offline_without_cache, capsys):
    from utils import handoff

    handoff.save(yp.prepared_path(), {"X_train": "not an array"}, yp.prepared_stamp(1000))
    data = yp.load_or_prepare(nrows=1000)
    assert "unusable content" in capsys.readouterr().out
    assert data.shapes()["test"] == (200, 90)


def test_load_or_prepare_rebuilds_for_other_settings(outputs, offline_without_cache, capsys):
    yp.load_or_prepare(nrows=2000)
    capsys.readouterr()
    third = yp.load_or_prepare(nrows=2000, seed=1)
    assert "other settings (seed differ)" in capsys.readouterr().out
    assert third.config["seed"] == 1 and yp.load_prepared(nrows=2000, seed=1).config["seed"] == 1


def test_a_stand_in_file_is_not_reused_for_real_data(outputs, offline_without_cache, monkeypatch):
    yp.load_or_prepare(nrows=1000, verbose=False)
    stand_in = yp.load_prepared(nrows=1000)
    monkeypatch.setattr(yp, "year_prediction_source", lambda: "uci")
    calls = []
    monkeypatch.setattr(yp, "prepare_year_prediction", lambda *a, **k: calls.append(k) or stand_in)
    yp.load_or_prepare(nrows=1000, verbose=False)
    assert calls, "a file made from the stand-in was reused although the real data is available"


def test_reloading_stand_in_data_announces_it_again(tmp_path, monkeypatch, capsys):
    from utils import standins
    from utils.year_prediction import load_or_prepare

    monkeypatch.setenv("ADL_OFFLINE", "1")
    monkeypatch.delenv("ADL_DATA_MIRROR", raising=False)
    monkeypatch.setenv("ADL_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(standins, "USED", [])
    monkeypatch.setenv("ADL_OUTPUTS_DIR", str(tmp_path / "outputs"))
    load_or_prepare(nrows=500)
    capsys.readouterr()
    monkeypatch.setattr(standins, "USED", [])
    load_or_prepare(nrows=500)
    assert "OFFLINE STAND-IN" in capsys.readouterr().out
    assert standins.USED == ["YearPredictionMSD"]
