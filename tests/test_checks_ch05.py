"""The checks of Activity 10 (``utils.checks.activity10``): right answers pass, typical wrong answers get
their specific message, and an empty notebook is "not done".

Everything runs on small tensors and the checks' own random VGG-19 (no download), in a few seconds.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from utils import style as st
from utils.checks import NOT_DONE, PASSED, WRONG
from utils.checks.activity10 import CHANNELS, _reference_models, check

CPU = torch.device("cpu")


def run(step: int, ns: dict):
    return check.run(step, ns)


def assert_wrong(result, *fragments: str) -> None:
    assert result.status == WRONG, result
    for fragment in fragments:
        assert fragment in result.message, f"{fragment!r} not in: {result.message}"


# --------------------------------------------------------------------------- answers a learner might write

def post_relu_extractor(x, model, layers):
    """The solution's extractor: every layer, features after the ReLU that follows each named convolution."""
    features = {}
    for index, layer in enumerate(model):
        x = layer(x)
        if str(index - 1) in layers:
            features[layers[str(index - 1)]] = x
    return features


def raw_conv_extractor(x, model, layers):
    """Also right: every layer, the raw convolution outputs (kept by reference)."""
    features = {}
    for index, layer in enumerate(model):
        x = layer(x)
        if str(index) in layers:
            features[layers[str(index)]] = x
    return features


def book_extractor(x, model, layers):
    """The book's extractor: applies only the listed layers (ERRATA E5.4)."""
    features = {}
    for index, layer in model._modules.items():
        if index in layers:
            x = layer(x)
            features[layers[index]] = x
    return features


def detaching_extractor(x, model, layers):
    return {name: f.detach() for name, f in post_relu_extractor(x, model, layers).items()}


def gram_matrix(features):
    _, c, h, w = features.shape
    flat = features.reshape(c, h * w)
    return flat @ flat.t() / (c * h * w)


def raw_gram(features):  # the book's: not divided
    _, c, h, w = features.shape
    flat = features.reshape(c, h * w)
    return flat @ flat.t()


def gram_over_positions(features):
    _, c, h, w = features.shape
    flat = features.reshape(c, h * w)
    return flat @ flat.t() / (h * w)


def gram_transposed(features):
    _, c, h, w = features.shape
    flat = features.reshape(c, h * w)
    return flat.t() @ flat / (c * h * w)


@pytest.fixture(scope="module")
def images():
    torch.manual_seed(0)
    return torch.randn(1, 3, 32, 48) * 0.5, torch.randn(1, 3, 32, 32) * 0.5


@pytest.fixture(scope="module")
def solved(images) -> dict:
    """A namespace as the solution leaves it after step 5 (features from the checks' reference VGG-19)."""
    content_img, style_img = images
    model, _ = _reference_models()
    with torch.no_grad():
        content_features = post_relu_extractor(content_img, model, st.VGG19_LAYERS)
        style_features = post_relu_extractor(style_img, model, st.VGG19_LAYERS)
        style_grams = {name: gram_matrix(style_features[name]) for name in st.STYLE_WEIGHTS}
    return {"device": CPU, "content_img": content_img, "style_img": style_img,
            "features_extractor": post_relu_extractor, "content_features": content_features,
            "style_features": style_features, "gram_matrix": gram_matrix, "style_grams": style_grams,
            "target_img": content_img.clone().requires_grad_(True), "alpha": 1, "beta": 1e6, "iterations": 4}


def test_an_untouched_notebook_is_not_done_at_every_step():
    setup = {"device": CPU, "content_img": torch.zeros(1, 3, 32, 32), "style_img": torch.zeros(1, 3, 32, 32),
             "iterations": 10, "alpha": 1, "beta": 1e6}
    for step in check.steps:
        result = run(step, setup)
        assert result.status == NOT_DONE, result
    assert check.steps == [2, 3, 4, 5, 6, 7]


# --------------------------------------------------------------------------- step 2: the model

@pytest.fixture(scope="module")
def frozen():
    torch.manual_seed(0)
    return st.load_vgg19_features(weights=None)


def test_step2_passes_for_the_frozen_features(frozen):
    result = run(2, {"model": frozen, "device": CPU})
    assert result.status == PASSED and "no in-place ReLU" in result.message


