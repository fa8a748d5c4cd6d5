"""Reliability: bad input is refused by name and changes nothing; the numbers stay finite;
files are written atomically and read without executing anything; training survives
Ctrl-C and SIGKILL and resumes bit-identically."""

import copy
import json
import os
import pathlib
import pickle
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import npae
from conftest import H, assert_gradients_ok
from npae.activations import get_activation, sigmoid, softplus
from npae.losses import bce_with_logits
from npae.vae import LOGVAR_MAX, LOGVAR_MIN

D = 6  # features of the small models of the validation battery
SMALL_MODELS = {
    "vae": lambda: npae.VAE(D, (5,), latent=2, seed=0),
    "ae": lambda: npae.Autoencoder(D, (3,), seed=0),
    "gaussian-vae": lambda: npae.VAE(D, (5,), latent=2, likelihood="gaussian", seed=0),
    "mse-ae": lambda: npae.Autoencoder(D, (3,), loss="mse", output="identity", seed=0),
}


@pytest.fixture(scope="module")
def digits():
    return npae.datasets.load_digits()[0]


def snapshot(model):
    """Everything a refused call must leave alone: parameters, generator, history, attributes."""
    return {"params": {k: v.copy() for k, v in model.params.items()},
            "rng": copy.deepcopy(model.rng.bit_generator.state),
            "history": copy.deepcopy(model.history),
            "attributes": sorted(vars(model))}


def assert_unchanged(model, before):
    after = snapshot(model)
    assert after["params"].keys() == before["params"].keys()
    for name, value in before["params"].items():
        assert np.array_equal(after["params"][name], value), f"{name} changed"
        assert after["params"][name].dtype == value.dtype
    assert after["rng"] == before["rng"], "the generator advanced"
    assert after["history"] == before["history"]
    assert after["attributes"] == before["attributes"]


# =============================================================================
# 1. Input validation
# =============================================================================
ENTRY_POINTS = {
    "fit": lambda m, X: m.fit(X, epochs=1, verbose=0),
    "fit_transform": lambda m, X: m.fit_transform(X, epochs=1, verbose=0),
    "loss_and_grads": lambda m, X: m.loss_and_grads(X),
    "average_loss": lambda m, X: m.average_loss(X),
    "encode": lambda m, X: m.encode(X),
    "transform": lambda m, X: m.transform(X),
    "reconstruct": lambda m, X: m.reconstruct(X),
}
VAE_ENTRY_POINTS = {
    "posterior": lambda m, X: m.posterior(X),
    "elbo": lambda m, X: m.elbo(X, n_samples=2),
    "log_likelihood": lambda m, X: m.log_likelihood(X, k=3),
}


def entry_points(model):
    return {**ENTRY_POINTS, **(VAE_ENTRY_POINTS if isinstance(model, npae.VAE) else {})}


@st.composite
def malformed(draw, *, unit_interval, float32, name="X"):
    """(kind, X, error type, message pattern) for one kind of bad ``X``, the argument ``name``."""
    kinds = ["ndim", "width", "nonfinite", "dtype", "ragged"]
    kinds += ["range", "uint8"] if unit_interval else (["too_large"] if float32 else [])
    kind = draw(st.sampled_from(kinds))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    n = draw(st.integers(1, 5))
    good = rng.random((n, D))
    if kind == "ndim":
        shape = draw(st.sampled_from([(), (D,), (n, D, 1), (1, n, D)]))
        hint = rf"{name}\.reshape\(1, -1\)" if shape == (D,) else "got"
        return kind, rng.random(shape), ValueError, rf"{name} must be 2-D \(n_samples, {D}\).*{hint}"
    if kind == "width":
        width = draw(st.integers(1, 12).filter(lambda w: w != D))
        return (kind, rng.random((n, width)), ValueError,
                rf"{name} has {width} features per row, but the model expects {D}")
    if kind == "nonfinite":
        row, col = draw(st.integers(0, n - 1)), draw(st.integers(0, D - 1))
        good[row, col] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        if draw(st.booleans()):
            good = good.astype(np.float32)
        return kind, good, ValueError, rf"{name} contains NaN or infinity \(first at row {row}, column {col}\)"
    if kind == "dtype":
        X = draw(st.sampled_from([good.astype(str), good.astype(object), good.astype(complex),
                                  np.zeros((n, D), dtype="datetime64[s]"), np.full((n, D), None)]))
        return kind, X, TypeError, rf"{name} must hold real numbers, got dtype"
    if kind == "ragged":
        return kind, [[0.5] * D, [0.5] * (D - 1)], TypeError, rf"{name} must be an array of numbers"
    if kind == "range":
        row, col = draw(st.integers(0, n - 1)), draw(st.integers(0, D - 1))
        good[row, col] = draw(st.one_of(st.floats(-1e6, -1e-6), st.floats(1 + 1e-6, 1e6)))
        return kind, good, ValueError, rf"{name} must lie in \[0, 1\] .* scale it to \[0, 1\] or use"
    if kind == "uint8":
        X = (good * 255).astype(np.uint8)
        X[0, 0] = 255
        return (kind, X, ValueError,
                rf"{name} must lie in \[0, 1\].*uint8 should be scaled to \[0, 1\] first, e\.g\. {name} / 255")
    # too_large: finite in float64, infinite in float32
    good[n - 1, D - 1] = 1e39
    return kind, good, ValueError, rf"{name}\[{n - 1}, {D - 1}\] = 1e\+39 is too large for float32"


@pytest.mark.parametrize("make", SMALL_MODELS.values(), ids=SMALL_MODELS.keys())
@given(data=st.data())
def test_malformed_inputs_are_refused_by_name_and_change_nothing(make, data):
    model = make()
    kind, X, error, pattern = data.draw(malformed(unit_interval=model.needs_unit_interval,
                                                  float32=model.dtype == np.float32))
    points = entry_points(model)
    name = data.draw(st.sampled_from(sorted(points)))
    before = snapshot(model)
    with pytest.raises(error, match=pattern):
        points[name](model, X)
    assert_unchanged(model, before)


