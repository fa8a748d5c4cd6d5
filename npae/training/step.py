"""The training step — one batch's loss, gradients and update — in its plain form and its fast one.

* :class:`ReferenceStep` runs the model's own ``batch_loss_and_grads`` and the optimiser's
  ``step(params, grads)``: the plain formulas of layers.py and losses.py, on one thread.
* :class:`FastStep`, which each model completes with its network's arithmetic
  (:mod:`npae.models.fast_autoencoder`, :mod:`npae.models.fast_vae`), computes the same numbers on buffers
  allocated once: the parameters, the gradients and the optimiser's moments are each one flat
  buffer (:mod:`npae.nn.buffers`); the batch is cut into parts and a team of threads
  (:mod:`npae.training.team`) works on all of them at once.  A step has three phases:

  1. forward and backward of each part of the batch, into the part's own gradient buffer
     (scaled by 1/n of the whole batch, so the parts' buffers add up to the batch's gradient);
  2. on each slice of the flat buffers, one per thread: the parts' gradients summed, the L2
     penalty ``alpha`` added, and Σ g²;
  3. the optimiser's update of each slice — unless the loss or Σ g² is not finite, or too
     large to square, when nothing is updated and the step says why.

The partition of the batch and of the buffers depends only on the batch size and the number
of threads, so a run is bit-identical to itself for a fixed seed and ``n_jobs``.

**The divergence guard.**  Both steps refuse an update from a loss or gradient that is not
finite.  The reference step copies the parameters before each update, to undo one that
overflows.  The fast step proves instead that no update can overflow: an update of Adam moves
a parameter by at most ``lr · √(1 − β₂ᵗ)/(1 − β₁ᵗ) · (1 − β₁)/√(1 − β₂) · √(Σ_{j<t} (β₁²/β₂)ʲ)``
(Cauchy–Schwarz on the moments' sums), one of SGD by at most ``lr ‖g‖ / (1 − μ)``, so while
the largest parameter plus the sum of those bounds stays below half the largest float, nothing
can overflow and nothing is copied.  Past that (never, at sane learning rates) it copies and
checks like the reference.
"""

import math

import numpy as np

from ..nn import buffers
from ..nn.optim import SGD, Adam
from . import team

UPDATE_CHUNK = 131072  # entries updated at a time: Adam's five arrays of them fit in a core's cache


class ReferenceStep:
    """``model.batch_loss_and_grads`` then ``optimizer.step``, guarded (see the module)."""

    n_jobs = 1

    def __init__(self, model, optimizer):
        self.model, self.optimizer, self.params = model, optimizer, model.params

    def __call__(self, X, eps):
        """``(loss, problem)``: ``problem`` is None, or why the step was not taken."""
        loss, grads = self.model.batch_loss_and_grads(X, eps)
        return loss, numerical_problem(loss, grads) or guarded_step(self.optimizer, self.params,
                                                                      grads)

    def close(self):
        pass


def numerical_problem(loss, grads):
    """Why a step must not be taken, or None.

    A gradient entry beyond √(largest float) is refused as well as NaN and infinity: its
    square (Adam's second moment) would overflow, and no training that has not diverged
    produces one.  The test is one dot product per array, ``Σ g²``, finite exactly when no
    entry is NaN or infinite and the norm is below √(largest float); only when it fails are
    the entries looked at, to say which.
    """
    if not math.isfinite(loss):
        return f"the loss is {loss}"
    for name, g in grads.items():
        if norm_is_finite(g):
            continue
        low, high = g.min(), g.max()
        if not (math.isfinite(low) and math.isfinite(high)):
            return f"the gradient of {name!r} is not finite"
        return (f"the gradient of {name!r} reached a norm of "
                f"{np.linalg.norm(g.astype(np.float64)):.3g}, too large to square in {g.dtype}")
    return None


