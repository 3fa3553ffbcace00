"""Chapter 3's hand-offs between notebooks, and the recipes that rebuild them.

Three notebooks hand something to a later one, always through :mod:`utils.handoff` (atomic write,
a stamp with the format and settings, one file per mode, a damaged or stale file rebuilt with a
printed note):

================================  ==========================================  ==================================
hand-off                          made by                                     read by
================================  ==========================================  ==================================
the prepared (honest) splits      ``data_preparation.ipynb``                  Activities 4, 5 and 6
Activity 4's final figures        ``activity04_classifier.ipynb``             Exercise 7
Activity 5's chosen model         ``activity05_improving_the_model.ipynb``    Activity 6
================================  ==========================================  ==================================

Each reader also runs on its own (fresh clone, any order): a missing file is rebuilt by the
recipe below, which repeats what the making notebook does with the book's settings (fewer epochs
in quick mode). These recipes are lesson decisions, so they live here, with the chapter, and not in
the general modules :mod:`utils.credit_data` and :mod:`utils.credit_model`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

from .credit_data import CreditSplits, clean_credit_data, honest_splits
from .credit_model import MLPClassifier, classification_figures, train_classifier
from .data import load_credit_default
from .handoff import handoff_path, load_or_rebuild, mode_name, outputs_dir, save, shown
from .runtime import get_device, quick, seed_everything

CHAPTER = "ch03"
FORMAT = 1
#: Activity 4's network and training settings, as the book gives them (``epochs``: full mode).
ACTIVITY4_HIDDEN = (10, 10, 10)
ACTIVITY4_SETTINGS = {"lr": 1e-3, "batch_size": 128, "epochs": 50}
#: The book's final network (Activities 5 and 6), and the epochs Activity 6 trains it for when Activity 5
#: has not saved a model (the book's 3,000 epochs take hours on a laptop CPU, and in Activity 5 this network
#: scored better on validation after 50 epochs than after 100).
FINAL_CONFIG = {"hidden_sizes": [100, 100, 50, 50], "dropout": 0.1}
FINAL_EPOCHS = 50

T = TypeVar("T")


def chapter_dir() -> Path:
    """``<outputs>/ch03``: where this chapter's notebooks write their files (``$ADL_OUTPUTS_DIR`` respected)."""
    return outputs_dir() / CHAPTER


def _read(path: Path, stamp: dict, rebuild: Callable[[], dict], what: str, convert: Callable[[dict], T]) -> T:
    """:func:`utils.handoff.load_or_rebuild`, then ``convert``; a payload that does not convert is rebuilt too."""
    payload = load_or_rebuild(path, stamp, rebuild, what=what)
    try:
        return convert(payload)
    except (ValueError, KeyError, TypeError, RuntimeError, AttributeError) as err:
        print(f"Rebuilding {what}, because {shown(path)} does not hold what it should ({type(err).__name__}).")
        payload = rebuild()
        save(path, payload, stamp)
        return convert(payload)


# --------------------------------------------------------------------------- data_preparation -> everyone

def splits_stamp() -> dict[str, Any]:
    return {"format": FORMAT, "content": "honest credit splits", "seed": 0}


def prepared_splits_path(quick_mode: bool | None = None) -> Path:
    """``<outputs>/ch03/prepared_splits_<mode>.pt``."""
    return handoff_path(CHAPTER, "prepared_splits", quick_mode=quick_mode)


def rebuild_prepared_splits() -> CreditSplits:
    """What ``data_preparation.ipynb`` does: clean the raw table and build the honest splits (seed 0)."""
    return honest_splits(clean_credit_data(load_credit_default()), seed=0)


def save_prepared_splits(splits: CreditSplits) -> Path:
    """Save the splits for the later notebooks (atomically, with the stamp)."""
    return save(prepared_splits_path(), splits.to_payload(), splits_stamp())


def load_prepared_splits() -> CreditSplits:
    """The splits ``data_preparation.ipynb`` saved in this mode, or rebuilt from the raw data (with a note)."""
    return _read(prepared_splits_path(), splits_stamp(), lambda: rebuild_prepared_splits().to_payload(),
                 "the prepared splits (data_preparation.ipynb)", CreditSplits.from_payload)


# --------------------------------------------------------------------------- Activity 4 -> Exercise 7

def activity4_epochs() -> int:
    """The book's 50 epochs (5 in quick mode)."""
    return quick(ACTIVITY4_SETTINGS["epochs"], 5)


def activity4_stamp(epochs: int | None = None) -> dict[str, Any]:
    """What Exercise 7 expects: the book's network and settings, trained ``epochs`` (default: this mode's)."""
    return {"format": FORMAT, "content": "Activity 4 figures", "hidden_sizes": list(ACTIVITY4_HIDDEN),
            "lr": ACTIVITY4_SETTINGS["lr"], "batch_size": ACTIVITY4_SETTINGS["batch_size"],
            "epochs": activity4_epochs() if epochs is None else int(epochs)}


