"""Model files: ``npae.save`` and ``npae.load``, and the one table of model classes.

A model file is one ``.npz`` archive (written by :mod:`npae.files.atomic`, read by :mod:`npae.files.archive`): the parameters as
``param/<name>`` arrays and a JSON record (:mod:`npae.files.model_records`) of the
format version (2; version 1 files load too), the model class and its
constructor arguments, and what fitting learned (width, dtype, column
names, history) — plus, optionally, the optimiser's state (``optim/…``).
A checkpoint written by ``fit(checkpoint=...)`` is a model file with a
training record as well, and loads as the model it holds. A model trained on
standard-scaled columns (``npae train --scale standard``) records that scaling too
(:func:`scaling_of` reads it), so new rows are scaled the same way; one trained on
chosen columns of a table (``--drop``, ``--labels``) records the choice
(:func:`columns_of`). A model file's
name ends in ``.npz``, as NumPy's archives do: ``save`` refuses any other name.

**Loading costs memory in proportion to the model the file declares, never
to what a compressed stream claims.**  The metadata is read first, alone
(at most 16 MB); the configuration is checked and the parameter shapes it
implies are computed without building anything; every member's declared
shape and dtype is compared with them before any array is allocated; each
member is read up to its declared size and no further, and a member that
claims more than deflate could have produced from its compressed bytes is
refused unread.  Unknown members, duplicate names and unknown metadata keys
are refused too.  Anything wrong is a ``ValueError`` naming the file, and a
refused load changes nothing.
"""

import math
import os

import numpy as np

from .. import checks
from ..files import atomic, model_records
from ..data.scaling import Standard
from ..data.tables import Choice
from ..files.archive import Archive, FileRefused
from ..nn import optim
from ..training.state import is_history
from .autoencoder import Autoencoder
from .vae import VAE

MODELS = {"Autoencoder": Autoencoder, "VAE": VAE}
META_KEYS = {"format", "version", "model", "config", "fitted", "params", "history", "optimizer",
             "training", "scaling", "columns"}
FITTED_KEYS = {"n_features_in", "dtype", "feature_names_in", "history"}
MAX_SIZE = 2**31       # no layer of a model npae saves is wider
MAX_BYTES = 2**40      # nor holds a terabyte of parameters


def save(model, path, *, optimizer=None, scaling=None, columns=None):
    """Write ``model`` (and ``optimizer``'s state, the :class:`npae.data.scaling.Standard`
    ``scaling`` of its input columns and the :class:`npae.data.tables.Choice` of
    ``columns`` it was trained on, if given) to ``path`` atomically.

    A symbolic link at ``path`` is written through: the link stays, its target
    gets the model.  ValueError for a name that does not end in ``.npz``, a path
    that cannot be a file, a model whose parameters are not finite, or an
    optimiser npae cannot record.
    """
    if not isinstance(model, tuple(MODELS.values())):
        raise TypeError(f"model must be an npae Autoencoder or VAE, got {type(model).__name__}")
    path = checks.output_file("path", path)
    if not path.lower().endswith(".npz"):
        raise ValueError(f"path must end in .npz (a model file is an .npz archive), got "
                         f"{os.path.basename(path)!r}")
    meta, arrays = model_records.model_record(model)
    if scaling is not None:
        if len(scaling.mean) != model.n_features_in_:
            raise ValueError(f"scaling has {len(scaling.mean)} columns, the model "
                             f"{model.n_features_in_}")
        meta["scaling"] = scaling.record()
    if columns is not None:
        meta["columns"] = columns.record()
    if optimizer is not None:
        checks.callable_with("optimizer", optimizer, "state_dict")
        numbers, moments = optim.to_record(optimizer)
        meta["optimizer"] = numbers
        arrays.update({f"optim/{key}": value for key, value in moments.items()})
    atomic.write_archive(path, arrays, meta)


def load(path, *, return_optimizer=False):
    """Read a model written by :func:`save` (or a checkpoint); with ``return_optimizer``,
    ``(model, optimizer)``, the optimiser None when the file holds none."""
    path = checks.path("path", path)
    with Archive(path) as archive:
        meta = archive.metadata()
        model, fitted, shapes = _declared_model(meta, path)
        _check_members(archive, meta, shapes, fitted["dtype"], path)
        params = {name: archive.array(f"param/{name}", shape, fitted["dtype"])
                  for name, shape in shapes.items()}
        for name, value in params.items():
            if not np.isfinite(value).all():
                raise ValueError(f"{path}: parameter {name!r} holds NaN or infinity")
        optimizer = None
        if "optimizer" in meta:
            moments = {n[len("optim/"):] for n in archive.names if n.startswith("optim/")}
            try:
                optimizer = optim.from_record(
                    meta["optimizer"], moments,
                    lambda key, shape, dtype: archive.array(f"optim/{key}", shape, dtype), params)
            except FileRefused:
                raise
            except ValueError as exc:
                raise ValueError(f"{path}: {exc}") from None
    _restore(model, params, fitted)
    return (model, optimizer) if return_optimizer else model


def scaling_of(path):
    """The :class:`npae.data.scaling.Standard` scaling the model file at ``path`` records, or
    None (files written before scaling was recorded have none)."""
    path = checks.path("path", path)
    with Archive(path) as archive:
        meta = archive.metadata()
    _, fitted, _ = _declared_model(meta, path)
    if "scaling" not in meta:
        return None
    return Standard.from_record(meta["scaling"], fitted["n_features_in"])


