"""A run's settings and its state: what training needs to go on, and what a checkpoint holds.

* :func:`settings` checks the training hyper-parameters (the constructor's, with ``fit``'s
  keyword overrides);
* :class:`TrainingState` is the optimiser, the generator of shuffles and noise, the history
  and the position in the data;
* :func:`setup_of` is what that position refers to, so that a resume can compare it.
"""

from .. import checks
from ..nn import optim
from . import schedules

PARAMETERS = ("epochs", "batch_size", "lr", "shuffle", "verbose", "warm_start", "early_stopping",
              "validation_fraction", "n_iter_no_change", "n_jobs", "seed")
FIT_ARGUMENTS = ("optimizer", "validation_data", "checkpoint", "checkpoint_every", "resume",
                 "lr_schedule", "callbacks")


def settings(given, overrides):
    """The training hyper-parameters ``given`` (:data:`PARAMETERS`) with ``fit``'s keyword
    ``overrides`` (those, or :data:`FIT_ARGUMENTS`) applied, checked, as a dict; the optimiser
    defaults to ``Adam(lr)``."""
    for name in overrides:
        if name not in given and name not in FIT_ARGUMENTS:
            raise TypeError(f"fit() got an unexpected keyword argument {name!r}")
    given = {**given, **overrides}
    checked = {"epochs": checks.positive_int("epochs", given["epochs"]),
         "batch_size": checks.positive_int("batch_size", given["batch_size"]),
         "lr": checks.number("lr", given["lr"], low=0, low_open=True),
         "shuffle": checks.boolean("shuffle", given["shuffle"]),
         "verbose": checks.non_negative_int("verbose", given["verbose"]),
         "warm_start": checks.boolean("warm_start", given["warm_start"]),
         "early_stopping": checks.boolean("early_stopping", given["early_stopping"]),
         "validation_fraction": checks.number("validation_fraction", given["validation_fraction"],
                                              low=0, high=1, low_open=True, high_open=True),
         "n_iter_no_change": checks.positive_int("n_iter_no_change", given["n_iter_no_change"]),
         "n_jobs": checks.n_jobs("n_jobs", given["n_jobs"]),
         "seed": given["seed"],
         "checkpoint_every": checks.positive_int("checkpoint_every",
                                                 given.get("checkpoint_every", 1))}
    checks.generators(checked["seed"], 1)  # the seed's type, checked now
    optimizer = given.get("optimizer")
    checked["optimizer"] = (optim.Adam(checked["lr"]) if optimizer is None
                      else checks.callable_with("optimizer", optimizer, "step"))
    checked["checkpoint"] = (None if given.get("checkpoint") is None
                       else checks.output_file("checkpoint", given["checkpoint"]))
    checked["resume"] = None if given.get("resume") is None else checks.path("resume", given["resume"])
    checked["validation_data"] = given.get("validation_data")
    checked["lr_schedule"] = schedules.checked(given.get("lr_schedule"))
    checked["callbacks"] = schedules.checked_callbacks(given.get("callbacks"))
    return checked


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
        self.began_with = {}  # the lr and seed the run began with (partial_fit compares them)


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
