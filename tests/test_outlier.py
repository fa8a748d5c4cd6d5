"""npae.OutlierDetector in scikit-learn's outlier-detector convention (issue 19, item 3)."""

import io
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
pd = pytest.importorskip("pandas")
joblib = pytest.importorskip("joblib")
from sklearn.base import clone                                         # noqa: E402
from sklearn.datasets import load_breast_cancer                        # noqa: E402
from sklearn.exceptions import NotFittedError                          # noqa: E402
from sklearn.metrics import roc_auc_score                              # noqa: E402
from sklearn.model_selection import GridSearchCV                       # noqa: E402
from sklearn.pipeline import make_pipeline                             # noqa: E402
from sklearn.preprocessing import StandardScaler                       # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks    # noqa: E402

import npae  # noqa: E402


def small(**params):
    return npae.VAE(**{"hidden": (8,), "latent": 2, "likelihood": "gaussian", "epochs": 3, **params})


# float64 for the autoencoder: its float32 scores of a row differ in the last bits with the
# size of the batch they are computed in (BLAS), beyond the checks' rtol=1e-7.
@parametrize_with_checks([npae.OutlierDetector(small()),
                          npae.OutlierDetector(npae.Autoencoder(hidden=(4,), output="identity",
                                                                loss="mse", epochs=2, dtype="float64"),
                                               contamination="auto")],
                         expected_failed_checks=lambda estimator: {})
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    scaler = StandardScaler().fit(X[y == 1])
    return scaler.transform(X[y == 1]), scaler.transform(X), (y == 0).astype(int)  # 1: malignant


def test_the_convention_scores_decision_function_predict_and_offset(cancer):
    train, X, malignant = cancer
    detector = npae.OutlierDetector(small(epochs=20), contamination=0.05).fit(train)
    scores = detector.score_samples(X)
    assert scores.dtype == np.float64 and scores.shape == (len(X),)
    np.testing.assert_allclose(detector.decision_function(X), scores - detector.offset_)
    np.testing.assert_array_equal(detector.predict(X), np.where(scores >= detector.offset_, 1, -1))
    assert np.mean(detector.predict(train) == -1) == pytest.approx(0.05, abs=0.01)
    assert roc_auc_score(malignant, -scores) > 0.9
    # PyOD's aliases, in PyOD's sign: higher is more abnormal; labels 1 for outliers
    np.testing.assert_allclose(detector.decision_scores_, -detector.score_samples(train))
    assert detector.threshold_ == -detector.offset_
    np.testing.assert_array_equal(detector.labels_, detector.predict(train) == -1)
    np.testing.assert_array_equal(detector.fit_predict(train), detector.predict(train))


def test_auto_contamination_is_the_modified_z_score_rule(cancer):
    train, X, _ = cancer
    detector = npae.OutlierDetector(small(), contamination="auto").fit(train)
    scores = detector.score_samples(train)
    median = np.median(scores)
    mad = np.median(np.abs(scores - median))
    assert detector.offset_ == pytest.approx(median - 3.5 * 1.4826 * mad)


@pytest.mark.parametrize("bad", [0, -0.1, 0.51, 2, "most"])
def test_contamination_outside_its_range_is_refused(cancer, bad):
    with pytest.raises((ValueError, TypeError), match="contamination"):
        npae.OutlierDetector(small(), contamination=bad).fit(cancer[0])


def test_unfitted_is_refused_as_scikit_learn_and_npae_say_it():
    with pytest.raises(NotFittedError):
        npae.OutlierDetector().predict(np.zeros((2, 3)))
    with pytest.raises(npae.models.estimator.NotFittedError, match="not fitted yet"):
        npae.OutlierDetector().feature_scores(np.zeros((2, 3)))


