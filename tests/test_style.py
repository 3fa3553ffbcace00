"""utils.style: images in and out, the VGG-19 layer map, the feature extractor, Gram matrices, losses, the loop.

Random VGG-19 weights (``weights=None``) are enough: the tests check structure and mechanics, not pictures.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from utils import style as st


@pytest.fixture(scope="module")
def vgg() -> nn.Sequential:
    torch.manual_seed(0)
    return st.load_vgg19_features(weights=None)


@pytest.fixture
def rgb_file(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)).save(path)
    return path


# --------------------------------------------------------------------------- images

@pytest.mark.parametrize("mode", ["RGBA", "L", "P", "LA"])
def test_any_mode_loads_as_three_normalised_channels(tmp_path, rgb_file, mode):
    path = tmp_path / f"img_{mode}.png"
    Image.open(rgb_file).convert(mode).save(path)
    tensor = st.load_image_tensor(path, size=40)
    assert tuple(tensor.shape) == (1, 3, 40, 60)  # shorter side resized, aspect ratio kept


def test_normalisation_uses_imagenet_statistics(tmp_path):
    path = tmp_path / "grey.png"
    Image.new("RGB", (50, 50), (124, 116, 104)).save(path)  # about the ImageNet mean colour
    tensor = st.load_image_tensor(path, size=32)
    expected = (torch.tensor([124, 116, 104]) / 255 - torch.tensor(st.IMAGENET_MEAN)) / torch.tensor(st.IMAGENET_STD)
    assert torch.allclose(tensor[0, :, 0, 0], expected, atol=1e-4)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="Image not found"):
        st.load_image_tensor(tmp_path / "nope.jpg")


def test_too_small_size_is_refused():
    with pytest.raises(ValueError, match="too small"):
        st.image_transform(16)


def test_inverse_transform_round_trips_and_clamps(rgb_file):
    tensor = st.load_image_tensor(rgb_file, size=60)  # the file is 90x60: already 60 px on its shorter side
    assert tuple(tensor.shape) == (1, 3, 60, 90)
    back = np.asarray(st.tensor_to_pil(tensor), dtype=np.int16)
    original = np.asarray(Image.open(rgb_file), dtype=np.int16)
    assert back.shape == original.shape
    # every pixel comes back: only the float -> 8-bit conversion may cost one step
    assert np.abs(back - original).max() <= 1
    # and the comparison can fail: an image that is not the original differs by far more
    assert np.abs(np.asarray(st.tensor_to_pil(-tensor), dtype=np.int16) - original).max() > 100
    # out of range: a value just above white must stay white, not wrap around to black
    low, high = st.pixel_bounds(tensor)
    bright = high.expand(1, 3, 4, 4) + 0.5
    dark = low.expand(1, 3, 4, 4) - 0.5
    assert np.asarray(st.tensor_to_pil(bright)).min() == 255
    assert np.asarray(st.tensor_to_pil(dark)).max() == 0
    shown = st.to_display(bright)
    assert shown.shape == (4, 4, 3) and shown.max() <= 1.0


def test_clamp_to_pixel_range_keeps_values_representable():
    image = torch.randn(1, 3, 8, 8) * 10
    image.requires_grad_(True)
    st.clamp_to_pixel_range_(image)
    low, high = st.pixel_bounds(image)
    assert bool((image >= low - 1e-6).all()) and bool((image <= high + 1e-6).all())
    assert image.requires_grad


def test_save_image_writes_into_outputs(tmp_path, monkeypatch, rgb_file):
    monkeypatch.setattr(st, "OUTPUT_DIR", tmp_path / "ch05")
    path = st.save_image(st.load_image_tensor(rgb_file, size=32), "x.png")
    assert path.parent == tmp_path / "ch05" and Image.open(path).size == (48, 32)


# --------------------------------------------------------------------------- network and layer map

def test_model_is_frozen_in_eval_mode_without_inplace_relus(vgg):
    assert not vgg.training
    assert not any(p.requires_grad for p in vgg.parameters())
    relus = [m for m in vgg if isinstance(m, nn.ReLU)]
    assert len(relus) == 16 and not any(m.inplace for m in relus)


def test_layer_map_matches_torchvision_vgg19(vgg):
    names = st.vgg19_layer_names(vgg)
    assert len(names) == 37
    assert {index: names[index] for index in st.VGG19_LAYERS} == st.VGG19_LAYERS
    assert names["1"] == "relu1_1" and names["4"] == "pool1" and names["36"] == "pool5"
    assert st.CONTENT_LAYER in st.VGG19_LAYERS.values()
    assert set(st.STYLE_WEIGHTS) <= set(st.VGG19_LAYERS.values())


def test_feature_shapes_for_a_224_input(vgg):
    with torch.no_grad():
        features = st.extract_features(torch.randn(1, 3, 224, 224), vgg)
    shapes = {name: tuple(f.shape[1:]) for name, f in features.items()}
    assert shapes == {"conv1_1": (64, 224, 224), "conv2_1": (128, 112, 112), "conv3_1": (256, 56, 56),
                      "conv4_1": (512, 28, 28), "conv4_2": (512, 28, 28), "conv5_1": (512, 14, 14)}


def test_features_after_relu_are_non_negative_and_before_relu_are_not(vgg):
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        after = st.extract_features(x, vgg, {"0": "conv1_1"})["conv1_1"]
        before = st.extract_features(x, vgg, {"0": "conv1_1"}, after_relu=False)["conv1_1"]
    assert after.min() >= 0 and before.min() < 0
    assert torch.equal(after, before.clamp(min=0))
    assert torch.allclose(before, vgg[0](x))


def test_extractor_runs_every_layer_up_to_the_deepest(vgg):
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = vgg[:30](x)  # up to and including relu5_1
        got = st.extract_features(x, vgg)["conv5_1"]
    assert torch.allclose(got, expected)


def test_extractor_refuses_inplace_relus_for_raw_conv_outputs():
    torch.manual_seed(0)
    from torchvision.models import vgg19

    raw = vgg19(weights=None).features.eval()  # torchvision's in-place ReLUs
    with pytest.raises(ValueError, match="in-place"):
        st.extract_features(torch.randn(1, 3, 32, 32), raw, after_relu=False)


def test_extractor_rejects_bad_inputs(vgg):
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        st.extract_features(torch.randn(3, 32, 32), vgg)
    with pytest.raises(ValueError, match="not a convolution"):
        st.extract_features(torch.randn(1, 3, 32, 32), vgg, {"1": "relu1_1"})


# --------------------------------------------------------------------------- Gram matrix and losses

def test_gram_matrix_of_a_known_tensor():
    features = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]])  # C=2, H=W=2
    # channel vectors (1, 2, 3, 4) and (0, 1, 0, 1): dot products 30, 6, 6, 2, divided by C*H*W = 8
    expected = torch.tensor([[30.0, 6.0], [6.0, 2.0]]) / 8
    assert torch.allclose(st.gram_matrix(features), expected)
    assert torch.allclose(st.gram_matrix(features.unsqueeze(0))[0], expected)


def test_gram_matrix_does_not_grow_with_image_size():
    tile = torch.rand(1, 8, 5, 5)
    bigger = tile.repeat(1, 1, 4, 4)  # the same texture on 16 times the area
    assert torch.allclose(st.gram_matrix(tile), st.gram_matrix(bigger), atol=1e-6)


def test_style_loss_sums_every_weighted_layer():
    torch.manual_seed(0)
    target = {name: torch.rand(1, 4, 6, 6) for name in st.STYLE_WEIGHTS}
    grams = {name: st.gram_matrix(torch.rand(1, 4, 6, 6)) for name in st.STYLE_WEIGHTS}
    per_layer = {name: torch.mean((st.gram_matrix(target[name]) - grams[name]) ** 2) for name in st.STYLE_WEIGHTS}
    expected = sum(w * per_layer[name] for name, w in st.STYLE_WEIGHTS.items())
    assert torch.allclose(st.style_loss(target, grams), expected)
    last_only = st.STYLE_WEIGHTS["conv5_1"] * per_layer["conv5_1"]
    assert not torch.allclose(st.style_loss(target, grams), last_only)


def test_content_and_total_loss():
    a, b = torch.zeros(1, 2, 3, 3), torch.ones(1, 2, 3, 3)
    assert st.content_loss(a, b).item() == pytest.approx(1.0)
    assert st.total_loss(torch.tensor(2.0), torch.tensor(3e-6), alpha=1, beta=1e6).item() == pytest.approx(5.0)
    with pytest.raises(ValueError, match="shape"):
        st.content_loss(a, torch.ones(1, 2, 4, 4))


# --------------------------------------------------------------------------- the optimisation loop

@pytest.fixture(scope="module")
def images():
    torch.manual_seed(1)
    return torch.randn(1, 3, 48, 64) * 0.5, torch.randn(1, 3, 40, 40) * 0.5


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_total_loss_decreases_and_image_stays_in_range(vgg, images, optimizer):
    content, style = images
    lr = 0.02 if optimizer == "adam" else None
    run = st.transfer_style(vgg, content, style, iterations=6, optimizer=optimizer, lr=lr, snapshot_every=3,
                            progress=False)
    assert len(run.losses) == len(run.content_losses) == len(run.style_losses) == 6
    assert run.final_loss < run.initial_loss
    assert run.content_losses[0] == pytest.approx(0.0, abs=1e-12)  # the target starts as the content image
    assert tuple(run.image.shape) == tuple(content.shape) and not run.image.requires_grad
    low, high = st.pixel_bounds(run.image)
    assert bool((run.image >= low - 1e-5).all()) and bool((run.image <= high + 1e-5).all())
    assert [i for i, _ in run.snapshots] == [0, 3, 6]
    assert run.seconds_per_iteration > 0


def test_lbfgs_keeps_going_when_the_loss_is_tiny(vgg, images):
    content, style = images
    # the default balance (alpha 1, beta 1e6) scaled down a million times: same problem, tiny gradients
    run = st.transfer_style(vgg, content, style, iterations=6, optimizer="lbfgs", alpha=1e-6, beta=1.0,
                            progress=False)
    assert run.initial_loss < 1e-5  # gradients far below torch's default tolerance_grad of 1e-7
    assert run.final_loss < 0.9 * run.initial_loss


def test_book_adam_settings_decrease_the_loss_too(vgg, images):
    content, style = images
    run = st.transfer_style(vgg, content, style, iterations=4, progress=False)  # Adam, lr 0.001
    assert run.losses == sorted(run.losses, reverse=True) and run.final_loss < run.initial_loss


def test_loop_rejects_bad_arguments(vgg, images):
    content, style = images
    with pytest.raises(ValueError, match="optimizer"):
        st.transfer_style(vgg, content, style, iterations=1, optimizer="sgd", progress=False)
    with pytest.raises(ValueError, match="iterations"):
        st.transfer_style(vgg, content, style, iterations=0, progress=False)
    with pytest.raises(KeyError, match="unknown layers"):
        st.transfer_style(vgg, content, style, iterations=1, content_layer="conv9_9", progress=False)


# --------------------------------------------------------------------------- speed: layout and Gram backward

def test_gram_matrix_gradient_is_exact_in_both_layouts():
    torch.manual_seed(0)
    maps = torch.randn(2, 5, 4, 3, dtype=torch.float64)
    for layout in (torch.contiguous_format, torch.channels_last):
        x = maps.clone(memory_format=layout).requires_grad_(True)
        assert torch.autograd.gradcheck(st.gram_matrix, (x,))
    # the same matrix whatever the layout, and against the textbook formula F F^T / (C H W)
    flat = maps.flatten(2)
    expected = flat @ flat.transpose(1, 2) / (5 * 4 * 3)
    assert torch.allclose(st.gram_matrix(maps.clone(memory_format=torch.channels_last)), expected)
    # the backward of a non-symmetric upstream gradient uses both dG and dG^T
    x = maps.clone().requires_grad_(True)
    weights = torch.randn(2, 5, 5, dtype=torch.float64)
    (st.gram_matrix(x) * weights).sum().backward()
    reference = maps.clone().requires_grad_(True)
    ((reference.flatten(2) @ reference.flatten(2).transpose(1, 2) / 60) * weights).sum().backward()
    assert torch.allclose(x.grad, reference.grad)


def test_preferred_memory_format_is_channels_last_on_cpu_only():
    assert st.preferred_memory_format("cpu") == torch.channels_last
    assert st.preferred_memory_format(None) == torch.channels_last
    assert st.preferred_memory_format(torch.device("cuda")) == torch.contiguous_format


def test_loop_gives_the_same_losses_in_either_layout(vgg, images):
    content, style = images
    runs = [st.transfer_style(vgg, content, style, iterations=3, progress=False, memory_format=layout)
            for layout in (torch.contiguous_format, torch.channels_last)]
    assert runs[0].losses == pytest.approx(runs[1].losses, rel=1e-5)
    assert runs[1].image.is_contiguous()  # handed back in the default layout, whatever the loop used
    assert len(runs[1].seconds) == 3 and runs[1].seconds == sorted(runs[1].seconds)
    assert runs[1].seconds[-1] == pytest.approx(3 * runs[1].seconds_per_iteration, rel=0.5)


def test_loop_runs_the_network_once_per_iteration(vgg, images, monkeypatch):
    content, style = images
    calls = []
    first = vgg[0]
    handle = first.register_forward_hook(lambda module, inputs, output: calls.append(torch.is_grad_enabled()))
    try:
        st.transfer_style(vgg, content, style, iterations=4, progress=False)
    finally:
        handle.remove()
    # two fixed targets without a graph, one pass per iteration, one for the final image's loss
    assert calls == [False, False] + [True] * 4 + [False]
