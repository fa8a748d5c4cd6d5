"""The models' refusals and their numbers: malformed input is refused by name at every entry point
and changes nothing; bad hyper-parameters are stored by the constructor and refused at fit, by
name, TypeError for a wrong type and ValueError for a wrong value; sigmoid, softplus, the BCE
and the VAE's clamped log-variances stay finite at extreme values, with the gradient checked
inside the clamp and exactly zero outside; empty input gives empty output where that makes
sense; one sample as a 1-D array is refused with the reshape that fixes it."""

import re
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import npae
from conftest import assert_unchanged, snapshot, GRAD_TOL, H, assert_gradients_ok
from npae.data import unit_interval
from npae.nn.activations import get_activation, sigmoid, softplus
from npae.models.estimator import NotFittedError
from npae.nn.losses import bce_with_logits
from npae.models.vae import LOGVAR_MAX, LOGVAR_MIN

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


# =============================================================================
# 1. Malformed data, at every entry point
# =============================================================================
ENTRY_POINTS = {
    "fit": lambda m, X: m.fit(X, epochs=1, verbose=0),
    "fit_transform": lambda m, X: m.fit_transform(X, epochs=1, verbose=0),
    "partial_fit": lambda m, X: m.partial_fit(X),
    "loss_and_grads": lambda m, X: m.loss_and_grads(X),
    "average_loss": lambda m, X: m.average_loss(X),
    "encode": lambda m, X: m.encode(X),
    "transform": lambda m, X: m.transform(X),
    "reconstruct": lambda m, X: m.reconstruct(X),
    "score": lambda m, X: m.score(X),
    "score_samples": lambda m, X: m.score_samples(X),
}
VAE_ENTRY_POINTS = {
    "posterior": lambda m, X: m.posterior(X),
    "elbo": lambda m, X: m.elbo(X, n_samples=2),
    "log_likelihood": lambda m, X: m.log_likelihood(X, k=3),
}
# these train on X or score it as data of the likelihood: they also refuse data outside [0, 1]
FITTING = {"fit", "fit_transform", "partial_fit", "loss_and_grads", "average_loss", "elbo", "log_likelihood"}
RANGE_KINDS = {"range", "uint8"}


def entry_points(model):
    return {**ENTRY_POINTS, **(VAE_ENTRY_POINTS if isinstance(model, npae.VAE) else {})}


