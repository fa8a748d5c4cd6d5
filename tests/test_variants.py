"""Tests for the members of the family: denoising, sparse, contractive and tied
autoencoders; the importance-weighted VAE and KL warm-up.

First every variant's gradient, checked by central differences in float64 with
its randomness fixed (the noise draws passed as ``eps``; ε for the VAE) over
hypothesis-drawn small shapes, to a relative error of 1e-6.  Then what the
math of each variant promises:

* contractive: the penalty is λ (1/n) Σ_i ‖J_i‖²_F, J_i = ∂h_i/∂x_i, with J
  taken by finite differences of ``encode`` and from W: J = diag(f′(a)) W₁ᵀ;
* sparse (KL): the penalty Σ_j KL(ρ ‖ ρ̂_j) vanishes when every ρ̂_j = ρ;
* denoising (mask): about ν of the inputs are zeroed, and the reconstruction
  is scored against the clean X;
* IWAE: with k = 1 it has the ELBO's expectation, and the bound tightens
  (the loss falls) as k grows;
* warm-up: β rises linearly to its final value over the warm-up epochs.

Finally each variant is chosen from the command line and trains, and the
receptive-field example runs.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from conftest import H, assert_gradients_ok, well_conditioned
import npae
from npae import VAE, Autoencoder, gradcheck
from npae.nn.activations import ACTIVATIONS, KINKED, get_activation
from npae.cli.parser import main
from npae.nn.buffers import Workspace
from npae.nn.losses import bce_with_logits

ROOT = Path(__file__).resolve().parents[1]
SMOOTH = sorted(name for name in ACTIVATIONS if name not in KINKED)

# (rows n, features d, code size, seed): small enough to check every entry
sizes = st.tuples(st.integers(2, 5), st.integers(2, 6), st.integers(1, 4), st.integers(0, 2**16))


def data(seed, n, d):
    """Rows in [0.05, 0.95]: valid Bernoulli targets, away from where the BCE is steepest."""
    return np.random.default_rng(seed).uniform(0.05, 0.95, size=(n, d))


def loss_at(model, X, eps, beta):
    """The model's one loss function (``batch_loss``, what a training step runs) with the weight
    β of a warm-up epoch, on fresh buffers: (loss, grads)."""
    _, layout = model.parameter_buffer()
    grads = layout.views(np.zeros(layout.size))
    return model.batch_loss(X, eps, Workspace(np.float64), grads, 1 / len(X), beta), grads


def check_model(model, X, eps=None):
    """Gradient-check ``model.loss_and_grads(X, eps)`` over every entry of a well-conditioned draw."""
    assume(well_conditioned(*model.loss_and_grads(X, eps=eps)))
    report = gradcheck(lambda: model.loss_and_grads(X, eps=eps), model.params, eps=H)
    assert_gradients_ok(report)
    return report


def autoencoder(d, code, seed, **options):
    options.setdefault("activation", "tanh")
    return Autoencoder(d, (code,), dtype="float64", seed=seed, **options)


# --- every variant's gradient ------------------------------------------------------
@given(sizes)
def test_denoising_mask_gradients(size):
    n, d, code, seed = size
    model = autoencoder(d, code, seed, noise="mask", noise_level=0.3)
    U = np.random.default_rng(seed + 1).random((n, d))  # the uniform draws of the mask
    check_model(model, data(seed, n, d), eps=U)


@given(sizes)
def test_denoising_gaussian_gradients(size):
    n, d, code, seed = size
    model = autoencoder(d, code, seed, noise="gaussian", noise_level=0.5)
    E = np.random.default_rng(seed + 1).standard_normal((n, d))
    check_model(model, data(seed, n, d), eps=E)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
@given(size=sizes)
def test_sparse_l1_gradients(activation, size):
    # tanh / sigmoid codes are never exactly 0, so no entry sits on the kink of |h|
    n, d, code, seed = size
    model = autoencoder(d, code, seed, activation=activation, sparsity="l1", sparsity_weight=0.1)
    check_model(model, data(seed, n, d))


@given(sizes, st.sampled_from([0.05, 0.2, 0.5]))
def test_sparse_kl_gradients(size, rho):
    n, d, code, seed = size
    model = autoencoder(d, code, seed, activation="sigmoid", sparsity="kl", sparsity_weight=0.5,
                        sparsity_target=rho)
    check_model(model, data(seed, n, d))


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
@pytest.mark.parametrize("activation", SMOOTH)
@given(size=sizes)
def test_contractive_gradients(activation, tied, size):
    # the penalty's gradient needs f″: every smooth activation, tied and untied
    n, d, code, seed = size
    model = autoencoder(d, code, seed, activation=activation, contractive_weight=0.3, tied=tied)
    check_model(model, data(seed, n, d))


@given(sizes, st.integers(1, 4))
def test_tied_gradients_through_a_deeper_stack(size, second):
    # decoder layer i uses the transpose of encoder layer (depth − 1 − i): ∂L/∂W₁ = G_enc + G_decᵀ
    n, d, code, seed = size
    model = Autoencoder(d, (code, second), activation="tanh", tied=True, dtype="float64", seed=seed)
    assert "decoder.0.W" not in model.params and "decoder.1.W" not in model.params
    check_model(model, data(seed, n, d))


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@given(size=sizes, k=st.integers(1, 6))
def test_iwae_gradients(likelihood, size, k):
    n, d, latent, seed = size
    model = VAE(d, (3,), latent, activation="tanh", likelihood=likelihood, objective="iwae", k=k,
                dtype="float64", seed=seed)
    eps = np.random.default_rng(seed + 1).standard_normal((k, n, latent))
    check_model(model, data(seed, n, d), eps=eps)


@pytest.mark.parametrize("objective", ["elbo", "iwae"])
@given(size=sizes)
def test_warmup_gradients_at_an_intermediate_epoch(objective, size):
    n, d, latent, seed = size
    model = VAE(d, (3,), latent, activation="tanh", beta=2.0, warmup_epochs=4, objective=objective,
                k=3, dtype="float64", seed=seed).built()
    beta = model.loss_weights(1)  # β_1 = 2 · 2/4 = 1
    assert beta == 1.0 < model.beta == model.loss_weights(None)
    shape = (n, latent) if objective == "elbo" else (3, n, latent)
    X, eps = data(seed, n, d), np.random.default_rng(seed + 1).standard_normal(shape)
    assume(well_conditioned(*loss_at(model, X, eps, beta)))
    assert_gradients_ok(gradcheck(lambda: loss_at(model, X, eps, beta), model.params, eps=H))


# --- the L2 penalty alpha: loss += (α/2) Σ ‖W‖² over the "*.W" matrices, gradient α·W ------
ALPHAS = st.sampled_from([0.05, 0.5, 2.0])  # small to dominant next to the loss's own gradient
AE_WITH_ALPHA = {"untied": {}, "tied": {"tied": True},
                 "sparse-l1": {"sparsity": "l1", "sparsity_weight": 0.1}}


@pytest.mark.parametrize("variant", sorted(AE_WITH_ALPHA))
@given(size=sizes, alpha=ALPHAS)
def test_alpha_gradients_autoencoder(variant, size, alpha):
    # tied: the shared W is penalised once, its gradient Σ of both uses + α·W
    n, d, code, seed = size
    model = autoencoder(d, code, seed, alpha=alpha, **AE_WITH_ALPHA[variant])
    check_model(model, data(seed, n, d))


@pytest.mark.parametrize("objective", ["elbo", "iwae"])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@settings(max_examples=8)  # 4 × 8 whole-VAE checks (every entry, ~0.1 s each): the file stays fast
@given(size=sizes, alpha=ALPHAS)
def test_alpha_gradients_vae(likelihood, objective, size, alpha):
    # the penalty covers encoder, μ, log σ² and decoder weights, never x_logvar
    n, d, latent, seed = size
    k = 3 if objective == "iwae" else 1
    model = VAE(d, (3,), latent, activation="tanh", likelihood=likelihood, objective=objective,
                k=k, beta=0.5, alpha=alpha, dtype="float64", seed=seed).built()
    rng = np.random.default_rng(seed + 1)
    if likelihood == "gaussian":
        model.x_logvar_[:] = rng.normal(0.0, 0.5, d)
    shape = (n, latent) if objective == "elbo" else (k, n, latent)
    check_model(model, data(seed, n, d), eps=rng.standard_normal(shape))


# --- contractive: the penalty is λ · mean ‖J‖²_F -------------------------------------
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "softplus"])
def test_contractive_penalty_is_the_mean_squared_frobenius_norm_of_the_jacobian(activation):
    n, d, code, lam = 4, 5, 3, 0.7
    X = data(0, n, d)
    model = autoencoder(d, code, 0, activation=activation, contractive_weight=lam)
    with_penalty = model.loss_and_grads(X)[0]
    model.contractive_weight = 0.0
    penalty = with_penalty - model.loss_and_grads(X)[0]

    # J_i[:, k] = [h(x_i + h e_k) − h(x_i − h e_k)] / 2h, one input coordinate at a time
    J = np.zeros((n, code, d))
    for k in range(d):
        step = np.zeros(d)
        step[k] = H
        J[:, :, k] = (model.encode(X + step) - model.encode(X - step)) / (2 * H)
    assert penalty == pytest.approx(lam * np.mean(np.sum(J**2, axis=(1, 2))), rel=1e-8)

    # and from W: J_i = diag(f′(a_i)) W₁ᵀ, so ‖J_i‖²_F = Σ_j f′(a_ij)² Σ_k W[k, j]²
    W = model.params["encoder.0.W"]
    df = get_activation(activation).df(model.encode(X))
    J_analytic = df[:, :, None] * W.T[None, :, :]
    np.testing.assert_allclose(J, J_analytic, rtol=1e-7, atol=1e-10)
    assert penalty == pytest.approx(lam * np.mean((df**2) @ (W**2).sum(axis=0)), rel=1e-12)


# --- sparse (KL): no penalty when every unit's mean activation is ρ ---------------------
def test_kl_sparsity_penalty_vanishes_when_every_mean_activation_is_rho():
    rho, n, d, code = 0.1, 6, 5, 4
    X = data(1, n, d)
    sparse = autoencoder(d, code, 2, activation="sigmoid", sparsity="kl", sparsity_weight=3.0,
                         sparsity_target=rho)
    plain = autoencoder(d, code, 2, activation="sigmoid")
    for model in (sparse, plain):  # h_ij = σ(log(ρ / (1 − ρ))) = ρ for every row and unit
        model.params["encoder.0.W"][:] = 0.0
        model.params["encoder.0.b"][:] = np.log(rho / (1 - rho))
    np.testing.assert_array_equal(sparse.params["decoder.0.W"], plain.params["decoder.0.W"])  # same seed
    np.testing.assert_allclose(sparse.encode(X), rho)
    loss_sparse, grads_sparse = sparse.loss_and_grads(X)
    loss_plain, grads_plain = plain.loss_and_grads(X)
    assert loss_sparse == pytest.approx(loss_plain, abs=1e-12)
    for name in grads_plain:  # ∂KL/∂ρ̂ = −ρ/ρ̂ + (1 − ρ)/(1 − ρ̂) = 0 at ρ̂ = ρ
        np.testing.assert_allclose(grads_sparse[name], grads_plain[name], atol=1e-12)

    # at ρ̂ = ½ instead: λ Σ_j [ρ log(ρ / ½) + (1 − ρ) log((1 − ρ) / ½)], worked by hand
    for model in (sparse, plain):
        model.params["encoder.0.b"][:] = 0.0
    expected = 3.0 * code * (rho * np.log(2 * rho) + (1 - rho) * np.log(2 * (1 - rho)))
    assert sparse.loss_and_grads(X)[0] - plain.loss_and_grads(X)[0] == pytest.approx(expected)


# --- alpha: the penalty is (α/2) Σ ‖W‖² over the weight matrices, worked by hand -------
# Each model's parameters split into its weight matrices (with their number of entries,
# counted from the layer sizes) and the rest: biases, and the Gaussian decoder's log σ_x².
ALPHA_MODELS = {
    # 5 → 4 → 3 → 4 → 5: 5·4 + 4·3 + 3·4 + 4·5 = 64 weights
    "autoencoder": (lambda: Autoencoder(5, (4, 3), activation="tanh", dtype="float64", seed=0),
                    {"encoder.0.W", "encoder.1.W", "decoder.0.W", "decoder.1.W"}, 64,
                    {"encoder.0.b", "encoder.1.b", "decoder.0.b", "decoder.1.b"}),
    # the same net, tied: each shared matrix is one parameter, penalised once: 5·4 + 4·3 = 32
    "tied": (lambda: Autoencoder(5, (4, 3), activation="tanh", tied=True, dtype="float64",
                                 seed=0),
             {"encoder.0.W", "encoder.1.W"}, 32,
             {"encoder.0.b", "encoder.1.b", "decoder.0.b", "decoder.1.b"}),
    # 5 → 4 → (μ, log σ²) 2 → 4 → 5: 5·4 + 4·2 + 4·2 + 2·4 + 4·5 = 64 weights
    "gaussian-vae": (lambda: VAE(5, (4,), 2, activation="tanh", likelihood="gaussian",
                                 dtype="float64", seed=0),
                     {"encoder.0.W", "mu.W", "logvar.W", "decoder.0.W", "decoder.1.W"}, 64,
                     {"encoder.0.b", "mu.b", "logvar.b", "decoder.0.b", "decoder.1.b",
                      "x_logvar"}),
}


@pytest.mark.parametrize("name", ALPHA_MODELS)
def test_alpha_penalty_is_half_alpha_times_the_sum_of_squared_weights(name):
    make, weights, n_weights, unpenalised = ALPHA_MODELS[name]
    alpha, n = 0.3, 4
    model = make()
    assert set(model.params) == weights | unpenalised   # nothing left out of the split
    assert sum(model.params[w].size for w in weights) == n_weights
    X = data(11, n, 5)
    eps = np.random.default_rng(12).standard_normal((n, 2)) if isinstance(model, VAE) else None

    # every weight 0.5, every bias and log σ_x² 2.0: penalty (0.3 / 2) · 0.5² · n_weights
    for w, p in model.params.items():
        p[...] = 0.5 if w in weights else 2.0
    plain_loss, plain_grads = model.loss_and_grads(X, eps=eps)
    model.set_params(alpha=alpha)                       # applies at the next loss_and_grads
    loss, grads = model.loss_and_grads(X, eps=eps)
    assert loss - plain_loss == pytest.approx(0.15 * 0.25 * n_weights, rel=1e-12)
    for w in weights:
        np.testing.assert_allclose(grads[w] - plain_grads[w], 0.15, rtol=1e-12)   # α · 0.5
    for b in unpenalised:                               # no penalty: exactly the same gradient
        np.testing.assert_array_equal(grads[b], plain_grads[b])

    # random weights: (α/2) Σ_W Σ_ij W_ij², and α·W; biases and log σ_x² still free
    rng = np.random.default_rng(13)
    for p in model.params.values():
        p[...] = rng.normal(0.0, 0.7, p.shape)
    squares = sum(float(np.sum(model.params[w] ** 2)) for w in weights)
    loss, grads = model.loss_and_grads(X, eps=eps)
    model.alpha = 0.0
    plain_loss, plain_grads = model.loss_and_grads(X, eps=eps)
    assert loss - plain_loss == pytest.approx(alpha / 2 * squares, rel=1e-12)
    for w in weights:
        np.testing.assert_allclose(grads[w] - plain_grads[w], alpha * model.params[w],
                                   rtol=1e-10, atol=1e-15)
    for b in unpenalised:
        np.testing.assert_array_equal(grads[b], plain_grads[b])
    # moving a bias or log σ_x² leaves the penalty where it was
    for b in unpenalised:
        model.params[b][...] += 5.0
    plain_loss = model.loss_and_grads(X, eps=eps)[0]
    model.alpha = alpha
    assert model.loss_and_grads(X, eps=eps)[0] - plain_loss == pytest.approx(alpha / 2 * squares,
                                                                            rel=1e-10)


def test_fit_descends_the_penalised_loss():
    """Full batch, no shuffling, plain SGD: epoch e records L(θ_e) + (α/2) Σ ‖W‖², and
    θ_{e+1} = θ_e − η (∇L(θ_e) + α W_e) — the weights decay, the biases do not."""
    X, alpha, lr = data(14, 8, 5), 0.5, 0.3
    model = Autoencoder(5, (3,), activation="tanh", alpha=alpha, dtype="float64", seed=2)
    twin = Autoencoder(5, (3,), activation="tanh", dtype="float64", seed=2)   # no alpha
    expected = []
    for _ in range(3):
        loss, grads = twin.loss_and_grads(X)
        weights = {w: p for w, p in twin.params.items() if w.endswith(".W")}
        expected.append(loss + alpha / 2 * sum(float(np.sum(W ** 2)) for W in weights.values()))
        for w, p in twin.params.items():
            p -= lr * (grads[w] + alpha * p if w in weights else grads[w])
    model.fit(X, epochs=3, batch_size=8, shuffle=False, optimizer=npae.SGD(lr), verbose=0)
    np.testing.assert_allclose(model.history["loss"], expected, rtol=1e-12)
    for w in twin.params:
        np.testing.assert_allclose(model.params[w], twin.params[w], rtol=1e-12, atol=1e-15)


# --- denoising (mask): ν of the inputs zeroed; the target is the clean X ----------------
@pytest.mark.parametrize("nu", [0.1, 0.3, 0.7])
def test_mask_zeroes_about_nu_of_the_inputs(nu):
    model = Autoencoder(50, (8,), noise="mask", noise_level=nu, dtype="float64", seed=0).built()
    X = np.ones((400, 50))
    U = model.draw_noise(X.shape[0], model.rng_)  # the model's own uniform draws
    zeroed = np.mean(model.corrupt(X, U) == 0)
    sd = np.sqrt(nu * (1 - nu) / X.size)  # binomial standard deviation of the fraction
    assert abs(zeroed - nu) < 5 * sd
    np.testing.assert_array_equal(model.corrupt(X, U), X * (U >= nu))


def test_denoising_scores_the_reconstruction_against_the_clean_input():
    n, d = 5, 6
    X = data(3, n, d)
    model = autoencoder(d, 3, 4, noise="mask", noise_level=0.4).built()
    U = np.random.default_rng(5).random((n, d))
    X_tilde = model.corrupt(X, U)
    logits = model.decoder_.forward(model.encoder_.forward(X_tilde))
    loss = model.loss_and_grads(X, eps=U)[0]
    assert loss == pytest.approx(bce_with_logits(logits, X)[0], rel=1e-12)
    assert loss != pytest.approx(bce_with_logits(logits, X_tilde)[0], rel=1e-3)


# --- IWAE: same expectation as the ELBO at k = 1; tighter as k grows ------------------
def _iwae_and_elbo_models(k, seed=0):
    """A k-sample IWAE and an ELBO model with the same weights (the init ignores k)."""
    iwae = VAE(6, (5,), 2, activation="tanh", objective="iwae", k=k, dtype="float64", seed=seed)
    elbo = VAE(6, (5,), 2, activation="tanh", dtype="float64", seed=seed)
    for name, value in elbo.params.items():
        np.testing.assert_array_equal(value, iwae.params[name])
    return iwae, elbo


def _mean_and_standard_error(model, X, draws, seed):
    """The loss averaged over ``draws`` independent draws of ε, and its standard error."""
    rng = np.random.default_rng(seed)
    shape = (X.shape[0], model.latent) if model.objective == "elbo" else (model.k, X.shape[0], model.latent)
    losses = np.array([model.average_loss(X, eps=rng.standard_normal(shape)) for _ in range(draws)])
    return losses.mean(), losses.std(ddof=1) / np.sqrt(draws)


def test_iwae_with_one_sample_has_the_expectation_of_the_elbo():
    # −log w = −log p(x|z) + log q(z|x) − log p(z), and E_q[log q − log p] = KL in closed form
    X = data(7, 4, 6)
    iwae, elbo = _iwae_and_elbo_models(k=1)
    mean_iwae, se_iwae = _mean_and_standard_error(iwae, X, 1500, seed=1)
    mean_elbo, se_elbo = _mean_and_standard_error(elbo, X, 1500, seed=2)
    assert abs(mean_iwae - mean_elbo) < 4 * np.hypot(se_iwae, se_elbo)


def test_iwae_loss_falls_as_k_grows():
    # the k-sample bound is at least the 1-sample bound in expectation (Burda et al., Thm 1)
    X = data(8, 4, 6)
    means = []
    for k in (1, 5, 20):
        model = _iwae_and_elbo_models(k)[0]
        means.append(_mean_and_standard_error(model, X, 300, seed=k)[0])
    assert means[0] > means[1] > means[2]


# --- warm-up: β rises linearly ----------------------------------------------------------
def test_warmup_ramps_beta_linearly_then_holds():
    model = VAE(6, (4,), 2, beta=2.0, warmup_epochs=4, seed=0).built()
    betas = [model.loss_weights(epoch) for epoch in range(7)]
    np.testing.assert_allclose(betas, [0.5, 1.0, 1.5, 2.0, 2.0, 2.0, 2.0])
    assert model.loss_weights(None) == 2.0                 # outside training: the full β
    assert VAE(6, (4,), 2, beta=2.0, seed=0).built().loss_weights(0) == 2.0


def test_warmup_loss_is_reconstruction_plus_ramped_beta_times_kl():
    # L_e = recon + β_e KL with ε fixed: equal steps in β give equal steps in the loss
    X = data(9, 5, 6)
    model = VAE(6, (4,), 2, beta=3.0, warmup_epochs=3, dtype="float64", seed=0).built()
    eps = np.random.default_rng(0).standard_normal((5, 2))
    losses = [loss_at(model, X, eps, model.loss_weights(epoch))[0] for epoch in range(3)]
    assert losses[2] - losses[1] == pytest.approx(losses[1] - losses[0], rel=1e-10)
    assert losses[2] == pytest.approx(model.loss_and_grads(X, eps=eps)[0], rel=1e-12)


def test_after_a_fit_inside_the_warm_up_the_model_keeps_the_full_beta():
    X = npae.datasets.load_digits()[0][:64].astype(np.float64)
    model = VAE(64, (16,), 2, beta=1.5, warmup_epochs=10, seed=0, dtype="float64")
    model.fit(X, epochs=3, verbose=0)
    eps = np.random.default_rng(0).standard_normal((64, 2))
    full, _ = loss_at(model, X, eps, 1.5)
    assert model.loss_and_grads(X, eps=eps)[0] == pytest.approx(full, rel=1e-12)
    assert model.loss_and_grads(X, eps=eps)[0] != pytest.approx(
        loss_at(model, X, eps, model.loss_weights(2))[0], rel=1e-6)


def test_validation_and_early_stopping_score_the_full_beta_during_the_warm_up():
    """Every epoch's val_loss is the objective's (β, not the epoch's warm-up β): the restored
    best epoch's val_loss is what the model now scores on the validation rows."""
    X = npae.datasets.load_digits()[0]
    train, val = X[:1200], X[1200:1500]
    model = VAE(64, (32,), 2, beta=4.0, warmup_epochs=20, early_stopping=True,
                n_iter_no_change=3, epochs=12, batch_size=64, seed=0, dtype="float64")
    model.fit(train, validation_data=val)
    assert model.best_epoch_ < 20                                # inside the warm-up
    assert model.best_val_loss_ == pytest.approx(
        model.average_loss(val, rng=np.random.default_rng(0)), rel=1e-12)


# --- each variant from the command line -----------------------------------------------
VARIANTS = {
    "denoising": (["--model", "ae", "--noise", "mask", "--noise-level", "0.3"],
                  {"noise": "mask", "noise_level": 0.3}),
    "sparse": (["--model", "ae", "--sparsity", "kl", "--activation", "sigmoid", "--sparsity-weight", "0.1"],
               {"sparsity": "kl", "sparsity_weight": 0.1, "activation": "sigmoid"}),
    "contractive": (["--model", "ae", "--contractive-weight", "0.1"], {"contractive_weight": 0.1}),
    "iwae": (["--objective", "iwae", "--k", "5"], {"objective": "iwae", "k": 5}),
    "warmup": (["--warmup-epochs", "5"], {"warmup_epochs": 5}),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_variant_trains_from_the_command_line(tmp_path, capsys, variant):
    flags, expected = VARIANTS[variant]
    out = tmp_path / variant
    status = main(["train", *flags, "--epochs", "2", "--quiet", "--out", str(out)])
    assert status == 0, capsys.readouterr().err
    for name in ("model.npz", "history.csv", "loss.png"):
        assert (out / name).is_file()
    model = npae.load(out / "model.npz")
    for key, value in expected.items():
        assert getattr(model, key) == value


def test_denoising_from_the_command_line_in_a_fresh_process(tmp_path):
    result = subprocess.run([sys.executable, "-m", "npae", "train", "--model", "ae", "--noise", "mask",
                             "--noise-level", "0.3", "--epochs", "2", "--quiet", "--out", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "model.npz").is_file()


# --- the receptive-field example ------------------------------------------------------
def test_receptive_fields_example_writes_its_pictures(tmp_path):
    # One BLAS thread: its 64-unit products are too small to gain from two, and two
    # threads spin against any other busy process (tens of times slower then).
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "receptive_fields.py"), "--quick",
                             "--out", str(tmp_path)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("receptive_fields_sparse.png", "receptive_fields_plain.png", "receptive_fields.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "patches" in result.stdout
