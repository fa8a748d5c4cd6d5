"""The loop, opened: learning-rate schedules, callbacks after each epoch, and convergence.

**Schedules.**  ``fit(X, lr_schedule=...)`` sets the optimiser's learning rate at the start of
every epoch to ``rate(epoch, history)``, where ``epoch`` counts from 1 and ``history`` is the
run's ``{"loss": [...], "val_loss": [...]}`` so far.  It is a function of those alone, so a
checkpoint — which holds the history and the optimiser with the rate in use — resumes
bit-identically, given the same schedule again.  ``lr_schedule`` is a callable
``f(epoch) → learning rate``, or one of (η₀ the model's ``lr``, e the epoch):

=================  =====================================================================
``"constant"``     η₀
``"invscaling"``   η₀ / e^0.5 (scikit-learn's MLP with ``power_t=0.5``)
``"step"``         η₀ · 0.5^⌊(e − 1) / 10⌋: halved every ten epochs
``"cosine"``       η₀ · ½ (1 + cos(π (e − 1) / E)), E the run's epochs (SGDR without restarts)
``"adaptive"``     η₀ / 5ᵏ, k the number of times the loss (``val_loss`` when there is
                   validation data) has gone two epochs without improving by ``TOL``
                   (relative) on its best — scikit-learn's MLP ``learning_rate="adaptive"``
=================  =====================================================================

**Callbacks.**  ``fit(X, callbacks=[f, ...])`` calls each ``f(model, record)`` after each
epoch, ``record`` a dict with ``epoch`` (from 1), ``loss``, ``lr`` and, with validation data,
``val_loss``.  A callback that returns True stops training after that epoch (all callbacks of
the epoch are still called).

**Settings between ``partial_fit`` calls.**  :func:`continue_with`: ``set_params(lr=...)``
takes effect at the next call (the optimiser's rate is set; its moments are kept).  ``seed``
cannot change mid-training (the run's generator goes on): a warning says so.  The network's
own settings (sizes, activations, likelihood, ``dtype``) need a new ``fit``: refused.

**Convergence.**  :func:`warn_if_improving` warns with :class:`ConvergenceWarning` when ``fit``
ran all its epochs and the last ones were still clearly lowering the loss, as scikit-learn's
MLP does when it reaches ``max_iter``.  "Clearly" is measured against the run itself, not the
loss's size (a Bernoulli loss on continuous data has a large floor it never goes below): over
the last third of the epochs, the loss's trend is falling beyond its epoch-to-epoch noise
(t < −3) by at least 2% of all it fell since the first epoch.
"""

import math
import numbers
import warnings

from .. import checks

NAMES = ("constant", "invscaling", "step", "cosine", "adaptive")
TOL = 1e-3          # "adaptive": an improvement smaller than this (relative) does not count
FEWEST = 4          # convergence: the fewest epochs looked at (the last third of the run)
T_CLEAR = -3.0      # convergence: the slope's t-statistic below which the loss is still falling
CLEAR_SHARE = 0.02  # convergence: ... and by at least this share of the run's whole fall


class ConvergenceWarning(UserWarning):
    """Training stopped while the loss was still clearly falling: train for more epochs.
    (npae's own class, named as scikit-learn's; catch either by ``UserWarning``.)"""


def checked(schedule):
    """``lr_schedule`` checked: None, a callable, or one of :data:`NAMES`."""
    if schedule is None or callable(schedule):
        return schedule
    return checks.one_of("lr_schedule", schedule, NAMES)


def rate(schedule, lr, epoch, history, epochs):
    """The learning rate of ``epoch`` (from 1) under ``schedule`` with base rate ``lr``."""
    if callable(schedule):
        value = schedule(epoch)
        if (not isinstance(value, numbers.Real) or isinstance(value, bool)
                or not math.isfinite(value) or value <= 0):
            raise ValueError(f"lr_schedule({epoch}) must be a positive number, got {value!r}")
        return float(value)
    if schedule in (None, "constant"):
        return lr
    if schedule == "invscaling":
        return lr / math.sqrt(epoch)
    if schedule == "step":
        return lr * 0.5 ** ((epoch - 1) // 10)
    if schedule == "cosine":
        return lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / max(epochs, 1)))
    losses = history.get("val_loss") or history.get("loss", [])
    return lr / 5 ** stalls(losses)


