"""The formulas of layers.py and losses.py again, written for speed: into preallocated buffers.

Each function here computes exactly what its plain twin computes — the tests hold every one
equal to it, to rounding — but writes into arrays it is given instead of allocating, takes
as few passes over the data as the formula allows, and scales the gradients by ``scale`` (1/n
of the whole batch, so that a thread working on part of the batch produces its share of the
batch's gradient).  Where a faster form uses an identity, the line says which.
"""

import numpy as np

from .activations import get_activation

LOG_2PI = float(np.log(2 * np.pi))
LOG_GROUP = 64  # logs summed as the log of products of 64 numbers in [1, 2] (≤ 2⁶⁴: no overflow)


def dense_forward(X, W, b, activation, out):
    """``out = f(X W + b)`` (layers.Dense.forward), in place; returns ``out``."""
    np.matmul(X, W, out=out)
    out += b
    if activation != "identity":
        get_activation(activation).f(out, out=out)
    return out


def activation_backward(dY, Y, activation, scratch):
    """``dY ⊙ f′`` in place, f′ from the output Y (activations.py's table); returns dY."""
    if activation == "identity":
        return dY
    if activation == "relu":
        np.greater(Y, 0, out=scratch, casting="unsafe")   # 1[y > 0], as floats
        dY *= scratch
    else:
        dY *= get_activation(activation).df(Y)
    return dY


def dense_backward(dA, X, W, dW, db, dX=None):
    """From ``dA = ∂L/∂(XW + b)``: ``dW = Xᵀ dA``, ``db = Σ_rows dA`` and, into ``dX``, ``dA Wᵀ``."""
    np.matmul(X.T, dA, out=dW)
    np.sum(dA, axis=0, out=db)
    if dX is not None:
        np.matmul(dA, W.T, out=dX)


def sum_of_logs(values):
    """``Σ log vᵢ`` for values in [1, 2]: Σ_groups log Π_group vᵢ, one log per 64 values."""
    flat = values.reshape(-1)
    whole = flat.size - flat.size % LOG_GROUP
    products = np.multiply.reduce(flat[:whole].reshape(LOG_GROUP, -1), axis=0)
    return float(np.log(products).sum() + np.log(flat[whole:]).sum())


def bce_from_logits(T, X, scale, dT, e, negative, positive):
    """losses.bce_with_logits on buffers: ``dT = (σ(t) − x)·scale``; returns ``Σ ℓ · scale``.

    ℓ = max(t, 0) − x t + log(1 + e^{−|t|}).  With e = e^{−|t|}, σ(t) = e^{min(t, 0)} / (1 + e):
    the numerator is e where t < 0 and exactly 1 elsewhere.  ``e``, ``negative`` and
    ``positive`` are float scratch of T's shape (masks as floats: mixing bools into float
    arithmetic costs NumPy a slow cast).
    """
    np.greater_equal(T, 0, out=positive, casting="unsafe")   # 1[t ≥ 0]
    np.subtract(1, positive, out=negative)                    # 1[t < 0]
    np.subtract(positive, X, out=dT)                 # 1[t ≥ 0] − x, for the value first:
    linear = float(np.vdot(T, dT))                   # Σ max(t, 0) − x t = Σ t (1[t ≥ 0] − x)
    np.abs(T, out=e)
    np.negative(e, out=e)
    np.exp(e, out=e)                                 # e = e^{−|t|}
    np.multiply(e, negative, out=dT)
    dT += positive                                   # e^{min(t, 0)}, exactly
    e += 1
    dT /= e                                          # σ(t)
    dT -= X
    dT *= scale
    return (linear + sum_of_logs(e)) * scale         # log(1 + e) in [0, log 2]: e + 1 in [1, 2]


def squared_error(out, X, scale, dout):
    """losses.mse on buffers: ``dout = 2 (x̂ − x)·scale``; returns ``Σ (x̂ − x)² · scale``."""
    np.subtract(out, X, out=dout)
    value = float(np.vdot(dout, dout)) * scale
    dout *= 2 * scale
    return value


def gaussian_nll(mean, X, logvar, scale, dmean, scratch):
    """losses.gaussian_nll with one log σ² per feature, on buffers.

    ℓ = ½ Σ_j [log 2π + log σ²_j + (x_j − μ_j)² / σ²_j];  ``dmean = (μ − x) / σ² · scale``.
    Returns ``(Σ ℓ · scale, ∂/∂log σ² · scale)`` — the latter ``½ Σ_rows (1 − (x − μ)²/σ²)``.
    """
    inv_var = np.exp(-logvar)
    np.subtract(mean, X, out=dmean)
    np.multiply(dmean, dmean, out=scratch)
    scratch *= inv_var                               # (x − μ)² / σ²
    n, d = mean.shape
    squares = scratch.sum(axis=0)
    value = 0.5 * (n * (d * LOG_2PI + float(logvar.sum())) + float(squares.sum())) * scale
    dmean *= inv_var * scale
    return value, 0.5 * (n - squares) * scale


def bce_rows(T, X, dT, e, negative, positive):
    """Each row's binary cross-entropy (a float64 array) and ``dT = σ(t) − x`` (unscaled);
    scratch as for :func:`bce_from_logits`."""
    np.greater_equal(T, 0, out=positive, casting="unsafe")
    np.subtract(1, positive, out=negative)
    np.subtract(positive, X, out=dT)
    linear = (T * dT).sum(axis=1, dtype=np.float64)  # Σ_j max(t, 0) − x t
    np.abs(T, out=e)
    np.negative(e, out=e)
    np.exp(e, out=e)
    np.multiply(e, negative, out=dT)
    dT += positive
    e += 1
    dT /= e
    dT -= X
    return linear + np.log(e).sum(axis=1, dtype=np.float64)


def gaussian_rows(mean, X, logvar, dmean, squares):
    """Each row's −log N(x; μ, diag σ²) (float64), ``dmean = (μ − x)/σ²`` and, into ``squares``,
    ``(x − μ)²/σ²`` (unscaled); one log σ² per feature."""
    inv_var = np.exp(-logvar)
    np.subtract(mean, X, out=dmean)
    np.multiply(dmean, dmean, out=squares)
    squares *= inv_var
    dmean *= inv_var
    d = mean.shape[1]
    return 0.5 * (d * LOG_2PI + float(logvar.sum()) + squares.sum(axis=1, dtype=np.float64))
