"""Gradient-checking an object: a layer (``forward``/``backward``), a loss (``loss_and_grads``)
or a model (``params`` and ``loss_and_grads``), the way a student writes them.

A layer is checked through the scalar ``L = Σ Y ⊙ dY``, whose gradient is exactly the
vector–Jacobian product ``backward(dY)`` returns.  Around :func:`npae.gradcheck` this adds
what only an object allows:

* **inputs from their domains** — ``input_domains = ["real", "positive", "probability"]``:
  standard normal; ``e^{N(0, ½²)}``; uniform in [0.05, 0.95] (strictly inside (0, 1));
* **independent draws** — the inputs, the upstream gradient ``dY`` and a second point come
  from independent streams of one seed, so ``dY`` never equals ``X`` (were it so, ``XᵀdY = XᵀX``
  would be symmetric and a transposed ``dW`` would pass);
* **reentrancy** — the object first runs at a second point (another draw), then at the
  checked one twice; a fresh copy then runs at the checked point alone.  A gradient that
  differs from the fresh copy's comes from a cache kept from an earlier call, or from ``+=``.

The structural mistakes are named with their fix: a ``dX`` of the wrong shape, a gradient
``backward`` never stored, an input changed in place, a computation in float32.
"""

import copy

import numpy as np

from .gradcheck import (DEFAULT_STEP, RTOL, CannotCheck, WrongGradients, first_calls, gradcheck,
                        put_back_changed, require_float64)

DOMAINS = ("real", "positive", "probability")


def draw(shape, domain, rng):
    """An input of ``shape`` from ``domain``: real N(0, 1), positive e^{N(0, ½²)}, probability
    U(0.05, 0.95).

    The margins keep θ ± h inside the domain for any step h < 0.05."""
    if domain == "real":
        return rng.standard_normal(shape)
    if domain == "positive":
        return np.exp(0.5 * rng.standard_normal(shape))
    if domain == "probability":
        return rng.uniform(0.05, 0.95, size=shape)
    raise ValueError(f"unknown input domain {domain!r}; valid domains are: {', '.join(DOMAINS)}")


def draw_inputs(names, shapes, domains, seed):
    """(inputs, inputs at a second point, upstream seed): dicts name -> array, from three
    independent streams of ``seed`` (``numpy.random.SeedSequence(seed).spawn(3)``)."""
    here, there, upstream = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    inputs = {n: draw(s, d, here) for n, s, d in zip(names, shapes, domains)}
    second = {n: draw(s, d, there) for n, s, d in zip(names, shapes, domains)}
    return inputs, second, upstream


def gradcheck_layer(layer, X, *, dY=None, eps=DEFAULT_STEP, n_entries=None, seed=0, rtol=RTOL,
                    nondet_tol=0.0):
    """Check a layer's ``backward`` — input gradient and parameter gradients — in isolation.

    The layer needs ``forward(X) -> Y``, ``backward(dY) -> dX`` and, if it has parameters,
    dicts ``layer.params`` and ``layer.grads`` (float64, same keys).  The checked scalar is
    ``L = Σ Y ⊙ dY`` for an upstream ``dY`` (drawn from a stream independent of ``X`` if not
    given).  The layer runs first at a second input (the entries of ``X`` in another order),
    so a stale cache or an accumulating gradient shows.

    >>> import numpy as np, npae
    >>> class Square:                      # y = x², dx = 2 x dy
    ...     def forward(self, X):
    ...         self.X = X
    ...         return X * X
    ...     def backward(self, dY):
    ...         return 2 * self.X * dY
    >>> npae.gradcheck_layer(Square(), np.random.default_rng(0).normal(size=(3, 2))).passed
    True

    Returns the :class:`~npae.nn.gradcheck.GradcheckReport`, with a row ``"X"`` for the input.
    """
    X = np.array(X, dtype=np.float64)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])
    second = {"X": rng.permutation(X.ravel()).reshape(X.shape)}
    return check_object(layer, "layer", {"X": X}, ["X"], second=second, dY=dY, upstream=rng,
                        eps=eps, n_entries=n_entries, seed=seed, rtol=rtol, nondet_tol=nondet_tol)


