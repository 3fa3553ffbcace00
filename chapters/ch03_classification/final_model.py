"""The credit-default classifier as it will be deployed (Activity 6, step 1): write the class here.

This file must depend on nothing but PyTorch, so it can be copied next to whatever program serves
the model. Activity 6 imports it (``import final_model``); after editing it, restart the notebook's
kernel or call ``importlib.reload(final_model)``.

The worked version is ``solutions/ch03_classification/final_model.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F  # noqa: F401  (you will need it in forward)
from torch import nn


class Classifier(nn.Module):
    """ReLU hidden layers, each followed by dropout, and a ``log_softmax`` output over the classes.

    Use the attribute names of ``utils.credit.MLPClassifier`` (``hidden``: an ``nn.ModuleList`` of
    ``nn.Linear`` layers, ``output``: the last ``nn.Linear``, ``dropout``: an ``nn.Dropout``), so
    the weights trained in Activity 5 can be loaded into this class.
    """

    def __init__(self, input_size: int = 22, hidden_sizes: Sequence[int] = (100, 100, 50, 50),
                 output_size: int = 2, dropout: float = 0.1):
        super().__init__()
        self.config = {"input_size": input_size, "hidden_sizes": list(hidden_sizes),
                       "output_size": output_size, "dropout": dropout}
        # Activity 6, step 1: create self.hidden, self.output and self.dropout here.

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Activity 6, step 1: ReLU and dropout after every hidden layer, then log_softmax over dim=1.
        raise NotImplementedError("Activity 6, step 1: write Classifier.forward in final_model.py")
