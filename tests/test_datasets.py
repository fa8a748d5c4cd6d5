"""Tests for npae.datasets: IDX files written byte by byte, the bundled digits, and user arrays."""

import gzip
import io
import struct
import tempfile
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import npae
from npae import datasets
from npae.data.batches import RowView
from npae.data.datasets import (FASHION_MNIST_CLASSES, Dataset, load, load_array, load_digits,
                           load_fashion_mnist, load_mnist_folder, read_idx)

TYPE_CODES = {"u1": 0x08, "i1": 0x09, ">i2": 0x0B, ">i4": 0x0C, ">f4": 0x0D, ">f8": 0x0E}
REAL_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def idx_bytes(array: np.ndarray, dtype: str) -> bytes:
    """The IDX encoding, written independently of the reader: magic, big-endian sizes, big-endian payload."""
    header = struct.pack(">BBBB", 0, 0, TYPE_CODES[dtype], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(dtype).tobytes()


def write_idx(path: Path, array: np.ndarray, dtype: str = "u1", gz: bool = False) -> Path:
    data = idx_bytes(array, dtype)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def sample(dtype: str, shape, rng) -> np.ndarray:
    if dtype.endswith(("f4", "f8")):
        return rng.normal(size=shape).astype(dtype)
    info = np.iinfo(np.dtype(dtype))
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


# --- IDX reader ---------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", list(TYPE_CODES))
def test_read_idx_round_trips_every_type(tmp_path, dtype, gz):
    array = sample(dtype, (3, 4, 5), np.random.default_rng(0))
    result = read_idx(write_idx(tmp_path / "a.idx", array, dtype, gz))
    assert result.shape == (3, 4, 5)
    assert result.dtype == np.dtype(dtype).newbyteorder("=") and result.dtype.isnative
    np.testing.assert_array_equal(result, array)


def test_read_idx_big_endian_is_converted(tmp_path):
    path = tmp_path / "a.idx"
    path.write_bytes(bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x02, 0xFF, 0xFE]))
    np.testing.assert_array_equal(read_idx(path), [0x0102, -2])


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(0, 4), min_size=1, max_size=4),
       dtype=st.sampled_from(list(TYPE_CODES)), gz=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_read_idx_round_trips_any_shape(shape, dtype, gz, seed):
    array = sample(dtype, tuple(shape), np.random.default_rng(seed))
    with tempfile.TemporaryDirectory() as folder:
        result = read_idx(write_idx(Path(folder) / "a", array, dtype, gz))
    assert result.shape == array.shape
    np.testing.assert_array_equal(result, array)


def test_read_idx_detects_gzip_by_magic_not_extension(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "zipped-ubyte", array, gz=True)), array)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "plain.gz", array, gz=False)), array)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("change, word", [(lambda data: data[:-1], "truncated"),
                                          (lambda data: data + b"\0", "too long")])
def test_read_idx_rejects_wrong_payload_size(tmp_path, change, word, gz):
    data = change(idx_bytes(np.zeros((2, 3), np.uint8), "u1"))
    path = tmp_path / "bad-ubyte"
    path.write_bytes(gzip.compress(data) if gz else data)
    expected = 4 + 2 * 4 + 6
    with pytest.raises(ValueError, match=word) as info:
        read_idx(path)
    message = str(info.value)
    assert "bad-ubyte" in message and f"expected {expected} bytes" in message
    # the payload is read up to its announced size and one byte more, never further
    assert (f"holds {len(data)} bytes" if word == "truncated" else "holds more") in message


@pytest.mark.parametrize("header", [
    bytes([1, 0, 0x08, 1]),     # first byte not zero
    bytes([0, 0, 0x0A, 1]),     # unknown type code
    bytes([0, 0, 0x08, 0]),     # no dimensions
    bytes([0, 0]),              # shorter than a magic number
    b"",                        # empty
])
def test_read_idx_rejects_bad_magic(tmp_path, header):
    path = tmp_path / "magic"
    path.write_bytes(header + bytes([0, 0, 0, 1, 7]))
    with pytest.raises(ValueError, match="not an IDX file") as info:
        read_idx(path)
    assert "magic" in str(info.value) and str(path) in str(info.value)


