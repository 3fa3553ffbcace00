"""The Chapter 4 activity checks (Activities 7, 8, 9): right answers pass, typical wrong answers get
their specific message, and an empty notebook is "not done yet"."""

from __future__ import annotations

import pytest
import torch
from torch import nn, optim

from utils.checks import activity07, activity08, activity09
from utils.checks.activity07 import BOOK_PARAMETERS
from utils.cifar import BatchAugmentation, CifarBatches
from utils.runtime import quick


def conv_block(i: int, o: int, bn: bool = False) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(i, o, 3, 1, 1), nn.ReLU(), *([nn.BatchNorm2d(o)] if bn else []), nn.MaxPool2d(2, 2))


def make_cnn(bn: bool = False, filters=(10, 20, 40), hidden: int = 100, log_softmax: bool = True,
             flat: int = 640, dropout: float = 0.2):
    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            a, b, c = filters
            self.features = nn.Sequential(conv_block(3, a, bn), conv_block(a, b, bn), conv_block(b, c, bn))
            tail = [nn.LogSoftmax(dim=1)] if log_softmax else []
            self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(flat, hidden), nn.ReLU(),
                                            *([nn.BatchNorm1d(hidden)] if bn else []), nn.Dropout(dropout),
                                            nn.Linear(hidden, 10), *tail)

        def forward(self, x):
            return self.classifier(self.features(x))
    return CNN


def status(checker, step, ns):
    result = checker.run(step, ns)
    return result.status, result.message


# --------------------------------------------------------------------------- Activity 7

def test_every_step_is_not_done_on_an_empty_namespace():
    for checker in (activity07.check, activity08.check, activity09.check):
        for step in checker.steps:
            assert checker.run(step, {}).status == "not done", (checker.activity, step)


def test_step1_right_network_passes_with_the_book_parameter_count():
    s, message = status(activity07.check, 1, {"CNN": make_cnn()})
    assert s == "passed" and f"{BOOK_PARAMETERS:,}" in message


@pytest.mark.parametrize("cnn, expected", [
    (make_cnn(filters=(16, 32, 64), flat=64 * 16), "the book's have [10, 20, 40]"),
    (make_cnn(flat=40 * 8 * 8), "needs 40 * 4 * 4 = 640 inputs"),
    (make_cnn(log_softmax=False), "do not sum to 1 after `exp()`"),
    (make_cnn(hidden=50), "the book's has 74,450"),
    (make_cnn(dropout=0.5), "the book uses p = 0.2"),
    (make_cnn(bn=True), "no batch normalisation yet"),
])
def test_step1_wrong_networks_get_specific_messages(cnn, expected):
    s, message = status(activity07.check, 1, {"CNN": cnn})
    assert s == "wrong" and expected in message, message


class SharedDropout(nn.Module):
    """Hint 2's network: one nn.Dropout module applied twice, functional ReLU and log-softmax."""

    def __init__(self, relu_after=(True, True, True, True), training_flag=True, functional=False):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 10, 3, 1, 1), nn.Conv2d(10, 20, 3, 1, 1)
        self.conv3 = nn.Conv2d(20, 40, 3, 1, 1)
        self.pool = nn.MaxPool2d(2, 2)
        self.linear1, self.linear2 = nn.Linear(640, 100), nn.Linear(100, 10)
        self.dropout = nn.Dropout(0.2)
        self.relu_after, self.training_flag, self.functional = relu_after, training_flag, functional

    def drop(self, x):
        if self.functional:
            return nn.functional.dropout(x, 0.2, training=self.training if self.training_flag else True)
        return self.dropout(x)

    def forward(self, x):
        for conv, relu in zip((self.conv1, self.conv2, self.conv3), self.relu_after):
            x = self.pool(torch.relu(conv(x)) if relu else conv(x))
        x = self.drop(x.flatten(1))
        x = self.linear1(x)
        x = self.drop(torch.relu(x) if self.relu_after[3] else x)
        return torch.log_softmax(self.linear2(x), dim=1)


def _class(**kwargs):
    return type("CNN", (SharedDropout,), {"__init__": lambda self: SharedDropout.__init__(self, **kwargs)})


def test_step1_counts_dropout_where_it_is_applied_not_the_modules():
    assert activity07.check.run(1, {"CNN": _class()}).passed  # one nn.Dropout used twice (the hint's class)
    assert activity07.check.run(1, {"CNN": _class(functional=True)}).passed  # F.dropout(training=self.training)
    s, message = status(activity07.check, 1, {"CNN": _class(functional=True, training_flag=False)})
    assert s == "wrong" and "training=self.training" in message


@pytest.mark.parametrize("relu_after, layer", [((True, False, False, True), "the third convolution"),
                                                ((True, True, True, False), "the second linear layer")])
def test_step1_a_relu_after_each_hidden_layer(relu_after, layer):
    s, message = status(activity07.check, 1, {"CNN": _class(relu_after=relu_after)})
    assert s == "wrong" and f"what reaches {layer} has negative values" in message


