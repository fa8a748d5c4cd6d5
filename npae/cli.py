"""The command line: ``python -m npae <command>`` (or ``npae <command>``).

Commands: ``train``, ``encode``, ``sample``, ``evaluate``, ``gradcheck``,
``filters``, ``interpolate`` and ``check``.  ``python -m npae <command> --help``
describes each.  Bad input ends with exit status 2 and one line naming the
problem (no traceback); a training run that diverges ends with status 1, and
one stopped by Ctrl-C saves what it has and ends with status 130.
"""

import argparse
import csv
import os
import sys
import tempfile
import time

import numpy as np

from . import datasets, images
from .autoencoder import Autoencoder
from .gradcheck import gradcheck
from .io import load, save
from .optim import Adam
from .vae import VAE

DEFAULT_OUT = "npae-out"


class UsageError(Exception):
    """Bad input from the command line: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (see --help)")


# -- arguments ---------------------------------------------------------------
def _sizes(text):
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 128 or 256,64, got {text!r}") from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return sizes


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 0, got {text}")
    return value


def _non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 0, got {text}")
    return value


def _add_model_flags(p):
    g = p.add_argument_group("model")
    g.add_argument("--model", choices=("vae", "ae"), default="vae",
                   help="variational autoencoder (default) or plain autoencoder")
    g.add_argument("--hidden", type=_sizes, default=None, metavar="SIZES",
                   help="hidden layer sizes, comma-separated (default: 128; for ae the last is the code)")
    g.add_argument("--latent", type=_positive(int), default=2, help="VAE latent size (default 2)")
    g.add_argument("--activation", default="relu",
                   help="hidden activation: relu, leaky_relu, tanh, sigmoid, softplus, identity")
    g.add_argument("--likelihood", choices=("bernoulli", "gaussian"), default="bernoulli",
                   help="VAE decoder p(x|z) (default bernoulli; data must be in [0, 1])")
    g.add_argument("--loss", choices=("bce", "mse"), default="bce", help="autoencoder loss (default bce)")
    g.add_argument("--output", default=None, help="autoencoder output activation (default sigmoid)")
    g.add_argument("--beta", type=_non_negative_float, default=1.0, help="weight of the KL term (default 1)")
    g.add_argument("--warmup-epochs", type=_non_negative_int, default=0,
                   help="VAE: anneal β linearly over this many epochs (KL warm-up)")
    g.add_argument("--objective", choices=("elbo", "iwae"), default="elbo",
                   help="VAE training objective (default elbo)")
    g.add_argument("--k", type=_positive(int), default=5, help="samples per example for --objective iwae")
    g.add_argument("--tied", action="store_true", help="autoencoder: tie decoder weights to the encoder's")
    g.add_argument("--noise", choices=("mask", "gaussian"), default=None, help="denoising corruption")
    g.add_argument("--noise-level", type=_non_negative_float, default=0.0, help="its level ν")
    g.add_argument("--sparsity", choices=("l1", "kl"), default=None, help="sparsity penalty on the code")
    g.add_argument("--sparsity-weight", type=_non_negative_float, default=0.0, help="its weight λ")
    g.add_argument("--sparsity-target", type=float, default=0.05, help="target mean activation ρ (kl)")
    g.add_argument("--contractive-weight", type=_non_negative_float, default=0.0,
                   help="contractive penalty weight (one-layer encoder)")
    g.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default 0)")


def build_model(args, n_features, *, dtype="float32"):
    """The model the flags describe, for data of width ``n_features``."""
    if args.model == "vae":
        return VAE(n_features, hidden=args.hidden or (128,), latent=args.latent,
                   activation=args.activation, likelihood=args.likelihood, beta=args.beta,
                   warmup_epochs=args.warmup_epochs, objective=args.objective,
                   k=args.k if args.objective == "iwae" else 1, seed=args.seed, dtype=dtype)
    output = args.output or ("sigmoid" if args.loss == "bce" else "identity")
    return Autoencoder(n_features, hidden=args.hidden or (32,), activation=args.activation,
                       output=output, loss=args.loss, tied=args.tied, noise=args.noise,
                       noise_level=args.noise_level, sparsity=args.sparsity,
                       sparsity_weight=args.sparsity_weight, sparsity_target=args.sparsity_target,
                       contractive_weight=args.contractive_weight, seed=args.seed, dtype=dtype)


# -- data --------------------------------------------------------------------
def load_data(name, *, scale="auto", seed=0):
    """The named data set or file, as a :class:`npae.datasets.Dataset` of float32 rows.

    Files without a test split get a seeded 10 % held out.  Integer data
    within [0, 255] is divided by 255 (``scale="auto"``) so images stored as
    uint8 are ready for a Bernoulli likelihood.
    """
    data = _read_data(name, lambda: datasets.load(name))
    X_train, y_train, X_test, y_test = data.X_train, data.y_train, data.X_test, data.y_test
    if X_test is None and X_train.shape[0] >= 20:
        order = np.random.default_rng(seed).permutation(X_train.shape[0])
        n_test = X_train.shape[0] // 10
        test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
        X_test = X_train[test]
        y_test = None if y_train is None else y_train[test]
        X_train = X_train[train]
        y_train = None if y_train is None else y_train[train]
    X_train, X_test = (None if X is None else _scaled(X, scale) for X in (X_train, X_test))
    return data._replace(X_train=X_train, y_train=y_train, X_test=X_test, y_test=y_test)


def _read_data(name, read):
    """``read()``, with NumPy's advice about pickled files replaced: npae never unpickles."""
    try:
        return read()
    except ValueError as exc:
        if "pickle" in str(exc) or "Python objects" in str(exc):
            raise UsageError(f"{name}: not a numeric array file that npae can read (NumPy would "
                             "have to unpickle it, which npae never does)") from None
        raise


