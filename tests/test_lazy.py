"""npae on Dask arrays (npae.lazy, npae.batches), on a real dask.distributed LocalCluster of two
worker processes: lazy transforms equal to NumPy's with the right chunks and dtype, fitting by
streaming blocks, scores computed blockwise, and dask-ml's Incremental and ParallelPostFit."""

import subprocess
import sys

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
dask_ml_wrappers = pytest.importorskip("dask_ml.wrappers")

import npae  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                       dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def digits():
    return npae.datasets.load_digits()[0]


@pytest.fixture(scope="module")
def fitted(digits):
    return npae.VAE(hidden=(32,), latent=3, epochs=3).fit(digits)


def test_transforms_of_a_dask_array_are_lazy_with_the_right_shape_chunks_and_dtype(client, digits,
                                                                                      fitted):
    X = da.from_array(digits, chunks=(250, 16))          # columns split too: rechunked to one
    for method, width in (("transform", 3), ("encode", 3), ("reconstruct", 64)):
        lazy = getattr(fitted, method)(X)
        assert isinstance(lazy, da.Array) and lazy.dtype == np.float32
        assert lazy.shape == (len(digits), width) and lazy.chunks[0] == X.chunks[0]
        # equal to float32 rounding: a matrix product's rounding depends on its row count
        np.testing.assert_allclose(lazy.compute(), getattr(fitted, method)(digits), rtol=1e-6,
                                   atol=1e-6)
    Z = da.from_array(fitted.encode(digits), chunks=500)
    decoded = fitted.decode(Z)
    assert decoded.shape == (len(digits), 64) and decoded.chunks[0] == Z.chunks[0]
    np.testing.assert_allclose(decoded.compute(), fitted.decode(fitted.encode(digits)), rtol=1e-6,
                               atol=1e-7)
    scores = fitted.score_samples(X)
    assert scores.shape == (len(digits),) and scores.chunks == (X.chunks[0],)
    np.testing.assert_allclose(scores.compute(), fitted.score_samples(digits), rtol=1e-5)
    assert fitted.score(X) == pytest.approx(fitted.score(digits), rel=1e-6)


def test_map_blocks_on_the_models_transform_is_not_needed_but_works(client, digits, fitted):
    X = da.from_array(digits, chunks=(300, 64))
    direct = X.map_blocks(fitted.transform, chunks=(X.chunks[0], (3,)), dtype=np.float32)
    np.testing.assert_allclose(direct.compute(), fitted.transform(digits), rtol=1e-6, atol=1e-6)


def test_fit_streams_blocks_and_trains_like_the_same_rows_in_memory(client, digits):
    X = da.from_array(digits, chunks=(300, 64))
    model = npae.VAE(hidden=(32,), latent=2, epochs=4).fit(X)
    assert len(model.history_["loss"]) == 4 and model.history_["loss"][-1] < model.history_["loss"][0]
    in_memory = npae.VAE(hidden=(32,), latent=2, epochs=4).fit(digits)
    # not the same batches (a batch never spans two blocks), but the same model quality
    assert model.score(digits) == pytest.approx(in_memory.score(digits), rel=0.05)
    one_block = npae.VAE(hidden=(32,), latent=2, epochs=4).fit(da.from_array(digits, chunks=-1))
    assert one_block.history_ == in_memory.history_  # one block is the in-memory epoch, exactly


def test_a_dask_fit_is_checkpointable_and_resumes_bit_identically(client, digits, tmp_path):
    X = da.from_array(digits, chunks=(400, 64))
    whole = npae.VAE(hidden=(16,), latent=2, epochs=4).fit(X)
    npae.VAE(hidden=(16,), latent=2, epochs=2).fit(X, checkpoint=tmp_path / "run.npz")
    resumed = npae.VAE(hidden=(16,), latent=2, epochs=4).fit(X, resume=tmp_path / "run.npz")
    assert resumed.history_ == whole.history_
    np.testing.assert_array_equal(resumed.encode(digits), whole.encode(digits))  # same process


def test_early_stopping_holds_out_whole_blocks(client, digits):
    X = da.from_array(digits, chunks=(200, 64))
    model = npae.VAE(hidden=(16,), latent=2, epochs=3, early_stopping=True,
                     validation_fraction=0.2).fit(X)
    assert len(model.history_["val_loss"]) == 3 and np.isfinite(model.history_["val_loss"]).all()
    with pytest.raises(ValueError, match="whole blocks"):
        npae.VAE(epochs=1, early_stopping=True).fit(da.from_array(digits, chunks=-1))


