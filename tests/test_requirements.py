"""requirements.txt and environment.yml must list the same packages with the same bounds."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def requirement_lines(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        line = line.split("#")[0].strip().lstrip("-").strip()
        if not line or line.startswith(("e ", "-e", ".", "name:", "channels", "dependencies", "pip")):
            continue
        match = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)", line)
        if match:
            found[match.group(1).lower().replace("_", "-")] = match.group(2).replace(" ", "")
    return found


def test_requirements_and_environment_agree():
    reqs = requirement_lines((ROOT / "requirements.txt").read_text())
    env_text = (ROOT / "environment.yml").read_text()
    pip_section = env_text.split("- pip:", 1)[1]
    env = requirement_lines(pip_section)
    assert reqs == env
    for name in ["torch", "torchvision", "numpy", "pandas", "scikit-learn", "matplotlib", "xlrd", "pillow",
                 "jupyter", "nbval", "pytest", "pooch", "tqdm"]:
        assert name in reqs, name
    assert re.search(r"^\s*-\s*python=3\.11", env_text, re.M)