def test_read_idx_rejects_truncated_header_and_broken_gzip(tmp_path):
    short = tmp_path / "short"
    short.write_bytes(bytes([0, 0, 0x08, 3, 0, 0, 0, 2]))
    with pytest.raises(ValueError, match="truncated IDX header"):
        read_idx(short)
    broken = tmp_path / "broken.gz"
    broken.write_bytes(gzip.compress(idx_bytes(np.zeros(100, np.uint8), "u1"))[:-12])
    with pytest.raises(ValueError, match="broken.gz"):
        read_idx(broken)


# --- MNIST-format folders -----------------------------------------------------

def write_mnist_folder(folder: Path, n_train=5, n_test=3, side=4, names=None, gz=False, seed=0):
    """Four small IDX files; returns the uint8 arrays written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"train_images": rng.integers(0, 256, (n_train, side, side)).astype(np.uint8),
              "train_labels": rng.integers(0, 10, n_train).astype(np.uint8),
              "test_images": rng.integers(0, 256, (n_test, side, side)).astype(np.uint8),
              "test_labels": rng.integers(0, 10, n_test).astype(np.uint8)}
    arrays["train_images"][0, 0, :2] = [0, 255]
    names = names or datasets.MNIST_FILES
    for key, array in arrays.items():
        write_idx(folder / (names[key] + (".gz" if gz else "")), array, gz=gz)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_folder_shapes_ranges_values(tmp_path, gz):
    arrays = write_mnist_folder(tmp_path, gz=gz)
    (X_train, y_train), (X_test, y_test) = load_mnist_folder(tmp_path)
    assert X_train.shape == (5, 16) and X_test.shape == (3, 16)
    assert X_train.dtype == X_test.dtype == np.float32
    assert y_train.dtype == y_test.dtype == np.int64
    assert X_train.min() == 0.0 and X_train.max() == 1.0
    np.testing.assert_allclose(X_test, arrays["test_images"].reshape(3, 16) / 255, rtol=1e-6)
    np.testing.assert_array_equal(y_train, arrays["train_labels"])


def test_load_mnist_folder_accepts_dotted_names(tmp_path):
    dotted = {key: name.replace("-idx", ".idx") for key, name in datasets.MNIST_FILES.items()}
    assert dotted["train_images"] == "train-images.idx3-ubyte"
    write_mnist_folder(tmp_path, names=dotted, gz=True)
    (X_train, _), (X_test, _) = load_mnist_folder(tmp_path)
    assert X_train.shape == (5, 16) and X_test.shape == (3, 16)


def test_load_mnist_folder_missing_file_lists_names(tmp_path):
    write_mnist_folder(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError) as info:
        load_mnist_folder(tmp_path)
    message = str(info.value)
    assert "t10k-labels-idx1-ubyte.gz" in message and "t10k-labels.idx1-ubyte" in message
    assert "train-images" not in message


def test_load_mnist_folder_rejects_count_mismatch(tmp_path):
    write_mnist_folder(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="do not match 3 images"):
        load_mnist_folder(tmp_path)


# --- Fashion-MNIST ------------------------------------------------------------

@pytest.fixture
def no_default_fashion(monkeypatch, tmp_path):
    monkeypatch.setattr(datasets, "FASHION_MNIST_DIR", tmp_path / "not-installed")
    monkeypatch.delenv("NPAE_DATA", raising=False)


@pytest.mark.parametrize("subfolder", ["", "fashion-mnist"])
def test_load_fashion_mnist_honours_npae_data(tmp_path, monkeypatch, no_default_fashion, subfolder):
    write_mnist_folder(tmp_path / "mine" / subfolder, n_train=7, side=28, gz=True)
    monkeypatch.setenv("NPAE_DATA", str(tmp_path / "mine"))
    (X_train, y_train), (X_test, _) = load_fashion_mnist()
    assert X_train.shape == (7, 784) and y_train.shape == (7,) and X_test.shape == (3, 784)


def test_load_fashion_mnist_falls_back_to_default_folder(tmp_path, monkeypatch, no_default_fashion):
    write_mnist_folder(tmp_path / "system", n_train=6)
    monkeypatch.setattr(datasets, "FASHION_MNIST_DIR", tmp_path / "system")
    monkeypatch.setenv("NPAE_DATA", str(tmp_path / "empty"))
    (X_train, _), _ = load_fashion_mnist()
    assert X_train.shape == (6, 16)


def test_load_fashion_mnist_absent_says_how_to_get_it(tmp_path, monkeypatch, no_default_fashion):
    monkeypatch.setenv("NPAE_DATA", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError) as info:
        load_fashion_mnist()
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "NPAE_DATA" in message and "train-images-idx3-ubyte" in message
    assert str(tmp_path / "empty") in message and "not-installed" in message


def test_fashion_mnist_class_names():
    assert len(FASHION_MNIST_CLASSES) == len(set(FASHION_MNIST_CLASSES)) == 10
    assert FASHION_MNIST_CLASSES[0] == "T-shirt/top" and FASHION_MNIST_CLASSES[9] == "Ankle boot"


@pytest.mark.skipif(not all((REAL_FASHION_MNIST / (name + ".gz")).is_file()
                            for name in datasets.MNIST_FILES.values()),
                    reason="Fashion-MNIST not installed (optional: apt-get install dataset-fashion-mnist)")
def test_real_fashion_mnist_shapes(monkeypatch):
    monkeypatch.delenv("NPAE_DATA", raising=False)
    data = load("fashion-mnist")
    assert data.X_train.shape == (60000, 784) and data.X_test.shape == (10000, 784)
    assert data.X_train.dtype == np.float32 and 0 <= data.X_train.min() < data.X_train.max() <= 1
    assert np.array_equal(np.bincount(data.y_train), np.full(10, 6000))
    assert data.image_shape == (28, 28)


# --- bundled digits -----------------------------------------------------------

def test_bundled_digits():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert X.min() == 0.0 and X.max() == 1.0
    assert y.shape == (1797,) and y.dtype == np.int64
    counts = np.bincount(y)
    assert len(counts) == 10 and counts.min() >= 150
    # The first image of the UCI set is a zero; its first two rows of pixels, in 0..16:
    np.testing.assert_array_equal(X[0, :16] * 16, [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0])
    assert y[0] == 0


def test_load_digits_by_name_splits_in_order():
    X, y = load_digits()
    data = load("digits")
    assert isinstance(data, Dataset) and data.name == "digits" and data.image_shape == (8, 8)
    assert data.X_train.shape == (1500, 64) and data.X_test.shape == (297, 64)
    np.testing.assert_array_equal(data.X_test, X[1500:])
    np.testing.assert_array_equal(data.y_train, y[:1500])
    assert np.bincount(data.y_test).min() >= 25


# --- the user's own arrays ----------------------------------------------------

def test_load_array_npy_is_memory_mapped(tmp_path):
    data = np.arange(20, dtype=np.float32).reshape(4, 5)
    np.save(tmp_path / "x.npy", data)
    X, y = load_array(tmp_path / "x.npy")
    assert isinstance(X, np.memmap) and not X.flags.writeable and not X.flags.owndata
    assert Path(X.filename) == (tmp_path / "x.npy").resolve()
    assert y is None and X.dtype == np.float32
    np.testing.assert_array_equal(X, data)


def test_load_array_flattens_3d_images_without_copying(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.save(tmp_path / "images.npy", images)
    X, _ = load_array(tmp_path / "images.npy")
    assert X.shape == (2, 12) and isinstance(X, np.memmap) and not X.flags.owndata
    np.testing.assert_array_equal(X, images.reshape(2, 12))
    np.savez(tmp_path / "images.npz", images)
    assert load_array(tmp_path / "images.npz")[0].shape == (2, 12)


def test_load_array_npz_with_labels(tmp_path):
    X_saved, y_saved = np.ones((6, 3)), np.arange(6, dtype=np.int32)
    np.savez(tmp_path / "d.npz", X=X_saved, y=y_saved, notes=np.zeros(2))
    X, y = load_array(tmp_path / "d.npz")
    np.testing.assert_array_equal(X, X_saved)
    assert y.dtype == np.int64 and np.array_equal(y, y_saved)


def test_load_array_npz_single_array(tmp_path):
    np.savez_compressed(tmp_path / "one.npz", features=np.eye(3))
    X, y = load_array(tmp_path / "one.npz")
    np.testing.assert_array_equal(X, np.eye(3))
    assert y is None


@pytest.mark.parametrize("header", ["", "a,b,c\n", "  pixel 1 , pixel 2,label \n"])
def test_load_array_csv(tmp_path, header):
    path = tmp_path / "d.csv"
    path.write_text(header + "1,2,3\n4.5,-5,6e-1\n")
    X, y = load_array(path)
    np.testing.assert_array_equal(X, [[1, 2, 3], [4.5, -5, 0.6]])
    assert y is None


def test_load_array_csv_single_column_and_single_row(tmp_path):
    (tmp_path / "col.csv").write_text("1\n2\n3\n")
    (tmp_path / "row.csv").write_text("1,2,3\n")
    assert load_array(tmp_path / "col.csv")[0].shape == (3, 1)
    assert load_array(tmp_path / "row.csv")[0].shape == (1, 3)


def save_object_npy(path):
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)


@pytest.mark.parametrize("name, write, match", [
    ("d.json", lambda p: p.write_text("[]"), "unknown file type '.json'; npae reads .npy, .npz and .csv"),
    ("d.txt", lambda p: p.write_text("1,2\n"), "unknown file type '.txt'"),
    ("d.csv", lambda p: p.write_text("1,2\n3,oops\n"), "oops"),
    ("d.csv", lambda p: p.write_text("1,2\n3\n"), "d.csv"),
    ("d.csv", lambda p: p.write_text("1,nan\n"), "NaN"),
    ("d.csv", lambda p: p.write_text("x,y\n"), "empty"),
    ("d.npy", lambda p: np.save(p, np.arange(5.0)), r"reshape\(1, -1\).*reshape\(-1, 1\)"),
    ("d.npy", lambda p: np.save(p, np.zeros((2, 2, 2, 2))), r"shape \(2, 2, 2, 2\)"),
    ("d.npy", lambda p: np.save(p, np.array(["a", "b"])), "expected integers or floats"),
    ("d.npy", lambda p: np.save(p, np.zeros((2, 2), complex)), "complex"),
    ("d.npy", save_object_npy, "d.npy"),
    ("d.npy", lambda p: p.write_bytes(b"not numpy at all"), "d.npy"),
    ("d.npz", lambda p: p.write_bytes(b""), "empty"),
    ("d.npz", lambda p: p.write_bytes(b"PK\x03\x04 broken zip"), "d.npz"),
    ("d.npz", lambda p: np.save(p.with_suffix(".npz.npy"), np.eye(2)) or
     p.write_bytes(p.with_suffix(".npz.npy").read_bytes()), "not an .npz archive"),
    ("d.npz", lambda p: np.savez(p, a=np.eye(2), b=np.eye(2)), "name the data 'X'"),
    ("d.npz", lambda p: np.savez(p, X=np.eye(2), y=np.arange(3)), "labels 'y'"),
    ("d.npz", lambda p: np.savez(p, X=np.eye(2), y=np.array([0.5, 1.0])), "labels 'y'"),
    ("d.npz", lambda p: np.savez(p, X=np.array([None, 1], dtype=object)), "d.npz"),
])
def test_load_array_rejects_bad_files(tmp_path, name, write, match):
    path = tmp_path / name
    write(path)
    with pytest.raises(ValueError, match=match) as info:
        load_array(path)
    assert name in str(info.value)


def test_load_array_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.npy"):
        load_array(tmp_path / "nothing.npy")


# --- load() by path -------------------------------------------------------------

@pytest.mark.parametrize("width, image_shape", [(16, (4, 4)), (5, None), (1, None)])
def test_load_file_infers_square_images(tmp_path, width, image_shape):
    np.save(tmp_path / "mine.npy", np.zeros((3, width), np.float32))
    data = load(tmp_path / "mine.npy")
    assert data.X_train.shape == (3, width) and isinstance(data.X_train, np.memmap)
    assert data.y_train is None and data.X_test is None and data.y_test is None
    assert data.image_shape == image_shape and data.name == "mine.npy"  # the file, not the data set "mine"


def test_load_folder_reads_mnist_format(tmp_path):
    write_mnist_folder(tmp_path / "kmnist", side=28)
    data = load(str(tmp_path / "kmnist"))
    assert data.X_train.shape == (5, 784) and data.X_test.shape == (3, 784)
    assert data.image_shape == (28, 28) and data.name == "kmnist"


def test_load_unknown_name():
    with pytest.raises(FileNotFoundError, match="'mnist' is neither"):
        load("mnist")


def test_a_gzip_idx_bomb_is_refused_having_read_only_what_its_header_announces(tmp_path):
    """A header announcing 100 images of 28×28, and a stream inflating to 2 GiB: the reader stops
    one byte past the announced payload, in a process whose peak memory stays small."""
    import bombs
    path = tmp_path / "bomb-images-idx3-ubyte.gz"
    bombs.gzip_file(path, struct.pack(">BBBB3I", 0, 0, 8, 3, 100, 28, 28), 2048)
    assert path.stat().st_size < 4 * bombs.MiB
    baseline, _, _ = bombs.in_child("None", setup="import npae.datasets")
    peak, seconds, outcome = bombs.in_child(f"npae.datasets.read_idx({str(path)!r})",
                                            setup="import npae.datasets")
    assert outcome.startswith(f"ValueError: {path}: too long: header announces shape (100, 28, 28)")
    assert peak - baseline < 32 * bombs.MiB and seconds < 2


def test_byte_flips_in_a_gzip_label_file_never_give_a_traceback(tmp_path):
    """300 seeded random corruptions of a .gz label file: each read refuses with a ValueError
    naming the file, or gives labels of the announced size (a flip in the gzip header's name or
    time fields changes nothing that is read)."""
    labels = np.random.default_rng(1).integers(0, 10, 2000).astype(np.uint8)
    import bombs
    refused = 0
    for path in bombs.byte_flips(gzip.compress(idx_bytes(labels, "u1")), tmp_path,
                                 "labels-{}-idx1-ubyte.gz", 300):
        try:
            read = read_idx(path)
        except ValueError as exc:
            assert str(path) in str(exc)
            refused += 1
            continue
        assert read.dtype.kind in "iuf" and read.size <= 2**20
    assert refused > 250


def test_an_npz_of_twenty_thousand_arrays_none_named_x_gives_a_short_error(tmp_path):
    path = tmp_path / "many.npz"
    one = io.BytesIO()
    np.save(one, np.zeros(1))
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(20_000):
            archive.writestr(f"a{i:05d}.npy", one.getvalue())
    with pytest.raises(ValueError, match=r"holds 20000 arrays \(\['a00000', .* and 19,995 more\)") as info:
        load_array(path)
    assert len(str(info.value)) < 300


def test_a_fortran_ordered_npy_of_images_is_read_a_chunk_at_a_time(tmp_path):
    """(n, h, w) images in a Fortran-ordered file cannot be reshaped to rows in place: they are
    read a chunk at a time, never copied whole (the file is 47 MB; NumPy's own allocations are
    counted: 28 MB, a chunk of 4096 rows in uint8 and float32, against 74 MB for a whole copy)."""
    images = np.random.default_rng(0).integers(0, 256, size=(60_000, 28, 28), dtype=np.uint8)
    np.save(tmp_path / "c.npy", images)
    np.save(tmp_path / "f.npy", np.asfortranarray(images))
    model = npae.VAE(784, (8,), latent=2, epochs=1, seed=0).fit(images[:256].reshape(256, -1) / 255)
    expected = model.encode(load_array(tmp_path / "c.npy")[0][-5000:] / 255)
    tracemalloc.start()
    try:
        X, _ = load_array(tmp_path / "f.npy")
        codes = model.encode(RowView(X, divide_by=255))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert X.shape == (60_000, 784) and peak < 40 * 2**20, peak
    np.testing.assert_allclose(codes[-5000:], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(X[[3, 7]], images[[3, 7]].reshape(2, -1))
    np.testing.assert_array_equal(X[5, 10:20], images[5].reshape(-1)[10:20])