def _scaled(X, scale):
    return _divided(X) if _needs_dividing(X, scale) else X


def _needs_dividing(X, scale):
    """Divide by 255: asked for, or (auto) integer data within [0, 255] that is not already 0/1."""
    return scale == "255" or bool(scale == "auto" and X.dtype.kind in "iu" and X.size
                                  and X.min() >= 0 and X.max() <= 255 and X.max() > 1)


def _divided(X):
    return np.asarray(X, dtype=np.float32) / np.float32(255)


def check_data(X, source, model, *, first_row=0, training=False):
    """Refuse, in one line naming ``source``, rows the model cannot take.

    Checks the width, that every value is finite, and that data for a
    Bernoulli / binary cross-entropy model lies in [0, 1]; the message says
    what to change.  ``first_row`` numbers the rows of a chunk.
    """
    if X.ndim != 2 or X.shape[1] != model.n_features:
        raise UsageError(f"{source}: rows have {X.shape[1:]} features, the model expects "
                         f"{model.n_features}")
    if X.dtype.kind == "f":
        finite = np.isfinite(X)
        if not finite.all():
            row, col = np.argwhere(~finite)[0]
            raise UsageError(f"{source}: row {first_row + row}, column {col} is {X[row, col]}; "
                             "the data must be finite numbers")
    if model.needs_unit_interval and X.size:
        low, high = X.min(), X.max()
        if low < 0 or high > 1:
            scale = "scale the data to [0, 1] (for 8-bit images: --scale 255)"
            if training:
                other = "--likelihood gaussian" if isinstance(model, VAE) else "--loss mse"
                fix = f"{scale}, or use {other}"
            else:
                fix = f"{scale}, as it was for training"
            raise UsageError(f"{source}: values span [{low:g}, {high:g}], but a Bernoulli / "
                             f"binary cross-entropy model needs data in [0, 1]: {fix}")


