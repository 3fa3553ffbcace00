"""Checks for Activity 11 (weekly sales forecasting with a simple RNN): sample, sequences and hold-out,
the model, training, held-out forecasts against the naive forecast, and the W51 plot."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from . import Checker, Namespace, Wrong, count_parameters, expect, expect_optimizer, need

check = Checker("Activity 11")

HOLDOUT = 4          # W48-W51
BOOK_PARAMETERS = 141  # nn.RNN(1, 10) + nn.Linear(10, 1)


def _values(ns: Namespace) -> torch.Tensor:
    sales = need(ns, "sales", "the table of weekly sales, loaded in the setup cells")
    return torch.tensor(sales.to_numpy(), dtype=torch.float32)


@check.register(1, "five random products")
def _sample(ns: Namespace) -> str:
    sample = need(ns, "sample", "the five products you plot, `sales.sample(5, random_state=0)`")
    sales = need(ns, "sales", "the table of weekly sales")
    expect(len(sample) == 5, f"`sample` has {len(sample)} rows; plot five products")
    expect(list(sample.columns) == list(sales.columns),
           "`sample` should keep the 52 weekly columns W0-W51 of `sales`")
    expected = sales.sample(5, random_state=0).index.tolist()
    expect(sample.index.tolist() == expected,
           f"`sample` holds products {sample.index.tolist()}; with `random_state=0`, as in the book, the five are "
           f"{expected}")
    return f"products {expected}, the book's sample"


@check.register(2, "sequences, targets and the hold-out")
def _sequences(ns: Namespace) -> str:
    x_train = need(ns, "x_train", "the training inputs, weeks W0-W46, shape (products, weeks, 1)")
    y_train = need(ns, "y_train", "the training targets, weeks W1-W47")
    mean, std = need(ns, "mean", "the mean of the training weeks"), need(ns, "std", "their standard deviation")
    values = _values(ns)
    first_test = values.shape[1] - HOLDOUT
    expect(isinstance(x_train, torch.Tensor) and isinstance(y_train, torch.Tensor),
           "`x_train` and `y_train` must be tensors")
    expect(x_train.dtype == torch.float32 and y_train.dtype == torch.float32,
           f"`x_train` is {x_train.dtype} and `y_train` {y_train.dtype}: the RNN's weights are float32 and cannot "
           "read float64 inputs, so make `values` with `dtype=torch.float32`")
    if tuple(x_train.shape) == (811, 1, 51):
        raise Wrong("`x_train` has shape (811, 1, 51): one time step with 51 features, the book's shape (E6.2). "
                    "Make each week a time step with one feature: (products, weeks, 1)")
    if x_train.dim() == 2:
        raise Wrong(f"`x_train` has shape {tuple(x_train.shape)}: add the feature dimension, `.unsqueeze(-1)`, "
                    "so the RNN reads (products, weeks, 1 feature)")
    training_mean, all_mean = values[:, :first_test].mean().item(), values.mean().item()
    if math.isclose(float(mean), all_mean, rel_tol=1e-5) and not math.isclose(all_mean, training_mean, rel_tol=1e-5):
        raise Wrong("`mean` is the mean of all 52 weeks, so the held-out weeks W48-W51 leak into training through "
                    "the scaling: compute `mean` and `std` from the training weeks W0-W47 only")
    expect(math.isclose(float(mean), training_mean, rel_tol=1e-4),
           f"`mean` is {float(mean):.3f}; the mean of the training weeks W0-W47 is {training_mean:.3f}")
    training_std = values[:, :first_test].std().item()
    expect(math.isclose(float(std), training_std, rel_tol=1e-3),
           f"`std` is {float(std):.3f}; the standard deviation of the training weeks W0-W47 is {training_std:.3f}")
    scaled = ((values - training_mean) / training_std).unsqueeze(-1)
    if x_train.shape[1] > first_test - 1:
        raise Wrong(f"`x_train` has {x_train.shape[1]} weeks: the held-out weeks W48-W51 must never be training "
                    "targets, so the inputs stop at W46 and the targets at W47 (47 weeks each)")
    expect(tuple(x_train.shape) == (811, first_test - 1, 1) and tuple(y_train.shape) == (811, first_test - 1, 1),
           f"`x_train` {tuple(x_train.shape)} and `y_train` {tuple(y_train.shape)}; expected (811, 47, 1) each")
    x_cpu, y_cpu = x_train.detach().cpu(), y_train.detach().cpu()
    expect(torch.allclose(x_cpu, scaled[:, :first_test - 1], atol=1e-4),
           "`x_train` is not the standardised weeks W0-W46: `((values - mean) / std).unsqueeze(-1)[:, :47]`")
    if torch.allclose(y_cpu, x_cpu):
        raise Wrong("the targets equal the inputs: each week's target is the *next* week, so shift by one: W1-W47")
    expect(torch.allclose(y_cpu, scaled[:, 1:first_test], atol=1e-4),
           "`y_train` is not the standardised weeks W1-W47 (the inputs shifted by one week)")
    return (f"inputs W0-W46 and targets W1-W47, shape {tuple(x_train.shape)}, scaled with the training weeks' "
            f"mean {training_mean:.2f} and std {training_std:.2f}; W48-W51 held out")


@check.register(3, "the RNN")
def _model(ns: Namespace) -> str:
    model = need(ns, "model", "the RNN with a linear output layer")
    expect(isinstance(model, nn.Module), "`model` must be an `nn.Module`")
    rnns = [m for m in model.modules() if isinstance(m, nn.RNN)]
    expect(rnns, "the model has no `nn.RNN` layer")
    rnn = rnns[0]
    if rnn.input_size != 1:
        raise Wrong(f"the RNN reads {rnn.input_size} features per time step; a week has one (its units sold): "
                    "`input_size=1` (51 is the book's one-step-of-51-features mistake, E6.2)")
    n = count_parameters(model)
    expect(n == BOOK_PARAMETERS, f"your network has {n} parameters; the book's has {BOOK_PARAMETERS}: one "
                                 "recurrent layer of 10 units and `nn.Linear(10, 1)`")
    device = next(model.parameters()).device
    with torch.no_grad():
        out = model(torch.zeros(3, 47, 1, device=device))
    out = out[0] if isinstance(out, tuple) else out
    expect(tuple(out.shape) == (3, 47, 1),
           f"for 3 products x 47 weeks the model returns shape {tuple(out.shape)}; expected (3, 47, 1): apply the "
           "linear layer to the hidden state at every week, not only the last, so there is one forecast per week")
    probe = torch.randn(3, 47, 1, generator=torch.Generator().manual_seed(0)).to(device)
    changed = probe.clone()
    changed[0, 30:] += 1.0  # product 0's weeks from W30 on
    with torch.no_grad():
        before, after = (_output(model(x)) for x in (probe, changed))
    expect(torch.allclose(before[1:], after[1:], atol=1e-6),
           "changing one product's sales changed the forecasts of the other products: the RNN reads the "
           "products as time steps. The data is (products, weeks, 1), so create it with `batch_first=True` "
           "(or transpose to (weeks, products, 1) and back)")
    expect(torch.allclose(before[0, :30], after[0, :30], atol=1e-6),
           "changing the sales from week W30 on changed the forecasts of earlier weeks: a forecast may only use "
           "the weeks up to its own, so apply the linear layer to the hidden state of each week")
    expect(not torch.allclose(before[0, 30:], after[0, 30:], atol=1e-6),
           "changing a product's sales from W30 on changed none of its later forecasts: feed the weeks through "
           "the RNN and use its hidden states")
    return f"{n} parameters, as in the book; one next-week forecast at every week, from that week's hidden state"


def _output(out: object) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out  # type: ignore[index]


@check.register(4, "training")
def _training(ns: Namespace) -> str:
    losses = need(ns, "losses", "the loss of every epoch")
    epochs = need(ns, "epochs", "the number of epochs")
    model, x_train, y_train = need(ns, "model"), need(ns, "x_train"), need(ns, "y_train")
    optimizer = need(ns, "optimizer", "Adam over the model's parameters")
    expect(isinstance(optimizer, torch.optim.Optimizer) and
           {id(p) for g in optimizer.param_groups for p in g["params"]} == {id(p) for p in model.parameters()},
           "`optimizer` does not hold this model's parameters: create it from `model.parameters()`, "
           "or it trains another network")
    expect_optimizer(optimizer, model, lr=0.001)
    expect(len(losses) == epochs, f"`losses` has {len(losses)} entries for {epochs} epochs: append one per epoch")
    expect(not any(isinstance(v, torch.Tensor) and v.requires_grad for v in losses),
           "`losses` holds the loss tensors, each keeping its epoch's graph alive: append `loss.item()`, a float")
    losses = [float(v) for v in losses]
    expect(all(math.isfinite(v) for v in losses), "a loss is not finite: check the learning rate and the scaling")
    expect(losses[-1] < losses[0], f"the loss went from {losses[0]:.4f} to {losses[-1]:.4f}: it should go down. "
                                   "Call `optimizer.zero_grad()`, `loss.backward()` and `optimizer.step()` every epoch")
    device = next(model.parameters()).device
    with torch.no_grad():
        out = model(x_train.to(device))
        now = nn.functional.mse_loss(out[0] if isinstance(out, tuple) else out, y_train.to(device)).item()
    expect(now < losses[0], f"the model's loss on the training weeks is {now:.4f}, no better than the first epoch's "
                            f"{losses[0]:.4f}: did the optimizer get this model's parameters?")
    expect(abs(now - losses[-1]) <= 0.05 * losses[-1],
           f"the model's loss on the training weeks is now {now:.4f}, but the last entry of `losses` is "
           f"{losses[-1]:.4f}: append every epoch's `loss.item()` for this model")
    _expect_fresh_gradients(model, x_train.to(device), y_train.to(device))
    return f"MSE (standardised) {losses[0]:.4f} -> {losses[-1]:.4f} over {epochs} epochs"


def _expect_fresh_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    """After a loop that resets the gradients every epoch, ``p.grad`` holds the last epoch's gradient, close to the
    gradient at the current weights; without the reset it holds the sum of every epoch's gradient."""
    kept = [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]
    if not kept:  # reset after the step (set_to_none), nothing to compare
        return
    model.zero_grad(set_to_none=True)
    nn.functional.mse_loss(_output(model(x)), y).backward()
    now = [p.grad.detach() for p in model.parameters() if p.grad is not None]
    model.zero_grad(set_to_none=True)
    for p, g in zip([p for p in model.parameters() if p.requires_grad], kept):
        p.grad = g  # leave the gradients as the learner's loop left them
    size = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in now])))
    left = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in kept])))
    expect(left <= 3 * size + 1e-8,
           f"the gradients the loop left behind are {left / max(size, 1e-12):.0f} times as large as one epoch's: "
           "they were added up over the epochs. Call `optimizer.zero_grad()` before every `loss.backward()`")


