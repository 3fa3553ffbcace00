"""Checks for Activity 4 (Chapter 3): the credit-default classifier, written and trained by hand.

Steps: 1 the data loaders, 2 the model, 3 loss, optimiser and epochs, 4 the training loop
(``def train(...)``), 5 training and the learning curves, 6 the final figures, 7 saving them for Exercise 7.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import RandomSampler

from ..ch03_handoffs import activity4_epochs, activity4_figures_path, activity4_stamp
from ..credit_model import classification_figures
from ..handoff import HandoffError, load
from . import (
    Checker,
    Namespace,
    Wrong,
    count_parameters,
    expect,
    expect_optimizer,
    linear_trace,
    missing_activations,
    need,
    nll_equivalent,
)
from .training_loop import check_training_loop

check = Checker("Activity 4")


def book_parameter_count(inputs: int) -> int:
    """Trainable parameters of the book's network: ``inputs`` -> 10 -> 10 -> 10 -> 2."""
    return (inputs * 10 + 10) + 2 * (10 * 10 + 10) + (10 * 2 + 2)


def _rows(loader) -> int:
    return sum(len(batch[1]) for batch in loader)


@check.register(1, "the data loaders")
def _loaders(ns: Namespace) -> str:
    train_loader = need(ns, "train_loader", "a DataLoader over the training part, batches of 128, shuffled")
    val_loader = need(ns, "val_loader", "a DataLoader over the validation part")
    splits = need(ns, "splits")
    batch = next(iter(train_loader))
    expect(isinstance(batch, (tuple, list)) and len(batch) == 2,
           "a training batch should be a pair `(features, labels)`: build the loader on "
           "`TensorDataset(features, labels)`")
    features, labels = batch
    expect(features.dtype == torch.float32,
           f"the features are {features.dtype}, but the network's weights are float32: convert them with "
           "`torch.tensor(..., dtype=torch.float32)`")
    expect(labels.dtype == torch.long,
           f"the labels are {labels.dtype}: `NLLLoss` needs class indices as `torch.long` integers")
    expect(features.ndim == 2 and features.shape[1] == splits.n_features,
           f"a training batch has shape {tuple(features.shape)}; expected (batch, {splits.n_features}) features")
    expect(labels.ndim == 1, f"the labels have shape {tuple(labels.shape)}; NLLLoss wants one label per row, "
                             "shape (batch,)")
    expect(len(labels) == 128, f"the first training batch has {len(labels)} rows; the book uses batches of 128")
    expect(_rows(train_loader) == len(splits.y_train),
           f"the training loader holds {_rows(train_loader)} rows, the training part {len(splits.y_train)}")
    expect(isinstance(getattr(train_loader, "sampler", None), RandomSampler),
           "the training loader does not shuffle: pass `shuffle=True`, so each epoch sees the rows in a new order")
    val_rows = _rows(val_loader)
    expect(val_rows == len(splits.y_val),
           f"the validation loader holds {val_rows} rows; the validation part has {len(splits.y_val)}"
           + (" (that is the test part's size: keep the test set for Activity 5)" if val_rows == len(splits.y_test)
              and val_rows != len(splits.y_val) else ""))
    first = next(iter(val_loader))[0][0].double().cpu()
    expect(torch.allclose(first, torch.as_tensor(splits.X_val.iloc[0].to_numpy(copy=True), dtype=torch.float64),
                          atol=1e-6),
           "the validation loader's first row is not the first row of `splits.X_val`: build it from the "
           "validation part, in order (the test part stays unused until Activity 5)")
    return (f"{len(train_loader)} shuffled training batches of 128, labels as torch.long, "
            f"{val_rows} validation rows")


