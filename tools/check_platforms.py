"""Prove that requirements.lock installs on every supported Python and platform: ``make check-platforms``.

For each platform below and each Python that pyproject.toml's ``requires-python`` admits, ``uv pip compile``
resolves the lock for that target with wheels only (``--only-binary :all:``): every pinned version must
have a wheel for that Python and platform, and the resolution must need no package the lock lacks. Two
controls must fail, so a pass means something: the first Python past the range, and macOS on Intel,
for which PyTorch no longer publishes wheels.

It needs the package registry. When the registry cannot be reached, it says so and exits 0 (skipped), so
an offline machine is not reported as broken; ``--strict`` makes that an error instead.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import course  # noqa: E402  (tools/course.py: the supported Pythons, from pyproject.toml)

LOCK = ROOT / "requirements.lock"
# Label -> (uv's --python-platform, extra environment).
PLATFORMS: dict[str, tuple[str, dict[str, str]]] = {
    "Linux x86_64": ("x86_64-manylinux_2_28", {}),
    "Linux aarch64": ("aarch64-manylinux_2_28", {}),
    "macOS 14+ arm64": ("aarch64-apple-darwin", {"MACOSX_DEPLOYMENT_TARGET": "14.0"}),
    "Windows x86_64": ("x86_64-pc-windows-msvc", {}),
}
INTEL_MAC = ("macOS x86_64", ("x86_64-apple-darwin", {"MACOSX_DEPLOYMENT_TARGET": "14.0"}))
# What uv prints when it cannot reach the registry (as opposed to a real resolution failure).
NETWORK_ERROR = re.compile(r"dns error|failed to lookup address|Could not connect|Connection refused|"
                           r"error sending request|Request failed after|network is unreachable|timed out|"
                           r"Failed to fetch", re.I)
PACKAGE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", re.M)

Runner = Callable[[Sequence[str], dict[str, str]], "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True)
class Outcome:
    platform: str
    python: str
    ok: bool
    detail: str  # the number of packages, or why it failed
    offline: bool = False


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_packages(text: str) -> set[str]:
    return {canonical(name) for name in PACKAGE.findall(text)}


def uv_run(command: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, env={**os.environ, **env}, timeout=600)


def resolve(platform: str, target: str, env: dict[str, str], python: str, runner: Runner = uv_run) -> Outcome:
    """Resolve the lock for one platform and Python with wheels only."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "resolved.txt"
        command = [sys.executable, "-m", "uv", "pip", "compile", str(LOCK), "--python-platform", target,
                   "--python-version", python, "--only-binary", ":all:", "--no-header", "--no-annotate",
                   "--no-python-downloads", "--quiet", "-o", str(out)]
        result = runner(command, env)
        if result.returncode != 0:
            message = (result.stderr or result.stdout).strip()
            if NETWORK_ERROR.search(message):
                return Outcome(platform, python, False, message.splitlines()[-1] if message else "", offline=True)
            reason = [line.strip() for line in message.splitlines() if "cause:" in line or "hint:" in line]
            return Outcome(platform, python, False, (reason or message.splitlines() or ["failed"])[0])
        resolved = lock_packages(out.read_text())
    missing = resolved - lock_packages(LOCK.read_text())
    if missing:
        return Outcome(platform, python, False, f"needs packages the lock lacks: {', '.join(sorted(missing))}")
    return Outcome(platform, python, True, f"{len(resolved)} packages")


def table(outcomes: list[Outcome], pythons: list[str]) -> str:
    """A Markdown table: platforms down, Pythons across, ✅ or ❌ in each cell."""
    by = {(o.platform, o.python): o for o in outcomes}
    lines = ["| platform | " + " | ".join(f"Python {p}" for p in pythons) + " |",
             "|---|" + "---|" * len(pythons)]
    for platform in dict.fromkeys(o.platform for o in outcomes):
        cells = []
        for python in pythons:
            outcome = by.get((platform, python))
            cells.append("" if outcome is None else ("✅ " if outcome.ok else "❌ ") + outcome.detail.split(",")[0])
        lines.append(f"| {platform} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def check(runner: Runner = uv_run, strict: bool = False, out=sys.stdout) -> int:
    pythons = course.supported_versions()
    past = f"3.{course.supported_range()[1][1]}"
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    for platform, (target, env) in PLATFORMS.items():
        for python in pythons:
            outcome = resolve(platform, target, env, python, runner)
            if outcome.offline:
                print(f"check-platforms skipped: the package registry could not be reached ({outcome.detail}). "
                      "This check resolves the lock against it; run it again with the network.", file=out)
                return 1 if strict else 0
            outcomes.append(outcome)
    controls = [resolve("Linux x86_64", PLATFORMS["Linux x86_64"][0], {}, past, runner),
                resolve(INTEL_MAC[0], INTEL_MAC[1][0], INTEL_MAC[1][1], pythons[-1], runner)]
    elapsed = time.perf_counter() - started
    print(f"requirements.lock, wheels only, for {course.describe_range()} ({len(outcomes)} targets, "
          f"{elapsed:.0f} s):\n", file=out)
    print(table(outcomes, pythons), file=out)
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        print(f"\n❌ {o.platform}, Python {o.python}: {o.detail}", file=out)
    unexpected = [c for c in controls if c.ok]
    for c in controls:
        print(f"\ncontrol, must fail: {c.platform}, Python {c.python}: "
              + ("resolved, so the check cannot tell a platform it does not support" if c.ok else
                 f"fails as expected ({c.detail})"), file=out)
    if failed or unexpected:
        return 1
    print(f"\nAll {len(outcomes)} targets resolve.", file=out)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strict", action="store_true", help="fail (instead of skipping) without the registry")
    return check(strict=parser.parse_args(argv).strict)


if __name__ == "__main__":
    sys.exit(main())
