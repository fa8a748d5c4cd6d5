"""The pictures ``python -m npae train`` writes, and the pictures of a trained model.

``reconstructions.png`` (originals above their reconstructions), ``samples.png``
(draws from a VAE's prior), ``traversal.png`` (a 2-D VAE's decoder over the
latent plane), ``filters.png`` (first-layer weights), ``latent_map.png`` (the
codes of held-out data coloured by label, or their first two principal
components) and ``loss.png`` (the loss per epoch).
"""

import os

import numpy as np

from ..data import datasets
from . import plots, png


def write_all(model, data, out):
    """Every picture that fits ``model`` and ``data`` (a :class:`npae.datasets.Dataset`),
    written into the folder ``out``; returns their paths."""
    written = []
    shape = data.image_shape
    X_show = data.X_test if data.X_test is not None else data.X_train
    y_show = data.y_test if data.X_test is not None else data.y_train

    def put(name, picture):
        path = os.path.join(out, name)
        png.write_png(path, picture)
        written.append(path)

    if shape:
        put("reconstructions.png", reconstructions(model, np.asarray(X_show[:32]), shape))
        if hasattr(model, "sample"):
            put("samples.png", grid(model.sample(64, seed=0), shape, ncols=8))
            if model.code_size == 2:
                put("traversal.png", latent_traversal(model, shape))
        put("filters.png", filters(model, shape))
    if y_show is not None:
        codes = model.encode(X_show[:2000])
        points, how = first_two(np.asarray(codes))
        names = datasets.FASHION_MNIST_CLASSES if data.name == "fashion-mnist" else None
        put("latent_map.png", plots.scatter_plot(points, y_show[:2000], label_names=names,
                                                 title=f"codes of held-out data ({how})"))
    curves = {"train": model.history_["loss"]}
    if model.history_.get("val_loss"):
        curves["validation"] = model.history_["val_loss"]
    put("loss.png", plots.line_plot(curves, title="loss per example"))
    return written


def enlargement(shape):
    """Pixels per image pixel: small images are drawn larger (about 96 px across)."""
    return max(1, 96 // shape[0])


def grid(pictures, shape, *, ncols=None, pad=2):
    """Images in [0, 1] (clipped) laid out in a grid."""
    return png.image_grid(np.clip(pictures, 0, 1), shape, ncols=ncols,
                             scale=enlargement(shape), pad=pad)


def reconstructions(model, X, shape):
    """Rows of 16 originals, each above the row of their reconstructions."""
    recon = model.reconstruct(X)
    rows = [X[:16], recon[:16], X[16:32], recon[16:32]]
    return grid(np.concatenate(rows), shape, ncols=16)


def filters(model, shape, n=64):
    """The first layer's weights, one tile per hidden unit, each tile scaled to its own range."""
    W = next(iter(model.params.values()))
    return png.image_grid(W.T[:n], shape, scale=enlargement(shape), pad=2, normalize=True)


def first_two(codes):
    """The first two code dimensions, or the codes' first two principal components."""
    if codes.shape[1] == 1:
        return np.column_stack([codes[:, 0], np.zeros(len(codes))]), "1-D code"
    if codes.shape[1] == 2:
        return codes, "latent dimensions 1 and 2"
    centred = codes - codes.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T, "first two principal components"


def latent_traversal(model, shape, *, steps=12, span=2.5):
    """Decoded images over a grid of z ∈ [−span, span]² (a 2-D VAE's latent space)."""
    axis = np.linspace(-span, span, steps)
    z = np.array([(x, y) for y in axis[::-1] for x in axis])
    return grid(model.decode(z), shape, ncols=steps, pad=1)


def interpolations(model, X, pairs, shape, steps=8):
    """For each pair of rows (a, b): x_a, the decoded line from z_a to z_b, x_b."""
    rows = []
    for a, b in pairs:
        za, zb = np.asarray(model.encode(X[[a, b]]))
        t = np.linspace(0, 1, steps)[:, None]
        rows.append(np.concatenate([X[[a]], model.decode((1 - t) * za + t * zb), X[[b]]]))
    return grid(np.concatenate(rows), shape, ncols=steps + 2)
