"""Tests for npae.optim: Adam and SGD over dicts of parameter arrays.

Two Adam steps and two SGD steps worked by hand, Adam against its update
equations written out literally, both optimisers solving a convex quadratic,
checkpoints that resume bit-identically, dtypes, and argument checking.
"""

import copy
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from oracles import adam_reference_update
from npae.nn.optim import (FLUSH_EVERY, SGD, Adam, flush_subnormals, from_record,
                        to_record)


# --- hand-worked steps -------------------------------------------------------------------

def test_two_adam_steps_by_hand():
    # The source document's Adam(lr=0.001, beta_1=0.5); β₂ = 0.999, ε = 1e-8.
    # θ₀ = (1, −2), g₁ = (0.1, −0.4), g₂ = (0.3, 0.2).
    #
    # Step 1:  m₁ = 0.5·0 + 0.5·g₁ = (0.05, −0.2)
    #          v₁ = 0.999·0 + 0.001·g₁² = (1e-5, 1.6e-4)
    #          m̂₁ = m₁/(1 − 0.5) = (0.1, −0.4);  v̂₁ = v₁/(1 − 0.999) = (0.01, 0.16), √v̂₁ = (0.1, 0.4)
    #          Δ₁ = 0.001·m̂₁/(√v̂₁ + ε) = 0.001·(0.1/0.10000001, −0.4/0.40000001)
    #             ≈ (0.0009999999, −0.000999999975): about lr·sign(g), as Adam's first step always is
    #          θ₁ = θ₀ − Δ₁ = (0.9990000001, −1.999000000025)
    # Step 2:  m₂ = 0.5·(0.05, −0.2) + 0.5·(0.3, 0.2) = (0.175, 0)
    #          v₂ = 0.999·(1e-5, 1.6e-4) + 0.001·(0.09, 0.04) = (9.999e-5, 1.9984e-4)
    #          m̂₂ = m₂/(1 − 0.25) = (0.23333…, 0)
    #          v̂₂ = v₂/(1 − 0.999²) = v₂/0.001999 = (0.0500200…, 0.0999700…), √v̂₂[0] = 0.2236515…
    #          Δ₂ = 0.001·(0.23333…/0.2236515…, 0) ≈ (0.00104329, 0)
    #          θ₂ = (0.9990000001 − 0.00104329, −1.999000000025) ≈ (0.99795671, −1.999000000025)
    # The second coordinate does not move: its new gradient cancelled its momentum.
    theta = np.array([1.0, -2.0])
    adam = Adam(lr=0.001, beta_1=0.5)
    adam.step({"theta": theta}, {"theta": np.array([0.1, -0.4])})
    np.testing.assert_allclose(adam.m["theta"], [0.05, -0.2], rtol=1e-15)
    np.testing.assert_allclose(adam.v["theta"], [1e-5, 1.6e-4], rtol=1e-14)
    np.testing.assert_allclose(
        theta, [1 - 0.001 * 0.1 / (0.1 + 1e-8), -2 + 0.001 * 0.4 / (0.4 + 1e-8)], rtol=1e-15)
    np.testing.assert_allclose(theta, [0.9990000001, -1.999000000025], rtol=1e-15)

    adam.step({"theta": theta}, {"theta": np.array([0.3, 0.2])})
    assert adam.t == 2
    np.testing.assert_allclose(adam.m["theta"], [0.175, 0.0], rtol=1e-15, atol=1e-18)
    np.testing.assert_allclose(adam.v["theta"], [9.999e-5, 1.9984e-4], rtol=1e-14)
    v_hat = 9.999e-5 / (1 - 0.999**2)
    step_2 = 0.001 * (0.175 / 0.75) / (math.sqrt(v_hat) + 1e-8)
    np.testing.assert_allclose(theta, [0.9990000001 - step_2, -1.999000000025], rtol=1e-14)
    np.testing.assert_allclose(theta, [0.99795671, -1.999000000025], rtol=1e-8)


