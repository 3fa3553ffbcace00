"""Text helpers for Chapter 6: vocabularies, encoding, one-hot batches, padding, sampling,
the truncated-backpropagation training loop of Activity 12 and a character n-gram baseline.

Two kinds of vocabulary are used:

* characters (Activity 12, text generation): every character of the text, **sorted**, so the
  same text always gives the same indices (the book's ``list(set(text))`` does not: Python
  randomises the order of a set of strings between runs, so a saved model stops matching);
* words (Activity 13, sentiment analysis): lower-cased words without punctuation, sorted,
  after two reserved entries: ``<pad>`` (index 0, fills short reviews in a batch) and
  ``<unk>`` (index 1, any word that was not in the training reviews).
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .progress import progress_bar

PAD = "<pad>"
UNKNOWN = "<unk>"

_STRIP_PUNCTUATION = str.maketrans("", "", string.punctuation)


@dataclass(frozen=True)
class Vocabulary:
    """An ordered list of tokens and the inverse mapping token -> index.

    ``unknown`` names the token that stands for anything not in the vocabulary; without one,
    encoding an unknown token raises a ``ValueError`` that lists the offending tokens.
    """

    tokens: tuple[str, ...]
    unknown: str | None = None
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("a vocabulary cannot contain the same token twice")
        if self.unknown is not None and self.unknown not in self.tokens:
            raise ValueError(f"the unknown token {self.unknown!r} must be one of the tokens")
        object.__setattr__(self, "index", {token: i for i, token in enumerate(self.tokens)})

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self.index

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """The index of each token (unknown tokens map to ``unknown`` if set, else raise ``ValueError``)."""
        tokens = list(tokens)
        if self.unknown is None:
            missing = sorted({t for t in tokens if t not in self.index})
            if missing:
                raise ValueError(
                    f"{len(missing)} token(s) outside the vocabulary of {len(self)}: "
                    f"{', '.join(repr(t) for t in missing[:10])}{' ...' if len(missing) > 10 else ''}")
            return [self.index[t] for t in tokens]
        fallback = self.index[self.unknown]
        return [self.index.get(t, fallback) for t in tokens]

    def decode(self, indices: Iterable[int] | torch.Tensor) -> list[str]:
        """The token of each index."""
        values = indices.tolist() if isinstance(indices, torch.Tensor) else list(indices)
        bad = [i for i in values if not 0 <= i < len(self)]
        if bad:
            raise ValueError(f"indices {bad[:5]} are outside the vocabulary (0..{len(self) - 1})")
        return [self.tokens[i] for i in values]


# --------------------------------------------------------------------------- characters

def char_vocabulary(text: str) -> Vocabulary:
    """The sorted distinct characters of ``text``: the same text always gives the same indices."""
    if not text:
        raise ValueError("cannot build a character vocabulary from an empty text")
    return Vocabulary(tuple(sorted(set(text))))


def encode_text(text: str, vocabulary: Vocabulary) -> torch.Tensor:
    """``text`` as a 1-D ``long`` tensor of character indices."""
    return torch.tensor(vocabulary.encode(text), dtype=torch.long)


def decode_text(indices: Iterable[int] | torch.Tensor, vocabulary: Vocabulary) -> str:
    """The characters of ``indices`` joined into a string."""
    return "".join(vocabulary.decode(indices))


def one_hot(indices: torch.Tensor, size: int) -> torch.Tensor:
    """A float one-hot encoding: shape ``indices.shape + (size,)``, on the same device as ``indices``."""
    if indices.dtype != torch.long:
        raise TypeError(f"indices must be a long tensor, got {indices.dtype}")
    if indices.numel() and (indices.min() < 0 or indices.max() >= size):
        raise ValueError(f"indices must lie in 0..{size - 1}, got {indices.min().item()}..{indices.max().item()}")
    return F.one_hot(indices, size).float()


def sequence_batches(encoded: torch.Tensor, batch_size: int,
                     seq_length: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Cut an encoded text into ``(inputs, targets)`` blocks for a stateful character model.

    The text is split into ``batch_size`` contiguous streams of equal length, one per row;
    block ``k`` holds columns ``k*seq_length`` to ``(k+1)*seq_length`` of every stream, so
    row ``r`` of block ``k+1`` continues row ``r`` of block ``k`` (the hidden state can be
    carried over). Targets are the inputs shifted by one character, taken from the real text.
    The last block is shorter when the stream length is not a multiple of ``seq_length``,
    so the blocks cover the whole text except its last ``(len(encoded) - 1) % batch_size``
    characters.
    """
    if encoded.dim() != 1:
        raise ValueError(f"expected a 1-D tensor of indices, got shape {tuple(encoded.shape)}")
    if batch_size < 1 or seq_length < 1:
        raise ValueError("batch_size and seq_length must be positive")
    stream_length = (len(encoded) - 1) // batch_size
    if stream_length < 1:
        raise ValueError(f"a text of {len(encoded)} characters is too short for {batch_size} streams")
    used = batch_size * stream_length
    inputs = encoded[:used].view(batch_size, stream_length)
    targets = encoded[1:used + 1].view(batch_size, stream_length)
    return [(inputs[:, start:start + seq_length], targets[:, start:start + seq_length])
            for start in range(0, stream_length, seq_length)]


