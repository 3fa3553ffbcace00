"""Chapter 3 data: the Default of Credit Card Clients table, cleaned, split and scaled for classification.

Two pipelines live here, side by side, so the notebooks can compare them:

* :func:`leaky_book_splits` repeats the book's order of steps: over-sample the defaults of the
  *whole* table, min-max scale the whole table, then split 60/20/20. Copies of the same client
  end up in training, validation and test, so the test accuracy is inflated. Kept for demonstration.
* :func:`honest_splits` splits first (stratified 60/20/20), over-samples only the training part and
  fits the min-max scaler on training rows only. Validation and test keep the real class shares.

Every row keeps the index it had in the raw table (the client's position), which is how
:func:`shared_clients` finds clients that appear on both sides of a split.
:meth:`CreditSplits.to_payload` and :meth:`CreditSplits.from_payload` turn splits into plain tensors
and lists (what a hand-off file holds, see :mod:`utils.handoff`) and back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch.utils.data import DataLoader

from .tabular import split_train_val_test, tensor_loader

TARGET = "default payment next month"
DROPPED_COLUMNS = ("ID", "SEX")
PARTS = ("train", "val", "test")

#: The client the book feeds to its deployed model in Activity 6 (22 features, already min-max scaled).
BOOK_EXAMPLE: tuple[float, ...] = (
    0.0606, 0.5000, 0.3333, 0.4828, 0.4000, 0.4000, 0.4000, 0.4000, 0.4000, 0.4000, 0.1651,
    0.0869, 0.0980, 0.1825, 0.1054, 0.2807, 0.0016, 0.0000, 0.0033, 0.0027, 0.0031, 0.0021,
)
#: The class the book's deployed model predicts for :data:`BOOK_EXAMPLE` (its Activity 6 solution: 1, "yes").
BOOK_EXAMPLE_CLASS = 1


# --------------------------------------------------------------------------- cleaning

def clean_credit_data(raw: pd.DataFrame) -> pd.DataFrame:
    """The raw table without ``ID`` (a row number, not a property of the client) and ``SEX``."""
    missing = [c for c in (*DROPPED_COLUMNS, TARGET) if c not in raw.columns]
    if missing:
        raise ValueError(f"expected the raw credit table with columns {missing}; got {list(raw.columns)[:8]}...")
    return raw.drop(columns=list(DROPPED_COLUMNS))


def features_and_target(data: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Split a cleaned table into the feature columns ``X`` and the target column ``y``."""
    if TARGET not in data.columns:
        raise ValueError(f"the table has no {TARGET!r} column")
    return data.drop(columns=[TARGET]), data[TARGET]