@st.composite
def malformed(draw, *, owner, unit_interval, float32, name="X", width=D):
    """(kind, X, error type, message pattern) for one kind of bad ``X``, the argument ``name``,
    for a model expecting ``width`` features (None: not known yet)."""
    wanted = "n_features" if width is None else width
    kinds = ["ndim", "width", "nonfinite", "dtype", "ragged", "sparse"]
    kinds += ["range", "uint8"] if unit_interval else []
    kinds += ["too_large"] if float32 else []
    kind = draw(st.sampled_from(kinds))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    n = draw(st.integers(1, 5))
    good = rng.random((n, D))
    if kind == "ndim":
        shape = draw(st.sampled_from([(), (D,), (n, D, 1), (1, n, D)]))
        if shape == ():
            return kind, rng.random(shape), ValueError, (
                rf"^Expected 2D array, got scalar array instead: {name} must be 2-D \(n_samples, {wanted}\)")
        if shape == (D,):
            return kind, rng.random(shape), ValueError, (
                rf"^Expected 2D array, got 1D array of shape \({D},\) instead: {name} must be 2-D "
                rf"\(n_samples, {wanted}\)\. Reshape your data: pass {name}\.reshape\(1, -1\) if it contains "
                "a single sample")
        return kind, rng.random(shape), ValueError, (
            rf"^Found array with dim 3: {name} must be 2-D \(n_samples, {wanted}\), got shape")
    if kind == "width":
        width = draw(st.integers(1, 12).filter(lambda w: w != D))
        return (kind, rng.random((n, width)), ValueError,
                rf"^{name} has {width} features, but {owner} is expecting {D} features as input$")
    if kind == "nonfinite":
        row, col = draw(st.integers(0, n - 1)), draw(st.integers(0, D - 1))
        good[row, col] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        if draw(st.booleans()):
            good = good.astype(np.float32)
        return kind, good, ValueError, rf"^{name} contains NaN or infinity \(first at row {row}, column {col}\)$"
    if kind == "dtype":
        which = draw(st.sampled_from(["str", "datetime", "complex", "object-str", "object-none"]))
        if which == "str":
            return kind, good.astype(str), TypeError, rf"^{name} must hold real numbers, got dtype <U"
        if which == "datetime":
            return (kind, np.zeros((n, D), dtype="datetime64[s]"), TypeError,
                    rf"^{name} must hold real numbers, got dtype datetime64\[s\]$")
        if which == "complex":
            return (kind, good.astype(complex), ValueError,
                    rf"^Complex data not supported: {name} has dtype complex128$")
        if which == "object-str":
            X = good.astype(object)
            X[n - 1, 0] = "a string"
            return kind, X, TypeError, rf"^{name} must hold real numbers: could not convert"
        # None in an object array becomes NaN, found where it is
        X = good.astype(object)
        X[n - 1, D - 1] = None
        return kind, X, ValueError, rf"^{name} contains NaN or infinity \(first at row {n - 1}, column {D - 1}\)$"
    if kind == "ragged":
        return kind, [[0.5] * D, [0.5] * (D - 1)], TypeError, rf"^{name} must be an array of real numbers: "
    if kind == "sparse":
        import scipy.sparse
        return (kind, scipy.sparse.csr_matrix(good), TypeError,
                rf"^{name} is a sparse matrix: npae's models need dense data; pass {name}\.toarray\(\)")
    if kind == "range":
        row, col = draw(st.integers(0, n - 1)), draw(st.integers(0, D - 1))
        good[row, col] = draw(st.one_of(st.floats(-1e6, -1e-6), st.floats(1 + 1e-6, 1e6)))
        instead = "likelihood='gaussian'" if owner == "VAE" else "loss='mse'"
        return kind, good, ValueError, (
            rf"^{name} must lie in \[0, 1\] for a Bernoulli / binary cross-entropy likelihood, but "
            rf"{name}\[{row}, {col}\] = {re.escape(repr(float(good[row, col])))} \(its values span "
            rf"\[.*\]\); scale it to \[0, 1\] or use {re.escape(instead)}$")
    if kind == "uint8":
        X = (good * 255).astype(np.uint8)
        X[0, 0] = 255
        return (kind, X, ValueError,
                rf"^{name} must lie in \[0, 1\].*; integer images such as uint8 should be scaled to \[0, 1\] "
                rf"first, e\.g\. {name} / 255, or npae\.RowView\({name}, divide_by=255\) a batch at a time$")
    # too_large: finite in float64, infinite in float32
    good[n - 1, D - 1] = 1e39
    return kind, good, ValueError, rf"^{name} holds 1e\+39, too large for float32; rescale the data$"


def malformed_for(model, **overrides):
    """:func:`malformed` for ``model``: its class name, likelihood and dtype."""
    return malformed(owner=type(model).__name__, unit_interval=model.needs_unit_interval,
                     **{"float32": np.dtype(model.dtype) == np.float32, **overrides})


@pytest.mark.parametrize("make", SMALL_MODELS.values(), ids=SMALL_MODELS.keys())
@given(data=st.data())
def test_malformed_inputs_are_refused_by_name_and_change_nothing(make, data):
    model = make()
    kind, X, error, pattern = data.draw(malformed_for(model))
    points = entry_points(model)
    names = sorted(FITTING & set(points)) if kind in RANGE_KINDS else sorted(points)
    name = data.draw(st.sampled_from(names))
    if data.draw(st.booleans(), label="fitted first"):
        model.fit(np.full((8, D), 0.5), epochs=1, batch_size=4)
    before = snapshot(model)
    with pytest.raises(error, match=pattern):
        points[name](model, X)
    assert_unchanged(model, before)