def test_the_default_estimator_is_a_gaussian_vae_trained_about_3000_steps():
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", npae.ConvergenceWarning)
        detector = npae.OutlierDetector(contamination=0.1).fit(rng.uniform(size=(40, 3)))
    model = detector.estimator_
    assert (type(model), model.likelihood, model.epochs) == (npae.VAE, "gaussian", 100)
    assert detector.estimator is None            # the parameter is left as it was given
    assert npae.models.outlier.default_estimator(6000).epochs == 16    # 188 batches
    assert npae.models.outlier.default_estimator(1000).epochs == 94    # 32 batches
    assert npae.models.outlier.default_estimator(10**6).epochs == 10


@pytest.mark.parametrize("make", [lambda: small(epochs=2),
                                  lambda: npae.VAE(hidden=(6,), latent=2, epochs=2),
                                  lambda: npae.Autoencoder(hidden=(4,), epochs=2),
                                  lambda: npae.Autoencoder(hidden=(4,), output="identity", loss="mse",
                                                           epochs=2)])
def test_feature_scores_share_out_each_rows_score_and_name_the_odd_column(make):
    rng = np.random.default_rng(1)
    X = rng.uniform(0.2, 0.8, size=(60, 4))
    detector = npae.OutlierDetector(make()).fit(X)
    odd = X[:3].copy()
    odd[:, 2] = 30.0                      # far outside the data (and [0, 1])
    for rows in (X[:5], odd):
        shares = detector.feature_scores(rows)
        assert shares.shape == rows.shape
        np.testing.assert_allclose(shares.sum(axis=1), detector.score_samples(rows), rtol=1e-4,
                                   atol=1e-4)
    if not isinstance(detector.estimator_, npae.Autoencoder) or detector.estimator_.loss == "bce":
        # (an untrained squared-error autoencoder spreads one wild input over every output)
        assert (np.argmin(detector.feature_scores(odd), axis=1) == 2).all()


def test_pipeline_grid_search_with_an_auc_scorer_and_labels(cancer):
    _, X, malignant = cancer
    pipeline = make_pipeline(StandardScaler(), npae.OutlierDetector(small()))
    search = GridSearchCV(pipeline, {"outlierdetector__estimator__latent": [1, 3]},
                          scoring="roc_auc", cv=2).fit(X, 1 - malignant)   # 1: normal, as scored
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_score_ > 0.7
    assert search.predict(X).shape == (len(X),)


def test_clone_joblib_and_pandas_in_and_out(cancer):
    train, X, _ = cancer
    names = [f"f{j}" for j in range(train.shape[1])]
    frame = pd.DataFrame(train, columns=names, index=np.arange(len(train)) + 1000)
    detector = npae.OutlierDetector(small(), contamination=0.2)
    twin = clone(detector)
    assert twin.get_params(deep=False)["contamination"] == 0.2 and twin.estimator is not detector.estimator
    detector.fit(frame)
    assert list(detector.feature_names_in_) == names
    shares = detector.feature_scores(frame.iloc[:4])
    assert isinstance(shares, pd.DataFrame) and list(shares.columns) == names
    assert list(shares.index) == [1000, 1001, 1002, 1003]
    buffer = io.BytesIO()
    joblib.dump(detector, buffer)
    again = joblib.load(io.BytesIO(buffer.getvalue()))
    np.testing.assert_array_equal(again.score_samples(frame), detector.score_samples(frame))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        detector.predict(frame)
    with pytest.warns(UserWarning, match="feature names"):
        detector.predict(train)


def test_dask_arrays_give_lazy_scores(cancer):
    da = pytest.importorskip("dask.array")
    train, X, _ = cancer
    detector = npae.OutlierDetector(small()).fit(da.from_array(train, chunks=(100, -1)))
    lazy = da.from_array(X, chunks=(200, -1))
    for method in ("score_samples", "decision_function", "predict", "feature_scores"):
        result = getattr(detector, method)(lazy)
        assert hasattr(result, "compute"), method
        np.testing.assert_allclose(result.compute(), getattr(detector, method)(X), rtol=1e-6)
    # trained a block at a time, it is its own model: its offset is its own training scores'
    assert detector.offset_ == pytest.approx(np.percentile(detector.score_samples(train), 10))
