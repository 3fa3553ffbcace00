import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
import torchvision.transforms as T
from PIL import Image
from torch import nn

from utils import fit
from utils.cifar import (
    BOOK_MEAN,
    BOOK_STD,
    BatchAugmentation,
    CifarBatches,
    as_uint8_tensors,
    confusion_matrix,
    normalize,
    per_class_accuracy,
    plot_confusion_matrix,
    random_grayscale,
    random_horizontal_flip,
    to_grayscale,
    train_val_split,
)


class FakeCifar:
    """The two attributes the pipeline reads, like torchvision's CIFAR10 and utils.load_cifar10."""

    def __init__(self, n=64, seed=0, size=8):
        rng = np.random.default_rng(seed)
        self.data = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
        self.targets = rng.integers(0, 10, size=n).tolist()


def pil_batch(data, transform):
    """The book's way: one PIL image at a time through a torchvision transform, then stacked."""
    return torch.stack([transform(Image.fromarray(img)) for img in data])


def as_uint8(pil_images):
    return torch.stack([torch.from_numpy(np.array(img)).permute(2, 0, 1) for img in pil_images])


# --------------------------------------------------------------------------- decoding

def test_as_uint8_tensors_moves_channels_first_without_changing_pixels():
    ds = FakeCifar(n=5)
    images, labels = as_uint8_tensors(ds)
    assert images.dtype == torch.uint8 and tuple(images.shape) == (5, 3, 8, 8) and images.is_contiguous()
    assert labels.dtype == torch.int64 and labels.tolist() == ds.targets
    assert torch.equal(images[2].permute(1, 2, 0), torch.from_numpy(ds.data[2]))


def test_as_uint8_tensors_refuses_what_it_cannot_read():
    with pytest.raises(TypeError, match="data and .targets"):
        as_uint8_tensors([1, 2, 3])
    bad = FakeCifar(n=4)
    bad.data = bad.data.astype(np.float32)
    with pytest.raises(ValueError, match="uint8"):
        as_uint8_tensors(bad)
    short = FakeCifar(n=4)
    short.targets = short.targets[:3]
    with pytest.raises(ValueError, match="targets"):
        as_uint8_tensors(short)


# --------------------------------------------------------------------------- split

def test_split_is_the_books_80_20_disjoint_and_complete():
    train, val = train_val_split(50_000, 0.2, seed=0)
    assert (len(train), len(val)) == (40_000, 10_000)
    assert len(set(train.tolist()) & set(val.tolist())) == 0
    assert sorted(train.tolist() + val.tolist()) == list(range(50_000))
    assert not torch.equal(val[:100], torch.arange(100)), "the indices are shuffled"


def test_split_is_reproducible_and_depends_on_the_seed():
    a, b = train_val_split(1000, seed=3), train_val_split(1000, seed=3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], train_val_split(1000, seed=4)[1])
    assert len(train_val_split(101, 0.2)[1]) == 20, "floor(0.2 * 101)"


@pytest.mark.parametrize("n, fraction", [(1, 0.2), (100, 0.0), (100, 1.0), (3, 0.2)])
def test_split_refuses_degenerate_requests(n, fraction):
    with pytest.raises(ValueError):
        train_val_split(n, fraction)


# --------------------------------------------------------------------------- transforms match torchvision

def test_normalize_is_bit_for_bit_totensor_plus_normalize():
    ds = FakeCifar(n=20, size=32)
    book = pil_batch(ds.data, T.Compose([T.ToTensor(), T.Normalize(BOOK_MEAN, BOOK_STD)]))
    assert torch.equal(normalize(as_uint8_tensors(ds)[0]), book)
    other = T.Compose([T.ToTensor(), T.Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))])
    assert torch.equal(normalize(as_uint8_tensors(ds)[0], (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)),
                       pil_batch(ds.data, other))


def test_normalize_refuses_floats_and_wrong_channel_counts():
    with pytest.raises(ValueError, match="uint8"):
        normalize(torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match="channels"):
        normalize(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), (0.5,), (0.5,))


def test_grayscale_matches_pils_conversion_exactly():
    ds = FakeCifar(n=50, size=16, seed=1)
    book = as_uint8([T.RandomGrayscale(p=1.0)(Image.fromarray(img)) for img in ds.data])
    mine = to_grayscale(as_uint8_tensors(ds)[0])
    assert torch.equal(mine, book)
    assert torch.equal(mine[:, 0], mine[:, 2]), "three equal channels"


