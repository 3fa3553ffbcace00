"""Chapter 3: the Default of Credit Card Clients data, prepared for classification.

Two pipelines live here, side by side, so the notebooks can compare them:

* :func:`leaky_book_splits` repeats the book's order of steps: over-sample the defaults of the
  *whole* table, min-max scale the whole table, then split 60/20/20. Copies of the same client
  end up in training, validation and test, so the test accuracy is inflated. Kept for demonstration.
* :func:`honest_splits` splits first (stratified 60/20/20), over-samples only the training part and
  fits the min-max scaler on training rows only. Validation and test keep the real class shares.

Every row keeps the index it had in the raw table (the client's position), which is how
:func:`shared_clients` finds clients that appear on both sides of a split.

:func:`load_prepared_splits` reads the honest splits that ``data_preparation.ipynb`` saved under
``outputs/ch03/prepared`` and rebuilds them when they are missing. :func:`activity4_figures` gives
Exercise 7 the accuracies Activity 4 measured, retraining the Activity 4 model when they are missing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from .data import PROJECT_ROOT, load_credit_default
from .runtime import get_device, is_quick, quick, seed_everything
from .tabular import split_train_val_test, tensor_loader
from .training import History, fit, predict

TARGET = "default payment next month"
DROPPED_COLUMNS = ("ID", "SEX")
OUTPUT_DIR = PROJECT_ROOT / "outputs" / "ch03"
PREPARED_DIR = OUTPUT_DIR / "prepared"
_FORMAT_VERSION = 1

#: The client the book feeds to its deployed model in Activity 6 (22 features, already min-max scaled).
BOOK_EXAMPLE: tuple[float, ...] = (
    0.0606, 0.5000, 0.3333, 0.4828, 0.4000, 0.4000, 0.4000, 0.4000, 0.4000, 0.4000, 0.1651,
    0.0869, 0.0980, 0.1825, 0.1054, 0.2807, 0.0016, 0.0000, 0.0033, 0.0027, 0.0031, 0.0021,
)

#: Activity 4's network and training settings, as the book gives them.
ACTIVITY4_HIDDEN = (10, 10, 10)
ACTIVITY4_SETTINGS = {"lr": 1e-3, "batch_size": 128, "epochs": 50}
#: The book's final network (Activities 5 and 6), and the epochs Activity 6 trains it for when Activity 5
#: has not saved a model (the book's 3,000 epochs take hours on a laptop CPU, and in Activity 5 this network
#: scored better on validation after 50 epochs than after 100).
FINAL_CONFIG = {"hidden_sizes": [100, 100, 50, 50], "dropout": 0.1}
FINAL_EPOCHS = 50


# --------------------------------------------------------------------------- cleaning

def clean_credit_data(raw: pd.DataFrame) -> pd.DataFrame:
    """The raw table without ``ID`` (a row number, not a property of the client) and ``SEX``."""
    missing = [c for c in (*DROPPED_COLUMNS, TARGET) if c not in raw.columns]
    if missing:
        raise ValueError(f"expected the raw credit table with columns {missing}; got {list(raw.columns)[:8]}...")
    return raw.drop(columns=list(DROPPED_COLUMNS))


def features_and_target(data: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Split a cleaned table into the feature columns ``X`` and the target column ``y``."""
    if TARGET not in data.columns:
        raise ValueError(f"the table has no {TARGET!r} column")
    return data.drop(columns=[TARGET]), data[TARGET]


