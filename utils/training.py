"""Training and evaluation loops shared by the chapters.

The loops are deliberately plain: one pass over a loader per epoch, ``model.train()`` while
learning, ``model.eval()`` and ``torch.inference_mode()`` (no gradients) while measuring, and epoch figures
weighted by batch size (so a smaller last batch counts for what it is). They never
re-initialise the model, so calling :func:`fit` twice continues training.
"""

from __future__ import annotations

import math
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


class NonFiniteLossError(FloatingPointError):
    """Training stopped because a loss was NaN or infinite; ``history`` holds the epochs completed before."""

    def __init__(self, message: str, *, epoch: int, batch: int | None, history: History | None = None):
        super().__init__(message)
        self.epoch, self.batch, self.history = epoch, batch, history


CAUSES = ("Usual causes: a learning rate that is too high (try 10x smaller), targets that are not scaled "
          "(e.g. values in the thousands fed to MSELoss; standardise them), or NaN/inf values in the data "
          "(check with torch.isnan(x).any() and torch.isinf(x).any()).")


def _no_grad_context(model: nn.Module):
    """``torch.inference_mode`` for measuring (faster), unless a lazy module still has to create its weights."""
    lazy = any(isinstance(p, nn.parameter.UninitializedParameter) for p in model.parameters())
    return torch.no_grad() if lazy else torch.inference_mode()


def run_epoch(model: nn.Module, batches: Batches, loss_fn: Callable[..., torch.Tensor], *,
              optimizer: torch.optim.Optimizer | None = None, metric: Metric | None = None,
              device: torch.device | None = None, clip_grad_norm: float | None = None,
              epoch: int | None = None, check_every: int | None = None) -> tuple[float, float | None]:
    """One pass over ``batches``; trains when an optimizer is given, else only measures.

    Returns the epoch's mean loss and mean metric (``None`` without a metric), both weighted
    by the number of samples in each batch. The sums stay on the device and are read once at
    the end of the epoch, so the GPU never waits for the CPU after each batch.

    While training, a NaN or infinite loss raises :class:`NonFiniteLossError` naming ``epoch`` and
    the first bad batch. On a CPU every batch is checked (it costs nothing); on an accelerator the
    losses are checked every ``check_every`` batches (default 50) and at the end, to avoid a sync per batch.
    """
    device = device or next(model.parameters()).device
    if check_every is None:
        check_every = 1 if device.type == "cpu" else 50
    training = optimizer is not None
    model.train(training)
    # float64 sums give the same figures as adding Python floats; MPS has no float64.
    dtype = torch.float32 if device.type == "mps" else torch.float64
    total_loss = torch.zeros((), dtype=dtype, device=device)
    total_metric = torch.zeros((), dtype=dtype, device=device)
    seen, window, window_start = 0, [], 0
    with torch.enable_grad() if training else _no_grad_context(model):
        for index, (inputs, targets) in enumerate(batches):
            inputs, targets = _move(inputs, device), _move(targets, device)
            output = model(inputs)
            loss = loss_fn(output, targets)
            if training:
                optimizer.zero_grad()
                loss.backward()
                if clip_grad_norm is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
                optimizer.step()
                window.append(loss.detach())
                if len(window) >= check_every:
                    _check_finite(window, window_start, epoch)
                    window, window_start = [], index + 1
            n = len(targets)
            seen += n
            total_loss += loss.detach().to(dtype) * n
            if metric is not None:
                score = metric(output.detach(), targets)
                total_metric += (score.detach().to(dtype) if isinstance(score, torch.Tensor) else float(score)) * n
    if training and window:
        _check_finite(window, window_start, epoch)
    if seen == 0:
        raise ValueError("The loader produced no batches: is the dataset empty?")
    return total_loss.item() / seen, (total_metric.item() / seen if metric is not None else None)


def _check_finite(losses: list[torch.Tensor], first_index: int, epoch: int | None) -> None:
    """Raise :class:`NonFiniteLossError` naming the first of ``losses`` that is NaN or infinite (one sync)."""
    finite = torch.isfinite(torch.stack(losses))
    if bool(finite.all()):
        return
    bad = int((~finite).nonzero()[0]) + first_index
    value = losses[bad - first_index].item()
    where = f"epoch {epoch}, batch {bad + 1}" if epoch is not None else f"batch {bad + 1}"
    raise NonFiniteLossError(f"Training stopped: the loss became {value} at {where} (counting from 1), so every "
                             f"later step would only spread it through the weights. {CAUSES}",
                             epoch=epoch or 0, batch=bad + 1)


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

    **Stopping early.** Interrupting the kernel (Ctrl-C, or the stop button in Jupyter) ends
    training cleanly: ``fit`` closes the progress bar, prints how many epochs were completed,
    and returns the history of those epochs (the model keeps the weights it had reached, partway
    through the interrupted epoch). So ``history = fit(...)`` still holds the figures so far.

    **Divergence.** A NaN or infinite training loss stops training at once with
    :class:`NonFiniteLossError`, which names the epoch and batch and the usual causes; its
    ``history`` attribute (and the ``history`` you passed in) holds the epochs completed before.
    """
    device = device or get_device()
    model.to(device)
    history = history if history is not None else History()
    history.metric_name = getattr(metric, "__name__", None) if metric is not None else None
    first = len(history) + 1
    bar = tqdm(range(epochs), desc="epochs", disable=not progress)
    epoch = first
    try:
        for epoch in range(first, first + epochs):
            loss, score = run_epoch(model, train_batches, loss_fn, optimizer=optimizer, metric=metric,
                                    device=device, clip_grad_norm=clip_grad_norm, epoch=epoch)
            shown = {"loss": f"{loss:.4f}"}
            val_loss = val_score = None
            if val_batches is not None:
                val_loss, val_score = evaluate(model, val_batches, loss_fn, metric=metric, device=device)
                if not math.isfinite(val_loss):
                    raise NonFiniteLossError(
                        f"Training stopped: the validation loss became {val_loss} after epoch {epoch} although "
                        f"the training loss was {loss:.4g}. Look for NaN/inf values in the validation data. {CAUSES}",
                        epoch=epoch, batch=None)
            history.train_loss.append(loss)
            if score is not None:
                history.train_metric.append(score)
            if val_loss is not None:
                history.val_loss.append(val_loss)
                shown["val_loss"] = f"{val_loss:.4f}"
                if val_score is not None:
                    history.val_metric.append(val_score)
                    shown[f"val_{history.metric_name}"] = f"{val_score:.3f}"
            bar.update(1)
            bar.set_postfix(shown)
    except NonFiniteLossError as err:
        err.history = history
        raise
    except KeyboardInterrupt:
        bar.close()
        done = len(history) - first + 1
        print(f"Training interrupted during epoch {epoch}: returning the history of the {done} epoch(s) "
              f"completed in this call ({len(history)} in all). The model keeps the weights it had reached.")
        return history
    finally:
        bar.close()
    return history


@torch.no_grad()
def predict(model: nn.Module, inputs: torch.Tensor | Batches, device: torch.device | None = None) -> torch.Tensor:
    """Model outputs in eval mode for a tensor or for the inputs of a loader, returned on the CPU."""
    device = device or next(model.parameters()).device
    model.eval()
    if isinstance(inputs, torch.Tensor):
        return model(_move(inputs, device)).cpu()
    return torch.cat([model(_move(x, device)).cpu() for x, _ in inputs])
