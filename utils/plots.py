"""Plots the notebooks share: learning curves, image grids and tensor-to-image conversion."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from .training import History


def plot_history(history: History, title: str = "", ax_width: float = 5.5) -> plt.Figure:
    """Loss (and metric, if recorded) per epoch for training and validation, side by side."""
    panels = [("loss", history.train_loss, history.val_loss)]
    if history.train_metric:
        panels.append((history.metric_name or "metric", history.train_metric, history.val_metric))
    fig, axes = plt.subplots(1, len(panels), figsize=(ax_width * len(panels), 3.6), squeeze=False)
    for ax, (name, train, val) in zip(axes[0], panels):
        epochs = range(1, len(train) + 1)
        ax.plot(epochs, train, marker="." if len(train) < 30 else None, label="training")
        if val:
            ax.plot(epochs, val, marker="." if len(val) < 30 else None, label="validation")
        ax.set(xlabel="epoch", ylabel=name, title=f"{title} {name}".strip())
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def plot_losses(losses: Sequence[float], title: str = "Training loss", xlabel: str = "iteration",
                ylabel: str = "loss", logy: bool = False) -> plt.Figure:
    """A single loss curve, e.g. from a hand-written training loop."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(range(1, len(losses) + 1), losses)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def tensor_to_image(tensor: torch.Tensor, mean: Sequence[float] | None = None,
                    std: Sequence[float] | None = None) -> np.ndarray:
    """A (C, H, W) image tensor as an (H, W, C) float array in [0, 1] for ``plt.imshow``.

    ``mean``/``std`` undo a ``transforms.Normalize``; the result is clamped to [0, 1], because
    values outside that range would otherwise be clipped or wrapped around by image libraries.
    """
    image = tensor.detach().cpu().float()
    if image.dim() == 4:
        if image.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of shape {tuple(image.shape)}")
        image = image[0]
    if image.dim() != 3:
        raise ValueError(f"expected a (C, H, W) tensor, got shape {tuple(image.shape)}")
    if std is not None:
        image = image * torch.tensor(std).view(-1, 1, 1)
    if mean is not None:
        image = image + torch.tensor(mean).view(-1, 1, 1)
    image = image.clamp(0, 1).permute(1, 2, 0).numpy()
    return image[..., 0] if image.shape[-1] == 1 else image


def show_images(images: Sequence[torch.Tensor] | torch.Tensor, titles: Sequence[str] | None = None,
                ncols: int = 8, mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                size: float = 1.6) -> plt.Figure:
    """A grid of image tensors, each with an optional title (e.g. its label)."""
    images = list(images)
    nrows = (len(images) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.3 * (titles is not None)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, img) in enumerate(zip(axes.flat, images)):
        ax.imshow(tensor_to_image(img, mean, std), cmap="gray" if img.shape[-3] == 1 else None)
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    return fig
