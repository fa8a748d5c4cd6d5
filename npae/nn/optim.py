"""Optimisers that update parameter arrays in place: SGD (with momentum) and Adam.

Both take ``step(params, grads)`` with two dicts of name → array sharing their
keys.  Parameters must be C-contiguous arrays (the models' are); they are
updated in place, so every view of them — a layer's weights, a tied decoder's
transpose — sees the change.  ``state_dict()`` / ``load_state_dict()`` export
and restore the optimiser's memory (Adam's moments and step count) so a
checkpoint can resume training exactly.

:func:`to_record` and :func:`from_record` turn that state into JSON-able
numbers and named arrays for a file, and back, checking everything.

Each update is written once, :meth:`Adam.update` (and :meth:`SGD.update`), on flat
arrays with ``out=``: Adam folds its two bias corrections into two scalars (one
identity, stated where it is used) and writes a dozen element-wise passes into one
reusable scratch buffer, so a step allocates nothing.  Two entry points run it:
``step(params, grads)`` on dicts, and — for the training step, which keeps the
parameters and gradients in flat buffers (:mod:`npae.nn.buffers`) —
:meth:`Adam.begin_step` then :meth:`Adam.update_slice` on each thread's slice.  The
optimiser owns its state: it counts its steps and keeps its moments itself (as views
of flat buffers of its own once a training step asks for them).  The paper's form,
m̂ and v̂ as Kingma & Ba print them, is the tests' oracle.

Every :data:`FLUSH_EVERY` steps both optimisers set the subnormal numbers of
their moments to zero (:func:`flush_subnormals`), as flush-to-zero hardware
would.  A moment whose gradient stays 0 — a relu unit that has died, a pixel
that is 0 in every image — decays by β₁ per step through the subnormal
range, where x86 arithmetic is many times slower (``benchmarks/README.md``,
"Measurements behind the code's choices", says how much, and how many of the
VAE's moments get there).  The update this drops is about η·2⁻¹²⁶/ε in size
(10⁻³³ in float32).
"""

import math

import numpy as np

from .. import checks

MAX_STEPS = 2**62  # a step count beyond this is not a real run (and β^t is 0 long before)
UPDATE_CHUNK = 131072  # entries updated at a time: Adam's five arrays of them fit in a core's cache
FLUSH_EVERY = 8    # a subnormal moment decays to exact 0 by itself in ~150 steps: flush sooner


def flush_subnormals(a, scratch=None):
    """Set the subnormal numbers of ``a`` to (signed) zero, in place; ``scratch``: an array of
    ``a``'s size and dtype to work in (allocated when None).  Three passes, none branching."""
    scratch = np.empty_like(a) if scratch is None else scratch
    np.abs(a, out=scratch)
    np.greater_equal(scratch, np.finfo(a.dtype).tiny, out=scratch)  # 1 where normal, inf or 0…
    a *= scratch                                                   # … 0 where subnormal or 0


def _rate(name, value):
    return checks.number(name, value, low=0, low_open=True)