def test_flip_with_p1_matches_torchvision_and_p0_changes_nothing():
    ds = FakeCifar(n=10)
    images = as_uint8_tensors(ds)[0]
    book = as_uint8([T.RandomHorizontalFlip(p=1.0)(Image.fromarray(img)) for img in ds.data])
    assert torch.equal(random_horizontal_flip(images, 1.0), book)
    assert torch.equal(random_horizontal_flip(images, 0.0), images)
    assert torch.equal(random_grayscale(images, 0.0), images)


def test_random_augmentations_hit_about_p_of_the_images_and_leave_the_input_alone():
    images = as_uint8_tensors(FakeCifar(n=2000, size=4, seed=2))[0]
    before = images.clone()
    gen = torch.Generator().manual_seed(0)
    flipped = random_horizontal_flip(images, 0.5, gen)
    share_flipped = (flipped != images).flatten(1).any(1).float().mean().item()
    grey = random_grayscale(images, 0.1, gen)
    share_grey = (grey != images).flatten(1).any(1).float().mean().item()
    assert torch.equal(images, before), "the input batch is not modified in place"
    assert 0.45 < share_flipped < 0.55
    assert 0.07 < share_grey < 0.13


def test_batch_augmentation_is_reproducible_from_the_generator_seed():
    images = as_uint8_tensors(FakeCifar(n=200))[0]
    aug = BatchAugmentation()
    a = aug(images, torch.Generator().manual_seed(5))
    b = aug(images, torch.Generator().manual_seed(5))
    c = aug(images, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="probability"):
        BatchAugmentation(flip_p=1.5)(images)


# --------------------------------------------------------------------------- batches

def test_batches_visit_every_image_once_per_pass_in_a_new_order():
    images = as_uint8_tensors(FakeCifar(n=250))[0]
    ids = torch.arange(250)  # use the label as an image id
    batches = CifarBatches(images, ids, batch_size=100, shuffle=True, seed=0)
    assert len(batches) == 3 and batches.num_images == 250
    first = [y for _, y in batches]
    assert [len(y) for y in first] == [100, 100, 50]
    assert sorted(torch.cat(first).tolist()) == list(range(250))
    second = torch.cat([y for _, y in batches])
    assert not torch.equal(torch.cat(first), second), "a new order every epoch"
    again = torch.cat([y for _, y in CifarBatches(images, ids, batch_size=100, shuffle=True, seed=0)])
    assert torch.equal(torch.cat(first), again), "the same seed gives the same order"


def test_unaugmented_batches_are_the_normalised_images_every_time():
    ds = FakeCifar(n=30)
    images, labels = as_uint8_tensors(ds)
    val = CifarBatches(images, labels, batch_size=7)
    one = torch.cat([x for x, _ in val])
    two = torch.cat([x for x, _ in val])
    assert one.dtype == torch.float32 and torch.equal(one, normalize(images))
    assert torch.equal(one, two), "validation sees the same images on every pass"
    assert torch.equal(torch.cat([y for _, y in val]), labels)


def test_augmented_batches_differ_between_passes_but_keep_the_labels():
    images, labels = as_uint8_tensors(FakeCifar(n=40))
    train = CifarBatches(images, labels, batch_size=40, augment=BatchAugmentation(0.5, 0.1), seed=1)
    (x1, y1), = list(train)
    (x2, y2), = list(train)
    assert torch.equal(y1, labels) and torch.equal(y2, labels)
    assert not torch.equal(x1, x2)


def test_drop_last_and_bad_arguments():
    images, labels = as_uint8_tensors(FakeCifar(n=25))
    assert len(CifarBatches(images, labels, batch_size=10, drop_last=True)) == 2
    assert sum(len(y) for _, y in CifarBatches(images, labels, batch_size=10, drop_last=True)) == 20
    with pytest.raises(ValueError, match="labels"):
        CifarBatches(images, labels[:3])
    with pytest.raises(ValueError, match="uint8"):
        CifarBatches(images.float(), labels)
    with pytest.raises(ValueError, match="batch_size"):
        CifarBatches(images, labels, batch_size=0)


