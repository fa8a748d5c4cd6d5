"""npae.training: a run that diverges stops with its last finite parameters; an overflowing or
interrupted step is undone; checkpoints resume bit-identically, after Ctrl-C in this process
or SIGKILL / SIGINT / SIGTERM in another; a resume with other settings is refused and changes
nothing; SIGTERM ends the process with status 143 after saving."""

import errno
import json
import os
import re
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import npae
from conftest import assert_unchanged, snapshot
from npae import checks
from npae.files import atomic
from npae.training import checkpoints, loop
from npae.training.signals import Terminated


@pytest.fixture(scope="module")
def digits():
    return npae.datasets.load_digits()[0]


# =============================================================================
# Divergence and the guarded step
# =============================================================================
def test_fit_with_a_learning_rate_of_1e6_stops_naming_epoch_and_batch_and_keeps_the_last_finite_step(digits):
    model = npae.VAE(64, (16,), latent=2, seed=0)
    seen = []

    class Recording(npae.Adam):
        def step(self, params, grads):
            super().step(params, grads)
            seen.append({k: v.copy() for k, v in params.items()})

    start = {k: v.copy() for k, v in model.params.items()}
    with np.errstate(over="ignore", invalid="ignore"):
        diverged = (r"^training diverged at epoch 1, batch (\d+): .*; the model keeps the parameters "
                    r"of its last finite step\. Try a smaller learning rate \(optimizer=Adam\(lr=1e\+06")
        with pytest.raises(FloatingPointError, match=diverged) as info:
            model.fit(digits[:512], epochs=5, batch_size=64, optimizer=Recording(lr=1e6), verbose=0, seed=0)
    batch = int(re.search(r"batch (\d+)", str(info.value)).group(1))
    if "the update made a parameter overflow" in str(info.value):
        assert len(seen) == batch          # the failing step ran, and was undone
        last_good = seen[-2] if batch > 1 else start
    else:
        assert len(seen) == batch - 1      # the failing batch's gradient was refused before its step
        last_good = seen[-1] if batch > 1 else start
    for name, p in model.params.items():
        assert np.isfinite(p).all()
        assert np.array_equal(p, last_good[name])  # the parameters the failing batch saw
    assert np.isfinite(model.encode(digits[:4])).all()  # and the model is still usable
    assert model.history_ == {"loss": []} and model.n_iter_ == 0


@pytest.mark.parametrize("optimizer", [lambda: npae.SGD(lr=1e6), lambda: npae.Adam(lr=1e6)], ids=["sgd", "adam"])
def test_a_gaussian_vae_that_diverges_keeps_finite_parameters(optimizer, digits):
    model = npae.VAE(64, (16,), latent=2, likelihood="gaussian", seed=0)
    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(FloatingPointError, match=r"^training diverged at epoch \d+, batch \d+"):
            model.fit(digits[:512], epochs=10, batch_size=64, optimizer=optimizer(), verbose=0, seed=0)
    assert all(np.isfinite(p).all() for p in model.params.values())


def test_a_run_diverging_on_data_of_a_huge_scale_says_to_standardise_it(digits):
    model = npae.Autoencoder(64, (16,), loss="mse", output="identity", seed=0)
    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(FloatingPointError) as info:
            model.fit(digits[:512] * 1e5, epochs=3, batch_size=64, lr=1e3, seed=0)
    assert str(info.value).endswith(", and standardise the data: it spans [0, 1e+05], a scale at "
                                    "which the losses overflow (e.g. scikit-learn's StandardScaler)")
    with np.errstate(over="ignore", invalid="ignore"):     # data of the usual scale: no such advice
        with pytest.raises(FloatingPointError) as info:
            npae.VAE(64, (16,), latent=2, likelihood="gaussian", seed=0).fit(
                digits[:512], epochs=3, batch_size=64, optimizer=npae.Adam(lr=1e6), seed=0)
    assert "standardise" not in str(info.value)


class _Overflowing:
    """An optimiser whose third step turns a parameter infinite."""

    def __init__(self):
        self.inner, self.t = npae.SGD(lr=0.01), 0

    def step(self, params, grads):
        self.t += 1
        self.inner.step(params, grads)
        if self.t == 3:
            next(iter(params.values())).flat[0] = np.inf


class _InterruptedMidStep:
    """An optimiser pressed Ctrl-C twice (KeyboardInterrupt) halfway through its third update."""

    def __init__(self):
        self.t = 0

    def step(self, params, grads):
        self.t += 1
        for i, (name, p) in enumerate(params.items()):
            p -= 0.01 * grads[name]
            if self.t == 3 and i == 1:
                raise KeyboardInterrupt


