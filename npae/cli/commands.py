"""The commands of ``python -m npae``: each takes the parsed arguments and returns an exit status.

Every command checks what it will write before it does any work: outputs
that would overwrite one of its inputs are refused, folders are probed by
creating and removing a file, and ``train`` never loses a finished run — if
the final write fails it saves the model elsewhere and says where.
"""

import os
import sys
import tempfile
import time

import numpy as np

from .. import checks
from ..data import batches, datasets
from ..files import atomic
from ..models.autoencoder import Autoencoder
from ..models.saving import load, save
from ..models.vae import VAE
from ..nn.gradcheck import gradcheck
from ..pictures import model_pictures, png
from ..training import signals
from ..training.checkpoints import CheckpointFailed
from ..training.signals import Terminated
from .check import run_check

SAMPLE_PNG_LIMIT = 4096  # a picture of more samples than this is not a picture anyone reads
CHUNK = 8192             # rows per chunk of encode and sample
ELBO_SAMPLES_LIMIT = 10_000  # ε draws per row: the estimate's error shrinks as 1/√samples
ELBO_DRAWS = 2**20       # ε values drawn at once by evaluate: bounds its memory for any --samples


class UsageError(Exception):
    """Bad input from the command line: reported in one line, exit status 2."""


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


# -- data and paths ------------------------------------------------------------
def load_data(args, model, *, split=True, training=False, likelihood=True):
    """``(data, how)``: the data set ``args.data`` as row views, scaled by one decision and
    checked for ``model`` (every row of every file, numbered as in the file), and a sentence
    saying what was read and how it was scaled."""
    raw = datasets.load(args.data)
    data, divisor = datasets.prepared(raw, scale=args.scale, seed=getattr(args, "seed", 0),
                                      split=split)
    for part in (raw.X_train, raw.X_test):
        if part is not None:
            check_values(batches.RowView(part, divide_by=divisor), args.data, model,
                         training=training, likelihood=likelihood)
    rows = len(data.X_train) + (0 if data.X_test is None else len(data.X_test))
    how = (f"data: {data.name}, {rows} rows of {data.X_train.shape[1]} features"
           + (f" ({len(data.X_train)} for training, {len(data.X_test)} held out)"
              if data.X_test is not None and split else "")
           + ("; integers in [0, 255], divided by 255 (--scale none keeps them)" if divisor else ""))
    return data, how


def inputs_of(args, *names):
    """The files this command reads (of the arguments ``names``): outputs must be none of them."""
    paths = [getattr(args, name, None) for name in names or ("model_file", "data", "resume")]
    return [p for p in paths if p and os.path.isfile(p)]


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
        raise UsageError(f"{source}: rows have {X.shape[1]} features, the model expects "
                         f"{model.n_features_in_}")


def check_values(X, source, model, *, training=False, likelihood=True):
    """Refuse, in one line naming the file and the flag to change, values ``model`` cannot take:
    not finite, or (when its ``likelihood`` is needed, for a Bernoulli / binary cross-entropy
    model) outside [0, 1].  (The encoder needs no likelihood.)"""
    try:
        low, high = checks.value_range(X, np.float32, name="the data")
    except ValueError as exc:
        raise UsageError(f"{source}: {exc}; the data must be finite numbers") from None
    if likelihood and model.needs_unit_interval and (low < 0 or high > 1):
        integers = np.dtype(getattr(X, "X", X).dtype).kind in "iu"
        scale = "use --scale 255 for 8-bit images" if integers else "scale the data to [0, 1]"
        other = "--likelihood gaussian" if isinstance(model, VAE) else "--loss mse"
        fix = f"{scale}, or use {other}" if training else f"{scale}, as it was for training"
        raise UsageError(f"{source}: values span [{low:g}, {high:g}], but a Bernoulli / binary "
                         f"cross-entropy model needs data in [0, 1]: {fix}")


def image_shape(model):
    shape = datasets.square_image_shape(model.n_features_in_)
    if shape is None:
        raise UsageError(f"{model.n_features_in_} features are not a square image")
    return shape


