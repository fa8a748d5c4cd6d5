"""Tests for npae.Autoencoder: the source document's architecture worked by hand,
whole-model gradients against finite differences, then what the math promises
(a linear autoencoder reaches the PCA optimum) and the estimator conventions."""

import numpy as np
import pytest
from conftest import H, assert_gradients_ok, well_conditioned
from hypothesis import assume, given
from hypothesis import strategies as st

import npae
from npae.nn.activations import sigmoid

PAIRS = [("sigmoid", "bce"), ("identity", "mse"), ("sigmoid", "mse")]


# -- helpers -------------------------------------------------------------------
def bce(p, x):
    """−Σ_j [x log p + (1 − x) log(1 − p)] per example, mean over the batch (from probabilities)."""
    return float(np.mean(-(x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=1)))


@st.composite
def problems(draw, *, several_layers):
    """(d, n, hidden, activation, seed): a small float64 problem.

    One hidden layer takes any smooth activation; deeper stacks use tanh or
    softplus, whose slopes (up to 1) keep the first layers' gradients above the
    rounding floor, where sigmoid's (at most ¼ per layer) would not.
    """
    d = draw(st.integers(1, 6))
    n = draw(st.integers(1, 5))
    depth = draw(st.integers(2, 3)) if several_layers else 1
    hidden = tuple(draw(st.lists(st.integers(1, 4), min_size=depth, max_size=depth)))
    smooth = ("tanh", "softplus") if several_layers else ("tanh", "sigmoid", "softplus")
    activation = draw(st.sampled_from(smooth))
    seed = draw(st.integers(0, 2**16))
    return d, n, hidden, activation, seed


def hidden_preactivations(model, X):
    """Every relu pre-activation A = H W + b of the model on X, computed from its parameters."""
    layers = model.encoder_.layers + model.decoder_.layers[:-1]
    values, layer_input = [], X
    for layer in layers:
        A = layer_input @ layer.params["W"] + layer.params["b"]
        values.append(A.ravel())
        layer_input = np.maximum(A, 0)
    return np.concatenate(values)


