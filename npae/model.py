"""What the autoencoder and the VAE share: input checks, batched inference,
``fit``, and scikit-learn's estimator conventions (without importing it).

A model subclass provides

* ``params`` — dict of name → live parameter array,
* ``_loss_and_grads(X, eps)`` — the loss on an already checked batch,
* ``encode`` / ``decode`` on checked batches (``_encode_batch``, ``_decode_batch``),
* ``_config()`` — the constructor arguments, for ``get_params`` and saving.
"""

import inspect
import sys

import numpy as np

from . import training

INFERENCE_CHUNK = 4096  # rows per forward pass in encode/decode: bounds memory for any n


def _array(X, name):
    if isinstance(X, np.ndarray):
        return X
    try:
        return np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of numbers: {exc}") from None


def check_rows(X, width, *, name="X", allow_empty=False):
    """Check that ``X`` is a 2-D numeric array of ``width`` columns; return it (not copied).

    Raises TypeError for non-numeric data and ValueError, naming ``name``, for
    the wrong number of dimensions or columns, or no rows.  A 1-D array is
    refused with the reshape that makes it one sample.
    """
    X = _array(X, name)
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if X.ndim == 1:
        hint = f"{name}.reshape(1, -1)" if X.shape[0] == width else f"an array of shape (n, {width})"
        raise ValueError(f"{name} must be 2-D (n_samples, {width}), got a 1-D array of shape "
                         f"{X.shape}; for one sample pass {hint}")
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, {width}), got shape {X.shape}")
    if X.shape[1] != width:
        raise ValueError(f"{name} has {X.shape[1]} features per row, but the model expects {width}")
    if X.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} is empty: it has no rows")
    return X


def check_values(X, dtype, *, name="X", unit_interval=False, instead=None):
    """Return ``X`` as a C-contiguous array of ``dtype`` after checking it is finite
    (and in [0, 1] when ``unit_interval``); copies only when the dtype or layout differ.

    Finiteness is checked after the conversion, so a float64 value too large
    for float32 (which would become infinity) is refused too.  ``instead``
    names the alternative to a [0, 1] likelihood in the message, e.g.
    ``"likelihood='gaussian'"``.
    """
    if unit_interval and X.size:
        low, high = X.min(), X.max()
        if not (low >= 0 and high <= 1):  # NaN fails too, and is reported below
            if X.dtype.kind in "biu":
                hint = (f"; integer images such as uint8 should be scaled to [0, 1] first, "
                        f"e.g. {name} / {255 if high <= 255 else high}")
            else:
                hint = "; scale it to [0, 1]" + (f" or use {instead}" if instead else "")
            if np.isfinite(low) and np.isfinite(high):
                raise ValueError(f"{name} must lie in [0, 1] for a Bernoulli / binary cross-entropy "
                                 f"likelihood, but its values span [{low:g}, {high:g}]{hint}")
        in_range = low >= 0 and high <= 1
    else:
        in_range = False
    with np.errstate(over="ignore"):  # overflow is reported below, by position
        converted = np.ascontiguousarray(X, dtype=dtype)
    # data within [0, 1] is finite (min and max propagate NaN); otherwise one
    # dot product Σ x² tells finite data apart, entry by entry only if it overflows
    if (converted.dtype.kind == "f" and not in_range
            and not _sum_of_squares_is_finite(converted) and not np.isfinite(converted).all()):
        row, col = np.argwhere(~np.isfinite(converted))[0]
        if np.isfinite(X[row, col]):
            raise ValueError(f"{name}[{row}, {col}] = {X[row, col]:g} is too large for {np.dtype(dtype).name}; "
                             "rescale the data")
        raise ValueError(f"{name} contains NaN or infinity (first at row {row}, column {col})")
    return converted


def _sum_of_squares_is_finite(a):
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(np.vdot(a.reshape(-1), a.reshape(-1))))