def check_object(obj, kind, inputs, wrt, *, second=None, dY=None, upstream=None, eps=DEFAULT_STEP,
                 n_entries=None, seed=0, rtol=RTOL, nondet_tol=0.0):
    """Check ``obj`` (``kind`` "layer" or "loss") at ``inputs`` (dict name -> float64 array).

    ``wrt``: the inputs whose gradients ``obj`` returns (the others are fixed data, like ε);
    ``obj.params``, if any, are checked too.  ``second``: the inputs at a second point, run
    first; ``dY`` or ``upstream`` (a Generator for it): the upstream gradient of a layer.
    Returns the report; raises :class:`CannotCheck` or :class:`WrongGradients`.
    """
    params = getattr(obj, "params", None) or {}
    if not isinstance(params, dict):
        raise WrongGradients(f"{type(obj).__name__}.params must be a dict of name -> array")
    require_float64(params)
    for name in wrt:
        if name in params:
            raise ValueError(f"the input {name!r} and a parameter share a name")
    inputs = {name: np.array(a, dtype=np.float64) for name, a in inputs.items()}
    try:
        fresh = copy.deepcopy(obj)
    except Exception:  # an object that cannot be copied is checked without the fresh copy
        fresh = None
    if kind == "layer":
        if dY is None:
            upstream = upstream or np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])
            shape = np.shape(_forward(obj, second if second is not None else inputs))
            dY = upstream.standard_normal(shape)
            dY_second = upstream.standard_normal(shape)
        else:
            dY = np.array(dY, dtype=np.float64)
            dY_second = dY[::-1].copy()

        def call(target, at, upstream_grad):
            return _layer_call(target, at, wrt, upstream_grad)
    else:
        dY = dY_second = None

        def call(target, at, upstream_grad):
            return _loss_call(target, at, wrt)
    if second is not None:
        call(obj, {k: v.copy() for k, v in second.items()}, dY_second)
    checked = {**{name: inputs[name] for name in wrt}, **params}

    def fn():
        before = {name: a.copy() for name, a in inputs.items()}
        result = call(obj, inputs, dY)
        _unchanged(before, inputs, "input")
        return result

    scale = fn()[2]
    first_calls(lambda: fn()[:2], checked, nondet_tol)
    if fresh is not None:
        _compare_with_fresh(obj, lambda: call(fresh, inputs, dY), fn, checked)
    return gradcheck(lambda: fn()[:2], checked, eps=eps, n_entries=n_entries, seed=seed, rtol=rtol,
                     nondet_tol=nondet_tol, loss_scale=scale)


def _compare_with_fresh(obj, call_fresh, fn, checked):
    """The gradients of ``obj`` (which has run at another point before) against a fresh copy's."""
    loss_used, grads_used = fn()[:2]
    loss_fresh, grads_fresh = call_fresh()[:2]
    if not np.isclose(loss_used, loss_fresh, rtol=1e-12, atol=0):
        return    # a loss that depends on history: finite differences will show it
    stale = [name for name in checked
             if not np.allclose(grads_used[name], grads_fresh[name], rtol=1e-9,
                                atol=1e-9 * float(np.max(np.abs(grads_fresh[name]), initial=0.0)))]
    if stale:
        raise WrongGradients(
            f"after running at another input, {type(obj).__name__} returns different gradients for "
            f"{', '.join(map(repr, stale))} than a fresh copy does at the same input: backward uses "
            "something kept from an earlier call (a cache set only once, an input stored only the "
            "first time) or adds to its gradients (+=); forward must store what backward needs at "
            "every call, and backward must set its gradients")


def _forward(obj, inputs):
    return obj.forward(*(a.copy() for a in inputs.values()))


def _unchanged(before, arrays, what):
    changed = put_back_changed(before, arrays)
    if changed:
        raise WrongGradients(f"the {what} {', '.join(changed)} was changed in place: forward and "
                             "backward must leave their inputs alone (write a new array: y = x * m, "
                             "not x *= m; np.maximum(x, 0), not np.maximum(x, 0, out=x))")


