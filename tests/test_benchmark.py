"""``tools/benchmark_cifar_pipeline.py``: its timing (interleaved chunks, best and median) and a whole
run on a small fake CIFAR-10, so the command the chapter guide quotes keeps working."""

from __future__ import annotations

import importlib.util
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("benchmark", ROOT / "tools" / "benchmark_cifar_pipeline.py")
benchmark = importlib.util.module_from_spec(spec)
spec.loader.exec_module(benchmark)

CPU = torch.device("cpu")


def fake_batches(n_batches: int = 3, batch_size: int = 4) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    return [(torch.randn(batch_size, 3, 32, 32, generator=generator),
             torch.randint(0, 10, (batch_size,), generator=generator)) for _ in range(n_batches)]


class SlowBatches:
    """The same batches, each taking ``delay`` seconds to make (a stand-in for per-image PIL work)."""

    def __init__(self, batches, delay: float):
        self.batches, self.delay = batches, delay

    def __iter__(self):
        for batch in self.batches:
            time.sleep(self.delay)
            yield batch


def test_pipelines_take_turns_and_the_slow_one_is_measured_slower():
    batches = fake_batches()
    pipelines = {"slow": benchmark.Pipeline(SlowBatches(batches, 0.02), CPU, loop=None),
                 "fast": benchmark.Pipeline(batches, CPU, loop=None)}
    order = []
    chunks = benchmark.measure(pipelines, batches=5, rounds=3, report=lambda r, latest: order.append((r, *latest)))
    assert order == [(1, "slow", "fast"), (2, "slow", "fast"), (3, "slow", "fast")]
    assert [len(times) for times in chunks.values()] == [3, 3]
    assert min(chunks["slow"]) >= 5 * 0.02, "5 batches (more than one pass over 3) were drawn per chunk"
    best, median = benchmark.speedups(chunks, "slow")["fast"]
    assert best > 3 and median > 3
    assert benchmark.speedups(chunks, "slow")["slow"] == (1.0, 1.0)


def test_the_book_loop_and_the_fit_loop_train_alike():
    # The two loops differ only in their bookkeeping (per-batch .item() against sums kept on the device):
    # from the same seed and batches they must reach the same weights, so the benchmark compares like with like.
    batches = fake_batches()
    weights = []
    for loop in ("book", "fit"):
        pipeline = benchmark.Pipeline(batches, CPU, loop=loop)
        pipeline.seconds_for(4)
        weights.append([p.detach() for p in pipeline.model.parameters()])
    for book, fit in zip(*weights):
        torch.testing.assert_close(book, fit, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="loop must be"):
        benchmark.Pipeline(batches, CPU, loop="mine")


def test_speedups_use_the_best_and_the_median_chunk():
    chunks = {"book": [12.0, 30.0, 13.0], "fast": [4.0, 4.5, 9.0]}
    best, median = benchmark.speedups(chunks, "book")["fast"]
    assert best == pytest.approx(12.0 / 4.0) and median == pytest.approx(13.0 / 4.5)


def test_a_training_pipeline_trains_its_own_network_epoch_after_epoch():
    pipeline = benchmark.Pipeline(fake_batches(), CPU, channels_last=True)
    before = [p.detach().clone() for p in pipeline.model.parameters()]
    assert pipeline.seconds_for(7) > 0  # more batches than one pass holds
    assert all(not torch.equal(a, b.detach()) for a, b in zip(before, pipeline.model.parameters()))
    assert pipeline.model.model.conv1.weight.is_contiguous(memory_format=torch.channels_last)


def test_relu_after_pooling_is_the_same_network():
    # ReLU keeps the largest value of each window the largest, so relu(pool(x)) == pool(relu(x)):
    # same outputs, same gradients for the same weights (ties have probability zero here).
    book, tuned = benchmark.Activity7CNN(), benchmark.Activity7CNN(relu_after_pool=True)
    tuned.load_state_dict(book.state_dict())
    book.eval(), tuned.eval()  # no dropout: the two must agree exactly
    x = torch.randn(8, 3, 32, 32)
    target = torch.randint(0, 10, (8,))
    out_book, out_tuned = book(x), tuned(x)
    torch.testing.assert_close(out_tuned, out_book, rtol=0, atol=0)
    torch.nn.functional.nll_loss(out_book, target).backward()
    torch.nn.functional.nll_loss(out_tuned, target).backward()
    for (name, a), b in zip(book.named_parameters(), tuned.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-6, atol=1e-7, msg=name)


