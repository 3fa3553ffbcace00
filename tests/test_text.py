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
