"""Seconds per epoch of Activity 7: the fast tensor pipeline (utils.cifar) against the book's pipeline.

Both pipelines feed the same 40,000 training images (the 80 % split of CIFAR-10's training set),
in batches of 100, to the same Activity 7 network, in one process:

* **book**: ``load_cifar10(transform=Compose([ToTensor(), Normalize(...)]))`` (plus the flip and
  grey augmentations with ``--augment``), a ``DataLoader`` with ``SubsetRandomSampler``, batch 100:
  every image becomes a PIL image and goes through the transforms on its own, every epoch;
* **fast**: the images decoded once into a uint8 tensor (:func:`utils.cifar.as_uint8_tensors`) and
  :class:`utils.cifar.CifarBatches` normalising (and augmenting) whole batches.

For each it times the data alone (iterating the batches) and training. The book trains with the
loop of its code bundle (Lesson 4, Activity 1): forward, loss, backward, Adam step, then
``loss.item()`` and the batch's accuracy (``exp``, ``topk`` and scikit-learn's ``accuracy_score``)
for the epoch's figures. The fast pipelines train with
:func:`utils.training.run_epoch`, the training pass of :func:`utils.fit` that the solutions call:
the same step and the same figures (loss and accuracy), kept on the device and read once at the end
of the pass, with a NaN check of each loss. Further pipelines train on the fast batches with the
model in ``channels_last`` memory format (PyTorch's CPU convolutions are faster that way; the shapes
stay (N, C, H, W)) and, where the hardware computes it natively (a CPU with AVX-512 BF16 or AMX, a
CUDA GPU with bfloat16), with the forward pass in bfloat16 (:class:`utils.cifar.Autocast`). The
Chapter 4 solutions train with both on such a CPU, and in plain float32 on CUDA, which is faster there
for this small network (:func:`utils.cifar.mixed_precision_dtype`). One pipeline goes beyond the
solutions: theirs, with each ReLU after its max pooling, in place (the same function: see
:class:`Activity7CNN`), and Adam's fused implementation; it is listed just below the solutions' own.

**How it times.** Each pipeline keeps its own model, optimiser and batch stream (a new epoch
starts when one ends). The pipelines take turns: each round times ``--batches`` batches of every
pipeline in turn, for ``--repeats`` rounds. A chunk's seconds are scaled to a 400-batch epoch.
Another program on the machine can only ever add time, and on a shared (virtual) machine it
comes and goes within seconds, so many short interleaved chunks and the best chunk of each
pipeline measure the pipelines themselves; the median chunk is printed too, as the figure a
learner on a busy machine would see. The last lines print each training pipeline's speed as a
multiple of the book's, from the best chunks and from the medians.

Usage (CI's data mirror; about a minute on 2 CPU cores)::

    ADL_OFFLINE=1 ADL_DATA_MIRROR=../shared/datasets .venv/bin/python tools/benchmark_cifar_pipeline.py
    ... --augment --workers 2 --device cuda --batches 50 --repeats 8
"""

from __future__ import annotations

import argparse
import functools
import itertools
import statistics
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision.transforms as T
from sklearn.metrics import accuracy_score
from torch import nn, optim
from torch.utils.data import DataLoader, SubsetRandomSampler

from utils import accuracy, get_device, load_cifar10, seed_everything
from utils.cifar import (
    BOOK_MEAN,
    BOOK_STD,
    Autocast,
    BatchAugmentation,
    CifarBatches,
    as_uint8_tensors,
    mixed_precision_dtype,
    native_bfloat16,
    train_val_split,
)
from utils.training import run_epoch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import take_turns  # noqa: E402  (tools/timing.py, shared with the style benchmark)


