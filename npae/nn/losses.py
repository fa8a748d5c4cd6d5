"""Losses, each value written beside its gradient.

Convention for every loss in npae: **sum over features for each example, mean
over the batch.**  For a batch of ``n`` examples each function returns

* the loss as a Python float ``L = (1/n) Σ_i ℓ_i`` with ``ℓ_i`` summed over the
  features of example ``i``, and
* the gradient ``∂L/∂(input)`` for each input, already divided by ``n``.

``per_example=True`` returns the array ``(ℓ_1, …, ℓ_n)`` instead of ``L`` (the
gradients stay those of ``L``); the models use it for ELBO and
importance-weighted estimates.

Each loss is written once, on buffers, and that one form is what training runs:
``scale`` replaces the 1/n (a thread working on part of a batch passes 1/n of the
whole batch, so the parts add up to the batch's mean), ``out=`` takes the
gradient's array, and ``work=`` a :class:`~npae.nn.buffers.Workspace` for the
scratch arrays.  Where the form exploits an identity, a private helper beside
it says which.

Note the feature *sum*: Keras' ``mse`` and ``binary_crossentropy`` average over
features instead, so npae's values are ``n_features`` times theirs.  With the
sum, ``bce_with_logits + kl_normal`` is the negative ELBO in nats.
"""

import math

import numpy as np

from .buffers import Workspace

LOG_2PI = math.log(2 * math.pi)


def _scale_of(n, scale):
    return 1.0 / max(n, 1) if scale is None else scale


def _total(rows, per_example, scale):
    return rows if per_example else float(rows.sum()) * scale


def bce_with_logits(logits, x, *, per_example=False, scale=None, out=None, work=None):
    """Binary cross-entropy between targets ``x`` and ``x̂ = σ(t)``, from the logits ``t``.

    .. math::

        ℓ = −Σ_j [x_j log σ(t_j) + (1 − x_j) log(1 − σ(t_j))]
          = Σ_j [max(t_j, 0) − x_j t_j + log(1 + e^{−|t_j|})]

        ∂ℓ/∂t_j = σ(t_j) − x_j

    The second form never takes ``log(0)``: it is finite for every finite
    logit, where ``log(sigmoid(t))`` underflows to ``log(0) = −∞`` once
    ``t < −104`` in float32.  The gradient is the fused ``x̂ − x``: the
    sigmoid's derivative ``x̂(1 − x̂)`` cancels against the BCE's denominator.

    Parameters
    ----------
    logits : ndarray (n, d)
    x : ndarray (n, d), targets in [0, 1]
    per_example : return each row's ℓ_i (summed in float64, in the logits' dtype) instead of
        the scaled total
    scale : the gradient's (and the total's) factor; 1/n by default, the mean over the batch
    out : ndarray (n, d) to write the gradient into (allocated when None)
    work : a :class:`~npae.nn.buffers.Workspace` for the scratch arrays (a fresh one when None)

    Returns
    -------
    loss : float ``scale · Σ_i ℓ_i``, or ndarray (n,) with ``per_example=True``
    dlogits : ndarray (n, d), ``(σ(t) − x) · scale``
    """
    _check_same_shape(logits=logits, x=x)
    scale = _scale_of(logits.shape[0], scale)
    work = Workspace(logits.dtype) if work is None else work
    dT = np.empty_like(logits) if out is None else out
    positive, negative = work.like("bce.positive", logits), work.like("bce.negative", logits)
    e = work.like("bce.e", logits)
    np.greater_equal(logits, 0, out=positive, casting="unsafe")   # 1[t ≥ 0], masks as floats
    np.subtract(1, positive, out=negative)                         # 1[t < 0]
    np.subtract(positive, x, out=dT)                               # 1[t ≥ 0] − x, for the value:
    if per_example:                                                # max(t, 0) − x t = t (1[t ≥ 0] − x)
        linear = np.einsum("ij,ij->i", logits, dT, dtype=np.float64)
    else:
        linear = float(np.vdot(logits, dT))
    np.abs(logits, out=e)
    np.negative(e, out=e)
    np.exp(e, out=e)                                               # e = e^{−|t|}
    np.multiply(e, negative, out=dT)
    dT += positive                                                 # e^{min(t, 0)}, exactly
    e += 1
    dT /= e                                                        # σ(t) = e^{min(t, 0)} / (1 + e)
    dT -= x
    dT *= scale
    if per_example:
        return (linear + np.log(e).sum(axis=1, dtype=np.float64)).astype(logits.dtype), dT
    return (linear + _sum_of_logs(e)) * scale, dT                 # log(1 + e): 1 + e in [1, 2]