def _decay(name, value):
    return checks.number(name, value, low=0, high=1, high_open=True)


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
        self.lr = _rate("lr", lr)
        self.momentum = _decay("momentum", momentum)
        self.t = 0
        self.velocity = {}
        self.flat = None  # (layout, (velocity buffer,)) once a training step asks for it

    def step(self, params, grads):
        _check_step_args(params, grads)
        _check_state_shapes(params, self.velocity)
        self.t += 1
        for name, p in params.items():
            g = np.asarray(grads[name], dtype=p.dtype)
            v = None
            if self.momentum:
                v = self.velocity.get(name)
                if v is None:
                    v = self.velocity[name] = np.zeros_like(p)
            self.update(p, g, v)

    def update(self, p, g, velocity, tmp=None):
        """The update of arrays ``p`` (gradient ``g``, momentum buffer ``velocity``), in place,
        for step ``t`` (counted by the caller); ``tmp``: scratch of p's size, or None."""
        if self.momentum == 0:
            p -= self.lr * g
            return
        velocity *= self.momentum
        velocity -= self.lr * g
        p += velocity
        if self.t % FLUSH_EVERY == 0:
            flush_subnormals(velocity, tmp)

    @property
    def updates_slices(self):
        """Whether a training step may update flat slices (:meth:`begin_step`, :meth:`update_slice`):
        True unless a subclass changed :meth:`step`, whose own ``step`` then runs instead."""
        return type(self).step is _OWN_STEP["SGD"]

    def begin_step(self, layout, dtype):
        """Start the next step of a training step's flat buffers laid out as ``layout``
        (:class:`~npae.nn.buffers.FlatLayout`): count it, and keep the velocities as views of
        one flat buffer of the optimiser's own (their values kept)."""
        self.t += 1
        if self.momentum:
            self.flat = _flat_state(self.flat, layout, dtype, (self.velocity,))
        return self

    def update_slice(self, P, G, where, scratch):
        """This step's update of ``P[where]`` from ``G[where]`` (flat buffers of the layout
        :meth:`begin_step` was given), a cache-sized chunk at a time; ``scratch`` as ``tmp``."""
        velocity = self.flat[1][0] if self.momentum else None
        for c in _chunks(where):
            self.update(P[c], G[c], None if velocity is None else velocity[c],
                        scratch[:c.stop - c.start])

    def max_step(self, grad_norm):
        """The most this step can move any parameter: ``lr ‖g‖ / (1 − μ)``."""
        return self.lr * grad_norm / (1 - self.momentum)

    def state_dict(self):
        return {"name": "sgd", "lr": self.lr, "momentum": self.momentum, "t": self.t,
                "velocity": {k: v.copy() for k, v in self.velocity.items()}}

    def load_state_dict(self, state):
        self.lr, self.momentum = float(state["lr"]), float(state["momentum"])
        self.t = int(state.get("t", 0))
        self.velocity = {k: np.array(v) for k, v in state.get("velocity", {}).items()}
        self.flat = None

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
        self.lr = _rate("lr", lr)
        self.beta_1 = _decay("beta_1", beta_1)
        self.beta_2 = _decay("beta_2", beta_2)
        self.eps = _rate("eps", eps)
        self.t = 0
        self.m, self.v = {}, {}
        self.flat = None      # (layout, (m buffer, v buffer)) once a training step asks for it
        self.constants = None  # this step's (step_size, eps_hat), set by begin_step
        self._scratch = {}

    def step(self, params, grads):
        _check_step_args(params, grads)
        _check_state_shapes(params, self.m, self.v)
        self.t += 1
        step_size, eps_hat = self.folded_corrections()
        for name, p in params.items():
            if name not in self.m:
                self.m[name], self.v[name] = np.zeros_like(p), np.zeros_like(p)
            g = grads[name]
            if not (isinstance(g, np.ndarray) and g.dtype == p.dtype and g.flags.c_contiguous):
                g = np.ascontiguousarray(g, dtype=p.dtype)
            self.update(p.reshape(-1), g.reshape(-1), self.m[name].reshape(-1),
                        self.v[name].reshape(-1), step_size, eps_hat)

    def folded_corrections(self):
        """``(step_size, eps_hat)`` of step ``t``, with the identity

        η m̂ / (√v̂ + ε) = [η √(1 − β₂ᵗ) / (1 − β₁ᵗ)] · m / (√v + ε √(1 − β₂ᵗ)).
        """
        t = min(self.t, 10**9)  # β^t is exactly 0 in floating point long before 10⁹ steps
        sqrt_bias2 = math.sqrt(1 - self.beta_2 ** t)
        return self.lr * sqrt_bias2 / (1 - self.beta_1 ** t), self.eps * sqrt_bias2

    def update(self, p, g, m, v, step_size, eps_hat, tmp=None):
        """The update of flat arrays ``p`` with gradient ``g`` and moments ``m``, ``v``, in place,
        for :meth:`folded_corrections`'s ``step_size`` and ``eps_hat``; ``tmp``: scratch of
        p's size (one kept by the optimiser when None; threads updating parts of one buffer
        each pass their own)."""
        b1, b2 = self.beta_1, self.beta_2
        if tmp is None:
            scratch = self._scratch.get(p.dtype)  # one per dtype: float64 never computed in float32
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
        if self.t % FLUSH_EVERY == 0:
            flush_subnormals(m, tmp)
            flush_subnormals(v, tmp)

    @property
    def updates_slices(self):
        """Whether a training step may update flat slices (:meth:`begin_step`, :meth:`update_slice`):
        True unless a subclass changed :meth:`step`, whose own ``step`` then runs instead."""
        return type(self).step is _OWN_STEP["Adam"]

    def begin_step(self, layout, dtype):
        """Start the next step of a training step's flat buffers laid out as ``layout``
        (:class:`~npae.nn.buffers.FlatLayout`): count it, fix its bias corrections, and keep
        ``m`` and ``v`` as views of two flat buffers of the optimiser's own (values kept)."""
        self.t += 1
        self.flat = _flat_state(self.flat, layout, dtype, (self.m, self.v))
        self.constants = self.folded_corrections()
        return self

    def update_slice(self, P, G, where, scratch):
        """This step's update of ``P[where]`` from ``G[where]`` (flat buffers of the layout
        :meth:`begin_step` was given), a cache-sized chunk at a time; ``scratch``: an array
        at least ``UPDATE_CHUNK`` long (one per thread)."""
        M, V = self.flat[1]
        step_size, eps_hat = self.constants
        for c in _chunks(where):
            self.update(P[c], G[c], M[c], V[c], step_size, eps_hat, scratch[:c.stop - c.start])

    def max_step(self, grad_norm):
        """The most this step can move any parameter, whatever the gradient:

        ``lr · √(1 − β₂ᵗ)/(1 − β₁ᵗ) · (1 − β₁)/√(1 − β₂) · √(Σ_{j<t} (β₁²/β₂)ʲ)``

        (Cauchy–Schwarz on the sums that make m and v; inf when β₂ = 0)."""
        b1, b2, t = self.beta_1, self.beta_2, min(self.t, 10**9)
        if b2 == 0:
            return math.inf
        r = b1 * b1 / b2
        series = t if r == 1 else (math.inf if r > 1 and t * math.log(r) > 700
                                   else (1 - r ** t) / (1 - r))
        return (self.lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t) * (1 - b1)
                / math.sqrt(1 - b2) * math.sqrt(series))

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
        self.flat = None

    def __repr__(self):
        return (f"Adam(lr={self.lr:g}, beta_1={self.beta_1:g}, "
                f"beta_2={self.beta_2:g}, eps={self.eps:g})")