def test_two_sgd_steps_by_hand():
    # lr = 0.1, momentum μ = 0.9; θ₀ = (1, −2), g₁ = (0.1, −0.4), g₂ = (0.3, 0.2).
    #   v₁ = −0.1·g₁ = (−0.01, 0.04);               θ₁ = (0.99, −1.96)
    #   v₂ = 0.9·v₁ − 0.1·g₂ = (−0.039, 0.016);     θ₂ = (0.951, −1.944)
    # Without momentum: θ₂ = θ₀ − 0.1(g₁ + g₂) = (0.96, −1.98).
    for momentum, expected in [(0.9, [0.951, -1.944]), (0.0, [0.96, -1.98])]:
        theta = np.array([1.0, -2.0])
        sgd = SGD(lr=0.1, momentum=momentum)
        sgd.step({"theta": theta}, {"theta": np.array([0.1, -0.4])})
        sgd.step({"theta": theta}, {"theta": np.array([0.3, 0.2])})
        np.testing.assert_allclose(theta, expected, rtol=1e-15)


def adam_by_the_equations(theta, gradients, lr, beta_1, beta_2, eps):
    """Kingma & Ba's algorithm 1, written out literally."""
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    for t, g in enumerate(gradients, start=1):
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g**2
        m_hat = m / (1 - beta_1**t)
        v_hat = v / (1 - beta_2**t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    return theta


@pytest.mark.parametrize("hyper", [dict(), dict(lr=0.001, beta_1=0.5), dict(lr=0.1, beta_2=0.9, eps=1e-3)],
                         ids=["defaults", "source document", "other"])
@given(size=st.integers(1, 20), steps=st.integers(1, 8), seed=st.integers(0, 2**32 - 1))
def test_adam_follows_its_update_equations(hyper, size, steps, seed):
    rng = np.random.default_rng(seed)
    theta0 = rng.normal(size=size)
    gradients = [rng.normal(size=size) for _ in range(steps)]
    adam = Adam(**hyper)
    theta = theta0.copy()
    for g in gradients:
        adam.step({"theta": theta}, {"theta": g})
    full = {**dict(lr=1e-3, beta_1=0.9, beta_2=0.999, eps=1e-8), **hyper}
    expected = adam_by_the_equations(theta0, gradients, **full)
    # Each step moves θ by at most about lr; compare the steps taken, not just θ.
    np.testing.assert_allclose(theta - theta0, expected - theta0, rtol=1e-10, atol=1e-15)


# --- a convex quadratic -----------------------------------------------------------------

def quadratic():
    """L(θ) = ½ θᵀAθ − bᵀθ with A symmetric positive definite (eigenvalues 1.1 … 10.2)."""
    rng = np.random.default_rng(0)
    M = rng.normal(size=(4, 4))
    return M @ M.T + np.eye(4), rng.normal(size=4)


@pytest.mark.parametrize("make, steps", [(lambda: Adam(lr=0.01), 3000),
                                         (lambda: SGD(lr=0.05, momentum=0.9), 500),
                                         (lambda: SGD(lr=0.1), 500)],
                         ids=["adam", "sgd momentum", "sgd"])
def test_minimises_a_convex_quadratic(make, steps):
    optimizer = make()
    A, b = quadratic()
    solution = np.linalg.solve(A, b)         # ∇L = Aθ − b = 0
    theta = np.zeros(4)
    for _ in range(steps):
        optimizer.step({"theta": theta}, {"theta": A @ theta - b})
    np.testing.assert_allclose(theta, solution, rtol=0, atol=1e-8)


# --- helpers ------------------------------------------------------------------------------

def run(optimizer, params, gradient_seed, steps=3):
    rng = np.random.default_rng(gradient_seed)
    for _ in range(steps):
        optimizer.step(params, {k: rng.normal(size=p.shape).astype(p.dtype) for k, p in params.items()})
    return params


def rebuilt(optimizer, params):
    """The optimiser rebuilt from its record (numbers and arrays), as a file holds it."""
    numbers, arrays = to_record(optimizer)
    return from_record(numbers, arrays.keys(), lambda key, shape, dtype: arrays[key].copy(), params)


def random_params(shapes, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return {f"p{i}": rng.normal(size=shape).astype(dtype) for i, shape in enumerate(shapes)}


def assert_bit_identical(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype
        assert a[key].tobytes() == b[key].tobytes(), key


# --- checkpoints ---------------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda: Adam(lr=0.01, beta_1=0.5),
                                  lambda: SGD(lr=0.01, momentum=0.9)], ids=["adam", "sgd"])
def test_a_fresh_optimizer_continues_bit_identically(make):
    shapes = [(3, 4), (4,)]
    original = make()
    params = run(original, random_params(shapes, 0), gradient_seed=1)
    state = original.state_dict()
    saved = copy.deepcopy(state)
    snapshot = {k: v.copy() for k, v in params.items()}

    run(original, params, gradient_seed=2)
    # The state dict is a copy: the steps just taken did not change it.
    for key in ("m", "v", "velocity"):
        if key in saved:
            assert_bit_identical(state[key], saved[key])

    frozen = type(original)()
    frozen.load_state_dict(state)
    resumed = rebuilt(frozen, snapshot)  # through the record a file holds
    assert type(resumed) is type(original) and repr(resumed) == repr(original)
    run(resumed, snapshot, gradient_seed=2)
    assert_bit_identical(snapshot, params)

    # load_state_dict into an optimiser built with other hyper-parameters takes the saved ones.
    other = type(original)(lr=0.5)
    other.load_state_dict(original.state_dict())
    assert repr(other) == repr(original)


def test_state_dict_snapshots_adam_moments_and_step_count():
    adam = Adam()
    params = run(adam, random_params([(2, 3)], 0), gradient_seed=1, steps=2)
    state = adam.state_dict()
    assert state["name"] == "adam" and state["t"] == 2
    run(adam, params, gradient_seed=3)
    assert adam.t == 5 and state["t"] == 2
    assert not np.array_equal(state["m"]["p0"], adam.m["p0"])


# --- dtypes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [Adam, lambda: SGD(lr=0.1, momentum=0.9), lambda: SGD(lr=0.1)],
                         ids=["adam", "sgd momentum", "sgd"])