@check.register(2, "the model")
def _model(ns: Namespace) -> str:
    model = need(ns, "model", "an instance of your Classifier, moved to `device`")
    splits, device = need(ns, "splits"), need(ns, "device")
    expect(not isinstance(model, type), "`model` is the class itself: create an instance, "
                                        "`model = Classifier(splits.n_features).to(device)`")
    expect(isinstance(model, nn.Module), f"`model` is a {type(model).__name__}, not an nn.Module")
    inputs = splits.n_features
    count, book = count_parameters(model), book_parameter_count(inputs)
    expect(count == book, f"your network has {count} parameters; the book's has {book}: did you make three "
                          f"hidden layers of 10 units and an output layer of 2 ({inputs} → 10 → 10 → 10 → 2)?")
    where = next(model.parameters()).device
    expect(where.type == torch.device(device).type,
           f"the model's weights are on {where.type} but `device` is {torch.device(device).type}: "
           "call `.to(device)` on the model")
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(6, inputs, generator=generator).to(where)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
            expect(tuple(out.shape) == (6, 2),
                   f"for 6 clients the output has shape {tuple(out.shape)}; expected (6, 2), one score per class")
            expect(not (bool((out >= 0).all()) and torch.allclose(out.sum(dim=1), torch.ones(6, device=where),
                                                                    atol=1e-4)),
                   "the outputs are all positive, so they look like probabilities: return `F.log_softmax(..., "
                   "dim=1)`, the log-probabilities that NLLLoss expects")
            sums = out.exp().sum(dim=1)
            expect(torch.allclose(sums, torch.ones_like(sums), atol=1e-4),
                   f"the outputs do not sum to 1 per client after `exp()` (they sum to "
                   f"{[round(float(s), 3) for s in sums[:3]]}...): is `log_softmax` applied over `dim=1`?")
    finally:
        model.train(was_training)
    probe = (torch.randn(64, inputs, generator=generator) * 3).to(where)
    missing = missing_activations(model, probe)
    hidden = len(linear_trace(model, probe)[1]) - 1
    expect(not missing, f"hidden layer{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} of {hidden} "
                        f"pass{'' if len(missing) > 1 else 'es'} its output to the next layer unchanged: apply "
                        "`F.relu` to the output of every hidden layer, or consecutive layers collapse into one linear "
                        "function")
    return f"{count} parameters, as in the book; outputs are log-probabilities over 2 classes"


@check.register(3, "the loss, the optimiser and the epochs")
def _training_setup(ns: Namespace) -> str:
    loss_fn = need(ns, "loss_fn", "the loss, `nn.NLLLoss()`")
    optimizer = need(ns, "optimizer", "Adam over the model's parameters, learning rate 0.001")
    epochs = need(ns, "epochs", "quick(50, 5)")
    model = need(ns, "model")
    note = nll_equivalent(loss_fn)
    expect(isinstance(optimizer, torch.optim.Optimizer),
           f"`optimizer` is a {type(optimizer).__name__}; create `torch.optim.Adam(model.parameters(), lr=0.001)`")
    expect_optimizer(optimizer, model, lr=0.001)
    expected_epochs = activity4_epochs()
    expect(epochs == expected_epochs, f"`epochs` is {epochs}; use `quick(50, 5)` (the book's 50, 5 in quick mode: "
                                      f"{expected_epochs} now)")
    return f"NLLLoss, Adam with learning rate 0.001, {epochs} epochs{note}"


@check.register(4, "the training loop")
def _loop(ns: Namespace) -> str:
    train = need(ns, "train", "your function `train(model, train_loader, val_loader, loss_fn, optimizer, epochs, "
                              "device)` returning `(train_losses, val_losses)`")
    return check_training_loop(train)


