"""The training step: the model's one spelling of its loss, run on parts of the batch on a team of
threads, equals the paper forms of tests/oracles.py — to 1e-12 in float64, to float32 rounding in
float32 — and ``loss_and_grads`` (the same function on fresh buffers) does too; the step's
divergence guard and the optimiser's update bound."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import npae
import oracles
from npae.training.step import Step, guarded_step, norm_is_finite, numerical_problem

VARIANTS = {
    "ae": (npae.Autoencoder, dict(hidden=(5, 3))),
    "ae tanh mse": (npae.Autoencoder, dict(hidden=(4,), activation="tanh", output="identity",
                                           loss="mse")),
    "ae softplus sigmoid-mse": (npae.Autoencoder, dict(hidden=(4,), activation="softplus",
                                                       output="sigmoid", loss="mse")),
    "ae leaky tanh-mse": (npae.Autoencoder, dict(hidden=(4,), activation="leaky_relu",
                                                 output="tanh", loss="mse")),
    "ae tied": (npae.Autoencoder, dict(hidden=(5, 3), tied=True)),
    "ae mask": (npae.Autoencoder, dict(hidden=(4,), noise="mask", noise_level=0.3)),
    "ae gaussian noise": (npae.Autoencoder, dict(hidden=(4,), noise="gaussian", noise_level=0.3)),
    "ae l1": (npae.Autoencoder, dict(hidden=(4,), activation="tanh", sparsity="l1",
                                     sparsity_weight=0.3)),
    "ae contractive": (npae.Autoencoder, dict(hidden=(4,), activation="sigmoid",
                                              contractive_weight=0.5)),
    "ae alpha": (npae.Autoencoder, dict(hidden=(4,), alpha=0.1, tied=True)),
    "vae": (npae.VAE, dict(hidden=(6,), latent=3)),
    "vae deep tanh": (npae.VAE, dict(hidden=(6, 4), latent=3, activation="tanh")),
    "vae no hidden": (npae.VAE, dict(hidden=(), latent=3)),
    "vae gaussian": (npae.VAE, dict(hidden=(6,), latent=3, likelihood="gaussian")),
    "vae iwae": (npae.VAE, dict(hidden=(6,), latent=3, objective="iwae", k=4)),
    "vae iwae gaussian": (npae.VAE, dict(hidden=(6,), latent=3, objective="iwae", k=3,
                                         likelihood="gaussian")),
    "vae beta alpha": (npae.VAE, dict(hidden=(6,), latent=3, beta=2.5, alpha=0.05)),
}


def built(name, dtype, d=9, seed=0):
    cls, params = VARIANTS[name]
    model = cls(d, dtype=dtype, seed=seed, **params).built()
    if getattr(model, "x_logvar_", None) is not None:     # a log σ_x² that is not all zero
        model.x_logvar_[:] = np.random.default_rng(seed + 1).normal(0, 0.5, d)
    return model


def oracle_and_step(model, X, n_jobs):
    """(the oracle's loss and gradients, the step's) on the same batch and noise."""
    eps = model.draw_noise(len(X), np.random.default_rng(1))
    loss, grads = oracles.loss_and_grads(model, X.astype(np.float64), eps)
    step = Step(model, npae.Adam(), max(len(X), 1), n_jobs)
    try:
        step_loss, problem = step(X, eps, model.loss_weights(None), update=False)
        assert problem is None
        step_grads = {k: v.copy() for k, v in step.grads[0].items()}
    finally:
        step.close()
    return (loss, grads), (step_loss, step_grads)


def assert_equal_to(grads, expected, rtol, atol):
    assert grads.keys() == expected.keys()
    for key, g in expected.items():
        np.testing.assert_allclose(grads[key], g, rtol=rtol, atol=atol * np.abs(g).max(),
                                   err_msg=key)


@pytest.mark.parametrize("n_jobs", [1, 2, 3])
@pytest.mark.parametrize("name", VARIANTS)
def test_the_step_is_the_paper_form_to_1e_12_in_float64(name, n_jobs):
    X = np.random.default_rng(2).random((37, 9))
    (loss, grads), (step_loss, step_grads) = oracle_and_step(built(name, "float64"), X, n_jobs)
    assert step_loss == pytest.approx(loss, rel=1e-12)
    assert_equal_to(step_grads, grads, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", VARIANTS)
def test_loss_and_grads_is_the_paper_form_to_1e_12_in_float64(name):
    model, X = built(name, "float64"), np.random.default_rng(7).random((23, 9))
    eps = model.draw_noise(len(X), np.random.default_rng(8))
    loss, grads = oracles.loss_and_grads(model, X, eps)
    got_loss, got_grads = model.loss_and_grads(X, eps=eps)
    assert got_loss == pytest.approx(loss, rel=1e-12)
    assert_equal_to(got_grads, grads, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", VARIANTS)
def test_the_step_is_the_paper_form_to_float32_rounding(name):
    X = np.random.default_rng(3).random((64, 9)).astype(np.float32)
    model = built(name, "float32")
    (loss, grads), (step_loss, step_grads) = oracle_and_step(model, X, 2)
    assert step_loss == pytest.approx(loss, rel=1e-5)
    for key, g in step_grads.items():
        assert g.dtype == np.float32, key
    assert_equal_to(step_grads, grads, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("rows", [1, 2, 5])
def test_a_batch_smaller_than_the_team_leaves_the_others_idle(rows):
    X = np.random.default_rng(4).random((rows, 9))
    for name in ("ae l1", "vae iwae"):
        (loss, grads), (step_loss, step_grads) = oracle_and_step(built(name, "float64"), X, 4)
        assert step_loss == pytest.approx(loss, rel=1e-12)
        assert_equal_to(step_grads, grads, rtol=1e-12, atol=1e-12)


def test_the_kl_sparsity_penalty_couples_the_batch_and_runs_it_whole_on_one_thread():
    model = npae.Autoencoder(9, hidden=(4,), activation="sigmoid", sparsity="kl",
                             sparsity_weight=0.5, dtype="float64").built()
    step = Step(model, npae.Adam(), 32, 2)
    assert step.n_jobs == 1
    step.close()
    X = np.random.default_rng(9).random((32, 9))
    (loss, grads), (step_loss, step_grads) = oracle_and_step(model, X, 2)
    assert step_loss == pytest.approx(loss, rel=1e-12)
    assert_equal_to(step_grads, grads, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["ae tied", "ae mask", "vae", "vae iwae gaussian"])
def test_training_steps_follow_the_paper_forms_with_adam_as_printed(name):
    """Ten Adam steps, float64: the step's parameters and moments are the oracles' (the loss of
    tests/oracles.py, Adam as Kingma & Ba print it)."""
    X = np.random.default_rng(5).random((80, 9))
    model, reference = built(name, "float64"), built(name, "float64")
    optimizer = npae.Adam(lr=1e-2)
    step = Step(model, optimizer, 16, 2)
    m = {k: np.zeros_like(p) for k, p in reference.params.items()}
    v = {k: np.zeros_like(p) for k, p in reference.params.items()}
    rng, t = np.random.default_rng(6), 0
    for start in range(0, 80, 16):
        for _ in range(2):
            eps = model.draw_noise(16, rng)
            loss, problem = step(X[start:start + 16], eps, model.loss_weights(None))
            assert problem is None
            t += 1
            _, grads = oracles.loss_and_grads(reference, X[start:start + 16], eps)
            for key, p in reference.params.items():
                oracles.adam_reference_update(p, grads[key], m[key], v[key], t, lr=1e-2)
    step.close()
    assert optimizer.t == 10
    for key, p in reference.params.items():
        np.testing.assert_allclose(model.params[key], p, rtol=1e-10, atol=1e-12, err_msg=key)
        np.testing.assert_allclose(optimizer.m[key], m[key], rtol=1e-9, atol=1e-14)
        np.testing.assert_allclose(optimizer.v[key], v[key], rtol=1e-9, atol=1e-18)


def test_a_change_to_batch_loss_changes_training():
    """A student's subclass that changes the one function of the loss changes what fit does."""
    class NoKL(npae.VAE):
        def batch_loss(self, X, eps, work, grads, scale, beta):
            return super().batch_loss(X, eps, work, grads, scale, 0.0)

    X = npae.datasets.load_digits()[0][:300]
    plain = npae.VAE(hidden=(16,), latent=2, epochs=2).fit(X)
    changed = NoKL(hidden=(16,), latent=2, epochs=2).fit(X)
    assert changed.history_["loss"] != plain.history_["loss"]
    changed.set_params(dtype="float64")
    changed.fit(X.astype(np.float64), epochs=1)
    eps = np.random.default_rng(0).standard_normal((20, 2))
    loss, _ = changed.loss_and_grads(X[:20], eps=eps)
    assert loss == pytest.approx(oracles.vae_loss_and_grads(changed, X[:20], eps, beta=0.0)[0],
                                 rel=1e-12)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_a_seeded_fit_is_bit_identical_to_itself_for_a_given_n_jobs(n_jobs):
    X = npae.datasets.load_digits()[0][:500]
    runs = [npae.VAE(hidden=(32,), latent=4, epochs=3, batch_size=50, n_jobs=n_jobs).fit(X)
            for _ in range(2)]
    assert runs[0].history_ == runs[1].history_
    for key, p in runs[0].params.items():
        assert p.tobytes() == runs[1].params[key].tobytes(), key


