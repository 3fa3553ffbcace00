"""utils.year_prediction: the splits, the training-only standardisation, the UCI split and the saved file."""

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


def test_save_and_load_round_trip(tmp_path):
    data = yp.prepare_year_prediction(1000, frame=_linked_frame())
    path = yp.save_prepared(data, tmp_path / "deep" / "prepared.npz")
    again = yp.load_prepared(path)
    assert again.config == data.config
    for name in ("X_train", "X_val", "X_test", "y_train", "y_val", "y_test", "feature_mean", "feature_std"):
        np.testing.assert_array_equal(getattr(again, name), getattr(data, name))
    assert not list(path.parent.glob("*.tmp.npz")), "the temporary file was left behind"


def test_load_prepared_reports_missing_and_damaged_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="Activity 2"):
        yp.load_prepared(tmp_path / "nothing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a prepared"):
        yp.load_prepared(bad)


def test_load_or_prepare_rebuilds_then_reuses_then_rebuilds_for_other_settings(offline_without_cache, tmp_path,
                                                                               capsys):
    path = tmp_path / "prepared.npz"
    first = yp.load_or_prepare(path, nrows=2000)
    assert "missing" in capsys.readouterr().out and path.is_file()
    second = yp.load_or_prepare(path, nrows=2000)
    assert "Loaded" in capsys.readouterr().out
    np.testing.assert_array_equal(first.X_test, second.X_test)
    third = yp.load_or_prepare(path, nrows=2000, seed=1)
    assert "other settings" in capsys.readouterr().out
    assert third.config["seed"] == 1 and yp.load_prepared(path).config["seed"] == 1


def test_load_or_prepare_replaces_a_damaged_file(offline_without_cache, tmp_path, capsys):
    path = tmp_path / "prepared.npz"
    path.write_bytes(b"garbage")
    data = yp.load_or_prepare(path, nrows=1000)
    assert "could not be read" in capsys.readouterr().out
    assert data.shapes()["train"] == (600, 90)


def test_a_stand_in_file_is_not_reused_for_real_data(offline_without_cache, tmp_path, monkeypatch):
    path = tmp_path / "prepared.npz"
    yp.load_or_prepare(path, nrows=1000, verbose=False)
    monkeypatch.setattr(yp, "year_prediction_source", lambda: "uci")
    calls = []
    monkeypatch.setattr(yp, "prepare_year_prediction", lambda *a, **k: calls.append(k) or yp.load_prepared(path))
    yp.load_or_prepare(path, nrows=1000, verbose=False)
    assert calls, "a file made from the stand-in was reused although the real data is available"


def test_reloading_stand_in_data_announces_it_again(tmp_path, monkeypatch, capsys):
    from utils import standins
    from utils.year_prediction import load_or_prepare

    monkeypatch.setenv("ADL_OFFLINE", "1")
    monkeypatch.delenv("ADL_DATA_MIRROR", raising=False)
    monkeypatch.setenv("ADL_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(standins, "USED", [])
    path = tmp_path / "prepared.npz"
    load_or_prepare(path, nrows=500)
    capsys.readouterr()
    monkeypatch.setattr(standins, "USED", [])
    load_or_prepare(path, nrows=500)
    assert "OFFLINE STAND-IN" in capsys.readouterr().out
    assert standins.USED == ["YearPredictionMSD"]
