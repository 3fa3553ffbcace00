"""Chapter 2, Activities 2 and 3: YearPredictionMSD prepared for regression.

Activity 2 prepares the data step by step and saves the result with :func:`save_prepared`;
Activity 3 calls :func:`load_or_prepare`, which reads that file and rebuilds it (with exactly
the same steps) when it is missing or was made with other settings. The steps:

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

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .data import PROJECT_ROOT, is_cached, load_year_prediction
from .runtime import is_offline
from .standins import announce_standin
from .tabular import split_train_val_test

#: UCI's recommended split: the first 463,715 rows are for training, the last 51,630 for testing.
UCI_TRAIN_ROWS = 463_715
UCI_TOTAL_ROWS = 515_345
DEFAULT_PATH = PROJECT_ROOT / "outputs" / "ch02" / "year_prediction_prepared.npz"
SPLITS = ("random", "uci")
PARTS = ("train", "val", "test")
_FORMAT_VERSION = 1


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


# --------------------------------------------------------------------------- saving and loading

def save_prepared(data: PreparedYearData, path: str | os.PathLike[str] = DEFAULT_PATH) -> Path:
    """Write ``data`` to ``path`` (``.npz``; folders are created, the write is atomic) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {name: getattr(data, name) for name in
              ("X_train", "X_val", "X_test", "y_train", "y_val", "y_test", "feature_mean", "feature_std")}
    meta = json.dumps({"format": _FORMAT_VERSION, **data.config})
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, meta=np.array(meta), **arrays)
    os.replace(tmp, path)  # a half-written file never takes the place of a good one
    return path


def load_prepared(path: str | os.PathLike[str] = DEFAULT_PATH) -> PreparedYearData:
    """Read what :func:`save_prepared` wrote. Raises ``FileNotFoundError`` or ``ValueError`` (unreadable file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no prepared YearPredictionMSD data at {path}; run Activity 2 or load_or_prepare()")
    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"]))
            arrays = {name: stored[name] for name in stored.files if name != "meta"}
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f"{path} is not a prepared YearPredictionMSD file ({type(err).__name__}: {err})") from err
    if meta.pop("format", None) != _FORMAT_VERSION:
        raise ValueError(f"{path} was written by another version of utils.year_prediction")
    return PreparedYearData(**arrays, config=meta)


def load_or_prepare(path: str | os.PathLike[str] = DEFAULT_PATH, *, nrows: int = 50_000, split: str = "random",
                    val: float = 0.2, test: float = 0.2, seed: int = 0, verbose: bool = True) -> PreparedYearData:
    """Activity 2's prepared data: read from ``path`` when it matches these settings, else rebuilt and saved.

    A file made from the offline stand-in is not reused once the real data can be had (and the
    other way round), and a damaged file is rebuilt.
    """
    wanted = {"nrows": nrows, "split": split, "val": val, "test": test, "seed": seed,
              "source": year_prediction_source()}
    path = Path(path)
    reason = "is missing"
    if path.is_file():
        try:
            data = load_prepared(path)
        except ValueError as err:
            reason = f"could not be read ({err})"
        else:
            if data.config == wanted:
                if data.config.get("source") == "stand-in":  # still synthetic data: say so every time
                    announce_standin("YearPredictionMSD", "the prepared synthetic sample of utils.standins")
                if verbose:
                    print(f"Loaded the prepared data from {_shown(path)} ({_describe(data.config)}).")
                return data
            reason = f"was made with other settings ({_describe(data.config)})"
    if verbose:
        print(f"Preparing the data (as Activity 2 does), because {_shown(path)} {reason}.")
    data = prepare_year_prediction(nrows, split=split, val=val, test=test, seed=seed)
    save_prepared(data, path)
    if verbose:
        print(f"Saved to {_shown(path)} ({_describe(data.config)}).")
    return data


def _describe(config: dict) -> str:
    source = "offline stand-in" if config.get("source") == "stand-in" else "UCI data"
    rows = f"first {config.get('nrows', 0):,} rows" if config.get("split") == "random" else \
        f"{config.get('nrows', 0):,} rows in UCI's producer-effect split"
    return f"{source}, {rows}, seed {config.get('seed')}"


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)
