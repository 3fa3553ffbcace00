"""The Chapter 6 activity checks (Activities 11, 12, 13): right answers pass, empty namespaces are
"not done", and typical wrong answers get their specific message."""

from __future__ import annotations

import string

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils.data import DataLoader, TensorDataset

from utils.checks.activity11 import check as check11
from utils.checks.activity12 import check as check12
from utils.checks.activity13 import check as check13
from utils.text import one_hot, sequence_batches, tokenize
from utils.training import History


def passed(result) -> bool:
    return result.status == "passed"


def wrong(result, *fragments: str) -> bool:
    return result.status == "wrong" and all(f in result.message for f in fragments)


@pytest.mark.parametrize("checker", [check11, check12, check13])
def test_every_step_says_not_done_on_an_empty_namespace(checker):
    for step in checker.steps:
        assert checker.run(step, {}).status == "not done", (checker.activity, step)


# --------------------------------------------------------------------------- Activity 11

@pytest.fixture(scope="module")
def sales() -> pd.DataFrame:
    generator = np.random.default_rng(0)
    levels = generator.integers(2, 40, size=(811, 1))
    data = np.clip(levels + generator.integers(-3, 4, size=(811, 52)), 0, None)
    return pd.DataFrame(data, columns=[f"W{i}" for i in range(52)])


class SalesRNN(nn.Module):
    def __init__(self, input_size: int = 1, per_step: bool = True):
        super().__init__()
        self.rnn = nn.RNN(input_size, 10, 1, batch_first=True)
        self.output = nn.Linear(10, 1)
        self.per_step = per_step

    def forward(self, weeks):
        states, _ = self.rnn(weeks)
        return self.output(states if self.per_step else states[:, -1])


class TimeFirstRNN(nn.Module):
    """The book's sizes, but an RNN that reads dimension 0 as time, fed (products, weeks, 1)."""

    def __init__(self):
        super().__init__()
        self.rnn, self.output = nn.RNN(1, 10), nn.Linear(10, 1)

    def forward(self, x):
        return self.output(self.rnn(x)[0])


def test_activity11_gradients_added_up_over_the_epochs_are_caught(sales):
    ns = solved11(sales)
    model, x_train, y_train = ns["model"], ns["x_train"], ns["y_train"]
    for _ in range(20):  # twenty more epochs without resetting the gradients
        nn.functional.mse_loss(model(x_train), y_train).backward()
    assert wrong(check11.run(4, ns), "zero_grad")


def solved11(sales) -> dict:
    values = torch.tensor(sales.to_numpy(), dtype=torch.float32)
    mean, std = values[:, :48].mean(), values[:, :48].std()
    scaled = ((values - mean) / std).unsqueeze(-1)
    torch.manual_seed(0)
    model = SalesRNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    x_train, y_train = scaled[:, :47], scaled[:, 1:48]
    losses = []
    for _ in range(30):
        loss = nn.functional.mse_loss(model(x_train), y_train)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        out = model(scaled[:, :-1])[:, :, 0] * std + mean
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, ax = plt.subplots()
    for series in range(3):
        ax.scatter(range(5), range(5), label=str(series))
    ax.set(xlabel="product", ylabel="units")
    ax.legend()
    return dict(sales=sales, sample=sales.sample(5, random_state=0), x_train=x_train, y_train=y_train, mean=mean,
                std=std, model=model, optimizer=optimizer, losses=losses, epochs=30, forecast=out[:, 47:],
                actual=values[:, 48:],
                naive=values[:, 47:51], w51_figure=figure)


def test_activity11_right_answers_pass(sales):
    ns = solved11(sales)
    for step in check11.steps:
        result = check11.run(step, ns)
        assert passed(result), result