def test_step2_catches_in_place_relus_gradients_training_mode_and_the_whole_network(frozen):
    inplace = copy.deepcopy(frozen)
    for index, layer in enumerate(inplace):
        if isinstance(layer, nn.ReLU):
            inplace[index] = nn.ReLU(inplace=True)  # as torchvision ships VGG-19
    assert_wrong(run(2, {"model": inplace, "device": CPU}), "16 of its ReLUs are in place", "E5.7")
    trainable = copy.deepcopy(frozen).requires_grad_(True)
    assert_wrong(run(2, {"model": trainable, "device": CPU}), "still require gradients", "requires_grad_(False)")
    assert_wrong(run(2, {"model": copy.deepcopy(frozen).train(), "device": CPU}), "model.eval()")
    whole = nn.Module()  # the whole network: features and classifier
    whole.features, whole.classifier = frozen, nn.Linear(2, 2)
    assert_wrong(run(2, {"model": whole, "device": CPU}), "classifier")


# --------------------------------------------------------------------------- step 3: the extractor

def test_step3_passes_for_features_after_or_before_the_relu(solved):
    result = run(3, solved)
    assert result.status == PASSED and "after each named convolution" in result.message
    raw = dict(solved, features_extractor=raw_conv_extractor)
    result = run(3, raw)
    assert result.status == PASSED and "raw convolution outputs" in result.message
    assert "E5.7" in result.message  # kept by reference: in-place ReLUs would overwrite them


def test_step3_catches_the_books_extractor_that_skips_layers(solved):
    result = run(3, dict(solved, features_extractor=book_extractor))
    assert_wrong(result, "conv5_1 is 512x32x32", "skips the ReLUs and max-poolings", "E5.4", "512x14x14")


def test_step3_catches_an_extractor_that_detaches(solved):
    assert_wrong(run(3, dict(solved, features_extractor=detaching_extractor)), "carry no gradient", "torch.no_grad()")


def test_step3_catches_targets_with_a_graph(solved):
    content_img = solved["content_img"].clone().requires_grad_(True)
    model, _ = _reference_models()
    with_graph = post_relu_extractor(content_img, model, st.VGG19_LAYERS)  # not under torch.no_grad()
    assert_wrong(run(3, dict(solved, content_features=with_graph)), "`content_features` carries a computation graph")


def test_step3_is_not_done_without_the_features(solved):
    ns = {k: v for k, v in solved.items() if k not in ("content_features", "style_features")}
    assert run(3, ns).status == NOT_DONE


# --------------------------------------------------------------------------- step 4: the Gram matrix

def test_step4_passes_and_catches_unnormalised_and_transposed_gram_matrices(solved):
    assert run(4, solved).status == PASSED
    assert_wrong(run(4, dict(solved, gram_matrix=raw_gram)), "8 times too large", "E5.5")
    assert_wrong(run(4, dict(solved, gram_matrix=gram_over_positions)), "2 times too large", "H*W only")
    assert_wrong(run(4, dict(solved, gram_matrix=gram_transposed)), "4x4", "F @ F.T")


def test_step4_catches_style_targets_that_keep_a_graph(solved):
    model, _ = _reference_models()
    style = solved["style_img"].clone().requires_grad_(True)
    features = post_relu_extractor(style, model, st.VGG19_LAYERS)
    grams = {name: gram_matrix(features[name]) for name in st.STYLE_WEIGHTS}  # not under torch.no_grad()
    assert_wrong(run(4, dict(solved, style_grams=grams)), "carries a computation graph", "retain_graph=True")


def test_step4_checks_the_size_of_every_style_target(solved):
    grams = dict(solved["style_grams"], conv3_1=torch.zeros(4, 4))
    assert_wrong(run(4, dict(solved, style_grams=grams)), "style_grams['conv3_1']", f"{CHANNELS['conv3_1']} channels")


# --------------------------------------------------------------------------- step 5: the target image

def test_step5_passes_for_a_leaf_copy_and_catches_the_usual_mistakes(solved):
    assert run(5, solved).status == PASSED
    content = solved["content_img"]
    assert_wrong(run(5, dict(solved, target_img=content.clone())), "does not require gradients")
    assert_wrong(run(5, dict(solved, target_img=content)), "is `content_img` itself", ".clone()")
    non_leaf = content.clone().requires_grad_(True) * 1.0  # e.g. requires_grad_(True).to(device) on a GPU
    assert_wrong(run(5, dict(solved, target_img=non_leaf)), "not a leaf tensor")


# --------------------------------------------------------------------------- step 6: the losses

