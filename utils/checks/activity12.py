"""Checks for Activity 12 (text generation with an LSTM): vocabulary, batches, model, BPTT loop, sampling.

Step 4 is the chapter's hand-written loop. Its check runs the learner's ``train`` function on a tiny
LSTM and text, watching every forward pass and optimizer call: the states must be carried from block
to block but **detached** (the book's ``retain_graph=True`` loop fails here), every epoch must start
from fresh states, gradients must be reset and clipped before each step, and the losses must match
:func:`utils.text.train_bptt`, the packaged loop, to 1e-6 from the same seed.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..runtime import seed_everything
from ..text import char_vocabulary, encode_text, one_hot, sequence_batches, train_bptt
from . import Checker, Namespace, Wrong, close, count_parameters, expect, need
from .training_loop import watch_optimizer

check = Checker("Activity 12")



def book_parameters(vocab_size: int, hidden: int = 256) -> int:
    """Parameters of the book's model: ``nn.LSTM(vocab_size, 256, 2)`` + ``nn.Linear(256, vocab_size)``
    (880,198 for the book's 70 characters)."""
    lstm = 4 * hidden * (vocab_size + hidden) + 8 * hidden + 4 * hidden * 2 * hidden + 8 * hidden
    return lstm + hidden * vocab_size + vocab_size


@check.register(1, "vocabulary and encoded text")
def _vocabulary(ns: Namespace) -> str:
    text = need(ns, "text", "the book, loaded in the setup cells")
    chars = need(ns, "chars", "the list of distinct characters, sorted")
    encoded = need(ns, "encoded", "the text as a tensor of character indices")
    expect(not isinstance(chars, (set, frozenset)),
           "`chars` is a set, which has no fixed order: make it a list, `sorted(set(text))`")
    chars = list(chars)
    expect(len(chars) == len(set(chars)), "`chars` holds some characters twice: build it from `set(text)`")
    expect(set(chars) == set(text),
           f"`chars` has {len(chars)} characters, but the text has {len(set(text))} distinct ones: "
           "build it from the whole text")
    expect(chars == sorted(chars),
           "`chars` is not sorted: the order of `list(set(text))` changes every time Python starts, so a "
           "saved model would read different indices in a new session (E6.4); use `sorted(set(text))`")
    expect(isinstance(encoded, torch.Tensor), f"`encoded` is a {type(encoded).__name__}: make it a tensor, "
                                              "`torch.tensor([...], dtype=torch.long)`")
    expect(encoded.dtype == torch.long, f"`encoded` has dtype {encoded.dtype}: indices must be `torch.long` "
                                        "(`one_hot` and `nn.Embedding` need integers)")
    expect(encoded.dim() == 1 and len(encoded) == len(text),
           f"`encoded` has shape {tuple(encoded.shape)}; it should hold one index per character: ({len(text)},)")
    expect("".join(chars[i] for i in encoded[:2000].tolist()) == text[:2000],
           "decoding the first 2,000 indices with `chars` does not give the text back: "
           "character `c` must become `chars.index(c)` (a dict `char_to_index` is faster)")
    return f"{len(chars)} characters, sorted; the {len(encoded):,} indices decode back to the text"


@check.register(2, "batches of parallel streams")
def _batches(ns: Namespace) -> str:
    make_batches = need(ns, "make_batches", "a function `make_batches(encoded, n_sequences, seq_length)`")
    blocks = need(ns, "blocks", "the list of (inputs, targets) batches to train on")
    expect(callable(make_batches), "`make_batches` must be a function")
    codes, rows, length = torch.arange(1001), 10, 7
    made = list(make_batches(codes, rows, length))
    expect(len(made) > 0, "`make_batches(torch.arange(1001), 10, 7)` returned no batches")
    expect(all(isinstance(b, (tuple, list)) and len(b) == 2 for b in made),
           "each batch must be a pair `(inputs, targets)`")
    x0, y0 = made[0]
    expect(tuple(x0.shape) == (rows, length) and tuple(y0.shape) == (rows, length),
           f"`make_batches(torch.arange(1001), 10, 7)`'s first batch has inputs {tuple(x0.shape)} and targets "
           f"{tuple(y0.shape)}; expected ({rows}, {length}) each: one row per stream, `seq_length` columns")
    for x, y in made:
        expect(x.shape == y.shape, "inputs and targets of a batch must have the same shape")
        if torch.equal(y, x):
            raise Wrong("the targets equal the inputs: the target of each character is the *next* character, "
                        "so take the targets from the text shifted by one")
        expect(torch.equal(y, x + 1),
               "a target is not the real next character of the text (with `torch.arange(1001)` as the text, every "
               "target must be its input + 1): take targets from the text shifted by one, never invent them (E6.6)")
    for k in range(len(made) - 1):
        expect(torch.equal(made[k + 1][0][:, 0], made[k][0][:, -1] + 1),
               "row r of batch k + 1 does not continue row r of batch k, so the LSTM state carried over from "
               "one batch belongs to a different part of the text: first cut the text into `n_sequences` "
               "equally long streams (one per row), then walk along them `seq_length` characters at a time")
    covered = sum(x.numel() for x, _ in made)
    expect(covered >= rows * length * ((1000 // rows) // length),
           f"the batches cover only {covered} of 1,000 usable characters")
    expect(isinstance(blocks, (list, tuple)) and len(blocks) > 0, "`blocks` must be a non-empty list of batches")
    xb, yb = blocks[0]
    expect(tuple(xb.shape) == (100, 50),
           f"the first of your `blocks` has shape {tuple(xb.shape)}; the book's batches are 100 sequences x 50 "
           "characters")
    return (f"batches of {rows} streams x {length}: targets are the next characters and rows continue from batch "
            f"to batch; `blocks` holds {len(blocks)} batches of shape {tuple(xb.shape)}")


@check.register(3, "the character LSTM")
def _model(ns: Namespace) -> str:
    model = need(ns, "model", "the LSTM with a linear output layer")
    text = need(ns, "text", "the book")
    expect(isinstance(model, nn.Module), "`model` must be an `nn.Module`")
    vocab_size = len(set(text))
    n = count_parameters(model)
    lstm = [m for m in model.modules() if isinstance(m, nn.LSTM)]
    expect(lstm, "`model` has no `nn.LSTM` layer")
    lstm_layer = lstm[0]
    expect(lstm_layer.input_size == vocab_size,
           f"the LSTM reads {lstm_layer.input_size} features per character; a one-hot character has "
           f"{vocab_size} (the vocabulary size)")
    expected = book_parameters(vocab_size)
    expect(n == expected,
           f"your network has {n:,} parameters; the book's has {expected:,}: two LSTM layers of 256 units "
           f"(`nn.LSTM({vocab_size}, 256, 2, batch_first=True)`) and `nn.Linear(256, {vocab_size})`")
    device = next(model.parameters()).device
    x = one_hot(torch.zeros(2, 5, dtype=torch.long, device=device), vocab_size)
    with torch.no_grad():
        returned = model(x, None)
    expect(isinstance(returned, tuple) and len(returned) == 2,
           "`model(x_onehot, states)` must return two things: the scores and the new states")
    logits, states = returned
    expect(tuple(logits.shape) == (2, 5, vocab_size),
           f"for a batch of 2 sequences x 5 characters the scores have shape {tuple(logits.shape)}; expected "
           f"(2, 5, {vocab_size}): one score per character of the vocabulary at every position")
    with torch.no_grad():
        again, _ = model(x, states)
    expect(not torch.allclose(again, logits), "passing the returned states back in changes nothing: "
                                              "give `states` to the LSTM, `self.lstm(x, states)`")
    changed = x.clone()
    changed[0] = one_hot(torch.ones(5, dtype=torch.long, device=device), vocab_size)
    with torch.no_grad():
        other, _ = model(changed, None)
    expect(torch.allclose(other[1], logits[1], atol=1e-6),
           "changing one sequence of the batch changed the scores of another: the LSTM reads the batch as time "
           "steps. The batches are (sequences, characters, vocab), so create it with `batch_first=True` (or "
           "transpose to (characters, sequences, vocab) and back)")
    return f"{n:,} parameters, as in the book; scores of shape (batch, seq, {vocab_size}) and states that carry over"


# --------------------------------------------------------------------------- step 4: the BPTT loop

class _Recorder(nn.Module):
    """A tiny character LSTM that records what every forward pass receives."""

    def __init__(self, vocab_size: int, hidden: int = 12):
        super().__init__()
        self.lstm = nn.LSTM(vocab_size, hidden, batch_first=True)
        self.output = nn.Linear(hidden, vocab_size)
        self.calls: list[dict[str, Any]] = []

    def forward(self, x: torch.Tensor, states: Any = None):
        record: dict[str, Any] = {"shape": tuple(x.shape), "dtype": x.dtype, "states": states is not None,
                                  "attached": False, "zero": True}
        if states is not None:
            tensors = [states] if isinstance(states, torch.Tensor) else list(states)
            record["attached"] = any(t.grad_fn is not None or t.requires_grad for t in tensors)
            record["zero"] = all(not bool(t.detach().abs().sum()) for t in tensors)
        self.calls.append(record)
        out, states = self.lstm(x, states)
        return self.output(out), states


_TINY_TEXT = ("the cat sat on the mat. the dog sat on the log. " * 6)[:241]  # 240 = 4 streams x 60 = 4 x 3 x 20


def _tiny() -> tuple[int, list[tuple[torch.Tensor, torch.Tensor]]]:
    vocab = char_vocabulary(_TINY_TEXT)
    return len(vocab), sequence_batches(encode_text(_TINY_TEXT, vocab), 4, 20)  # 3 equal blocks of (4, 20)


def _epoch_losses(returned: Any, epochs: int) -> list[float]:
    expect(isinstance(returned, (list, tuple)),
           f"`train` returned {type(returned).__name__}; return a list with the mean loss of every epoch")
    try:
        losses = [float(v) for v in returned]
    except (TypeError, ValueError) as err:
        raise Wrong(f"the losses `train` returned are not numbers ({err}): append floats (`loss.item()`)") from err
    expect(len(losses) == epochs, f"`train` returned {len(losses)} losses for {epochs} epochs: one mean loss per epoch")
    return losses


def check_bptt_loop(train_fn: Any, epochs: int = 2) -> str:
    """Verify a hand-written ``train(model, blocks, loss_fn, optimizer, epochs, vocab_size, max_norm)``."""
    expect(callable(train_fn), "`train` must be a function: `def train(model, blocks, loss_fn, optimizer, epochs, "
                               "vocab_size, max_norm=5.0): ...`")
    vocab_size, blocks = _tiny()
    max_norm = 0.01  # tiny, so that clipping always bites and can be seen
    seed_everything(0)
    model = _Recorder(vocab_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    calls = watch_optimizer(optimizer, model)
    try:
        returned = train_fn(model, blocks, nn.CrossEntropyLoss(), optimizer, epochs, vocab_size, max_norm)
    except RuntimeError as error:
        if any(c["attached"] for c in model.calls) or "second time" in str(error) or "inplace" in str(error):
            raise Wrong("the states were passed to the next batch still attached to the previous batch's graph, so "
                        "`backward()` tries to go back into it and fails (E6.5). Detach them before each batch: "
                        "`states = tuple(s.detach() for s in states)`; `retain_graph=True` is not a fix") from error
        raise
    losses = _epoch_losses(returned, epochs)
    records = model.calls
    expect(records, "`train` never called the model")
    expect(records[0]["dtype"].is_floating_point and records[0]["shape"][-1] == vocab_size,
           f"the model received inputs of shape {records[0]['shape']} and dtype {records[0]['dtype']}: feed one-hot "
           f"vectors, `one_hot(x, vocab_size)`, shape (batch, seq, {vocab_size})")
    batches = epochs * len(blocks)
    expect(len(records) == batches, f"the model ran {len(records)} forward passes for {batches} batches "
                                    f"({epochs} epochs of {len(blocks)}): one per batch")
    expect(not any(r["attached"] for r in records),
           "the states reached the next batch still attached to the previous batch's graph: detach them first, "
           "`states = tuple(s.detach() for s in states)`, so each backward pass stops at the batch boundary (E6.5)")
    starts = records[::len(blocks)]
    expect(all(not r["states"] or r["zero"] for r in starts),
           "an epoch started from the states left by the previous epoch, whose last row ends mid-text: start "
           "every epoch from fresh states, `states = None`")
    carried = [r for i, r in enumerate(records) if i % len(blocks)]
    expect(all(r["states"] for r in carried),
           "the states are not carried from one batch to the next (the model got `None`): pass the states "
           "returned by the previous batch, detached, so the LSTM reads each stream as one long text")
    expect(calls["step"] == batches,
           f"`optimizer.step()` ran {calls['step']} times for {batches} batches: once per batch")
    expect(calls["zero_grad"] >= batches,
           f"gradients were reset {calls['zero_grad']} times for {batches} batches, so they add up from batch to "
           "batch: call `optimizer.zero_grad()` before every `loss.backward()`")
    biggest = max(calls["norms"])
    expect(biggest <= max_norm * 1.001,
           f"a step was taken with gradients of total norm {biggest:.3g} although `max_norm` was {max_norm}: call "
           "`nn.utils.clip_grad_norm_(model.parameters(), max_norm)` after `loss.backward()` and before "
           "`optimizer.step()`")

    seed_everything(0)
    reference_model = _Recorder(vocab_size)
    reference = train_bptt(reference_model, blocks, nn.CrossEntropyLoss(),
                           torch.optim.Adam(reference_model.parameters(), lr=0.01), epochs, vocab_size, max_norm,
                           progress=False)
    for epoch, (mine, theirs) in enumerate(zip(losses, reference), start=1):
        expect(close(mine, theirs), f"epoch {epoch}'s loss is {mine:.6f}, but the reference loop gives {theirs:.6f}: "
                                    "compute the cross-entropy on the scores reshaped to (batch x seq, vocab) against "
                                    "the targets reshaped to one dimension, and average each epoch's batch losses")

    seed_everything(0)
    learner_model = _Recorder(vocab_size)
    learning = _epoch_losses(train_fn(learner_model, blocks, nn.CrossEntropyLoss(),
                                      torch.optim.Adam(learner_model.parameters(), lr=0.03), 6, vocab_size, 5.0), 6)
    expect(learning[-1] < learning[0], f"over 6 epochs on a tiny text the loss went from {learning[0]:.3f} to "
                                       f"{learning[-1]:.3f}: it should go down")
    return (f"states carried over and detached, fresh at each epoch, gradients reset and clipped; the losses match "
            f"utils.text.train_bptt to 1e-6 and fall from {learning[0]:.2f} to {learning[-1]:.2f} on a tiny text")


@check.register(4, "the truncated-BPTT training loop")
def _loop(ns: Namespace) -> str:
    train_fn = need(ns, "train", "your training loop, `def train(model, blocks, loss_fn, optimizer, epochs, "
                                 "vocab_size, max_norm=5.0)`")
    message = check_bptt_loop(train_fn)  # before `losses`: a loop that crashed on the real text is explained here
    losses = need(ns, "losses", "the list of epoch losses from training the model")
    expect(len(losses) >= 1 and all(isinstance(v, float) for v in losses),
           "`losses` should be the list of floats your `train` returned")
    return message + f"; your model's last epoch: {losses[-1]:.3f} nats per character"


# --------------------------------------------------------------------------- step 5: sampling

def _expect_temperature(generate: Any, model: nn.Module, starter: str) -> None:
    """A tiny temperature makes every draw the most likely character; a large one spreads the draws out."""
    was_training = model.training
    seeds = range(12)
    cold = {generate(model, starter, max_new=1, top_k=10, temperature=0.001, seed=s)[len(starter):] for s in seeds}
    warm = {generate(model, starter, max_new=1, top_k=10, temperature=1.0, seed=s)[len(starter):] for s in seeds}
    hot = {generate(model, starter, max_new=1, top_k=10, temperature=100.0, seed=s)[len(starter):] for s in seeds}
    model.train(was_training)
    if len(cold) > 1 and len(hot) > 1 and cold == warm == hot:
        raise Wrong("the temperature changes nothing: the same seeds give the same characters at temperature 0.001, "
                    "1 and 100. Divide the scores by `temperature` before the softmax")
    expect(len(cold) == 1, f"at temperature 0.001, 12 seeds gave {len(cold)} different first characters "
                           f"({sorted(cold)}); dividing the scores by so small a temperature leaves only the most "
                           "likely one. Divide the scores by `temperature` (do not multiply)")
    expect(len(hot) > 1, "at temperature 100, 12 seeds all gave the same first character: a large temperature "
                         "flattens the scores, so the draws spread over the `top_k` candidates. Divide the scores "
                         "by `temperature` before the softmax, and draw with the seeded generator")


class _Probe(nn.Module):
    """A character model with the course model's interface, ``model(x_onehot, states) -> (scores, states)``, whose
    most likely next character is a fixed function of the last two characters read, ``(previous + 3 * last + 1)
    mod vocab``: feeding a character twice changes the prediction. ``favourite`` makes one character always win."""

    def __init__(self, vocab_size: int, favourite: int | None = None):
        super().__init__()
        self.vocab_size, self.favourite = vocab_size, favourite
        self.anchor = nn.Parameter(torch.zeros(1))  # so that `next(model.parameters()).device` works

    def forward(self, x: torch.Tensor, states: Any = None):
        codes = x.argmax(dim=-1)  # (batch, seq)
        previous = torch.zeros_like(codes[:, :1]) if states is None else states[0].reshape(-1, 1).long()
        before = torch.cat([previous, codes[:, :-1]], dim=1)
        best = (before + 3 * codes + 1) % self.vocab_size
        if self.favourite is not None:
            best = torch.full_like(best, self.favourite)
        scores = torch.zeros(*codes.shape, self.vocab_size, device=x.device)
        scores.scatter_(-1, best.unsqueeze(-1), 10.0)
        last = codes[:, -1].reshape(1, -1, 1).float()
        return scores + 0 * self.anchor, (last, last.clone())


def _probe_model(vocab_size: int, device: torch.device, favourite: int | None = None) -> nn.Module:
    return _Probe(vocab_size, favourite).eval().to(device)


@check.register(5, "text generation")
def _generate(ns: Namespace) -> str:
    generate = need(ns, "generate", "`generate(model, starter, max_new=50, top_k=10, temperature=1.0, seed=0)`")
    model = need(ns, "model", "the trained model")
    chars = list(need(ns, "chars", "the sorted characters (step 1)"))
    expect(callable(generate), "`generate` must be a function")
    starter = "Alice was "
    first = generate(model, starter, max_new=20, top_k=5, temperature=1.0, seed=3)
    expect(isinstance(first, str), f"`generate` returned {type(first).__name__}; return the text as a string")
    expect(first.startswith(starter), f"the generated text {first!r} does not start with the starter {starter!r}")
    expect(len(first) <= len(starter) + 20, f"`max_new=20` gave {len(first) - len(starter)} new characters")
    expect(len(first) > len(starter), "`generate` added no characters to the starter")
    expect(generate(model, starter, max_new=20, top_k=5, temperature=1.0, seed=3) == first,
           "the same seed gave two different texts: draw with a seeded generator, "
           "`torch.Generator().manual_seed(seed)`, passed to `torch.multinomial`")
    new = first[len(starter):]
    expect("." not in new[:-1], "the text goes on after a full stop: stop at the first '.'")
    device = next(model.parameters()).device
    if "." in chars:
        stopper = _probe_model(len(chars), device, favourite=chars.index("."))
        stopped = generate(stopper, starter, max_new=20, top_k=3, temperature=1.0, seed=0)
        expect(stopped == starter + ".",
               f"with a model that always scores '.' highest, `generate` gave {stopped!r}: stop right after the "
               "first full stop, `if chars[index] == '.': break`")
    model = _probe_model(len(chars), device)  # its top-1 choice depends on the last two characters fed
    index = {c: i for i, c in enumerate(chars)}
    text = str(ns.get("text") or starter)
    starters = [starter] + [text[k:k + 24] for k in range(1000, min(len(text) - 24, 40_000), 3_989)]
    starters = [s for s in starters if s and set(s) <= set(chars)]
    was_training = model.training
    for probe in starters:
        codes = torch.tensor([[index[c] for c in probe]], device=device)
        model.eval()
        with torch.no_grad():
            logits, states = model(one_hot(codes, len(chars)), None)
            expected = chars[int(logits[0, -1].argmax())]
            doubled_logits, _ = model(one_hot(codes[:, -1:], len(chars)), states)
            doubled = chars[int(doubled_logits[0, -1].argmax())]
        model.train(was_training)
        got = generate(model, probe, max_new=1, top_k=1, temperature=1.0, seed=0)[len(probe):]
        if got == expected:
            continue
        if got == doubled:
            raise Wrong("with `top_k=1` the first new character is the one predicted after the starter's last "
                        "character was fed a second time (E6.7): feed the starter once and draw the first new "
                        "character from the scores at its last position, `logits[0, -1]`")
        raise Wrong(f"with `top_k=1` the first character after {probe!r} should be the most likely one, "
                    f"{expected!r}, but `generate` gave {got!r}: feed the whole starter once and draw from the "
                    "scores at its last position")
    _expect_temperature(generate, need(ns, "model"), starter)
    try:
        generate(model, "Alice in \u00fcber", max_new=5)
    except ValueError:
        pass
    except Exception as error:  # noqa: BLE001 - we report what it was
        raise Wrong(f"a starter with a character the model never saw raised {type(error).__name__}: raise a "
                    "`ValueError` that names the unknown characters instead") from error
    else:
        raise Wrong("a starter with a character outside the vocabulary ('\u00fc') was accepted: raise a `ValueError` "
                    "that names the unknown characters")
    return f"repeatable samples that stop at a full stop, e.g. {first!r}; top-1 picks the most likely character"