def test_n_jobs_changes_only_the_rounding():
    X = npae.datasets.load_digits()[0][:500]
    one, two = (npae.VAE(hidden=(32,), latent=4, epochs=2, batch_size=50, n_jobs=n).fit(X)
                for n in (1, 2))
    np.testing.assert_allclose(two.history_["loss"], one.history_["loss"], rtol=1e-5)


@settings(deadline=None)
@given(seed=st.integers(0, 2**16), beta_1=st.sampled_from([0.0, 0.5, 0.9, 0.99]),
       beta_2=st.sampled_from([0.5, 0.9, 0.999]), scale=st.sampled_from([1e-6, 1.0, 1e6]))
def test_no_adam_update_moves_a_parameter_further_than_the_bound(seed, beta_1, beta_2, scale):
    rng = np.random.default_rng(seed)
    adam = npae.Adam(lr=0.3, beta_1=beta_1, beta_2=beta_2)
    theta = np.zeros(50)
    for _ in range(40):
        g = rng.standard_normal(50) * scale * rng.choice([1e-3, 1.0, 1e3], size=50)
        before = theta.copy()
        adam.step({"theta": theta}, {"theta": g})
        assert np.abs(theta - before).max() <= adam.max_step(np.linalg.norm(g)) * (1 + 1e-9)


