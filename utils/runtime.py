"""Where code runs and how much work it does: device choice, seeding and quick mode.

Quick mode (``ADL_QUICK=1``) is what CI uses: every notebook asks :func:`quick`
for its epochs, iterations and subset sizes, so the same notebook runs the
book's full configuration on a learner's machine and a one-minute version in CI.
"""

from __future__ import annotations

import os
import platform
import random
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def is_quick() -> bool:
    """True when ``ADL_QUICK=1``: shrink epochs and data so a notebook runs in about a minute."""
    return _flag("ADL_QUICK")


def is_offline() -> bool:
    """True when ``ADL_OFFLINE=1``: never touch the network; use announced stand-ins where needed."""
    return _flag("ADL_OFFLINE")


def quick(full: T, small: T) -> T:
    """Return ``full`` (the book's value) normally and ``small`` in quick mode.

    >>> epochs = quick(50, 2)
    """
    return small if is_quick() else full


def quick_subset(data: T, n: int, seed: int = 0) -> T:
    """In quick mode, a reproducible random subset of ``n`` items of ``data``; otherwise ``data``.

    Works with pandas objects, NumPy arrays, tensors, lists and ``torch.utils.data.Dataset``.
    """
    if not is_quick():
        return data
    size = len(data)  # type: ignore[arg-type]
    if n >= size:
        return data
    index = np.sort(np.random.default_rng(seed).choice(size, size=n, replace=False))
    if hasattr(data, "iloc"):  # pandas DataFrame or Series
        return data.iloc[index]  # type: ignore[attr-defined,return-value]
    if isinstance(data, (np.ndarray, torch.Tensor)):
        return data[index]  # type: ignore[return-value]
    if isinstance(data, torch.utils.data.Dataset):
        return torch.utils.data.Subset(data, index.tolist())  # type: ignore[return-value]
    if isinstance(data, Sequence):
        return [data[i] for i in index]  # type: ignore[return-value]
    raise TypeError(f"quick_subset cannot index a {type(data).__name__}")


def get_device(prefer: str | None = None) -> torch.device:
    """The best available device: CUDA, then Apple MPS, then CPU.

    ``prefer`` (or the environment variable ``ADL_DEVICE``) forces one, e.g. ``"cpu"``.
    """
    choice = prefer or os.environ.get("ADL_DEVICE")
    if choice:
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices) and return a seeded ``torch.Generator``.

    Pass the generator to a ``DataLoader`` (``generator=``) so its shuffling is reproducible too.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds CUDA and MPS
    return torch.Generator().manual_seed(seed)


def describe_run(device: torch.device | None = None) -> str:
    """Print (and return) one line saying how this notebook is being run.

    Every notebook calls this first, so saved outputs record the mode and device that produced them.
    """
    device = device or get_device()
    mode = "quick (ADL_QUICK=1)" if is_quick() else "full (the book's configuration)"
    parts = [f"mode: {mode}", f"device: {device}", f"torch {torch.__version__}",
             f"python {platform.python_version()}"]
    if is_offline():
        parts.append("offline (ADL_OFFLINE=1)")
    line = " | ".join(parts)
    print(line)
    return line
