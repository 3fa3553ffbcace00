"""Shared fixtures: the dataset mirror and an isolated cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MIRROR = ROOT.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The dataset mirror (``$ADL_DATA_MIRROR`` or ``../shared/datasets``); tests needing it skip without one."""
    value = os.environ.get("ADL_DATA_MIRROR")
    path = Path(value) if value else DEFAULT_MIRROR
    path = path if path.is_absolute() else (ROOT / path).resolve()
    if not (path / "README.md").is_file():
        pytest.skip(f"no dataset mirror at {path}; set ADL_DATA_MIRROR to run data tests")
    return path


@pytest.fixture
def use_mirror(mirror: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the loaders at the mirror (the shared project cache is reused, so files are copied once)."""
    monkeypatch.setenv("ADL_DATA_MIRROR", str(mirror))
    return mirror


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty cache folder (``ADL_DATA_DIR``) for tests that must not touch the real one."""
    monkeypatch.setenv("ADL_DATA_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"
