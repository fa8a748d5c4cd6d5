"""The command line end to end in a temporary folder: train a VAE and an autoencoder, then
encode, sample, evaluate, gradcheck, filters and interpolate with them; every PNG is checked
byte by byte; bad input ends with status 2 and one line on stderr; outputs that would
overwrite an input, or that cannot be written, are refused before any work; SIGTERM and
Ctrl-C stop a run with its model saved."""

import contextlib
import csv
import errno
import io
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

import npae
from npae import datasets
from npae.cli import parser as cli
from npae.cli import commands, train
from npae.pictures import png as images
from npae.data.batches import RowView
from npae.models.estimator import Estimator
from bombs import in_child
from pngs import read_png

TRAIN = ["train", "--data", "digits", "--epochs", "3", "--quiet", "--hidden", "32", "--batch-size", "64"]
SCALE = 96 // 8  # the CLI enlarges 8×8 digits to about 96 pixels
SCALED = "divided by 255"  # how the CLI says it scaled integer data


def run(*argv):
    """``npae ARGV`` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


def parsed(*argv):
    """The arguments the CLI would parse from ``npae ARGV``."""
    return cli.make_parser().parse_args([str(a) for a in argv])


def assert_refused(result, pattern):
    """Status 2 and exactly one line on stderr, with no traceback, matching ``pattern``."""
    status, _, err = result
    lines = err.strip().splitlines()
    assert status == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert re.search(pattern, lines[0]), lines[0]


def grid_shape(n, *, ncols=None, scale=SCALE, pad=2):
    """Height and width of the grid of n 8×8 tiles the CLI draws."""
    return images.image_grid(np.zeros((n, 64)), (8, 8), ncols=ncols, scale=scale, pad=pad).shape[:2]


def png_size(path):
    header, _ = read_png(path)  # asserts signature, chunk CRCs, IHDR, inflated length
    return header["height"], header["width"]


def read_history(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], [[float(v) for v in row] for row in rows[1:]]


def same_params(a, b):
    return a.params.keys() == b.params.keys() and all(
        np.array_equal(a.params[k], b.params[k]) for k in a.params)


def contents(folder):
    """Every file under ``folder``: relative path → bytes (symbolic links as their target)."""
    return {p.relative_to(folder).as_posix(): (os.readlink(p) if p.is_symlink() else p.read_bytes())
            for p in sorted(Path(folder).rglob("*")) if p.is_file() or p.is_symlink()}


def temporaries(folder):
    """The temporary files npae writes beside its outputs (``.name.xxxx.tmp``), left behind."""
    return sorted(p.name for p in Path(folder).rglob("*.tmp"))


def forbid(monkeypatch, owner, name):
    """Make ``owner.name`` fail the test if it is called (work that must not start)."""
    def called(*args, **kwargs):
        raise AssertionError(f"{owner.__name__}.{name} ran, but the command should have been "
                             "refused before any work")
    monkeypatch.setattr(owner, name, called)


def printed_number(pattern, text):
    match = re.search(pattern, text)
    assert match, text
    return float(match.group(1))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A VAE and an autoencoder trained by ``npae train`` for 3 epochs: name → output folder."""
    root = tmp_path_factory.mktemp("trained")
    folders = {}
    for name, extra in (("vae", []), ("ae", ["--model", "ae"])):
        folders[name] = root / name
        status, out, err = run(*TRAIN, *extra, "--out", folders[name])
        assert status == 0, err
        assert "wrote" in out
    return folders


@pytest.fixture(scope="module")
def digits_train():
    args = parsed("train", "--data", "digits")
    return commands.load_data(args, commands.build_model(args))[0].X_train


# -- train -------------------------------------------------------------------------
PICTURES = {
    "vae": {"reconstructions.png": grid_shape(64, ncols=16), "samples.png": grid_shape(64, ncols=8),
            "traversal.png": grid_shape(144, ncols=12, scale=7, pad=1), "filters.png": grid_shape(32),
            "latent_map.png": None, "loss.png": None},
    "ae": {"reconstructions.png": grid_shape(64, ncols=16), "filters.png": grid_shape(32),
           "latent_map.png": None, "loss.png": None},
}


@pytest.mark.parametrize("name", ["vae", "ae"])
def test_train_writes_the_model_its_history_and_valid_pictures(trained, name):
    folder = trained[name]
    model = npae.load(folder / "model.npz")
    assert isinstance(model, npae.VAE if name == "vae" else npae.Autoencoder)
    assert model.get_params()["hidden"] in ([32], (32,))
    header, rows = read_history(folder / "history.csv")
    assert header == ["epoch", "loss", "val_loss"]
    assert [row[0] for row in rows] == [1, 2, 3]  # one row per epoch
    np.testing.assert_allclose([row[1] for row in rows], model.history["loss"], atol=1e-6)
    np.testing.assert_allclose([row[2] for row in rows], model.history["val_loss"], atol=1e-6)
    pngs = {p.name for p in folder.iterdir() if p.suffix == ".png"}
    assert pngs == set(PICTURES[name])
    for picture, shape in PICTURES[name].items():
        size = png_size(folder / picture)  # the grid, and room for its words
        assert all(s > g for s, g in zip(size, shape)) if shape else min(size) >= 100, picture
    assert temporaries(folder) == []


@pytest.mark.parametrize("name, extra", [("vae", []), ("ae", ["--model", "ae"])])
def test_training_through_the_cli_is_training_with_the_library(trained, name, extra):
    """The flags build the model they describe, and fit it exactly as the library would."""
    args = parsed(*TRAIN, *extra, "--out", "unused")
    data, _ = commands.load_data(args, commands.build_model(args))
    model = commands.build_model(args)
    assert not hasattr(model, "n_features_in_")  # unfitted: its width comes from the data
    model.fit(data.X_train, epochs=3, batch_size=64, optimizer=npae.Adam(1e-3),
              validation_data=data.X_test, seed=0, verbose=0)
    saved = npae.load(trained[name] / "model.npz")
    assert same_params(model, saved)
    assert saved.get_params() == model.get_params()


def test_init_and_n_jobs_reach_the_model_and_otherwise_the_models_defaults_hold():
    for model, default in (("vae", "fan-in"), ("ae", "he-glorot")):
        args = parsed("train", "--model", model, "--out", "unused")
        assert commands.build_model(args).get_params()["init"] == default
        assert commands.build_model(args).get_params()["n_jobs"] is None
    args = parsed("train", "--init", "he-glorot", "--n-jobs", "-1", "--out", "unused")
    assert {k: commands.build_model(args).get_params()[k] for k in ("init", "n_jobs")} == \
        {"init": "he-glorot", "n_jobs": -1}
    assert parsed("train", "--n-jobs", "-2", "--out", "unused").n_jobs == -2  # all cores but one
    for bad in ("0", "-1.0", "two"):
        status, _, err = run("train", "--n-jobs", bad)
        assert status == 2 and "argument --n-jobs" in err and len(err.strip().splitlines()) == 1


# -- encode, sample, evaluate, gradcheck, filters, interpolate ---------------------------
@pytest.mark.parametrize("part, rows", [("all", slice(None)), ("train", slice(0, 1500)),
                                        ("held-out", slice(1500, None))])
