"""Stand-ins for the two things that cannot be mirrored, used only with ``ADL_OFFLINE=1``.

* YearPredictionMSD (about 200 MB from UCI): a synthetic table with the same schema.
* VGG-19 ImageNet weights (about 548 MB from the PyTorch hub): a randomly initialised VGG-19.

Both are always announced with :func:`announce_standin`, so nobody mistakes their numbers
for the book's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from .runtime import is_offline

#: What this process replaced by a stand-in; ``record_result`` stores it with the figures.
USED: list[str] = []


def announce_standin(what: str, instead: str) -> None:
    """Print a banner that cannot be overlooked in a notebook's output, and remember the stand-in."""
    if what not in USED:
        USED.append(what)
    bar = "=" * 78
    print(f"{bar}\nOFFLINE STAND-IN: {what} cannot be downloaded (ADL_OFFLINE=1).\n"
          f"Using {instead}.\nResults below are not the book's; run online for the real data.\n{bar}")


def synthetic_year_prediction(nrows: int = 50_000, seed: int = 2011) -> pd.DataFrame:
    """A deterministic YearPredictionMSD look-alike: column 0 an int year in 1922-2011, columns 1-90 floats.

    The years follow the real data's skew towards the 2000s, and 20 of the features depend
    linearly on the year (plus noise), so a regression model can learn something, but not
    everything, as with the real data.
    """
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal(nrows)
    years = np.clip(np.round(2011 - np.abs(13.0 * latent) + rng.normal(0, 1, nrows)), 1922, 2011).astype(np.int64)
    z = (years - 1998.0) / 11.0
    features = rng.standard_normal((nrows, 90))
    weights = np.zeros(90)
    weights[rng.choice(90, size=20, replace=False)] = rng.normal(0, 1.0, 20)
    features += np.outer(z, weights)
    scale = np.concatenate([rng.uniform(5, 50, 12), rng.uniform(50, 2000, 78)])  # averages, then covariances
    offset = np.concatenate([rng.uniform(-20, 50, 12), rng.uniform(-100, 100, 78)])
    frame = pd.DataFrame(features * scale + offset, columns=range(1, 91))
    frame.insert(0, 0, years)
    return frame


def vgg19_features(weights: str | None = "IMAGENET1K_V1") -> nn.Sequential:
    """The ``features`` part of torchvision's VGG-19, with ImageNet weights when they can be had.

    Online, the weights download (progress bar, hash-checked) into the PyTorch hub cache.
    With ``ADL_OFFLINE=1`` the cached weights are used if present; otherwise a randomly
    initialised VGG-19 (seeded, so runs repeat) is returned with a banner.
    """
    from torchvision.models import VGG19_Weights, vgg19

    if weights is None:
        return vgg19(weights=None).features
    chosen = VGG19_Weights[weights]
    if is_offline():
        cached = torch.hub.get_dir() + "/checkpoints/" + chosen.url.rsplit("/", 1)[-1]
        if not _exists(cached):
            announce_standin("the VGG-19 ImageNet weights",
                             "a randomly initialised VGG-19 (same layers, no learned features): "
                             "style transfer will run, but the picture will not look like the book's")
            torch.manual_seed(0)
            return vgg19(weights=None).features
    try:
        return vgg19(weights=chosen).features
    except Exception as err:
        raise RuntimeError(
            f"Could not download the VGG-19 weights from {chosen.url} into {torch.hub.get_dir()} "
            f"({type(err).__name__}: {err}). Check your connection, or set ADL_OFFLINE=1 to run with "
            "randomly initialised weights (announced as a stand-in)."
        ) from err


def _exists(path: str) -> bool:
    from pathlib import Path

    return Path(path).is_file()