@pytest.mark.parametrize("make", [lambda: npae.VAE(hidden=(5,), latent=2), lambda: npae.Autoencoder(hidden=(3,))],
                         ids=["vae", "ae"])
@given(data=st.data())
def test_malformed_inputs_leave_an_unfitted_model_unfitted(make, data):
    model = make()
    kind, X, error, pattern = data.draw(malformed_for(model, float32=True, width=None)
                                        .filter(lambda drawn: drawn[0] != "width"))
    before = dict(vars(model))
    with pytest.raises(error, match=pattern):
        data.draw(st.sampled_from([ENTRY_POINTS["fit"], ENTRY_POINTS["partial_fit"],
                                   ENTRY_POINTS["fit_transform"]]))(model, X)
    assert vars(model) == before and not hasattr(model, "n_features_in_")


@pytest.mark.parametrize("make", SMALL_MODELS.values(), ids=SMALL_MODELS.keys())
@given(data=st.data())
def test_malformed_validation_data_is_refused_by_name_before_any_training(make, data):
    model = make()
    kind, X_val, error, pattern = data.draw(malformed_for(model, name="validation_data"))
    before = snapshot(model)
    validation = data.draw(st.sampled_from([X_val, (X_val,), (X_val, None)]), label="as")
    with pytest.raises(error, match=pattern):
        model.fit(np.full((4, D), 0.5), validation_data=validation, epochs=1, verbose=0)
    assert_unchanged(model, before)


@pytest.mark.parametrize("make", SMALL_MODELS.values(), ids=SMALL_MODELS.keys())
def test_transform_accepts_any_finite_data_and_a_bernoulli_score_charges_the_distance_outside(make):
    model = make()
    X = np.full((3, D), 2.0)
    assert model.encode(X).shape == (3, model.code_size)
    assert model.reconstruct(X).shape == (3, D)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = model.score_samples(X)
    assert np.isfinite(scores).all()
    if model.needs_unit_interval:   # the clipped rows' score, less λ nats per unit outside
        expected = model.score_samples(np.ones((3, D))) - unit_interval.OUTSIDE_NATS * D
        np.testing.assert_allclose(scores, expected, rtol=1e-6)


@pytest.mark.parametrize("make", SMALL_MODELS.values(), ids=SMALL_MODELS.keys())
def test_an_output_that_overflows_for_finite_input_is_refused_saying_to_rescale(make):
    model = make().built()
    before = snapshot(model)
    # rows along the first unit's weights: its pre-activation is 3e38 · Σ|w|, whatever the init
    row = 3e38 * np.sign(model.params["encoder.0.W"][:, 0])
    with pytest.raises(ValueError, match=r"^X: the network's output overflowed float32 for rows 0\.\.1, "
                                         r"whose values reach 3e\+38: rescale the data$"):
        model.encode(np.stack([row, row]))
    assert_unchanged(model, before)


@pytest.mark.parametrize("make", SMALL_MODELS.values(), ids=SMALL_MODELS.keys())
def test_decode_refuses_codes_of_the_wrong_width_or_not_finite(make):
    model = make()
    before = snapshot(model)
    width, owner = model.code_size, type(model).__name__
    for call in (model.decode, model.inverse_transform):
        with pytest.raises(ValueError, match=rf"^Z has {width + 1} features, but {owner} is expecting "
                                             rf"{width} features as input$"):
            call(np.zeros((3, width + 1)))
        with pytest.raises(ValueError, match=r"^Z contains NaN or infinity \(first at row 1, column 0\)$"):
            call(np.array([[0.0] * width, [np.nan] * width]))
        with pytest.raises(TypeError, match="^Z must hold real numbers"):
            call(np.array([["a"] * width]))
    assert_unchanged(model, before)


