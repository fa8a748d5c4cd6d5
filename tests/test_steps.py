"""The training step (npae.steps, npae.fast_autoencoder, npae.fast_vae): the fast step on flat
buffers and threads is the reference step — the models' plain code — to rounding, for every
variant; it is bit-identical to itself for a fixed seed and n_jobs; and its guard lets no
update overflow, copying the parameters only when a bound cannot rule it out."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import npae
from npae.training import step as steps
from npae.training.step import guarded_step, max_update, norm_is_finite, numerical_problem

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
    if name.startswith("vae"):
        model.begin_epoch(None)
    return model


def both_steps(model, X, n_jobs):
    """(reference loss and gradients, fast loss and gradients) on the same batch and noise."""
    eps = model.draw_noise(len(X), np.random.default_rng(1))
    loss, grads = model.batch_loss_and_grads(X, eps)
    grads = {k: v.copy() for k, v in grads.items()}
    step = model.training_step(npae.Adam(), max(len(X), 1), n_jobs)
    try:
        fast_loss, fast_grads, _ = step.loss_and_grads(X, eps)
        fast_grads = {k: v.copy() for k, v in fast_grads.items()}
    finally:
        step.close()
    return (loss, grads), (fast_loss, fast_grads)


@pytest.mark.parametrize("n_jobs", [1, 2, 3])
@pytest.mark.parametrize("name", VARIANTS)
def test_the_fast_step_is_the_reference_to_1e_12_in_float64(name, n_jobs):
    X = np.random.default_rng(2).random((37, 9))
    (loss, grads), (fast_loss, fast_grads) = both_steps(built(name, "float64"), X, n_jobs)
    assert fast_loss == pytest.approx(loss, rel=1e-12)
    assert fast_grads.keys() == grads.keys()
    for key, g in grads.items():
        np.testing.assert_allclose(fast_grads[key], g, rtol=1e-12, atol=1e-12 * np.abs(g).max(),
                                   err_msg=key)


@pytest.mark.parametrize("name", VARIANTS)
def test_the_fast_step_is_the_reference_to_float32_rounding(name):
    X = np.random.default_rng(3).random((64, 9)).astype(np.float32)
    (loss, grads), (fast_loss, fast_grads) = both_steps(built(name, "float32"), X, 2)
    assert fast_loss == pytest.approx(loss, rel=1e-5)
    for key, g in grads.items():
        assert fast_grads[key].dtype == np.float32
        np.testing.assert_allclose(fast_grads[key], g, rtol=1e-4, atol=1e-5 * np.abs(g).max(),
                                   err_msg=key)


@pytest.mark.parametrize("rows", [1, 2, 5])
def test_a_batch_smaller_than_the_team_leaves_the_others_idle(rows):
    X = np.random.default_rng(4).random((rows, 9))
    for name in ("ae l1", "vae iwae"):
        (loss, grads), (fast_loss, fast_grads) = both_steps(built(name, "float64"), X, 4)
        assert fast_loss == pytest.approx(loss, rel=1e-12)
        for key, g in grads.items():
            np.testing.assert_allclose(fast_grads[key], g, rtol=1e-12, atol=1e-14)


def test_the_kl_sparsity_penalty_couples_the_batch_and_trains_on_the_reference_step():
    model = npae.Autoencoder(9, hidden=(4,), activation="sigmoid", sparsity="kl",
                             sparsity_weight=0.5).built()
    step = model.training_step(npae.Adam(), 32, 2)
    assert isinstance(step, steps.ReferenceStep) and step.n_jobs == 1


@pytest.mark.parametrize("name", ["ae tied", "ae mask", "vae", "vae iwae gaussian"])
def test_training_on_the_fast_step_follows_the_reference_steps_path(name):
    """Ten Adam steps, float64: the same parameters and moments as the reference step's."""
    X = np.random.default_rng(5).random((80, 9))
    fits = []
    for kind in ("reference", "fast"):
        model = built(name, "float64")
        optimizer = npae.Adam(lr=1e-2)
        step = (steps.ReferenceStep(model, optimizer) if kind == "reference"
                else model.training_step(optimizer, 16, 2))
        rng = np.random.default_rng(6)
        for start in range(0, 80, 16):
            for _ in range(2):
                loss, problem = step(X[start:start + 16], model.draw_noise(16, rng))
                assert problem is None
        step.close()
        fits.append((model, optimizer))
    (reference, ref_opt), (fast, fast_opt) = fits
    assert fast_opt.t == ref_opt.t == 10
    for key, p in reference.params.items():
        np.testing.assert_allclose(fast.params[key], p, rtol=1e-10, atol=1e-12, err_msg=key)
        np.testing.assert_allclose(fast_opt.m[key], ref_opt.m[key], rtol=1e-9, atol=1e-14)
        np.testing.assert_allclose(fast_opt.v[key], ref_opt.v[key], rtol=1e-9, atol=1e-18)


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
        assert np.abs(theta - before).max() <= max_update(adam, np.linalg.norm(g)) * (1 + 1e-9)


def test_when_the_bound_cannot_rule_out_an_overflow_the_update_is_checked_and_undone():
    # encoder weights near the largest float32 that the batch does not reach (x = 0), a
    # decoder bias of 1 against targets 0: a finite loss and gradient, an update lr·g = -inf
    model = npae.Autoencoder(4, hidden=(2,), loss="mse", output="identity", n_jobs=1).built()
    for name, p in model.params.items():
        p[...] = 3e38 if name == "encoder.0.W" else 0.0
    model.params["decoder.0.b"][...] = 1.0
    step = model.training_step(npae.SGD(lr=3e38), 4, 1)
    assert step.headroom < 0                             # the bound cannot rule it out
    before = model.params_buffer_.copy()
    with np.errstate(all="ignore"):
        loss, problem = step(np.zeros((4, 4), np.float32), None)
    step.close()
    assert np.isfinite(loss) and problem == "the update made a parameter overflow to infinity"
    np.testing.assert_array_equal(model.params_buffer_, before)


def test_at_sane_learning_rates_nothing_is_copied():
    model = npae.VAE(9, hidden=(6,), latent=3).built()
    step = model.training_step(npae.Adam(lr=1e6), 8, 1)
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
