"""Seconds per epoch of Activity 7: the fast tensor pipeline (utils.cifar) against the book's pipeline.

Both pipelines feed the same 40,000 training images (the 80 % split of CIFAR-10's training set),
in batches of 100, to the same Activity 7 network, in one process, one after the other:

* **book**: ``load_cifar10(transform=Compose([ToTensor(), Normalize(...)]))`` (plus the flip and
  grey augmentations with ``--augment``), a ``DataLoader`` with ``SubsetRandomSampler``, batch 100:
  every image becomes a PIL image and goes through the transforms on its own, every epoch;
* **fast**: the images decoded once into a uint8 tensor (:func:`utils.cifar.as_uint8_tensors`) and
  :class:`utils.cifar.CifarBatches` normalising (and augmenting) whole batches.

For each it times the data alone (iterating the batches) and a training pass (forward, backward,
Adam step), and scales the time of ``--batches`` batches to a 400-batch epoch. Further runs train
on the fast batches with the model in ``channels_last`` memory format (PyTorch's CPU convolutions
are faster that way; the shapes stay (N, C, H, W)) and, where the hardware computes it natively
(:func:`utils.cifar.mixed_precision_dtype`: a CPU with AVX-512 BF16 or AMX, a CUDA GPU with
bfloat16), with the forward pass in bfloat16 (:class:`utils.cifar.Autocast`), as the Chapter 4
solutions do. All measurements run ``--repeats`` times in interleaved rounds (book, fast, book,
fast, ...) and the best of each counts, so a machine shared with other jobs slows all of them alike.
The last lines print each training pipeline's speed as a multiple of the book's.

Usage (CI's data mirror, about 2 minutes on 2 CPU cores)::

    ADL_OFFLINE=1 ADL_DATA_MIRROR=../shared/datasets .venv/bin/python tools/benchmark_cifar_pipeline.py
    ... --batches 100 --augment --workers 2 --device cuda --repeats 3
"""

from __future__ import annotations

import argparse
import itertools
import time
from functools import partial

import torch
import torch.nn.functional as F
import torchvision.transforms as T
from torch import nn, optim
from torch.utils.data import DataLoader, SubsetRandomSampler

from utils import get_device, load_cifar10, seed_everything
from utils.cifar import (
    BOOK_MEAN,
    BOOK_STD,
    Autocast,
    BatchAugmentation,
    CifarBatches,
    as_uint8_tensors,
    mixed_precision_dtype,
    train_val_split,
)


class Activity7CNN(nn.Module):
    """The book's Activity 7 network (three 3x3 conv + ReLU + 2x2 max-pool blocks, two linear layers)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, 3, 1, 1)
        self.conv2 = nn.Conv2d(10, 20, 3, 1, 1)
        self.conv3 = nn.Conv2d(20, 40, 3, 1, 1)
        self.pool, self.dropout = nn.MaxPool2d(2, 2), nn.Dropout(0.2)
        self.linear1, self.linear2 = nn.Linear(40 * 4 * 4, 100), nn.Linear(100, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = self.pool(F.relu(self.conv3(x)))
        x = self.dropout(x.flatten(1))
        x = self.dropout(F.relu(self.linear1(x)))
        return F.log_softmax(self.linear2(x), dim=1)


def time_data(batches, n: int, device: torch.device) -> float:
    """Seconds to draw ``n`` batches and put them on ``device`` (after a warm-up batch)."""
    iterator = iter(batches)
    next(iterator)
    start = time.perf_counter()
    for x, y in itertools.islice(iterator, n):
        x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def time_training(batches, n: int, device: torch.device, channels_last: bool = False,
                  dtype: torch.dtype | None = None) -> float:
    """Seconds to train a fresh Activity 7 network on ``n`` batches (after two warm-up batches), optionally
    in ``channels_last`` memory format and with its forward pass autocast to ``dtype``."""
    seed_everything(0)
    model = Activity7CNN().to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model = Autocast(model, device, dtype)
    optimizer, loss_fn = optim.Adam(model.parameters(), lr=0.001), nn.NLLLoss()
    model.train()
    iterator = iter(batches)

    def step(x, y):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    for x, y in itertools.islice(iterator, 2):
        step(x, y)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for x, y in itertools.islice(iterator, n):
        loss = step(x, y)
    loss.item()  # wait for the last step
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=397,
                        help="batches timed per measurement, at most 397 (an epoch has 400; up to 3 warm up)")
    parser.add_argument("--augment", action="store_true", help="add the Activity 8 flip/grey augmentations")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers of the book pipeline")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: utils.get_device())")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: PyTorch's choice)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds; the best time of each run counts")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    args.batches = max(1, min(args.batches, 397))

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

    per_epoch = 400 / args.batches
    print(f"device: {device} | torch threads: {torch.get_num_threads()} | book DataLoader workers: {args.workers} | "
          f"augmentation: {'flip 0.5 + grey 0.1' if args.augment else 'none'} | "
          f"{args.batches} batches of 100 timed, scaled to a 400-batch epoch")
    print(f"fast pipeline one-off cost: decoding 50,000 images into a uint8 tensor took {decode_s:.2f} s")
    low = mixed_precision_dtype(device)
    low_name = str(low).replace("torch.", "") if low is not None else None
    print(f"mixed precision: {low_name or 'not supported natively here, so not measured'} | "
          f"best of {args.repeats} interleaved rounds")
    runs = [("data only", "book", time_data, book), ("data only", "fast", time_data, fast),
            ("training", "book", time_training, book), ("training", "fast", time_training, fast),
            ("training", "fast + channels_last", partial(time_training, channels_last=True), fast)]
    if low is not None:
        runs.append(("training", f"fast + channels_last + {low_name}",
                     partial(time_training, channels_last=True, dtype=low), fast))
    results: dict[tuple[str, str], float] = {}
    for round_ in range(1, max(1, args.repeats) + 1):
        for what, name, timer, batches in runs:
            seconds = timer(batches, args.batches, device) * per_epoch
            results[what, name] = min(seconds, results.get((what, name), float("inf")))
            print(f"  round {round_}: {what:9s} {name:34s} {seconds:7.2f} s/epoch", flush=True)
    print("best of the rounds:")
    for (what, name), seconds in results.items():
        print(f"  {what:9s} {name:34s} {seconds:7.2f} s/epoch")
    book_s = results["data only", "book"]
    print(f"data only: the fast pipeline is {book_s / results['data only', 'fast']:.1f}x as fast as the book's")
    for _, name, _, _ in runs[3:]:
        ratio = results["training", "book"] / results["training", name]
        print(f"training epoch, {name}: {ratio:.2f}x as fast as the book's pipeline")


if __name__ == "__main__":
    main()