def test_float32_params_stay_float32(make):
    optimizer = make()
    params = random_params([(3, 4), (4,)], 0, np.float32)
    views = {k: v for k, v in params.items()}
    for _ in range(3):
        # Even float64 gradients update float32 parameters in float32, in place.
        optimizer.step(params, {k: np.ones(p.shape, np.float64) for k, p in params.items()})
    for key, p in params.items():
        assert p.dtype == np.float32 and p is views[key]
    for state in (getattr(optimizer, "m", {}), getattr(optimizer, "v", {}),
                  getattr(optimizer, "velocity", {})):
        assert all(a.dtype == np.float32 for a in state.values())


def test_each_parameter_is_updated_at_its_own_precision():
    # A float64 parameter next to a float32 one gets exactly the update it gets alone.
    g64 = np.full(3, 1 / 7)
    alone = np.full(3, 1 / 3)
    Adam().step({"b": alone}, {"b": g64.copy()})
    mixed = {"a": np.ones(3, np.float32), "b": np.full(3, 1 / 3)}
    Adam().step(mixed, {"a": np.full(3, 0.1, np.float32), "b": g64.copy()})
    assert mixed["b"].tobytes() == alone.tobytes()
    assert mixed["a"].dtype == np.float32


# --- arguments ------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [Adam, SGD], ids=["adam", "sgd"])
def test_mismatched_keys_and_shapes(make):
    opt = make()
    w = np.zeros((2, 3))
    with pytest.raises(ValueError, match="'extra'"):
        opt.step({"w": w}, {"w": np.zeros((2, 3)), "extra": np.zeros(1)})
    with pytest.raises(ValueError, match=r"grads\['w'\].*\(3, 2\)"):
        opt.step({"w": w}, {"w": np.zeros((3, 2))})
    with pytest.raises(ValueError, match=r"params\['w'\]"):
        opt.step({"w": np.zeros((4, 6))[:, ::2]}, {"w": np.zeros((4, 3))})
    frozen = np.zeros(3)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match=r"params\['w'\]"):
        opt.step({"w": frozen}, {"w": np.zeros(3)})
    with pytest.raises(TypeError, match="dicts"):
        opt.step([w], [w])
    assert not w.any()                          # nothing was updated on the way