def _setup_ns(loss=None, lr=0.001, epochs=None, other_model=False):
    model = make_cnn()()
    params = make_cnn()().parameters() if other_model else model.parameters()
    return {"model": model, "loss_function": loss or nn.NLLLoss(), "optimizer": optim.Adam(params, lr=lr),
            "epochs": quick(50, 1) if epochs is None else epochs}


def test_step2_right_setup_passes_and_typical_mistakes_are_named():
    assert activity07.check.run(2, _setup_ns()).passed
    s, message = status(activity07.check, 2, _setup_ns(loss=nn.CrossEntropyLoss()))
    assert s == "passed" and "log_softmax of log-probabilities changes nothing" in message  # same values as NLLLoss
    assert activity07.check.run(2, _setup_ns(loss=nn.functional.nll_loss)).passed
    assert "nn.NLLLoss()" in status(activity07.check, 2, _setup_ns(loss=nn.MSELoss()))[1]
    assert "the book uses 0.001" in status(activity07.check, 2, _setup_ns(lr=0.01))[1]
    assert "does not hold this model's parameters" in status(activity07.check, 2, _setup_ns(other_model=True))[1]
    assert "use `quick(50, 1)`" in status(activity07.check, 2, _setup_ns(epochs=7))[1]


def _loop(eval_mode=True, zero_grad=True):
    def train(model, train_loader, val_loader, loss_fn, optimizer, epochs, device):
        train_losses, val_losses = [], []
        for _ in range(epochs):
            model.train()
            total, seen = 0.0, 0
            for x, y in train_loader:
                if zero_grad:
                    optimizer.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                optimizer.step()
                total, seen = total + loss.item() * len(y), seen + len(y)
            train_losses.append(total / seen)
            if eval_mode:
                model.eval()
            total, seen = 0.0, 0
            with torch.no_grad():
                for x, y in val_loader:
                    total, seen = total + loss_fn(model(x), y).item() * len(y), seen + len(y)
            val_losses.append(total / seen)
        return train_losses, val_losses
    return train


def test_step3_training_loop():
    assert activity07.check.run(3, {"train": _loop()}).passed
    s, message = status(activity07.check, 3, {"train": _loop(eval_mode=False)})
    assert s == "wrong" and "call `model.eval()`" in message
    assert "zero_grad" in status(activity07.check, 3, {"train": _loop(zero_grad=False)})[1]


def _trained_ns():
    """A model whose validation loss is below ln 10 (its validation labels are its own predictions)."""
    from utils.training import evaluate
    torch.manual_seed(0)
    model = make_cnn()()
    images, _ = _data(100, seed=1)
    with torch.no_grad():
        own = torch.cat([model.eval()(x).argmax(1) for x, _ in CifarBatches(images, torch.zeros(100), 50)])
    val_batches = CifarBatches(images, own, 50)
    train_images, train_labels = _data(100, seed=2)
    val_loss, _ = evaluate(model, val_batches, nn.NLLLoss())
    return {"model": model, "val_batches": val_batches, "train_batches": CifarBatches(train_images, train_labels, 50),
            "train_losses": [2.0], "val_losses": [val_loss], "epochs": 1}


def test_step4_losses_are_what_the_model_scores_on_the_validation_batches():
    ns = _trained_ns()
    assert activity07.check.run(4, ns).passed
    assert "for 1 epochs" in status(activity07.check, 4, {**ns, "train_losses": [2.0, 1.5]})[1]
    s, message = status(activity07.check, 4, {**ns, "val_losses": [ns["val_losses"][0] + 0.5]})
    assert s == "wrong" and "now scores" in message
    from utils.training import evaluate
    on_train, _ = evaluate(ns["model"], ns["train_batches"], nn.NLLLoss())
    s, message = status(activity07.check, 4, {**ns, "val_losses": [on_train]})  # loaders swapped
    assert s == "wrong" and "measured on the training batches" in message
    s, message = status(activity07.check, 4, {**ns, "train_losses": ([2.0], [1.9])})
    assert s == "wrong" and "unpack" in message


def _data(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (n,), generator=g)
    return images, labels


def _evaluated_ns():
    from utils.training import accuracy, evaluate
    torch.manual_seed(0)
    model = make_cnn(bn=True)()
    images, labels = _data()
    test_batches = CifarBatches(images, labels, 50)
    val_images, _ = _data(100, seed=1)
    with torch.no_grad():  # validation labels the model gets all right, so its validation accuracy differs
        val_labels = torch.cat([model.eval()(x).argmax(1) for x, _ in CifarBatches(val_images, torch.zeros(100), 50)])
    val_batches = CifarBatches(val_images, val_labels, 50)
    _, test_acc = evaluate(model, test_batches, nn.NLLLoss(), metric=accuracy)
    return {"model": model, "test_batches": test_batches, "val_batches": val_batches, "test_acc": test_acc}