def make_losses(style_terms: str = "sum", swap: bool = False, item: bool = False):
    """compute_losses as the solution writes it, or with one of the typical mistakes."""
    def compute_losses(target_features, ns):
        content = torch.mean((target_features["conv4_2"] - ns["content_features"]["conv4_2"]) ** 2)
        style = 0
        for layer, weight in st.STYLE_WEIGHTS.items():
            term = weight * torch.mean((ns["gram_matrix"](target_features[layer]) - ns["style_grams"][layer]) ** 2)
            if style_terms == "last only":  # the book's bug: the total uses the last term
                style = term
            elif style_terms == "divided":  # the book's unused running sum, divided by d*h*w
                style = style + term / target_features[layer][0].numel()
            else:
                style = style + term
        a, b = (ns["beta"], ns["alpha"]) if swap else (ns["alpha"], ns["beta"])
        total = a * content + b * style
        return (content.item(), style.item(), total.item()) if item else (content, style, total)
    return compute_losses


@pytest.mark.parametrize("mistake, fragments", [
    (dict(style_terms="last only"), ("only the last layer's term", "E5.6")),
    (dict(style_terms="divided"), ("divided by d*h*w", "do not divide again")),
    (dict(swap=True), ("alpha and beta are swapped",)),
    (dict(item=True), ("one-number tensor",)),
])
def test_step6_catches_typical_mistakes(solved, mistake, fragments):
    ns = dict(solved)
    ns["compute_losses"] = lambda features: make_losses(**mistake)(features, ns)
    assert_wrong(run(6, ns), *fragments)


def test_step6_passes_for_the_sum_over_all_layers(solved):
    ns = dict(solved)
    ns["compute_losses"] = lambda features: make_losses()(features, ns)
    result = run(6, ns)
    assert result.status == PASSED and "all five layers" in result.message


# --------------------------------------------------------------------------- step 7: the loop

def tiny_loop(ns: dict, *, clamp: bool = True) -> dict:
    """A style-transfer-like loop on a tiny conv net, as the solution's loop is built."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).requires_grad_(False)
    target = ns["content_img"].clone().requires_grad_(True)
    goal = torch.rand(1, 4, *target.shape[-2:]) * 3
    optimizer = torch.optim.Adam([target], lr=0.5 if not clamp else 0.05)
    history = []
    for _ in range(ns["iterations"]):
        loss = torch.mean((net(target) - goal) ** 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if clamp:
            st.clamp_to_pixel_range_(target)
        history.append(loss.item())
    return dict(ns, history=history, target_img=target)


def test_step7_passes_when_the_loss_falls_and_the_target_stays_a_clamped_leaf(solved):
    result = run(7, tiny_loop(solved))
    assert result.status == PASSED and "fell from" in result.message


def test_step7_catches_a_loss_that_never_changes(solved):
    ns = tiny_loop(solved)  # e.g. the loss computed once, before the loop, and recorded every iteration
    assert_wrong(run(7, dict(ns, history=[ns["history"][0]] * ns["iterations"])), "never changes", "inside the loop")


def test_step7_catches_a_clamp_that_replaces_the_target(solved):
    ns = tiny_loop(solved)
    low, high = st.pixel_bounds(ns["target_img"])
    replaced = ns["target_img"].clamp(low, high)  # `target_img = target_img.clamp(...)`: a new, non-leaf tensor
    assert_wrong(run(7, dict(ns, target_img=replaced)), "no longer a leaf", "clamp_to_pixel_range_")


def test_step7_catches_pixels_out_of_range_and_a_wrong_history(solved):
    ns = tiny_loop(solved)
    outside = ns["target_img"].detach().clone()
    outside[0, 0, 0, 0] = 10.0
    assert_wrong(run(7, dict(ns, target_img=outside.requires_grad_(True))), "outside what a picture can hold", "E5.3")
    assert_wrong(run(7, dict(ns, history=ns["history"][:2])), "has 2 values for iterations = 4")
    assert_wrong(run(7, dict(ns, history=[1.0, 2.0, 3.0, 4.0])), "did not fall")


def test_step7_catches_a_clamp_to_0_1_in_normalised_units_and_loss_tensors_in_the_history(solved):
    ns = tiny_loop(solved)
    if float(ns["content_img"].min()) < 0:  # a normalised image has pixels below 0 to lose
        with torch.no_grad():
            ns["target_img"].clamp_(0, 1)
        assert_wrong(run(7, ns), "clamping to [0, 1]", "E5.3")
    ns = tiny_loop(solved)
    kept = [torch.tensor(v, requires_grad=True) * 1.0 for v in ns["history"]]
    assert_wrong(run(7, dict(ns, history=kept)), "total_loss.item()")
