"""Tests for npae.VAE: the loss assembled by hand from its parts, gradients against
finite differences, then what the bounds promise (log p(x) ≥ IWAE_k ≥ … ≥ ELBO)."""

import math

import numpy as np
import pytest
from conftest import H, assert_gradients_ok, well_conditioned
from hypothesis import assume, given
from hypothesis import strategies as st

import npae
import oracles
from npae.models.vae_evaluation import ROWS_PER_PASS

LOG_2PI = math.log(2 * math.pi)
LIKELIHOODS = ["bernoulli", "gaussian"]


# -- the quantities of the paper, written out ----------------------------------------
def bernoulli_log_density(x, p):
    """log p(x|z) = Σ_j [x_j log p_j + (1 − x_j) log(1 − p_j)], per row."""
    return (x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=-1)


def gaussian_log_density(x, mean, logvar):
    """log N(x; mean, diag exp(logvar)) = −½ Σ_j [log 2π + logvar_j + (x_j − mean_j)² / exp(logvar_j)]."""
    return -0.5 * (LOG_2PI + logvar + (x - mean) ** 2 / np.exp(logvar)).sum(axis=-1)


def kl_to_standard_normal(mu, logvar):
    """KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²), per row."""
    return 0.5 * (mu ** 2 + np.exp(logvar) - 1 - logvar).sum(axis=-1)


def log_p_x_given_z(model, X, Z):
    """The decoder's log-density of each row of X given each row of Z, through ``decode``."""
    mean = model.decode(Z.reshape(-1, model.latent)).reshape(Z.shape[:-1] + (model.n_features_in_,))
    if model.likelihood == "bernoulli":
        return bernoulli_log_density(X, mean)
    return gaussian_log_density(X, mean, model.x_logvar_)


def log_weights(model, X, eps, beta=1.0):
    """log w = log p(x|z) + β [log p(z) − log q(z|x)] for z = μ + σ ⊙ ε, eps (k, n, latent)."""
    mu, logvar = model.posterior(X)
    z = mu + np.exp(0.5 * logvar) * eps
    log_prior = gaussian_log_density(z, 0.0, np.zeros_like(z))
    log_posterior = gaussian_log_density(z, mu, np.broadcast_to(logvar, z.shape))
    return log_p_x_given_z(model, X, z) + beta * (log_prior - log_posterior)


def log_mean_exp(a, axis=0):
    top = a.max(axis=axis)
    return top + np.log(np.exp(a - top).mean(axis=axis))


def small_vae(likelihood, *, hidden=(4,), latent=2, d=5, beta=1.0, seed=0, **options):
    """A float64 VAE; the Gaussian decoder gets a non-trivial log σ_x² (not all zero)."""
    m = npae.VAE(d, hidden, latent, activation="tanh", likelihood=likelihood, beta=beta,
                 seed=seed, dtype="float64", **options)
    if likelihood == "gaussian":
        m.built().x_logvar_[:] = np.random.default_rng(seed + 1).normal(0.0, 0.5, d)
    return m


def data_for(likelihood, n, d, rng):
    """Bernoulli data lie in [0, 1]; Gaussian data may be any real number."""
    return rng.random((n, d)) if likelihood == "bernoulli" else rng.normal(0.5, 1.0, (n, d))


@pytest.fixture(scope="module")
def digits():
    return npae.datasets.load_digits()[0]


@pytest.fixture(scope="module")
def trained(digits):
    """A VAE trained briefly on the digits: its posterior is far from exact, so the
    importance-weighted bounds have room to climb above the ELBO."""
    m = npae.VAE(64, (64,), latent=8, seed=0)
    return m.fit(digits, epochs=3, batch_size=64, optimizer=npae.Adam(3e-3), verbose=0, seed=0)


