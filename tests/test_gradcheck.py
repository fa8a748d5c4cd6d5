"""Tests for npae.gradcheck: the checker itself must catch wrong gradients.

A loss whose gradient is known, returned correctly and then deliberately wrong;
the relative-error formula on numbers worked by hand; parameters restored bit
for bit; sampling of entries; the kink warning; and gradcheck_layer on small
layers of the kind a student writes, one correct and one with a bug.
"""

import warnings

import numpy as np
import pytest

from npae import gradcheck, gradcheck_layer
from npae.nn.gradcheck import verdict


def smooth_loss(seed=0):
    """L(W) = Σ sin(W) ⊙ C + ½ aᵀ W b, with ∂L/∂W = cos(W) ⊙ C + ½ a bᵀ; W is 3×3."""
    rng = np.random.default_rng(seed)
    W, C = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    a, b = rng.normal(size=3), rng.normal(size=3)

    def loss(W):
        return float(np.sum(np.sin(W) * C) + 0.5 * a @ W @ b)

    def gradient(W):
        return np.cos(W) * C + 0.5 * np.outer(a, b)

    return W, loss, gradient


# --- right and wrong gradients ---------------------------------------------------------

def test_passes_a_correct_gradient():
    W, loss, gradient = smooth_loss()
    report = gradcheck(lambda: (loss(W), {"W": gradient(W)}), {"W": W})
    assert report.max_rel_error <= 1e-6
    assert verdict(report.max_rel_error) == "good"
    assert report["W"].n_checked == 9


@pytest.mark.parametrize("bug", ["doubled", "transposed", "sign flipped"])
def test_catches_a_wrong_gradient(bug):
    W, loss, gradient = smooth_loss()
    wrong = {"doubled": lambda g: 2 * g, "transposed": lambda g: g.T,
             "sign flipped": lambda g: -g}[bug]
    assert not np.allclose(gradient(W), gradient(W).T)   # so the transpose is really wrong
    with warnings.catch_warnings():
        warnings.simplefilter("error")                     # a smooth loss: no kink warning
        report = gradcheck(lambda: (loss(W), {"W": wrong(gradient(W))}), {"W": W})
    assert report.max_rel_error > 1e-2
    assert verdict(report.max_rel_error) == "wrong"
    assert "wrong" in str(report)
    # Doubling: |2n − n| / (2|n| + |n|) = 1/3 in every entry.
    if bug == "doubled":
        assert report.max_rel_error == pytest.approx(1 / 3, rel=1e-6)
    if bug == "sign flipped":
        assert report.max_rel_error == pytest.approx(1.0, rel=1e-12)


def test_verdicts_follow_cs231n():
    assert [verdict(e) for e in (1e-9, 1e-7, 1e-5, 1e-3, 0.5, float("nan"))] == \
        ["good", "good", "ok only near a kink", "suspect", "wrong", "wrong"]


# --- the relative error, by hand --------------------------------------------------------

H_EXACT = 2.0**-20   # a power of two: θ ± h and 3(θ ± h) are exact, so n is exactly 3


def test_relative_error_on_a_known_case():
    # L(θ) = 3θ at θ = 0: the central difference is (3h − (−3h)) / 2h = 3 exactly.
    # Report a = 1: rel = |1 − 3| / (|1| + |3|) = 2/4 = 0.5, abs = 2.
    theta = np.zeros(1)
    report = gradcheck(lambda: (3 * theta[0], {"theta": np.ones(1)}), {"theta": theta}, eps=H_EXACT)
    row = report["theta"]
    assert (row.analytic, row.numeric) == (1.0, 3.0)
    assert row.max_rel_error == 0.5
    assert row.max_abs_error == 2.0
    assert row.worst_index == (0,)


def test_relative_error_floor():
    # A constant loss: n = 0.  With a = 0 the error is 0/max(0, 1e-12) = 0; with
    # a = 1e-13 it is 1e-13 / max(1e-13, 1e-12) = 0.1: the floor keeps tiny values
    # from looking perfect or infinitely wrong.
    theta = np.zeros(2)
    report = gradcheck(lambda: (7.0, {"theta": np.array([0.0, 1e-13])}), {"theta": theta}, eps=H_EXACT)
    assert report.max_rel_error == pytest.approx(0.1, rel=1e-12)
    assert report["theta"].worst_index == (1,)
    assert report["theta"].numeric == 0.0


# --- parameters are left exactly as they were -------------------------------------------

def bits(params):
    return {k: v.tobytes() for k, v in params.items()}


