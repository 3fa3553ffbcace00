"""Checks for Activity 3 (Chapter 2): a regression network that predicts a song's release year.

The given cells provide ``x_fit, years_fit`` (training songs), ``x_check, years_check``
(validation songs) and ``x_test, years_test`` (test songs): float tensors on ``device``, the
years as columns (N, 1). The learner's steps create ``mean_year`` and ``baseline_mae`` (step 1),
``to_z`` and ``to_years`` (step 2), ``model`` (step 3), ``loss_function`` and ``optimizer``
(step 4), ``losses`` (step 5) and ``predicted_years`` and ``mae`` (step 6).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from . import (
    Checker,
    Namespace,
    Wrong,
    close,
    count_parameters,
    expect,
    expect_mean_squared_error,
    expect_optimizer,
    linear_trace,
    missing_activations,
    need,
)
from .training_loop import check_full_batch_run

check = Checker("Activity 3")

TOLERANCE = 1e-4
_start: dict[str, Any] = {"model": None}  # the untrained model, as the checks of steps 3 and 4 last saw it
BOOK_SIZES = (90, 10, 7, 5, 1)
BOOK_PARAMETERS = sum(a * b + b for a, b in zip(BOOK_SIZES, BOOK_SIZES[1:]))  # 1,033
ITERATIONS = 100


def _seeded_start(x: torch.Tensor) -> nn.Module:
    """The code bundle's network as `torch.manual_seed(0)` creates it (the step asks to seed first)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        layers: list[nn.Module] = []
        for a, b in zip(BOOK_SIZES, BOOK_SIZES[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        model = nn.Sequential(*layers[:-1])
    return model.to(x.device)


def _given(ns: Namespace, name: str) -> torch.Tensor:
    return need(ns, name, "run the cells that prepare the tensors first")


def _number(value: object, name: str) -> float:
    if isinstance(value, torch.Tensor):
        expect(value.numel() == 1, f"`{name}` has {value.numel()} values; it should be one number")
        return value.item()
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as err:
        raise Wrong(f"`{name}` is a {type(value).__name__}, not a number") from err


@check.register(1, "measure the baseline")
def _baseline(ns: Namespace) -> str:
    mean_year = _number(need(ns, "mean_year", "the mean year of the training songs"), "mean_year")
    baseline_mae = _number(need(ns, "baseline_mae", "the test MAE of always predicting mean_year"), "baseline_mae")
    years_fit, years_test = _given(ns, "years_fit"), _given(ns, "years_test")
    truth = years_fit.mean().item()
    expect(not (close(mean_year, years_test.mean().item(), 1e-5) and not close(mean_year, truth, 1e-5)),
           "`mean_year` is the mean of the test songs: a baseline, like a model, may only learn from the "
           "training songs (years_fit)")
    expect(close(mean_year, truth, 1e-5),
           f"`mean_year` is {mean_year:.2f}; the training songs' mean year is {truth:.2f}")
    errors = years_test - truth
    mae = errors.abs().mean().item()
    expect(not (close(baseline_mae, errors.pow(2).mean().sqrt().item(), 1e-4) and not close(baseline_mae, mae, 1e-4)),
           "that is the root mean squared error; the MAE is the mean of the absolute errors")
    expect(not close(baseline_mae, (years_fit - truth).abs().mean().item(), 1e-4) or close(baseline_mae, mae, 1e-4),
           "that MAE was measured on the training songs; measure it on the test songs (years_test)")
    expect(close(baseline_mae, mae, 1e-4), f"`baseline_mae` is {baseline_mae:.3f}; always answering "
                                           f"{truth:.1f} is off by {mae:.3f} years on average on the test songs")
    return f"always answering {truth:.1f} is off by {mae:.2f} years on average: the number to beat"


@check.register(2, "scale the target")
def _scale(ns: Namespace) -> str:
    to_z = need(ns, "to_z", "a function: years -> standardised years")
    to_years = need(ns, "to_years", "a function: standardised years -> years")
    expect(callable(to_z) and callable(to_years), "`to_z` and `to_years` should be functions (def ...)")
    years_fit, years_test = _given(ns, "years_fit"), _given(ns, "years_test")
    z = to_z(years_fit)
    expect(isinstance(z, torch.Tensor) and z.shape == years_fit.shape,
           f"to_z(years_fit) should be a tensor of shape {tuple(years_fit.shape)}")
    mean, std = z.mean().item(), z.std().item()
    if not (abs(mean) < 1e-3 and abs(std - 1) < 1e-2):
        z_test = to_z(years_test)
        expect(not (abs(z_test.mean().item()) < 1e-3 and abs(z_test.std().item() - 1) < 1e-2),
               "to_z gives the test songs mean 0 and standard deviation 1: it uses the test songs' statistics; "
               "compute the mean and standard deviation on the training songs (years_fit) only")
    expect(abs(mean) < 1e-3 and abs(std - 1) < 1e-2,
           f"to_z(years_fit) has mean {mean:.3f} and standard deviation {std:.3f}; it should have 0 and 1: "
           "subtract the training songs' mean year and divide by their standard deviation")
    back = to_years(to_z(years_test))
    expect(isinstance(back, torch.Tensor) and back.shape == years_test.shape
           and torch.allclose(back, years_test, atol=1e-2),
           "to_years(to_z(years)) does not give the years back: undo the scaling, years = z * std + mean")
    return f"to_z gives the training years mean 0 and standard deviation 1 ({years_fit.std().item():.2f} years)"


@check.register(3, "define the model")
def _model(ns: Namespace) -> str:
    model = need(ns, "model", "the code bundle's network: 90 -> 10 -> 7 -> 5 -> 1 with ReLU")
    expect(isinstance(model, nn.Module), f"`model` is a {type(model).__name__}, not an nn.Module")
    x_fit = _given(ns, "x_fit")
    devices = {p.device for p in model.parameters()}
    expect(devices == {x_fit.device}, f"the model is on {devices or 'no device'} but the data is on "
                                      f"{x_fit.device}: add .to(device)")
    try:
        with torch.no_grad():
            out = model(x_fit[:4])
    except RuntimeError as err:
        raise Wrong(f"the model cannot take the 90 features ({str(err).splitlines()[0]}): its first layer "
                    "needs 90 inputs") from err
    expect(tuple(out.shape) == (4, 1), f"for 4 songs the model outputs shape {tuple(out.shape)}; it should be "
                                       "(4, 1), one year per song: the last layer needs 1 output")
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    sizes = tuple([linears[0].in_features] + [m.out_features for m in linears]) if linears else ()
    n = count_parameters(model)
    expect(n == BOOK_PARAMETERS,
           f"your network has {n:,} parameters (layer sizes {' -> '.join(map(str, sizes))}); the book's code "
           f"bundle's has {BOOK_PARAMETERS:,}: did you make three hidden layers of 10, 7 and 5 units?")
    probe = torch.randn(64, x_fit.shape[1], generator=torch.Generator().manual_seed(0)).to(x_fit.device) * 3
    out, calls = linear_trace(model, probe)
    missing = missing_activations(model, probe)
    expect(not missing, f"hidden layer{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} of "
                        f"{len(calls) - 1} pass{'' if len(missing) > 1 else 'es'} its output to the next layer "
                        "unchanged: put an nn.ReLU() after each hidden layer, otherwise consecutive linear layers "
                        "collapse into one linear function")
    expect(torch.allclose(out, calls[-1][1]),
           "the output layer's result is changed before it is returned (an activation after the last layer?): "
           "the standardised year can be any number, negative included, so return the last nn.Linear's output as it is")
    _start["model"] = copy.deepcopy(model)
    return f"the code bundle's {' -> '.join(map(str, sizes))} network with {n:,} parameters"


@check.register(4, "choose the loss function and the optimiser")
def _loss_and_optimiser(ns: Namespace) -> str:
    loss_function = need(ns, "loss_function", "the mean squared error, nn.MSELoss()")
    optimizer = need(ns, "optimizer", "torch.optim.Adam over model.parameters(), learning rate 0.01")
    model = need(ns, "model", "step 3")
    expect_mean_squared_error(loss_function, source="the book")
    expect_optimizer(optimizer, model, lr=0.01)
    _start["model"] = copy.deepcopy(model)
    return "MSE loss, and Adam with learning rate 0.01 over the model's parameters"


@check.register(5, "train on the scaled years")
def _training(ns: Namespace) -> str:
    losses = need(ns, "losses", "the training loss of each of the 100 iterations, a list of floats")
    model, to_z = need(ns, "model", "step 3"), need(ns, "to_z")
    need(ns, "loss_function", "step 4")
    x_fit, years_fit = _given(ns, "x_fit"), _given(ns, "years_fit")
    expect(isinstance(losses, (list, tuple)), f"`losses` is a {type(losses).__name__}; make it a list of numbers")
    expect(not any(isinstance(v, torch.Tensor) for v in losses), "`losses` holds tensors: append loss.item()")
    expect(len(losses) == ITERATIONS, f"`losses` has {len(losses)} values; train for {ITERATIONS} iterations "
                                      "and append one loss per iteration")
    values = [float(v) for v in losses]
    expect(all(math.isfinite(v) for v in values), "some losses are not finite numbers")
    expect(values[0] < 1e4, f"the first loss is {values[0]:,.0f}: that is the error in squared years. Train on "
                            "to_z(years_fit), the scaled years, not on the years themselves (erratum E2.7)")
    model.eval()
    with torch.no_grad():
        prediction = model(x_fit)
        target = to_z(years_fit)
    expect(prediction.shape == years_fit.shape, f"the model outputs {tuple(prediction.shape)}")
    starts = [m for m in (_start["model"], _seeded_start(x_fit)) if m is not None]
    message = check_full_batch_run(values, starts, x_fit, target, 0.01, TOLERANCE, inputs="x_fit",
                                   targets="to_z(years_fit)", model=model)
    return message.replace("the loss fell", "the loss on the scaled years fell")


@check.register(6, "measure the test error in years")
def _evaluate(ns: Namespace) -> str:
    predicted = need(ns, "predicted_years", "the test songs' predicted years, back in years")
    mae = _number(need(ns, "mae", "the test MAE in years"), "mae")
    model, to_years = need(ns, "model", "step 3"), need(ns, "to_years", "step 2")
    baseline_mae = _number(need(ns, "baseline_mae", "step 1"), "baseline_mae")
    x_test, years_test = _given(ns, "x_test"), _given(ns, "years_test")
    expect(isinstance(predicted, torch.Tensor) and predicted.numel() == len(years_test),
           f"`predicted_years` should hold one year per test song ({len(years_test):,})")
    predicted = predicted.detach().reshape(-1, 1)
    expect(predicted.mean().abs().item() > 100,
           f"the predictions average {predicted.mean().item():.2f}: those are standardised years; convert them "
           "back with to_years")
    model.eval()
    with torch.no_grad():
        truth = to_years(model(x_test))
    expect(torch.allclose(predicted, truth, atol=1e-2),
           "`predicted_years` is not to_years(model(x_test)) for the trained model")
    right = (truth - years_test).abs().mean().item()
    broadcast = (truth.reshape(-1) - years_test).abs().mean().item()
    expect(not (close(mae, broadcast, 1e-4) and not close(mae, right, 1e-4)),
           "that MAE compares every prediction with every test year: the shapes (N,) and (N, 1) broadcast to "
           "an (N, N) table. Give both the same shape (erratum E2.5)")
    expect(close(mae, right, 1e-4), f"`mae` is {mae:.3f}; the mean absolute difference between `predicted_years` "
                                    f"and `years_test` is {right:.3f}")
    expect(right < baseline_mae, f"the network (MAE {right:.2f} years) does not beat always guessing the mean year "
                                 f"({baseline_mae:.2f}): check the scaling and the training")
    return f"test MAE {right:.2f} years, better than the mean-year baseline ({baseline_mae:.2f})"
