"""Checks for Activity 7 (Chapter 4): the book's CNN on CIFAR-10, trained with a hand-written loop.

Steps: 1 the ``CNN`` class; 2 ``model``, ``loss_function``, ``optimizer``, ``epochs``; 3 the
``train`` function (checked against :func:`utils.fit`); 4 ``train_losses, val_losses`` from
training; 5 ``test_acc``; 6 ``matrix`` (confusion matrix) and ``per_class`` (per-class accuracy).
The network checks are shared with Activities 8 and 9 (:func:`check_cnn`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..runtime import quick
from ..training import accuracy, evaluate
from . import Checker, Namespace, Wrong, close, count_parameters, expect, expect_optimizer, need
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
    dropouts = [m.p for m in model.modules() if isinstance(m, nn.Dropout)]
    expect(sorted(dropouts) == [0.2, 0.2],
           f"your network has dropout layers {dropouts or 'none'}; the book's has two with p = 0.2: "
                      "before the first linear layer and after its ReLU")
    expected = BOOK_PARAMETERS + (BOOK_BN_PARAMETERS if batch_norm else 0)
    n = count_parameters(model)
    if n != expected:
        linear = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
        raise Wrong(f"your network has {n:,} parameters; the book's has {expected:,}: its linear layers should be "
                    f"640 -> 100 -> 10, yours are {' , '.join(f'{a} -> {b}' for a, b in linear) or 'missing'}")
    return (f"{n:,} parameters as in the book; convolutions of 10, 20, 40 filters; "
            "two images give (2, 10) log-probabilities")


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
    if isinstance(loss_function, nn.CrossEntropyLoss):
        raise Wrong("`nn.CrossEntropyLoss` applies `log_softmax` itself, and the network already ends with one: "
                    "use `nn.NLLLoss()`, which takes log-probabilities")
    expect(isinstance(loss_function, nn.NLLLoss), f"`loss_function` is {type(loss_function).__name__}; the network "
                                                  "outputs log-probabilities, so the matching loss is `nn.NLLLoss()`")
    expect_optimizer(optimizer, model, lr=0.001)
    expect(epochs == quick(book_epochs, 1), f"`epochs` is {epochs}; use `quick({book_epochs}, 1)`: {book_epochs} "
                                            "as in the book, 1 in quick mode")
    return f"NLLLoss, Adam at lr 0.001 over the model's {count_parameters(model):,} parameters, {epochs} epoch(s)"


@check.register(2, "create the model, loss function and optimizer")
def _step2(ns: Namespace) -> str:
    return check_setup(ns, 50)


@check.register(3, "write the training loop")
def _step3(ns: Namespace) -> str:
    return check_training_loop(need(ns, "train", "your training loop, `def train(model, train_loader, val_loader, "
                                                 "loss_fn, optimizer, epochs, device)`"))


@check.register(4, "train the network")
def _step4(ns: Namespace) -> str:
    need(ns, "train_losses", "the per-epoch training losses that `train` returns")
    need(ns, "val_losses", "the per-epoch validation losses")
    epochs = need(ns, "epochs")
    train_losses, val_losses = losses_of((ns["train_losses"], ns["val_losses"]), epochs)
    expect(all(math.isfinite(v) for v in train_losses + val_losses), "a loss is not finite: training diverged")
    expect(val_losses[-1] < math.log(10),
           f"the last validation loss is {val_losses[-1]:.3f}, not below ln 10 = {math.log(10):.3f}, "
           "a network that guesses: did the weights change?")
    return (f"{epochs} epoch(s); validation loss {val_losses[0]:.3f} after the first, "
            f"{val_losses[-1]:.3f} after the last")


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
