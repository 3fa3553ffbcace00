"""The course's settings: every ``ADL_*`` environment variable is read here, and only here.

Each value is checked when it is first used. A value outside the documented set stops with a
:class:`SettingError` that names the variable, the value given and the values accepted, instead of
meaning something the learner did not mean (``ADL_QUICK=2`` running the full configuration for
hours) or failing later, far from the cause. A misspelt name (``ADL_QUIK=1``) stops too.

=========================  =====================================================================
``ADL_QUICK``              on/off: shrink epochs and subsets (CI); unset means the book's configuration
``ADL_OFFLINE``            on/off: never use the network; announced stand-ins where a file cannot be mirrored
``ADL_DATA_MIRROR``        an existing folder laid out like the upstream files (datasets/README.md)
``ADL_DATA_DIR``           the download cache (made if missing)
``ADL_DEVICE``             ``cpu``, ``cuda``, ``cuda:N`` or ``mps``: force a device (checked by ``get_device``)
``ADL_OUTPUTS_DIR``        where notebooks leave hand-offs for later notebooks (made if missing)
``ADL_RESULTS_DIR``        where notebooks record their figures (made if missing)
``ADL_PLAIN_PROGRESS``     on/off: text progress bars instead of widgets
``ADL_NOTEBOOK_TIMEOUT``   seconds, a positive whole number: the tests' limit for one notebook
``ADL_SLIDES_ASSETS``      where ``make slides`` keeps reveal.js (made if missing)
``ADL_TEST_SESSION_DIR``   set by the tests themselves for the notebooks they run
``ADL_EXECUTE_OUT``        where ``tools/execute.sh`` writes executed copies instead of in place
=========================  =====================================================================

On/off values: ``1``, ``true``, ``yes``, ``on`` and ``0``, ``false``, ``no``, ``off`` (any case); empty
or unset is off. Relative folders are taken from the project root.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# What a setting accepts: its kind, and the words the messages use for it.
FLAG = "on/off"
EXISTING_FOLDER = "an existing folder"
FOLDER = "a folder (made if missing)"
DEVICE_NAME = "cpu, cuda, cuda:N or mps"
SECONDS = "a positive whole number of seconds"
# Every variable the course reads, with what it accepts.
SETTINGS: dict[str, str] = {
    "ADL_QUICK": FLAG,
    "ADL_OFFLINE": FLAG,
    "ADL_DATA_MIRROR": EXISTING_FOLDER,
    "ADL_DATA_DIR": FOLDER,
    "ADL_DEVICE": DEVICE_NAME,
    "ADL_OUTPUTS_DIR": FOLDER,
    "ADL_RESULTS_DIR": FOLDER,
    "ADL_PLAIN_PROGRESS": FLAG,
    "ADL_NOTEBOOK_TIMEOUT": SECONDS,
    "ADL_SLIDES_ASSETS": FOLDER,
    "ADL_TEST_SESSION_DIR": FOLDER,
    "ADL_EXECUTE_OUT": FOLDER,
}
ON = ("1", "true", "yes", "on")
OFF = ("0", "false", "no", "off", "")
DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


class SettingError(ValueError):
    """An ``ADL_*`` variable holds a value the course does not accept; the message says what to set."""


def _environ(environ: Mapping[str, str] | None = None) -> Mapping[str, str]:
    environ = os.environ if environ is None else environ
    unknown = sorted(name for name in environ if name.startswith("ADL_") and name not in SETTINGS)
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, list(SETTINGS), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        raise SettingError(f"{name}={environ[name]!r} is not a setting of the course: {hint}the settings are "
                           f"{', '.join(SETTINGS)} (see README, \"Settings\"). Unset {name} or fix its name.")
    return environ


def raw(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The value of ``name`` with surrounding spaces removed (``""`` when unset)."""
    if name not in SETTINGS:
        raise KeyError(f"{name} is not one of the course's settings ({', '.join(SETTINGS)})")
    return _environ(environ).get(name, "").strip()


def flag(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """An on/off setting: ``True`` for 1/true/yes/on, ``False`` for 0/false/no/off or unset; anything else stops."""
    value = raw(name, environ)
    if value.lower() in ON:
        return True
    if value.lower() in OFF:
        return False
    raise SettingError(f"{name}={value!r} is neither on nor off: set {name}=1 (on) or {name}=0 (off), or unset it. "
                       f"Accepted: {', '.join(v for v in ON + OFF if v)} (any case), or empty.")


def _checked_folder(name: str, must_exist: bool, environ: Mapping[str, str] | None) -> tuple[Path, str] | None:
    """``(absolute path, how to show it)`` of a folder setting, or ``None`` when unset; stops for a file, and for
    a missing folder when ``must_exist``. Makes nothing."""
    value = raw(name, environ)
    if not value:
        return None
    path = Path(value).expanduser()
    path = path if path.is_absolute() else (PROJECT_ROOT / path).resolve()
    shown = value if str(path) == value else f"{value} (that is, {path})"
    if path.exists() and not path.is_dir():
        raise SettingError(f"{name}={shown} is a file, not a folder: set {name} to a folder, or unset it.")
    if must_exist and not path.exists():
        raise SettingError(f"{name}={shown}: no such folder. Set {name} to an existing folder, or unset it.")
    return path, shown


def folder(name: str, *, must_exist: bool, environ: Mapping[str, str] | None = None) -> Path | None:
    """A folder setting as an absolute path (relative to the project root), or ``None`` when unset.

    With ``must_exist`` a missing folder stops; otherwise it is made. A path that is a file stops either way.
    """
    found = _checked_folder(name, must_exist, environ)
    if found is None:
        return None
    path, shown = found
    if not path.exists():
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SettingError(f"{name}={shown}: the folder cannot be made ({error.strerror}). "
                               f"Set {name} to a folder you can write to, or unset it.") from error
    return path


def device_name(environ: Mapping[str, str] | None = None) -> str | None:
    """``ADL_DEVICE`` if set (``cpu``, ``cuda``, ``cuda:N`` or ``mps``), else ``None``.

    Only the spelling is checked here; whether this machine has the device is checked by
    :func:`utils.runtime.get_device`.
    """
    value = raw("ADL_DEVICE", environ).lower()
    if not value:
        return None
    if not DEVICE.match(value):
        raise SettingError(f"ADL_DEVICE={value!r} is not a device name: use cpu, cuda, cuda:N (N = 0, 1, ...) or "
                           "mps, or unset ADL_DEVICE to use the best device this machine has.")
    return value


def positive_int(name: str, default: int, environ: Mapping[str, str] | None = None) -> int:
    """A whole number of at least 1, or ``default`` when unset."""
    value = raw(name, environ)
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise SettingError(f"{name}={value!r} is not {SETTINGS[name]}: set e.g. {name}={default}, or unset it.")
    return int(value)


def check(name: str, environ: Mapping[str, str] | None = None) -> None:
    """Raise :class:`SettingError` unless ``name``'s value is one it accepts (a name the course does not know
    stops too). Changes nothing: a folder that would be made when used is not made here."""
    if name not in SETTINGS:
        _environ({name: (os.environ if environ is None else environ).get(name, "")})
    kind = SETTINGS[name]
    if kind == FLAG:
        flag(name, environ)
    elif kind == DEVICE_NAME:
        device_name(environ)
    elif kind == SECONDS:
        positive_int(name, 1, environ)
    else:
        _checked_folder(name, kind == EXISTING_FOLDER, environ)
