"""Tests for npae.gradcheck: the checker itself must catch wrong gradients.

A loss whose gradient is known, returned correctly and then deliberately wrong;
the relative-error formula on numbers worked by hand; the tolerance and its
rounding floor; parameters restored bit for bit; sampling of entries; kinks,
entry by entry; the calls before any finite difference (noise, accumulation,
inputs changed in place); and gradcheck_layer on small layers of the kind a
student writes, one correct and one with a bug.  (Issue 17's catalogue of bugs,
run through ``npae check``, is in test_check_bug_classes.py.)
"""

import doctest
import warnings

import numpy as np
import pytest

from npae import gradcheck, gradcheck_layer
from npae.nn.gradcheck import (DEFAULT_STEP, FLOAT64_EPS, CannotCheck, WrongGradients, rounding_floor,
                               verdict)
from npae.nn.gradcheck_report import ratio_words
from npae.nn.gradcheck_objects import check_object, draw, draw_inputs


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
    assert report.passed and report.verdict == "good" and report["W"].verdict == "good"
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
    assert report.max_rel_error > 1e-2 and not report.passed
    assert report.verdict == "wrong"
    assert "wrong" in str(report)
    # Doubling: |2n − n| / (2|n| + |n|) = 1/3 in every entry.
    if bug == "doubled":
        assert report.max_rel_error == pytest.approx(1 / 3, rel=1e-6)
    if bug == "sign flipped":
        assert report.max_rel_error == pytest.approx(1.0, rel=1e-12)


def test_verdicts_fit_the_entry():
    # a passing entry is good whatever its relative error (it may sit below the rounding floor);
    # a failing one is suspect up to 1e-2, wrong above; "ok only near a kink" needs a kink
    assert [verdict(e, failed=False) for e in (1e-9, 1e-3)] == ["good", "good"]
    assert [verdict(e) for e in (1e-5, 1e-3, 0.5, float("nan"))] == ["suspect", "suspect", "wrong", "wrong"]
    assert verdict(1.0, at_kink=True) == "ok only near a kink"


@pytest.mark.parametrize("ratio, words", [(2.0, "2"), (0.25, "1/4"), (-1.0, "-1"), (1 / 3, "1/3"),
                                          (1.0, None), (1.37e-3, None), (float("nan"), None)])
def test_a_ratio_reads_as_the_factor_it_is(ratio, words):
    assert ratio_words(ratio) == words


def test_the_doubled_gradient_is_named_a_factor_2():
    W, loss, gradient = smooth_loss()
    report = gradcheck(lambda: (loss(W), {"W": 2 * gradient(W)}), {"W": W})
    assert report["W"].ratio == pytest.approx(2.0) and report["W"].constant_ratio == pytest.approx(2.0)
    assert "same factor 2" in str(report)


# --- the tolerance: |a − n| ≤ atol + rtol |n|, atol the rounding floor of L ---------------

def test_the_floor_is_eight_ulps_of_the_loss_over_h_and_is_reported():
    assert rounding_floor(100.0, 1e-5) == 8 * FLOAT64_EPS * 100.0 / 1e-5
    assert rounding_floor(100.0, 1e-5, nondet_tol=1e-9) == pytest.approx(8 * FLOAT64_EPS * 1e7 + 1e-4)
    W, loss, gradient = smooth_loss()
    report = gradcheck(lambda: (loss(W) + 1e3, {"W": gradient(W)}), {"W": W})
    assert report.atol == pytest.approx(rounding_floor(loss(W) + 1e3, DEFAULT_STEP))
    assert f"atol = {report.atol:.2g}" in str(report) and "rounding floor" in str(report)


def test_a_gradient_below_the_floor_passes_and_is_counted_but_a_bigger_error_fails():
    # L = 1e3 + 1e-9 θ: n is rounding (ε·1e3/h ≈ 2e-8 ≫ 1e-9), so no finite difference can tell
    theta = np.array([0.5])
    report = gradcheck(lambda: (1e3 + 1e-9 * theta[0], {"t": np.array([1e-9])}), {"t": theta})
    assert report.passed and report["t"].n_below_floor <= 1
    report = gradcheck(lambda: (1e3 + 1e-9 * theta[0], {"t": np.array([1e-5])}), {"t": theta})
    assert not report.passed and report.verdict == "wrong"


