"""What the autoencoder and the VAE share: scikit-learn's estimator conventions, without scikit-learn.

* ``__init__`` stores its arguments as given; ``get_params`` returns them and
  ``set_params`` only sets them.  They are checked when they are used: at
  ``fit``, or when the network is first needed.
* ``fit(X)`` builds the network from the data's width and trains it from the
  seed, every time (unless ``warm_start=True``): the same seed gives the same
  model whatever was fitted before.  ``partial_fit(X)`` is one more pass,
  keeping the optimiser's state.  Learned state ends in ``_``.
* A model is *fitted* once it has parameters: after ``fit``, ``partial_fit`` or
  ``npae.load`` — or, with ``n_features`` given, after the first use of ``params``,
  ``loss_and_grads`` or ``encode``, which builds the network from the seed (so a
  model trained by hand is fitted, and works in a ``Pipeline``).
* ``score(X)`` is higher for better models (the VAE's mean ELBO, the autoencoder's
  negative reconstruction loss), as ``GridSearchCV`` and ``cross_val_score`` expect.
* DataFrames set ``feature_names_in_`` (:mod:`npae.columns`); ``set_output`` returns them.
* Dask arrays are recognised by their interface and transformed lazily,
  block by block (:mod:`npae.lazy`); Dask is never imported.

A model class provides the network through this protocol (see each model):
``check_settings()``; ``parameter_shapes(d)``; ``make_network(d, rng)`` and
``bind_params(views)`` (the parameters become views of one buffer, ``params_buffer_``);
``network_params()``; ``code_size``; ``draw_noise(n, rng)``; ``network_loss_and_grads``;
``training_step(optimizer, batch_size, n_jobs)``; ``encode_batch``, ``decode_batch``, ``score_batch``.
"""

import inspect

import numpy as np

from . import batches, checks, columns, files, flat, lazy, threads, training


class NotFittedError(ValueError, AttributeError):
    """The model has no parameters yet: fit it first (or give ``n_features``)."""


