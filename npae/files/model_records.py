"""A model as a record for a file: JSON metadata and named arrays, read from its public face.

The record of a fitted model is ``(meta, arrays)``: ``meta`` holds the
format's name and version, the model's class name, its constructor
arguments (``get_params``) and what fitting learned besides the weights
(``n_features_in_``, the dtype, ``feature_names_in_``, ``history_``);
``arrays`` maps ``param/<name>`` to each parameter.  Model files
(:mod:`npae.models.saving`) and checkpoints (:mod:`npae.training.checkpoints`) both start from it.
"""

import math

import numpy as np

FORMAT, VERSION = "npae", 2
READABLE_VERSIONS = (1, 2)


def model_record(model):
    """``(meta, arrays)`` of a fitted ``model``; ValueError for a parameter that is not finite."""
    params = model.params
    for name, p in params.items():
        if not np.isfinite(p).all():
            raise ValueError(f"refusing to save: parameter {name!r} holds NaN or infinity")
    names = getattr(model, "feature_names_in_", None)
    meta = {"format": FORMAT, "version": VERSION, "model": type(model).__name__,
            "config": json_ready(model.get_params()),
            "fitted": {"n_features_in": int(model.n_features_in_), "dtype": model.dtype_.name,
                       "feature_names_in": None if names is None else [str(n) for n in names],
                       "history": model.history_},
            "params": list(params)}
    return meta, {f"param/{name}": p for name, p in params.items()}


def check_same_model(model, meta):
    """ValueError unless ``meta`` describes ``model``'s network (its class and architecture)."""
    if meta.get("format") != FORMAT or meta.get("version") not in READABLE_VERSIONS:
        raise ValueError(f"it is not an npae file of a version this npae reads "
                         f"({', '.join(map(str, READABLE_VERSIONS))})")
    if meta.get("model") != type(model).__name__:
        raise ValueError(f"it holds a {meta.get('model')!r}, this model is a {type(model).__name__}")
    config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    mine = json_ready(model.architecture())
    different = [f"{k}={config.get(k)!r} there, {mine[k]!r} here" for k in sorted(mine)
                 if k != "n_features" and config.get(k) != mine[k]]
    if different:
        raise ValueError("it was written by a different model: " + "; ".join(different))


def json_ready(value):
    """Constructor arguments as JSON: tuples become lists, NumPy scalars Python numbers,
    non-finite floats the strings "inf" / "nan", a Generator seed None."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        return json_ready(value.item())
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, (np.random.Generator, np.random.SeedSequence)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