@pytest.mark.parametrize("make", SMALL_MODELS.values(), ids=SMALL_MODELS.keys())
@given(data=st.data())
def test_malformed_validation_data_is_refused_by_name_before_any_training(make, data):
    model = make()
    kind, X_val, error, pattern = data.draw(malformed(unit_interval=model.needs_unit_interval,
                                                      float32=model.dtype == np.float32,
                                                      name="validation_data"))
    before = snapshot(model)
    with pytest.raises(error, match=pattern):
        model.fit(np.full((4, D), 0.5), validation_data=(X_val, None), epochs=1, verbose=0)
    assert_unchanged(model, before)


BAD_FIT_ARGUMENTS = [
    (dict(epochs=0), ValueError, "epochs must be a positive int, got 0"),
    (dict(epochs=-3), ValueError, "epochs must be a positive int"),
    (dict(epochs=2.5), ValueError, "epochs must be a positive int, got 2.5"),
    (dict(epochs=True), ValueError, "epochs must be a positive int"),
    (dict(batch_size=0), ValueError, "batch_size must be a positive int, got 0"),
    (dict(batch_size="64"), ValueError, "batch_size must be a positive int"),
    (dict(checkpoint_every=0), ValueError, "checkpoint_every must be a positive int"),
    (dict(shuffle="yes"), TypeError, "shuffle must be True or False"),
    (dict(verbose="loud"), TypeError, "verbose must be an int"),
    (dict(seed=-1), TypeError, "seed must be a non-negative int"),
    (dict(seed="zero"), TypeError, "seed must be a non-negative int"),
    (dict(optimizer="adam"), TypeError, r"optimizer must have a step\(params, grads\) method"),
    (dict(validation_data=(np.zeros((2, D)), None, None)), ValueError, "validation_data must be X_val or a tuple"),
    (dict(checkpoint=3.5), TypeError, "checkpoint must be a file path"),
]


@pytest.mark.parametrize("kwargs, error, pattern", BAD_FIT_ARGUMENTS,
                         ids=[f"{k}={v!r}"[:24] for kwargs, _, _ in BAD_FIT_ARGUMENTS for k, v in kwargs.items()])
def test_bad_fit_arguments_are_refused_by_name_and_change_nothing(kwargs, error, pattern):
    model = SMALL_MODELS["vae"]()
    before = snapshot(model)
    with pytest.raises(error, match=pattern):
        model.fit(np.full((8, D), 0.5), **{"verbose": 0, **kwargs})
    assert_unchanged(model, before)


def test_checkpoint_paths_that_cannot_be_written_are_refused_before_training(tmp_path):
    model = SMALL_MODELS["vae"]()
    before = snapshot(model)
    with pytest.raises(ValueError, match=r"checkpoint: cannot write .*the folder .*missing does not exist"):
        model.fit(np.full((8, D), 0.5), verbose=0, checkpoint=tmp_path / "missing" / "c.npz")
    with pytest.raises(ValueError, match="checkpoint must be a file path, but .* is a folder"):
        model.fit(np.full((8, D), 0.5), verbose=0, checkpoint=tmp_path)
    assert_unchanged(model, before)
    assert list(tmp_path.iterdir()) == []


def test_a_batch_larger_than_the_data_set_is_the_whole_data_set(digits):
    X = digits[:40]
    big = npae.VAE(64, (8,), latent=2, seed=0).fit(X, epochs=2, batch_size=1000, verbose=0, seed=1)
    exact = npae.VAE(64, (8,), latent=2, seed=0).fit(X, epochs=2, batch_size=40, verbose=0, seed=1)
    for name, p in exact.params.items():
        assert np.array_equal(big.params[name], p)


@pytest.mark.parametrize("make", SMALL_MODELS.values(), ids=SMALL_MODELS.keys())
def test_empty_input_gives_empty_output_where_that_makes_sense_and_is_refused_elsewhere(make):
    model = make()
    empty = np.zeros((0, D))
    assert model.encode(empty).shape == (0, model.code_size)
    assert model.reconstruct(empty).shape == (0, D)
    assert model.decode(np.zeros((0, model.code_size))).shape == (0, D)
    if isinstance(model, npae.VAE):
        assert model.elbo(empty).shape == (0,)
        assert model.log_likelihood(empty, k=2).shape == (0,)
    before = snapshot(model)
    for call in (lambda: model.fit(empty, verbose=0), lambda: model.loss_and_grads(empty),
                 lambda: model.average_loss(empty)):
        with pytest.raises(ValueError, match="X is empty: it has no rows"):
            call()
    assert_unchanged(model, before)


def test_one_sample_as_a_1d_array_is_refused_with_the_reshape_that_fixes_it():
    model = SMALL_MODELS["vae"]()
    with pytest.raises(ValueError, match=r"for one sample pass X\.reshape\(1, -1\)"):
        model.encode(np.full(D, 0.5))
    with pytest.raises(ValueError, match=r"for one sample pass Z\.reshape\(1, -1\)"):
        model.decode(np.zeros(model.code_size))
    assert model.encode(np.full(D, 0.5).reshape(1, -1)).shape == (1, 2)


@pytest.mark.parametrize("make", SMALL_MODELS.values(), ids=SMALL_MODELS.keys())
def test_decode_refuses_codes_of_the_wrong_width_or_not_finite(make):
    model = make()
    before = snapshot(model)
    width = model.code_size
    with pytest.raises(ValueError, match=rf"Z has {width + 1} features per row, but the model expects {width}"):
        model.decode(np.zeros((3, model.code_size + 1)))
    with pytest.raises(ValueError, match=r"Z contains NaN or infinity \(first at row 1, column 0\)"):
        model.decode(np.array([[0.0] * model.code_size, [np.nan] * model.code_size]))
    with pytest.raises(TypeError, match="Z must hold real numbers"):
        model.decode(np.array([["a"] * model.code_size]))
    assert_unchanged(model, before)


def test_decode_does_not_apply_the_data_range_check_to_codes():
    """An overcomplete autoencoder has codes as wide as the data; codes outside [0, 1] are codes."""
    model = npae.Autoencoder(3, (3,), seed=0)
    assert np.isfinite(model.decode(np.full((2, 3), 7.0))).all()