def oversample_minority(X: pd.DataFrame, y: pd.Series, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Draw every smaller class, with replacement, until it is as large as the largest class.

    Returns the majority rows first (in their order), then the drawn rows, as the book does.
    Indexes are kept, so a client drawn twice appears twice with the same index.
    """
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
    if not X.index.equals(y.index):
        raise ValueError("X and y must share the same index (one row per client)")
    counts = y.value_counts()
    majority = counts.idxmax()
    frame = X.assign(__target__=y)
    parts = [frame[y == majority]]
    for label in sorted(counts.index):
        if label != majority:
            parts.append(frame[y == label].sample(int(counts[majority]), replace=True, random_state=seed))
    resampled = pd.concat(parts, axis=0)
    return resampled.drop(columns="__target__"), resampled["__target__"].rename(y.name)


# --------------------------------------------------------------------------- scaling

@dataclass
class MinMaxScaler:
    """Min-max scaling ``(x - min) / (max - min)`` per column, with the minimum and maximum it was fitted on.

    Columns that are constant in the fitting rows are mapped to 0 instead of dividing by zero.
    Rows outside the fitted range (possible for validation and test rows) fall outside [0, 1].
    """

    minimum: pd.Series
    maximum: pd.Series

    @classmethod
    def fit(cls, X: pd.DataFrame) -> MinMaxScaler:
        """Learn each column's minimum and maximum from ``X`` (the training rows only)."""
        if len(X) == 0:
            raise ValueError("cannot fit a scaler on an empty table")
        return cls(X.min().astype(float), X.max().astype(float))

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Scale ``X`` with the fitted minimum and maximum (same columns, same index)."""
        if list(X.columns) != list(self.minimum.index):
            raise ValueError(f"the scaler was fitted on columns {list(self.minimum.index)[:5]}..., "
                             f"got {list(X.columns)[:5]}...")
        span = (self.maximum - self.minimum).replace(0.0, 1.0)
        return (X - self.minimum) / span

    def to_dict(self) -> dict[str, list]:
        """Plain lists (JSON- and ``torch.load(weights_only=True)``-friendly)."""
        return {"columns": list(self.minimum.index), "minimum": self.minimum.tolist(),
                "maximum": self.maximum.tolist()}

    @classmethod
    def from_dict(cls, values: dict[str, list]) -> MinMaxScaler:
        columns = values["columns"]
        return cls(pd.Series(values["minimum"], index=columns, dtype=float),
                   pd.Series(values["maximum"], index=columns, dtype=float))


# --------------------------------------------------------------------------- splits

@dataclass
class CreditSplits:
    """Scaled features and targets of the training, validation and test parts, plus the scaler used."""

    X_train: pd.DataFrame
    X_val: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_val: pd.Series
    y_test: pd.Series
    scaler: MinMaxScaler

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of the three feature tables, e.g. ``{"train": (28036, 22), ...}``."""
        return {"train": self.X_train.shape, "validation": self.X_val.shape, "test": self.X_test.shape}

    def default_shares(self) -> dict[str, float]:
        """Share of defaults (class 1) in each part, rounded to 4 decimals."""
        return {name: round(float(y.mean()), 4)
                for name, y in (("train", self.y_train), ("validation", self.y_val), ("test", self.y_test))}

    def loaders(self, batch_size: int = 128, seed: int = 0) -> tuple[DataLoader, DataLoader, DataLoader]:
        """Training (shuffled, seeded), validation and test loaders with ``long`` class labels.

        Validation and test come as one batch each, so a metric computed per batch is exact there.
        """
        def loader(X: pd.DataFrame, y: pd.Series, size: int, shuffle: bool) -> DataLoader:
            # writable NumPy copies: pandas 3 hands out read-only views, which torch warns about
            return tensor_loader(X.to_numpy(copy=True), y.to_numpy(copy=True), size, shuffle=shuffle, seed=seed,
                                 y_dtype=torch.long)

        return (loader(self.X_train, self.y_train, batch_size, True),
                loader(self.X_val, self.y_val, len(self.y_val), False),
                loader(self.X_test, self.y_test, len(self.y_test), False))


def leaky_book_splits(data: pd.DataFrame, seed: int = 0) -> CreditSplits:
    """The book's pipeline (demonstration only): over-sample and scale the whole table, *then* split.

    ``data`` is the cleaned table (:func:`clean_credit_data`). Gives 46,728 rows split 28,036 /
    9,346 / 9,346, where many defaulting clients appear in more than one part.
    """
    X, y = features_and_target(data)
    X, y = oversample_minority(X, y, seed=seed)
    scaler = MinMaxScaler.fit(X)  # fitted on every row, test rows included
    X_train, X_val, X_test, y_train, y_val, y_test = split_train_val_test(scaler.transform(X), y, seed=seed)
    return CreditSplits(X_train, X_val, X_test, y_train, y_val, y_test, scaler)


def honest_splits(data: pd.DataFrame, seed: int = 0) -> CreditSplits:
    """Split first (stratified 60/20/20), over-sample the training part only, scale with training rows only.

    ``data`` is the cleaned table (:func:`clean_credit_data`). Validation and test keep the real
    share of defaults (22.12%), so they measure what the model will meet in use.
    """
    X, y = features_and_target(data)
    X_train, X_val, X_test, y_train, y_val, y_test = split_train_val_test(X, y, seed=seed, stratify=True)
    X_train, y_train = oversample_minority(X_train, y_train, seed=seed)
    scaler = MinMaxScaler.fit(X_train)
    return CreditSplits(scaler.transform(X_train), scaler.transform(X_val), scaler.transform(X_test),
                        y_train, y_val, y_test, scaler)


def shared_clients(splits: CreditSplits) -> dict[str, float]:
    """How many validation and test rows belong to a client that also appears in the training part.

    Returns counts and shares; with an honest split all of them are zero.
    """
    seen = set(splits.X_train.index)
    result: dict[str, float] = {}
    for name, part in (("validation", splits.X_val), ("test", splits.X_test)):
        shared = int(part.index.isin(seen).sum())
        result[f"{name}_rows_seen_in_training"] = shared
        result[f"{name}_share_seen_in_training"] = round(shared / len(part), 4)
    return result


# --------------------------------------------------------------------------- saving and loading

def save_splits(splits: CreditSplits, folder: Path = PREPARED_DIR) -> Path:
    """Write the six tables as CSV (index kept as the ``client`` column) and the scaler as JSON."""
    folder.mkdir(parents=True, exist_ok=True)
    for part in ("train", "val", "test"):
        X, y = getattr(splits, f"X_{part}"), getattr(splits, f"y_{part}")
        X.assign(**{TARGET: y}).to_csv(folder / f"{part}.csv", index_label="client")
    meta = {"format_version": _FORMAT_VERSION, "scaler": splits.scaler.to_dict(),
            "rows": {part: len(getattr(splits, f"y_{part}")) for part in ("train", "val", "test")}}
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))  # written last: marks a complete save
    return folder


