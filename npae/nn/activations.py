"""Activation functions f, each written beside its derivative.

Every derivative here is written from the activation's *output* ``y = f(a)``
rather than its input ``a`` — the identity scikit-learn's MLP exploits — so a
layer only has to keep ``y`` for its backward pass:

==========  ===========================  ===============================  ==========================
name        f(a)                          f'(a) in terms of y               f''(a) in terms of y
==========  ===========================  ===============================  ==========================
identity    a                             1                                 0
relu        max(a, 0)                     1[y > 0]                          0
leaky_relu  a if a > 0 else 0.01·a        1 if y > 0 else 0.01              0
sigmoid     1 / (1 + e^{−a})              y (1 − y)                         y (1 − y)(1 − 2y)
tanh        tanh a                        1 − y²                            −2y (1 − y²)
softplus    log(1 + e^{a})                1 − e^{−y}   (= σ(a))             σ(a)(1 − σ(a))
==========  ===========================  ===============================  ==========================

The second derivative is needed only by the contractive autoencoder's penalty.
All functions keep the dtype of their input (float32 stays float32), and
each f takes an optional ``out`` array (it may be ``a`` itself) to write into.
"""

from typing import Callable, NamedTuple

import numpy as np

LEAKY_SLOPE = 0.01


class Activation(NamedTuple):
    """An activation f with f′ and f″, both as functions of the output y = f(a)."""

    name: str
    f: Callable[[np.ndarray], np.ndarray]
    df: Callable[[np.ndarray], np.ndarray]
    d2f: Callable[[np.ndarray], np.ndarray]


def sigmoid(a, out=None):
    """σ(a) = 1 / (1 + e^{−a}), stable for any finite a.

    Computed as ``e^{min(a, 0)} / (1 + e^{−|a|})`` — that is 1 / (1 + e^{−a})
    for a ≥ 0 and e^{a} / (1 + e^{a}) for a < 0 — so neither exponential can
    overflow (both are ≤ 1) and tiny values keep full relative precision.
    """
    a = np.asarray(a)
    denominator = 1 + np.exp(-np.abs(a))
    numerator = np.exp(np.minimum(a, 0, out=out), out=out)
    return np.divide(numerator, denominator, out=out)


def softplus(a, out=None):
    """log(1 + e^{a}) = max(a, 0) + log(1 + e^{−|a|}), stable for any finite a."""
    a = np.asarray(a)
    log_term = np.log1p(np.exp(-np.abs(a)))
    return np.add(np.maximum(a, 0, out=out), log_term, out=out)


def _zeros_like(y):
    return np.zeros_like(y)


def _ones_like(y):
    return np.ones_like(y)


def _identity(a, out=None):
    return np.copyto(out, a) or out if out is not None else np.array(a)


def _relu(a, out=None):
    return np.maximum(a, 0, out=out)


def _relu_df(y):
    # 1[y > 0], written as sign(y) (y ≥ 0 here): one pass, no boolean temporary
    return np.sign(y)


def _leaky_relu(a, out=None):
    # max(a, 0.01 a) is a for a > 0 and 0.01 a otherwise (the slope is below 1)
    return np.maximum(a, a * LEAKY_SLOPE, out=out)


def _leaky_relu_df(y):
    return np.where(y > 0, 1, LEAKY_SLOPE).astype(y.dtype)


def _sigmoid_df(y):
    return y * (1 - y)


def _sigmoid_d2f(y):
    return y * (1 - y) * (1 - 2 * y)


def _tanh_df(y):
    return 1 - y * y


def _tanh_d2f(y):
    return -2 * y * (1 - y * y)


def _softplus_df(y):
    # e^y = 1 + e^a, so σ(a) = e^a / (1 + e^a) = 1 − e^{−y}; −expm1(−y) keeps
    # full precision when y is tiny.
    return -np.expm1(-y)


def _softplus_d2f(y):
    s = -np.expm1(-y)
    return s * (1 - s)


ACTIVATIONS = {
    "identity": Activation("identity", _identity, _ones_like, _zeros_like),
    "relu": Activation("relu", _relu, _relu_df, _zeros_like),
    "leaky_relu": Activation("leaky_relu", _leaky_relu, _leaky_relu_df, _zeros_like),
    "sigmoid": Activation("sigmoid", sigmoid, _sigmoid_df, _sigmoid_d2f),
    "tanh": Activation("tanh", np.tanh, _tanh_df, _tanh_d2f),
    "softplus": Activation("softplus", softplus, _softplus_df, _softplus_d2f),
}

#: Activations with a kink (a point where f′ jumps); finite differences that
#: straddle it disagree with the analytic derivative, by design.
KINKED = frozenset({"relu", "leaky_relu"})


def get_activation(name):
    """Return the :class:`Activation` called ``name``; ValueError lists the valid names."""
    if not isinstance(name, str):
        raise TypeError(f"activation must be a string, got {type(name).__name__}")
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; valid activations are: {', '.join(ACTIVATIONS)}"
        ) from None
