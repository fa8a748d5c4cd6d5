"""The command line: ``python -m npae <command>`` (or ``npae <command>``) — parsing and dispatch.

Commands: ``train``, ``encode``, ``sample``, ``evaluate``, ``gradcheck``,
``filters``, ``interpolate`` and ``check`` (their bodies are in
:mod:`npae.cli.commands`), and ``exercise`` (:mod:`npae.cli.exercise`); ``python -m npae <command> --help`` describes each.
Exit status: 0 done; 1 failed (a diverging run, an unwritable disk); 2 bad
input, in one line naming the problem (never a traceback); 130 stopped by
Ctrl-C and 143 by SIGTERM, after saving what the run had; 141 when what
read the output stopped reading (``npae train | head``).
"""

import argparse
import difflib
import os
import signal
import sys

from ..nn.activations import ACTIVATIONS
from ..nn.gradcheck import DEFAULT_STEP
from ..training.signals import Terminated, terminate_cleanly
from . import commands, exercise, train
from .commands import UsageError

DEFAULT_OUT = commands.DEFAULT_OUT


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows each option's default, unless it has none (None, off) or says it itself."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text or not action.option_strings
                or action.default is None or action.default is False
                or action.default == argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """A parser that reports errors in one line (exit status 2, by :func:`main`), takes no
    abbreviations (``--epoch`` is not ``--epochs``) and shows every option's default."""

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(**kwargs)
        self.commands = {}  # the commands' parsers by name (see make_parser)
        self.renamed = {}   # an old spelling of a flag -> its new one

    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")

    def options(self):
        """Every option string this parser knows: ``--epochs``, ``-n``, …"""
        return [option for action in self._actions for option in action.option_strings]

    def refuse_unknown(self, extra):
        """Refuse the arguments ``extra`` this parser did not recognise, suggesting the nearest
        valid option for a mistyped one."""
        flags = [word.split("=", 1)[0] for word in extra if word.startswith("-")]
        renamed = [f"{flag} is now {self.renamed[flag]}" for flag in flags if flag in self.renamed]
        near = [match for flag in flags if flag not in self.renamed
                for match in difflib.get_close_matches(flag, self.options(), n=1, cutoff=0.6)]
        hint = f"; did you mean {' or '.join(dict.fromkeys(near))}?" if near else ""
        hint = "".join(f"; {words}" for words in renamed) + hint
        self.error(f"unrecognized arguments: {' '.join(extra)}{hint}")


# -- arguments ---------------------------------------------------------------
KINDS = {int: "an integer", float: "a number"}


def _sizes(text):
    parts = text.split(",")
    try:
        sizes = tuple(int(part) for part in parts)
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
            raise argparse.ArgumentTypeError(f"expected {KINDS[kind]}, got {text!r}") from None
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


def _columns(text):
    """Column names or indices, comma-separated: ``id,3`` → ("id", 3)."""
    parts = [part.strip() for part in text.split(",")]
    if not all(parts):
        raise argparse.ArgumentTypeError(f"expected column names or indices like id,3, got {text!r}")
    return tuple(int(part) if part.lstrip("-").isdigit() else part for part in parts)


def _column(text):
    """One column name or index."""
    columns = _columns(text)
    if len(columns) != 1:
        raise argparse.ArgumentTypeError(f"expected one column name or index, got {text!r}")
    return columns[0]


ACTIVATION_NAMES = tuple(ACTIVATIONS)
COUNT = dict(type=_positive(int), metavar="N")  # -n / --n, the one spelling of a count


