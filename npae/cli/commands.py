"""The commands of ``python -m npae``: each takes the parsed arguments and returns an exit status.

Every command checks what it will write before it does any work: an output
must have an extension the command can write; a file (or a run's folder)
that exists already is replaced only when ``--out`` names it; outputs that
would overwrite one of its inputs are refused; folders are probed by
creating and removing a file.  ``train`` is :mod:`npae.cli.train`; this module
holds what every command shares (reading data, building a model, checking
outputs) and the other commands.
"""

import os

import numpy as np

from .. import checks
from ..data import batches, datasets, unit_interval
from ..data.scaling import Standardized
from ..files import atomic
from ..models.autoencoder import Autoencoder
from ..models.saving import columns_of, load, scaling_of
from ..models.vae import VAE
from ..nn.gradcheck import gradcheck
from ..pictures import model_pictures, png
from .check import run_check

SAMPLE_PNG_LIMIT = 4096  # a picture of more samples than this is not a picture anyone reads
CHUNK = 8192             # rows per chunk of encode and sample
ELBO_SAMPLES_LIMIT = 10_000  # ε draws per row: the estimate's error shrinks as 1/√samples
ELBO_DRAWS = 2**20       # ε values drawn at once by evaluate: bounds its memory for any --samples
DEFAULT_OUT = "npae-out"  # train's folder when --out is not given
PICTURE = {".png": "a PNG picture"}


class UsageError(Exception):
    """Bad input from the command line: reported in one line, exit status 2."""


