"""Checkpoints: the model, the optimiser, the generator, the history and the position, in one file.

A checkpoint is also a model file (``npae.load`` reads the model from it).  Resuming
from one continues the run bit-identically: the same shuffles, noise and updates as if
it had never stopped.  Everything is read and checked before anything changes.
"""

import math

import numpy as np

from .. import checks
from ..files import model_records
from ..files.archive import Archive, FileRefused
from ..files.atomic import write_archive
from ..nn import optim
from .state import TrainingState, is_history


class CheckpointFailed(OSError):
    """A checkpoint that could not be written (a full disk, say), naming the file: the run
    stops, and the model keeps its last step for the caller to save elsewhere."""


def save_checkpoint(path, model, state, setup):
    """The model's record, the optimiser, the generator, the history and the position, in one file.

    ``setup`` records what the position refers to (rows, blocks, batch size,
    shuffling, validation); :func:`load_checkpoint` compares it.  The file is
    also a model file: ``npae.load`` reads the model from it.
    """
    meta, arrays = model_records.model_record(model)
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
    try:
        write_archive(path, arrays, meta)
    except OSError as exc:
        raise CheckpointFailed(exc.errno, f"cannot write the checkpoint {path} "
                                          f"({exc.strerror or exc}); the model keeps its last "
                                          "step") from exc


def load_checkpoint(path, model, optimizer, setup, *, scheduled=False):
    """Read a checkpoint of ``model`` written by a run with the same ``setup``.

    Everything is read and checked first, then the model's parameters are
    restored in place; returns the :class:`TrainingState` to continue with.
    ``optimizer`` must have the checkpoint's hyper-parameters (its ``lr`` …): a
    resumed run is the run that was stopped, so another ``lr`` is refused, not ignored
    (unless ``scheduled``: a learning-rate schedule sets it again each epoch).
    A refused checkpoint (ValueError saying why) changes nothing.
    """
    path = checks.path("resume", path)
    params = model.params
    with Archive(path) as archive:
        meta = archive.metadata()
        training = meta.get("training")
        if not isinstance(training, dict):
            raise ValueError(f"{path}: this is a model file, not a checkpoint (no training state)")
        try:
            model_records.check_same_model(model, meta)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        saved = {name: archive.array(f"param/{name}", p.shape, p.dtype) for name, p in params.items()}
        moments = {name[len("optim/"):] for name in archive.names if name.startswith("optim/")}
        try:
            restored = optim.from_record(meta.get("optimizer"), moments,
                                         lambda key, shape, dtype: archive.array(f"optim/{key}",
                                                                                 shape, dtype),
                                         params)
        except FileRefused:
            raise
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        if type(restored) is not type(optimizer):
            raise ValueError(f"{path}: the checkpoint's optimiser ({restored!r}) is not a "
                             f"{type(optimizer).__name__}")
        _check_same_hyperparameters(restored, optimizer, path, scheduled)
        try:
            rng = checks.generator_from_state(training.get("rng"))
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        state = TrainingState(optimizer, rng)
        _read_position(state, training, archive, setup, params, path)
        unknown = archive.names - {f"param/{n}" for n in params} - {f"optim/{m}" for m in moments} \
            - {f"best/{n}" for n in params} - {"train/plan", "train/order"}
        if unknown:
            raise ValueError(f"{path}: unexpected members {checks.some(unknown)}")
    for name, p in params.items():
        if not np.isfinite(saved[name]).all():
            raise ValueError(f"{path}: parameter {name!r} holds NaN or infinity")
        if state.best is not None and not np.isfinite(state.best["params"][name]).all():
            raise ValueError(f"{path}: early stopping's best parameter {name!r} holds NaN or "
                             "infinity")
    for name, p in params.items():
        p[...] = saved[name]
    optimizer.load_state_dict(restored.state_dict())  # the caller's optimiser, restored in place
    return state


def _check_same_hyperparameters(saved, given, path, scheduled):
    """A resumed run continues with the checkpoint's optimiser: this call's hyper-parameters
    (``lr``, …) must be the same, or the call is refused rather than silently overruled — all
    but ``lr`` when a learning-rate schedule sets it each epoch (``scheduled``)."""
    ours, theirs = optim.to_record(given)[0], optim.to_record(saved)[0]
    different = [f"{k}={theirs.get(k)!r} there, {v!r} here" for k, v in ours.items()
                 if k != "t" and not (scheduled and k == "lr") and theirs.get(k) != v]
    if different:
        raise ValueError(f"{path}: the checkpoint's optimiser has other hyper-parameters than this "
                         f"call's ({'; '.join(different)}); resume with the same ones, or start a "
                         "new run from the model with warm_start=True")


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
    need(all(len(values) == training["epoch"] for values in history.values()),
         "its history's lists are not all one entry per epoch")
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
        if state.plan is not None:
            n = setup["block_sizes"][int(state.plan[training["block"]])]
            need(training["batch"] < max(1, math.ceil(n / setup["batch_size"])),
                 "its position is past the end of a block")
    best = training.get("best")
    if best is not None:
        need(isinstance(best, dict) and type(best.get("epoch")) is int
             and type(best.get("waited")) is int and type(best.get("val_loss")) in (int, float),
             "'best' must hold val_loss, epoch and waited")
        need(math.isfinite(best["val_loss"]) and 0 <= best["waited"] <= training["epoch"]
             and 0 < best["epoch"] <= training["epoch"], "'best' must be a finite loss of an epoch run")
        state.best = dict(best, params={name: archive.array(f"best/{name}", p.shape, p.dtype)
                                        for name, p in params.items()})
    state.history = {key: list(values) for key, values in history.items()}
    state.epoch, state.block, state.batch = training["epoch"], training["block"], training["batch"]
    state.loss_sum, state.rows_done = float(training["loss_sum"]), training["rows_done"]