LOG_GROUP = 64  # logs summed as the log of products of 64 numbers in [1, 2] (≤ 2⁶⁴: no overflow)


def _sum_of_logs(values):
    """``Σ log vᵢ`` for values in [1, 2], as Σ_groups log Π_group vᵢ: one log per 64 values."""
    flat = values.reshape(-1)
    whole = flat.size - flat.size % LOG_GROUP
    products = np.multiply.reduce(flat[:whole].reshape(LOG_GROUP, -1), axis=0)
    return float(np.log(products).sum() + np.log(flat[whole:]).sum())


def mse(prediction, x, *, per_example=False, scale=None, out=None):
    """Squared error ``ℓ = Σ_j (x̂_j − x_j)²``, with ``∂ℓ/∂x̂ = 2 (x̂ − x)``.

    Parameters
    ----------
    prediction : ndarray (n, d), ``x̂``
    x : ndarray (n, d)
    per_example, scale, out : as for :func:`bce_with_logits`

    Returns
    -------
    loss : float ``scale · Σ_i ℓ_i``, or ndarray (n,)
    dprediction : ndarray (n, d), ``2 (x̂ − x) · scale``
    """
    _check_same_shape(prediction=prediction, x=x)
    scale = _scale_of(prediction.shape[0], scale)
    diff = np.subtract(prediction, x, out=out)
    if per_example:
        value = np.einsum("ij,ij->i", diff, diff, dtype=np.float64).astype(diff.dtype)
    else:
        value = float(np.vdot(diff, diff)) * scale
    diff *= 2 * scale
    return value, diff


def gaussian_nll(x, mu, logvar, *, per_example=False, scale=None, out=None, work=None):
    """Negative log-density ``−log N(x; μ, σ² I)`` of a diagonal Gaussian.

    .. math::

        ℓ = ½ Σ_j [log 2π + log σ²_j + (x_j − μ_j)² / σ²_j]

        ∂ℓ/∂μ_j = (μ_j − x_j) / σ²_j
        ∂ℓ/∂log σ²_j = ½ [1 − (x_j − μ_j)² / σ²_j]

    This is the decoder ``p(x|z) = N(x; μ, σ²I)`` — the formula the source
    document writes for ``p(x)``.  ``logvar`` may be learned or fixed; its
    shape may be ``(n, d)``, ``(d,)`` (one variance per feature) or ``()``
    (one for all); its gradient is summed to that shape (the adjoint of broadcasting).

    Parameters
    ----------
    x, mu : ndarray (n, d)
    logvar : ndarray broadcastable to (n, d), ``log σ²``
    per_example, scale, out, work : as for :func:`bce_with_logits` (``out`` takes ∂/∂μ)

    Returns
    -------
    loss : float ``scale · Σ_i ℓ_i``, or ndarray (n,)
    dmu : ndarray (n, d), times ``scale``
    dlogvar : ndarray of the shape of ``logvar``, times ``scale``
    """
    _check_same_shape(mu=mu, x=x)
    n, d = mu.shape
    scale = _scale_of(n, scale)
    logvar = np.asarray(logvar, dtype=mu.dtype)
    work = Workspace(mu.dtype) if work is None else work
    inv_var = np.exp(-logvar)
    dmu = np.subtract(mu, x, out=out)
    squares = np.multiply(dmu, dmu, out=work.like("gaussian.squares", mu))
    squares *= inv_var                                             # (x − μ)² / σ²
    if logvar.ndim < 2:  # Σ_j log σ²_j is the same for every row
        logvars = np.full(n, float(np.broadcast_to(logvar, (d,)).sum()))
    else:
        logvars = np.broadcast_to(logvar, mu.shape).sum(axis=1, dtype=np.float64)
    if per_example:
        value = 0.5 * (d * LOG_2PI + logvars + squares.sum(axis=1, dtype=np.float64))
        value = value.astype(mu.dtype)
    else:
        value = 0.5 * (n * d * LOG_2PI + float(logvars.sum()) + float(squares.sum())) * scale
    dmu *= inv_var
    dmu *= scale
    return value, dmu, _half_one_minus_summed(squares, logvar.shape, scale)