def test_bad_values_in_a_dask_array_are_refused_before_training(client, digits):
    bad = digits.copy()
    bad[1000, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        npae.VAE(epochs=1).fit(da.from_array(bad, chunks=(300, 64)))
    with pytest.raises(ValueError, match="lie in \\[0, 1\\]"):
        npae.VAE(epochs=1).fit(da.from_array(digits * 3, chunks=(300, 64)))


def test_dask_mls_incremental_trains_by_partial_fit_on_each_block(client, digits):
    X = da.from_array(digits, chunks=(300, 64))
    wrapped = dask_ml_wrappers.Incremental(npae.VAE(hidden=(32,), latent=2)).fit(X)
    model = wrapped.estimator_
    assert model.n_iter_ == X.numblocks[0] == len(model.history_["loss"])
    assert model.history_["loss"][-1] < model.history_["loss"][0]
    np.testing.assert_allclose(wrapped.transform(X).compute(), model.transform(digits), rtol=1e-6,
                               atol=1e-6)


def test_dask_mls_parallel_post_fit_transforms_blockwise(client, digits):
    wrapped = dask_ml_wrappers.ParallelPostFit(npae.VAE(hidden=(32,), latent=2, epochs=2)).fit(digits)
    X = da.from_array(digits, chunks=(300, 64))
    codes = wrapped.transform(X)
    # dask-ml asks the model for its output on one row to learn the dtype: right; it declares
    # the input's chunks for the output (its map_blocks passes no chunks=), which npae cannot
    # change — the computed values are right
    assert codes.dtype == np.float32 and codes._meta.ndim == 2
    np.testing.assert_allclose(codes.compute(), wrapped.estimator.transform(digits), rtol=1e-6,
                               atol=1e-6)


def test_npae_never_imports_dask_itself():
    code = ("import sys, numpy as np, npae; X = np.random.default_rng(0).random((50, 4)); "
            "m = npae.VAE(hidden=(4,), latent=2, epochs=1).fit(X); m.transform(X); m.score(X); "
            "print(any(name.split('.')[0] in ('dask', 'distributed', 'pandas', 'sklearn') "
            "for name in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_a_lazy_result_keeps_the_model_it_was_made_with(digits):
    model = npae.VAE(hidden=(16,), latent=2, epochs=1, seed=0).fit(digits)
    before = model.transform(digits[:100])
    lazy = model.transform(da.from_array(digits[:100], chunks=50))
    model.fit(digits, seed=1, epochs=2)                 # refitted in place, other parameters
    np.testing.assert_array_equal(lazy.compute(scheduler="sync"), before)
    again = model.transform(da.from_array(digits[:100], chunks=50))
    assert again.name != lazy.name                      # another key for other parameters


def test_unknown_chunk_sizes_are_refused_naming_x_and_compute_chunk_sizes(digits, fitted):
    X = da.from_array(digits, chunks=(300, 64))
    unknown = X[X[:, 0] >= 0]
    with pytest.raises(ValueError, match=r"X is a Dask array of unknown chunk sizes .*"
                                         r"X\.compute_chunk_sizes\(\)"):
        npae.VAE(hidden=(8,), latent=2, epochs=1).fit(unknown)
    lazy = fitted.encode(unknown)                        # a lazy transform needs no row count
    np.testing.assert_allclose(lazy.compute(scheduler="sync"), fitted.encode(digits), rtol=1e-5,
                               atol=1e-6)
    assert fitted.score(unknown) == pytest.approx(fitted.score(digits), rel=1e-5)
    with pytest.raises(ValueError, match="X is empty"):
        fitted.score(X[X[:, 0] > 100])


def test_blocks_of_no_rows_hold_no_batch_nor_validation_rows(digits):
    X = da.from_array(digits[:1000], chunks=((0, 0, 0, 0, 500, 0, 500, 0), (64,)))
    for seed in range(4):                                # some seeds held out only empty blocks
        model = npae.VAE(hidden=(8,), latent=2, epochs=2, early_stopping=True,
                         validation_fraction=0.25, seed=seed).fit(X)
        assert len(model.history_["val_loss"]) == 2


def _read_then_fail(block, folder, allowed):
    """A block that can be computed ``allowed`` times, all blocks counted, then fails."""
    import os
    import uuid
    open(os.path.join(folder, uuid.uuid4().hex), "w").close()
    if len(os.listdir(folder)) > allowed:
        raise OSError("the block's source went away")
    return block


def test_a_block_that_fails_mid_epoch_leaves_the_model_as_it_was(digits, tmp_path):
    import dask
    model = npae.VAE(hidden=(8,), latent=2, epochs=1, seed=0).fit(digits)
    before = {name: p.copy() for name, p in model.params.items()}
    history = dict(model.history_)
    X = da.from_array(digits, chunks=(300, 64)).map_blocks(_read_then_fail, str(tmp_path), 6 + 3,
                                                           dtype=digits.dtype)
    with dask.config.set(scheduler="sync"), pytest.raises(OSError, match="went away"):
        model.fit(X, warm_start=True, epochs=2)       # 6 blocks checked, 3 trained on, then fails
    for name, p in model.params.items():
        np.testing.assert_array_equal(p, before[name])
    assert model.history_ == history and model.n_iter_ == 1
