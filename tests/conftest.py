"""Shared fixtures (the dataset mirror, an isolated cache) and the test session's own folders.

At session start, ``ADL_OUTPUTS_DIR`` (hand-offs between notebooks) and ``ADL_RESULTS_DIR``
(``record_result`` files) point at a fresh temporary folder, so executed notebooks never read
what an earlier run left in ``outputs/`` or ``results/``; notebook runs inherit them. Before any
notebook is executed, the data preflight (``python -m utils.check_env --preflight``) stops the
session at once, with one message, when the data the notebooks need cannot be had.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from utils import settings

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MIRROR = ROOT.parent / "shared" / "datasets"
SESSION_DIR_VARIABLE = "ADL_TEST_SESSION_DIR"
# Tests that execute notebooks, and so need the data files.
EXECUTING = ("tests/test_notebooks.py::test_notebook_runs", "tests/test_activities.py::test_untouched",
             "tests/test_activities.py::test_learner_notebook_filled", "tests/test_answers.py::test_every_answer",
             "tests/test_hints.py::test_every_hint")


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):  # `make test` runs two workers: one thread each, as its kernels
        import torch

        torch.set_num_threads(1)


def pytest_sessionstart(session: pytest.Session) -> None:
    if settings.raw(SESSION_DIR_VARIABLE):  # a nested run (nbval subprocess) shares its parent's folders
        return
    folder = Path(tempfile.mkdtemp(prefix="adl-test-"))
    session.config._adl_session_dir = folder  # type: ignore[attr-defined]
    os.environ[SESSION_DIR_VARIABLE] = str(folder)
    os.environ["ADL_OUTPUTS_DIR"] = str(folder / "outputs")
    os.environ["ADL_RESULTS_DIR"] = str(folder / "results")


def pytest_sessionfinish(session: pytest.Session) -> None:
    folder = getattr(session.config, "_adl_session_dir", None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
        for name in (SESSION_DIR_VARIABLE, "ADL_OUTPUTS_DIR", "ADL_RESULTS_DIR"):
            os.environ.pop(name, None)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    if config.option.collectonly or not any(item.nodeid.startswith(EXECUTING) for item in items):
        return
    from utils.check_env import preflight

    problem = preflight()
    if problem:
        pytest.exit("\n" + problem, returncode=1)


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The dataset mirror (``$ADL_DATA_MIRROR`` or ``../shared/datasets``); tests needing it skip without one."""
    value = settings.raw("ADL_DATA_MIRROR")
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