@check.register(5, "held-out forecasts against the naive forecast")
def _forecasts(ns: Namespace) -> str:
    forecast = need(ns, "forecast", "your forecasts of W48-W51 in units sold, shape (811, 4)")
    naive = need(ns, "naive", "the naive forecasts (the previous week's actual sales)")
    actual = need(ns, "actual", "the actual sales of W48-W51")
    model, mean, std = need(ns, "model"), float(need(ns, "mean")), float(need(ns, "std"))
    values = _values(ns)
    first_test = values.shape[1] - HOLDOUT
    forecast, naive, actual = (torch.as_tensor(np.asarray(t.detach().cpu() if isinstance(t, torch.Tensor) else t,
                                                          dtype=np.float32)) for t in (forecast, naive, actual))
    if forecast.dim() == 3 and forecast.shape[-1] == 1:
        raise Wrong("`forecast` still has the feature dimension, shape (811, 4, 1): take `[:, :, 0]`")
    for name, tensor in (("forecast", forecast), ("naive", naive), ("actual", actual)):
        expect(tuple(tensor.shape) == (811, HOLDOUT), f"`{name}` has shape {tuple(tensor.shape)}; expected (811, 4): "
                                                      "811 products x the held-out weeks W48-W51")
    expect(torch.equal(actual, values[:, first_test:]), "`actual` should be the sales of weeks W48-W51")
    if torch.equal(naive, actual):
        raise Wrong("`naive` equals the actual sales: the naive forecast of a week is the week *before* it, W47-W50")
    expect(torch.equal(naive, values[:, first_test - 1:-1]),
           "`naive` should be last week's actual sales for each held-out week: weeks W47-W50")
    device = next(model.parameters()).device
    scaled = ((values - mean) / std).unsqueeze(-1)
    with torch.no_grad():
        out = model(scaled[:, :-1].to(device))
        out = (out[0] if isinstance(out, tuple) else out)[:, :, 0].cpu()
    expected_scaled = out[:, first_test - 1:]
    expected = expected_scaled * std + mean
    if torch.allclose(forecast, expected_scaled, atol=1e-3):
        raise Wrong("`forecast` is still in standardised units: undo the scaling, `* std + mean`, to get units sold")
    expect(torch.allclose(forecast, expected, atol=1e-3),
           "`forecast` is not the model's output for W48-W51: run the model on each product's weeks W0-W50; the "
           "output at week t forecasts week t + 1, so the last four outputs forecast W48-W51")
    rnn = ((forecast - actual) ** 2).mean().item()
    base = ((naive - actual) ** 2).mean().item()
    return f"held-out MSE over W48-W51: RNN {rnn:.2f}, naive {base:.2f} (units sold squared)"


@check.register(6, "the W51 plot")
def _plot(ns: Namespace) -> str:
    figure = need(ns, "w51_figure", "the matplotlib figure of actual W51 sales against the two forecasts")
    axes = getattr(figure, "axes", None)
    expect(axes, "`w51_figure` should be a matplotlib Figure with axes: `w51_figure, ax = plt.subplots()`")
    ax = axes[0]
    series = len(ax.collections) + len(ax.lines)
    expect(series >= 3, f"the plot shows {series} series; show three: the actual W51 sales, your forecast and the "
                        "naive forecast")
    expect(ax.get_xlabel() and ax.get_ylabel(), "label both axes (`ax.set(xlabel=..., ylabel=...)`)")
    expect(ax.get_legend() is not None, "add a legend, so a reader can tell the three series apart")
    return "three labelled series on labelled axes"