@pytest.mark.parametrize("optimizer, error, pattern", [
    (_Overflowing, FloatingPointError, r"epoch 1, batch 3: the update made a parameter overflow"),
    (_InterruptedMidStep, KeyboardInterrupt, None),
], ids=["overflow", "interrupted"])
def test_a_step_that_overflows_or_is_interrupted_is_undone(optimizer, error, pattern, digits):
    model = npae.Autoencoder(64, (8,), seed=0)
    reference = npae.Autoencoder(64, (8,), seed=0)
    reference.fit(digits[:64], epochs=1, batch_size=16, optimizer=npae.SGD(lr=0.01), shuffle=False, verbose=0)
    # two steps of the reference run: refit with the first 32 rows only
    two_steps = npae.Autoencoder(64, (8,), seed=0)
    two_steps.fit(digits[:32], epochs=1, batch_size=16, optimizer=npae.SGD(lr=0.01), shuffle=False, verbose=0)
    with pytest.raises(error, match=pattern):
        model.fit(digits[:64], epochs=1, batch_size=16, optimizer=optimizer(), shuffle=False, verbose=0)
    for name, p in model.params.items():
        assert np.array_equal(p, two_steps.params[name])
        assert not np.array_equal(p, reference.params[name])


# =============================================================================
# Seeding, batches
# =============================================================================
def test_fit_draws_the_shuffles_and_noise_from_stream_1_of_the_seed(digits):
    """Weights from stream 0, shuffles and ε from stream 1, the model's own rng_ is stream 2."""
    X = digits[:100]
    model = npae.VAE(64, (8,), latent=3, seed=0).fit(X, epochs=2, batch_size=32, seed=9)
    weights, shuffles, own, _ = checks.generators(9, 4)
    for _ in range(2):
        shuffles.permutation(100)
        for size in (32, 32, 32, 4):
            shuffles.standard_normal((size, 3), dtype=np.float32)
    assert model.training_.rng.bit_generator.state == shuffles.bit_generator.state
    assert model.rng_.bit_generator.state == own.bit_generator.state
    first = npae.Dense(64, 8, "relu", seed=weights, dtype="float32", init="fan-in").params["W"]
    assert np.array_equal(npae.VAE(64, (8,), latent=3, seed=9).built().params["encoder.0.W"], first)


def test_a_batch_larger_than_the_data_set_is_the_whole_data_set(digits):
    X = digits[:40]
    big = npae.VAE(64, (8,), latent=2, seed=0).fit(X, epochs=2, batch_size=1000, verbose=0, seed=1)
    exact = npae.VAE(64, (8,), latent=2, seed=0).fit(X, epochs=2, batch_size=40, verbose=0, seed=1)
    for name, p in exact.params.items():
        assert np.array_equal(big.params[name], p)
    assert big.training_.optimizer.t == 2


# =============================================================================
# Checkpoints, Ctrl-C and resume, in this process
# =============================================================================
RESUMABLE = {
    "vae": lambda: npae.VAE(64, (16,), latent=2, seed=0),
    "iwae-warmup": lambda: npae.VAE(64, (16,), latent=2, objective="iwae", k=2, warmup_epochs=2, seed=0),
    "denoising-ae": lambda: npae.Autoencoder(64, (8,), noise="mask", noise_level=0.3, seed=0),
}
FIT = dict(epochs=3, batch_size=32, seed=5, verbose=0)


def assert_same_training_state(model, other):
    """Same parameters, history, generators, position and optimiser (the one training used:
    ``training_.optimizer``)."""
    for name, p in model.params.items():
        assert np.array_equal(other.params[name], p), name
    assert other.history_ == model.history_ and other.n_iter_ == model.n_iter_
    assert other.training_.rng.bit_generator.state == model.training_.rng.bit_generator.state
    assert other.rng_.bit_generator.state == model.rng_.bit_generator.state
    assert other.training_.epoch == model.training_.epoch
    state = model.training_.optimizer.state_dict()
    other_state = other.training_.optimizer.state_dict()
    assert state["t"] == other_state["t"] > 0
    for moment in ("m", "v"):
        assert state[moment].keys() == other_state[moment].keys()
        for name, value in state[moment].items():
            assert np.array_equal(other_state[moment][name], value)


class CtrlCAt(npae.Adam):
    """Adam that sends ``signum`` (Ctrl-C: SIGINT) to this very process right after step ``at``."""

    def __init__(self, at, signum=signal.SIGINT, **hyper):
        super().__init__(**hyper)
        self.at, self.signum = at, signum

    def step(self, params, grads):
        super().step(params, grads)
        if self.t == self.at:
            os.kill(os.getpid(), self.signum)


def _training_record(path):
    with np.load(path, allow_pickle=False) as archive:
        return json.loads(str(archive["__npae__"]))["training"]