def _check_output(flag, path):
    """``path`` can be written: its folder exists and it is not a folder."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path} is a folder; give a file name")
    if not os.path.isdir(folder):
        raise UsageError(f"{flag} {path}: the folder {folder} does not exist")


# -- commands ------------------------------------------------------------------
def cmd_train(args):
    data = load_data(args.data, scale=args.scale, seed=args.seed)
    X, X_test = data.X_train, data.X_test
    model = build_model(args, X.shape[1])
    for part in (X, X_test):
        if part is not None:
            check_data(part, args.data, model, training=True)
    optimizer = Adam(lr=args.lr)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UsageError(f"--out {args.out} exists and is not a folder")
    if args.checkpoint is not None:
        _check_output("--checkpoint", args.checkpoint)
    created = not os.path.exists(args.out)
    os.makedirs(args.out, exist_ok=True)
    print(f"{model}\ndata: {data.name}, {X.shape[0]} training rows of {X.shape[1]} features"
          + (f", {X_test.shape[0]} held out" if X_test is not None else "")
          + f"\ntraining {args.epochs} epochs, batch {args.batch_size}, {optimizer!r}")
    start = time.perf_counter()
    try:
        model.fit(X, epochs=args.epochs, batch_size=args.batch_size, optimizer=optimizer,
                  validation_data=X_test, seed=args.seed, verbose=0 if args.quiet else 1,
                  checkpoint=args.checkpoint, resume=args.resume)
    except BaseException:
        if created and not os.listdir(args.out):  # a refused --resume leaves no trace
            os.rmdir(args.out)
        raise
    seconds = time.perf_counter() - start
    model_path = os.path.join(args.out, "model.npz")
    save(model, model_path, optimizer=optimizer)
    _write_history(os.path.join(args.out, "history.csv"), model.history)
    if model.interrupted:
        print(f"interrupted after {len(model.history['loss'])} complete epochs; wrote {model_path} "
              "(the last completed step)"
              + (f"; continue with --resume {args.checkpoint}" if args.checkpoint else ""),
              file=sys.stderr)
        return 130
    pictures = write_pictures(model, data, args.out)

    print(f"\ntrained in {seconds:.1f}s; final training loss {model.history['loss'][-1]:.4f}"
          + (f", validation loss {model.history['val_loss'][-1]:.4f}" if "val_loss" in model.history else ""))
    if isinstance(model, VAE) and X_test is not None and args.likelihood == "bernoulli":
        elbo = model.elbo(X_test, n_samples=10, seed=0).mean()
        print(f"test ELBO {elbo:.3f} nats per example (10 samples; −ELBO {-elbo:.3f})")
    print(f"wrote {model_path}, {os.path.join(args.out, 'history.csv')}"
          + "".join(f", {p}" for p in pictures))
    return 0


def _write_history(path, history):
    columns = list(history)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch"] + columns)
        for epoch in range(len(history.get("loss", []))):
            writer.writerow([epoch + 1] + [f"{history[c][epoch]:.6f}" for c in columns])


def write_pictures(model, data, out):
    """The PNGs of ``train``: reconstructions, samples, latent map, loss curves, filters."""
    written = []
    shape = data.image_shape
    scale = max(1, 96 // shape[0]) if shape else 1
    X_show = data.X_test if data.X_test is not None else data.X_train
    y_show = data.y_test if data.X_test is not None else data.y_train

    def put(name, picture):
        path = os.path.join(out, name)
        images.write_png(path, picture)
        written.append(path)

    if shape:
        originals = np.asarray(X_show[:32], dtype=np.float32)
        recon = model.reconstruct(originals)
        rows = [originals[:16], recon[:16], originals[16:32], recon[16:32]]
        put("reconstructions.png", images.image_grid(np.concatenate(rows), shape, ncols=16,
                                                     scale=scale, pad=2))
        if isinstance(model, VAE):
            put("samples.png", images.image_grid(np.clip(model.sample(64, seed=0), 0, 1), shape,
                                                 ncols=8, scale=scale, pad=2))
            if model.latent == 2:
                put("traversal.png", latent_traversal(model, shape, scale=scale))
        first = next(iter(model.params.values()))
        put("filters.png", images.image_grid(first.T[:64], shape, scale=scale, pad=2, normalize=True))
    if y_show is not None:
        codes = model.encode(X_show[:2000])
        points, how = _first_two(codes)
        names = datasets.FASHION_MNIST_CLASSES if data.name == "fashion-mnist" else None
        put("latent_map.png", images.scatter_plot(points, y_show[:2000], label_names=names,
                                                  title=f"codes of held-out data ({how})"))
    curves = {"train": model.history["loss"]}
    if "val_loss" in model.history:
        curves["validation"] = model.history["val_loss"]
    put("loss.png", images.line_plot(curves, title="loss per example"))
    return written


def _first_two(codes):
    """The first two code dimensions, or the codes' first two principal components."""
    if codes.shape[1] == 1:
        return np.column_stack([codes[:, 0], np.zeros(len(codes))]), "1-D code"
    if codes.shape[1] == 2:
        return codes, "latent dimensions 1 and 2"
    centred = codes - codes.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T, "first two principal components"