def test_decode_does_not_apply_the_data_range_check_to_codes():
    """An overcomplete autoencoder has codes as wide as the data; codes outside [0, 1] are codes."""
    model = npae.Autoencoder(3, (3,), seed=0)
    assert np.isfinite(model.decode(np.full((2, 3), 7.0))).all()


def test_an_unfitted_model_says_so_and_has_no_network_yet():
    model = npae.VAE(hidden=(4,), latent=2)
    for call in (lambda: model.encode(np.zeros((2, 3))), lambda: model.params,
                 lambda: model.loss_and_grads(np.zeros((2, 3))), lambda: model.sample(2)):
        with pytest.raises(NotFittedError, match=r"^This VAE instance is not fitted yet: call fit\(X\) first, "
                                                 "or give n_features to build it untrained$") as info:
            call()
        assert isinstance(info.value, ValueError) and isinstance(info.value, AttributeError)
    with pytest.raises(AttributeError):
        model.encoder_
    assert not hasattr(model, "n_features_in_")


# =============================================================================
# 2. Arguments and hyper-parameters
# =============================================================================
BAD_FIT_ARGUMENTS = [
    (dict(epochs=0), ValueError, "epochs must be a positive int, got 0"),
    (dict(epochs=-3), ValueError, "epochs must be a positive int, got -3"),
    (dict(epochs=2.5), TypeError, "epochs must be an int, got float 2.5"),
    (dict(epochs=True), TypeError, "epochs must be an int, got bool True"),
    (dict(batch_size=0), ValueError, "batch_size must be a positive int, got 0"),
    (dict(batch_size="64"), TypeError, "batch_size must be an int, got str '64'"),
    (dict(lr=0), ValueError, r"lr must be in \(0, inf\), got 0\.0"),
    (dict(lr="0.1"), TypeError, "lr must be a number, got str '0.1'"),
    (dict(checkpoint_every=0), ValueError, "checkpoint_every must be a positive int, got 0"),
    (dict(shuffle="yes"), TypeError, "shuffle must be True or False, got str 'yes'"),
    (dict(warm_start=1), TypeError, "warm_start must be True or False, got int 1"),
    (dict(early_stopping="no"), TypeError, "early_stopping must be True or False"),
    (dict(verbose="loud"), TypeError, "verbose must be an int, got str 'loud'"),
    (dict(verbose=-1), ValueError, "verbose must be an int ≥ 0, got -1"),
    (dict(validation_fraction=1.0), ValueError, r"validation_fraction must be in \(0, 1\), got 1\.0"),
    (dict(n_iter_no_change=0), ValueError, "n_iter_no_change must be a positive int, got 0"),
    (dict(seed=-1), ValueError, "seed must be an int ≥ 0, got -1"),
    (dict(seed=2.5), TypeError, "seed must be an int ≥ 0, None, a numpy.random.Generator or a SeedSequence"),
    (dict(seed="zero"), TypeError, "seed must be an int ≥ 0, None"),
    (dict(optimizer="adam"), TypeError, r"optimizer must have a step\(\) method, got str 'adam'"),
    (dict(checkpoint=3.5), TypeError, "checkpoint must be a file path, got float 3.5"),
    (dict(resume=3.5), TypeError, "resume must be a file path, got float 3.5"),
    (dict(validation_data=(np.zeros((2, D)), None, None)), ValueError, "validation_data"),
    (dict(early_stopping=True, validation_fraction=0.99), ValueError,
     "validation_fraction=0.99 leaves no rows of 8 to train on"),
    (dict(epoch=3), TypeError, "fit\\(\\) got an unexpected keyword argument 'epoch'"),
]


