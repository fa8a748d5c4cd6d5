"""Data at the edge of [0, 1], and scores that never hide an anomaly (issue 19, items 1 and 2)."""

import warnings

import numpy as np
import pytest

import npae
from npae.data import unit_interval

sklearn = pytest.importorskip("sklearn")
from sklearn.datasets import load_wine                          # noqa: E402
from sklearn.metrics import roc_auc_score                       # noqa: E402
from sklearn.model_selection import cross_val_score             # noqa: E402
from sklearn.pipeline import make_pipeline                      # noqa: E402
from sklearn.preprocessing import MinMaxScaler                  # noqa: E402

MODELS = {"vae": lambda **kw: npae.VAE(hidden=(8,), latent=2, epochs=2, **kw),
          "autoencoder": lambda **kw: npae.Autoencoder(hidden=(8, 2), epochs=2, **kw)}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("make", MODELS.values(), ids=MODELS.keys())
def test_values_outside_by_rounding_are_accepted_and_trained_as_the_boundary(make, dtype):
    X = np.random.default_rng(0).uniform(size=(20, 5)).astype(dtype)
    eps = np.finfo(dtype).eps
    edgy = X.copy()
    edgy[0, 0], edgy[1, 1], edgy[2, 2] = 1 + 2 * eps, -eps / 4, np.nextafter(np.array(1, dtype), 2)
    clean = np.clip(edgy, 0, 1)
    a = make(dtype=dtype, seed=1).fit(edgy)
    b = make(dtype=dtype, seed=1).fit(clean)
    for name, p in a.params.items():
        np.testing.assert_array_equal(p, b.params[name])
    assert np.isfinite(a.loss_and_grads(edgy[:4])[0])


def test_minmaxscaler_rounding_is_accepted():
    X, _ = load_wine(return_X_y=True)
    scaled = MinMaxScaler().fit(X[:100]).transform(X[:100])
    assert scaled.max() <= 1 + 4 * np.finfo(float).eps
    npae.VAE(hidden=(8,), latent=2, epochs=1).fit(scaled)


def test_a_refused_value_is_printed_at_full_precision_with_its_row_and_column():
    X = np.full((6, 3), 0.5)
    X[4, 2] = 1 + 1e-12                     # beyond rounding, and ":g" would print it as 1
    with pytest.raises(ValueError) as info:
        npae.VAE(hidden=(4,), latent=1, epochs=1).fit(X)
    assert str(info.value) == (
        "X must lie in [0, 1] for a Bernoulli / binary cross-entropy likelihood, but "
        "X[4, 2] = 1.000000000001 (its values span [0.5, 1.000000000001]); scale it to [0, 1] "
        "or use likelihood='gaussian'")
    assert unit_interval.full(1.0000000000000002) == "1.0000000000000002"
    assert unit_interval.full(255.0) == "255"


def test_the_first_value_outside_is_found_in_chunks_and_dask_blocks():
    X = np.full((10_000, 4), 0.25)
    X[9_000, 3] = -0.5
    assert unit_interval.first_outside(X) == (9_000, 3, -0.5)
    da = pytest.importorskip("dask.array")
    assert unit_interval.first_outside(da.from_array(X, chunks=(3_000, 2))) == (9_000, 3, -0.5)


@pytest.mark.parametrize("make", MODELS.values(), ids=MODELS.keys())
def test_a_bernoulli_row_further_outside_never_scores_higher(make):
    model = make().fit(np.random.default_rng(0).uniform(size=(30, 4)))
    row = np.full((1, 4), 0.9)
    steps = [row + np.array([[t, 0, 0, 0]]) for t in (0.0, 0.1, 0.5, 1.0, 5.0)]
    steps += [row - np.array([[0, t, 0, 0]]) for t in (1.0, 2.0)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = [float(model.score_samples(x)[0]) for x in steps]
    inside = scores[0]
    assert all(s < inside for s in scores[1:])
    assert scores[1] > scores[2] > scores[3] > scores[4]
    assert scores[5] > scores[6]


def test_cross_val_score_of_a_minmaxscaler_pipeline_has_no_nan():
    X, _ = load_wine(return_X_y=True)
    scores = cross_val_score(make_pipeline(MinMaxScaler(), npae.VAE(hidden=(8,), latent=2,
                                                                    epochs=3)), X)
    assert np.isfinite(scores).all(), scores


@pytest.mark.parametrize("normal", [0, 1, 2])
def test_the_wine_one_class_recipe_ranks_the_other_classes_as_anomalies(normal):
    X, y = load_wine(return_X_y=True)
    scaler = MinMaxScaler().fit(X[y == normal])
    model = npae.VAE(hidden=(32,), latent=4, epochs=100, batch_size=32)
    model.fit(scaler.transform(X[y == normal]))
    auc = roc_auc_score(y != normal, -model.score_samples(scaler.transform(X)))
    assert auc >= 0.95, auc
