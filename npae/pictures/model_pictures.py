"""The pictures ``python -m npae train`` writes, and the pictures of a trained model.

``reconstructions.png`` (originals above their reconstructions), ``samples.png``
(draws from a VAE's prior), ``traversal.png`` (a 2-D VAE's decoder over the
latent plane), ``filters.png`` (first-layer weights), ``latent_map.png`` (the
codes of held-out data, or their first two principal components, coloured by
label when the data has labels) and ``loss.png`` (the loss per epoch). Each
carries its title, and its labels, axes or colour scale.
"""

import math
import os

import numpy as np

from . import plots, png


def write_all(model, data, out):
    """Every picture that fits ``model`` and ``data`` (a :class:`npae.datasets.Dataset`),
    written into the folder ``out``; returns their paths."""
    written = []
    shape = data.image_shape
    X_show = data.X_test if data.X_test is not None else data.X_train
    y_show = data.y_test if data.X_test is not None else data.y_train
    shown = "held-out" if data.X_test is not None else "training"
    view = unscaled(data, X_show[:32])

    def put(name, picture):
        path = os.path.join(out, name)
        png.write_png(path, picture)
        written.append(path)

    if shape:
        put("reconstructions.png", reconstructions(model, np.asarray(X_show[:32]), shape, shown,
                                                   view=view))
        if hasattr(model, "sample"):
            put("samples.png", samples(model, shape, 64, seed=0, view=view))
            if model.code_size == 2:
                put("traversal.png", latent_traversal(model, shape, view=view))
        put("filters.png", filters(model, shape))
    codes = model.encode(X_show[:2000])
    points, how, axes = first_two(np.asarray(codes))
    labels = None if y_show is None else y_show[:2000]
    put("latent_map.png", plots.scatter_plot(points, labels, label_names=data.label_names,
                                             title=f"codes of {shown} data ({how})",
                                             xlabel=axes[0], ylabel=axes[1]))
    curves = {"train": model.history_["loss"]}
    if model.history_.get("val_loss"):
        curves["validation"] = model.history_["val_loss"]
    put("loss.png", plots.line_plot(curves, title=f"{loss_name(model)} per example",
                                    ylabel=f"{loss_name(model)} ({loss_unit(model)})"))
    return written


def unscaled(data, X):
    """How pictures show the model's values: as they are, or — for standard-scaled data —
    in the data's own units (x·s + m), mapped onto [0, 1] by the range of the rows ``X``."""
    if data.scaling is None:
        return lambda values: values
    mean, std = data.scaling
    raw = np.asarray(X, dtype=np.float64) * std + mean
    low, span = raw.min(), (raw.max() - raw.min()) or 1.0
    return lambda values: (np.asarray(values, dtype=np.float64) * std + mean - low) / span


def loss_name(model):
    """What the model's training loss is: "-ELBO", "-IWAE bound", or the autoencoder's loss."""
    params = model.get_params()
    if hasattr(model, "sample"):
        name = "-IWAE bound" if params.get("objective") == "iwae" else "-ELBO"
        return name if params.get("beta", 1) == 1 else f"{name} (KL weighted by beta)"
    name = "cross-entropy" if params.get("loss") == "bce" else "squared error"
    penalised = (params.get("sparsity") and params.get("sparsity_weight")) or params.get("contractive_weight")
    return f"{name} + penalty" if penalised else name


def loss_unit(model):
    """Its unit: nats (a negative log-likelihood, natural logarithm) or squared data units."""
    return "squared units" if model.get_params().get("loss") == "mse" and \
        not hasattr(model, "sample") else "nats"


