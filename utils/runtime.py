"""Where code runs and how much work it does: device choice, seeding and quick mode.

Quick mode (``ADL_QUICK=1``) is what CI uses: every notebook asks :func:`quick`
for its epochs, iterations and subset sizes, so the same notebook runs the
book's full configuration on a learner's machine and a one-minute version in CI.
"""

from __future__ import annotations

import platform
import random
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import torch

from . import settings
from .settings import SettingError

T = TypeVar("T")

def is_quick() -> bool:
    """True when ``ADL_QUICK=1``: shrink epochs and data so a notebook runs in about a minute."""
    return settings.flag("ADL_QUICK")


def is_offline() -> bool:
    """True when ``ADL_OFFLINE=1``: never touch the network; use announced stand-ins where needed."""
    return settings.flag("ADL_OFFLINE")


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


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def available_devices() -> list[str]:
    """The devices this machine has, as ``get_device`` accepts them: ``["cuda:0", "cuda:1", "mps", "cpu"]``."""
    found = [f"cuda:{index}" for index in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return found + (["mps"] if _mps_available() else []) + ["cpu"]


def check_device(name: str, source: str) -> torch.device:
    """``torch.device(name)`` if this machine has it; otherwise a :class:`SettingError` naming what it has.

    ``source`` says where the name came from, for the message (``"ADL_DEVICE=cuda"``).
    """
    if not settings.DEVICE.match(name):
        raise SettingError(f"{source}: {name!r} is not a device name: use cpu, cuda, cuda:N or mps.")
    device = torch.device(name)
    have = available_devices()
    if device.type == "cpu" or (device.type == "mps" and "mps" in have) or \
            (device.type == "cuda" and f"cuda:{device.index or 0}" in have):
        return device
    kind = {"cuda": "CUDA GPU" + ("" if device.index is None else f" number {device.index}"),
            "mps": "Apple-silicon GPU (MPS)"}[device.type]
    raise SettingError(f"{source} asks for {name}, but this machine has no {kind}. Devices here: "
                       f"{', '.join(have)}. Unset it to use the best of these, or name one of them.")


def get_device(prefer: str | torch.device | None = None) -> torch.device:
    """The best available device: CUDA, then Apple MPS, then CPU.

    ``prefer`` (or the environment variable ``ADL_DEVICE``) forces one, e.g. ``"cpu"``. A device this
    machine does not have stops here, with a message naming it and the devices there are, rather than
    at the first tensor sent to it.
    """
    if prefer:
        return check_device(str(prefer).strip().lower(), f"get_device({str(prefer)!r})")
    choice = settings.device_name()
    if choice:
        return check_device(choice, f"ADL_DEVICE={choice}")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
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
