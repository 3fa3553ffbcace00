"""Execute every notebook with nbval (lax mode), one test per notebook, and check what is committed.

Every notebook but the learner activities (``tests/test_activities.py`` runs those, untouched and
solved) is executed; each execution test then checks the notebook's ``record_result`` figures
(fresh, and better than the trivial baseline). The hygiene test covers every committed notebook.

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
from kernel_env import kernel_environment

from utils import settings

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for folder in ("chapters", "solutions") for p in (ROOT / folder).rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts)
IDS = [str(p.relative_to(ROOT)) for p in NOTEBOOKS]
# Learner activities (chapters/**/activity*.ipynb) are executed by tests/test_activities.py, untouched
# and solved; nbval runs everything else.
LEARNER_ACTIVITIES = {p for p in NOTEBOOKS if p.is_relative_to(ROOT / "chapters") and p.name.startswith("activity")}
EXECUTED_BY_NBVAL = [p for p in NOTEBOOKS if p not in LEARNER_ACTIVITIES]
TIMEOUT_S = settings.positive_int("ADL_NOTEBOOK_TIMEOUT", 600)
CHECKED: dict[str, list[str]] = {}  # notebook -> result ids whose learning check passed in this session


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found under chapters/ or solutions/"


@pytest.mark.parametrize("notebook", EXECUTED_BY_NBVAL, ids=[str(p.relative_to(ROOT)) for p in EXECUTED_BY_NBVAL])
def test_notebook_runs_and_checked_outputs_match(notebook: Path):
    env = kernel_environment(os.environ)
    command = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider",
               "-q", "--no-header", "--tb=short", f"--nbval-cell-timeout={TIMEOUT_S}", str(notebook)]
    started = time.time()
    try:
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{notebook.name} took longer than {TIMEOUT_S} s")
    report = f"{result.stdout[-8000:]}\n{result.stderr[-2000:]}"
    assert result.returncode == 0, f"nbval failed for {notebook.name}:\n{report}"
    CHECKED[str(notebook.relative_to(ROOT))] = check_learning(notebook, started)


def check_learning(notebook: Path, started: float) -> list[str]:
    """Every ``record_result`` id of ``notebook`` has a record written by this run that beats its trivial
    baseline (the practitioner baseline is reported, not checked); returns the ids checked."""
    from utils.results import results_dir

    code = "".join("".join(c["source"]) for c in _cells(notebook) if c["cell_type"] == "code")
    checked = []
    for result_id in RECORD.findall(code):
        path = results_dir() / (result_id.replace("/", "__") + ".json")
        assert path.is_file(), f"{notebook.name} ran but did not record {result_id} (no {path})"
        assert path.stat().st_mtime >= started - 1, f"{path} is stale: {notebook.name} ran but did not rewrite it"
        record = json.loads(path.read_text())
        value, baseline = record["value"], record["baseline"]
        better = value > baseline if record["higher_is_better"] else value < baseline
        assert better, f"{result_id}: {record['metric']} {value:.4g} does not beat the trivial baseline {baseline:.4g}"
        checked.append(result_id)
    return checked


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
    """Summary of the learning checks above (each notebook's own test fails if its records are missing,
    stale or do not beat the trivial baseline), so a notebook that silently stops learning fails CI."""
    if not CHECKED:
        pytest.skip("no notebook was executed in this session, so no learning check ran "
                    "(select notebooks, e.g. -k activity07, to run them and their checks)")
    ids = [result_id for found in CHECKED.values() for result_id in found]
    print(f"{len(CHECKED)} notebooks executed; {len(ids)} recorded results beat their trivial baseline: "
          f"{', '.join(ids) or 'none recorded'}")