def test_encode_writes_a_code_for_every_row_it_reads_in_the_data_sets_order(trained, part, rows, tmp_path):
    """A named data set: every row by default, its training rows then its test rows, as
    ``npae.datasets.load_digits()`` orders them, so the codes line up with its labels."""
    model = npae.load(trained["vae"] / "model.npz")
    X, _ = datasets.load_digits()
    status, out, err = run("encode", trained["vae"] / "model.npz", "digits", "--part", part,
                           "--out", tmp_path / "codes.npy")
    assert status == 0, err
    codes = np.load(tmp_path / "codes.npy")
    n = len(X[rows])
    assert codes.shape == (n, 2) and codes.dtype == np.float32
    assert f"{n} rows" in out and f"shape ({n}, 2)" in out  # the count printed is the file's
    np.testing.assert_array_equal(codes, model.encode(X[rows]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codes.npy"]  # no temporary left


def test_encode_of_a_file_writes_every_row_or_the_part_train_held_out(trained, digits_train, tmp_path):
    np.save(tmp_path / "d.npy", digits_train[:200])
    path = trained["ae"] / "model.npz"
    model = npae.load(path)
    args = parsed("train", "--data", tmp_path / "d.npy")
    split, _ = commands.load_data(args, commands.build_model(args))
    for part, expected in (("all", digits_train[:200]), ("train", np.asarray(split.X_train)),
                           ("held-out", np.asarray(split.X_test))):
        status, out, err = run("encode", path, tmp_path / "d.npy", "--part", part,
                               "--out", tmp_path / f"{part}.npy")
        assert status == 0, err
        codes = np.load(tmp_path / f"{part}.npy")
        assert len(codes) == len(expected) and f"{len(expected)} rows" in out
        np.testing.assert_allclose(codes, model.encode(expected), rtol=1e-6, atol=1e-6)
    np.save(tmp_path / "small.npy", digits_train[:10])
    assert_refused(run("encode", path, tmp_path / "small.npy", "--part", "held-out",
                       "--out", tmp_path / "c.npy"), r"--part held-out: .*has no held-out rows")


@pytest.mark.parametrize("stored", ["float32", "uint8"])
def test_encode_streams_a_memory_mapped_npy_in_chunks(trained, digits_train, tmp_path, monkeypatch, stored):
    model = npae.load(trained["ae"] / "model.npz")
    if stored == "uint8":
        X = np.round(digits_train * 255).astype(np.uint8)  # scaled by 255, one chunk at a time
        expected = model.encode(X.astype(np.float32) / np.float32(255))
    else:
        X = digits_train
        expected = model.encode(X)
    np.save(tmp_path / "data.npy", X)
    chunks = []
    encode = npae.Autoencoder.encode

    def spy(self, rows):
        chunks.append((type(rows), rows.shape[0], rows.dtype))
        return encode(self, rows)

    monkeypatch.setattr(npae.Autoencoder, "encode", spy)
    status, out, err = run("encode", trained["ae"] / "model.npz", tmp_path / "data.npy",
                           "--out", tmp_path / "codes.npy", "--chunk", 400)
    assert status == 0, err
    assert [n for _, n, _ in chunks] == [400, 400, 400, 300]
    kinds = {kind for kind, _, _ in chunks}
    assert kinds == ({np.memmap} if stored == "float32" else {np.ndarray})  # slices of the mapped file
    assert {dtype for _, _, dtype in chunks} == {np.dtype(np.float32)}
    np.testing.assert_allclose(np.load(tmp_path / "codes.npy"), expected, rtol=1e-6, atol=1e-6)
    assert out.count(SCALED) == (1 if stored == "uint8" else 0)  # said once, not once per chunk


def test_encode_takes_any_finite_data_even_outside_the_unit_interval(trained, tmp_path):
    """Encoding does not check the Bernoulli range (only training does): codes of 9s are codes."""
    X = np.full((5, 64), 9.0)
    np.save(tmp_path / "x.npy", X)
    path = trained["vae"] / "model.npz"
    status, _, err = run("encode", path, tmp_path / "x.npy", "--out", tmp_path / "c.npy")
    assert status == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), npae.load(path).encode(X))


def test_the_scaling_of_a_uint8_file_is_decided_once_for_all_its_rows(trained, digits_train, tmp_path):
    """A file whose first 65,536 rows hold only 0 and 1 and whose last rows reach 255 is 8-bit
    images throughout: every row is divided by 255, however the file is read in chunks."""
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.integers(0, 2, size=(65536, 64)),
                        np.round(digits_train[:100] * 255)]).astype(np.uint8)
    np.save(tmp_path / "u8.npy", X)
    path = trained["ae"] / "model.npz"
    status, out, err = run("encode", path, tmp_path / "u8.npy", "--out", tmp_path / "codes.npy")
    assert status == 0, err
    assert out.count(SCALED) == 1
    expected = npae.load(path).encode(X.astype(np.float32) / np.float32(255))
    np.testing.assert_allclose(np.load(tmp_path / "codes.npy"), expected, rtol=1e-5, atol=1e-6)


def test_both_parts_of_a_uint8_file_are_scaled_by_one_decision(digits_train, tmp_path):
    """Only one row of the file exceeds 1; whichever part it lands in, both parts are divided."""
    X = (digits_train[:400] > 0.5).astype(np.uint8)  # 0/1 pixels ...
    X[7] = 255                                       # ... and one row of 8-bit white
    np.save(tmp_path / "u8.npy", X)
    args = parsed("train", "--data", tmp_path / "u8.npy")
    data, how = commands.load_data(args, commands.build_model(args))
    assert how.count(SCALED) == 1
    for part in (data.X_train, data.X_test):
        assert part.dtype == np.float32
        np.testing.assert_array_equal(np.asarray(part), X[part.index].astype(np.float32) / np.float32(255))


def test_sample_writes_raw_samples_or_a_picture(trained, tmp_path):
    path = trained["vae"] / "model.npz"
    status, _, _ = run("sample", path, "-n", 10, "--seed", 3, "--out", tmp_path / "s.npy")
    samples = np.load(tmp_path / "s.npy")
    assert status == 0 and samples.shape == (10, 64)
    assert np.array_equal(samples, npae.load(path).sample(10, seed=3))
    assert ((0 <= samples) & (samples <= 1)).all()
    status, _, _ = run("sample", path, "--out", tmp_path / "s.png")
    assert status == 0 and png_size(tmp_path / "s.png") > grid_shape(64)


def test_sample_streams_a_large_npy_chunk_by_chunk_into_space_reserved_first(trained, tmp_path, monkeypatch):
    n = commands.CHUNK + 1808
    decoded, reserved = [], []
    decode = npae.VAE.decode

    def spy(self, z):
        reserved.append([(tmp_path / name).stat().st_size for name in temporaries(tmp_path)])
        decoded.append(decode(self, z))
        return decoded[-1]

    monkeypatch.setattr(npae.VAE, "decode", spy)
    status, out, err = run("sample", trained["vae"] / "model.npz", "-n", n, "--out", tmp_path / "s.npy")
    assert status == 0, err
    assert [len(d) for d in decoded] == [commands.CHUNK, 1808]  # never all n rows at once
    # while the chunks are computed, the output is a temporary file already of its full size
    assert all(len(sizes) == 1 and sizes[0] >= n * 64 * 4 for sizes in reserved), reserved
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (n, 64) and samples.dtype == np.float32
    assert np.array_equal(samples, np.concatenate(decoded))
    assert f"{n} samples" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npy"]


