"""Tests for npae.save / npae.load: a saved model computes exactly what the original
computes, the optimiser's memory comes back with it, and the file is a plain .npz.

Hostile files: loading never executes anything from the file (no pickle), reads no
more than the model it declares, and refuses anything but a complete npae file with
a ValueError that names the file; version-1 files still load."""

import io
import json
import math
import os
import pathlib
import pickle
import re
import struct
import time
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import npae
from npae.files import model_records as records
from npae.models.estimator import NotFittedError

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
    return rng.random((n, model.n_features_in_)) if model.noise else None


# =============================================================================
# Round trips
# =============================================================================
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
    assert loaded.n_features_in_ == model.n_features_in_ and loaded.dtype_ == model.dtype_

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
    assert "decoder.0.W" not in loaded.params and "decoder.1.W" not in loaded.params
    before = loaded.params["encoder.1.W"].copy()
    loaded.partial_fit(digits[:128])          # training the loaded model moves both uses together
    assert not np.array_equal(loaded.params["encoder.1.W"], before)
    for dec, enc in zip(loaded.decoder_.layers, reversed(loaded.encoder_.layers)):
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

    assert type(loaded_opt) is type(opt) and repr(loaded_opt) == repr(opt)
    state, loaded_state = opt.state_dict(), loaded_opt.state_dict()
    assert state.keys() == loaded_state.keys()
    for key, value in state.items():
        if isinstance(value, dict):   # per-parameter moments / velocities
            assert value.keys() == loaded_state[key].keys()
            for name in value:
                np.testing.assert_array_equal(loaded_state[key][name], value[name])
        else:
            assert loaded_state[key] == value

    model.fit(X, epochs=1, batch_size=64, optimizer=opt, verbose=0, seed=7, warm_start=True)
    loaded.fit(X, epochs=1, batch_size=64, optimizer=loaded_opt, verbose=0, seed=7, warm_start=True)
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
    assert meta["version"] == records.VERSION == 2
    assert meta["config"] == json.loads(json.dumps(model.get_params()))
    assert meta["fitted"] == {"n_features_in": 64, "dtype": "float32", "feature_names_in": None,
                              "history": model.history_}
    assert meta["params"] == list(model.params)
    for name, p in model.params.items():
        np.testing.assert_array_equal(stored[name], p)
        np.testing.assert_array_equal(moments[name], opt.m[name])


def test_column_names_and_a_width_from_the_data_come_back(tmp_path):
    import pandas as pd
    frame = pd.DataFrame(np.random.default_rng(0).random((20, 3)), columns=["a", "b", "c"])
    model = npae.Autoencoder(hidden=(2,), seed=0).fit(frame, epochs=1)   # n_features=None
    npae.save(model, tmp_path / "named.npz")
    loaded = npae.load(tmp_path / "named.npz")
    assert loaded.n_features is None and loaded.n_features_in_ == 3
    assert list(loaded.feature_names_in_) == ["a", "b", "c"]
    np.testing.assert_array_equal(loaded.transform(frame), model.transform(frame))


def test_a_checkpoint_loads_as_the_model_it_holds(digits, tmp_path):
    path = tmp_path / "ckpt.npz"
    model, opt = npae.VAE(64, (16,), latent=2, seed=0), npae.Adam()
    model.fit(digits[:200], epochs=2, batch_size=50, optimizer=opt, checkpoint=path)
    loaded, loaded_opt = npae.load(path, return_optimizer=True)
    for name, p in model.params.items():
        np.testing.assert_array_equal(loaded.params[name], p)
    assert loaded.history == model.history and loaded_opt.t == opt.t == 8


# =============================================================================
# Saving: what cannot be written is refused, and writes are atomic
# =============================================================================
@pytest.fixture
def saved(tmp_path):
    model = npae.VAE(8, (4,), latent=2, seed=0)
    opt = npae.Adam()
    model.fit(np.random.default_rng(0).random((32, 8)), epochs=1, optimizer=opt, verbose=0)
    path = tmp_path / "model.npz"
    npae.save(model, path, optimizer=opt)
    return model, path