def latent_traversal(model, shape, *, steps=12, scale=1, span=2.5):
    """Decoded images over a grid of z ∈ [−span, span]² (a 2-D VAE's latent space)."""
    grid = np.linspace(-span, span, steps, dtype=model.dtype)
    z = np.array([(x, y) for y in grid[::-1] for x in grid], dtype=model.dtype)
    return images.image_grid(np.clip(model.decode(z), 0, 1), shape, ncols=steps, scale=scale, pad=1)


def _load_model(path):
    model = load(path)
    return model


def cmd_encode(args):
    model = _load_model(args.model_file)
    _check_output("--out", args.out)
    if os.path.isfile(args.data):
        X = _read_data(args.data, lambda: datasets.load_array(args.data))[0]  # .npy: memory-mapped
        divide = _needs_dividing(X, args.scale)  # decided on the whole file, applied chunk by chunk
    else:
        X, divide = load_data(args.data, scale=args.scale).X_train, False  # scaled already
    if X.ndim != 2 or X.shape[1] != model.n_features:
        raise UsageError(f"{args.data}: rows have {X.shape[1:]} features, the model expects {model.n_features}")
    out = args.out
    folder = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(prefix=".npae-", suffix=".npy", dir=folder)
    os.close(fd)
    try:
        codes = np.lib.format.open_memmap(tmp, mode="w+", dtype=model.dtype,
                                          shape=(X.shape[0], model.code_size))
        for start in range(0, X.shape[0], args.chunk):
            chunk = X[start:start + args.chunk]
            chunk = _divided(chunk) if divide else chunk
            check_data(chunk, args.data, model, first_row=start)
            codes[start:start + args.chunk] = model.encode(chunk)
        codes.flush()
        del codes
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    print(f"wrote {out}: codes of shape ({X.shape[0]}, {model.code_size})")
    return 0