def test_batches_train_a_model_through_utils_fit():
    # Two classes that differ by brightness: a tiny CNN must learn them from the batches.
    rng = np.random.default_rng(0)
    labels = torch.from_numpy(rng.integers(0, 2, size=400))
    base = rng.integers(0, 120, size=(400, 3, 8, 8))
    images = torch.from_numpy((base + 130 * labels.numpy()[:, None, None, None]).astype(np.uint8))
    train = CifarBatches(images, labels, batch_size=50, shuffle=True, augment=BatchAugmentation())
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 2), nn.LogSoftmax(dim=1))
    from utils import accuracy

    history = fit(model, train, nn.NLLLoss(), torch.optim.Adam(model.parameters(), lr=0.05), epochs=5,
                  val_batches=CifarBatches(images, labels, batch_size=100), metric=accuracy,
                  device=torch.device("cpu"), progress=False)
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.val_metric[-1] > 0.95


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_normalize_on_cuda_equals_normalize_on_the_cpu():
    every_value = torch.arange(256, dtype=torch.uint8).repeat(3, 1).view(1, 3, 16, 16)
    assert torch.equal(normalize(every_value.cuda()).cpu(), normalize(every_value))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batches_equal_cpu_batches():
    images, labels = as_uint8_tensors(FakeCifar(n=64))
    cpu = list(CifarBatches(images, labels, 16, shuffle=True, augment=BatchAugmentation(), seed=3))
    gpu = list(CifarBatches(images, labels, 16, shuffle=True, augment=BatchAugmentation(), seed=3, device="cuda"))
    for (xc, yc), (xg, yg) in zip(cpu, gpu):
        assert xg.device.type == "cuda" and torch.equal(xc, xg.cpu()) and torch.equal(yc, yg.cpu())


# --------------------------------------------------------------------------- evaluation

def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    targets = torch.tensor([0, 0, 1, 1, 2, 2])
    predicted = torch.tensor([0, 1, 1, 1, 0, 2])
    matrix = confusion_matrix(predicted, targets, 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert per_class_accuracy(matrix).tolist() == [0.5, 1.0, 0.5]
    scores = torch.nn.functional.one_hot(predicted, 3).float()
    assert torch.equal(confusion_matrix(scores, targets, 3), matrix), "scores are reduced with argmax"
    with pytest.raises(ValueError, match="class indices"):
        confusion_matrix(torch.tensor([3]), torch.tensor([0]), 3)
    with pytest.raises(ValueError, match="predictions"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0]), 3)


def test_plot_confusion_matrix_labels_its_axes():
    fig = plot_confusion_matrix(torch.tensor([[3, 1], [0, 4]]), ["cat", "dog"])
    ax = fig.axes[0]
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog"]


# --------------------------------------------------------------------------- the real data

def test_cifar10_from_the_mirror_decodes_into_the_books_tensors(use_mirror):
    from utils import load_cifar10

    train = load_cifar10(train=True)
    images, labels = as_uint8_tensors(train)
    assert tuple(images.shape) == (50_000, 3, 32, 32) and tuple(labels.shape) == (50_000,)
    assert torch.bincount(labels).tolist() == [5000] * 10
    book = T.Compose([T.ToTensor(), T.Normalize(BOOK_MEAN, BOOK_STD)])
    assert torch.equal(normalize(images[:3]), torch.stack([book(train[i][0]) for i in range(3)]))


def _tiny_jpeg_mirror(folder):
    """A mirror folder with a cifar10-jpg.zip of six images laid out like the real one."""
    import hashlib
    import io
    import zipfile

    folder.mkdir()
    with zipfile.ZipFile(folder / "cifar10-jpg.zip", "w") as archive:
        for i, (split, label) in enumerate([("train", "cat"), ("train", "dog"), ("train", "ship"),
                                            ("test", "cat"), ("test", "frog"), ("test", "truck")]):
            buffer = io.BytesIO()
            Image.new("RGB", (32, 32), (40 * i, 255 - 40 * i, 128)).save(buffer, format="JPEG")
            archive.writestr(f"cifar10/{split}/{label}/{i:04d}.jpg", buffer.getvalue())
    return hashlib.sha256((folder / "cifar10-jpg.zip").read_bytes()).hexdigest()


