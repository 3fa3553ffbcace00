"""Checks for Activity 1 (Chapter 1): a single-layer network trained in a hand-written loop.

Each check reads the notebook's variables: ``x`` (100, 5) and ``y`` (100, 1) come from the given
data cell; the learner's steps create ``model`` (step 1), ``loss_function`` and ``optimizer``
(step 2), ``losses`` (step 3) and ``weights`` and ``bias`` (step 4).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import Checker, Namespace, Wrong, count_parameters, expect, expect_optimizer, need

check = Checker("Activity 1")

BOOK_PARAMETERS = 6  # nn.Linear(5, 1): 5 weights and 1 bias
ITERATIONS = 100


def _data(ns: Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    return need(ns, "x", "run the data cell first"), need(ns, "y", "run the data cell first")


def _model_device(model: nn.Module) -> torch.device | None:
    for parameter in model.parameters():
        return parameter.device
    return None


@check.register(1, "define the model")
def _model(ns: Namespace) -> str:
    model = need(ns, "model", "one nn.Linear(5, 1) followed by nn.Sigmoid(), in an nn.Sequential")
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
    expect(isinstance(loss_function, nn.MSELoss),
           f"`loss_function` is {type(loss_function).__name__}; the activity uses the mean squared error, nn.MSELoss()")
    expect_optimizer(optimizer, model, lr=0.01, source="the activity")
    return "MSE loss, and Adam with learning rate 0.01 over the model's parameters"


@check.register(3, "train for 100 iterations")
def _training(ns: Namespace) -> str:
    losses = need(ns, "losses", "a list with the loss of each of the 100 iterations")
    model = need(ns, "model", "step 1")
    loss_function = need(ns, "loss_function", "step 2")
    x, y = _data(ns)
    expect(isinstance(losses, (list, tuple)), f"`losses` is a {type(losses).__name__}; make it a list of numbers")
    expect(not any(isinstance(v, torch.Tensor) for v in losses),
           "`losses` holds tensors: append loss.item(), the plain number, so the list does not keep "
           "every iteration's computation graph alive")
    expect(len(losses) == ITERATIONS, f"`losses` has {len(losses)} values; train for {ITERATIONS} iterations "
                                      "and append one loss per iteration")
    values = [float(v) for v in losses]
    expect(all(math.isfinite(v) for v in values), "some losses are not finite numbers")
    expect(values[-1] < values[0],
           f"the loss did not fall ({values[0]:.4f} -> {values[-1]:.4f}): in each iteration call "
           "optimizer.zero_grad(), loss.backward() and optimizer.step()")
    with torch.no_grad():
        now = loss_function(model(x), y).item()
    expect(now <= values[-1] + 1e-3,
           f"`model` scores {now:.4f} on the data but your last recorded loss is {values[-1]:.4f}: "
           "is `model` the network you trained (did you redefine it after the loop)?")
    expect(values[-1] < 0.25 + 0.02,
           f"the final loss {values[-1]:.4f} is well above 0.25, what always answering 0.5 scores: "
           "are you training on `x` and `y` with the learning rate 0.01?")
    return f"the loss fell from {values[0]:.4f} to {values[-1]:.4f} over {len(values)} iterations"


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
    if isinstance(weights, torch.Tensor):
        weights = weights.flatten().tolist()
    if isinstance(bias, torch.Tensor):
        expect(bias.numel() == 1, f"`bias` has {bias.numel()} values; the layer has one bias")
        bias = bias.item()
    expect(isinstance(weights, (list, tuple)) and len(weights) == 5,
           f"`weights` should list the 5 weights (one per input); it has "
           f"{len(weights) if hasattr(weights, '__len__') else 'no'} entries. Hint: .flatten().tolist()")
    expect(all(math.isclose(a, b, abs_tol=1e-4) for a, b in zip(weights, true_w)),
           "`weights` differ from the model's current weights: read them from model.state_dict() "
           "after training ('0.weight')")
    expect(math.isclose(float(bias), true_b[0], abs_tol=1e-4),
           f"`bias` is {float(bias):.4f} but the model's bias is {true_b[0]:.4f}: read '0.bias' after training")
    return "weights " + str([round(w, 3) for w in weights]) + f", bias {float(bias):.3f}"
