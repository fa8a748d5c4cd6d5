"""Tests for npae.save / npae.load: a saved model computes exactly what the original
computes, the optimiser's memory comes back with it, and the file is a plain .npz."""

import json
import zipfile

import numpy as np
import pytest

import npae

CONFIGS = {
    "ae": lambda: npae.Autoencoder(64, (16,), seed=0),
    "tied-deep-ae": lambda: npae.Autoencoder(64, (24, 8), activation="tanh", tied=True, seed=1),
    "denoising-ae-float64": lambda: npae.Autoencoder(64, (12,), activation="sigmoid",
                                                     output="identity", loss="mse", noise="mask",
                                                     noise_level=0.3, seed=2, dtype="float64"),
    "vae": lambda: npae.VAE(64, (32,), latent=4, beta=0.5, seed=3),
    "gaussian-vae": lambda: npae.VAE(64, (32, 16), latent=3, likelihood="gaussian", seed=4),
    "vae-float64-no-hidden": lambda: npae.VAE(64, (), latent=2, seed=5, dtype="float64"),
    "iwae": lambda: npae.VAE(64, (16,), latent=2, objective="iwae", k=3, warmup_epochs=2, seed=6),
}


@pytest.fixture(scope="module")
def digits():
    return npae.datasets.load_digits()[0]


def fixed_eps(model, n, rng):
    """The randomness of one loss evaluation, drawn once so both models see the same."""
    if isinstance(model, npae.VAE):
        shape = (n, model.latent) if model.objective == "elbo" else (model.k, n, model.latent)
        return rng.standard_normal(shape)
    return rng.random((n, model.n_features)) if model.noise else None


@pytest.mark.parametrize("make", CONFIGS.values(), ids=CONFIGS.keys())
def test_a_loaded_model_computes_exactly_what_the_saved_one_did(make, digits, tmp_path, rng):
    model = make().fit(digits[:256], epochs=2, batch_size=64, verbose=0, seed=0)
    path = tmp_path / "model.npz"
    npae.save(model, path)
    loaded = npae.load(path)

    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    assert loaded.params.keys() == model.params.keys()
    for name, p in model.params.items():
        assert loaded.params[name].dtype == p.dtype
        np.testing.assert_array_equal(loaded.params[name], p)
    assert loaded.history == model.history

    X = digits[256:300]
    codes = model.encode(X)
    np.testing.assert_array_equal(loaded.encode(X), codes)
    np.testing.assert_array_equal(loaded.decode(codes), model.decode(codes))
    np.testing.assert_array_equal(loaded.reconstruct(X), model.reconstruct(X))
    eps = fixed_eps(model, X.shape[0], rng)
    loss, grads = model.loss_and_grads(X, eps=eps)
    loaded_loss, loaded_grads = loaded.loss_and_grads(X, eps=eps)
    assert loaded_loss == loss
    for name in grads:
        np.testing.assert_array_equal(loaded_grads[name], grads[name])


def test_tied_weights_stay_tied_after_loading(digits, tmp_path):
    model = CONFIGS["tied-deep-ae"]().fit(digits[:128], epochs=1, verbose=0)
    npae.save(model, tmp_path / "tied.npz")
    loaded = npae.load(tmp_path / "tied.npz")
    for dec, enc in zip(loaded.decoder.layers, reversed(loaded.encoder.layers)):
        assert np.shares_memory(dec.params["W"], enc.params["W"])
        assert np.array_equal(dec.params["W"], enc.params["W"].T)


@pytest.mark.parametrize("optimizer", [lambda: npae.Adam(2e-3, beta_1=0.5),
                                       lambda: npae.SGD(0.05, momentum=0.9)], ids=["adam", "sgd"])
def test_optimizer_state_round_trips_and_training_resumes_identically(optimizer, digits, tmp_path):
    """Saved mid-training with its optimiser, a model trains on exactly as if never saved."""
    X = digits[:256]
    model, opt = npae.VAE(64, (32,), latent=4, seed=0), optimizer()
    model.fit(X, epochs=2, batch_size=64, optimizer=opt, verbose=0, seed=0)
    path = tmp_path / "with-optimizer.npz"
    npae.save(model, path, optimizer=opt)
    loaded, loaded_opt = npae.load(path, return_optimizer=True)

    assert type(loaded_opt) is type(opt)
    state, loaded_state = opt.state_dict(), loaded_opt.state_dict()
    assert state.keys() == loaded_state.keys()
    for key, value in state.items():
        if isinstance(value, dict):   # per-parameter moments / velocities
            assert value.keys() == loaded_state[key].keys()
            for name in value:
                np.testing.assert_array_equal(loaded_state[key][name], value[name])
        else:
            assert loaded_state[key] == value

    model.fit(X, epochs=1, batch_size=64, optimizer=opt, verbose=0, seed=7)
    loaded.fit(X, epochs=1, batch_size=64, optimizer=loaded_opt, verbose=0, seed=7)
    for name, p in model.params.items():
        np.testing.assert_array_equal(loaded.params[name], p)


def test_a_file_saved_without_an_optimizer_loads_with_none(tmp_path):
    npae.save(npae.Autoencoder(8, (3,), seed=0), tmp_path / "plain.npz")
    model, opt = npae.load(tmp_path / "plain.npz", return_optimizer=True)
    assert isinstance(model, npae.Autoencoder) and opt is None


def test_the_file_is_a_plain_npz_readable_without_pickle(digits, tmp_path):
    model = npae.VAE(64, (16,), latent=2, likelihood="gaussian", seed=0)
    model.fit(digits[:128], epochs=1, verbose=0)
    opt = npae.Adam()
    model.fit(digits[:128], epochs=1, optimizer=opt, verbose=0)
    path = tmp_path / "vae.npz"
    npae.save(model, path, optimizer=opt)

    assert zipfile.is_zipfile(path)
    with np.load(path, allow_pickle=False) as archive:
        files = set(archive.files)
        meta = json.loads(str(archive["__npae__"]))
        stored = {name: archive[f"param/{name}"] for name in model.params}
        moments = {name: archive[f"optim/m/{name}"] for name in model.params}
    assert {f"param/{name}" for name in model.params} <= files
    assert meta["format"] == "npae" and meta["model"] == "VAE"
    assert meta["config"] == json.loads(json.dumps(model.get_params()))
    assert meta["params"] == list(model.params)
    for name, p in model.params.items():
        np.testing.assert_array_equal(stored[name], p)
        np.testing.assert_array_equal(moments[name], opt.m[name])
