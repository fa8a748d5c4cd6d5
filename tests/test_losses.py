"""Tests for npae.losses: BCE from logits, MSE, the Gaussian NLL and the Gaussian KL.

Hand-worked values on tiny inputs, agreement with the naive formulas where
those are stable, the sum-over-features / mean-over-batch convention, gradients
against central differences over hypothesis-drawn shapes, and what the math
promises: BCE's exact asymptotes, KL ≥ 0 with equality only at the prior, and
KL equal to E_q[log q − log p] estimated by sampling.
"""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import H, assert_gradients_ok
from npae import gradcheck
from npae.nn.losses import bce_with_logits, gaussian_nll, kl_normal, mse

LOG_2PI = math.log(2 * math.pi)
LOG2 = math.log(2)


# --- hand-worked values -------------------------------------------------------------

def test_bce_hand_worked():
    # Row 1: t = (0, log 3), x = (1, 0).  σ(0) = 1/2, σ(log 3) = 3/4.
    #   ℓ₁ = −log σ(0) − log(1 − σ(log 3)) = log 2 + log 4 = 3 log 2
    # Row 2: t = (0, 0), x = (1/2, 1/2).  Each feature: −[½ log ½ + ½ log ½] = log 2.
    #   ℓ₂ = 2 log 2
    # L = (ℓ₁ + ℓ₂)/2 = 2.5 log 2;  ∂L/∂t = (σ(t) − x)/2 = [[−1/4, 3/8], [0, 0]].
    logits = np.array([[0.0, math.log(3)], [0.0, 0.0]])
    x = np.array([[1.0, 0.0], [0.5, 0.5]])
    loss, dlogits = bce_with_logits(logits, x)
    assert isinstance(loss, float)
    assert loss == pytest.approx(2.5 * LOG2, rel=1e-15)
    np.testing.assert_allclose(dlogits, [[-0.25, 0.375], [0.0, 0.0]], rtol=1e-15, atol=1e-16)
    per_example, _ = bce_with_logits(logits, x, per_example=True)
    np.testing.assert_allclose(per_example, [3 * LOG2, 2 * LOG2], rtol=1e-15)


def test_mse_hand_worked():
    # ℓ₁ = (1 − 0)² + (2 − 0)² = 5,  ℓ₂ = (0 − 3)² + (0 − 4)² = 25,  L = 15.
    # ∂L/∂x̂ = 2(x̂ − x)/2 = x̂ − x = [[1, 2], [−3, −4]].
    prediction = np.array([[1.0, 2.0], [0.0, 0.0]])
    x = np.array([[0.0, 0.0], [3.0, 4.0]])
    loss, dprediction = mse(prediction, x)
    assert loss == 15.0
    np.testing.assert_array_equal(dprediction, [[1.0, 2.0], [-3.0, -4.0]])
    np.testing.assert_array_equal(mse(prediction, x, per_example=True)[0], [5.0, 25.0])


def test_gaussian_nll_hand_worked():
    # x = (3, 2), μ = (0, 0), log σ² = (0, log 4), so σ² = (1, 4):
    #   (x − μ)²/σ² = (9, 1)
    #   ℓ = ½[2 log 2π + 0 + log 4 + 9 + 1] = log 2π + log 2 + 5
    #   ∂ℓ/∂μ = (μ − x)/σ² = (−3, −1/2)
    #   ∂ℓ/∂log σ² = ½[1 − (x − μ)²/σ²] = (½(1 − 9), ½(1 − 1)) = (−4, 0)
    x = np.array([[3.0, 2.0]])
    mu = np.zeros((1, 2))
    logvar = np.array([[0.0, math.log(4)]])
    loss, dmu, dlogvar = gaussian_nll(x, mu, logvar)
    assert loss == pytest.approx(LOG_2PI + LOG2 + 5, rel=1e-15)
    np.testing.assert_allclose(dmu, [[-3.0, -0.5]], rtol=1e-15)
    np.testing.assert_allclose(dlogvar, [[-4.0, 0.0]], rtol=1e-15, atol=1e-15)


