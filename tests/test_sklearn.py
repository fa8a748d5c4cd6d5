"""npae's models as scikit-learn estimators: scikit-learn's own estimator checks, and the
workflows data scientists run with a transformer — grid search, cross-validation, pipelines,
pandas in and out, joblib, partial_fit, warm_start and early stopping."""

import contextlib
import io
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
pd = pytest.importorskip("pandas")
joblib = pytest.importorskip("joblib")
from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import MinMaxScaler, StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import npae  # noqa: E402

# scikit-learn's checks feed real-valued data (Gaussian blobs, values up to 3 or 100): the
# likelihood that fits such data is the Gaussian one (and squared error for the autoencoder).
# The Bernoulli defaults require data in [0, 1] and refuse those arrays at fit, as they must;
# they are exercised by the workflow tests below, on data in [0, 1].  No check is expected to fail.
SUITE = [npae.VAE(hidden=(8,), latent=2, likelihood="gaussian", epochs=3),
         npae.Autoencoder(hidden=(4,), output="identity", loss="mse", epochs=3)]


@parametrize_with_checks(SUITE, expected_failed_checks=lambda estimator: {})
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    X, y = npae.datasets.load_digits()
    return X[:600], y[:600]


def small_vae(**params):
    return npae.VAE(**{"hidden": (32,), "latent": 2, "epochs": 5, "batch_size": 64, **params})


# -- model selection -------------------------------------------------------------
def test_grid_search_over_latent_with_the_default_scoring_picks_by_the_elbo(digits):
    X, _ = digits
    search = GridSearchCV(small_vae(), {"latent": [2, 4]}, cv=3).fit(X)
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all() and (scores < 0).all()       # ELBOs in nats: negative
    assert search.best_params_["latent"] == [2, 4][int(np.argmax(scores))]
    assert search.best_estimator_.transform(X).shape == (len(X), search.best_params_["latent"])
    # the default scoring is the model's score: the mean ELBO of the held-out rows
    held_out = X[400:]
    model = small_vae(latent=4).fit(X[:400])
    assert model.score(held_out) == pytest.approx(model.score_samples(held_out).mean(), rel=1e-6)
    # score draws 4 ε shared by every row (deterministic): an estimate of the mean ELBO whose
    # error does not average out over rows, within a few per cent of a 200-draw estimate
    assert model.score(held_out) == pytest.approx(model.elbo(held_out, n_samples=200, seed=1).mean(),
                                                  rel=0.03)


def test_grid_search_over_epochs_a_constructor_hyper_parameter(digits):
    X, _ = digits
    search = GridSearchCV(small_vae(), {"epochs": [1, 8]}, cv=2).fit(X)
    assert search.best_params_ == {"epochs": 8}       # more training: a better ELBO


def test_cross_val_score_of_a_minmaxscaler_and_vae_pipeline_is_finite(digits):
    # The trap: a MinMaxScaler fitted on the training folds maps test folds slightly outside
    # [0, 1].  The encoder needs no likelihood, so transform takes such data; the Bernoulli score
    # charges the distance outside (npae.data.unit_interval) instead of returning NaN.
    X, _ = digits
    pipeline = make_pipeline(MinMaxScaler(), small_vae())
    stray = [MinMaxScaler().fit(X[train]).transform(X[test]) for train, test in
             sklearn.model_selection.KFold(3).split(X)]
    assert any(s.min() < 0 or s.max() > 1 for s in stray), "the folds must exercise the trap"
    scores = cross_val_score(pipeline, X, cv=3, error_score="raise")
    assert np.isfinite(scores).all() and len(scores) == 3


# -- pipelines, persistence -----------------------------------------------------------
def test_pipeline_with_a_scaler_fits_and_transforms(digits):
    X, _ = digits
    pipeline = make_pipeline(StandardScaler(), npae.VAE(hidden=(16,), latent=3, likelihood="gaussian",
                                                        epochs=3))
    codes = pipeline.fit_transform(X)
    assert codes.shape == (len(X), 3) and np.isfinite(codes).all()
    np.testing.assert_array_equal(codes, pipeline.transform(X))