def _add_model_flags(p):
    g = p.add_argument_group("model")
    g.add_argument("--model", choices=("vae", "ae"), default="vae",
                   help="variational autoencoder or plain autoencoder")
    g.add_argument("--hidden", type=_sizes, default=None, metavar="SIZES",
                   help="hidden layer sizes, comma-separated, e.g. 256,64 (default: 128 for the "
                        "VAE; 32 for ae, whose last size is the code)")
    g.add_argument("--latent", type=_positive(int), default=2, metavar="N", help="VAE latent size")
    g.add_argument("--activation", choices=ACTIVATION_NAMES, default="relu", metavar="NAME",
                   help=f"hidden activation: {', '.join(ACTIVATION_NAMES)}")
    g.add_argument("--likelihood", choices=("bernoulli", "gaussian"), default="bernoulli",
                   help="VAE decoder p(x|z) (bernoulli needs data in [0, 1])")
    g.add_argument("--loss", choices=("bce", "mse"), default="bce", help="autoencoder loss")
    g.add_argument("--output", choices=ACTIVATION_NAMES, default=None, metavar="NAME",
                   help="autoencoder output activation (default: sigmoid for bce, identity for mse)")
    g.add_argument("--beta", type=_non_negative_float, default=1.0, metavar="β",
                   help="weight of the KL term")
    g.add_argument("--warmup-epochs", type=_non_negative_int, default=0, metavar="N",
                   help="VAE: anneal β linearly over this many epochs (KL warm-up)")
    g.add_argument("--objective", choices=("elbo", "iwae"), default="elbo",
                   help="VAE training objective")
    g.add_argument("--k", type=_positive(int), default=5, metavar="K",
                   help="importance samples K per example of the importance-weighted bound "
                        "(used by --objective iwae)")
    g.add_argument("--tied", action="store_true", help="autoencoder: tie decoder weights to the encoder's")
    g.add_argument("--noise", choices=("mask", "gaussian"), default=None,
                   help="denoising corruption (default: none)")
    g.add_argument("--noise-level", type=_non_negative_float, default=0.0, metavar="ν", help="its level")
    g.add_argument("--sparsity", choices=("l1", "kl"), default=None,
                   help="sparsity penalty on the code (default: none)")
    g.add_argument("--sparsity-weight", type=_non_negative_float, default=0.0, metavar="λ",
                   help="its weight")
    g.add_argument("--sparsity-target", type=float, default=0.05, metavar="ρ",
                   help="target mean activation (kl)")
    g.add_argument("--contractive-weight", type=_non_negative_float, default=0.0, metavar="λ",
                   help="contractive penalty weight (one-layer encoder)")
    g.add_argument("--init", choices=("fan-in", "he-glorot"), default=None,
                   help="initial weights (default: fan-in for the VAE, he-glorot for ae)")
    g.add_argument("--seed", type=_non_negative_int, default=0,
                   help="random seed of the weights, the training and the held-out split")


def _add_data_flags(p, default="digits", *, positional=False, trained=True):
    """--data (or DATA), --scale, --drop and --labels; ``trained``: for a command that uses a
    model file, whose recorded scaling is applied."""
    g = p.add_argument_group("data")
    what = "digits (bundled), fashion-mnist, or a .npy/.npz/.csv file or IDX folder"
    if positional:
        g.add_argument("data", metavar="DATA", help=what)
    else:
        g.add_argument("--data", default=default, help=what)
    scale = ("auto: divide integer data in [0, 255] by 255; none; 255; standard: subtract each "
             "column's mean and divide by its standard deviation, both fitted on the training rows "
             "and saved with the model")
    if trained:
        scale = ("auto: divide integer data in [0, 255] by 255, or, for a model trained with "
                 "--scale standard, scale each column by the mean and deviation it saved; none; "
                 "255; standard")
    g.add_argument("--scale", choices=("auto", "none", "255", "standard"), default="auto",
                   metavar="{auto,none,255,standard}", help=scale)
    as_trained = "as in training, which the model file records" if trained else "none"
    g.add_argument("--drop", type=_columns, default=(), metavar="COLUMNS",
                   help="columns to leave out, by name (a .csv header) or index from 0, "
                        f"comma-separated (default: {as_trained})")
    g.add_argument("--labels", type=_column, default=None, metavar="COLUMN",
                   help="a column of labels, kept out of the features" + (
                       "" if trained else ", that colours the latent map") + f" (default: {as_trained})")


def _command(sub, name, summary, description=None):
    """The parser of one command: ``summary`` in ``npae --help``, ``description`` in its own."""
    return sub.add_parser(name, help=summary,
                          description=description or summary[0].upper() + summary[1:] + ".")


