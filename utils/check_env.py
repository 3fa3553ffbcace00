"""Check the course's environment: ``python -m utils.check_env``.

Prints the Python version, every package of ``requirements.txt`` with its installed version
and whether it satisfies the requirement, the device notebooks will use, and which datasets
are already cached. Exits with status 1 when a requirement is missing or too old/new.
"""

from __future__ import annotations

import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement

from .data import PROJECT_ROOT, REGISTRY, cache_dir, is_cached, mirror_dir
from .runtime import get_device, is_offline, is_quick


def requirement_status(requirements_file: Path = PROJECT_ROOT / "requirements.txt") -> list[tuple[str, str, str, bool]]:
    """``(name, wanted, installed, ok)`` for every requirement line."""
    rows = []
    for line in requirements_file.read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        try:
            installed = version(req.name)
        except PackageNotFoundError:
            rows.append((req.name, str(req.specifier), "not installed", False))
            continue
        rows.append((req.name, str(req.specifier), installed, req.specifier.contains(installed, prereleases=True)))
    return rows


def report() -> tuple[str, bool]:
    """The whole report as text, and whether every requirement is satisfied."""
    import torch

    lines = [f"Python {platform.python_version()} ({sys.executable})", "", "Packages (requirements.txt):"]
    rows = requirement_status()
    for name, wanted, installed, ok in rows:
        lines.append(f"  {'ok ' if ok else 'BAD'} {name:<16} {installed:<16} wanted {wanted}")
    device = get_device()
    lines += ["", f"Device the notebooks will use: {device}"
              + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
              f"  CUDA available: {torch.cuda.is_available()}; "
              f"MPS available: {torch.backends.mps.is_available()}; torch {torch.__version__}",
              f"Mode: {'quick' if is_quick() else 'full'}; offline: {is_offline()}; "
              f"mirror: {mirror_dir() or 'not set'}",
              "", f"Datasets cached in {cache_dir()} and {cache_dir('images')}:"]
    for name in REGISTRY:
        lines.append(f"  {'yes' if is_cached(name) else 'no '} {name}")
    weights = Path(torch.hub.get_dir()) / "checkpoints" / "vgg19-dcbb9e9d.pth"
    lines.append(f"  {'yes' if weights.is_file() else 'no '} VGG-19 ImageNet weights ({weights})")
    all_ok = all(ok for *_, ok in rows)
    lines += ["", "Everything required is installed." if all_ok else
              "Some requirements are not met: run `make setup` (or pip install -r requirements.txt -e .)."]
    return "\n".join(lines), all_ok


def main() -> int:
    text, ok = report()
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
