"""``tools/benchmark_style.py``: what each timed loop computes, the interleaved timing, and a whole run
on tiny images, so the command the chapter guide quotes keeps working."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from utils import style as st

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("benchmark_style", ROOT / "tools" / "benchmark_style.py")
benchmark = importlib.util.module_from_spec(spec)
spec.loader.exec_module(benchmark)


@pytest.fixture(scope="module")
def vgg() -> nn.Sequential:
    torch.manual_seed(0)
    return st.load_vgg19_features(weights=None)


def test_bare_pass_stops_at_the_deepest_layer_the_losses_need(vgg):
    assert benchmark.DEEPEST == 28 and isinstance(vgg[benchmark.DEEPEST], nn.Conv2d)
    bare = benchmark.BarePass(vgg, torch.randn(1, 3, 32, 32), torch.channels_last)
    assert len(bare.net) == 29 and bare.image.is_contiguous(memory_format=torch.channels_last)
    assert bare.seconds_for(1) > 0
    assert bare.image.grad is not None and bare.image.grad.abs().sum() > 0  # a real backward pass to the image


def test_book_extractor_skips_the_layers_between_the_listed_ones(vgg):
    features = benchmark.book_features(torch.randn(1, 3, 32, 40), vgg, st.VGG19_LAYERS)
    # no pooling: conv5_1 keeps the input's resolution (E5.4); VGG-19's own would be 512x2x2
    assert tuple(features["conv5_1"].shape) == (1, 512, 32, 40)
    assert (features["conv1_1"] < 0).any()  # no ReLU either


def test_book_gram_is_not_normalised():
    maps = torch.ones(1, 2, 3, 4)
    assert torch.equal(benchmark.book_gram(maps), torch.full((2, 2), 12.0))  # the sum over 12 positions
    assert torch.allclose(st.gram_matrix(maps)[0], torch.full((2, 2), 12.0 / 24))


def test_book_loop_uses_only_the_last_style_term(vgg):
    content, style = torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32)
    loop = benchmark.BookLoop(vgg, content, style)
    start = loop.target.detach().clone()
    total = loop.step()
    with torch.no_grad():
        features = benchmark.book_features(start, vgg, st.VGG19_LAYERS)
        last = st.STYLE_WEIGHTS["conv5_1"] * torch.mean(
            (benchmark.book_gram(features["conv5_1"]) - loop.style_grams["conv5_1"]) ** 2)
    # the target starts as the content image, so the content term is 0 and the total is beta * the last term
    assert torch.allclose(total, 1e6 * last, rtol=1e-4)
    assert not torch.equal(loop.target.detach(), start)  # Adam moved the pixels


def test_measure_interleaves_and_summarises():
    calls: list[str] = []

    def timer(name: str, seconds: float):
        def seconds_for(n: int) -> float:
            calls.append(name)
            return seconds * n
        return seconds_for

    chunks = benchmark.measure({"a": (timer("a", 0.5), 2), "b": (timer("b", 0.25), 4)}, rounds=3)
    assert calls == ["a", "b"] * 3  # one chunk each per round, in turn
    assert chunks == {"a": [0.5] * 3, "b": [0.25] * 3}  # per iteration, not per chunk
    assert benchmark.summary({"a": [3.0, 1.0, 2.0, 9.0]}) == {"a": (1.0, 2.5)}
    with pytest.raises(ValueError, match="rounds"):
        benchmark.measure({}, rounds=0)


def test_whole_run_on_tiny_images_prints_every_figure(capsys):
    results = benchmark.main(["--size", "32", "--rounds", "1", "--chunk", "1", "--device", "cpu"])
    out = capsys.readouterr().out
    assert set(results) == {"bare pass, NCHW", "bare pass, channels-last", "course (transfer_style)",
                            "book's loop (code bundle)"}
    assert all(best > 0 and median >= best for best, median in results.values())
    ratio = re.search(r"course / bare pass: (\d+\.\d\d)", out)
    assert ratio is not None
    bare = min(results["bare pass, NCHW"][0], results["bare pass, channels-last"][0])
    assert float(ratio.group(1)) == pytest.approx(results["course (transfer_style)"][0] / bare, abs=0.006)
    assert "book's loop / course" in out and "E5.4" in out