def enlargement(shape):
    """Pixels per image pixel: small images are drawn larger (about 96 px across)."""
    return max(1, 96 // shape[0])


def grid(pictures, shape, *, ncols=None, pad=2, across=96):
    """Images in [0, 1] (clipped) laid out in a grid, each about ``across`` pixels wide."""
    return png.image_grid(np.clip(pictures, 0, 1), shape, ncols=ncols,
                          scale=max(1, across // shape[0]), pad=pad)


def reconstructions(model, X, shape, shown="held-out", *, view=None):
    """Rows of up to 16 originals, each above the row of their reconstructions, labelled, under
    a title (``view`` maps the values to pictures; see :func:`unscaled`)."""
    view = view or (lambda values: values)
    recon, X = view(model.reconstruct(X)), view(X)
    rows = [part for start in range(0, len(X), 16) for part in (X[start:start + 16],
                                                                 recon[start:start + 16])]
    picture = grid(np.concatenate(rows), shape, ncols=min(16, len(X)))
    tile = shape[0] * enlargement(shape) + 2
    labels = [("original" if k % 2 == 0 else "reconstruction", 2 + k * tile, (k + 1) * tile)
              for k in range(len(rows))]
    return plots.titled(picture, f"{shown} images (original) above their reconstructions",
                        row_labels=labels)


def samples(model, shape, n=64, *, seed=0, view=None):
    """``n`` decoded draws from a VAE's prior, in a grid under a title."""
    view = view or (lambda values: values)
    picture = grid(view(model.sample(n, seed=seed)), shape, ncols=min(n, 8 if n <= 64 else 16))
    return plots.titled(picture, f"{n} sample{'s' * (n != 1)}: decoded z, drawn from N(0, I)")


def filters(model, shape, n=64):
    """The first layer's weights, one tile per hidden unit, on one diverging colour scale
    (blue negative, white 0, red positive) shared by every tile and drawn beside them."""
    W = next(iter(model.params.values()))
    tiles = W.T[:n].reshape(-1, *shape)
    limit = float(np.percentile(np.abs(tiles), 99)) or 1.0
    scale, pad = enlargement(shape), 2
    ncols = math.ceil(math.sqrt(len(tiles)))
    nrows = math.ceil(len(tiles) / ncols)
    size = (shape[0] * scale + pad, shape[1] * scale + pad)
    canvas = np.full((nrows * size[0] + pad, ncols * size[1] + pad, 3), 96, dtype=np.uint8)
    for index, tile in enumerate(tiles):
        row, col = divmod(index, ncols)
        top, left = pad + row * size[0], pad + col * size[1]
        colours = plots.diverging(tile, limit).repeat(scale, axis=0).repeat(scale, axis=1)
        canvas[top:top + shape[0] * scale, left:left + shape[1] * scale] = colours
    units = W.shape[1]
    title = f"first-layer weights: {len(tiles)} of {units} hidden unit{'s' * (units != 1)}"
    return plots.titled(plots.beside_colour_scale(canvas, limit, "weight"), title)


def first_two(codes):
    """The first two code dimensions, or the codes' first two principal components: the
    points, what they are, and the names of their two axes."""
    if codes.shape[1] == 1:
        return np.column_stack([codes[:, 0], np.zeros(len(codes))]), "1-D code", ("z1", "")
    if codes.shape[1] == 2:
        return codes, "latent dimensions 1 and 2", ("z1", "z2")
    centred = codes - codes.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return (centred @ vt[:2].T, "first two principal components",
            ("principal component 1", "principal component 2"))


def latent_traversal(model, shape, *, steps=12, span=2.5, view=None):
    """Decoded images over a grid of z ∈ [−span, span]² (a 2-D VAE's latent space), on axes
    that give each tile's z: z1 to the right, z2 upwards, as in ``latent_map.png``."""
    axis = np.linspace(-span, span, steps)
    z = np.array([(x, y) for y in axis[::-1] for x in axis])
    view = view or (lambda values: values)
    picture = grid(view(model.decode(z)), shape, ncols=steps, pad=1, across=56)
    half = span / (steps - 1)  # each tile reaches half a step beyond the z it shows
    return plots.on_axes(picture, (-span - half, span + half, -span - half, span + half),
                         title="the decoder over the latent plane", xlabel="z1", ylabel="z2")


def interpolations(model, X, pairs, shape, steps=8, *, view=None):
    """For each pair of rows (a, b): x_a, the decoded line from z_a to z_b, x_b."""
    view = view or (lambda values: values)
    rows = []
    for a, b in pairs:
        za, zb = np.asarray(model.encode(X[[a, b]]))
        t = np.linspace(0, 1, steps)[:, None]
        rows.append(np.concatenate([X[[a]], model.decode((1 - t) * za + t * zb), X[[b]]]))
    picture = grid(view(np.concatenate(rows)), shape, ncols=steps + 2)
    tile = shape[0] * enlargement(shape) + 2
    labels = [(f"rows {a}, {b}", 2 + k * tile, (k + 1) * tile) for k, (a, b) in enumerate(pairs)]
    return plots.titled(picture, "inputs at both ends, decoded codes between", row_labels=labels)
