"""Progress bars that look right both live and in a saved notebook.

In a live Jupyter session :func:`progress_bar` is ``tqdm.auto``'s widget. A widget cannot be
drawn from a saved file, though: a notebook executed headless (CI, ``tools/execute.sh``) would
store a bar frozen at 0%. With ``ADL_PLAIN_PROGRESS=1`` (set by those tools) the bar is plain text
on stdout, updated at most every ``mininterval`` seconds, so the saved output shows the finished bar.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from . import settings

T = TypeVar("T")


def plain_progress() -> bool:
    """True when ``ADL_PLAIN_PROGRESS=1``: draw text bars instead of widgets."""
    return settings.flag("ADL_PLAIN_PROGRESS")


def progress_bar(iterable: Iterable[T], **options: Any):
    """A ``tqdm`` bar over ``iterable`` (widget when live, text when ``ADL_PLAIN_PROGRESS=1``)."""
    if plain_progress():
        from tqdm.std import tqdm

        options.setdefault("file", sys.stdout)
        options.setdefault("mininterval", 30.0)
        options.setdefault("ascii", True)
        return tqdm(iterable, **options)
    from tqdm.auto import tqdm

    return tqdm(iterable, **options)
