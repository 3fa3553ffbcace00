"""Running an activity's steps the way a learner does, for test_activities, test_answers and test_hints.

A learner notebook tags each coding step's empty cell ``step-N`` and checks it later with ``check.step(N)``;
its solution tags the cells that solve step N the same way. :func:`solved` fills the learner notebook with the
solution's cells. :func:`run_cases` goes further: in one kernel per activity, it runs the learner notebook
with the solution's earlier steps, and at each step tries every :class:`Case` (an answer a learner might
write) as the step's cell, runs the check cell, and records the verdict; between cases the notebook's
variables and random state are restored to what they were before the step, so each case starts from the
reference state.

Answer files (``tests/answers/activityNN.txt``, see ``tests/answers/README.md``) hold the cases as data.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kernel_env import kernel_environment

from utils import settings

ROOT = Path(__file__).resolve().parent.parent
ANSWERS = ROOT / "tests" / "answers"
TIMEOUT_S = settings.positive_int("ADL_NOTEBOOK_TIMEOUT", 600)
STEP_TAG = re.compile(r"^step-(\d+)$")
CHECK_CALL = re.compile(r"check\.step\(\s*(\d+)")
VERDICT = re.compile(r"^(✅|⬜|❌) .*?, step (\d+) (passed|is not done yet|needs another look): (.*)$", re.MULTILINE)
VERDICT_NAMES = {"passed": "pass", "is not done yet": "todo", "needs another look": "wrong"}
HEADER = re.compile(r"^### step (\d+) \| (pass|wrong|todo|hint) \| ([^|]+?)(?: \| (.+?))?\s*$")


def learner_notebooks() -> list[Path]:
    return sorted(p for p in (ROOT / "chapters").rglob("activity*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def learner_of(activity: int) -> Path:
    """The learner notebook of Activity ``activity``."""
    found = [p for p in learner_notebooks() if p.name.startswith(f"activity{activity:02d}_")]
    assert len(found) == 1, f"Activity {activity}: learner notebooks {found}"
    return found[0]


def solution_of(learner: Path) -> Path:
    return ROOT / "solutions" / learner.relative_to(ROOT / "chapters")


def step_of(cell) -> int | None:
    for tag in cell.get("metadata", {}).get("tags", []):
        match = STEP_TAG.match(tag)
        if match:
            return int(match.group(1))
    return None


def steps(nb) -> dict[int, list[int]]:
    """Step number -> indices of the cells tagged with it."""
    found: dict[int, list[int]] = {}
    for index, cell in enumerate(nb.cells):
        number = step_of(cell)
        if number is not None:
            found.setdefault(number, []).append(index)
    return found


def solved(learner_nb, solution_nb):
    """The learner notebook with every ``step-N`` cell replaced by the solution's ``step-N`` cells."""
    solution_steps = steps(solution_nb)
    filled = copy.deepcopy(learner_nb)
    cells = []
    for cell in filled.cells:
        number = step_of(cell)
        if number is None:
            cells.append(cell)
            continue
        for index in solution_steps[number]:
            source = copy.deepcopy(solution_nb.cells[index])
            source.outputs, source.execution_count = [], None
            cells.append(source)
    filled.cells = cells
    return filled


# --------------------------------------------------------------------------- answers as data


@dataclass(frozen=True)
class Case:
    """One answer to try as step ``step``'s cell: ``expected`` is "pass", "wrong" or "todo", and ``phrase``
    (for "wrong" and "todo") must appear in the check's message, case-insensitively. "hint" marks the step's
    Hint 2 completed where it elides (``tests/test_hints.py`` runs it; it must pass)."""

    step: int
    expected: str
    label: str
    code: str
    phrase: str = ""
    line: int = 0


def parse_answers(text: str) -> list[Case]:
    """The cases of an answer file: each a header ``### step N | verdict | label [| phrase]`` and its code."""
    cases: list[Case] = []
    header, start, body = None, 0, []

    def close() -> None:
        if header is not None:
            step, expected, label, phrase = header.groups()
            code = "\n".join(body).strip("\n")
            assert code.strip(), f"line {start}: case {label!r} has no code"
            assert expected in ("pass", "hint") or phrase, \
                f"line {start}: a {expected} case needs the phrase its message names"
            cases.append(Case(int(step), expected, label.strip(), code + "\n", (phrase or "").strip(), start))

    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("### "):
            close()
            header, start, body = HEADER.match(line), number, []
            assert header, f"line {number}: not a case header `### step N | pass|wrong|todo | label [| phrase]`"
        elif header is not None:
            body.append(line)
        else:
            assert not line.strip() or line.startswith("#"), f"line {number}: text before the first case header"
    close()
    return cases


def answer_file(activity: int) -> Path:
    return ANSWERS / f"activity{activity:02d}.txt"


# --------------------------------------------------------------------------- one kernel per activity

_HELPERS = r'''
def _adl_snapshot():
    """Copies of the notebook's variables and the random states, to restore before each answer."""
    import copy, random, types
    import numpy, torch
    skip = {"In", "Out", "get_ipython", "exit", "quit", "check"}
    kept, memo = {}, {}
    for name, value in list(globals().items()):
        if name.startswith("_") or name in skip or isinstance(value, (types.ModuleType, types.FunctionType, type)):
            kept[name] = (False, value)
            continue
        try:
            kept[name] = (True, copy.deepcopy(value, memo))
        except Exception:
            kept[name] = (False, value)
    states = (torch.get_rng_state(), numpy.random.get_state(), random.getstate(),
              torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)
    return kept, states


def _adl_restore(snapshot):
    import copy, random
    import matplotlib.pyplot
    import numpy, torch
    from utils.checks import crashes
    kept, states = snapshot
    for name in [n for n in globals() if not n.startswith("_") and n not in kept]:
        del globals()[name]
    memo = {}
    for name, (copied, value) in kept.items():
        globals()[name] = copy.deepcopy(value, memo) if copied else value
    torch.set_rng_state(states[0]); numpy.random.set_state(states[1]); random.setstate(states[2])
    if states[3] is not None:
        torch.cuda.set_rng_state_all(states[3])
    matplotlib.pyplot.close("all")
    crashes.forget()
'''