def test_restores_every_parameter_bit_exactly():
    # (θ + h) − h is not θ in floating point when |θ| ≪ h (θ + h keeps only the bits of θ
    # above h's last place); the checker must put back the original, not undo the step.
    rng = np.random.default_rng(0)
    params = {"A": rng.normal(size=(4, 5)) * 1e3, "b": rng.uniform(size=7) * 1e-9}
    assert ((params["b"] + 1e-6) - 1e-6 != params["b"]).all()
    before = bits(params)
    gradcheck(lambda: (float(sum(np.sum(v**2) for v in params.values())),
                       {k: 2 * v for k, v in params.items()}), params)
    assert bits(params) == before


@pytest.mark.parametrize("failing_call", [2, 3, 8])
def test_restores_parameters_when_fn_raises(failing_call):
    # Call 1 is the unperturbed loss; calls 2 and 3 are θ₀ + h and θ₀ − h; and so on.
    params = {"w": np.random.default_rng(1).normal(size=(2, 3))}
    before = bits(params)
    calls = []

    def fn():
        calls.append(params["w"].copy())
        if len(calls) == failing_call:
            assert bits(params) != before                    # it does fail mid-perturbation
            raise RuntimeError("boom")
        return float(np.sum(params["w"] ** 3)), {"w": 3 * params["w"] ** 2}

    with pytest.raises(RuntimeError, match="boom"):
        gradcheck(fn, params)
    assert len(calls) == failing_call
    assert bits(params) == before


# --- sampling entries --------------------------------------------------------------------

def perturbed_entries(params, n_entries, seed):
    """Run the checker and record which entries of each array it moved."""
    original = {k: v.copy() for k, v in params.items()}
    moved = {k: set() for k in params}

    def fn():
        for k, v in params.items():
            moved[k].update(map(int, np.flatnonzero(v != original[k])))
        return float(sum(np.sum(v) for v in params.values())), {k: np.ones_like(v) for k, v in params.items()}

    report = gradcheck(fn, params, n_entries=n_entries, seed=seed)
    return report, moved


def test_n_entries_checks_exactly_that_many_per_array():
    params = {"big": np.zeros((6, 7)), "small": np.zeros(3)}
    report, moved = perturbed_entries(params, n_entries=5, seed=0)
    assert report["big"].n_checked == 5 and len(moved["big"]) == 5
    # An array with fewer entries than asked is checked in full.
    assert report["small"].n_checked == 3 and moved["small"] == {0, 1, 2}
    report, moved = perturbed_entries(params, n_entries=None, seed=0)
    assert report["big"].n_checked == 42 and len(moved["big"]) == 42


def test_the_sample_is_reproducible_by_seed():
    params = {"w": np.zeros(100)}
    _, first = perturbed_entries(params, n_entries=10, seed=3)
    _, again = perturbed_entries(params, n_entries=10, seed=3)
    _, other = perturbed_entries(params, n_entries=10, seed=4)
    assert first == again
    assert first != other


# --- kinks -----------------------------------------------------------------------------

def relu_loss(theta):
    return lambda: (float(np.maximum(theta, 0).sum()), {"theta": (theta > 0).astype(float)})


def test_kink_warning_fires_exactly_at_relu_zero():
    # At θ = 0: L(h) = h, L(−h) = 0, so n = 1/2 while relu′(0) := 0 — rel = 1; the one-sided
    # slopes (1 and 0) disagree, which is what marks a kink.
    theta = np.array([0.0, 1.0, -1.0])
    with pytest.warns(RuntimeWarning, match="kink"):
        report = gradcheck(relu_loss(theta), {"theta": theta})
    assert report["theta"].n_kinks == 1
    assert report["theta"].worst_index == (0,)
    assert report.max_rel_error == pytest.approx(1.0)
    assert "(1 kink)" in str(report)


