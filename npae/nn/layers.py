"""Dense layers and the stacks that encoders and decoders are made of, forward beside backward.

The source document writes one layer as ``h = f(W1 x + b1)`` for a column vector ``x``.
npae works on row batches ``X`` of shape ``(n, n_in)``, so the same layer is

.. math::

    A = X W + b,      Y = f(A),      with  W = W1ᵀ  of shape (n_in, n_out).

Backward, given ``dY = ∂L/∂Y``:

.. math::

    dA = dY ⊙ f′(A)          (f′ written from Y; see activations.py)
    ∂L/∂W = Xᵀ dA,   ∂L/∂b = Σ_rows dA,   ∂L/∂X = dA Wᵀ

Each formula is written once, as a function on buffers: :func:`dense_forward` writes Y into
``out``, :func:`dense_backward` writes ∂L/∂W and ∂L/∂b into the gradient arrays it is given
(and ∂L/∂X into ``dX``), and :func:`forward_stack` / :func:`backward_stack` run a stack of
layers with their intermediate arrays in a :class:`~npae.nn.buffers.Workspace`.  The models,
the training step and the :class:`Dense` / :class:`Sequential` classes all call these.
"""

import numpy as np

from .. import checks
from . import activations
from .activations import get_activation
from .buffers import Workspace

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


def dense_forward(X, W, b, activation, out):
    """``Y = f(X W + b)`` into ``out`` (n, n_out); X (n, n_in), W (n_in, n_out), b (n_out,).
    ``activation`` is an :class:`~npae.nn.activations.Activation`.  Returns ``out``."""
    np.matmul(X, W, out=out)
    out += b
    if activation.name != "identity":
        activation.f(out, out=out)
    return out


def affine_backward(dA, X, W, dW, db, dX=None):
    """From ``dA = ∂L/∂(X W + b)`` (n, n_out): ``dW = Xᵀ dA`` and ``db = Σ_rows dA`` written into
    the arrays given, and ``dX = dA Wᵀ`` (n, n_in) into ``dX`` unless it is None."""
    np.matmul(X.T, dA, out=dW)
    np.sum(dA, axis=0, out=db)
    if dX is not None:
        np.matmul(dA, W.T, out=dX)
    return dX


def dense_backward(dY, X, Y, W, activation, dW, db, dX=None, scratch=None):
    """The backward pass of ``Y = f(X W + b)``: ``dA = dY ⊙ f′(Y)`` (in place in ``dY``), then
    :func:`affine_backward`.  ``scratch``: an array of Y's shape for f′ (or None)."""
    activations.backward(dY, Y, activation, scratch)
    return affine_backward(dY, X, W, dW, db, dX)


def forward_stack(layers, X, work, prefix):
    """Run ``X`` through ``layers`` (each with ``params`` W, b and an ``activation``), every
    output in ``work`` under the name ``(prefix, i, "Y")``; returns the list of outputs (X
    itself for an empty stack is not in it)."""
    outputs, n = [], X.shape[0]
    for i, layer in enumerate(layers):
        W = layer.params["W"]
        X = dense_forward(X, W, layer.params["b"], layer.activation,
                          work.array((prefix, i, "Y"), (n, W.shape[1])))
        outputs.append(X)
    return outputs


def backward_stack(layers, X, outputs, dY, grads, work, prefix, dX=None, weights=None):
    """Backward through the stack :func:`forward_stack` ran on ``X``, from ``dY = ∂L/∂(last
    output)`` (overwritten, as are the intermediate gradients in ``work``).

    Layer i's gradients go into ``grads["<prefix>.<i>.W"]`` and ``grads["<prefix>.<i>.b"]`` —
    or, for a layer whose W is shared (tied weights), into ``weights[i]``, an array the caller
    adds where the weight lives — and ∂L/∂X into ``dX`` when given.  Returns ``dX``."""
    n = X.shape[0]
    for i in range(len(layers) - 1, -1, -1):
        layer = layers[i]
        W = layer.params["W"]
        below = outputs[i - 1] if i else X
        into = dX if i == 0 else work.array((prefix, i - 1, "dY"), (n, W.shape[0]))
        dW = weights[i] if weights is not None and weights[i] is not None else grads[f"{prefix}.{i}.W"]
        scratch = None if layer.activation.name == "identity" else \
            work.array((prefix, i, "scratch"), dY.shape)
        dense_backward(dY, below, outputs[i], W, layer.activation, dW, grads[f"{prefix}.{i}.b"],
                       into, scratch)
        dY = into
    return dX


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

    ``forward`` and ``backward`` are :func:`dense_forward` and :func:`dense_backward` with
    arrays of their own, for a layer used on its own (a student's network, ``gradcheck_layer``);
    the models call the functions with their workspaces and keep nothing on the layer.
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
        """``Y = f(X W + b)``; X (n, n_in) → Y (n, n_out).  Keeps X and Y for backward."""
        W = self.params["W"]
        if X.ndim != 2 or X.shape[1] != W.shape[0]:
            raise ValueError(f"X must have shape (n, {W.shape[0]}), got {X.shape}")
        out = np.empty((X.shape[0], W.shape[1]), np.result_type(X, W))
        self.X, self.Y = X, dense_forward(X, W, self.params["b"], self.activation, out)
        return self.Y

    def backward(self, dY, *, need_dX=True):
        """From ``dY = ∂L/∂Y`` (n, n_out): store ∂L/∂W, ∂L/∂b in ``grads``; return ``∂L/∂X``
        (None with ``need_dX=False``).  ``dY`` itself is left as it was."""
        if self.X is None:
            raise RuntimeError("backward called before forward")
        dX = np.empty_like(self.X, dtype=self.Y.dtype) if need_dX else None
        return dense_backward(np.array(dY, dtype=self.Y.dtype), self.X, self.Y, self.params["W"],
                              self.activation, self.grads["W"], self.grads["b"], dX)

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
    ``forward`` and ``backward`` are :func:`forward_stack` and :func:`backward_stack`.
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
        """X through every layer (:func:`forward_stack`); keeps what :meth:`backward` needs."""
        self.work = Workspace(np.result_type(X, *(layer.params["W"] for layer in self.layers)))
        self.X, self.outputs = X, forward_stack(self.layers, X, self.work, "")
        return self.outputs[-1] if self.outputs else X

    def backward(self, dY, *, need_dX=True):
        """From ∂L/∂(output): every layer's gradients into its ``grads``; returns ∂L/∂X."""
        if not self.layers:
            return dY
        grads = {f".{i}.{k}": g for i, layer in enumerate(self.layers)
                 for k, g in layer.grads.items()}
        dX = np.empty_like(self.X, dtype=self.work.dtype) if need_dX else None
        return backward_stack(self.layers, self.X, self.outputs,
                              np.array(dY, dtype=self.work.dtype), grads, self.work, "", dX)

    def __repr__(self):
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential([\n  {inner},\n])"