@dataclass
class Ran:
    """What running one piece of code in the kernel printed, and the exception it raised, if any."""

    output: str
    error: str = ""


class Kernel:
    """A Python kernel started in ``folder`` with the notebook tests' environment; run code cell by cell."""

    def __init__(self, folder: Path):
        from jupyter_client.manager import start_new_kernel

        env = kernel_environment(os.environ)
        # one thread: the answers are small, and threads that spin on a shared machine (or beside another
        # pytest-xdist worker) make them many times slower
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.manager, self.client = start_new_kernel(kernel_name="python3", cwd=str(folder), env=env)

    def run(self, code: str, timeout: float = TIMEOUT_S) -> Ran:
        texts: list[str] = []
        errors: list[str] = []

        def hook(msg: dict) -> None:
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                texts.append(content["text"])
            elif kind in ("execute_result", "display_data"):
                texts.append(content.get("data", {}).get("text/plain", "") + "\n")
            elif kind == "error":
                errors.append(f"{content['ename']}: {content['evalue']}")

        self.client.execute_interactive(code, timeout=timeout, output_hook=hook)
        return Ran("".join(texts), errors[0] if errors else "")

    def must(self, code: str, what: str) -> Ran:
        ran = self.run(code)
        assert not ran.error, f"{what} raised {ran.error}\n--- code:\n{code}"
        return ran

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def verdict_of(output: str, step: int) -> tuple[str, str]:
    """("pass" | "todo" | "wrong", message) from a check cell's output, or ("none", output) without a verdict."""
    for _, number, verdict, message in VERDICT.findall(output):
        if int(number) == step:
            return VERDICT_NAMES[verdict], message
    return "none", output.strip()[-300:]


@dataclass
class Outcome:
    case: Case
    got: str
    message: str
    error: str = ""

    @property
    def right(self) -> bool:
        expected = "pass" if self.case.expected == "hint" else self.case.expected
        return self.got == expected and self.case.phrase.lower() in self.message.lower()

    def __str__(self) -> str:
        crash = f" [the answer raised {self.error}]" if self.error else ""
        want = self.case.expected + (f" naming {self.case.phrase!r}" if self.case.phrase else "")
        return (f"step {self.case.step} {self.case.label!r} (line {self.case.line}): expected {want}, "
                f"got {self.got}: {self.message}{crash}")


@dataclass
class _Step:
    """One step of the notebook: its number, the given cells between its cell and its check, and the check."""

    kernel: Kernel
    number: int
    between: list[str]
    check: str

    def attempt(self, case: Case, sources: list[str]) -> Outcome:
        """Restore the state before the step, run ``sources`` as its cell, then the cells up to its check."""
        self.kernel.must("_adl_restore(_adl_before)", f"restoring the state before step {self.number}")
        error = ""
        for source in sources:
            error = error or self.kernel.run(source).error
        for source in self.between:
            self.kernel.run(source)
        got, message = verdict_of(self.kernel.run(self.check).output, self.number)
        return Outcome(case, got, message, error)


def run_cases(learner: Path, cases: Iterable[Case]) -> list[Outcome]:
    """Run the learner notebook with the solution's steps and try every case at its step (see the module text).

    The reference solution of every step is checked too, and reported as a case labelled "the solution".
    """
    import nbformat

    learner_nb = nbformat.read(learner, as_version=4)
    solution_nb = nbformat.read(solution_of(learner), as_version=4)
    solution_steps = steps(solution_nb)
    by_step: dict[int, list[Case]] = {}
    for case in cases:
        by_step.setdefault(case.step, []).append(case)
    unknown = set(by_step) - set(solution_steps)
    assert not unknown, f"cases for steps the notebook does not have: {sorted(unknown)}"
    code = [c for c in learner_nb.cells if c.cell_type == "code"]
    outcomes: list[Outcome] = []
    kernel = Kernel(learner.parent)
    try:
        kernel.must(_HELPERS, "the test helpers")
        index = 0
        while index < len(code):
            cell = code[index]
            number = step_of(cell)
            if number is None:
                kernel.must(cell.source, f"given cell {index}")
                index += 1
                continue
            checker = next(i for i in range(index + 1, len(code))
                           if number in map(int, CHECK_CALL.findall(code[i].source)))
            step = _Step(kernel, number, [c.source for c in code[index + 1:checker]], code[checker].source)
            reference = [solution_nb.cells[i].source for i in solution_steps[number]]
            kernel.must("_adl_before = _adl_snapshot()", f"the snapshot before step {number}")
            for case in by_step.get(number, []):
                outcomes.append(step.attempt(case, [case.code]))
            outcomes.append(step.attempt(Case(number, "pass", "the solution", "\n\n".join(reference)), reference))
            kernel.run("del _adl_before")
            index = checker + 1
    finally:
        kernel.close()
    return outcomes


def report(outcomes: list[Outcome]) -> str:
    """Every outcome whose verdict or phrase is not the expected one, one per line."""
    wrong = [str(o) for o in outcomes if not o.right]
    return f"{len(wrong)} of {len(outcomes)} verdicts differ from the expected ones:\n" + "\n".join(wrong)
