"""Checks for Activity 9 (Chapter 4): batch normalisation.

Steps: 1 the ``CNN`` class with ``BatchNorm2d`` after each convolution and ``BatchNorm1d`` after the
first linear layer; 2 training: ``model``, ``loss_function``, ``optimizer``, ``epochs``, ``history``;
3 ``test_acc``, measured in eval mode (running statistics, not the batch's).
"""

from __future__ import annotations

import torch

from . import Checker, Namespace, expect
from .activity07 import _build, check_cnn, check_test_accuracy
from .activity08 import _step3 as _train_step

check = Checker("Activity 9")


@check.register(1, "add batch normalisation to the network")
def _step1(ns: Namespace) -> str:
    model = _build(ns)
    model.eval()
    images = torch.randn(8, 3, 32, 32)
    try:
        with torch.no_grad():
            alone, together = model(images[:1]), model(images)[:1]
    except Exception:  # noqa: BLE001 - a network that fails is explained by check_cnn below
        alone = together = None
    if alone is not None:
        expect(alone.shape == together.shape and torch.allclose(alone, together, atol=1e-5),
               "in eval mode an image's output still depends on the rest of its batch: batch normalisation "
               "should use its running statistics there (`nn.BatchNorm2d`/`nn.BatchNorm1d` do, after "
               "`model.eval()`, unless built with `track_running_stats=False`)")
    message = check_cnn(model, batch_norm=True)
    return message + "; BN after each convolution and the first linear layer"


@check.register(2, "train the network with batch normalisation")
def _step2(ns: Namespace) -> str:
    return _train_step(ns)


@check.register(3, "measure the test accuracy in eval mode")
def _step3(ns: Namespace) -> str:
    return check_test_accuracy(ns)
