"""The examples run as scripts, on a reduced budget, and print what they claim."""

import math
import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NUMBER = r"(-?\d+\.\d+)"


def run(script, *args):
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *args],
                            capture_output=True, text=True, timeout=120, cwd=EXAMPLES.parent)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_source_document_examples_run_and_report_what_they_claim():
    out = run("source_document_autoencoder.py", "--epochs", "2")
    assert "784 → 64 → 784" in out and "101,200 parameters" in out
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