def make_parser():
    parser = _Parser(prog="npae", description="Autoencoders and VAEs from scratch in NumPy. "
                     "`npae COMMAND --help` describes each command.")
    parser.add_argument("--version", action="version", version=f"npae {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    parser.commands = sub.choices  # name -> the parser of that command

    p = _command(sub, "train", "train a model; write it, its history and pictures",
                 "Train an autoencoder or VAE and write model.npz, history.csv and PNG pictures "
                 "into --out. Every flag and the data are checked before training starts.")
    _add_data_flags(p, trained=False)
    _add_model_flags(p)
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=_positive(int), default=100, metavar="N", help="passes over the data")
    t.add_argument("--batch-size", type=_positive(int), default=64, metavar="N", help="rows per step")
    t.add_argument("--lr", type=_positive(float), default=1e-3, help="Adam learning rate")
    t.add_argument("--n-jobs", type=_n_jobs, default=None, metavar="N",
                   help="threads of a training step (default: the cores, when the step gains "
                        "from them; -1: every core)")
    t.add_argument("--out", default=None, metavar="FOLDER",
                   help=f"output folder (default: {DEFAULT_OUT}; a run already there is replaced "
                        "only when --out names it)")
    t.add_argument("--checkpoint", default=None, metavar="FILE.npz",
                   help="save a resumable checkpoint here every epoch")
    t.add_argument("--resume", default=None, metavar="FILE.npz", help="continue from this checkpoint")
    t.add_argument("--quiet", action="store_true", help="no per-epoch output")
    p.set_defaults(run=train.train)

    p = _command(sub, "encode", "write the codes of every row of data to a .npy file",
                 "Write the code of every row of DATA (for a VAE, the mean μ of q(z|x)) to a .npy "
                 "file, one row of codes per row of data, in the data's order, streamed in chunks.")
    p.add_argument("model_file", metavar="MODEL", help="a model file written by train")
    _add_data_flags(p, positional=True)
    p.add_argument("--part", choices=("all", "train", "held-out"), default="all",
                   help="all: every row (a data set's training rows, then its test rows); "
                        "train or held-out: the rows train trained on, or held out")
    p.add_argument("--seed", type=_non_negative_int, default=0,
                   help="the seed that drew train's held-out rows of a file (--part)")
    p.add_argument("--out", default=None, metavar="FILE.npy",
                   help="where to write (default: codes.npy, which is replaced only when --out names it)")
    p.add_argument("--chunk", type=_positive(int), default=8192, metavar="N", help="rows per chunk")
    p.set_defaults(run=commands.encode)

    p = _command(sub, "sample", "draw samples from a VAE's prior",
                 "Decode draws z ~ N(0, I) from a VAE's prior: a picture of them, or the raw "
                 "samples as a .npy file.")
    p.add_argument("model_file", metavar="MODEL", help="a VAE model file written by train")
    p.add_argument("-n", "--n", default=64, help="how many samples", **COUNT)
    p.add_argument("--seed", type=_non_negative_int, default=0, help="seed of the draws")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="a .png grid or a .npy file of the samples (default: samples.png, "
                        "replaced only when --out names it)")
    p.set_defaults(run=commands.sample)

    p = _command(sub, "evaluate", "loss, ELBO and importance-weighted log-likelihood of data")
    p.add_argument("model_file", metavar="MODEL", help="a model file written by train")
    _add_data_flags(p)
    p.add_argument("--part", choices=("auto", "train", "held-out", "all"), default="auto",
                   help="auto: a data set's test split, or every row of a file; train or "
                        "held-out: the rows train trained on, or held out; all: every row")
    p.add_argument("--seed", type=_non_negative_int, default=0,
                   help="the seed that drew train's held-out rows of a file")
    p.add_argument("--k", type=_positive(int), default=1000, metavar="K",
                   help="importance samples K per example of the importance-weighted bound")
    p.add_argument("--rows", type=_positive(int), default=1000, metavar="N",
                   help="rows whose importance-weighted log-likelihood is computed (the first ones)")
    p.add_argument("--samples", type=_positive(int), default=1, metavar="N",
                   help="draws of ε per example for the ELBO")
    p.renamed["--n"] = "--rows"
    p.set_defaults(run=commands.evaluate)

    p = _command(sub, "gradcheck", "check a model's gradients by finite differences, as a table",
                 "Build the model the flags describe in float64, on a few rows of data, and "
                 "compare its gradients with central finite differences.")
    _add_data_flags(p, trained=False)
    _add_model_flags(p)
    p.add_argument("--rows", type=_positive(int), default=4, metavar="N", help="rows of data")
    p.add_argument("--entries", type=_positive(int), default=20, metavar="N",
                   help="entries checked per parameter array")
    p.add_argument("--h", type=_positive(float), default=DEFAULT_STEP,
                   help="finite-difference step h of the central differences (as for check and "
                        "npae.gradcheck); --seed draws the rows' noise ε and the sample of entries")
    p.set_defaults(run=commands.gradient_check)

    p = _command(sub, "filters", "picture the first layer's weights (receptive fields)",
                 "Draw the first layer's weights, one tile per hidden unit, on one colour scale.")
    p.add_argument("model_file", metavar="MODEL", help="a model file written by train")
    p.add_argument("-n", "--n", default=64, help="how many units to draw (the first ones)", **COUNT)
    p.add_argument("--out", default=None, metavar="FILE.png",
                   help="where to write (default: filters.png, replaced only when --out names it)")
    p.set_defaults(run=commands.draw_filters)

    p = _command(sub, "interpolate", "decode straight lines between the codes of two inputs",
                 "For each pair of rows (a, b) of the held-out data, decode the straight line "
                 "from the code of a to the code of b.")
    p.add_argument("model_file", metavar="MODEL", help="a model file written by train")
    _add_data_flags(p)
    p.add_argument("--pairs", type=_non_negative_int, nargs="+", default=[0, 1, 2, 3, 4, 5],
                   metavar="ROW", help="row indices of held-out data, taken two by two")
    p.add_argument("--steps", type=_positive(int), default=8, metavar="N",
                   help="decoded points on each line")
    p.add_argument("--out", default=None, metavar="FILE.png",
                   help="where to write (default: interpolation.png, replaced only when --out names it)")
    p.set_defaults(run=commands.interpolate)

    p = _command(sub, "check", "gradient-check your own layer or loss: FILE.py:ClassName",
                 "Gradient-check a layer or loss class of your own by central finite differences.")
    p.add_argument("target", metavar="FILE.py:ClassName", help="the file and the class in it")
    p.add_argument("--shape", type=_sizes, action="append", default=None,
                   help="input shape, e.g. 4,3 (repeat for several inputs; default: the class's own)")
    p.add_argument("--h", type=_positive(float), default=DEFAULT_STEP,
                   help="finite-difference step h of the central differences")
    p.add_argument("--seed", type=_non_negative_int, default=0,
                   help="seed of the inputs, the upstream gradient dY and the second point, drawn "
                        "from independent streams, and of the class's np.random draws")
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


def version():
    """npae's version: that of the package this command line belongs to (imported before it)."""
    return sys.modules[__name__.split(".")[0]].__version__


def main(argv=None):
    """Run one command; return the exit status (0, 1, 2, 130, 141 or 143; see the module)."""
    parser = make_parser()
    previous = terminate_cleanly()  # cleanup runs on SIGTERM too
    try:
        try:
            args, extra = parser.parse_known_args(argv)
        except SystemExit as exc:  # --help and --version end here, having printed
            return exc.code or 0
        if extra:
            parser.commands.get(args.command, parser).refuse_unknown(extra)
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
    except BrokenPipeError:  # what reads the output went away (`npae train | head`): stop quietly
        _discard_output()
        return 141
    except (FloatingPointError, OSError, MemoryError) as exc:
        return _fail(exc, 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Terminated:
        return _fail("terminated (SIGTERM)", 143)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _discard_output():
    """Send what is left of standard output nowhere, so that the interpreter's last flush does
    not report the broken pipe again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # (not a real file: nothing will be flushed to a pipe)
        pass


def _fail(exc, status):
    """Report ``exc`` on stderr in one line and return ``status``."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    print(f"error: {message}", file=sys.stderr)
    return status
