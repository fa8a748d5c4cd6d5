"""The examples run as scripts, on a reduced budget, and print what they claim."""

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from pngs import read_png

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NUMBER = r"(-?\d+\.\d+)"


def run(script, *args):
    # One BLAS thread: the examples' small products gain nothing from more, and lose a lot
    # when threads spin against another busy process.
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *map(str, args)],
                            capture_output=True, text=True, timeout=120, cwd=EXAMPLES.parent, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_source_document_examples_run_and_report_what_they_claim():
    out = run("source_document_autoencoder.py", "--epochs", "2")
    assert "784 → 64 → 784" in out and "101,200 parameters" in out
    assert "Autoencoder(n_features=784, epochs=2, batch_size=1)" in out  # the training settings, too
    epochs = re.findall(rf"epoch +(\d+): loss +{NUMBER} per example +\({NUMBER} per pixel", out)
    assert [int(e) for e, _, _ in epochs] == [1, 2]
    for _, per_example, per_pixel in epochs:
        # Keras' number is npae's divided by the 784 pixels; and no predictor's cross-entropy
        # beats the pixels' own entropy, E[H(x)] = ½ per pixel for x ~ U(0, 1)
        assert math.isclose(float(per_example) / 784, float(per_pixel), abs_tol=1e-4)
        assert 0.49 < float(per_pixel) < math.log(2) + 0.01
    assert float(epochs[1][1]) <= float(epochs[0][1])
    assert "prediction shape: (100, 784)" in out

    out = run("source_document_vae.py", "--epochs", "2")
    assert "(μ, log σ²) 8" in out
    assert "VAE(n_features=64, hidden=(128,), latent=8, epochs=2, batch_size=32)" in out
    epochs = re.findall(rf"epoch +(\d+): -ELBO +{NUMBER} \(train\) +{NUMBER} \(held out\)", out)
    assert [int(e) for e, _, _ in epochs] == [1, 2]
    neg_elbo = float(re.search(rf"held-out -ELBO: {NUMBER}", out).group(1))
    log_px = float(re.search(rf"held-out log p\(x\) >= {NUMBER}", out).group(1))
    assert 0 < neg_elbo < 64 * math.log(2)   # better than a coin per pixel, after two epochs
    assert log_px >= -neg_elbo                # the k = 100 bound is above the ELBO
    assert "samples shape: (6, 64)" in out
    art = out.split("samples shape: (6, 64)\n", 1)[1].splitlines()
    assert len(art) == 8   # one text row per pixel row of the 8 × 8 samples


def test_iwae_versus_elbo_example_reports_both_bounds():
    out = run("iwae_vs_elbo.py", "--epochs", "2")
    rows = re.findall(rf"^(elbo|iwae, k=5) +{NUMBER} +{NUMBER} +{NUMBER}$", out, re.M)
    assert [name for name, *_ in rows] == ["elbo", "iwae, k=5"]
    for _, seconds, elbo, log_px in rows:
        assert float(seconds) >= 0
        assert float(log_px) >= float(elbo)      # the k = 1000 bound lies above the ELBO


def test_receptive_fields_example_describes_what_it_measured(tmp_path):
    """The quick run is too short for the sparse fields to form; the text must say what the
    numbers and the pictures show, not what a full run would."""
    out = " ".join(run("receptive_fields.py", "--quick", "--out", tmp_path).split())  # unwrapped
    assert "L2 penalty alpha = 0.0003" in out
    loc_sparse, loc_plain = map(float, re.search(
        rf"averages {NUMBER} for the sparse code and {NUMBER} for the plain one", out).groups())
    act_sparse, act_plain = map(float, re.search(rf"mean activation (?:at )?{NUMBER} \(?vs {NUMBER}",
                                                 out).groups())
    assert 0.01 <= act_sparse <= 0.04 < 0.2 <= act_plain   # ρ = 0.02 holds; the plain code is dense
    localised = loc_sparse >= loc_plain + 0.1
    assert ("localised, oriented edge" in out) == localised
    assert ("have not formed yet" in out) == (not localised)
    fields = {}
    for name in ("sparse", "plain"):
        header, fields[name] = read_png(tmp_path / f"receptive_fields_{name}.png")
        assert fields[name].shape == (8 * 48 + 9 * 2,) * 2  # 64 tiles of 8 × 8 pixels, 6 × 6 each
        assert fields[name].std() > 10                     # tiles with something in them
    _, both = read_png(tmp_path / "receptive_fields.png")
    width = fields["sparse"].shape[1]
    assert both.shape == (14 + width, 2 * width + 16)
    assert np.array_equal(both[14:, :width], fields["sparse"])
    assert np.array_equal(both[14:, width + 16:], fields["plain"])
    for left in (0, width + 16):  # each title drawn in black on white above its grid
        title = both[:14, left:left + 80]
        assert title.min() == 0 and title.max() == 255 and (title == 0).sum() > 40
