"""Checks for Activity 7 (Chapter 4): the book's CNN on CIFAR-10, trained with a hand-written loop.

Steps: 1 the ``CNN`` class; 2 ``model``, ``loss_function``, ``optimizer``, ``epochs``; 3 the
``train`` function (checked against :func:`utils.fit`); 4 ``train_losses, val_losses`` from
training; 5 ``test_acc``; 6 ``matrix`` (confusion matrix) and ``per_class`` (per-class accuracy).
The network checks are shared with Activities 8 and 9 (:func:`check_cnn`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..cifar import CifarBatches
from ..runtime import quick
from ..training import accuracy, evaluate
from . import Checker, Namespace, Wrong, close, count_parameters, expect, expect_optimizer, need, nll_equivalent
from .training_loop import check_training_loop, losses_of

check = Checker("Activity 7")

#: Trainable parameters of the book's Activity 7 network: conv 280 + 1,820 + 7,240, linear 64,100 + 1,010.
BOOK_PARAMETERS = 74_450
#: Activity 9 adds BatchNorm2d(10, 20, 40) and BatchNorm1d(100): two parameters per channel, 340 in all.
BOOK_BN_PARAMETERS = 340


def _build(ns: Namespace, name: str = "CNN") -> nn.Module:
    cls = need(ns, name, "a subclass of nn.Module whose __init__ takes no arguments")
    expect(isinstance(cls, type) and issubclass(cls, nn.Module),
           f"`{name}` should be a class that subclasses `nn.Module` (`class {name}(nn.Module): ...`)")
    try:
        return cls()
    except TypeError as err:
        raise Wrong(f"`{name}()` failed ({err}): give `__init__` no arguments besides `self`") from err


def _conv_filters(model: nn.Module) -> list[int]:
    return [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]


def check_cnn(model: nn.Module, batch_norm: bool = False) -> str:
    """Shape, output and parameter checks of the book's Chapter 4 network (with BN for Activity 9)."""
    filters = _conv_filters(model)
    expect(filters == [10, 20, 40], f"your network's convolutions have {filters or 'no'} filters; the book's have "
                                    "[10, 20, 40]: three `nn.Conv2d` layers, 3->10, 10->20 and 20->40")
    kernels = [(m.kernel_size, m.padding, m.stride) for m in model.modules() if isinstance(m, nn.Conv2d)]
    expect(all(k == ((3, 3), (1, 1), (1, 1)) for k in kernels),
           "each convolution should use 3x3 filters with stride 1 and padding 1 "
           "(`nn.Conv2d(in, out, 3, stride=1, padding=1)`), so that only the pooling halves the width")
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, 3, 32, 32))
    except RuntimeError as err:
        if "shapes cannot be multiplied" in str(err) or "size mismatch" in str(err):
            raise Wrong("the first linear layer does not fit the flattened features: after three 2x2 poolings a "
                        "32x32 image is 4x4, so it needs 40 * 4 * 4 = 640 inputs, and flatten with `x.flatten(1)` "
                        f"(one row per image). PyTorch said: {err}") from err
        raise Wrong(f"a batch of two 3x32x32 images fails in your network: {err}") from err
    expect(tuple(out.shape) == (2, 10), f"two images give an output of shape {tuple(out.shape)}; expected (2, 10): "
                                        "one row of 10 class scores per image (did you flatten with `x.flatten(1)`?)")
    with torch.no_grad():
        sums = model(torch.randn(4, 3, 32, 32)).exp().sum(dim=1)
    expect(torch.allclose(sums, torch.ones(4), atol=1e-4),
           "the outputs do not sum to 1 after `exp()`: end the network with `log_softmax` over the classes "
           "(`F.log_softmax(x, dim=1)` or `nn.LogSoftmax(dim=1)`), as the book does, so that `nn.NLLLoss` fits")
    bns2d = [m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    bns1d = [m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    if batch_norm:
        expect(bns2d == [10, 20, 40], f"your network has BatchNorm2d layers for {bns2d or 'no'} channels; Activity 9 "
                                      "puts one after each convolution's ReLU: `nn.BatchNorm2d(10)`, `(20)` and `(40)`")
        expect(bns1d == [100], f"your network has BatchNorm1d layers for {bns1d or 'no'} features; Activity 9 also "
                               "normalises the first linear layer's 100 outputs: `nn.BatchNorm1d(100)`")
    else:
        expect(not bns2d and not bns1d, "this activity's network has no batch normalisation yet (that is Activity 9)")
    expected = BOOK_PARAMETERS + (BOOK_BN_PARAMETERS if batch_norm else 0)
    n = count_parameters(model)
    if n != expected:
        linear = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
        raise Wrong(f"your network has {n:,} parameters; the book's has {expected:,}: its linear layers should be "
                    f"640 -> 100 -> 10, yours are {' , '.join(f'{a} -> {b}' for a, b in linear) or 'missing'}")
    check_nonlinearities(model)
    dropout = check_dropout(model)
    return (f"{n:,} parameters as in the book; convolutions of 10, 20, 40 filters, each followed by a ReLU; "
            f"{dropout}; two images give (2, 10) log-probabilities")


#: What reaches each layer after the first, and what should come right before it.
_HIDDEN = (("the second convolution", "the first convolution"), ("the third convolution", "the second convolution"),
           ("the first linear layer", "the third convolution"), ("the second linear layer", "the first linear layer"))


def _layers(model: nn.Module) -> list[nn.Module]:
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return convs[1:3] + linears[:2]


def check_nonlinearities(model: nn.Module) -> None:
    """A ReLU after *each* hidden layer: what reaches every later layer (forward pre-hooks) is never negative."""
    seen: dict[int, float] = {}
    layers = _layers(model)
    handles = [layer.register_forward_pre_hook(
        lambda module, inputs, i=i: seen.__setitem__(i, float(inputs[0].detach().float().min())))
        for i, layer in enumerate(layers)]
    try:
        model.eval()
        with torch.no_grad():
            model(torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    finally:
        for handle in handles:
            handle.remove()
    for i, (layer, before) in enumerate(_HIDDEN[:len(layers)]):
        expect(seen.get(i, 0.0) >= 0.0,
               f"what reaches {layer} has negative values, so no ReLU follows {before}: apply `torch.relu` (or "
               "`nn.ReLU()`) after every convolution and after the first linear layer; without it two layers "
               "in a row collapse into one linear map")


def check_dropout(model: nn.Module) -> str:
    """Dropout applied (not merely listed: a shared ``nn.Dropout`` counts each time it runs) with p = 0.2 to the
    flattened features and to the first linear layer's outputs, on in training mode and off in eval mode."""
    events: list[tuple] = []
    original = F.dropout

    def recording(input, p=0.5, training=True, inplace=False):  # noqa: A002 - F.dropout's own signature
        events.append(("dropout", float(p), bool(training), int(input.shape[-1])))
        return original(input, p, training, inplace)

    linears = [m for m in model.modules() if isinstance(m, nn.Linear)][:2]
    handles = [layer.register_forward_pre_hook(lambda module, inputs, i=i: events.append(("linear", i)))
               for i, layer in enumerate(linears)]
    images = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    F.dropout = recording  # nn.Dropout and F.dropout both call torch.nn.functional.dropout
    state = torch.random.get_rng_state()
    try:
        with torch.no_grad():
            model.eval()
            first, second = model(images), model(images)
            in_eval = [e for e in events if e[0] == "dropout" and e[2]]
            events.clear()
            model.train()
            trained = model(images), model(images)
    finally:
        F.dropout = original
        torch.random.set_rng_state(state)
        for handle in handles:
            handle.remove()
        model.eval()
    expect(not in_eval and torch.equal(first, second),
           "in eval mode your network still drops values at random (two runs on the same images differ): with "
           "`F.dropout` pass `training=self.training`, or use `nn.Dropout(0.2)` modules, which `model.eval()` "
           "switches off")
    drops = [e for e in events if e[0] == "dropout"]
    if not drops:  # dropout by other means (e.g. torch.dropout): judge by behaviour only
        expect(not torch.equal(*trained), "your network has no dropout: in training mode two runs on the same "
                                          "images agree. The book drops 20% (p = 0.2) of the flattened features "
                                          "and of the first linear layer's outputs")
        return "dropout in training mode only"
    run = events[:len(events) // 2]  # one forward pass
    marks = [i for i, e in enumerate(run) if e[0] == "linear"]
    if len(marks) == 2:
        before = [e for e in run[:marks[0]] if e[0] == "dropout"]
        between = [e for e in run[marks[0]:marks[1]] if e[0] == "dropout"]
        after = [e for e in run[marks[1]:] if e[0] == "dropout"]
        for where, found in (("the flattened features, before the first linear layer", before),
                             ("the first linear layer's outputs, after its ReLU", between)):
            expect(found, f"no dropout is applied to {where}: the book drops 20% there (`nn.Dropout(0.2)`, "
                          "one module may serve both places)")
            expect(len(found) == 1, f"dropout is applied {len(found)} times to {where}; once is enough")
            expect(abs(found[0][1] - 0.2) < 1e-9, f"the dropout on {where} has p = {found[0][1]:g}; the book uses "
                                                  "p = 0.2 (`nn.Dropout()` alone means 0.5)")
        expect(not after, "dropout is applied after the last linear layer, to the class scores: the book drops "
                          "values only before the first linear layer and after its ReLU")
        expect(len(before) + len(between) == len(drops) // 2,
               "dropout is also applied inside the convolutional part: the book drops values only before the "
               "first linear layer and after its ReLU")
    return "dropout with p = 0.2 before each linear layer, in training mode only"


@check.register(1, "define the CNN")
def _step1(ns: Namespace) -> str:
    return check_cnn(_build(ns))


def check_setup(ns: Namespace, book_epochs: int) -> str:
    """Step checks for ``model``, ``loss_function``, ``optimizer`` and ``epochs`` (Activities 7-9)."""
    model = need(ns, "model", "your network, created and moved to `device`")
    loss_function = need(ns, "loss_function", "the loss")
    optimizer = need(ns, "optimizer", "Adam over the model's parameters")
    epochs = need(ns, "epochs", f"the number of epochs, `quick({book_epochs}, 1)`")
    expect(isinstance(model, nn.Module), f"`model` is a {type(model).__name__}; create it with `CNN()`")
    expect(callable(loss_function), f"`loss_function` is a {type(loss_function).__name__}; create the loss, "
                                    "`nn.NLLLoss()`")
    note = nll_equivalent(loss_function, "loss_function")
    expect_optimizer(optimizer, model, lr=0.001)
    expect(epochs == quick(book_epochs, 1), f"`epochs` is {epochs}; use `quick({book_epochs}, 1)`: {book_epochs} "
                                            "as in the book, 1 in quick mode")
    return (f"the negative log-likelihood loss{note}, Adam at lr 0.001 over the model's "
            f"{count_parameters(model):,} parameters, {epochs} epoch(s)")


@check.register(2, "create the model, loss function and optimizer")
def _step2(ns: Namespace) -> str:
    return check_setup(ns, 50)


@check.register(3, "write the training loop")
def _step3(ns: Namespace) -> str:
    return check_training_loop(need(ns, "train", "your training loop, `def train(model, train_loader, val_loader, "
                                                 "loss_fn, optimizer, epochs, device)`"))


@check.register(4, "train the network")
def _step4(ns: Namespace) -> str:
    train_losses = need(ns, "train_losses", "the per-epoch training losses that `train` returns")
    if isinstance(train_losses, tuple) and len(train_losses) == 2 and all(isinstance(v, list) for v in train_losses):
        raise Wrong("`train_losses` holds both lists `train` returns: unpack them, "
                    "`train_losses, val_losses = train(...)`")
    need(ns, "val_losses", "the per-epoch validation losses")
    epochs = need(ns, "epochs")
    expect(epochs >= 1, f"`epochs` is {epochs}: train for `quick(50, 1)` epochs")
    train_losses, val_losses = losses_of((ns["train_losses"], ns["val_losses"]), epochs)
    expect(all(math.isfinite(v) for v in train_losses + val_losses), "a loss is not finite: training diverged")
    model, val_batches = need(ns, "model"), need(ns, "val_batches")
    device = next(model.parameters()).device
    now, _ = evaluate(model, val_batches, nn.NLLLoss(), device=device)
    if not close(val_losses[-1], now, 1e-3):
        train_batches = ns.get("train_batches")
        if isinstance(train_batches, CifarBatches):
            fixed = CifarBatches(train_batches.images, train_batches.labels, train_batches.batch_size,
                                 device=train_batches.device)  # in order: the learner's shuffling stream is untouched
            on_train, _ = evaluate(model, fixed, nn.NLLLoss(), device=device)
            expect(not close(val_losses[-1], on_train, 1e-3),
                   "`val_losses` was measured on the training batches: call `train(model, train_batches, "
                   "val_batches, ...)`, training batches first, validation batches second")
        raise Wrong(f"the last entry of `val_losses` is {val_losses[-1]:.4f}, but `model` now scores {now:.4f} on "
                    "`val_batches`: train `model` itself (the network the optimiser holds), with `train_batches` "
                    "to train on and `val_batches` to validate on")
    expect(val_losses[-1] < math.log(10),
           f"the last validation loss is {val_losses[-1]:.3f}, not below ln 10 = {math.log(10):.3f}, "
           "a network that guesses: did the weights change?")
    return (f"{epochs} epoch(s); validation loss {val_losses[0]:.3f} after the first, "
            f"{val_losses[-1]:.3f} after the last, which is what `model` scores on `val_batches` now")


def check_test_accuracy(ns: Namespace) -> str:
    """``test_acc`` must be the model's accuracy on ``test_batches`` in eval mode (Activities 7-9)."""
    test_acc = float(need(ns, "test_acc", "the accuracy on `test_batches`, e.g. from `evaluate(...)`"))
    model, test_batches = need(ns, "model"), need(ns, "test_batches")
    device = next(model.parameters()).device
    loss_fn = nn.NLLLoss()
    expect(0.0 <= test_acc <= 1.0, f"`test_acc` is {test_acc}; give it as a share between 0 and 1")
    _, right = evaluate(model, test_batches, loss_fn, metric=accuracy, device=device)
    if not close(test_acc, right, 1e-4):
        val_batches = ns.get("val_batches")
        if val_batches is not None:
            _, on_val = evaluate(model, val_batches, loss_fn, metric=accuracy, device=device)
            expect(not close(test_acc, on_val, 1e-4), "`test_acc` is the accuracy on the validation batches; "
                                                      "measure it on `test_batches`")
        raise Wrong(f"`test_acc` is {test_acc:.4f}, but the model scores {right:.4f} on `test_batches` in eval mode: "
                    "call `model.eval()` (or use `evaluate`) so dropout and batch normalisation behave as at test time")
    return f"test accuracy {test_acc:.1%} (chance: 10%)"


@check.register(5, "measure the test accuracy")
def _step5(ns: Namespace) -> str:
    return check_test_accuracy(ns)


@check.register(6, "confusion matrix and per-class accuracy")
def _step6(ns: Namespace) -> str:
    matrix = torch.as_tensor(need(ns, "matrix", "the 10 x 10 confusion matrix of the test predictions"))
    per_class = torch.as_tensor(need(ns, "per_class", "the accuracy of each class"), dtype=torch.float64)
    test_acc = float(need(ns, "test_acc"))
    expect(tuple(matrix.shape) == (10, 10), f"`matrix` has shape {tuple(matrix.shape)}; expected (10, 10)")
    n = int(matrix.sum())
    test_batches = need(ns, "test_batches")
    expected_n = getattr(test_batches, "num_images", n)
    expect(n == expected_n, f"`matrix` counts {n} images, the test batches hold {expected_n}")
    val_batches = ns.get("val_batches")
    if not close(float(matrix.diag().sum()) / n, test_acc, 1e-3) and val_batches is not None:
        model = need(ns, "model")
        _, on_val = evaluate(model, val_batches, nn.NLLLoss(), metric=accuracy,
                             device=next(model.parameters()).device)
        expect(not close(float(matrix.diag().sum()) / n, on_val, 1e-3),
               "`matrix` counts the validation predictions: build it from the test batches, "
               "`predict(model, test_batches)` against `test_labels[test_idx]`")
    expect(close(float(matrix.diag().sum()) / n, test_acc, 1e-3),
           f"the diagonal holds {float(matrix.diag().sum()) / n:.1%} of the images, but the test accuracy is "
           f"{test_acc:.1%}: rows should be the true classes and columns the predictions (or the reverse), "
           "from the same model")
    rows = matrix.sum(dim=1).clamp(min=1).double()
    cols = matrix.sum(dim=0).clamp(min=1).double()
    expect(per_class.shape == (10,), f"`per_class` has shape {tuple(per_class.shape)}; expected 10 values")
    if torch.allclose(per_class, matrix.diag().double() / cols, atol=1e-4) and \
            not torch.allclose(per_class, matrix.diag().double() / rows, atol=1e-4):
        raise Wrong("`per_class` divides the diagonal by the column totals (precision); per-class accuracy divides "
                    "by the row totals, the number of test images of each true class")
    expect(torch.allclose(per_class, matrix.diag().double() / rows, atol=1e-4),
           "`per_class` should be the diagonal of `matrix` divided by its row totals")
    worst = int(per_class.argmin())
    return f"the matrix counts {n:,} test images; the hardest class is number {worst} ({per_class[worst]:.1%})"
