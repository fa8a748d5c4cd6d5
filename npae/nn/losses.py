"""Losses, each value written beside its gradient.

Convention for every loss in npae: **sum over features for each example, mean
over the batch.**  For a batch of ``n`` examples each function returns

* the loss as a Python float ``L = (1/n) Σ_i ℓ_i`` with ``ℓ_i`` summed over the
  features of example ``i``, and
* the gradient ``∂L/∂(input)`` for each input, already divided by ``n``.

``per_example=True`` returns the array ``(ℓ_1, …, ℓ_n)`` instead of ``L`` (the
gradients stay those of ``L``); the models use it for ELBO and
importance-weighted estimates.

Note the feature *sum*: Keras' ``mse`` and ``binary_crossentropy`` average over
features instead, so npae's values are ``n_features`` times theirs.  With the
sum, ``bce_with_logits + kl_normal`` is the negative ELBO in nats.
"""

import math
import warnings

import numpy as np

from .activations import sigmoid

LOG_2PI = math.log(2 * math.pi)


def _reduce(per_example, per_example_requested):
    return per_example if per_example_requested else float(per_example.mean())


def bce_with_logits(logits, x, *, per_example=False):
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

    Returns
    -------
    loss : float, or ndarray (n,) with ``per_example=True``
    dlogits : ndarray (n, d), ``(σ(t) − x) / n``
    """
    _check_same_shape(logits=logits, x=x)
    n = logits.shape[0]
    terms = np.maximum(logits, 0) - x * logits + np.log1p(np.exp(-np.abs(logits)))
    dlogits = (sigmoid(logits) - x) / n
    return _reduce(terms.sum(axis=1), per_example), dlogits.astype(logits.dtype, copy=False)


def mse(prediction, x, *, per_example=False):
    """Squared error ``ℓ = Σ_j (x̂_j − x_j)²``, with ``∂ℓ/∂x̂ = 2 (x̂ − x)``.

    Parameters
    ----------
    prediction : ndarray (n, d), ``x̂``
    x : ndarray (n, d)

    Returns
    -------
    loss : float, or ndarray (n,)
    dprediction : ndarray (n, d), ``2 (x̂ − x) / n``
    """
    _check_same_shape(prediction=prediction, x=x)
    n = prediction.shape[0]
    diff = prediction - x
    return _reduce((diff * diff).sum(axis=1), per_example), diff * (2 / n)


def gaussian_nll(x, mu, logvar, *, per_example=False):
    """Negative log-density ``−log N(x; μ, σ² I)`` of a diagonal Gaussian.

    .. math::

        ℓ = ½ Σ_j [log 2π + log σ²_j + (x_j − μ_j)² / σ²_j]

        ∂ℓ/∂μ_j = (μ_j − x_j) / σ²_j
        ∂ℓ/∂log σ²_j = ½ [1 − (x_j − μ_j)² / σ²_j]

    This is the decoder ``p(x|z) = N(x; μ, σ²I)`` — the formula the source
    document writes for ``p(x)``.  ``logvar`` may be learned or fixed; its
    shape may be ``(n, d)``, ``(d,)`` (one variance per feature) or ``()``
    (one for all); the gradient is summed to that shape.

    Parameters
    ----------
    x, mu : ndarray (n, d)
    logvar : ndarray broadcastable to (n, d), ``log σ²``

    Returns
    -------
    loss : float, or ndarray (n,)
    dmu : ndarray (n, d)
    dlogvar : ndarray of the shape of ``logvar``
    """
    _check_same_shape(mu=mu, x=x)
    n, d = mu.shape
    logvar = np.asarray(logvar, dtype=mu.dtype)
    inv_var = np.exp(-logvar)
    diff = mu - x
    scaled_sq = diff * diff * inv_var
    total_logvar = np.broadcast_to(logvar, mu.shape).sum(axis=1)
    nll = 0.5 * (d * LOG_2PI + total_logvar + scaled_sq.sum(axis=1))
    dmu = diff * inv_var / n
    dlogvar = 0.5 * (1 - scaled_sq) / n
    dlogvar = _sum_to_shape(dlogvar, logvar.shape)
    return _reduce(nll.astype(mu.dtype, copy=False), per_example), dmu, dlogvar


def kl_normal(mu, logvar, *, per_example=False):
    """``KL(N(μ, diag σ²) ‖ N(0, I))`` in closed form, with its gradients.

    .. math::

        KL = ½ Σ_j (μ_j² + σ²_j − 1 − log σ²_j)

        ∂KL/∂μ_j = μ_j
        ∂KL/∂log σ²_j = ½ (σ²_j − 1)

    Parameters
    ----------
    mu, logvar : ndarray (n, k)

    Returns
    -------
    kl : float, or ndarray (n,)
    dmu, dlogvar : ndarray (n, k), divided by n
    """
    _check_same_shape(mu=mu, logvar=logvar)
    n = mu.shape[0]
    var = np.exp(logvar)
    kl = 0.5 * (mu * mu + var - 1 - logvar).sum(axis=1)
    return _reduce(kl, per_example), mu / n, 0.5 * (var - 1) / n


def _check_same_shape(**arrays):
    (first, a), *rest = arrays.items()
    if not isinstance(a, np.ndarray) or a.ndim != 2:
        raise ValueError(f"{first} must be a 2-D array (n, d), got shape {np.shape(a)}")
    for name, b in rest:
        if np.shape(b) != a.shape:
            raise ValueError(f"{name} has shape {np.shape(b)}, but {first} has shape {a.shape}")


def _sum_to_shape(grad, shape):
    """Sum a broadcast gradient back down to ``shape`` (the adjoint of broadcasting)."""
    if grad.shape == shape:
        return grad
    leading = grad.ndim - len(shape)
    grad = grad.sum(axis=tuple(range(leading)))
    kept = tuple(i for i, s in enumerate(shape) if s == 1 and grad.shape[i] != 1)
    return grad.sum(axis=kept, keepdims=True) if kept else grad



def unit_interval_targets(x):
    """Targets for a Bernoulli likelihood: ``x`` clipped to [0, 1], with a warning when that
    changes it.  (Scores use this: a test fold scaled by a MinMaxScaler fitted on another fold
    strays slightly outside [0, 1], and the cross-entropy of such a value is not a loss: it can
    be negative.  Training refuses such data instead.)"""
    low, high = x.min(initial=0), x.max(initial=1)
    if low >= 0 and high <= 1:
        return x
    warnings.warn(f"the data spans [{low:g}, {high:g}]; the Bernoulli likelihood's score clips "
                  "it to [0, 1]", UserWarning, stacklevel=2)
    return np.clip(x, 0, 1)