def columns_of(path):
    """The :class:`npae.data.tables.Choice` of columns the model file at ``path`` records, or
    None (a model trained on all the columns, or a file written before choices were recorded)."""
    path = checks.path("path", path)
    with Archive(path) as archive:
        meta = archive.metadata()
    _declared_model(meta, path)
    return Choice.from_record(meta["columns"]) if "columns" in meta else None


def _restore(model, params, fitted):
    """Give ``model`` what the file says it learned: a network of the file's width and dtype,
    the stored parameters copied in, the column names and the history."""
    model.start_from_seed(fitted["n_features_in"], 0, fitted["dtype"])
    for name, p in model.params.items():
        p[...] = params[name]
    names = fitted["feature_names_in"]
    model.set_feature_names(None if names is None else np.asarray(names, dtype=object))
    model.history_ = fitted["history"]
    model.n_iter_ = len(model.history_.get("loss", []))


def _declared_model(meta, path):
    """The (unbuilt) model, its fitted record and its parameter shapes, from the metadata alone."""
    def need(ok, what):
        if not ok:
            raise ValueError(f"{path}: its npae metadata is invalid: {what}")

    if meta.get("format") != model_records.FORMAT:
        raise ValueError(f"{path} is not an npae model file (format {meta.get('format')!r})")
    version = meta.get("version")
    if type(version) is not int or version not in model_records.READABLE_VERSIONS:
        raise ValueError(f"{path} has npae file format version {version!r}; this npae reads "
                         f"versions {', '.join(map(str, model_records.READABLE_VERSIONS))}")
    unknown = set(meta) - META_KEYS
    need(not unknown, f"unknown keys {checks.some(unknown)}")
    need(isinstance(meta.get("model"), str) and meta["model"] in MODELS,
         f"'model' must be one of {sorted(MODELS)}, got {meta.get('model')!r}")
    cls, config = MODELS[meta["model"]], meta.get("config")
    need(isinstance(config, dict), "'config' must be an object")
    valid = set(cls.parameter_names())
    need(set(config) <= valid, f"'config' has unknown arguments {checks.some(set(config) - valid)}")
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
    config.setdefault("init", "he-glorot")  # files from before init= were all made this way
    if version == 1:  # a version-1 file: the width and dtype are in the configuration
        fitted = {"n_features_in": config.get("n_features"), "dtype": config.get("dtype"),
                  "feature_names_in": None, "history": meta.get("history", {})}
    else:
        fitted = meta.get("fitted")
        need(isinstance(fitted, dict) and set(fitted) == FITTED_KEYS,
             f"'fitted' must hold {sorted(FITTED_KEYS)}")
    width = fitted["n_features_in"]
    need(type(width) is int and 1 <= width <= MAX_SIZE, "the width must be an int in [1, 2**31]")
    need(fitted["dtype"] in checks.FLOAT_DTYPES, "the dtype must be float32 or float64")
    need(is_history(fitted["history"]), "'history' must map names to lists of numbers")
    names = fitted["feature_names_in"]
    need(names is None or (isinstance(names, list) and len(names) == width
                           and all(isinstance(n, str) for n in names)),
         "'feature_names_in' must be None or one string per feature")
    model = cls(**config)
    try:
        dtype = checks.float_dtype("dtype", config.get("dtype", fitted["dtype"]), allow_none=True)
        if dtype is not None and dtype.name != fitted["dtype"]:
            raise ValueError(f"dtype={dtype.name!r} but the parameters are {fitted['dtype']}")
        shapes = model.parameter_shapes(width)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: its model configuration is invalid: {exc}") from None
    sizes = [s for shape in shapes.values() for s in shape]
    total = sum(math.prod(shape) for shape in shapes.values()) * np.dtype(fitted["dtype"]).itemsize
    need(max(sizes) <= MAX_SIZE and total <= MAX_BYTES,
         f"it declares a model of {atomic.readable_size(total)} (layers up to {max(sizes)} wide)")
    need(meta.get("params") == list(shapes),
         f"its parameter list {meta.get('params')!r} is not this model's {list(shapes)}")
    try:
        if "scaling" in meta:
            Standard.from_record(meta["scaling"], width)
        if "columns" in meta:
            Choice.from_record(meta["columns"])
    except ValueError as exc:
        need(False, str(exc))
    return model, fitted, shapes


def _check_members(archive, meta, shapes, dtype, path):
    """Every member is expected, and every parameter's header declares its shape and dtype."""
    expected = {f"param/{name}" for name in shapes}
    if "optimizer" in meta:
        expected |= {n for n in archive.names if n.startswith("optim/")}
    if "training" in meta:
        expected |= {f"best/{name}" for name in shapes} | {"train/plan", "train/order"}
    unknown = archive.names - expected
    if unknown:
        raise ValueError(f"{path}: unexpected members {checks.some(unknown)}")
    for name, shape in shapes.items():
        found_shape, found_dtype = archive.array_header(f"param/{name}")
        if found_shape != shape or found_dtype != np.dtype(dtype):
            raise ValueError(f"{path}: parameter {name!r} is {found_dtype.name}{found_shape}, "
                             f"the model needs {np.dtype(dtype).name}{shape}")
