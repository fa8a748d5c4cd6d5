"""Check a layer or a loss you wrote yourself: ``python -m npae check FILE.py:ClassName``.

The file is loaded as a module, the class built with no arguments, and its hand-written
gradients compared with central finite differences in float64 (:mod:`npae.nn.gradcheck`,
:mod:`npae.nn.gradcheck_objects`).  Three kinds of class are understood:

* a **layer**: ``forward(X) -> Y`` and ``backward(dY) -> dX``, with optional dicts ``params``
  and ``grads`` (same keys; ``backward`` sets ``grads``).  For an upstream dY drawn
  independently of X the checked scalar is ``L = Σ Y ⊙ dY``, whose gradient is exactly what
  ``backward(dY)`` must return.  ``forward(mu, logvar, eps)`` with several inputs returns a
  tuple of their gradients from ``backward``.
* a **loss**: ``loss_and_grads(*inputs) -> (loss, grads)``, ``grads`` holding the gradient of
  the scalar loss for each input, in its shape: a tuple or list in argument order, a dict
  keyed by argument name, or one bare array.
* a **model**: a loss with a dict ``params``; ``grads`` is then a dict that also holds a
  gradient for each parameter.

Optional class attributes: ``input_shapes = [(4, 3), ...]`` (else ``--shape``, else (4, 3));
``input_domains = ["real", "positive", "probability"]``, one per input (default "real":
standard normal; "positive": e^{N(0, ½²)}; "probability": inside (0.05, 0.95)); and
``fixed_inputs = ["eps"]``, inputs that are data, not differentiated.

Exit status: 0 every entry agrees (or disagrees only at a kink); 1 a gradient is wrong —
finite differences disagree, or it accumulates, depends on an earlier call, is missing, has
the wrong shape, or the code changes its input in place; 2 the class cannot be checked — it
cannot be loaded or built, raises, is not deterministic, computes in float32, or its loss is
not finite at inputs from the declared domains.
"""

import importlib.util
import inspect
import os
import sys

import numpy as np

from ..nn.gradcheck import DEFAULT_STEP, CannotCheck, WrongGradients
from ..nn.gradcheck_objects import DOMAINS, check_object, draw_inputs

DEFAULT_SHAPE = (4, 3)


def load_class(target):
    """The class ``ClassName`` of ``FILE.py:ClassName``; ValueError (one line) if it cannot be had."""
    path, sep, name = str(target).rpartition(":")
    if not sep or not path or not name.isidentifier():
        raise ValueError(f"expected FILE.py:ClassName, got {target!r}")
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    module_name = f"npae_exercise_{abs(hash(os.path.abspath(path)))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up here
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # SyntaxError included
        sys.modules.pop(module_name, None)
        why = (f"line {exc.lineno}: syntax error: {exc.msg}" if isinstance(exc, SyntaxError)
               else f"importing it raised {type(exc).__name__}: {one_line(exc)}")
        raise ValueError(f"{path}, {why}") from None
    cls = getattr(module, name, None)
    if not inspect.isclass(cls):
        found = sorted(k for k, v in vars(module).items()
                       if inspect.isclass(v) and v.__module__ == module_name)
        raise ValueError(f"{path} has no class {name!r} (classes there: {', '.join(found) or 'none'})")
    if kind_of(cls) is None:
        raise ValueError(f"{name} has neither forward + backward (a layer) nor loss_and_grads (a loss)")
    return cls


def kind_of(cls):
    """"layer", "loss", or None."""
    if callable(getattr(cls, "forward", None)) and callable(getattr(cls, "backward", None)):
        return "layer"
    return "loss" if callable(getattr(cls, "loss_and_grads", None)) else None


def build(cls, seed=0):
    """``cls()``, with ``np.random`` seeded so a class drawing from it gets the same numbers."""
    np.random.seed(seed)
    try:
        return cls()
    except Exception as exc:
        raise ValueError(f"{cls.__name__}() failed ({type(exc).__name__}: {one_line(exc)}); "
                         "the class needs a constructor that takes no arguments") from None


def input_names(obj):
    """The required positional arguments of ``forward`` (a layer) or ``loss_and_grads``."""
    method = obj.forward if kind_of(type(obj)) == "layer" else obj.loss_and_grads
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = [p.name for p in inspect.signature(method).parameters.values()
             if p.kind in kinds and p.default is inspect.Parameter.empty]
    if not names:
        raise ValueError(f"{method.__name__} must take its inputs as positional arguments")
    return names


