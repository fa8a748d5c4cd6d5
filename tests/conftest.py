"""Shared test settings and helpers.

Gradient checks run in float64 with central differences and assert a
relative error of at most 1e-6.  The step h is chosen for the problem, not
the threshold: a two-point central difference has truncation error ~h²·|L‴|
and rounding error ~ε·|L|/h (ε = 2.2e-16), so for losses of order 1–10 the
best step is h ≈ 1e-5; the checker's default h = 1e-6 is the textbook one.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors])
settings.register_profile("dev", deadline=None, max_examples=100,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

GRAD_TOL = 1e-6   # the project's threshold for smooth functions
H = 1e-5          # finite-difference step for whole-model checks (see above)


def assert_gradients_ok(report, tol=GRAD_TOL):
    """Fail with the checker's table if any relative error exceeds ``tol``."""
    assert report.max_rel_error <= tol, f"\n{report}"


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
