"""Check-your-work cells for the activities.

After each step that a learner codes, the learner notebook runs one line, e.g. ``check.step(3)``.
The check looks at the notebook's variables (the caller's globals), tests what the step should
have produced by its *behaviour and shapes*, not its exact code, and prints one of three verdicts:

* ``✅ Step 3 passed: ...``            what is right, with the measured figures;
* ``⬜ Step 3 is not done yet: ...``    what to define (nothing the step makes exists yet);
* ``❌ Step 3 needs another look: ...`` a specific, useful message about what is wrong.

When a cell has raised (the step's cell crashed, so what it defines is missing or stale), a "not done"
or "needs another look" verdict says so first, in one line, with the known pitfall behind it
(:mod:`utils.checks.crashes`). A check never raises, so an untouched learner notebook still runs top to
bottom, and any correct answer passes, including one that differs from the solution's code.

Each activity has its own small module (``utils.checks.activity04`` ...) that builds a
:class:`Checker` and registers one function per step::

    check = Checker("Activity 4")

    @check.register(3, "define the model")
    def _(ns: Namespace) -> str:
        model = need(ns, "model", "an nn.Module with three hidden layers of 10 units")
        expect(count_parameters(model) == 472, f"your network has {count_parameters(model)} parameters ...")
        return "the network has the book's 472 parameters"
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import crashes

Namespace = Mapping[str, Any]
StepCheck = Callable[[Namespace], str]

PASSED, NOT_DONE, WRONG = "passed", "not done", "wrong"
_MARK = {PASSED: "✅", NOT_DONE: "⬜", WRONG: "❌"}


class NotDone(Exception):
    """Raised by a step check when the step has not been attempted yet; the text says what to define."""


class Wrong(Exception):
    """Raised by a step check when the step's result is wrong; the text says what and, if possible, why."""


@dataclass(frozen=True)
class StepResult:
    """The verdict of one check: ``status`` is ``"passed"``, ``"not done"`` or ``"wrong"``."""

    activity: str
    step: int
    status: str
    message: str

    def __str__(self) -> str:
        verdict = {PASSED: "passed", NOT_DONE: "is not done yet", WRONG: "needs another look"}[self.status]
        return f"{_MARK[self.status]} {self.activity}, step {self.step} {verdict}: {self.message}"

    @property
    def passed(self) -> bool:
        return self.status == PASSED


class Checker:
    """The checks of one activity, one per coding step; call :meth:`step` from the notebook."""

    def __init__(self, activity: str):
        self.activity = activity
        self._checks: dict[int, tuple[str, StepCheck]] = {}

    def register(self, step: int, task: str) -> Callable[[StepCheck], StepCheck]:
        """Decorator: register ``function(namespace) -> message`` as the check of ``step`` (``task`` names it)."""
        def decorate(function: StepCheck) -> StepCheck:
            if step in self._checks:
                raise ValueError(f"{self.activity}: step {step} already has a check")
            self._checks[step] = (task, function)
            return function
        return decorate

    @property
    def steps(self) -> list[int]:
        """The steps that have a check, in order."""
        return sorted(self._checks)

    def run(self, step: int, namespace: Namespace) -> StepResult:
        """Run the check of ``step`` against ``namespace`` and return its verdict (never raises)."""
        if step not in self._checks:
            known = ", ".join(map(str, self.steps))
            return StepResult(self.activity, step, WRONG, f"there is no check for step {step} (checked steps: {known})")
        task, function = self._checks[step]
        try:
            with warnings.catch_warnings():  # the verdict says what is wrong; PyTorch's warnings would repeat it
                warnings.simplefilter("ignore")
                message = function(namespace)
        except NotDone as reason:
            return self._with_crash(StepResult(self.activity, step, NOT_DONE, f"{task}: {reason}"), namespace)
        except Wrong as reason:
            return self._with_crash(StepResult(self.activity, step, WRONG, str(reason)), namespace)
        except Exception as error:  # the learner's code failed inside the check: say so, never crash the notebook
            return StepResult(self.activity, step, WRONG, "running your code for this step raised "
                                                          f"{crashes.explain_error(error, namespace)}")
        crashes.forget()  # the step works now: an older crash is no longer the story
        return StepResult(self.activity, step, PASSED, message)

    @staticmethod
    def _with_crash(result: StepResult, namespace: Namespace) -> StepResult:
        """``result`` with the last crash in front of its message, when a cell raised and has not run cleanly since."""
        try:
            crash = crashes.last_crash()
            if crash is None:
                return result
            cell = crash.first_line()
            where = f"the cell that starts `{cell}`" if cell else "a cell you ran"
            message = f"{where} raised {crashes.explain_error(crash.error, namespace)}. Fix it and run it again; " \
                      f"until then: {result.message}"
        except Exception:  # explaining must never break the verdict
            return result
        return StepResult(result.activity, result.step, result.status, message)

    def step(self, step: int, namespace: Namespace | None = None) -> None:
        """Check ``step`` against the notebook's variables (the caller's globals) and print the verdict.

        Returns nothing, so a check cell shows the verdict once; use :meth:`run` to get it as a value.
        """
        if namespace is None:
            namespace = sys._getframe(1).f_globals
        print(self.run(step, namespace))


# --------------------------------------------------------------------------- helpers for step checks

_MISSING = object()


def need(ns: Namespace, name: str, what: str = "") -> Any:
    """``ns[name]``, or :class:`NotDone` saying to define it (``what`` describes it) when it is absent or ``...``."""
    value = ns.get(name, _MISSING)
    if value is _MISSING or value is None or value is Ellipsis:
        raise NotDone(f"define `{name}`" + (f" ({what})" if what else ""))
    return value


