"""What a sparse code learns from small image patches, next to a plain autoencoder of the same size.

Olshausen & Field (Nature, 1996) showed that asking for a *sparse* code of
natural image patches — each patch explained by a few active units out of
many — yields units whose receptive fields are localised, oriented edge
detectors, like the simple cells of the primary visual cortex (V1).  The
sparse autoencoder reproduces this: its code is ``H = σ(X W₁ + b₁)`` and the
KL penalty ``λ Σ_j KL(ρ ‖ ρ̂_j)`` holds each unit's mean activation ρ̂_j near
a small ρ.  Unit j's receptive field is column j of W₁ — the input pattern
that drives it hardest — pictured here as an 8×8 tile.

The recipe (the classic one of the sparse-autoencoder exercise):

1. Cut random 8×8 patches from the Fashion-MNIST images and drop the nearly
   flat ones, mostly background.  Without Fashion-MNIST, the bundled 8×8
   digits are used whole (drawn with replacement): too small to cut up.
2. Remove each patch's mean and divide by its standard deviation (contrast
   normalisation): the code then describes shape, not brightness.
3. ZCA-whiten: ``X ← X V diag(1/√(e + ε ē)) Vᵀ`` with ``C = V diag(e) Vᵀ`` the
   patch covariance.  Image patches put most of their variance in smooth,
   low-frequency patterns; whitening equalises the variance of every
   direction, so what is left to explain is edges, and a code cannot win by
   spending all its units on the few strongest directions.  (ε = 0.1 of the
   mean eigenvalue; 1.0 for the coarse 4-bit digits, whose finest directions
   are mostly quantisation noise.)
4. Clip at ±3 standard deviations and map into [0.1, 0.9], so a sigmoid
   output layer with squared error can reconstruct it.

Both models are ``d → 64 sigmoid → d sigmoid`` with tied weights (the decoder
uses W₁ᵀ, so the encoder cannot shrink its weights while the decoder grows
them to keep the code small for free), squared-error loss, and a small L2
penalty on the weights, npae's ``alpha``: ``(α/2) ‖W₁‖²_F`` joins the loss, so
``α W₁`` joins the gradient Adam follows (it pulls directions of the weights
the data never excites back to zero instead of leaving their random initial
values).  The sparse one adds the KL penalty with ρ = 0.02, λ = 3.  The
training loss printed includes the penalties; the reconstruction error beside
it (``-model.score(P)``) does not.

Run:  python examples/receptive_fields.py [--quick] [--out examples/out/]
"""

import argparse
import os
import sys
import textwrap
import time

import numpy as np

import npae
from npae.pictures import font
from npae.pictures import png as images

PARAGRAPH = """\
What the pictures show.  The sparse autoencoder's fields ({sparse_png}) are
localised, oriented edge and stroke detectors: each is a short light-dark
boundary or bar at one position and angle inside the patch, with the rest of
the tile flat - the receptive fields of V1 simple cells that Olshausen & Field
(1996) obtained from a sparse code of natural images.  The reason is the
sparsity penalty: with each unit active on only about rho = {rho:g} of the
patches, a unit cannot serve as a small part of every patch; it has to explain
a few patches well on its own, and what recurs, locally, in many patches is one
edge at one place.  The plain autoencoder of the same size ({plain_png}) has no
such pressure: its reconstruction is just as good with any mixture of its units,
so like PCA it spreads every patch over all of them, and its fields are dense,
global, noise-like patterns covering the whole tile with no single edge in them.
Measured: the share of a field's squared weight inside its best {window}x{window}
window averages {loc_sparse:.2f} for the sparse code and {loc_plain:.2f} for the
plain one ({uniform:.2f} if spread evenly); mean activation {act_sparse:.3f} vs {act_plain:.3f}."""