def test_no_kink_warning_away_from_relu_zero_or_for_smooth_functions():
    theta = np.array([0.5, 1.0, -1.0])
    smooth = np.array([0.0, 1.0, -1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert gradcheck(relu_loss(theta), {"theta": theta}).max_rel_error <= 1e-6
        # tanh at 0, with a wrong gradient: large error, but the two one-sided slopes agree.
        report = gradcheck(lambda: (float(np.tanh(smooth).sum()), {"theta": np.zeros(3)}),
                           {"theta": smooth})
    assert report.max_rel_error == pytest.approx(1.0)
    assert report["theta"].n_kinks == 0


# --- arguments and the report --------------------------------------------------------------

def test_float32_params_are_refused():
    with pytest.raises(TypeError, match=r"params\['w'\].*float64"):
        gradcheck(lambda: (0.0, {"w": np.zeros(2)}), {"w": np.zeros(2, np.float32)})


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(eps=0.0), ValueError, "eps"),
    (dict(eps=1), ValueError, "eps"),
    (dict(n_entries=0), ValueError, "n_entries"),
    (dict(n_entries=2.5), ValueError, "n_entries"),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        gradcheck(lambda: (0.0, {"w": np.zeros(2)}), {"w": np.zeros(2)}, **kwargs)


def test_bad_fn_results():
    with pytest.raises(TypeError, match="fn"):
        gradcheck("not callable", {"w": np.zeros(2)})
    with pytest.raises(TypeError, match="params"):
        gradcheck(lambda: (0.0, {}), {})
    with pytest.raises(ValueError, match="'w'"):
        gradcheck(lambda: (0.0, {}), {"w": np.zeros(2)})
    with pytest.raises(ValueError, match=r"grads\['w'\]"):
        gradcheck(lambda: (0.0, {"w": np.zeros(3)}), {"w": np.zeros(2)})


def test_print_shows_one_row_per_parameter(capsys):
    rng = np.random.default_rng(0)
    params = {"enc.W": rng.normal(size=(3, 2)), "enc.b": rng.normal(size=2), "logvar": rng.normal(size=())}
    report = gradcheck(lambda: (float(sum(np.sum(v**2) for v in params.values())),
                                {k: 2 * v for k, v in params.items()}), params)
    print(report)
    lines = capsys.readouterr().out.strip().splitlines()
    header, rule, *rows, summary = lines
    assert "max rel err" in header and set(rule) == {"-"}
    assert [row.split()[0] for row in rows] == list(params)
    assert [r.name for r in report.rows] == list(params)
    assert "(3, 2)" in rows[0] and " 6 " in rows[0] and rows[0].endswith("good")
    assert summary.startswith("max relative error") and summary.endswith("good")


# --- gradcheck_layer on layers a student would write ----------------------------------------

class ScaleShift:
    """y = x ⊙ w + b, one scale and one shift per feature; x (n, d), w and b (d,)."""

    def __init__(self, w, b, bug=None):
        self.params = {"w": w, "b": b}
        self.grads = {"w": np.zeros_like(w), "b": np.zeros_like(b)}
        self.bug = bug

    def forward(self, x):
        self.x = x
        return x * self.params["w"] + self.params["b"]

    def backward(self, dy):
        # ∂L/∂w = Σ_rows dy ⊙ x,  ∂L/∂b = Σ_rows dy,  ∂L/∂x = dy ⊙ w
        if self.bug == "mean instead of sum":
            self.grads["w"] = (dy * self.x).mean(axis=0)
        else:
            self.grads["w"] = (dy * self.x).sum(axis=0)
        self.grads["b"] = dy.sum(axis=0)
        if self.bug == "forgot w":
            return dy
        return dy * self.params["w"]


class Square:
    """y = x², no parameters; ∂L/∂x = 2 x ⊙ dy."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, dy):
        return 2 * self.x * dy


def scale_shift(bug=None):
    rng = np.random.default_rng(0)
    return ScaleShift(rng.uniform(0.5, 2, size=4), rng.normal(size=4), bug), rng.normal(size=(3, 4))


def test_gradcheck_layer_passes_a_correct_layer():
    layer, x = scale_shift()
    w_before = layer.params["w"].copy()
    report = gradcheck_layer(layer, x)
    assert [r.name for r in report.rows] == ["X", "w", "b"]
    assert report.max_rel_error <= 1e-6
    np.testing.assert_array_equal(layer.params["w"], w_before)
    report = gradcheck_layer(Square(), x)
    assert [r.name for r in report.rows] == ["X"]
    assert report.max_rel_error <= 1e-6


@pytest.mark.parametrize("bug, wrong_row", [("mean instead of sum", "w"), ("forgot w", "X")])
def test_gradcheck_layer_flags_a_buggy_layer(bug, wrong_row):
    layer, x = scale_shift(bug)
    report = gradcheck_layer(layer, x)
    for row in report.rows:
        if row.name == wrong_row:
            assert row.max_rel_error > 1e-2, row
        else:
            assert row.max_rel_error <= 1e-6, row
    # The sum over 3 rows was replaced by a mean: a = n/3, rel = (2n/3)/(4n/3) = 1/2.
    if bug == "mean instead of sum":
        assert report["w"].max_rel_error == pytest.approx(0.5, rel=1e-6)


def test_gradcheck_layer_uses_the_given_upstream_gradient():
    # L = Σ Y ⊙ dY: with dY = e₀ only Y[0, 0] = x₀₀² counts, so ∂L/∂x = 2 x₀₀ at (0, 0), else 0.
    x = np.array([[3.0, 1.0], [2.0, -1.0]])
    dY = np.zeros((2, 2))
    dY[0, 0] = 1.0
    report = gradcheck_layer(Square(), x, dY=dY)
    assert report["X"].analytic == pytest.approx(6.0)
    assert report["X"].numeric == pytest.approx(6.0, rel=1e-8)
