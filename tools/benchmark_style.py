"""Seconds per iteration of Chapter 5's style transfer: the course's loop, the bare network pass, the book's loop.

Three things are timed on the same content and style images (the dog and the Matisse at the book's
224 pixels unless told otherwise), with the same VGG-19 ``features``:

* **bare pass**: one forward and one backward pass, with respect to the image, through
  ``vgg19().features`` up to the deepest layer the losses need (``conv5_1``, so ``features[:29]``),
  and nothing else: no losses, no optimiser. It is timed in the default (NCHW) layout and in
  channels-last; the faster of the two is the reference, the least an iteration can cost.
* **course**: :func:`utils.style.transfer_style` with the book's settings (Adam, lr 0.001,
  alpha 1, beta 1e6): the extractor that runs every layer up to ``relu5_1``, normalised Gram
  matrices, the style loss over all five layers, the clamp after every step, the loss history.
  Its seconds per iteration are the loop's own (``StyleTransferRun.seconds_per_iteration``): the
  fixed targets, computed once per run before the loop, are not counted.
* **book**: the loop as the book's code bundle writes it (Chapter 5, Exercise 13): its
  ``features_extractor``, which applies **only** the listed convolutions and skips every ReLU and
  max-pooling between them (ERRATA E5.4), so its features are not VGG-19's and its deep layers run
  at the input's full resolution; Gram matrices by ``torch.mm`` without normalisation (E5.5); the
  total loss from the last style layer's term (E5.6); Adam, no clamp. It computes something else
  than the course's loop, so its time says what the book's code costs, not what style transfer costs.

**How it times.** The three take turns: each round runs a short chunk of each (``--chunk``
iterations; the book's loop ``--book-chunk``), for ``--rounds`` rounds. Another program on a shared
machine only ever adds time, so the best chunk measures the code itself; the median is printed too.
The last line is the course's loop as a multiple of the bare pass (best chunks; medians in brackets).

The weights do not change the time, so random weights are used (no download, no stand-in banner).

Usage (about two minutes on 2 CPU cores at 224 px)::

    ADL_OFFLINE=1 ADL_DATA_MIRROR=../shared/datasets .venv/bin/python tools/benchmark_style.py
    ... --size 112 --rounds 3 --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from utils import get_device, seed_everything
from utils import style as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import take_turns  # noqa: E402  (tools/timing.py, shared with the CIFAR-10 benchmark)

#: The deepest convolution the losses need (``conv5_1``): the bare pass stops there.
DEEPEST = max(int(index) for index in st.VGG19_LAYERS)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class BarePass:
    """Forward and backward through ``features[:DEEPEST + 1]`` with respect to the image, nothing else."""

    def __init__(self, model: nn.Sequential, image: torch.Tensor, memory_format: torch.memory_format):
        self.net = model[:DEEPEST + 1]
        self.image = image.detach().clone(memory_format=memory_format).requires_grad_(True)

    def seconds_for(self, n: int) -> float:
        device = self.image.device
        _sync(device)
        started = time.perf_counter()
        for _ in range(n):
            self.image.grad = None
            self.net(self.image).sum().backward()
        _sync(device)
        return time.perf_counter() - started


class CourseLoop:
    """:func:`utils.style.transfer_style` with the book's settings; its loop's own time."""

    def __init__(self, model: nn.Sequential, content: torch.Tensor, style: torch.Tensor):
        self.model, self.content, self.style = model, content, style

    def seconds_for(self, n: int) -> float:
        run = st.transfer_style(self.model, self.content, self.style, iterations=n, progress=False)
        return run.seconds_per_iteration * n


def book_features(x: torch.Tensor, model: nn.Sequential, layers: Mapping[str, str]) -> dict[str, torch.Tensor]:
    """The book's extractor (E5.4): only the listed layers are applied, each to the previous one's output."""
    features = {}
    for index, layer in model._modules.items():
        if index in layers:
            x = layer(x)
            features[layers[index]] = x
    return features


def book_gram(feature_map: torch.Tensor) -> torch.Tensor:
    """The book's Gram matrix of a ``(1, C, H, W)`` map: a plain sum over positions (E5.5)."""
    _, channels, height, width = feature_map.shape
    flat = feature_map.view(channels, height * width)
    return torch.mm(flat, flat.t())