@pytest.mark.parametrize("kwargs, error, pattern", BAD_FIT_ARGUMENTS,
                         ids=[f"{k}={v!r}"[:24] for kwargs, _, _ in BAD_FIT_ARGUMENTS for k, v in list(kwargs.items())[-1:]])
def test_bad_fit_arguments_are_refused_by_name_and_change_nothing(kwargs, error, pattern):
    model = SMALL_MODELS["vae"]()
    model.fit(np.full((8, D), 0.5), epochs=1, batch_size=4)
    before = snapshot(model)
    with pytest.raises(error, match="^" + pattern):
        model.fit(np.full((8, D), 0.5), **{"verbose": 0, **kwargs})
    assert_unchanged(model, before)


def test_checkpoint_paths_that_cannot_be_written_are_refused_before_training(tmp_path):
    model = SMALL_MODELS["vae"]()
    before = snapshot(model)
    missing = tmp_path / "missing" / "c.npz"
    with pytest.raises(ValueError) as info:
        model.fit(np.full((8, D), 0.5), verbose=0, checkpoint=missing)
    assert str(info.value) == f"checkpoint: cannot write {missing}, the folder {missing.parent} does not exist"
    with pytest.raises(ValueError) as info:
        model.fit(np.full((8, D), 0.5), verbose=0, checkpoint=tmp_path)
    assert str(info.value) == f"checkpoint must be a file path, but {tmp_path} is a folder"
    assert_unchanged(model, before)
    assert list(tmp_path.iterdir()) == []


BAD_SETTINGS = [  # (model, settings, error, message start)
    ("VAE", dict(hidden=(4, 0)), ValueError, "hidden must be a tuple of positive ints, got (4, 0)"),
    ("VAE", dict(hidden="4"), TypeError, "hidden must be a tuple of positive ints, got str '4'"),
    ("Autoencoder", dict(hidden=()), ValueError, "hidden must name at least one layer size"),
    ("VAE", dict(latent=0), ValueError, "latent must be a positive int, got 0"),
    ("VAE", dict(latent=2.0), TypeError, "latent must be an int, got float 2.0"),
    ("VAE", dict(activation="swish"), ValueError,
     "unknown activation 'swish'; valid activations are: identity, relu, leaky_relu, sigmoid, tanh, softplus"),
    ("VAE", dict(activation=3), TypeError, "activation must be a string"),
    ("Autoencoder", dict(output="softmax"), ValueError, "unknown activation 'softmax'; valid activations are"),
    ("VAE", dict(likelihood="poisson"), ValueError, "likelihood must be one of 'bernoulli', 'gaussian', got 'poisson'"),
    ("VAE", dict(objective="vimco"), ValueError, "objective must be one of 'elbo', 'iwae', got 'vimco'"),
    ("Autoencoder", dict(loss="hinge"), ValueError, "loss must be one of 'bce', 'mse', got 'hinge'"),
    ("Autoencoder", dict(output="identity"), ValueError, "output='identity' with loss='bce' is not supported"),
    ("VAE", dict(n_features=0), ValueError, "n_features must be a positive int, got 0"),
    ("VAE", dict(n_features=6.0), TypeError, "n_features must be an int, got float 6.0"),
    ("VAE", dict(beta=-1.0), ValueError, "beta must be in [0, inf), got -1.0"),
    ("VAE", dict(beta=float("nan")), ValueError, "beta must be in [0, inf), got nan"),
    ("VAE", dict(beta="1"), TypeError, "beta must be a number, got str '1'"),
    ("VAE", dict(k=0), ValueError, "k must be a positive int, got 0"),
    ("VAE", dict(warmup_epochs=-1), ValueError, "warmup_epochs must be an int ≥ 0, got -1"),
    ("VAE", dict(dtype="int32"), ValueError, "dtype must be one of 'float32', 'float64', None, got 'int32'"),
    ("VAE", dict(alpha=-1.0), ValueError, "alpha must be in [0, inf), got -1.0"),
    ("Autoencoder", dict(alpha=None), TypeError, "alpha must be a number, got NoneType None"),
    ("Autoencoder", dict(tied="yes"), TypeError, "tied must be True or False, got str 'yes'"),
    ("Autoencoder", dict(noise="salt"), ValueError, "noise must be one of None, 'mask', 'gaussian', got 'salt'"),
    ("Autoencoder", dict(noise="mask", noise_level=1.0), ValueError, "noise_level must be in [0, 1), got 1.0"),
    ("Autoencoder", dict(noise_level="x"), TypeError, "noise_level must be a number, got str 'x'"),
    ("Autoencoder", dict(sparsity="kl"), ValueError, "sparsity='kl' needs codes in (0, 1): use activation='sigmoid'"),
    ("Autoencoder", dict(sparsity_target=0.0), ValueError, "sparsity_target must be in (0, 1), got 0.0"),
    ("Autoencoder", dict(contractive_weight=-0.5), ValueError, "contractive_weight must be in [0, inf), got -0.5"),
    ("VAE", dict(epochs=0), ValueError, "epochs must be a positive int, got 0"),
    ("VAE", dict(seed=1.5), TypeError, "seed must be an int ≥ 0, None"),
]