@pytest.mark.parametrize("make", RESUMABLE.values(), ids=RESUMABLE.keys())
def test_resuming_from_a_checkpoint_ends_bit_identical_to_an_uninterrupted_run(make, digits, tmp_path):
    X, X_val = digits[:300], digits[300:340]
    straight, straight_opt = make(), npae.Adam()
    straight.fit(X, optimizer=straight_opt, validation_data=X_val, **FIT)

    path = tmp_path / "ckpt.npz"
    first = make()
    first.fit(X, optimizer=npae.Adam(), validation_data=X_val, checkpoint=path, **{**FIT, "epochs": 1})
    resumed, resumed_opt = make(), npae.Adam()
    resumed.fit(X, optimizer=resumed_opt, validation_data=X_val, checkpoint=path, resume=path, **FIT)
    assert_same_training_state(straight, resumed)
    assert len(resumed.history_["loss"]) == len(resumed.history_["val_loss"]) == 3
    assert _training_record(path)["epoch"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.npz"]


@pytest.mark.parametrize("at", [12, 58], ids=["before-the-best-epoch", "while-waiting"])
def test_early_stopping_resumes_with_its_best_epoch(at, digits, tmp_path):
    X = digits[:300]   # 240 rows to train on: 8 batches an epoch; stops after epoch 8, best 6
    settings = dict(FIT, epochs=10, early_stopping=True, validation_fraction=0.2, n_iter_no_change=2)
    straight = npae.VAE(64, (16,), latent=2, seed=0)
    straight.fit(X, optimizer=npae.Adam(0.05), **settings)
    assert straight.training_.stopped == "early stopping" and straight.best_epoch_ == 6
    path = tmp_path / "ckpt.npz"
    stopped = npae.VAE(64, (16,), latent=2, seed=0)
    stopped.fit(X, optimizer=CtrlCAt(at, lr=0.05), checkpoint=path, **settings)
    assert stopped.interrupted_ and len(stopped.history_["loss"]) == at // 8
    resumed = npae.VAE(64, (16,), latent=2, seed=0)
    resumed.fit(X, optimizer=npae.Adam(0.05), checkpoint=path, resume=path, **settings)
    assert_same_training_state(straight, resumed)
    assert (resumed.best_epoch_, resumed.best_val_loss_) == (straight.best_epoch_, straight.best_val_loss_)
    assert resumed.training_.stopped == "early stopping"


def test_the_optimizer_given_with_resume_is_the_one_that_goes_on(digits, tmp_path):
    """fit(optimizer=opt, resume=...) restores the checkpoint's state into ``opt`` and trains it,
    as fit(optimizer=opt) does without resume, so that ``opt`` can be saved afterwards."""
    path = tmp_path / "ckpt.npz"
    RESUMABLE["vae"]().fit(digits[:300], optimizer=CtrlCAt(13), checkpoint=path, **FIT)
    plain = npae.Adam()
    model = RESUMABLE["vae"]().fit(digits[:300], optimizer=plain, **FIT)
    assert model.training_.optimizer is plain and plain.t == 30
    given = npae.Adam()
    resumed = RESUMABLE["vae"]().fit(digits[:300], optimizer=given, resume=path, **FIT)
    assert resumed.training_.optimizer.t == 30
    assert resumed.training_.optimizer is given and given.t == 30


@pytest.mark.parametrize("shuffle", [True, False], ids=["shuffled", "in-order"])
@pytest.mark.parametrize("at", [1, 13, 10], ids=["first-step", "mid-epoch", "last-step-of-an-epoch"])
@pytest.mark.parametrize("make", [RESUMABLE["vae"], RESUMABLE["denoising-ae"]], ids=["vae", "denoising-ae"])
def test_ctrl_c_stops_at_a_batch_boundary_saves_and_resumes_bit_identically(make, at, shuffle, digits, tmp_path):
    X = digits[:300]  # 10 batches of 32 (the last one 12) per epoch
    straight, straight_opt = make(), npae.Adam()
    straight.fit(X, optimizer=straight_opt, shuffle=shuffle, **FIT)

    path = tmp_path / "ckpt.npz"
    model, opt = make(), CtrlCAt(at)
    returned = model.fit(X, optimizer=opt, shuffle=shuffle, checkpoint=path, **FIT)
    assert returned is model and model.interrupted_ and model.interrupted
    assert model.training_.stopped == "SIGINT"
    assert opt.t == at  # stopped at the next batch boundary: the interrupted step was completed
    assert len(model.history_["loss"]) == at // 10
    assert all(np.isfinite(p).all() for p in model.params.values())
    assert model.encode(X[:3]).shape == (3, model.code_size)  # usable as it is
    record = _training_record(path)
    assert (record["epoch"], record["batch"]) == divmod(at, 10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.npz"]

    resumed, resumed_opt = make(), npae.Adam()
    resumed.fit(X, optimizer=resumed_opt, shuffle=shuffle, checkpoint=path, resume=path, **FIT)
    assert not resumed.interrupted_
    assert_same_training_state(straight, resumed)


def test_ctrl_c_without_a_checkpoint_returns_a_usable_model_and_puts_the_handlers_back(digits):
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    model = RESUMABLE["vae"]()
    model.fit(digits[:300], optimizer=CtrlCAt(4), **FIT)
    assert model.interrupted_ and model.history_ == {"loss": []} and model.n_iter_ == 0
    assert np.isfinite(model.elbo(digits[:5])).all()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    model.fit(digits[:300], **FIT)           # the next run is not interrupted by the old flag
    assert not model.interrupted_ and len(model.history_["loss"]) == 3


def test_a_second_ctrl_c_stops_as_soon_as_the_step_it_lands_in_is_complete(digits):
    class TwiceMidStep(npae.Adam):
        """Ctrl-C pressed twice in the middle of step 3's update."""

        def step(self, params, grads):
            if self.t == 2:
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)       # the second press stops the run ...
            super().step(params, grads)
            self.after = {k: v.copy() for k, v in params.items()}

    handler = signal.getsignal(signal.SIGINT)
    model, opt = RESUMABLE["vae"](), TwiceMidStep()
    with pytest.raises(KeyboardInterrupt):
        model.fit(digits[:300], optimizer=opt, **FIT)
    # ... once the step it landed in is complete: never a half-updated model
    for name, p in model.params.items():
        assert np.array_equal(p, opt.after[name]), name
    assert opt.t == 3 and model.n_iter_ == 0
    assert signal.getsignal(signal.SIGINT) is handler


def test_sigterm_stops_at_a_batch_boundary_saves_and_raises_terminated(digits, tmp_path):
    handler = signal.getsignal(signal.SIGTERM)
    path = tmp_path / "ckpt.npz"
    model, opt = RESUMABLE["vae"](), CtrlCAt(13, signal.SIGTERM)
    with pytest.raises(Terminated) as info:
        model.fit(digits[:300], optimizer=opt, checkpoint=path, **FIT)
    assert isinstance(info.value, SystemExit) and info.value.code == 143
    assert opt.t == 13 and model.interrupted_ and model.training_.stopped == "SIGTERM"
    assert len(model.history_["loss"]) == 1
    record = _training_record(path)
    assert (record["epoch"], record["batch"]) == (1, 3)
    loaded = npae.load(path)
    for name, p in model.params.items():
        assert np.array_equal(loaded.params[name], p)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.npz"]
    assert signal.getsignal(signal.SIGTERM) == handler


def _sigterm_to_self():
    os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.parametrize("when", ["last-batch", "last-validation", "final-save"])
def test_a_sigterm_as_the_run_ends_is_not_swallowed(when, digits, tmp_path, monkeypatch):
    handler = signal.getsignal(signal.SIGTERM)
    X, path = digits[:300], tmp_path / "ckpt.npz"                 # 10 batches an epoch, 3 epochs
    model, opt = RESUMABLE["vae"](), CtrlCAt(30 if when == "last-batch" else 0, signal.SIGTERM)
    if when == "last-validation":
        average_loss = model.average_loss
        calls = []

        def signalled(X, **kw):
            calls.append(1)
            if len(calls) == FIT["epochs"]:
                _sigterm_to_self()
            return average_loss(X, **kw)
        monkeypatch.setattr(model, "average_loss", signalled)
    if when == "final-save":
        save = loop.save_checkpoint

        def signalled(path, model, state, setup):
            save(path, model, state, setup)
            if state.epoch == FIT["epochs"]:
                _sigterm_to_self()
        monkeypatch.setattr(loop, "save_checkpoint", signalled)
    with pytest.raises(Terminated):
        model.fit(X, optimizer=opt, checkpoint=path, validation_data=digits[300:400], **FIT)
    assert model.interrupted_ and model.training_.stopped == "SIGTERM"
    assert model.n_iter_ == 3 and _training_record(path)["epoch"] == 3   # the run, complete
    assert signal.getsignal(signal.SIGTERM) == handler


def test_a_loop_of_one_batch_partial_fits_honours_sigterm(digits):
    model, X = RESUMABLE["vae"](), digits[:32]
    model.partial_fit(X)
    opt = CtrlCAt(model.training_.optimizer.t + 2, signal.SIGTERM)
    opt.load_state_dict(model.training_.optimizer.state_dict())
    model.training_.optimizer = opt
    with pytest.raises(Terminated):
        for _ in range(5):                           # what dask-ml's Incremental runs
            model.partial_fit(X)
    assert opt.t == opt.at and model.interrupted_


def test_a_sigterm_the_process_ignores_stays_ignored(digits):
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        model = RESUMABLE["vae"]().fit(digits[:300], optimizer=CtrlCAt(3, signal.SIGTERM), **FIT)
        assert not model.interrupted_ and model.n_iter_ == 3
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_checkpoints_are_written_every_so_many_epochs_and_at_the_end(digits, tmp_path, monkeypatch):
    written = []
    save = checkpoints.save_checkpoint
    monkeypatch.setattr(loop, "save_checkpoint",
                        lambda path, model, state, setup: (written.append(state.epoch),
                                                           save(path, model, state, setup)))
    path = tmp_path / "ckpt.npz"
    RESUMABLE["vae"]().fit(digits[:100], checkpoint=path, checkpoint_every=2, **{**FIT, "epochs": 5})
    assert written == [2, 4, 5]
    assert _training_record(path)["epoch"] == 5


RESUME_MISMATCHES = [
    (dict(batch_size=16), "the checkpoint was written with batch_size=32, but this run has batch_size=16; "
                          "resume with the same data and settings"),
    (dict(shuffle=False), "the checkpoint was written with shuffle=True, but this run has shuffle=False"),
    (dict(X=slice(0, 200)), "the checkpoint was written with n_samples=300, but this run has n_samples=200"),
    (dict(validation_data=slice(300, 320)),
     "the checkpoint was written with validation=False, but this run has validation=True"),
    (dict(optimizer=lambda: npae.SGD(0.1)), r"the checkpoint's optimiser \(Adam\(.*\)\) is not a SGD"),
    (dict(make=lambda: npae.VAE(64, (16,), latent=3, seed=0)),
     "it was written by a different model: latent=2 there, 3 here"),
    (dict(make=lambda: npae.VAE(64, (16,), latent=2, likelihood="gaussian", seed=0)),
     "it was written by a different model: likelihood='bernoulli' there, 'gaussian' here"),
    (dict(make=lambda: npae.Autoencoder(64, (16,), seed=0)), "it holds a 'VAE', this model is a Autoencoder"),
]


@pytest.mark.parametrize("change, pattern", RESUME_MISMATCHES, ids=[p[:30] for _, p in RESUME_MISMATCHES])
def test_resume_with_other_settings_is_refused_and_changes_nothing(change, pattern, digits, tmp_path):
    path = tmp_path / "ckpt.npz"
    RESUMABLE["vae"]().fit(digits[:300], optimizer=CtrlCAt(13), checkpoint=path, **FIT)
    model = change.get("make", RESUMABLE["vae"])()
    model.fit(digits[:100], epochs=1, verbose=0)      # a model with a history and a training state
    before = snapshot(model)
    kwargs = {**FIT, "batch_size": change.get("batch_size", 32), "shuffle": change.get("shuffle", True)}
    if "validation_data" in change:
        kwargs["validation_data"] = digits[change["validation_data"]]
    with pytest.raises(ValueError, match=f"^{re.escape(str(path))}: {pattern}"):
        model.fit(digits[change.get("X", slice(0, 300))], resume=path,
                  optimizer=change.get("optimizer", npae.Adam)(), **kwargs)
    assert_unchanged(model, before)


def _with_array(path, name, value):
    with np.load(path, allow_pickle=False) as archive:
        arrays = {n: archive[n] for n in archive.files}
    arrays[name] = value
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def test_resume_from_a_plain_model_file_or_a_damaged_checkpoint_is_refused(digits, tmp_path):
    model = RESUMABLE["vae"]()
    npae.save(model, tmp_path / "model.npz")
    before = snapshot(model)
    with pytest.raises(ValueError, match="model.npz: this is a model file, not a checkpoint"):
        model.fit(digits[:300], resume=tmp_path / "model.npz", **FIT)
    path = tmp_path / "ckpt.npz"
    RESUMABLE["vae"]().fit(digits[:300], optimizer=CtrlCAt(13), checkpoint=path, **FIT)
    good = path.read_bytes()
    _with_array(path, "train/order", np.zeros(300, dtype=np.int64))
    with pytest.raises(ValueError, match=r"ckpt.npz: its training state is invalid: its permutation is not a permutation"):
        model.fit(digits[:300], resume=path, **FIT)
    path.write_bytes(good)
    _with_array(path, "train/plan", np.array([1], dtype=np.int64))
    with pytest.raises(ValueError, match=r"ckpt.npz: its training state is invalid: the block order is not a permutation"):
        model.fit(digits[:300], resume=path, **FIT)
    path.write_bytes(good[:-100])
    with pytest.raises(ValueError, match="ckpt.npz: truncated or corrupt"):
        model.fit(digits[:300], resume=path, **FIT)
    with pytest.raises(FileNotFoundError):
        model.fit(digits[:300], resume=tmp_path / "absent.npz", **FIT)
    assert_unchanged(model, before)


def _rewritten(path, change=None, **arrays):
    """The checkpoint at ``path`` with its metadata passed through ``change`` and ``arrays`` set."""
    with np.load(path, allow_pickle=False) as archive:
        members = {n: archive[n] for n in archive.files}
    meta = json.loads(str(members["__npae__"]))
    if change is not None:
        change(meta)
    members.update(arrays, __npae__=np.array(json.dumps(meta)))
    with open(path, "wb") as f:
        np.savez(f, **members)


def test_nan_in_early_stoppings_best_parameters_is_refused_and_changes_nothing(digits, tmp_path):
    X, path = digits[:300], tmp_path / "ckpt.npz"
    settings = dict(FIT, epochs=4, early_stopping=True, validation_fraction=0.2)
    model = npae.VAE(64, (16,), latent=2, seed=0)
    model.fit(X, optimizer=CtrlCAt(20), checkpoint=path, **settings)
    name = next(iter(model.params))
    _rewritten(path, **{f"best/{name}": np.full_like(model.params[name], np.nan)})
    before = snapshot(model)
    with pytest.raises(ValueError, match=f"ckpt.npz: early stopping's best parameter '{name}' holds NaN"):
        model.fit(X, resume=path, **settings)
    assert_unchanged(model, before)


def test_a_position_past_the_end_of_a_block_is_refused_in_an_unshuffled_run(digits, tmp_path):
    X, path = digits[:300], tmp_path / "ckpt.npz"
    model = npae.VAE(64, (16,), latent=2, seed=0)
    model.fit(X, optimizer=CtrlCAt(12), checkpoint=path, shuffle=False, **FIT)
    _rewritten(path, lambda m: m["training"].update(batch=10**9))
    before = snapshot(model)
    with pytest.raises(ValueError, match="ckpt.npz: its training state is invalid: its position is "
                                         "past the end of a block"):
        model.fit(X, resume=path, shuffle=False, **FIT)
    assert_unchanged(model, before)


class FailingReads:
    """An array-like whose values check out, but whose ``fails_at``-th batch read (a fancy index,
    as training reads) fails, as a file on a disk that goes away would."""

    def __init__(self, X, fails_at):
        self.X, self.fails_at, self.reads = X, fails_at, 0
        self.shape, self.dtype, self.ndim = X.shape, X.dtype, X.ndim

    def __getitem__(self, key):
        if isinstance(key, np.ndarray):
            self.reads += 1
            if self.reads == self.fails_at:
                raise OSError(errno.EIO, "Input/output error")
        return self.X[key]


def test_a_resume_with_an_unwritable_checkpoint_changes_neither_model_nor_optimizer(digits, tmp_path,
                                                                                    monkeypatch):
    path = tmp_path / "ckpt.npz"
    RESUMABLE["vae"]().fit(digits[:300], optimizer=CtrlCAt(13), checkpoint=path, **FIT)
    model, given = RESUMABLE["vae"]().fit(digits[:300], warm_start=True, **FIT), npae.Adam()
    before, moments = snapshot(model), given.state_dict()

    def unwritable(name, path):
        raise ValueError(f"{name}: cannot write {path} (Read-only file system)")
    monkeypatch.setattr(atomic, "probe_writable", unwritable)
    with pytest.raises(ValueError, match="Read-only"):
        model.fit(digits[:300], warm_start=True, optimizer=given, resume=path,
                  checkpoint=tmp_path / "c.npz", **FIT)
    assert_unchanged(model, before)
    assert given.t == moments["t"] == 0 and given.m == {}


@pytest.mark.parametrize("call", ["fit", "warm-fit", "fresh-partial-fit", "partial-fit"])
def test_an_error_from_the_data_mid_run_leaves_the_model_as_it_was(call, digits):
    X = digits[:300]
    model = RESUMABLE["vae"]()
    if call in ("warm-fit", "partial-fit"):
        model.fit(X, **FIT) if call == "warm-fit" else model.partial_fit(X)
        before = snapshot(model)
    with pytest.raises(OSError, match="Input/output error"):
        if call.endswith("partial-fit"):
            model.partial_fit(FailingReads(X, fails_at=2))
        else:
            model.fit(FailingReads(X, fails_at=15), warm_start=call == "warm-fit", **FIT)
    if call in ("fit", "fresh-partial-fit"):
        assert not hasattr(model, "n_features_in_"), "a fresh model stays unfitted"
    else:
        assert_unchanged(model, before)
        assert model.training_.epoch == len(model.history_["loss"])


def test_a_resume_with_another_learning_rate_is_refused_not_overruled(digits, tmp_path):
    path = tmp_path / "ckpt.npz"
    RESUMABLE["vae"]().fit(digits[:300], optimizer=CtrlCAt(13), checkpoint=path, **FIT)
    model = RESUMABLE["vae"]().fit(digits[:300], **FIT)
    before = snapshot(model)
    with pytest.raises(ValueError, match=r"ckpt.npz: the checkpoint's optimiser has other "
                                         r"hyper-parameters than this call's \(lr=0.001 there, 0.5 here\)"):
        model.fit(digits[:300], resume=path, lr=0.5, **FIT)
    assert_unchanged(model, before)
    resumed = RESUMABLE["vae"]().fit(digits[:300], resume=path, lr=0.001, **FIT)
    assert resumed.training_.optimizer.lr == 0.001 and resumed.n_iter_ == 3


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
META_KEYS = ["format", "version", "model", "config", "fitted", "params", "optimizer", "training"]


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    """A checkpoint stopped mid-epoch (epoch 1, batch 2) of a small VAE on 16 rows."""
    path = tmp_path_factory.mktemp("fuzz") / "ckpt.npz"
    npae.VAE(8, (4,), latent=2, seed=0).fit(np.full((16, 8), 0.5), epochs=2, batch_size=4,
                                            optimizer=CtrlCAt(6), checkpoint=path, verbose=0)
    return path


CRAFTED_CHECKPOINTS = {  # name: (change to the metadata, what the refusal says after the file's name)
    "optimizer-name-a-list": (lambda m: m["optimizer"].update(name=["adam"]), ": unknown optimiser"),
    "bad-generator": (lambda m: m["training"].update(rng={"bit_generator": "PCG64", "state": {"state": -1, "inc": 1}}),
                      r": its generator state is invalid \("),
    "unknown-generator": (lambda m: m["training"]["rng"].update(bit_generator="RANDU"),
                          r": its generator state is invalid \("),
    "negative-epoch": (lambda m: m["training"].update(epoch=-1),
                       ": its training state is invalid: 'epoch' must be a non-negative int"),
    "past-the-epoch": (lambda m: m["training"].update(block=3),
                       ": its training state is invalid: its position is past the end of an epoch"),
    "past-the-block": (lambda m: m["training"].update(batch=99),
                       ": its training state is invalid: its position is past the end of a block"),
    "history-too-long": (lambda m: m["training"].update(history={"loss": [1.0, 2.0]}),
                         ": its training state is invalid: its history does not have one loss per epoch"),
    "mt19937-all-zero": (lambda m: m["training"].update(rng={"bit_generator": "MT19937",
                                                             "state": {"key": [0] * 624, "pos": 624}}),
                         r": its generator state is invalid \(an MT19937 key must be 624 words"),
    "mt19937-short-key": (lambda m: m["training"].update(rng={"bit_generator": "MT19937",
                                                              "state": {"key": [1] * 10, "pos": 0}}),
                          r": its generator state is invalid \(an MT19937 key must be 624 words"),
    "history-of-unequal-lists": (lambda m: m["training"].update(history={"loss": [1.0], "lr": [1.0, 2.0]}),
                                 ": its training state is invalid: its history's lists are not all one entry"),
    "best-val-loss-too-large": (lambda m: m["training"].update(best={"val_loss": 1e308 * 10, "epoch": 1,
                                                                     "waited": 0}),
                                ": its npae metadata is not valid JSON"),
    "best-from-the-future": (lambda m: m["training"].update(best={"val_loss": 1.0, "epoch": 7, "waited": 0}),
                             ": its training state is invalid: 'best' must be a finite loss of an epoch run"),
    "setup-a-list": (lambda m: m["training"].update(setup=[]), ": its training state is invalid: 'setup' must be an object"),
    "best-without-its-parameters": (lambda m: m["training"].update(best={"val_loss": 1.0, "epoch": 1, "waited": 0}),
                                    ": member 'best/encoder.0.W' is missing"),
    "future-version": (lambda m: m.update(version=3), r": it is not an npae file of a version this npae reads \(1, 2\)"),
    "other-model": (lambda m: m["config"].update(latent=3), ": it was written by a different model: latent=3 there, 2 here"),
}


@pytest.mark.parametrize("change, pattern", CRAFTED_CHECKPOINTS.values(), ids=CRAFTED_CHECKPOINTS.keys())
def test_a_crafted_checkpoint_is_refused_naming_the_file_and_changes_nothing(change, pattern, small_checkpoint,
                                                                              tmp_path):
    path = tmp_path / "ckpt.npz"
    path.write_bytes(small_checkpoint.read_bytes())
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(str(arrays["__npae__"]))
    change(meta)
    arrays["__npae__"] = np.array(json.dumps(meta).replace("Infinity", "1e999"))
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    model = npae.VAE(8, (4,), latent=2, seed=0).fit(np.full((16, 8), 0.5), epochs=1, batch_size=4)
    before = snapshot(model)
    with pytest.raises(ValueError, match=f"^{re.escape(str(path))}{pattern}"):
        model.fit(np.full((16, 8), 0.5), epochs=2, batch_size=4, verbose=0, resume=path)
    assert_unchanged(model, before)


@given(data=st.data())
def test_any_json_in_any_checkpoint_field_is_refused_by_resume_with_a_value_error(data, small_checkpoint,
                                                                                   tmp_path_factory):
    """A crafted checkpoint: any field of its metadata, config, optimiser, training record,
    generator state or setup replaced by arbitrary JSON gives a ValueError that names the file
    and changes nothing, or resumes."""
    path = tmp_path_factory.mktemp("meta") / "ckpt.npz"
    path.write_bytes(small_checkpoint.read_bytes())
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(str(arrays["__npae__"]))
    part = data.draw(st.sampled_from(["meta", "config", "optimizer", "training", "rng", "setup"]))
    target = {"meta": meta, "config": meta["config"], "optimizer": meta["optimizer"],
              "training": meta["training"], "rng": meta["training"]["rng"],
              "setup": meta["training"]["setup"]}[part]
    key = data.draw(st.sampled_from(sorted(target) + (META_KEYS if part == "meta" else [])))
    target[key] = data.draw(JSON)
    arrays["__npae__"] = np.array(json.dumps(meta))
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    fresh = npae.VAE(8, (4,), latent=2, seed=0)
    before = snapshot(fresh)
    try:
        fresh.fit(np.full((16, 8), 0.5), epochs=2, batch_size=4, verbose=0, resume=path)
    except ValueError as exc:
        assert str(path) in str(exc)
        assert_unchanged(fresh, before)


# =============================================================================
# In another process: SIGKILL, SIGINT and SIGTERM
# =============================================================================
TRAINING_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import npae

    checkpoint, out, at = sys.argv[1], sys.argv[2], int(sys.argv[3])

    class WaitAt(npae.Adam):
        # after step `at`, say so and wait: the test sends its signal, then closes stdin
        def step(self, params, grads):
            super().step(params, grads)
            if self.t == at:
                print(f"waiting after step {at}", flush=True)
                sys.stdin.read()

    model = npae.VAE(64, (32,), latent=4, seed=0)
    model.fit(npae.datasets.load_digits()[0][:640], epochs=3, batch_size=32, seed=0, verbose=1,
              optimizer=WaitAt() if at > 0 else npae.Adam(), checkpoint=checkpoint,
              resume=checkpoint if at == 0 else None)
    np.savez(out, **model.params)
    print("interrupted" if model.interrupted_ else "finished", flush=True)
""")
AT = 27  # epoch 2 (of 3), batch 7 of 20


@pytest.fixture(scope="module")
def training_script(tmp_path_factory, digits):
    script = tmp_path_factory.mktemp("subprocess") / "train.py"
    script.write_text(TRAINING_SCRIPT)
    reference = npae.VAE(64, (32,), latent=4, seed=0)
    reference.fit(digits[:640], epochs=3, batch_size=32, seed=0, optimizer=npae.Adam())
    return script, {name: p.copy() for name, p in reference.params.items()}


def _start_and_signal(script, checkpoint, out, signum):
    """Run until step AT, send ``signum``, let the run go on; (status, stdout, stderr)."""
    process = subprocess.Popen([sys.executable, "-u", str(script), str(checkpoint), str(out), str(AT)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("waiting after step"):
            break
    else:
        process.wait(timeout=60)
        pytest.fail(f"the run did not reach step {AT}: {''.join(lines)}{process.stderr.read()}")
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)   # closes stdin: the run goes on
    return process.returncode, "".join(lines) + stdout, stderr


def _resume(script, checkpoint, out):
    return subprocess.run([sys.executable, str(script), str(checkpoint), str(out), "0"],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM],
                         ids=["SIGKILL", "SIGINT", "SIGTERM"])
def test_a_run_signalled_in_another_process_stops_cleanly_and_resumes_bit_identically(signum, training_script,
                                                                                       tmp_path):
    script, reference = training_script
    checkpoint, out = tmp_path / "ckpt.npz", tmp_path / "params.npz"
    status, stdout, stderr = _start_and_signal(script, checkpoint, out, signum)
    record = _training_record(checkpoint)
    if signum == signal.SIGKILL:
        assert status == -signal.SIGKILL and not out.exists()
        assert (record["epoch"], record["batch"]) == (1, 0)      # the checkpoint of the first epoch
    elif signum == signal.SIGINT:
        assert status == 0 and stdout.endswith("interrupted\n"), stderr
        assert (record["epoch"], record["batch"]) == (1, 7)      # the batch boundary after step AT
        assert f"SIGINT: stopped in epoch 2 with the last completed step; resume from {checkpoint}" in stderr
    else:
        assert status == 143, stderr                              # npae.signals.Terminated
        assert not out.exists() and "interrupted" not in stdout and "finished" not in stdout
        assert (record["epoch"], record["batch"]) == (1, 7)
        assert f"SIGTERM: stopped in epoch 2 with the last completed step; resume from {checkpoint}" in stderr
        assert "Traceback" not in stderr
    loaded = npae.load(checkpoint)                                # a complete model file
    assert loaded.n_features_in_ == 64 and all(np.isfinite(p).all() for p in loaded.params.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["ckpt.npz"] + (["params.npz"] if signum == signal.SIGINT else []))   # no temporary files

    done = _resume(script, checkpoint, out)
    assert done.returncode == 0 and done.stdout.endswith("finished\n"), done.stderr
    with np.load(out) as resumed:
        assert sorted(resumed.files) == sorted(reference)
        for name, value in reference.items():
            assert np.array_equal(resumed[name], value), name
