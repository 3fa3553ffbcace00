"""The checks give the right verdict on answers a learner might write (``tests/answers/activityNN.txt``).

Each answer file lists, per coding step, correct answers written differently from the solution and
typical mistakes, with the verdict each must get and, for a mistake, a phrase its message must name
(format: ``tests/answers/README.md``). :func:`notebook_steps.run_cases` runs them the way a learner
would: in the notebook's own kernel (one per activity), after the earlier steps, then the check cell.
"""

from __future__ import annotations

import re

import pytest
from notebook_steps import ANSWERS, Case, learner_of, parse_answers, report, run_cases, solution_of, steps

FILES = sorted(ANSWERS.glob("activity[0-9][0-9].txt"))
MINIMUM = 3  # correct answers, and mistakes, per coding step


def activity_of(path) -> int:
    return int(re.search(r"\d+", path.stem).group())


def test_the_parser_reads_headers_code_and_phrases():
    text = ("# comment before the cases\n\n### step 2 | pass | F.mse_loss as a function\nloss_function = F.mse_loss\n"
            "\n### step 3 | wrong | no zero_grad | Zero_grad\nfor i in range(3):\n    # a comment in the code\n"
            "    pass\n")
    cases = parse_answers(text)
    assert cases == [Case(2, "pass", "F.mse_loss as a function", "loss_function = F.mse_loss\n", "", 3),
                     Case(3, "wrong", "no zero_grad", "for i in range(3):\n    # a comment in the code\n    pass\n",
                          "Zero_grad", 6)]
    for bad in ("### step 2 | wrong | no phrase\nx = 1\n", "### step x | pass | y\nx\n", "code first\n"):
        with pytest.raises(AssertionError):
            parse_answers(bad)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_coding_step_has_enough_answers(path):
    import nbformat

    cases = parse_answers(path.read_text(encoding="utf-8"))
    learner = learner_of(activity_of(path))
    numbers = steps(nbformat.read(solution_of(learner), as_version=4))
    short = []
    for number in numbers:
        right = sum(c.step == number and c.expected == "pass" for c in cases)
        mistakes = sum(c.step == number and c.expected in ("wrong", "todo") for c in cases)
        if right < MINIMUM or mistakes < MINIMUM:
            short.append(f"step {number}: {right} correct, {mistakes} mistakes")
    assert not short, f"fewer than {MINIMUM} correct answers or mistakes: " + "; ".join(short)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_answer_gets_the_expected_verdict(path):
    cases = [c for c in parse_answers(path.read_text(encoding="utf-8")) if c.expected != "hint"]
    outcomes = run_cases(learner_of(activity_of(path)), cases)
    assert all(o.right for o in outcomes), report(outcomes)