def test_sample_refuses_a_picture_of_more_than_4096_samples_before_drawing_any(trained, tmp_path, monkeypatch):
    path = trained["vae"] / "model.npz"
    with monkeypatch.context() as m:
        forbid(m, npae.VAE, "decode")
        forbid(m, npae.VAE, "sample")
        assert_refused(run("sample", path, "-n", commands.SAMPLE_PNG_LIMIT + 1, "--out", tmp_path / "s.png"),
                       r"-n 4097 is too many for one picture \(at most 4096\); use --out FILE\.npy")
    assert list(tmp_path.iterdir()) == []
    status, _, err = run("sample", path, "-n", commands.SAMPLE_PNG_LIMIT + 1, "--out", tmp_path / "s.npy")
    assert status == 0, err  # raw samples have no such limit
    assert np.load(tmp_path / "s.npy").shape == (commands.SAMPLE_PNG_LIMIT + 1, 64)


@pytest.mark.parametrize("command", ["sample", "encode"])
def test_an_output_the_disk_cannot_hold_is_refused_before_any_work(command, trained, digits_train,
                                                                   tmp_path, monkeypatch):
    np.save(tmp_path / "data.npy", digits_train)
    before = contents(tmp_path)
    full = shutil.disk_usage(tmp_path)._replace(free=1000)
    monkeypatch.setattr(npae.files.atomic.shutil, "disk_usage", lambda path: full)
    forbid(monkeypatch, Estimator, "apply")
    argv = (["sample", trained["vae"] / "model.npz", "-n", 5000] if command == "sample"
            else ["encode", trained["ae"] / "model.npz", tmp_path / "data.npy"])
    assert_refused(run(*argv, "--out", tmp_path / "out.npy"),
                   r"out\.npy: the output needs [\d.]+ [KM]B, but the disk has only (1000 bytes|1\.0 KB) free")
    assert contents(tmp_path) == before


def test_evaluate_prints_the_elbo_and_the_log_likelihood(trained):
    status, out, _ = run("evaluate", trained["vae"] / "model.npz", "--data", "digits",
                         "--k", 20, "--rows", 100, "--samples", 2)
    assert status == 0
    assert "evaluating on 297 rows" in out  # the held-out digits
    elbo = printed_number(r"ELBO: (-?[\d.]+) nats per example \(2 samples of ε\)", out)
    log_px = printed_number(r"log p\(x\) ≥ (-?[\d.]+) nats \(importance-weighted, k=20, first 100 rows\)", out)
    assert math.isfinite(elbo) and math.isfinite(log_px) and elbo < 0 and log_px < 0
    status, out, _ = run("evaluate", trained["ae"] / "model.npz", "--data", "digits")
    assert status == 0 and "loss per example" in out and "ELBO" not in out


def test_evaluate_draws_the_elbos_samples_in_groups_of_bounded_memory(tmp_path):
    """Each row's ELBO over --samples draws of ε, drawn a group at a time: a process's peak memory
    does not grow with --samples (all at once, 2000 draws for 297 rows and 32 latent dimensions
    would be 76 MB of ε alone), and one group gives model.elbo's own draws."""
    model = npae.VAE(64, (16,), latent=32, epochs=1, seed=0).fit(npae.datasets.load_digits()[0] / 16)
    npae.save(model, tmp_path / "m.npz")
    X = npae.datasets.load_digits()[0][-297:] / 16
    expected = model.elbo(X, n_samples=3, seed=0).mean()
    assert commands.streamed_elbo(model, X, 3) == pytest.approx(expected, rel=1e-6)
    peaks = {}
    for samples in (1, 2000):
        peaks[samples], seconds, outcome = in_child(
            f"with contextlib.redirect_stdout(io.StringIO()):\n        status = main(['evaluate', "
            f"{str(tmp_path / 'm.npz')!r}, '--data', 'digits', '--samples', '{samples}', '--k', '1', "
            f"'--rows', '1'])\n    assert status == 0",
            setup="import contextlib, io\nfrom npae.cli.parser import main")
        assert outcome == "no error"
    assert peaks[2000] - peaks[1] < 20 * 2**20, peaks


def _rows_of(source, part, file):
    """The rows ``evaluate --part PART`` should score: a data set's test split or all its
    rows; a file's rows, or the tenth ``train`` held out of it."""
    if source == "digits":
        digits = datasets.load("digits")
        return {"train": digits.X_train, "all": np.concatenate([digits.X_train, digits.X_test])}.get(
            part, digits.X_test)
    X = np.load(file)
    if part in ("held-out", "train"):
        args = parsed("train", "--data", file)
        split = commands.load_data(args, commands.build_model(args))[0]
        return np.asarray(split.X_test if part == "held-out" else split.X_train)
    return X


@pytest.mark.parametrize("source, part, n_rows", [
    ("digits", "auto", 297), ("digits", "held-out", 297), ("digits", "all", 1797), ("digits", "train", 1500),
    ("file", "auto", 200), ("file", "held-out", 20), ("file", "all", 200), ("file", "train", 180)])
def test_evaluate_scores_the_part_it_is_asked_for(source, part, n_rows, trained, digits_train, tmp_path):
    np.save(tmp_path / "d.npy", digits_train[:200])
    data = "digits" if source == "digits" else tmp_path / "d.npy"
    path = trained["vae"] / "model.npz"
    status, out, err = run("evaluate", path, "--data", data, "--part", part, "--k", 5, "--rows", 10)
    assert status == 0, err
    assert f"evaluating on {n_rows} rows" in out
    X = _rows_of(source, part, tmp_path / "d.npy")
    assert len(X) == n_rows
    model = npae.load(path)
    loss = printed_number(r"loss per example \(the training objective\): (-?[\d.]+)", out)
    elbo = printed_number(r"ELBO: (-?[\d.]+) nats per example", out)
    assert loss == pytest.approx(model.average_loss(X, rng=0), abs=6e-5)
    assert elbo == pytest.approx(model.elbo(X, n_samples=1, seed=0).mean(), abs=6e-4)


