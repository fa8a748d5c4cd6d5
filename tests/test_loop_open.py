"""The loop, opened (issue 19, item 5): settings between partial_fit calls, callbacks, learning-
rate schedules saved with checkpoints, and the ConvergenceWarning."""

import math
import warnings

import numpy as np
import pytest

import npae
from npae.training import schedules


@pytest.fixture(scope="module")
def digits():
    return npae.datasets.load_digits()[0][:320]


def small(**params):
    return npae.VAE(**{"n_features": 64, "hidden": (16,), "latent": 2, "batch_size": 32,
                       "seed": 0, **params})


# -- set_params between partial_fit calls -------------------------------------------------
def test_set_params_lr_between_partial_fit_calls_takes_effect(digits):
    model = small().partial_fit(digits)
    assert model.training_.optimizer.lr == 1e-3
    moments = model.training_.optimizer.t
    model.set_params(lr=1e-4).partial_fit(digits)
    assert model.training_.optimizer.lr == 1e-4
    assert model.training_.optimizer.t > moments           # the same optimiser, going on
    # the same as a run whose optimiser was given the new rate by hand
    twin = small().partial_fit(digits)
    twin.training_.optimizer.lr = 1e-4
    twin.partial_fit(digits)
    for name, p in model.params.items():
        np.testing.assert_array_equal(p, twin.params[name])


def test_a_setting_that_cannot_change_mid_training_says_so(digits):
    model = small().partial_fit(digits)
    with pytest.warns(UserWarning, match=r"seed changed from 0 to 3 during training; partial_fit "
                                         r"goes on with the run's generator"):
        model.set_params(seed=3).partial_fit(digits)
    with pytest.raises(ValueError, match=r"latent changed since the network was built; fit again"):
        model.set_params(latent=3).partial_fit(digits)


# -- callbacks -----------------------------------------------------------------------------
def test_callbacks_see_each_epoch_and_true_stops_after_it(digits):
    seen = []

    def log(model, record):
        seen.append(record)

    def stop_at_three(model, record):
        return record["epoch"] == 3

    model = small().fit(digits[:256], epochs=6, validation_data=digits[256:],
                        callbacks=[log, stop_at_three])
    assert [r["epoch"] for r in seen] == [1, 2, 3]
    assert model.n_iter_ == 3 and model.training_.stopped == "callback"
    assert [r["loss"] for r in seen] == model.history_["loss"]
    assert [r["val_loss"] for r in seen] == model.history_["val_loss"]
    assert all(r["lr"] == 1e-3 for r in seen)
    small().fit(digits, epochs=1, callbacks=log)          # one callable is a list of one
    assert seen[-1]["epoch"] == 1 and "val_loss" not in seen[-1]


def test_callbacks_must_be_callable(digits):
    with pytest.raises(TypeError, match=r"callbacks\[1\] must be callable as callback\(model, record\)"):
        small().fit(digits, epochs=1, callbacks=[print, "print"])


# -- schedules -----------------------------------------------------------------------------
@pytest.mark.parametrize("schedule, expected", [
    ("constant", [1e-2] * 4),
    ("invscaling", [1e-2 / math.sqrt(e) for e in (1, 2, 3, 4)]),
    ("cosine", [1e-2 * 0.5 * (1 + math.cos(math.pi * (e - 1) / 4)) for e in (1, 2, 3, 4)]),
    (lambda epoch: 0.01 / epoch, [0.01, 0.005, 0.01 / 3, 0.0025]),
])
def test_a_schedule_sets_the_rate_of_each_epoch(digits, schedule, expected):
    rates = []
    small(lr=1e-2).fit(digits, epochs=4, lr_schedule=schedule,
                       callbacks=[lambda model, record: rates.append(record["lr"])])
    np.testing.assert_allclose(rates, expected, rtol=1e-12)


