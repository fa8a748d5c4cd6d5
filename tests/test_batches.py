"""Rows in batches (npae.batches): every row once an epoch, batches read in one sorted gather and
converted one at a time, and training on a memory-mapped file in bounded memory."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import npae
from npae.data import batches


def epoch_rows(rows, batch_size, seed=0, shuffle=True):
    """The rows an epoch visits, batch by batch, as the training loop reads them."""
    rng = np.random.default_rng(seed)
    buffer = np.empty((batch_size, rows.n_features), dtype=rows.dtype)
    seen = []
    for b in batches.epoch_plan(rows, rng, shuffle):
        n = rows.block_sizes[int(b)]
        block, order = rows.block(int(b)), batches.block_order(n, rng, shuffle)
        for k in range(batches.n_batches(n, batch_size)):
            positions = batches.batch_positions(order, k, batch_size, n)
            assert np.all(np.diff(positions) > 0), "a batch is read in increasing order"
            seen.append(rows.gather(block, positions, buffer).copy())
    return np.concatenate(seen)


def sorted_rows(a):
    return a[np.lexsort(a.T[::-1])]


@pytest.mark.parametrize("kind", ["float32 array", "float64 array", "uint8 memmap", "row view"])
def test_an_epoch_visits_every_row_once_converted_to_the_models_dtype(kind, tmp_path):
    rng = np.random.default_rng(1)
    base = (rng.random((103, 5)) * 255).astype(np.uint8)
    if kind == "float32 array":
        X, expected = base.astype(np.float32), base.astype(np.float32)
    elif kind == "float64 array":
        X, expected = base.astype(np.float64), base.astype(np.float32)
    elif kind == "uint8 memmap":
        np.save(tmp_path / "x.npy", base)
        X, expected = np.load(tmp_path / "x.npy", mmap_mode="r"), base.astype(np.float32)
    else:
        X = batches.RowView(base, np.arange(0, 103, 2), divide_by=255)
        expected = base[::2].astype(np.float32) / np.float32(255)
    rows = batches.Rows(X, np.float32)
    visited = epoch_rows(rows, batch_size=16)
    assert visited.dtype == np.float32 and visited.shape == expected.shape
    np.testing.assert_array_equal(sorted_rows(visited), sorted_rows(expected))
    in_order = epoch_rows(rows, batch_size=16, shuffle=False)
    np.testing.assert_array_equal(in_order, expected)


def test_a_held_out_split_is_by_index_and_covers_the_rows_once():
    X = np.arange(200, dtype=np.float32).reshape(100, 2)
    train, held = batches.Rows(X, np.float32).split(0.2, np.random.default_rng(0))
    assert (train.n_rows, held.n_rows) == (80, 20)
    both = np.concatenate([np.asarray(train.array_like())[:, 0], np.asarray(held.array_like())[:, 0]])
    assert sorted(both.tolist()) == X[:, 0].tolist()
    assert held.array_like().X is X                  # a view of the same array: nothing copied
    with pytest.raises(ValueError, match="leaves no rows"):
        batches.Rows(X, np.float32).split(0.999, np.random.default_rng(0))


def test_a_row_view_reads_on_demand_and_scales_as_it_reads():
    base = np.arange(12, dtype=np.uint8).reshape(6, 2) * 20
    view = batches.RowView(base, [1, 3, 4], divide_by=255)
    assert view.shape == (3, 2) and view.dtype == np.float32 and len(view) == 3
    np.testing.assert_array_equal(view[0], base[1] / np.float32(255))
    np.testing.assert_array_equal(view[1:], base[[3, 4]] / np.float32(255))
    np.testing.assert_array_equal(view[[2, 0], 1], base[[4, 1], 1] / np.float32(255))
    np.testing.assert_array_equal(np.asarray(view), base[[1, 3, 4]] / np.float32(255))
    plain = batches.RowView(base)
    assert plain.dtype == np.uint8 and np.array_equal(plain[:], base)


def test_training_on_an_array_a_memmap_and_a_row_view_of_the_same_rows_is_the_same(tmp_path):
    # batches are sets of rows read in sorted order, so where the rows live changes nothing
    X = npae.datasets.load_digits()[0][:300]
    np.save(tmp_path / "x.npy", X)
    memmap = np.load(tmp_path / "x.npy", mmap_mode="r")
    fits = [npae.VAE(hidden=(16,), latent=2, epochs=2, batch_size=32).fit(data)
            for data in (X, memmap, batches.RowView(memmap), X.astype(np.float64))]
    for other in fits[1:3]:
        assert other.history_ == fits[0].history_
        np.testing.assert_array_equal(other.encode(X), fits[0].encode(X))
    np.testing.assert_allclose(fits[3].history_["loss"], fits[0].history_["loss"], rtol=1e-6)


MEMMAP_FIT = textwrap.dedent("""
    import sys, threading, time
    import numpy as np
    import npae
    from npae.data import batches

    def rss_anon():
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024

    peak, done = [rss_anon()], threading.Event()
    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_anon())
            time.sleep(0.002)

    path, how = sys.argv[1], sys.argv[2]
    X = np.load(path, mmap_mode="r")                     # {rows} × 784 uint8 on disk
    data = batches.RowView(X, divide_by=255) if how == "scaled view" else X
    model = npae.VAE(hidden=(32,), latent=2, epochs=1, batch_size=1024,
                     likelihood="bernoulli" if how == "scaled view" else "gaussian")
    threading.Thread(target=sample, daemon=True).start()
    before = rss_anon()
    model.fit(data)
    done.set()
    print(before, peak[0], model.history_["loss"][0])
