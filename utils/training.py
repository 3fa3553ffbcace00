"""Training and evaluation loops shared by the chapters.

The loops are deliberately plain: one pass over a loader per epoch, ``model.train()`` while
learning, ``model.eval()`` and ``torch.no_grad()`` while measuring, and epoch figures
weighted by batch size (so a smaller last batch counts for what it is). They never
re-initialise the model, so calling :func:`fit` twice continues training.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn
from .progress import progress_bar as tqdm

from .runtime import get_device

Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


def accuracy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Share of rows whose highest score (logit, probability or log-probability) is the target class."""
    return (output.argmax(dim=1) == target).float().mean()


def binary_accuracy(output: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Share of correct yes/no predictions, for outputs that are probabilities (after a sigmoid)."""
    return ((output.reshape(-1) >= threshold).float() == target.reshape(-1).float()).float().mean()


@dataclass
class History:
    """Per-epoch figures of a training run (``val_*`` lists stay empty without validation data)."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    train_metric: list[float] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)
    metric_name: str | None = None

    def __len__(self) -> int:
        return len(self.train_loss)

    def as_frame(self):
        """The history as a pandas DataFrame, one row per epoch."""
        import pandas as pd

        columns = {"train_loss": self.train_loss, "val_loss": self.val_loss,
                   f"train_{self.metric_name}": self.train_metric, f"val_{self.metric_name}": self.val_metric}
        frame = pd.DataFrame({k: v for k, v in columns.items() if v})
        frame.index = range(1, len(frame) + 1)
        frame.index.name = "epoch"
        return frame


def _move(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    return batch.to(device, non_blocking=device.type == "cuda")


def run_epoch(model: nn.Module, batches: Batches, loss_fn: Callable[..., torch.Tensor], *,
              optimizer: torch.optim.Optimizer | None = None, metric: Metric | None = None,
              device: torch.device | None = None, clip_grad_norm: float | None = None) -> tuple[float, float | None]:
    """One pass over ``batches``; trains when an optimizer is given, else only measures.

    Returns the epoch's mean loss and mean metric (``None`` without a metric), both weighted
    by the number of samples in each batch.
    """
    device = device or next(model.parameters()).device
    training = optimizer is not None
    model.train(training)
    total_loss, total_metric, seen = 0.0, 0.0, 0
    with torch.set_grad_enabled(training):
        for inputs, targets in batches:
            inputs, targets = _move(inputs, device), _move(targets, device)
            output = model(inputs)
            loss = loss_fn(output, targets)
            if training:
                optimizer.zero_grad()
                loss.backward()
                if clip_grad_norm is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
                optimizer.step()
            n = len(targets)
            seen += n
            total_loss += loss.item() * n
            if metric is not None:
                total_metric += metric(output.detach(), targets).item() * n
    if seen == 0:
        raise ValueError("The loader produced no batches: is the dataset empty?")
    return total_loss / seen, (total_metric / seen if metric is not None else None)


def evaluate(model: nn.Module, batches: Batches, loss_fn: Callable[..., torch.Tensor], *,
             metric: Metric | None = None, device: torch.device | None = None) -> tuple[float, float | None]:
    """Mean loss (and metric) of ``model`` over ``batches`` in eval mode, without gradients."""
    return run_epoch(model, batches, loss_fn, metric=metric, device=device)


def fit(model: nn.Module, train_batches: Batches, loss_fn: Callable[..., torch.Tensor],
        optimizer: torch.optim.Optimizer, epochs: int, *, val_batches: Batches | None = None,
        metric: Metric | None = None, device: torch.device | None = None, history: History | None = None,
        clip_grad_norm: float | None = None, progress: bool = True) -> History:
    """Train for ``epochs`` epochs and return the per-epoch :class:`History`.

    Pass an earlier ``history`` to continue a run; the model is moved to ``device``
    (default: :func:`utils.get_device`) but otherwise used as it is.
    """
    device = device or get_device()
    model.to(device)
    history = history if history is not None else History()
    history.metric_name = getattr(metric, "__name__", None) if metric is not None else None
    bar = tqdm(range(epochs), desc="epochs", disable=not progress)
    for _ in bar:
        loss, score = run_epoch(model, train_batches, loss_fn, optimizer=optimizer, metric=metric,
                                device=device, clip_grad_norm=clip_grad_norm)
        history.train_loss.append(loss)
        if score is not None:
            history.train_metric.append(score)
        shown = {"loss": f"{loss:.4f}"}
        if val_batches is not None:
            val_loss, val_score = evaluate(model, val_batches, loss_fn, metric=metric, device=device)
            history.val_loss.append(val_loss)
            shown["val_loss"] = f"{val_loss:.4f}"
            if val_score is not None:
                history.val_metric.append(val_score)
                shown[f"val_{history.metric_name}"] = f"{val_score:.3f}"
        bar.set_postfix(shown)
    return history


@torch.no_grad()
def predict(model: nn.Module, inputs: torch.Tensor | Batches, device: torch.device | None = None) -> torch.Tensor:
    """Model outputs in eval mode for a tensor or for the inputs of a loader, returned on the CPU."""
    device = device or next(model.parameters()).device
    model.eval()
    if isinstance(inputs, torch.Tensor):
        return model(_move(inputs, device)).cpu()
    return torch.cat([model(_move(x, device)).cpu() for x, _ in inputs])