def test_a_model_trained_by_hand_works_in_a_pipeline(digits):
    X, _ = digits
    vae = npae.VAE(64, hidden=(16,), latent=2)              # n_features given: built on first use
    optimizer = npae.Adam(1e-3)
    for batch in np.array_split(X, 10):
        loss, grads = vae.loss_and_grads(batch)
        optimizer.step(vae.params, grads)
    assert vae.__sklearn_is_fitted__()
    pipeline = sklearn.pipeline.Pipeline([("vae", vae)])
    np.testing.assert_array_equal(pipeline.transform(X), vae.encode(X))


def test_an_unbuilt_model_is_not_fitted(digits):
    X, _ = digits
    with pytest.raises(sklearn.exceptions.NotFittedError):
        sklearn.utils.validation.check_is_fitted(npae.VAE())
    with pytest.raises(npae.models.estimator.NotFittedError, match="not fitted"):
        npae.VAE().transform(X)


def test_joblib_round_trip_keeps_the_model(digits, tmp_path):
    X, _ = digits
    model = small_vae().fit(X)
    joblib.dump(model, tmp_path / "vae.joblib")
    again = joblib.load(tmp_path / "vae.joblib")
    np.testing.assert_array_equal(again.transform(X), model.transform(X))
    assert again.score(X) == model.score(X)
    assert again.get_params() == model.get_params()


def test_clone_gives_an_unfitted_copy_with_the_same_settings(digits):
    X, _ = digits
    model = small_vae(beta=2.0).fit(X)
    copy = clone(model)
    assert copy.get_params() == model.get_params() and not copy.__sklearn_is_fitted__()
    np.testing.assert_array_equal(copy.fit(X).transform(X), model.transform(X))


def test_get_params_returns_exactly_what_was_set():
    model = npae.Autoencoder(tied=float("inf"), dtype=None, hidden=128)
    params = model.get_params()
    assert params["tied"] == float("inf") and params["dtype"] is None and params["hidden"] == 128
    model.set_params(hidden="not checked yet")
    assert model.hidden == "not checked yet"       # set_params only sets
    with pytest.raises(TypeError, match="hidden must be a tuple of positive ints"):
        model.fit(np.random.default_rng(0).random((10, 4)))


# -- pandas -------------------------------------------------------------------------------
def test_a_dataframe_sets_feature_names_and_must_come_back_in_the_same_order(digits):
    X, _ = digits
    frame = pd.DataFrame(X, columns=[f"pixel{i}" for i in range(64)])
    model = small_vae().fit(frame)
    np.testing.assert_array_equal(model.feature_names_in_, frame.columns)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        np.testing.assert_array_equal(model.transform(frame), model.transform(X))
    with pytest.raises(ValueError, match="same order"):
        model.transform(frame[frame.columns[::-1]])
    renamed = frame.rename(columns={"pixel0": "other"})
    with pytest.raises(ValueError, match="unseen at fit time:\n- other"):
        model.transform(renamed)


def test_set_output_pandas_returns_dataframes_named_by_get_feature_names_out(digits):
    X, _ = digits
    frame = pd.DataFrame(X, columns=[f"p{i}" for i in range(64)], index=np.arange(600) + 1000)
    model = small_vae().set_output(transform="pandas").fit(frame)
    codes = model.transform(frame)
    assert isinstance(codes, pd.DataFrame)
    assert list(codes.columns) == ["vae0", "vae1"] == list(model.get_feature_names_out())
    assert (codes.index == frame.index).all()
    pipeline = make_pipeline(MinMaxScaler(), small_vae()).set_output(transform="pandas")
    assert list(pipeline.fit_transform(frame).columns) == ["vae0", "vae1"]
    assert list(npae.Autoencoder(hidden=(3,)).fit(X).get_feature_names_out()) == [
        "autoencoder0", "autoencoder1", "autoencoder2"]


# -- fitting ---------------------------------------------------------------------------------
def test_fit_is_idempotent_whatever_was_fitted_before(digits):
    X, _ = digits
    first = small_vae().fit(X).params
    first = {k: v.copy() for k, v in first.items()}
    model = small_vae().fit(X[::-1][:300] * 0.5).fit(X)        # something else first
    for name, value in model.params.items():
        np.testing.assert_array_equal(value, first[name], err_msg=name)
    assert len(model.history_["loss"]) == 5