def counted(n, noun):
    """``n`` and ``noun``, the noun in the plural unless n is 1: "1 epoch", "3 epochs"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def build_model(args, *, dtype="float32"):
    """The untrained model the flags describe (``--init`` and ``--n-jobs`` when given)."""
    given = {name: getattr(args, name, None) for name in ("init", "n_jobs")}
    given = {name: value for name, value in given.items() if value is not None}
    if args.model == "vae":
        return VAE(hidden=args.hidden or (128,), latent=args.latent, activation=args.activation,
                   likelihood=args.likelihood, beta=args.beta, warmup_epochs=args.warmup_epochs,
                   objective=args.objective, k=args.k if args.objective == "iwae" else 1,
                   seed=args.seed, dtype=dtype, **given)
    return Autoencoder(hidden=args.hidden or (32,), activation=args.activation,
                       output=args.output or ("sigmoid" if args.loss == "bce" else "identity"),
                       loss=args.loss, tied=args.tied, noise=args.noise,
                       noise_level=args.noise_level, sparsity=args.sparsity,
                       sparsity_weight=args.sparsity_weight, sparsity_target=args.sparsity_target,
                       contractive_weight=args.contractive_weight, seed=args.seed, dtype=dtype,
                       **given)


def check_model(model, width):
    """Build a throwaway copy of ``model`` for ``width`` columns, so that every flag it was
    made from is checked before anything prints (the model itself is built by ``fit``)."""
    trial = type(model)(**{**model.get_params(), "n_features": width})
    try:
        trial.built()
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None


# -- data and paths ------------------------------------------------------------
def load_data(args, model, *, split=True, training=False, likelihood=True, standard=None,
              chosen=None):
    """``(data, how)``: the data set ``args.data`` (its columns chosen by ``--drop`` and
    ``--labels``, or as ``chosen``, the choice a model file records) as row views, scaled by
    one decision — or by ``standard``, the scaling a model file records — and checked for
    ``model`` (every row of every file, numbered as in the file), and a sentence saying what
    was read and how it was scaled."""
    drop, labels = (chosen.drop, chosen.labels) if chosen else (args.drop, args.labels)
    raw = datasets.load(args.data, drop=drop, labels=labels)
    scale = "standard" if standard is not None else args.scale
    data, divisor = datasets.prepared(raw, scale=scale, seed=getattr(args, "seed", 0),
                                      split=split, standard=standard)
    standardized = data.scaling is not None
    for part in (raw.X_train, raw.X_test):
        if part is not None:
            check_values(batches.RowView(part, divide_by=divisor), args.data, model,
                         training=training, likelihood=likelihood and not standardized)
    for part in (data.X_train, data.X_test) if standardized and likelihood else ():
        if part is not None:
            check_values(part, args.data, model, training=training)
    rows = len(data.X_train) + (0 if data.X_test is None else len(data.X_test))
    how = (f"data: {data.name}, {counted(rows, 'row')} of {counted(data.X_train.shape[1], 'feature')}"
           + (f" ({len(data.X_train)} for training, {len(data.X_test)} held out)"
              if data.X_test is not None and split else "")
           + (f"; labels from column {labels!r}" if labels is not None else "")
           + (f"; columns chosen as in training ({chosen.flags()})" if chosen else "")
           + ("; integers in [0, 255], divided by 255 (--scale none keeps them)" if divisor else "")
           + ("; each column less its mean, over its standard deviation ("
              + ("the model's" if standard is not None else "of the training rows") + ")"
              if standardized else ""))
    return data, how


def inputs_of(args, *names):
    """The files this command reads (of the arguments ``names``): outputs must be none of them."""
    paths = [getattr(args, name, None) for name in names or ("model_file", "data", "resume")]
    return [p for p in paths if p and os.path.isfile(p)]


def output_path(args, default, kinds):
    """The file a command writes: ``--out`` when given, else ``default``, which is refused if it
    exists (a file is replaced only where the user said to write); either way its extension
    must be one of ``kinds`` (extension -> what is written in that format)."""
    path = args.out if args.out is not None else default
    if os.path.isdir(path):
        raise UsageError(f"--out {path} is a folder; give a file name")
    extension = os.path.splitext(path)[1].lower()
    if extension not in kinds:
        can = " or ".join(f"{ext} ({what})" for ext, what in kinds.items())
        raise UsageError(f"--out {path}: {args.command} writes {can}, not "
                         f"{extension or 'a file without an extension'}")
    if args.out is None and os.path.lexists(path):
        raise UsageError(f"{path} exists already: pass --out {path} to replace it, or --out "
                         "another name")
    return path


def as_trained(args):
    """``(standard, chosen)``: the standard scaling and the choice of columns ``args.model_file``
    records (None if none). A model's scaling is always applied, and only a model's (checked
    against ``--scale``); its columns are chosen again in a data file unless ``--drop`` or
    ``--labels`` says otherwise."""
    standard = scaling_of(args.model_file)
    if standard is not None and args.scale not in ("auto", "standard"):
        raise UsageError(f"--scale {args.scale}: {args.model_file} was trained on standard-scaled "
                         "columns and scales the data the same way; leave --scale out")
    if standard is None and args.scale == "standard":
        raise UsageError(f"--scale standard: {args.model_file} records no scaling (it was not "
                         "trained with --scale standard)")
    given = args.drop or args.labels is not None
    chosen = None if given or not os.path.isfile(args.data) else columns_of(args.model_file)
    return standard, chosen


def check_output(flag, path, inputs):
    """``path`` can be written and is none of ``inputs``; refused in one line otherwise."""
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path} is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"{flag} {path}: the folder {folder} does not exist")
    for source in inputs:
        if atomic.same_file(path, source):
            raise UsageError(f"{flag} {path} is the input {source}; write the output elsewhere")
    try:
        atomic.probe_writable(flag, path)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def check_rows(X, source, model):
    """The data's width must be the model's."""
    if X.shape[1] != model.n_features_in_:
        hint = (" (choose the columns with the --drop and --labels it was trained with)"
                if str(source).lower().endswith(".csv") else "")
        raise UsageError(f"{source}: rows have {counted(X.shape[1], 'feature')}, the model "
                         f"expects {model.n_features_in_}{hint}")


def check_values(X, source, model, *, training=False, likelihood=True):
    """Refuse, in one line naming the file and the flag to change, values ``model`` cannot take:
    not finite, or (when its ``likelihood`` is needed, for a Bernoulli / binary cross-entropy
    model) outside [0, 1].  (The encoder needs no likelihood.)  ``X`` may be standard-scaled
    (a :class:`npae.data.scaling.Standardized` view), which is never in [0, 1]."""
    try:
        low, high = checks.value_range(X, np.float32, name="the data")
    except ValueError as exc:
        raise UsageError(f"{source}: {exc}; the data must be finite numbers") from None
    slack = unit_interval.tolerance(getattr(X, "dtype", np.float32))  # rounding is the boundary
    if likelihood and model.needs_unit_interval and (low < -slack or high > 1 + slack):
        integers = np.dtype(getattr(X, "X", X).dtype).kind in "iu"
        scale = "use --scale 255 for 8-bit images" if integers else "scale the data to [0, 1]"
        other = "--likelihood gaussian" if isinstance(model, VAE) else "--loss mse"
        fix = f"{scale}, or use {other}" if training else f"{scale}, as it was for training"
        if isinstance(X, Standardized):
            fix = f"standard-scaled columns are not in [0, 1]; use {other}"
        raise UsageError(f"{source}: values span [{unit_interval.full(low)}, "
                         f"{unit_interval.full(high)}], but a Bernoulli / binary "
                         f"cross-entropy model needs data in [0, 1]: {fix}")


def image_shape(model):
    shape = datasets.square_image_shape(model.n_features_in_)
    if shape is None:
        raise UsageError(f"the model's {counted(model.n_features_in_, 'feature')} cannot be drawn "
                         "as a square image")
    return shape


def encode(args):
    out = output_path(args, "codes.npy", {".npy": "a NumPy array of the codes"})
    model = load(args.model_file)
    check_output("--out", out, inputs_of(args))
    standard, chosen = as_trained(args)
    data, how = load_data(args, model, split=args.part != "all", likelihood=False,
                          standard=standard, chosen=chosen)
    named = {"all": ("every row", [data.X_train, data.X_test]),
             "train": ("the training rows", [data.X_train]),
             "held-out": ("the held-out rows", [data.X_test])}
    what, parts = named[args.part]
    parts = [part for part in parts if part is not None]
    if not parts:
        raise UsageError(f"--part {args.part}: {args.data} has no held-out rows (a file needs at "
                         f"least 20 rows for train to hold a tenth out)")
    check_rows(parts[0], args.data, model)
    n = sum(len(part) for part in parts)
    with atomic.NpyWriter(out, (n, model.code_size), model.dtype_) as codes:
        row = 0
        for part in parts:
            for start in range(0, len(part), args.chunk):
                chunk = part[start:start + args.chunk]
                codes[row:row + len(chunk)] = model.encode(chunk)
                row += len(chunk)
    order = (f" ({len(parts[0])} training rows, then {len(parts[1])} test rows, in the data "
             "set's order)" if len(parts) == 2 else " (in the data's order)")
    print(f"{how}\nwrote {out}: codes of {what}, {counted(n, 'row')}{order}, shape "
          f"({n}, {model.code_size})")
    return 0


def sample(args):
    out = output_path(args, "samples.png", {".png": "a picture", ".npy": "the raw samples"})
    model = load(args.model_file)
    if not isinstance(model, VAE):
        raise UsageError(f"{args.model_file} is an autoencoder; only a VAE can sample")
    check_output("--out", out, inputs_of(args))
    rng = np.random.default_rng(args.seed)
    if out.lower().endswith(".npy"):
        with atomic.NpyWriter(out, (args.n, model.n_features_in_), model.dtype_) as samples:
            for start in range(0, args.n, CHUNK):
                # the same draws as model.sample(n, seed=seed), a chunk at a time
                z = rng.standard_normal((min(CHUNK, args.n - start), model.code_size),
                                        dtype=model.dtype_)
                samples[start:start + len(z)] = model.decode(z)
    else:
        shape = image_shape(model)
        if args.n > SAMPLE_PNG_LIMIT:
            raise UsageError(f"-n {args.n} is too many for one picture (at most "
                             f"{SAMPLE_PNG_LIMIT}); use --out FILE.npy")
        png.write_png(out, model_pictures.samples(model, shape, args.n, seed=args.seed))
    print(f"wrote {out}: {counted(args.n, 'sample')}")
    return 0


def evaluate(args):
    model = load(args.model_file)
    standard, chosen = as_trained(args)
    data, how = load_data(args, model, split=args.part in ("train", "held-out"), standard=standard,
                          chosen=chosen)
    if args.part == "held-out" and data.X_test is None:
        raise UsageError(f"--part held-out: {args.data} has no held-out rows (a file needs at "
                         "least 20 rows for train to hold a tenth out)")
    X = data.X_test if data.X_test is not None and args.part in ("auto", "held-out") else data.X_train
    if args.part == "all" and data.X_test is not None:
        X = np.concatenate([np.asarray(data.X_train), np.asarray(data.X_test)])
    check_rows(X, args.data, model)
    print(f"{model!r}\n{how}\nevaluating on {counted(len(X), 'row')}")
    print(f"loss per example (the training objective): {model.average_loss(X, rng=0):.4f}")
    if isinstance(model, VAE):
        elbo = streamed_elbo(model, X, args.samples)
        first = X[:args.rows]
        log_px = model.log_likelihood(first, k=args.k, seed=0).mean()
        print(f"ELBO: {elbo:.3f} nats per example ({counted(args.samples, 'sample')} of ε)")
        print(f"log p(x) ≥ {log_px:.3f} nats (importance-weighted, k={args.k}, "
              f"first {counted(len(first), 'row')})")
    return 0


def streamed_elbo(model, X, samples):
    """The mean over the rows of ``X`` of each row's ELBO averaged over ``samples`` draws of ε,
    drawn a group at a time so that at most ELBO_DRAWS values of ε (per chunk of rows the model
    reads) are held at once; the same draws as ``model.elbo(X, n_samples=samples, seed=0)``
    when they fit in one group."""
    if samples > ELBO_SAMPLES_LIMIT:
        raise UsageError(f"--samples {samples} is more than npae draws (at most "
                         f"{ELBO_SAMPLES_LIMIT}; the ELBO's error shrinks as 1/√samples): for a "
                         "tighter estimate of log p(x), raise --k")
    group = max(1, ELBO_DRAWS // (batches.INFERENCE_ROWS * model.code_size))
    rng, total = np.random.default_rng(0), 0.0
    for start in range(0, samples, group):
        drawn = min(group, samples - start)
        total += drawn * model.elbo(X, n_samples=drawn, seed=rng).astype(np.float64).mean()
    return total / samples


def gradient_check(args):
    model = build_model(args, dtype="float64")
    data, how = load_data(args, model, training=True)
    X = np.asarray(data.X_train[:args.rows], dtype=np.float64)
    model.set_params(n_features=X.shape[1]).built()
    eps = model.draw_noise(X.shape[0], np.random.default_rng(args.seed))  # fixed for every L(θ)
    report = gradcheck(lambda: model.loss_and_grads(X, eps=eps), model.params, eps=args.h,
                       n_entries=args.entries, seed=args.seed)
    print(f"{model!r}\n{counted(X.shape[0], 'row')} of {data.name}, float64, noise fixed\n")
    print(report)
    return 0 if report.passed else 1


def draw_filters(args):
    out = output_path(args, "filters.png", PICTURE)
    model = load(args.model_file)
    shape = image_shape(model)
    check_output("--out", out, inputs_of(args))
    units = min(args.n, model.params[next(iter(model.params))].shape[1])
    png.write_png(out, model_pictures.filters(model, shape, args.n))
    print(f"wrote {out}: the first layer's weights of {counted(units, 'unit')}")
    return 0


def interpolate(args):
    out = output_path(args, "interpolation.png", PICTURE)
    model = load(args.model_file)
    shape = image_shape(model)
    check_output("--out", out, inputs_of(args))
    pairs = list(zip(args.pairs[0::2], args.pairs[1::2]))
    pictures = len(pairs) * (args.steps + 2)  # each pair's row: its two inputs and the steps
    if pictures > SAMPLE_PNG_LIMIT:
        raise UsageError(f"{len(pairs)} pairs of {args.steps} steps make {pictures} pictures, too "
                         f"many for one picture (at most {SAMPLE_PNG_LIMIT}): ask for fewer "
                         "--pairs or --steps")
    standard, chosen = as_trained(args)
    data, _ = load_data(args, model, standard=standard, chosen=chosen)
    X = data.X_test if data.X_test is not None else data.X_train
    check_rows(X, args.data, model)
    for a, b in pairs:
        if not (0 <= a < len(X) and 0 <= b < len(X)):
            raise UsageError(f"row indices must be in [0, {len(X)}), got {a} and {b}")
    view = model_pictures.unscaled(data, X[:32])
    png.write_png(out, model_pictures.interpolations(model, X, pairs, shape, args.steps, view=view))
    print(f"wrote {out}: {counted(len(pairs), 'interpolation')} in {counted(args.steps, 'step')} "
          "(first and last columns are the inputs)")
    return 0


def check(args):
    return run_check(args.target, shapes=args.shape, h=args.h, seed=args.seed)