def cmd_sample(args):
    model = _load_model(args.model_file)
    if not isinstance(model, VAE):
        raise UsageError(f"{args.model_file} is an autoencoder; only a VAE can sample")
    _check_output("--out", args.out)
    samples = model.sample(args.n, seed=args.seed)
    if args.out.endswith(".npy"):
        np.save(args.out, samples)
    else:
        shape = datasets.square_image_shape(model.n_features)
        if shape is None:
            raise UsageError(f"{model.n_features} features are not a square image; use --out FILE.npy")
        images.write_png(args.out, images.image_grid(np.clip(samples, 0, 1), shape,
                                                     scale=max(1, 96 // shape[0]), pad=2))
    print(f"wrote {args.out}: {args.n} samples")
    return 0


def cmd_evaluate(args):
    model = _load_model(args.model_file)
    data = load_data(args.data, scale=args.scale)
    X = data.X_test if data.X_test is not None else data.X_train
    check_data(X, args.data, model)
    print(f"{model}\nevaluating on {X.shape[0]} held-out rows of {data.name}")
    print(f"loss per example (the training objective): {model.average_loss(X):.4f}")
    if isinstance(model, VAE):
        elbo = model.elbo(X, n_samples=args.samples, seed=0).mean()
        first = X[:args.n]
        log_px = model.log_likelihood(first, k=args.k, seed=0).mean()
        print(f"ELBO: {elbo:.3f} nats per example ({args.samples} samples)")
        print(f"log p(x) ≥ {log_px:.3f} nats (importance-weighted, k={args.k}, first {len(first)} rows)")
    return 0


def cmd_gradcheck(args):
    data = load_data(args.data, scale=args.scale)
    X = np.asarray(data.X_train[:args.rows], dtype=np.float64)
    model = build_model(args, X.shape[1], dtype="float64")
    check_data(X, args.data, model, training=True)
    eps = None
    if isinstance(model, VAE):
        eps = np.random.default_rng(args.seed).standard_normal(model._check_eps(None, X.shape[0]).shape)
    elif model.noise is not None:
        eps = model._check_eps(None, X.shape[0])
    report = gradcheck(lambda: model.loss_and_grads(X, eps=eps), model.params, eps=args.h,
                       n_entries=args.entries, seed=args.seed)
    print(f"{model}\n{X.shape[0]} rows of {data.name}, float64, noise fixed\n")
    print(report)
    return 0 if report.max_rel_error <= 1e-4 else 1


def cmd_filters(args):
    model = _load_model(args.model_file)
    shape = datasets.square_image_shape(model.n_features)
    if shape is None:
        raise UsageError(f"{model.n_features} input features are not a square image")
    _check_output("--out", args.out)
    W = next(iter(model.params.values()))
    picture = images.image_grid(W.T[:args.n], shape, scale=max(1, 96 // shape[0]), pad=2, normalize=True)
    images.write_png(args.out, picture)
    print(f"wrote {args.out}: the first {min(args.n, W.shape[1])} first-layer filters")
    return 0


def cmd_interpolate(args):
    model = _load_model(args.model_file)
    data = load_data(args.data, scale=args.scale)
    X = data.X_test if data.X_test is not None else data.X_train
    check_data(X, args.data, model)
    shape = datasets.square_image_shape(model.n_features)
    if shape is None:
        raise UsageError(f"{model.n_features} features are not a square image")
    _check_output("--out", args.out)
    rows = []
    for a, b in zip(args.pairs[0::2], args.pairs[1::2]):
        if not (0 <= a < len(X) and 0 <= b < len(X)):
            raise UsageError(f"row indices must be in [0, {len(X)}), got {a} and {b}")
        za, zb = model.encode(X[[a, b]])
        t = np.linspace(0, 1, args.steps, dtype=model.dtype)[:, None]
        decoded = model.decode((1 - t) * za + t * zb)
        rows.append(np.concatenate([X[[a]], decoded, X[[b]]]))
    picture = images.image_grid(np.clip(np.concatenate(rows), 0, 1), shape, ncols=args.steps + 2,
                                scale=max(1, 96 // shape[0]), pad=2)
    images.write_png(args.out, picture)
    print(f"wrote {args.out}: {len(rows)} interpolations in {args.steps} steps "
          "(first and last columns are the inputs)")
    return 0


def cmd_check(args):
    from .exercise import run_check
    return run_check(args.target, shapes=args.shape, h=args.h, seed=args.seed)


# -- the parser ----------------------------------------------------------------
def make_parser():
    parser = _Parser(prog="npae", description="Autoencoders and VAEs from scratch in NumPy.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def data_flags(p, default="digits"):
        p.add_argument("--data", default=default,
                       help="digits (bundled), fashion-mnist, or a .npy/.npz/.csv file or IDX folder")
        p.add_argument("--scale", choices=("auto", "none", "255"), default="auto",
                       help="divide integer data by 255 (auto: when it lies in [0, 255])")

    p = sub.add_parser("train", help="train a model; write it, its history and pictures",
                       description="Train an autoencoder or VAE and write model.npz, history.csv and PNG "
                                   "pictures into --out.")
    data_flags(p)
    _add_model_flags(p)
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=_positive(int), default=100, help="default 100")
    t.add_argument("--batch-size", type=_positive(int), default=64, help="default 64")
    t.add_argument("--lr", type=_positive(float), default=1e-3, help="Adam learning rate (default 1e-3)")
    t.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    t.add_argument("--checkpoint", default=None, help="save a resumable checkpoint here every epoch")
    t.add_argument("--resume", default=None, help="continue from this checkpoint")
    t.add_argument("--quiet", action="store_true", help="no per-epoch output")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("encode", help="write the codes of data to a .npy file (streamed in chunks)")
    p.add_argument("model_file", metavar="MODEL")
    p.add_argument("data", metavar="DATA", help="a .npy (memory-mapped) / .npz / .csv file, or a data set name")
    p.add_argument("--out", default="codes.npy")
    p.add_argument("--chunk", type=_positive(int), default=8192, help="rows per chunk")
    p.add_argument("--scale", choices=("auto", "none", "255"), default="auto")
    p.set_defaults(run=cmd_encode)

    p = sub.add_parser("sample", help="draw samples from a VAE's prior")
    p.add_argument("model_file", metavar="MODEL")
    p.add_argument("-n", type=_positive(int), default=64)
    p.add_argument("--seed", type=_non_negative_int, default=0)
    p.add_argument("--out", default="samples.png", help="a .png grid, or .npy for the raw samples")
    p.set_defaults(run=cmd_sample)

    p = sub.add_parser("evaluate", help="loss, ELBO and importance-weighted log-likelihood on held-out data")
    p.add_argument("model_file", metavar="MODEL")
    data_flags(p)
    p.add_argument("--k", type=_positive(int), default=1000, help="importance samples (default 1000)")
    p.add_argument("--n", type=_positive(int), default=1000, help="rows for the log-likelihood")
    p.add_argument("--samples", type=_positive(int), default=1, help="ε draws for the ELBO")
    p.set_defaults(run=cmd_evaluate)

    p = sub.add_parser("gradcheck", help="check a model's gradients by finite differences, as a table",
                       description="Build the model the flags describe in float64, on a few rows of "
                                   "data, and compare its gradients with central finite differences.")
    data_flags(p)
    _add_model_flags(p)
    p.add_argument("--rows", type=_positive(int), default=4, help="rows of data (default 4)")
    p.add_argument("--entries", type=_positive(int), default=20, help="entries checked per array")
    p.add_argument("--h", type=_positive(float), default=1e-5, help="finite-difference step")
    p.set_defaults(run=cmd_gradcheck)

    p = sub.add_parser("filters", help="picture the first layer's weights (receptive fields)")
    p.add_argument("model_file", metavar="MODEL")
    p.add_argument("--n", type=_positive(int), default=64)
    p.add_argument("--out", default="filters.png")
    p.set_defaults(run=cmd_filters)

    p = sub.add_parser("interpolate", help="decode straight lines between the codes of two inputs")
    p.add_argument("model_file", metavar="MODEL")
    data_flags(p)
    p.add_argument("--pairs", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5],
                   help="row indices of held-out data, taken two by two")
    p.add_argument("--steps", type=_positive(int), default=8)
    p.add_argument("--out", default="interpolation.png")
    p.set_defaults(run=cmd_interpolate)

    p = sub.add_parser("check", help="gradient-check your own layer or loss: FILE.py:ClassName")
    p.add_argument("target", metavar="FILE.py:ClassName")
    p.add_argument("--shape", type=_sizes, action="append", default=None,
                   help="input shape, e.g. 4,3 (repeat for several inputs)")
    p.add_argument("--h", type=_positive(float), default=1e-6)
    p.add_argument("--seed", type=_non_negative_int, default=0)
    p.set_defaults(run=cmd_check)
    return parser


def main(argv=None):
    """Run one command; return the exit status (0 done, 1 failed, 2 bad input, 130 Ctrl-C)."""
    parser = make_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        if getattr(args, "pairs", None) is not None and len(args.pairs) % 2:
            raise UsageError("--pairs takes row indices two by two")
        return args.run(args)
    except (UsageError, ValueError, TypeError) as exc:
        return _fail(exc, 2)
    except (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError,
            PermissionError) as exc:
        return _fail(exc, 2)
    except (FloatingPointError, OSError, MemoryError) as exc:
        return _fail(exc, 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


def _fail(exc, status):
    """Report ``exc`` on stderr in one line and return ``status``."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    print(f"error: {message}", file=sys.stderr)
    return status