@check.register(5, "training and the learning curves")
def _trained(ns: Namespace) -> str:
    train_losses = need(ns, "train_losses", "the per-epoch training losses your `train` returned")
    val_losses = need(ns, "val_losses", "the per-epoch validation losses your `train` returned")
    expect(not (len(train_losses) == 2 and all(isinstance(v, (list, tuple)) for v in train_losses)),
           "`train_losses` holds both lists `train` returned: unpack them, "
           "`train_losses, val_losses = train(...)`, so you keep the two lists")
    expect(all(isinstance(v, (list, tuple)) for v in (train_losses, val_losses)),
           f"`train_losses` is a {type(train_losses).__name__} and `val_losses` a {type(val_losses).__name__}; keep "
           "the two lists `train` returns (or, with utils.fit, `history.train_loss` and `history.val_loss`)")
    epochs = need(ns, "epochs")
    expect(len(train_losses) == epochs and len(val_losses) == epochs,
           f"there are {len(train_losses)} training and {len(val_losses)} validation losses for {epochs} epochs: "
           "train with `epochs` and keep what `train` returns")
    values = [float(v) for v in [*train_losses, *val_losses]]
    expect(all(math.isfinite(v) for v in values), "some losses are not finite numbers: check the learning rate")
    expect(float(train_losses[-1]) < float(train_losses[0]),
           f"the training loss did not go down ({float(train_losses[0]):.4f} → {float(train_losses[-1]):.4f}): "
           "did `train` run on a freshly created model and optimiser?")
    model, loss_fn, val_loader = need(ns, "model"), need(ns, "loss_fn"), need(ns, "val_loader")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, rows = 0.0, 0
    try:
        with torch.no_grad():
            for features, labels in val_loader:
                total += float(loss_fn(model(features.to(device)), labels.to(device))) * len(labels)
                rows += len(labels)
    finally:
        model.train(was_training)
    now = total / rows
    expect(abs(now - float(val_losses[-1])) < 1e-4,
           f"the last validation loss is {float(val_losses[-1]):.4f}, but `model` now scores {now:.4f} on the "
           "validation loader" + (": `train_losses` and `val_losses` are swapped" if abs(now - float(train_losses[-1]))
                                  < 1e-4 else ": train `model` itself (not a copy or a new one), once, and keep "
                                              "what `train` returns as `train_losses, val_losses`"))
    return (f"training loss {float(train_losses[0]):.3f} → {float(train_losses[-1]):.3f}, validation loss "
            f"{float(val_losses[-1]):.3f} after {epochs} epochs")


@check.register(6, "the final figures")
def _figures(ns: Namespace) -> str:
    training = need(ns, "training_figures", "classification_figures on the whole training part")
    validation = need(ns, "validation_figures", "classification_figures on the whole validation part")
    model, splits, device = need(ns, "model"), need(ns, "splits"), need(ns, "device")
    reference = {"training": classification_figures(model, splits.X_train, splits.y_train, device),
                 "validation": classification_figures(model, splits.X_val, splits.y_val, device)}
    test = classification_figures(model, splits.X_test, splits.y_test, device)
    def same(a: dict, b: dict) -> bool:
        return all(abs(float(a[k]) - float(b[k])) < 1e-4 for k in ("accuracy", "balanced_accuracy"))

    for name, yours in (("training", training), ("validation", validation)):
        expect(isinstance(yours, dict) and {"accuracy", "balanced_accuracy"} <= yours.keys(),
               f"`{name}_figures` should be the dictionary that `classification_figures` returns")
        if same(yours, reference[name]):
            continue
        other = "validation" if name == "training" else "training"
        expect(not same(yours, test), f"`{name}_figures` are the test set's figures: keep the test set for Activity 5")
        expect(not same(yours, reference[other]), f"`{name}_figures` are the {other} figures: are the two swapped?")
        part = "train" if name == "training" else "val"
        raise Wrong(f"`{name}_figures` give balanced accuracy {yours['balanced_accuracy']}, but the trained `model` "
                    f"scores {reference[name]['balanced_accuracy']} on the whole {name} part: measure the finished "
                    f"model with `classification_figures(model, splits.X_{part}, splits.y_{part}, device)`")
    va = reference["validation"]
    return (f"validation balanced accuracy {va['balanced_accuracy']:.3f}, accuracy {va['accuracy']:.3f} "
            f"(always 'no': {va['majority_accuracy']:.3f})")


@check.register(7, "saving the figures for Exercise 7")
def _saved(ns: Namespace) -> str:
    path = need(ns, "figures_path", "the path `save_activity4_figures(...)` returns")
    validation, epochs = need(ns, "validation_figures"), need(ns, "epochs")
    expect(Path(path) == activity4_figures_path(),
           f"`figures_path` is {Path(path).name}, but Exercise 7 reads {activity4_figures_path().name}: "
           "save with `save_activity4_figures`")
    try:
        record = load(Path(path), activity4_stamp(epochs))
    except HandoffError as err:
        raise Wrong(f"Exercise 7 could not use the saved file: {err.reason}") from err
    expect(abs(record["validation"]["balanced_accuracy"] - validation["balanced_accuracy"]) < 1e-6,
           "the saved validation figures are not your `validation_figures`: pass them to `save_activity4_figures`")
    expect(epochs == activity4_epochs(), f"saved after {epochs} epochs, but Exercise 7 expects the book's "
                                         f"{activity4_epochs()} in this mode, so it will retrain the model itself")
    return f"Exercise 7 will read your figures from {path.name}"
