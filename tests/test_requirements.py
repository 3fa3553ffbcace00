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


def test_requirements_and_environment_agree():
    env_text = (ROOT / "environment.yml").read_text()
    pip_section = [line.strip().lstrip("-").strip() for line in env_text.split("- pip:", 1)[1].splitlines()]
    assert requirements(pip_section) == requirements_txt()
    assert re.search(r"^\s*-\s*python=3\.11", env_text, re.M)
    assert "-e ." in env_text


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
        for node in ast.walk(ast.parse(path.read_text())):
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
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"pip install .*-r requirements\.lock", makefile)
    assert re.search(r"^\$\(STAMP\):.*requirements\.lock", makefile, re.M)
    assert "make setup" in (ROOT / ".ci" / "run").read_text()