def test_save_refuses_what_it_cannot_write_and_writes_nothing(tmp_path):
    model = npae.Autoencoder(4, (2,), seed=0)
    missing = tmp_path / "nowhere" / "m.npz"
    with pytest.raises(ValueError) as info:      # was FileNotFoundError before the redesign
        npae.save(model, missing)
    assert str(info.value) == (f"path: cannot write {missing}, the folder {tmp_path / 'nowhere'} "
                               "does not exist")
    with pytest.raises(ValueError) as info:      # was IsADirectoryError
        npae.save(model, tmp_path)
    assert str(info.value) == f"path must be a file path, but {tmp_path} is a folder"
    with pytest.raises(TypeError, match="^path must be a file path, got int 3$"):
        npae.save(model, 3)
    with pytest.raises(TypeError, match="^model must be an npae Autoencoder or VAE, got dict$"):
        npae.save({"W": np.zeros(3)}, tmp_path / "m.npz")
    with pytest.raises(TypeError, match=r"^optimizer must have a state_dict\(\) method, got str 'adam'$"):
        npae.save(model, tmp_path / "m.npz", optimizer="adam")
    with pytest.raises(NotFittedError, match="This VAE instance is not fitted yet"):
        npae.save(npae.VAE(), tmp_path / "m.npz")
    model.params["encoder.0.b"][0] = np.nan
    with pytest.raises(ValueError, match=r"^refusing to save: parameter 'encoder.0.b' holds NaN"):
        npae.save(model, tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fail_in", ["savez", "replace"])
def test_a_save_that_fails_midway_leaves_the_previous_file_and_no_temporary(saved, monkeypatch, fail_in):
    model, path = saved
    good = path.read_bytes()
    model.params["mu.b"][:] += 1.0  # so the new save would differ

    def savez_half(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    def replace_fails(src, dst):
        raise OSError("power cut")

    if fail_in == "savez":
        monkeypatch.setattr(np, "savez", savez_half)
    else:
        monkeypatch.setattr(os, "replace", replace_fails)
    with pytest.raises(OSError, match="disk full|power cut"):
        npae.save(model, path)
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.npz"]
    assert not np.array_equal(npae.load(path).params["mu.b"], model.params["mu.b"])


def test_a_new_file_gets_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        npae.save(npae.Autoencoder(4, (2,), seed=0), tmp_path / "m.npz")
    finally:
        os.umask(old)
    assert (tmp_path / "m.npz").stat().st_mode & 0o777 == 0o644


def test_save_writes_through_a_symbolic_link_and_to_a_long_name(tmp_path):
    model = npae.Autoencoder(4, (2,), seed=0)
    target = tmp_path / "models" / "latest-real.npz"
    target.parent.mkdir()
    (tmp_path / "latest.npz").symlink_to(target)
    npae.save(model, tmp_path / "latest.npz")
    assert (tmp_path / "latest.npz").is_symlink()
    np.testing.assert_array_equal(npae.load(target).params["encoder.0.W"], model.params["encoder.0.W"])
    long = tmp_path / ("m" * 245 + ".npz")          # 249 characters
    npae.save(model, long)
    assert isinstance(npae.load(long), npae.Autoencoder)
    assert [p.name for p in tmp_path.rglob("*.tmp")] == []


# =============================================================================
# Loading hostile files
# =============================================================================
class _Marker:
    """Unpickling this object creates a file: proof that code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def _write_npy(path, array):
    with open(path, "wb") as f:
        np.save(f, array, allow_pickle=True)


def _write_npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)  # allow_pickle defaults to True when writing: the attacker's file


def _good_meta(model):
    meta, _ = records.model_record(model)
    return np.array(json.dumps(meta))


def test_load_never_unpickles_an_object_array(tmp_path):
    marker = tmp_path / "code-ran"
    bad = tmp_path / "objects.npz"
    good = npae.Autoencoder(4, (2,), seed=0)
    arrays = {f"param/{k}": v for k, v in good.params.items()}
    arrays["param/encoder.0.W"] = np.array([_Marker(str(marker))], dtype=object)
    _write_npz(bad, __npae__=_good_meta(good), **arrays)
    with pytest.raises(ValueError, match=rf"^{bad}: .*'param/encoder.0.W'"):
        npae.load(bad)
    _write_npz(bad, __npae__=np.array([_Marker(str(marker))], dtype=object))
    with pytest.raises(ValueError, match=rf"^{bad}: .*'__npae__'"):
        npae.load(bad)
    assert not marker.exists()
    # the marker does work when unpickled, so the test would catch a load that unpickles
    with np.load(bad, allow_pickle=True) as archive:
        archive["__npae__"]
    assert marker.exists()


@pytest.mark.parametrize("name", ["pickle", "object-npy"])
def test_load_never_unpickles_a_pickle_or_an_object_npy(tmp_path, name):
    marker = tmp_path / "code-ran"
    path = tmp_path / "model.npz"
    if name == "pickle":
        path.write_bytes(pickle.dumps(_Marker(str(marker))))
        pattern = rf"^{path}: it is not an \.npz \(zip\) archive$"
    else:
        _write_npy(path, np.array([_Marker(str(marker))], dtype=object))
        pattern = rf"^{path}: it is a single \.npy array, not an \.npz archive$"
    with pytest.raises(ValueError, match=pattern):
        npae.load(path)
    assert not marker.exists()


def _rewrite_meta(path, part=None, **changes):
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(str(arrays["__npae__"]))
    target = meta if part is None else meta[part]
    for key, value in changes.items():
        if value is _DROP:
            del target[key]
        else:
            target[key] = value
    arrays["__npae__"] = np.array(json.dumps(meta))
    _write_npz(path, **arrays)


_DROP = object()


def _with_array(path, name, value):
    with np.load(path, allow_pickle=False) as archive:
        arrays = {n: archive[n] for n in archive.files}
    if value is _DROP:
        del arrays[name]
    else:
        arrays[name] = value
    _write_npz(path, **arrays)


BAD_FILES = {  # name: (damage done to a good file, what the refusal says after the file's name)
    "empty": (lambda p: p.write_bytes(b""), ": it is empty"),
    "random-bytes": (lambda p: p.write_bytes(np.random.default_rng(0).bytes(4000)),
                     r": it is not an \.npz \(zip\) archive"),
    "plain-npy": (lambda p: _write_npy(p, np.zeros(3)), r": it is a single \.npy array"),
    "other-npz": (lambda p: _write_npz(p, weights=np.zeros(3)), ": it has no npae metadata"),
    "truncated-header": (lambda p: p.write_bytes(p.read_bytes()[:10]), ": truncated or corrupt"),
    "truncated-half": (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
                       ": truncated or corrupt"),
    "truncated-end": (lambda p: p.write_bytes(p.read_bytes()[:-1]), ": truncated or corrupt"),
    "future-version": (lambda p: _rewrite_meta(p, version=3),
                       " has npae file format version 3; this npae reads versions 1, 2"),
    "no-version": (lambda p: _rewrite_meta(p, version=_DROP), " has npae file format version None"),
    "bool-version": (lambda p: _rewrite_meta(p, version=True), " has npae file format version True"),
    "other-format": (lambda p: _rewrite_meta(p, format="keras"), r" is not an npae model file \(format 'keras'\)"),
    "unknown-key": (lambda p: _rewrite_meta(p, comment="hi"),
                    r": its npae metadata is invalid: unknown keys \['comment'\]"),
    "unknown-model": (lambda p: _rewrite_meta(p, model="GAN"), ": its npae metadata is invalid: 'model' must be one of"),
    "model-a-list": (lambda p: _rewrite_meta(p, model=["VAE"]), ": its npae metadata is invalid: 'model' must be one of"),
    "no-config": (lambda p: _rewrite_meta(p, config=_DROP), ": its npae metadata is invalid: 'config' must be an object"),
    "unknown-argument": (lambda p: _rewrite_meta(p, "config", widht=3),
                         r": its npae metadata is invalid: 'config' has unknown arguments \['widht'\]"),
    "bad-config": (lambda p: _rewrite_meta(p, "config", latent=0),
                   ": its model configuration is invalid: latent must be a positive int, got 0"),
    "bad-dtype-in-config": (lambda p: _rewrite_meta(p, "config", dtype="int8"), ": .*dtype"),
    "no-fitted": (lambda p: _rewrite_meta(p, fitted=_DROP), ": its npae metadata is invalid: 'fitted' must hold"),
    "bad-width": (lambda p: _rewrite_meta(p, "fitted", n_features_in=0), ": .*the width must be an int in"),
    "bad-dtype": (lambda p: _rewrite_meta(p, "fitted", dtype="float16"), ": .*the dtype must be float32 or float64"),
    "bad-names": (lambda p: _rewrite_meta(p, "fitted", feature_names_in=["a"]),
                  ": .*'feature_names_in' must be None or one string per feature"),
    "bad-history": (lambda p: _rewrite_meta(p, "fitted", history=[1, 2]), ": .*'history' must map names"),
    "bad-param-list": (lambda p: _rewrite_meta(p, params=["mu.b"]), r": .*its parameter list \['mu.b'\] is not"),
    "bad-optimizer": (lambda p: _rewrite_meta(p, "optimizer", lr=-1.0),
                      r": its optimiser state is invalid: lr must be in \(0, inf\), got -1.0"),
    "unknown-optimizer": (lambda p: _rewrite_meta(p, optimizer={"name": "lbfgs"}), ": unknown optimiser 'lbfgs'"),
    "optimizer-name-a-list": (lambda p: _rewrite_meta(p, "optimizer", name=["adam"]), ": unknown optimiser"),
    "bad-step-count": (lambda p: _rewrite_meta(p, "optimizer", t=-1), ": its optimiser step count must be an int"),
    "meta-not-json": (lambda p: _with_array(p, "__npae__", np.array("{not json")), ": its npae metadata is not valid JSON"),
    "meta-nan": (lambda p: _with_array(p, "__npae__", np.array('{"format": NaN}')), ": .*not valid JSON"),
    "meta-a-list": (lambda p: _with_array(p, "__npae__", np.array("[1, 2]")), ": its npae metadata is not a JSON object"),
    "meta-numbers": (lambda p: _with_array(p, "__npae__", np.arange(3)), ": its npae metadata is not a JSON string"),
    "nan-parameter": (lambda p: _with_array(p, "param/mu.b", np.array([np.nan, 0], np.float32)),
                      ": parameter 'mu.b' holds NaN or infinity"),
    "wrong-shape": (lambda p: _with_array(p, "param/mu.b", np.zeros(3, np.float32)),
                    r": parameter 'mu.b' is float32\(3,\), the model needs float32\(2,\)"),
    "wrong-dtype": (lambda p: _with_array(p, "param/mu.b", np.zeros(2)), r": parameter 'mu.b' is float64\(2,\)"),
    "string-array": (lambda p: _with_array(p, "param/mu.b", np.array(["a", "b"])), r": parameter 'mu.b' is str32\(2,\)"),
    "missing-param": (lambda p: _with_array(p, "param/mu.b", _DROP), ": member 'param/mu.b' is missing"),
    "bad-moment": (lambda p: _with_array(p, "optim/m/mu.b", np.zeros(5, np.float32)),
                   r": .*'optim/m/mu.b' is float32\(5,\), expected float32\(2,\)"),
    "nan-moment": (lambda p: _with_array(p, "optim/m/mu.b", np.array([np.nan, 0], np.float32)),
                   ": optimiser state 'm/mu.b' must be finite"),
    "negative-moment": (lambda p: _with_array(p, "optim/v/mu.b", -np.ones(2, np.float32)),
                        r": optimiser state 'v/mu.b' must be finite and ≥ 0"),
    "stray-moment": (lambda p: _with_array(p, "optim/m/ghost", np.zeros(2, np.float32)),
                     ": unexpected optimiser state 'm/ghost'"),
    "stray-member": (lambda p: _with_array(p, "notes", np.zeros(2, np.float32)), r": unexpected members \['notes'\]"),
    "stray-param": (lambda p: _with_array(p, "param/ghost", np.zeros(2, np.float32)),
                    r": unexpected members \['param/ghost'\]"),
}


@pytest.mark.parametrize("damage, pattern", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_load_refuses_anything_but_a_complete_npae_file_naming_the_file(saved, damage, pattern):
    _, path = saved
    damage(path)
    with pytest.raises(ValueError) as info:
        npae.load(path, return_optimizer=True)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert re.match(re.escape(str(path)) + pattern, message), message
    assert message.count(str(path)) == 1, f"the file is named more than once: {message}"


def test_load_of_a_missing_file_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file: .*absent.npz"):
        npae.load(tmp_path / "absent.npz")
    with pytest.raises(TypeError, match="^path must be a file path"):
        npae.load(None)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
META_KEYS = ["format", "version", "model", "config", "fitted", "params", "history", "optimizer", "training"]


@given(data=st.data())
def test_any_json_in_any_metadata_field_is_refused_with_a_value_error_or_loads(data, tmp_path_factory):
    """Each field of the metadata (or of its config, fitted record or optimiser part) replaced
    by arbitrary JSON: a ValueError that names the file, never another error."""
    path = tmp_path_factory.mktemp("meta") / "model.npz"
    model, opt = npae.VAE(8, (4,), latent=2, seed=0), npae.Adam()
    model.fit(np.full((16, 8), 0.5), epochs=1, batch_size=4, optimizer=opt, verbose=0)
    npae.save(model, path, optimizer=opt)
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(str(arrays["__npae__"]))
    part = data.draw(st.sampled_from(["meta", "config", "fitted", "optimizer"]))
    target = meta if part == "meta" else meta[part]
    key = data.draw(st.sampled_from(sorted(target) + (META_KEYS if part == "meta" else [])))
    target[key] = data.draw(JSON)
    arrays["__npae__"] = np.array(json.dumps(meta))
    _write_npz(path, **arrays)
    try:
        loaded = npae.load(path, return_optimizer=True)[0]
    except ValueError as exc:
        assert str(path) in str(exc)
    else:
        for name, p in model.params.items():
            assert np.array_equal(loaded.params[name], p)


@given(data=st.data())
def test_damaged_files_are_refused_with_a_value_error_or_load_intact(data, tmp_path_factory):
    """Truncation anywhere, or a few bytes changed anywhere: ValueError naming the file, never
    another exception; a file that still loads (a change in an unchecked field) is intact."""
    folder = tmp_path_factory.mktemp("damaged")
    model = npae.VAE(8, (4,), latent=2, seed=0)
    opt = npae.Adam()
    model.fit(np.random.default_rng(0).random((16, 8)), epochs=1, optimizer=opt, verbose=0)
    path = folder / "model.npz"
    npae.save(model, path, optimizer=opt)
    raw = bytearray(path.read_bytes())
    if data.draw(st.booleans(), label="truncate"):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1), label="length")]
    else:
        for _ in range(data.draw(st.integers(1, 4), label="changes")):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    path.write_bytes(bytes(raw))
    try:
        loaded, _ = npae.load(path, return_optimizer=True)
    except ValueError as exc:
        assert str(path) in str(exc)
    else:
        for name, p in model.params.items():
            assert np.array_equal(loaded.params[name], p)


# -- sizes a file declares -------------------------------------------------------
def _npy(array_or_header, data=b""):
    if isinstance(array_or_header, np.ndarray):
        buffer = io.BytesIO()
        np.save(buffer, array_or_header, allow_pickle=False)
        return buffer.getvalue()
    return array_or_header + data


def _header(shape, dtype):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": np.dtype(dtype).str, "fortran_order": False,
                                                  "shape": shape})
    return buffer.getvalue()


def _claim_size(path, member, file_size):
    """Make the zip directory say ``member`` holds ``file_size`` bytes (what a crafted file does)."""
    raw = bytearray(path.read_bytes())
    at = raw.find(b"PK\x01\x02")
    while at >= 0:
        length = struct.unpack_from("<H", raw, at + 28)[0]
        if raw[at + 46:at + 46 + length] == member.encode():
            struct.pack_into("<I", raw, at + 24, file_size)
            struct.pack_into("<I", raw, struct.unpack_from("<I", raw, at + 42)[0] + 22, file_size)
        at = raw.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(raw))


def _declaring(path, n_features, hidden, members):
    """An Autoencoder file whose metadata declares ``n_features`` → ``hidden``, holding ``members``
    (name → .npy bytes, deflated)."""
    model = npae.Autoencoder(n_features, hidden, seed=0)
    meta = {"format": "npae", "version": 2, "model": "Autoencoder",
            "config": records.json_ready(model.get_params()),
            "fitted": {"n_features_in": n_features, "dtype": "float32", "feature_names_in": None,
                       "history": {}},
            "params": list(model.parameter_shapes(n_features))}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("__npae__.npy", _npy(np.array(json.dumps(meta))))
        for name, data in members.items():
            z.writestr(f"param/{name}.npy", data)
    return model.parameter_shapes(n_features)


def _load_measured(path):
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ValueError) as info:
            npae.load(path)
        return info.value, time.perf_counter() - start, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_enormous_layers_declared_with_small_arrays_are_refused_without_allocating(tmp_path):
    path = tmp_path / "huge.npz"
    small = npae.Autoencoder(8, (4, 4), seed=0).built().params   # the right names, small arrays
    _declaring(path, 8, [30000, 30000], {name: _npy(p) for name, p in small.items()})
    error, seconds, peak = _load_measured(path)
    assert str(error) == (f"{path}: parameter 'encoder.0.W' is float32(8, 4), the model needs "
                          "float32(8, 30000)")
    assert seconds < 1.0 and peak < 8 * 2**20, (seconds, peak)


def test_enormous_layers_whose_members_claim_the_right_sizes_are_refused_unread(tmp_path):
    """Headers and zip directory both say 3.6 GB for a few hundred bytes: deflate cannot do that."""
    path = tmp_path / "bomb.npz"
    shapes = npae.Autoencoder(8, (30000, 30000), seed=0).parameter_shapes(8)
    members = {}
    for name, shape in shapes.items():
        small = math.prod(shape) * 4 < 2**20       # the small ones honestly, the big ones crafted
        members[name] = (_npy(np.zeros(shape, np.float32)) if small
                         else _header(shape, np.float32) + bytes(1000))
    _declaring(path, 8, [30000, 30000], members)
    for name, shape in shapes.items():
        if math.prod(shape) * 4 >= 2**20:
            _claim_size(path, f"param/{name}.npy", len(_header(shape, np.float32)) + math.prod(shape) * 4)
    error, seconds, peak = _load_measured(path)
    assert str(error).startswith(f"{path}: member 'param/encoder.1.W' claims 3.6 GB from ")
    assert str(error).endswith("more than deflate can produce: the file is corrupt")
    assert seconds < 1.0 and peak < 16 * 2**20, (seconds, peak)


def test_a_model_of_petabytes_is_refused_from_its_metadata_alone(tmp_path):
    path = tmp_path / "peta.npz"
    _declaring(path, 10**9, [10**6], {})          # no members at all: they are never looked for
    error, seconds, peak = _load_measured(path)
    assert str(error).startswith(f"{path}: its npae metadata is invalid: it declares a model of 8.0 PB")
    assert "layers up to 1000000000 wide" in str(error)
    assert seconds < 1.0 and peak < 8 * 2**20, (seconds, peak)


# -- version 1 ---------------------------------------------------------------------
V1_CONFIG_KEYS = {  # the constructor arguments npae 0.1 wrote (it had no training hyper-parameters)
    "VAE": ["n_features", "hidden", "latent", "activation", "likelihood", "beta", "warmup_epochs",
            "objective", "k", "seed", "dtype"],
    "Autoencoder": ["n_features", "hidden", "activation", "output", "loss", "tied", "noise",
                    "noise_level", "sparsity", "sparsity_weight", "sparsity_target",
                    "contractive_weight", "seed", "dtype"],
}


def _version_1_file(path, model, optimizer=None, training=None):
    """A file as npae 0.1 wrote it: the width and dtype in the config, the history at the top,
    no "fitted" record; checkpoints with a flat training record and train/order."""
    params = model.params
    config = {k: records.json_ready(v) for k, v in model.get_params().items()
              if k in V1_CONFIG_KEYS[type(model).__name__]}
    config.update(n_features=model.n_features_in_, dtype=model.dtype_.name, seed=None)
    meta = {"format": "npae", "version": 1, "model": type(model).__name__, "config": config,
            "params": list(params), "history": model.history_}
    arrays = {f"param/{k}": v for k, v in params.items()}
    if optimizer is not None:
        state = optimizer.state_dict()
        meta["optimizer"] = {k: v for k, v in state.items() if not isinstance(v, dict)}
        for moment, values in state.items():
            if isinstance(values, dict):
                arrays.update({f"optim/{moment}/{k}": v for k, v in values.items()})
    if training is not None:
        meta["training"] = training
        arrays["train/order"] = np.arange(training["n_samples"], dtype=np.int64)[::-1].copy()
    arrays["__npae__"] = np.array(json.dumps(meta))
    _write_npz(path, **arrays)


@pytest.mark.parametrize("make", [
    lambda: npae.VAE(64, (8,), latent=2, seed=0),
    lambda: npae.VAE(64, (8,), latent=2, likelihood="gaussian", seed=0, dtype="float64"),
    lambda: npae.Autoencoder(64, (8,), tied=True, seed=1),
], ids=["vae", "gaussian-vae-float64", "tied-ae"])
def test_version_1_files_still_load(make, digits, tmp_path):
    model, opt = make(), npae.Adam()
    model.fit(digits[:64], epochs=2, optimizer=opt, verbose=0)
    path = tmp_path / "v1.npz"
    _version_1_file(path, model, opt)
    loaded, loaded_opt = npae.load(path, return_optimizer=True)
    assert type(loaded) is type(model) and loaded.n_features_in_ == 64 and loaded.dtype_ == model.dtype_
    assert loaded.init == "he-glorot"   # the one scheme there was: a refit starts as it did
    assert loaded.history == model.history and len(loaded.history["loss"]) == 2
    for name, p in model.params.items():
        assert loaded.params[name].dtype == p.dtype
        np.testing.assert_array_equal(loaded.params[name], p)
    np.testing.assert_array_equal(loaded.encode(digits[64:80]), model.encode(digits[64:80]))
    assert loaded_opt.t == opt.t
    for name, m in opt.m.items():
        np.testing.assert_array_equal(loaded_opt.m[name], m)


def test_a_version_1_checkpoint_loads_as_its_model(digits, tmp_path):
    model = npae.VAE(64, (8,), latent=2, seed=0).fit(digits[:64], epochs=1)
    training = {"epoch": 1, "batch": 0, "loss_sum": 0.0, "rng": np.random.default_rng(0).bit_generator.state,
                "history": model.history_, "n_samples": 64, "batch_size": 32, "shuffle": True,
                "validation": False}
    path = tmp_path / "v1-ckpt.npz"
    _version_1_file(path, model, npae.Adam(), training)
    loaded = npae.load(path)
    for name, p in model.params.items():
        np.testing.assert_array_equal(loaded.params[name], p)


def test_a_version_1_file_is_checked_like_any_other(digits, tmp_path):
    model = npae.VAE(64, (8,), latent=2, seed=0).fit(digits[:64], epochs=1)
    path = tmp_path / "v1.npz"
    _version_1_file(path, model)
    _rewrite_meta(path, "config", n_features=2**32)
    with pytest.raises(ValueError, match=rf"^{path}: .*the width must be an int in \[1, 2\*\*31\]"):
        npae.load(path)
    _version_1_file(path, model)
    _rewrite_meta(path, "config", n_features=32)
    with pytest.raises(ValueError, match=rf"^{path}: parameter 'encoder.0.W' is float32\(64, 8\), "
                                         r"the model needs float32\(32, 8\)"):
        npae.load(path)



# -- bombs: refused with bounded memory, measured in a child process --------------------------
def _saved_small_model(path):
    npae.save(npae.VAE(hidden=(8,), latent=2, epochs=1).fit(np.full((16, 6), 0.5)), path)
    return path


def _rewritten(path, change):
    """The model file at ``path`` with its metadata changed by ``change(meta)``."""
    with np.load(path, allow_pickle=False) as archive:
        members = {name: archive[name] for name in archive.files}
    meta = json.loads(members["__npae__"].item())
    change(meta)
    members["__npae__"] = np.array(json.dumps(meta))
    np.savez(path, **members)
    return path


def test_the_three_bombs_are_refused_with_bounded_memory(tmp_path):
    """A zip member inflating to 1 GiB, metadata declaring 1 GB of characters, and
    configurations declaring a 3.6 GB and a 4 PB network: each refused in well under a second
    and a few tens of MB, in a process of its own (its peak resident memory is read)."""
    import bombs
    zip_bomb = _saved_small_model(tmp_path / "zip-bomb.npz")
    bombs.add_deflated_member(zip_bomb, "extra.npy", bombs.npy_header((2**28,)), 1024)
    assert zip_bomb.stat().st_size < 2 * bombs.MiB
    meta_bomb = tmp_path / "meta-bomb.npz"
    with np.load(_saved_small_model(tmp_path / "m.npz"), allow_pickle=False) as archive:
        np.savez(meta_bomb, **{n: archive[n] for n in archive.files if n != "__npae__"})
    bombs.add_deflated_member(meta_bomb, "__npae__.npy", bombs.npy_header((), "<U250000000"), 954)
    wide = _rewritten(_saved_small_model(tmp_path / "wide.npz"),
                      lambda meta: meta["config"].update(hidden=[30000, 30000]))
    petabytes = _rewritten(_saved_small_model(tmp_path / "pb.npz"), lambda meta: (
        meta["config"].update(hidden=[10**6]), meta["fitted"].update(n_features_in=10**9)))
    baseline, _, _ = bombs.in_child("None")
    for path, reason in ((zip_bomb, "unexpected members \\['extra'\\]"),
                         (meta_bomb, "its metadata declares 1.0 GB, more than the 16.8 MB"),
                         (wide, "parameter list"), (petabytes, "declares a model of 8.0 PB")):
        peak, seconds, outcome = bombs.in_child(f"npae.load({str(path)!r})")
        assert outcome.startswith(f"ValueError: {path}: ") and re.search(reason, outcome), outcome
        assert peak - baseline < 64 * bombs.MiB and seconds < 2, (path.name, peak, seconds)


def test_byte_flips_in_a_compressed_model_file_never_give_a_traceback(tmp_path):
    """savez_compressed's deflated members with random bytes flipped: every load refuses with a
    ValueError naming the file, or loads a model equal to the saved one."""
    model = npae.VAE(hidden=(8,), latent=2, epochs=1).fit(np.full((16, 6), 0.5))
    plain = tmp_path / "plain.npz"
    npae.save(model, plain)
    compressed = tmp_path / "compressed.npz"
    with np.load(plain, allow_pickle=False) as archive:
        np.savez_compressed(compressed, **{n: archive[n] for n in archive.files})
    import bombs
    refused = 0
    for path in bombs.byte_flips(compressed.read_bytes(), tmp_path, "damaged-{}.npz", 150):
        try:
            loaded = npae.load(path)
        except ValueError as exc:
            assert str(path) in str(exc)
            refused += 1
            continue
        for name, value in model.params.items():
            np.testing.assert_array_equal(loaded.params[name], value)
    assert refused > 100