# -- the loss, by hand ---------------------------------------------------------
@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_loss_is_minus_the_elbo_assembled_from_its_parts(likelihood, rng):
    """−ELBO = −log p(x | z = μ + σ ⊙ ε) + β · ½ Σ (μ² + σ² − 1 − log σ²), mean over rows."""
    beta = 2.5
    m = small_vae(likelihood, hidden=(4,), latent=3, d=6, beta=beta)
    X = data_for(likelihood, 7, 6, rng)
    eps = rng.standard_normal((7, 3))

    mu, logvar = m.posterior(X)
    z = mu + np.exp(0.5 * logvar) * eps
    expected = np.mean(-log_p_x_given_z(m, X, z) + beta * kl_to_standard_normal(mu, logvar))
    loss, _ = m.loss_and_grads(X, eps=eps)
    np.testing.assert_allclose(loss, expected, rtol=1e-12)

    if likelihood == "bernoulli":   # the same reconstruction term from the decoder's logits
        logits = m.decoder_.forward(z)
        recon, _ = npae.losses.bce_with_logits(logits, X)
        np.testing.assert_allclose(recon, np.mean(-log_p_x_given_z(m, X, z)), rtol=1e-12)


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_iwae_loss_is_minus_the_log_mean_of_the_importance_weights(likelihood, rng):
    """−(1/n) Σ_x log (1/k) Σ_i w_i,  log w_i = log p(x|z_i) + β [log p(z_i) − log q(z_i|x)]."""
    beta, k = 0.5, 4
    m = small_vae(likelihood, beta=beta, objective="iwae", k=k)
    X = data_for(likelihood, 3, 5, rng)
    eps = rng.standard_normal((k, 3, 2))
    expected = -np.mean(log_mean_exp(log_weights(m, X, eps, beta)))
    loss, _ = m.loss_and_grads(X, eps=eps)
    np.testing.assert_allclose(loss, expected, rtol=1e-12)


def test_with_eps_zero_the_loss_is_the_reconstruction_of_the_mean_plus_beta_kl(rng):
    """ε = 0 puts z at μ: the loss is −log p(x|μ) + β KL, and the gradient of log σ²
    comes from the KL alone, ∂L/∂log σ² = β (σ² − 1) / 2n, since ∂z/∂log σ² = ε σ / 2 = 0."""
    beta, n, d = 1.7, 6, 5
    m = small_vae("bernoulli", hidden=(), latent=2, d=d, beta=beta)  # log σ² = x W_v + b_v
    X = rng.random((n, d))
    mu, logvar = m.posterior(X)
    loss, grads = m.loss_and_grads(X, eps=np.zeros((n, 2)))
    expected = np.mean(-log_p_x_given_z(m, X, mu) + beta * kl_to_standard_normal(mu, logvar))
    np.testing.assert_allclose(loss, expected, rtol=1e-12)

    dlogvar = beta * 0.5 * (np.exp(logvar) - 1) / n
    np.testing.assert_allclose(grads["logvar.b"], dlogvar.sum(axis=0), rtol=1e-10)
    np.testing.assert_allclose(grads["logvar.W"], X.T @ dlogvar, rtol=1e-10)


# -- gradients -----------------------------------------------------------------
DEPTHS = {"no-hidden": 0, "one-layer": 1, "several-layers": 2}


@st.composite
def problems(draw, *, depth, objective):
    d = draw(st.integers(1, 6))
    n = draw(st.integers(1, 5))
    latent = draw(st.integers(1, 3))
    k = draw(st.integers(1, 3)) if objective == "iwae" else 1
    n_layers = draw(st.integers(2, 3)) if depth == 2 else depth
    hidden = tuple(draw(st.lists(st.integers(1, 4), min_size=n_layers, max_size=n_layers)))
    smooth = ("tanh", "softplus") if depth == 2 else ("tanh", "sigmoid", "softplus")
    activation = draw(st.sampled_from(smooth))
    beta = draw(st.sampled_from((0.3, 0.5, 2.0, 4.0)))   # β ≠ 1: the KL weight must be carried
    seed = draw(st.integers(0, 2**16))
    return d, n, latent, k, hidden, activation, beta, seed


