"""The training loop: shuffled minibatches, history, early stopping, checkpoints and signals.

The loop knows a model only by this protocol, which both npae models follow:

* ``model.params`` — dict name → live parameter array, updated in place;
* ``model.draw_noise(n, rng)`` — the noise ``eps`` of a batch of n rows, or None;
* a step, ``step(X, eps, weights) → (loss, problem)``, which takes one batch's step of the
  model and its optimiser (:mod:`npae.training.step`), on a batch that is already a
  C-contiguous array of the model's dtype, its values checked;
* ``model.average_loss(X, rng=...)`` — the loss on any number of rows (validation);
* ``model.loss_weights(epoch)`` — what the loss of a training step weighs in that epoch (the
  VAE's β during its KL warm-up), handed to each step; validation, and everything after the
  run, use the objective's own weights;
* ``model.get_params()``, ``model.architecture()`` and the fitted attributes
  ``n_features_in_``, ``dtype_`` and ``history_``, through which
  :mod:`npae.files.model_records` writes the model's part of a checkpoint and checks that a
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
consistent, so a process that was told to end still ends.  A signal that arrives
during the last batch, the last validation or the final save is not lost: the
run ends as it would have, then stops in the same way (a one-batch ``partial_fit``
honours SIGTERM too).  A second signal stops at once.
"""


import numpy as np

from ..data import batches
from . import schedules
from .checkpoints import save_checkpoint
from .progress import Progress
from .signals import StopAtBatchBoundary, Terminated
from .state import setup_of
from .step import Step
from .team import how_many


def run(model, rows, state, *, epochs, batch_size, n_jobs=1, shuffle=True, verbose=0,
        validation=None, patience=None, checkpoint=None, checkpoint_every=1, data_range=None,
        lr_schedule=None, base_lr=None, callbacks=()):
    """Train ``model`` on ``rows`` (a :class:`npae.data.batches.Rows`) until ``state.epoch == epochs``.

    Each batch is one :class:`~npae.training.step.Step` on ``n_jobs`` threads (as
    :func:`npae.training.team.how_many` decides for None): ``step(X, eps, weights) ->
    (loss, problem)``, ``problem`` None or why the step was refused.

    ``validation``: held-out rows (an array-like) scored each epoch as
    ``val_loss``; ``patience``: stop when ``val_loss`` has not improved for
    that many epochs, then restore the parameters of the best epoch.
    ``checkpoint``: a path written every ``checkpoint_every`` epochs, at the
    end, and when a signal stops the run.  ``data_range`` ``(low, high)``
    goes into the message if the run diverges.  ``lr_schedule`` sets the optimiser's rate at
    the start of each epoch, from ``base_lr``; ``callbacks`` are called after each, and stop the run when one
    returns True (:mod:`npae.training.schedules`).  Returns ``state``.
    """
    params = model.params
    dtype = next(iter(params.values())).dtype
    batch_size = min(batch_size, max(rows.block_sizes))
    threads = how_many(n_jobs, batch_size * sum(p.size for p in params.values()), batch_size)
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

    with Step(model, state.optimizer, batch_size, threads) as step, \
            StopAtBatchBoundary() as signals:
        while state.epoch < epochs:
            if state.plan is None:  # a new epoch
                state.plan = batches.epoch_plan(rows, state.rng, shuffle)
                state.block = state.batch = state.rows_done = 0
                state.loss_sum, state.order = 0.0, None
                if lr_schedule is not None:
                    state.optimizer.lr = schedules.rate(lr_schedule, base_lr, state.epoch + 1,
                                                        state.history, epochs)
            weights = model.loss_weights(state.epoch)
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
                        loss, problem = step(X, noise, weights)
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
            asked = bool(callbacks) and schedules.call_back(callbacks, model, state)
            if done or asked or state.epoch % checkpoint_every == 0 or state.epoch == epochs:
                save()
            if asked and not done:
                state.stopped = "callback"
                progress.say(f"a callback stopped training after epoch {state.epoch}")
                break
            if done:
                state.stopped = "early stopping"
                progress.say(f"early stopping: val_loss has not improved for {patience} epochs; "
                             f"restoring epoch {state.best['epoch']}")
                break
        if signals.caught:  # during the last batch, the last validation or the last save
            state.stopped = signals.caught
            progress.say(f"{signals.caught}: arrived as the run ended; the run is complete"
                         + (f", and so is {checkpoint}" if checkpoint else ""))
    if patience is not None and state.best is not None:
        for name, p in params.items():
            np.copyto(p, state.best["params"][name])
    if state.stopped == "SIGTERM":
        raise Terminated()
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
