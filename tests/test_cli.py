"""The command line end to end in a temporary folder: train a VAE and an autoencoder, then
encode, sample, evaluate, gradcheck, filters and interpolate with them; every PNG is checked
byte by byte; bad input ends with status 2 and one line on stderr."""

import contextlib
import csv
import io
import math
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

import npae
from npae import cli, datasets, images
from test_images import read_png

TRAIN = ["train", "--data", "digits", "--epochs", "3", "--quiet", "--hidden", "32", "--batch-size", "64"]
SCALE = 96 // 8  # the CLI enlarges 8×8 digits to about 96 pixels


def run(*argv):
    """``npae ARGV`` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


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
    return cli.load_data("digits").X_train


# -- train -------------------------------------------------------------------------
PICTURES = {
    "vae": {"reconstructions.png": grid_shape(64, ncols=16), "samples.png": grid_shape(64, ncols=8),
            "traversal.png": grid_shape(144, ncols=12, pad=1), "filters.png": grid_shape(32),
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
        size = png_size(folder / picture)
        assert size == shape if shape else min(size) >= 100, picture


def test_training_through_the_cli_is_training_with_the_library(trained, digits_train):
    """The flags build the model they describe, and fit it exactly as the library would."""
    args = cli.make_parser().parse_args(TRAIN + ["--out", "unused"])
    data = cli.load_data("digits")
    model = cli.build_model(args, 64)
    model.fit(data.X_train, epochs=3, batch_size=64, optimizer=npae.Adam(1e-3),
              validation_data=data.X_test, seed=0, verbose=0)
    assert same_params(model, npae.load(trained["vae"] / "model.npz"))


# -- encode, sample, evaluate, gradcheck, filters, interpolate ---------------------------
def test_encode_writes_one_code_per_row(trained, digits_train, tmp_path):
    model = npae.load(trained["vae"] / "model.npz")
    status, out, _ = run("encode", trained["vae"] / "model.npz", "digits", "--out", tmp_path / "codes.npy")
    assert status == 0 and "(1500, 2)" in out
    codes = np.load(tmp_path / "codes.npy")
    assert codes.shape == (1500, 2) and codes.dtype == np.float32
    assert np.array_equal(codes, model.encode(digits_train))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codes.npy"]  # no temporary left


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
    status, _, err = run("encode", trained["ae"] / "model.npz", tmp_path / "data.npy",
                         "--out", tmp_path / "codes.npy", "--chunk", 400)
    assert status == 0, err
    assert [n for _, n, _ in chunks] == [400, 400, 400, 300]
    kinds = {kind for kind, _, _ in chunks}
    assert kinds == ({np.memmap} if stored == "float32" else {np.ndarray})  # slices of the mapped file
    assert {dtype for _, _, dtype in chunks} == {np.dtype(np.float32)}
    np.testing.assert_allclose(np.load(tmp_path / "codes.npy"), expected, rtol=1e-6, atol=1e-6)


def test_sample_writes_raw_samples_or_a_picture(trained, tmp_path):
    path = trained["vae"] / "model.npz"
    status, _, _ = run("sample", path, "-n", 10, "--seed", 3, "--out", tmp_path / "s.npy")
    samples = np.load(tmp_path / "s.npy")
    assert status == 0 and samples.shape == (10, 64)
    assert np.array_equal(samples, npae.load(path).sample(10, seed=3))
    assert ((0 <= samples) & (samples <= 1)).all()
    status, _, _ = run("sample", path, "--out", tmp_path / "s.png")
    assert status == 0 and png_size(tmp_path / "s.png") == grid_shape(64)


def test_evaluate_prints_the_elbo_and_the_log_likelihood(trained):
    status, out, _ = run("evaluate", trained["vae"] / "model.npz", "--data", "digits",
                         "--k", 20, "--n", 100, "--samples", 2)
    assert status == 0
    assert "evaluating on 297 held-out rows of digits" in out
    elbo = float(re.search(r"ELBO: (-?[\d.]+) nats per example \(2 samples\)", out).group(1))
    log_px = float(re.search(r"log p\(x\) ≥ (-?[\d.]+) nats \(importance-weighted, k=20, first 100 rows\)",
                             out).group(1))
    assert math.isfinite(elbo) and math.isfinite(log_px) and elbo < 0 and log_px < 0
    status, out, _ = run("evaluate", trained["ae"] / "model.npz", "--data", "digits")
    assert status == 0 and "loss per example" in out and "ELBO" not in out


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
    assert status == 0 and png_size(tmp_path / "f.png") == grid_shape(20)
    status, out, _ = run("interpolate", path, "--data", "digits", "--pairs", 0, 1, 2, 3,
                         "--steps", 5, "--out", tmp_path / "i.png")
    assert status == 0 and "2 interpolations in 5 steps" in out
    assert png_size(tmp_path / "i.png") == grid_shape(14, ncols=7)


# -- data the user gives ------------------------------------------------------------
def test_uint8_data_is_scaled_to_the_unit_interval_and_trains_like_the_scaled_floats(digits_train, tmp_path):
    pixels = np.round(digits_train[:400] * 255).astype(np.uint8)
    np.save(tmp_path / "u8.npy", pixels)
    np.save(tmp_path / "f32.npy", pixels.astype(np.float32) / np.float32(255))
    flags = ["--epochs", "2", "--quiet", "--hidden", "8", "--batch-size", "50"]
    for name in ("u8", "f32"):
        status, _, err = run("train", "--data", tmp_path / f"{name}.npy", *flags, "--out", tmp_path / name)
        assert status == 0, err
    assert same_params(npae.load(tmp_path / "u8" / "model.npz"), npae.load(tmp_path / "f32" / "model.npz"))
    assert_refused(run("train", "--data", tmp_path / "u8.npy", "--scale", "none", *flags, "--out", tmp_path / "n"),
                   r"values span \[0, 255\], but a Bernoulli .* needs data in \[0, 1\]: .*--scale 255")


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
                 r"x\.npy: row \d+, column \d+ is nan; the data must be finite"),
    "floats-above-1": (lambda t, m: ["train", "--data", _array_file(t / "x.npy", np.linspace(0, 3, 1920).reshape(30, 64)),
                                     "--out", t / "out"],
                       r"x\.npy: values span \[0, 3\], but a Bernoulli .* scale the data to \[0, 1\]"
                       r".*or use --likelihood gaussian"),
    "floats-above-1-ae": (lambda t, m: ["train", "--model", "ae", "--data",
                                        _array_file(t / "x.npy", np.full((30, 64), 2.0)), "--out", t / "out"],
                          r"or use --loss mse"),
    "checkpoint-folder-missing": (lambda t, m: ["train", "--checkpoint", t / "no" / "c.npz", "--out", t / "out"],
                                  r"--checkpoint .*c\.npz: the folder .* does not exist"),
    "resume-a-model-file": (lambda t, m: ["train", "--epochs", "1", "--hidden", "32",
                                          "--resume", m["vae"] / "model.npz", "--out", t / "out"],
                            r"model\.npz: this is a model file, not a checkpoint"),
    "model-random-bytes": (lambda t, m: ["encode", _random_bytes(t / "m.npz"), "digits"],
                           r"m\.npz is not an npae model file: it is not an \.npz \(zip\) archive"),
    "model-other-npz": (lambda t, m: ["evaluate", _other_npz(t / "m.npz"), "--data", "digits"],
                        r"m\.npz is not an npae model file: it has no npae metadata"),
    "model-missing": (lambda t, m: ["filters", t / "none.npz"], r"no model file at .*none\.npz"),
    "encode-wrong-width": (lambda t, m: ["encode", m["vae"] / "model.npz",
                                         _array_file(t / "x.npy", np.zeros((5, 10))), "--out", t / "c.npy"],
                           r"x\.npy: rows have \(10,\) features, the model expects 64"),
    "encode-out-of-range": (lambda t, m: ["encode", m["vae"] / "model.npz",
                                          _array_file(t / "x.npy", np.full((5, 64), 9.0)), "--out", t / "c.npy"],
                            r"values span \[9, 9\].*as it was for training"),
    "encode-out-folder-missing": (lambda t, m: ["encode", m["vae"] / "model.npz", "digits",
                                                "--out", t / "no" / "c.npy"],
                                  r"--out .*c\.npy: the folder .* does not exist"),
    "sample-an-autoencoder": (lambda t, m: ["sample", m["ae"] / "model.npz"],
                              r"is an autoencoder; only a VAE can sample"),
    "sample-zero": (lambda t, m: ["sample", m["vae"] / "model.npz", "-n", "0"], r"argument -n: must be positive, got 0"),
    "odd-pairs": (lambda t, m: ["interpolate", m["vae"] / "model.npz", "--pairs", "0"],
                  r"--pairs takes row indices two by two"),
    "pair-out-of-range": (lambda t, m: ["interpolate", m["vae"] / "model.npz", "--pairs", "0", "5000",
                                        "--out", t / "i.png"],
                          r"row indices must be in \[0, 297\), got 0 and 5000"),
    "evaluate-k-0": (lambda t, m: ["evaluate", m["vae"] / "model.npz", "--k", "0"], r"argument --k: must be positive"),
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


# -- checkpoints, resume and Ctrl-C ---------------------------------------------------------
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
        monkeypatch.setattr(cli, "Adam", CtrlCAfterStep)
        status, _, err = run(*TRAIN, "--checkpoint", checkpoint, "--out", tmp_path / "first")
        monkeypatch.undo()
        assert status == 130
        assert re.fullmatch(r"interrupted after 1 complete epochs; wrote .*model\.npz \(the last completed "
                            r"step\); continue with --resume .*c\.npz\n", err)
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


# -- the real command --------------------------------------------------------------
def test_python_dash_m_npae_trains_and_refuses_in_one_line(tmp_path):
    def npae_command(*argv):
        return subprocess.run([sys.executable, "-m", "npae", *map(str, argv)], capture_output=True,
                              text=True, timeout=120, cwd=tmp_path)

    done = npae_command("train", "--data", "digits", "--epochs", "1", "--hidden", "8", "--quiet", "--out", "run")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run" / "model.npz").is_file()
    assert len(read_history(tmp_path / "run" / "history.csv")[1]) == 1
    refused = npae_command("encode", "run/history.csv", "digits")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith("error: run/history.csv is not an npae model file")