def _model(kind, **params):
    base = {"VAE": dict(n_features=D, hidden=(5,), latent=2, seed=0),
            "Autoencoder": dict(n_features=D, hidden=(3,), seed=0)}[kind]
    return getattr(npae, kind)(**{**base, **params})


@pytest.mark.parametrize("kind, settings, error, message", BAD_SETTINGS,
                         ids=[f"{k}-{list(s.items())[-1][0]}={list(s.values())[-1]!r}"[:32]
                              for k, s, _, _ in BAD_SETTINGS])
def test_bad_hyper_parameters_are_stored_then_refused_at_fit_by_name(kind, settings, error, message):
    model = _model(kind, **settings)                      # the constructor only stores
    assert all(model.get_params()[k] is v for k, v in settings.items())
    with pytest.raises(error) as info:
        model.fit(np.full((8, D), 0.5))
    assert str(info.value).startswith(message), str(info.value)
    assert not hasattr(model, "n_features_in_")

    fitted = _model(kind).fit(np.full((8, D), 0.5), epochs=1)   # set on a fitted model: the same,
    before = snapshot(fitted)                                 # and the fitted model is kept
    fitted.set_params(**settings)
    with pytest.raises(error) as info:
        fitted.fit(np.full((8, D), 0.5))
    assert str(info.value).startswith(message), str(info.value)
    assert_unchanged(fitted, before)


@pytest.mark.parametrize("argument, value, message", [
    ("latent", 0, "latent must be a positive int, got 0"),
    ("activation", "swish", "unknown activation 'swish'"),
    ("n_features", -1, "n_features must be a positive int, got -1"),
])
def test_bad_hyper_parameters_of_a_model_built_on_first_use_are_refused_there(argument, value, message):
    model = _model("VAE", **{argument: value})
    for call in (lambda: model.params, lambda: model.encode(np.full((2, D), 0.5))):
        with pytest.raises(ValueError, match="^" + re.escape(message)):
            call()
    assert not hasattr(model, "n_features_in_")


def test_set_params_refuses_only_unknown_names():
    model = SMALL_MODELS["vae"]()
    with pytest.raises(ValueError, match=r"^invalid parameter 'widht' for VAE; valid parameters: n_features, "
                                         r"hidden, latent, "):
        model.set_params(widht=3)
    assert not hasattr(model, "widht")
    assert model.set_params(beta="anything") is model and model.get_params()["beta"] == "anything"


