"""Shared helpers for the *Applied Deep Learning with PyTorch* companion notebooks.

The package is small on purpose: open any function a notebook calls and read it.

* :mod:`utils.runtime`  device choice, seeding, quick mode (``ADL_QUICK=1``)
* :mod:`utils.data`     the download registry (``fetch``) and one loader per dataset
* :mod:`utils.standins` offline stand-ins for YearPredictionMSD and the VGG-19 weights
* :mod:`utils.training` ``fit`` / ``evaluate`` / ``predict`` loops and metrics
* :mod:`utils.plots`    learning curves and image grids
* :mod:`utils.results`  ``record_result`` for the results table and CI's learning check
* :mod:`utils.tabular`  outliers, 60/20/20 splits and tensor batches for tables (Chapters 2, 3, 6)
* :mod:`utils.check_env` ``python -m utils.check_env``: versions, device and cached datasets

Chapter helpers, imported by module (``from utils.cifar import CifarBatches``):
:mod:`utils.year_prediction` (Ch. 2), :mod:`utils.credit_data`, :mod:`utils.credit_model` and
:mod:`utils.ch03_handoffs` (Ch. 3), :mod:`utils.cifar` (Ch. 4), :mod:`utils.style` (Ch. 5), :mod:`utils.text` (Ch. 6).

Shared plumbing: :mod:`utils.handoff` (files one notebook leaves for a later one, rebuilt when missing or
damaged), :mod:`utils.progress` (progress bars), :mod:`utils.checks` (the activities' check-your-work cells).
"""

from .data import (
    DatasetUnavailableError,
    fetch,
    load_alice,
    load_amazon_reviews,
    load_cifar10,
    load_credit_default,
    load_energy,
    load_image,
    load_sales_weekly,
    load_year_prediction,
)
from .plots import plot_history, plot_losses, show_images, tensor_to_image
from .results import record_result
from .runtime import describe_run as _describe_run
from .runtime import get_device, is_offline, is_quick, quick, quick_subset, seed_everything
from .training import History, accuracy, binary_accuracy, evaluate, fit, predict


def describe_run(device=None) -> str:
    """Print the mode, device and versions of this run, and start the notebook's wall-clock timer."""
    from .results import start_timer

    start_timer()
    return _describe_run(device)


__all__ = [
    "DatasetUnavailableError", "History", "accuracy", "binary_accuracy", "describe_run", "evaluate",
    "fetch", "fit", "get_device", "is_offline", "is_quick", "load_alice", "load_amazon_reviews",
    "load_cifar10", "load_credit_default", "load_energy", "load_image", "load_sales_weekly",
    "load_year_prediction", "plot_history", "plot_losses", "predict", "quick", "quick_subset",
    "record_result", "seed_everything", "show_images", "tensor_to_image",
]