def norm_is_finite(a):
    """Σ a² is finite: no NaN or infinity in ``a`` and ‖a‖ < √(largest float)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return math.isfinite(np.vdot(a.reshape(-1), a.reshape(-1)))


def guarded_step(optimizer, params, grads):
    """``optimizer.step(params, grads)``, undone if it is interrupted or overflows a parameter.

    The parameters are copied first, so an update that turns one infinite, or a second
    signal in its middle, leaves those of the last good step (the optimiser's own moments keep
    the failed update).  Returns None, or what went wrong.
    """
    before = {name: p.copy() for name, p in params.items()}
    try:
        optimizer.step(params, grads)
    except BaseException:
        _restore(params, before)
        raise
    if not all(norm_is_finite(p) or np.isfinite(p).all() for p in params.values()):
        _restore(params, before)
        return "the update made a parameter overflow to infinity"
    return None


def _restore(params, saved):
    for name, p in params.items():
        np.copyto(p, saved[name])


def max_update(optimizer, grad_norm):
    """The most one update of ``optimizer`` (its step count already advanced) can move any
    parameter, for a gradient of norm ``grad_norm``; inf when no bound is known."""
    if isinstance(optimizer, Adam):
        b1, b2, t = optimizer.beta_1, optimizer.beta_2, min(optimizer.t, 10**9)
        if b2 == 0:
            return math.inf
        r = b1 * b1 / b2
        series = t if r == 1 else (math.inf if r > 1 and t * math.log(r) > 700
                                   else (1 - r ** t) / (1 - r))
        return (optimizer.lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t) * (1 - b1)
                / math.sqrt(1 - b2) * math.sqrt(series))
    if isinstance(optimizer, SGD):
        return optimizer.lr * grad_norm / (1 - optimizer.momentum)
    return math.inf


class FastStep:
    """The step on flat buffers and threads; a model's subclass provides ``workspace(rows)``
    (its buffers for a part of the batch) and ``part(workspace, grads, X, eps, scale)`` (the
    part's loss times ``scale``, its gradients times ``scale`` written into ``grads``)."""

    def __init__(self, model, optimizer, batch_size, n_jobs):
        self.model, self.optimizer = model, optimizer
        self.params = model.params
        self.layout = buffers.FlatLayout.of(self.params)
        self.P = model.params_buffer_
        if not buffers.is_view_of(self.params, self.P):
            raise ValueError("the model's parameters are not views of its params_buffer_")
        self.dtype = self.P.dtype
        self.n_jobs = max(1, min(n_jobs, batch_size))
        self.G = [np.zeros(self.layout.size, self.dtype) for _ in range(self.n_jobs)]
        self.grads = [self.layout.views(G) for G in self.G]
        self.slices = self.layout.parts(self.n_jobs)
        self.scratch = [np.empty(s.stop - s.start, self.dtype) for s in self.slices]
        self.weights = [self.layout.slice(name) for name in self.params if name.endswith(".W")]
        self.moments = (optimizer.flatten(self.layout, self.dtype)
                        if type(optimizer) in (Adam, SGD) else None)
        rows = math.ceil(batch_size / self.n_jobs)
        self.workspaces = [self.workspace(rows) for _ in range(self.n_jobs)]
        with np.errstate(over="ignore"):
            self.headroom = float(np.finfo(self.dtype).max) / 2 - float(np.abs(self.P).max())
        self.parts_of = {}
        self.team = team.Team(self.n_jobs).__enter__()

    def close(self):
        self.team.__exit__(None, None, None)

    def row_parts(self, n):
        """The rows of a batch of ``n`` cut into (at most) ``n_jobs`` nearly equal parts."""
        if n not in self.parts_of:
            edges = np.linspace(0, n, min(self.n_jobs, n) + 1).round().astype(int)
            self.parts_of[n] = [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]
        return self.parts_of[n]

    def loss_and_grads(self, X, eps):
        """Phases 1 and 2: ``(loss, grads, Σ g²)``, grads the views of the batch's flat gradient
        (the reference's ``batch_loss_and_grads``, on buffers and threads)."""
        parts, scale = self.row_parts(len(X)), 1.0 / len(X)
        used = len(parts)

        def forward_backward(w):
            if w >= used:
                return 0.0
            rows = parts[w]
            return self.part(self.workspaces[w], self.grads[w], X[rows], self.eps_part(eps, rows),
                             scale)

        loss = float(sum(self.team.run(forward_backward)))
        if not math.isfinite(loss):
            return loss, self.grads[0], math.nan
        sums = self.team.run(lambda w: self.reduce(w, used))
        return loss + sum(s[1] for s in sums), self.grads[0], sum(s[0] for s in sums)

    def __call__(self, X, eps):
        """``(loss, problem)``, as :meth:`ReferenceStep.__call__`."""
        loss, grads, squares = self.loss_and_grads(X, eps)
        if not math.isfinite(loss):
            return loss, f"the loss is {loss}"
        if not math.isfinite(squares):
            return loss, numerical_problem(loss, grads)
        return loss, self.update(math.sqrt(squares))

    @staticmethod
    def eps_part(eps, rows):
        if eps is None:
            return None
        return eps[rows] if eps.ndim == 2 else eps[:, rows]

    def reduce(self, w, used):
        """Slice w of the batch's gradient: the parts' sum plus α·W; ``(Σ g², penalty)``."""
        s = self.slices[w]
        G = self.G[0][s]
        for other in self.G[1:used]:
            G += other[s]
        penalty = 0.0
        alpha = self.model.alpha
        if alpha:
            for weights in self.weights:
                lo, hi = max(weights.start, s.start), min(weights.stop, s.stop)
                if lo < hi:
                    P = self.P[lo:hi]
                    penalty += 0.5 * alpha * float(np.vdot(P, P))
                    self.G[0][lo:hi] += alpha * P
        with np.errstate(over="ignore", invalid="ignore"):
            return float(np.vdot(G, G)), penalty

    def update(self, grad_norm):
        """Phase 3: the optimiser's update of each slice (guarded, see the module)."""
        opt = self.optimizer
        if self.moments is None:
            return guarded_step(opt, self.params, self.grads[0])
        opt.t += 1
        if isinstance(opt, Adam):
            step_size, eps_hat = opt.folded_corrections()
        bound = max_update(opt, grad_norm)
        self.headroom -= bound
        backup = self.P.copy() if self.headroom <= 0 else None

        def update_slice(w):
            s = self.slices[w]
            for a in range(s.start, s.stop, UPDATE_CHUNK):  # a chunk's arrays stay in cache
                c = slice(a, min(a + UPDATE_CHUNK, s.stop))
                if isinstance(opt, Adam):
                    opt.update(self.P[c], self.G[0][c], self.moments[0][c], self.moments[1][c],
                               step_size, eps_hat, self.scratch[w][:c.stop - c.start])
                else:
                    opt.update(self.P[c], self.G[0][c], self.moments[0][c],
                               self.scratch[w][:c.stop - c.start])

        self.team.run(update_slice)
        if backup is not None:
            if not norm_is_finite(self.P) and not np.isfinite(self.P).all():
                np.copyto(self.P, backup)
                return "the update made a parameter overflow to infinity"
            with np.errstate(over="ignore"):
                self.headroom = float(np.finfo(self.dtype).max) / 2 - float(np.abs(self.P).max())
        return None
