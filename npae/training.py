"""The training loop: shuffled minibatches, history, early stopping, checkpoints and signals.

The loop knows a model only by this protocol, which both npae models follow:

* ``model.params`` — dict name → live parameter array, updated in place;
* ``model.draw_noise(n, rng)`` — the noise ``eps`` of a batch of n rows, or None;
* a step, ``step(X, eps) → (loss, problem)``, which takes one batch's step of the model
  and its optimiser (:mod:`npae.steps`), on a batch that is already a C-contiguous array
  of the model's dtype, its values checked;
* ``model.average_loss(X, rng=...)`` — the loss on any number of rows (validation);
* ``model.begin_epoch(epoch)`` — called before each epoch (the VAE's KL warm-up);
* ``model.get_params()``, ``model.architecture()`` and the fitted attributes
  ``n_features_in_``, ``dtype_`` and ``history_``, through which
  :mod:`npae.records` writes the model's part of a checkpoint and checks that a
  checkpoint was written by the same model.

Everything else a run needs is its :class:`TrainingState`: the optimiser, the
generator that draws the shuffles and the noise, the history and the
position (epoch, block, batch, and the permutations in use).  One epoch:

1. draw the order of the data's blocks (one block for an array in memory)
   and, for each block, the order of its rows;
2. for each batch: gather its rows into a reusable buffer, draw its noise, and take the
   step (the loss, the gradients, one update of the optimiser);
3. record the mean training loss (and the validation loss) in the history.

Nothing is updated with a non-finite loss or gradient (or one too large to
square), and an update that makes a parameter infinite is undone: the run
stops with a ``FloatingPointError`` naming the epoch and batch, the model
keeping the parameters of its last good step.  Ctrl-C (SIGINT) and SIGTERM
stop the run at the next batch boundary (:mod:`npae.signals`), saving a
checkpoint if one was asked for; after SIGTERM the run raises
``npae.signals.Terminated`` (a SystemExit with status 143) once the model is
consistent, so a process that was told to end still ends.  A second signal
stops at once.
"""

import math

import numpy as np

from . import batches, checks, files, optim, records
from .progress import Progress
from .signals import StopAtBatchBoundary, Terminated

PARAMETERS = ("epochs", "batch_size", "lr", "shuffle", "verbose", "warm_start", "early_stopping",
              "validation_fraction", "n_iter_no_change", "n_jobs", "seed")
FIT_ARGUMENTS = ("optimizer", "validation_data", "checkpoint", "checkpoint_every", "resume")


def settings(given, overrides):
    """The training hyper-parameters ``given`` (:data:`PARAMETERS`) with ``fit``'s keyword
    ``overrides`` (those, or :data:`FIT_ARGUMENTS`) applied, checked, as a dict; the optimiser
    defaults to ``Adam(lr)``."""
    for name in overrides:
        if name not in given and name not in FIT_ARGUMENTS:
            raise TypeError(f"fit() got an unexpected keyword argument {name!r}")
    given = {**given, **overrides}
    s = {"epochs": checks.positive_int("epochs", given["epochs"]),
         "batch_size": checks.positive_int("batch_size", given["batch_size"]),
         "lr": checks.number("lr", given["lr"], low=0, low_open=True),
         "shuffle": checks.boolean("shuffle", given["shuffle"]),
         "verbose": checks.non_negative_int("verbose", given["verbose"]),
         "warm_start": checks.boolean("warm_start", given["warm_start"]),
         "early_stopping": checks.boolean("early_stopping", given["early_stopping"]),
         "validation_fraction": checks.number("validation_fraction", given["validation_fraction"],
                                              low=0, high=1, low_open=True, high_open=True),
         "n_iter_no_change": checks.positive_int("n_iter_no_change", given["n_iter_no_change"]),
         "n_jobs": given["n_jobs"] if given["n_jobs"] in (None, -1) else checks.positive_int(
             "n_jobs", given["n_jobs"]),
         "seed": given["seed"],
         "checkpoint_every": checks.positive_int("checkpoint_every",
                                                 given.get("checkpoint_every", 1))}
    checks.generators(s["seed"], 1)  # the seed's type, checked now
    optimizer = given.get("optimizer")
    s["optimizer"] = (optim.Adam(s["lr"]) if optimizer is None
                      else checks.callable_with("optimizer", optimizer, "step"))
    s["checkpoint"] = (None if given.get("checkpoint") is None
                       else checks.output_file("checkpoint", given["checkpoint"]))
    s["resume"] = None if given.get("resume") is None else checks.path("resume", given["resume"])
    s["validation_data"] = given.get("validation_data")
    return s


