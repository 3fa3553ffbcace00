"""Helpers for tabular data (Chapters 2, 3 and 6): outliers, splits and tensor batches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, TensorDataset


def outlier_share(df: pd.DataFrame, k: float = 3.0) -> pd.Series:
    """Share of values per column lying more than ``k`` standard deviations from the column mean.

    Vectorised over all numeric columns; returns a Series sorted from the largest share.
    """
    numeric = df.select_dtypes(include="number")
    z = (numeric - numeric.mean()) / numeric.std()
    return (z.abs() > k).mean().sort_values(ascending=False)


def split_train_val_test(X, y, val: float = 0.2, test: float = 0.2, seed: int = 0, stratify: bool = False):
    """Shuffle features and targets *together* and cut them into training, validation and test sets.

    Returns ``X_train, X_val, X_test, y_train, y_val, y_test``. With ``stratify=True`` every part
    keeps the class shares of ``y`` (use it for imbalanced classification).
    """
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}: they must describe the same examples")
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, y, test_size=test, random_state=seed, stratify=y if stratify else None)
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=val / (1 - test), random_state=seed, stratify=y_rest if stratify else None)
    return X_train, X_val, X_test, y_train, y_val, y_test


def as_tensor(data, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A pandas object, NumPy array or list as a new tensor of ``dtype``.

    The values are copied: pandas 3 hands out read-only arrays, which a tensor must not share.
    """
    values = data.to_numpy() if isinstance(data, (pd.DataFrame, pd.Series)) else np.asarray(data)
    return torch.tensor(values, dtype=dtype)


def tensor_loader(X, y, batch_size: int, shuffle: bool = False, seed: int = 0,
                  y_dtype: torch.dtype = torch.float32) -> DataLoader:
    """A ``DataLoader`` over ``(X, y)`` converted to tensors once (not re-sliced from pandas every step).

    ``y`` keeps its shape, so a regression target should already be a column (N, 1) when the
    model outputs (N, 1); class labels use ``y_dtype=torch.long``. Shuffling is seeded, so the
    batches repeat from run to run.
    """
    dataset = TensorDataset(as_tensor(X), as_tensor(y, y_dtype))
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)