VAE_ARGUMENTS = [
    (lambda m: m.sample(0), ValueError, "n must be a positive int, got 0"),
    (lambda m: m.sample(-2), ValueError, "n must be a positive int, got -2"),
    (lambda m: m.sample(2.0), TypeError, "n must be an int, got float 2.0"),
    (lambda m: m.sample(2, seed=-1), ValueError, "seed must be an int ≥ 0, got -1"),
    (lambda m: m.log_likelihood(np.full((2, D), 0.5), k=0), ValueError, "k must be a positive int, got 0"),
    (lambda m: m.elbo(np.full((2, D), 0.5), n_samples=0), ValueError, "n_samples must be a positive int, got 0"),
    (lambda m: m.loss_and_grads(np.full((2, D), 0.5), eps=np.zeros((3, 2))), ValueError,
     r"eps must have shape \(2, 2\), got \(3, 2\)"),
    (lambda m: m.average_loss(np.full((2, D), 0.5), rng="zero"), TypeError, "rng must be an int ≥ 0"),
    (lambda m: (m.set_params(activation="swish"), m.loss_and_grads(np.full((2, D), 0.5))), ValueError,
     "unknown activation 'swish'; valid activations are: identity, relu"),
    (lambda m: (m.set_params(latent=3), m.loss_and_grads(np.full((2, D), 0.5))), ValueError,
     "latent changed since the network was built; fit again"),
    (lambda m: m.set_output(transform="polar"), ValueError,
     "transform must be one of 'default', 'pandas', 'polars', got 'polar'"),
]


@pytest.mark.parametrize("call, error, pattern", VAE_ARGUMENTS, ids=[p[:24] for _, _, p in VAE_ARGUMENTS])
def test_bad_vae_arguments_are_refused_by_name_and_change_nothing(call, error, pattern):
    model = SMALL_MODELS["vae"]()
    before = snapshot(model)
    with pytest.raises(error, match="^" + pattern):
        call(model)
    assert_unchanged(model, before)


def test_eps_for_a_model_without_noise_is_refused():
    model = SMALL_MODELS["ae"]()
    with pytest.raises(ValueError, match="^eps fixes the model's noise, but this model has none$"):
        model.loss_and_grads(np.full((2, D), 0.5), eps=np.zeros((2, D)))
    noisy = npae.Autoencoder(D, (3,), noise="mask", noise_level=0.2, seed=0)
    with pytest.raises(ValueError, match=r"^eps must have shape \(2, 6\), got \(2, 5\)$"):
        noisy.loss_and_grads(np.full((2, D), 0.5), eps=np.zeros((2, D - 1)))


# =============================================================================
# 3. Numerical robustness
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
                     k=3 if objective == "iwae" else 1, seed=0, dtype=dtype).built()
    model.logvar_head_.params["b"][:] = [1e4, -1e4, 0.0]
    if likelihood == "gaussian":
        model.x_logvar_[:2] = [1e4, -1e4]
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
        for values in (model.elbo(X), model.log_likelihood(X, k=4), model.sample(5), model.encode(X),
                       model.score_samples(X)):
            assert np.isfinite(values).all()


def test_the_clamp_is_documented_and_perturbing_a_clamped_entry_leaves_the_loss_unchanged(digits):
    assert (LOGVAR_MIN, LOGVAR_MAX) == (-30.0, 20.0)
    assert re.search(r"clamped to\s+\[[−-]30, 20\]", npae.models.vae.__doc__)
    model = npae.VAE(64, (8,), latent=2, likelihood="gaussian", seed=0, dtype="float64").built()
    model.logvar_head_.params["b"][0] = -1e4
    model.x_logvar_[0] = 1e4
    X = digits[:8].astype(np.float64)
    eps = np.random.default_rng(0).standard_normal((8, 2))
    loss, grads = model.loss_and_grads(X, eps=eps)
    for array, index in ((model.logvar_head_.params["b"], 0), (model.x_logvar_, 0)):
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
                     k=2 if objective == "iwae" else 1, seed=0, dtype="float64").built()
    X = rng.random((4, 5)) if likelihood == "bernoulli" else rng.normal(0.5, 1.0, (4, 5))
    if likelihood == "gaussian":
        model.x_logvar_[:] = rng.normal(0.0, 0.5, 5)
    eps = rng.standard_normal((4, 3) if objective == "elbo" else (2, 4, 3))
    model.logvar_head_.params["b"][:] = biases  # -1e4: unit 0 clamped to LOGVAR_MIN
    assert all(p.dtype == np.float64 for p in model.params.values())
    report = npae.gradcheck(lambda: model.loss_and_grads(X, eps=eps), model.params, eps=H)
    assert_gradients_ok(report, tol=GRAD_TOL)
    _, grads = model.loss_and_grads(X, eps=eps)
    clamped = biases[0] < LOGVAR_MIN
    assert (grads["logvar.b"][0] == 0) == clamped and (grads["logvar.W"][:, 0] == 0).all() == clamped


