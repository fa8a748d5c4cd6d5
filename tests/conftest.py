"""Shared test settings and helpers.

Gradient checks run in float64 with central differences and assert a
relative error of at most 1e-6.  The step h is chosen for the problem, not
the threshold: a two-point central difference has truncation error ~h²·|L‴|
and rounding error ~ε·|L|/h (ε = 2.2e-16), so for losses of order 1–10 the
best step is h ≈ 1e-5; the checker's default h = 1e-6 is the textbook one.
"""

import copy
import os

# scikit-learn's Array API check runs (on NumPy) only with this set before SciPy is imported
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors])
settings.register_profile("dev", deadline=None, max_examples=100,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

GRAD_TOL = 1e-6   # the project's threshold for smooth functions
H = 1e-5          # finite-difference step for whole-model checks (see above)


def well_conditioned(loss, grads):
    """Can a central difference with step H resolve every gradient entry to GRAD_TOL?

    Each loss evaluation is exact to a few ulps, so the difference quotient
    carries a rounding error of about ε·|L|/h whatever the gradient: an entry
    far below ε·|L|/(h·tol) — a chance cancellation in a sum over rows, a
    product of small derivatives — would have its relative error measure the
    rounding, not the gradient.  Such draws, a few percent, are set aside with
    ``assume``; every entry of the others is checked at GRAD_TOL.  Exact zeros
    are not below the floor: they are weights the loss does not see (an input
    a mask zeroed in every row), whose finite difference is exactly 0 too.
    """
    floor = 2 * np.finfo(np.float64).eps * max(abs(loss), 1.0) / (H * GRAD_TOL)
    return all(np.all((np.abs(g) >= floor) | (g == 0)) for g in grads.values())


def assert_gradients_ok(report, tol=GRAD_TOL):
    """Fail with the checker's table if any relative error exceeds ``tol``."""
    assert report.max_rel_error <= tol, f"\n{report}"


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def snapshot(model):
    """Everything a refused call must leave alone: parameters, generators, history, attributes."""
    state = getattr(model, "training_", None)
    return {"params": {k: v.copy() for k, v in model.params.items()},
            "rng": copy.deepcopy(model.rng_.bit_generator.state),
            "training_rng": None if state is None else copy.deepcopy(state.rng.bit_generator.state),
            "history": copy.deepcopy(model.history_),
            "attributes": sorted(vars(model))}


def assert_unchanged(model, before):
    after = snapshot(model)
    assert after["params"].keys() == before["params"].keys()
    for name, value in before["params"].items():
        assert np.array_equal(after["params"][name], value), f"{name} changed"
        assert after["params"][name].dtype == value.dtype
    assert after["rng"] == before["rng"], "the model's generator advanced"
    assert after["training_rng"] == before["training_rng"], "the training generator advanced"
    assert after["history"] == before["history"]
    assert after["attributes"] == before["attributes"]