def test_activity11_wrong_answers(sales):
    ns = solved11(sales)
    assert wrong(check11.run(1, {**ns, "sample": sales.sample(5, random_state=1)}), "random_state=0")
    values = torch.tensor(sales.to_numpy(), dtype=torch.float32)
    assert wrong(check11.run(2, {**ns, "x_train": values[:, :-1].unsqueeze(1)}), "one time step with 51 features")
    assert wrong(check11.run(2, {**ns, "mean": values.mean()}), "leak")
    assert wrong(check11.run(2, {**ns, "y_train": ns["x_train"]}), "shift by one")
    assert wrong(check11.run(3, {**ns, "model": SalesRNN(input_size=51)}), "input_size=1")
    assert wrong(check11.run(3, {**ns, "model": SalesRNN(per_step=False)}), "every week")
    assert wrong(check11.run(4, {**ns, "losses": ns["losses"][::-1]}), "should go down")
    assert wrong(check11.run(4, {**ns, "optimizer": torch.optim.Adam(ns["model"].parameters(), lr=0.1)}),
                 "learning rate")
    assert wrong(check11.run(4, {**ns, "losses": [torch.tensor(v, requires_grad=True) for v in ns["losses"]]}),
                 "loss.item()")
    assert wrong(check11.run(3, {**ns, "model": TimeFirstRNN()}), "batch_first=True")
    std, mean = float(ns["std"]), float(ns["mean"])
    assert wrong(check11.run(5, {**ns, "forecast": (ns["forecast"] - mean) / std}), "undo the scaling")
    assert wrong(check11.run(5, {**ns, "naive": ns["actual"]}), "week *before*")
    import matplotlib.pyplot as plt
    bare, _ = plt.subplots()
    assert wrong(check11.run(6, {**ns, "w51_figure": bare}), "three")


# --------------------------------------------------------------------------- Activity 12

TEXT = ("Alice was beginning to get very tired of sitting by her sister on the bank, and of having "
        "nothing to do: once or twice she had peeped into the book her sister was reading. ") * 40


class CharLSTM(nn.Module):
    def __init__(self, vocab_size: int, hidden: int = 256, layers: int = 2):
        super().__init__()
        self.lstm = nn.LSTM(vocab_size, hidden, layers, batch_first=True)
        self.output = nn.Linear(hidden, vocab_size)

    def forward(self, x, states=None):
        out, states = self.lstm(x, states)
        return self.output(out), states


def make_batches(encoded, n, length):
    return sequence_batches(encoded, n, length)


def make_train(detach=True, clip=True, zero=True, reset=True):
    def train(model, blocks, loss_fn, optimizer, epochs, vocab_size, max_norm=5.0):
        losses, states = [], None
        for _ in range(epochs):
            if reset:
                states = None
            total, seen = 0.0, 0
            for x, y in blocks:
                if states is not None and detach:
                    states = tuple(s.detach() for s in states)
                logits, states = model(one_hot(x, vocab_size), states)
                loss = loss_fn(logits.reshape(-1, vocab_size), y.reshape(-1))
                if zero:
                    optimizer.zero_grad()
                loss.backward()
                if clip:
                    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
                optimizer.step()
                total, seen = total + loss.item() * y.numel(), seen + y.numel()
            losses.append(total / seen)
        return losses
    return train


def book_train(model, blocks, loss_fn, optimizer, epochs, vocab_size, max_norm=5.0):
    losses = []
    for _ in range(epochs):
        states = None
        for x, y in blocks:
            logits, states = model(one_hot(x, vocab_size), states)
            loss = loss_fn(logits.reshape(-1, vocab_size), y.reshape(-1))
            optimizer.zero_grad()
            loss.backward(retain_graph=True)
            nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            optimizer.step()
        losses.append(loss.item())
    return losses


def generate_with(doubled: bool):
    def generate(model, starter, max_new=50, top_k=10, temperature=1.0, seed=0):
        chars = sorted(set(TEXT))
        if set(starter) - set(chars):
            raise ValueError("unknown characters")
        index = {c: i for i, c in enumerate(chars)}
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            logits, states = model(one_hot(torch.tensor([[index[c] for c in starter]]), len(chars)))
            if doubled:
                logits, states = model(one_hot(torch.tensor([[index[starter[-1]]]]), len(chars)), states)
            result = starter
            for _ in range(max_new):
                scores, candidates = torch.topk(logits[0, -1] / temperature, top_k)
                i = int(candidates[torch.multinomial(torch.softmax(scores, 0), 1, generator=generator)])
                result += chars[i]
                if chars[i] == ".":
                    break
                logits, states = model(one_hot(torch.tensor([[i]]), len(chars)), states)
        return result
    return generate


