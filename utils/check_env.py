"""Check the course's environment: ``python -m utils.check_env`` (``make check-env``).

Prints, as one block to paste into a bug report (``.github/ISSUE_TEMPLATE/bug_report.yml``): the
operating system and machine, where the notebooks run (laptop, WSL, a container, a hosted notebook),
the Python version and whether the course supports it (pyproject.toml's ``requires-python``), every
package of ``requirements.txt`` with its installed version and whether it satisfies the requirement,
the devices and the one notebooks will use, every ``ADL_*`` setting and whether its value is accepted,
and which datasets are already cached. Exits with status 1 when something is not as the course needs.

``python -m utils.check_env --preflight`` (run by ``make test`` before any notebook) checks in
seconds that every data file the notebooks need can be had: from the cache, from
``$ADL_DATA_MIRROR``, or from the internet (a quick connection probe). If one cannot, it prints one
message naming the missing files and the two ways out, and exits with status 1.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from urllib.parse import urlparse

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from . import settings
from .data import CIFAR10_DECODED, PROJECT_ROOT, REGISTRY, cache_dir, cached_copies, is_cached, mirror_dir
from .runtime import available_devices, check_device, get_device, is_offline, is_quick
from .settings import SettingError


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


def supported_pythons(pyproject: Path = PROJECT_ROOT / "pyproject.toml") -> SpecifierSet:
    """The Pythons the course supports: pyproject.toml's ``requires-python``, the one place that states them."""
    match = re.search(r'^requires-python\s*=\s*"([^"]+)"', pyproject.read_text(), re.M)
    if not match:
        raise ValueError(f"{pyproject} states no requires-python")
    return SpecifierSet(match.group(1))


def describe_pythons(spec: SpecifierSet) -> str:
    """``"3.10 to 3.14"`` for ``>=3.10,<3.15``."""
    low = next(s.version for s in spec if s.operator == ">=")
    high = next(s.version for s in spec if s.operator == "<")
    major, minor = (int(part) for part in high.split(".")[:2])
    return f"{low} to {major}.{minor - 1}"


def where_it_runs(environ: Mapping[str, str] | None = None, proc_version: str | None = None) -> str:
    """Where this Python runs: a hosted notebook, WSL, a container, or this computer."""
    environ = os.environ if environ is None else environ
    if proc_version is None:
        try:
            proc_version = Path("/proc/version").read_text()
        except OSError:
            proc_version = ""
    hosted = [("COLAB_RELEASE_TAG", "Google Colab"), ("KAGGLE_KERNEL_RUN_TYPE", "Kaggle"),
              ("SM_CURRENT_HOST", "Amazon SageMaker"), ("SAGEMAKER_INTERNAL_IMAGE_URI", "Amazon SageMaker Studio"),
              ("BINDER_LAUNCH_HOST", "Binder"), ("PAPERSPACE_NOTEBOOK_REPO_ID", "Paperspace Gradient"),
              ("CODESPACES", "GitHub Codespaces")]
    for variable, name in hosted:
        if environ.get(variable):
            return f"hosted notebook ({name})"
    if "microsoft" in proc_version.lower():
        return "Windows Subsystem for Linux (WSL)"
    if Path("/.dockerenv").exists() or environ.get("container"):
        return "a container"
    return "this computer (not a known hosted service)"


def operating_system() -> str:
    """The OS and machine, e.g. ``macOS 14.5 (arm64, Apple silicon)`` or ``Linux 6.8 (x86_64), Ubuntu 22.04``."""
    machine = platform.machine()
    system = platform.system()
    if system == "Darwin":
        chip = "Apple silicon" if machine == "arm64" else "Intel"
        return f"macOS {platform.mac_ver()[0]} ({machine}, {chip})"
    if system == "Windows":
        return f"Windows {platform.release()} (build {platform.version()}, {machine})"
    release = ""
    try:
        release = platform.freedesktop_os_release().get("PRETTY_NAME", "")
    except (OSError, AttributeError):
        pass
    return f"{system} {platform.release()} ({machine})" + (f", {release}" if release else "")


