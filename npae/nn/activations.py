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
All functions keep the dtype of their input (float32 stays float32), and each
of f, f′ and f″ takes an optional ``out`` array to write into (for f it may be
``a`` itself).  :func:`backward` is the chain rule through f, in place: the one
form the layers, the models and training all run.
"""

from typing import Callable, NamedTuple

import numpy as np

LEAKY_SLOPE = 0.01


class Activation(NamedTuple):
    """An activation f with f′ and f″, both as functions of the output y = f(a)."""

    name: str
    f: Callable[..., np.ndarray]     # f(a, out=None)
    df: Callable[..., np.ndarray]    # f′ from the output: df(y, out=None)
    d2f: Callable[..., np.ndarray]   # f″ from the output: d2f(y, out=None)


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


def _zeros(y, out=None):
    out = np.empty_like(y) if out is None else out
    out.fill(0)
    return out


def _ones(y, out=None):
    out = np.empty_like(y) if out is None else out
    out.fill(1)
    return out


def _identity(a, out=None):
    return np.copyto(out, a) or out if out is not None else np.array(a)


def _relu(a, out=None):
    return np.maximum(a, 0, out=out)


def _relu_df(y, out=None):
    # 1[y > 0] as floats (a mask as floats: mixing bools into float arithmetic is a slow cast)
    out = np.empty_like(y) if out is None else out
    return np.greater(y, 0, out=out, casting="unsafe")


def _leaky_relu(a, out=None):
    # max(a, 0.01 a) is a for a > 0 and 0.01 a otherwise (the slope is below 1)
    return np.maximum(a, a * LEAKY_SLOPE, out=out)


def _leaky_relu_df(y, out=None):
    out = _relu_df(y, out)                  # 1[y > 0] …
    out *= 1 - LEAKY_SLOPE
    out += LEAKY_SLOPE                      # … mapped to 1 and 0.01
    return out


def _sigmoid_df(y, out=None):
    out = np.subtract(1, y, out=out)        # y (1 − y)
    out *= y
    return out


def _sigmoid_d2f(y, out=None):
    out = _sigmoid_df(y, out)               # y (1 − y)(1 − 2y)
    out *= 1 - 2 * y
    return out


def _tanh_df(y, out=None):
    out = np.multiply(y, y, out=out)        # 1 − y²
    return np.subtract(1, out, out=out)


def _tanh_d2f(y, out=None):
    out = _tanh_df(y, out)                  # −2y (1 − y²)
    out *= -2 * y
    return out


def _softplus_df(y, out=None):
    # e^y = 1 + e^a, so σ(a) = e^a / (1 + e^a) = 1 − e^{−y}; −expm1(−y) keeps
    # full precision when y is tiny.
    out = np.negative(y, out=out)
    np.expm1(out, out=out)
    return np.negative(out, out=out)


def _softplus_d2f(y, out=None):
    out = _softplus_df(y, out)              # σ(a)(1 − σ(a))
    out *= 1 - out
    return out


ACTIVATIONS = {
    "identity": Activation("identity", _identity, _ones, _zeros),
    "relu": Activation("relu", _relu, _relu_df, _zeros),
    "leaky_relu": Activation("leaky_relu", _leaky_relu, _leaky_relu_df, _zeros),
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


def backward(dY, Y, activation, scratch=None):
    """``dA = dY ⊙ f′(A)`` with f′ written from the output ``Y = f(A)``, in place in ``dY``.

    ``activation`` is an :class:`Activation`; ``scratch`` an array of Y's shape and dtype to hold
    f′ (allocated when None).  The identity passes ``dY`` through untouched.  Returns ``dY``.
    """
    if activation.name != "identity":
        dY *= activation.df(Y, out=scratch)
    return dY
