"""Record a notebook's key figures, so runs can be compared with the book and checked in CI.

Each call writes ``results/<mode>/<notebook>.json`` (the folder is ignored by git), where
``<mode>`` is ``quick`` or ``full``. ``tests/test_learning.py`` reads the quick-mode files
CI produced and checks that every training notebook beat its trivial baseline;
``python -m utils.report`` turns the full-mode files into ``RESULTS.md``.
"""

from __future__ import annotations

import json
import math
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from . import standins
from .data import PROJECT_ROOT
from .runtime import get_device, is_offline, is_quick

_STARTED = time.perf_counter()


def start_timer() -> None:
    """Restart the wall-clock timer (``describe_run`` calls this at the top of every notebook)."""
    global _STARTED
    _STARTED = time.perf_counter()


def results_dir(mode: str | None = None) -> Path:
    """``results/quick`` or ``results/full`` (``$ADL_RESULTS_DIR`` overrides ``results``)."""
    base = Path(os.environ.get("ADL_RESULTS_DIR", PROJECT_ROOT / "results"))
    return base / (mode or ("quick" if is_quick() else "full"))


def record_result(notebook: str, *, metric: str, value: float, baseline: float, higher_is_better: bool,
                  book: str | None = None, **extra: float | str) -> Path:
    """Save the notebook's main figure next to its trivial baseline, plus any extra figures.

    ``baseline`` is what doing nothing clever achieves (chance accuracy, the mean predictor's
    error, the loss before training). ``book`` is the figure the book states, as text.
    """
    if not math.isfinite(value):
        raise ValueError(f"{notebook}: {metric} is {value}, so training diverged")
    record = {
        "notebook": notebook, "metric": metric, "value": float(value), "baseline": float(baseline),
        "higher_is_better": higher_is_better, "book": book,
        "extra": {k: (float(v) if isinstance(v, (int, float)) else v) for k, v in extra.items()},
        "mode": "quick" if is_quick() else "full", "offline": is_offline(), "standins": list(standins.USED),
        "device": str(get_device()), "device_name": _device_name(),
        "wall_time_s": round(time.perf_counter() - _STARTED, 1),
        "torch": torch.__version__, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    path = results_dir() / (notebook.replace("/", "__") + ".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2))
    better = value > baseline if higher_is_better else value < baseline
    print(f"{notebook}: {metric} = {value:.4g} (trivial baseline {baseline:.4g}; "
          f"{'better' if better else 'NOT better'} than baseline)")
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
