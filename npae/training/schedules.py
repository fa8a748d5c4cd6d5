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
MLP does when it reaches ``max_iter``.
"""

import math
import numbers
import warnings

from .. import checks

NAMES = ("constant", "invscaling", "step", "cosine", "adaptive")
TOL = 1e-3          # "adaptive": an improvement smaller than this (relative) does not count
CLEAR_GAIN = 0.02   # convergence: a relative fall of the loss over the last epochs still "clear"
LAST_EPOCHS = 3     # convergence: how many of the last epochs are looked at


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


def warn_if_improving(losses, owner, epochs, stacklevel=3):
    """:class:`ConvergenceWarning` when the last :data:`LAST_EPOCHS` epochs each lowered the
    loss and together by more than :data:`CLEAR_GAIN` of it."""
    last = losses[-LAST_EPOCHS:]
    if len(last) < LAST_EPOCHS or not all(math.isfinite(x) for x in last):
        return
    falling = all(b < a for a, b in zip(last, last[1:]))
    gain = (last[0] - last[-1]) / max(abs(last[0]), 1e-12)
    if falling and gain > CLEAR_GAIN:
        warnings.warn(f"{owner}: the loss was still falling after {epochs} epochs (by "
                      f"{100 * gain:.1f}% over the last {LAST_EPOCHS - 1}): the model is "
                      "probably undertrained; raise epochs (or use early_stopping=True)",
                      ConvergenceWarning, stacklevel=stacklevel)