@pytest.fixture(scope="module")
def solved12() -> dict:
    chars = sorted(set(TEXT))
    index = {c: i for i, c in enumerate(chars)}
    encoded = torch.tensor([index[c] for c in TEXT])
    blocks = make_batches(encoded, 100, 50)
    torch.manual_seed(0)
    model = CharLSTM(len(chars))
    # a full-size model (the parameter count is checked); a real vocabulary of 70 is not needed for the test
    return dict(text=TEXT, chars=chars, encoded=encoded, make_batches=make_batches, blocks=blocks, model=model,
                train=make_train(), losses=[3.0, 2.5], generate=generate_with(False))


def test_activity12_right_answers_pass(solved12):
    for step in check12.steps:
        result = check12.run(step, solved12)
        assert passed(result), result


def test_activity12_model_check():
    from utils.checks.activity12 import book_parameters

    assert book_parameters(70) == 880_198  # the book's model on its 70 characters
    vocab_size = len(set(TEXT))
    result = check12.run(3, {"text": TEXT, "model": CharLSTM(vocab_size, hidden=128)})
    assert wrong(result, f"{book_parameters(vocab_size):,}", "two LSTM layers of 256")
    assert wrong(check12.run(3, {"text": TEXT, "model": CharLSTM(vocab_size + 1)}), "one-hot character")


def test_activity12_wrong_answers(solved12):
    ns = solved12
    assert wrong(check12.run(1, {**ns, "chars": sorted(set(TEXT), reverse=True)}), "E6.4")
    assert wrong(check12.run(1, {**ns, "encoded": ns["encoded"].float()}), "torch.long")

    def no_shift(encoded, n, length):
        return [(x, x.clone()) for x, _ in sequence_batches(encoded, n, length)]

    def consecutive_chunks(encoded, n, length):
        size = n * length
        return [(encoded[s:s + size].view(n, length), encoded[s + 1:s + size + 1].view(n, length))
                for s in range(0, len(encoded) - size - 1, size)]

    assert wrong(check12.run(2, {**ns, "make_batches": no_shift}), "*next* character")
    assert wrong(check12.run(2, {**ns, "make_batches": consecutive_chunks}), "does not continue")
    assert wrong(check12.run(4, {**ns, "train": book_train}), "detach", "E6.5")
    assert wrong(check12.run(4, {**ns, "train": make_train(clip=False)}), "clip_grad_norm_")
    assert wrong(check12.run(4, {**ns, "train": make_train(zero=False)}), "zero_grad")
    assert wrong(check12.run(4, {**ns, "train": make_train(reset=False)}), "states = None")


def test_activity12_generation_that_feeds_the_last_character_twice(solved12):
    from utils.text import train_bptt

    chars = solved12["chars"]
    torch.manual_seed(0)
    small = CharLSTM(len(chars), hidden=32, layers=1)
    train_bptt(small, sequence_batches(solved12["encoded"], 20, 40), nn.CrossEntropyLoss(),
               torch.optim.Adam(small.parameters(), lr=0.02), 5, len(chars), progress=False)
    ns = {**solved12, "model": small}
    assert passed(check12.run(5, {**ns, "generate": generate_with(False)}))
    assert wrong(check12.run(5, {**ns, "generate": generate_with(True)}), "E6.7")


def test_activity12_loop_that_does_not_carry_states():
    def forgetful(model, blocks, loss_fn, optimizer, epochs, vocab_size, max_norm=5.0):
        losses = []
        for _ in range(epochs):
            total = 0.0
            for x, y in blocks:
                logits, _ = model(one_hot(x, vocab_size), None)
                loss = loss_fn(logits.reshape(-1, vocab_size), y.reshape(-1))
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), max_norm)
                optimizer.step()
                total += loss.item()
            losses.append(total / len(blocks))
        return losses

    result = check12.run(4, {"train": forgetful, "losses": [1.0]})
    assert wrong(result, "not carried")


# --------------------------------------------------------------------------- Activity 13

