"""Checks for Activity 1 (Chapter 1): a single-layer network trained in a hand-written loop.

Each check reads the notebook's variables: ``x`` (100, 5) and ``y`` (100, 1) come from the given
data cell; the learner's steps create ``model`` (step 1), ``loss_function`` and ``optimizer``
(step 2), ``losses`` (step 3) and ``weights`` and ``bias`` (step 4).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import Checker, Namespace, Wrong, count_parameters, expect, expect_optimizer, need

check = Checker("Activity 1")

BOOK_PARAMETERS = 6  # nn.Linear(5, 1): 5 weights and 1 bias
ITERATIONS = 100
LR = 0.01
TOLERANCE = 1e-4  # the learner's losses against the reference run's, iteration by iteration
_start: dict[str, Any] = {"model": None}  # the untrained model, as the checks of steps 1 and 2 last saw it


def _remember_start(ns: Namespace) -> None:
    """Keep a copy of the untrained ``model``, so step 3 can replay the training from the same weights."""
    model = ns.get("model")
    if isinstance(model, nn.Module):
        try:
            _start["model"] = copy.deepcopy(model)
        except Exception:  # a model that cannot be copied: step 3 falls back to the seeded start
            _start["model"] = None


def _seeded_start(x: torch.Tensor) -> nn.Module:
    """The book's model as seed 0 creates it right after drawing ``x`` and ``y`` (the setup and data cells)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        torch.randn(100, 5)
        torch.randint(0, 2, (100, 1))
        model = nn.Sequential(nn.Linear(5, 1), nn.Sigmoid())
    return model.to(x.device)


def _replay(start: nn.Module, x: torch.Tensor, y: torch.Tensor, *, zero_grad: bool = True) -> list[float]:
    """The 100 losses of the activity's loop (Adam, lr 0.01, MSE) from a copy of ``start``, and the loss after
    the last update (101 values)."""
    model = copy.deepcopy(start)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    losses = []
    with torch.enable_grad():
        for _ in range(ITERATIONS):
            loss = F.mse_loss(model(x), y)
            losses.append(loss.item())
            if zero_grad:
                optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        losses.append(F.mse_loss(model(x), y).item())
    return losses


