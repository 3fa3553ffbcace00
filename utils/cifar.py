"""A fast CIFAR-10 pipeline for Chapter 4: decode once, then augment and normalise whole batches.

The book feeds CIFAR-10 through torchvision the classic way: for every image of every epoch,
``Dataset.__getitem__`` builds a PIL image, the transforms flip it or turn it grey, ``ToTensor``
converts it to floats and ``Normalize`` shifts and scales it, one image at a time; then the
``DataLoader`` stacks 100 of them into a batch. That per-image Python work costs about as much
as training the book's small network on a CPU.

This module does the same computation on whole batches of tensors:

1. :func:`as_uint8_tensors` turns a dataset's ``.data`` (N, 32, 32, 3) uint8 array into one
   (N, 3, 32, 32) uint8 tensor, once (150 MB for the 50,000 training images);
2. :class:`CifarBatches` picks a batch of rows from that tensor, applies the training-only
   augmentations (:class:`BatchAugmentation`: :func:`random_horizontal_flip`,
   :func:`random_grayscale`, pixel-for-pixel the same as torchvision's PIL transforms) and
   :func:`normalize` (``ToTensor`` + ``Normalize``, bit-for-bit the same result);
3. :func:`train_val_split` makes the book's 80/20 split of the training indices reproducibly,
   so that validation gets its *own*, un-augmented view of its images.

On CUDA the uint8 batch (4x smaller than floats) is copied from pinned memory with
``non_blocking=True`` and augmented and normalised on the GPU. ``CifarBatches`` is an iterable
of ``(images, labels)`` batches, so it works with :func:`utils.fit`, :func:`utils.evaluate` and
:func:`utils.predict` exactly like a ``DataLoader``.

The module also has the two evaluation helpers Chapter 4 uses: :func:`confusion_matrix` and
:func:`plot_confusion_matrix`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch

#: The book's ``transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))``: maps [0, 1] to [-1, 1].
BOOK_MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)
BOOK_STD: tuple[float, float, float] = (0.5, 0.5, 0.5)


# --------------------------------------------------------------------------- decoding once

def as_uint8_tensors(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """A CIFAR-style dataset as ``(images, labels)``: (N, 3, H, W) uint8 and (N,) int64 tensors.

    ``dataset`` needs ``.data``, a uint8 array (N, H, W, 3) as in ``torchvision.datasets.CIFAR10``
    (and ``utils.load_cifar10``), and ``.targets``, N integer labels. Its transforms are ignored:
    the images are taken as stored, channels moved first, and copied into one contiguous tensor.
    """
    if not hasattr(dataset, "data") or not hasattr(dataset, "targets"):
        raise TypeError(f"expected a dataset with .data and .targets (like torchvision's CIFAR10), "
                        f"got {type(dataset).__name__}")
    data = np.asarray(dataset.data)
    if data.dtype != np.uint8 or data.ndim != 4 or data.shape[-1] != 3:
        raise ValueError(f"expected .data as uint8 images of shape (N, H, W, 3), got {data.dtype} {data.shape}")
    targets = np.asarray(dataset.targets, dtype=np.int64)
    if targets.shape != (len(data),):
        raise ValueError(f".data holds {len(data)} images but .targets has shape {targets.shape}")
    images = torch.from_numpy(data).permute(0, 3, 1, 2).contiguous()
    return images, torch.from_numpy(targets.copy())


def train_val_split(n: int, val_fraction: float = 0.2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffle the indices ``0..n-1`` reproducibly and cut off ``floor(val_fraction * n)`` for validation.

    Returns ``(train_indices, val_indices)`` as int64 tensors, disjoint and together covering every
    index: for CIFAR-10's 50,000 training images and 0.2, 40,000 and 10,000 indices. This is the
    book's ``np.random.shuffle`` split, made repeatable with a seed.
    """
    if n <= 1:
        raise ValueError(f"need at least 2 items to split, got n={n}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    permutation = torch.from_numpy(np.random.default_rng(seed).permutation(n))
    n_val = math.floor(val_fraction * n)
    if n_val == 0:
        raise ValueError(f"val_fraction={val_fraction} of n={n} leaves no validation items")
    return permutation[n_val:], permutation[:n_val]


# --------------------------------------------------------------------------- batch transforms

def normalize(images: torch.Tensor, mean: Sequence[float] = BOOK_MEAN,
              std: Sequence[float] = BOOK_STD) -> torch.Tensor:
    """``ToTensor`` followed by ``Normalize(mean, std)``, for a whole (N, C, H, W) uint8 batch.

    Divides by 255 to get [0, 1], subtracts ``mean`` and divides by ``std`` per channel, in the
    same order and float32 arithmetic as torchvision, so the result is bit-for-bit the same.
    """
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(f"expected a uint8 batch (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    scale, mean_t, std_t = _normalisation_constants(tuple(map(float, mean)), tuple(map(float, std)), images.device)
    if mean_t.shape[1] != images.shape[1] or std_t.shape[1] != images.shape[1]:
        raise ValueError(f"mean/std give {mean_t.shape[1]}/{std_t.shape[1]} channels, images have {images.shape[1]}")
    return images.float().div_(scale).sub_(mean_t).div_(std_t)  # in place on the new float copy


@functools.lru_cache(maxsize=16)
def _normalisation_constants(mean: tuple[float, ...], std: tuple[float, ...],
                             device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """255, mean and std as float32 tensors on ``device``, made once per device (no copy per batch).

    255 is a tensor, not a Python number: on CUDA, PyTorch divides by a CPU scalar as a multiplication
    by its reciprocal, which can differ in the last bit; tensor by tensor it divides exactly, as the CPU
    does, so batches normalised on the GPU equal those normalised on the CPU.
    """
    def column(values: tuple[float, ...]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1).to(device)

    return torch.tensor(255.0).to(device), column(mean), column(std)


def to_grayscale(images: torch.Tensor) -> torch.Tensor:
    """RGB uint8 images (N, 3, H, W) as grey, repeated over the 3 channels (N, 3, H, W).

    Uses Pillow's integer ITU-R 601-2 luma formula (``L = 0.299 R + 0.587 G + 0.114 B``, rounded),
    the one ``RandomGrayscale`` applies to the book's PIL images, so the pixels match exactly.
    """
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected RGB uint8 images (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
    rgb = images.to(torch.int32)
    grey = (rgb[:, 0] * 19595 + rgb[:, 1] * 38470 + rgb[:, 2] * 7471 + 0x8000) >> 16
    return grey.to(torch.uint8).unsqueeze(1).expand(-1, 3, -1, -1)


def _chosen(n: int, p: float, generator: torch.Generator | None) -> torch.Tensor:
    """Indices of the images picked by ``n`` independent draws with probability ``p``.

    The draws are made on the CPU with ``generator``, so a seed gives the same picks on every device.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"a probability must lie in [0, 1], got {p}")
    return torch.nonzero(torch.rand(n, generator=generator) < p).squeeze(1)


def random_horizontal_flip(images: torch.Tensor, p: float = 0.5,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image of an (N, C, H, W) batch left-right with probability ``p``, independently.

    Returns a new tensor; only the picked images are flipped (and copied), the rest pass unchanged.
    """
    chosen = _chosen(len(images), p, generator).to(images.device)
    out = images.clone()
    if len(chosen):
        out[chosen] = images[chosen].flip(-1)
    return out


def random_grayscale(images: torch.Tensor, p: float = 0.1,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Turn each RGB image of a uint8 batch grey (3 equal channels) with probability ``p``, independently."""
    chosen = _chosen(len(images), p, generator).to(images.device)
    out = images.clone()
    if len(chosen):
        out[chosen] = to_grayscale(images[chosen])
    return out


def random_crop(images: torch.Tensor, padding: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """Pad each image of an (N, C, H, W) batch with ``padding`` zero pixels on every side, then cut out a
    random H x W window, independently per image: torchvision's ``RandomCrop((H, W), padding=padding)``.

    Each image moves by up to ``padding`` pixels in each direction, with black (0) filling the edge it
    uncovers. The offsets are drawn on the CPU with ``generator``; ``padding=0`` returns a copy.
    """
    if images.dim() != 4:
        raise ValueError(f"expected a batch (N, C, H, W), got shape {tuple(images.shape)}")
    if padding < 0:
        raise ValueError(f"padding must be at least 0, got {padding}")
    if padding == 0:
        return images.clone()
    n, c, h, w = images.shape
    padded = torch.nn.functional.pad(images, (padding, padding, padding, padding))
    top = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(images.device)
    left = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(images.device)
    rows = (top[:, None] + torch.arange(h, device=images.device))[:, None, :, None]     # (N, 1, H, 1)
    cols = (left[:, None] + torch.arange(w, device=images.device))[:, None, None, :]    # (N, 1, 1, W)
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    channel = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


@dataclass(frozen=True)
class BatchAugmentation:
    """Training augmentations for a uint8 batch: crop (``crop_padding``), flip (``flip_p``), grey (``grayscale_p``).

    With the default ``crop_padding=0`` this is the book's
    ``Compose([RandomHorizontalFlip(flip_p), RandomGrayscale(grayscale_p)])``; a positive
    ``crop_padding`` first applies :func:`random_crop` (``RandomCrop(32, padding=crop_padding)``).
    """

    flip_p: float = 0.5
    grayscale_p: float = 0.1
    crop_padding: int = 0

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.crop_padding:
            images = random_crop(images, self.crop_padding, generator)
        images = random_horizontal_flip(images, self.flip_p, generator)
        return random_grayscale(images, self.grayscale_p, generator)


# --------------------------------------------------------------------------- mixed precision

def native_bfloat16(device: torch.device | str) -> bool:
    """Whether ``device`` computes bfloat16 natively: a CPU with AVX-512 BF16 or AMX instructions (elsewhere
    PyTorch emulates it, slower than float32), or a CUDA GPU that supports it. ``False`` on Apple MPS."""
    device = torch.device(device)
    if device.type == "cpu":
        return any(getattr(torch.cpu, name, lambda: False)() for name in
                   ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def mixed_precision_dtype(device: torch.device | str) -> torch.dtype | None:
    """The reduced precision worth using for ``device``'s forward passes, or ``None`` where none pays off.

    ``torch.bfloat16`` on a CPU that computes it natively (:func:`native_bfloat16`); ``None`` on other
    CPUs, on CUDA GPUs and on Apple MPS. bfloat16 keeps float32's range, so unlike float16 it needs no
    gradient scaling.

    On a GPU the networks of Chapter 4 are too small for the arithmetic to matter: the time goes to
    launching kernels, and autocast adds casts. On an NVIDIA H200, a training epoch of Activity 7's
    network took 1.04 s in bfloat16 against 0.86 s in float32 (best chunks, both ``channels_last``;
    ``tools/benchmark_cifar_pipeline.py --device cuda``, 2026-11-27), so CUDA trains in float32.
    """
    device = torch.device(device)
    return torch.bfloat16 if device.type == "cpu" and native_bfloat16(device) else None


class Autocast(torch.nn.Module):
    """Wraps a model so that its forward pass runs under ``torch.autocast`` and returns float32.

    Convolutions and matrix products then compute in ``dtype`` (e.g. bfloat16: half the bytes, and
    on CPUs with AVX-512 BF16 about twice the arithmetic per instruction), while autocast keeps
    reductions such as the softmax in float32. Backward follows the same precisions. The result is
    cast back to float32, so losses, metrics, :func:`utils.fit`, ``evaluate`` and ``predict`` work
    unchanged. ``dtype=None`` turns autocast off (a plain pass-through). The wrapped network is
    ``.model``; save ``wrapper.model.state_dict()`` to keep the usual parameter names.
    """

    def __init__(self, model: torch.nn.Module, device: torch.device | str, dtype: torch.dtype | None):
        super().__init__()
        self.model, self.device_type, self.dtype = model, torch.device(device).type, dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dtype is None:
            return self.model(x)
        with torch.autocast(self.device_type, dtype=self.dtype):
            return self.model(x).float()

    def extra_repr(self) -> str:
        return f"device_type={self.device_type!r}, dtype={self.dtype}"


# --------------------------------------------------------------------------- batches

class CifarBatches:
    """Batches of ``(normalised float images, labels)`` cut from uint8 tensors: a fast ``DataLoader``.

    Each pass (epoch) visits every image once, in a new random order when ``shuffle=True``
    (reproducible from ``seed``). ``augment`` (e.g. :class:`BatchAugmentation`) runs on the uint8
    batch before :func:`normalize`; leave it ``None`` for validation and test data. With a CUDA
    ``device`` each uint8 batch is pinned, copied with ``non_blocking=True``, and augmented and
    normalised on the GPU; with any other device the batches are made on the CPU and moved there.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 100, *,
                 shuffle: bool = False, augment: BatchAugmentation | None = None,
                 mean: Sequence[float] = BOOK_MEAN, std: Sequence[float] = BOOK_STD, seed: int = 0,
                 device: torch.device | str | None = None, drop_last: bool = False):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be a uint8 tensor (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.images, self.labels = images, labels.to(torch.int64)
        self.batch_size, self.shuffle, self.augment, self.drop_last = batch_size, shuffle, augment, drop_last
        self.mean, self.std = tuple(mean), tuple(std)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        """Number of batches per pass."""
        n = len(self.images)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    @property
    def num_images(self) -> int:
        return len(self.images)

    def _to_device(self, batch: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":
            return batch.pin_memory().to(self.device, non_blocking=True)
        return batch.to(self.device)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.images)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start:start + self.batch_size]
            images = self._to_device(torch.index_select(self.images, 0, index))
            labels = self._to_device(self.labels[index])
            if self.augment is not None:
                images = self.augment(images, self.generator)
            yield normalize(images, self.mean, self.std), labels

    def __repr__(self) -> str:
        return (f"CifarBatches({self.num_images} images, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"augment={self.augment}, device={self.device.type})")


# --------------------------------------------------------------------------- evaluation

def confusion_matrix(predictions: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts (num_classes, num_classes): row = true class, column = predicted class.

    ``predictions`` are class indices, or scores (N, num_classes) whose argmax is taken.
    """
    predictions, targets = predictions.cpu(), targets.cpu().to(torch.int64)
    if predictions.dim() == 2:
        predictions = predictions.argmax(dim=1)
    if predictions.shape != targets.shape:
        raise ValueError(f"{tuple(predictions.shape)} predictions for {tuple(targets.shape)} targets")
    if len(targets) and (targets.min() < 0 or targets.max() >= num_classes or predictions.max() >= num_classes):
        raise ValueError(f"class indices must lie in 0..{num_classes - 1}")
    flat = targets * num_classes + predictions.to(torch.int64)
    return torch.bincount(flat, minlength=num_classes ** 2).view(num_classes, num_classes)


def per_class_accuracy(matrix: torch.Tensor) -> torch.Tensor:
    """Share of each true class predicted correctly (the diagonal over the row sums) as floats."""
    return matrix.diag().float() / matrix.sum(dim=1).clamp(min=1).float()


def plot_confusion_matrix(matrix: torch.Tensor, classes: Sequence[str], title: str = "Confusion matrix",
                          normalise: bool = True) -> plt.Figure:
    """Heat map of a confusion matrix, rows (true class) as shares when ``normalise``, with counts written in."""
    counts = matrix.cpu().numpy()
    shown = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) if normalise else counts
    fig, ax = plt.subplots(figsize=(0.7 * len(classes) + 2.5, 0.6 * len(classes) + 1.5))
    im = ax.imshow(shown, cmap="Blues", vmin=0)
    fig.colorbar(im, ax=ax, label="share of the true class" if normalise else "images")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    threshold = shown.max() / 2
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if shown[i, j] > threshold else "black")
    fig.tight_layout()
    return fig
