"""Check a layer or a loss you wrote yourself: ``python -m npae check FILE.py:ClassName``.

The file is loaded as a module, the class built with no arguments, and its
hand-written gradients compared with central finite differences in float64
(:mod:`npae.gradcheck`).  Two kinds of class are understood:

* a **layer**: ``forward(X) -> Y`` and ``backward(dY) -> dX``, with optional
  dicts ``params`` and ``grads`` (same keys; ``backward`` fills ``grads``).
  For a random upstream dY the checked scalar is ``L = Σ Y ⊙ dY``, whose
  gradient is exactly what ``backward(dY)`` must return (and store).
* a **loss**: ``loss_and_grads(*inputs) -> (loss, grads)``, ``grads`` holding
  the gradient of the scalar loss for each input, in its shape: a tuple or
  list in argument order, a dict keyed by argument name, or one bare array.

Inputs are standard-normal draws, shaped by the ``--shape`` flags, else by a
class attribute ``input_shapes = [(4, 3), ...]``, else (4, 3) per argument.
The verdict is CS231n's: relative error ≤ 1e-7 good, up to 1e-4 acceptable
only next to a kink (relu at 0, |x| at 0), above 1e-2 wrong.  ``run_check``
passes (returns 0) at ≤ 1e-6, or at ≤ 1e-4 when the checker saw a kink.
"""

import importlib.util
import inspect
import os
import sys
import warnings

import numpy as np

from ..nn.gradcheck import gradcheck, gradcheck_layer, verdict

DEFAULT_SHAPE = (4, 3)
SMOOTH_TOL = 1e-6   # pass for a smooth function
KINK_TOL = 1e-4     # pass only when finite differences straddled a kink


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
               else f"importing it raised {type(exc).__name__}: {_one_line(exc)}")
        raise ValueError(f"{path}, {why}") from None
    cls = getattr(module, name, None)
    if not inspect.isclass(cls):
        found = sorted(k for k, v in vars(module).items()
                       if inspect.isclass(v) and v.__module__ == module_name)
        raise ValueError(f"{path} has no class {name!r} (classes there: {', '.join(found) or 'none'})")
    if _kind(cls) is None:
        raise ValueError(f"{name} has neither forward + backward (a layer) nor loss_and_grads (a loss)")
    return cls


def run_check(target, *, shapes=None, h=1e-6, seed=0):
    """Gradient-check ``FILE.py:ClassName``; print the table and the verdict; return 0 or 1.

    ``shapes``: input shapes (list of tuples) overriding the class's
    ``input_shapes``; ``h``: the finite-difference step; ``seed``: of the inputs,
    the upstream gradient and the class's own ``numpy.random`` draws.
    Raises ValueError for a target that cannot be loaded, built or run.
    """
    cls = load_class(target)
    name, kind = cls.__name__, _kind(cls)
    np.random.seed(seed)  # a class drawing its parameters from np.random gets the same ones each run
    try:
        obj = cls()
    except Exception as exc:
        raise ValueError(f"{name}() failed ({type(exc).__name__}: {_one_line(exc)}); "
                         "the class needs a constructor that takes no arguments") from None
    names = ["X"] if kind == "layer" else _argument_names(obj.loss_and_grads)
    shapes = shapes or getattr(cls, "input_shapes", None) or [DEFAULT_SHAPE] * len(names)
    shapes = [tuple(s) for s in shapes]
    if len(shapes) != len(names):
        raise ValueError(f"{name} takes {len(names)} input(s) ({', '.join(names)}), "
                         f"but {len(shapes)} shape(s) were given")
    rng = np.random.default_rng(seed)
    inputs = {n: rng.standard_normal(s) for n, s in zip(names, shapes)}
    described = ", ".join(f"{n} {s}" for n, s in zip(names, shapes))
    print(f"checking {name} ({kind}) from {target.rpartition(':')[0]}: inputs {described}, "
          f"float64, central differences with h = {h:g}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # kinks are reported below, not as a warning
        try:
            if kind == "layer":
                _params_to_float64(obj)
                report = gradcheck_layer(obj, inputs["X"], eps=float(h), seed=seed)
            else:
                report = gradcheck(lambda: _loss_and_named_grads(obj, inputs, names), inputs,
                                   eps=float(h), seed=seed)
        except Exception as exc:
            raise ValueError(f"checking {name} failed: {type(exc).__name__}: {_one_line(exc)}") from None
    print(report)
    worst = max(report.rows, key=lambda r: r.max_rel_error)
    kinks = sum(r.n_kinks for r in report.rows)
    passed = worst.max_rel_error <= (KINK_TOL if kinks else SMOOTH_TOL)
    bad = ", ".join(r.name for r in report.rows if r.max_rel_error > SMOOTH_TOL)
    print(f"\nverdict: {verdict(worst.max_rel_error)} (worst: {worst.name} at {worst.worst_index}, "
          f"analytic {worst.analytic:.6g}, numeric {worst.numeric:.6g})"
          + (f"; {kinks} checked entries straddle a kink" if kinks else ""))
    print(f"PASS: the gradients of {name} agree with finite differences" if passed
          else f"FAIL: the gradients of {name} disagree with finite differences in {bad}")
    return 0 if passed else 1


def _kind(cls):
    if callable(getattr(cls, "forward", None)) and callable(getattr(cls, "backward", None)):
        return "layer"
    return "loss" if callable(getattr(cls, "loss_and_grads", None)) else None


def _argument_names(method):
    """Names of the required positional arguments of a bound ``loss_and_grads``."""
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = [p.name for p in inspect.signature(method).parameters.values()
             if p.kind in kinds and p.default is inspect.Parameter.empty]
    if not names:
        raise ValueError("loss_and_grads must take its inputs as positional arguments")
    return names


def _params_to_float64(layer):
    """Finite differences need float64: convert the layer's params and grads in place."""
    for attr in ("params", "grads"):
        arrays = getattr(layer, attr, None) or {}
        if not isinstance(arrays, dict):
            raise ValueError(f"{type(layer).__name__}.{attr} must be a dict of name -> array")
        for key, value in list(arrays.items()):
            if not (isinstance(value, np.ndarray) and value.dtype == np.float64):
                arrays[key] = np.array(value, dtype=np.float64)
                for attr_name, attr_value in list(vars(layer).items()):
                    if attr_value is value:  # self.W aliasing params["W"] follows it
                        setattr(layer, attr_name, arrays[key])


def _loss_and_named_grads(obj, inputs, names):
    """Call ``loss_and_grads`` and put its gradients in a dict keyed by argument name."""
    loss, grads = obj.loss_and_grads(*inputs.values())
    if isinstance(grads, dict):
        return loss, grads
    if isinstance(grads, np.ndarray) and len(names) == 1:
        return loss, {names[0]: grads}
    if isinstance(grads, (tuple, list)) and len(grads) == len(names):
        return loss, dict(zip(names, grads))
    raise ValueError(f"grads must be a tuple/list of {len(names)} arrays (one per input), "
                     f"or a dict keyed by {names}")


def _one_line(exc):
    return " ".join(str(exc).split()) or type(exc).__name__
