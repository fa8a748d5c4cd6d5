"""The training loop: minibatches, history, progress, checkpoints and resume.

It knows a model only by ``params``, ``_loss_and_grads(X, eps=None)`` (the
loss on a checked batch), its generator ``rng`` and, if it has one,
``begin_epoch(epoch)`` (the VAE's KL warm-up).  One epoch:

1. draw a permutation of the rows from the model's generator;
2. for each batch, gather its rows into a reusable buffer (no copy of the
   data set), compute the loss and gradients, and take one optimiser step;
3. record the mean training loss (and the validation loss) in ``history``.

Nothing is updated with a non-finite loss or gradient (or one too large to
square), and an update that would make a parameter infinite is undone:
``fit`` stops with a ``FloatingPointError`` naming the epoch and batch,
leaving the parameters of the last good step.  Ctrl-C stops at the next
batch boundary (saving a checkpoint if asked) and leaves a usable model.
"""

import math
import os
import signal
import sys
import threading
import time

import numpy as np

from .layers import rng_from
from .optim import Adam


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


class _InterruptFlag:
    """Turn Ctrl-C into a flag checked at batch boundaries (main thread only)."""

    def __init__(self):
        self.raised = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.raised:  # a second Ctrl-C: stop right now
            raise KeyboardInterrupt
        self.raised = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class Progress:
    """A one-line progress bar on a terminal; one plain line per epoch otherwise."""

    def __init__(self, epochs, n_batches, n_samples, verbose, stream=None):
        self.epochs, self.n_batches, self.n_samples = epochs, n_batches, n_samples
        self.stream = stream or sys.stdout
        self.verbose = verbose
        self.bar = verbose >= 1 and getattr(self.stream, "isatty", lambda: False)()
        self._last = 0.0

    def start_epoch(self, epoch):
        self.epoch, self.t0 = epoch, time.perf_counter()

    def batch(self, done_batches, done_samples, running_loss):
        now = time.perf_counter()
        if not self.bar or (now - self._last < 0.1 and done_batches < self.n_batches):
            return
        self._last = now
        elapsed = now - self.t0
        rate = done_samples / elapsed if elapsed > 0 else 0.0
        left = (self.n_samples - done_samples) / rate if rate > 0 else 0.0
        width = 24
        filled = int(width * done_batches / self.n_batches)
        self.stream.write(
            f"\repoch {self.epoch + 1}/{self.epochs} [{'#' * filled}{'.' * (width - filled)}] "
            f"{done_batches}/{self.n_batches} · {rate:,.0f} samples/s · loss {running_loss:.4f} · "
            f"{left:.0f}s left ")
        self.stream.flush()

    def end_epoch(self, history):
        if self.verbose < 1:
            return
        line = (f"epoch {self.epoch + 1}/{self.epochs}  loss {history['loss'][-1]:.4f}"
                + (f"  val_loss {history['val_loss'][-1]:.4f}" if "val_loss" in history else "")
                + f"  ({time.perf_counter() - self.t0:.1f}s)")
        self.stream.write(("\r\033[K" if self.bar else "") + line + "\n")
        self.stream.flush()


