"""Checks for Activity 10 (Chapter 5): style transfer written by hand.

The given cells define ``device``, ``content_img``, ``style_img``, ``iterations``, ``alpha``, ``beta``,
``lr`` and the layer maps ``VGG19_LAYERS``, ``STYLE_WEIGHTS`` and ``CONTENT_LAYER``. The learner's steps
create:

* step 2: ``model``, VGG-19's ``features``, frozen, in ``eval()`` mode, on ``device``, ReLUs not in place;
* step 3: ``features_extractor(x, model, layers)`` and ``content_features``, ``style_features``;
* step 4: ``gram_matrix(features)`` and ``style_grams``;
* step 5: ``target_img``;
* step 6: ``compute_losses(target_features) -> (content_loss, style_loss, total_loss)``;
* step 7: the optimisation loop, which fills ``history`` (the total loss of every iteration).

The extractor and the Gram matrix are checked on a random VGG-19 of the checks' own and on small
known tensors, so a check does not depend on an earlier step being right, and runs in about a second.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from ..style import CONTENT_LAYER, STYLE_WEIGHTS, VGG19_LAYERS, extract_features, pixel_bounds
from . import Checker, Namespace, Wrong, count_parameters, expect, need

check = Checker("Activity 10")

#: Channels of each named layer of VGG-19, and how many max-poolings come before it.
CHANNELS = {"conv1_1": 64, "conv2_1": 128, "conv3_1": 256, "conv4_1": 512, "conv4_2": 512, "conv5_1": 512}
POOLINGS = {"conv1_1": 0, "conv2_1": 1, "conv3_1": 2, "conv4_1": 3, "conv4_2": 3, "conv5_1": 4}
PROBE_SIZE = 32  # the checks' own test image is 32x32: conv5_1 must be 512x2x2 (512x14x14 at 224)


def _expected_shape(name: str, height: int, width: int) -> tuple[int, int, int]:
    scale = 2 ** POOLINGS[name]
    return CHANNELS[name], height // scale, width // scale


@lru_cache(maxsize=1)
def _reference_models() -> tuple[nn.Sequential, nn.Sequential]:
    """A random VGG-19 ``features`` (seeded, frozen) with ``ReLU()``, and a copy with in-place ReLUs."""
    from torchvision.models import vgg19

    generator_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    model = vgg19(weights=None).features[:30]  # up to relu5_1: all the named layers need
    torch.random.set_rng_state(generator_state)  # the learner's random stream is left as it was
    for index, layer in enumerate(model):
        if isinstance(layer, nn.ReLU):
            model[index] = nn.ReLU(inplace=False)
    model.requires_grad_(False).eval()
    inplace = copy.deepcopy(model)
    for index, layer in enumerate(inplace):
        if isinstance(layer, nn.ReLU):
            inplace[index] = nn.ReLU(inplace=True)
    return model, inplace


def _probe() -> torch.Tensor:
    return torch.rand(1, 3, PROBE_SIZE, PROBE_SIZE, generator=torch.Generator().manual_seed(1))


def _shape(t: torch.Tensor) -> str:
    return "x".join(str(n) for n in t.shape[1:]) if t.dim() == 4 else "x".join(str(n) for n in t.shape)


def _square(gram: torch.Tensor) -> torch.Tensor:
    """A Gram matrix as (C, C): a leading batch dimension of 1 is accepted and dropped."""
    return gram[0] if gram.dim() == 3 and gram.shape[0] == 1 else gram


def _close(a: float, b: float, rel: float = 1e-4) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-30)


# --------------------------------------------------------------------------- step 2

@check.register(2, "load VGG-19's features, frozen, in evaluation mode, on the device")
def _model(ns: Namespace) -> str:
    model = need(ns, "model", "VGG-19's `features`, frozen, in eval() mode, on `device`, with non-in-place ReLUs")
    expect(isinstance(model, nn.Module), f"`model` is a {type(model).__name__}, not an nn.Module")
    expect(not hasattr(model, "classifier"),
           "`model` is the whole VGG-19, classifier included: keep only its convolutional part, `.features`")
    convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    expect(convs == 16, f"`model` has {convs} convolutions; VGG-19's `features` has 16")
    trainable = count_parameters(model)
    expect(trainable == 0,
           f"{trainable:,} parameters still require gradients: call model.requires_grad_(False). "
           "We optimise the pixels of an image, never the network, so its weights need no gradients")
    expect(not model.training, "`model` is in training mode: call model.eval() (a fixed measuring instrument)")
    device = torch.device(ns.get("device", "cpu"))
    on = next(model.parameters()).device
    expect(on.type == device.type, f"`model` is on {on} but `device` is {device}: move it with .to(device)")
    inplace = sum(isinstance(m, nn.ReLU) and m.inplace for m in model.modules())
    expect(inplace == 0,
           f"{inplace} of its ReLUs are in place (torchvision's default): replace each by nn.ReLU(), "
           "or a feature map your extractor keeps may be overwritten by the next layer (ERRATA E5.7)")
    return f"VGG-19's features: {len(model)} layers with 16 convolutions, frozen, in eval() mode, on {on}, " \
           "no in-place ReLU"


# --------------------------------------------------------------------------- step 3

@check.register(3, "write the feature extractor and extract the features of both images")
def _extractor(ns: Namespace) -> str:
    extractor = need(ns, "features_extractor", "a function (x, model, layers) -> {layer name: feature map}")
    expect(callable(extractor), "`features_extractor` must be a function: def features_extractor(x, model, layers)")
    model, inplace = _reference_models()
    image = _probe().requires_grad_(True)
    got = extractor(image, model, dict(VGG19_LAYERS))
    expect(isinstance(got, Mapping), f"features_extractor returned a {type(got).__name__}; "
                                     "return a dictionary {layer name: feature map}")
    missing = [name for name in VGG19_LAYERS.values() if name not in got]
    expect(not missing, f"the dictionary lacks {missing}; its keys must be the names in `layers` "
                        f"({list(VGG19_LAYERS.values())})")
    size = PROBE_SIZE
    shapes = {name: tuple(got[name].shape[1:]) for name in VGG19_LAYERS.values()}
    expected = {name: _expected_shape(name, size, size) for name in VGG19_LAYERS.values()}
    if shapes != expected:
        if shapes["conv5_1"][1:] == (size, size):
            raise Wrong(f"for a {size}x{size} image your conv5_1 is {'x'.join(map(str, shapes['conv5_1']))}, "
                        f"the input's own resolution: the extractor applies only the listed layers and skips "
                        "the ReLUs and max-poolings between them (the book's bug, ERRATA E5.4). Apply every "
                        f"layer in order and record the listed ones: conv5_1 must be 512x2x2 here "
                        "(512x14x14 for a 224x224 image)")
        wrong = {n: "x".join(map(str, s)) for n, s in shapes.items() if s != expected[n]}
        raise Wrong(f"feature shapes {wrong} differ from VGG-19's "
                    f"{ {n: 'x'.join(map(str, expected[n])) for n in wrong} } for a {size}x{size} image: "
                    "is every layer applied once, in order, up to conv5_1?")
    expect(got["conv4_2"].requires_grad,
           "the features of an image that requires gradients carry no gradient: does the extractor call "
           ".detach() or run under torch.no_grad()? The loop needs the target's features to keep the graph")
    with torch.no_grad():
        after = extract_features(image, model, VGG19_LAYERS, after_relu=True)
        before = extract_features(image, model, VGG19_LAYERS, after_relu=False)
    if all(torch.allclose(got[n].detach(), after[n], atol=1e-5) for n in after):
        kind = "the output of the ReLU after each named convolution (as Gatys et al.)"
    elif all(torch.allclose(got[n].detach(), before[n], atol=1e-5) for n in before):
        with torch.no_grad():
            overwritten = extractor(_probe(), inplace, dict(VGG19_LAYERS))
        kind = "the raw convolution outputs"
        if not all(torch.allclose(overwritten[n], before[n], atol=1e-5) for n in before):
            kind += (" (kept by reference: right with nn.ReLU(), but torchvision's in-place ReLUs would "
                     "silently overwrite them with the ReLU outputs, ERRATA E5.7)")
    else:
        raise Wrong("the shapes are right but the values differ from running the layers of `model` in order: "
                    "is each layer applied exactly once, to the previous layer's output?")
    content_features = need(ns, "content_features", "features_extractor(content_img, model, VGG19_LAYERS)")
    style_features = need(ns, "style_features", "features_extractor(style_img, model, VGG19_LAYERS)")
    for label, feats, img in (("content_features", content_features, ns.get("content_img")),
                              ("style_features", style_features, ns.get("style_img"))):
        expect(isinstance(feats, Mapping) and all(n in feats for n in VGG19_LAYERS.values()),
               f"`{label}` must be the extractor's dictionary for the image, with the six layer names")
        expect(not any(f.requires_grad for f in feats.values()),
               f"`{label}` carries a computation graph: the images' features are fixed targets, so compute "
               "them under torch.no_grad()")
        if isinstance(img, torch.Tensor):
            h, w = img.shape[-2:]
            shape = tuple(feats["conv5_1"].shape[1:])
            source = "content_img" if label == "content_features" else "style_img"
            expect(shape == _expected_shape("conv5_1", h, w),
                   f"`{label}['conv5_1']` is {'x'.join(map(str, shape))}, but `{source}` is {h}x{w}: "
                   f"`{label} = features_extractor({source}, model, VGG19_LAYERS)`")
            learner_model = ns.get("model")
            if isinstance(learner_model, nn.Module):
                with torch.no_grad():
                    again = extractor(img, learner_model, dict(VGG19_LAYERS))[CONTENT_LAYER]
                expect(torch.allclose(feats[CONTENT_LAYER].detach(), again.detach(), rtol=1e-4, atol=1e-5),
                       f"`{label}` are not the features of `{source}`: "
                       f"`{label} = features_extractor({source}, model, VGG19_LAYERS)`")
    return (f"every layer is applied in order (conv5_1 of a {size}x{size} image is 512x2x2, so 512x14x14 at "
            f"224 px), the features keep the graph, and they are {kind}; content and style features are fixed "
            "targets")


# --------------------------------------------------------------------------- step 4

KNOWN = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]]])  # (1, C=2, H=2, W=2)
KNOWN_RAW = torch.tensor([[30.0, 6.0], [6.0, 2.0]])  # dot products of (1, 2, 3, 4) and (0, 1, 0, 1)


@check.register(4, "write the Gram matrix and compute the style image's Gram matrices")
def _gram(ns: Namespace) -> str:
    gram_matrix = need(ns, "gram_matrix", "a function: (1, C, H, W) features -> (C, C) Gram matrix / (C*H*W)")
    expect(callable(gram_matrix), "`gram_matrix` must be a function of a feature map")
    known = KNOWN.clone().requires_grad_(True)
    got = _square(gram_matrix(known))
    expect(isinstance(got, torch.Tensor), f"gram_matrix returned a {type(got).__name__}, not a tensor")
    if tuple(got.shape) == (4, 4):
        raise Wrong("for 2 channels of 2x2 positions your Gram matrix is 4x4, positions by positions: "
                    "flatten to (C, H*W) and multiply by the transpose on the right, F @ F.T, to get C x C")
    expect(tuple(got.shape) == (2, 2),
           f"for features of shape (1, 2, 2, 2) your Gram matrix has shape {tuple(got.shape)}; it must be "
           "(2, 2): one entry per pair of channels")
    expect(torch.allclose(got, got.T), f"the Gram matrix {got.tolist()} is not symmetric: entry (i, j) is "
                                       "the dot product of channels i and j, the same as (j, i)")
    expected = KNOWN_RAW / 8
    ratio = (got.detach() / expected).mean().item()
    for factor, why in ((8, "it is the raw sum over positions; divide by C*H*W, the number of elements of the "
                            "feature map (ERRATA E5.5), or the style loss grows with the image size"),
                        (2, "it is divided by H*W only; divide by C*H*W"),
                        (4, "it is divided by C only; divide by C*H*W")):
        if torch.allclose(got.detach(), expected * factor, rtol=1e-4):
            raise Wrong(f"your Gram matrix of the known features is {factor} times too large: {why}")
    expect(torch.allclose(got.detach(), expected, rtol=1e-4),
           f"for the channels (1, 2, 3, 4) and (0, 1, 0, 1) the Gram matrix is [[30, 6], [6, 2]] / 8 = "
           f"{expected.tolist()}; yours is {got.detach().tolist()} ({ratio:.3g} times as large on average)")
    expect(got.requires_grad, "the Gram matrix carries no gradient: do not detach it or call .item(), "
                              "the style loss must reach the target's pixels through it")
    style_grams = need(ns, "style_grams", "a dictionary {style layer: Gram matrix of the style image's features}")
    missing = [name for name in STYLE_WEIGHTS if name not in style_grams]
    expect(not missing, f"`style_grams` lacks {missing}: one Gram matrix per style layer ({list(STYLE_WEIGHTS)})")
    for name in STYLE_WEIGHTS:
        gram = _square(style_grams[name])
        expect(tuple(gram.shape) == (CHANNELS[name],) * 2,
               f"style_grams['{name}'] has shape {tuple(gram.shape)}; {name} has {CHANNELS[name]} channels, so "
               f"({CHANNELS[name]}, {CHANNELS[name]})")
        expect(not gram.requires_grad,
               f"style_grams['{name}'] carries a computation graph: compute the style targets under "
               "torch.no_grad() (or detach them). Otherwise the second backward() fails, and "
               "retain_graph=True would only hide that")
    style_features = ns.get("style_features")
    if isinstance(style_features, Mapping) and "conv1_1" in style_features:
        with torch.no_grad():
            again = _square(gram_matrix(style_features["conv1_1"]))
        expect(torch.allclose(again, _square(style_grams["conv1_1"]), rtol=1e-4, atol=1e-8),
               "style_grams['conv1_1'] is not gram_matrix(style_features['conv1_1']): compute each from the "
               "style image's features with your function")
    return "the Gram matrix of a known tensor is right ([[30, 6], [6, 2]] / C*H*W), symmetric, C x C and " \
           "differentiable; the five style Gram matrices are fixed targets of the right sizes"


# --------------------------------------------------------------------------- step 5

@check.register(5, "create the target image")
def _target(ns: Namespace) -> str:
    target = need(ns, "target_img", "a copy of the content image whose pixels the optimiser will change")
    content = need(ns, "content_img", "run the cell that loads the images first")
    expect(isinstance(target, torch.Tensor), f"`target_img` is a {type(target).__name__}, not a tensor")
    expect(target is not content, "`target_img` is `content_img` itself: changing one would change the other; "
                                  "make a copy with .clone()")
    expect(target.requires_grad,
           "`target_img` does not require gradients: the optimiser changes its pixels, so autograd must compute "
           "the gradient of the loss with respect to them. Call .requires_grad_(True)")
    expect(target.is_leaf,
           "`target_img` is not a leaf tensor (an operation came after requires_grad_, e.g. .to(device), or "
           "content_img itself requires gradients): the optimiser can only update leaves. Clone the content "
           "image where it is, then call .requires_grad_(True)")
    expect(target.shape == content.shape and target.device == content.device,
           f"`target_img` is {tuple(target.shape)} on {target.device}; the content image is "
           f"{tuple(content.shape)} on {content.device}")
    expect(torch.equal(target.detach(), content.detach()), "`target_img` does not start as the content image: "
                                                           "start from a copy of it, as the book does")
    return f"a leaf copy of the content image, {tuple(target.shape)} on {target.device}, that requires gradients"


# --------------------------------------------------------------------------- step 6

def _losses(result: object) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    expect(isinstance(result, tuple | list) and len(result) == 3,
           "compute_losses must return three values: (content_loss, style_loss, total_loss)")
    for value in result:
        expect(isinstance(value, torch.Tensor) and value.numel() == 1,
               "each of the three losses must be a one-number tensor (no .item(): the total must keep its graph)")
    return result[0], result[1], result[2]


@check.register(6, "write the content, style and total losses")
def _loss_function(ns: Namespace) -> str:
    compute_losses = need(ns, "compute_losses", "a function: target features -> (content, style, total loss)")
    expect(callable(compute_losses), "`compute_losses` must be a function of the target's features")
    content_features = need(ns, "content_features", "step 3")
    style_grams = need(ns, "style_grams", "step 4")
    gram_matrix: Callable = need(ns, "gram_matrix", "step 4")
    alpha, beta = float(ns.get("alpha", 1)), float(ns.get("beta", 1e6))
    torch.manual_seed(0)  # a perturbed copy of the content features: every loss is non-zero
    features = {name: (f.detach() * 1.5 + 0.1 * torch.rand_like(f)).requires_grad_(True)
                for name, f in content_features.items()}
    content, style, total = _losses(compute_losses(features))
    expect(total.requires_grad, "the total loss carries no gradient: do not .detach() or .item() inside "
                                "compute_losses; backward() must reach the target's pixels")
    with torch.no_grad():
        ref_content = F.mse_loss(features[CONTENT_LAYER], content_features[CONTENT_LAYER]).item()
        terms = {}
        for name, weight in STYLE_WEIGHTS.items():
            target_gram = _square(gram_matrix(features[name]))
            terms[name] = (weight * torch.mean((target_gram - _square(style_grams[name])) ** 2).item(),
                           features[name][0].numel())
    c, s, t = content.item(), style.item(), total.item()
    if not _close(c, ref_content):
        summed = ref_content * content_features[CONTENT_LAYER].numel()
        expect(not _close(c, summed), "the content loss is a sum of squared differences; take their mean")
        raise Wrong(f"the content loss is {c:.4g}; the mean squared difference of the {CONTENT_LAYER} features "
                    f"is {ref_content:.4g}: compare target_features['{CONTENT_LAYER}'] with "
                    f"content_features['{CONTENT_LAYER}']")
    ref_style = sum(value for value, _ in terms.values())
    if not _close(s, ref_style):
        last = terms["conv5_1"][0]
        expect(not _close(s, last), "the style loss holds only the last layer's term (conv5_1): the book's bug "
                                    "(ERRATA E5.6). Add the weighted terms of all five style layers")
        divided = sum(value / size for value, size in terms.values())
        expect(not _close(s, divided), "each layer's term is divided by d*h*w, as in the book's running sum: "
                                       "your Gram matrices are already divided by C*H*W, so do not divide again")
        unweighted = sum(value / STYLE_WEIGHTS[name] for name, (value, _) in terms.items())
        expect(not _close(s, unweighted), "the layer weights are missing: multiply each layer's term by "
                                          "STYLE_WEIGHTS[layer] (1.0 for conv1_1 down to 0.2 for conv5_1)")
        raise Wrong(f"the style loss is {s:.4g}; the weighted sum over the five layers of the mean squared "
                    f"difference of Gram matrices is {ref_style:.4g}")
    if not _close(t, alpha * c + beta * s):
        expect(not _close(t, beta * c + alpha * s), "alpha and beta are swapped: alpha weighs the content loss, "
                                                    "beta the style loss")
        raise Wrong(f"the total loss is {t:.4g}; alpha * content + beta * style = {alpha * c + beta * s:.4g}")
    return (f"content loss = mean squared difference at {CONTENT_LAYER}, style loss = weighted sum over all five "
            f"layers, total = {alpha:g} * content + {beta:g} * style, and it keeps the graph")


# --------------------------------------------------------------------------- step 7

@check.register(7, "run the optimisation loop")
def _loop(ns: Namespace) -> str:
    history = need(ns, "history", "a list with the total loss (a float) of every iteration")
    iterations = int(need(ns, "iterations", "run the setup cell first"))
    target = need(ns, "target_img", "step 5")
    content = need(ns, "content_img", "run the cell that loads the images first")
    expect(target.is_leaf and target.requires_grad,
           "`target_img` is no longer a leaf that requires gradients: `target_img = target_img.clamp(...)` "
           "replaces the tensor the optimiser updates with a computed copy. Clamp in place, under "
           "torch.no_grad() (clamp_to_pixel_range_(target_img))")
    expect(isinstance(history, list | tuple) and len(history) > 0, "`history` must be a list of floats")
    expect(not any(isinstance(v, torch.Tensor) and v.requires_grad for v in history),
           "`history` holds the loss tensors themselves, each keeping its iteration's whole graph (and the memory "
           "it uses) alive: append `total_loss.item()`, a float")
    values = [float(v) for v in history]
    expect(len(values) == iterations,
           f"`history` has {len(values)} values for iterations = {iterations}: append loss.item() once per "
           "iteration (run the loop cell once, from a fresh target image)")
    expect(all(math.isfinite(v) for v in values), "the loss became infinite or NaN: check the learning rate")
    expect(not torch.equal(target.detach(), content.detach()),
           "`target_img` still equals the content image: is the optimiser built on [target_img]?")
    expect(max(values) - min(values) > 1e-9 * max(abs(values[0]), 1e-30),
           f"the total loss never changes ({values[0]:.4g} at every iteration): are the target's features and "
           "the losses computed inside the loop, from the current target_img, and is the loss of each "
           "iteration appended (not one value, computed once before the loop)?")
    expect(values[-1] < values[0],
           f"the total loss did not fall ({values[0]:.4g} at the first iteration, {values[-1]:.4g} at the last): "
           "is the optimiser built on [target_img], and does every iteration call zero_grad(), backward() "
           "and step()?")
    low, high = pixel_bounds(target)
    inside = bool(((target >= low - 1e-5) & (target <= high + 1e-5)).all())
    expect(inside, "some pixels of `target_img` lie outside what a picture can hold: clamp the image after "
                   "every step (clamp_to_pixel_range_(target_img)), ERRATA E5.3")
    if float(target.min()) >= 0 and float(low.min()) < 0 and float(content.min()) < 0:
        raise Wrong("every pixel of `target_img` is now >= 0, but the image is normalised (ImageNet mean and "
                    "std), so real pixels reach below 0: clamping to [0, 1] cuts them off (ERRATA E5.3). "
                    "Clamp to the normalised bounds of 0 and 1, `clamp_to_pixel_range_(target_img)`")
    reference = _reference_loop(ns, content, iterations)
    if reference is not None:
        for iteration, (mine, theirs) in enumerate(zip(values, reference), start=1):
            expect(_close(mine, theirs, 1e-5),
                   f"at iteration {iteration} your total loss is {mine:.6g}, but the same loop run again from the "
                   f"content image gives {theirs:.6g}: every iteration extracts the target's features, computes "
                   "the losses, calls `optimizer.zero_grad()` (or the gradients add up), `backward()`, `step()`, "
                   "then clamps, and appends the total loss of that iteration")
    return (f"the total loss fell from {values[0]:.4g} to {values[-1]:.4g} in {iterations} iterations, as the "
            "reference loop's does; the target is still a leaf that requires gradients, and every pixel is "
            "inside the valid range")


def _reference_loop(ns: Namespace, content: torch.Tensor, iterations: int) -> list[float] | None:
    """The book's loop (E5.3 clamp) from the content image, with the learner's extractor and losses; ``None`` when
    those are missing (their own steps say so)."""
    extractor, compute_losses, model = ns.get("features_extractor"), ns.get("compute_losses"), ns.get("model")
    if not (callable(extractor) and callable(compute_losses) and isinstance(model, nn.Module)):
        return None
    image = content.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([image], lr=float(ns.get("lr", 0.001)))
    values = []
    for _ in range(iterations):
        total = compute_losses(extractor(image, model, dict(VGG19_LAYERS)))[2]
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        low, high = pixel_bounds(image)
        with torch.no_grad():
            image.clamp_(min=low, max=high)
        values.append(float(total))
    return values
