"""tools/check_platforms.py resolves the lock for every supported Python and platform, with wheels only.

These tests drive it with a fake `uv`, so they run without the registry; `make check-platforms` (and CI)
runs it for real.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import check_platforms  # noqa: E402
import course  # noqa: E402


def fake_uv(fail: dict[tuple[str, str], str] | None = None, network: bool = False, extra: str = ""):
    """A runner that writes the lock's own pins as the resolution (plus ``extra``), failing where told."""
    calls = []
    lock_lines = [line for line in (ROOT / "requirements.lock").read_text().splitlines() if "==" in line]

    def run(command, env):
        target = command[command.index("--python-platform") + 1]
        python = command[command.index("--python-version") + 1]
        calls.append((target, python, env.get("MACOSX_DEPLOYMENT_TARGET"), "--only-binary" in command))
        if network:
            return subprocess.CompletedProcess(command, 2, "", "error: Failed to fetch: dns error")
        expected_failure = (fail or {}).get((target, python))
        past = python == f"3.{course.supported_range()[1][1]}"
        if expected_failure or past or target == "x86_64-apple-darwin":
            why = expected_failure or "torch==2.14.1 has no wheels with a matching Python ABI tag"
            return subprocess.CompletedProcess(command, 1, "", f"error: No solution found\n  cause: Because {why}")
        out = Path(command[command.index("-o") + 1])
        out.write_text("\n".join(line.split(";")[0].split("#")[0].strip() for line in lock_lines) + "\n" + extra)
        return subprocess.CompletedProcess(command, 0, "", "")

    run.calls = calls
    return run


def test_every_platform_and_supported_python_is_resolved_with_wheels_only():
    runner, out = fake_uv(), io.StringIO()
    assert check_platforms.check(runner, out=out) == 0
    text = out.getvalue()
    targets = {(t, p) for t, p, _, _ in runner.calls}
    for target, _ in check_platforms.PLATFORMS.values():
        for python in course.supported_versions():
            assert (target, python) in targets
    assert all(binary for *_, binary in runner.calls), "every resolution is wheels only"
    assert ("aarch64-apple-darwin", "3.10", "14.0", True) in runner.calls, "macOS 14 or later"
    assert "| Linux x86_64 | ✅" in text and "All 20 targets resolve." in text
    assert text.count("fails as expected") == 2


def test_a_python_and_platform_without_wheels_fails_and_names_the_package():
    runner, out = fake_uv({("x86_64-pc-windows-msvc", "3.14"): "pyzmq==26.0 has no usable wheels"}), io.StringIO()
    assert check_platforms.check(runner, out=out) == 1
    assert "❌ Windows x86_64, Python 3.14: cause: Because pyzmq==26.0 has no usable wheels" in out.getvalue()


def test_a_resolution_that_needs_a_package_the_lock_lacks_fails():
    runner, out = fake_uv(extra="surely-missing==1.0\n"), io.StringIO()
    assert check_platforms.check(runner, out=out) == 1
    assert "needs packages the lock lacks: surely-missing" in out.getvalue()


def test_without_the_registry_it_skips_with_the_reason_and_strict_makes_that_an_error():
    out = io.StringIO()
    assert check_platforms.check(fake_uv(network=True), out=out) == 0
    assert "check-platforms skipped: the package registry could not be reached" in out.getvalue()
    assert check_platforms.check(fake_uv(network=True), strict=True, out=io.StringIO()) == 1


def test_a_control_that_resolves_means_the_check_cannot_fail():
    def lenient(command, env):
        out = Path(command[command.index("-o") + 1])
        out.write_text("torch==2.14.1\n")
        return subprocess.CompletedProcess(command, 0, "", "")

    out = io.StringIO()
    assert check_platforms.check(lenient, out=out) == 1
    assert "resolved, so the check cannot tell a platform it does not support" in out.getvalue()
