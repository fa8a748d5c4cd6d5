"""Fitting: the loss and its gradients on a batch, ``fit`` from the seed, and ``partial_fit``.

``fit(X)`` builds the network from the data's width and trains it from the seed, every time
(unless ``warm_start=True``): the same seed gives the same model whatever was fitted before.
``partial_fit(X)`` is one more pass, keeping the optimiser's state.  The loop itself is
:mod:`npae.training.loop`; a step of it is :mod:`npae.training.step`.
"""

import contextlib
import copy

import numpy as np

from .. import checks
from ..data import batches, columns, unit_interval
from ..files import atomic
from ..nn.buffers import Workspace
from ..nn.losses import l2_penalty
from ..training import checkpoints, loop, schedules
from ..training.state import PARAMETERS, TrainingState, settings, setup_of


# errors after which the model keeps its last step: divergence (the last finite step), a signal
# (stopped at a batch boundary, or at once by a second one) and a checkpoint the disk could not
# take (the work is in the model, for the caller to save elsewhere)
KEEPS_ITS_LAST_STEP = (FloatingPointError, checkpoints.CheckpointFailed, KeyboardInterrupt,
                       SystemExit)


class Fitting:
    """The loss API and fitting (a base of :class:`~npae.models.estimator.Estimator`)."""

    def training_settings(self, overrides=None):
        """The training hyper-parameters, checked, with ``fit``'s keyword overrides applied."""
        return settings({name: getattr(self, name) for name in PARAMETERS},
                                 overrides or {})

    # -- the loss -------------------------------------------------------------
    def loss_and_grads(self, X, *, eps=None):
        """The loss on batch ``X`` and its gradient for every entry of ``params``.

        Returns ``(loss, grads)``: ``loss`` a float, the mean over the batch of
        the per-example loss summed over features (plus the ``alpha`` penalty);
        ``grads`` a dict with the keys of ``params``.  ``eps`` fixes the
        model's randomness (see the model's docstring); drawn from the model's
        own generator when None.  This is the model's ``batch_loss`` — the function
        ``fit`` trains with — on fresh buffers, with the objective's own weights (the full β).
        """
        X = self._checked(X, fitting=True)
        self.refresh_settings()
        return self.batch_loss_and_grads(X, self.checked_noise(eps, X.shape[0], self.rng_))

    def refresh_settings(self):
        """Take up hyper-parameters set since the network was built: the loss's weights
        (β, noise level, penalties, …) apply at once; a change to the network itself
        (``network_settings``: sizes, activations, likelihood, …) needs a new ``fit``."""
        settings = self.check_settings()
        stale = [k for k in self.network_settings if settings[k] != self.settings_[k]]
        if stale:
            raise ValueError(f"{', '.join(stale)} changed since the network was built; fit again "
                             "to build the new network (or set it back)")
        self.settings_ = settings

    def batch_loss_and_grads(self, X, eps):
        """:meth:`loss_and_grads` of a batch already checked, with its noise drawn: the model's
        ``batch_loss`` with a fresh workspace and gradient buffer (scale 1/n: the batch's
        mean), plus the L2 penalty ``(alpha / 2) Σ_W ‖W‖²`` over the weight matrices (not
        biases), whose gradient is ``alpha · W`` (:func:`npae.nn.losses.l2_penalty`)."""
        params_buffer, layout = self.parameter_buffer()
        grads = layout.views(np.zeros(layout.size, dtype=self.dtype_))
        loss = self.batch_loss(X, eps, Workspace(self.dtype_), grads, 1.0 / X.shape[0],
                               self.loss_weights(None))
        alpha = checks.number("alpha", self.alpha, low=0)
        params = layout.views(params_buffer)
        for name in layout.weight_names():
            loss += l2_penalty(params[name], grads[name], alpha)
        return loss, grads

    def checked_noise(self, eps, n, rng):
        """``eps`` checked against the shape :meth:`draw_noise` gives, or drawn from ``rng``."""
        if eps is None:
            return self.draw_noise(n, rng)
        expected = self.draw_noise(n, np.random.default_rng(0))
        if expected is None:
            raise ValueError("eps fixes the model's noise, but this model has none")
        eps = np.asarray(eps, dtype=self.dtype_)
        if eps.shape != expected.shape:
            raise ValueError(f"eps must have shape {expected.shape}, got {eps.shape}")
        return eps

    def average_loss(self, X, *, eps=None, rng=None):
        """The loss alone on any number of rows, as a float (in chunks; noise from ``rng``),
        with the objective's own weights — what validation and early stopping compare."""
        self.built()
        rng = checks.generator(rng, name="rng") if rng is not None else self.rng_
        self.refresh_settings()
        total, n = 0.0, 0
        for start, chunk in self._chunks(X, fitting=True):
            e = None if eps is None else np.asarray(eps)[..., start:start + len(chunk), :]
            loss, _ = self.batch_loss_and_grads(chunk, self.checked_noise(e, len(chunk), rng))
            total, n = total + loss * len(chunk), n + len(chunk)
        if n == 0:
            raise ValueError("X is empty: the loss of no rows is undefined")
        return total / n

    # -- fitting --------------------------------------------------------------
    def fit(self, X, y=None, **overrides):
        """Train on ``X`` (n_samples, n_features) from the seed; return the model.

        ``y`` is ignored.  Keyword ``overrides`` replace training
        hyper-parameters for this call (``epochs``, ``batch_size``, ``lr``,
        ``shuffle``, ``seed``, ``verbose``, …) and take ``optimizer`` (default
        ``Adam(lr)``), ``validation_data``, ``checkpoint`` (a path saved every
        ``checkpoint_every`` epochs, at the end and on a signal), ``resume``
        (a checkpoint to continue), ``lr_schedule`` (a callable of the epoch, or "invscaling",
        "step", "cosine", "adaptive") and ``callbacks`` (``f(model, record)`` after each epoch;
        True stops): :mod:`npae.training.schedules`.  A run that ends still clearly improving
        warns with :class:`~npae.ConvergenceWarning`.  A refused call leaves the model as it
        was, and so does an error from the data mid-run (say, a Dask block that fails to
        compute); a run that diverges, is stopped by a signal or cannot write its checkpoint
        keeps its last step.
        """
        before = self._snapshot(overrides.get("optimizer"))
        try:
            training = self.training_settings(overrides)
            training["base_lr"] = getattr(training["optimizer"], "lr", None)  # before a resume
            X, names, data_range = self._fit_data(X)
            if not self._warm(training, X):
                self.start_from_seed(X.shape[1], training["seed"], self._dtype_for(X))
            self.set_feature_names(names)
            rows = batches.Rows(X, self.dtype_)
            _, train_rng, _, split_rng = checks.generators(training["seed"], 4)
            validation = training["validation_data"]
            if isinstance(validation, tuple):  # (X_val,) or (X_val, y_val), as Keras takes it
                if not 1 <= len(validation) <= 2:
                    raise ValueError("validation_data must be X_val or a tuple (X_val, y_val), "
                                     f"got a tuple of {len(validation)} items")
                validation = validation[0]
            if validation is not None:
                validation = self._fit_data(validation, X.shape[1], name="validation_data")[0]
            elif training["early_stopping"]:
                rows, held_out = rows.split(training["validation_fraction"], split_rng)
                validation = held_out.array_like()
            setup = setup_of(rows, training["batch_size"], training["shuffle"],
                             validation is not None)
            if training["checkpoint"] is not None:  # before a resume changes anything
                atomic.probe_writable("checkpoint", training["checkpoint"])
            if training["resume"] is not None:
                state = checkpoints.load_checkpoint(
                    training["resume"], self, training["optimizer"], setup,
                    scheduled=training["lr_schedule"] is not None)
            else:
                state = TrainingState(training["optimizer"], train_rng)
            state.began_with = schedules.began_with(training)
        except BaseException:
            self._put_back(before)
            raise
        patience = training["n_iter_no_change"] if training["early_stopping"] else None
        with self._run_or_put_back(before, state, patience):
            loop.run(self, rows, state, epochs=training["epochs"],
                     batch_size=training["batch_size"], n_jobs=training["n_jobs"],
                     shuffle=training["shuffle"], verbose=training["verbose"],
                     validation=validation, patience=patience, checkpoint=training["checkpoint"],
                     checkpoint_every=training["checkpoint_every"], data_range=data_range,
                     lr_schedule=training["lr_schedule"], base_lr=training["base_lr"],
                     callbacks=training["callbacks"])
        if state.stopped is None:
            schedules.warn_if_improving(state.history["loss"], type(self).__name__,
                                        training["epochs"])
        return self

    def partial_fit(self, X, y=None):
        """One pass over ``X``, continuing the optimiser's state (and the network) of earlier
        calls; ``lr`` set since then takes effect, a new ``seed`` cannot (a warning says so).
        A refused call (or an error from the data mid-pass) leaves the model as it was."""
        training = self.training_settings()
        before = self._snapshot(None)
        try:
            continuing = hasattr(self, "n_features_in_")
            if continuing:
                self._check_names(X)
            X, names, data_range = self._fit_data(X, self.n_features_in_ if continuing else None)
            if not continuing:
                self.start_from_seed(X.shape[1], training["seed"], self._dtype_for(X))
                self.set_feature_names(names)
            state = getattr(self, "training_", None)
            if state is None:
                state = TrainingState(training["optimizer"],
                                      checks.generators(training["seed"], 2)[1])
                state.began_with = schedules.began_with(training)
            else:  # settings changed since the last call take effect, or say why they cannot
                self.refresh_settings()
                schedules.continue_with(state, training, type(self).__name__)
            state.plan = state.order = None  # a new pass over new rows
            state.best = None
            rows = batches.Rows(X, self.dtype_)
        except BaseException:
            self._put_back(before)
            raise
        with self._run_or_put_back(before, state, None):
            loop.run(self, rows, state, epochs=state.epoch + 1,
                     batch_size=training["batch_size"], n_jobs=training["n_jobs"],
                     shuffle=training["shuffle"], verbose=training["verbose"],
                     checkpoint=training["checkpoint"],
                     checkpoint_every=training["checkpoint_every"], data_range=data_range)
        return self

    @contextlib.contextmanager
    def _run_or_put_back(self, before, state, patience):
        """Around a run: record its state, however it ends (:meth:`_record`); and if it fails
        for any reason but those after which the model keeps its last step, put the model back
        as it was ``before`` (:meth:`_snapshot`)."""
        try:
            try:
                yield
            finally:
                self._record(state, patience)
        except KEEPS_ITS_LAST_STEP:
            raise
        except BaseException:
            self._put_back(before)
            raise

    def _snapshot(self, optimizer):
        """What a failed call puts back (:meth:`_put_back`): the attributes, the values of the
        parameters (updated in place by a warm start), the training state (which
        ``partial_fit`` continues in place) and the state of the caller's ``optimizer``."""
        fitted = hasattr(self, "n_features_in_")
        keeps_state = callable(getattr(optimizer, "state_dict", None)) and callable(
            getattr(optimizer, "load_state_dict", None))
        return {"attributes": dict(self.__dict__),
                "values": {k: p.copy() for k, p in self.params.items()} if fitted else None,
                "training": copy.deepcopy(getattr(self, "training_", None)),
                "optimizer": (optimizer, optimizer.state_dict()) if keeps_state else None}

    def _put_back(self, snapshot):
        self.__dict__.clear()
        self.__dict__.update(snapshot["attributes"])
        if snapshot["values"] is not None:
            for name, p in self.params.items():
                np.copyto(p, snapshot["values"][name])
        if snapshot["training"] is not None:
            self.training_, self.history_ = snapshot["training"], snapshot["training"].history
        if snapshot["optimizer"] is not None:
            optimizer, state = snapshot["optimizer"]
            optimizer.load_state_dict(state)

    def fit_transform(self, X, y=None, **overrides):
        """``fit(X, **overrides)`` then ``transform(X)``."""
        return self.fit(X, **overrides).transform(X)

    def _warm(self, training, X):
        return (training["warm_start"] and hasattr(self, "n_features_in_")
                and self.n_features_in_ == X.shape[1])

    def _dtype_for(self, X):
        chosen = checks.float_dtype("dtype", self.dtype, allow_none=True)
        return chosen or (np.dtype(X.dtype) if np.dtype(X.dtype).name in checks.FLOAT_DTYPES
                          else np.dtype("float64"))

    def _record(self, state, patience):
        """What a run leaves on the model, however it ended: its state, history and stop."""
        self.training_, self.history_ = state, state.history
        self.n_iter_ = len(state.history["loss"])
        self.interrupted_ = state.stopped in ("SIGINT", "SIGTERM")
        if patience is not None and state.best is not None:
            self.best_epoch_, self.best_val_loss_ = state.best["epoch"], state.best["val_loss"]

    def _fit_data(self, X, n_features=None, *, name="X"):
        """Rows to train on, every one checked (a chunk at a time, or blockwise for Dask):
        ``(X, feature names, (low, high))``.  The width must be ``n_features`` when given,
        else the constructor's ``n_features``."""
        self.check_settings()
        if n_features is None and self.n_features is not None:
            n_features = checks.positive_int("n_features", self.n_features)
        names = columns.feature_names(X)
        X = checks.rows(X, name=name, n_features=n_features, owner=type(self).__name__)
        low, high = checks.value_range(X, self._dtype_for(X), name=name)
        if self.needs_unit_interval:  # [0, 1] up to rounding, which becomes the boundary
            X = unit_interval.accept(X, low, high, name=name, instead=self.unit_interval_alternative)
        return X, names, (low, high)
