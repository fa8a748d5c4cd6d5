"""The gradient checker: analytic gradients against central finite differences.

For every checked entry θ_i of every parameter array,

.. math::

    n_i = [L(θ + h e_i) − L(θ − h e_i)] / 2h        (error O(h²))

    rel_i = |a_i − n_i| / max(|a_i| + |n_i|, 10⁻¹²)

where ``a_i`` is the analytic gradient.  In float64 with h = 10⁻⁶ a correct
gradient of a smooth loss gives rel ≲ 10⁻⁷ (CS231n's rule of thumb: ≤ 1e-7
good; up to 1e-4 acceptable only next to a kink; above 1e-2 wrong).

A *kink* — relu at 0, |x| at 0 — makes the two one-sided slopes
``[L(θ + h e_i) − L(θ)] / h`` and ``[L(θ) − L(θ − h e_i)] / h`` disagree; the
checker compares them and warns when a large error coincides with such a
jump, since there the finite difference, not the gradient, is wrong.

Use it on a whole model (``gradcheck(lambda: model.loss_and_grads(X), model.params)``)
or on one layer of your own with :func:`gradcheck_layer`.
"""

import warnings
from typing import NamedTuple

import numpy as np

TINY = 1e-12
VERDICTS = ((1e-7, "good"), (1e-4, "ok only near a kink"), (1e-2, "suspect"), (np.inf, "wrong"))


def verdict(rel_error):
    """CS231n's reading of a relative error: good, ok only near a kink, suspect, wrong."""
    for bound, word in VERDICTS:
        if rel_error <= bound:
            return word
    return "wrong"  # NaN


class ParamCheck(NamedTuple):
    """One parameter array's result: the worst entry over those checked."""

    name: str
    shape: tuple
    n_checked: int
    max_rel_error: float
    max_abs_error: float
    worst_index: tuple
    analytic: float
    numeric: float
    n_kinks: int


class GradcheckReport:
    """The checker's result: ``max_rel_error`` over everything and one row per parameter."""

    def __init__(self, rows, eps):
        self.rows = list(rows)
        self.eps = eps

    @property
    def max_rel_error(self):
        return max((r.max_rel_error for r in self.rows), default=0.0)

    def __getitem__(self, name):
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(name)

    def __str__(self):
        header = (f"{'parameter':<16} {'shape':<12} {'checked':>7} {'max rel err':>11} "
                  f"{'max abs err':>11} {'worst at':<12} {'analytic':>11} {'numeric':>11}  verdict")
        lines = [header, "-" * len(header)]
        for r in self.rows:
            note = verdict(r.max_rel_error) + (f" ({r.n_kinks} kink)" if r.n_kinks else "")
            lines.append(
                f"{r.name:<16} {str(r.shape):<12} {r.n_checked:>7} {r.max_rel_error:>11.2e} "
                f"{r.max_abs_error:>11.2e} {str(r.worst_index):<12} {r.analytic:>11.4g} "
                f"{r.numeric:>11.4g}  {note}")
        lines.append(f"max relative error {self.max_rel_error:.2e} "
                     f"(central differences, h = {self.eps:g}): {verdict(self.max_rel_error)}")
        return "\n".join(lines)

    __repr__ = __str__