def _layer_call(layer, inputs, wrt, dY):
    """forward, then backward: (Σ Y ⊙ dY, the gradients of the inputs in ``wrt`` and of the
    params, Σ |Y ⊙ dY|)."""
    name = type(layer).__name__
    Y = layer.forward(*inputs.values())
    if not isinstance(Y, np.ndarray):
        raise WrongGradients(f"{name}.forward returned {type(Y).__name__}, not an array")
    if Y.shape != dY.shape:
        raise WrongGradients(f"{name}.forward returned shape {Y.shape}, but the upstream gradient "
                             f"dY has shape {dY.shape}")
    _float64(Y, f"{name}.forward returned {Y.dtype} values")
    dY_before = dY.copy()
    d_inputs = layer.backward(dY)
    _unchanged({"dY": dY_before}, {"dY": dY}, "upstream gradient")
    grads = dict(zip(wrt, _as_tuple(d_inputs, wrt, f"{name}.backward", "returned")))
    for key, g in grads.items():
        if np.shape(g) != inputs[key].shape:
            raise WrongGradients(f"{name}.backward returned d{key} of shape {np.shape(g)}, but {key} "
                                 f"has shape {inputs[key].shape}: d{key} must have {key}'s shape")
    params = getattr(layer, "params", None) or {}
    stored = getattr(layer, "grads", None)
    if params and not isinstance(stored, dict):
        raise WrongGradients(f"{name} has params but no dict grads: backward must store "
                             "grads[name] for every parameter")
    missing = [key for key in params if key not in stored]
    if missing:
        raise WrongGradients(f"{name}.backward did not store a gradient for "
                             f"{', '.join(map(repr, missing))}: backward must set self.grads[name] "
                             "for every name in self.params")
    grads.update({key: stored[key] for key in params})
    products = Y * dY
    return float(np.sum(products)), grads, float(np.sum(np.abs(products)))


def _loss_call(obj, inputs, wrt):
    """loss_and_grads: (loss, gradients keyed by input and parameter name, None)."""
    name = type(obj).__name__
    result = obj.loss_and_grads(*inputs.values())
    if not (isinstance(result, tuple) and len(result) == 2):
        length = f" of {len(result)}" if isinstance(result, tuple) else ""
        raise WrongGradients(f"{name}.loss_and_grads must return the pair (loss, grads), got "
                             f"{type(result).__name__}{length}")
    loss, returned = result
    params = getattr(obj, "params", None) or {}
    if isinstance(returned, dict):
        grads = dict(returned)
    elif wrt:
        grads = dict(zip(wrt, _as_tuple(returned, wrt, f"{name}.loss_and_grads", "returned as grads")))
    else:
        raise WrongGradients(f"{name}.loss_and_grads must return (loss, grads) with grads a dict "
                             f"keyed by {list(params)}")
    missing = [key for key in [*wrt, *params] if key not in grads]
    if missing:
        raise WrongGradients(f"{name}.loss_and_grads returned no gradient for "
                             f"{', '.join(map(repr, missing))}: grads needs one for every input "
                             "checked and every parameter, keyed by its name (grads has "
                             f"{', '.join(map(repr, grads)) or 'no keys'})")
    for key in wrt:
        if np.shape(grads[key]) != inputs[key].shape:
            raise WrongGradients(f"{name}.loss_and_grads returned d{key} of shape "
                                 f"{np.shape(grads[key])}, but {key} has shape {inputs[key].shape}: "
                                 f"d{key} must have {key}'s shape")
    return loss, grads, None


def _as_tuple(returned, wrt, who, how):
    if len(wrt) == 1 and isinstance(returned, np.ndarray):
        return (returned,)
    if isinstance(returned, (tuple, list)) and len(returned) == len(wrt):
        return tuple(returned)
    expected = f"the array d{wrt[0]}" if len(wrt) == 1 else \
        f"a tuple of {len(wrt)} arrays ({', '.join('d' + w for w in wrt)}, in that order)"
    got = type(returned).__name__ + (f" of {len(returned)}" if isinstance(returned, (tuple, list)) else "")
    raise WrongGradients(f"{who} {how} {got}; expected {expected}")


def _float64(array, what):
    if array.dtype.kind == "f" and array.dtype.itemsize < 8:
        raise CannotCheck(f"{what}: finite differences need float64; build it with "
                          "dtype=\"float64\" (or convert its parameters with .astype(np.float64))")