def sample_next(logits: torch.Tensor, top_k: int = 5, temperature: float = 1.0,
                generator: torch.Generator | None = None) -> int:
    """Draw the next index from the ``top_k`` highest ``logits`` (1-D), sharpened or flattened by ``temperature``.

    ``temperature`` < 1 favours the most likely tokens, > 1 gives rarer ones more chance;
    ``top_k=1`` always picks the most likely token. Pass a seeded ``generator`` to repeat a sample.
    """
    if logits.dim() != 1:
        raise ValueError(f"expected the logits of one position (1-D), got shape {tuple(logits.shape)}")
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    top_k = max(1, min(top_k, logits.numel()))
    values, candidates = torch.topk(logits.detach().float().cpu(), top_k)
    probabilities = torch.softmax(values / temperature, dim=0)
    choice = torch.multinomial(probabilities, 1, generator=generator)
    return int(candidates[choice].item())


def detach_states(states: Any) -> Any:
    """``states`` cut off from their history: a tensor, a tuple of tensors (an LSTM's), or ``None``."""
    if states is None:
        return None
    if isinstance(states, torch.Tensor):
        return states.detach()
    return tuple(s.detach() for s in states)


def train_bptt(model: nn.Module, blocks: Sequence[tuple[torch.Tensor, torch.Tensor]], loss_fn: Any,
               optimizer: torch.optim.Optimizer, epochs: int, vocab_size: int, max_norm: float = 5.0,
               progress: bool = True) -> list[float]:
    """Train a stateful character model with truncated backpropagation through time; the loop of Activity 12.

    ``model(x_onehot, states)`` returns ``(logits, states)`` with logits of shape ``(batch, seq, vocab)``;
    ``blocks`` come from :func:`sequence_batches`, so row ``r`` of block ``k + 1`` continues row ``r`` of
    block ``k``. Every epoch starts from zero states (``None``); before each block the states are
    **detached** (their values carry over, their gradients stop at the block boundary), and the
    gradients are clipped to a total norm of ``max_norm`` before each step. Returns the mean loss per
    character of every epoch (each block's loss weighted by its number of targets).
    """
    device = next(model.parameters()).device
    losses: list[float] = []
    for _ in progress_bar(range(epochs), desc="epochs", disable=not progress):
        model.train()
        states, total, seen = None, 0.0, 0
        for x, y in blocks:
            x, y = x.to(device), y.to(device)
            states = detach_states(states)
            logits, states = model(one_hot(x, vocab_size), states)
            loss = loss_fn(logits.reshape(-1, vocab_size), y.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            optimizer.step()
            total, seen = total + loss.item() * y.numel(), seen + y.numel()
        if seen == 0:
            raise ValueError("no blocks to train on")
        losses.append(total / seen)
    return losses


def char_ngram_cross_entropy(train: torch.Tensor, evaluate: torch.Tensor, vocab_size: int, order: int = 2,
                             alpha: float = 1.0) -> float:
    """Cross-entropy (nats per character) on ``evaluate`` of a character n-gram model counted on ``train``.

    The model predicts each character from the ``order - 1`` characters before it, with add-``alpha``
    (Laplace, add-one by default) smoothing: P(c | context) = (count(context, c) + alpha) /
    (count(context) + alpha * vocab_size), so a context never seen in ``train`` gives the uniform
    ln(vocab_size). ``order=1`` counts characters only; ``order=2`` is a bigram model, ``3`` a trigram.
    The first ``order - 1`` characters of ``evaluate`` are only used as context.
    """
    if order < 1:
        raise ValueError("order must be at least 1")
    if alpha <= 0:
        raise ValueError("alpha must be positive, or unseen pairs get probability 0")
    for name, codes in (("train", train), ("evaluate", evaluate)):
        if codes.dim() != 1 or len(codes) < order:
            raise ValueError(f"{name} must be a 1-D tensor of at least {order} indices")
        if codes.min() < 0 or codes.max() >= vocab_size:
            raise ValueError(f"{name} has indices outside 0..{vocab_size - 1}")

    def contexts(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        codes = codes.long().cpu()
        n = len(codes) - order + 1
        ids = torch.zeros(n, dtype=torch.long)
        for i in range(order - 1):
            ids = ids * vocab_size + codes[i:i + n]
        return ids, codes[order - 1:]

    context, following = contexts(train)
    counts = torch.zeros(vocab_size ** (order - 1), vocab_size, dtype=torch.float64)
    counts.index_put_((context, following), torch.ones(len(following), dtype=torch.float64), accumulate=True)
    probabilities = (counts + alpha) / (counts.sum(dim=1, keepdim=True) + alpha * vocab_size)
    context, following = contexts(evaluate)
    return float(-probabilities[context, following].log().mean())


# --------------------------------------------------------------------------- words

def tokenize(text: str) -> list[str]:
    """Lower-case ``text``, delete ASCII punctuation and split on whitespace: ``"Great, isn't it!"`` -> 3 words."""
    return text.lower().translate(_STRIP_PUNCTUATION).split()


def word_vocabulary(documents: Iterable[Sequence[str]], min_count: int = 1) -> Vocabulary:
    """``<pad>``, ``<unk>``, then the sorted words that occur at least ``min_count`` times in ``documents``."""
    counts = Counter(word for words in documents for word in words)
    words = sorted(w for w, n in counts.items() if n >= min_count and w not in (PAD, UNKNOWN))
    return Vocabulary((PAD, UNKNOWN, *words), unknown=UNKNOWN)


def pad_sequences(sequences: Sequence[Sequence[int]], pad_index: int = 0,
                  max_length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack variable-length index sequences into a ``(N, T)`` long tensor padded at the end.

    Returns the padded tensor and the true lengths (``(N,)``, on the CPU, as
    ``pack_padded_sequence`` wants them). ``max_length`` cuts longer sequences; ``T`` is the
    longest (cut) length. Empty sequences are refused: an LSTM cannot read zero steps.
    """
    if len(sequences) == 0:
        raise ValueError("no sequences to pad")
    cut = [list(s)[:max_length] if max_length is not None else list(s) for s in sequences]
    empty = [i for i, s in enumerate(cut) if len(s) == 0]
    if empty:
        raise ValueError(f"sequences {empty[:5]} are empty; drop them or give them an <unk> token first")
    lengths = torch.tensor([len(s) for s in cut], dtype=torch.long)
    padded = torch.full((len(cut), int(lengths.max())), pad_index, dtype=torch.long)
    for row, seq in enumerate(cut):
        padded[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
    return padded, lengths
