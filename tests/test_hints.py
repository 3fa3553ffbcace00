"""Every step's Hint 2, completed where it elides, passes its own check.

The learner notebooks fold two hints under each step's instructions: Hint 1 names the idea or the
API, Hint 2 (inside it) sketches the code. This test takes each Hint 2's code (its fenced block, or
else its inline code spans, one per line), replaces its elisions (``...``, or a comment such as "the
same for the validation part") with the completion kept in the activity's answer file (a
``### step N | hint | ...`` case, see ``tests/answers/README.md``), runs it as the step's cell the way
a learner would (:func:`notebook_steps.run_cases`) and requires every check to pass.
"""

from __future__ import annotations

import re

import nbformat
import pytest
from notebook_steps import Case, answer_file, learner_notebooks, parse_answers, report, run_cases, step_of

LEARNER = learner_notebooks()
FENCED = re.compile(r"```(?:python)?\n(.*?)```", re.DOTALL)
INLINE = re.compile(r"`([^`\n]+)`")
HINT2 = re.compile(r"<summary>Hint 2</summary>(.*?)</details>", re.DOTALL)


def activity_number(learner) -> int:
    return int(re.match(r"activity(\d+)_", learner.name).group(1))


def hint_code(markdown: str) -> str | None:
    """The code of Hint 2 in a step's instructions: its fenced blocks, or else its inline code, one per line."""
    match = HINT2.search(markdown)
    if match is None:
        return None
    fenced = FENCED.findall(match.group(1))
    return "\n".join(block.strip("\n") for block in fenced) if fenced else "\n".join(INLINE.findall(match.group(1)))


def fits(hint: str, completion: str) -> bool:
    """Whether ``completion`` is ``hint`` with each ``...`` filled in (lines may be added around it; blank
    lines and spaces at the ends of lines do not matter)."""
    def lines(text: str) -> str:
        return "\n".join(line.rstrip() for line in text.strip("\n").splitlines() if line.strip())

    parts = re.split(r"\.\.\.(?:[ \t]*#[^\n]*)?", lines(hint))  # an elision, with the comment that describes it
    pattern = ".+?".join(re.escape(part) for part in parts)
    return re.search(pattern, lines(completion), re.DOTALL) is not None


def hints(learner) -> dict[int, str]:
    """Step number -> its Hint 2 code, from the markdown cell just before the step's cell."""
    nb = nbformat.read(learner, as_version=4)
    found = {}
    for index, cell in enumerate(nb.cells):
        number = step_of(cell)
        if number is None:
            continue
        markdown = [c for c in nb.cells[:index] if c.cell_type == "markdown"][-1].source
        code = hint_code(markdown)
        assert code, f"step {number} has no Hint 2 with code"
        found[number] = code
    return found


def test_hint_code_and_fits():
    markdown = ("<details><summary>Hint 1</summary>\n\nA `for` loop.\n\n<details><summary>Hint 2</summary>\n\n"
                "`a = f(..., 2)` and `b = a + 1`\n\n</details>\n</details>")
    assert hint_code(markdown) == "a = f(..., 2)\nb = a + 1"
    assert fits("a = f(..., 2)\nb = a + 1", "import x\na = f(1, 2)\nb = a + 1\nc = 3")
    assert not fits("a = f(..., 2)\nb = a + 1", "a = f(1, 3)\nb = a + 1")
    assert fits("x = 1\n...  # two more lines\ny = 2", "x = 1\nz = 0\nw = 0\ny = 2")
    fenced = "<summary>Hint 2</summary>\n\n```python\nfor i in range(3):\n    ...\n```\n</details>"
    assert hint_code(fenced) == "for i in range(3):\n    ..."


@pytest.mark.parametrize("learner", LEARNER, ids=[p.stem.split("_")[0] for p in LEARNER])
def test_every_hint_passes_its_check(learner):
    path = answer_file(activity_number(learner))
    completions = {c.step: c for c in parse_answers(path.read_text(encoding="utf-8")) if c.expected == "hint"} \
        if path.is_file() else {}
    cases, problems = [], []
    for number, code in hints(learner).items():
        completion = completions.get(number)
        if completion is not None:
            if not fits(code, completion.code):
                problems.append(f"step {number}: the completion (line {completion.line}) is not Hint 2 filled in:\n"
                                f"{code}")
                continue
            code = completion.code
        elif "..." in code:
            problems.append(f"step {number}: Hint 2 elides (`...`); add its completion to {path.name} as "
                            f"`### step {number} | hint | Hint 2 completed`")
            continue
        cases.append(Case(number, "hint", "Hint 2" + (" completed" if completion else ""), code))
    assert not problems, "\n".join(problems)
    outcomes = [o for o in run_cases(learner, cases) if o.case.label != "the solution"]
    assert all(o.right for o in outcomes), report(outcomes)