def _data(ns: Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    return need(ns, "x", "run the data cell first"), need(ns, "y", "run the data cell first")


def _model_device(model: nn.Module) -> torch.device | None:
    for parameter in model.parameters():
        return parameter.device
    return None


@check.register(1, "define the model")
def _model(ns: Namespace) -> str:
    model = need(ns, "model", "one nn.Linear(5, 1) followed by nn.Sigmoid(), in an nn.Sequential")
    _remember_start(ns)
    expect(isinstance(model, nn.Module), f"`model` is a {type(model).__name__}, not an nn.Module: "
                                         "build it with nn.Sequential(...)")
    x, _ = _data(ns)
    n = count_parameters(model)
    expect(n > 0, "your model has no trainable parameters: it needs an nn.Linear layer")
    expect(_model_device(model) == x.device,
           f"the model is on {_model_device(model)} but the data is on {x.device}: add .to(device)")
    with torch.no_grad():
        try:
            out = model(x)
        except RuntimeError as err:
            raise Wrong(f"the model cannot take `x` of shape {tuple(x.shape)} ({str(err).splitlines()[0]}): "
                        "its first layer needs 5 inputs, one per column of x") from err
    expect(tuple(out.shape) == (len(x), 1),
           f"the model outputs shape {tuple(out.shape)} for {len(x)} examples; it should be ({len(x)}, 1), "
           "one probability per example: the linear layer needs 1 output")
    expect(n == BOOK_PARAMETERS,
           f"your network has {n} parameters; the book's has {BOOK_PARAMETERS} (5 weights and a bias): "
           "a single layer, nn.Linear(5, 1), with no hidden layer")
    expect(bool(((out > 0) & (out < 1)).all()),
           f"some outputs lie outside (0, 1) (from {out.min().item():.2f} to {out.max().item():.2f}): "
           "end the model with nn.Sigmoid() so every output is a probability")
    return f"a single layer with {n} parameters (5 weights and a bias), outputs in (0, 1) of shape (100, 1)"


@check.register(2, "choose the loss function and the optimiser")
def _loss_and_optimiser(ns: Namespace) -> str:
    loss_function = need(ns, "loss_function", "the mean squared error, nn.MSELoss()")
    optimizer = need(ns, "optimizer", "torch.optim.Adam over model.parameters(), learning rate 0.01")
    model = need(ns, "model", "step 1")
    _remember_start(ns)
    expect(callable(loss_function), f"`loss_function` is a {type(loss_function).__name__}; make it the mean squared "
                                    "error, e.g. nn.MSELoss(), which you call as loss_function(prediction, y)")
    generator = torch.Generator().manual_seed(0)
    prediction, target = torch.rand(8, 1, generator=generator), torch.randint(0, 2, (8, 1), generator=generator).float()
    try:
        value = float(loss_function(prediction, target))
    except Exception as err:
        raise Wrong(f"`loss_function(prediction, y)` failed ({type(err).__name__}: {str(err).splitlines()[0]}): "
                    "it should take the predictions and the labels and return the mean squared error") from err
    mse, squared = F.mse_loss(prediction, target).item(), (prediction - target).pow(2)
    expect(not math.isclose(value, squared.sum().item(), rel_tol=1e-5),
           "`loss_function` sums the squared errors; the mean squared error averages them (nn.MSELoss() with its "
           "default reduction='mean'), so the loss does not grow with the number of examples")
    expect(not math.isclose(value, F.binary_cross_entropy(prediction, target).item(), rel_tol=1e-5),
           "that is binary cross-entropy; this activity, as the book, uses the mean squared error, nn.MSELoss()")
    expect(math.isclose(value, mse, rel_tol=1e-5, abs_tol=1e-7),
           f"`loss_function` gives {value:.4f} where the mean squared error gives {mse:.4f}: use nn.MSELoss()")
    expect_optimizer(optimizer, model, lr=LR, source="the activity")
    return "the mean squared error, and Adam with learning rate 0.01 over the model's parameters"


@check.register(3, "train for 100 iterations")
def _training(ns: Namespace) -> str:
    losses = need(ns, "losses", "a list with the loss of each of the 100 iterations")
    model = need(ns, "model", "step 1")
    need(ns, "loss_function", "step 2")
    x, y = _data(ns)
    expect(isinstance(losses, (list, tuple)), f"`losses` is a {type(losses).__name__}; make it a list of numbers")
    expect(not any(isinstance(v, torch.Tensor) for v in losses),
           "`losses` holds tensors: append loss.item(), the plain number, so the list does not keep "
           "every iteration's computation graph alive")
    expect(len(losses) == ITERATIONS, f"`losses` has {len(losses)} values; train for {ITERATIONS} iterations "
                                      "and append one loss per iteration")
    values = [float(v) for v in losses]
    expect(all(math.isfinite(v) for v in values), "some losses are not finite numbers")
    runs = [_replay(m, x, y) for m in (_start["model"], _seeded_start(x)) if m is not None]
    reference = next((run for run in runs if any(math.isclose(values[0], run[i], abs_tol=TOLERANCE) for i in (0, 1))),
                     None)
    expect(reference is not None,
           f"your first loss {values[0]:.4f} is not what the untrained model scores on all of x and y "
           f"({runs[0][0]:.4f}): in each iteration record loss_function(model(x), y) on all 100 examples. (If you "
           "re-ran earlier cells since checking step 2, run steps 1 to 3 again, in order.)")
    with torch.no_grad():
        now = F.mse_loss(model(x), y).item()
    expect(now <= values[-1] + 1e-3,
           f"`model` scores {now:.4f} on the data but your last recorded loss is {values[-1]:.4f}: "
           "is `model` the network you trained (did you redefine it after the loop)?")
    for shift in (0, 1):  # the loss recorded before each update (as the book) or after it
        if max(abs(a - b) for a, b in zip(values, reference[shift:])) <= TOLERANCE:
            return (f"the loss fell from {values[0]:.4f} to {values[-1]:.4f} over {len(values)} iterations, as in "
                    f"the reference run from the same weights (to {TOLERANCE:g})")
    gaps = [abs(a - b) for a, b in zip(values, reference)]
    first = next(i for i, gap in enumerate(gaps) if gap > TOLERANCE)
    runs = [run for run in (_replay(start, x, y, zero_grad=False) for start in (_start["model"], _seeded_start(x))
                            if start is not None)]
    expect(not any(max(abs(a - b) for a, b in zip(values, run)) <= TOLERANCE for run in runs),
           f"the gradients were never cleared, so each backward() added to the last ones (your final loss "
           f"{values[-1]:.4f}, the reference run's {reference[-2]:.4f}): call optimizer.zero_grad() before "
           "loss.backward() in every iteration")
    raise Wrong(f"from iteration {first + 1} on, your losses differ from the reference run from the same weights "
                f"({values[first]:.4f} where it has {reference[first]:.4f}; final {values[-1]:.4f} against "
                f"{reference[-2]:.4f}): each iteration should predict on all of x, record the loss, then call "
                "zero_grad(), backward() and step(), in that order, once each")


@check.register(4, "read the learned parameters")
def _parameters(ns: Namespace) -> str:
    weights = need(ns, "weights", "the 5 learned weights as a list of floats, from model.state_dict()")
    bias = need(ns, "bias", "the learned bias as a float, from model.state_dict()")
    model = need(ns, "model", "step 1")
    state = model.state_dict()
    weight_keys = [k for k in state if k.endswith("weight")]
    bias_keys = [k for k in state if k.endswith("bias")]
    expect(weight_keys and bias_keys, "the model's state_dict has no weight and bias: is step 1 done?")
    true_w = state[weight_keys[0]].flatten().tolist()
    true_b = state[bias_keys[0]].flatten().tolist()
    if isinstance(weights, (torch.Tensor, np.ndarray)):
        weights = weights.flatten().tolist()
    if isinstance(bias, (torch.Tensor, np.ndarray)):
        expect(bias.size == 1 if isinstance(bias, np.ndarray) else bias.numel() == 1,
               "`bias` holds several values; the layer has one bias")
        bias = bias.item()
    expect(isinstance(weights, (list, tuple)),
           f"`weights` is a {type(weights).__name__}; make it a list of the 5 weights: .flatten().tolist()")
    if len(weights) == 1 and isinstance(weights[0], (list, tuple)):
        raise Wrong("`weights` is a list holding one list (the (1, 5) weight matrix): flatten it first, "
                    "`.flatten().tolist()`, to get the 5 weights")
    expect(len(weights) == 5, f"`weights` has {len(weights)} entries; it should list the 5 weights, one per input")
    expect(all(isinstance(w, (int, float)) for w in weights),
           f"`weights` holds {type(weights[0]).__name__} values; make them plain numbers: .flatten().tolist()")
    expect(isinstance(bias, (int, float)), f"`bias` is a {type(bias).__name__}; make it one number: .item()")
    expect(all(math.isclose(a, b, abs_tol=1e-4) for a, b in zip(weights, true_w)),
           "`weights` differ from the model's current weights: read them, unrounded, from model.state_dict() "
           "after training ('0.weight')")
    expect(math.isclose(float(bias), true_b[0], abs_tol=1e-4),
           f"`bias` is {float(bias):.4f} but the model's bias is {true_b[0]:.4f}: read '0.bias' after training")
    return "weights " + str([round(w, 3) for w in weights]) + f", bias {float(bias):.3f}"