def expect(condition: object, message: str) -> None:
    """Raise :class:`Wrong` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise Wrong(message)


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def expect_optimizer(optimizer: object, model: nn.Module, *, kind: type = torch.optim.Adam, lr: float,
                     source: str = "the book") -> None:
    """Raise :class:`Wrong` unless ``optimizer`` is a ``kind`` with learning rate ``lr`` over exactly ``model``'s
    parameters (``source`` names where the setting comes from, for the message)."""
    expect(isinstance(optimizer, kind), f"`optimizer` is a {type(optimizer).__name__}; {source} uses "
                                        f"`torch.optim.{kind.__name__}(model.parameters(), lr={lr:g})`")
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}  # type: ignore[attr-defined]
    expect(held == {id(p) for p in model.parameters()},
           "the optimiser does not hold this model's parameters (was it created for an earlier `model`?): "
           "create it after the model, from `model.parameters()`, or it updates another network")
    rate = optimizer.param_groups[0]["lr"]  # type: ignore[attr-defined]
    expect(close(rate, lr), f"the learning rate is {rate:g}; {source} uses {lr:g}")


def nll_equivalent(loss_fn: Callable, name: str = "loss_fn") -> str:
    """Check that ``loss_fn(log_probabilities, labels)`` gives NLLLoss's value; return a note for the verdict.

    ``nn.CrossEntropyLoss`` (or ``F.cross_entropy``) on log-probabilities is accepted everywhere: it applies
    log_softmax again, and log_softmax of log-probabilities changes nothing, so its values, gradients and
    training are those of NLLLoss. The note says so; anything else that disagrees raises :class:`Wrong`.
    """
    log_probs = F.log_softmax(torch.randn(8, 3, generator=torch.Generator().manual_seed(1)), dim=1)
    target = torch.tensor([0, 1, 2, 0, 1, 2, 2, 1])
    try:
        value = float(loss_fn(log_probs, target))
    except Exception as err:
        raise Wrong(f"`{name}(log_probabilities, labels)` failed ({type(err).__name__}: {str(err).splitlines()[0]}): "
                    "use `nn.NLLLoss()`, which takes the (N, classes) log-probabilities and (N,) long labels") from err
    expected = float(F.nll_loss(log_probs, target))
    expect(abs(value - expected) < 1e-5, f"`{name}` gives {value:.4f} where NLLLoss gives {expected:.4f}: the network "
                                         "outputs log-probabilities (log_softmax), so the loss is `nn.NLLLoss()`")
    cross_entropy = isinstance(loss_fn, nn.CrossEntropyLoss) or loss_fn is F.cross_entropy
    return (" (CrossEntropyLoss on log-probabilities gives NLLLoss's values, since log_softmax of log-probabilities "
            "changes nothing; NLLLoss skips that redundant step)") if cross_entropy else ""


def expect_mean_squared_error(loss_function: object, name: str = "loss_function", source: str = "the activity") -> None:
    """Raise :class:`Wrong` unless ``loss_function(prediction, target)`` is the mean squared error: nn.MSELoss(),
    F.mse_loss or a hand-written one all pass; a sum, BCE or another loss are named."""
    expect(callable(loss_function), f"`{name}` is a {type(loss_function).__name__}; make it the mean squared error, "
                                    f"e.g. nn.MSELoss(), which you call as {name}(prediction, target)")
    generator = torch.Generator().manual_seed(0)
    prediction, target = torch.rand(8, 1, generator=generator), torch.randint(0, 2, (8, 1), generator=generator).float()
    try:
        value = float(loss_function(prediction, target))  # type: ignore[operator]
    except Exception as err:
        raise Wrong(f"`{name}(prediction, target)` failed ({type(err).__name__}: {str(err).splitlines()[0]}): it "
                    "should take the predictions and the targets and return the mean squared error") from err
    mse, squared = F.mse_loss(prediction, target).item(), (prediction - target).pow(2)
    expect(not close(value, squared.sum().item(), 1e-5),
           f"`{name}` sums the squared errors; the mean squared error averages them (nn.MSELoss() with its "
           "default reduction='mean'), so the loss does not grow with the number of examples")
    expect(not close(value, F.binary_cross_entropy(prediction, target).item(), 1e-5),
           f"that is binary cross-entropy; {source} uses the mean squared error, nn.MSELoss()")
    expect(not close(value, (prediction - target).abs().mean().item(), 1e-5),
           f"that is the mean absolute error (L1); {source} uses the mean squared error, nn.MSELoss()")
    expect(close(value, mse, 1e-5), f"`{name}` gives {value:.4f} where the mean squared error gives {mse:.4f}: "
                                    "use nn.MSELoss()")


def linear_trace(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Run ``model(x)`` in eval mode without gradients and return its output and the (input, output) of every
    ``nn.Linear`` call, in the order they ran (forward hooks, so classes and nn.Sequential alike)."""
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    handles = [m.register_forward_hook(lambda module, inputs, output: calls.append((inputs[0], output)))
               for m in model.modules() if isinstance(m, nn.Linear)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return out, calls


def missing_activations(model: nn.Module, x: torch.Tensor) -> list[int]:
    """The hidden layers (1-based, in the order they run) whose output reaches the next linear layer unchanged,
    that is with no nonlinearity between them (dropout is off, as in eval mode)."""
    _, calls = linear_trace(model, x)
    return [i for i, ((_, out), (nxt, _)) in enumerate(zip(calls, calls[1:]), start=1)
            if out.shape == nxt.shape and torch.allclose(out, nxt)]


def close(a: float, b: float, tolerance: float = 1e-6) -> bool:
    """``|a - b| <= tolerance * max(1, |b|)``."""
    return abs(float(a) - float(b)) <= tolerance * max(1.0, abs(float(b)))


crashes.install()  # inside IPython, remember the last cell that raised, for the verdicts