""")


ROWS = 300_000  # 235 MB of uint8; 941 MB as float32


@pytest.fixture(scope="module")
def big_uint8_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "big.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(ROWS, 784))
    rng = np.random.default_rng(0)
    for start in range(0, ROWS, 50_000):
        out[start:start + 50_000] = rng.integers(0, 256, (50_000, 784), dtype=np.uint8)
    out.flush()
    return path


@pytest.mark.parametrize("how", ["uint8 memmap", "scaled view"])
def test_fitting_a_uint8_memmap_of_hundreds_of_megabytes_keeps_memory_bounded(big_uint8_file, how):
    result = subprocess.run([sys.executable, "-c", MEMMAP_FIT.replace("{rows}", str(ROWS)),
                             str(big_uint8_file), how], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    before, peak, loss = result.stdout.split()
    grew = (int(peak) - int(before)) / 2**20
    # one float32 copy of the data would be 941 MB; the batch buffer and its forward pass ~25 MB,
    # the epoch's permutation 2.4 MB
    assert grew < 100, f"anonymous memory grew by {grew:.0f} MB while fitting"
    assert np.isfinite(float(loss))


# -- a RowView's index follows NumPy's meaning, or is refused ------------------------------
def test_a_boolean_mask_selects_the_rows_where_it_is_true():
    X = np.arange(20.0).reshape(10, 2)
    mask = np.zeros(10, dtype=bool)
    mask[[2, 5, 7]] = True
    view = batches.RowView(X, mask)
    assert view.shape == (3, 2)
    np.testing.assert_array_equal(np.asarray(view), X[mask])
    np.testing.assert_array_equal(batches.RowView(X, [-1, 0])[:], X[[-1, 0]])


def test_fit_on_a_masked_view_trains_on_the_masked_rows():
    X = npae.datasets.load_digits()[0][:200]
    mask = np.arange(200) % 3 == 0
    a = npae.Autoencoder(hidden=(8,), epochs=1, seed=0).fit(batches.RowView(X, mask))
    b = npae.Autoencoder(hidden=(8,), epochs=1, seed=0).fit(X[mask])
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])


@pytest.mark.parametrize("index, error, words", [
    (np.ones(9, dtype=bool), ValueError, "one entry per row"),
    ([0.9, 1.9, 2.9], TypeError, "integers or booleans"),
    (["a"], TypeError, "integers or booleans"),
    ([0, 10], ValueError, "out of range"),
    ([-11], ValueError, "out of range"),
    ([[0, 1], [2, 3]], ValueError, "1-D"),
])
def test_an_index_numpy_would_read_otherwise_is_refused(index, error, words):
    with pytest.raises(error, match=words):
        batches.RowView(np.zeros((10, 2)), index)


@pytest.mark.parametrize("divide_by, error", [
    ("255", TypeError), (True, TypeError), (np.inf, ValueError), (np.nan, ValueError),
    (-1, ValueError), (0, ValueError)])
def test_divide_by_must_be_a_positive_finite_number(divide_by, error):
    with pytest.raises(error, match="divide_by"):
        batches.RowView(np.zeros((10, 2), dtype=np.uint8), divide_by=divide_by)


def test_a_row_view_of_a_list_says_what_it_needs():
    with pytest.raises(TypeError, match="numpy.asarray"):
        batches.RowView([[1.0, 2.0]])
