"""Record a notebook's key figures, so runs can be compared with the book and checked in CI.

Each call writes ``results/<mode>/<notebook>.json`` (the folder is ignored by git), where
``<mode>`` is ``quick`` or ``full``. ``tests/test_notebooks.py`` reads the quick-mode files
CI produced and checks that every training notebook beat its trivial baseline;
``tools/results.py`` (``make results``) turns the full-mode files into ``RESULTS.md``, with the
practitioner baseline (what a practitioner would try first on the same split) next to it.
"""

from __future__ import annotations

import json
import math
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from . import settings, standins
from .data import PROJECT_ROOT
from .runtime import get_device, is_offline, is_quick

_STARTED = time.perf_counter()


def start_timer() -> None:
    """Restart the wall-clock timer (``describe_run`` calls this at the top of every notebook)."""
    global _STARTED
    _STARTED = time.perf_counter()


def results_dir(mode: str | None = None) -> Path:
    """``results/quick`` or ``results/full`` (``$ADL_RESULTS_DIR`` overrides ``results``)."""
    base = settings.folder("ADL_RESULTS_DIR", must_exist=False) or PROJECT_ROOT / "results"
    return base / (mode or ("quick" if is_quick() else "full"))


def beats(value: float, other: float, higher_is_better: bool) -> bool:
    """Whether ``value`` is strictly better than ``other``."""
    return value > other if higher_is_better else value < other


def record_result(notebook: str, *, metric: str, value: float, baseline: float, higher_is_better: bool,
                  book: str | None = None, practitioner: float | None = None,
                  practitioner_name: str | None = None, **extra: float | str) -> Path:
    """Save the notebook's main figure next to its trivial baseline, plus any extra figures.

    ``baseline`` is what doing nothing clever achieves (chance accuracy, the mean predictor's
    error, the loss before training). ``book`` is the figure the book states, as text.
    ``practitioner`` is the same metric for the model a practitioner would try first on the same
    split (e.g. gradient boosting for a table), named by ``practitioner_name``; the network may
    lose to it, and the results table says so.
    """
    if not math.isfinite(value):
        raise ValueError(f"{notebook}: {metric} is {value}, so training diverged")
    if practitioner is not None and not practitioner_name:
        raise ValueError(f"{notebook}: name the practitioner baseline, e.g. practitioner_name=\"gradient boosting\"")
    if practitioner is not None and not math.isfinite(practitioner):
        raise ValueError(f"{notebook}: the practitioner baseline {practitioner_name} is {practitioner}")
    record = {
        "notebook": notebook, "metric": metric, "value": float(value), "baseline": float(baseline),
        "higher_is_better": higher_is_better, "book": book,
        "practitioner": None if practitioner is None else float(practitioner),
        "practitioner_name": practitioner_name if practitioner is not None else None,
        "extra": {k: (float(v) if isinstance(v, (int, float)) else v) for k, v in extra.items()},
        "mode": "quick" if is_quick() else "full", "offline": is_offline(), "standins": list(standins.USED),
        "device": str(get_device()), "device_name": _device_name(),
        "wall_time_s": round(time.perf_counter() - _STARTED, 1),
        "torch": torch.__version__, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    path = results_dir() / (notebook.replace("/", "__") + ".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, path)  # a reader never sees half a record
    line = (f"{notebook}: {metric} = {value:.4g} (trivial baseline {baseline:.4g}; "
            f"{'better' if beats(value, baseline, higher_is_better) else 'NOT better'} than baseline)")
    if practitioner is not None:
        verdict = ("the network beats it" if beats(value, practitioner, higher_is_better)
                   else "it beats the network" if beats(practitioner, value, higher_is_better) else "a tie")
        line += f"; practitioner baseline {practitioner:.4g} ({practitioner_name}): {verdict}"
    print(line)
    return path


def _device_name() -> str:
    device = get_device()
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import os
    import platform

    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"