def gradcheck(fn, params, *, eps=1e-6, n_entries=None, seed=0):
    """Check the gradients ``fn`` returns against central finite differences.

    Parameters
    ----------
    fn : callable () -> (loss, grads)
        Computes the scalar loss and the dict of analytic gradients at the
        current values of ``params``.
    params : dict of name -> float64 ndarray
        The arrays ``fn`` reads.  Each checked entry is perturbed in place by
        ±eps and restored exactly, even if ``fn`` raises.
    eps : float
        The step h.
    n_entries : int or None
        Check every entry (None) or a random sample of this many per array.
    seed : int
        Seed of the sample of entries.

    Returns
    -------
    GradcheckReport
        ``report.max_rel_error``, ``report.rows``; ``print(report)`` shows a table.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, returning (loss, grads); got {type(fn).__name__}")
    if not isinstance(params, dict) or not params:
        raise TypeError("params must be a non-empty dict of name -> float64 array")
    for name, p in params.items():
        if not isinstance(p, np.ndarray) or p.dtype != np.float64:
            got = p.dtype if isinstance(p, np.ndarray) else type(p).__name__
            raise TypeError(f"params[{name!r}] must be a float64 ndarray (finite differences "
                            f"need double precision), got {got}")
    if not (isinstance(eps, float) and 0 < eps < 1):
        raise ValueError(f"eps must be a float in (0, 1), got {eps!r}")
    if n_entries is not None and (not isinstance(n_entries, int) or n_entries < 1):
        raise ValueError(f"n_entries must be a positive int or None, got {n_entries!r}")

    loss0, grads = fn()
    loss0 = float(loss0)
    missing = [name for name in params if name not in grads]
    if missing:
        raise ValueError(f"fn's grads lack the parameters {missing}")
    analytic_grads = {name: np.array(grads[name], dtype=np.float64) for name in params}
    rng = np.random.default_rng(seed)
    rows = []
    for name, p in params.items():
        analytic = analytic_grads[name]
        if analytic.shape != p.shape:
            raise ValueError(f"grads[{name!r}] has shape {analytic.shape}, "
                             f"but params[{name!r}] has shape {p.shape}")
        flat_indices = np.arange(p.size)
        if n_entries is not None and n_entries < p.size:
            flat_indices = np.sort(rng.choice(p.size, size=n_entries, replace=False))
        rows.append(_check_array(fn, name, p, analytic, flat_indices, eps, loss0))
    report = GradcheckReport(rows, eps)
    kinked = [r.name for r in rows if r.n_kinks]
    if kinked:
        warnings.warn(f"finite differences straddle a kink in {kinked}: errors there come from "
                      "the non-differentiable point, not necessarily from the gradient",
                      RuntimeWarning, stacklevel=2)
    return report


def _check_array(fn, name, p, analytic, flat_indices, eps, loss0):
    worst = (-1.0, 0.0, (), 0.0, 0.0)
    n_kinks = 0
    for flat in flat_indices:
        index = np.unravel_index(flat, p.shape)
        original = p[index]
        try:
            p[index] = original + eps
            loss_plus = float(fn()[0])
            p[index] = original - eps
            loss_minus = float(fn()[0])
        finally:
            p[index] = original
        numeric = (loss_plus - loss_minus) / (2 * eps)
        a = analytic[index]
        abs_err = abs(a - numeric)
        rel_err = abs_err / max(abs(a) + abs(numeric), TINY)
        if rel_err > 1e-6 and _straddles_kink(fn, p, index, eps, loss_minus, loss0, loss_plus):
            n_kinks += 1
        if rel_err > worst[0] or np.isnan(rel_err):
            worst = (rel_err, abs_err, tuple(int(i) for i in index), float(a), numeric)
        worst = (worst[0], max(worst[1], abs_err), *worst[2:])
    rel, abs_max, index, a, numeric = worst
    return ParamCheck(name, p.shape, len(flat_indices), float(max(rel, 0.0)), float(abs_max),
                      index, a, numeric, n_kinks)


def _straddles_kink(fn, p, index, eps, loss_minus, loss0, loss_plus):
    """Does L have a kink within ±eps of θ_i?

    The jump between the one-sided slopes, ``J(h) = [L(θ+h) − L(θ)]/h − [L(θ) − L(θ−h)]/h``,
    is ``L″h`` for a smooth L: halving h halves it.  Across a kink it is set
    by the kink, not by h, and does not halve.  So L is also evaluated at
    ±eps/2 (only for entries that already look wrong), and a kink is reported
    when ``J(eps/2)`` is far from ``J(eps)/2`` — farther than rounding could
    move it.
    """
    original = p[index]
    try:
        p[index] = original + eps / 2
        half_plus = float(fn()[0])
        p[index] = original - eps / 2
        half_minus = float(fn()[0])
    finally:
        p[index] = original
    jump = (loss_plus - 2 * loss0 + loss_minus) / eps
    jump_half = (half_plus - 2 * loss0 + half_minus) / (eps / 2)
    rounding = 16 * np.finfo(np.float64).eps * (abs(loss0) + 1) / (eps / 2)
    return abs(jump_half - jump / 2) > 0.1 * abs(jump) + rounding


def gradcheck_layer(layer, X, *, dY=None, eps=1e-6, n_entries=None, seed=0):
    """Check a layer's ``backward`` — input gradient and parameter gradients — in isolation.

    The layer needs ``forward(X) -> Y``, ``backward(dY) -> dX`` and, if it has
    parameters, dicts ``layer.params`` and ``layer.grads`` (float64).  With an
    upstream gradient ``dY`` (random if not given) the checked scalar is
    ``L = Σ Y ⊙ dY``, whose gradient is exactly the vector–Jacobian product
    ``backward(dY)`` must return.

    Returns the :class:`GradcheckReport`, with a row ``"X"`` for the input.
    """
    X = np.array(X, dtype=np.float64)
    params = dict(getattr(layer, "params", {}) or {})
    checked = {"X": X, **params}
    if dY is None:
        dY = np.random.default_rng(seed).standard_normal(np.shape(layer.forward(X)))
    dY = np.asarray(dY, dtype=np.float64)

    def loss_and_grads():
        Y = layer.forward(X)
        if np.shape(Y) != dY.shape:
            raise ValueError(f"layer.forward returned shape {np.shape(Y)}, dY has shape {dY.shape}")
        dX = layer.backward(dY)
        grads = {"X": dX, **{k: getattr(layer, "grads", {})[k] for k in params}}
        return float(np.sum(Y * dY)), grads

    return gradcheck(loss_and_grads, checked, eps=eps, n_entries=n_entries, seed=seed)