@pytest.mark.parametrize("damage", ["half-written", "garbage", "wrong arrays"])
def test_corrupt_decoded_cifar_cache_is_detected_and_rebuilt(tmp_path, empty_cache, monkeypatch, capsys, damage):
    from utils import data

    sha = _tiny_jpeg_mirror(tmp_path / "mirror")
    monkeypatch.setenv("ADL_DATA_MIRROR", str(tmp_path / "mirror"))
    monkeypatch.setitem(data.REGISTRY, "cifar10_jpg", data.RemoteFile(
        "cifar10_jpg", "cifar10-jpg.zip", "http://example.invalid/c.tar.gz", None, "test", mirror_sha256=sha))
    first = data.load_cifar10(train=True)
    decoded = data.cache_dir() / "cifar10-mirror.npz"
    assert decoded.is_file() and len(first) == 3
    if damage == "half-written":
        decoded.write_bytes(decoded.read_bytes()[: decoded.stat().st_size // 2])
    elif damage == "garbage":
        decoded.write_bytes(b"\x00" * 1000)
    else:
        np.savez(decoded, train_images=np.zeros((3, 8, 8), np.uint8), train_labels=np.zeros(3, np.int64))
    capsys.readouterr()
    again = data.load_cifar10(train=True)
    assert "cifar10-mirror.npz is corrupt or incomplete" in capsys.readouterr().out
    assert np.array_equal(again.data, first.data) and again.targets == first.targets == [3, 5, 8]
    assert len(data.load_cifar10(train=False)) == 3  # the rebuilt cache serves the other split too


# --------------------------------------------------------------------------- random crops, mixed precision

def test_random_crop_is_a_shifted_window_of_the_zero_padded_image_like_torchvision():
    from utils.cifar import random_crop

    images = torch.randint(1, 256, (64, 3, 32, 32), dtype=torch.uint8)  # no zeros, so padding is recognisable
    out = random_crop(images, padding=4, generator=torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    offsets = set()
    for k in range(len(images)):
        matches = [(t, left) for t in range(9) for left in range(9)
                   if torch.equal(out[k], padded[k, :, t:t + 32, left:left + 32])]
        assert matches, f"image {k} is not a 32x32 window of its padded image"
        offsets.add(matches[0])
    assert len(offsets) > 20, "the crops should move the images by different offsets"
    # torchvision's RandomCrop with the same padding gives windows of the same kind
    crop = T.RandomCrop(32, padding=4)
    reference = crop(images[0])
    assert any(torch.equal(reference, padded[0, :, t:t + 32, left:left + 32]) for t in range(9) for left in range(9))
    assert torch.equal(random_crop(images, padding=0), images)
    with pytest.raises(ValueError, match="padding"):
        random_crop(images, padding=-1)


def test_batch_augmentation_with_crop_keeps_shape_and_is_reproducible():
    images = torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8)
    augment = BatchAugmentation(crop_padding=4)
    a = augment(images, torch.Generator().manual_seed(1))
    b = augment(images, torch.Generator().manual_seed(1))
    assert a.shape == images.shape and torch.equal(a, b) and not torch.equal(a, images)
    assert BatchAugmentation().crop_padding == 0  # the book's augmentation is unchanged by default


def test_mixed_precision_dtype_follows_the_hardware():
    from utils.cifar import mixed_precision_dtype

    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert mixed_precision_dtype("cpu") == (torch.bfloat16 if native else None)
    assert mixed_precision_dtype("mps") is None
    assert mixed_precision_dtype("cuda") is None  # slower than float32 for these small networks (docstring)


def test_native_bfloat16_reports_the_hardware_and_the_solutions_use_it_on_the_cpu_only(monkeypatch):
    from utils.cifar import mixed_precision_dtype, native_bfloat16

    cpu_native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert native_bfloat16("cpu") == cpu_native and not native_bfloat16("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert native_bfloat16("cuda") and mixed_precision_dtype("cuda") is None  # supported, but not worth it
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert not native_bfloat16("cuda")


def test_autocast_wrapper_returns_float32_and_trains_like_the_model():
    from utils.cifar import Autocast

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
    x = torch.randn(5, 3, 8, 8)
    plain = Autocast(net, "cpu", None)
    assert torch.equal(plain(x), net(x))  # dtype None: a pass-through
    low = Autocast(net, "cpu", torch.bfloat16)
    out = low(x)
    assert out.dtype == torch.float32 and torch.allclose(out, net(x), atol=0.1)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in net.parameters())
    assert list(low.parameters()) == list(net.parameters())