def run_check(target, *, shapes=None, h=DEFAULT_STEP, seed=0):
    """Gradient-check ``FILE.py:ClassName``; print the table and the verdict; return 0 or 1.

    ``shapes``: input shapes (list of tuples) overriding the class's ``input_shapes``; ``h``:
    the finite-difference step; ``seed``: of the inputs, the upstream gradient, the second
    point and the class's own ``numpy.random`` draws.  Raises ValueError (exit 2) for a class
    that cannot be loaded, built, run or checked.
    """
    cls = load_class(target)
    obj = build(cls, seed)
    names = input_names(obj)
    shapes = [tuple(s) for s in (shapes or getattr(cls, "input_shapes", None)
                                 or [DEFAULT_SHAPE] * len(names))]
    if len(shapes) != len(names):
        raise ValueError(f"{cls.__name__} takes {len(names)} input(s) ({', '.join(names)}), "
                         f"but {len(shapes)} shape(s) were given")
    domains = list(getattr(cls, "input_domains", None) or ["real"] * len(names))
    if len(domains) != len(names) or any(d not in DOMAINS for d in domains):
        raise ValueError(f"{cls.__name__}.input_domains must list one of {', '.join(DOMAINS)} for "
                         f"each of its {len(names)} input(s) ({', '.join(names)}), got {domains}")
    fixed = list(getattr(cls, "fixed_inputs", None) or [])
    wrt = [n for n in names if n not in fixed]
    source = str(target).rpartition(":")[0]
    return check_built(obj, names, shapes, domains, wrt, h=h, seed=seed, source=source)


def check_built(obj, names, shapes, domains, wrt, *, h=DEFAULT_STEP, seed=0, source=None, inputs=None,
                words=("PASS:", "FAIL:")):
    """Check ``obj`` at inputs drawn from ``domains`` (or the given ``inputs``); print; return 0/1.

    The finite-difference verdict (1 for a wrong gradient) or the structural mistake found
    before it; ValueError (exit 2) when the object cannot be checked.  ``words`` begin the
    last line (a grader calls this one part of its grade)."""
    passed, failed = words
    name, kind = type(obj).__name__, kind_of(type(obj))
    kind = "model" if kind == "loss" and getattr(obj, "params", None) else kind
    converted = params_to_float64(obj)
    drawn, second, upstream = draw_inputs(names, shapes, domains, seed)
    inputs = drawn if inputs is None else inputs
    described = ", ".join(f"{n} {s} {d}" + ("" if n in wrt else " (fixed)")
                          for n, s, d in zip(names, shapes, domains))
    print(f"checking {name} ({kind})" + (f" from {source}" if source else "") +
          f": inputs {described}; float64, central differences with h = {h:g}"
          + (f"\n(the parameters {', '.join(converted)} were converted to float64)" if converted else "")
          + "\n")
    try:
        report = check_object(obj, "layer" if kind == "layer" else "loss", inputs, wrt,
                              second=second, upstream=upstream, eps=float(h), seed=seed)
    except WrongGradients as exc:
        print(f"{failed} {name}: {one_line(exc)}")
        return 1
    except CannotCheck as exc:
        raise ValueError(f"cannot check {name}: {one_line(exc)}") from None
    except NotImplementedError as exc:
        print(f"{failed} {name} is not finished: a method raised NotImplementedError"
              + (f" ({one_line(exc)})" if str(exc) else ""))
        return 1
    except Exception as exc:
        raise ValueError(f"checking {name} failed: {type(exc).__name__}: {one_line(exc)}") from None
    print(report)
    if report.passed:
        print(f"\nverdict: {report.verdict}\n{passed} the gradients of {name} agree with finite "
              "differences")
        return 0
    bad = ", ".join(r.name for r in report.rows if r.n_failed)
    print(f"\nverdict: {report.verdict}\n{failed} the gradients of {name} disagree with finite "
          f"differences in {bad}")
    return 1


def params_to_float64(obj):
    """Finite differences need float64: convert the object's params and grads in place; return
    the names converted (an attribute aliasing ``params["W"]``, like ``self.W``, follows it)."""
    converted = []
    for attr in ("params", "grads"):
        arrays = getattr(obj, attr, None) or {}
        if not isinstance(arrays, dict):
            raise ValueError(f"{type(obj).__name__}.{attr} must be a dict of name -> array")
        for key, value in list(arrays.items()):
            if not (isinstance(value, np.ndarray) and value.dtype == np.float64):
                arrays[key] = np.array(value, dtype=np.float64)
                converted += [key] if attr == "params" else []
                for attr_name, attr_value in list(vars(obj).items()):
                    if attr_value is value:
                        setattr(obj, attr_name, arrays[key])
    return converted


def one_line(exc):
    return " ".join(str(exc).split()) or type(exc).__name__