# -- train -------------------------------------------------------------------------
def train(args):
    model = build_model(args)
    data, how = load_data(args, model, training=True)
    out = args.out
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out {out} exists and is not a folder")
    created = not os.path.exists(out)
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create the folder ({exc.strerror})") from None
    try:
        outputs = [os.path.join(out, name) for name in ("model.npz", "history.csv")]
        for path in outputs:
            check_output("--out", path, inputs_of(args))
        if args.checkpoint is not None:  # (it may be the checkpoint the run resumes from)
            check_output("--checkpoint", args.checkpoint, inputs_of(args, "data"))
            for path in outputs:  # the end of the run would overwrite its checkpoint
                if same_path(args.checkpoint, path):
                    raise UsageError(f"--checkpoint {args.checkpoint} is the {os.path.basename(path)} "
                                     f"that --out {out} writes; give the checkpoint another name, "
                                     f"e.g. {os.path.join(out, 'checkpoint.npz')}")
        print(f"{model!r}\n{how}\ntraining {args.epochs} epochs, batch {args.batch_size}, "
              f"Adam(lr={args.lr:g})")
        start = time.perf_counter()
        status, failed = 0, None
        try:
            model.fit(data.X_train, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      validation_data=data.X_test, verbose=0 if args.quiet else 1,
                      checkpoint=args.checkpoint, resume=args.resume)
        except Terminated:
            status = 143
        except CheckpointFailed as exc:  # a full disk mid-run: the model holds the work
            status, failed = 1, exc
        if model.interrupted_ and status == 0:
            status = 130
    except BaseException:
        if created and not os.listdir(out):  # a refused run leaves no trace
            os.rmdir(out)
        raise
    seconds = time.perf_counter() - start
    model_path = save_somewhere(model, outputs[0], None if failed else args.checkpoint)
    write_history(outputs[1], model.history_)
    if failed is not None:
        print(f"error: {' '.join(str(failed).split())}; after {len(model.history_['loss'])} "
              f"complete epochs, wrote {model_path} (the last completed step)", file=sys.stderr)
        return status
    if status:
        print(f"{'SIGTERM' if status == 143 else 'interrupted'}: stopped after "
              f"{len(model.history_['loss'])} complete epochs; wrote {model_path} (the last "
              "completed step)" + (f"; continue with --resume {args.checkpoint}"
                                   if args.checkpoint else ""), file=sys.stderr)
        return status
    written = model_pictures.write_all(model, data, out)
    history = model.history_
    print(f"\ntrained in {seconds:.1f}s; final training loss {history['loss'][-1]:.4f}"
          + (f", validation loss {history['val_loss'][-1]:.4f}" if history.get("val_loss") else ""))
    if isinstance(model, VAE) and data.X_test is not None and args.likelihood == "bernoulli":
        elbo = model.elbo(data.X_test, n_samples=10, seed=0).mean()
        print(f"test ELBO {elbo:.3f} nats per example (10 samples; −ELBO {-elbo:.3f})")
    print(f"wrote {model_path}, {outputs[1]}" + "".join(f", {p}" for p in written))
    return 0


def same_path(a, b):
    """``a`` and ``b`` name the same file, whether or not it exists yet."""
    return atomic.same_file(a, b) or (os.path.realpath(a) == os.path.realpath(b))


def save_somewhere(model, path, checkpoint):
    """Save the trained model to ``path``; if that fails (say, the disk is full), to a file
    in the temporary folder, saying so — a finished run is never thrown away."""
    with signals.deferred():
        return _save_or_rescue(model, path, checkpoint)


def _save_or_rescue(model, path, checkpoint):
    try:
        save(model, path)
        return path
    except OSError as exc:
        fd, rescue = tempfile.mkstemp(prefix="npae-rescued-", suffix=".npz")
        os.close(fd)
        try:
            save(model, rescue)
        except OSError:
            os.unlink(rescue)
            kept = f"; the checkpoint {checkpoint} holds the run" if checkpoint else ""
            raise OSError(f"cannot write {path} ({exc.strerror}), nor a copy elsewhere{kept}") from None
        print(f"warning: cannot write {path} ({exc.strerror}); the model is saved in {rescue}",
              file=sys.stderr)
        return rescue


def write_history(path, history):
    try:
        with atomic.AtomicFile(path) as f:
            text = [",".join(["epoch"] + list(history))]
            for epoch in range(len(history.get("loss", []))):
                text.append(",".join([str(epoch + 1)] + [f"{history[c][epoch]:.6f}" for c in history]))
            f.write(("\n".join(text) + "\n").encode())
    except OSError as exc:
        print(f"warning: cannot write {path} ({exc.strerror})", file=sys.stderr)


