"""An outlier detector in scikit-learn's convention, around an npae model's likelihood.

``OutlierDetector(estimator, contamination)`` fits the model on (mostly) normal rows and
ranks rows by the model's :meth:`score_samples` — the VAE's ELBO, the autoencoder's negative
reconstruction loss: a row the model explains poorly is an outlier.  As scikit-learn's
``IsolationForest`` and ``LocalOutlierFactor(novelty=True)`` do:

* ``score_samples(X)`` — higher is more normal;
* ``offset_`` — the threshold, from ``contamination``: the training rows' score at that
  quantile (a float in (0, 0.5]), or, for ``"auto"``, the robust rule
  ``median − 3.5 · 1.4826 · MAD`` of the training scores (Iglewicz & Hoaglin's modified
  z-score of 3.5: on scores that are roughly normal, about 1 row in 4,000 is flagged, and a row
  is flagged for being far out, not for being in the tail of a fixed share);
* ``decision_function(X) = score_samples(X) − offset_``, negative for outliers;
* ``predict(X)`` — +1 for inliers, −1 for outliers; ``fit_predict(X)``;
* ``feature_scores(X)`` — each feature's share of a row's score: an (n, d) array whose rows
  sum to ``score_samples(X)``, so the most negative entry names the column that makes a row odd.

PyOD's names are aliases, in PyOD's sign (higher is more abnormal): ``decision_scores_``
(the training rows' outlier scores, ``−score_samples``), ``threshold_`` (``−offset_``) and
``labels_`` (0 inlier, 1 outlier, for the training rows).

DataFrames set ``feature_names_in_`` (``feature_scores`` returns a DataFrame for one); a Dask
array gives lazy scores and predictions, computed block by block.
"""

import sys
import warnings

import numpy as np

from .. import checks
from ..data import batches, columns
from ..training import schedules
from .autoencoder import Autoencoder
from .conventions import NotFittedError
from .vae import VAE

MAD_RULE = 3.5        # "auto": flag scores this many robust standard deviations below the median
MAD_TO_SIGMA = 1.4826  # σ of a normal distribution per unit of its median absolute deviation
STEPS = 3000          # the default estimator's training, in steps of batch 32 (10 to 100 epochs)
BOTH_NOT_FITTED = {}   # the class of not_fitted_error(), made once scikit-learn is loaded


