"""Checks for Activity 8 (Chapter 4): data augmentation, on the training images only.

Steps: 1 ``augmentation`` (called on a uint8 batch) and the three batch iterables
``train_batches`` (augmented), ``val_batches`` and ``test_batches`` (not augmented, E4.4);
2 the ``CNN`` class (Activity 7's); 3 training: ``model``, ``loss_function``, ``optimizer``,
``epochs``, ``history``; 4 ``test_acc``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..cifar import BOOK_MEAN, BOOK_STD, normalize, to_grayscale
from ..training import evaluate
from . import Checker, Namespace, close, expect, need
from .activity07 import _build, check_cnn, check_setup, check_test_accuracy

check = Checker("Activity 8")


def _sample_batch(n: int = 400) -> torch.Tensor:
    """Random uint8 images (N, 3, 32, 32) whose left and right halves differ, so a flip is visible."""
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator)


def check_augmentation(augmentation) -> str:
    """The augmentation keeps shape, dtype and range, is random, flips about half and greys about a tenth."""
    expect(callable(augmentation), "`augmentation` should be callable on a uint8 batch, "
                                   "e.g. `BatchAugmentation(flip_p=0.5, grayscale_p=0.1)`")
    batch = _sample_batch()
    torch.manual_seed(0)
    first = augmentation(batch.clone())
    expect(isinstance(first, torch.Tensor) and first.shape == batch.shape,
           f"the augmentation turned a batch of shape {tuple(batch.shape)} into "
           f"{tuple(first.shape) if isinstance(first, torch.Tensor) else type(first).__name__}: it must keep the shape")
    expect(first.dtype == torch.uint8, f"the augmentation returned {first.dtype}; keep uint8 pixels (0-255), "
                                       "`normalize` converts them to floats afterwards")
    mirrored = batch.flip(-1)
    flipped = torch.tensor([torch.equal(a, b) or torch.equal(a, g) for a, b, g in
                            zip(first, mirrored, to_grayscale(mirrored))]).float().mean().item()
    grey = ((first[:, 0] == first[:, 1]) & (first[:, 1] == first[:, 2])).flatten(1).all(dim=1).float().mean().item()
    whole = (" All or none: one draw for the whole batch, as torchvision's transforms make when given a batch "
             "(they treat it as one image); draw for each image, as `BatchAugmentation` or "
             "`random_horizontal_flip` do") if flipped in (0.0, 1.0) else ""
    expect(0.35 <= flipped <= 0.65, f"{flipped:.0%} of the images came out mirrored left-right; with "
                                    f"`flip_p=0.5` about half should (`RandomHorizontalFlip(0.5)`).{whole}")
    expect(0.03 <= grey <= 0.2, f"{grey:.0%} of the images came out grey; with `grayscale_p=0.1` about one in ten "
                                "should (`RandomGrayscale(0.1)`)")
    second = augmentation(batch.clone())
    expect(not torch.equal(first, second), "two calls on the same batch gave identical images: the augmentation "
                                           "must be random, a new draw each time an image is used")
    return f"keeps shape and uint8 pixels, random: {flipped:.0%} mirrored and {grey:.0%} grey in a batch of 400"


def _passes(batches) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([x.cpu() for x, _ in batches]), torch.cat([x.cpu() for x, _ in batches])


@check.register(1, "augment the training batches, and only those")
def _step1(ns: Namespace) -> str:
    augmentation = need(ns, "augmentation", "the random augmentation for training batches")
    train_batches = need(ns, "train_batches", "augmented, shuffled training batches")
    val_batches = need(ns, "val_batches", "validation batches without augmentation")
    test_batches = need(ns, "test_batches", "test batches without augmentation")
    message = check_augmentation(augmentation)
    images, val_idx = ns.get("images"), ns.get("val_idx")
    for name, batches in (("val_batches", val_batches), ("test_batches", test_batches)):
        first, second = _passes(batches)
        expect(torch.equal(first, second), f"`{name}` gives different images on each pass: it is augmented. "
                                           "Validation and test must see the real images (E4.4): build them "
                                           "without `augment`")
    if images is not None and val_idx is not None:
        first, _ = _passes(val_batches)
        device = next(iter(val_batches))[0].device  # normalise on the batches' device: the same arithmetic
        expected = normalize(images[val_idx].to(device), BOOK_MEAN, BOOK_STD).cpu()
        expect(first.shape == expected.shape and torch.equal(first, expected),
               "`val_batches` should hold `images[val_idx]`, normalised, in order and not augmented")
    test_images, test_idx = ns.get("test_images"), ns.get("test_idx")
    if test_images is not None and test_idx is not None:
        first, _ = _passes(test_batches)
        device = next(iter(test_batches))[0].device
        expected = normalize(test_images[test_idx].to(device), BOOK_MEAN, BOOK_STD).cpu()
        expect(first.shape == expected.shape and torch.equal(first, expected),
               "`test_batches` should hold the held-out test images, `test_images[test_idx]` with "
               "`test_labels[test_idx]`, normalised, in order and not augmented")
    x, _ = next(iter(train_batches))
    expect(x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1,
           "the training batches should be normalised floats in [-1, 1]")
    expect(getattr(train_batches, "augment", True) is not None,
           "`train_batches` has no augmentation: pass `augment=augmentation`")
    return message + "; validation and test batches are the real images"


@check.register(2, "define the network of Activity 7")
def _step2(ns: Namespace) -> str:
    return check_cnn(_build(ns))


@check.register(3, "train with augmentation")
def _step3(ns: Namespace) -> str:
    setup = check_setup(ns, 100)
    history = need(ns, "history", "what `fit` returns")
    epochs = ns["epochs"]
    expect(len(getattr(history, "train_loss", [])) == epochs and len(getattr(history, "val_loss", [])) == epochs,
           "`history` should come from `fit(..., val_batches=val_batches, ...)` and hold one training and one "
           f"validation loss per epoch ({epochs})")
    expect(getattr(history, "val_metric", None), "pass `metric=accuracy` to `fit` to follow the validation accuracy")
    last = history.val_loss[-1]
    expect(math.isfinite(last), f"the last validation loss is {last}: training diverged")
    model, val_batches = ns["model"], need(ns, "val_batches")
    now, _ = evaluate(model, val_batches, nn.NLLLoss(), device=next(model.parameters()).device)
    expect(close(last, now, 1e-3),
           f"the last validation loss in `history` is {last:.4f}, but `model` now scores {now:.4f} on `val_batches`: "
           "train `model` itself (the network the optimiser holds) and pass `val_batches=val_batches` to `fit`")
    expect(last < math.log(10), f"the last validation loss is {last:.3f}, not below ln 10: did the network learn?")
    return f"{setup}; validation accuracy after the last epoch {history.val_metric[-1]:.1%}"


@check.register(4, "measure the test accuracy")
def _step4(ns: Namespace) -> str:
    return check_test_accuracy(ns)



