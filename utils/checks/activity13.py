"""Checks for Activity 13 (sentiment analysis with an LSTM): tokens, split, vocabulary and padding by hand,
the model (the book's 64/128/3 sizes, packed so padding is ignored), training, honest accuracy, scoring."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ..text import PAD, UNKNOWN, tokenize, word_vocabulary
from ..training import binary_accuracy, evaluate
from . import Checker, Namespace, Wrong, count_parameters, expect, expect_optimizer, need

check = Checker("Activity 13")

LSTM_PARAMETERS = 363_520  # nn.LSTM(64, 128, 3)


def _labels(ns: Namespace):
    reviews = need(ns, "reviews", "the reviews table, loaded in the setup cells")
    return reviews["sentiment"].to_numpy()


@check.register(1, "tokens")
def _tokens(ns: Namespace) -> str:
    tokens = need(ns, "tokens", "one list of words per review")
    reviews = need(ns, "reviews", "the reviews table, loaded in the setup cells")
    expect(isinstance(tokens, (list, tuple)) and len(tokens) == len(reviews),
           f"`tokens` should hold one list of words per review ({len(reviews)})")
    expect(all(isinstance(t, (list, tuple)) for t in tokens),
           "each entry of `tokens` should be a list of words: split each review with `.split()`")
    expected = [tokenize(text) for text in reviews["review"]]
    words = [w for t in tokens for w in t]
    expect(not any(w != w.lower() for w in words),
           "some words still have capital letters: lower-case each review, so 'Great' and 'great' are one word")
    expect(not any(ch in w for w in words for ch in ".,!?'\""),
           "some words still carry punctuation ('phone.' and 'phone' would be two words): delete the characters "
           "of `string.punctuation` before splitting")
    mismatched = [i for i, (mine, ref) in enumerate(zip(tokens, expected)) if list(mine) != ref]
    if mismatched:
        i = mismatched[0]
        raise Wrong(f"review {i} gives {list(tokens[i])}, but lower-casing, deleting punctuation and splitting on "
                    f"whitespace gives {expected[i]}")
    distinct = len(set(words))
    return f"{len(tokens)} reviews, {distinct:,} distinct words (the book's code bundle's vocabulary has 1,905)"


@check.register(2, "a stratified held-out split")
def _split(ns: Namespace) -> str:
    train_idx = list(need(ns, "train_idx", "the indices of the training reviews"))
    test_idx = list(need(ns, "test_idx", "the indices of the held-out reviews"))
    labels = _labels(ns)
    overlap = set(train_idx) & set(test_idx)
    expect(not overlap, f"{len(overlap)} reviews are both training and test reviews: a test review must never be "
                        "trained on")
    expect(len(train_idx) == 800 and len(test_idx) == 200,
           f"{len(train_idx)} training and {len(test_idx)} test reviews; hold out 20%: 800 / 200")
    expect(set(train_idx) | set(test_idx) == set(range(len(labels))), "some reviews are in neither part")
    share = float(labels[test_idx].mean())
    expect(share == 0.5, f"{share:.1%} of the test reviews are positive: split with `stratify=labels` so both parts "
                         "keep the 50/50 balance")
    return "800 training and 200 held-out reviews, disjoint, both half positive"


@check.register(3, "vocabulary, codes and loaders")
def _vocabulary(ns: Namespace) -> str:
    word_to_index = need(ns, "word_to_index", "a dict from word to index: <pad> 0, <unk> 1, then sorted words")
    encoded = need(ns, "encoded", "every review as a list of word indices")
    codes = need(ns, "codes", "all reviews padded into one tensor")
    train_loader = need(ns, "train_loader", "a DataLoader of (codes, labels) for the training reviews")
    test_loader = need(ns, "test_loader", "a DataLoader of (codes, labels) for the held-out reviews")
    tokens, train_idx = need(ns, "tokens"), list(need(ns, "train_idx"))
    expect(isinstance(word_to_index, dict), "`word_to_index` must be a dict: `{word: index}`")
    expect(word_to_index.get(PAD) == 0, f"'{PAD}' must have index 0: padding is index 0 everywhere (also "
                                        "`padding_idx=0` in the embedding)")
    expect(word_to_index.get(UNKNOWN) == 1, f"'{UNKNOWN}' must have index 1: it stands for any word the training "
                                            "reviews never used")
    reference = word_vocabulary(tokens[i] for i in train_idx)
    all_words = {w for t in tokens for w in t}
    mine = set(word_to_index) - {PAD, UNKNOWN}
    expect(mine != all_words or set(reference.tokens[2:]) == all_words,
           f"your vocabulary has all {len(all_words):,} words of the 1,000 reviews, also words that only occur in "
           "held-out reviews: build it from the training reviews only, so the test set meets unknown words as new "
           "reviews will")
    expect(mine == set(reference.tokens[2:]),
           f"your vocabulary has {len(mine):,} words; the training reviews have {len(reference) - 2:,} distinct words")
    ordered = [w for w, _ in sorted(word_to_index.items(), key=lambda item: item[1])]
    expect(sorted(word_to_index.values()) == list(range(len(word_to_index))),
           "the indices must be 0, 1, 2, ... without gaps")
    expect(ordered[2:] == sorted(ordered[2:]),
           "the words are not numbered in sorted order: a `set`'s order changes every time Python starts (E6.4), "
           "so sort the words before numbering them")
    expect(len(encoded) == len(tokens), f"`encoded` has {len(encoded)} entries for {len(tokens)} reviews")
    for i, words in enumerate(tokens):
        want = [word_to_index.get(w, 1) for w in words]
        if list(encoded[i]) != want:
            raise Wrong(f"review {i} {words[:6]} is encoded as {list(encoded[i])[:6]}, expected {want[:6]}: "
                        f"known words get their index, unknown words `word_to_index['{UNKNOWN}']` (1)")
    expect(isinstance(codes, torch.Tensor) and codes.dtype == torch.long and codes.dim() == 2,
           "`codes` must be a 2-D long tensor (reviews, longest review)")
    longest = max(len(e) for e in encoded)
    expect(tuple(codes.shape) == (len(encoded), longest),
           f"`codes` has shape {tuple(codes.shape)}; expected ({len(encoded)}, {longest}): one row per review, as long "
           "as the longest review")
    for i, row in enumerate(encoded):
        n = len(row)
        if codes[i, :n].tolist() != list(row) or codes[i, n:].ne(0).any():
            raise Wrong(f"row {i} of `codes` is {codes[i, :8].tolist()}...: put the review's codes first and fill "
                        "the rest with 0 (<pad>); padding at the end is what `pack_padded_sequence` expects")
    test_idx = list(need(ns, "test_idx"))
    labels = _labels(ns)
    generator = getattr(train_loader, "generator", None)
    saved = generator.get_state() if isinstance(generator, torch.Generator) else torch.random.get_rng_state()
    x, y = next(iter(train_loader))
    if isinstance(generator, torch.Generator):
        generator.set_state(saved)
    else:
        torch.random.set_rng_state(saved)
    first_size = len(x)
    expect(y.dtype.is_floating_point, f"the training labels have dtype {y.dtype}: `BCEWithLogitsLoss` needs floats")
    expect(x.dim() == 2 and x.dtype == torch.long, "each training batch should be a 2-D long tensor of codes")
    seen = len(getattr(train_loader, "dataset", train_idx))
    expect(seen == len(train_idx), f"`train_loader` yields {seen} reviews per epoch; expected {len(train_idx)}")
    expect(first_size == 32, f"the first training batch has {first_size} reviews; use batches of 32")
    _expect_rows(train_loader, codes, labels, train_idx, test_idx, "train_loader", "training")
    tested = _expect_rows(test_loader, codes, labels, test_idx, train_idx, "test_loader", "held-out")
    return (f"{len(word_to_index):,} entries (<pad>, <unk> and the sorted training words), reviews padded to "
            f"{longest} codes, loaders of {seen} training and {tested} held-out reviews")


def _pairs(loader: Any) -> Counter:
    """Every (review codes, label) pair one pass of ``loader`` yields; the shuffling stream is left as it was."""
    generator = getattr(loader, "generator", None)
    saved = generator.get_state() if isinstance(generator, torch.Generator) else torch.random.get_rng_state()
    try:
        return Counter((tuple(x_row.tolist()), float(y_row))
                       for x, y in loader for x_row, y_row in zip(x.cpu(), y.cpu()))
    finally:
        if isinstance(generator, torch.Generator):
            generator.set_state(saved)
        else:
            torch.random.set_rng_state(saved)


def _expect_rows(loader: Any, codes: torch.Tensor, labels: Any, rows: list[int], other: list[int], name: str,
                 kind: str) -> int:
    """``loader`` yields exactly ``codes[rows]`` with their own labels (in any order); returns how many."""
    got = _pairs(loader)
    want = Counter((tuple(codes[i].tolist()), float(labels[i])) for i in rows)
    if got == want:
        return sum(got.values())
    reviews = Counter(review for review, _ in got.elements())
    expect(reviews == Counter(review for review, _ in want.elements()) or
           not (reviews & Counter(tuple(codes[i].tolist()) for i in other)),
           f"`{name}` yields reviews that are not the {kind} ones, e.g. rows of the other part: build it from "
           f"`codes[{'train_idx' if kind == 'training' else 'test_idx'}]`, the {kind} reviews chosen in step 2 "
           "(not, say, the last rows of the table)")
    expect(reviews == Counter(review for review, _ in want.elements()),
           f"`{name}` yields {sum(reviews.values())} reviews, but not the {len(rows)} {kind} ones: build it from "
           f"`codes[{'train_idx' if kind == 'training' else 'test_idx'}]`")
    raise Wrong(f"`{name}` pairs some reviews with another review's label: index the codes and the targets with the "
                f"same indices, `TensorDataset(codes[idx], targets[idx])`, so each row stays aligned with its label")


def _find(model: nn.Module, kind: type) -> list[Any]:
    return [m for m in model.modules() if isinstance(m, kind)]


@check.register(4, "the sentiment LSTM")
def _model(ns: Namespace) -> str:
    model = need(ns, "model", "the embedding + LSTM + linear model")
    codes = need(ns, "codes", "the padded reviews (step 3)")
    word_to_index = need(ns, "word_to_index", "the vocabulary (step 3)")
    expect(isinstance(model, nn.Module), "`model` must be an `nn.Module`")
    embeddings, lstms, linears = _find(model, nn.Embedding), _find(model, nn.LSTM), _find(model, nn.Linear)
    expect(embeddings and lstms and linears, "the model needs an `nn.Embedding`, an `nn.LSTM` and an `nn.Linear`")
    embedding, lstm = embeddings[0], lstms[0]
    vocab_size = len(word_to_index)
    expect(embedding.num_embeddings == vocab_size,
           f"the embedding has {embedding.num_embeddings} rows for a vocabulary of {vocab_size}: one row per entry")
    expect((embedding.embedding_dim, lstm.hidden_size, lstm.num_layers) == (64, 128, 3),
           f"embedding {embedding.embedding_dim}, LSTM {lstm.hidden_size} units x {lstm.num_layers} layers; the "
           "book's sizes are 64, 128 and 3")
    expect(lstm.batch_first, "make the LSTM `batch_first=True`: batches are (reviews, words)")
    expected = vocab_size * 64 + LSTM_PARAMETERS + 129
    n = count_parameters(model)
    expect(n == expected, f"your network has {n:,} parameters; the book's has {expected:,}: an embedding of "
                          f"{vocab_size} x 64, `nn.LSTM(64, 128, 3)` and `nn.Linear(128, 1)`")
    device = next(model.parameters()).device
    longest = int((codes != 0).sum(dim=1).argmax())  # a review with no padding: extra padding would show at once
    batch = codes[[longest, *range(7)]].to(device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(batch)
            expect(isinstance(out, torch.Tensor), "`model(codes)` must return a tensor of logits")
            if tuple(out.shape) == (8, 1):
                raise Wrong("`model(codes)` returns shape (8, 1); return one logit per review, shape (8,) like the "
                            "labels (`.squeeze(-1)`): mismatched shapes are what breaks the book's loss (E6.8)")
            expect(tuple(out.shape) == (8,), f"`model(codes)` for 8 reviews returns shape {tuple(out.shape)}; "
                                             "expected (8,): one logit per review")
            padded = torch.cat([batch, torch.zeros(8, 7, dtype=batch.dtype, device=device)], dim=1)
            more = model(padded)
    finally:
        model.train(was_training)
    _expect_top_layer(model, batch, lstm, linears[-1])
    gap = float((more - out).abs().max())
    expect(gap < 1e-4, f"adding 7 more padding codes changed the outputs by up to {gap:.3g}: the LSTM reads the "
                       "padding as words. Pack the batch (`pack_padded_sequence` with each review's length) and "
                       "use the final hidden state of the top layer, `hidden[-1]`")
    return f"{n:,} parameters (embedding 64, LSTM 128 x 3, one output); one logit per review, padding ignored"


def _expect_top_layer(model: nn.Module, batch: torch.Tensor, lstm: nn.LSTM, linear: nn.Linear) -> None:
    """The output layer reads the top LSTM layer's final hidden state (``hidden[-1]``), not a lower layer's."""
    seen: dict[str, Any] = {}
    handles = [lstm.register_forward_hook(lambda m, i, o: seen.__setitem__("hidden", o[1][0].detach())),
               linear.register_forward_pre_hook(lambda m, i: seen.__setitem__("input", i[0].detach()))]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(batch)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    hidden, given = seen.get("hidden"), seen.get("input")
    if hidden is None or given is None or given.shape != hidden[-1].shape:
        return  # another design (e.g. the top layer's output at each review's last word): judged by its behaviour
    for layer in range(hidden.shape[0] - 1):
        expect(not torch.allclose(given, hidden[layer], atol=1e-5) or torch.allclose(given, hidden[-1], atol=1e-5),
               f"the output layer reads `hidden[{layer}]`, the final state of LSTM layer {layer + 1} of "
               f"{hidden.shape[0]}: use `hidden[-1]`, the top layer's, which has read the review through all layers")


@check.register(5, "training")
def _training(ns: Namespace) -> str:
    loss_function = ns.get("loss_function")
    if loss_function is not None:  # before `history`: a loss that crashed the training is named here
        logits, targets = torch.tensor([-2.0, 0.5, 3.0, -0.1]), torch.tensor([0.0, 1.0, 1.0, 1.0])
        try:
            value = float(loss_function(logits, targets))
        except Exception as error:  # noqa: BLE001 - we report what it was
            raise Wrong(f"`loss_function(logits, labels)` failed ({type(error).__name__}: {error}): the model "
                        "returns logits, so the loss is `nn.BCEWithLogitsLoss()`, which applies the sigmoid "
                        "itself") from error
        expect(abs(value - float(nn.functional.binary_cross_entropy_with_logits(logits, targets))) < 1e-5,
               "`loss_function` does not give `nn.BCEWithLogitsLoss()`'s values on logits: the model returns "
               "logits (no sigmoid), so use `nn.BCEWithLogitsLoss()`")
    history = need(ns, "history", "the training history (what `fit` returns)")
    epochs = need(ns, "epochs", "the number of epochs")
    train_loss = list(getattr(history, "train_loss", []))
    val_loss = list(getattr(history, "val_loss", []))
    expect(len(train_loss) == epochs, f"the history has {len(train_loss)} training losses for {epochs} epochs")
    expect(len(val_loss) == epochs, "the history has no held-out losses: pass `val_batches=test_loader` to `fit` "
                                    "to watch the held-out loss after every epoch")
    expect(all(math.isfinite(v) for v in train_loss), "a training loss is not finite: check the learning rate")
    expect(train_loss[-1] < train_loss[0] and train_loss[-1] < 0.69,
           f"the training loss went from {train_loss[0]:.3f} to {train_loss[-1]:.3f}; it should fall well below "
           "ln 2 = 0.693 (a coin flip): check the learning rate (0.001) and that the optimizer holds the model's "
           "parameters")
    model, test_loader = need(ns, "model"), need(ns, "test_loader")
    optimizer = need(ns, "optimizer", "Adam over the model's parameters")
    expect_optimizer(optimizer, model, lr=0.001)
    now, _ = evaluate(model, test_loader, nn.BCEWithLogitsLoss(), device=next(model.parameters()).device)
    expect(abs(now - val_loss[-1]) <= 1e-4 * max(1.0, abs(now)),
           f"the last held-out loss in `history` is {val_loss[-1]:.4f}, but `model` scores {now:.4f} on "
           "`test_loader` now: train `model` itself with `val_batches=test_loader`")
    return f"training loss {train_loss[0]:.3f} -> {train_loss[-1]:.3f}, held-out loss {val_loss[-1]:.3f} at the end"


def _sigmoid_accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return binary_accuracy(torch.sigmoid(logits), targets)


@check.register(6, "training against held-out accuracy")
def _accuracy(ns: Namespace) -> str:
    train_accuracy = need(ns, "train_accuracy", "the accuracy on the training reviews")
    test_accuracy = need(ns, "test_accuracy", "the accuracy on the held-out reviews")
    model, test_loader = need(ns, "model"), need(ns, "test_loader")
    device = next(model.parameters()).device
    _, reference = evaluate(model, test_loader, nn.BCEWithLogitsLoss(), metric=_sigmoid_accuracy, device=device)
    right = None
    codes, train_idx = ns.get("codes"), ns.get("train_idx")
    if isinstance(codes, torch.Tensor) and train_idx is not None:
        rows = list(train_idx)
        labels = torch.as_tensor(_labels(ns)[rows], dtype=torch.float32)
        on_train = DataLoader(TensorDataset(codes[rows], labels), batch_size=256)
        _, right = evaluate(model, on_train, nn.BCEWithLogitsLoss(), metric=_sigmoid_accuracy, device=device)
    if abs(float(test_accuracy) - reference) > 1e-4:
        if abs(float(train_accuracy) - reference) <= 1e-4 and (right is None or
                                                              abs(float(test_accuracy) - right) <= 1e-4):
            raise Wrong("`train_accuracy` and `test_accuracy` are swapped")
        raise Wrong(f"`test_accuracy` is {float(test_accuracy):.4f}, but the model labels {reference:.4f} of the "
                    "held-out reviews right: measure on `test_loader`, in eval mode, counting a review as positive "
                    "when its probability (sigmoid of the logit) is at least 0.5")
    expect(0.0 <= float(train_accuracy) <= 1.0, "`train_accuracy` should be a share between 0 and 1")
    if right is not None:
        expect(abs(float(train_accuracy) - right) <= 1e-4,
               f"`train_accuracy` is {float(train_accuracy):.4f}, but the model labels {right:.4f} of the 800 "
               "training reviews right: measure it on the training rows, `codes[train_idx]`, in eval mode")
    return (f"{float(train_accuracy):.1%} on the training reviews against {float(test_accuracy):.1%} on the held-out "
            "ones: the gap is what the book's training-set figure hides")


def _probabilities(result: Any, n: int) -> list[Any]:
    if hasattr(result, "columns"):
        columns = [c for c in result.columns if "positive" in str(c).lower() or "prob" in str(c).lower()]
        expect(columns, "the table `score_reviews` returned has no column of probabilities (e.g. 'P(positive)')")
        result = result[columns[0]]
    values = list(result.tolist() if hasattr(result, "tolist") else result)
    expect(len(values) == n, f"`score_reviews` returned {len(values)} scores for {n} sentences")
    return values


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@check.register(7, "scoring new sentences")
def _scoring(ns: Namespace) -> str:
    score_reviews = need(ns, "score_reviews", "a function that takes a list of sentences and returns P(positive)")
    sentences = ["This phone is great, I love it!", "?!", "Terrible, it broke after a day.", "Zorblax quuxify."]
    try:
        result = score_reviews(sentences)
    except Exception as error:  # noqa: BLE001 - we report what it was
        raise Wrong(f"`score_reviews` raised {type(error).__name__}: {error}. A sentence with no words left after "
                    "tokenising ('?!') gets no score (None or NaN), and unknown words map to <unk>") from error
    values = _probabilities(result, len(sentences))
    expect(_missing(values[1]), f"'?!' has no words, yet got the score {values[1]!r}: give it None or NaN")
    for i in (0, 2, 3):
        expect(not _missing(values[i]) and 0.0 <= float(values[i]) <= 1.0,
               f"{sentences[i]!r} got {values[i]!r}; expected a probability between 0 and 1 (apply `torch.sigmoid`)")
    model, word_to_index = ns.get("model"), ns.get("word_to_index")
    if isinstance(model, nn.Module) and isinstance(word_to_index, dict):
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        for i in (0, 2, 3):
            codes = torch.tensor([[word_to_index.get(w, 1) for w in tokenize(sentences[i])]], device=device)
            with torch.no_grad():
                expected = float(torch.sigmoid(model(codes)).reshape(-1)[0])
            expect(abs(float(values[i]) - expected) <= 2e-3,  # padded batches may differ in the last digits
                   f"{sentences[i]!r} got {float(values[i]):.4f}, but the model gives it {expected:.4f} when it is "
                   "prepared like the training reviews: lower-case, delete punctuation, split, map each word with "
                   f"`word_to_index.get(word, 1)` (unknown words to {UNKNOWN}, never to <pad>), then the sigmoid of "
                   "the model's logit")
        model.train(was_training)
    return (f"P(positive) {float(values[0]):.2f} for {sentences[0]!r}, {float(values[2]):.2f} for {sentences[2]!r}; "
            "no score for '?!'")
