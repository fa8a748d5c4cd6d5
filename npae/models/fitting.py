"""Fitting: the loss and its gradients on a batch, ``fit`` from the seed, and ``partial_fit``.

``fit(X)`` builds the network from the data's width and trains it from the seed, every time
(unless ``warm_start=True``): the same seed gives the same model whatever was fitted before.
``partial_fit(X)`` is one more pass, keeping the optimiser's state.  The loop itself is
:mod:`npae.training.loop`; a step of it is :mod:`npae.training.step`.
"""

import numpy as np

from .. import checks
from ..data import batches, columns, unit_interval
from ..files import atomic
from ..training import checkpoints, loop, schedules, team
from ..training.state import PARAMETERS, TrainingState, settings, setup_of


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
        own generator when None.
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
        changed = settings != self.settings_
        self.settings_ = settings
        if changed:
            self.begin_epoch(None)  # the loss's weights as they stand, outside any warm-up

    def batch_loss_and_grads(self, X, eps):
        """:meth:`loss_and_grads` of a batch already checked, with its noise drawn.

        Adds the L2 penalty ``(alpha / 2) Σ_W ‖W‖²`` over the weight matrices
        (not biases), whose gradient is ``alpha · W``.
        """
        loss, grads = self.network_loss_and_grads(X, eps)
        alpha = checks.number("alpha", self.alpha, low=0)
        if alpha:
            for name, p in self.network_params().items():
                if name.endswith(".W"):
                    loss += 0.5 * alpha * float(np.vdot(p, p))
                    grads[name] = grads[name] + alpha * p
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
        """The loss alone on any number of rows, as a float (in chunks; noise from ``rng``)."""
        rng = checks.generator(rng, name="rng") if rng is not None else self.built().rng_
        self.refresh_settings()
        total, n = 0.0, 0
        for start, chunk in self._chunks(X, fitting=True):
            e = None if eps is None else np.asarray(eps)[..., start:start + len(chunk), :]
            loss, _ = self.batch_loss_and_grads(chunk, self.checked_noise(e, len(chunk), rng))
            total, n = total + loss * len(chunk), n + len(chunk)
        if n == 0:
            raise ValueError("X is empty: the loss of no rows is undefined")
        return total / n

    def begin_epoch(self, epoch):
        """Called by the training loop before each epoch (None: outside training); nothing
        to do by default."""

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
        warns with :class:`~npae.ConvergenceWarning`.  A refused call leaves the model as it was.
        """
        before = dict(self.__dict__)
        try:
            s = self.training_settings(overrides)
            s["base_lr"] = getattr(s["optimizer"], "lr", None)  # before a resume sets it
            X, names, data_range = self._fit_data(X)
            if not self._warm(s, X):
                self.start_from_seed(X.shape[1], s["seed"], self._dtype_for(X))
            self.set_feature_names(names)
            rows = batches.Rows(X, self.dtype_)
            _, train_rng, _, split_rng = checks.generators(s["seed"], 4)
            validation = s["validation_data"]
            if isinstance(validation, tuple):  # (X_val,) or (X_val, y_val), as Keras takes it
                if not 1 <= len(validation) <= 2:
                    raise ValueError("validation_data must be X_val or a tuple (X_val, y_val), "
                                     f"got a tuple of {len(validation)} items")
                validation = validation[0]
            if validation is not None:
                validation = self._fit_data(validation, X.shape[1], name="validation_data")[0]
            elif s["early_stopping"]:
                rows, held_out = rows.split(s["validation_fraction"], split_rng)
                validation = held_out.array_like()
            setup = setup_of(rows, s["batch_size"], s["shuffle"], validation is not None)
            if s["resume"] is not None:
                state = checkpoints.load_checkpoint(s["resume"], self, s["optimizer"], setup)
            else:
                state = TrainingState(s["optimizer"], train_rng)
            state.began_with = schedules.began_with(s)
            if s["checkpoint"] is not None:
                atomic.probe_writable("checkpoint", s["checkpoint"])
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise
        self._run(rows, state, s, validation=validation, data_range=data_range,
                  patience=s["n_iter_no_change"] if s["early_stopping"] else None)
        if state.stopped is None:
            schedules.warn_if_improving(state.history["loss"], type(self).__name__, s["epochs"])
        return self

    def partial_fit(self, X, y=None):
        """One pass over ``X``, continuing the optimiser's state (and the network) of earlier
        calls; ``lr`` set since then takes effect, a new ``seed`` cannot (a warning says so)."""
        s = self.training_settings()
        continuing = hasattr(self, "n_features_in_")
        if continuing:
            self._check_names(X)
        X, names, data_range = self._fit_data(X, self.n_features_in_ if continuing else None)
        if not continuing:
            self.start_from_seed(X.shape[1], s["seed"], self._dtype_for(X))
            self.set_feature_names(names)
        state = getattr(self, "training_", None)
        if state is None:
            state = TrainingState(s["optimizer"], checks.generators(s["seed"], 2)[1])
            state.began_with = schedules.began_with(s)
        else:  # settings changed since the last call take effect, or say why they cannot
            self.refresh_settings()
            schedules.continue_with(state, s, type(self).__name__)
        state.plan = state.order = None  # a new pass over new rows
        state.best = None
        self._run(batches.Rows(X, self.dtype_), state, dict(s, epochs=state.epoch + 1),
                  validation=None, data_range=data_range, patience=None)
        return self

    def fit_transform(self, X, y=None, **overrides):
        """``fit(X, **overrides)`` then ``transform(X)``."""
        return self.fit(X, **overrides).transform(X)

    def _warm(self, s, X):
        return (s["warm_start"] and hasattr(self, "n_features_in_")
                and self.n_features_in_ == X.shape[1])

    def _dtype_for(self, X):
        chosen = checks.float_dtype("dtype", self.dtype, allow_none=True)
        return chosen or (np.dtype(X.dtype) if np.dtype(X.dtype).name in checks.FLOAT_DTYPES
                          else np.dtype("float64"))

    def _run(self, rows, state, s, *, validation, data_range, patience):
        batch_size = min(s["batch_size"], max(rows.block_sizes))
        work = batch_size * sum(p.size for p in self.network_params().values())
        step = self.training_step(state.optimizer, batch_size, team.how_many(s["n_jobs"], work))
        try:
            loop.run(self, rows, state, step, epochs=s["epochs"], batch_size=s["batch_size"],
                         shuffle=s["shuffle"], verbose=s["verbose"], validation=validation,
                         patience=patience, checkpoint=s["checkpoint"],
                         checkpoint_every=s["checkpoint_every"], data_range=data_range,
                         lr_schedule=s["lr_schedule"], base_lr=s.get("base_lr"),
                         callbacks=s["callbacks"])
        finally:
            step.close()
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
