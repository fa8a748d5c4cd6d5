"""The gradient checker: analytic gradients against central finite differences, entry by entry.

For every checked entry θ_i of every array, with a the analytic gradient,

.. math::

    n_i = [L(θ + h e_i) − L(θ − h e_i)] / 2h          (truncation error O(h² L‴))

    entry i passes  ⇔  |a_i − n_i| ≤ atol + rtol · |n_i|

    rel_i = |a_i − n_i| / max(|a_i| + |n_i|, 10⁻¹²)   (reported)

``rtol`` is 10⁻⁶ (every passing entry away from the floor has rel ≤ 10⁻⁶,
CS231n's "good" zone) and is never loosened.  ``atol`` is the **rounding
floor**: each evaluation of L in float64 is exact only to a few units in the
last place of the scale S of L, so ``n_i`` carries a rounding error of about
``ε·S/h`` whatever the gradient is.  The checker takes

    atol = 8 · ε · S / h  (+ nondet_tol / h)       ε = 2.2·10⁻¹⁶ (float64)

(eight ulps of S in each of the two evaluations), reports it, and counts the
entries that passed only because of it.  On a VAE (64-16-2, tanh) and four
digits, |L| = 46.4: at the default h = 10⁻⁵ the floor is 8.2·10⁻⁹, eight times
the largest |a − n| measured over all 2244 entries (1.0·10⁻⁹), and 6 entries
need it; at h = 10⁻⁶ it is 8.2·10⁻⁸ and 78 entries do.  An entry below the
floor cannot be resolved by any finite difference at that h, right or wrong.

Before any finite difference the function is called at the same point twice:
a loss that changes (fresh noise, a fresh dropout mask) raises
:class:`CannotCheck` naming the fix; gradients that grow by the same amount at
each call (``grads["W"] += …``) or that change, and an input array changed in
place, raise :class:`WrongGradients`.  A loss that is NaN or infinite, or
computed in float32, raises :class:`CannotCheck`.

A *kink* (relu at 0) makes the one-sided slopes disagree by an amount that
does not shrink with h; such an entry is excused, and only that entry (see
:func:`straddles_kink`).  The report names the worst entry not at a kink, its
ratio analytic / numeric (2, ½, −1 or 1/n read as the factor they are), and a
verdict: good, ok only near a kink (only when a kink was found), suspect or
wrong.

Use it on a whole model, with its noise fixed, or on a layer or loss of your
own with :mod:`npae.nn.gradcheck_objects`:

>>> import numpy as np, npae
>>> vae = npae.VAE(64, hidden=(8,), latent=2, dtype="float64", seed=0)
>>> X = np.random.default_rng(0).uniform(size=(4, 64))
>>> eps = vae.draw_noise(4, np.random.default_rng(1))          # the noise, fixed
>>> npae.gradcheck(lambda: vae.loss_and_grads(X, eps=eps), vae.params, n_entries=5).passed
True
"""

import numpy as np

from .gradcheck_report import ROUNDING_ULPS, GradcheckReport, ParamCheck, verdict

__all__ = ["gradcheck", "first_calls", "straddles_kink", "rounding_floor", "require_float64",
           "CannotCheck", "WrongGradients", "GradcheckReport", "ParamCheck", "verdict", "DEFAULT_STEP"]

DEFAULT_STEP = 1e-5          # the step h of every entry point: npae.gradcheck*, npae check, npae gradcheck
RTOL = 1e-6                  # relative tolerance, never loosened to pass
TINY = 1e-12
TINY_STEP = 1e-10            # a move of θ_i float64 resolves and float32 does not
FLOAT64_EPS = float(np.finfo(np.float64).eps)


class CannotCheck(ValueError):
    """The function cannot be checked as it stands: it is noisy, NaN, or not float64 (exit 2)."""


class WrongGradients(ValueError):
    """A bug found without finite differences: gradients that accumulate, depend on an earlier
    call, or have the wrong shape; a missing gradient; an input changed in place (exit 1)."""


def rounding_floor(loss_scale, h, nondet_tol=0.0):
    """``atol = 8 ε S / h + nondet_tol / h``: what rounding (and allowed noise) puts in ``n_i``."""
    return ROUNDING_ULPS * FLOAT64_EPS * abs(loss_scale) / h + nondet_tol / h