class TrainingState:
    """What a run needs to go on: optimiser, generator, history and position.

    ``epoch`` counts completed epochs; within the current epoch, ``plan`` is
    the order of the blocks (None before the epoch starts), ``block`` the
    position in it, ``order`` the current block's row permutation and
    ``batch`` its completed batches.  ``best`` is early stopping's record:
    ``{"val_loss", "epoch", "waited", "params"}``.  ``stopped`` says why the
    last run stopped early: None, ``"SIGINT"``, ``"SIGTERM"`` or ``"early stopping"``.
    """

    def __init__(self, optimizer, rng):
        self.optimizer, self.rng = optimizer, rng
        self.history = {"loss": []}
        self.epoch, self.block, self.batch = 0, 0, 0
        self.plan = self.order = None
        self.loss_sum, self.rows_done = 0.0, 0
        self.best = None
        self.stopped = None


def run(model, rows, state, step, *, epochs, batch_size, shuffle=True, verbose=0,
        validation=None, patience=None, checkpoint=None, checkpoint_every=1, data_range=None):
    """Train ``model`` on ``rows`` (a :class:`npae.batches.Rows`) until ``state.epoch == epochs``.

    ``step(X, eps) -> (loss, problem)`` takes one batch's step (:mod:`npae.steps`: the model's
    reference step or its fast one); ``problem`` is None or why the step was refused.

    ``validation``: held-out rows (an array-like) scored each epoch as
    ``val_loss``; ``patience``: stop when ``val_loss`` has not improved for
    that many epochs, then restore the parameters of the best epoch.
    ``checkpoint``: a path written every ``checkpoint_every`` epochs, at the
    end, and when a signal stops the run.  ``data_range`` ``(low, high)``
    goes into the message if the run diverges.  Returns ``state``.
    """
    params = model.params
    dtype = next(iter(params.values())).dtype
    batch_size = min(batch_size, max(rows.block_sizes))
    buffer = np.empty((batch_size, rows.n_features), dtype=dtype)
    epoch_batches = sum(batches.n_batches(n, batch_size) for n in rows.block_sizes)
    progress = Progress(epochs, epoch_batches, rows.n_rows, verbose)
    setup = setup_of(rows, batch_size, shuffle, validation is not None)
    if validation is not None:
        state.history.setdefault("val_loss", [])
    state.stopped = None

    def save():
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, state, setup)

    with StopAtBatchBoundary() as signals:
        while state.epoch < epochs:
            if state.plan is None:  # a new epoch
                state.plan = batches.epoch_plan(rows, state.rng, shuffle)
                state.block = state.batch = state.rows_done = 0
                state.loss_sum, state.order = 0.0, None
            model.begin_epoch(state.epoch)
            progress.start_epoch(state.epoch)
            while state.block < len(state.plan):
                b = int(state.plan[state.block])
                n = rows.block_sizes[b]
                upcoming = state.plan[state.block + 1:state.block + 2]
                block = rows.block(b, then=int(upcoming[0]) if len(upcoming) else None)
                if state.batch == 0 and state.order is None:
                    state.order = batches.block_order(n, state.rng, shuffle)
                for k in range(state.batch, batches.n_batches(n, batch_size)):
                    if signals.caught:
                        state.stopped = signals.caught
                        save()
                        progress.say(f"{signals.caught}: stopped in epoch {state.epoch + 1} with "
                                     "the last completed step"
                                     + (f"; resume from {checkpoint}" if checkpoint else ""))
                        if signals.caught == "SIGTERM":
                            raise Terminated()
                        return state
                    positions = batches.batch_positions(state.order, k, batch_size, n)
                    X = rows.gather(block, positions, buffer)
                    noise = model.draw_noise(len(X), state.rng)
                    signals.begin_step()       # a second signal waits for the step's end
                    try:
                        loss, problem = step(X, noise)
                    finally:
                        signals.end_step()
                    if problem:
                        raise FloatingPointError(_diverged(state, problem, data_range))
                    state.loss_sum += loss * len(X)
                    state.rows_done += len(X)
                    state.batch = k + 1
                    progress.batch(_batches_done(state, rows, batch_size), state.rows_done,
                                   state.loss_sum / state.rows_done)
                state.block, state.batch, state.order = state.block + 1, 0, None
            state.history["loss"].append(state.loss_sum / state.rows_done)
            if validation is not None:
                state.history["val_loss"].append(float(model.average_loss(
                    validation, rng=np.random.default_rng(0))))
            state.epoch, state.plan, state.block = state.epoch + 1, None, 0
            improved = patience is not None and _track_best(state, params)
            progress.end_epoch(state.history, "  (best so far)" if improved else "")
            done = patience is not None and state.best["waited"] >= patience
            if done or state.epoch % checkpoint_every == 0 or state.epoch == epochs:
                save()
            if done:
                state.stopped = "early stopping"
                progress.say(f"early stopping: val_loss has not improved for {patience} epochs; "
                             f"restoring epoch {state.best['epoch']}")
                break
    if patience is not None and state.best is not None:
        for name, p in params.items():
            np.copyto(p, state.best["params"][name])
    return state


