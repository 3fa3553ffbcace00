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
from torch import nn

from . import Checker, Namespace, Wrong, count_parameters, expect, expect_mean_squared_error, expect_optimizer, need
from .training_loop import check_full_batch_run

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
    expect_mean_squared_error(loss_function)
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
    starts = [m for m in (_start["model"], _seeded_start(x)) if m is not None]
    return check_full_batch_run(values, starts, x, y, LR, TOLERANCE, model=model)


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