def gradcheck(fn, params, *, eps=DEFAULT_STEP, n_entries=None, seed=0, rtol=RTOL, nondet_tol=0.0,
              loss_scale=None):
    """Check the gradients ``fn`` returns against central finite differences.

    Parameters
    ----------
    fn : callable () -> (loss, grads)
        The scalar loss and a dict of analytic gradients at the current ``params``.  It must
        be deterministic: fix any noise (``model.loss_and_grads(X, eps=eps)``).
    params : dict of name -> float64 ndarray
        The arrays ``fn`` reads.  Each checked entry is moved by ±eps and put back bit for
        bit, even if ``fn`` raises.
    eps : float
        The finite-difference step h (default 1e-6, the same for every entry point).
    n_entries : int or None
        Check every entry (None) or a random sample of this many per array.
    seed : int
        Seed of the sample of entries.
    rtol : float
        Relative tolerance, at most 1e-6.
    nondet_tol : float
        How far two calls at the same point may differ (default 0: not at all); it is added
        to the rounding floor as ``nondet_tol / h``.
    loss_scale : float or None
        The scale S of the rounding in L (default |L|); a sum with cancellation, like
        ``Σ Y ⊙ dY``, passes ``Σ |Y ⊙ dY|``.

    Returns
    -------
    GradcheckReport
        ``report.passed``, ``report.max_rel_error``, ``report.rows``; ``print(report)``.

    Raises
    ------
    CannotCheck
        ``fn`` is not deterministic, returns a NaN or infinite loss, or computes in float32.
    WrongGradients
        A gradient is missing or misshapen, accumulates, changes from call to call, or ``fn``
        changes a parameter in place.
    """
    _check_arguments(fn, params, eps, n_entries, rtol, nondet_tol)
    loss0, analytic = first_calls(fn, params, nondet_tol)
    scale = abs(loss0) if loss_scale is None else max(float(loss_scale), abs(loss0))
    atol = rounding_floor(scale, eps, nondet_tol)
    rng = np.random.default_rng(seed)
    rows = []
    for name, p in params.items():
        flat_indices = np.arange(p.size)
        if n_entries is not None and n_entries < p.size:
            flat_indices = np.sort(rng.choice(p.size, size=n_entries, replace=False))
        rows.append(_check_array(fn, name, p, analytic[name], flat_indices, eps, loss0, atol, rtol,
                                 scale))
    _, again = _call(fn, params)      # after calls at many other points: the same gradients?
    changed = [name for name in params if not _same(analytic[name], again[name], nondet_tol)]
    if changed:
        raise WrongGradients(
            f"after the finite differences (calls at other points), fn returns other gradients for "
            f"{', '.join(map(repr, changed))} at the same point as before: backward keeps state "
            "from earlier calls (a cache, an accumulator); it must depend only on this call")
    return GradcheckReport(rows, eps, atol=atol, rtol=rtol, loss_scale=scale)


def _check_arguments(fn, params, eps, n_entries, rtol, nondet_tol):
    if not callable(fn):
        raise TypeError(f"fn must be callable, returning (loss, grads); got {type(fn).__name__}")
    if not isinstance(params, dict) or not params:
        raise TypeError("params must be a non-empty dict of name -> float64 array")
    require_float64(params)
    if not (isinstance(eps, float) and 0 < eps < 1):
        raise ValueError(f"eps must be a float in (0, 1), got {eps!r}")
    if n_entries is not None and (not isinstance(n_entries, int) or n_entries < 1):
        raise ValueError(f"n_entries must be a positive int or None, got {n_entries!r}")
    if not (0 < rtol <= RTOL):
        raise ValueError(f"rtol must be in (0, {RTOL:g}], got {rtol!r}: a looser relative tolerance "
                         "passes wrong gradients")
    if not nondet_tol >= 0:
        raise ValueError(f"nondet_tol must be ≥ 0, got {nondet_tol!r}")


def require_float64(params):
    """TypeError naming the array and the fix unless every array of ``params`` is float64."""
    for name, p in params.items():
        if not isinstance(p, np.ndarray) or p.dtype != np.float64:
            got = p.dtype if isinstance(p, np.ndarray) else type(p).__name__
            raise TypeError(f"params[{name!r}] must be a float64 ndarray (finite differences need "
                            f"double precision), got {got}: build the model with dtype=\"float64\" "
                            "or convert with .astype(np.float64)")


def put_back_changed(before, arrays):
    """The names of ``arrays`` (name → array) that differ from their copies in ``before``; each
    of them is put back as it was."""
    changed = [name for name, a in arrays.items()
               if not np.array_equal(a, before[name], equal_nan=True)]
    for name in changed:
        arrays[name][...] = before[name]
    return changed