# =============================================================================
# 4. Empty input and one sample
# =============================================================================
@pytest.mark.parametrize("make", SMALL_MODELS.values(), ids=SMALL_MODELS.keys())
def test_empty_input_gives_empty_output_where_that_makes_sense_and_is_refused_elsewhere(make):
    model = make()
    empty = np.zeros((0, D))
    for out in (model.encode(empty), model.transform(empty)):
        assert out.shape == (0, model.code_size) and out.dtype == np.float32
    assert model.reconstruct(empty).shape == (0, D)
    assert model.decode(np.zeros((0, model.code_size))).shape == (0, D)
    assert model.inverse_transform(np.zeros((0, model.code_size))).shape == (0, D)
    assert model.score_samples(empty).shape == (0,)
    if isinstance(model, npae.VAE):
        assert model.elbo(empty).shape == (0,)
        assert model.log_likelihood(empty, k=2).shape == (0,)
        mu, logvar = model.posterior(empty)
        assert mu.shape == logvar.shape == (0, 2)
    before = snapshot(model)
    sklearn_words = r"^Found array with 0 sample\(s\) \(shape=\(0, 6\)\) while a minimum of 1 is required: X is empty$"
    for call in (lambda: model.fit(empty, verbose=0), lambda: model.fit_transform(empty),
                 lambda: model.partial_fit(empty), lambda: model.loss_and_grads(empty)):
        with pytest.raises(ValueError, match=sklearn_words):
            call()
    with pytest.raises(ValueError, match="^X is empty: the loss of no rows is undefined$"):
        model.average_loss(empty)
    assert_unchanged(model, before)


@pytest.mark.parametrize("make", SMALL_MODELS.values(), ids=SMALL_MODELS.keys())
def test_one_sample_as_a_1d_array_is_refused_with_the_reshape_that_fixes_it(make):
    model = make()
    before = snapshot(model)
    with pytest.raises(ValueError, match=r"^Expected 2D array, got 1D array of shape \(6,\) instead: X must be "
                                         r"2-D \(n_samples, 6\)\. Reshape your data: pass X\.reshape\(1, -1\) if "
                                         "it contains a single sample"):
        model.encode(np.full(D, 0.5))
    width = model.code_size
    with pytest.raises(ValueError, match=rf"^Expected 2D array, got 1D array of shape \({width},\) instead: Z "
                                         rf"must be 2-D \(n_samples, {width}\)\. Reshape your data: pass "
                                         r"Z\.reshape\(1, -1\) if it contains a single sample"):
        model.decode(np.zeros(width))
    with pytest.raises(ValueError, match=r"pass X\.reshape\(1, -1\) if it contains a single sample"):
        model.fit(np.full(D, 0.5), epochs=1)
    assert_unchanged(model, before)
    assert model.encode(np.full(D, 0.5).reshape(1, -1)).shape == (1, width)
    assert model.decode(np.zeros(width).reshape(1, -1)).shape == (1, D)