@pytest.mark.parametrize("make", [Adam, lambda: SGD(momentum=0.9)], ids=["adam", "sgd"])
def test_restored_state_must_fit_the_parameters(make):
    # Moments saved for a (2, 3) parameter cannot drive a (3, 2) one.
    opt = make()
    run(opt, {"w": np.zeros((2, 3))}, gradient_seed=0)
    resumed = type(opt)()
    resumed.load_state_dict(opt.state_dict())
    w = np.ones((3, 2))
    with pytest.raises(ValueError, match="'w'"):
        resumed.step({"w": w}, {"w": np.ones((3, 2))})
    assert np.array_equal(w, np.ones((3, 2)))
    assert resumed.state_dict().get("t", 0) == opt.state_dict().get("t", 0)


@pytest.mark.parametrize("make, argument, value, error", [
    (Adam, "lr", 0, ValueError),
    (Adam, "lr", -1e-3, ValueError),
    (Adam, "lr", float("nan"), ValueError),
    (Adam, "lr", float("inf"), ValueError),
    (Adam, "lr", "0.1", TypeError),
    (Adam, "lr", True, TypeError),
    (Adam, "beta_1", 1.0, ValueError),
    (Adam, "beta_1", -0.1, ValueError),
    (Adam, "beta_2", 1.0, ValueError),
    (Adam, "beta_2", 1.5, ValueError),
    (Adam, "eps", 0.0, ValueError),
    (Adam, "eps", None, TypeError),
    (SGD, "lr", 0.0, ValueError),
    (SGD, "lr", -0.1, ValueError),
    (SGD, "momentum", 1.0, ValueError),
    (SGD, "momentum", -0.5, ValueError),
    (SGD, "momentum", "high", TypeError),
])
def test_bad_hyper_parameters(make, argument, value, error):
    with pytest.raises(error, match=argument):
        make(**{argument: value})


def test_reprs():
    assert repr(Adam(lr=0.001, beta_1=0.5)) == "Adam(lr=0.001, beta_1=0.5, beta_2=0.999, eps=1e-08)"
    assert repr(SGD(lr=0.1, momentum=0.9)) == "SGD(lr=0.1, momentum=0.9)"


# --- the plain formula is the reference ------------------------------------------------------

@given(seed=st.integers(0, 2**16), steps=st.integers(1, 6),
       beta_1=st.sampled_from([0.0, 0.5, 0.9]), beta_2=st.sampled_from([0.9, 0.999]))