@pytest.fixture(scope="module")
def reviews() -> pd.DataFrame:
    good = ["Great phone, works well!", "I love it.", "Excellent battery life.", "Very good value", "Nice!"]
    bad = ["Terrible, it broke.", "Do not buy this.", "Awful sound quality!", "Worst case ever.", "Bad."]
    rows = [(f"{good[i % 5]} item {i}", 1) for i in range(500)] + [(f"{bad[i % 5]} item {i}", 0) for i in range(500)]
    return pd.DataFrame(rows, columns=["review", "sentiment"])


class Sentiment(nn.Module):
    def __init__(self, vocab_size: int, pack: bool = True, squeeze: bool = True, layer: int = -1):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, 64, padding_idx=0)
        self.lstm = nn.LSTM(64, 128, 3, batch_first=True)
        self.output = nn.Linear(128, 1)
        self.pack, self.squeeze, self.layer = pack, squeeze, layer

    def forward(self, codes):
        embedded = self.embedding(codes)
        if self.pack:
            lengths = (codes != 0).sum(dim=1).cpu()
            embedded = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        _, (hidden, _) = self.lstm(embedded)
        out = self.output(hidden[self.layer])
        return out.squeeze(-1) if self.squeeze else out


def build13(reviews) -> dict:
    from sklearn.model_selection import train_test_split

    table = str.maketrans("", "", string.punctuation)
    tokens = [r.lower().translate(table).split() for r in reviews["review"]]
    labels = reviews["sentiment"].to_numpy()
    train_idx, test_idx = train_test_split(list(range(len(reviews))), test_size=0.2, stratify=labels, random_state=0)
    words = sorted({w for i in train_idx for w in tokens[i]})
    word_to_index = {"<pad>": 0, "<unk>": 1, **{w: i for i, w in enumerate(words, start=2)}}
    encoded = [[word_to_index.get(w, 1) for w in t] for t in tokens]
    codes = torch.zeros(len(encoded), max(map(len, encoded)), dtype=torch.long)
    for row, e in enumerate(encoded):
        codes[row, :len(e)] = torch.tensor(e)
    targets = torch.tensor(labels, dtype=torch.float32)
    train_loader = DataLoader(TensorDataset(codes[train_idx], targets[train_idx]), batch_size=32, shuffle=True,
                              generator=torch.Generator().manual_seed(0))
    test_loader = DataLoader(TensorDataset(codes[test_idx], targets[test_idx]), batch_size=256)
    torch.manual_seed(0)
    model = Sentiment(len(word_to_index))
    return dict(reviews=reviews, tokens=tokens, labels=labels, train_idx=train_idx, test_idx=test_idx,
                word_to_index=word_to_index, encoded=encoded, codes=codes, targets=targets,
                train_loader=train_loader, test_loader=test_loader, model=model)


def test_activity13_data_steps(reviews):
    ns = build13(reviews)
    for step in (1, 2, 3, 4):
        result = check13.run(step, ns)
        assert passed(result), result