def fit(model, X, *, epochs=10, batch_size=128, optimizer=None, validation_data=None,
        shuffle=True, seed=None, verbose=1, checkpoint=None, checkpoint_every=1, resume=None):
    """Train ``model`` on ``X``; the body of ``model.fit`` (see there for the arguments).

    Checkpoints hold the parameters, the optimiser's state, the model's
    generator state and the position in training (epoch, batch and that
    epoch's permutation), so ``resume`` ends bit-identical to a run that was
    never interrupted.  Every argument (and the checkpoint to resume from) is
    checked before anything changes: a refused call leaves the model as it was.
    """
    from . import io  # io builds models, which import this module

    epochs = _check_positive_int("epochs", epochs)
    batch_size = _check_positive_int("batch_size", batch_size)
    checkpoint_every = _check_positive_int("checkpoint_every", checkpoint_every)
    if not isinstance(verbose, (bool, int, np.integer)):
        raise TypeError(f"verbose must be an int, got {type(verbose).__name__}")
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
    shuffle = bool(shuffle)
    if optimizer is None:
        optimizer = Adam(1e-3)
    elif not callable(getattr(optimizer, "step", None)):
        raise TypeError(f"optimizer must have a step(params, grads) method, got {optimizer!r}")
    rng = None if seed is None else rng_from(seed)
    if checkpoint is not None:
        checkpoint = _check_output_path("checkpoint", checkpoint)
    X = model._checked(X)
    X_val = None
    if validation_data is not None:
        if isinstance(validation_data, tuple):
            if not 1 <= len(validation_data) <= 2:
                raise ValueError("validation_data must be X_val or a tuple (X_val, y_val), "
                                 f"got a tuple of {len(validation_data)} items")
            validation_data = validation_data[0]
        X_val = model._checked(validation_data, name="validation_data")
    n = X.shape[0]
    batch_size = min(batch_size, n)  # a batch larger than the data set is the whole data set
    n_batches = math.ceil(n / batch_size)
    setup = {"n_samples": n, "batch_size": batch_size, "shuffle": shuffle,
             "validation": X_val is not None}

    state = {"epoch": 0, "batch": 0, "order": None, "loss_sum": 0.0}
    history = {"loss": []} if X_val is None else {"loss": [], "val_loss": []}
    if resume is not None:
        saved = io.load_checkpoint(resume, model, optimizer, setup=setup)  # checks, then restores
        state.update(saved["position"])
        history = saved["history"]
    elif rng is not None:
        model.rng = rng
    model.history = history
    model.interrupted = False

    params = model.params
    before_step = {name: np.empty_like(p) for name, p in params.items()}
    batch_buffer = np.empty((batch_size,) + X.shape[1:], dtype=X.dtype)
    progress = Progress(epochs, n_batches, n, verbose)

    def save_checkpoint():
        if checkpoint is not None:
            io.save_checkpoint(checkpoint, model, optimizer, position=state, history=history,
                               setup=setup)

    with _InterruptFlag() as interrupt:
        while state["epoch"] < epochs:
            epoch = state["epoch"]
            if state["batch"] == 0:  # a new epoch (or one interrupted before its first step)
                state["loss_sum"] = 0.0
                if shuffle and state["order"] is None:
                    state["order"] = model.rng.permutation(n)
            order = state["order"]
            if hasattr(model, "begin_epoch"):
                model.begin_epoch(epoch)
            progress.start_epoch(epoch)
            for b in range(state["batch"], n_batches):
                if interrupt.raised:
                    model.interrupted = True
                    save_checkpoint()
                    if verbose:
                        print(f"\ninterrupted at epoch {epoch + 1}, batch {b + 1}: "
                              f"stopping with the last completed step"
                              + (f"; resume from {checkpoint}" if checkpoint is not None else ""),
                              file=sys.stderr)
                    return model
                start, stop = b * batch_size, min((b + 1) * batch_size, n)
                if order is None:
                    batch = X[start:stop]
                else:
                    batch = np.take(X, order[start:stop], axis=0, out=batch_buffer[: stop - start])
                loss, grads = model._loss_and_grads(batch)
                problem = _numerical_problem(loss, grads)
                if problem is None:
                    problem = _take_step(optimizer, params, grads, before_step)
                if problem is not None:
                    raise FloatingPointError(
                        f"training diverged at epoch {epoch + 1}, batch {b + 1}: {problem}; the model "
                        f"keeps the parameters of the last finite step. Try a smaller learning rate "
                        f"(optimizer={optimizer!r}).")
                state["loss_sum"] += loss * (stop - start)
                state["batch"] = b + 1
                progress.batch(b + 1, stop, state["loss_sum"] / stop)
            history["loss"].append(state["loss_sum"] / n)
            if X_val is not None:
                history["val_loss"].append(validation_loss(model, X_val))
            state.update(epoch=epoch + 1, batch=0, order=None, loss_sum=0.0)
            progress.end_epoch(history)
            if (epoch + 1) % checkpoint_every == 0 or epoch + 1 == epochs:
                save_checkpoint()
    return model


def _numerical_problem(loss, grads):
    """Why this step must not be taken, or None.

    A gradient entry beyond √(largest float) is refused as well as NaN and
    infinity: its square (Adam's second moment) would overflow, and no
    training that has not diverged produces one.  The test is one BLAS dot
    product per array, ``Σ g²``, which is finite exactly when no entry is NaN
    or infinite and the gradient's norm is below √(largest float); only when
    it fails are the entries looked at, to say which.
    """
    if not math.isfinite(loss):
        return f"the loss is {loss}"
    for name, g in grads.items():
        if _norm_is_finite(g):
            continue
        low, high = g.min(), g.max()
        if not (math.isfinite(low) and math.isfinite(high)):
            return f"the gradient of {name!r} is not finite"
        return (f"the gradient of {name!r} reached a norm of {np.linalg.norm(g.astype(np.float64)):.3g}, "
                f"too large to square in {g.dtype}")
    return None


def _norm_is_finite(a):
    """Σ a² is finite: no NaN or infinity in ``a`` and ‖a‖ < √(largest float)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return math.isfinite(np.vdot(a, a))


def _take_step(optimizer, params, grads, before_step):
    """``optimizer.step(params, grads)``, undone if it is interrupted or overflows.

    The parameters are copied into ``before_step`` first (one copy per step,
    small next to a forward and backward pass), so an update that turns a
    parameter infinite, or a second Ctrl-C in the middle of the update, leaves
    the parameters of the last good step.  (The optimiser's own moments keep
    the failed update.)  Returns None, or what went wrong.
    """
    for name, p in params.items():
        np.copyto(before_step[name], p)
    try:
        optimizer.step(params, grads)
    except BaseException:
        _restore(params, before_step)
        raise
    if not all(_norm_is_finite(p) or np.isfinite(p).all() for p in params.values()):
        _restore(params, before_step)
        return "the update made a parameter overflow to infinity"
    return None


def _restore(params, saved):
    for name, p in params.items():
        np.copyto(p, saved[name])


def _check_output_path(name, path):
    """A file path that can be written: its folder exists and it is not itself a folder."""
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"{name} must be a file path, got {type(path).__name__}") from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"{name} must be a file path, but {path} is a folder")
    if not os.path.isdir(folder):
        raise ValueError(f"{name}: cannot write {path}, the folder {folder} does not exist")
    return path


def validation_loss(model, X_val, *, seed=0):
    """The loss on held-out data, with the model's noise drawn from a fixed seed so
    epochs are compared on the same draws (the model's own generator is untouched)."""
    own_rng = model.rng
    model.rng = np.random.default_rng(seed)
    try:
        return model.average_loss(X_val)
    finally:
        model.rng = own_rng