NOT_FORMED = """\
What the pictures show.  After {epochs} epochs on {patches} patches the sparse code's
fields ({sparse_png}) have not formed yet: they are still dense, noise-like patterns
covering the whole tile, no more localised than the plain code's ({plain_png}) - the
share of a field's squared weight inside its best {window}x{window} window averages {loc_sparse:.2f} for
the sparse code and {loc_plain:.2f} for the plain one ({uniform:.2f} if spread evenly) - though
the sparsity penalty already holds its mean activation at {act_sparse:.3f} (vs {act_plain:.3f}).
The localised fields take the full run (no --quick; about half a minute)."""

WHOLE_IMAGES = """  On the whole 8x8 digits used here the sparse fields are pen strokes, loops
and whole-digit templates (a 0, a 3) rather than short edges: a digit this small
has no room for several edges side by side, so what recurs is strokes and shapes."""


def load_images(use_digits):
    """Grey images (N, h, w) in [0, 1], the data set's name, the patch size and the whitening ε."""
    why = "--digits"
    if not use_digits:
        try:
            (X, _), _ = npae.datasets.load_fashion_mnist()
            return X.reshape(-1, 28, 28), "Fashion-MNIST training images", 8, 0.1
        except FileNotFoundError:
            why = "Fashion-MNIST not found"
    X, _ = npae.datasets.load_digits()
    return X.reshape(-1, 8, 8), f"the bundled 8x8 digits, whole ({why})", 8, 1.0


def cut_patches(pictures, size, count, rng, min_std=0.05):
    """``count`` random size×size patches as rows (count, size²), skipping nearly flat ones."""
    n, h, w = pictures.shape
    kept, total = [], 0
    while total < count:
        image = rng.integers(n, size=count)[:, None, None]
        top = rng.integers(h - size + 1, size=count)[:, None, None] + np.arange(size)[None, :, None]
        left = rng.integers(w - size + 1, size=count)[:, None, None] + np.arange(size)[None, None, :]
        patches = pictures[image, top, left].reshape(count, size * size)
        patches = patches[patches.std(axis=1) > min_std]
        kept.append(patches)
        total += len(patches)
    return np.concatenate(kept)[:count]


def preprocess(P, whitening=0.1):
    """Per-patch mean removal and contrast normalisation, ZCA whitening, then [0.1, 0.9]."""
    P = P - P.mean(axis=1, keepdims=True)
    P = P / np.sqrt(P.var(axis=1, keepdims=True) + 0.01)
    e, V = np.linalg.eigh(P.T @ P / len(P))                      # C = V diag(e) Vᵀ
    P = P @ (V / np.sqrt(e + whitening * e.mean())) @ V.T         # X V diag(1/√(e + ε ē)) Vᵀ
    limit = 3 * P.std()
    return (0.1 + 0.4 * (np.clip(P, -limit, limit) / limit + 1)).astype(np.float32)


def train(P, *, sparse, args):
    options = dict(sparsity="kl", sparsity_target=args.rho, sparsity_weight=args.lam) if sparse else {}
    model = npae.Autoencoder(P.shape[1], (args.units,), activation="sigmoid", output="sigmoid", loss="mse",
                             tied=True, alpha=args.alpha, epochs=args.epochs, batch_size=128, lr=3e-3,
                             seed=args.seed, **options)
    return model.fit(P)


def localisation(W, size, window):
    """Mean over units of the share of W[:, j]² inside the best window×window square of the tile."""
    energy = (W.T ** 2).reshape(-1, size, size)
    best = np.zeros(len(energy))
    for r in range(size - window + 1):
        for c in range(size - window + 1):
            best = np.maximum(best, energy[:, r:r + window, c:c + window].sum(axis=(1, 2)))
    return float(np.mean(best / energy.sum(axis=(1, 2))))