# -- the source document's model, by hand ----------------------------------------
def test_default_is_the_source_documents_keras_model(rng):
    """784 → Dense 64 relu → Dense 784 sigmoid, binary cross-entropy."""
    m = npae.Autoencoder(784, hidden=(64,), seed=0)
    shapes = {name: p.shape for name, p in m.params.items()}
    assert shapes == {"encoder.0.W": (784, 64), "encoder.0.b": (64,),
                      "decoder.0.W": (64, 784), "decoder.0.b": (784,)}
    assert m.n_parameters == 784 * 64 + 64 + 64 * 784 + 784 == 101_200

    # x̂ = σ(relu(x W₁ + b₁) W₂ + b₂), and L = mean over rows of the BCE summed over 784 pixels
    X = rng.random((5, 784)).astype(np.float32)
    W1, b1, W2, b2 = (m.params[k].astype(np.float64) for k in
                      ("encoder.0.W", "encoder.0.b", "decoder.0.W", "decoder.0.b"))
    code = np.maximum(X @ W1 + b1, 0)
    x_hat = sigmoid(code @ W2 + b2)
    np.testing.assert_allclose(m.encode(X), code, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(m.reconstruct(X), x_hat, rtol=1e-4, atol=1e-6)
    loss, _ = m.loss_and_grads(X)
    np.testing.assert_allclose(loss, bce(x_hat, X), rtol=1e-5)


# -- gradients -----------------------------------------------------------------
@pytest.mark.parametrize("several_layers", [False, True], ids=["one-layer", "several-layers"])
@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
@pytest.mark.parametrize("output, loss", PAIRS, ids=[f"{o}+{l}" for o, l in PAIRS])
@given(data=st.data())
def test_gradients_match_central_differences(output, loss, tied, several_layers, data):
    d, n, hidden, activation, seed = data.draw(problems(several_layers=several_layers))
    m = npae.Autoencoder(d, hidden, activation=activation, output=output, loss=loss,
                         tied=tied, seed=seed, dtype="float64")
    X = np.random.default_rng(seed).random((n, d))  # in [0, 1]: a valid target for every pair
    assume(well_conditioned(*m.loss_and_grads(X)))
    report = npae.gradcheck(lambda: m.loss_and_grads(X), m.params, eps=H)
    assert_gradients_ok(report)


def test_relu_gradients_away_from_the_kink():
    """relu is smooth wherever no pre-activation changes sign within ±h of the draw."""
    m = npae.Autoencoder(6, (5, 3), activation="relu", seed=7, dtype="float64").built()
    X = np.random.default_rng(7).random((4, 6))
    A = hidden_preactivations(m, X)
    assert np.abs(A).min() > 1e3 * H, "the draw must keep every relu clear of its kink"
    assert (A < 0).any() and (A > 0).any(), "both sides of the kink should be exercised"
    report = npae.gradcheck(lambda: m.loss_and_grads(X), m.params, eps=H)
    assert_gradients_ok(report)


# -- tied weights --------------------------------------------------------------
def test_tied_decoder_weight_is_a_live_transpose_of_the_encoder_weight(rng):
    d, k = 7, 3
    m = npae.Autoencoder(d, (k,), activation="tanh", tied=True, seed=0, dtype="float64")
    assert set(m.params) == {"encoder.0.W", "encoder.0.b", "decoder.0.b"}
    assert m.n_parameters == d * k + k + d           # one W for the pair, two biases

    W = m.params["encoder.0.W"]
    W_dec = m.decoder_.layers[0].params["W"]
    assert np.shares_memory(W, W_dec) and np.array_equal(W_dec, W.T)
    W[2, 1] += 0.5                                    # change the encoder ...
    assert W_dec[1, 2] == W[2, 1]                     # ... and the decoder sees it

    X = rng.random((4, d))
    b1, b2 = m.params["encoder.0.b"], m.params["decoder.0.b"]
    x_hat = sigmoid(np.tanh(X @ W + b1) @ W.T + b2)   # x̂ = σ(f(x W + b₁) Wᵀ + b₂)
    np.testing.assert_allclose(m.reconstruct(X), x_hat, rtol=1e-12)

    m.fit(X, epochs=3, batch_size=2, verbose=0, seed=0)   # Adam updates W in place
    assert np.array_equal(m.decoder_.layers[0].params["W"], m.params["encoder.0.W"].T)


# -- the linear autoencoder finds PCA ------------------------------------------------
def test_linear_autoencoder_reaches_the_pca_optimum():
    """With identity activations and squared error, the best rank-k reconstruction of
    the (affinely shifted) data is the projection of the centred data on its top k
    principal directions (Eckart–Young).  Its error per example, summed over
    features, is the sum of the discarded eigenvalues of the covariance
    Σ = X_cᵀ X_c / n.  The trained autoencoder cannot beat it and should reach it."""
    X, _ = npae.datasets.load_digits()
    X = X.astype(np.float64)
    k = 8
    X_c = X - X.mean(axis=0)
    eigenvalues = np.linalg.eigvalsh(X_c.T @ X_c / X.shape[0])   # ascending
    pca_error = eigenvalues[:-k].sum()
    # the same number as the error of the best rank-k projection, computed directly
    top = np.linalg.eigh(X_c.T @ X_c)[1][:, -k:]
    np.testing.assert_allclose(pca_error, np.mean(((X_c - X_c @ top @ top.T) ** 2).sum(axis=1)),
                               rtol=1e-10)

    m = npae.Autoencoder(64, (k,), activation="identity", output="identity", loss="mse",
                         seed=0, dtype="float64")
    m.fit(X, epochs=100, batch_size=64, optimizer=npae.Adam(1e-2), verbose=0, seed=0)
    error = m.average_loss(X)
    assert error >= pca_error * (1 - 1e-9)   # nothing of rank k does better
    assert error <= pca_error * 1.02, f"gap {100 * (error / pca_error - 1):.2f}% to PCA"


# -- training: determinism and history ---------------------------------------------
def test_same_seed_gives_bit_identical_parameters_after_fit():
    """fit's seed seeds everything: the initial weights (stream 0 of
    ``checks.generators(seed, 4)``, as for a fresh model with that seed) and the
    shuffles (stream 1); the constructor's seed is replaced by fit's."""
    X, _ = npae.datasets.load_digits()
    X = X[:200]

    def trained(model_seed, fit_seed, *, warm_start=False):
        m = npae.Autoencoder(64, (16,), seed=model_seed, warm_start=warm_start)   # float32
        if warm_start:
            m.built()   # the weights of model_seed, which a warm fit keeps as its start
        return m.fit(X, epochs=2, batch_size=32, verbose=0, seed=fit_seed).params

    first, again, other = trained(3, 5), trained(3, 5), trained(3, 6)
    initial = npae.Autoencoder(64, (16,), seed=5).params   # where fit(seed=5) starts
    assert all(p.dtype == np.float32 for p in first.values())
    assert all(np.array_equal(first[name], again[name]) for name in first)
    assert not all(np.array_equal(first[name], initial[name]) for name in first)  # it trained
    assert not all(np.array_equal(first[name], other[name]) for name in first)    # seeds differ
    # the constructor's seed does not matter once fit is given one
    assert all(np.array_equal(first[name], trained(4, 5)[name]) for name in first)

    # from the same initial weights (seed 5's, kept by warm_start), fit's seed still
    # decides the shuffles: seed 5 replays the cold fit bit for bit, seed 6 differs
    warm_same = trained(5, 5, warm_start=True)
    warm_other = trained(5, 6, warm_start=True)
    assert all(np.array_equal(first[name], warm_same[name]) for name in first)
    assert not all(np.array_equal(first[name], warm_other[name]) for name in first)  # shuffles differ
    assert not all(np.array_equal(other[name], warm_other[name]) for name in first)  # not seed 6's start


def test_history_records_one_loss_per_epoch_and_the_validation_loss():
    X, _ = npae.datasets.load_digits()
    X_train, X_val = X[:300], X[300:400]
    m = npae.Autoencoder(64, (16,), seed=0)
    m.fit(X_train, epochs=4, batch_size=50, validation_data=X_val, verbose=0, seed=0)
    assert set(m.history) == {"loss", "val_loss"}
    assert len(m.history["loss"]) == len(m.history["val_loss"]) == 4
    assert m.history["loss"][-1] < m.history["loss"][0]
    # the last validation loss is the loss of the final parameters on X_val
    np.testing.assert_allclose(m.history["val_loss"][-1], m.average_loss(X_val), rtol=1e-6)

    m.fit(X_train, epochs=2, verbose=0)
    assert set(m.history) == {"loss"} and len(m.history["loss"]) == 2


def test_history_loss_is_the_loss_before_each_full_batch_sgd_step(rng):
    """Full batch, no shuffling: epoch e records L(θ_e), and θ_{e+1} = θ_e − η ∇L(θ_e)."""
    X = rng.random((10, 5))
    lr = 0.5
    m = npae.Autoencoder(5, (3,), activation="tanh", seed=1, dtype="float64")
    twin = npae.Autoencoder(5, (3,), activation="tanh", seed=1, dtype="float64")
    expected = []
    for _ in range(3):
        loss, grads = twin.loss_and_grads(X)
        expected.append(loss)
        for name, p in twin.params.items():
            p -= lr * grads[name]
    m.fit(X, epochs=3, batch_size=10, shuffle=False, optimizer=npae.SGD(lr), verbose=0)
    np.testing.assert_allclose(m.history["loss"], expected, rtol=1e-12)
    assert expected[2] < expected[0]


# -- scikit-learn conventions --------------------------------------------------------
def test_get_params_and_set_params_round_trip():
    m = npae.Autoencoder(10, (6, 3), activation="tanh", output="identity", loss="mse",
                         tied=True, seed=4, dtype="float64")
    params = m.get_params()
    assert params["hidden"] == (6, 3) and params["tied"] is True and params["dtype"] == "float64"
    assert npae.Autoencoder(**params).get_params() == params

    assert m.set_params(hidden=(5,), tied=False) is m
    assert m.get_params() == {**params, "hidden": (5,), "tied": False}
    assert m.params["encoder.0.W"].shape == (10, 5) and "decoder.0.W" in m.params
    with pytest.raises(ValueError, match="latent"):
        m.set_params(latent=3)


@pytest.mark.parametrize("make", [
    lambda: npae.Autoencoder(64, (8,), seed=0),
    lambda: npae.Autoencoder(64, [12, 8], activation="tanh", tied=True, noise="mask",
                             noise_level=0.25, seed=1, dtype="float64"),
    lambda: npae.VAE(64, (16,), latent=2, beta=0.5, warmup_epochs=300, seed=2),
    lambda: npae.VAE(64, (), latent=3, likelihood="gaussian", seed=3, dtype="float64"),
], ids=["ae", "tied-denoising-ae", "vae", "gaussian-vae"])
def test_sklearn_clone_gives_an_untrained_copy_with_the_same_settings(make):
    base = pytest.importorskip("sklearn.base")
    X, _ = npae.datasets.load_digits()
    m = make().fit(X[:100], epochs=1, verbose=0)
    copy = base.clone(m)
    assert copy is not m and type(copy) is type(m)
    assert copy.get_params() == m.get_params()
    fresh = make()   # a seeded clone starts where a fresh model with that seed starts
    assert all(np.array_equal(copy.params[k], fresh.params[k]) for k in fresh.params)
    assert not all(np.array_equal(copy.params[k], m.params[k]) for k in m.params)


def test_sklearn_pipeline_fits_and_transforms():
    pytest.importorskip("sklearn")
    from sklearn.exceptions import NotFittedError
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler

    X, y = npae.datasets.load_digits()
    X = X * 16   # raw counts 0..16: the scaler brings them back to [0, 1]
    encoder = Pipeline([("scale", MinMaxScaler()), ("ae", npae.Autoencoder(64, (12,), seed=0))])
    with pytest.raises(NotFittedError):
        encoder.transform(X)
    codes = encoder.fit_transform(X, ae__epochs=3, ae__verbose=0)
    ae = encoder.named_steps["ae"]
    assert len(ae.history["loss"]) == 3          # the fit parameters reached the autoencoder
    assert codes.shape == (X.shape[0], 12)
    np.testing.assert_array_equal(codes, ae.encode(encoder.named_steps["scale"].transform(X)))
    np.testing.assert_array_equal(encoder.transform(X), codes)

    classifier = Pipeline([("scale", MinMaxScaler()), ("ae", npae.Autoencoder(64, (12,), seed=0)),
                           ("clf", LogisticRegression(max_iter=200))])
    classifier.fit(X, y, ae__epochs=3, ae__verbose=0)
    np.testing.assert_array_equal(classifier[:-1].transform(X), codes)   # same seed, same codes
    assert set(classifier.predict(X[:20])) <= set(range(10))