def activity4_figures_path(quick_mode: bool | None = None) -> Path:
    """``<outputs>/ch03/activity04_figures_<mode>.pt`` (a quick run never passes for a full one)."""
    return handoff_path(CHAPTER, "activity04_figures", quick_mode=quick_mode)


def _figures_record(train: dict[str, float], validation: dict[str, float], epochs: int, source: str) -> dict:
    return {"train": {k: float(v) for k, v in train.items()},
            "validation": {k: float(v) for k, v in validation.items()},
            "epochs": int(epochs), "source": source, "mode": mode_name()}


def save_activity4_figures(train: dict[str, float], validation: dict[str, float], epochs: int,
                           source: str = "activity04_classifier.ipynb") -> Path:
    """Save the training and validation figures of the Activity 4 model for Exercise 7."""
    return save(activity4_figures_path(), _figures_record(train, validation, epochs, source), activity4_stamp(epochs))


def retrain_activity4(splits: CreditSplits | None = None, device: torch.device | None = None) -> dict:
    """Train the Activity 4 model again (book settings; 5 epochs in quick mode); return its figures record."""
    splits = splits or load_prepared_splits()
    device = device or get_device()
    seed_everything(0)
    model = MLPClassifier(splits.n_features, ACTIVITY4_HIDDEN)
    epochs = activity4_epochs()
    train_classifier(model, splits, epochs, ACTIVITY4_SETTINGS["lr"], ACTIVITY4_SETTINGS["batch_size"],
                     device=device)
    return _figures_record(classification_figures(model, splits.X_train, splits.y_train, device),
                           classification_figures(model, splits.X_val, splits.y_val, device), epochs,
                           "utils.ch03_handoffs.retrain_activity4")


def _check_figures(record: dict) -> dict:
    for part in ("train", "validation"):
        for key in ("accuracy", "balanced_accuracy"):
            float(record[part][key])
    return record


def activity4_figures(device: torch.device | None = None) -> dict:
    """The figures Activity 4 measured in this mode, or (when it has not run) those of a fresh retraining.

    Returns ``{"train": {...}, "validation": {...}, "epochs": int, "source": str, "mode": str}``.
    """
    return _read(activity4_figures_path(), activity4_stamp(), lambda: retrain_activity4(device=device),
                 "the Activity 4 figures (activity04_classifier.ipynb)", _check_figures)


# --------------------------------------------------------------------------- Activity 5 -> Activity 6

def activity5_stamp() -> dict[str, Any]:
    return {"format": FORMAT, "content": "Activity 5 chosen model"}


def activity5_model_path(quick_mode: bool | None = None) -> Path:
    """``<outputs>/ch03/activity05_best_<mode>.pt``."""
    return handoff_path(CHAPTER, "activity05_best", quick_mode=quick_mode)


def _model_record(model: MLPClassifier, validation: dict[str, float], epochs: int, source: str) -> dict:
    return {"config": dict(model.config), "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "validation": {k: float(v) for k, v in validation.items()}, "epochs": int(epochs), "source": source}


def save_activity5_model(model: MLPClassifier, validation: dict[str, float], epochs: int,
                         source: str = "activity05_improving_the_model.ipynb") -> Path:
    """Save the chosen model's configuration, weights (on the CPU) and validation figures for Activity 6."""
    if not isinstance(getattr(model, "config", None), dict):
        raise TypeError("save an MLPClassifier (or a model with a `config` dict of its constructor arguments)")
    return save(activity5_model_path(), _model_record(model, validation, epochs, source), activity5_stamp())


def retrain_activity5(splits: CreditSplits | None = None, device: torch.device | None = None) -> dict:
    """Train the book's final network (:data:`FINAL_CONFIG`; 3 epochs in quick mode); return its record."""
    splits = splits or load_prepared_splits()
    device = device or get_device()
    seed_everything(0)
    model = MLPClassifier(splits.n_features, **FINAL_CONFIG)
    epochs = quick(FINAL_EPOCHS, 3)
    train_classifier(model, splits, epochs, device=device)
    return _model_record(model, classification_figures(model, splits.X_val, splits.y_val, device), epochs,
                         "utils.ch03_handoffs.retrain_activity5")


def _model_from(record: dict) -> tuple[MLPClassifier, dict]:
    model = MLPClassifier(**record["config"])
    model.load_state_dict(record["state_dict"])
    return model.eval(), record


def activity5_model(device: torch.device | None = None) -> tuple[MLPClassifier, dict]:
    """The model Activity 5 chose in this mode (in eval mode, on the CPU) and its saved record.

    When Activity 5 has not run (or its file is damaged), the book's final network is trained again
    first (:func:`retrain_activity5`). The file is read with ``weights_only=True``.
    """
    return _read(activity5_model_path(), activity5_stamp(), lambda: retrain_activity5(device=device),
                 "the Activity 5 model (activity05_improving_the_model.ipynb)", _model_from)