def test_a_file_without_a_test_split_holds_out_a_tenth_of_its_rows_by_index(digits_train, tmp_path):
    np.save(tmp_path / "d.npy", digits_train[:200])
    args = parsed("train", "--data", tmp_path / "d.npy")
    data, how = commands.load_data(args, commands.build_model(args))
    assert "200 rows of 64 features (180 for training, 20 held out)" in how
    train, test = data.X_train, data.X_test
    assert isinstance(train, RowView) and isinstance(test, RowView)
    # views by index of the one memory-mapped file: nothing is copied
    assert isinstance(train.X, np.memmap) and test.X is train.X
    assert Path(train.X.filename).resolve() == (tmp_path / "d.npy").resolve()
    assert len(test.index) == 20 and len(train.index) == 180
    assert (np.diff(test.index) > 0).all() and (np.diff(train.index) > 0).all()
    assert np.array_equal(np.union1d(train.index, test.index), np.arange(200))
    assert not np.array_equal(test.index, np.arange(180, 200))  # drawn, not the last rows
    np.testing.assert_array_equal(np.asarray(test), digits_train[:200][test.index])
    np.testing.assert_array_equal(np.asarray(train), digits_train[:200][train.index])
    # the seed draws the split
    def load(*argv):
        args = parsed("train", "--data", *argv)
        return commands.load_data(args, commands.build_model(args))
    again = load(tmp_path / "d.npy", "--seed", 0)[0]
    other = load(tmp_path / "d.npy", "--seed", 1)[0]
    assert np.array_equal(again.X_test.index, test.index)
    assert not np.array_equal(other.X_test.index, test.index)
    # too few rows to hold any out
    np.save(tmp_path / "small.npy", digits_train[:19])
    small, how = load(tmp_path / "small.npy")
    assert small.X_test is None and len(small.X_train) == 19 and "held out" not in how


def test_train_validates_on_the_rows_evaluate_calls_held_out(digits_train, tmp_path):
    np.save(tmp_path / "d.npy", digits_train[:200])
    status, out, err = run("train", "--data", tmp_path / "d.npy", "--epochs", 2, "--quiet", "--hidden", 8,
                           "--out", tmp_path / "run")
    assert status == 0, err
    assert "(180 for training, 20 held out)" in out
    val_loss = npae.load(tmp_path / "run" / "model.npz").history["val_loss"][-1]
    status, out, err = run("evaluate", tmp_path / "run" / "model.npz", "--data", tmp_path / "d.npy",
                           "--part", "held-out", "--k", 5, "--rows", 10)
    assert status == 0, err
    assert "evaluating on 20 rows" in out
    assert printed_number(r"loss per example \(the training objective\): (-?[\d.]+)", out) == \
        pytest.approx(val_loss, abs=6e-5)


@pytest.mark.parametrize("flags", [["--activation", "tanh", "--hidden", "8", "--latent", "2"],
                                   ["--model", "ae", "--activation", "sigmoid", "--hidden", "6"]],
                         ids=["vae-tanh", "ae-sigmoid"])
def test_gradcheck_prints_the_table_and_succeeds_for_a_smooth_activation(flags):
    status, out, _ = run("gradcheck", "--data", "digits", *flags, "--rows", 3, "--entries", 5)
    assert status == 0, out
    assert re.search(r"parameter\s+shape\s+checked\s+max rel err", out)
    assert re.search(r"^encoder\.0\.W\s+\(64, \d+\)\s+5 ", out, re.M)
    worst = float(re.search(r"max relative error (\S+) \(central differences", out).group(1))
    assert worst <= 1e-4


def test_filters_and_interpolate_draw_valid_pictures(trained, tmp_path):
    path = trained["vae"] / "model.npz"
    status, _, _ = run("filters", path, "--out", tmp_path / "f.png", "--n", 20)
    assert status == 0 and png_size(tmp_path / "f.png") > grid_shape(20)
    status, out, _ = run("interpolate", path, "--data", "digits", "--pairs", 0, 1, 2, 3,
                         "--steps", 5, "--out", tmp_path / "i.png")
    assert status == 0 and "2 interpolations in 5 steps" in out
    assert png_size(tmp_path / "i.png") > grid_shape(14, ncols=7)


# -- data the user gives ------------------------------------------------------------
def test_uint8_data_is_scaled_to_the_unit_interval_and_trains_like_the_scaled_floats(digits_train, tmp_path):
    pixels = np.round(digits_train[:400] * 255).astype(np.uint8)
    np.save(tmp_path / "u8.npy", pixels)
    np.save(tmp_path / "f32.npy", pixels.astype(np.float32) / np.float32(255))
    flags = ["--epochs", "2", "--quiet", "--hidden", "8", "--batch-size", "50"]
    for name in ("u8", "f32"):
        status, out, err = run("train", "--data", tmp_path / f"{name}.npy", *flags, "--out", tmp_path / name)
        assert status == 0, err
        assert out.count(SCALED) == (1 if name == "u8" else 0)  # the decision, said once
    assert same_params(npae.load(tmp_path / "u8" / "model.npz"), npae.load(tmp_path / "f32" / "model.npz"))
    assert_refused(run("train", "--data", tmp_path / "u8.npy", "--scale", "none", *flags, "--out", tmp_path / "n"),
                   r"u8\.npy: .*values span \[0, 255\].*\[0, 1\].*--scale 255")
    assert not (tmp_path / "n").exists()


# -- flags: checked before anything prints, described with their defaults -----------------
@pytest.mark.parametrize("argv, pattern", [
    (["train", "--ephocs", "3"], r"^error: npae train: unrecognized arguments: --ephocs 3; did you mean --epochs\?"),
    (["train", "--epoch", "3"], r"npae train: unrecognized arguments: --epoch 3; did you mean --epochs\?"),
    (["evaluate", "m.npz", "--sample", "2"], r"npae evaluate: unrecognized arguments: --sample 2; did you mean --samples\?"),
    (["sample", "m.npz", "--zzz"], r"npae sample: unrecognized arguments: --zzz \(see npae sample --help\)$"),
    (["train", "--hidden", "128,,64"], r"npae train: argument --hidden: expected sizes like 128 or 256,64, got '128,,64'"),
    (["train", "--hidden", ""], r"argument --hidden: expected sizes like 128 or 256,64, got ''"),
    (["train", "--hidden", "64,"], r"argument --hidden: expected sizes .* got '64,'"),
    (["train", "--activation", "relux"], r"argument --activation: invalid choice: 'relux' \(choose from .*'relu'"),
    (["train", "--epochs", "two"], r"argument --epochs: expected an integer, got 'two'"),
    (["train", "--lr", "fast"], r"argument --lr: expected a number, got 'fast'"),
    (["train", "--model", "ae", "--sparsity", "kl", "--sparsity-weight", "1"],
     r"sparsity='kl' needs codes in \(0, 1\): use activation='sigmoid'"),
    (["train", "--model", "ae", "--hidden", "8,4", "--contractive-weight", "1"],
     r"contractive_weight needs a one-layer encoder"),
], ids=["mistyped", "abbreviated", "mistyped-evaluate", "unknown", "empty-size", "empty-sizes",
        "trailing-comma", "activation", "an-integer", "a-number", "sparsity-kl-relu", "contractive-deep"])
