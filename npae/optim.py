"""Optimisers that update parameter arrays in place: SGD (with momentum) and Adam.

Both take ``step(params, grads)`` with two dicts of name → array sharing their
keys.  Parameters must be C-contiguous arrays (the models' are); they are
updated in place, so every view of them — a layer's weights, a tied decoder's
transpose — sees the change.  ``state_dict()`` / ``load_state_dict()`` export
and restore the optimiser's memory (Adam's moments and step count) so a
checkpoint can resume training exactly.

Adam's update is a dozen element-wise passes over each parameter, written
with ``out=`` into one reusable scratch buffer so a step allocates nothing.
(Splitting it over two threads halves it in isolation, but measured inside a
training step it was slower: OpenBLAS's threads keep spinning on both cores
after each matrix product.)
"""

import math

import numpy as np


def _check_positive(name, value, *, allow_zero=False, upper=None):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    ok = (value >= 0 if allow_zero else value > 0) and math.isfinite(value)
    if upper is not None:
        ok = ok and value < upper
    if not ok:
        bound = f"in [0, {upper})" if upper is not None else ("≥ 0" if allow_zero else "> 0")
        raise ValueError(f"{name} must be finite and {bound}, got {value!r}")
    return value


def _check_step_args(params, grads):
    if not isinstance(params, dict) or not isinstance(grads, dict):
        raise TypeError("params and grads must be dicts of name -> array")
    if params.keys() != grads.keys():
        missing = sorted(set(params) ^ set(grads))
        raise ValueError(f"params and grads must have the same keys; they differ in {missing}")
    for name, p in params.items():
        g = grads[name]
        if not isinstance(p, np.ndarray) or not p.flags.c_contiguous or not p.flags.writeable:
            raise ValueError(f"params[{name!r}] must be a writeable C-contiguous ndarray")
        if np.shape(g) != p.shape:
            raise ValueError(
                f"grads[{name!r}] has shape {np.shape(g)}, but params[{name!r}] has shape {p.shape}"
            )


def _check_state_shapes(params, *states):
    """A restored moment must have its parameter's shape (a checkpoint of another model must not load)."""
    for state in states:
        for name, p in params.items():
            if name in state and state[name].shape != p.shape:
                raise ValueError(f"the optimizer's state for {name!r} has shape {state[name].shape}, "
                                 f"but params[{name!r}] has shape {p.shape}")


class SGD:
    """Stochastic gradient descent with optional (heavy-ball) momentum.

    .. math::

        v ← μ v − η g,        θ ← θ + v        (μ = 0: θ ← θ − η g)
    """

    def __init__(self, lr=0.01, momentum=0.0):
        self.lr = _check_positive("lr", lr)
        self.momentum = _check_positive("momentum", momentum, allow_zero=True, upper=1)
        self.velocity = {}

    def step(self, params, grads):
        _check_step_args(params, grads)
        _check_state_shapes(params, self.velocity)
        for name, p in params.items():
            g = np.asarray(grads[name], dtype=p.dtype)
            if self.momentum == 0:
                p -= self.lr * g
                continue
            v = self.velocity.get(name)
            if v is None:
                v = self.velocity[name] = np.zeros_like(p)
            v *= self.momentum
            v -= self.lr * g
            p += v

    def state_dict(self):
        return {"name": "sgd", "lr": self.lr, "momentum": self.momentum,
                "velocity": {k: v.copy() for k, v in self.velocity.items()}}

    def load_state_dict(self, state):
        self.lr, self.momentum = float(state["lr"]), float(state["momentum"])
        self.velocity = {k: np.array(v) for k, v in state.get("velocity", {}).items()}

    def __repr__(self):
        return f"SGD(lr={self.lr:g}, momentum={self.momentum:g})"


