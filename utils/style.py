"""Neural style transfer with VGG-19 (Gatys et al. 2016), as in Chapter 5 of the book, done correctly.

The pieces, in the order the chapter's notebooks use them:

* :func:`load_image_tensor`: an image (course name, path or URL) as a normalised ``(1, 3, H, W)``
  tensor: resize, ``ToTensor``, ImageNet normalisation (:func:`image_transform`).
* :func:`tensor_to_pil`, :func:`to_display`, :func:`save_image`: the inverse transform, **clamped** to
  the valid pixel range (unclamped values wrap around when converted to 8-bit pixels).
* :func:`load_vgg19_features`: VGG-19's convolutional part, frozen, in ``eval()`` mode, on a device,
  with non-in-place ReLUs (so a stored activation is never overwritten by a later layer).
* :data:`VGG19_LAYERS` and :func:`vgg19_layer_names`: layer index -> name (``conv4_2`` ...).
* :func:`extract_features`: runs the image through **every** layer up to the deepest one needed
  (the book applies only the listed layers and skips the ReLUs and poolings between them).
* :func:`gram_matrix`, :func:`content_loss`, :func:`style_loss`: the losses; Gram matrices are
  normalised by the feature-map size, and the style loss sums **all** weighted layers.
* :func:`transfer_style`: the optimisation loop (Adam as the book; L-BFGS as an option beyond
  the book), with a progress bar, loss history, elapsed times and progress snapshots; an iteration
  costs about one bare forward and backward pass (``tools/benchmark_style.py`` measures the ratio),
  with the image in :func:`preferred_memory_format` for the network.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision import transforms

from .data import PROJECT_ROOT, load_image
from .plots import tensor_to_image
from .progress import progress_bar as tqdm
from .standins import vgg19_features

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
BOOK_IMAGE_SIZE = 224

#: The layers the book uses, by their index in ``torchvision.models.vgg19().features``.
VGG19_LAYERS: dict[str, str] = {
    "0": "conv1_1", "5": "conv2_1", "10": "conv3_1", "19": "conv4_1", "21": "conv4_2", "28": "conv5_1",
}
CONTENT_LAYER = "conv4_2"
#: The book's style-layer weights: early layers (fine texture) count more than late ones.
STYLE_WEIGHTS: dict[str, float] = {"conv1_1": 1.0, "conv2_1": 0.8, "conv3_1": 0.6, "conv4_1": 0.4, "conv5_1": 0.2}

OUTPUT_DIR = PROJECT_ROOT / "outputs" / "ch05"


# --------------------------------------------------------------------------- images

def image_transform(size: int = BOOK_IMAGE_SIZE) -> transforms.Compose:
    """Resize (shorter side to ``size``, as the book's ``Resize(224)``), ``ToTensor``, ImageNet normalisation."""
    if size < 32:
        raise ValueError(f"size={size} is too small: VGG-19 halves the image five times, so use at least 32 pixels")
    return transforms.Compose([
        transforms.Resize(size),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


def load_image_tensor(source: str | Path, size: int = BOOK_IMAGE_SIZE,
                      device: torch.device | str | None = None) -> torch.Tensor:
    """An image as a normalised ``(1, 3, H, W)`` tensor on ``device``, its shorter side ``size`` pixels.

    ``source`` is a course image name (``dog``, ``landscape``, ``matisse``, ``monet``), a file path
    or an http(s) URL; any Pillow mode (RGBA, greyscale, palette...) is converted to RGB by
    :func:`utils.load_image`, and a missing file raises ``FileNotFoundError`` naming the path.
    """
    image = load_image(source)
    return image_transform(size)(image).unsqueeze(0).to(device or "cpu")


def _channel_view(values: tuple[float, ...], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(1, 3, 1, 1)


def denormalise(tensor: torch.Tensor) -> torch.Tensor:
    """Undo the ImageNet normalisation and clamp to [0, 1]: a ``(1, 3, H, W)`` or ``(3, H, W)`` image."""
    image = tensor.detach()
    batched = image.dim() == 4
    image = image if batched else image.unsqueeze(0)
    image = (image * _channel_view(IMAGENET_STD, image) + _channel_view(IMAGENET_MEAN, image)).clamp(0, 1)
    return image if batched else image[0]


def tensor_to_pil(tensor: torch.Tensor) -> Image.Image:
    """The inverse of :func:`image_transform`: a normalised image tensor as an RGB PIL image (clamped)."""
    image = denormalise(tensor).cpu()
    return transforms.ToPILImage()(image[0] if image.dim() == 4 else image)


def to_display(tensor: torch.Tensor) -> np.ndarray:
    """A normalised image tensor as an ``(H, W, 3)`` array in [0, 1] for ``plt.imshow`` (clamped)."""
    return tensor_to_image(tensor, IMAGENET_MEAN, IMAGENET_STD)


def pixel_bounds(like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The normalised values of pixel intensities 0 and 1, per channel, shaped ``(1, 3, 1, 1)``."""
    mean, std = _channel_view(IMAGENET_MEAN, like), _channel_view(IMAGENET_STD, like)
    return (0 - mean) / std, (1 - mean) / std


def clamp_to_pixel_range_(image: torch.Tensor) -> torch.Tensor:
    """Clamp a normalised image in place to what real pixels can hold, outside autograd."""
    low, high = pixel_bounds(image)
    with torch.no_grad():
        image.clamp_(min=low, max=high)
    return image


def output_dir() -> Path:
    """``outputs/ch05`` at the project root (git-ignored), created if needed."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    return OUTPUT_DIR


def save_image(tensor: torch.Tensor, filename: str) -> Path:
    """Save a normalised image tensor as a picture under ``outputs/ch05`` and return its path."""
    path = output_dir() / filename
    tensor_to_pil(tensor).save(path)
    return path


# --------------------------------------------------------------------------- the network

def load_vgg19_features(device: torch.device | str | None = None, weights: str | None = "IMAGENET1K_V1",
                        ) -> nn.Sequential:
    """VGG-19's ``features`` (convolutions, ReLUs, poolings), frozen, in ``eval()`` mode, on ``device``.

    Weights come from :func:`utils.standins.vgg19_features`: ImageNet weights when they can be
    downloaded (or are cached); with ``ADL_OFFLINE=1`` and no cache, a random stand-in (announced).
    ``weights=None`` gives random weights without a banner (for tests). Torchvision's
    ``ReLU(inplace=True)`` layers are swapped for ``ReLU()``: an in-place ReLU overwrites the
    convolution output it receives, so a reference to that output kept by a feature extractor
    would silently change.
    """
    features = vgg19_features(weights)
    for index, layer in enumerate(features):
        if isinstance(layer, nn.ReLU):
            features[index] = nn.ReLU(inplace=False)
    features.requires_grad_(False)
    return features.eval().to(device or "cpu")


def vgg19_layer_names(features: nn.Sequential) -> dict[str, str]:
    """Name every layer of a VGG ``features`` stack: ``conv{block}_{n}``, ``relu{block}_{n}``, ``pool{block}``.

    Blocks are counted by the max-poolings, so the names follow the network, not a hand-made list.
    """
    names: dict[str, str] = {}
    block, conv = 1, 0
    for index, layer in enumerate(features):
        if isinstance(layer, nn.Conv2d):
            conv += 1
            names[str(index)] = f"conv{block}_{conv}"
        elif isinstance(layer, nn.ReLU):
            names[str(index)] = f"relu{block}_{conv}"
        elif isinstance(layer, nn.MaxPool2d):
            names[str(index)] = f"pool{block}"
            block, conv = block + 1, 0
        else:
            names[str(index)] = f"{type(layer).__name__.lower()}{block}_{conv}"
    return names


def extract_features(image: torch.Tensor, model: nn.Sequential, layers: Mapping[str, str] = VGG19_LAYERS,
                     after_relu: bool = True) -> dict[str, torch.Tensor]:
    """Run ``image`` through every layer of ``model`` up to the deepest one in ``layers``; return named outputs.

    ``layers`` maps convolution indices to names (:data:`VGG19_LAYERS`). With ``after_relu=True``
    (the default, as in Gatys et al.) each feature is the output of the ReLU that follows the named
    convolution; with ``after_relu=False`` it is the raw convolution output, which requires a model
    without in-place ReLUs (see :func:`load_vgg19_features`).
    """
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"expected a (N, 3, H, W) image batch, got shape {tuple(image.shape)}")
    if not layers:
        raise ValueError("no layers requested")
    indices = sorted(int(i) for i in layers)
    if indices[-1] >= len(model):
        raise ValueError(f"layer {indices[-1]} requested, but the model has only {len(model)} layers")
    for i in indices:
        if not isinstance(model[i], nn.Conv2d):
            raise ValueError(f"layer {i} is a {type(model[i]).__name__}, not a convolution")
        if after_relu and not (i + 1 < len(model) and isinstance(model[i + 1], nn.ReLU)):
            raise ValueError(f"after_relu=True, but layer {i + 1} (after convolution {i}) is not a ReLU")
    if not after_relu and any(isinstance(m, nn.ReLU) and m.inplace for m in model):
        raise ValueError("the model has in-place ReLUs, which would overwrite the stored convolution outputs; "
                         "load it with load_vgg19_features() or use after_relu=True")
    shift = 1 if after_relu else 0
    last = indices[-1] + shift
    features: dict[str, torch.Tensor] = {}
    x = image
    for index in range(last + 1):  # every layer, in order, up to the deepest one needed
        x = model[index](x)
        name = layers.get(str(index - shift))
        if name is not None:
            features[name] = x
    return features


# --------------------------------------------------------------------------- losses

class _Gram(torch.autograd.Function):
    """``A^T A`` for a batch of ``(N, P, C)`` matrices, with a backward pass that costs one product.

    Autograd's own backward of ``A^T @ A`` computes two products (one per operand) and adds them;
    since both operands are ``A``, the gradient is ``A @ (dG + dG^T)``: one product, half the memory
    traffic on the large early feature maps.
    """

    @staticmethod
    def forward(ctx, flat: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(flat)
        return flat.transpose(1, 2) @ flat

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (flat,) = ctx.saved_tensors
        return flat @ (grad + grad.transpose(1, 2))


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Channel-by-channel correlations of a feature map, divided by its size ``C * H * W``.

    ``(C, H, W)`` gives ``(C, C)``; ``(N, C, H, W)`` gives ``(N, C, C)``. Without the division,
    the entries grow with the number of positions, so the style loss would depend on the image
    resolution and be dominated by the large early layers. Works on either memory format without
    copying a channels-last map (its ``(H*W, C)`` view is already contiguous).
    """
    if features.dim() not in (3, 4):
        raise ValueError(f"expected (C, H, W) or (N, C, H, W) features, got shape {tuple(features.shape)}")
    batched = features.dim() == 4
    maps = features if batched else features.unsqueeze(0)
    n, channels, height, width = maps.shape
    positions = maps.permute(0, 2, 3, 1).reshape(n, height * width, channels)  # (N, H*W, C), a view if channels-last
    gram = _Gram.apply(positions) / (channels * height * width)
    return gram if batched else gram[0]


def content_loss(target: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between the target's and the content image's feature maps."""
    if target.shape != content.shape:
        raise ValueError(f"content features differ in shape: {tuple(target.shape)} vs {tuple(content.shape)}")
    return F.mse_loss(target, content)


def style_loss(target_features: Mapping[str, torch.Tensor], style_grams: Mapping[str, torch.Tensor],
               weights: Mapping[str, float] = STYLE_WEIGHTS) -> torch.Tensor:
    """Weighted sum, over **all** style layers, of the mean squared difference of Gram matrices."""
    missing = [name for name in weights if name not in target_features or name not in style_grams]
    if missing:
        raise KeyError(f"style layers without features or Gram matrix: {missing}")
    terms = [w * F.mse_loss(gram_matrix(target_features[name]), style_grams[name]) for name, w in weights.items()]
    return torch.stack(terms).sum()


def total_loss(content: torch.Tensor, style: torch.Tensor, alpha: float = 1.0, beta: float = 1e6) -> torch.Tensor:
    """``alpha * content + beta * style``; the book's ``alpha = 1``, ``beta = 1e6``."""
    return alpha * content + beta * style


# --------------------------------------------------------------------------- optimisation

def preferred_memory_format(device: torch.device | str | None = None) -> torch.memory_format:
    """The image layout the loop uses on ``device``: channels-last on a CPU, the default elsewhere.

    On the course's 2-core CPU a forward and backward pass through VGG-19 up to ``conv5_1`` is about
    10% faster with channels-last images (``tools/benchmark_style.py`` measures it on yours); on CUDA
    it was not measured, so the default layout is kept. The convolutions follow the input's layout,
    so the network itself needs no conversion.
    """
    return torch.channels_last if torch.device(device or "cpu").type == "cpu" else torch.contiguous_format


@dataclass
class StyleTransferRun:
    """What :func:`transfer_style` produced: the image, the loss history and progress snapshots.

    ``losses``/``content_losses``/``style_losses`` are measured before each update (so
    ``losses[0]`` is the loss of the starting image); ``final_loss`` is the loss of the
    returned image. ``snapshots`` holds ``(iteration, image)`` pairs, on the CPU. ``seconds[i]`` is
    the time elapsed since the loop started when iteration ``i + 1`` ended (to compare optimisers at
    equal wall time).
    """

    image: torch.Tensor
    losses: list[float] = field(default_factory=list)
    content_losses: list[float] = field(default_factory=list)
    style_losses: list[float] = field(default_factory=list)
    snapshots: list[tuple[int, torch.Tensor]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    initial_loss: float = float("nan")
    final_loss: float = float("nan")
    seconds_per_iteration: float = float("nan")
    optimizer: str = "adam"


def transfer_style(model: nn.Sequential, content: torch.Tensor, style: torch.Tensor, *, iterations: int,
                   alpha: float = 1.0, beta: float = 1e6, style_weights: Mapping[str, float] = STYLE_WEIGHTS,
                   content_layer: str = CONTENT_LAYER, optimizer: str = "adam", lr: float | None = None,
                   snapshot_every: int = 0, progress: bool = True,
                   memory_format: torch.memory_format | None = None) -> StyleTransferRun:
    """Optimise a copy of ``content`` so its features match ``content`` and its Gram matrices match ``style``.

    * ``optimizer="adam"`` (the book): ``torch.optim.Adam``, ``lr`` 0.001 unless given.
    * ``optimizer="lbfgs"`` (**beyond the book**, the optimiser of Gatys et al.): ``torch.optim.LBFGS``
      with one iteration per step and no line search, so each iteration costs one forward and
      backward pass, as with Adam; ``lr`` 0.5 unless given (1 tends to overshoot in the first steps).
      It minimises the loss divided by its starting value, which has the same minimum but makes
      L-BFGS behave the same whatever the scale of the loss.

    After every update the image is clamped, outside autograd, to the valid pixel range.
    ``snapshot_every=N`` keeps a copy of the image every N iterations (and at the start and end).

    Each iteration costs one forward and backward pass through the network up to the deepest layer
    needed, plus the Gram matrices: the content and style targets are computed once, without a graph,
    and the network sees the image in ``memory_format`` (:func:`preferred_memory_format` unless given).
    """
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    if optimizer not in ("adam", "lbfgs"):
        raise ValueError(f"optimizer must be 'adam' (the book) or 'lbfgs', got {optimizer!r}")
    wanted = set(style_weights) | {content_layer}
    unknown = wanted - set(VGG19_LAYERS.values())
    if unknown:
        raise KeyError(f"unknown layers {sorted(unknown)}; known: {list(VGG19_LAYERS.values())}")
    layers = {index: name for index, name in VGG19_LAYERS.items() if name in wanted}

    with torch.no_grad():
        content_target = extract_features(content, model, layers)[content_layer]
        style_features = extract_features(style, model, layers)
        style_grams = {name: gram_matrix(style_features[name]) for name in style_weights}

    layout = preferred_memory_format(content.device) if memory_format is None else memory_format
    target = content.detach().clone().requires_grad_(True)
    run = StyleTransferRun(image=target, optimizer=optimizer)

    def losses() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # the network sees the image in `layout` (a copy of 3 channels, within the graph); the optimiser's
        # tensor keeps the default layout, which torch.optim.LBFGS requires
        features = extract_features(target.contiguous(memory_format=layout), model, layers)
        c = content_loss(features[content_layer], content_target)
        s = style_loss(features, style_grams, style_weights)
        return total_loss(c, s, alpha, beta), c, s

    def record(total: torch.Tensor, c: torch.Tensor, s: torch.Tensor) -> None:
        run.losses.append(total.item())
        run.content_losses.append(c.item())
        run.style_losses.append(s.item())

    if optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam([target], lr=0.001 if lr is None else lr)
    else:
        # The tolerances are off: we decide the number of iterations, and the loss scale (which depends on
        # the weights, beta and the image size) must not make L-BFGS stop early as "converged".
        opt = torch.optim.LBFGS([target], lr=0.5 if lr is None else lr, max_iter=1, history_size=50,
                                tolerance_grad=0.0, tolerance_change=0.0)

    # L-BFGS minimises the loss divided by its starting value (the same minimum): its internal thresholds
    # (e.g. it skips curvature pairs with a product below 1e-10) must not depend on the loss scale.
    scale = 1.0
    if optimizer == "lbfgs":
        with torch.no_grad():
            start_loss = losses()[0].item()
        scale = start_loss if start_loss > 0 else 1.0

    def closure() -> torch.Tensor:
        opt.zero_grad()
        total, c, s = losses()
        (total / scale).backward()
        record(total, c, s)
        return total / scale

    if snapshot_every:
        run.snapshots.append((0, target.detach().cpu().clone()))
    bar = tqdm(range(1, iterations + 1), desc=f"style transfer ({optimizer})", disable=not progress)
    started = time.perf_counter()
    for iteration in bar:
        opt.step(closure)
        clamp_to_pixel_range_(target)
        if not np.isfinite(run.losses[-1]):
            raise FloatingPointError(f"the loss became {run.losses[-1]} at iteration {iteration}; lower the lr")
        run.seconds.append(time.perf_counter() - started)
        bar.set_postfix(loss=f"{run.losses[-1]:.4g}")
        if snapshot_every and (iteration % snapshot_every == 0 or iteration == iterations):
            run.snapshots.append((iteration, target.detach().cpu().clone()))
    run.seconds_per_iteration = (time.perf_counter() - started) / iterations
    bar.close()

    with torch.no_grad():
        final = losses()[0]
    run.image = target.detach()
    run.initial_loss, run.final_loss = run.losses[0], final.item()
    return run