def read_splits(folder: Path = PREPARED_DIR) -> CreditSplits:
    """Read splits written by :func:`save_splits`; raises ``FileNotFoundError`` or ``ValueError`` if unusable."""
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"no prepared splits in {folder} (missing meta.json)")
    meta = json.loads(meta_path.read_text())
    if meta.get("format_version") != _FORMAT_VERSION:
        raise ValueError(f"{folder} holds splits in format {meta.get('format_version')}, expected {_FORMAT_VERSION}")
    parts = {}
    for part in ("train", "val", "test"):
        frame = pd.read_csv(folder / f"{part}.csv", index_col="client")
        if len(frame) != meta["rows"][part]:
            raise ValueError(f"{folder / (part + '.csv')} has {len(frame)} rows, expected {meta['rows'][part]}")
        parts[part] = features_and_target(frame)
    scaler = MinMaxScaler.from_dict(meta["scaler"])
    return CreditSplits(parts["train"][0], parts["val"][0], parts["test"][0],
                        parts["train"][1], parts["val"][1], parts["test"][1], scaler)


def load_prepared_splits(folder: Path = PREPARED_DIR, rebuild: bool = False) -> CreditSplits:
    """The honest splits saved by ``data_preparation.ipynb``; rebuilt from the raw data when missing.

    A missing, incomplete or outdated save is rebuilt (seed 0) and written again, with a note.
    """
    if not rebuild:
        try:
            return read_splits(folder)
        except (FileNotFoundError, ValueError, KeyError) as reason:
            print(f"Prepared splits not usable ({reason}); rebuilding them from the raw data.")
    splits = honest_splits(clean_credit_data(load_credit_default()), seed=0)
    save_splits(splits, folder)
    return splits


# --------------------------------------------------------------------------- metrics

def features_tensor(X: pd.DataFrame | Sequence[Sequence[float]]) -> torch.Tensor:
    """Features as a float32 tensor (from a writable copy, so torch never sees a read-only pandas view)."""
    values = X.to_numpy(copy=True) if isinstance(X, pd.DataFrame) else X
    return torch.as_tensor(values, dtype=torch.float32)


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


# --------------------------------------------------------------------------- models and training

class MLPClassifier(nn.Module):
    """Fully connected ReLU layers ending in ``log_softmax`` over the classes (train it with ``nn.NLLLoss``).

    ``MLPClassifier(22, (10, 10, 10))`` is the network of Activity 4; with ``dropout > 0`` a dropout
    layer follows every hidden layer. ``config`` holds the constructor arguments, so a checkpoint
    can rebuild the same network.
    """

    def __init__(self, input_size: int, hidden_sizes: Sequence[int] = ACTIVITY4_HIDDEN, output_size: int = 2,
                 dropout: float = 0.0):
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


