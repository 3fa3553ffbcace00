"""Execute every notebook with nbval (lax mode), one test per notebook, and check what is committed.

In lax mode nbval runs every cell and compares outputs only for cells marked
``# NBVAL_CHECK_OUTPUT``: shapes, counts and the numbers the book states.
Each notebook runs in its own pytest process, so one test = one notebook, with its own timeout.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for folder in ("chapters", "solutions") for p in (ROOT / folder).rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts)
TIMEOUT_S = int(os.environ.get("ADL_NOTEBOOK_TIMEOUT", "600"))
IDS = [str(p.relative_to(ROOT)) for p in NOTEBOOKS]
EXECUTED: dict[Path, float] = {}  # notebook -> time its run started, for the learning check below


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found under chapters/ or solutions/"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=IDS)
def test_notebook_runs_and_checked_outputs_match(notebook: Path):
    env = dict(os.environ)
    mirror = env.get("ADL_DATA_MIRROR")
    if mirror and not Path(mirror).is_absolute():  # the kernel runs in the notebook's folder
        env["ADL_DATA_MIRROR"] = str((ROOT / mirror).resolve())
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    command = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider",
               "-q", "--no-header", f"--nbval-cell-timeout={TIMEOUT_S}", str(notebook)]
    started = time.time()
    try:
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{notebook.name} took longer than {TIMEOUT_S} s")
    EXECUTED[notebook] = started
    report = f"{result.stdout[-8000:]}\n{result.stderr[-2000:]}"
    assert result.returncode == 0, f"nbval failed for {notebook.name}:\n{report}"


def _cells(notebook: Path) -> list[dict]:
    return json.loads(notebook.read_text())["cells"]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=IDS)
def test_committed_notebook_is_clean_and_explained(notebook: Path):
    cells = _cells(notebook)
    first = cells[0]
    assert first["cell_type"] == "markdown" and "".join(first["source"]).lstrip().startswith("# "), \
        "a notebook opens with a markdown title"
    intro = "".join(first["source"]).lower()
    assert "book" in intro, "the opening cell says which book section it follows"
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    assert any("describe_run(" in c for c in code), "the notebook records its mode and device"
    assert not any("sys.path" in c for c in code), "utils is installed; notebooks never touch sys.path"
    markdown = sum(c["cell_type"] == "markdown" for c in cells)
    assert markdown >= 3, "steps are explained in markdown"
    for cell in cells:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", f"stored error output: {output.get('ename')}"
            if output.get("name") == "stderr":
                text = "".join(output.get("text", ""))
                assert "Warning" not in text, f"a warning leaked into the stored outputs:\n{text[:500]}"


RECORD = re.compile(r"record_result\(\s*[\"']([^\"']+)[\"']")


def test_every_training_notebook_run_here_beat_its_trivial_baseline():
    """Each notebook executed above that calls ``record_result`` must have written a fresh record
    whose figure beats its trivial baseline, so a notebook that silently stops learning fails CI."""
    from utils.results import results_dir

    checked = []
    for notebook, started in EXECUTED.items():
        code = "".join("".join(c["source"]) for c in _cells(notebook) if c["cell_type"] == "code")
        for result_id in RECORD.findall(code):
            path = results_dir() / (result_id.replace("/", "__") + ".json")
            assert path.is_file(), f"{notebook.name} did not record {result_id} in {path}"
            assert path.stat().st_mtime >= started - 1, f"{path} is stale: not written by this run"
            record = json.loads(path.read_text())
            value, baseline = record["value"], record["baseline"]
            better = value > baseline if record["higher_is_better"] else value < baseline
            assert better, f"{result_id}: {record['metric']} {value:.4g} does not beat the baseline {baseline:.4g}"
            checked.append(result_id)
    if not checked:
        pytest.skip("no notebook that records results was executed in this session")
