"""Hand-offs between notebooks: one notebook saves what a later one needs, the later one reads it.

A later notebook must also run on its own (fresh clone, any order), so every hand-off is read
through :func:`load_or_rebuild`, which returns the saved payload when it is usable and otherwise
calls the chapter's own ``rebuild`` recipe, prints a one-line note saying why, and saves the result.

Every hand-off file

* lives under :func:`outputs_dir` (``$ADL_OUTPUTS_DIR``, default ``<project>/outputs``), with the
  mode in its name (:func:`handoff_path`), so a quick-mode file never passes for a full-mode one;
* is written atomically (a temporary file, then :func:`os.replace`), so an interrupted save never
  leaves a half-written file in its place;
* carries a *stamp*: a small dict (format version, settings, data source...) that the reader
  compares with the one it expects, so a file made with other settings is rebuilt, not trusted.

Payloads are what ``torch.load(..., weights_only=True)`` accepts: tensors, numbers, strings,
lists and dicts of them. The recipes (which model, which epochs) stay in the chapter modules.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from . import settings
from .data import PROJECT_ROOT, project_relative
from .runtime import is_quick

Payload = dict[str, Any]


class HandoffError(RuntimeError):
    """A hand-off file is missing, unreadable or was made with other settings; ``reason`` says which."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{shown(path)} {reason}")
        self.path = path
        self.reason = reason


def outputs_dir() -> Path:
    """Where notebooks leave files for later notebooks: ``$ADL_OUTPUTS_DIR`` or ``<project>/outputs``."""
    return settings.folder("ADL_OUTPUTS_DIR", must_exist=False) or PROJECT_ROOT / "outputs"


def mode_name(quick_mode: bool | None = None) -> str:
    """``"quick"`` or ``"full"``: the mode of this run, or of ``quick_mode`` when given."""
    return "quick" if (is_quick() if quick_mode is None else quick_mode) else "full"


def handoff_path(chapter: str, name: str, suffix: str = ".pt", quick_mode: bool | None = None) -> Path:
    """``<outputs>/<chapter>/<name>_<mode><suffix>``, e.g. ``outputs/ch03/activity05_best_full.pt``."""
    return outputs_dir() / chapter / f"{name}_{mode_name(quick_mode)}{suffix}"


def shown(path: Path) -> str:
    """``path`` relative to the project root when it is inside it, else only its name for an absolute path
    (hand-off notes end up in saved outputs, which never show a machine's folders)."""
    text = project_relative(path)
    return Path(text).name if Path(text).is_absolute() else text


def write_atomically(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then move it into place in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save(path: Path, payload: Payload, stamp: Payload) -> Path:
    """Save ``payload`` with its ``stamp`` to ``path`` atomically and return the path."""
    record = {"stamp": dict(stamp), "payload": payload}
    return write_atomically(path, lambda tmp: torch.save(record, tmp))


def load(path: Path, stamp: Payload) -> Payload:
    """The payload saved at ``path`` if its stamp equals ``stamp``; else :class:`HandoffError` saying why."""
    path = Path(path)
    if not path.is_file():
        raise HandoffError(path, "is missing")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, pickle.UnpicklingError, zipfile.BadZipFile) as err:
        raise HandoffError(path, f"is damaged or not a hand-off file ({type(err).__name__})") from err
    if not isinstance(record, dict) or not {"stamp", "payload"} <= record.keys():
        raise HandoffError(path, "is not a hand-off file (no stamp)")
    if record["stamp"] != dict(stamp):
        different = sorted(k for k in set(stamp) | set(record["stamp"]) if record["stamp"].get(k) != stamp.get(k))
        raise HandoffError(path, f"was made with other settings ({', '.join(different)} differ)")
    return record["payload"]


def load_or_rebuild(path: Path, stamp: Payload, rebuild: Callable[[], Payload], *, what: str,
                    verbose: bool = True) -> Payload:
    """The hand-off at ``path``, or, when it is missing, damaged or stale, ``rebuild()`` saved in its place.

    ``what`` names the content and the notebook that makes it, for the printed note, e.g.
    ``"the Activity 5 model (activity05_improving_the_model.ipynb)"``.
    """
    try:
        payload = load(path, stamp)
    except HandoffError as err:
        if verbose:
            print(f"Rebuilding {what}, because {err}.")
        payload = rebuild()
        save(path, payload, stamp)
        if verbose:
            print(f"Saved {what} to {shown(path)}.")
        return payload
    if verbose:
        print(f"Loaded {what} from {shown(path)}.")
    return payload