def test_verbose_defaults_to_silence(digits):
    X, _ = digits
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        small_vae().fit(X)
    assert out.getvalue() == ""


def test_partial_fit_over_chunks_keeps_the_optimisers_state(digits):
    X, _ = digits
    model = small_vae()
    for chunk in np.array_split(X, 6):
        model.partial_fit(chunk)
    adam = model.training_.optimizer
    assert adam.t == 6 * 2                  # 100 rows per chunk, batches of 64: two steps each
    assert len(model.history_["loss"]) == 6 and model.n_iter_ == 6
    first_pass = small_vae(epochs=1).fit(X[:100]).history_["loss"][0]
    assert model.history_["loss"][-1] < first_pass
    with pytest.raises(ValueError, match="X has 63 features, but VAE is expecting 64"):
        model.partial_fit(X[:, :63])


def test_warm_start_continues_from_the_trained_weights(digits):
    X, _ = digits
    cold = small_vae(epochs=3).fit(X)
    warm = small_vae(epochs=3, warm_start=True).fit(X)
    np.testing.assert_array_equal(warm.transform(X), cold.transform(X))  # the first fit is the same
    before = {k: v.copy() for k, v in warm.params.items()}
    warm.fit(X)
    assert warm.history_["loss"][0] < cold.history_["loss"][0]  # it started where it stopped
    assert any(not np.array_equal(before[k], v) for k, v in warm.params.items())
    assert len(warm.history_["loss"]) == 3                       # a new fit's history


def test_early_stopping_stops_and_restores_the_best_validation_loss(digits):
    X, _ = digits
    model = npae.VAE(hidden=(128,), latent=8, epochs=300, batch_size=32, lr=3e-3,
                     early_stopping=True, validation_fraction=0.2, n_iter_no_change=3).fit(X)
    val = model.history_["val_loss"]
    assert len(val) < 300                                      # it stopped early
    assert model.best_epoch_ == int(np.argmin(val)) + 1
    assert model.best_val_loss_ == min(val)
    assert len(val) == model.best_epoch_ + 3                   # three epochs without improvement
    # the parameters are those of the best epoch: their validation loss is the best one
    held_out = _held_out_rows(model, X)
    assert model.average_loss(held_out, rng=0) == pytest.approx(min(val), rel=1e-6)


def _held_out_rows(model, X):
    """The rows early stopping held out: validation_fraction of them, drawn from the seed."""
    split = npae.checks.generators(model.seed, 4)[3]
    order = split.permutation(len(X))
    return X[np.sort(order[:round(model.validation_fraction * len(X))])]


def test_score_samples_is_deterministic_and_independent_of_the_other_rows(digits):
    X, _ = digits
    model = small_vae().fit(X)
    whole = model.score_samples(X[:50])
    np.testing.assert_array_equal(whole, model.score_samples(X[:50]))
    np.testing.assert_allclose(model.score_samples(X[:50][::-1])[::-1], whole, rtol=1e-6)
    np.testing.assert_allclose(model.score_samples(X[7:8]), whole[7:8], rtol=1e-6)
    ae = npae.Autoencoder(hidden=(8,), epochs=3).fit(X)
    recon = ae.reconstruct(X[:5])
    bce = -(X[:5] * np.log(recon) + (1 - X[:5]) * np.log(1 - recon)).sum(axis=1)
    np.testing.assert_allclose(ae.score_samples(X[:5]), -bce, rtol=1e-4)
    assert ae.score(X[:5]) == pytest.approx(-bce.mean(), rel=1e-4)


def test_the_tags_say_transformer_and_the_dtype_it_keeps():
    from sklearn.utils import get_tags
    assert get_tags(npae.VAE()).transformer_tags.preserves_dtype == ["float32"]
    assert get_tags(npae.VAE(dtype="float64")).transformer_tags.preserves_dtype == ["float64"]
    assert set(get_tags(npae.VAE(dtype=None)).transformer_tags.preserves_dtype) == {"float32",
                                                                                    "float64"}
    assert get_tags(npae.Autoencoder()).target_tags.required is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        X = np.random.default_rng(0).random((20, 4))
        assert npae.VAE(hidden=(4,), latent=2, dtype=None, epochs=1).fit(X).transform(X).dtype \
            == np.float64
