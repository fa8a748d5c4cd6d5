"""A variational autoencoder on the bundled digits: what the source document's
"VAE" example (§4.2) should have been.

The document's example is its autoencoder again — 784 → 64 relu → 784
sigmoid, trained on squared error with ``Adam(lr=0.001, beta_1=0.5)`` — so it
has no approximate posterior, no sampling and no KL term: it is not a VAE.
This script trains a real one (Kingma & Welling, 2013):

* the encoder has two linear heads, μ(x) and log σ²(x) — the log-variance
  needs no activation to keep σ² positive;
* z = μ + σ ⊙ ε with ε ~ N(0, I), the reparameterised sample through which
  the gradients reach μ and σ;
* the loss is −ELBO = −E_q[log p(x|z)] + KL(q(z|x) ‖ N(0, I)), with a
  Bernoulli decoder p(x|z) and the KL in closed form
  ½ Σ (μ² + σ² − 1 − log σ²).

It keeps the document's optimiser, ``Adam(lr=0.001, beta_1=0.5)``, trains on
the 1,500 training digits (8 × 8 pixels in [0, 1]), then reports on the 297
held-out digits the −ELBO and the importance-weighted estimate of log p(x)
with k = 100 samples (Burda et al., 2015), which is never below the ELBO, and
draws new digits from the prior.

Run:  python examples/source_document_vae.py [--epochs 30]
"""

import argparse

import numpy as np

import npae

SHADES = " .:-=+*#%@"


def as_text(images, side=8):
    """Images (m, side²) in [0, 1], drawn side by side in characters."""
    rows = []
    for r in range(side):
        pixels = images[:, r * side:(r + 1) * side]
        levels = np.minimum((pixels * len(SHADES)).astype(int), len(SHADES) - 1)
        rows.append("   ".join("".join(SHADES[v] * 2 for v in image_row) for image_row in levels))
    return "\n".join(rows)


def main(epochs=30):
    data = npae.datasets.load("digits")
    X_train, X_test = data.X_train, data.X_test
    vae = npae.VAE(64, hidden=(128,), latent=8, epochs=epochs, batch_size=32)
    print(vae.built())   # built from n_features=64, so its layers can be shown
    # the document's optimiser: Adam with β₁ = 0.5 instead of the default Adam(lr)
    vae.fit(X_train, optimizer=npae.Adam(0.001, beta_1=0.5), validation_data=X_test)
    for epoch in sorted({1, *range(10, epochs + 1, 10), epochs}):
        print(f"epoch {epoch:>3}: -ELBO {vae.history['loss'][epoch - 1]:7.3f} (train)  "
              f"{vae.history['val_loss'][epoch - 1]:7.3f} (held out)")

    neg_elbo = -vae.elbo(X_test, n_samples=10, seed=1).mean()
    log_px = vae.log_likelihood(X_test, k=100, seed=2).mean()
    print(f"held-out -ELBO: {neg_elbo:.3f} nats per digit")
    print(f"held-out log p(x) >= {log_px:.3f} nats per digit (importance-weighted, k=100)")

    samples = vae.sample(6, seed=3)
    print(f"samples shape: {samples.shape}")
    print(as_text(samples))
    return neg_elbo, log_px, samples


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="training epochs (default 30)")
    main(parser.parse_args().epochs)