def test_the_named_step_and_adaptive_schedules():
    assert [schedules.rate("step", 1.0, e, {}, 30) for e in (1, 10, 11, 21)] == [1, 1, 0.5, 0.25]
    # adaptive: divided by 5 each time the loss goes two epochs without improving
    assert schedules.stalls([5, 4, 3]) == 0
    assert schedules.stalls([5, 4, 4, 4]) == 1
    assert schedules.stalls([5, 4, 4, 4, 4, 4]) == 2
    assert schedules.rate("adaptive", 1.0, 7, {"loss": [5, 4, 4, 4]}, 10) == 0.2
    assert schedules.rate("adaptive", 1.0, 7, {"loss": [5, 4, 4, 4], "val_loss": [3, 2]}, 10) == 1


@pytest.mark.parametrize("bad, error, pattern", [
    ("warm", ValueError, r"lr_schedule"), (lambda e: -1.0, ValueError, r"lr_schedule\(1\) must be a positive")])
def test_a_bad_schedule_is_refused(digits, bad, error, pattern):
    with pytest.raises(error, match=pattern):
        small().fit(digits, epochs=1, lr_schedule=bad)


@pytest.mark.parametrize("schedule", ["cosine", "adaptive", lambda epoch: 1e-3 * 0.7 ** epoch])
def test_a_scheduled_run_resumes_from_its_checkpoint_bit_identically(digits, tmp_path, schedule):
    straight = small().fit(digits, epochs=4, lr_schedule=schedule)
    path = tmp_path / "ckpt.npz"
    small().fit(digits, epochs=4, lr_schedule=schedule, checkpoint=path,
                callbacks=[lambda model, record: record["epoch"] == 2])
    resumed = small().fit(digits, epochs=4, lr_schedule=schedule, resume=path)
    for name, p in straight.params.items():
        np.testing.assert_array_equal(p, resumed.params[name])
    assert straight.history_ == resumed.history_
    assert straight.training_.optimizer.lr == resumed.training_.optimizer.lr


# -- convergence ---------------------------------------------------------------------------
def test_the_undertrained_wine_default_warns():
    # the case: ten epochs of batch 128 on 178 rows, 20 steps; the Bernoulli loss of
    # continuous data sits on a high floor, so its fall is small relative to its size
    load_wine = pytest.importorskip("sklearn.datasets").load_wine
    X, _ = load_wine(return_X_y=True)
    X = (X - X.min(axis=0)) / (X.max(axis=0) - X.min(axis=0))
    with pytest.warns(npae.ConvergenceWarning):
        npae.VAE().fit(X)
    assert schedules.still_falling([3.0, 2.0, 1.5, 1.4, 1.3, 1.2])[0] < -3


def test_a_run_still_clearly_improving_warns_as_scikit_learn_does(digits):
    with pytest.warns(npae.ConvergenceWarning, match=r"VAE: the loss was still falling after 5 "
                                                     r"epochs \(its last epochs gained .*raise epochs"):
        small().fit(digits, epochs=5)
    assert issubclass(npae.ConvergenceWarning, UserWarning)


def test_no_convergence_warning_for_a_flat_loss_a_stopped_run_or_partial_fit(digits):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        flat = [3.0, 2.0, 1.5, 1.2] + [1.0 + 0.01 * (-1) ** i for i in range(20)]
        schedules.warn_if_improving(flat, "VAE", 24)                         # only noise left
        schedules.warn_if_improving([3.0, 2.0, 1.0, 1.1, 0.9], "VAE", 5)    # noisy: t > −3
        schedules.warn_if_improving(flat[:4] + [1.0] * 4, "VAE", 8)         # flat at the end
        schedules.warn_if_improving([3.0, 2.0, 1.0], "VAE", 3)              # too few epochs
        small().fit(digits, epochs=5, callbacks=[lambda model, record: record["epoch"] == 4])
        small().partial_fit(digits).partial_fit(digits).partial_fit(digits)
