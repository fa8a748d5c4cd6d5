"""``python -m npae exercise list | start NAME [DIR] | check NAME FILE.py:Class``.

``check`` grades in two parts: the **forward values** against npae's reference on fixed
inputs (chosen to break the unstable forms), then the **gradients** with the checker of
``npae check``, at inputs drawn from the exercise's domains.  The reference is never printed:
a wrong value is reported as yours and how far it is off.  Exit status: 0 both parts pass;
1 a part fails (a stub not yet completed fails, it does not crash); 2 the file cannot be run.
"""

import os

import numpy as np

from ..exercises.series import SERIES, get
from ..nn.gradcheck import DEFAULT_STEP
from ..nn.gradcheck_report import ratio_words
from .check import build, check_built, kind_of, load_class, one_line, params_to_float64

FORWARD_RTOL, FORWARD_ATOL = 1e-9, 1e-12
FORWARD_SEED = 2026


def list_exercises(args):
    """One exercise a line, its name first, in course order."""
    width = max(len(exercise.name) for exercise in SERIES)
    for exercise in SERIES:
        print(f"{exercise.name:<{width}}  {exercise.summary}")
    return 0


def start(args):
    """Write DIR/NAME.py: the statement, then the class(es) to complete; never over a file."""
    exercise = get(args.name)
    os.makedirs(args.folder, exist_ok=True)
    path = os.path.join(args.folder, f"{exercise.name}.py")
    first = next(iter(exercise.classes))
    command = f"python -m npae exercise check {exercise.name} {path}:{first}"
    text = (f'"""{exercise.statement}\n\nWhen it is written, check it:\n\n    {command}\n"""\n\n'
            f"import numpy as np\n\n\n{exercise.stub}")
    try:
        with open(path, "x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError:
        raise FileExistsError(f"{path} exists; it is left as it is (remove it to start over, or "
                              "give another folder)") from None
    print(f"wrote {path}: complete {', '.join(exercise.classes)}, then\n    {command}")
    return 0


def check(args):
    return grade(args.name, args.target)


def grade(name, target, *, seed=0):
    """Grade ``FILE.py:Class`` as the exercise ``name``: forward values, then gradients; 0 or 1."""
    exercise = get(name)
    cls = load_class(target)
    reference_cls = exercise.classes.get(cls.__name__)
    if reference_cls is None and len(exercise.classes) == 1:
        reference_cls = next(iter(exercise.classes.values()))
    if reference_cls is None:
        raise ValueError(f"the {name} exercise grades the classes {', '.join(exercise.classes)}; "
                         f"{cls.__name__} is none of them")
    wanted = "layer" if exercise.kind == "layer" else "loss"
    if kind_of(cls) != wanted:
        what = ("forward and backward (a layer)" if wanted == "layer" else "loss_and_grads")
        print(f"FAIL: the {name} exercise asks {cls.__name__} for {what}")
        return 1
    print(f"exercise {name}: {exercise.summary}\n")
    forward_ok = _forward_values(build(cls, seed), reference_cls(), exercise)
    print()
    names = exercise.input_names
    status = check_built(build(cls, seed), names, [shape for _, shape, _ in exercise.inputs],
                         [domain for _, _, domain in exercise.inputs], list(exercise.wrt),
                         h=DEFAULT_STEP, seed=seed, source=str(target).rpartition(":")[0],
                         words=("gradients: ok —", "gradients: FAIL —"))
    if forward_ok and status == 0:
        print(f"\nPASS: exercise {name} — forward values and gradients are right")
        return 0
    parts = [part for part, bad in (("forward values", not forward_ok), ("gradients", status))
             if bad]
    print(f"\nFAIL: exercise {name} — {' and '.join(parts)} to fix")
    return 1


def _forward_values(student, reference, exercise):
    """Forward value (a layer's Y, a loss's L) of ``student`` against ``reference`` at the
    exercise's fixed inputs, with the reference's parameters copied in; print; True if right."""
    name = type(student).__name__
    ref_params = getattr(reference, "params", None) or {}
    if ref_params:
        params_to_float64(student)
        mine = getattr(student, "params", None) or {}
        shapes = {k: v.shape for k, v in ref_params.items()}
        if {k: np.shape(v) for k, v in mine.items()} != shapes:
            print(f"forward values: FAIL — {name}.params must hold the arrays "
                  f"{', '.join(f'{k} {s}' for k, s in shapes.items())}, as the stub sets them")
            return False
        for key, value in ref_params.items():
            mine[key][...] = value
    inputs = exercise.fixed(np.random.default_rng(FORWARD_SEED))
    expected = _value(reference, exercise, inputs)
    try:
        with np.errstate(all="ignore"):
            got = _value(student, exercise, inputs)
    except NotImplementedError:
        print(f"forward values: FAIL — {name} is not finished (NotImplementedError)")
        return False
    except Exception as exc:
        raise ValueError(f"{name} raised {type(exc).__name__} at the fixed inputs: "
                         f"{one_line(exc)}") from None
    what = "Y = forward(...)" if exercise.kind == "layer" else "the loss"
    at = ", ".join(f"{k} {np.shape(v)}" for k, v in inputs.items())
    if np.shape(got) != np.shape(expected):
        print(f"forward values: FAIL — {what} has shape {np.shape(got)}, expected {np.shape(expected)}")
        return False
    got = np.asarray(got, dtype=np.float64)
    if not np.all(np.isfinite(got)):
        print(f"forward values: FAIL — {what} is not finite ({_first_bad(got)}) at the fixed inputs "
              f"({at}), which include large magnitudes: use the stable form the statement gives")
        return False
    if not np.allclose(got, expected, rtol=FORWARD_RTOL, atol=FORWARD_ATOL):
        off = np.abs(got - expected) / np.maximum(np.abs(expected), FORWARD_ATOL)
        worst = np.unravel_index(np.argmax(off), np.shape(off)) if np.ndim(off) else ()
        ratios = got / np.where(expected == 0, np.nan, expected)
        factor = ratio_words(float(np.nanmean(ratios))) if np.nanmax(ratios) - np.nanmin(ratios) \
            <= 1e-9 * abs(np.nanmean(ratios)) else None
        print(f"forward values: FAIL — {what} is off by {off[worst]:.3g} (relative) at "
              f"{list(worst) if worst else 'the value'} for the fixed inputs ({at}); yours is "
              f"{got[worst]:.8g}" + (f", {factor} times the right value" if factor else "") +
              ".  Finite differences cannot see a wrong value whose gradient matches it: compare "
              "your formula with the statement's")
        return False
    print(f"forward values: ok — {what} matches npae's reference at the fixed inputs ({at})")
    return True


def _value(obj, exercise, inputs):
    arrays = [np.array(a, dtype=np.float64) for a in inputs.values()]
    if exercise.kind == "layer":
        return obj.forward(*arrays)
    return float(obj.loss_and_grads(*arrays)[0])


def _first_bad(values):
    index = np.argwhere(~np.isfinite(values))[0] if np.ndim(values) else ()
    return f"{values[tuple(index)]} at {list(index)}" if np.ndim(values) else str(float(values))
