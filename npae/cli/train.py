"""``npae train``: build, train and save a model, write its history and pictures — and never lose
a finished run: a final write that fails saves the model elsewhere and says where; a signal
or a full disk mid-run keeps the model of the last completed step.
"""

import os
import sys
import tempfile
import time

from ..data.tables import Choice
from ..files import atomic
from ..models.saving import save
from ..models.vae import VAE
from ..pictures import model_pictures
from ..training.checkpoints import CheckpointFailed
from ..training import signals
from ..training.signals import Terminated
from .commands import (DEFAULT_OUT, UsageError, build_model, check_model, check_output, counted,
                       inputs_of, load_data)


def train(args):
    out = args.out if args.out is not None else DEFAULT_OUT
    if args.out is None and os.path.exists(os.path.join(out, "model.npz")):
        raise UsageError(f"{out} holds a trained model already: pass --out {out} to replace it, "
                         "or --out another folder")
    if args.checkpoint is not None and not args.checkpoint.lower().endswith(".npz"):
        raise UsageError(f"--checkpoint {args.checkpoint}: a checkpoint is an .npz file; give a "
                         "name ending in .npz")
    model = build_model(args)
    data, how = load_data(args, model, training=True)
    check_model(model, data.X_train.shape[1])
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
        print(f"{model!r}\n{how}\ntraining {counted(args.epochs, 'epoch')}, batch {args.batch_size}, "
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
    chosen = Choice(args.drop, args.labels) if args.drop or args.labels is not None else None
    model_path = save_somewhere(model, outputs[0], None if failed else args.checkpoint,
                                data.scaling, chosen)
    write_history(outputs[1], model.history_)
    if failed is not None:
        print(f"error: {' '.join(str(failed).split())}; after {len(model.history_['loss'])} "
              f"complete epochs, wrote {model_path} (the last completed step)", file=sys.stderr)
        return status
    if status:
        print(f"{'SIGTERM' if status == 143 else 'interrupted'}: stopped after "
              f"{counted(len(model.history_['loss']), 'complete epoch')}; wrote {model_path} (the last "
              "completed step)" + (f"; continue with --resume {args.checkpoint} --out {out}"
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


def save_somewhere(model, path, checkpoint, scaling=None, columns=None):
    """Save the trained model (with the ``scaling`` and the choice of ``columns`` of its data)
    to ``path``; if that fails (say, the disk is full), to a file in the temporary folder,
    saying so — a finished run is never thrown away."""
    with signals.deferred():
        return _save_or_rescue(model, path, checkpoint, dict(scaling=scaling, columns=columns))


def _save_or_rescue(model, path, checkpoint, records):
    try:
        save(model, path, **records)
        return path
    except OSError as exc:
        fd, rescue = tempfile.mkstemp(prefix="npae-rescued-", suffix=".npz")
        os.close(fd)
        try:
            save(model, rescue, **records)
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