def test_adam_step_equals_the_paper_form_with_m_hat_and_v_hat(seed, steps, beta_1, beta_2):
    # Adam.step folds the bias corrections into two scalars; the literal m̂, v̂ form is the reference.
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(3, 4))
    reference, m, v = theta.copy(), np.zeros_like(theta), np.zeros_like(theta)
    adam = Adam(lr=0.01, beta_1=beta_1, beta_2=beta_2)
    for t in range(1, steps + 1):
        g = rng.normal(size=theta.shape)
        adam.step({"theta": theta}, {"theta": g.copy()})
        adam_reference_update(reference, g, m, v, t, lr=0.01, beta_1=beta_1, beta_2=beta_2)
    np.testing.assert_allclose(theta, reference, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(adam.m["theta"], m, rtol=1e-15)
    np.testing.assert_allclose(adam.v["theta"], v, rtol=1e-15)


def test_a_step_count_beyond_any_real_run_is_refused_and_a_huge_one_still_steps():
    adam = Adam()
    run(adam, random_params([(2,)], 0), gradient_seed=1)
    numbers, arrays = to_record(adam)
    read = lambda key, shape, dtype: arrays[key].copy()
    with pytest.raises(ValueError, match="step count"):
        from_record(dict(numbers, t=10**400), arrays.keys(), read, {"p0": np.zeros(2)})
    far = from_record(dict(numbers, t=2**62), arrays.keys(), read, {"p0": np.zeros(2)})
    params = {"p0": np.zeros(2)}
    far.step(params, {"p0": np.ones(2)})            # β^t is 0: no overflow, a finite step
    assert np.isfinite(params["p0"]).all() and (params["p0"] < 0).all()


# --- subnormal moments are flushed to zero ----------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_flush_subnormals_zeroes_exactly_the_subnormal_numbers(dtype):
    info = np.finfo(dtype)
    values = np.array([info.tiny, -info.tiny, info.tiny / 2, -info.smallest_subnormal, 0.0, -0.0,
                       1.5, -2e-3, info.max, np.inf, -np.inf], dtype=dtype)
    flushed = values.copy()
    flush_subnormals(flushed)
    subnormal = (values != 0) & (np.abs(values) < info.tiny)
    assert subnormal.sum() == 2
    assert (flushed[subnormal] == 0).all()
    np.testing.assert_array_equal(flushed[~subnormal], values[~subnormal])  # bit for bit
    scratch = np.empty_like(values)
    again = values.copy()
    flush_subnormals(again, scratch)
    np.testing.assert_array_equal(again, flushed)


@pytest.mark.parametrize("make", [lambda: Adam(lr=1e-3), lambda: SGD(lr=0.1, momentum=0.9)])
def test_moments_of_a_gradient_that_stays_zero_never_stay_subnormal(make):
    # a dead unit: one gradient, then zeros — its moment decays by β₁ (or μ) a step
    optimizer = make()
    tiny = np.finfo(np.float32).tiny
    params = {"p": np.ones(4, np.float32)}
    optimizer.step(params, {"p": np.full(4, 1e-30, np.float32)})
    seen_subnormal = False
    for _ in range(2000):
        optimizer.step(params, {"p": np.zeros(4, np.float32)})
        state = optimizer.state_dict()
        for moments in (value for value in state.values() if isinstance(value, dict)):
            subnormal = (moments["p"] != 0) & (np.abs(moments["p"]) < tiny)
            seen_subnormal |= bool(subnormal.any())
            if optimizer.t % FLUSH_EVERY == 0:
                assert not subnormal.any(), optimizer.t
    assert seen_subnormal  # the decay does pass through them between flushes
    assert all((value["p"] == 0).all() for value in optimizer.state_dict().values()
               if isinstance(value, dict))


def test_sgd_counts_its_steps_and_reads_files_that_kept_no_count():
    sgd = SGD(lr=0.1, momentum=0.9)
    run(sgd, random_params([(2,)], 0), gradient_seed=1)
    numbers, arrays = to_record(sgd)
    assert numbers["t"] == sgd.t > 0
    read = lambda key, shape, dtype: arrays[key].copy()
    older = {key: value for key, value in numbers.items() if key != "t"}
    assert from_record(older, arrays.keys(), read, {"p0": np.zeros(2)}).t == 0
    with pytest.raises(ValueError, match="step count"):
        from_record(dict(numbers, t=-1), arrays.keys(), read, {"p0": np.zeros(2)})