class Activity7CNN(nn.Module):
    """The book's Activity 7 network (three 3x3 conv + ReLU + 2x2 max-pool blocks, two linear layers).

    ``relu_after_pool=True`` computes each block as ``relu(pool(conv(x)))``, in place, instead of the
    book's ``pool(relu(conv(x)))``. It is the same function of the same weights (ReLU never changes
    which value of a window is the largest, so the two orders give equal outputs and gradients),
    but the ReLU, forward and backward, runs on a quarter of the values and makes no new tensor.
    """

    def __init__(self, relu_after_pool: bool = False):
        super().__init__()
        self.relu_after_pool = relu_after_pool
        self.conv1 = nn.Conv2d(3, 10, 3, 1, 1)
        self.conv2 = nn.Conv2d(10, 20, 3, 1, 1)
        self.conv3 = nn.Conv2d(20, 40, 3, 1, 1)
        self.pool, self.dropout = nn.MaxPool2d(2, 2), nn.Dropout(0.2)
        self.linear1, self.linear2 = nn.Linear(40 * 4 * 4, 100), nn.Linear(100, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.relu_after_pool:
            for conv in (self.conv1, self.conv2, self.conv3):
                x = F.relu(self.pool(conv(x)), inplace=True)
        else:
            x = self.pool(F.relu(self.conv1(x)))
            x = self.pool(F.relu(self.conv2(x)))
            x = self.pool(F.relu(self.conv3(x)))
        x = self.dropout(x.flatten(1))
        x = self.dropout(F.relu(self.linear1(x)))
        return F.log_softmax(self.linear2(x), dim=1)


class Pipeline:
    """An endless stream of batches, optionally training a fresh Activity 7 network on them, timed
    ``n`` batches at a time by :meth:`seconds_for`.

    ``loop=None`` only draws the batches and puts them on ``device``. ``loop="book"`` trains with the
    book's loop body (:meth:`_book_step`), ``loop="fit"`` with :func:`utils.training.run_epoch`, as
    :func:`utils.fit` does. The model is stored ``channels_last`` if asked and its forward pass
    autocast to ``dtype`` (``None``: float32). ``tuned=True`` adds two changes beyond the solutions:
    the network's ReLU after its pooling (see :class:`Activity7CNN`) and Adam's fused implementation,
    which updates all parameters in one fused operation instead of about ten small operations per tensor.
    Two warm-up batches run on construction.
    """

    def __init__(self, batches: Iterable, device: torch.device, loop: str | None = "fit",
                 channels_last: bool = False, dtype: torch.dtype | None = None, tuned: bool = False):
        if loop not in (None, "book", "fit"):
            raise ValueError(f"loop must be None, 'book' or 'fit', got {loop!r}")
        self.device, self.loop = device, loop
        self.stream = itertools.chain.from_iterable(itertools.repeat(batches))  # epoch after epoch
        if loop is not None:
            seed_everything(0)
            model = Activity7CNN(relu_after_pool=tuned).to(device)
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
            self.model = Autocast(model, device, dtype).train()
            fused = {"fused": True} if tuned and device.type in ("cpu", "cuda") else {}
            self.optimizer, self.loss_fn = optim.Adam(self.model.parameters(), lr=0.001, **fused), nn.NLLLoss()
        self.seconds_for(2)  # warm-up: first batches, memory allocation, kernel selection

    def _book_step(self, data: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
        """The body of the training loop of the book's code bundle (Lesson 4, Activity 1): one step,
        then the batch's loss as a Python float and its accuracy from scikit-learn's ``accuracy_score``."""
        data, target = data.to(self.device), target.to(self.device)
        pred = self.model(data)
        loss = self.loss_fn(pred, target)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        p = torch.exp(pred)
        _, top_class = p.topk(1, dim=1)
        return loss.item(), accuracy_score(target.cpu(), top_class.cpu())

    def seconds_for(self, n: int) -> float:
        """Seconds to draw (and train on) the next ``n`` batches, waiting for the device to finish."""
        batches = itertools.islice(self.stream, n)
        start = time.perf_counter()
        if self.loop == "fit":
            run_epoch(self.model, batches, self.loss_fn, optimizer=self.optimizer, metric=accuracy, device=self.device)
        elif self.loop == "book":
            train_loss, acc = 0.0, 0.0
            for x, y in batches:
                loss, batch_acc = self._book_step(x, y)
                train_loss, acc = train_loss + loss, acc + batch_acc
        else:
            for x, y in batches:
                x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
        return time.perf_counter() - start


def measure(pipelines: dict[str, Pipeline], batches: int, rounds: int, report=None) -> dict[str, list[float]]:
    """Seconds for ``batches`` batches of each pipeline, ``rounds`` times, the pipelines taking turns."""
    return take_turns({name: functools.partial(pipeline.seconds_for, batches) for name, pipeline in pipelines.items()},
                      rounds, report)


def speedups(chunks: dict[str, list[float]], reference: str) -> dict[str, tuple[float, float]]:
    """Each pipeline's speed as a multiple of ``reference``'s: (from the best chunks, from the medians)."""
    best = {name: min(times) for name, times in chunks.items()}
    median = {name: statistics.median(times) for name, times in chunks.items()}
    return {name: (best[reference] / best[name], median[reference] / median[name]) for name in chunks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=50, help="batches of 100 per timed chunk (400 make an epoch)")
    parser.add_argument("--repeats", type=int, default=8, help="rounds of chunks, the pipelines taking turns")
    parser.add_argument("--augment", action="store_true", help="add the Activity 8 flip/grey augmentations")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers of the book pipeline")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: utils.get_device())")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: PyTorch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    args.batches, args.repeats = max(1, args.batches), max(1, args.repeats)

    seed_everything(0)
    steps = [T.RandomHorizontalFlip(0.5), T.RandomGrayscale(0.1)] if args.augment else []
    book_set = load_cifar10(train=True, transform=T.Compose([*steps, T.ToTensor(), T.Normalize(BOOK_MEAN, BOOK_STD)]))
    train_idx, _ = train_val_split(len(book_set), 0.2, seed=0)
    book = DataLoader(book_set, batch_size=100, sampler=SubsetRandomSampler(train_idx.tolist()),
                      num_workers=args.workers, pin_memory=device.type == "cuda",
                      persistent_workers=args.workers > 0)

    start = time.perf_counter()
    images, labels = as_uint8_tensors(book_set)
    decode_s = time.perf_counter() - start
    fast = CifarBatches(images[train_idx], labels[train_idx], batch_size=100, shuffle=True,
                        augment=BatchAugmentation() if args.augment else None, device=device)

    # What the solutions train with here: channels_last on the CPU only, and mixed_precision_dtype()'s
    # precision (bfloat16 on CPUs that compute it natively; float32 on CUDA, where it is faster for
    # this small network). bfloat16 is measured wherever the hardware has it, to show the difference.
    low = mixed_precision_dtype(device)
    measured_low = torch.bfloat16 if native_bfloat16(device) else None
    low_name = str(measured_low).replace("torch.", "") if measured_low is not None else None
    solutions_channels_last = device.type == "cpu"
    solutions = ("fast + channels_last" + (f" + {low_name}" if low is not None else "")
                 if solutions_channels_last else "fast")
    print(f"device: {device} | torch threads: {torch.get_num_threads()} | book DataLoader workers: {args.workers} | "
          f"augmentation: {'flip 0.5 + grey 0.1' if args.augment else 'none'}")
    print(f"fast pipeline one-off cost: decoding 50,000 images into a uint8 tensor took {decode_s:.2f} s")
    print(f"mixed precision: {low_name or 'not supported natively here, so not measured'} | "
          f"the Chapter 4 solutions train as '{solutions}' here | "
          f"{args.repeats} rounds of {args.batches} batches of 100 per pipeline, taking turns; "
          "seconds scaled to a 400-batch epoch")
    per_epoch = 400 / args.batches

    def report(round_: int, latest: dict[str, float]) -> None:
        print(f"  round {round_}: " + " | ".join(f"{name} {s * per_epoch:.2f}" for name, s in latest.items()),
              flush=True)

    tuned = "  + fused Adam, ReLU after pooling"  # on top of the solutions' pipeline, listed just above it
    candidates = {"fast": Pipeline(fast, device), "fast + channels_last": Pipeline(fast, device, channels_last=True)}
    if measured_low is not None:
        candidates[f"fast + channels_last + {low_name}"] = Pipeline(fast, device, channels_last=True,
                                                                    dtype=measured_low)
    training = {"book": Pipeline(book, device, loop="book")}
    for name, pipeline in candidates.items():
        training[name] = pipeline
        if name == solutions:
            training[tuned] = Pipeline(fast, device, channels_last=solutions_channels_last, dtype=low, tuned=True)
    for what, pipelines in [
        ("data only", {"book": Pipeline(book, device, loop=None), "fast": Pipeline(fast, device, loop=None)}),
        ("training", training),
    ]:
        print(f"{what}, s/epoch per round:")
        chunks = measure(pipelines, args.batches, args.repeats, report)
        ratios = speedups(chunks, "book")
        print(f"{what}: s/epoch (best chunk, median chunk) and speed against the book's pipeline (best, median):")
        for name, times in chunks.items():
            best, median = ratios[name]
            print(f"  {name:34s} {min(times) * per_epoch:6.2f} s {statistics.median(times) * per_epoch:6.2f} s"
                  f"   {best:5.2f}x {median:5.2f}x")
    for label, name in [("as the Chapter 4 solutions train", solutions),
                        (f"{solutions} + fused Adam, ReLU after pooling", tuned)]:
        best, median = ratios[name]
        print(f"training epoch, {label}: {best:.2f}x as fast as the book's pipeline "
              f"(best chunks; {median:.2f}x from the medians)")


if __name__ == "__main__":
    main()
