"""Checking a hand-written training loop against :func:`utils.fit`, the loop it packages.

The first activity of Chapters 3, 4 and 6 has the learner write the mini-batch loop by hand as a
function with this signature (any body that behaves the same passes)::

    def train(model, train_loader, val_loader, loss_fn, optimizer, epochs, device):
        ...
        return train_losses, val_losses      # one mean loss per epoch, each a list of floats

:func:`check_training_loop` runs that function on a tiny problem with dropout, watching every
forward pass and optimizer call, and compares its losses with :func:`utils.fit` from the same seed.
:func:`compare_with_fit` does the same comparison on the activity's real data, for the solution's
"the loop you just wrote, packaged" cell.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ..runtime import seed_everything
from ..training import History, fit
from . import Wrong, close, expect

TrainFunction = Callable[..., Any]


class _Watched:
    """A loader wrapper that records which phase (train or validation) is being iterated.

    Everything else (``.dataset``, ``.batch_size``, ``len()``, ``.sampler``...) is the wrapped loader's, so a
    loop that reads them behaves as it would on the real DataLoader.
    """

    def __init__(self, loader: Iterable, phase: str, state: dict):
        self.loader, self.phase, self.state = loader, phase, state

    def __iter__(self) -> Iterator:
        self.state["passes"][self.phase] += 1
        previous = self.state["phase"]
        self.state["phase"] = self.phase
        try:
            yield from self.loader
        finally:
            self.state["phase"] = previous

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:  # only called for what the wrapper itself does not have
        if name in ("loader", "phase", "state"):
            raise AttributeError(name)
        return getattr(self.loader, name)

    def __repr__(self) -> str:
        return repr(self.loader)


def watch_optimizer(optimizer: torch.optim.Optimizer, model: nn.Module) -> dict[str, Any]:
    """Watch a training loop through hooks, leaving ``optimizer`` and ``model`` the real objects.

    Returns a dict that fills up as the loop runs: ``step`` counts ``optimizer.step()`` calls, ``norms`` the
    gradient norm at each, ``zero_grad`` the steps whose gradients were fresh (reset by any means:
    ``optimizer.zero_grad()``, ``model.zero_grad()``, ``set_to_none=False``, ``p.grad = None``) and ``stale``
    the backward passes that added to gradients left by an earlier batch. :func:`unwatch` removes the hooks.
    """
    calls: dict[str, Any] = {"step": 0, "zero_grad": 0, "stale": 0, "norms": [], "handles": []}
    flags = {"stale": False}
    parameters = [p for p in model.parameters() if p.requires_grad]

    def before_step(*_: Any) -> None:
        grads = [p.grad.norm() for p in parameters if p.grad is not None]
        calls["norms"].append(float(torch.linalg.vector_norm(torch.stack(grads))) if grads else 0.0)
        calls["step"] += 1
        calls["zero_grad"] += 0 if flags["stale"] else 1
        flags["stale"] = False

    def incoming(parameter: torch.Tensor) -> Callable[[torch.Tensor], None]:
        def hook(_: torch.Tensor) -> None:  # runs before the new gradient is added to parameter.grad
            old = parameter.grad
            if old is not None and bool(old.detach().ne(0).any()):
                if not flags["stale"]:
                    calls["stale"] += 1
                flags["stale"] = True
        return hook

    calls["handles"].append(optimizer.register_step_pre_hook(before_step))
    calls["handles"] += [p.register_hook(incoming(p)) for p in parameters]
    return calls


def unwatch(calls: dict[str, Any]) -> None:
    """Remove the hooks :func:`watch_optimizer` added."""
    for handle in calls.get("handles", []):
        handle.remove()
    calls["handles"] = []


def _tiny_problem(seed: int = 0) -> tuple[DataLoader, DataLoader]:
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(96, 8, generator=generator)
    y = (X[:, 0] + X[:, 1] > 0).long() + (X[:, 2] > 1).long()
    train = DataLoader(TensorDataset(X[:64], y[:64]), batch_size=16)  # equal batches: any averaging agrees
    val = DataLoader(TensorDataset(X[64:], y[64:]), batch_size=16)
    return train, val


def _tiny_model() -> nn.Module:
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3), nn.LogSoftmax(dim=1))


def losses_of(returned: Any, epochs: int) -> tuple[list[float], list[float]]:
    """The (train, validation) per-epoch losses from what a loop returned: a pair of lists or a History."""
    if isinstance(returned, History):
        train, val = returned.train_loss, returned.val_loss
    elif isinstance(returned, dict) and {"train_loss", "val_loss"} <= returned.keys():
        train, val = returned["train_loss"], returned["val_loss"]
    elif isinstance(returned, (tuple, list)) and len(returned) >= 2:
        train, val = returned[0], returned[1]
    else:
        raise Wrong(f"`train` returned {type(returned).__name__}; return two lists: "
                    "`train_losses, val_losses`, one mean loss per epoch each")
    try:
        train, val = [float(v) for v in train], [float(v) for v in val]
    except (TypeError, ValueError) as err:
        raise Wrong(f"the losses `train` returned are not numbers ({err}): append `loss.item()`-based "
                    "floats, not tensors with gradients") from err
    expect(len(train) == epochs and len(val) == epochs,
           f"`train` returned {len(train)} training and {len(val)} validation losses for {epochs} epochs: "
           "append one mean loss per epoch to each list")
    return train, val


def check_training_loop(train_fn: TrainFunction, epochs: int = 3, lr: float = 0.01) -> str:
    """Verify a hand-written ``train`` function; return a success message or raise :class:`Wrong`."""
    expect(callable(train_fn), "`train` must be a function: `def train(model, train_loader, val_loader, "
                               "loss_fn, optimizer, epochs, device): ...`")
    device = torch.device("cpu")
    train_loader, val_loader = _tiny_problem()
    state: dict[str, Any] = {"phase": None, "passes": {"train": 0, "val": 0}, "forwards": []}

    seed_everything(0)
    model = _tiny_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    calls = watch_optimizer(optimizer, model)
    model.register_forward_hook(lambda module, inputs, output: state["forwards"].append(
        (state["phase"], module.training, torch.is_grad_enabled())))
    try:
        returned = train_fn(model, _Watched(train_loader, "train", state), _Watched(val_loader, "val", state),
                            nn.NLLLoss(), optimizer, epochs, device)
    finally:
        unwatch(calls)
    train_losses, val_losses = losses_of(returned, epochs)

    forwards = state["forwards"]
    expect(state["passes"]["train"] == epochs,
           f"the loop went over the training loader {state['passes']['train']} times for {epochs} epochs: "
           "one pass per epoch")
    expect(state["passes"]["val"] == epochs,
           f"the loop went over the validation loader {state['passes']['val']} times for {epochs} epochs: "
           "measure the validation loss once at the end of every epoch")
    expect(not any(phase == "train" and not training for phase, training, _ in forwards),
           "a training batch ran with the model in eval mode (dropout off): call `model.train()` at the start "
           "of every epoch, since the validation pass leaves the model in eval mode")
    expect(not any(phase == "val" and training for phase, training, _ in forwards),
           "the validation loss was computed with dropout active: call `model.eval()` before the validation pass")
    batches = epochs * len(train_loader)
    val_batches = epochs * len(val_loader)
    # Steps first: a validation pass that updates the weights also builds a graph, and that is not its real fault.
    expect(calls["step"] != batches + val_batches or val_batches == 0,
           f"`optimizer.step()` ran {calls['step']} times: once for each of the {batches} training batches and "
           f"once for each of the {val_batches} validation batches, so the validation pass trains the model: "
           "call `backward()` and `optimizer.step()` only in the training loop")
    expect(calls["step"] == batches,
           f"`optimizer.step()` ran {calls['step']} times for {batches} training batches: once per batch")
    expect(not any(phase == "val" and grad for phase, _, grad in forwards),
           "the validation pass built a gradient graph: wrap it in `with torch.no_grad():` "
           "(it is faster and uses less memory)")
    expect(calls["stale"] == 0,
           f"in {calls['stale']} of {batches} batches, `backward()` added the new gradients to those of the batch "
           "before (PyTorch accumulates them): call `optimizer.zero_grad()` before every `loss.backward()`")

    seed_everything(0)
    reference_model = _tiny_model()
    reference = fit(reference_model, train_loader, nn.NLLLoss(), torch.optim.Adam(reference_model.parameters(), lr=lr),
                    epochs, val_batches=val_loader, device=device, progress=False)
    for name, mine, theirs in (("training", train_losses, reference.train_loss),
                               ("validation", val_losses, reference.val_loss)):
        for epoch, (a, b) in enumerate(zip(mine, theirs), start=1):
            expect(close(a, b), f"epoch {epoch}'s {name} loss is {a:.6f}, but the reference loop gives {b:.6f}: "
                                "each epoch's figure is the mean of its batch losses (`loss.item()`), "
                                "and the validation pass must not update the model")
    return (f"your loop matches utils.fit to 1e-6 on a test problem ({epochs} epochs, dropout on while training "
            "and off while validating)")


def full_batch_losses(start: nn.Module, x: torch.Tensor, target: torch.Tensor, iterations: int, lr: float,
                      *, zero_grad: bool = True) -> list[float]:
    """The losses of the book's full-batch loop (Adam, MSE) from a copy of ``start``: one per iteration, recorded
    before its update, and the loss after the last update (``iterations + 1`` values)."""
    model = copy.deepcopy(start)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    with torch.enable_grad():
        for _ in range(iterations):
            loss = F.mse_loss(model(x), target)
            losses.append(loss.item())
            if zero_grad:
                optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            losses.append(F.mse_loss(model(x), target).item())
    return losses


def check_full_batch_run(values: list[float], starts: list[nn.Module], x: torch.Tensor, target: torch.Tensor,
                         lr: float, tolerance: float = 1e-4, inputs: str = "x", targets: str = "y",
                         model: nn.Module | None = None) -> str:
    """Compare a learner's per-iteration losses with the reference run (:func:`full_batch_losses`) from the
    untrained model, the first of ``starts`` whose loss is the learner's first; return a success message or
    raise :class:`Wrong` naming the cause (gradients never cleared, another first loss, a loop that differs).

    The loss may be recorded before each update (as the book) or after it. With ``model``, the learner's
    network must score (about) the last recorded loss, or it is not the network that was trained.
    """
    iterations = len(values)
    runs = [full_batch_losses(start, x, target, iterations, lr) for start in starts]
    reference = next((run for run in runs if any(abs(values[0] - run[i]) <= tolerance for i in (0, 1))), None)
    expect(reference is not None,
           f"your first loss {values[0]:.4f} is not what the untrained model scores on all of {inputs} against "
           f"{targets} ({runs[0][0]:.4f}): in each iteration record the loss of model({inputs}) on all the examples. "
           "(If you re-ran earlier cells since checking the model, run the steps from the model on again, in order.)")
    if model is not None:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            now = F.mse_loss(model(x), target).item()
        model.train(was_training)
        expect(now <= values[-1] + 1e-3 + 0.05 * abs(values[-1]),
               f"`model` scores {now:.4f} on {inputs} but your last recorded loss is {values[-1]:.4f}: is `model` the "
               "network you trained (did you redefine it after the loop)?")
    for shift in (0, 1):
        if max(abs(a - b) for a, b in zip(values, reference[shift:])) <= tolerance:
            return (f"the loss fell from {values[0]:.4f} to {values[-1]:.4f} over {iterations} iterations, as in "
                    f"the reference run from the same weights (to {tolerance:g})")
    first = next(i for i, (a, b) in enumerate(zip(values, reference)) if abs(a - b) > tolerance)
    for start in starts:
        accumulated = full_batch_losses(start, x, target, iterations, lr, zero_grad=False)
        expect(max(abs(a - b) for a, b in zip(values, accumulated)) > tolerance,
               f"the gradients were never cleared, so each backward() added to the last ones (your final loss "
               f"{values[-1]:.4f}, the reference run's {reference[-2]:.4f}): call optimizer.zero_grad() before "
               "loss.backward() in every iteration")
    raise Wrong(f"from iteration {first + 1} on, your losses differ from the reference run from the same weights "
                f"({values[first]:.4f} where it has {reference[first]:.4f}; final {values[-1]:.4f} against "
                f"{reference[-2]:.4f}): each iteration should predict on all of {inputs}, record the loss, then call "
                "zero_grad(), backward() and step(), in that order, once each")


def compare_with_fit(train_fn: TrainFunction, make_model: Callable[[], nn.Module],
                     make_optimizer: Callable[[nn.Module], torch.optim.Optimizer], train_loader: Iterable,
                     val_loader: Iterable, loss_fn: Callable, epochs: int, device: torch.device,
                     seed: int = 0, tolerance: float = 1e-6) -> bool:
    """Train twice from the same seed, once with ``train_fn`` and once with :func:`utils.fit`; print and
    return whether every per-epoch loss agrees within ``tolerance``.

    ``make_model`` and ``make_optimizer`` build fresh objects, so both runs start from the same weights.
    Loaders that shuffle must draw from the global RNG or a ``generator`` (which is reseeded here).
    """
    def reseed() -> None:
        seed_everything(seed)
        for loader in (train_loader, val_loader):
            generator = getattr(loader, "generator", None)
            if isinstance(generator, torch.Generator):
                generator.manual_seed(seed)

    quiet = io.StringIO()  # progress bars of either loop would make this cell's output vary from run to run
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        reseed()
        model = make_model().to(device)
        mine = losses_of(train_fn(model, train_loader, val_loader, loss_fn, make_optimizer(model), epochs, device),
                         epochs)
        reseed()
        model = make_model().to(device)
        history = fit(model, train_loader, loss_fn, make_optimizer(model), epochs, val_batches=val_loader,
                      device=device, progress=False)
    gap = max(abs(a - b) for ours, ref in zip(mine, (history.train_loss, history.val_loss)) for a, b in zip(ours, ref))
    same = gap <= tolerance
    print(f"hand-written loop and utils.fit agree to {tolerance:g} on every epoch's loss: {same}")
    return same
