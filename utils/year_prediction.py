"""Chapter 2, Activities 2 and 3: YearPredictionMSD prepared for regression.

Activity 2 has the learner prepare the data step by step, then shows :func:`prepare_year_prediction`
as "what you just wrote, packaged" and saves its result with :func:`save_prepared`. Activity 3
calls :func:`load_or_prepare`, which reads that hand-off through :mod:`utils.handoff` (one file
per mode, stamped with the settings and the data source) and rebuilds it, with exactly the same
steps and a printed note, when it is missing, damaged or was made with other settings. The steps:

1. read the first ``nrows`` rows (50,000, as the book) with :func:`utils.load_year_prediction`
   (offline, an announced synthetic stand-in with the same schema);
2. column 0 is the target (the release year), columns 1-90 are the features;
3. split 60/20/20 into training, validation and test rows, shuffling features and years together
   (:func:`utils.tabular.split_train_val_test`), or, with ``split="uci"``, the split UCI
   recommends: training and validation rows from the first 463,715 songs, test rows from the
   last 51,630, so that no artist appears on both sides (the "producer effect");
4. standardise every feature with the mean and standard deviation of the *training* rows only.

The years are kept as they are (integers); scaling the target is part of Activity 3.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import handoff, standins
from .data import is_cached, load_year_prediction
from .handoff import handoff_path
from .runtime import is_offline
from .standins import announce_standin
from .tabular import split_train_val_test

#: UCI's recommended split: the first 463,715 rows are for training, the last 51,630 for testing.
UCI_TRAIN_ROWS = 463_715
UCI_TOTAL_ROWS = 515_345
SPLITS = ("random", "uci")
PARTS = ("train", "val", "test")
_FORMAT_VERSION = 2


@dataclass
class PreparedYearData:
    """Standardised features (float32) and release years (int64) of the three parts, and how they were made.

    ``feature_mean`` and ``feature_std`` are the training rows' statistics used to standardise
    every part; ``config`` records ``nrows``, ``split``, ``val``, ``test``, ``seed`` and ``source``
    (``"uci"`` for the real file, ``"stand-in"`` for the offline synthetic sample).
    """

    X_train: np.ndarray
    X_val: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_val: np.ndarray
    y_test: np.ndarray
    feature_mean: np.ndarray
    feature_std: np.ndarray
    config: dict = field(default_factory=dict)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of the three feature arrays, e.g. ``{"train": (30000, 90), ...}``."""
        return {part: tuple(getattr(self, f"X_{part}").shape) for part in PARTS}

    def tensors(self, part: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features, years)`` of ``part`` (``"train"``, ``"val"`` or ``"test"``) as float32 tensors.

        The years come as a column of shape (N, 1), the shape a model with one output produces,
        so ``MSELoss`` compares each prediction with its own target (see Exercise 6).
        """
        if part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, got {part!r}")
        X, y = getattr(self, f"X_{part}"), getattr(self, f"y_{part}")
        return torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.float32).reshape(-1, 1)


def year_prediction_source() -> str:
    """``"stand-in"`` when :func:`utils.load_year_prediction` will generate the offline stand-in, else ``"uci"``."""
    return "stand-in" if is_offline() and not is_cached("year_prediction") else "uci"


def features_and_years(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Split a ``header=None`` YearPredictionMSD table into its 90 feature columns and its year column (0)."""
    if frame.shape[1] != 91 or 0 not in frame.columns:
        raise ValueError(f"expected 91 columns (0 = year, 1-90 = features), got shape {frame.shape} "
                         f"and columns {list(frame.columns)[:5]}...")
    not_numeric = frame.select_dtypes(exclude="number").columns.tolist()
    if not_numeric:
        raise ValueError(f"every YearPredictionMSD column should be numeric; these are not: {not_numeric}")
    return frame.drop(columns=[0]), frame[0]


def standardise(train: pd.DataFrame, *others: pd.DataFrame) -> tuple[list[pd.DataFrame], pd.Series, pd.Series]:
    """Standardise ``train`` and ``others`` with the mean and standard deviation of ``train`` only.

    Returns ``([train, *others] scaled, mean, std)``. The standard deviation is pandas' default
    (``ddof=1``), as in the book's formula; a constant training column is divided by 1, not 0.
    """
    if len(train) < 2:
        raise ValueError("need at least two training rows to estimate a standard deviation")
    mean, std = train.mean(), train.std()
    std = std.where(std > 0, 1.0)
    return [(part - mean) / std for part in (train, *others)], mean, std


