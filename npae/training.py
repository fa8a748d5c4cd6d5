"""The training loop: minibatches, history, progress, checkpoints and resume.

It knows a model only by ``params``, ``_loss_and_grads(X, eps=None)`` (the
loss on a checked batch), its generator ``rng`` and, if it has one,
``begin_epoch(epoch)`` (the VAE's KL warm-up).  One epoch:

1. draw a permutation of the rows from the model's generator;
2. for each batch, gather its rows into a reusable buffer (no copy of the
   data set), compute the loss and gradients, and take one optimiser step;
3. record the mean training loss (and the validation loss) in ``history``.

Nothing is updated with a non-finite loss or gradient: ``fit`` stops with a
``FloatingPointError`` naming the epoch and batch, leaving the parameters of
the last good step.  Ctrl-C stops at the next batch boundary (saving a
checkpoint if asked) and leaves a usable model.
"""

import math
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
    never interrupted.
    """
    from . import io  # io builds models, which import this module

    epochs = _check_positive_int("epochs", epochs)
    batch_size = _check_positive_int("batch_size", batch_size)
    checkpoint_every = _check_positive_int("checkpoint_every", checkpoint_every)
    if not isinstance(verbose, (int, bool)):
        raise TypeError(f"verbose must be an int, got {type(verbose).__name__}")
    if optimizer is None:
        optimizer = Adam(1e-3)
    elif not callable(getattr(optimizer, "step", None)):
        raise TypeError(f"optimizer must have a step(params, grads) method, got {optimizer!r}")
    X = model._checked(X)
    X_val = None
    if validation_data is not None:
        X_val = validation_data[0] if isinstance(validation_data, tuple) else validation_data
        X_val = model._checked(X_val, name="validation_data")
    n = X.shape[0]
    batch_size = min(batch_size, n)  # a batch larger than the data set is the whole data set
    n_batches = math.ceil(n / batch_size)

    state = {"epoch": 0, "batch": 0, "order": None, "loss_sum": 0.0}
    history = {"loss": []} if X_val is None else {"loss": [], "val_loss": []}
    if resume is not None:
        saved = io.load_checkpoint(resume, model, optimizer)
        state.update(saved["position"])
        history = saved["history"]
    elif seed is not None:
        model.rng = rng_from(seed)
    model.history = history
    model.interrupted = False

    params = model.params
    batch_buffer = np.empty((batch_size,) + X.shape[1:], dtype=X.dtype)
    progress = Progress(epochs, n_batches, n, verbose)

    def save_checkpoint():
        if checkpoint is not None:
            io.save_checkpoint(checkpoint, model, optimizer, position=state, history=history)

    with _InterruptFlag() as interrupt:
        while state["epoch"] < epochs:
            epoch = state["epoch"]
            if state["order"] is None:
                state["order"] = model.rng.permutation(n) if shuffle else None
                state["batch"], state["loss_sum"] = 0, 0.0
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
                              f"stopping with the last completed step", file=sys.stderr)
                    return model
                start, stop = b * batch_size, min((b + 1) * batch_size, n)
                if order is None:
                    batch = X[start:stop]
                else:
                    batch = np.take(X, order[start:stop], axis=0, out=batch_buffer[: stop - start])
                loss, grads = model._loss_and_grads(batch)
                if not (math.isfinite(loss) and all(np.isfinite(g.sum()) for g in grads.values())):
                    raise FloatingPointError(
                        f"training diverged at epoch {epoch + 1}, batch {b + 1}: the loss is {loss} "
                        f"(or a gradient is not finite); the model keeps the parameters of the last "
                        f"finite step. Try a smaller learning rate (optimizer={optimizer!r}).")
                optimizer.step(params, grads)
                state["loss_sum"] += loss * (stop - start)
                state["batch"] = b + 1
                progress.batch(b + 1, stop, state["loss_sum"] / stop)
            history["loss"].append(state["loss_sum"] / n)
            if X_val is not None:
                history["val_loss"].append(validation_loss(model, X_val))
            state["epoch"], state["order"] = epoch + 1, None
            progress.end_epoch(history)
            if (epoch + 1) % checkpoint_every == 0 or epoch + 1 == epochs:
                save_checkpoint()
    return model


def validation_loss(model, X_val, *, seed=0):
    """The loss on held-out data, with the model's noise drawn from a fixed seed so
    epochs are compared on the same draws (the model's own generator is untouched)."""
    own_rng = model.rng
    model.rng = np.random.default_rng(seed)
    try:
        return model.average_loss(X_val)
    finally:
        model.rng = own_rng