def side_by_side(left, right, titles, gap=16, header=14):
    height = max(left.shape[0], right.shape[0])
    canvas = np.ones((height + header, left.shape[1] + gap + right.shape[1]))
    canvas[header:header + left.shape[0], :left.shape[1]] = left
    canvas[header:header + right.shape[0], left.shape[1] + gap:] = right
    for x, title in zip((2, left.shape[1] + gap + 2), titles):
        font.draw_text(canvas, x, 2, title, 0.0)
    return canvas


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join("examples", "out"),
                        help="output folder (default examples/out/)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer patches and epochs: a run in seconds, too short for the fields to form")
    parser.add_argument("--digits", action="store_true",
                        help="use the bundled digits even if Fashion-MNIST is installed")
    parser.add_argument("--patches", type=int, default=None,
                        help="number of patches (default 20000; 4000 with --quick)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (default 250; 40 with --quick)")
    parser.add_argument("--units", type=int, default=64, help="code units (default 64)")
    parser.add_argument("--rho", type=float, default=0.02, help="target mean activation ρ (default 0.02)")
    parser.add_argument("--lam", type=float, default=3.0,
                        help="weight λ of the KL sparsity penalty (default 3)")
    parser.add_argument("--alpha", "--weight-decay", type=float, default=3e-4,
                        help="L2 penalty (alpha/2) ||W||^2 on the weights (default 3e-4)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.patches = args.patches or (4000 if args.quick else 20000)
    args.epochs = args.epochs or (40 if args.quick else 250)

    start = time.perf_counter()
    pictures, source, size, whitening = load_images(args.digits)
    rng = np.random.default_rng(args.seed)
    P = preprocess(cut_patches(pictures, size, args.patches, rng), whitening)
    print(f"data: {len(P)} {size}x{size} patches from {source}; mean-removed, "
          f"contrast-normalised, ZCA-whitened (epsilon {whitening:g}), mapped into [0.1, 0.9]")
    print(f"models: {P.shape[1]} -> {args.units} sigmoid -> {P.shape[1]} sigmoid, tied weights, "
          f"squared error plus the L2 penalty alpha = {args.alpha:g}, Adam 3e-3, "
          f"{args.epochs} epochs of batches of 128")
    sparse = train(P, sparse=True, args=args)
    print(f"sparse (KL, rho = {args.rho:g}, lambda = {args.lam:g}): loss {sparse.history['loss'][-1]:.4f} "
          f"with KL and L2, reconstruction {-sparse.score(P):.4f}  "
          f"({time.perf_counter() - start:.0f}s so far)")
    plain = train(P, sparse=False, args=args)
    print(f"plain: loss {plain.history['loss'][-1]:.4f} with L2, reconstruction {-plain.score(P):.4f}  "
          f"({time.perf_counter() - start:.0f}s so far)")

    os.makedirs(args.out, exist_ok=True)
    grids, paths = {}, {}
    for name, model in (("sparse", sparse), ("plain", plain)):
        W = model.params["encoder.0.W"]                       # (d, units): column j is unit j's field
        grids[name] = images.image_grid(W.T, (size, size), scale=48 // size, pad=2, normalize=True)
        paths[name] = os.path.join(args.out, f"receptive_fields_{name}.png")
        images.write_png(paths[name], grids[name])
    both = os.path.join(args.out, "receptive_fields.png")
    images.write_png(both, side_by_side(grids["sparse"], grids["plain"], ("sparse (KL)", "plain")))
    print(f"wrote {paths['sparse']}, {paths['plain']}, {both}  ({time.perf_counter() - start:.0f}s in all)\n")

    window = size // 2
    measured = dict(
        sparse_png=os.path.basename(paths["sparse"]), plain_png=os.path.basename(paths["plain"]),
        rho=args.rho, window=window, uniform=window**2 / size**2, epochs=args.epochs, patches=len(P),
        loc_sparse=localisation(sparse.params["encoder.0.W"], size, window),
        loc_plain=localisation(plain.params["encoder.0.W"], size, window),
        act_sparse=float(sparse.encode(P[:2000]).mean()), act_plain=float(plain.encode(P[:2000]).mean()))
    # the description of localised fields holds only when the measure shows them
    formed = measured["loc_sparse"] >= measured["loc_plain"] + 0.1
    paragraph = (PARAGRAPH if formed else NOT_FORMED).format(**measured)
    if formed and pictures.shape[1] == size:  # whole images, not patches
        paragraph += WHOLE_IMAGES
    print(textwrap.fill(" ".join(paragraph.split()), width=88))
    return 0


if __name__ == "__main__":
    sys.exit(main())