def test_activity13_wrong_answers(reviews):
    ns = build13(reviews)
    assert wrong(check13.run(1, {**ns, "tokens": [r.split() for r in reviews["review"]]}), "capital letters")
    assert wrong(check13.run(1, {**ns, "tokens": [r.lower().split() for r in reviews["review"]]}), "punctuation")
    assert wrong(check13.run(2, {**ns, "test_idx": ns["train_idx"][:200]}), "both training and test")
    assert wrong(check13.run(2, {**ns, "train_idx": list(range(800)), "test_idx": list(range(800, 1000))}),
                 "stratify=labels")
    everything = sorted({w for t in ns["tokens"] for w in t})
    leaky = {"<pad>": 0, "<unk>": 1, **{w: i for i, w in enumerate(everything, start=2)}}
    assert wrong(check13.run(3, {**ns, "word_to_index": leaky}), "training reviews only")
    unsorted = {"<pad>": 0, "<unk>": 1, **{w: i for i, w in enumerate(
        sorted((w for w in ns["word_to_index"] if w not in ("<pad>", "<unk>")), reverse=True), start=2)}}
    assert wrong(check13.run(3, {**ns, "word_to_index": unsorted}), "E6.4")
    front = torch.zeros_like(ns["codes"])
    for row, e in enumerate(ns["encoded"]):
        if e:
            front[row, -len(e):] = torch.tensor(e)
    assert wrong(check13.run(3, {**ns, "codes": front}), "padding at the end")
    vocab_size = len(ns["word_to_index"])
    assert wrong(check13.run(4, {**ns, "model": Sentiment(vocab_size, pack=False)}), "pack_padded_sequence")
    assert wrong(check13.run(4, {**ns, "model": Sentiment(vocab_size, squeeze=False)}), "E6.8")
    last200 = DataLoader(TensorDataset(ns["codes"][-200:], ns["targets"][-200:]), batch_size=256)
    assert wrong(check13.run(3, {**ns, "test_loader": last200}), "not the held-out ones")
    shifted = DataLoader(TensorDataset(ns["codes"][ns["test_idx"]], ns["targets"][:200]), batch_size=256)
    if not torch.equal(ns["targets"][:200], ns["targets"][ns["test_idx"]]):
        assert wrong(check13.run(3, {**ns, "test_loader": shifted}), "aligned")
    assert wrong(check13.run(4, {**ns, "model": Sentiment(vocab_size, layer=0)}), "hidden[-1]")
    history = History(train_loss=[0.7, 0.71], val_loss=[0.7, 0.7])
    assert wrong(check13.run(5, {**ns, "history": history, "epochs": 2}), "should fall")
    assert wrong(check13.run(5, {**ns, "history": History(train_loss=[0.7, 0.3]), "epochs": 2}), "val_batches")


def test_activity13_accuracy_and_scoring(reviews):
    ns = build13(reviews)
    from utils.training import binary_accuracy, evaluate

    def accuracy(logits, targets):
        return binary_accuracy(torch.sigmoid(logits), targets)

    _, test_accuracy = evaluate(ns["model"], ns["test_loader"], nn.BCEWithLogitsLoss(), metric=accuracy)
    train_rows = DataLoader(TensorDataset(ns["codes"][ns["train_idx"]], ns["targets"][ns["train_idx"]]), batch_size=64)
    _, train_accuracy = evaluate(ns["model"], train_rows, nn.BCEWithLogitsLoss(), metric=accuracy)
    assert passed(check13.run(6, {**ns, "train_accuracy": train_accuracy, "test_accuracy": test_accuracy}))
    assert wrong(check13.run(6, {**ns, "train_accuracy": train_accuracy, "test_accuracy": test_accuracy + 0.0123}),
                 "test_loader")
    if abs(train_accuracy - test_accuracy) > 1e-4:
        assert wrong(check13.run(6, {**ns, "train_accuracy": test_accuracy, "test_accuracy": train_accuracy}),
                     "swapped")
    assert wrong(check13.run(6, {**ns, "train_accuracy": train_accuracy + 0.05, "test_accuracy": test_accuracy}),
                 "training rows")
    model, word_to_index = ns["model"], ns["word_to_index"]

    def score(sentences, empty=None):
        out = []
        for s in sentences:
            words = tokenize(s)
            if not words:
                out.append(empty)
                continue
            codes = torch.tensor([[word_to_index.get(w, 1) for w in words]])
            with torch.no_grad():
                out.append(torch.sigmoid(model(codes)).item())
        return out

    assert passed(check13.run(7, {"score_reviews": score}))
    assert passed(check13.run(7, {"score_reviews": lambda s: pd.DataFrame({"P(positive)": score(s, float("nan"))})}))
    assert wrong(check13.run(7, {"score_reviews": lambda s: score(s, 0.5)}), "None or NaN")

    def crashes(sentences):
        return [torch.sigmoid(model(torch.tensor([[word_to_index[w] for w in tokenize(s)]]))).item()
                for s in sentences]

    assert wrong(check13.run(7, {"score_reviews": crashes}), "no words")

    def padded_unknowns(sentences):
        out = []
        for s in sentences:
            words = tokenize(s)
            codes = torch.tensor([[word_to_index.get(w, 0) for w in words] or [0]])
            with torch.no_grad():
                out.append(torch.sigmoid(model(codes)).item() if words else None)
        return out

    if any(w not in word_to_index for w in tokenize("Zorblax quuxify.")):
        assert wrong(check13.run(7, {**ns, "score_reviews": padded_unknowns}), "<unk>")
