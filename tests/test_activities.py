"""The activities are solvable, and their checks are honest.

Every learner activity (``chapters/**/activityNN_*.ipynb``) has a worked solution at the same path
under ``solutions/``. Each coding step of the learner notebook is an empty code cell tagged
``step-N`` (cell metadata ``tags``), followed later by a check cell that calls ``check.step(N)``.
The solution tags the cells that solve step N with the same ``step-N``. Then:

* **untouched:** the learner notebook as committed runs top to bottom, and every check says
  "not done yet";
* **solved:** the learner notebook with each ``step-N`` cell replaced by the solution's ``step-N``
  cells runs in quick mode, and every check passes;
* **explained:** every step has a check, and its instructions fold their hints in ``<details>``.

The wrong answers each check recognises are unit-tested in ``tests/test_checks_*.py``, and answers a learner
might write are run in the notebooks by ``tests/test_answers.py``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from kernel_env import kernel_environment
from notebook_steps import CHECK_CALL, ROOT, TIMEOUT_S, learner_notebooks, solution_of, solved, steps

LEARNER = learner_notebooks()
IDS = [str(p.relative_to(ROOT)) for p in LEARNER]
VERDICT = re.compile(r"^(✅|⬜|❌) .*?, step (\d+) (passed|is not done yet|needs another look)", re.MULTILINE)


def execute(nb, folder: Path):
    """Execute ``nb`` in ``folder`` (as nbval would: this environment, quick mode from the caller)."""
    from nbclient import NotebookClient

    env_backup = dict(os.environ)
    os.environ.update(kernel_environment(env_backup))  # nbclient's kernel inherits this process's environment
    try:
        NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3",
                       resources={"metadata": {"path": str(folder)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(env_backup)
    return nb


def verdicts(nb) -> list[tuple[int, str]]:
    """(step, verdict) for every check printed by the executed notebook, in order."""
    found = []
    for cell in nb.cells:
        if cell.cell_type != "code" or not CHECK_CALL.search(cell.source):
            continue
        text = "".join(out.get("text", "") for out in cell.get("outputs", []) if out.get("output_type") == "stream")
        found += [(int(step), verdict) for _, step, verdict in VERDICT.findall(text)]
    return found


def check_calls(nb) -> list[int]:
    return [int(n) for cell in nb.cells if cell.cell_type == "code" for n in CHECK_CALL.findall(cell.source)]


def test_every_activity_has_a_solution():
    assert LEARNER, "no learner activities found"
    missing = [str(p.relative_to(ROOT)) for p in LEARNER if not solution_of(p).is_file()]
    assert not missing, f"learner activities without a solution: {missing}"


@pytest.mark.parametrize("learner", LEARNER, ids=IDS)
def test_each_step_is_checked_and_its_hints_are_folded(learner: Path):
    nb = nbformat.read(learner, as_version=4)
    learner_steps = steps(nb)
    assert learner_steps, "the learner notebook has no cells tagged step-N"
    solution_steps = steps(nbformat.read(solution_of(learner), as_version=4))
    assert set(learner_steps) == set(solution_steps), \
        f"steps in the learner notebook {sorted(learner_steps)} and in the solution {sorted(solution_steps)} differ"
    checks = check_calls(nb)
    for number, (index, *_) in learner_steps.items():
        assert "".join(nb.cells[index].source).strip().startswith("#"), \
            f"step {number}'s cell in the learner notebook must be empty but for a comment"
        later = [int(n) for cell in nb.cells[index + 1:] if cell.cell_type == "code"
                 for n in CHECK_CALL.findall(cell.source)]
        assert number in later, f"step {number} has no `check.step({number})` after it"
        before = [c for c in nb.cells[:index] if c.cell_type == "markdown"]
        assert before and "<details>" in before[-1].source, \
            f"the instructions of step {number} fold their hints in <details>"
    assert len(checks) == len(set(checks)), f"a step is checked twice: {checks}"


@pytest.mark.parametrize("learner", LEARNER, ids=IDS)
def test_untouched_learner_notebook_runs_and_every_check_says_not_done(learner: Path):
    nb = execute(nbformat.read(learner, as_version=4), learner.parent)
    found = verdicts(nb)
    assert len(found) == len(check_calls(nb)), f"some check cells printed no verdict: {found}"
    wrong = [(step, verdict) for step, verdict in found if verdict != "is not done yet"]
    assert not wrong, f"on the untouched notebook these checks did not say 'not done yet': {wrong}"


@pytest.mark.parametrize("learner", LEARNER, ids=IDS)
def test_learner_notebook_filled_with_the_solution_passes_every_check(learner: Path):
    nb = solved(nbformat.read(learner, as_version=4), nbformat.read(solution_of(learner), as_version=4))
    nb = execute(nb, learner.parent)
    found = verdicts(nb)
    assert len(found) == len(check_calls(nb)), f"some check cells printed no verdict: {found}"
    failed = [(step, verdict) for step, verdict in found if verdict != "passed"]
    messages = [line for cell in nb.cells for out in cell.get("outputs", [])
                for line in out.get("text", "").splitlines() if line.startswith(("❌", "⬜"))]
    assert not failed, f"with the solution's code these checks did not pass: {failed}\n" + "\n".join(messages)
