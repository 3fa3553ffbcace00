"""The credit-default classifier as it is deployed (Activity 6): the model class and its checkpoint.

This file needs nothing but PyTorch, so it can be copied next to whatever program serves the model.
A checkpoint is a plain dictionary of numbers, lists and tensors: everything needed to rebuild the
network (sizes, dropout) plus its weights, and optionally the feature names and the min-max scaling
the features need. It is read with ``torch.load(..., weights_only=True)``, which refuses anything
that is not plain data, so opening a checkpoint can never run code hidden in the file.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

#: The keys every checkpoint must have (extra keys, such as the scaler, are optional).
REQUIRED_KEYS = ("input_size", "hidden_sizes", "output_size", "dropout", "state_dict")


class CheckpointError(ValueError):
    """A file is not a usable checkpoint of :class:`Classifier` (the message says why)."""


class Classifier(nn.Module):
    """ReLU hidden layers, each followed by dropout, and a ``log_softmax`` output over the classes.

    The defaults are the book's final network: 22 inputs, hidden layers of 100, 100, 50 and 50
    units, dropout 0.1 and two classes (no default / default).
    """

    def __init__(self, input_size: int = 22, hidden_sizes: Sequence[int] = (100, 100, 50, 50),
                 output_size: int = 2, dropout: float = 0.1):
        super().__init__()
        if not hidden_sizes:
            raise ValueError("give at least one hidden layer size")
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


def save_checkpoint(model: Classifier, path: str | Path, **extra) -> Path:
    """Save the model's sizes, dropout and weights (moved to the CPU), plus any ``extra`` plain data."""
    checkpoint = dict(model.config)
    checkpoint["state_dict"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    checkpoint.update(extra)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path)
    return path


def load_checkpoint(path: str | Path) -> Classifier:
    """Rebuild the network a checkpoint describes, load its weights and return it in eval mode (on the CPU).

    Raises :class:`CheckpointError` with a clear message when the file is not a checkpoint, lacks a
    key, or holds weights that do not fit the sizes it declares; ``FileNotFoundError`` when absent.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch.save writes a zip archive; a refused zip is a real checkpoint holding disallowed objects
        if "Weights only load failed" not in str(err) or not zipfile.is_zipfile(path):
            raise CheckpointError(f"{path} is not a PyTorch checkpoint (torch.load cannot read it)") from err
        raise CheckpointError(
            f"{path} contains Python objects other than tensors and plain data (a whole pickled model, for "
            "instance). weights_only=True refuses to unpickle them, because unpickling can run arbitrary code. "
            "Save model.state_dict() and the sizes instead (save_checkpoint does).") from err
    except Exception as err:  # torch.load raises many types on files that are not checkpoints at all
        raise CheckpointError(f"{path} is not a PyTorch checkpoint (torch.load failed with "
                              f"{type(err).__name__})") from err
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path} holds a {type(checkpoint).__name__}, not a checkpoint dictionary")
    missing = [key for key in REQUIRED_KEYS if key not in checkpoint]
    if missing:
        raise CheckpointError(f"{path} lacks the key(s) {missing}; a checkpoint needs {list(REQUIRED_KEYS)}")
    try:
        model = Classifier(checkpoint["input_size"], checkpoint["hidden_sizes"], checkpoint["output_size"],
                           checkpoint["dropout"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: the sizes it declares do not describe a network ({err})") from err
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        details = "; ".join(line.strip() for line in str(err).splitlines()[1:] if line.strip())
        raise CheckpointError(f"{path}: the weights do not fit a network with input_size="
                              f"{checkpoint['input_size']}, hidden_sizes={checkpoint['hidden_sizes']}, "
                              f"output_size={checkpoint['output_size']} ({details})") from err
    return model.eval()