def test_gaussian_nll_shared_variances_sum_their_gradients():
    # Two rows x = (3, 2) and (1, 0), μ = 0, one log σ² per feature = (0, log 4).
    #   Row 2: (x − μ)²/σ² = (1, 0): ℓ₂ = ½[2 log 2π + log 4 + 1] = log 2π + log 2 + ½
    #   L = (ℓ₁ + ℓ₂)/2 = log 2π + log 2 + 11/4
    #   ∂L/∂log σ² = ½ Σ_rows ½[1 − (x − μ)²/σ²] = ½[(−4, 0) + (0, ½)] = (−2, ¼)
    # With one log σ² = 0 for everything (σ² = 1): (x − μ)² = (9, 4, 1, 0),
    #   ∂L/∂log σ² = ½ Σ ½(1 − s) = ¼[(−8) + (−3) + 0 + 1] = −5/2.
    x = np.array([[3.0, 2.0], [1.0, 0.0]])
    mu = np.zeros((2, 2))
    loss, dmu, dlogvar = gaussian_nll(x, mu, np.array([0.0, math.log(4)]))
    assert loss == pytest.approx(LOG_2PI + LOG2 + 11 / 4, rel=1e-15)
    assert dlogvar.shape == (2,)
    np.testing.assert_allclose(dlogvar, [-2.0, 0.25], rtol=1e-15)
    np.testing.assert_allclose(dmu, [[-1.5, -0.25], [-0.5, 0.0]], rtol=1e-15)

    loss, _, dlogvar = gaussian_nll(x, mu, np.array(0.0))
    assert np.shape(dlogvar) == ()
    assert float(dlogvar) == pytest.approx(-2.5, rel=1e-15)
    # ℓ₁ = log 2π + ½(9 + 4) = log 2π + 6.5;  ℓ₂ = log 2π + ½;  L = log 2π + 3.5
    assert loss == pytest.approx(LOG_2PI + 3.5, rel=1e-15)


def test_kl_hand_worked():
    # μ = (1, 0), log σ² = (0, log 2), σ² = (1, 2):
    #   KL = ½[(1 + 1 − 1 − 0) + (0 + 2 − 1 − log 2)] = 1 − ½ log 2
    #   ∂KL/∂μ = μ = (1, 0);  ∂KL/∂log σ² = ½(σ² − 1) = (0, ½)
    mu = np.array([[1.0, 0.0]])
    logvar = np.array([[0.0, LOG2]])
    kl, dmu, dlogvar = kl_normal(mu, logvar)
    assert kl == pytest.approx(1 - LOG2 / 2, rel=1e-15)
    np.testing.assert_array_equal(dmu, [[1.0, 0.0]])
    np.testing.assert_allclose(dlogvar, [[0.0, 0.5]], rtol=1e-15, atol=1e-16)


# --- agreement with the naive formulas -------------------------------------------------

def batch(min_n=1, max_n=4, min_d=1, max_d=5):
    return st.tuples(st.integers(min_n, max_n), st.integers(min_d, max_d), st.integers(0, 2**32 - 1))


@given(shape_and_seed=batch())
def test_bce_equals_the_naive_formula_where_that_is_stable(shape_and_seed):
    n, d, seed = shape_and_seed
    rng = np.random.default_rng(seed)
    logits = rng.uniform(-20, 20, size=(n, d))
    x = rng.uniform(0, 1, size=(n, d))
    # For |t| < 20, 1 − σ(t) ≥ 2e-9 keeps 8 significant digits: log of it is fine.
    x_hat = 1 / (1 + np.exp(-logits))
    naive = -(x * np.log(x_hat) + (1 - x) * np.log(1 - x_hat)).sum(axis=1)
    per_example, _ = bce_with_logits(logits, x, per_example=True)
    np.testing.assert_allclose(per_example, naive, rtol=1e-7, atol=1e-7)


