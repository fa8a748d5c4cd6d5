"""The command line: ``python -m npae <command>`` (or ``npae <command>``) — parsing and dispatch.

Commands: ``train``, ``encode``, ``sample``, ``evaluate``, ``gradcheck``,
``filters``, ``interpolate`` and ``check`` (their bodies are in
:mod:`npae.cli.commands`), and ``exercise`` (:mod:`npae.cli.exercise`); ``python -m npae <command> --help`` describes each.
Exit status: 0 done; 1 failed (a diverging run, an unwritable disk); 2 bad
input, in one line naming the problem (never a traceback); 130 stopped by
Ctrl-C and 143 by SIGTERM, after saving what the run had.
"""

import argparse
import signal
import sys

from ..training.signals import Terminated, terminate_cleanly
from ..nn.gradcheck import DEFAULT_STEP
from . import commands, exercise
from .commands import UsageError

DEFAULT_OUT = "npae-out"


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


def _n_jobs(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, or -1 for every core (-2 all but one, …), "
                                         f"got {text}")
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
    g.add_argument("--init", choices=("fan-in", "he-glorot"), default=None,
                   help="initial weights (default: fan-in for the VAE, he-glorot for ae)")
    g.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default 0)")


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
    t.add_argument("--n-jobs", type=_n_jobs, default=None,
                   help="threads of a training step (default: the cores, when the step gains "
                        "from them; -1: every core)")
    t.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    t.add_argument("--checkpoint", default=None, help="save a resumable checkpoint here every epoch")
    t.add_argument("--resume", default=None, help="continue from this checkpoint")
    t.add_argument("--quiet", action="store_true", help="no per-epoch output")
    p.set_defaults(run=commands.train)

    p = sub.add_parser("encode", help="write the codes of data to a .npy file (streamed in chunks)")
    p.add_argument("model_file", metavar="MODEL")
    p.add_argument("data", metavar="DATA", help="a .npy (memory-mapped) / .npz / .csv file, or a data set name")
    p.add_argument("--out", default="codes.npy")
    p.add_argument("--chunk", type=_positive(int), default=8192, help="rows per chunk")
    p.add_argument("--scale", choices=("auto", "none", "255"), default="auto")
    p.set_defaults(run=commands.encode)

    p = sub.add_parser("sample", help="draw samples from a VAE's prior")
    p.add_argument("model_file", metavar="MODEL")
    p.add_argument("-n", type=_positive(int), default=64)
    p.add_argument("--seed", type=_non_negative_int, default=0)
    p.add_argument("--out", default="samples.png", help="a .png grid, or .npy for the raw samples")
    p.set_defaults(run=commands.sample)

    p = sub.add_parser("evaluate", help="loss, ELBO and importance-weighted log-likelihood of data")
    p.add_argument("model_file", metavar="MODEL")
    data_flags(p)
    p.add_argument("--k", type=_positive(int), default=1000, help="importance samples (default 1000)")
    p.add_argument("--n", type=_positive(int), default=1000, help="rows for the log-likelihood")
    p.add_argument("--samples", type=_positive(int), default=1, help="ε draws for the ELBO")
    p.add_argument("--part", choices=("auto", "held-out", "all"), default="auto",
                   help="auto (default): the data set's test split, or every row of a file; "
                        "held-out: the rows train held out of a file; all: every row")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="of the held-out split")
    p.set_defaults(run=commands.evaluate)

    p = sub.add_parser("gradcheck", help="check a model's gradients by finite differences, as a table",
                       description="Build the model the flags describe in float64, on a few rows of "
                                   "data, and compare its gradients with central finite differences.")
    data_flags(p)
    _add_model_flags(p)
    p.add_argument("--rows", type=_positive(int), default=4, help="rows of data (default 4)")
    p.add_argument("--entries", type=_positive(int), default=20, help="entries checked per array")
    p.add_argument("--h", type=_positive(float), default=DEFAULT_STEP,
                   help=f"finite-difference step h of the central differences (default {DEFAULT_STEP:g}, "
                        "as for check and npae.gradcheck); the --seed flag draws the rows' noise ε "
                        "and the sample of entries")
    p.set_defaults(run=commands.gradient_check)

    p = sub.add_parser("filters", help="picture the first layer's weights (receptive fields)")
    p.add_argument("model_file", metavar="MODEL")
    p.add_argument("--n", type=_positive(int), default=64)
    p.add_argument("--out", default="filters.png")
    p.set_defaults(run=commands.draw_filters)

    p = sub.add_parser("interpolate", help="decode straight lines between the codes of two inputs")
    p.add_argument("model_file", metavar="MODEL")
    data_flags(p)
    p.add_argument("--pairs", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5],
                   help="row indices of held-out data, taken two by two")
    p.add_argument("--steps", type=_positive(int), default=8)
    p.add_argument("--out", default="interpolation.png")
    p.set_defaults(run=commands.interpolate)

    p = sub.add_parser("check", help="gradient-check your own layer or loss: FILE.py:ClassName")
    p.add_argument("target", metavar="FILE.py:ClassName")
    p.add_argument("--shape", type=_sizes, action="append", default=None,
                   help="input shape, e.g. 4,3 (repeat for several inputs)")
    p.add_argument("--h", type=_positive(float), default=DEFAULT_STEP,
                   help=f"finite-difference step h of the central differences (default {DEFAULT_STEP:g})")
    p.add_argument("--seed", type=_non_negative_int, default=0,
                   help="seed of the inputs, the upstream gradient dY and the second point, drawn "
                        "from independent streams, and of the class's np.random draws (default 0)")
    p.set_defaults(run=commands.check)

    p = sub.add_parser("exercise", help="graded exercises: the derivatives of a VAE, one at a time",
                       description="list the exercises; start one (write a stub to complete); "
                                   "check your solution (forward values, then gradients)")
    steps = p.add_subparsers(dest="step", metavar="STEP", parser_class=_Parser, required=True)
    s = steps.add_parser("list", help="the exercises in course order, one a line, name first")
    s.set_defaults(run=exercise.list_exercises)
    s = steps.add_parser("start", help="write NAME.py, the statement and a class to complete")
    s.add_argument("name", metavar="NAME")
    s.add_argument("folder", metavar="DIR", nargs="?", default=".", help="where (default: here)")
    s.set_defaults(run=exercise.start)
    s = steps.add_parser("check", help="grade FILE.py:Class: forward values, then gradients")
    s.add_argument("name", metavar="NAME")
    s.add_argument("target", metavar="FILE.py:Class")
    s.set_defaults(run=exercise.check)
    return parser


def main(argv=None):
    """Run one command; return the exit status (0, 1, 2, 130 or 143; see the module)."""
    parser = make_parser()
    previous = terminate_cleanly()  # cleanup runs on SIGTERM too
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        if getattr(args, "pairs", None) is not None and len(args.pairs) % 2:
            raise UsageError("--pairs takes row indices two by two")
        return args.run(args)
    except (UsageError, ValueError, TypeError, LookupError) as exc:
        return _fail(exc, 2)
    except (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError,
            PermissionError) as exc:
        return _fail(exc, 2)
    except (FloatingPointError, OSError, MemoryError) as exc:
        return _fail(exc, 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Terminated:
        return _fail("terminated (SIGTERM)", 143)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _fail(exc, status):
    """Report ``exc`` on stderr in one line and return ``status``."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    print(f"error: {message}", file=sys.stderr)
    return status