def default_estimator(n_rows):
    """The model ``estimator=None`` fits to ``n_rows`` rows: a VAE with a Gaussian likelihood,
    one hidden layer of 128 and a code of 16, trained for about STEPS steps of batch 32 (10 to
    100 epochs: 100 for a table of a few hundred rows).

    Why Gaussian, also for data in [0, 1]: a Bernoulli likelihood ranks images by how much ink
    they hold more than by how unusual they are (Nalisnick et al., 2019).  On Fashion-MNIST's
    one-class protocol the Bernoulli ELBO reached a mean ROC AUC of 0.78, the Gaussian one
    0.92; on the tables (breast cancer, wine) the Gaussian one was as good or better
    (``benchmarks/README.md``).  Fewer steps (1,000) lost 0.01 of AUC on Fashion-MNIST."""
    batches = -(-n_rows // 32)
    return VAE(hidden=(128,), latent=16, likelihood="gaussian", batch_size=32, seed=0,
               epochs=int(np.clip(-(-STEPS // batches), 10, 100)))


class OutlierDetector:
    """Outliers are the rows an npae model, fitted on the data, explains worst.

    Parameters
    ----------
    estimator : an npae model (``VAE``, ``Autoencoder``) or None
        Cloned and fitted at ``fit``.  None: :func:`default_estimator`, a VAE with a Gaussian
        likelihood, trained for a fixed budget (no ConvergenceWarning: its learned variances
        keep lowering the loss long after the ranking of rows has settled).  A Bernoulli
        model scores a value outside [0, 1] lower by its distance outside
        (:mod:`npae.data.unit_interval`).
    contamination : float in (0, 0.5] or ``"auto"``
        The expected share of outliers in the training data, which sets ``offset_``; the
        default 0.1 is PyOD's.  ``"auto"``: the modified z-score rule (module docstring).

    Attributes
    ----------
    estimator_ : the fitted model.
    offset_ : float — ``decision_function = score_samples − offset_``.
    n_features_in_, feature_names_in_ : as for the models.
    decision_scores_, threshold_, labels_ : PyOD's aliases (module docstring).
    """

    def __init__(self, estimator=None, *, contamination=0.1):
        self.estimator, self.contamination = estimator, contamination

    # -- scikit-learn's conventions -------------------------------------------------------
    def get_params(self, deep=True):
        """``estimator`` and ``contamination`` as given; with ``deep``, the estimator's own as
        ``estimator__name`` (so ``GridSearchCV`` can search them)."""
        params = {"estimator": self.estimator, "contamination": self.contamination}
        if deep and hasattr(self.estimator, "get_params"):
            params.update({f"estimator__{k}": v for k, v in self.estimator.get_params().items()})
        return params

    def set_params(self, **params):
        """Set ``estimator``, ``contamination`` or the estimator's ``estimator__name``."""
        nested = {}
        for name, value in params.items():
            if name in ("estimator", "contamination"):
                setattr(self, name, value)
            elif name.startswith("estimator__") and self.estimator is not None:
                nested[name.removeprefix("estimator__")] = value
            else:
                raise ValueError(f"invalid parameter {name!r} for OutlierDetector; valid "
                                 "parameters: estimator, contamination, estimator__<name>")
        if nested:
            self.estimator.set_params(**nested)
        return self

    def __sklearn_is_fitted__(self):
        return hasattr(self, "offset_")

    def __sklearn_tags__(self):
        """An outlier detector (only scikit-learn calls this, so only then is it imported)."""
        from sklearn.utils import InputTags, Tags, TargetTags
        return Tags(estimator_type="outlier_detector", target_tags=TargetTags(required=False),
                    input_tags=InputTags(allow_nan=False, sparse=False))

    def __repr__(self):
        defaults = {"estimator": None, "contamination": 0.1}
        shown = [f"{k}={v!r}" for k, v in self.get_params(deep=False).items()
                 if not (v is defaults[k] or (k == "contamination" and v == 0.1))]
        return f"OutlierDetector({', '.join(shown)})"

    # -- fitting --------------------------------------------------------------------------
    def fit(self, X, y=None, **fit_params):
        """Fit a clone of ``estimator`` on ``X`` (``y`` is ignored; ``fit_params`` go to its
        ``fit``), then set ``offset_`` from the training rows' scores."""
        contamination = self.contamination
        if not (isinstance(contamination, str) and contamination == "auto"):
            contamination = checks.number("contamination", contamination)
            if not 0 < contamination <= 0.5:
                raise ValueError("contamination must be in (0, 0.5] or 'auto', got "
                                 f"{contamination!r}")
        if self.estimator is None:
            n_rows = checks.rows(X, name="X", owner="OutlierDetector").shape[0]
            estimator = default_estimator(n_rows)
        elif hasattr(self.estimator, "fit") and hasattr(self.estimator, "score_samples"):
            estimator = type(self.estimator)(**self.estimator.get_params(deep=False))
        else:
            raise TypeError("estimator must be a model with fit and score_samples (an npae VAE "
                            f"or Autoencoder), got {type(self.estimator).__name__}")
        with warnings.catch_warnings():
            if self.estimator is None:  # a budget measured by the benchmark, not a convergence
                warnings.simplefilter("ignore", schedules.ConvergenceWarning)
            estimator.fit(X, **fit_params)
        scores = _computed(self._float_scores(estimator.score_samples(X)))
        if isinstance(contamination, str):
            median = float(np.median(scores))
            mad = float(np.median(np.abs(scores - median)))
            offset = median - MAD_RULE * MAD_TO_SIGMA * mad
        else:
            offset = float(np.percentile(scores, 100 * contamination))
        self.estimator_, self.offset_ = estimator, offset
        self.n_features_in_ = estimator.n_features_in_
        self.__dict__.pop("feature_names_in_", None)
        if hasattr(estimator, "feature_names_in_"):
            self.feature_names_in_ = estimator.feature_names_in_
        self.decision_scores_, self.threshold_ = -scores, -offset
        self.labels_ = (scores < offset).astype(np.int64)
        return self

    def fit_predict(self, X, y=None, **fit_params):
        """``fit(X)`` then ``predict(X)``: +1 for the inliers among the training rows, −1 for
        the outliers."""
        return self.fit(X, **fit_params).predict(X)

    # -- scoring --------------------------------------------------------------------------
    def fitted(self):
        """The fitted estimator; NotFittedError before ``fit``."""
        if not hasattr(self, "offset_"):
            raise not_fitted_error()("This OutlierDetector instance is not fitted yet: call "
                                     "fit(X) first")
        return self.estimator_

    def score_samples(self, X):
        """The fitted model's score of each row (float64; higher is more normal)."""
        return self._float_scores(self.fitted().score_samples(X))

    def decision_function(self, X):
        """``score_samples(X) − offset_``: negative for outliers, positive for inliers."""
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """+1 for inliers (``decision_function ≥ 0``), −1 for outliers, as integers."""
        return (self.decision_function(X) >= 0).astype(np.int64) * 2 - 1

    def feature_scores(self, X):
        """Each feature's share of each row's score, (n, d): the row sums are
        ``score_samples(X)``.

        A feature's share is its term of the reconstruction log-likelihood (averaged over the
        same draws as the score), less its charge for lying outside [0, 1] (Bernoulli); the
        VAE's KL term, which belongs to the whole row, is shared equally by the features.  The
        most negative entry of a row is the column the model finds oddest.  A DataFrame gives a
        DataFrame (same index, the feature names as columns); a Dask array a lazy Dask array.
        """
        model = self.fitted()
        if not isinstance(model, (VAE, Autoencoder)):
            raise TypeError(f"feature_scores needs an npae model, not {type(model).__name__}")
        if checks.is_dask_array(X):
            X = X.rechunk({1: -1})
            return X.map_blocks(self.feature_scores, dtype=np.float64,
                                meta=np.empty((0, X.shape[1]), dtype=np.float64))
        index = columns.pandas_index(X)
        columns.check_names("OutlierDetector", getattr(self, "feature_names_in_", None), X)
        X = checks.rows(X, name="X", n_features=self.n_features_in_, owner="OutlierDetector",
                        allow_empty=True)
        out = np.empty(X.shape, dtype=np.float64)
        for start, chunk in batches.chunks(X):
            chunk = np.ascontiguousarray(np.asarray(chunk), dtype=model.dtype_)
            checks.finite(chunk, model.dtype_, first_row=start)
            out[start:start + len(chunk)] = model.feature_terms(chunk)
        if index is None:
            return out
        names = getattr(self, "feature_names_in_", None)
        names = list(names) if names is not None else [f"x{j}" for j in range(out.shape[1])]
        return columns.wrap(out, "pandas", names, index)

    @staticmethod
    def _float_scores(scores):
        return scores.astype(np.float64) if scores.dtype != np.float64 else scores


def not_fitted_error():
    """npae's NotFittedError — and, once scikit-learn is loaded, one that is also scikit-learn's
    (``except sklearn.exceptions.NotFittedError`` catches it), without importing scikit-learn."""
    sklearn_exceptions = sys.modules.get("sklearn.exceptions")
    if sklearn_exceptions is None:
        return NotFittedError
    if "both" not in BOTH_NOT_FITTED:
        BOTH_NOT_FITTED["both"] = type("NotFittedError", (NotFittedError,
                                                          sklearn_exceptions.NotFittedError), {})
    return BOTH_NOT_FITTED["both"]


def _computed(scores):
    """A Dask result computed; an array as it is."""
    return np.asarray(scores.compute() if checks.is_dask_array(scores) else scores)