@given(shape_and_seed=batch())
def test_gaussian_nll_equals_minus_the_log_density(shape_and_seed):
    n, d, seed = shape_and_seed
    rng = np.random.default_rng(seed)
    x, mu = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    logvar = rng.uniform(-2, 2, size=(n, d))
    sigma = np.exp(logvar / 2)
    # −log Π_j (2π σ_j²)^{−½} exp(−(x_j − μ_j)²/(2σ_j²)), written with σ, not log σ².
    density = np.prod(np.exp(-((x - mu) / sigma) ** 2 / 2) / (sigma * np.sqrt(2 * np.pi)), axis=1)
    per_example, _, _ = gaussian_nll(x, mu, logvar, per_example=True)
    np.testing.assert_allclose(per_example, -np.log(density), rtol=1e-12, atol=1e-12)


# --- the convention: sum over features, mean over the batch ---------------------------

def bce(a, b, **kw):
    return bce_with_logits(a, b, **kw)[0]


def mse_value(a, b, **kw):
    return mse(a, b, **kw)[0]


def nll(a, b, **kw):
    return gaussian_nll(b, a, np.full(a.shape, 0.3), **kw)[0]


def kl(a, b, **kw):
    return kl_normal(a, b, **kw)[0]


@pytest.mark.parametrize("loss", [bce, mse_value, nll, kl], ids=["bce", "mse", "gaussian_nll", "kl"])
@given(shape_and_seed=batch())
def test_sum_over_features_mean_over_batch(loss, shape_and_seed):
    n, d, seed = shape_and_seed
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(-2, 2, size=(n, d)), rng.uniform(0, 1, size=(n, d))
    total = loss(a, b)
    per_example = loss(a, b, per_example=True)
    assert isinstance(total, float)
    assert per_example.shape == (n,)
    assert total == pytest.approx(per_example.mean(), rel=1e-14)
    # Each example's ℓ is a sum over features: the two halves of a row add up.
    left = loss(a[:, :1], b[:, :1], per_example=True)
    right = loss(a[:, 1:], b[:, 1:], per_example=True) if d > 1 else 0.0
    np.testing.assert_allclose(per_example, left + right, rtol=1e-13, atol=1e-13)
    # Repeating every feature doubles L; repeating the whole batch leaves it unchanged.
    assert loss(np.hstack([a, a]), np.hstack([b, b])) == pytest.approx(2 * total, rel=1e-13)
    assert loss(np.vstack([a, a]), np.vstack([b, b])) == pytest.approx(total, rel=1e-13)


def test_gradients_are_divided_by_the_batch_size():
    # Repeating the batch halves each row's share of the gradient.
    rng = np.random.default_rng(0)
    logits, x = rng.normal(size=(3, 4)), rng.uniform(size=(3, 4))
    _, once = bce_with_logits(logits, x)
    _, twice = bce_with_logits(np.vstack([logits, logits]), np.vstack([x, x]))
    np.testing.assert_allclose(twice[:3], once / 2, rtol=1e-15)


# --- gradients against central differences ---------------------------------------------
#
# Data are drawn so that every gradient entry stands well clear of the finite
# difference's rounding noise (~ε·|L|/h ≈ 1e-10): a relative error of an entry
# that is nearly 0 would measure that noise, not the gradient.

@given(shape_and_seed=batch())
def test_bce_gradient(shape_and_seed):
    n, d, seed = shape_and_seed
    rng = np.random.default_rng(seed)
    # Binary targets and |t| ≤ 3 keep |σ(t) − x| ≥ σ(−3) ≈ 0.047 for every entry.
    logits = rng.uniform(-3, 3, size=(n, d))
    x = rng.integers(0, 2, size=(n, d)).astype(np.float64)

    def loss_and_grads():
        loss, dlogits = bce_with_logits(logits, x)
        return loss, {"logits": dlogits}

    assert_gradients_ok(gradcheck(loss_and_grads, {"logits": logits}, eps=H))