def test_when_the_bound_cannot_rule_out_an_overflow_the_update_is_checked_and_undone():
    # encoder weights near the largest float32 that the batch does not reach (x = 0), a
    # decoder bias of 1 against targets 0: a finite loss and gradient, an update lr·g = -inf
    model = npae.Autoencoder(4, hidden=(2,), loss="mse", output="identity", n_jobs=1).built()
    for name, p in model.params.items():
        p[...] = 3e38 if name == "encoder.0.W" else 0.0
    model.params["decoder.0.b"][...] = 1.0
    step = Step(model, npae.SGD(lr=3e38), 4, 1)
    assert step.headroom < 0                             # the bound cannot rule it out
    before = model.params_buffer_.copy()
    with np.errstate(all="ignore"):
        loss, problem = step(np.zeros((4, 4), np.float32), None)
    step.close()
    assert np.isfinite(loss) and problem == "the update made a parameter overflow to infinity"
    np.testing.assert_array_equal(model.params_buffer_, before)


def test_at_sane_learning_rates_nothing_is_copied():
    model = npae.VAE(9, hidden=(6,), latent=3).built()
    step = Step(model, npae.Adam(lr=1e6), 8, 1)
    assert step.headroom > 1e37                          # 10³⁰ steps of the largest update away
    step.close()


def test_huge_but_finite_gradients_are_not_mistaken_for_overflow():
    big = np.full(10, 1e38, dtype=np.float32)  # its Σ a² overflows float32, its entries do not
    assert not norm_is_finite(big) and np.isfinite(big).all()
    assert norm_is_finite(np.full(10, 1e18, dtype=np.float32))
    assert numerical_problem(1.0, {"w": np.full(4, 1e18, dtype=np.float32)}) is None
    assert numerical_problem(1.0, {"w": np.full(4, 1e150)}) is None        # float64 squares it
    assert "too large to square in float32" in numerical_problem(1.0, {"w": np.full(4, 1e20, dtype=np.float32)})
    assert "the gradient of 'w' is not finite" in numerical_problem(1.0, {"w": np.array([0.0, np.nan])})
    assert "the gradient of 'w' is not finite" in numerical_problem(1.0, {"w": np.array([np.inf, 1.0])})
    assert numerical_problem(float("inf"), {}) == "the loss is inf"
    assert numerical_problem(float("nan"), {}) == "the loss is nan"


def test_a_step_with_huge_but_finite_parameters_is_taken_not_undone():
    """The update check looks at the entries when Σ p² overflows: large finite values are fine."""
    params = {"w": np.full(8, 1e38, dtype=np.float32)}
    assert guarded_step(npae.SGD(lr=1.0), params, {"w": np.full(8, -1e37, dtype=np.float32)}) is None
    np.testing.assert_array_equal(params["w"], np.full(8, 1.1e38, dtype=np.float32))
    with np.errstate(over="ignore"):
        problem = guarded_step(npae.SGD(lr=1.0), params, {"w": np.full(8, -3e38, dtype=np.float32)})
    assert problem == "the update made a parameter overflow to infinity"
    np.testing.assert_array_equal(params["w"], np.full(8, 1.1e38, dtype=np.float32))


def test_a_resumed_threaded_fit_ends_bit_identical_to_an_uninterrupted_one(tmp_path):
    X = npae.datasets.load_digits()[0][:500]

    def make(epochs):
        return npae.VAE(hidden=(32,), latent=4, epochs=epochs, batch_size=50, n_jobs=2)
    straight = make(4).fit(X)
    make(2).fit(X, checkpoint=tmp_path / "run.npz")
    resumed = make(4).fit(X, resume=tmp_path / "run.npz")
    assert resumed.history_ == straight.history_
    for key, p in straight.params.items():
        assert p.tobytes() == resumed.params[key].tobytes(), key
    for moment in ("m", "v"):
        for key, value in getattr(straight.training_.optimizer, moment).items():
            assert value.tobytes() == getattr(resumed.training_.optimizer, moment)[key].tobytes()