class Adam:
    """Adam (Kingma & Ba, 2015) with bias correction.

    At step t, for each parameter θ with gradient g:

    .. math::

        m ← β₁ m + (1 − β₁) g          v ← β₂ v + (1 − β₂) g²
        m̂ = m / (1 − β₁ᵗ)              v̂ = v / (1 − β₂ᵗ)
        θ ← θ − η m̂ / (√v̂ + ε)

    The source document's example uses ``Adam(lr=0.001, beta_1=0.5)``.
    """

    def __init__(self, lr=1e-3, beta_1=0.9, beta_2=0.999, eps=1e-8):
        self.lr = _check_positive("lr", lr)
        self.beta_1 = _check_positive("beta_1", beta_1, allow_zero=True, upper=1)
        self.beta_2 = _check_positive("beta_2", beta_2, allow_zero=True, upper=1)
        self.eps = _check_positive("eps", eps)
        self.t = 0
        self.m, self.v = {}, {}
        self._scratch = {}

    def step(self, params, grads):
        _check_step_args(params, grads)
        _check_state_shapes(params, self.m, self.v)
        self.t += 1
        # η m̂ / (√v̂ + ε) = [η √(1 − β₂ᵗ) / (1 − β₁ᵗ)] · m / (√v + ε √(1 − β₂ᵗ)):
        # the same quantity, with the bias corrections folded into two scalars
        sqrt_bias2 = math.sqrt(1 - self.beta_2 ** self.t)
        step_size = self.lr * sqrt_bias2 / (1 - self.beta_1 ** self.t)
        eps_hat = self.eps * sqrt_bias2
        for name, p in params.items():
            if name not in self.m:
                self.m[name], self.v[name] = np.zeros_like(p), np.zeros_like(p)
            g = grads[name]
            if not (isinstance(g, np.ndarray) and g.dtype == p.dtype and g.flags.c_contiguous):
                g = np.ascontiguousarray(g, dtype=p.dtype)
            self._update(p.reshape(-1), g.reshape(-1), self.m[name].reshape(-1),
                         self.v[name].reshape(-1), step_size, eps_hat)

    def _update(self, p, g, m, v, step_size, eps_hat):
        """One parameter's update, on flat views; ``tmp`` is scratch reused across steps."""
        b1, b2 = self.beta_1, self.beta_2
        scratch = self._scratch.get(p.dtype)  # one per dtype: float64 is never computed in float32
        if scratch is None or scratch.size < p.size:
            scratch = self._scratch[p.dtype] = np.empty(p.size, dtype=p.dtype)
        tmp = scratch[: p.size]
        m *= b1                                   # m ← β₁ m + (1 − β₁) g
        np.multiply(g, 1 - b1, out=tmp)
        m += tmp
        v *= b2                                   # v ← β₂ v + (1 − β₂) g²
        np.multiply(g, g, out=tmp)
        tmp *= 1 - b2
        v += tmp
        np.sqrt(v, out=tmp)                       # θ ← θ − η m̂ / (√v̂ + ε)
        tmp += eps_hat
        np.divide(m, tmp, out=tmp)
        tmp *= step_size
        p -= tmp

    def state_dict(self):
        return {"name": "adam", "lr": self.lr, "beta_1": self.beta_1, "beta_2": self.beta_2,
                "eps": self.eps, "t": self.t,
                "m": {k: v.copy() for k, v in self.m.items()},
                "v": {k: v.copy() for k, v in self.v.items()}}

    def load_state_dict(self, state):
        for key in ("lr", "beta_1", "beta_2", "eps"):
            setattr(self, key, float(state[key]))
        self.t = int(state["t"])
        self.m = {k: np.array(v) for k, v in state.get("m", {}).items()}
        self.v = {k: np.array(v) for k, v in state.get("v", {}).items()}

    def __repr__(self):
        return (f"Adam(lr={self.lr:g}, beta_1={self.beta_1:g}, "
                f"beta_2={self.beta_2:g}, eps={self.eps:g})")


OPTIMIZERS = {"adam": Adam, "sgd": SGD}


def optimizer_from_state(state):
    """Build the optimiser a :meth:`state_dict` describes, with its state restored."""
    cls = OPTIMIZERS[state["name"]]
    opt = cls(lr=float(state["lr"]))
    opt.load_state_dict(state)
    return opt