class BookLoop:
    """The loop of the book's code bundle (Exercise 13): its extractor, raw Gram matrices, last style term."""

    def __init__(self, model: nn.Sequential, content: torch.Tensor, style: torch.Tensor,
                 alpha: float = 1.0, beta: float = 1e6, lr: float = 0.001):
        self.model, self.alpha, self.beta = model, alpha, beta
        with torch.no_grad():
            self.content_features = book_features(content, model, st.VGG19_LAYERS)
            style_features = book_features(style, model, st.VGG19_LAYERS)
            self.style_grams = {name: book_gram(maps) for name, maps in style_features.items()}
        self.target = content.detach().clone().requires_grad_(True)
        self.optimizer = torch.optim.Adam([self.target], lr=lr)

    def step(self) -> torch.Tensor:
        features = book_features(self.target, self.model, st.VGG19_LAYERS)
        content_loss = torch.mean((features[st.CONTENT_LAYER] - self.content_features[st.CONTENT_LAYER]) ** 2)
        style_losses = 0.0  # the running sum the book builds and never uses (E5.5, E5.6)
        for name, weight in st.STYLE_WEIGHTS.items():
            _, d1, d2, d3 = features[name].shape
            style_loss = weight * torch.mean((book_gram(features[name]) - self.style_grams[name]) ** 2)
            style_losses = style_losses + style_loss / (d1 * d2 * d3)
        total = self.alpha * content_loss + self.beta * style_loss  # the last layer's term only (E5.6)
        self.optimizer.zero_grad()
        total.backward()
        self.optimizer.step()
        return total.detach()

    def seconds_for(self, n: int) -> float:
        device = self.target.device
        _sync(device)
        started = time.perf_counter()
        for _ in range(n):
            self.step()
        _sync(device)
        return time.perf_counter() - started


def measure(pipelines: Mapping[str, tuple[Callable[[int], float], int]], rounds: int,
            report: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, list[float]]:
    """Seconds per iteration of every chunk: ``{name: [s/iteration of round 1, ...]}``.

    ``pipelines`` maps a name to ``(seconds_for, iterations per chunk)``; they take turns, one chunk
    each per round, so a slow spell of a shared machine falls on all of them alike.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    per_iteration = {name: (lambda seconds_for=seconds_for, n=n: seconds_for(n) / n)
                     for name, (seconds_for, n) in pipelines.items()}
    return take_turns(per_iteration, rounds, report)


def summary(chunks: Mapping[str, list[float]]) -> dict[str, tuple[float, float]]:
    """``{name: (best, median)}`` seconds per iteration."""
    return {name: (min(values), statistics.median(values)) for name, values in chunks.items()}


def main(argv: list[str] | None = None) -> dict[str, tuple[float, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=st.BOOK_IMAGE_SIZE, help="shorter side in pixels (book: 224)")
    parser.add_argument("--content", default="dog")
    parser.add_argument("--style", default="matisse")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=3, help="iterations per chunk: bare pass and course")
    parser.add_argument("--book-chunk", type=int, default=1, help="iterations per chunk of the book's loop")
    parser.add_argument("--no-book", action="store_true", help="skip the book's loop (the slowest)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: what utils.get_device picks)")
    args = parser.parse_args(argv)

    device = torch.device(args.device) if args.device else get_device()
    seed_everything(0)
    model = st.load_vgg19_features(device, weights=None)  # random weights: the time does not depend on them
    content = st.load_image_tensor(args.content, args.size, device)
    style = st.load_image_tensor(args.style, args.size, device)
    print(f"device {device}, {torch.get_num_threads()} CPU threads, torch {torch.__version__}; "
          f"content {tuple(content.shape[2:])}, style {tuple(style.shape[2:])}; "
          f"{args.rounds} rounds of {args.chunk} iterations (book's loop: {args.book_chunk})")

    pipelines: dict[str, tuple[Callable[[int], float], int]] = {
        "bare pass, NCHW": (BarePass(model, content, torch.contiguous_format).seconds_for, args.chunk),
        "bare pass, channels-last": (BarePass(model, content, torch.channels_last).seconds_for, args.chunk),
        "course (transfer_style)": (CourseLoop(model, content, style).seconds_for, args.chunk),
    }
    if not args.no_book:
        pipelines["book's loop (code bundle)"] = (BookLoop(model, content, style).seconds_for, args.book_chunk)
    for seconds_for, _ in pipelines.values():  # warm-up: first calls allocate and pick kernels
        seconds_for(1)

    def report(round_: int, latest: dict[str, float]) -> None:
        print(f"round {round_}: " + ", ".join(f"{name} {value:.3f}" for name, value in latest.items()), flush=True)

    results = summary(measure(pipelines, args.rounds, report))
    print(f"\n{'seconds per iteration':30s} {'best':>8s} {'median':>8s}")
    for name, (best, median) in results.items():
        print(f"{name:30s} {best:8.3f} {median:8.3f}")
    bare = min((results["bare pass, NCHW"], results["bare pass, channels-last"]), key=lambda r: r[0])
    course = results["course (transfer_style)"]
    print(f"\ncourse / bare pass: {course[0] / bare[0]:.2f} (medians {course[1] / bare[1]:.2f})")
    if not args.no_book:
        book = results["book's loop (code bundle)"]
        print(f"book's loop / course: {book[0] / course[0]:.1f} (medians {book[1] / course[1]:.1f}); "
              "it runs a different network (E5.4)")
    return results


if __name__ == "__main__":
    main()