def course_version() -> str:
    """The commit of this clone (``git describe``), or ``unknown`` without git."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=PROJECT_ROOT, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def settings_status(environ: Mapping[str, str] | None = None) -> list[tuple[str, str, str | None]]:
    """``(name, value, problem)`` for every ``ADL_*`` variable that is set (``problem`` is ``None`` when valid)."""
    environ = os.environ if environ is None else environ
    rows = []
    for name in sorted(n for n in environ if n.startswith("ADL_")):
        problem = None
        alone = {name: environ[name]}  # each on its own, so one bad name does not hide the others' verdicts
        try:
            settings.check(name, alone)
            device = settings.device_name(alone) if name == "ADL_DEVICE" else None
            if device:  # spelled right; and does this machine have it?
                check_device(device, f"ADL_DEVICE={device}")
        except SettingError as error:
            problem = str(error)
        rows.append((name, environ[name], problem))
    return rows


def report() -> tuple[str, bool]:
    """The whole report as text (one block to paste into a bug report), and whether all is as needed."""
    import torch

    supported = supported_pythons()
    python_ok = supported.contains(platform.python_version())
    environment = "conda" if os.environ.get("CONDA_PREFIX") and Path(sys.prefix) == Path(os.environ["CONDA_PREFIX"]) \
        else "virtual environment" if sys.prefix != sys.base_prefix else "system Python (no virtual environment)"
    lines = ["--- check-env: paste from here into the bug report ---",
             f"Course: {course_version()}",
             f"OS: {operating_system()}",
             f"Runs in: {where_it_runs()}",
             f"Python {platform.python_version()} ({platform.python_implementation()}, {environment}): "
             + ("supported" if python_ok else "NOT SUPPORTED")
             + f"; the course supports Python {describe_pythons(supported)}",
             f"  {sys.executable}", "", "Packages (requirements.txt):"]
    rows = requirement_status()
    for name, wanted, installed, ok in rows:
        lines.append(f"  {'ok ' if ok else 'BAD'} {name:<16} {installed:<16} wanted {wanted}")
    setting_rows = settings_status()
    lines += ["", "Settings (ADL_* variables set):" if setting_rows else "Settings: no ADL_* variable is set"]
    for name, value, problem in setting_rows:
        lines.append(f"  ok  {name}={value}" if problem is None else
                     f"  BAD {problem}" if problem.startswith(name) else f"  BAD {name}={value}: {problem}")
    try:
        device = get_device()
        chosen = f"{device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
        device_ok = True
    except SettingError as error:
        chosen, device_ok = f"none: {error}", False
    cuda = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
    lines += ["", f"Device the notebooks will use: {chosen}",
              f"  devices here: {', '.join(available_devices())}; torch {torch.__version__} ({cuda})"]
    try:
        mirror = mirror_dir()
        lines.append(f"Mode: {'quick' if is_quick() else 'full'}; offline: {is_offline()}; "
                     f"mirror: {mirror or 'not set'}")
        lines += ["", f"Datasets cached in {cache_dir()} and {cache_dir('images')}:"]
        for name in REGISTRY:
            lines.append(f"  {'yes' if is_cached(name) else 'no '} {name}")
    except SettingError as error:
        lines.append(f"Mode and data: not shown, a setting is wrong ({error})")
    weights = Path(torch.hub.get_dir()) / "checkpoints" / "vgg19-dcbb9e9d.pth"
    lines.append(f"  {'yes' if weights.is_file() else 'no '} VGG-19 ImageNet weights ({weights})")
    packages_ok = all(ok for *_, ok in rows)
    settings_ok = all(problem is None for *_, problem in setting_rows)
    all_ok = packages_ok and python_ok and settings_ok and device_ok
    lines += ["--- check-env: to here ---", ""]
    if all_ok:
        lines.append("Everything required is installed and every setting is valid.")
    if not python_ok:
        lines.append(f"This Python is not supported: make the environment with Python {describe_pythons(supported)} "
                     "(e.g. `make setup PYTHON=python3.12`).")
    if not packages_ok:
        lines.append("Some requirements are not met: run `make setup` (or `python tools/course.py setup`).")
    if not (settings_ok and device_ok):
        lines.append("Some ADL_* settings are not valid: fix or unset them (see README, \"Settings\").")
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
