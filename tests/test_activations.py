"""Tests for npae.activations: each f, its f′ and f″ written from the output y = f(a).

Hand-worked values first, then central finite differences over hypothesis-drawn
arrays, then what the math promises: stability far in the tails, the
symmetries σ(−a) = 1 − σ(a) and softplus(a) − softplus(−a) = a, and dtypes kept.
"""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from conftest import GRAD_TOL, H
from npae.nn.activations import ACTIVATIONS, KINKED, LEAKY_SLOPE, get_activation, sigmoid, softplus

NAMES = sorted(ACTIVATIONS)
SMOOTH = [name for name in NAMES if name not in KINKED]


def rel_error(analytic, numeric):
    """The checker's relative error |a − n| / max(|a| + |n|, 1e-12), entry by entry."""
    return np.abs(analytic - numeric) / np.maximum(np.abs(analytic) + np.abs(numeric), 1e-12)


def central_difference(g, a, h=H):
    """[g(a + h) − g(a − h)] / 2h for an element-wise g: every entry at once."""
    return (g(a + h) - g(a - h)) / (2 * h)


# --- hand-worked values ---------------------------------------------------------
#
# Each row: input a, the output y = f(a), f′(a) and f″(a), worked out by hand.
#   sigmoid:  σ(0) = 1/2, σ′ = y(1−y) = 1/4, σ″ = y(1−y)(1−2y) = 0;
#             σ(log 3) = 1/(1 + 1/3) = 3/4, σ′ = 3/4·1/4 = 3/16, σ″ = 3/16·(1 − 3/2) = −3/32.
#   tanh:     tanh(log 2) = (2 − 1/2)/(2 + 1/2) = 3/5, f′ = 1 − 9/25 = 16/25,
#             f″ = −2·3/5·16/25 = −96/125.
#   softplus: log(1 + e^0) = log 2, f′ = σ(0) = 1/2, f″ = 1/4;
#             log(1 + 3) = log 4 at a = log 3, f′ = 1 − e^{−log 4} = 3/4 = σ(log 3), f″ = 3/16.
#   relu:     (−2, 0.5, 3) ↦ (0, 0.5, 3), f′ = (0, 1, 1), f″ = 0.
#   leaky:    (−2, 0.5, 3) ↦ (−0.02, 0.5, 3), f′ = (0.01, 1, 1), f″ = 0.
#   identity: (−2, 0.5, 3) ↦ itself, f′ = 1, f″ = 0.
HAND_WORKED = {
    "sigmoid": ([0.0, math.log(3)], [0.5, 0.75], [0.25, 3 / 16], [0.0, -3 / 32]),
    "tanh": ([0.0, math.log(2)], [0.0, 0.6], [1.0, 16 / 25], [0.0, -96 / 125]),
    "softplus": ([0.0, math.log(3)], [math.log(2), math.log(4)], [0.5, 0.75], [0.25, 3 / 16]),
    "relu": ([-2.0, 0.5, 3.0], [0.0, 0.5, 3.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]),
    "leaky_relu": ([-2.0, 0.5, 3.0], [-0.02, 0.5, 3.0], [0.01, 1.0, 1.0], [0.0, 0.0, 0.0]),
    "identity": ([-2.0, 0.5, 3.0], [-2.0, 0.5, 3.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]),
}


def test_hand_worked_cases_cover_every_activation():
    assert set(HAND_WORKED) == set(ACTIVATIONS)


@pytest.mark.parametrize("name", NAMES)
def test_hand_worked_values(name):
    a, y, dy, d2y = (np.array(v) for v in HAND_WORKED[name])
    act = get_activation(name)
    assert act.name == name
    output = act.f(a)
    np.testing.assert_allclose(output, y, rtol=1e-15, atol=1e-16)
    # The derivatives take the *output* y, not the input a.
    np.testing.assert_allclose(act.df(output), dy, rtol=1e-15, atol=1e-16)
    np.testing.assert_allclose(act.d2f(output), d2y, rtol=1e-15, atol=1e-16)


def test_leaky_slope_is_the_documented_one_percent():
    assert LEAKY_SLOPE == 0.01


# --- finite differences -----------------------------------------------------------
#
# Inputs lie in [−4, 4]: further out, f′ of sigmoid and tanh (1 − y, 1 − y² from
# y ≈ ±1) drops below 1e-5 and its relative precision decays, so the check
# would measure cancellation, not the derivative.
#
# relu and leaky_relu have a kink at a = 0, where f′ jumps and a finite
# difference that straddles it disagrees with either one-sided slope by design;
# their inputs are drawn with |a| ≥ 1e-3 ≫ h = 1e-5, so a ± h never crosses 0.
# For f″ the same margin is used for every activation: f″ of sigmoid and tanh
# vanishes at a = 0, and a relative error of a quantity that is 0 measures only
# rounding noise (~1e-11 here).