def first_calls(fn, params, nondet_tol=0.0):
    """Call ``fn`` at the same point two or three times: (loss, analytic gradients as float64).

    Checks, in order: the loss is a finite float64; the gradients are all there, in the
    parameters' shapes; ``fn`` leaves ``params`` alone; the loss is the same at each call
    (else :class:`CannotCheck`: noise); the gradients are the same (else
    :class:`WrongGradients`: accumulation, or state kept between calls).
    """
    before = {name: p.copy() for name, p in params.items()}
    loss1, grads1 = _call(fn, params)
    changed = put_back_changed(before, params)
    if changed:
        raise WrongGradients(f"fn changed {', '.join(f'params[{n!r}]' for n in changed)} in place: a "
                             "forward or backward pass must leave its inputs and parameters alone "
                             "(write into a new array, not into the one given: y = x * m, not x *= m)")
    loss2, grads2 = _call(fn, params)
    rounding = 4 * FLOAT64_EPS * abs(loss1)          # two summation orders may differ by an ulp
    if not abs(loss1 - loss2) <= nondet_tol + rounding:
        raise CannotCheck(
            f"fn is not deterministic: two calls at the same point returned the losses {loss1!r} and "
            f"{loss2!r} (difference {abs(loss1 - loss2):.3g}), so finite differences would measure "
            "the noise, not the slope. Fix the noise: npae's models take eps= "
            "(model.loss_and_grads(X, eps=model.draw_noise(len(X), rng))); a dropout mask is drawn "
            "once from a seeded numpy.random.default_rng and reused")
    moved = [name for name in params if not _same(grads1[name], grads2[name], nondet_tol)]
    if moved:
        loss3, grads3 = _call(fn, params)
        growing = [name for name in moved
                   if np.allclose(grads3[name] - grads2[name], grads2[name] - grads1[name],
                                  rtol=1e-9, atol=1e-12 * (1 + np.abs(grads1[name]).max()))]
        if growing:
            raise WrongGradients(
                f"the gradient{'s' if len(growing) > 1 else ''} {', '.join(map(repr, growing))} grow"
                f"{'' if len(growing) > 1 else 's'} by the same amount at every call at the same point: "
                "they accumulate (grads[name] += …) instead of being set; each backward must "
                "overwrite its gradients (grads[name] = …, or set them to zero first)")
        raise WrongGradients(
            f"the gradient{'s' if len(moved) > 1 else ''} {', '.join(map(repr, moved))} change from "
            "call to call at the same point while the loss does not: backward depends on state kept "
            "from an earlier call; it must depend only on what this call's forward computed")
    return loss1, grads1


def _same(a, b, nondet_tol=0.0):
    """Equal up to ``nondet_tol`` and to rounding (10⁻¹² of the largest entry)."""
    scale = float(np.max(np.abs(a), initial=0.0))
    return np.allclose(a, b, rtol=1e-12, atol=nondet_tol + 1e-12 * scale, equal_nan=True)


def _call(fn, params):
    """``fn()`` as (float loss, dict of float64 gradient copies), every result checked."""
    loss, grads = fn()
    dtype = np.asarray(loss).dtype
    if dtype.kind == "f" and dtype.itemsize < 8:
        raise CannotCheck(f"the loss is computed in {dtype} (it came back as {dtype}): finite "
                          "differences need float64; build the model or layer with dtype=\"float64\"")
    loss = float(loss)
    if not np.isfinite(loss):
        raise CannotCheck(
            f"the loss is {loss} at the point checked, so no finite difference can be taken; the "
            "likely cause is an input outside the function's domain (a log or a square root of a "
            "negative number): evaluate it where it is finite, or declare the input's domain "
            "(input_domains = [\"positive\"] or [\"probability\"])")
    if not isinstance(grads, dict):
        raise WrongGradients(f"fn must return (loss, grads) with grads a dict keyed like params; "
                             f"got {type(grads).__name__}")
    missing = [name for name in params if name not in grads]
    if missing:
        raise WrongGradients(f"fn's grads lack the parameters {missing}: every checked array needs "
                             "its gradient (a backward pass must store one for each parameter)")
    copies = {}
    for name, p in params.items():
        g = np.asarray(grads[name])
        if g.dtype.kind == "f" and g.dtype.itemsize < 8:
            raise CannotCheck(f"grads[{name!r}] is {g.dtype}: finite differences need float64; "
                              "build the model or layer with dtype=\"float64\"")
        if g.shape != p.shape:
            raise WrongGradients(f"grads[{name!r}] has shape {g.shape}, but params[{name!r}] has shape "
                                 f"{p.shape}: a gradient has the shape of its parameter")
        copies[name] = np.array(g, dtype=np.float64)
    return loss, copies