class Estimator:
    """Base of :class:`~npae.Autoencoder` and :class:`~npae.VAE`; see those."""

    # -- hyper-parameters ---------------------------------------------------
    @classmethod
    def parameter_names(cls):
        """The constructor's arguments, in order."""
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep=True):
        """The constructor arguments, exactly as they were given."""
        return {name: getattr(self, name) for name in self.parameter_names()}

    def set_params(self, **params):
        """Set constructor arguments (checked when next used, as by scikit-learn)."""
        valid = self.parameter_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; "
                                 f"valid parameters: {', '.join(valid)}")
            setattr(self, name, value)
        return self

    def training_settings(self, overrides=None):
        """The training hyper-parameters, checked, with ``fit``'s keyword overrides applied."""
        return training.settings({name: getattr(self, name) for name in training.PARAMETERS},
                                 overrides or {})

    def architecture(self):
        """The hyper-parameters that define the network and its loss (all but the training ones)."""
        return {k: v for k, v in self.get_params().items() if k not in training.PARAMETERS}

    # -- the network ----------------------------------------------------------
    def __sklearn_is_fitted__(self):
        return hasattr(self, "n_features_in_")

    def built(self):
        """The network, built on first need when ``n_features`` was given; NotFittedError otherwise."""
        if not hasattr(self, "n_features_in_"):
            if self.n_features is None:
                raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet: call "
                                     "fit(X) first, or give n_features to build it untrained")
            self.start_from_seed(checks.positive_int("n_features", self.n_features), self.seed,
                                 self._dtype_for(np.empty(0)))
        return self

    def start_from_seed(self, n_features, seed, dtype):
        """Build a fresh ``dtype`` network for ``n_features`` inputs, its weights from ``seed``."""
        self.check_settings()
        init_rng, _, own_rng = checks.generators(seed, 3)
        self.dtype_ = np.dtype(dtype)
        self.make_network(n_features, init_rng)
        # every parameter a view of one buffer: whole-model passes are one pass (npae.flat)
        self.params_buffer_, views = flat.FlatLayout.of(self.network_params()).gather(
            self.network_params(), self.dtype_)
        self.bind_params(views)
        self.n_features_in_, self.rng_ = n_features, own_rng
        self.history_, self.interrupted_, self.n_iter_ = {}, False, 0
        for name in ("feature_names_in_", "training_", "best_epoch_", "best_val_loss_"):
            self.__dict__.pop(name, None)

    @property
    def params(self):
        """Live parameters: name → array (updating them updates the model)."""
        return self.built().network_params()

    n_parameters = property(lambda self: sum(p.size for p in self.params.values()),
                            doc="The number of parameters (entries of ``params``).")

    history = property(lambda self: getattr(self, "history_", {}),
                       doc='Read-only alias of ``history_``: per-epoch ``"loss"`` (and ``"val_loss"``).')
    interrupted = property(lambda self: getattr(self, "interrupted_", False),
                           doc="Read-only alias of ``interrupted_``: the last fit stopped at a signal.")

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
        ``checkpoint_every`` epochs, at the end and on a signal) and ``resume``
        (a checkpoint to continue).  A refused call leaves the model as it was.
        """
        before = dict(self.__dict__)
        try:
            s = self.training_settings(overrides)
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
            setup = training.setup_of(rows, s["batch_size"], s["shuffle"], validation is not None)
            if s["resume"] is not None:
                state = training.load_checkpoint(s["resume"], self, s["optimizer"], setup)
            else:
                state = training.TrainingState(s["optimizer"], train_rng)
            if s["checkpoint"] is not None:
                files.probe_writable("checkpoint", s["checkpoint"])
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise
        self._run(rows, state, s, validation=validation, data_range=data_range,
                  patience=s["n_iter_no_change"] if s["early_stopping"] else None)
        return self

    def partial_fit(self, X, y=None):
        """One pass over ``X``, continuing the optimiser's state (and the network) of earlier calls."""
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
            state = training.TrainingState(s["optimizer"], checks.generators(s["seed"], 2)[1])
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
        step = self.training_step(state.optimizer, batch_size, threads.how_many(s["n_jobs"], work))
        try:
            training.run(self, rows, state, step, epochs=s["epochs"], batch_size=s["batch_size"],
                         shuffle=s["shuffle"], verbose=s["verbose"], validation=validation,
                         patience=patience, checkpoint=s["checkpoint"],
                         checkpoint_every=s["checkpoint_every"], data_range=data_range)
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
        if self.needs_unit_interval:
            checks.unit_interval(low, high, name=name, integer_data=np.dtype(X.dtype).kind in "biu",
                                 instead=self.unit_interval_alternative)
        return X, names, (low, high)

    # -- inference --------------------------------------------------------------
    def _checked(self, X, *, fitting=False, name="X", width=None, first_row=0):
        """One in-memory batch (of ``width`` columns, data by default): checked, converted to
        the model's dtype, C-contiguous."""
        self.built()
        X = np.asarray(checks.rows(X, name=name, n_features=width or self.n_features_in_,
                                   owner=type(self).__name__))
        if fitting and self.needs_unit_interval:
            low, high = checks.value_range(X, self.dtype_, name=name, first_row=first_row)
            checks.unit_interval(low, high, name=name, integer_data=X.dtype.kind in "biu",
                                 instead=self.unit_interval_alternative)
        else:
            checks.finite(X, self.dtype_, name=name, first_row=first_row)
        return np.ascontiguousarray(X, dtype=self.dtype_)

    def _chunks(self, X, *, fitting=False, name="X"):
        """``(start, chunk)`` over the rows of ``X``, each chunk checked and converted."""
        self.built()
        self._check_names(X)
        X = checks.rows(X, name=name, n_features=self.n_features_in_, owner=type(self).__name__,
                        allow_empty=True)
        for start, chunk in batches.chunks(X):
            yield start, self._checked(chunk, fitting=fitting, name=name, first_row=start)

    def apply(self, kind, X, *, wrap=True):
        """One of the model's row maps — "encode", "decode", "reconstruct", "score_samples" —
        over all rows of ``X``: in memory or memory-mapped a chunk of rows at a time into one
        preallocated result (a file larger than memory is fine); a Dask array gives a lazy Dask
        array, this method running on each block.  A result that is not finite for finite
        input means the data's scale overflowed the network: refused, saying so."""
        self.built()
        fn, out_width, codes = {  # function of a checked batch, output width, input is codes
            "encode": (self.encode_batch, self.code_size, False),
            "decode": (self.decode_batch, self.n_features_in_, True),
            "reconstruct": (lambda x: self.decode_batch(self.encode_batch(x)),
                            self.n_features_in_, False),
            "score_samples": (self.score_batch, None, False)}[kind]
        name, width = ("Z", self.code_size) if codes else ("X", self.n_features_in_)
        if checks.is_dask_array(X):
            checks.rows(X, name=name, n_features=width, owner=type(self).__name__, allow_empty=True)
            return lazy.map_rows(self, kind, X, out_width, self.dtype_)
        index = columns.pandas_index(X)
        if not codes:
            self._check_names(X)
        X = checks.rows(X, name=name, n_features=width, owner=type(self).__name__,
                        allow_empty=True)
        out = np.empty((X.shape[0],) + ((out_width,) if out_width else ()), dtype=self.dtype_)
        for start, chunk in batches.chunks(X):
            chunk = self._checked(chunk, name=name, width=width, first_row=start)
            with np.errstate(over="ignore", invalid="ignore"):
                result = fn(chunk)
            if not np.isfinite(result).all():
                raise ValueError(f"{name}: the network's output overflowed {self.dtype_.name} for "
                                 f"rows {start}..{start + len(chunk) - 1}, whose values reach "
                                 f"{np.abs(chunk).max():.3g}: rescale the data")
            out[start:start + len(chunk)] = result
        return self._wrap_output(out, index) if wrap and kind == "encode" else out

    def encode(self, X):
        """The code of each row of ``X``: (n, n_features) → (n, code size).  A DataFrame with
        ``set_output(transform="pandas")``; a lazy Dask array for a Dask array."""
        return self.apply("encode", X)

    def decode(self, Z):
        """Data-space values for codes ``Z`` (n, code size) → (n, n_features);
        probabilities when the output is a sigmoid / Bernoulli."""
        return self.apply("decode", Z)

    def reconstruct(self, X):
        """``decode(encode(X))``: the model's reconstruction of each row."""
        return self.apply("reconstruct", X)

    def transform(self, X):
        """Same as :meth:`encode`."""
        return self.encode(X)

    def inverse_transform(self, Z):
        """Same as :meth:`decode`."""
        return self.decode(Z)

    def score_samples(self, X):
        """The model's score of each row, higher is better; deterministic, and independent of
        the other rows (see the model's ``score_batch``)."""
        return self.apply("score_samples", X)

    def score(self, X, y=None):
        """The mean of :meth:`score_samples` over the rows of ``X``, as a Python float."""
        scores = self.score_samples(X)
        if scores.shape[0] == 0:
            raise ValueError("X is empty: the score of no rows is undefined")
        return float(scores.mean().compute() if checks.is_dask_array(scores) else scores.mean())

    # -- feature names and pandas output ---------------------------------------
    def set_feature_names(self, names):
        """Record the column names seen at fit (an object array), or forget them (None)."""
        if names is None:
            self.__dict__.pop("feature_names_in_", None)
        else:
            self.feature_names_in_ = names

    def _check_names(self, X):
        columns.check_names(type(self).__name__, getattr(self, "feature_names_in_", None), X)

    def get_feature_names_out(self, input_features=None):
        """Names of the code's columns: ``vae0, vae1, …`` (``autoencoder0, …``)."""
        self.built()
        columns.check_input_features(input_features, getattr(self, "feature_names_in_", None),
                                     self.n_features_in_)
        prefix = type(self).__name__.lower()
        return np.array([f"{prefix}{i}" for i in range(self.code_size)], dtype=object)

    def set_output(self, *, transform=None):
        """``transform="pandas"`` (or ``"polars"``) makes ``transform`` return DataFrames;
        ``"default"`` arrays; None leaves it as it is."""
        if transform is not None:
            checks.one_of("transform", transform, ("default", "pandas", "polars"))
            self._sklearn_output_config = {"transform": transform}
        return self

    def _wrap_output(self, out, index):
        kind = getattr(self, "_sklearn_output_config", {}).get("transform", "default")
        return columns.wrap(out, kind, list(self.get_feature_names_out()), index)

    # -- scikit-learn's tags --------------------------------------------------
    def __sklearn_tags__(self):
        """An unsupervised transformer that keeps its dtype.  Only scikit-learn calls this, so
        only then is scikit-learn imported."""
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags
        dtype = self.dtype if isinstance(self.dtype, str) or self.dtype is None else None
        kept = [dtype] if dtype in checks.FLOAT_DTYPES else list(checks.FLOAT_DTYPES)[::-1]
        return Tags(estimator_type=None, target_tags=TargetTags(required=False),
                    transformer_tags=TransformerTags(preserves_dtype=kept),
                    input_tags=InputTags(allow_nan=False, sparse=False))

    def __setstate__(self, state):
        """Unpickled (or deep-copied), the parameters are views of ``params_buffer_`` again."""
        self.__dict__.update(state)
        if "params_buffer_" in state:
            self.bind_params(flat.FlatLayout.of(self.network_params()).views(self.params_buffer_))

    def __repr__(self):
        signature = inspect.signature(type(self).__init__).parameters
        shown = [f"{k}={v!r}" for k, v in self.get_params().items()
                 if not _same(v, signature[k].default)]
        text = f"{type(self).__name__}({', '.join(shown)})"
        if hasattr(self, "n_features_in_"):
            text += f" · {self.describe()} · {self.n_parameters:,} parameters"
        return text


def _same(a, b):
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:
        return False