VAE_ARGUMENTS = [
    (lambda m: m.sample(0), ValueError, "n must be a positive int, got 0"),
    (lambda m: m.sample(-2), ValueError, "n must be a positive int"),
    (lambda m: m.sample(2.0), ValueError, "n must be a positive int, got 2.0"),
    (lambda m: m.log_likelihood(np.full((2, D), 0.5), k=0), ValueError, "k must be a positive int, got 0"),
    (lambda m: m.elbo(np.full((2, D), 0.5), n_samples=0), ValueError, "n_samples must be a positive int, got 0"),
    (lambda m: m.loss_and_grads(np.full((2, D), 0.5), eps=np.zeros((3, 2))), ValueError,
     r"eps must have shape \(2, 2\)"),
    (lambda m: m.set_params(activation="swish"), ValueError,
     "unknown activation 'swish'; valid activations are: identity, relu"),
    (lambda m: m.set_params(widht=3), ValueError, r"unknown parameters \['widht'\]"),
]


@pytest.mark.parametrize("call, error, pattern", VAE_ARGUMENTS, ids=[p[:24] for _, _, p in VAE_ARGUMENTS])
def test_bad_vae_arguments_are_refused_by_name_and_change_nothing(call, error, pattern):
    model = SMALL_MODELS["vae"]()
    before = snapshot(model)
    with pytest.raises(error, match=pattern):
        call(model)
    assert_unchanged(model, before)


BAD_CONSTRUCTORS = [
    (lambda: npae.VAE(D, activation="swish"), "unknown activation 'swish'; valid activations are: "
                                              "identity, relu, leaky_relu, sigmoid, tanh, softplus"),
    (lambda: npae.Autoencoder(D, output="softmax"), "unknown activation 'softmax'; valid activations are"),
    (lambda: npae.VAE(D, likelihood="poisson"), r"likelihood must be one of \('bernoulli', 'gaussian'\)"),
    (lambda: npae.VAE(D, objective="vimco"), r"objective must be one of \('elbo', 'iwae'\)"),
    (lambda: npae.Autoencoder(D, loss="hinge"), r"loss='hinge' is not supported; use one of"),
    (lambda: npae.VAE(0), "n_features must be a positive int, got 0"),
    (lambda: npae.VAE(D, latent=0), "latent must be a positive int, got 0"),
    (lambda: npae.VAE(D, hidden=(4, 0)), "hidden must be a positive int, got 0"),
    (lambda: npae.Autoencoder(D, hidden=()), "hidden must name at least one layer size"),
    (lambda: npae.VAE(D, beta=-1.0), r"beta must be in \[0, inf\], got -1.0"),
    (lambda: npae.VAE(D, beta=float("nan")), "beta must be in"),
    (lambda: npae.VAE(D, k=0), "k must be a positive int, got 0"),
    (lambda: npae.VAE(D, dtype="int32"), r"dtype must be one of \('float32', 'float64'\)"),
    (lambda: npae.Autoencoder(D, noise="mask", noise_level=1.0), r"noise_level must be in \[0, 1\)"),
]


@pytest.mark.parametrize("build, pattern", BAD_CONSTRUCTORS, ids=[p[:24] for _, p in BAD_CONSTRUCTORS])
def test_bad_model_settings_are_refused_by_name(build, pattern):
    with pytest.raises(ValueError, match=pattern):
        build()


BAD_OPTIMISERS = [
    (lambda: npae.Adam(lr=-1), ValueError, r"lr must be finite and > 0, got -1.0"),
    (lambda: npae.Adam(lr=0), ValueError, "lr must be finite and > 0"),
    (lambda: npae.Adam(lr=float("inf")), ValueError, "lr must be finite"),
    (lambda: npae.Adam(lr="0.1"), TypeError, "lr must be a number, got str"),
    (lambda: npae.Adam(beta_1=1.0), ValueError, r"beta_1 must be finite and in \[0, 1\)"),
    (lambda: npae.Adam(eps=0), ValueError, "eps must be finite and > 0"),
    (lambda: npae.SGD(lr=-0.1), ValueError, "lr must be finite and > 0"),
    (lambda: npae.SGD(momentum=1.5), ValueError, r"momentum must be finite and in \[0, 1\)"),
    (lambda: npae.Adam().step([np.zeros(2)], [np.zeros(2)]), TypeError, "params and grads must be dicts"),
    (lambda: npae.Adam().step({"w": np.zeros(2)}, {"w": np.zeros(3)}), ValueError,
     r"grads\['w'\] has shape \(3,\), but params\['w'\] has shape \(2,\)"),
    (lambda: npae.SGD().step({"w": np.zeros(2)}, {"v": np.zeros(2)}), ValueError, "same keys"),
]


@pytest.mark.parametrize("call, error, pattern", BAD_OPTIMISERS, ids=[p[:24] for _, _, p in BAD_OPTIMISERS])
def test_bad_optimiser_arguments_are_refused_by_name(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_a_refused_optimiser_step_changes_no_parameter():
    params = {"w": np.ones(3), "b": np.ones(2)}
    opt = npae.Adam()
    with pytest.raises(ValueError):
        opt.step(params, {"w": np.ones(3), "b": np.ones(5)})
    assert np.array_equal(params["w"], np.ones(3)) and np.array_equal(params["b"], np.ones(2))
    assert opt.t == 0


def _loss_of(p):
    return lambda: (float((p["w"] ** 2).sum()), {"w": 2 * p["w"]})


BAD_GRADCHECKS = [
    (lambda p: npae.gradcheck(_loss_of(p), [p["w"]]), TypeError, "params must be a non-empty dict"),
    (lambda p: npae.gradcheck(_loss_of(p), {}), TypeError, "params must be a non-empty dict"),
    (lambda p: npae.gradcheck(_loss_of(p), {"w": p["w"].astype(np.float32)}), TypeError,
     r"params\['w'\] must be a float64 ndarray"),
    (lambda p: npae.gradcheck(3, p), TypeError, "fn must be callable"),
    (lambda p: npae.gradcheck(_loss_of(p), p, eps=0.0), ValueError, r"eps must be a float in \(0, 1\)"),
    (lambda p: npae.gradcheck(_loss_of(p), p, n_entries=0), ValueError, "n_entries must be a positive int"),
    (lambda p: npae.gradcheck(lambda: (0.0, {}), p), ValueError, r"fn's grads lack the parameters \['w'\]"),
]


@pytest.mark.parametrize("call, error, pattern", BAD_GRADCHECKS, ids=[p[:24] for _, _, p in BAD_GRADCHECKS])
def test_bad_gradcheck_arguments_are_refused_by_name_and_leave_the_parameters(call, error, pattern):
    params = {"w": np.array([1.0, -2.0, 3.0])}
    with pytest.raises(error, match=pattern):
        call(params)
    assert np.array_equal(params["w"], [1.0, -2.0, 3.0])


def test_an_unknown_activation_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown activation 'gelu'; valid activations are: " +
                       ", ".join(npae.activations.ACTIVATIONS)):
        get_activation("gelu")