def _check_array(fn, name, p, analytic, flat_indices, eps, loss0, atol, rtol, scale):
    """Finite differences at each of ``flat_indices`` of ``p``, reduced to one :class:`ParamCheck`."""
    n_failed = n_kinks = n_below_floor = 0
    max_rel = max_abs = 0.0
    worst = (-np.inf, (), 0.0, 0.0)          # (excess over the tolerance, index, a, n)
    ratios = []
    numerics = np.full(p.shape, np.nan)
    for flat in flat_indices:
        index = np.unravel_index(flat, p.shape)
        loss_plus, loss_minus = _losses_at(fn, p, index, (eps, -eps))
        numeric = (loss_plus - loss_minus) / (2 * eps)
        numerics[index] = numeric
        a = float(analytic[index])
        abs_err = abs(a - numeric)
        rel_err = abs_err / max(abs(a) + abs(numeric), TINY)
        bound = atol + rtol * abs(numeric)
        if abs(numeric) > 10 * atol:
            ratios.append(a / numeric)
        failed = not abs_err <= bound                    # NaN fails
        if failed and rounds_its_inputs(fn, p, index, numeric, loss0, scale):
            raise CannotCheck(
                f"the loss does not move at all when {name}{list(map(int, index))} moves by "
                f"{TINY_STEP:g}, though its slope there is {numeric:.3g}: the computation rounds its "
                "inputs to a lower precision (float32 somewhere inside), so finite differences "
                "measure that rounding; compute in float64 throughout: build it with "
                "dtype=\"float64\", and no .astype(np.float32)")
        if failed and straddles_kink(fn, p, index, eps, loss_minus, loss0, loss_plus, atol):
            n_kinks += 1
            continue
        n_failed += failed
        n_below_floor += (not failed) and abs_err > rtol * abs(numeric)
        max_rel = max(max_rel, rel_err) if not np.isnan(rel_err) else np.inf
        max_abs = max(max_abs, abs_err) if not np.isnan(abs_err) else np.inf
        excess = abs_err / bound if bound > 0 else (np.inf if abs_err > 0 else 0.0)
        if np.isnan(excess):
            excess = np.inf
        if excess > worst[0]:
            worst = (excess, tuple(int(i) for i in index), a, float(numeric))
    _, index, a, numeric = worst
    ratio = a / numeric if numeric != 0 else float("nan")
    constant = float("nan")
    if len(ratios) >= 2 and np.ptp(ratios) <= 1e-4 * abs(np.mean(ratios)):
        constant = float(np.mean(ratios))
    transposed = bool(n_failed and p.ndim == 2 and p.shape[0] == p.shape[1]
                      and np.all(np.abs(analytic.T - numerics) <= atol + rtol * np.abs(numerics)))
    return ParamCheck(name, p.shape, len(flat_indices), float(max_rel), float(max_abs), index, a,
                      numeric, n_kinks, n_failed, n_below_floor, ratio, constant, transposed)


def _losses_at(fn, p, index, steps):
    """L at θ_index + each step, the entry restored bit for bit afterwards, even if ``fn`` raises."""
    original = p[index]
    losses = []
    try:
        for step in steps:
            p[index] = original + step
            losses.append(float(fn()[0]))
    finally:
        p[index] = original
    return losses


def rounds_its_inputs(fn, p, index, numeric, loss0, scale):
    """Is L blind to a tiny move of θ_i that float64 would see?

    Moving θ_i by δ = 10⁻¹⁰ (1 + |θ_i|) should move L by about n·δ.  When that is a thousand
    ulps of L's scale or more, a float64 computation cannot miss it; one that rounds θ to
    float32 (resolution 10⁻⁷) returns exactly the same L on both sides.
    """
    step = TINY_STEP * (1 + abs(float(p[index])))
    if not (np.isfinite(numeric) and abs(numeric) * step > 1000 * FLOAT64_EPS * max(scale, TINY)):
        return False
    plus, minus = _losses_at(fn, p, index, (step, -step))
    return plus == loss0 and minus == loss0


def straddles_kink(fn, p, index, eps, loss_minus, loss0, loss_plus, atol=0.0):
    """Does L have a kink within ±eps of θ_i?  Asked only of entries that fail.

    The jump between the one-sided slopes, ``J(h) = [L(θ+h) − L(θ)]/h − [L(θ) − L(θ−h)]/h``,
    is ``L″h`` for a smooth L: halving h halves it.  Across a kink it is set by the kink, not
    by h, and does not halve.  So L is also evaluated at ±eps/2, and a kink is reported when
    ``J(eps/2)`` is far from ``J(eps)/2`` — farther than rounding could move it — and the jump
    itself is larger than rounding.
    """
    half_plus, half_minus = _losses_at(fn, p, index, (eps / 2, -eps / 2))
    jump = (loss_plus - 2 * loss0 + loss_minus) / eps
    jump_half = (half_plus - 2 * loss0 + half_minus) / (eps / 2)
    rounding = 4 * atol + 16 * FLOAT64_EPS * (abs(loss0) + 1) / (eps / 2)
    return abs(jump) > rounding and abs(jump_half - jump / 2) > 0.1 * abs(jump) + rounding