def _half_one_minus_summed(squares, shape, scale):
    """``½ (1 − squares) · scale`` summed to ``shape`` — the adjoint of broadcasting log σ² —
    with Σ_rows ½ (1 − s) = ½ (n − Σ_rows s) when one log σ² serves every row."""
    if squares.shape == shape:
        grad = np.subtract(1, squares)
        grad *= 0.5 * scale
        return grad
    n = squares.shape[0]
    if len(shape) <= 1:
        per_feature = (n - squares.sum(axis=0)) * (0.5 * scale)
        return per_feature.reshape(shape) if shape == (squares.shape[1],) else \
            np.asarray(per_feature.sum(), squares.dtype).reshape(shape)
    grad = (1 - squares) * (0.5 * scale)
    kept = tuple(i for i, s in enumerate(shape) if s == 1 and grad.shape[i] != 1)
    return grad.sum(axis=kept, keepdims=True) if kept else grad


def kl_normal(mu, logvar, *, per_example=False, scale=None, out=None):
    """``KL(N(μ, diag σ²) ‖ N(0, I))`` in closed form, with its gradients.

    .. math::

        KL = ½ Σ_j (μ_j² + σ²_j − 1 − log σ²_j)

        ∂KL/∂μ_j = μ_j
        ∂KL/∂log σ²_j = ½ (σ²_j − 1)

    Parameters
    ----------
    mu, logvar : ndarray (n, k)
    per_example, scale : as for :func:`bce_with_logits`
    out : a pair of arrays (n, k) for the two gradients (allocated when None)

    Returns
    -------
    kl : float ``scale · Σ_i KL_i``, or ndarray (n,)
    dmu, dlogvar : ndarray (n, k), times ``scale``
    """
    _check_same_shape(mu=mu, logvar=logvar)
    n = mu.shape[0]
    scale = _scale_of(n, scale)
    dmu, dlogvar = (None, None) if out is None else out
    var = np.exp(logvar, out=dlogvar)
    if per_example:
        value = 0.5 * (np.einsum("ij,ij->i", mu, mu, dtype=np.float64)
                       + (var - 1 - logvar).sum(axis=1, dtype=np.float64)).astype(mu.dtype)
    else:
        value = 0.5 * (float(np.vdot(mu, mu)) + float(var.sum()) - mu.size
                       - float(logvar.sum())) * scale
    dmu = np.multiply(mu, scale, out=dmu)
    var -= 1
    var *= 0.5 * scale                                             # ½ (σ² − 1) · scale
    return value, dmu, var


def l2_penalty(W, dW, alpha):
    """The weight decay ``(α/2) Σ W²`` of the weights ``W`` (any shape): returns it, and adds its
    gradient ``α W`` into ``dW`` in place."""
    if not alpha:
        return 0.0
    dW += alpha * W
    return 0.5 * alpha * float(np.vdot(W, W))


def _check_same_shape(**arrays):
    (first, a), *rest = arrays.items()
    if not isinstance(a, np.ndarray) or a.ndim != 2:
        raise ValueError(f"{first} must be a 2-D array (n, d), got shape {np.shape(a)}")
    for name, b in rest:
        if np.shape(b) != a.shape:
            raise ValueError(f"{name} has shape {np.shape(b)}, but {first} has shape {a.shape}")
