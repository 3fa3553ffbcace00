"""The download registry, the mirror, the loaders and their errors on bad input."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from utils import data, standins

IDENTICAL = [e for e in data.REGISTRY.values() if e.in_mirror and e.mirror_sha256 is None]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("entry", data.REGISTRY.values(), ids=lambda e: e.name)
def test_registry_hash_matches_mirror_file(mirror, entry):
    if not entry.in_mirror:
        assert not (mirror / entry.mirror_relpath).exists()
        return
    expected = entry.mirror_sha256 or entry.sha256
    assert expected is not None, f"{entry.name}: a mirrored file needs a hash"
    assert sha256(mirror / entry.mirror_relpath) == expected


def test_registry_agrees_with_mirror_readme(mirror):
    readme = (mirror / "README.md").read_text()
    for entry in data.REGISTRY.values():
        if entry.in_mirror:
            assert (entry.mirror_sha256 or entry.sha256) in readme, entry.name


def test_fetch_copies_from_mirror_into_cache(use_mirror, empty_cache):
    path = data.fetch("alice")
    assert path == empty_cache / "datasets" / "alice.txt"
    assert sha256(path) == data.REGISTRY["alice"].sha256
    assert data.is_cached("alice")


def test_mirror_copy_that_differs_from_upstream_is_cached_under_its_own_name(use_mirror, empty_cache):
    path = data.fetch("credit_default")
    assert path.name == "mirror-default of credit card clients.xls"


def _fake_mirror(tmp_path: Path, content: bytes) -> Path:
    folder = tmp_path / "mirror"
    folder.mkdir()
    (folder / "alice.txt").write_bytes(content)
    return folder


@pytest.mark.parametrize("content", [b"", b"Alice was beginning to get very tired", b"\x00" * 1000],
                         ids=["empty", "truncated", "corrupt"])
def test_bad_file_fails_checksum_and_does_not_poison_cache(tmp_path, empty_cache, monkeypatch, mirror, content):
    monkeypatch.setenv("ADL_DATA_MIRROR", str(_fake_mirror(tmp_path, content)))
    with pytest.raises(data.DatasetUnavailableError, match="sha256"):
        data.fetch("alice")
    cache = empty_cache / "datasets"
    assert not any(cache.iterdir()), "a file that failed its checksum was left in the cache"
    # The good copy still comes through afterwards.
    monkeypatch.setenv("ADL_DATA_MIRROR", str(mirror))
    assert sha256(data.fetch("alice")) == data.REGISTRY["alice"].sha256


def test_corrupted_cached_file_is_replaced(use_mirror, empty_cache):
    path = data.fetch("amazon_reviews")
    path.write_text("garbage")
    assert sha256(data.fetch("amazon_reviews")) == data.REGISTRY["amazon_reviews"].sha256


def test_offline_run_finds_the_mirror_copy_an_earlier_run_cached(use_mirror, empty_cache, monkeypatch):
    first = data.fetch("credit_default")  # cached as "mirror-default of credit card clients.xls"
    monkeypatch.delenv("ADL_DATA_MIRROR")
    monkeypatch.setenv("ADL_OFFLINE", "1")
    assert data.is_cached("credit_default")
    assert data.fetch("credit_default") == first


def test_corrupt_cached_file_offline_is_reported_as_failing_its_check(use_mirror, empty_cache, monkeypatch):
    data.fetch("alice").write_text("Alice was begi")  # a download cut short
    monkeypatch.delenv("ADL_DATA_MIRROR")
    monkeypatch.setenv("ADL_OFFLINE", "1")
    with pytest.raises(data.DatasetUnavailableError) as info:
        data.fetch("alice")
    message = str(info.value)
    assert "failed its sha256 check" in message and "not used" in message and "ADL_DATA_MIRROR" in message
    assert "not in the cache" not in message


def test_corrupt_cached_archive_without_a_known_hash_is_removed_not_a_raw_error(empty_cache, monkeypatch, capsys):
    monkeypatch.delenv("ADL_DATA_MIRROR", raising=False)
    monkeypatch.setenv("ADL_OFFLINE", "1")
    archive = data.cache_dir() / "YearPredictionMSD.txt.zip"
    archive.write_bytes(b"PK\x03\x04 half a download")
    df = data.load_year_prediction(nrows=100)  # offline: the announced stand-in, not a BadZipFile
    out = capsys.readouterr().out
    assert "YearPredictionMSD.txt.zip cannot be read" in out and "removed" in out and "OFFLINE STAND-IN" in out
    assert not archive.exists() and df.shape == (100, 91)


def test_corrupt_archive_from_the_source_is_explained(tmp_path, empty_cache, monkeypatch, capsys):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "cifar10-jpg.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    monkeypatch.setenv("ADL_DATA_MIRROR", str(mirror))
    monkeypatch.setitem(data.REGISTRY, "cifar10_jpg", data.RemoteFile(
        "cifar10_jpg", "cifar10-jpg.zip", "http://example.invalid/c.zip", None, "test"))
    with pytest.raises(data.DatasetUnavailableError, match="still cannot be read.*damaged"):
        data.load_cifar10(train=False)
    assert "is fetched again" in capsys.readouterr().out


def test_missing_mirror_file_names_the_path(tmp_path, empty_cache, monkeypatch):
    monkeypatch.setenv("ADL_DATA_MIRROR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "alice.txt"))):
        data.fetch("alice")


def test_offline_without_cache_or_mirror_is_a_clear_error(empty_cache, monkeypatch):
    monkeypatch.delenv("ADL_DATA_MIRROR", raising=False)
    monkeypatch.setenv("ADL_OFFLINE", "1")
    with pytest.raises(data.DatasetUnavailableError, match="ADL_DATA_MIRROR") as info:
        data.fetch("energy")
    assert data.REGISTRY["energy"].url in str(info.value)


def test_failed_download_names_url_cache_and_mirror_variable(empty_cache, monkeypatch):
    monkeypatch.delenv("ADL_DATA_MIRROR", raising=False)
    monkeypatch.delenv("ADL_OFFLINE", raising=False)
    monkeypatch.setitem(data.REGISTRY, "energy", data.RemoteFile(
        "energy", "energydata_complete.csv", "http://127.0.0.1:9/nothing-here.csv", None, "test"))
    with pytest.raises(data.DatasetUnavailableError) as info:
        data.fetch("energy")
    message = str(info.value)
    assert "http://127.0.0.1:9/nothing-here.csv" in message and "ADL_DATA_MIRROR" in message
    assert str(empty_cache / "datasets") in message


def test_unknown_name_lists_the_registry():
    with pytest.raises(KeyError, match="energy"):
        data.fetch("imagenet")


@pytest.mark.parametrize("loader, shape", [
    (data.load_energy, (19735, 29)), (data.load_credit_default, (30000, 25)),
    (data.load_sales_weekly, (811, 107)), (data.load_amazon_reviews, (1000, 2)),
])
def test_loader_shapes(use_mirror, loader, shape):
    assert loader().shape == shape


def test_credit_default_matches_book(use_mirror):
    df = data.load_credit_default()
    assert list(df.columns[:3]) == ["ID", "LIMIT_BAL", "SEX"]
    assert round(df["default payment next month"].mean() * 100, 2) == 22.12


def test_text_loaders(use_mirror):
    text = data.load_alice()
    # Read as latin-1, one character per byte (Windows line ends become "\n"): a UTF-8 byte-order
    # mark would show up as "ï»¿", and a wrong encoding would change the count.
    raw = data.fetch("alice").read_bytes()
    assert len(text) == len(raw) - raw.count(b"\r\n") == 145_178
    assert text.startswith("ALICE was beginning to get very tired"), repr(text[:40])
    assert "\ufeff" not in text and "ï»¿" not in text
    reviews = data.load_amazon_reviews()
    assert reviews["sentiment"].mean() == 0.5


def test_wrong_shape_raises_value_error_naming_expectation(tmp_path, empty_cache, monkeypatch):
    (tmp_path / "energydata_complete.csv").write_text("date,Appliances,lights\n2016-01-11,60,30\n")
    monkeypatch.setenv("ADL_DATA_MIRROR", str(tmp_path))
    monkeypatch.setitem(data.REGISTRY, "energy", data.RemoteFile(
        "energy", "energydata_complete.csv", "http://example.invalid/x.csv", None, "test"))
    with pytest.raises(ValueError, match=r"expected shape \(19735, 29\)"):
        data.load_energy()


def test_missing_columns_raise_value_error():
    import pandas as pd

    with pytest.raises(ValueError, match="Appliances"):
        data.check_frame(pd.DataFrame({"a": [1]}), "energy", columns=["Appliances"])


def test_year_prediction_offline_stand_in_is_announced_and_schema_identical(empty_cache, monkeypatch, capsys):
    monkeypatch.setenv("ADL_OFFLINE", "1")
    df = data.load_year_prediction(nrows=2000)
    assert "OFFLINE STAND-IN" in capsys.readouterr().out
    assert df.shape == (2000, 91) and list(df.columns) == list(range(91))
    assert df[0].between(1922, 2011).all() and str(df[0].dtype) == "int64"
    assert df.equals(standins.synthetic_year_prediction(2000)), "the stand-in must be deterministic"
    # A regression can learn something from it: the year correlates with some features.
    assert df.corr()[0].drop(0).abs().max() > 0.3


def test_year_prediction_online_failure_is_not_silently_replaced(empty_cache, monkeypatch):
    monkeypatch.delenv("ADL_OFFLINE", raising=False)
    monkeypatch.delenv("ADL_DATA_MIRROR", raising=False)
    monkeypatch.setitem(data.REGISTRY, "year_prediction", data.RemoteFile(
        "year_prediction", "YearPredictionMSD.txt.zip", "http://127.0.0.1:9/y.zip", None, "t", in_mirror=False))
    with pytest.raises(data.DatasetUnavailableError):
        data.load_year_prediction(nrows=10)


def test_cifar10_from_mirror(use_mirror):
    train, test = data.load_cifar10(train=True), data.load_cifar10(train=False)
    assert (len(train), len(test)) == (50_000, 10_000)
    assert train.classes == list(data.CIFAR10_CLASSES) and len(set(train.targets)) == 10
    assert train.data.shape == (50_000, 32, 32, 3)
    image, label = train[0]
    assert isinstance(image, Image.Image) and image.size == (32, 32) and 0 <= label < 10
    import torchvision.transforms as T

    tensor, _ = data.load_cifar10(train=False, transform=T.ToTensor())[0]
    assert tuple(tensor.shape) == (3, 32, 32)


# --------------------------------------------------------------------------- images

@pytest.mark.parametrize("name", data.STYLE_IMAGES)
def test_style_images_load_as_rgb(use_mirror, name):
    assert data.load_image(name).mode == "RGB"


@pytest.mark.parametrize("mode", ["RGBA", "L", "P", "LA", "CMYK"])
def test_image_modes_are_converted_to_rgb(tmp_path, mode):
    path = tmp_path / f"img.{'jpg' if mode == 'CMYK' else 'png'}"
    Image.new(mode, (8, 6)).save(path)
    img = data.load_image(path)
    assert img.mode == "RGB" and img.size == (8, 6)


def test_unsupported_image_mode_is_refused(tmp_path):
    path = tmp_path / "deep.png"
    Image.new("I;16", (4, 4)).save(path)
    with pytest.raises(ValueError, match="mode"):
        data.load_image(path)


def test_missing_image_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="dog, landscape, matisse, monet"):
        data.load_image(tmp_path / "nope.jpg")


def test_non_image_file_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("not an image")
    with pytest.raises(ValueError, match="not an image"):
        data.load_image(path)


def test_relative_mirror_path_is_taken_from_project_root(monkeypatch):
    monkeypatch.setenv("ADL_DATA_MIRROR", "../shared/datasets")
    assert data.mirror_dir() == (data.PROJECT_ROOT / "../shared/datasets").resolve()


def test_vgg_stand_in_offline_is_announced(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("ADL_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    features = standins.vgg19_features()
    assert "OFFLINE STAND-IN" in capsys.readouterr().out
    assert len(features) == 37
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_a_missing_image_inside_the_project_is_named_relative_to_it():
    from utils.data import PROJECT_ROOT, load_image

    with pytest.raises(FileNotFoundError) as err:
        load_image(PROJECT_ROOT / "chapters" / "no_such_picture.jpg")
    assert "Image not found: chapters/no_such_picture.jpg." in str(err.value)
    assert str(PROJECT_ROOT) not in str(err.value)