# -- using a trained model ---------------------------------------------------------
def encode(args):
    model = load(args.model_file)
    check_output("--out", args.out, inputs_of(args))
    data, how = load_data(args, model, split=False, likelihood=False)
    X = data.X_train
    check_rows(X, args.data, model)
    with atomic.NpyWriter(args.out, (len(X), model.code_size), model.dtype_) as codes:
        for start in range(0, len(X), args.chunk):
            codes[start:start + args.chunk] = model.encode(X[start:start + args.chunk])
    print(f"{how}\nwrote {args.out}: codes of shape ({len(X)}, {model.code_size})")
    return 0


def sample(args):
    model = load(args.model_file)
    if not isinstance(model, VAE):
        raise UsageError(f"{args.model_file} is an autoencoder; only a VAE can sample")
    check_output("--out", args.out, inputs_of(args))
    rng = np.random.default_rng(args.seed)
    if args.out.endswith(".npy"):
        with atomic.NpyWriter(args.out, (args.n, model.n_features_in_), model.dtype_) as out:
            for start in range(0, args.n, CHUNK):
                # the same draws as model.sample(n, seed=seed), a chunk at a time
                z = rng.standard_normal((min(CHUNK, args.n - start), model.code_size),
                                        dtype=model.dtype_)
                out[start:start + len(z)] = model.decode(z)
    else:
        shape = image_shape(model)
        if args.n > SAMPLE_PNG_LIMIT:
            raise UsageError(f"-n {args.n} is too many for one picture (at most "
                             f"{SAMPLE_PNG_LIMIT}); use --out FILE.npy")
        png.write_png(args.out, model_pictures.grid(model.sample(args.n, seed=args.seed), shape))
    print(f"wrote {args.out}: {args.n} samples")
    return 0


def evaluate(args):
    model = load(args.model_file)
    data, how = load_data(args, model, split=args.part == "held-out")
    X = data.X_test if data.X_test is not None and args.part != "all" else data.X_train
    if args.part == "all" and data.X_test is not None:
        X = np.concatenate([np.asarray(data.X_train), np.asarray(data.X_test)])
    check_rows(X, args.data, model)
    print(f"{model!r}\n{how}\nevaluating on {len(X)} rows")
    print(f"loss per example (the training objective): {model.average_loss(X, rng=0):.4f}")
    if isinstance(model, VAE):
        elbo = streamed_elbo(model, X, args.samples)
        first = X[:args.n]
        log_px = model.log_likelihood(first, k=args.k, seed=0).mean()
        print(f"ELBO: {elbo:.3f} nats per example ({args.samples} samples)")
        print(f"log p(x) ≥ {log_px:.3f} nats (importance-weighted, k={args.k}, first {len(first)} rows)")
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
    print(f"{model!r}\n{X.shape[0]} rows of {data.name}, float64, noise fixed\n")
    print(report)
    return 0 if report.passed else 1


def draw_filters(args):
    model = load(args.model_file)
    shape = image_shape(model)
    check_output("--out", args.out, inputs_of(args))
    png.write_png(args.out, model_pictures.filters(model, shape, args.n))
    print(f"wrote {args.out}: the first {min(args.n, model.params[next(iter(model.params))].shape[1])} "
          "first-layer filters")
    return 0


def interpolate(args):
    model = load(args.model_file)
    shape = image_shape(model)
    check_output("--out", args.out, inputs_of(args))
    pairs = list(zip(args.pairs[0::2], args.pairs[1::2]))
    pictures = len(pairs) * (args.steps + 2)  # each pair's row: its two inputs and the steps
    if pictures > SAMPLE_PNG_LIMIT:
        raise UsageError(f"{len(pairs)} pairs of {args.steps} steps make {pictures} pictures, too "
                         f"many for one picture (at most {SAMPLE_PNG_LIMIT}): ask for fewer "
                         "--pairs or --steps")
    data, _ = load_data(args, model)
    X = data.X_test if data.X_test is not None else data.X_train
    check_rows(X, args.data, model)
    for a, b in pairs:
        if not (0 <= a < len(X) and 0 <= b < len(X)):
            raise UsageError(f"row indices must be in [0, {len(X)}), got {a} and {b}")
    png.write_png(args.out, model_pictures.interpolations(model, X, pairs, shape, args.steps))
    print(f"wrote {args.out}: {len(pairs)} interpolations in {args.steps} steps "
          "(first and last columns are the inputs)")
    return 0


def check(args):
    return run_check(args.target, shapes=args.shape, h=args.h, seed=args.seed)