def uci_split(frame: pd.DataFrame, n_train_val: int, n_test: int,
              train_rows: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The first ``n_train_val`` rows of UCI's training section and the first ``n_test`` rows of its test section.

    ``frame`` must be the *whole* file in its original order: rows before ``train_rows`` are
    UCI's training songs, rows from ``train_rows`` (default :data:`UCI_TRAIN_ROWS`) on its test
    songs (no artist in both).
    """
    train_rows = UCI_TRAIN_ROWS if train_rows is None else train_rows
    if len(frame) <= train_rows:
        raise ValueError(
            f"the UCI split needs the whole file ({UCI_TOTAL_ROWS:,} rows, test songs from row {train_rows:,} "
            f"on); this table has {len(frame):,} rows. Read it with nrows=None; the offline stand-in cannot "
            "be split this way (it has no artists)."
        )
    if n_train_val > train_rows or n_test > len(frame) - train_rows:
        raise ValueError(f"asked for {n_train_val:,} training+validation and {n_test:,} test rows, but UCI's "
                         f"sections have {train_rows:,} and {len(frame) - train_rows:,}")
    return frame.iloc[:n_train_val], frame.iloc[train_rows:train_rows + n_test]


def prepare_year_prediction(nrows: int = 50_000, *, split: str = "random", val: float = 0.2, test: float = 0.2,
                            seed: int = 0, frame: pd.DataFrame | None = None) -> PreparedYearData:
    """Split and standardise YearPredictionMSD as Activity 2 does (see the module docstring).

    ``nrows`` rows are used in total (the book: 50,000, giving 30,000 / 10,000 / 10,000 rows).
    ``frame`` skips the loading step (Activity 2 passes the table it explored); with
    ``split="random"`` it must be the first ``nrows`` rows of the file, with ``split="uci"`` the
    whole file.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not (0 < val < 1 and 0 < test < 1 and val + test < 1):
        raise ValueError(f"val and test are shares of the rows: each in (0, 1), together below 1; got {val}, {test}")
    source = year_prediction_source()
    if frame is None:
        frame = load_year_prediction(nrows if split == "random" else None)
    if split == "random":
        if len(frame) != nrows:
            raise ValueError(f"expected the first {nrows:,} rows, got a table of {len(frame):,}")
        X, y = features_and_years(frame)
        X_train, X_val, X_test, y_train, y_val, y_test = split_train_val_test(X, y, val=val, test=test, seed=seed)
    else:
        n_test = round(nrows * test)
        head, tail = uci_split(frame, nrows - n_test, n_test)
        X_head, y_head = features_and_years(head)
        X_test, y_test = features_and_years(tail)
        X_train, X_val, y_train, y_val = _split_two(X_head, y_head, val / (1 - test), seed)
    (X_train, X_val, X_test), mean, std = standardise(X_train, X_val, X_test)
    config = {"nrows": nrows, "split": split, "val": val, "test": test, "seed": seed, "source": source}
    return PreparedYearData(
        *(part.to_numpy(dtype=np.float32, copy=True) for part in (X_train, X_val, X_test)),
        *(part.to_numpy(dtype=np.int64, copy=True) for part in (y_train, y_val, y_test)),
        mean.to_numpy(dtype=np.float64, copy=True), std.to_numpy(dtype=np.float64, copy=True), config)


def _split_two(X: pd.DataFrame, y: pd.Series, share: float, seed: int):
    from sklearn.model_selection import train_test_split

    return train_test_split(X, y, test_size=share, random_state=seed)


# --------------------------------------------------------------------------- the hand-off to Activity 3

_ARRAYS = ("X_train", "X_val", "X_test", "y_train", "y_val", "y_test", "feature_mean", "feature_std")
WHAT = "the prepared YearPredictionMSD data (activity02_year_prediction_preparation.ipynb)"


def prepared_path(quick_mode: bool | None = None) -> Path:
    """Where Activity 2 leaves its data for Activity 3: ``<outputs>/ch02/year_prediction_prepared_<mode>.pt``."""
    return handoff_path("ch02", "year_prediction_prepared", quick_mode=quick_mode)


def prepared_stamp(nrows: int = 50_000, split: str = "random", val: float = 0.2, test: float = 0.2,
                   seed: int = 0, source: str | None = None) -> dict:
    """The stamp a hand-off file must carry to be reused: format, settings and data source."""
    return {"format": _FORMAT_VERSION, "nrows": nrows, "split": split, "val": val, "test": test, "seed": seed,
            "source": year_prediction_source() if source is None else source}


def _payload(data: PreparedYearData) -> dict:
    return {name: torch.from_numpy(np.ascontiguousarray(getattr(data, name))) for name in _ARRAYS}


def _from_payload(payload: dict, config: dict) -> PreparedYearData:
    missing = [name for name in _ARRAYS if name not in payload]
    if missing:
        raise ValueError(f"the hand-off lacks {missing}")
    return PreparedYearData(**{name: payload[name].numpy() for name in _ARRAYS}, config=dict(config))


def save_prepared(data: PreparedYearData, path: str | os.PathLike[str] | None = None) -> Path:
    """Save ``data`` for Activity 3 (atomic write, stamped with its settings) and return the path.

    The default path is :func:`prepared_path` (one file per mode, under ``$ADL_OUTPUTS_DIR``).
    """
    path = prepared_path() if path is None else Path(path)
    return handoff.save(path, _payload(data), prepared_stamp(**data.config))


def load_prepared(path: str | os.PathLike[str] | None = None, *, nrows: int = 50_000, split: str = "random",
                  val: float = 0.2, test: float = 0.2, seed: int = 0) -> PreparedYearData:
    """Read what :func:`save_prepared` wrote with these settings.

    Raises :class:`utils.handoff.HandoffError` when the file is missing, damaged, or was made
    with other settings or from another data source.
    """
    path = prepared_path() if path is None else Path(path)
    stamp = prepared_stamp(nrows, split, val, test, seed)
    payload = handoff.load(path, stamp)
    try:
        return _from_payload(payload, {k: v for k, v in stamp.items() if k != "format"})
    except (ValueError, AttributeError, TypeError) as err:
        raise handoff.HandoffError(path, f"is not a prepared YearPredictionMSD file ({err})") from err


def load_or_prepare(path: str | os.PathLike[str] | None = None, *, nrows: int = 50_000, split: str = "random",
                    val: float = 0.2, test: float = 0.2, seed: int = 0, verbose: bool = True) -> PreparedYearData:
    """Activity 2's prepared data: read from ``path`` when its stamp matches these settings, else rebuilt and saved.

    Goes through :func:`utils.handoff.load_or_rebuild`: a missing, damaged or stale file (other
    settings, or made from the offline stand-in once the real data can be had, and the other way
    round) is rebuilt with :func:`prepare_year_prediction`, with a printed note saying why.
    """
    path = prepared_path() if path is None else Path(path)
    stamp = prepared_stamp(nrows, split, val, test, seed)
    config = {k: v for k, v in stamp.items() if k != "format"}

    def rebuild() -> dict:
        return _payload(prepare_year_prediction(nrows, split=split, val=val, test=test, seed=seed))

    payload = handoff.load_or_rebuild(path, stamp, rebuild, what=WHAT, verbose=verbose)
    try:
        data = _from_payload(payload, config)
    except (ValueError, AttributeError, TypeError) as err:  # stamped right but the content is wrong: rebuild
        if verbose:
            print(f"Rebuilding {WHAT}, because {handoff.shown(path)} has unusable content ({err}).")
        data = prepare_year_prediction(nrows, split=split, val=val, test=test, seed=seed)
        save_prepared(data, path)
        return data
    if config["source"] == "stand-in" and "YearPredictionMSD" not in standins.USED:
        announce_standin("YearPredictionMSD", "the prepared synthetic sample of utils.standins")
    if verbose:
        print(f"Data: {_describe(config)}.")
    return data


def _describe(config: dict) -> str:
    source = "offline stand-in" if config.get("source") == "stand-in" else "UCI data"
    rows = f"first {config.get('nrows', 0):,} rows" if config.get("split") == "random" else \
        f"{config.get('nrows', 0):,} rows in UCI's producer-effect split"
    return f"{source}, {rows}, seed {config.get('seed')}"