def stalls(losses):
    """How many times ``losses`` went two epochs running without improving on its best by
    :data:`TOL` (relative); the count restarts after each stall."""
    count, best, waited = 0, math.inf, 0
    for loss in losses:
        if not math.isfinite(best) or loss < best - TOL * abs(best):
            best, waited = loss, 0
        else:
            waited += 1
            if waited == 2:
                count, waited, best = count + 1, 0, loss
    return count


def began_with(s):
    """What :func:`continue_with` compares: the settings a run began with."""
    return {"lr": s["lr"], "seed": s["seed"]}


def continue_with(state, s, owner):
    """Apply to a run's ``state`` the settings ``s`` of a later ``partial_fit`` call."""
    began = state.began_with or began_with(s)
    if s["lr"] != began["lr"] and hasattr(state.optimizer, "lr"):
        state.optimizer.lr = s["lr"]
    if s["seed"] != began["seed"]:
        warnings.warn(f"{owner}: seed changed from {began['seed']!r} to {s['seed']!r} during "
                      "training; partial_fit goes on with the run's generator (fit again to "
                      "start from the new seed)", UserWarning, stacklevel=4)
    state.began_with = began_with(s)


def record_of(state):
    """The record handed to callbacks after an epoch."""
    record = {"epoch": state.epoch, "loss": state.history["loss"][-1],
              "lr": getattr(state.optimizer, "lr", None)}
    if state.history.get("val_loss"):
        record["val_loss"] = state.history["val_loss"][-1]
    return record


def call_back(callbacks, model, state):
    """Call every callback with the epoch's record; True when one of them asks to stop."""
    record = record_of(state)
    answers = [callback(model, dict(record)) for callback in callbacks]
    return any(answer is True for answer in answers)


def checked_callbacks(callbacks):
    """``callbacks`` as a tuple of callables (None: none)."""
    if callbacks is None:
        return ()
    if callable(callbacks):
        callbacks = [callbacks]
    callbacks = tuple(callbacks)
    for i, callback in enumerate(callbacks):
        if not callable(callback):
            raise TypeError(f"callbacks[{i}] must be callable as callback(model, record), "
                            f"got {type(callback).__name__}")
    return callbacks


def still_falling(losses):
    """``(t, share)`` of the last third of a run's epoch losses (at least FEWEST of them): the
    t-statistic of their least-squares slope, and the fall that slope makes over them as a
    share of the run's whole fall (first loss − lowest); None for fewer than FEWEST epochs."""
    if len(losses) < FEWEST or not all(math.isfinite(x) for x in losses):
        return None
    last = losses[-max(FEWEST, len(losses) // 3):]
    w = len(last)
    x_mean, y_mean = (w - 1) / 2, sum(last) / w
    sxx = sum((i - x_mean) ** 2 for i in range(w))
    slope = sum((i - x_mean) * (y - y_mean) for i, y in enumerate(last)) / sxx
    residual = sum((y - y_mean - slope * (i - x_mean)) ** 2 for i, y in enumerate(last))
    spread = math.sqrt(residual / (w - 2) / sxx)
    t = slope / spread if spread > 0 else (-math.inf if slope < 0 else 0.0)
    whole = losses[0] - min(losses)
    return t, (-slope * (w - 1) / whole if whole > 0 else 0.0)


def warn_if_improving(losses, owner, epochs, stacklevel=3):
    """:class:`ConvergenceWarning` when the last third of the epochs (at least FEWEST) still
    lowered the loss clearly: a least-squares slope ``T_CLEAR`` standard errors below zero, and
    a fall over them of at least ``CLEAR_SHARE`` of the run's whole fall."""
    found = still_falling(losses)
    if found is None:
        return
    t, share = found
    if t < T_CLEAR and share > CLEAR_SHARE:
        warnings.warn(f"{owner}: the loss was still falling after {epochs} epochs (its last "
                      f"epochs gained {100 * share:.0f}% of the whole fall): the model is "
                      "probably undertrained; raise epochs (or use early_stopping=True)",
                      ConvergenceWarning, stacklevel=stacklevel)