def test_step5_test_accuracy_must_be_measured_in_eval_mode_on_the_test_batches():
    ns = _evaluated_ns()
    assert activity07.check.run(5, ns).passed
    from utils.training import accuracy, run_epoch
    model = ns["model"]
    model.train()  # a learner who measured in training mode: BN normalises with the batch's own statistics
    with torch.no_grad():
        correct = sum((model(x).argmax(1) == y).sum().item() for x, y in ns["test_batches"])
    s, message = status(activity09.check, 3, {**ns, "test_acc": correct / 200})
    assert s == "wrong" and "model.eval()" in message
    _, on_val = run_epoch(model, ns["val_batches"], nn.NLLLoss(), metric=accuracy)
    s, message = status(activity07.check, 5, {**ns, "test_acc": on_val})
    assert s == "wrong" and "validation batches" in message


def test_step6_confusion_matrix_and_per_class_accuracy():
    ns = _evaluated_ns()
    from utils.cifar import confusion_matrix, per_class_accuracy
    from utils.training import predict
    matrix = confusion_matrix(predict(ns["model"], ns["test_batches"]), ns["test_batches"].labels, 10)
    right = {**ns, "matrix": matrix, "per_class": per_class_accuracy(matrix)}
    assert activity07.check.run(6, right).passed
    precision = matrix.diag().float() / matrix.sum(dim=0).clamp(min=1).float()
    s, message = status(activity07.check, 6, {**right, "per_class": precision})
    if not torch.allclose(precision, per_class_accuracy(matrix)):
        assert s == "wrong" and "column totals" in message
    s, message = status(activity07.check, 6, {**right, "matrix": matrix[:5]})
    assert s == "wrong" and "(10, 10)" in message


# --------------------------------------------------------------------------- Activity 8

def test_activity8_augmentation_and_batches():
    images, labels = _data(300)
    val_idx = torch.arange(200, 300)
    augmentation = BatchAugmentation(flip_p=0.5, grayscale_p=0.1)
    right = {"augmentation": augmentation, "images": images, "val_idx": val_idx,
             "train_batches": CifarBatches(images[:200], labels[:200], 50, shuffle=True, augment=augmentation),
             "val_batches": CifarBatches(images[val_idx], labels[val_idx], 50),
             "test_batches": CifarBatches(images[:100], labels[:100], 50)}
    s, message = status(activity08.check, 1, right)
    assert s == "passed", message
    leaky = {**right, "val_batches": CifarBatches(images[val_idx], labels[val_idx], 50, augment=augmentation)}
    s, message = status(activity08.check, 1, leaky)
    assert s == "wrong" and "E4.4" in message
    s, message = status(activity08.check, 1, {**right, "augmentation": lambda batch: batch})
    assert s == "wrong" and "0% of the images came out mirrored" in message and "one draw for the whole" in message
    s, message = status(activity08.check, 1, {**right, "test_batches": CifarBatches(images[:50], labels[:50], 50),
                                              "test_images": images[100:200], "test_idx": torch.arange(100)})
    assert s == "wrong" and "test_images[test_idx]" in message
    s, message = status(activity08.check, 1, {**right, "augmentation": BatchAugmentation(flip_p=1.0)})
    assert s == "wrong" and "about half should" in message
    s, message = status(activity08.check, 1, {**right, "augmentation": lambda b: b.float() / 255})
    assert s == "wrong" and "keep uint8" in message


def test_activity8_and_9_training_steps():
    from utils.training import History
    trained = _trained_ns()
    ns = {**_setup_ns(epochs=quick(100, 1)), "model": trained["model"], "val_batches": trained["val_batches"]}
    ns["optimizer"] = optim.Adam(ns["model"].parameters(), lr=0.001)
    history = History()
    n = ns["epochs"]
    last = trained["val_losses"][0]
    history.train_loss, history.val_loss, history.val_metric = [2.0] * n, [last] * n, [0.3] * n
    assert activity08.check.run(3, {**ns, "history": history}).passed
    other = History()
    other.train_loss, other.val_loss, other.val_metric = [2.0] * n, [last + 0.3] * n, [0.3] * n
    assert "now scores" in status(activity08.check, 3, {**ns, "history": other})[1]  # another network's history
    assert "use `quick(100, 1)`" in status(activity09.check, 2, {**_setup_ns(epochs=50), "history": history})[1]
    short = History()
    short.train_loss, short.val_loss = [2.0], [1.8]
    if ns["epochs"] != 1:
        message = status(activity08.check, 3, {**ns, "history": short})[1]
        assert "one training and one validation loss per epoch" in message


# --------------------------------------------------------------------------- Activity 9

def test_activity9_network_with_batch_norm():
    s, message = status(activity09.check, 1, {"CNN": make_cnn(bn=True)})
    assert s == "passed" and "74,790" in message
    s, message = status(activity09.check, 1, {"CNN": make_cnn()})
    assert s == "wrong" and "BatchNorm2d" in message

    class NoBN1d(make_cnn(bn=True)):
        def __init__(self):
            super().__init__()
            self.classifier[4] = nn.Identity()
    s, message = status(activity09.check, 1, {"CNN": NoBN1d})
    assert s == "wrong" and "BatchNorm1d(100)" in message
