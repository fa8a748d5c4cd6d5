"""Data for the models: the bundled digits, MNIST-style IDX files, and the user's own arrays.

Every loader hands back samples as rows: ``X`` has shape (n, d) with one
flattened image (or feature vector) per row, and labels ``y`` have shape (n,),
dtype int64. The bundled and IDX loaders scale pixels to float32 in [0, 1];
``load_array`` returns the user's numbers as stored, with the columns they chose
(:mod:`npae.data.tables`). Nothing here downloads anything: data comes from the
package, from a Debian package, or from the user.
"""

from __future__ import annotations

import gzip
import math
import os
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import checks
from ..files.archive import Archive, FileRefused
from .batches import FlatRows, RowView
from .scaling import Standard
from .tables import choose_columns, read_csv

DIGITS_PATH = Path(__file__).with_name("digits.npz")
DIGITS_TEST_SIZE = 297
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
MNIST_FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
               "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}

# IDX type code -> element type; IDX stores multi-byte numbers big-endian.
IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
GZIP_MAGIC = b"\x1f\x8b"
TrainTest = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


class Dataset(NamedTuple):
    """A train/test pair: X_* (n, d), y_* (n,) int64 or None; image_shape (h, w) with h * w == d,
    or None; label_names[k] the name of label k, or None; scaling the standard scaling its
    parts are seen through (:func:`prepared`), or None."""

    X_train: np.ndarray
    y_train: np.ndarray | None
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    image_shape: tuple[int, int] | None
    name: str
    label_names: tuple[str, ...] | None = None
    scaling: Standard | None = None


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The bundled UCI optical handwritten digits (see ``npae/data/README.md``).

    Returns X: (1797, 64) float32 in [0, 1] (8x8 images, row-major, raw 0..16 / 16)
    and y: (1797,) int64 in 0..9.
    """
    with np.load(DIGITS_PATH, allow_pickle=False) as archive:
        images, labels = archive["images"], archive["labels"]
    return images.astype(np.float32) / np.float32(16), labels.astype(np.int64)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (the MNIST format), raw or gzipped (told apart by magic bytes).

    Header: two zero bytes, a type code (08 u1, 09 i1, 0B i2, 0C i4, 0D f4, 0E f8),
    the number of dimensions k >= 1, then k big-endian uint32 sizes. Returns an
    array of that shape and type in native byte order. The payload is read up to
    the size the header announces and one byte more (to tell "too long"), so a
    stream that inflates beyond it costs nothing; a bad magic number, a payload
    of the wrong size and a corrupt gzip stream are a ValueError naming the file.
    """
    path = Path(path)
    with open(path, "rb") as f:
        is_gzip = f.read(2) == GZIP_MAGIC
    try:
        with (gzip.open if is_gzip else open)(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in IDX_DTYPES or head[3] < 1:
                raise ValueError(f"{path}: not an IDX file: magic number {head.hex(' ')!r}, "
                                 "expected 00 00 <type 08|09|0b|0c|0d|0e> <ndim >= 1>")
            dtype, ndim = IDX_DTYPES[head[2]], head[3]
            sizes = f.read(4 * ndim)
            if len(sizes) < 4 * ndim:
                raise ValueError(f"{path}: truncated IDX header: expected {4 + 4 * ndim} bytes, "
                                 f"got {4 + len(sizes)}")
            shape = tuple(int(size) for size in np.frombuffer(sizes, ">u4"))
            expected = math.prod(shape) * dtype.itemsize
            payload = f.read(expected + 1)
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{path}: cannot decompress gzip data ({' '.join(str(err).split())})") from None
    if len(payload) != expected:
        total, header = 4 + 4 * ndim + expected, 4 + 4 * ndim
        held = f"{header + len(payload)} bytes" if len(payload) < expected else "more"
        raise ValueError(f"{path}: {'truncated' if len(payload) < expected else 'too long'}: "
                         f"header announces shape {shape} of {dtype.name}, expected {total} bytes, "
                         f"the file holds {held}")
    return np.frombuffer(payload, dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _idx_candidates(folder: Path, stem: str) -> list[Path]:
    """Accepted spellings of one MNIST file: ``train-images-idx3-ubyte`` or ``train-images.idx3-ubyte``, raw or .gz."""
    names = [stem, stem.replace("-idx", ".idx")]
    return [folder / (name + suffix) for name in names for suffix in ("", ".gz")]


def _find_mnist_files(folder: Path) -> dict[str, Path | None]:
    """Each key of MNIST_FILES -> the first existing spelling of that file in folder, or None."""
    return {key: next((path for path in _idx_candidates(folder, stem) if path.is_file()), None)
            for key, stem in MNIST_FILES.items()}


def _images_and_labels(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (n, h, w) and labels (n,) -> X (n, h*w) float32 in [0, 1], y (n,) int64."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim < 2:
        raise ValueError(f"{images_path}: expected uint8 images (n, h, w), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"{labels_path}: labels of shape {labels.shape} do not match "
                         f"{len(images)} images in {images_path}")
    X = images.reshape(len(images), -1).astype(np.float32)
    X /= 255
    return X, labels.astype(np.int64)


def load_mnist_folder(folder: str | os.PathLike) -> TrainTest:
    """Load the four MNIST-format IDX files from one folder (MNIST, Fashion-MNIST, KMNIST, ...).

    Returns ((X_train, y_train), (X_test, y_test)): X (n, h*w) float32 in [0, 1],
    y (n,) int64; for MNIST n is 60000 and 10000, h*w is 784.
    """
    folder = Path(folder)
    files = _find_mnist_files(folder)
    missing = [" or ".join(path.name for path in _idx_candidates(folder, MNIST_FILES[key]))
               for key, path in files.items() if path is None]
    if missing:
        raise FileNotFoundError(f"{folder}: missing MNIST-format files: " + "; ".join(missing))
    train = _images_and_labels(files["train_images"], files["train_labels"])
    test = _images_and_labels(files["test_images"], files["test_labels"])
    return train, test


def load_fashion_mnist() -> TrainTest:
    """Fashion-MNIST from ``$NPAE_DATA``, ``$NPAE_DATA/fashion-mnist``, or FASHION_MNIST_DIR, first found.

    Returns ((X_train, y_train), (X_test, y_test)) as ``load_mnist_folder``:
    (60000, 784) and (10000, 784) float32 in [0, 1]; labels index FASHION_MNIST_CLASSES.
    """
    folders = [FASHION_MNIST_DIR]
    if os.environ.get("NPAE_DATA"):
        data = Path(os.environ["NPAE_DATA"])
        folders = [data, data / "fashion-mnist"] + folders
    for folder in folders:
        if None not in _find_mnist_files(folder).values():
            return load_mnist_folder(folder)
    raise FileNotFoundError(
        "Fashion-MNIST not found (looked in " + ", ".join(map(str, folders)) + "). "
        "Install it with `sudo apt-get install dataset-fashion-mnist`, or put the four IDX files ("
        + ", ".join(MNIST_FILES.values()) + ", raw or .gz) in a folder and set NPAE_DATA=that folder. "
        "Nothing is downloaded automatically.")


def _read_npy(path: Path):
    """A read-only memory map of the file; an array of Python objects is refused unread."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False), None
    except ValueError as err:
        if "pickle" in str(err).lower() or "object" in str(err).lower():
            raise ValueError("not a numeric array file that npae can read (it would mean unpickling "
                             "Python objects, which npae never does)") from None
        raise


def _read_npz(path: Path):
    """The array ``X`` (and labels ``y``), or the only array, read with bounded memory
    (:class:`npae.files.archive.Archive`: no pickle, sizes checked before reading)."""
    with Archive(path, meta_name=None) as archive:
        names = sorted(archive.names)
        if "X" in names:
            wanted = ["X"] + (["y"] if "y" in names else [])
        elif len(names) == 1:
            wanted = names
        else:
            raise ValueError(f"holds {len(names)} arrays ({checks.some(names)}); name the data 'X' (and the labels 'y') or "
                             "store one array")
        arrays = [archive.array(name, *archive.array_header(name)) for name in wanted]
    return arrays[0], arrays[1] if len(arrays) > 1 else None


def _read_csv(path: Path):
    """Comma-separated numbers (a header line of names is skipped): the cells as strings and
    the column names (see :mod:`npae.data.tables`)."""
    return read_csv(path)


ARRAY_READERS = {".npy": _read_npy, ".npz": _read_npz, ".csv": _read_csv}


def _as_rows(X: np.ndarray) -> np.ndarray:
    """Check X is numeric and 2-D (n, d); images (n, h, w) become (n, h*w): a view when X is
    C-contiguous, else (a Fortran-ordered file) a :class:`FlatRows` that reshapes each read."""
    if X.dtype.kind not in "biuf":
        raise ValueError(f"data has dtype {X.dtype}; expected integers or floats")
    if X.ndim == 3:
        X = X.reshape(len(X), -1) if X.flags.c_contiguous else FlatRows(X)
    if X.ndim == 1:
        raise ValueError(f"data is 1-D with shape {X.shape}; expected (n_samples, n_features): save "
                         "X.reshape(1, -1) for a single sample or X.reshape(-1, 1) for a single feature")
    if X.ndim != 2:
        raise ValueError(f"data has shape {X.shape}; expected 2-D (n_samples, n_features) or 3-D images (n, h, w)")
    if 0 in X.shape:
        raise ValueError(f"data is empty (shape {X.shape})")
    return X


def load_array(path: str | os.PathLike, *, drop=(), labels=None):
    """Load the user's own data: ``.npy``, ``.npz`` or comma-separated ``.csv``.

    .npy: memory-mapped read-only (mmap_mode="r"), never copied, so it may exceed memory.
    .npz: the array named ``X`` (and optional labels ``y``), or the only array in the file.
    .csv: numbers separated by commas; an optional header line of column names.
    ``drop``: columns to leave out, by header name or index from 0; ``labels``: the column
    of labels, taken out of the features (then the data is read into memory).
    Returns X (n, d) in its stored dtype and scale (3-D (n, h, w) is flattened to (n, h*w))
    and y (n,) int64 or None. Pickled data is never loaded.
    """
    X, y, _ = _load_file(Path(path), drop, labels)
    return X, y


def _load_file(path: Path, drop=(), labels=None):
    """``(X, y, label_names)`` of a data file (see :func:`load_array`)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    reader = ARRAY_READERS.get(path.suffix.lower())
    if reader is None:
        raise ValueError(f"{path}: unknown file type {path.suffix or '(no extension)'!r}; npae "
                         "reads .npy, .npz and .csv (comma-separated) files, and folders of IDX files")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty")
    try:
        label_names = None
        if reader is _read_csv:  # cells as text, and the header's names
            cells, names = reader(path)
            X, y, label_names, _ = choose_columns(cells, names, drop=drop, labels=labels)
        else:
            X, y = reader(path)
            if drop or labels is not None:
                X, chosen, label_names, _ = choose_columns(_as_rows(X), drop=drop, labels=labels)
                y = y if labels is None else chosen
        X = _as_rows(X)
        if reader is _read_csv and not np.isfinite(X).all():
            raise ValueError("contains NaN or infinite values")
        if y is not None:
            if y.dtype.kind not in "iu" or y.shape != (len(X),):
                raise ValueError(f"labels 'y' must be integers of shape ({len(X)},), got {y.dtype} {y.shape}")
            y = y.astype(np.int64)
    except FileRefused:
        raise
    except (ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise ValueError(f"{path}: {err}") from None
    return X, y, label_names


def square_image_shape(width: int) -> tuple[int, int] | None:
    """(s, s) when width == s * s for some s > 1, else None."""
    side = math.isqrt(width)
    return (side, side) if side > 1 and side * side == width else None


def load(name_or_path: str | os.PathLike, *, drop=(), labels=None) -> Dataset:
    """Data by name or path, as the command line asks for it.

    "digits": the bundled digits, split in order: the first 1500 images train, the last
    DIGITS_TEST_SIZE = 297 test (every class has 27..33 test images); image_shape (8, 8).
    "fashion-mnist": ``load_fashion_mnist()``; image_shape (28, 28).
    A folder: ``load_mnist_folder``. A file: ``load_array`` (with its ``drop`` and
    ``labels``), with X_test = y_test = None. The names take precedence over files of the
    same name. For folders and files, image_shape is (s, s) when the width d is a perfect
    square s * s, else None.
    """
    if (drop or labels is not None) and (name_or_path in ("digits", "fashion-mnist")
                                          or Path(name_or_path).is_dir()):
        raise ValueError(f"--drop and --labels choose the columns of a file, not of {name_or_path}")
    if name_or_path == "digits":
        X, y = load_digits()
        split = len(X) - DIGITS_TEST_SIZE
        return Dataset(X[:split], y[:split], X[split:], y[split:], (8, 8), "digits")
    if name_or_path == "fashion-mnist":
        (X_train, y_train), (X_test, y_test) = load_fashion_mnist()
        return Dataset(X_train, y_train, X_test, y_test, (28, 28), "fashion-mnist",
                       FASHION_MNIST_CLASSES)
    path, label_names = Path(name_or_path), None
    if path.is_dir():
        (X_train, y_train), (X_test, y_test) = load_mnist_folder(path)
    elif path.exists():
        X_train, y_train, label_names = _load_file(path, drop, labels)
        X_test = y_test = None
    else:
        raise FileNotFoundError(f"{name_or_path!r} is neither a bundled data set "
                                "('digits', 'fashion-mnist') nor an existing file or folder")
    name = path.name
    return Dataset(X_train, y_train, X_test, y_test, square_image_shape(X_train.shape[1]), name,
                   label_names)


# -- preparing data for training ------------------------------------------------
HELD_OUT = 0.1  # the share of a file's rows held out when it has no test split


def scaling(parts, scale="auto"):
    """The divisor of the 0..255 → [0, 1] scaling of a data set, decided once over all its
    ``parts``: 255 or None.

    ``scale="255"`` always divides; ``"none"`` never; ``"auto"`` divides integer data
    within [0, 255] that is not already 0/1.  Memory-mapped parts are scanned a chunk
    at a time.
    """
    parts = [p for p in parts if p is not None]
    if scale == "255":
        return 255
    if scale != "auto" or not all(np.dtype(p.dtype).kind in "iu" for p in parts):
        return None
    low, high = zip(*(_range(p) for p in parts))
    return 255 if min(low) >= 0 and max(high) <= 255 and max(high) > 1 else None


def _range(X, rows=65536):
    lows, highs = zip(*((c.min(), c.max()) for c in (np.asarray(X[i:i + rows])
                                                     for i in range(0, len(X), rows))))
    return min(lows), max(highs)


def prepared(data: Dataset, *, scale="auto", seed=0, split=True, standard=None):
    """``(data, divisor)``: ``data`` with its parts as row views, scaled by one decision.

    A data set without a test split gets a seeded HELD_OUT share of its rows held
    out (when it has at least 20 and ``split``), by index: nothing is copied.
    ``scale="standard"`` fits a :class:`npae.data.scaling.Standard` scaling on the
    training rows (or applies ``standard``, a model's, when given): it is ``data.scaling``.
    """
    divisor = None if scale == "standard" else scaling([data.X_train, data.X_test], scale)
    X, y, X_test, y_test = data.X_train, data.y_train, data.X_test, data.y_test
    if X_test is None and split and len(X) >= 20:
        order = np.random.default_rng(seed).permutation(len(X))
        n_test = round(len(X) * HELD_OUT)
        test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
        X_test, y_test = RowView(X, test, divide_by=divisor), None if y is None else y[test]
        X, y = RowView(X, train, divide_by=divisor), None if y is None else y[train]
    else:
        X = RowView(X, divide_by=divisor) if divisor else X
        X_test = RowView(X_test, divide_by=divisor) if divisor and X_test is not None else X_test
    if scale == "standard":
        standard = Standard.fit(X) if standard is None else standard
        X, X_test = standard.apply(X), standard.apply(X_test)
    else:
        standard = None
    return data._replace(X_train=X, y_train=y, X_test=X_test, y_test=y_test,
                         scaling=standard), divisor
