"""The dependency files agree: requirements.txt (ranges), environment.yml, pyproject.toml (runtime
dependencies of utils + the `course` extra) and requirements.lock (the exact versions installed)."""

import ast
import re
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = ["torch", "torchvision", "numpy", "pandas", "scikit-learn", "matplotlib", "xlrd", "pillow", "pooch", "tqdm"]
TOOLS = ["jupyterlab", "jupyter", "ipywidgets", "nbval", "nbclient", "nbformat", "pytest", "pytest-timeout", "ruff",
         "jupyterlab-rise"]
# Import name -> distribution name, where they differ.
DISTRIBUTION = {"sklearn": "scikit-learn", "PIL": "pillow"}


def requirements(lines) -> dict[str, str]:
    """Canonical name -> specifier, for requirement lines (comments, pip options and `-e .` skipped)."""
    found = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        found[canonicalize_name(req.name)] = str(req.specifier)
    return found


def requirements_txt() -> dict[str, str]:
    return requirements((ROOT / "requirements.txt").read_text().splitlines())


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def lock() -> dict[str, list[tuple[str, str]]]:
    """Canonical name -> [(version, marker)] of requirements.lock (one name may be pinned per platform)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", f"requirements.lock must pin exact versions: {line}"
        found.setdefault(canonicalize_name(req.name), []).append((spec.version, str(req.marker or "")))
    return found


def test_conda_environment_installs_the_lock_with_a_supported_python():
    env_text = (ROOT / "environment.yml").read_text()
    pip_section = [line.split("#")[0].strip().lstrip("-").strip()
                   for line in env_text.split("- pip:", 1)[1].splitlines()]
    assert [line for line in pip_section if line] == ["-r requirements.lock", "-e ."]
    python = re.search(r"^\s*-\s*python\s*(\S+)\s*$", env_text, re.M)
    assert python, "environment.yml must name the Python range"
    assert python.group(1) == pyproject()["requires-python"].replace(" ", ""), \
        "environment.yml's Python range and pyproject.toml's requires-python differ"


def test_pyproject_splits_runtime_from_course_tools_and_covers_requirements():
    project = pyproject()
    runtime = requirements(project["dependencies"])
    course = requirements(project["optional-dependencies"]["course"])
    assert not set(runtime) & set(course)
    assert {**runtime, **course} == requirements_txt(), "requirements.txt lists runtime + course, same ranges"
    assert set(RUNTIME) <= set(runtime)
    assert set(TOOLS) <= set(course)
    assert not set(TOOLS) & set(runtime), "test and notebook tools are not runtime requirements of utils"


def test_runtime_dependencies_are_what_utils_imports():
    imported = set()
    for path in (ROOT / "utils").rglob("*.py"):
        tree = ast.parse(path.read_text())
        # `try: import X / except ImportError:` is an optional import (IPython, only inside a notebook)
        optional = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.Try)
                    and any(isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                            for h in node.handlers)
                    for statement in node.body for inner in ast.walk(statement)}
        for node in ast.walk(tree):
            if id(node) in optional:
                continue
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {name for name in imported if name not in sys.stdlib_module_names and name != "utils"}
    needed = {canonicalize_name(DISTRIBUTION.get(name, name)) for name in third_party}
    runtime = set(requirements(pyproject()["dependencies"]))
    assert needed <= runtime, f"utils imports {sorted(needed - runtime)} but pyproject.toml does not require them"
    assert runtime <= needed, f"runtime dependencies that utils never imports: {sorted(runtime - needed)}"


def test_lock_pins_every_requirement_within_its_range():
    pinned = lock()
    for name, specifier in requirements_txt().items():
        assert name in pinned, f"{name} is in requirements.txt but not in requirements.lock: run `make lock`"
        for version, _ in pinned[name]:
            assert Requirement(f"{name}{specifier}").specifier.contains(version, prereleases=True), \
                f"requirements.lock pins {name}=={version}, outside requirements.txt's {specifier}"
    assert pinned["torch"] == [("2.14.1", "")] and pinned["torchvision"] == [("0.29.1", "")]
    pins = requirements((ROOT / "lock-pins.txt").read_text().splitlines())
    assert pins == {"torch": "==2.14.1", "torchvision": "==0.29.1"}


def test_setup_and_ci_install_the_lock():
    course = (ROOT / "tools" / "course.py").read_text()
    assert re.search(r'"pip", "install", "--quiet", "-r", "requirements\.lock", "-e", "\."', course)
    assert re.search(r'for name in \("requirements\.lock", "pyproject\.toml"\)', course), \
        "setup is redone when the lock or pyproject.toml is newer than the stamp"
    assert re.search(r"^setup:\n\t@\$\(COURSE\) setup", (ROOT / "Makefile").read_text(), re.M)
    assert "make setup" in (ROOT / ".ci" / "run").read_text()


def test_lock_is_compiled_for_the_lowest_supported_python():
    header = "".join(line + "\n" for line in (ROOT / "requirements.lock").read_text().splitlines()
                     if line.startswith("#"))
    lowest = re.search(r">=\s*(3\.\d+)", pyproject()["requires-python"]).group(1)
    assert f"--python-version {lowest} --universal" in header
    pinned = lock()
    assert any(marker.replace('"', "'") == "python_full_version < '3.11'" for _, marker in pinned["contourpy"]), \
        "contourpy must fork for Python 3.10 (1.3.3 needs 3.11)"
