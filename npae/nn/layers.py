"""Dense layers and the sequential stack that encoders and decoders are made of.

The source document writes one layer as ``h = f(W1 x + b1)`` for a column
vector ``x``.  npae works on row batches ``X`` of shape ``(n, n_in)``, so the
same layer is

.. math::

    A = X W + b,      Y = f(A),      with  W = W1ᵀ  of shape (n_in, n_out).

Backward, given ``dY = ∂L/∂Y``:

.. math::

    dA = dY ⊙ f′(A)          (f′ written from Y; see activations.py)
    ∂L/∂W = Xᵀ dA,   ∂L/∂b = Σ_rows dA,   ∂L/∂X = dA Wᵀ
"""

import numpy as np

from .. import checks
from .activations import get_activation

INITS = ("he-glorot", "fan-in")


def init_params(n_in, n_out, activation, rng, dtype, init="he-glorot"):
    """Initial ``(W, b)`` of a layer, W of shape (n_in, n_out), by the scheme ``init``:

    * ``"he-glorot"`` — He-uniform U(±√(6 / n_in)) for the relu family, which keeps the
      variance of relu activations constant through depth; Glorot-uniform
      U(±√(6 / (n_in + n_out))) otherwise, which balances forward and backward variance for
      symmetric activations; biases 0.
    * ``"fan-in"`` — U(±1/√n_in) for the weights and the biases alike (PyTorch's ``nn.Linear``).

    ``benchmarks/README.md`` compares them.
    """
    if init == "fan-in":
        limit = 1 / np.sqrt(n_in)
        W = rng.uniform(-limit, limit, size=(n_in, n_out)).astype(dtype)
        return W, rng.uniform(-limit, limit, size=n_out).astype(dtype)
    fan = n_in if activation in ("relu", "leaky_relu") else n_in + n_out
    limit = np.sqrt(6.0 / fan)
    return rng.uniform(-limit, limit, size=(n_in, n_out)).astype(dtype), np.zeros(n_out, dtype)


class Dense:
    """One fully connected layer ``Y = f(X W + b)`` (``h = f(W1 x + b1)`` with ``W1 = Wᵀ``).

    Parameters
    ----------
    n_in, n_out : int
    activation : str
        A name from :data:`npae.activations.ACTIVATIONS`.
    seed : int, numpy.random.Generator or None
        Randomness of the initial weights.
    dtype : "float32" or "float64"
    init : "he-glorot" or "fan-in", the initial weights' scheme (:func:`init_params`)

    Attributes
    ----------
    params : {"W": (n_in, n_out), "b": (n_out,)}
    grads : same keys and shapes, filled by :meth:`backward`
    X, Y : the input and output of the last :meth:`forward`, kept for :meth:`backward`
    """

    def __init__(self, n_in, n_out, activation="relu", *, seed=None, dtype="float32",
                 init="he-glorot"):
        n_in, n_out = checks.positive_int("n_in", n_in), checks.positive_int("n_out", n_out)
        self.activation = get_activation(activation)
        dtype = checks.float_dtype("dtype", dtype)
        W, b = init_params(n_in, n_out, activation, checks.generator(seed), dtype,
                           checks.one_of("init", init, INITS))
        self.params = {"W": W, "b": b}
        self.grads = {"W": np.zeros_like(W), "b": np.zeros(n_out, dtype=dtype)}
        self.X = self.Y = None

    @property
    def shape(self):
        return self.params["W"].shape

    def forward(self, X):
        """``Y = f(X W + b)``; X (n, n_in) → Y (n, n_out).  Caches X and Y for backward."""
        W, b = self.params["W"], self.params["b"]
        if X.ndim != 2 or X.shape[1] != W.shape[0]:
            raise ValueError(f"X must have shape (n, {W.shape[0]}), got {X.shape}")
        A = X @ W
        A += b
        Y = A if self.activation.name == "identity" else self.activation.f(A, out=A)
        self.X, self.Y = X, Y
        return Y

    def backward(self, dY, *, need_dX=True):
        """From ``dY = ∂L/∂Y`` (n, n_out): store ∂L/∂W, ∂L/∂b in ``grads``; return ``∂L/∂X``.

        ``dA = dY ⊙ f′``, ``grads["W"] = Xᵀ dA``, ``grads["b"] = Σ_rows dA``, ``dX = dA Wᵀ``.
        ``need_dX=False`` skips the last product (for the first layer of a network).
        """
        if self.X is None:
            raise RuntimeError("backward called before forward")
        if self.activation.name == "identity":
            dA = dY
        else:
            dA = self.activation.df(self.Y)
            dA *= dY
        return self.backward_affine(dA, need_dX=need_dX)

    def backward_affine(self, dA, *, need_dX=True):
        """The affine half of :meth:`backward`, from ``dA = ∂L/∂A`` (n, n_out)."""
        if self.X is None:
            raise RuntimeError("backward called before forward")
        np.matmul(self.X.T, dA, out=self.grads["W"])
        np.sum(dA, axis=0, out=self.grads["b"])
        return dA @ self.params["W"].T if need_dX else None

    def __repr__(self):
        n_in, n_out = self.shape
        return f"Dense({n_in}, {n_out}, activation={self.activation.name!r})"


def stack_shapes(prefix, sizes, *, weights=True):
    """``{"<prefix>.<i>.W": (n_in, n_out), "<prefix>.<i>.b": (n_out,)}`` of a stack of layers of
    ``sizes`` (n_0 → n_1 → …), as :class:`Sequential` names them; no W when ``weights=False``
    (a tied decoder's weights are its encoder's)."""
    shapes = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        if weights:
            shapes[f"{prefix}.{i}.W"] = (a, b)
        shapes[f"{prefix}.{i}.b"] = (b,)
    return shapes


class Sequential:
    """Dense layers run one after another; ``backward`` runs them in reverse.

    ``params`` and ``grads`` are flat dicts named ``"<i>.W"``, ``"<i>.b"`` for
    layer ``i`` — the same arrays the layers hold, so updating them updates the stack.
    """

    def __init__(self, layers):
        self.layers = list(layers)  # may be empty: then forward and backward pass X through

    @property
    def params(self):
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.params.items()}

    @property
    def grads(self):
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.grads.items()}

    def bind(self, views, prefix):
        """Make layer i's ``W`` and ``b`` the arrays ``views["<prefix>.<i>.W"]`` and
        ``views["<prefix>.<i>.b"]`` (a layer whose W is not in ``views`` keeps its own)."""
        for i, layer in enumerate(self.layers):
            layer.params = {"W": views.get(f"{prefix}.{i}.W", layer.params["W"]),
                            "b": views[f"{prefix}.{i}.b"]}

    def forward(self, X):
        for layer in self.layers:
            X = layer.forward(X)
        return X

    def backward(self, dY, *, need_dX=True):
        for i, layer in enumerate(reversed(self.layers)):
            last = i == len(self.layers) - 1
            dY = layer.backward(dY, need_dX=need_dX or not last)
        return dY

    def __repr__(self):
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential([\n  {inner},\n])"