def _flat_state(flat, layout, dtype, states):
    """The optimiser's moments ``states`` (dicts name → array) as views of flat buffers laid out
    as ``layout``: ``(layout, buffers)``, made once (values kept) and reused while the layout is
    the same."""
    if flat is not None and (flat[0] is layout or flat[0].shapes == layout.shapes) \
            and flat[1][0].dtype == dtype:
        return flat
    buffers = []
    for state in states:
        buffer = np.zeros(layout.size, dtype=dtype)
        views = layout.views(buffer)
        for name, value in state.items():
            views[name][...] = value
        state.clear()
        state.update(views)
        buffers.append(buffer)
    return layout, tuple(buffers)


def _chunks(where):
    for a in range(where.start, where.stop, UPDATE_CHUNK):  # a chunk's arrays stay in cache
        yield slice(a, min(a + UPDATE_CHUNK, where.stop))


OPTIMIZERS = {"adam": Adam, "sgd": SGD}
_OWN_STEP = {"Adam": Adam.step, "SGD": SGD.step}  # the steps update_slice agrees with


def to_record(optimizer):
    """The optimiser's state for a file: ``(numbers, arrays)``.

    ``numbers`` is JSON-able (name, hyper-parameters, step count);
    ``arrays`` maps ``"<moment>/<parameter>"`` to each moment array.
    """
    state = optimizer.state_dict()
    numbers = {k: v for k, v in state.items() if not isinstance(v, dict)}
    arrays = {f"{moment}/{name}": value for moment, values in state.items()
              if isinstance(values, dict) for name, value in values.items()}
    return numbers, arrays


def from_record(numbers, names, read, params):
    """Rebuild the optimiser :func:`to_record` described; every field checked.

    ``numbers``: its JSON numbers; ``names``: the ``"<moment>/<parameter>"``
    arrays the file holds; ``read(name, shape, dtype)``: reads one, which
    must match its parameter in ``params`` in shape and dtype.  Raises
    ValueError saying what is wrong.
    """
    if not isinstance(numbers, dict) or not isinstance(numbers.get("name"), str) \
            or numbers["name"] not in OPTIMIZERS:
        name = numbers.get("name") if isinstance(numbers, dict) else numbers
        raise ValueError(f"unknown optimiser {name!r}; valid: {', '.join(OPTIMIZERS)}")
    cls = OPTIMIZERS[numbers["name"]]
    hyper = {k: v for k, v in numbers.items() if k not in ("name", "t")}
    try:
        optimizer = cls(**hyper)  # the constructor checks every hyper-parameter
    except (TypeError, ValueError) as exc:
        raise ValueError(f"its optimiser state is invalid: {exc}") from None
    state = optimizer.state_dict()
    if "t" in state:
        t = numbers.get("t", 0 if numbers["name"] == "sgd" else None)  # SGD's count is newer
        if type(t) is not int or not 0 <= t <= MAX_STEPS:
            raise ValueError(f"its optimiser step count must be an int in [0, 2**62], got {t!r}")
        state["t"] = t
    moments = [key for key, value in state.items() if isinstance(value, dict)]
    for key in sorted(names):
        moment, _, name = key.partition("/")
        if moment not in moments or name not in params:
            raise ValueError(f"unexpected optimiser state {key!r} (moments: {moments}, for the "
                             "model's parameters)")
        p = params[name]
        value = read(key, p.shape, p.dtype)
        if not np.isfinite(value).all() or (moment == "v" and (value < 0).any()):
            raise ValueError(f"optimiser state {key!r} must be finite"
                             + (" and ≥ 0 (a second moment)" if moment == "v" else ""))
        state[moment][name] = value
    optimizer.load_state_dict(state)
    return optimizer
