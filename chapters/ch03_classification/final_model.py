"""The credit-default classifier as it will be deployed (Activity 6): paste your class and loader here.

In Activity 6 you write ``Classifier`` (step 1) and ``load_checkpoint`` (step 4) in the notebook, where
the checks can test them. Once they pass, copy both into this file: it must depend on nothing but
PyTorch, so it can be copied next to whatever program serves the model (``import final_model``).

The worked version is ``solutions/ch03_classification/final_model.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F  # noqa: F401  (you will need it in forward)
from torch import nn


class Classifier(nn.Module):
    """ReLU hidden layers, each followed by dropout, and a ``log_softmax`` output over the classes.

    Use the attribute names of ``utils.credit_model.MLPClassifier`` (``hidden``: an ``nn.ModuleList`` of
    ``nn.Linear`` layers, ``output``: the last ``nn.Linear``, ``dropout``: an ``nn.Dropout``), so
    the weights trained in Activity 5 can be loaded into this class.
    """

    def __init__(self, input_size: int = 22, hidden_sizes: Sequence[int] = (100, 100, 50, 50),
                 output_size: int = 2, dropout: float = 0.1):
        super().__init__()
        self.config = {"input_size": input_size, "hidden_sizes": list(hidden_sizes),
                       "output_size": output_size, "dropout": dropout}
        # Activity 6, step 1: paste your layers here (self.hidden, self.output, self.dropout).

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Activity 6, step 1: paste your forward here.
        raise NotImplementedError("Activity 6: copy your Classifier from the notebook into final_model.py")
