"""The training step: one batch's loss, gradients and update, on flat buffers and a team of threads.

The step knows the model and the optimiser only through their protocols
(:mod:`npae.models.estimator` writes the model's down):

* ``model.parameter_buffer()`` — ``(P, layout)``: every parameter is a view of the flat array P;
* ``model.batch_loss(X, eps, work, grads, scale, weights)`` — the loss of the rows X times
  ``scale``, its gradients written into ``grads`` (views of a flat buffer laid out as P), every
  intermediate array in the workspace ``work``; the model's one spelling of its math;
* ``model.noise_rows(eps, rows)`` — the noise of some rows; ``model.rows_coupled`` — True when
  a row's loss depends on the other rows of its batch (then the batch is not cut);
* ``model.alpha`` — the L2 penalty's weight (on the layout's ``….W`` arrays);
* ``optimizer.updates_slices`` (True), ``optimizer.begin_step(layout, dtype)``,
  ``optimizer.update_slice(P, G, where, scratch)`` and ``optimizer.max_step(grad_norm)``
  (:mod:`npae.nn.optim`); any other optimiser — or a subclass that changes ``step`` — is run
  through its ``step(params, grads)`` on dicts, guarded.

A step has three phases, each on every thread of the team (:mod:`npae.training.team`):

1. the model's ``batch_loss`` on each part of the batch, into the part's own gradient buffer,
   with ``scale`` = 1/n of the whole batch, so the parts' buffers add up to the batch's gradient
   (on one thread, the step calls it on the whole batch itself);
2. on each slice of the flat buffers, one per thread: the parts' gradients summed, the L2
   penalty added (:func:`npae.nn.losses.l2_penalty`), and Σ g²;
3. the optimiser's update of each slice — unless the loss or Σ g² is not finite, or too
   large to square, when nothing is updated and the step says why.

The partition of the batch and of the buffers depends only on the batch size and the number
of threads, so a run is bit-identical to itself for a fixed seed and ``n_jobs``.  Each thread
keeps its workspace and gradient buffer for the whole run: a step allocates nothing.

**The divergence guard.**  No update comes from a loss or gradient that is not finite.  And
no update can overflow a parameter: the optimiser bounds how far one step can move any
parameter (``max_step``: for Adam, by Cauchy–Schwarz on its moments' sums), so while the
largest parameter plus the sum of those bounds stays below half the largest float, nothing is
copied or checked.  Past that (never, at sane learning rates) the parameters are copied
before the update and restored if it overflows.
"""

import math

import numpy as np

from .. import checks
from ..nn.buffers import Workspace
from ..nn.losses import l2_penalty
from ..nn.optim import UPDATE_CHUNK
from .team import Team


class Step:
    """``step(X, eps, weights) → (loss, problem)``: one batch's step of ``model`` and
    ``optimizer`` on ``n_jobs`` threads; ``problem`` is None, or why nothing was updated."""

    def __init__(self, model, optimizer, batch_size, n_jobs):
        self.model, self.optimizer = model, optimizer
        self.P, self.layout = model.parameter_buffer()
        self.params = self.layout.views(self.P)
        self.dtype = self.P.dtype
        self.alpha = checks.number("alpha", model.alpha, low=0)
        self.n_jobs = 1 if model.rows_coupled else max(1, min(n_jobs, batch_size))
        self.G = [np.zeros(self.layout.size, self.dtype) for _ in range(self.n_jobs)]
        self.grads = [self.layout.views(G) for G in self.G]
        self.work = [Workspace(self.dtype) for _ in range(self.n_jobs)]
        self.slices = self.layout.parts(self.n_jobs)
        self.scratch = [np.empty(min(UPDATE_CHUNK, s.stop - s.start), self.dtype)
                        for s in self.slices]
        self.weights = [self.layout.slice(name) for name in self.layout.weight_names()]
        self.flat_update = getattr(optimizer, "updates_slices", False)
        self.headroom = self.room_left()
        self.parts_of = {}
        self.team = Team(self.n_jobs).__enter__()

    def close(self):
        self.team.__exit__(None, None, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def room_left(self):
        with np.errstate(over="ignore"):
            return float(np.finfo(self.dtype).max) / 2 - float(np.abs(self.P).max())

    def row_parts(self, n):
        """The rows of a batch of ``n`` cut into (at most) ``n_jobs`` nearly equal parts."""
        if n not in self.parts_of:
            edges = np.linspace(0, n, min(self.n_jobs, n) + 1).round().astype(int)
            self.parts_of[n] = [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]
        return self.parts_of[n]

    def __call__(self, X, eps, weights=None, *, update=True):
        """The step on batch ``X`` with noise ``eps``: ``(loss, problem)``.  With ``update=False``
        only phases 1 and 2: the batch's gradient is left in ``grads[0]``, nothing updated."""
        parts, scale = self.row_parts(len(X)), 1.0 / len(X)
        model = self.model
        if len(parts) == 1:
            loss = model.batch_loss(X, eps, self.work[0], self.grads[0], scale, weights)
        else:
            loss = sum(self.team.map(model.batch_loss, [
                (X[rows], model.noise_rows(eps, rows), self.work[w], self.grads[w], scale, weights)
                for w, rows in enumerate(parts)]))
        loss = float(loss)
        if not math.isfinite(loss):
            return loss, f"the loss is {loss}"
        sums = self.team.run(lambda w: self.reduce(w, len(parts)))
        loss += sum(s[1] for s in sums)
        squares = sum(s[0] for s in sums)
        if not update:
            return loss, None
        if not math.isfinite(squares):
            return loss, numerical_problem(loss, self.grads[0])
        return loss, self.update(math.sqrt(squares))

    def reduce(self, w, used):
        """Slice w of the batch's gradient: the parts' sum plus α·W; ``(Σ g², penalty)``."""
        s = self.slices[w]
        G = self.G[0][s]
        for other in self.G[1:used]:
            G += other[s]
        penalty = 0.0
        for weights in self.weights if self.alpha else ():
            lo, hi = max(weights.start, s.start), min(weights.stop, s.stop)
            if lo < hi:
                penalty += l2_penalty(self.P[lo:hi], self.G[0][lo:hi], self.alpha)
        with np.errstate(over="ignore", invalid="ignore"):
            return float(np.vdot(G, G)), penalty

    def update(self, grad_norm):
        """Phase 3: the optimiser's update of each slice (guarded, see the module)."""
        opt = self.optimizer
        if not self.flat_update:
            return guarded_step(opt, self.params, self.grads[0])
        opt.begin_step(self.layout, self.dtype)
        self.headroom -= opt.max_step(grad_norm)
        backup = self.P.copy() if self.headroom <= 0 else None
        self.team.run(lambda w: opt.update_slice(self.P, self.G[0], self.slices[w],
                                                 self.scratch[w]))
        if backup is not None:
            if not norm_is_finite(self.P) and not np.isfinite(self.P).all():
                np.copyto(self.P, backup)
                return "the update made a parameter overflow to infinity"
            self.headroom = self.room_left()
        return None


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