def test_bad_flags_are_refused_naming_the_command_before_anything_prints(argv, pattern, tmp_path,
                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    forbid(monkeypatch, npae.training.loop, "run")
    status, out, err = run(*argv)
    assert_refused((status, out, err), pattern)
    assert out == "" and list(tmp_path.iterdir()) == []  # no header, no folder


def test_version_prints_npaes_version():
    status, out, _ = run("--version")
    assert status == 0 and out == f"npae {npae.__version__}\n"


COMMANDS = ["train", "encode", "sample", "evaluate", "gradcheck", "filters", "interpolate", "check"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_and_argument_has_help_and_every_option_its_default(command):
    parser = cli.make_parser().commands[command]
    assert parser.description and parser.description.endswith(".")
    text = parser.format_help()
    for action in parser._actions:  # (argparse's list of the parser's arguments)
        if action.dest == "help":
            continue
        assert action.help, f"{command} {action.option_strings or action.dest}: no help"
        if action.option_strings and action.default not in (None, False):
            assert "default" in parser.formatter_class("x")._get_help_string(action), action.dest
    assert "(default: " in text and "%(" not in text
    status, out, _ = run(command, "--help")
    assert status == 0 and out == text


def test_counts_are_spelt_n_and_k_means_importance_samples_everywhere():
    for command in ("sample", "filters"):
        assert parsed(command, "m.npz", "-n", "5").n == parsed(command, "m.npz", "--n", "5").n == 5
    helps = {command: next(a.help for a in cli.make_parser().commands[command]._actions
                           if "--k" in a.option_strings) for command in ("train", "evaluate")}
    assert all(h.startswith("importance samples K per example of the importance-weighted bound")
               for h in helps.values()), helps
    assert parsed("evaluate", "m.npz", "--rows", "7").rows == 7
    assert_refused(run("evaluate", "m.npz", "--n", "7"), r"unrecognized arguments: --n 7; --n is now --rows \(")


def test_numbers_agree_with_their_nouns(trained, tmp_path):
    status, out, err = run(*TRAIN[:-4], "--epochs", 1, "--hidden", 8, "--out", tmp_path / "run")
    assert status == 0 and "training 1 epoch," in out, err
    status, out, _ = run("sample", trained["vae"] / "model.npz", "-n", 1, "--out", tmp_path / "s.png")
    assert status == 0 and out.endswith(": 1 sample\n")
    status, out, _ = run("filters", trained["vae"] / "model.npz", "-n", 1, "--out", tmp_path / "f.png")
    assert status == 0 and "of 1 unit\n" in out
    status, out, _ = run("interpolate", trained["vae"] / "model.npz", "--pairs", 0, 1, "--steps", 1,
                         "--out", tmp_path / "i.png")
    assert status == 0 and "1 interpolation in 1 step " in out
    assert commands.counted(1, "row") == "1 row" and commands.counted(0, "row") == "0 rows"


# -- bad input: status 2, one line -------------------------------------------------------
def _random_bytes(path):
    path.write_bytes(np.random.default_rng(0).bytes(3000))
    return path


def _other_npz(path):
    np.savez(path, weights=np.zeros(2))
    return path


def _array_file(path, array):
    np.save(path, array)
    return path


def _nan_late(path):
    """5000 rows, finite but for row 4500, column 3: past the first chunk of any reader."""
    X = np.full((5000, 64), 0.5, dtype=np.float32)
    X[4500, 3] = np.nan
    return _array_file(path, X)


BAD_COMMANDS = {  # name: (argv, given the temporary folder and the trained models; the message)
    "unknown-flag": (lambda t, m: ["train", "--bogus"], r"unrecognized arguments: --bogus"),
    "epochs-0": (lambda t, m: ["train", "--epochs", "0"], r"argument --epochs: must be positive, got 0"),
    "hidden-abc": (lambda t, m: ["train", "--hidden", "abc"],
                   r"argument --hidden: expected sizes like 128 or 256,64, got 'abc'"),
    "negative-seed": (lambda t, m: ["train", "--seed", "-1"], r"argument --seed: must be ≥ 0"),
    "missing-data": (lambda t, m: ["train", "--data", t / "nothing.npy", "--out", t / "out"],
                     r"nothing\.npy' is neither a bundled data set .* nor an existing file"),
    "random-bytes-npy": (lambda t, m: ["train", "--data", _random_bytes(t / "x.npy"), "--out", t / "out"],
                         r"x\.npy: not a numeric array file that npae can read .*never"),
    "1-d-data": (lambda t, m: ["train", "--data", _array_file(t / "x.npy", np.zeros(64)), "--out", t / "out"],
                 r"x\.npy: data is 1-D"),
    "nan-data": (lambda t, m: ["train", "--data", _array_file(t / "x.npy", np.where(np.eye(30, 64) > 0, np.nan, 0.5)),
                               "--out", t / "out"],
                 r"x\.npy: (?=.*\b(nan|NaN)\b).*row 0, column 0"),
    "floats-above-1": (lambda t, m: ["train", "--data", _array_file(t / "x.npy", np.linspace(0, 3, 1920).reshape(30, 64)),
                                     "--out", t / "out"],
                       r"x\.npy: .*values span \[0, 3\].*\[0, 1\].*or use --likelihood gaussian"),
    "floats-above-1-ae": (lambda t, m: ["train", "--model", "ae", "--data",
                                        _array_file(t / "x.npy", np.full((30, 64), 2.0)), "--out", t / "out"],
                          r"x\.npy: .*or use --loss mse"),
    "checkpoint-folder-missing": (lambda t, m: ["train", "--checkpoint", t / "no" / "c.npz", "--out", t / "out"],
                                  r"--checkpoint .*c\.npz: the folder .* does not exist"),
    "resume-a-model-file": (lambda t, m: ["train", "--epochs", "1", "--hidden", "32",
                                          "--resume", m["vae"] / "model.npz", "--out", t / "out"],
                            r"model\.npz: this is a model file, not a checkpoint"),
    "model-random-bytes": (lambda t, m: ["encode", _random_bytes(t / "m.npz"), "digits"],
                           r"m\.npz:? .*not an \.npz \(zip\) archive"),
    "model-other-npz": (lambda t, m: ["evaluate", _other_npz(t / "m.npz"), "--data", "digits"],
                        r"m\.npz:? .*it has no npae metadata"),
    "model-missing": (lambda t, m: ["filters", t / "none.npz"], r"no (such|model) file.*none\.npz"),
    "encode-wrong-width": (lambda t, m: ["encode", m["vae"] / "model.npz",
                                         _array_file(t / "x.npy", np.zeros((5, 10))), "--out", t / "c.npy"],
                           r"x\.npy: rows have \(?10,?\)? features, the model expects 64"),
    "encode-nan-late": (lambda t, m: ["encode", m["vae"] / "model.npz", _nan_late(t / "x.npy"),
                                      "--out", t / "c.npy"],
                        r"x\.npy: .*row 4500, column 3"),
    "encode-out-folder-missing": (lambda t, m: ["encode", m["vae"] / "model.npz", "digits",
                                                "--out", t / "no" / "c.npy"],
                                  r"--out .*c\.npy: the folder .* does not exist"),
    "sample-an-autoencoder": (lambda t, m: ["sample", m["ae"] / "model.npz"],
                              r"is an autoencoder; only a VAE can sample"),
    "sample-zero": (lambda t, m: ["sample", m["vae"] / "model.npz", "-n", "0"], r"npae sample: argument -n/--n: must be positive, got 0"),
    "odd-pairs": (lambda t, m: ["interpolate", m["vae"] / "model.npz", "--pairs", "0"],
                  r"--pairs takes row indices two by two"),
    "pair-out-of-range": (lambda t, m: ["interpolate", m["vae"] / "model.npz", "--pairs", "0", "5000",
                                        "--out", t / "i.png"],
                          r"row indices must be in \[0, 297\), got 0 and 5000"),
    "evaluate-k-0": (lambda t, m: ["evaluate", m["vae"] / "model.npz", "--k", "0"], r"argument --k: must be positive"),
    "interpolate-200000-steps": (lambda t, m: ["interpolate", m["vae"] / "model.npz", "--steps", "200000",
                                               "--out", t / "i.png"],
                                 r"3 pairs of 200000 steps make 600006 pictures, too many for one picture "
                                 r"\(at most 4096\)"),
    "interpolate-20000-pairs": (lambda t, m: ["interpolate", m["vae"] / "model.npz", "--pairs", *["0", "1"] * 20000,
                                              "--out", t / "i.png"],
                                r"20000 pairs of 8 steps make 200000 pictures, too many"),
    "evaluate-2000000-samples": (lambda t, m: ["evaluate", m["vae"] / "model.npz", "--data", "digits",
                                               "--samples", "2000000", "--k", "1", "--rows", "1"],
                                 r"--samples 2000000 is more than npae draws \(at most 10000"),
    "evaluate-bad-part": (lambda t, m: ["evaluate", m["vae"] / "model.npz", "--part", "test"],
                          r"argument --part: invalid choice: 'test'"),
}


@pytest.mark.parametrize("command, pattern", BAD_COMMANDS.values(), ids=BAD_COMMANDS.keys())
def test_bad_input_ends_with_status_2_and_one_line_and_writes_nothing(command, pattern, trained, tmp_path):
    argv = command(tmp_path, trained)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert_refused(run(*argv), pattern)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_fashion_mnist_that_is_not_installed_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "FASHION_MNIST_DIR", tmp_path / "not-installed")
    monkeypatch.setenv("NPAE_DATA", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    assert_refused(run("train", "--data", "fashion-mnist", "--epochs", "1", "--out", tmp_path / "out"),
                   r"Fashion-MNIST not found .*apt-get install dataset-fashion-mnist.*NPAE_DATA")
    assert not (tmp_path / "out").exists()


def test_a_diverging_run_ends_with_status_1_and_one_line(tmp_path):
    status, _, err = run(*TRAIN, "--lr", "1e6", "--out", tmp_path / "out")
    assert status == 1 and len(err.strip().splitlines()) == 1
    assert re.match(r"error: training diverged at epoch 1, batch \d+", err)


# -- outputs that would overwrite an input ----------------------------------------------
def _spelled(path, how):
    """``path`` as given, spelled another way (through ``sub/..``), or as a symbolic link to it."""
    if how == "as-given":
        return path
    if how == "other-spelling":
        (path.parent / "sub").mkdir(exist_ok=True)
        return path.parent / "sub" / ".." / path.name
    link = path.parent / f"link-to-{path.name}"
    link.symlink_to(path)
    return link


SAME_FILE = {  # name: argv given the folder t, its model file m and its data file d; the input at risk
    "encode-data-onto-itself": (lambda t, m, d, o: ["encode", m, d, "--out", o(d)]),
    "checkpoint-onto-the-data": (lambda t, m, d, o: ["train", "--data", d.with_suffix(".npz"),
                                                     "--epochs", 1, "--quiet", "--checkpoint",
                                                     o(d.with_suffix(".npz")), "--out", t / "new"]),
    "train-onto-its-data": (lambda t, m, d, o: ["train", "--data", o(t / "run" / "history.csv"),
                                                "--model", "ae", "--loss", "mse", "--epochs", 1,
                                                "--quiet", "--out", t / "run"]),
}


@pytest.mark.parametrize("how", ["as-given", "other-spelling", "symlink"])
@pytest.mark.parametrize("command", SAME_FILE.values(), ids=SAME_FILE.keys())
def test_an_output_that_is_an_input_is_refused_before_anything_runs(command, how, trained, digits_train,
                                                                    tmp_path, monkeypatch):
    shutil.copytree(trained["vae"], tmp_path / "run")
    model, data = tmp_path / "run" / "model.npz", tmp_path / "data.npy"
    np.save(data, digits_train[:200])
    np.savez(data.with_suffix(".npz"), X=digits_train[:200])
    argv = command(tmp_path, model, data, lambda path: _spelled(path, how))
    before = contents(tmp_path)
    for owner, name in ((Estimator, "apply"), (Estimator, "fit"), (npae.VAE, "sample")):
        forbid(monkeypatch, owner, name)
    assert_refused(run(*argv), r"is the input .*; write the output elsewhere")
    assert contents(tmp_path) == before  # every input intact, nothing new
    assert npae.load(model).n_features_in_ == 64


@pytest.mark.parametrize("argv, pattern", [
    (["sample", "{m}", "--out", "s.jpg"], r"--out s\.jpg: sample writes \.png \(a picture\) or \.npy "
                                          r"\(the raw samples\), not \.jpg"),
    (["filters", "{m}", "--out", "f.pdf"], r"--out f\.pdf: filters writes \.png .*not \.pdf"),
    (["interpolate", "{m}", "--out", "i"], r"--out i: interpolate writes \.png .*without an extension"),
    (["encode", "{m}", "digits", "--out", "c.csv"], r"--out c\.csv: encode writes \.npy .*not \.csv"),
    (["encode", "{m}", "digits", "--out", "{m}"], r"encode writes \.npy .*not \.npz"),
    (["train", "--checkpoint", "run.ckpt"], r"--checkpoint run\.ckpt: a checkpoint is an \.npz file"),
    (["sample", "{m}", "--out", "."], r"--out \. is a folder; give a file name"),
], ids=["sample-jpg", "filters-pdf", "interpolate-none", "encode-csv", "encode-onto-the-model",
        "checkpoint-ckpt", "a-folder"])
def test_an_output_npae_cannot_write_in_that_format_is_refused_naming_the_ones_it_can(
        argv, pattern, trained, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(trained["vae"] / "model.npz", tmp_path / "m.npz")
    forbid(monkeypatch, Estimator, "apply")
    forbid(monkeypatch, Estimator, "fit")
    before = contents(tmp_path)
    assert_refused(run(*[a.format(m="m.npz") for a in argv]), pattern)
    assert contents(tmp_path) == before


@pytest.mark.parametrize("argv, default", [
    (["encode", "m.npz", "digits"], "codes.npy"), (["sample", "m.npz"], "samples.png"),
    (["filters", "m.npz"], "filters.png"), (["interpolate", "m.npz"], "interpolation.png")])
def test_an_existing_output_is_replaced_only_when_out_names_it(argv, default, trained, tmp_path,
                                                                monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(trained["vae"] / "model.npz", tmp_path / "m.npz")
    status, out, err = run(*argv)  # the first time, the default name is free
    assert status == 0 and f"wrote {default}" in out, err
    (tmp_path / default).write_bytes(b"the user's own file")
    assert_refused(run(*argv), rf"{re.escape(default)} exists already: pass --out {re.escape(default)} "
                               "to replace it, or --out another name")
    assert (tmp_path / default).read_bytes() == b"the user's own file"
    status, _, err = run(*argv, "--out", default)  # said where to write: replaced
    assert status == 0, err
    assert (tmp_path / default).read_bytes() != b"the user's own file"


def test_train_without_out_does_not_replace_a_run_already_in_npae_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, out, err = run("train", "--epochs", 1, "--hidden", 8, "--quiet")
    assert status == 0 and "npae-out/model.npz" in out, err
    before = contents(tmp_path)
    assert_refused(run("train", "--epochs", 1, "--hidden", 8, "--quiet"),
                   r"npae-out holds a trained model already: pass --out npae-out to replace it")
    assert contents(tmp_path) == before
    status, _, err = run("train", "--epochs", 1, "--hidden", 8, "--quiet", "--out", "npae-out")
    assert status == 0, err


# -- outputs that cannot be written -------------------------------------------------------
def _mount(*argv):
    try:
        return subprocess.run(["mount", *map(str, argv)], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture
def read_only_folder(tmp_path):
    """An existing folder no file can be created in: chmod 555 for a user; for root, whom
    permissions do not stop, a read-only bind mount, or else /proc."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    source = tmp_path / "source"
    source.mkdir()
    if _mount("--bind", source, folder):
        try:
            if _mount("-o", "remount,ro,bind", folder):
                yield folder
                return
        finally:
            subprocess.run(["umount", str(folder)], capture_output=True, timeout=30)
    yield Path("/proc")


@pytest.mark.parametrize("inside", [False, True], ids=["the-folder", "a-new-folder-in-it"])
def test_train_into_a_read_only_folder_is_refused_before_the_first_epoch(inside, read_only_folder,
                                                                         monkeypatch):
    with pytest.raises(OSError):  # the fixture's folder really cannot be written
        (read_only_folder / "probe").write_bytes(b"")
    out = read_only_folder / "run" if inside else read_only_folder
    listed = read_only_folder != Path("/proc")  # (whose listing changes as processes come and go)
    before = sorted(os.listdir(read_only_folder)) if listed else None
    forbid(monkeypatch, npae.training.loop, "run")
    assert_refused(run(*TRAIN, "--out", out), re.escape(str(read_only_folder)))
    assert not (read_only_folder / "model.npz").exists() and not (read_only_folder / "run").exists()
    assert temporaries(read_only_folder) == [] if listed else True
    if listed:
        assert sorted(os.listdir(read_only_folder)) == before


# -- checkpoints, resume, Ctrl-C and SIGTERM -------------------------------------------------
class CtrlCAfterStep(npae.Adam):
    """Adam that presses Ctrl-C (SIGINT to this process) after step 30, in the second epoch."""

    def step(self, params, grads):
        super().step(params, grads)
        if self.t == 30:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("stop", ["epoch-2-of-3", "ctrl-c-in-epoch-2"])
def test_checkpoint_and_resume_end_like_the_uninterrupted_run(stop, trained, tmp_path, monkeypatch):
    checkpoint = tmp_path / "c.npz"
    if stop == "ctrl-c-in-epoch-2":
        monkeypatch.setattr(npae.nn.optim, "Adam", CtrlCAfterStep)  # the optimiser fit makes from --lr
        status, _, err = run(*TRAIN, "--checkpoint", checkpoint, "--out", tmp_path / "first")
        monkeypatch.undo()
        assert status == 130
        assert re.fullmatch(r"interrupted:? (stopped )?after 1 complete epoch; wrote .*model\.npz \(the last "
                            r"completed step\); continue with --resume .*c\.npz --out .*first\n", err)
        assert len(read_history(tmp_path / "first" / "history.csv")[1]) == 1
        assert np.isfinite(npae.load(tmp_path / "first" / "model.npz").encode(np.zeros((1, 64)))).all()
    else:
        status, _, _ = run(*TRAIN, "--epochs", "2", "--checkpoint", checkpoint, "--out", tmp_path / "first")
        assert status == 0
    status, _, err = run(*TRAIN, "--checkpoint", checkpoint, "--resume", checkpoint, "--out", tmp_path / "resumed")
    assert status == 0, err
    straight = npae.load(trained["vae"] / "model.npz")
    assert same_params(npae.load(tmp_path / "resumed" / "model.npz"), straight)
    assert (tmp_path / "resumed" / "history.csv").read_text() == (trained["vae"] / "history.csv").read_text()
    assert temporaries(tmp_path) == []


def test_a_checkpoint_loads_as_the_model_with_its_history(tmp_path):
    status, _, err = run(*TRAIN, "--epochs", "2", "--checkpoint", tmp_path / "c.npz", "--out", tmp_path / "run")
    assert status == 0, err
    model, checkpoint = npae.load(tmp_path / "run" / "model.npz"), npae.load(tmp_path / "c.npz")
    assert same_params(checkpoint, model)
    assert len(model.history["loss"]) == 2
    assert checkpoint.history == model.history


# -- the README's commands ------------------------------------------------------------
README = Path(__file__).resolve().parent.parent / "README.md"


def readme_commands():
    """Every command of the README's ```sh blocks, in order, with the exit status its comment
    promises (``exit 1``; 0 otherwise); installing and running the tests are left out."""
    found = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S):
        for line in block.splitlines():
            command, _, comment = line.partition("  #")
            command = command.split("&&")[-1].strip()
            if command.startswith("python") and "pytest" not in command:
                status = re.search(r"exit (\d)", comment)
                found.append((command, int(status.group(1)) if status else 0))
    return found


def test_every_command_in_the_readme_runs_as_written(tmp_path, monkeypatch):
    commands_run = readme_commands()
    assert sum(c.startswith("python -m npae") for c, _ in commands_run) >= 12
    (tmp_path / "examples").symlink_to(README.parent / "examples")
    monkeypatch.chdir(tmp_path)
    for command, expected in commands_run:
        argv = shlex.split(command)
        if argv[:3] == ["python", "-m", "npae"]:
            status, out, err = run(*argv[3:])
        else:  # a Python one-liner, run with this tree's npae
            done = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True,
                                  timeout=120, env=dict(os.environ, PYTHONPATH=str(README.parent)))
            status, out, err = done.returncode, done.stdout, done.stderr
        assert status == expected, f"{command}\n{out}\n{err}"
    assert np.load("codes.npy").shape == (1797, 2) and np.load("test-codes.npy").shape == (297, 2)
    assert np.load("table-codes.npy").shape == (1797, 2)
    assert npae.models.saving.scaling_of("table/model.npz") is not None


def test_every_picture_the_readme_shows_is_a_valid_png_in_docs_images():
    shown = re.findall(r"!\[[^]]*\]\((docs/images/[^)]+)\)", README.read_text(encoding="utf-8"))
    names = {Path(path).name for path in shown}
    assert {"reconstructions.png", "latent_map.png", "traversal.png", "samples.png", "filters.png",
            "loss.png"} <= names
    for path in shown:
        assert min(png_size(README.parent / path)) >= 100, path


# -- the real command --------------------------------------------------------------
def npae_command(cwd, *argv):
    return subprocess.run([sys.executable, "-m", "npae", *map(str, argv)], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


def test_python_dash_m_npae_trains_and_refuses_in_one_line(tmp_path):
    done = npae_command(tmp_path, "train", "--data", "digits", "--epochs", "1", "--hidden", "8", "--quiet",
                        "--out", "run")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run" / "model.npz").is_file()
    assert len(read_history(tmp_path / "run" / "history.csv")[1]) == 1
    refused = npae_command(tmp_path, "encode", "run/history.csv", "digits")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert re.match(r"error: run/history\.csv:? .*not an (npae model file|\.npz \(zip\) archive)",
                    refused.stderr), refused.stderr


def test_a_reader_that_stops_reading_ends_the_command_quietly(tmp_path):
    """``npae train | head -1``: the pipe breaks at the next line printed; no traceback, no
    error about the pipe, status 141 (as a shell reports a process ended by SIGPIPE)."""
    process = subprocess.Popen([sys.executable, "-m", "npae", "train", "--epochs", "1000", "--hidden", "8",
                                "--out", "run"], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        process.stdout.readline()
        process.stdout.close()
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 141 and err == b"", err


def test_sigterm_ends_a_run_with_143_a_message_and_the_model_saved(tmp_path):
    """``kill`` (SIGTERM) during ``python -m npae train``: the run stops at a batch boundary,
    saves the model, its history and the checkpoint, leaves no temporary file, says so, and
    exits with 128 + 15."""
    rescued_before = {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("npae-rescued-")}
    process = subprocess.Popen(
        [sys.executable, "-m", "npae", "train", "--data", "digits", "--epochs", "100000", "--hidden", "8",
         "--out", "run", "--checkpoint", "c.npz"], cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    try:
        epochs_seen = 0
        for line in process.stdout:  # wait until training is under way
            epochs_seen += line.startswith("epoch ")
            if epochs_seen == 2:
                break
        assert epochs_seen == 2, process.stderr.read()
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 143, err
    assert "Traceback" not in err
    stopped = re.search(r"SIGTERM: stopped after (\d+) complete epochs; wrote run/model\.npz", err)
    assert stopped, err
    epochs = int(stopped.group(1))
    assert epochs >= 2
    model = npae.load(tmp_path / "run" / "model.npz")
    assert len(model.history["loss"]) == epochs and model.n_features_in_ == 64
    assert np.isfinite(model.encode(np.zeros((1, 64)))).all()
    assert len(read_history(tmp_path / "run" / "history.csv")[1]) == epochs
    assert same_params(npae.load(tmp_path / "c.npz"), model)  # the checkpoint holds the same step
    assert temporaries(tmp_path) == []
    rescued = {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("npae-rescued-")}
    assert rescued == rescued_before  # saved where asked, not rescued elsewhere


@pytest.mark.parametrize("name, refusal", [
    ("model.npz", r"--checkpoint .*model.npz is the model.npz that --out .* writes; give the "
                  r"checkpoint another name, e\.g\. .*checkpoint\.npz"),
    ("history.csv", r"--checkpoint .*history.csv: a checkpoint is an .npz file")])
def test_a_checkpoint_where_out_writes_its_results_is_refused_before_training(tmp_path, name,
                                                                              refusal):
    out = tmp_path / "out"
    assert_refused(run(*TRAIN, "--out", out, "--checkpoint", out / name), refusal)
    assert not out.exists()


def test_a_full_disk_at_a_mid_run_checkpoint_names_the_file_and_keeps_the_model(
        tmp_path, monkeypatch):
    """The disk fills up at the second epoch's checkpoint: the run stops with an error naming
    the checkpoint, and the model of the last completed step is saved in --out."""
    from npae.training import checkpoints
    real_write = checkpoints.write_archive
    writes = []

    def write_archive(path, arrays, meta):
        writes.append(path)
        if len(writes) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(path, arrays, meta)

    monkeypatch.setattr(checkpoints, "write_archive", write_archive)
    checkpoint = tmp_path / "ckpt.npz"
    status, out, err = run(*TRAIN, "--out", tmp_path / "out", "--checkpoint", checkpoint)
    assert status == 1 and "Traceback" not in err
    assert re.search(rf"error: \[Errno 28\] cannot write the checkpoint {re.escape(str(checkpoint))} "
                     r"\(No space left on device\).*after 2 complete epochs, wrote "
                     rf"{re.escape(str(tmp_path / 'out' / 'model.npz'))}", err), err
    model = npae.load(tmp_path / "out" / "model.npz")
    assert len(model.history_["loss"]) == 2
    assert len(read_history(tmp_path / "out" / "history.csv")[1]) == 2
    assert temporaries(tmp_path) == []


def test_a_sigterm_during_the_final_checkpoint_ends_with_143_and_no_pictures(tmp_path, monkeypatch):
    from npae.training import loop
    save = loop.save_checkpoint

    def signalled(path, model, state, setup):
        save(path, model, state, setup)
        if state.epoch == 3:
            os.kill(os.getpid(), signal.SIGTERM)
    monkeypatch.setattr(loop, "save_checkpoint", signalled)
    status, _, err = run(*TRAIN, "--out", tmp_path / "out", "--checkpoint", tmp_path / "c.npz")
    assert status == 143 and "SIGTERM: stopped after 3 complete epochs" in err, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["history.csv", "model.npz"]
    assert same_params(npae.load(tmp_path / "c.npz"), npae.load(tmp_path / "out" / "model.npz"))


def test_a_final_write_that_fails_rescues_the_trained_model_into_the_temporary_folder(
        tmp_path, monkeypatch):
    """The disk fills up during the last save: the run is not lost, it is saved elsewhere."""
    target = tmp_path / "out" / "model.npz"
    real_save = train.save

    def save(model, path, *args, **kwargs):
        if Path(path) == target:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(model, path, *args, **kwargs)

    monkeypatch.setattr(train, "save", save)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))   # where mkstemp puts the rescue
    status, out, err = run(*TRAIN, "--out", tmp_path / "out")
    rescued = sorted(tmp_path.glob("npae-rescued-*.npz"))
    assert status == 0 and len(rescued) == 1 and not target.exists()
    assert f"cannot write {target} (No space left on device); the model is saved in {rescued[0]}" in err
    assert str(rescued[0]) in out
    model = npae.load(rescued[0])
    assert len(model.history_["loss"]) == 3


def test_data_at_the_edge_of_the_unit_interval_by_rounding_trains_from_the_command_line(tmp_path):
    """A MinMaxScaler's 1.0000000000000002 is the boundary, not a refusal (as in the library)."""
    X = npae.datasets.load_digits()[0][:200].astype(np.float64)
    X[3, 5] = 1.0000000000000002
    np.save(tmp_path / "edge.npy", X)
    status, _, err = run("train", "--data", tmp_path / "edge.npy", "--epochs", "1",
                         "--out", tmp_path / "run", "--quiet")
    assert status == 0, err
    X[3, 5] = 1.001
    np.save(tmp_path / "over.npy", X)
    assert_refused(run("train", "--data", tmp_path / "over.npy", "--epochs", "1",
                       "--out", tmp_path / "run2"), r"values span \[0, 1\.001\]")