def _batches_done(state, rows, batch_size):
    done = state.plan[:state.block]
    return sum(batches.n_batches(rows.block_sizes[int(b)], batch_size) for b in done) + state.batch


def _track_best(state, params):
    """Early stopping's record after an epoch; True when this epoch is the best so far."""
    val_loss = state.history["val_loss"][-1]
    if state.best is None or val_loss < state.best["val_loss"]:
        state.best = {"val_loss": val_loss, "epoch": state.epoch, "waited": 0,
                      "params": {name: p.copy() for name, p in params.items()}}
        return True
    state.best["waited"] += 1
    return False


def _diverged(state, problem, data_range):
    where = f"training diverged at epoch {state.epoch + 1}, batch {state.batch + 1}: {problem}"
    advice = (f"; the model keeps the parameters of its last finite step. Try a smaller "
              f"learning rate (optimizer={state.optimizer!r})")
    if data_range is not None and max(abs(data_range[0]), abs(data_range[1])) > 1e4:
        advice += (f", and standardise the data: it spans [{data_range[0]:.3g}, "
                   f"{data_range[1]:.3g}], a scale at which the losses overflow (e.g. "
                   "scikit-learn's StandardScaler)")
    return where + advice


# -- checkpoints -----------------------------------------------------------------
def save_checkpoint(path, model, state, setup):
    """The model's record, the optimiser, the generator, the history and the position, in one file.

    ``setup`` records what the position refers to (rows, blocks, batch size,
    shuffling, validation); :func:`load_checkpoint` compares it.  The file is
    also a model file: ``npae.load`` reads the model from it.
    """
    meta, arrays = records.model_record(model)
    meta["fitted"]["history"] = state.history  # the run's, up to this point
    numbers, moments = optim.to_record(state.optimizer)
    meta["optimizer"] = numbers
    arrays.update({f"optim/{key}": value for key, value in moments.items()})
    best = state.best
    meta["training"] = {
        "epoch": state.epoch, "block": state.block, "batch": state.batch,
        "loss_sum": state.loss_sum, "rows_done": state.rows_done,
        "rng": state.rng.bit_generator.state, "history": state.history, "setup": setup,
        "best": None if best is None else {k: best[k] for k in ("val_loss", "epoch", "waited")}}
    if state.plan is not None:
        arrays["train/plan"] = np.asarray(state.plan, dtype=np.int64)
    if state.order is not None:
        arrays["train/order"] = np.asarray(state.order, dtype=np.int64)
    if best is not None:
        arrays.update({f"best/{name}": value for name, value in best["params"].items()})
    files.write_archive(path, arrays, meta)


def load_checkpoint(path, model, optimizer, setup):
    """Read a checkpoint of ``model`` written by a run with the same ``setup``.

    Everything is read and checked first, then the model's parameters are
    restored in place; returns the :class:`TrainingState` to continue with.
    A refused checkpoint (ValueError saying why) changes nothing.
    """
    path = checks.path("resume", path)
    params = model.params
    with files.Archive(path) as archive:
        meta = archive.metadata()
        training = meta.get("training")
        if not isinstance(training, dict):
            raise ValueError(f"{path}: this is a model file, not a checkpoint (no training state)")
        try:
            records.check_same_model(model, meta)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        saved = {name: archive.array(f"param/{name}", p.shape, p.dtype) for name, p in params.items()}
        moments = {name[len("optim/"):] for name in archive.names if name.startswith("optim/")}
        try:
            restored = optim.from_record(meta.get("optimizer"), moments,
                                         lambda key, shape, dtype: archive.array(f"optim/{key}",
                                                                                 shape, dtype),
                                         params)
        except files.FileRefused:
            raise
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        if type(restored) is not type(optimizer):
            raise ValueError(f"{path}: the checkpoint's optimiser ({restored!r}) is not a "
                             f"{type(optimizer).__name__}")
        try:
            rng = checks.generator_from_state(training.get("rng"))
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        state = TrainingState(optimizer, rng)
        _read_position(state, training, archive, setup, params, path)
        unknown = archive.names - {f"param/{n}" for n in params} - {f"optim/{m}" for m in moments} \
            - {f"best/{n}" for n in params} - {"train/plan", "train/order"}
        if unknown:
            raise ValueError(f"{path}: unexpected members {sorted(unknown)}")
    for name, p in params.items():
        if not np.isfinite(saved[name]).all():
            raise ValueError(f"{path}: parameter {name!r} holds NaN or infinity")
    for name, p in params.items():
        p[...] = saved[name]
    optimizer.load_state_dict(restored.state_dict())  # the caller's optimiser, restored in place
    return state