# --------------------------------------------------------------------------- Activity 4 -> Exercise 7

def activity4_figures_path(quick_mode: bool | None = None) -> Path:
    """Where Activity 4 saves its final figures (one file per mode, so quick runs never pass for full ones)."""
    mode = "quick" if (is_quick() if quick_mode is None else quick_mode) else "full"
    return OUTPUT_DIR / f"activity04_figures_{mode}.json"


def save_activity4_figures(train: dict[str, float], validation: dict[str, float], epochs: int,
                           source: str = "activity04_classifier.ipynb") -> Path:
    """Save the training and validation figures of the Activity 4 model for Exercise 7."""
    path = activity4_figures_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"train": train, "validation": validation, "epochs": epochs, "source": source,
              "mode": "quick" if is_quick() else "full"}
    path.write_text(json.dumps(record, indent=1))
    return path


def retrain_activity4(splits: CreditSplits | None = None, device: torch.device | None = None) -> dict:
    """Train the Activity 4 model again (book settings; fewer epochs in quick mode) and save its figures."""
    splits = splits or load_prepared_splits()
    device = device or get_device()
    seed_everything(0)
    model = MLPClassifier(splits.n_features, ACTIVITY4_HIDDEN)
    epochs = quick(ACTIVITY4_SETTINGS["epochs"], 5)
    train_classifier(model, splits, epochs, ACTIVITY4_SETTINGS["lr"], ACTIVITY4_SETTINGS["batch_size"],
                     device=device)
    save_activity4_figures(classification_figures(model, splits.X_train, splits.y_train, device),
                           classification_figures(model, splits.X_val, splits.y_val, device), epochs,
                           source="utils.credit.retrain_activity4")
    return json.loads(activity4_figures_path().read_text())


def activity4_figures(device: torch.device | None = None) -> dict:
    """The figures Activity 4 measured in this mode, or (when it has not run) those of a fresh retraining.

    Returns ``{"train": {...}, "validation": {...}, "epochs": int, "source": str, "mode": str}``.
    """
    path = activity4_figures_path()
    if path.is_file():
        record = json.loads(path.read_text())
        if {"train", "validation"} <= record.keys():
            return record
    print(f"{path.name} not found: retraining the Activity 4 model (utils.credit.retrain_activity4).")
    return retrain_activity4(device=device)


# --------------------------------------------------------------------------- Activity 5 -> Activity 6

def activity5_model_path(quick_mode: bool | None = None) -> Path:
    """Where Activity 5 saves the model it chose (one file per mode)."""
    mode = "quick" if (is_quick() if quick_mode is None else quick_mode) else "full"
    return OUTPUT_DIR / f"activity05_best_{mode}.pt"


def save_activity5_model(model: MLPClassifier, validation: dict[str, float], epochs: int,
                         source: str = "activity05_improving_the_model.ipynb") -> Path:
    """Save the chosen model's configuration, weights (on the CPU) and validation figures for Activity 6."""
    path = activity5_model_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"config": model.config, "state_dict": state, "validation": validation, "epochs": epochs,
                "source": source}, path)
    return path


def retrain_activity5(splits: CreditSplits | None = None, device: torch.device | None = None) -> Path:
    """Train the book's final network (:data:`FINAL_CONFIG`; fewer epochs in quick mode) and save it."""
    splits = splits or load_prepared_splits()
    device = device or get_device()
    seed_everything(0)
    model = MLPClassifier(splits.n_features, **FINAL_CONFIG)
    epochs = quick(FINAL_EPOCHS, 3)
    train_classifier(model, splits, epochs, device=device)
    return save_activity5_model(model, classification_figures(model, splits.X_val, splits.y_val, device), epochs,
                                source="utils.credit.retrain_activity5")


def activity5_model(device: torch.device | None = None) -> tuple[MLPClassifier, dict]:
    """The model Activity 5 chose in this mode (in eval mode, on the CPU) and its saved record.

    When Activity 5 has not run, the book's final network is trained again first
    (:func:`retrain_activity5`). The file is read with ``weights_only=True``.
    """
    path = activity5_model_path()
    if not path.is_file():
        print(f"{path.name} not found: training the book's final network (utils.credit.retrain_activity5).")
        retrain_activity5(device=device)
    record = torch.load(path, map_location="cpu", weights_only=True)
    model = MLPClassifier(**record["config"])
    model.load_state_dict(record["state_dict"])
    return model.eval(), record
