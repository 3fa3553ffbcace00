"""Chapter 3 model and metrics: a fully connected classifier and the figures that judge it on imbalanced data.

:class:`MLPClassifier` is the network the learner writes by hand in Activity 4, with the layer sizes
as a parameter (Activity 5 tries several). :func:`balanced_accuracy` and :func:`classification_figures`
report a classifier next to the majority baseline. Which sizes and epochs each lesson uses is not
decided here but in the chapter's recipes (:mod:`utils.ch03_handoffs`).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .credit_data import CreditSplits, features_tensor
from .training import History, fit, predict


def balanced_accuracy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over classes of the share of that class's rows predicted correctly (the mean recall).

    Unlike accuracy it does not reward predicting the majority class: always answering "no default"
    scores 0.5 on two classes. Classes absent from ``target`` are skipped.
    """
    predicted = output.argmax(dim=1)
    recalls = [(predicted[target == c] == c).float().mean() for c in target.unique()]
    return torch.stack(recalls).mean()


def classification_figures(model: nn.Module, X: pd.DataFrame, y: pd.Series,
                           device: torch.device | None = None) -> dict[str, float]:
    """Accuracy, balanced accuracy, and precision and recall of the "default" class (1), in eval mode.

    ``majority_accuracy`` is what always predicting the most frequent class of ``y`` would score.
    """
    predicted = predict(model, features_tensor(X), device=device).argmax(dim=1)
    truth = torch.as_tensor(y.to_numpy(copy=True), dtype=torch.long)
    true_pos = int(((predicted == 1) & (truth == 1)).sum())
    figures = {
        "accuracy": float((predicted == truth).float().mean()),
        "balanced_accuracy": float(balanced_accuracy(F.one_hot(predicted, 2).float(), truth)),
        "precision": true_pos / max(int((predicted == 1).sum()), 1),
        "recall": true_pos / max(int((truth == 1).sum()), 1),
        "majority_accuracy": float(y.value_counts(normalize=True).max()),
    }
    return {k: round(v, 4) for k, v in figures.items()}


class MLPClassifier(nn.Module):
    """Fully connected ReLU layers ending in ``log_softmax`` over the classes (train it with ``nn.NLLLoss``).

    ``MLPClassifier(22, (10, 10, 10))`` is the network of Activity 4; with ``dropout > 0`` a dropout
    layer follows every hidden layer. ``config`` holds the constructor arguments, so a checkpoint
    can rebuild the same network.
    """

    def __init__(self, input_size: int, hidden_sizes: Sequence[int], output_size: int = 2, dropout: float = 0.0):
        super().__init__()
        if not hidden_sizes:
            raise ValueError("give at least one hidden layer size")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout is a probability in [0, 1), got {dropout}")
        self.config = {"input_size": int(input_size), "hidden_sizes": [int(h) for h in hidden_sizes],
                       "output_size": int(output_size), "dropout": float(dropout)}
        sizes = [input_size, *hidden_sizes]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.output = nn.Linear(sizes[-1], output_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = self.dropout(F.relu(layer(x)))
        return F.log_softmax(self.output(x), dim=1)


def train_classifier(model: nn.Module, splits: CreditSplits, epochs: int, lr: float = 1e-3, batch_size: int = 128,
                     seed: int = 0, device: torch.device | None = None, progress: bool = True) -> History:
    """Train ``model`` with Adam and ``NLLLoss`` on the training part, measuring on validation each epoch.

    The recorded metric is :func:`balanced_accuracy` (exact on validation, a mean over batches on training).
    """
    train_loader, val_loader, _ = splits.loaders(batch_size, seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    return fit(model, train_loader, nn.NLLLoss(), optimizer, epochs, val_batches=val_loader,
               metric=balanced_accuracy, device=device, progress=progress)
