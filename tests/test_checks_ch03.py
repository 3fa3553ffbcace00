"""The checks of Activities 4, 5 and 6 (Chapter 3): typical wrong answers get their specific message,
a right answer passes, and an empty namespace is "not done"."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from utils.checks.activity04 import check as check4
from utils.checks.activity05 import check as check5
from utils.checks.activity06 import check as check6
from utils.credit_data import TARGET, clean_credit_data, honest_splits
from utils.credit_model import MLPClassifier


@pytest.fixture(autouse=True)
def quick_cpu(monkeypatch, tmp_path):
    monkeypatch.setenv("ADL_QUICK", "1")
    monkeypatch.setenv("ADL_OUTPUTS_DIR", str(tmp_path / "outputs"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def splits():
    rng = np.random.default_rng(0)
    n = 600
    target = (rng.random(n) < 0.25).astype(int)
    raw = pd.DataFrame({"ID": np.arange(n), "SEX": 1, TARGET: target,
                        **{f"f{i}": rng.random(n) + target * 0.1 * (i % 3) for i in range(22)}})
    return honest_splits(clean_credit_data(raw))


def loaders(splits, *, label_dtype=torch.long, shuffle=True, val="val"):
    def ds(X, y):
        return TensorDataset(torch.tensor(X.to_numpy(copy=True), dtype=torch.float32),
                             torch.tensor(y.to_numpy(copy=True), dtype=label_dtype))
    X_val, y_val = (splits.X_val, splits.y_val) if val == "val" else (splits.X_test, splits.y_test)
    return (DataLoader(ds(splits.X_train, splits.y_train), batch_size=128, shuffle=shuffle),
            DataLoader(ds(X_val, y_val), batch_size=len(y_val)))


class Book(nn.Module):
    def __init__(self, n, hidden=(10, 10, 10), out="log_softmax", relu=True):
        super().__init__()
        sizes = [n, *hidden]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.output, self.out, self.relu = nn.Linear(sizes[-1], 2), out, relu

    def forward(self, x):
        for layer in self.layers:
            x = F.relu(layer(x)) if self.relu else layer(x)
        x = self.output(x)
        return {"log_softmax": F.log_softmax(x, dim=1), "softmax": F.softmax(x, dim=1),
                "dim0": F.log_softmax(x, dim=0), "raw": x}[self.out]


def run(checker, step, ns):
    return checker.run(step, ns)


# ----------------------------------------------------------------------------- Activity 4

def test_activity4_every_step_is_not_done_on_an_empty_namespace(splits):
    for step in check4.steps:
        assert run(check4, step, {"splits": splits, "device": torch.device("cpu")}).status == "not done"


def test_activity4_step1_loaders(splits):
    cpu = torch.device("cpu")
    train, val = loaders(splits)
    assert run(check4, 1, {"splits": splits, "train_loader": train, "val_loader": val}).passed
    train, val = loaders(splits, label_dtype=torch.float32)
    ns = {"splits": splits, "train_loader": train, "val_loader": val, "device": cpu}
    assert "torch.long" in run(check4, 1, ns).message
    train, val = loaders(splits, shuffle=False)
    assert "does not shuffle" in run(check4, 1, {"splits": splits, "train_loader": train, "val_loader": val}).message
    train, val = loaders(splits, val="test")
    result = run(check4, 1, {"splits": splits, "train_loader": train, "val_loader": val})
    assert result.status == "wrong" and "test" in result.message


@pytest.mark.parametrize("model, expected", [
    (Book(22), None),
    (Book(22, hidden=(10, 10)),
     "your network has 362 parameters; the book's has 472: did you make three hidden layers"),
    (Book(22, out="softmax"), "look like probabilities"),
    (Book(22, out="raw"), "do not sum to 1"),
    (Book(22, out="dim0"), "over `dim=1`"),
    (Book(22, relu=False), "linear function"),
])
def test_activity4_step2_model(splits, model, expected):
    result = run(check4, 2, {"splits": splits, "device": torch.device("cpu"), "model": model})
    if expected is None:
        assert result.passed, result.message
    else:
        assert result.status == "wrong" and expected in result.message


def test_activity4_step2_the_class_instead_of_an_instance(splits):
    ns = {"splits": splits, "device": torch.device("cpu"), "model": Book}
    assert "the class itself" in run(check4, 2, ns).message


@pytest.mark.filterwarnings("ignore:Using a target size")
def test_activity4_step3_loss_optimiser_epochs():
    model = Book(22)
    good = {"model": model, "loss_fn": nn.NLLLoss(), "optimizer": torch.optim.Adam(model.parameters(), lr=1e-3),
            "epochs": 5}
    assert run(check4, 3, good).passed
    assert "NLLLoss" in run(check4, 3, {**good, "loss_fn": nn.MSELoss()}).message
    other = torch.optim.Adam(Book(22).parameters(), lr=1e-3)
    assert "does not hold this model's parameters" in run(check4, 3, {**good, "optimizer": other}).message
    fast = torch.optim.Adam(model.parameters(), lr=0.01)
    assert "learning rate is 0.01" in run(check4, 3, {**good, "optimizer": fast}).message
    assert "quick(50, 5)" in run(check4, 3, {**good, "epochs": 50}).message


def good_train(model, train_loader, val_loader, loss_fn, optimizer, epochs, device):
    train_losses, val_losses = [], []
    for _ in range(epochs):
        model.train()
        total, rows = 0.0, 0
        for x, y in train_loader:
            loss = loss_fn(model(x.to(device)), y.to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, rows = total + loss.item() * len(y), rows + len(y)
        train_losses.append(total / rows)
        model.eval()
        total, rows = 0.0, 0
        with torch.no_grad():
            for x, y in val_loader:
                total, rows = total + loss_fn(model(x.to(device)), y.to(device)).item() * len(y), rows + len(y)
        val_losses.append(total / rows)
    return train_losses, val_losses


def no_eval_train(model, train_loader, val_loader, loss_fn, optimizer, epochs, device):
    train_losses, val_losses = [], []
    for _ in range(epochs):
        model.train()
        total = 0.0
        for x, y in train_loader:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        train_losses.append(total / len(train_loader))
        with torch.no_grad():  # the book's loop: no model.eval()
            val_losses.append(sum(loss_fn(model(x), y).item() for x, y in val_loader) / len(val_loader))
    return train_losses, val_losses


def test_activity4_step4_training_loop():
    assert run(check4, 4, {"train": good_train}).passed
    assert "call `model.eval()`" in run(check4, 4, {"train": no_eval_train}).message


def test_activity4_steps_5_to_7_on_a_trained_model(splits):
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    model = Book(22)
    train, val = loaders(splits)
    losses = good_train(model, train, val, nn.NLLLoss(), torch.optim.Adam(model.parameters(), lr=1e-2), 5, cpu)
    ns = {"splits": splits, "device": cpu, "model": model, "epochs": 5, "train_losses": losses[0],
          "val_losses": losses[1], "loss_fn": nn.NLLLoss(), "val_loader": val}
    assert run(check4, 5, ns).passed, run(check4, 5, ns).message
    assert "swapped" in run(check4, 5, {**ns, "train_losses": losses[1], "val_losses": losses[0]}).message
    assert "3 training and" in run(check4, 5, {**ns, "train_losses": losses[0][:3]}).message
    from utils.ch03_handoffs import save_activity4_figures
    from utils.credit_model import classification_figures
    tr = classification_figures(model, splits.X_train, splits.y_train, cpu)
    va = classification_figures(model, splits.X_val, splits.y_val, cpu)
    te = classification_figures(model, splits.X_test, splits.y_test, cpu)
    ns.update(training_figures=tr, validation_figures=va)
    assert run(check4, 6, ns).passed
    assert "test set" in run(check4, 6, {**ns, "validation_figures": te}).message
    assert "swapped" in run(check4, 6, {**ns, "training_figures": va, "validation_figures": tr}).message
    ns["figures_path"] = save_activity4_figures(tr, va, 5)
    assert run(check4, 7, ns).passed, run(check4, 7, ns).message
    stale = save_activity4_figures(tr, va, 7)
    assert "other settings" in run(check4, 7, {**ns, "figures_path": stale, "epochs": 5}).message


# ----------------------------------------------------------------------------- Activity 5

def test_activity5_every_step_is_not_done_on_an_empty_namespace():
    for step in check5.steps:
        assert run(check5, step, {}).status == "not done"


def test_activity5_snapshots_must_be_copies_and_histories_continue():
    from utils import History
    experiments, stages = {"A": {"hidden_sizes": [4]}}, [1, 2]
    model = MLPClassifier(3, **experiments["A"])
    history = History()
    history.train_loss += [1.0, 0.9]
    shared = model.state_dict()  # not copied: changes with the model
    ns = {"experiments": experiments, "stages": stages, "histories": {"A": history},
          "snapshots": {("A", 1): shared, ("A", 2): shared}}
    assert "copy.deepcopy" in run(check5, 1, ns).message
    ns["snapshots"] = {("A", 1): copy.deepcopy(shared), ("A", 2): {k: v + 1 for k, v in shared.items()}}
    assert run(check5, 1, ns).passed
    short = History()
    short.train_loss += [0.9]
    assert "history=history" in run(check5, 1, {**ns, "histories": {"A": short}}).message


def test_activity5_eval_mode_measurements():
    assert run(check5, 3, {"dropout_on": [0.5, 0.51, 0.49], "dropout_off": [0.5, 0.5, 0.5]}).passed
    assert "model.eval()" in run(check5, 3, {"dropout_on": [0.5, 0.51, 0.49], "dropout_off": [0.5, 0.52, 0.5]}).message
    assert "dropout-on losses agree" in run(check5, 3, {"dropout_on": [0.5] * 3, "dropout_off": [0.5] * 3}).message


def test_activity5_chosen_must_be_the_best_row_and_leak_must_be_the_books(splits):
    cpu = torch.device("cpu")
    from utils.credit_model import classification_figures
    torch.manual_seed(0)
    a, b = MLPClassifier(22, (4,)), MLPClassifier(22, (8,))
    va = [classification_figures(m, splits.X_val, splits.y_val, cpu)["balanced_accuracy"] for m in (a, b)]
    table = pd.DataFrame({"experiment": ["a", "b"], "epochs": [1, 1], "val balanced acc": va})
    best, worst = (a, b) if va[0] >= va[1] else (b, a)
    ns = {"table": table, "splits": splits, "device": cpu, "chosen": best,
          "test": classification_figures(best, splits.X_test, splits.y_test, cpu)}
    assert run(check5, 4, ns).passed
    if va[0] != va[1]:
        assert "best row" in run(check5, 4, {**ns, "chosen": worst}).message
    honest = splits
    wrong = {"leaky": honest, "seen": honest.X_test.index.isin(honest.X_train.index), "leaky_table": pd.DataFrame()}
    assert "leaky_book_splits" in run(check5, 5, wrong).message


def test_activity5_saved_model_must_reproduce_the_chosen_one(splits):
    from utils.ch03_handoffs import save_activity5_model
    chosen = MLPClassifier(22, (4,))
    path = save_activity5_model(chosen, {}, 1)
    assert run(check5, 6, {"model_path": path, "chosen": chosen, "splits": splits}).passed
    save_activity5_model(MLPClassifier(22, (4,)), {}, 1)  # another model overwrote the file
    assert "does not reproduce" in run(check5, 6, {"model_path": path, "chosen": chosen, "splits": splits}).message


# ----------------------------------------------------------------------------- Activity 6

class Deployed(nn.Module):
    def __init__(self, input_size=22, hidden_sizes=(8, 6), output_size=2, dropout=0.1, names=("hidden", "output"),
                 use_dropout=True):
        super().__init__()
        self.config = {"input_size": input_size, "hidden_sizes": list(hidden_sizes), "output_size": output_size,
                       "dropout": dropout}
        sizes = [input_size, *hidden_sizes]
        setattr(self, names[0], nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])))
        setattr(self, names[1], nn.Linear(sizes[-1], output_size))
        self.names, self.use_dropout = names, use_dropout
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        for layer in getattr(self, self.names[0]):
            x = F.relu(layer(x))
            x = self.dropout(x) if self.use_dropout else x
        return F.log_softmax(getattr(self, self.names[1])(x), dim=1)


def a6_namespace():
    trained = MLPClassifier(22, (8, 6), dropout=0.1).eval()
    return {"trained": trained, "record": {"config": trained.config}, "example": torch.rand(1, 22)}


def test_activity6_every_step_is_not_done_on_an_empty_namespace():
    for step in check6.steps:
        assert run(check6, step, a6_namespace()).status == "not done"


def test_activity6_class_names_and_dropout():
    ns = a6_namespace()
    assert run(check6, 1, {**ns, "Classifier": Deployed}).passed
    renamed = type("Renamed", (Deployed,), {"__init__": lambda self, *a, **k: Deployed.__init__(
        self, *a, names=("layers", "out"), **k)})
    assert "name the hidden layers `hidden`" in run(check6, 1, {**ns, "Classifier": renamed}).message
    unused = type("Unused", (Deployed,), {"__init__": lambda self, *a, **k: Deployed.__init__(
        self, *a, use_dropout=False, **k)})
    assert "never applied" in run(check6, 1, {**ns, "Classifier": unused}).message


def test_activity6_model_checkpoint_loader_prediction(tmp_path):
    ns = a6_namespace()
    model = Deployed(**ns["record"]["config"])
    model.load_state_dict(ns["trained"].state_dict())
    ns.update(Classifier=Deployed, model=model.train())
    assert "training mode" in run(check6, 2, ns).message
    model.eval()
    assert run(check6, 2, ns).passed

    book = tmp_path / "book.pth"
    torch.save({"input": 22, "state_dict": model.state_dict()}, book)  # the book's checkpoint
    assert "lacks" in run(check6, 3, {**ns, "checkpoint_path": book}).message
    good = tmp_path / "good.pth"
    torch.save({**model.config, "state_dict": model.state_dict()}, good)
    ns["checkpoint_path"] = good
    assert run(check6, 3, ns).passed

    def naive(path):  # the book's loader with the right keys: no clear errors
        checkpoint = torch.load(path, weights_only=True)
        m = Deployed(checkpoint["input_size"], checkpoint["hidden_sizes"], checkpoint["output_size"],
                     checkpoint["dropout"])
        m.load_state_dict(checkpoint["state_dict"])
        return m.eval()

    assert "bare KeyError" in run(check6, 4, {**ns, "load_checkpoint": naive}).message

    def careful(path):
        try:
            checkpoint = torch.load(path, weights_only=True)
        except Exception as err:
            raise ValueError(f"{path} is not a checkpoint") from err
        keys = ("input_size", "hidden_sizes", "output_size", "dropout", "state_dict")
        missing = [k for k in keys if k not in checkpoint]
        if missing:
            raise ValueError(f"missing {missing}")
        m = Deployed(checkpoint["input_size"], checkpoint["hidden_sizes"], checkpoint["output_size"],
                     checkpoint["dropout"])
        try:
            m.load_state_dict(checkpoint["state_dict"])
        except RuntimeError as err:
            raise ValueError("weights do not fit") from err
        return m.eval()

    assert run(check6, 4, {**ns, "load_checkpoint": careful}).passed
    assert "training mode" in run(check6, 4, {**ns, "load_checkpoint": lambda p: careful(p).train()}).message

    with torch.no_grad():
        log_probs = model(ns["example"])[0]
    assert "apply `exp()`" in run(check6, 5, {**ns, "probabilities": log_probs, "predicted_class": 0}).message
    assert run(check6, 5, {**ns, "probabilities": log_probs.exp(), "predicted_class": int(log_probs.argmax())}).passed


def test_activity6_trace_in_training_mode_is_caught(tmp_path):
    import warnings
    ns = a6_namespace()
    model = Deployed(**{**ns["record"]["config"], "dropout": 0.5})
    path = tmp_path / "traced.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model.train(), ns["example"], check_trace=False)  # the book's way
        traced.save(str(path))
    result = run(check6, 6, {**ns, "model": model.eval(), "traced": traced, "traced_path": path})
    assert result.status == "wrong" and "model.eval()" in result.message
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        good = torch.jit.trace(model.eval(), ns["example"])
        good.save(str(path))
    assert run(check6, 6, {**ns, "model": model, "traced": good, "traced_path": path}).passed


def test_activity6_export_must_keep_the_batch_free():
    ns = a6_namespace()
    model = Deployed(**ns["record"]["config"]).eval()
    fixed = torch.export.export(model, (torch.rand(4, 22),))
    assert "dynamic_shapes" in run(check6, 7, {**ns, "model": model, "exported": fixed}).message
    free = torch.export.export(model, (torch.rand(4, 22),), dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    assert run(check6, 7, {**ns, "model": model, "exported": free}).passed