# =============================================================================
# 2. Numerical robustness
# =============================================================================
NUMPY_FAULTS = dict(over="raise", invalid="raise", divide="raise")  # underflow to 0 is fine


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_softplus_and_bce_are_finite_with_finite_gradients_at_logits_of_1e4(dtype):
    t = np.array([[-1e4, -100.0, 0.0, 100.0, 1e4]], dtype=dtype)
    with np.errstate(**NUMPY_FAULTS):
        s, sp = sigmoid(t), softplus(t)
        assert s.dtype == dtype and sp.dtype == dtype
        np.testing.assert_array_equal(s[0, [0, 2, 4]], [0.0, 0.5, 1.0])
        np.testing.assert_array_equal(sp[0, [0, 4]], [0.0, 1e4])
        for name in ("sigmoid", "softplus"):
            act = get_activation(name)
            y = act.f(t)
            assert np.isfinite(act.df(y)).all() and np.isfinite(act.d2f(y)).all()
        for x in (np.zeros_like(t), np.ones_like(t), np.full_like(t, 0.3)):
            loss, dlogits = bce_with_logits(t, x)
            per_example, _ = bce_with_logits(t, x, per_example=True)
            assert np.isfinite(loss) and np.isfinite(per_example).all() and np.isfinite(dlogits).all()
            assert (np.abs(dlogits) <= 1).all()
    # the exact values: a confident right answer costs 0, a confident wrong one costs |t|
    loss, _ = bce_with_logits(np.array([[1e4, -1e4]], dtype=dtype), np.array([[1.0, 0.0]], dtype=dtype))
    assert loss == 0.0
    loss, _ = bce_with_logits(np.array([[1e4, -1e4]], dtype=dtype), np.array([[0.0, 1.0]], dtype=dtype))
    assert loss == pytest.approx(2e4)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("objective", ["elbo", "iwae"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_vae_with_extreme_log_variances_has_finite_loss_and_gradients(likelihood, objective, dtype, digits):
    model = npae.VAE(64, (16,), latent=3, likelihood=likelihood, objective=objective,
                     k=3 if objective == "iwae" else 1, seed=0, dtype=dtype)
    model.logvar_head.params["b"][:] = [1e4, -1e4, 0.0]
    if likelihood == "gaussian":
        model.x_logvar[:2] = [1e4, -1e4]
    X = digits[:16]
    with np.errstate(**NUMPY_FAULTS):
        loss, grads = model.loss_and_grads(X)
        assert np.isfinite(loss)
        for name, g in grads.items():
            assert np.isfinite(g).all(), name
        # the clamped units pass no gradient to their head: exactly zero, not just small
        assert (grads["logvar.b"][:2] == 0).all() and (grads["logvar.W"][:, :2] == 0).all()
        assert grads["logvar.b"][2] != 0
        if likelihood == "gaussian":
            assert (grads["x_logvar"][:2] == 0).all() and (grads["x_logvar"][2:] != 0).any()
        mu, logvar = model.posterior(X)
        assert logvar[:, 0].max() == LOGVAR_MAX and logvar[:, 1].min() == LOGVAR_MIN
        for values in (model.elbo(X), model.log_likelihood(X, k=4), model.sample(5), model.encode(X)):
            assert np.isfinite(values).all()


def test_the_clamp_is_documented_and_perturbing_a_clamped_entry_leaves_the_loss_unchanged(digits):
    assert (LOGVAR_MIN, LOGVAR_MAX) == (-30.0, 20.0)
    assert re.search(r"clamped to\s+\[[−-]30, 20\]", npae.vae.__doc__)
    model = npae.VAE(64, (8,), latent=2, likelihood="gaussian", seed=0, dtype="float64")
    model.logvar_head.params["b"][0] = -1e4
    model.x_logvar[0] = 1e4
    X = digits[:8].astype(np.float64)
    eps = np.random.default_rng(0).standard_normal((8, 2))
    loss, grads = model.loss_and_grads(X, eps=eps)
    for array, index in ((model.logvar_head.params["b"], 0), (model.x_logvar, 0)):
        array[index] += 1.0
        assert model.loss_and_grads(X, eps=eps)[0] == loss  # the forward pass is flat there ...
        array[index] -= 1.0
    assert grads["logvar.b"][0] == 0 and grads["x_logvar"][0] == 0  # ... and so is the gradient


@pytest.mark.parametrize("biases", [(0.5, 1.5, -2.0), (-1e4, 1.5, -2.0)], ids=["all-inside", "one-clamped"])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("objective", ["elbo", "iwae"])
def test_gradients_check_with_log_variances_inside_the_clamp_or_clamped(likelihood, objective, biases):
    rng = np.random.default_rng(0)
    model = npae.VAE(5, (4,), 3, activation="tanh", likelihood=likelihood, objective=objective,
                     k=2 if objective == "iwae" else 1, seed=0, dtype="float64")
    X = rng.random((4, 5)) if likelihood == "bernoulli" else rng.normal(0.5, 1.0, (4, 5))
    if likelihood == "gaussian":
        model.x_logvar[:] = rng.normal(0.0, 0.5, 5)
    eps = rng.standard_normal((4, 3) if objective == "elbo" else (2, 4, 3))
    model.logvar_head.params["b"][:] = biases  # -1e4: unit 0 clamped to LOGVAR_MIN
    report = npae.gradcheck(lambda: model.loss_and_grads(X, eps=eps), model.params, eps=H)
    assert_gradients_ok(report)
    _, grads = model.loss_and_grads(X, eps=eps)
    clamped = biases[0] < LOGVAR_MIN
    assert (grads["logvar.b"][0] == 0) == clamped and (grads["logvar.W"][:, 0] == 0).all() == clamped


def test_fit_with_a_learning_rate_of_1e6_stops_naming_epoch_and_batch_and_keeps_the_last_finite_step(digits):
    model = npae.VAE(64, (16,), latent=2, seed=0)
    seen = []

    class Recording(npae.Adam):
        def step(self, params, grads):
            super().step(params, grads)
            seen.append({k: v.copy() for k, v in params.items()})

    with np.errstate(over="ignore", invalid="ignore"):
        diverged = r"training diverged at epoch 1, batch (\d+): .*Try a smaller learning rate"
        with pytest.raises(FloatingPointError, match=diverged) as info:
            model.fit(digits[:512], epochs=5, batch_size=64, optimizer=Recording(lr=1e6), verbose=0, seed=0)
    batch = int(re.search(r"batch (\d+)", str(info.value)).group(1))
    assert len(seen) == batch - 1  # every batch before the failing one took its step
    for name, p in model.params.items():
        assert np.isfinite(p).all()
        assert np.array_equal(p, seen[-1][name])  # the parameters the failing batch saw
    assert np.isfinite(model.encode(digits[:4])).all()  # and the model is still usable


@pytest.mark.parametrize("optimizer", [lambda: npae.SGD(lr=1e6), lambda: npae.Adam(lr=1e6)], ids=["sgd", "adam"])
def test_a_gaussian_vae_that_diverges_keeps_finite_parameters(optimizer, digits):
    model = npae.VAE(64, (16,), latent=2, likelihood="gaussian", seed=0)
    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(FloatingPointError, match=r"training diverged at epoch \d+, batch \d+"):
            model.fit(digits[:512], epochs=10, batch_size=64, optimizer=optimizer(), verbose=0, seed=0)
    assert all(np.isfinite(p).all() for p in model.params.values())


class _Overflowing:
    """An optimiser whose third step turns a parameter infinite."""

    def __init__(self):
        self.inner, self.t = npae.SGD(lr=0.01), 0

    def step(self, params, grads):
        self.t += 1
        self.inner.step(params, grads)
        if self.t == 3:
            next(iter(params.values())).flat[0] = np.inf


class _InterruptedMidStep:
    """An optimiser pressed Ctrl-C twice (KeyboardInterrupt) halfway through its third update."""

    def __init__(self):
        self.t = 0

    def step(self, params, grads):
        self.t += 1
        for i, (name, p) in enumerate(params.items()):
            p -= 0.01 * grads[name]
            if self.t == 3 and i == 1:
                raise KeyboardInterrupt


@pytest.mark.parametrize("optimizer, error, pattern", [
    (_Overflowing, FloatingPointError, r"epoch 1, batch 3: the update made a parameter overflow"),
    (_InterruptedMidStep, KeyboardInterrupt, None),
], ids=["overflow", "interrupted"])
def test_a_step_that_overflows_or_is_interrupted_is_undone(optimizer, error, pattern, digits):
    model = npae.Autoencoder(64, (8,), seed=0)
    reference = npae.Autoencoder(64, (8,), seed=0)
    reference.fit(digits[:64], epochs=1, batch_size=16, optimizer=npae.SGD(lr=0.01), shuffle=False, verbose=0)
    # two steps of the reference run: refit with the first 32 rows only
    two_steps = npae.Autoencoder(64, (8,), seed=0)
    two_steps.fit(digits[:32], epochs=1, batch_size=16, optimizer=npae.SGD(lr=0.01), shuffle=False, verbose=0)
    with pytest.raises(error, match=pattern):
        model.fit(digits[:64], epochs=1, batch_size=16, optimizer=optimizer(), shuffle=False, verbose=0)
    for name, p in model.params.items():
        assert np.array_equal(p, two_steps.params[name])
        assert not np.array_equal(p, reference.params[name])


def test_huge_but_finite_gradients_are_not_mistaken_for_overflow():
    from npae.training import _norm_is_finite, _numerical_problem
    big = np.full(10, 1e38, dtype=np.float32)  # its Σ a² overflows float32, its entries do not
    assert not _norm_is_finite(big) and np.isfinite(big).all()
    assert _norm_is_finite(np.full(10, 1e18, dtype=np.float32))
    assert _numerical_problem(1.0, {"w": np.full(4, 1e18, dtype=np.float32)}) is None
    assert "too large to square" in _numerical_problem(1.0, {"w": np.full(4, 1e20, dtype=np.float32)})
    assert "not finite" in _numerical_problem(1.0, {"w": np.array([0.0, np.nan])})
    assert "the loss is inf" in _numerical_problem(float("inf"), {})


# =============================================================================
# 3. Files
# =============================================================================
@pytest.fixture
def saved(tmp_path):
    model = npae.VAE(8, (4,), latent=2, seed=0)
    opt = npae.Adam()
    model.fit(np.random.default_rng(0).random((32, 8)), epochs=1, optimizer=opt, verbose=0)
    path = tmp_path / "model.npz"
    npae.save(model, path, optimizer=opt)
    return model, path


def test_the_file_carries_the_format_version(saved):
    _, path = saved
    with np.load(path, allow_pickle=False) as archive:
        meta = json.loads(str(archive["__npae__"]))
    assert meta["format"] == "npae" and meta["version"] == npae.io.VERSION == 1


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


def test_save_refuses_what_it_cannot_write_and_writes_nothing(tmp_path):
    model = npae.Autoencoder(4, (2,), seed=0)
    with pytest.raises(FileNotFoundError, match="the folder .*nowhere does not exist"):
        npae.save(model, tmp_path / "nowhere" / "m.npz")
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        npae.save(model, tmp_path)
    with pytest.raises(TypeError, match="model must be an npae Autoencoder or VAE"):
        npae.save({"W": np.zeros(3)}, tmp_path / "m.npz")
    with pytest.raises(TypeError, match="optimizer must be an npae optimiser"):
        npae.save(model, tmp_path / "m.npz", optimizer="adam")
    model.params["encoder.0.b"][0] = np.nan
    with pytest.raises(ValueError, match=r"refusing to save: parameter 'encoder.0.b' holds NaN"):
        npae.save(model, tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


class _Marker:
    """Unpickling this object creates a file: proof that code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def _meta(**changes):
    meta = {"format": "npae", "version": 1, "model": "Autoencoder",
            "config": npae.Autoencoder(4, (2,), seed=0).get_params(), "params": [], "history": {}}
    meta.update(changes)
    return np.array(json.dumps(meta))


def _write_npy(path, array):
    with open(path, "wb") as f:
        np.save(f, array, allow_pickle=True)


def _write_npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)  # allow_pickle defaults to True when writing: the attacker's file


def test_load_never_unpickles_an_object_array(tmp_path):
    marker = tmp_path / "code-ran"
    bad = tmp_path / "objects.npz"
    good = npae.Autoencoder(4, (2,), seed=0)
    arrays = {f"param/{k}": v for k, v in good.params.items()}
    arrays["param/encoder.0.W"] = np.array([_Marker(str(marker))], dtype=object)
    _write_npz(bad, __npae__=_meta(), **arrays)
    refused = r"refused, array 'param/encoder.0.W' holds Python objects \(npae never unpickles\)"
    with pytest.raises(ValueError, match=refused):
        npae.load(bad)
    _write_npz(bad, __npae__=np.array([_Marker(str(marker))], dtype=object))
    with pytest.raises(ValueError, match="holds Python objects"):
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
        pattern = r"is not an npae model file: it is not an \.npz \(zip\) archive"
    else:
        _write_npy(path, np.array([_Marker(str(marker))], dtype=object))
        pattern = r"is not an npae model file: it is a single \.npy array"
    with pytest.raises(ValueError, match=pattern):
        npae.load(path)
    assert not marker.exists()


def _rewrite_meta(path, **changes):
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(str(arrays["__npae__"]))
    for key, value in changes.items():
        if value is _DROP:
            del meta[key]
        else:
            meta[key] = value
    arrays["__npae__"] = np.array(json.dumps(meta))
    _write_npz(path, **arrays)


_DROP = object()


def _with_array(path, name, value):
    with np.load(path, allow_pickle=False) as archive:
        arrays = {n: archive[n] for n in archive.files}
    arrays[name] = value
    _write_npz(path, **arrays)


BAD_FILES = {  # name: (damage done to a good file, what the refusal says)
    "empty": (lambda p: p.write_bytes(b""), "it is empty"),
    "random-bytes": (lambda p: p.write_bytes(np.random.default_rng(0).bytes(4000)),
                     r"it is not an \.npz \(zip\) archive"),
    "plain-npy": (lambda p: _write_npy(p, np.zeros(3)), r"it is a single \.npy array"),
    "other-npz": (lambda p: _write_npz(p, weights=np.zeros(3)), "it has no npae metadata"),
    "truncated-header": (lambda p: p.write_bytes(p.read_bytes()[:10]), "truncated or corrupt"),
    "truncated-half": (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "truncated or corrupt"),
    "truncated-end": (lambda p: p.write_bytes(p.read_bytes()[:-1]), "truncated or corrupt"),
    "future-version": (lambda p: _rewrite_meta(p, version=2),
                       "has npae file format version 2; this npae reads version 1"),
    "no-version": (lambda p: _rewrite_meta(p, version=_DROP), "has npae file format version None"),
    "other-format": (lambda p: _rewrite_meta(p, format="keras"), r"is not an npae model file \(format 'keras'\)"),
    "unknown-model": (lambda p: _rewrite_meta(p, model="GAN"), "'model' must be one of"),
    "no-config": (lambda p: _rewrite_meta(p, config=_DROP), "'config' must be an object"),
    "bad-config": (lambda p: _rewrite_meta(p, config={"n_features": 0}), "its model configuration is invalid"),
    "bad-history": (lambda p: _rewrite_meta(p, history=[1, 2]), "'history' must map names"),
    "bad-optimizer": (lambda p: _rewrite_meta(p, optimizer={"name": "adam", "lr": -1.0}),
                      "its optimiser state is invalid: lr must be"),
    "unknown-optimizer": (lambda p: _rewrite_meta(p, optimizer={"name": "lbfgs"}), "unknown optimiser 'lbfgs'"),
    "meta-not-json": (lambda p: _with_array(p, "__npae__", np.array("{not json")), "not valid JSON"),
    "meta-a-list": (lambda p: _with_array(p, "__npae__", np.array("[1, 2]")),
                    r"not an npae model file \(format 'list'\)"),
    "meta-numbers": (lambda p: _with_array(p, "__npae__", np.arange(3)), "metadata is not a JSON string"),
    "nan-parameter": (lambda p: _with_array(p, "param/mu.b", np.array([np.nan, 0], np.float32)),
                      "parameter 'mu.b' holds NaN"),
    "wrong-shape": (lambda p: _with_array(p, "param/mu.b", np.zeros(3, np.float32)),
                    r"parameter 'mu.b' is float32\(3,\), the model needs float32\(2,\)"),
    "wrong-dtype": (lambda p: _with_array(p, "param/mu.b", np.zeros(2)), r"parameter 'mu.b' is float64\(2,\)"),
    "string-array": (lambda p: _with_array(p, "param/mu.b", np.array(["a", "b"])), "has dtype <U1, not numbers"),
    "bad-moment": (lambda p: _with_array(p, "optim/m/mu.b", np.zeros(5, np.float32)),
                   r"optimiser state 'optim/m/mu.b' must be finite float32\(2,\)"),
    "negative-moment": (lambda p: _with_array(p, "optim/v/mu.b", -np.ones(2, np.float32)), "is negative"),
    "stray-moment": (lambda p: _with_array(p, "optim/m/ghost", np.zeros(2, np.float32)),
                     "unexpected optimiser state 'optim/m/ghost'"),
}


@pytest.mark.parametrize("damage, pattern", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_load_refuses_anything_but_a_complete_npae_file_with_a_clear_message(saved, damage, pattern):
    _, path = saved
    damage(path)
    with pytest.raises(ValueError, match=pattern):
        npae.load(path, return_optimizer=True)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
META_KEYS = ["format", "version", "model", "config", "params", "history", "optimizer", "training"]


@given(data=st.data())
def test_any_json_in_any_metadata_field_is_refused_with_a_value_error_or_loads(data, tmp_path_factory):
    """A crafted checkpoint: each field of the metadata (or of its config, optimiser or training
    part) replaced by arbitrary JSON gives a ValueError that names the file, never another error."""
    path = tmp_path_factory.mktemp("meta") / "ckpt.npz"
    model = npae.VAE(8, (4,), latent=2, seed=0)
    model.fit(np.full((16, 8), 0.5), epochs=1, batch_size=4, optimizer=npae.Adam(), verbose=0,
              checkpoint=path)
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(str(arrays["__npae__"]))
    part = data.draw(st.sampled_from(["meta", "config", "optimizer", "training", "rng"]))
    target = {"meta": meta, "config": meta["config"], "optimizer": meta["optimizer"],
              "training": meta["training"], "rng": meta["training"]["rng"]}[part]
    key = data.draw(st.sampled_from(sorted(target) + (META_KEYS if part == "meta" else [])))
    target[key] = data.draw(JSON)
    arrays["__npae__"] = np.array(json.dumps(meta))
    _write_npz(path, **arrays)
    fresh = npae.VAE(8, (4,), latent=2, seed=0)
    for attempt in (lambda: npae.load(path, return_optimizer=True),
                    lambda: fresh.fit(np.full((16, 8), 0.5), epochs=2, batch_size=4, verbose=0, resume=path)):
        try:
            attempt()
        except ValueError as exc:
            assert str(path) in str(exc)


def test_load_of_a_missing_file_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model file at .*absent.npz"):
        npae.load(tmp_path / "absent.npz")


@given(data=st.data())
def test_damaged_files_are_refused_with_a_value_error_or_load_intact(data, tmp_path_factory):
    """Truncation anywhere, or a few bytes changed anywhere: ValueError, never another exception;
    a file that still loads (a change in an unchecked header field) gives the saved parameters."""
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


# =============================================================================
# 4. Checkpoints, Ctrl-C and resume
# =============================================================================
RESUMABLE = {
    "vae": lambda: npae.VAE(64, (16,), latent=2, seed=0),
    "iwae-warmup": lambda: npae.VAE(64, (16,), latent=2, objective="iwae", k=2, warmup_epochs=2, seed=0),
    "denoising-ae": lambda: npae.Autoencoder(64, (8,), noise="mask", noise_level=0.3, seed=0),
}
FIT = dict(epochs=3, batch_size=32, seed=5, verbose=0)


def assert_same_training_state(model, opt, other, other_opt):
    for name, p in model.params.items():
        assert np.array_equal(other.params[name], p), name
    assert other.history == model.history
    assert other.rng.bit_generator.state == model.rng.bit_generator.state
    state, other_state = opt.state_dict(), other_opt.state_dict()
    assert state["t"] == other_state["t"]
    for moment in ("m", "v"):
        for name, value in state[moment].items():
            assert np.array_equal(other_state[moment][name], value)


class CtrlCAt(npae.Adam):
    """Adam that presses Ctrl-C (SIGINT to this very process) right after its step number ``at``."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def step(self, params, grads):
        super().step(params, grads)
        if self.t == self.at:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("make", RESUMABLE.values(), ids=RESUMABLE.keys())
def test_resuming_from_a_checkpoint_ends_bit_identical_to_an_uninterrupted_run(make, digits, tmp_path):
    X, X_val = digits[:300], digits[300:340]
    straight, straight_opt = make(), npae.Adam()
    straight.fit(X, optimizer=straight_opt, validation_data=X_val, **FIT)

    path = tmp_path / "ckpt.npz"
    first = make()
    first.fit(X, optimizer=npae.Adam(), validation_data=X_val, checkpoint=path, **{**FIT, "epochs": 1})
    resumed, resumed_opt = make(), npae.Adam()
    resumed.fit(X, optimizer=resumed_opt, validation_data=X_val, checkpoint=path, resume=path, **FIT)
    assert_same_training_state(straight, straight_opt, resumed, resumed_opt)
    assert len(resumed.history["loss"]) == len(resumed.history["val_loss"]) == 3


@pytest.mark.parametrize("shuffle", [True, False], ids=["shuffled", "in-order"])
@pytest.mark.parametrize("at", [1, 13, 10], ids=["first-step", "mid-epoch", "last-step-of-an-epoch"])
@pytest.mark.parametrize("make", [RESUMABLE["vae"], RESUMABLE["denoising-ae"]], ids=["vae", "denoising-ae"])
def test_ctrl_c_stops_at_a_batch_boundary_saves_and_resumes_bit_identically(make, at, shuffle, digits, tmp_path):
    X = digits[:300]  # 10 batches of 32 (the last one 12) per epoch
    straight, straight_opt = make(), npae.Adam()
    straight.fit(X, optimizer=straight_opt, shuffle=shuffle, **FIT)

    path = tmp_path / "ckpt.npz"
    model, opt = make(), CtrlCAt(at)
    returned = model.fit(X, optimizer=opt, shuffle=shuffle, checkpoint=path, **FIT)
    assert returned is model and model.interrupted
    assert opt.t == at  # stopped at the next batch boundary: the interrupted step was completed
    assert len(model.history["loss"]) == at // 10
    assert all(np.isfinite(p).all() for p in model.params.values())
    assert model.encode(X[:3]).shape == (3, model.code_size)  # usable as it is
    with np.load(path, allow_pickle=False) as archive:
        training = json.loads(str(archive["__npae__"]))["training"]
    assert (training["epoch"], training["batch"]) == divmod(at, 10)

    resumed, resumed_opt = make(), npae.Adam()
    resumed.fit(X, optimizer=resumed_opt, shuffle=shuffle, checkpoint=path, resume=path, **FIT)
    assert not resumed.interrupted
    assert_same_training_state(straight, straight_opt, resumed, resumed_opt)


def test_ctrl_c_without_a_checkpoint_returns_a_usable_model(digits):
    handler = signal.getsignal(signal.SIGINT)
    model = RESUMABLE["vae"]()
    model.fit(digits[:300], optimizer=CtrlCAt(4), **FIT)
    assert model.interrupted and model.history == {"loss": []}
    assert np.isfinite(model.elbo(digits[:5])).all()
    assert signal.getsignal(signal.SIGINT) is handler  # the handler is put back


RESUME_MISMATCHES = [
    (dict(batch_size=16), "written with batch_size=32, but this run has batch_size=16"),
    (dict(shuffle=False), "written with shuffle=True, but this run has shuffle=False"),
    (dict(X=slice(0, 200)), "written with n_samples=300, but this run has n_samples=200"),
    (dict(validation_data=slice(300, 320)), "written with validation=False, but this run has validation=True"),
    (dict(optimizer=lambda: npae.SGD(0.1)), r"the checkpoint's optimiser \(Adam.*\) is not a SGD"),
    (dict(make=lambda: npae.VAE(64, (16,), latent=3, seed=0)), "written by a different model: latent=2 there, 3 here"),
    (dict(make=lambda: npae.Autoencoder(64, (16,), seed=0)),
     "the checkpoint holds model class 'VAE', this model's class is 'Autoencoder'"),
]


@pytest.mark.parametrize("change, pattern", RESUME_MISMATCHES, ids=[p[:30] for _, p in RESUME_MISMATCHES])
def test_resume_with_other_settings_is_refused_and_changes_nothing(change, pattern, digits, tmp_path):
    path = tmp_path / "ckpt.npz"
    RESUMABLE["vae"]().fit(digits[:300], optimizer=CtrlCAt(13), checkpoint=path, **FIT)
    model = change.get("make", RESUMABLE["vae"])()
    before = snapshot(model)
    kwargs = {**FIT, "batch_size": change.get("batch_size", 32), "shuffle": change.get("shuffle", True)}
    if "validation_data" in change:
        kwargs["validation_data"] = digits[change["validation_data"]]
    with pytest.raises(ValueError, match=pattern):
        model.fit(digits[change.get("X", slice(0, 300))], resume=path,
                  optimizer=change.get("optimizer", npae.Adam)(), **kwargs)
    assert_unchanged(model, before)


def test_resume_from_a_plain_model_file_or_a_damaged_checkpoint_is_refused(digits, tmp_path):
    model = RESUMABLE["vae"]()
    npae.save(model, tmp_path / "model.npz")
    before = snapshot(model)
    with pytest.raises(ValueError, match="this is a model file, not a checkpoint"):
        model.fit(digits[:300], resume=tmp_path / "model.npz", **FIT)
    path = tmp_path / "ckpt.npz"
    RESUMABLE["vae"]().fit(digits[:300], optimizer=CtrlCAt(13), checkpoint=path, **FIT)
    _with_array(path, "train/order", np.zeros(300, dtype=np.int64))
    with pytest.raises(ValueError, match="its permutation is not a permutation of the 300 rows"):
        model.fit(digits[:300], resume=path, **FIT)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        model.fit(digits[:300], resume=path, **FIT)
    assert_unchanged(model, before)


# -- in another process: SIGKILL and SIGINT ---------------------------------------
TRAINING_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import npae

    checkpoint, out, epochs, resume = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "resume"
    X = np.tile(npae.datasets.load_digits()[0], (4, 1))
    model = npae.VAE(64, (128,), latent=8, seed=0)
    model.fit(X, epochs=epochs, batch_size=32, seed=0, verbose=1,
              checkpoint=None if checkpoint == "-" else checkpoint,
              resume=checkpoint if resume else None)
    np.savez(out, **model.params)
    print("interrupted" if model.interrupted else "finished", flush=True)
""")
EPOCHS = 4


def _run(script, *args):
    return subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def training_script(tmp_path_factory):
    folder = tmp_path_factory.mktemp("subprocess")
    script = folder / "train.py"
    script.write_text(TRAINING_SCRIPT)
    done = _run(script, "-", folder / "reference.npz", EPOCHS, "fresh")
    assert done.returncode == 0 and "finished" in done.stdout, done.stderr
    with np.load(folder / "reference.npz") as reference:
        return script, {name: reference[name] for name in reference.files}


def _start_and_signal(script, checkpoint, out, signum):
    """Start a run, wait for its second epoch to end, then send ``signum`` half an epoch later."""
    process = subprocess.Popen([sys.executable, "-u", str(script), checkpoint, out, str(EPOCHS), "fresh"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ends = []
    for line in process.stdout:
        if line.startswith("epoch "):
            ends.append(time.perf_counter())
        if len(ends) == 2:
            break
    assert len(ends) == 2, process.stderr.read()
    time.sleep(min(0.5 * (ends[1] - ends[0]), 2.0))
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    return process.returncode, stdout, stderr


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_a_run_killed_or_interrupted_in_another_process_resumes_bit_identically(signum, training_script, tmp_path):
    script, reference = training_script
    checkpoint, out = tmp_path / "ckpt.npz", tmp_path / "params.npz"
    status, stdout, stderr = _start_and_signal(script, checkpoint, out, signum)
    if signum == signal.SIGKILL:
        assert status == -signal.SIGKILL and not out.exists()
    else:
        assert status == 0 and "interrupted" in stdout, stderr
        assert re.search(r"interrupted at epoch [34], batch \d+: stopping with the last completed step; "
                         r"resume from .*ckpt.npz", stderr)
    with np.load(checkpoint, allow_pickle=False) as archive:
        reached = json.loads(str(archive["__npae__"]))["training"]
    assert 2 <= reached["epoch"] < EPOCHS  # stopped part-way, after the second epoch's checkpoint
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []

    done = _run(script, checkpoint, out, EPOCHS, "resume")
    assert done.returncode == 0 and "finished" in done.stdout, done.stderr
    with np.load(out) as resumed:
        assert sorted(resumed.files) == sorted(reference)
        for name, value in reference.items():
            assert np.array_equal(resumed[name], value), name