@pytest.mark.parametrize("depth", DEPTHS.values(), ids=DEPTHS.keys())
@pytest.mark.parametrize("objective", ["elbo", "iwae"])
@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@given(data=st.data())
def test_gradients_match_central_differences(likelihood, objective, depth, data):
    d, n, latent, k, hidden, activation, beta, seed = data.draw(
        problems(depth=depth, objective=objective))
    m = npae.VAE(d, hidden, latent, activation=activation, likelihood=likelihood, beta=beta,
                 objective=objective, k=k, seed=seed, dtype="float64")
    rng = np.random.default_rng(seed)
    if likelihood == "gaussian":
        m.built().x_logvar_[:] = rng.normal(0.0, 0.5, d)
    X = data_for(likelihood, n, d, rng)
    eps = rng.standard_normal((n, latent) if objective == "elbo" else (k, n, latent))
    assume(well_conditioned(*m.loss_and_grads(X, eps=eps)))
    report = npae.gradcheck(lambda: m.loss_and_grads(X, eps=eps), m.params, eps=H)
    assert_gradients_ok(report)


# -- the bounds: ELBO ≤ IWAE_k ≤ IWAE_k' ≤ log p(x) -------------------------------------
def test_log_likelihood_in_passes_equals_the_bound_computed_in_one_go(rng):
    """More samples than one pass holds (k·n > rows per pass): the running logsumexp
    over passes gives log (1/k) Σ_i w_i as if all k weights were formed at once —
    with β = 1 whatever the model's β, since this estimates log p(x)."""
    n = 3
    k = 2 * (ROWS_PER_PASS // n) + 7
    assert k > ROWS_PER_PASS // n
    m = small_vae("bernoulli", beta=2.0)
    X = rng.random((n, 5))
    eps = np.random.default_rng(11).standard_normal((k, n, 2))   # the draws log_likelihood makes
    expected = log_mean_exp(log_weights(m, X, eps, beta=1.0))
    np.testing.assert_allclose(m.log_likelihood(X, k=k, seed=11), expected, rtol=1e-10)
    assert m.loss_weights(None) == 2.0   # the model's β is untouched


def test_log_likelihood_grows_with_k_and_bounds_the_elbo(trained, digits):
    """E log (1/k) Σ w_i increases with k (Burda et al., Theorem 1) from the ELBO at k = 1."""
    elbo = trained.elbo(digits, n_samples=10, seed=0).mean()
    bounds = [trained.log_likelihood(digits, k=k, seed=1).mean() for k in (1, 10, 100)]
    assert bounds[0] < bounds[1] < bounds[2]
    assert bounds[2] >= elbo


def test_log_likelihood_with_one_sample_is_an_unbiased_elbo_estimate(trained, digits):
    """With k = 1, log w = log p(x|z) + log p(z) − log q(z|x), whose expectation over
    q is E log p(x|z) − KL: the ELBO.  Compare the two estimators on many draws."""
    X = np.repeat(digits[:10], 400, axis=0)
    difference = (trained.log_likelihood(X, k=1, seed=2) - trained.elbo(X, n_samples=1, seed=3))
    standard_error = difference.std() / np.sqrt(difference.size)
    assert abs(difference.mean()) <= 4 * standard_error
    assert standard_error < 0.05   # sharp enough to see a missing term of the bound


# -- the pieces: posterior, encode, sample ----------------------------------------------
def test_posterior_shapes_and_encode_is_the_posterior_mean(trained, digits):
    X = digits[:37]
    mu, logvar = trained.posterior(X)
    assert mu.shape == logvar.shape == (37, 8)
    assert mu.dtype == logvar.dtype == np.float32
    np.testing.assert_array_equal(trained.encode(X), mu)
    assert not np.array_equal(mu, logvar)


def test_sample_decodes_standard_normal_draws(trained):
    """sample(n) = decode(z), z ~ N(0, I): Bernoulli means, so in [0, 1]."""
    samples = trained.sample(25, seed=4)
    assert samples.shape == (25, 64)
    assert samples.min() >= 0 and samples.max() <= 1
    z = np.random.default_rng(4).standard_normal((25, 8), dtype=np.float32)
    np.testing.assert_array_equal(samples, trained.decode(z))
    assert np.array_equal(trained.sample(25, seed=4), samples)
    assert not np.array_equal(trained.sample(25, seed=5), samples)


# -- training ------------------------------------------------------------------
def test_same_seed_gives_bit_identical_parameters_after_fit(digits):
    def trained_params(fit_seed, model_seed=1):
        m = npae.VAE(64, (32,), latent=4, seed=model_seed)
        return m.fit(digits[:300], epochs=2, batch_size=50, verbose=0, seed=fit_seed).params

    first, again, other = trained_params(0), trained_params(0), trained_params(1)
    assert all(p.dtype == np.float32 for p in first.values())
    assert all(np.array_equal(first[name], again[name]) for name in first)
    assert not all(np.array_equal(first[name], other[name]) for name in first)
    # fit's seed seeds the weights as well as ε and the shuffles: the constructor's seed is replaced
    assert all(np.array_equal(first[name], trained_params(0, model_seed=2)[name]) for name in first)


def test_kl_warmup_raises_beta_linearly_over_the_first_epochs(digits):
    """β_epoch = β · min(1, (epoch + 1) / N) for N = warmup_epochs."""
    beta, N = 2.0, 4
    m = npae.VAE(64, (16,), latent=2, beta=beta, warmup_epochs=N, seed=0).built()
    ramp = [m.loss_weights(epoch) for epoch in range(6)]
    np.testing.assert_allclose(ramp, [beta * min(1, (e + 1) / N) for e in range(6)], rtol=1e-15)

    X = digits[:64].astype(np.float64)
    m = npae.VAE(64, (16,), latent=2, beta=beta, warmup_epochs=N, seed=0, dtype="float64")
    # fit(seed=9) starts from seed 9's weights (stream 0), as a fresh model with seed 9 does
    twin = npae.VAE(64, (16,), latent=2, beta=beta, warmup_epochs=N, seed=9,
                    dtype="float64").built()
    m.fit(X, epochs=2, batch_size=64, shuffle=False, verbose=0, seed=9)
    # the first epoch's (only) step was taken on the loss with β / N, on ε from the seed's
    # training stream (stream 1 of checks.generators(9, 4): nothing is shuffled before it)
    eps = twin.draw_noise(64, npae.checks.generators(9, 4)[1])
    np.testing.assert_allclose(m.history["loss"][0], oracles.vae_loss_and_grads(
        twin, X, eps, beta=beta / N)[0], rtol=1e-12)
    assert m.loss_weights(None) == beta      # after fit, the objective's own β

def test_elbo_draws_its_samples_in_groups_and_gives_what_one_draw_of_all_would(monkeypatch):
    """elbo(n_samples=…) never holds more than DRAWS_AT_ONCE values of ε: groups drawn one after
    another from the same generator are the draws of one go, so the estimate does not change."""
    from npae.models import vae_evaluation
    X = npae.datasets.load_digits()[0][:60]
    m = npae.VAE(hidden=(8,), latent=3, epochs=1).fit(X)
    at_once = m.elbo(X, n_samples=9, seed=4)
    monkeypatch.setattr(vae_evaluation, "DRAWS_AT_ONCE", 2 * 60 * 3)   # two draws a group
    assert np.array_equal(m.elbo(X, n_samples=9, seed=4), at_once)
    monkeypatch.setattr(vae_evaluation, "DRAWS_AT_ONCE", 1)             # one draw a group
    assert np.array_equal(m.elbo(X, n_samples=9, seed=4), at_once)