def _read_position(state, training, archive, setup, params, path):
    """Fill ``state``'s history and position from a checkpoint's training record, checked."""
    def need(ok, what):
        if not ok:
            raise ValueError(f"{path}: its training state is invalid: {what}")

    for key in ("epoch", "block", "batch", "rows_done"):
        need(type(training.get(key)) is int and 0 <= training[key] < 2**62,
             f"{key!r} must be a non-negative int")
    need(type(training.get("loss_sum")) in (int, float) and math.isfinite(training["loss_sum"]),
         "'loss_sum' must be a finite number")
    history = training.get("history")
    need(is_history(history) and "loss" in history, "'history' must map names to lists of numbers")
    saved_setup = training.get("setup")
    need(isinstance(saved_setup, dict), "'setup' must be an object")
    for key, value in setup.items():
        if saved_setup.get(key) != value:
            raise ValueError(f"{path}: the checkpoint was written with {key}={saved_setup.get(key)!r}, "
                             f"but this run has {key}={value!r}; resume with the same data and settings")
    need(len(history["loss"]) == training["epoch"], "its history does not have one loss per epoch")
    need(("val_loss" in history) == setup["validation"] or not history.get("val_loss"),
         "validation losses do not match the run's validation data")
    n_blocks = len(setup["block_sizes"])
    if "train/plan" in archive.names:
        plan = archive.array("train/plan", (n_blocks,), np.int64)
        need(np.array_equal(np.sort(plan), np.arange(n_blocks)), "the block order is not a permutation")
        need(training["block"] < n_blocks, "its position is past the end of an epoch")
        state.plan = plan.astype(np.intp)
    else:
        need(training["block"] == training["batch"] == 0, "a position without a block order")
    if "train/order" in archive.names:
        need(state.plan is not None and setup["shuffle"], "a row permutation without a shuffled epoch")
        n = setup["block_sizes"][int(state.plan[training["block"]])]
        order = archive.array("train/order", (n,), np.int64)
        need(np.array_equal(np.sort(order), np.arange(n)), "its permutation is not a permutation")
        need(training["batch"] < math.ceil(n / setup["batch_size"]),
             "its position is past the end of a block")
        state.order = order.astype(np.intp)
    else:
        need(training["batch"] == 0 or not setup["shuffle"], "a position mid-block without a permutation")
    best = training.get("best")
    if best is not None:
        need(isinstance(best, dict) and type(best.get("epoch")) is int
             and type(best.get("waited")) is int and type(best.get("val_loss")) in (int, float),
             "'best' must hold val_loss, epoch and waited")
        state.best = dict(best, params={name: archive.array(f"best/{name}", p.shape, p.dtype)
                                        for name, p in params.items()})
    state.history = {key: list(values) for key, values in history.items()}
    state.epoch, state.block, state.batch = training["epoch"], training["block"], training["batch"]
    state.loss_sum, state.rows_done = float(training["loss_sum"]), training["rows_done"]


def is_history(history):
    """A history: a dict of names to lists of numbers."""
    return isinstance(history, dict) and all(
        isinstance(k, str) and isinstance(v, list) and all(type(x) in (int, float) for x in v)
        for k, v in history.items())


def setup_of(rows, batch_size, shuffle, validation):
    """What a run's position refers to, as a checkpoint records it and a resume compares it."""
    return {"n_samples": rows.n_rows, "block_sizes": list(rows.block_sizes),
            "batch_size": min(batch_size, max(rows.block_sizes)), "shuffle": bool(shuffle),
            "validation": bool(validation)}