@given(shape_and_seed=batch())
def test_mse_gradient(shape_and_seed):
    n, d, seed = shape_and_seed
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    # x̂ − x of either sign with |x̂ − x| ≥ 0.1.
    prediction = x + rng.choice([-1, 1], size=(n, d)) * rng.uniform(0.1, 2, size=(n, d))

    def loss_and_grads():
        loss, dprediction = mse(prediction, x)
        return loss, {"prediction": dprediction}

    assert_gradients_ok(gradcheck(loss_and_grads, {"prediction": prediction}, eps=H))


LOGVAR_SHAPES = {
    "per entry (n, d)": lambda n, d: (n, d),
    "per feature (d,)": lambda n, d: (d,),
    "shared ()": lambda n, d: (),
    "per feature (1, d)": lambda n, d: (1, d),
    "per example (n, 1)": lambda n, d: (n, 1),
}


@pytest.mark.parametrize("logvar_shape", list(LOGVAR_SHAPES))
@given(shape_and_seed=batch())
def test_gaussian_nll_gradient(logvar_shape, shape_and_seed):
    n, d, seed = shape_and_seed
    rng = np.random.default_rng(seed)
    logvar = rng.uniform(-1, 1, size=LOGVAR_SHAPES[logvar_shape](n, d))
    var = np.broadcast_to(np.exp(logvar), (n, d))
    # Put μ at a chosen standardised distance: (x − μ)²/σ² = s ∈ [0.05, 0.6].  Then
    # every ½(1 − s) is ≥ 0.2 and of one sign, so sums over shared variances never cancel.
    s = rng.uniform(0.05, 0.6, size=(n, d))
    x = rng.uniform(-2, 2, size=(n, d))
    mu = x + rng.choice([-1, 1], size=(n, d)) * np.sqrt(s * var)

    def loss_and_grads():
        loss, dmu, dlogvar = gaussian_nll(x, mu, logvar)
        return loss, {"mu": dmu, "logvar": dlogvar}

    loss, grads = loss_and_grads()
    assert np.shape(grads["logvar"]) == logvar.shape
    assert grads["mu"].shape == (n, d)
    assert_gradients_ok(gradcheck(loss_and_grads, {"mu": mu, "logvar": logvar}, eps=H))


@given(shape_and_seed=batch())
def test_kl_gradient(shape_and_seed):
    n, k, seed = shape_and_seed
    rng = np.random.default_rng(seed)
    # ∂KL/∂μ = μ and ∂KL/∂log σ² = ½(σ² − 1) vanish at 0: draw both with |·| ≥ 0.1.
    sign = lambda: rng.choice([-1, 1], size=(n, k))  # noqa: E731
    mu = sign() * rng.uniform(0.1, 2, size=(n, k))
    logvar = sign() * rng.uniform(0.1, 2, size=(n, k))

    def loss_and_grads():
        kl, dmu, dlogvar = kl_normal(mu, logvar)
        return kl, {"mu": dmu, "logvar": dlogvar}

    assert_gradients_ok(gradcheck(loss_and_grads, {"mu": mu, "logvar": logvar}, eps=H))


