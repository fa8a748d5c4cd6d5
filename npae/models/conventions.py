"""scikit-learn's conventions, without scikit-learn, and the life cycle of a model's network.

* ``__init__`` stores its arguments as given; ``get_params`` returns them and ``set_params``
  only sets them.  They are checked when they are used: at ``fit``, or when the network is
  first needed.
* A model is *fitted* once it has parameters: after ``fit``, ``partial_fit`` or ``npae.load``
  — or, with ``n_features`` given, after the first use of ``params``, ``loss_and_grads`` or
  ``encode``, which builds the network from the seed (so a model trained by hand is fitted,
  and works in a ``Pipeline``).  Learned state ends in ``_``.
* DataFrames set ``feature_names_in_`` (:mod:`npae.data.columns`); ``set_output`` returns them.
"""

import inspect

import numpy as np

from .. import checks
from ..data import columns
from ..nn import buffers
from ..training.state import PARAMETERS


class NotFittedError(ValueError, AttributeError):
    """The model has no parameters yet: fit it first (or give ``n_features``)."""



class Conventions:
    """The estimator conventions and the network's life cycle (a base of :class:`~npae.models.estimator.Estimator`)."""

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

    def architecture(self):
        """The hyper-parameters that define the network and its loss (all but the training ones)."""
        return {k: v for k, v in self.get_params().items() if k not in PARAMETERS}

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
        # every parameter a view of one buffer: whole-model passes are one pass (npae.nn.buffers)
        self.params_buffer_, views = buffers.FlatLayout.of(self.network_params()).gather(
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

    def parameter_buffer(self):
        """``(buffer, layout)``: the flat array every parameter is a view of, and where each sits
        in it (:class:`~npae.nn.buffers.FlatLayout`)."""
        self.built()
        return self.params_buffer_, buffers.FlatLayout.of(self.network_params())

    @property
    def n_parameters(self):
        """The number of parameters (entries of ``params``)."""
        return sum(p.size for p in self.params.values())

    @property
    def history(self):
        """Read-only alias of ``history_``: per-epoch ``"loss"`` (and ``"val_loss"``)."""
        return getattr(self, "history_", {})

    @property
    def interrupted(self):
        """Read-only alias of ``interrupted_``: the last fit stopped at a signal."""
        return getattr(self, "interrupted_", False)

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
            self.bind_params(buffers.FlatLayout.of(self.network_params()).views(self.params_buffer_))

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
