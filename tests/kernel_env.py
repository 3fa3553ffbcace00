"""The environment a notebook kernel gets in the tests (nbval in test_notebooks, nbclient in test_activities)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def kernel_environment(base: Mapping[str, str]) -> dict[str, str]:
    """``base`` with a relative ``ADL_DATA_MIRROR`` made absolute (the kernel runs in the notebook's folder),
    inline matplotlib unless a backend is set, text progress bars (headless runs cannot draw widgets), and one
    thread per kernel when pytest-xdist runs tests in parallel."""
    env = dict(base)
    mirror = env.get("ADL_DATA_MIRROR")
    if mirror and not Path(mirror).is_absolute():
        env["ADL_DATA_MIRROR"] = str((ROOT / mirror).resolve())
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    env["ADL_PLAIN_PROGRESS"] = "1"
    if env.get("PYTEST_XDIST_WORKER"):  # tests in parallel share the cores: one thread per kernel
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env