def test_the_tuned_pipeline_uses_fused_adam_and_trains():
    pipeline = benchmark.Pipeline(fake_batches(), CPU, channels_last=True, tuned=True)
    assert pipeline.optimizer.defaults["fused"] is True
    assert pipeline.model.model.relu_after_pool
    before = [p.detach().clone() for p in pipeline.model.parameters()]
    pipeline.seconds_for(3)
    assert all(not torch.equal(a, b.detach()) for a, b in zip(before, pipeline.model.parameters()))


def test_activity7_network_has_the_book_shapes():
    model = benchmark.Activity7CNN()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert sum(p.numel() for p in model.parameters()) == 74_450


class FakeCifar10(torch.utils.data.Dataset):
    """A small stand-in for ``load_cifar10``'s dataset: ``.data``, ``.targets`` and PIL transforms."""

    def __init__(self, transform, n: int = 250):
        rng = np.random.default_rng(0)
        self.data = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
        self.targets = rng.integers(0, 10, size=n).tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.data[i])), self.targets[i]


@pytest.mark.parametrize("augment", [False, True])
def test_the_command_prints_every_pipeline_and_the_ratio(monkeypatch, capsys, augment):
    monkeypatch.setattr(benchmark, "load_cifar10", lambda train, transform: FakeCifar10(transform))
    monkeypatch.setattr(sys, "argv", ["benchmark", "--batches", "2", "--repeats", "2"]
                        + (["--augment"] if augment else []))
    benchmark.main()
    out = capsys.readouterr().out
    assert ("flip 0.5 + grey 0.1" in out) == augment
    for name in ("book", "fast", "fast + channels_last", "  + fused Adam, ReLU after pooling"):
        assert re.search(rf"^  {re.escape(name)} +[\d.]+ s +[\d.]+ s +[\d.]+x +[\d.]+x$", out, re.M), name
    for label in ("as the Chapter 4 solutions train", "fast \\+ channels_last.* \\+ fused Adam, ReLU after pooling"):
        assert re.search(rf"^training epoch, {label}: [\d.]+x as fast as the book's pipeline "
                         r"\(best chunks; [\d.]+x from the medians\)$", out, re.M), label


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_pipelines_run_on_cuda():
    batches = fake_batches()
    cuda = torch.device("cuda")
    for pipeline in (benchmark.Pipeline(batches, cuda, loop=None), benchmark.Pipeline(batches, cuda, loop="book"),
                     benchmark.Pipeline(batches, cuda, channels_last=True, dtype=torch.bfloat16, tuned=True)):
        assert pipeline.seconds_for(4) > 0


def test_without_native_bfloat16_the_tuned_row_follows_the_solutions_float32_pipeline(monkeypatch, capsys):
    monkeypatch.setattr(benchmark, "load_cifar10", lambda train, transform: FakeCifar10(transform))
    monkeypatch.setattr(benchmark, "mixed_precision_dtype", lambda device: None)  # a CPU without native bfloat16
    monkeypatch.setattr(benchmark, "native_bfloat16", lambda device: False)
    monkeypatch.setattr(sys, "argv", ["benchmark", "--batches", "2", "--repeats", "1", "--device", "cpu"])
    benchmark.main()
    out = capsys.readouterr().out
    assert "not supported natively here, so not measured" in out and "bfloat16 " not in out
    assert "the Chapter 4 solutions train as 'fast + channels_last' here" in out
    summary = out[out.rindex("training: s/epoch"):].splitlines()[1:]
    names = [re.match(r"^  (.+?) +[\d.]+ s ", line).group(1) for line in summary if re.match(r"^  .+ s ", line)]
    assert names == ["book", "fast", "fast + channels_last", "  + fused Adam, ReLU after pooling"], names