def test_rtol_is_never_loosened():
    with pytest.raises(ValueError, match="rtol"):
        gradcheck(lambda: (0.0, {"w": np.zeros(2)}), {"w": np.zeros(2)}, rtol=1e-4)


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


@pytest.mark.parametrize("failing_call", [3, 4, 9])
def test_restores_parameters_when_fn_raises(failing_call):
    # Calls 1 and 2 are at θ (the same point twice); calls 3 and 4 are θ₀ + h and θ₀ − h; and so on.
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


# --- kinks, entry by entry ----------------------------------------------------------------

def relu_loss(theta):
    return lambda: (float(np.maximum(theta, 0).sum()), {"theta": (theta > 0).astype(float)})


def test_a_kink_excuses_exactly_its_own_entry():
    # At θ = 0: L(h) = h, L(−h) = 0, so n = 1/2 while relu′(0) := 0; the one-sided slopes (1
    # and 0) disagree whatever h, which is what marks a kink.  The other entries are checked.
    theta = np.array([0.0, 1.0, -1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = gradcheck(relu_loss(theta), {"theta": theta})
    assert report["theta"].n_kinks == 1 and report["theta"].n_failed == 0
    assert report.passed and report.verdict == "ok only near a kink"
    assert report.max_rel_error <= 1e-6                 # over the entries not at a kink
    assert "1 at a kink" in str(report)


def test_a_bug_beside_a_kink_is_the_worst_entry():
    theta = np.array([0.0, 1.0, 2.0])
    report = gradcheck(lambda: (float(np.maximum(theta, 0).sum()),
                                {"theta": (theta > 0) * np.array([1.0, 1.0, 1.5])}), {"theta": theta})
    row = report["theta"]
    assert (row.n_kinks, row.n_failed, row.worst_index) == (1, 1, (2,))
    assert not report.passed and "worst entry not at a kink: theta[2]" in str(report)


def test_no_kink_away_from_relu_zero_or_for_smooth_functions():
    theta = np.array([0.5, 1.0, -1.0])
    smooth = np.array([0.0, 1.0, -1.0])
    assert gradcheck(relu_loss(theta), {"theta": theta}).max_rel_error <= 1e-6
    # tanh at 0, with a wrong gradient: large error, but the two one-sided slopes agree.
    report = gradcheck(lambda: (float(np.tanh(smooth).sum()), {"theta": np.zeros(3)}), {"theta": smooth})
    assert report.max_rel_error == pytest.approx(1.0)
    assert report["theta"].n_kinks == 0 and report.verdict == "wrong"


# --- before any finite difference: noise, accumulation, inputs changed in place -------------

def test_a_noisy_loss_cannot_be_checked_and_the_message_names_the_fix():
    rng = np.random.default_rng(0)
    w = np.ones(3)
    with pytest.raises(CannotCheck, match="not deterministic.*eps=.*seeded"):
        gradcheck(lambda: (float(w @ w + rng.normal()), {"w": 2 * w}), {"w": w})


def test_nondet_tol_allows_that_much_noise_and_raises_the_floor():
    rng = np.random.default_rng(0)
    w = np.array([1.0, 2.0])
    report = gradcheck(lambda: (float(w @ w + 1e-12 * rng.normal()), {"w": 2 * w}), {"w": w},
                       nondet_tol=1e-10)
    assert report.passed and report.atol >= 1e-10 / DEFAULT_STEP


def test_gradients_that_accumulate_are_named():
    w = np.array([1.0, -2.0])
    grads = {"w": np.zeros(2)}

    def fn():
        grads["w"] += 2 * w
        return float(w @ w), grads

    with pytest.raises(WrongGradients, match=r"'w' grows by the same amount.*\+="):
        gradcheck(fn, {"w": w})


def test_a_parameter_changed_in_place_is_named_and_restored():
    w = np.array([1.0, -2.0])

    def fn():
        loss = float(w @ w)
        w[0] += 1.0
        return loss, {"w": 2 * w}

    with pytest.raises(WrongGradients, match=r"changed params\['w'\] in place"):
        gradcheck(fn, {"w": w})
    assert w.tolist() == [1.0, -2.0]


@pytest.mark.parametrize("loss", [float("nan"), float("inf")])
def test_a_loss_that_is_not_finite_names_the_domain(loss):
    with pytest.raises(CannotCheck, match="input_domains"):
        gradcheck(lambda: (loss, {"w": np.zeros(2)}), {"w": np.zeros(2)})


def test_a_float32_loss_or_gradient_names_float64():
    with pytest.raises(CannotCheck, match='dtype="float64"'):
        gradcheck(lambda: (np.float32(1.0), {"w": np.zeros(2)}), {"w": np.zeros(2)})
    with pytest.raises(CannotCheck, match='dtype="float64"'):
        gradcheck(lambda: (1.0, {"w": np.zeros(2, np.float32)}), {"w": np.zeros(2)})


# --- input domains and independent draws -------------------------------------------------------

def test_inputs_are_drawn_from_their_domains():
    rng = np.random.default_rng(0)
    assert (draw((1000,), "positive", rng) > 0).all()
    p = draw((1000,), "probability", rng)
    assert (p > 0.05).all() and (p < 0.95).all()
    assert (draw((1000,), "real", rng) < 0).any()
    with pytest.raises(ValueError, match="positive"):
        draw((2,), "complex", rng)


def test_inputs_second_point_and_upstream_come_from_independent_streams():
    inputs, second, upstream = draw_inputs(["X"], [(4, 3)], ["real"], seed=0)
    dY = upstream.standard_normal((4, 3))
    assert not np.allclose(inputs["X"], second["X"]) and not np.allclose(inputs["X"], dY)
    assert not np.allclose(np.random.default_rng(0).standard_normal((4, 3)), dY)


def test_a_layer_of_several_inputs_with_a_fixed_one():
    class Reparameterize:                          # z = μ + e^{s/2} ε, ε fixed
        def forward(self, mu, logvar, eps):
            self.std_eps = np.exp(0.5 * logvar) * eps
            return mu + self.std_eps

        def backward(self, dz):
            return dz, 0.5 * dz * self.std_eps

    inputs, second, upstream = draw_inputs(["mu", "logvar", "eps"], [(3, 2)] * 3, ["real"] * 3, seed=1)
    report = check_object(Reparameterize(), "layer", inputs, ["mu", "logvar"], second=second,
                          upstream=upstream)
    assert report.passed and [r.name for r in report.rows] == ["mu", "logvar"]


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
    header, rule, *rows, summary, tolerance, explanation = lines
    assert "max rel err" in header and set(rule) == {"-"}
    assert tolerance.startswith("tolerance") and explanation == "every entry agrees"
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
    assert report.passed
    assert report.loss_scale == pytest.approx(9.0)          # Σ |Y ⊙ dY| = x₀₀² = 9


@pytest.mark.parametrize("module", ["npae.nn.gradcheck", "npae.nn.gradcheck_objects"])
def test_the_docstring_examples_run(module):
    import importlib
    failures, tried = doctest.testmod(importlib.import_module(module))
    assert tried and not failures


class Stateful:
    """y = x ⊙ w with one of two classic reentrancy bugs in its bookkeeping."""

    def __init__(self, bug):
        self.params = {"w": np.array([0.5, -1.5, 2.0])}
        self.grads = {"w": np.zeros(3)}
        self.bug, self.X = bug, None

    def forward(self, X):
        if self.bug != "stale cache" or self.X is None:
            self.X = X
        return X * self.params["w"]

    def backward(self, dY):
        if self.bug == "accumulates":
            self.grads["w"] += (dY * self.X).sum(axis=0)
        else:
            self.grads["w"] = (dY * self.X).sum(axis=0)
        return dY * self.params["w"]


@pytest.mark.parametrize("bug, message", [("accumulates", r"'w' grows by the same amount"),
                                          ("stale cache", "fresh copy")])
def test_gradcheck_layer_catches_state_kept_between_calls(bug, message):
    X = np.random.default_rng(0).normal(size=(4, 3))
    with pytest.raises(WrongGradients, match=message):
        gradcheck_layer(Stateful(bug), X)
    assert gradcheck_layer(Stateful(None), X).passed


def test_gradients_that_change_after_other_points_were_visited_are_named():
    w = np.array([1.0, -2.0])
    calls = []

    def fn():                                   # right for the first three calls, then drifts
        calls.append(1)
        return float(w @ w), {"w": 2 * w + (len(calls) > 3) * 1.0}

    with pytest.raises(WrongGradients, match="after the finite differences"):
        gradcheck(fn, {"w": w})