def oversample_minority(X: pd.DataFrame, y: pd.Series, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Draw every smaller class, with replacement, until it is as large as the largest class.

    Returns the majority rows first (in their order), then the drawn rows, as the book does.
    Indexes are kept, so a client drawn twice appears twice with the same index.
    """
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
    if not X.index.equals(y.index):
        raise ValueError("X and y must share the same index (one row per client)")
    counts = y.value_counts()
    majority = counts.idxmax()
    frame = X.assign(__target__=y)
    parts = [frame[y == majority]]
    for label in sorted(counts.index):
        if label != majority:
            parts.append(frame[y == label].sample(int(counts[majority]), replace=True, random_state=seed))
    resampled = pd.concat(parts, axis=0)
    return resampled.drop(columns="__target__"), resampled["__target__"].rename(y.name)


def features_tensor(X: pd.DataFrame | Sequence[Sequence[float]]) -> torch.Tensor:
    """Features as a float32 tensor (from a writable copy, so torch never sees a read-only pandas view)."""
    values = X.to_numpy(copy=True) if isinstance(X, pd.DataFrame) else X
    return torch.as_tensor(values, dtype=torch.float32)


# --------------------------------------------------------------------------- scaling

@dataclass
class MinMaxScaler:
    """Min-max scaling ``(x - min) / (max - min)`` per column, with the minimum and maximum it was fitted on.

    Columns that are constant in the fitting rows are mapped to 0 instead of dividing by zero.
    Rows outside the fitted range (possible for validation and test rows) fall outside [0, 1].
    """

    minimum: pd.Series
    maximum: pd.Series

    @classmethod
    def fit(cls, X: pd.DataFrame) -> MinMaxScaler:
        """Learn each column's minimum and maximum from ``X`` (the training rows only)."""
        if len(X) == 0:
            raise ValueError("cannot fit a scaler on an empty table")
        return cls(X.min().astype(float), X.max().astype(float))

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Scale ``X`` with the fitted minimum and maximum (same columns, same index)."""
        if list(X.columns) != list(self.minimum.index):
            raise ValueError(f"the scaler was fitted on columns {list(self.minimum.index)[:5]}..., "
                             f"got {list(X.columns)[:5]}...")
        span = (self.maximum - self.minimum).replace(0.0, 1.0)
        return (X - self.minimum) / span

    def to_dict(self) -> dict[str, list]:
        """Plain lists (JSON- and ``torch.load(weights_only=True)``-friendly)."""
        return {"columns": list(self.minimum.index), "minimum": self.minimum.tolist(),
                "maximum": self.maximum.tolist()}

    @classmethod
    def from_dict(cls, values: dict[str, list]) -> MinMaxScaler:
        columns = values["columns"]
        return cls(pd.Series(values["minimum"], index=columns, dtype=float),
                   pd.Series(values["maximum"], index=columns, dtype=float))


# --------------------------------------------------------------------------- splits

@dataclass
class CreditSplits:
    """Scaled features and targets of the training, validation and test parts, plus the scaler used."""

    X_train: pd.DataFrame
    X_val: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_val: pd.Series
    y_test: pd.Series
    scaler: MinMaxScaler

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of the three feature tables, e.g. ``{"train": (28036, 22), ...}``."""
        return {"train": self.X_train.shape, "validation": self.X_val.shape, "test": self.X_test.shape}

    def default_shares(self) -> dict[str, float]:
        """Share of defaults (class 1) in each part, rounded to 4 decimals."""
        return {name: round(float(y.mean()), 4)
                for name, y in (("train", self.y_train), ("validation", self.y_val), ("test", self.y_test))}

    def loaders(self, batch_size: int = 128, seed: int = 0) -> tuple[DataLoader, DataLoader, DataLoader]:
        """Training (shuffled, seeded), validation and test loaders with ``long`` class labels.

        Validation and test come as one batch each, so a metric computed per batch is exact there.
        """
        def loader(X: pd.DataFrame, y: pd.Series, size: int, shuffle: bool) -> DataLoader:
            # writable NumPy copies: pandas 3 hands out read-only views, which torch warns about
            return tensor_loader(X.to_numpy(copy=True), y.to_numpy(copy=True), size, shuffle=shuffle, seed=seed,
                                 y_dtype=torch.long)

        return (loader(self.X_train, self.y_train, batch_size, True),
                loader(self.X_val, self.y_val, len(self.y_val), False),
                loader(self.X_test, self.y_test, len(self.y_test), False))

    def to_payload(self) -> dict[str, Any]:
        """The splits as tensors and lists, for ``torch.save`` (and ``torch.load(weights_only=True)``)."""
        payload: dict[str, Any] = {"columns": list(self.X_train.columns), "scaler": self.scaler.to_dict()}
        for part in PARTS:
            X, y = getattr(self, f"X_{part}"), getattr(self, f"y_{part}")
            payload[part] = {"X": torch.as_tensor(X.to_numpy(copy=True, dtype="float64")),
                             "y": torch.as_tensor(y.to_numpy(copy=True, dtype="int64")),
                             "client": torch.as_tensor(X.index.to_numpy(copy=True, dtype="int64"))}
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> CreditSplits:
        """Rebuild splits saved by :meth:`to_payload`; ``ValueError`` naming what does not fit."""
        try:
            columns = list(payload["columns"])
            parts = {}
            for part in PARTS:
                X, y, client = (payload[part][key] for key in ("X", "y", "client"))
                if X.ndim != 2 or X.shape[1] != len(columns) or not len(X) == len(y) == len(client):
                    raise ValueError(f"the {part} part has inconsistent shapes {tuple(X.shape)}, {tuple(y.shape)}, "
                                     f"{tuple(client.shape)} for {len(columns)} columns")
                index = pd.Index(client.tolist())
                parts[part] = (pd.DataFrame(X.numpy(), columns=columns, index=index),
                               pd.Series(y.numpy(), index=index, name=TARGET))
            scaler = MinMaxScaler.from_dict(payload["scaler"])
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"not a saved set of splits ({type(err).__name__}: {err})") from err
        return cls(parts["train"][0], parts["val"][0], parts["test"][0],
                   parts["train"][1], parts["val"][1], parts["test"][1], scaler)


def leaky_book_splits(data: pd.DataFrame, seed: int = 0) -> CreditSplits:
    """The book's pipeline (demonstration only): over-sample and scale the whole table, *then* split.

    ``data`` is the cleaned table (:func:`clean_credit_data`). Gives 46,728 rows split 28,036 /
    9,346 / 9,346, where many defaulting clients appear in more than one part.
    """
    X, y = features_and_target(data)
    X, y = oversample_minority(X, y, seed=seed)
    scaler = MinMaxScaler.fit(X)  # fitted on every row, test rows included
    X_train, X_val, X_test, y_train, y_val, y_test = split_train_val_test(scaler.transform(X), y, seed=seed)
    return CreditSplits(X_train, X_val, X_test, y_train, y_val, y_test, scaler)


def honest_splits(data: pd.DataFrame, seed: int = 0) -> CreditSplits:
    """Split first (stratified 60/20/20), over-sample the training part only, scale with training rows only.

    ``data`` is the cleaned table (:func:`clean_credit_data`). Validation and test keep the real
    share of defaults (22.12%), so they measure what the model will meet in use.
    """
    X, y = features_and_target(data)
    X_train, X_val, X_test, y_train, y_val, y_test = split_train_val_test(X, y, seed=seed, stratify=True)
    X_train, y_train = oversample_minority(X_train, y_train, seed=seed)
    scaler = MinMaxScaler.fit(X_train)
    return CreditSplits(scaler.transform(X_train), scaler.transform(X_val), scaler.transform(X_test),
                        y_train, y_val, y_test, scaler)


def shared_clients(splits: CreditSplits) -> dict[str, float]:
    """How many validation and test rows belong to a client that also appears in the training part.

    Returns counts and shares; with an honest split all of them are zero.
    """
    seen = set(splits.X_train.index)
    result: dict[str, float] = {}
    for name, part in (("validation", splits.X_val), ("test", splits.X_test)):
        shared = int(part.index.isin(seen).sum())
        result[f"{name}_rows_seen_in_training"] = shared
        result[f"{name}_share_seen_in_training"] = round(shared / len(part), 4)
    return result