SHAPES = array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6)
ANYWHERE = st.floats(-4, 4)
AWAY_FROM_ZERO = st.one_of(st.floats(-4, -1e-3), st.floats(1e-3, 4))


def inputs(elements):
    return arrays(np.float64, SHAPES, elements=elements)


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_first_derivative_matches_central_differences(name, data):
    a = data.draw(inputs(AWAY_FROM_ZERO if name in KINKED else ANYWHERE), label="a")
    act = ACTIVATIONS[name]
    analytic = act.df(act.f(a))
    numeric = central_difference(act.f, a)
    assert analytic.shape == a.shape
    assert rel_error(analytic, numeric).max() <= GRAD_TOL


@pytest.mark.parametrize("name", NAMES)
@given(a=inputs(AWAY_FROM_ZERO))
def test_second_derivative_matches_central_differences_of_the_first(name, a):
    act = ACTIVATIONS[name]
    analytic = act.d2f(act.f(a))
    numeric = central_difference(lambda x: act.df(act.f(x)), a)
    assert analytic.shape == a.shape
    assert rel_error(analytic, numeric).max() <= GRAD_TOL


# --- the tails ----------------------------------------------------------------------

def no_floating_point_trouble():
    """Overflow, 0/0 and division by zero raise; so does any warning.

    Underflow is allowed: e^{−10⁴} rounds to 0, which is the correctly rounded
    answer, not an error.
    """
    return np.errstate(over="raise", invalid="raise", divide="raise")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_is_stable_at_plus_minus_1e4(dtype):
    a = np.array([-1e4, 1e4], dtype=dtype)
    with no_floating_point_trouble(), warnings.catch_warnings():
        warnings.simplefilter("error")
        y = sigmoid(a)
        dy = ACTIVATIONS["sigmoid"].df(y)
    # σ(−∞) = 0, σ(+∞) = 1, and the slope is 0 at both ends.
    np.testing.assert_array_equal(y, [0.0, 1.0])
    np.testing.assert_array_equal(dy, [0.0, 0.0])
    assert y.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softplus_is_stable_at_plus_minus_1e4(dtype):
    a = np.array([-1e4, 1e4], dtype=dtype)
    with no_floating_point_trouble(), warnings.catch_warnings():
        warnings.simplefilter("error")
        y = softplus(a)
        dy = ACTIVATIONS["softplus"].df(y)
    # softplus(a) → 0 as a → −∞ and → a as a → +∞ (log(1 + e^a) = a + log(1 + e^{−a})).
    np.testing.assert_array_equal(y, [0.0, 1e4])
    np.testing.assert_array_equal(dy, [0.0, 1.0])
    assert y.dtype == dtype


@pytest.mark.parametrize("t", [30.0, 50.0, 200.0, 700.0])
def test_sigmoid_and_softplus_keep_relative_precision_in_the_left_tail(t):
    # σ(−t) = e^{−t} / (1 + e^{−t}) = e^{−t} (1 − e^{−t} + …) and
    # log(1 + e^{−t}) = e^{−t} − e^{−2t}/2 + …: both equal e^{−t} to double precision
    # for t ≥ 30 (e^{−30} ≈ 1e-13).  A naive 1 − σ(t) would return 0 or noise here.
    assert sigmoid(np.array(-t)) == pytest.approx(math.exp(-t), rel=1e-12)
    assert softplus(np.array(-t)) == pytest.approx(math.exp(-t), rel=1e-12)


@given(a=inputs(st.floats(-30, 30)))
def test_sigmoid_and_softplus_symmetries(a):
    # σ(−a) = e^{−a}/(1 + e^{−a}) = 1 − σ(a);  softplus(a) − softplus(−a) = log e^{a} = a.
    np.testing.assert_allclose(sigmoid(-a), 1 - sigmoid(a), rtol=0, atol=1e-15)
    np.testing.assert_allclose(softplus(a) - softplus(-a), a, rtol=0, atol=1e-13)


# --- dtypes and names ----------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_float32_in_float32_out(name):
    act = ACTIVATIONS[name]
    a = np.linspace(-3, 3, 7, dtype=np.float32)
    y = act.f(a)
    assert y.dtype == np.float32
    assert act.df(y).dtype == np.float32
    assert act.d2f(y).dtype == np.float32
    # And the float32 values are the float64 ones, rounded.
    np.testing.assert_allclose(y, act.f(a.astype(np.float64)), rtol=1e-6, atol=1e-7)


def test_identity_returns_a_new_array():
    a = np.array([1.0, 2.0])
    y = ACTIVATIONS["identity"].f(a)
    y[0] = 5.0
    assert a[0] == 1.0


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="swish") as excinfo:
        get_activation("swish")
    for name in ACTIVATIONS:
        assert name in str(excinfo.value)


def test_non_string_name_is_a_type_error():
    with pytest.raises(TypeError, match="activation"):
        get_activation(np.tanh)


def test_kinked_names_are_exactly_the_relu_family():
    assert KINKED == {"relu", "leaky_relu"}
