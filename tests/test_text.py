"""The Chapter 6 text helpers: vocabularies, encoding, one-hot, batching, padding and sampling."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from utils.text import (
    PAD,
    UNKNOWN,
    Vocabulary,
    char_vocabulary,
    decode_text,
    encode_text,
    one_hot,
    pad_sequences,
    sample_next,
    sequence_batches,
    tokenize,
    word_vocabulary,
)

TEXT = "Alice was beginning to get very tired of sitting by her sister on the bank.\n"


def test_char_vocabulary_is_sorted_and_round_trips():
    vocab = char_vocabulary(TEXT)
    assert list(vocab.tokens) == sorted(set(TEXT))
    assert decode_text(encode_text(TEXT, vocab), vocab) == TEXT


def _vocabulary_in_fresh_interpreter(seed: str) -> str:
    code = ("from utils.text import char_vocabulary, word_vocabulary\n"
            f"print(''.join(char_vocabulary({TEXT!r}).tokens) + '|' + "
            f"' '.join(word_vocabulary([{TEXT!r}.split()]).tokens))")
    env = {**os.environ, "PYTHONHASHSEED": seed}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout


def test_vocabularies_do_not_depend_on_hash_randomisation():
    # The book's list(set(text)) changes order with PYTHONHASHSEED; ours must not.
    orders = {_vocabulary_in_fresh_interpreter(seed) for seed in ("1", "2")}
    assert len(orders) == 1
    set_orders = {subprocess.run([sys.executable, "-c", f"print(''.join(set({TEXT!r})))"], capture_output=True,
                                 text=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
                  for seed in ("1", "2", "3")}
    assert len(set_orders) > 1, "sanity: a set of strings really does change order between runs"


def test_unknown_character_is_a_clear_error():
    vocab = char_vocabulary("abc")
    with pytest.raises(ValueError, match=r"'z'"):
        vocab.encode("abz")


def test_vocabulary_refuses_duplicates_and_bad_indices():
    with pytest.raises(ValueError, match="twice"):
        Vocabulary(("a", "a"))
    with pytest.raises(ValueError, match="outside"):
        char_vocabulary("ab").decode([0, 2])


def test_one_hot_shape_and_values():
    indices = torch.tensor([[0, 2, 1], [1, 1, 0]])
    encoded = one_hot(indices, 3)
    assert encoded.shape == (2, 3, 3) and encoded.dtype == torch.float32
    assert encoded.sum(-1).eq(1).all()
    assert encoded.argmax(-1).equal(indices)
    with pytest.raises(ValueError, match="0..2"):
        one_hot(torch.tensor([3]), 3)


@pytest.mark.parametrize("length,batch,seq", [(1001, 10, 7), (1000, 10, 7), (101, 4, 50), (5001, 100, 50)])
def test_sequence_batches_cover_the_text_and_targets_are_next_characters(length, batch, seq):
    encoded = torch.arange(length)
    blocks = sequence_batches(encoded, batch, seq)
    stream = (length - 1) // batch
    assert all(x.shape == y.shape and x.shape[0] == batch for x, y in blocks)
    assert [x.shape[1] for x, _ in blocks[:-1]] == [seq] * (len(blocks) - 1)
    assert sum(x.shape[1] for x, _ in blocks) == stream
    # Rows continue across blocks, and concatenating the rows gives back the text.
    rows = torch.cat([x for x, _ in blocks], dim=1)
    assert rows.reshape(-1).equal(encoded[:batch * stream])
    targets = torch.cat([y for _, y in blocks], dim=1)
    assert targets.equal(rows + 1)  # every target is the true next character
    assert length - batch * stream - 1 < batch  # only a remainder shorter than one row is left out


def test_sequence_batches_refuse_a_too_short_text():
    with pytest.raises(ValueError, match="too short"):
        sequence_batches(torch.arange(5), 10, 3)


def test_tokenize_lowercases_and_strips_punctuation():
    assert tokenize("Great phone, ISN'T it?!  10/10") == ["great", "phone", "isnt", "it", "1010"]
    assert tokenize(" ...!") == []


def test_word_vocabulary_reserves_pad_and_unknown_and_sorts():
    vocab = word_vocabulary([["the", "phone", "works"], ["phone", "broke"]])
    assert vocab.tokens[:2] == (PAD, UNKNOWN)
    assert list(vocab.tokens[2:]) == ["broke", "phone", "the", "works"]
    assert vocab.encode(["phone", "fantastic"]) == [vocab.index["phone"], 1]
    assert word_vocabulary([["a", "a", "b"]], min_count=2).tokens == (PAD, UNKNOWN, "a")


def test_pad_sequences_pads_at_the_end_and_returns_lengths():
    padded, lengths = pad_sequences([[5, 6, 7], [8], [9, 10]])
    assert padded.tolist() == [[5, 6, 7], [8, 0, 0], [9, 10, 0]]
    assert lengths.tolist() == [3, 1, 2]
    cut, cut_lengths = pad_sequences([[1, 2, 3, 4], [5]], pad_index=-1, max_length=2)
    assert cut.tolist() == [[1, 2], [5, -1]] and cut_lengths.tolist() == [2, 1]
    with pytest.raises(ValueError, match="empty"):
        pad_sequences([[1], []])
    with pytest.raises(ValueError, match="no sequences"):
        pad_sequences([])


def test_sample_next_respects_top_k_temperature_and_seed():
    logits = torch.tensor([0.0, 5.0, 4.0, -3.0])
    draws = {sample_next(logits, top_k=2, generator=torch.Generator().manual_seed(s)) for s in range(50)}
    assert draws == {1, 2}
    assert sample_next(logits, top_k=1) == 1
    cold = [sample_next(logits, top_k=4, temperature=0.05, generator=torch.Generator().manual_seed(s))
            for s in range(20)]
    assert set(cold) == {1}
    again = [sample_next(logits, top_k=3, generator=torch.Generator().manual_seed(7)) for _ in range(2)]
    assert again[0] == again[1]
    with pytest.raises(ValueError, match="temperature"):
        sample_next(logits, temperature=0)


# --------------------------------------------------------------------------- the BPTT loop and the n-gram baseline

class _TinyCharModel(torch.nn.Module):
    def __init__(self, vocab_size: int):
        super().__init__()
        self.lstm = torch.nn.LSTM(vocab_size, 8, batch_first=True)
        self.output = torch.nn.Linear(8, vocab_size)
        self.incoming = []

    def forward(self, x, states=None):
        self.incoming.append(states)
        out, states = self.lstm(x, states)
        return self.output(out), states


def _tiny_blocks():
    text = "abcabcabdabcabcabd" * 12
    vocab = char_vocabulary(text)
    return vocab, sequence_batches(encode_text(text, vocab), 4, 9)


def test_train_bptt_detaches_carries_and_learns():
    from utils.text import train_bptt

    vocab, blocks = _tiny_blocks()
    torch.manual_seed(0)
    model = _TinyCharModel(len(vocab))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = train_bptt(model, blocks, torch.nn.CrossEntropyLoss(), optimizer, 8, len(vocab), progress=False)
    assert len(losses) == 8 and losses[-1] < 0.5 * losses[0]
    per_epoch = len(blocks)
    for epoch in range(8):
        first, *rest = model.incoming[epoch * per_epoch:(epoch + 1) * per_epoch]
        assert first is None, "every epoch starts from zero states"
        assert all(s is not None and all(t.grad_fn is None for t in s) for s in rest), "states carried, detached"


def test_train_bptt_clips_gradients():
    from utils.text import train_bptt

    vocab, blocks = _tiny_blocks()
    model = _TinyCharModel(len(vocab))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    norms = []
    original = optimizer.step

    def step(*args, **kwargs):
        norms.append(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()])).item())
        return original(*args, **kwargs)

    optimizer.step = step
    train_bptt(model, blocks, torch.nn.CrossEntropyLoss(), optimizer, 1, len(vocab), max_norm=1e-3, progress=False)
    assert norms and max(norms) <= 1e-3 * 1.001


def _brute_force_ngram(train, evaluate, vocab_size, order, alpha=1.0):
    import math
    from collections import Counter

    pairs = Counter(tuple(train[i:i + order]) for i in range(len(train) - order + 1))
    contexts = Counter(tuple(train[i:i + order - 1]) for i in range(len(train) - order + 1))
    total = 0.0
    positions = range(order - 1, len(evaluate))
    for i in positions:
        context, char = tuple(evaluate[i - order + 1:i]), evaluate[i]
        p = (pairs[context + (char,)] + alpha) / (contexts[context] + alpha * vocab_size)
        total -= math.log(p)
    return total / len(positions)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_char_ngram_cross_entropy_matches_counting_by_hand(order):
    from utils.text import char_ngram_cross_entropy

    vocab = char_vocabulary(TEXT)
    train = encode_text(TEXT, vocab)
    evaluate = encode_text("the sister was tired of the bank", vocab)
    got = char_ngram_cross_entropy(train, evaluate, len(vocab), order=order)
    assert got == pytest.approx(_brute_force_ngram(train.tolist(), evaluate.tolist(), len(vocab), order), rel=1e-9)


def test_char_ngram_cross_entropy_limits():
    import math

    from utils.text import char_ngram_cross_entropy

    repeating = torch.tensor([0, 1, 2] * 300)
    # a bigram model of a text that always continues the same way is nearly certain
    assert char_ngram_cross_entropy(repeating, repeating, 10, order=2) < 0.05
    # contexts never seen in training get the uniform distribution: ln(V)
    assert char_ngram_cross_entropy(repeating, torch.tensor([5, 5, 5, 5]), 10, order=2) == pytest.approx(math.log(10))
    with pytest.raises(ValueError, match="positive"):
        char_ngram_cross_entropy(repeating, repeating, 10, alpha=0)
    with pytest.raises(ValueError, match="outside"):
        char_ngram_cross_entropy(repeating, torch.tensor([0, 11]), 10)