# --- BCE far in the tails ------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bce_at_logits_plus_minus_1e4_equals_its_asymptotes(dtype):
    # ℓ(t, x) = max(t, 0) − x t + log(1 + e^{−|t|}), and e^{−10⁴} rounds to 0, so:
    #   t = +1e4, x = 1: 1e4 − 1e4 + 0 = 0      t = −1e4, x = 1: 0 + 1e4 + 0 = 1e4 = |t|
    #   t = +1e4, x = 0: 1e4 − 0   + 0 = 1e4    t = −1e4, x = 0: 0 − 0   + 0 = 0
    # and ∂ℓ/∂t = σ(t) − x = (1 − 1, 0 − 1, 1 − 0, 0 − 0) = (0, −1, 1, 0).
    logits = np.array([[1e4, -1e4, 1e4, -1e4]], dtype=dtype)
    x = np.array([[1.0, 1.0, 0.0, 0.0]], dtype=dtype)
    # Underflow of e^{−10⁴} to 0 is the correctly rounded value; anything else raises.
    with np.errstate(over="raise", invalid="raise", divide="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, dlogits = bce_with_logits(logits, x)
        elementwise = [bce_with_logits(logits[:, [j]], x[:, [j]])[0] for j in range(4)]
    assert elementwise == [0.0, 1e4, 1e4, 0.0]
    assert loss == 2e4
    np.testing.assert_array_equal(dlogits, [[0.0, -1.0, 1.0, 0.0]])
    assert dlogits.dtype == dtype


# --- KL: what the math promises -------------------------------------------------------

def test_kl_is_zero_exactly_at_the_prior():
    kl, dmu, dlogvar = kl_normal(np.zeros((3, 4)), np.zeros((3, 4)))
    assert kl == 0.0
    assert not dmu.any() and not dlogvar.any()


@given(shape_and_seed=batch())
def test_kl_is_positive_away_from_the_prior(shape_and_seed):
    n, k, seed = shape_and_seed
    rng = np.random.default_rng(seed)
    mu, logvar = np.zeros((n, k)), np.zeros((n, k))
    # Move one coordinate of every example away from (0, 0).
    row, col = np.arange(n), rng.integers(0, k, size=n)
    mu[row, col] = rng.uniform(-2, 2, size=n)
    logvar[row, col] = rng.uniform(-2, 2, size=n)
    moved = (mu[row, col] != 0) | (logvar[row, col] != 0)
    per_example = kl_normal(mu, logvar, per_example=True)[0]
    # Each term ½(μ² + σ² − 1 − log σ²) ≥ 0 since e^u ≥ 1 + u, with equality only at μ = u = 0.
    assert np.all(per_example[moved] > 0)
    assert np.all(per_example[~moved] == 0)


def test_kl_equals_a_monte_carlo_estimate():
    # KL(q‖p) = E_{z~q}[log q(z) − log p(z)] with q = N(μ, σ²), p = N(0, I).  Draw
    # z = μ + σ ε and compare the sample mean with the closed form, per example,
    # within 4 standard errors of the mean.
    mu = np.array([[0.5, -1.0, 0.0], [2.0, 0.3, -0.7]])
    logvar = np.array([[0.0, -1.0, 1.0], [0.5, -0.3, 0.2]])
    rng = np.random.default_rng(2024)
    eps = rng.standard_normal((200_000, *mu.shape))
    z = mu + np.exp(logvar / 2) * eps
    log_q = -0.5 * (LOG_2PI + logvar + eps**2).sum(axis=-1)
    log_p = -0.5 * (LOG_2PI + z**2).sum(axis=-1)
    samples = log_q - log_p                                 # (S, n)
    estimate = samples.mean(axis=0)
    standard_error = samples.std(axis=0, ddof=1) / math.sqrt(len(samples))
    closed_form = kl_normal(mu, logvar, per_example=True)[0]
    assert np.all(standard_error < 0.01)
    assert np.all(np.abs(estimate - closed_form) < 4 * standard_error)
    assert kl_normal(mu, logvar)[0] == pytest.approx(closed_form.mean(), rel=1e-15)


# --- dtypes ---------------------------------------------------------------------------

def test_float32_is_preserved():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(3, 4)).astype(np.float32)
    b = rng.uniform(size=(3, 4)).astype(np.float32)
    logvar_shapes = [(3, 4), (4,), ()]
    outputs = {
        "bce": bce_with_logits(a, b, per_example=True),
        "mse": mse(a, b, per_example=True),
        "kl": kl_normal(a, b, per_example=True),
        **{f"gaussian_nll {s}": gaussian_nll(b, a, np.full(s, 0.2, np.float32), per_example=True)
           for s in logvar_shapes},
    }
    for name, arrays in outputs.items():
        for array in arrays:
            assert np.asarray(array).dtype == np.float32, name
    # The scalar loss is a Python float, equal to the float32 per-example mean.
    loss, _ = bce_with_logits(a, b)
    assert isinstance(loss, float)
    assert loss == pytest.approx(float(bce_with_logits(a.astype(float), b.astype(float))[0]), rel=1e-6)