class Model:
    """Base of :class:`~npae.Autoencoder` and :class:`~npae.VAE`; see those."""

    #: The data must lie in [0, 1] (Bernoulli likelihood / binary cross-entropy).
    needs_unit_interval = False

    # -- input ----------------------------------------------------------------
    def _checked(self, X, *, name="X", allow_empty=False):
        X = check_rows(X, self.n_features, name=name, allow_empty=allow_empty)
        return check_values(X, self.dtype, name=name, unit_interval=self.needs_unit_interval,
                            instead=self._instead_of_unit_interval())

    def _instead_of_unit_interval(self):
        """The setting that accepts data outside [0, 1], for error messages."""
        return "likelihood='gaussian'" if hasattr(self, "likelihood") else "loss='mse'"

    def _map_rows(self, fn, X, width, *, name="X"):
        """Apply ``fn`` to ``X`` in chunks of rows (checking each chunk), stacking the results.

        Works on memory-mapped arrays larger than memory: only one chunk is
        converted and held at a time (plus the output).
        """
        X = check_rows(X, width, name=name, allow_empty=True)
        unit_interval = self.needs_unit_interval and name == "X"
        instead = self._instead_of_unit_interval()
        chunks = [fn(check_values(X[i:i + INFERENCE_CHUNK], self.dtype, name=name,
                                  unit_interval=unit_interval, instead=instead))
                  for i in range(0, X.shape[0], INFERENCE_CHUNK)]
        if not chunks:  # no rows: the shape and dtype of the answer, from one row of zeros
            return fn(np.zeros((1, width), dtype=self.dtype))[:0]
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

    # -- the public model API --------------------------------------------------
    def loss_and_grads(self, X, *, eps=None):
        """The loss on batch ``X`` and its gradient for every entry of ``params``.

        Returns ``(loss, grads)``: ``loss`` a float, the mean over the batch of
        the per-example loss summed over features; ``grads`` a dict with the
        keys of ``params``.  ``eps`` fixes the model's randomness (see the
        model's docstring); drawn from the model's generator when None.
        """
        X = self._checked(X)
        return self._loss_and_grads(X, self._check_eps(eps, X.shape[0]))

    def average_loss(self, X, *, eps=None):
        """The loss alone on any number of rows, as a float (computed in chunks)."""
        X = check_rows(X, self.n_features)
        total = 0.0
        for i in range(0, X.shape[0], INFERENCE_CHUNK):
            batch = self._checked(X[i:i + INFERENCE_CHUNK])
            e = None if eps is None else eps[..., i:i + INFERENCE_CHUNK, :]
            total += self._loss_and_grads(batch, self._check_eps(e, batch.shape[0]))[0] * batch.shape[0]
        return total / X.shape[0]

    def fit(self, X, y=None, *, epochs=10, batch_size=128, optimizer=None, validation_data=None,
            shuffle=True, seed=None, verbose=1, checkpoint=None, checkpoint_every=1, resume=None):
        """Train on ``X`` (n, n_features) by minibatch gradient descent; return the model.

        ``optimizer`` defaults to ``Adam(1e-3)``.  ``y`` is ignored (it is there
        so the model fits in a scikit-learn ``Pipeline``).  ``seed`` re-seeds the
        model's generator, which draws the shuffles and the noise.  After
        fitting, ``model.history`` holds per-epoch lists ``"loss"`` (and
        ``"val_loss"`` with ``validation_data``).  ``checkpoint=PATH`` saves
        model, optimiser and generator every ``checkpoint_every`` epochs (and
        on Ctrl-C); ``resume=PATH`` continues from such a file.  See
        :func:`npae.training.fit`.
        """
        training.fit(self, X, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                     validation_data=validation_data, shuffle=shuffle, seed=seed, verbose=verbose,
                     checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume)
        return self

    def encode(self, X):
        """The code of each row of ``X``: (n, n_features) → (n, code size)."""
        return self._map_rows(self._encode_batch, X, self.n_features)

    def decode(self, Z):
        """Data-space values for codes ``Z`` (n, code size) → (n, n_features);
        probabilities when the output is a sigmoid / Bernoulli."""
        return self._map_rows(self._decode_batch, Z, self.code_size, name="Z")

    def reconstruct(self, X):
        """``decode(encode(X))``: the model's reconstruction of each row."""
        return self._map_rows(lambda x: self._decode_batch(self._encode_batch(x)), X, self.n_features)

    # -- scikit-learn conventions ----------------------------------------------
    def transform(self, X):
        """Same as :meth:`encode`."""
        return self.encode(X)

    def inverse_transform(self, Z):
        """Same as :meth:`decode`."""
        return self.decode(Z)

    def fit_transform(self, X, y=None, **fit_params):
        """``fit(X, **fit_params)`` then ``transform(X)``."""
        return self.fit(X, **fit_params).transform(X)

    def get_params(self, deep=True):
        """The constructor arguments, as scikit-learn's ``get_params``."""
        return self._config()

    def set_params(self, **params):
        """Change constructor arguments.  Like scikit-learn's ``clone``, this builds
        a fresh, untrained model with the new settings."""
        config = self._config()
        unknown = sorted(set(params) - set(config))
        if unknown:
            raise ValueError(f"unknown parameters {unknown}; valid: {sorted(config)}")
        config.update(params)
        fresh = type(self)(**config)  # built first: a refused value leaves this model as it was
        self.__dict__.update(fresh.__dict__)
        return self

    def __sklearn_tags__(self):
        """What scikit-learn (≥ 1.6) asks every estimator: an unsupervised transformer.
        Only scikit-learn calls this, so only then is scikit-learn imported."""
        from sklearn.utils import Tags, TargetTags, TransformerTags
        return Tags(estimator_type=None, target_tags=TargetTags(required=False),
                    transformer_tags=TransformerTags())

    def __sklearn_is_fitted__(self):
        """Fitted once ``fit`` has recorded a history (a loaded trained model has one too)."""
        return bool(self.history)

    def _config(self):
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        config = {name: getattr(self, name) for name in names}
        if isinstance(config.get("seed"), np.random.Generator):
            config["seed"] = None
        # interned: one object for every model, as scikit-learn's clone checks identity
        config["dtype"] = sys.intern(np.dtype(config["dtype"]).name)
        return config

    # -- helpers for subclasses ------------------------------------------------
    @property
    def n_parameters(self):
        return sum(p.size for p in self.params.values())
