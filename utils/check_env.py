"""Check the course's environment: ``python -m utils.check_env``.

Prints the Python version, every package of ``requirements.txt`` with its installed version
and whether it satisfies the requirement, the device notebooks will use, and which datasets
are already cached. Exits with status 1 when a requirement is missing or too old/new.

``python -m utils.check_env --preflight`` (run by ``make test`` before any notebook) checks in
seconds that every data file the notebooks need can be had: from the cache, from
``$ADL_DATA_MIRROR``, or from the internet (a quick connection probe). If one cannot, it prints one
message naming the missing files and the two ways out, and exits with status 1.
"""

from __future__ import annotations

import argparse
import platform
import socket
import sys
import threading
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from urllib.parse import urlparse

from packaging.requirements import Requirement

from .data import CIFAR10_DECODED, PROJECT_ROOT, REGISTRY, cache_dir, cached_copies, is_cached, mirror_dir
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


# --------------------------------------------------------------------------- preflight

VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
# Files that cannot be mirrored: with ADL_OFFLINE=1 the notebooks use an announced stand-in instead.
STANDIN_OFFLINE = {"year_prediction", "vgg19_weights"}


@dataclass(frozen=True)
class Needed:
    """A file the notebooks need, and where it could come from."""

    name: str
    filename: str
    url: str
    cached: bool
    corrupt: bool = False
    mirror_path: str | None = None  # path inside ADL_DATA_MIRROR; None: not mirrorable


def needed_files() -> list[Needed]:
    """Every registered file, plus the VGG-19 weights, with whether a good copy is cached."""
    import torch

    found = []
    for name, entry in REGISTRY.items():
        good, failed = cached_copies(name)
        cached = good is not None
        if name == "cifar10_jpg":
            cached = cached or (cache_dir() / "cifar10" / "cifar-10-batches-py").is_dir() \
                or (cache_dir() / CIFAR10_DECODED).is_file()
        found.append(Needed(name, entry.filename, entry.url, cached, bool(failed) and not cached,
                            entry.mirror_relpath if entry.in_mirror else None))
    weights = Path(torch.hub.get_dir()) / "checkpoints" / VGG19_URL.rsplit("/", 1)[-1]
    found.append(Needed("vgg19_weights", "VGG-19 ImageNet weights", VGG19_URL, weights.is_file()))
    return found


def reachable_hosts(hosts: set[str], timeout: float = 3.0) -> set[str]:
    """The ``hosts`` that accept a TCP connection on port 443 within ``timeout`` seconds (probed in parallel)."""
    ok: set[str] = set()

    def probe(host: str) -> None:
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                ok.add(host)
        except OSError:
            pass

    threads = [threading.Thread(target=probe, args=(h,), daemon=True) for h in sorted(hosts)]
    for t in threads:
        t.start()
    for t in threads:  # name resolution has no timeout of its own: stop waiting anyway
        t.join(timeout)
    return set(ok)


def preflight(probe_timeout: float = 3.0) -> str | None:
    """``None`` when every file the notebooks need can be had; otherwise the one message that says why not."""
    offline, mirror = is_offline(), mirror_dir()
    missing: list[tuple[Needed, str]] = []
    online: list[Needed] = []
    for item in needed_files():
        if item.cached:
            continue
        if offline and item.name in STANDIN_OFFLINE:
            continue  # an announced stand-in replaces it
        if mirror is not None and item.mirror_path is not None:
            if (mirror / item.mirror_path).is_file():
                continue
            missing.append((item, f"not in ADL_DATA_MIRROR ({mirror / item.mirror_path})"))
            continue
        if offline:
            missing.append((item, "in the cache but failed its sha256 check" if item.corrupt else "not in the cache"))
        else:
            online.append(item)
    if online:
        hosts = {urlparse(item.url).hostname or "" for item in online}
        up = reachable_hosts(hosts, probe_timeout)
        for item in online:
            host = urlparse(item.url).hostname
            if host not in up:
                missing.append((item, f"not in the cache, and {host} did not answer within {probe_timeout:g} s"))
    if not missing:
        return None
    lines = ["The notebooks cannot get the data files they need, so nothing was run. Missing:"]
    lines += [f"  - {item.filename}: {why} (source: {item.url})" for item, why in missing]
    lines += ["", f"The cache is {cache_dir()} (and {cache_dir('images')}); "
              f"ADL_OFFLINE={'1' if offline else 'unset'}; ADL_DATA_MIRROR={mirror or 'unset'}.",
              "Two ways out:",
              "  1. Connect to the internet (and leave ADL_OFFLINE unset): the files then download into the cache",
              "     on first use, once.",
              "  2. Or set ADL_DATA_MIRROR to a folder that holds these files, laid out like the upstream files",
              "     (see datasets/README.md), e.g.  ADL_DATA_MIRROR=/path/to/datasets ADL_OFFLINE=1 make test"]
    if any(item.name in STANDIN_OFFLINE for item, _ in missing):
        lines.append("YearPredictionMSD and the VGG-19 weights cannot be mirrored: with ADL_OFFLINE=1 the notebooks "
                     "use announced stand-ins instead.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check the course's environment and data.")
    parser.add_argument("--preflight", action="store_true",
                        help="only check, in seconds, that the data the notebooks need can be had")
    args = parser.parse_args(argv)
    if args.preflight:
        problem = preflight()
        if problem:
            print(problem, file=sys.stderr)
            return 1
        print("preflight: every data file the notebooks need is cached, mirrored or downloadable.")
        return 0
    text, ok = report()
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
