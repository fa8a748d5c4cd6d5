"""Saving and loading models: one ``.npz`` file, JSON metadata, no pickle.

File format (version 1): a NumPy ``.npz`` archive holding

* ``__npae__`` — a 0-d unicode array with JSON metadata: ``format: "npae"``,
  ``version``, the model class and its constructor arguments, the parameter
  names, and optionally the optimiser's hyper-parameters and step count and a
  training position (epoch, batch, generator state, history, and what the
  position refers to: number of rows, batch size, shuffling, validation);
* ``param/<name>`` — each parameter array;
* ``optim/<moment>/<name>`` — the optimiser's per-parameter state, when saved;
* ``train/order`` — the current epoch's permutation, in checkpoints.

Guarantees: files are written atomically (a temporary file in the same
folder, flushed to disk, then ``os.replace``), so a crash mid-save leaves the
old file intact; a file that is not a zip archive is refused before NumPy
sees it, and members are read with ``allow_pickle=False``, so loading never
executes anything; anything that is not a complete, known-version npae file
(metadata, parameters and optimiser state all checked) is refused with a
``ValueError`` that says what is wrong, and a refused load changes nothing.
"""

import json
import math
import os
import secrets

import numpy as np

from .autoencoder import Autoencoder
from .optim import OPTIMIZERS
from .vae import VAE

FORMAT, VERSION = "npae", 1
MODELS = {"Autoencoder": Autoencoder, "VAE": VAE}
BIT_GENERATORS = {"PCG64": np.random.PCG64, "PCG64DXSM": np.random.PCG64DXSM,
                  "Philox": np.random.Philox, "SFC64": np.random.SFC64, "MT19937": np.random.MT19937}
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip archive with members / an empty one
NPY_MAGIC = b"\x93NUMPY"


def save(model, path, *, optimizer=None):
    """Write ``model`` (and ``optimizer``'s state, if given) to ``path`` atomically."""
    _write(path, model, optimizer, training=None)


def load(path, *, return_optimizer=False):
    """Read a model written by :func:`save`; with ``return_optimizer``, ``(model, optimizer)``
    (``optimizer`` is None when the file holds none)."""
    meta, arrays = _read(path)
    model = _build(meta, arrays, path)
    optimizer = _optimizer(meta, arrays, model.params, path)
    model.history = meta.get("history", {})
    return (model, optimizer) if return_optimizer else model


def save_checkpoint(path, model, optimizer, *, position, history, setup=None):
    """A model file plus what resuming needs: optimiser, generator state, position, history.

    ``setup`` records what the position means (``n_samples``, ``batch_size``,
    ``shuffle``, ``validation``); :func:`load_checkpoint` compares it.
    """
    training = {"epoch": int(position["epoch"]), "batch": int(position["batch"]),
                "loss_sum": float(position["loss_sum"]),
                "rng": model.rng.bit_generator.state, "history": history, **(setup or {})}
    _write(path, model, optimizer, training=training, order=position["order"])


def load_checkpoint(path, model, optimizer, *, setup=None):
    """Restore ``model`` and ``optimizer`` in place from a checkpoint of the same model.

    With ``setup`` (as given to :func:`save_checkpoint`), the checkpoint must
    have been written by a run over the same number of rows, batch size,
    shuffling and validation.  Everything is read and checked before
    anything is changed.  Returns ``{"position": {...}, "history": {...}}``.
    """
    meta, arrays = _read(path)
    training = meta.get("training")
    if training is None:
        raise ValueError(f"{path}: this is a model file, not a checkpoint (no training state)")
    if meta["model"] != type(model).__name__:
        raise ValueError(f"{path}: the checkpoint holds model class {meta['model']!r}, "
                         f"this model's class is {type(model).__name__!r}")
    config = _json_config(model)
    differences = [f"{key}={meta['config'].get(key)!r} there, {config.get(key)!r} here"
                   for key in sorted(set(config) | set(meta["config"]))
                   if key != "seed" and meta["config"].get(key) != config.get(key)]
    if differences:  # the seed may differ: the checkpoint's weights and generator replace its work
        raise ValueError(f"{path}: the checkpoint was written by a different model: "
                         + "; ".join(differences))
    saved = _params(meta, arrays, model, path)
    saved_optimizer = _optimizer(meta, arrays, model.params, path)
    if saved_optimizer is None or type(saved_optimizer) is not type(optimizer):
        raise ValueError(f"{path}: the checkpoint's optimiser ({saved_optimizer!r}) "
                         f"is not a {type(optimizer).__name__}")
    rng = _generator(training["rng"], path)
    order = arrays.get("train/order")
    if setup is not None:
        _check_position(training, order, setup, path)
    for name, p in model.params.items():
        p[...] = saved[name]
    optimizer.load_state_dict(saved_optimizer.state_dict())
    model.rng = rng
    position = {"epoch": training["epoch"], "batch": training["batch"],
                "loss_sum": training["loss_sum"],
                "order": None if order is None else order.astype(np.intp)}
    return {"position": position, "history": {k: list(v) for k, v in training["history"].items()}}


# -- writing -----------------------------------------------------------------
def _json_config(model):
    return json.loads(json.dumps(model.get_params()))


def _write(path, model, optimizer, *, training, order=None):
    if not isinstance(model, tuple(MODELS.values())):
        raise TypeError(f"model must be an npae Autoencoder or VAE, got {type(model).__name__}")
    if optimizer is not None and not callable(getattr(optimizer, "state_dict", None)):
        raise TypeError(f"optimizer must be an npae optimiser (with state_dict()), got {optimizer!r}")
    path, folder = _output_path(path)
    params = model.params
    for name, p in params.items():
        if not np.isfinite(p).all():
            raise ValueError(f"refusing to save: parameter {name!r} holds NaN or infinity")
    meta = {"format": FORMAT, "version": VERSION, "model": type(model).__name__,
            "config": _json_config(model), "params": list(params),
            "history": getattr(model, "history", {})}
    arrays = {f"param/{k}": v for k, v in params.items()}
    if optimizer is not None:
        state = optimizer.state_dict()
        meta["optimizer"] = {k: v for k, v in state.items() if not isinstance(v, dict)}
        for moment, values in state.items():
            if isinstance(values, dict):
                arrays.update({f"optim/{moment}/{k}": v for k, v in values.items()})
    if training is not None:
        meta["training"] = training
        if order is not None:
            arrays["train/order"] = np.asarray(order, dtype=np.int64)
    arrays["__npae__"] = np.array(json.dumps(meta))
    fd, tmp = _create_temporary(folder, os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _sync_folder(folder)


def _output_path(path):
    """``path`` as a str, with the folder it goes into; refused if it cannot be a file there."""
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"path must be a file path, got {type(path).__name__}") from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot save to {path}: it is a folder")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save to {path}: the folder {folder} does not exist")
    return path, folder


def _create_temporary(folder, name):
    """A new, empty file beside the target, opened for writing: ``(fd, path)``.

    Created with mode 0o666 so the user's umask applies, as for any new file
    (``tempfile.mkstemp`` would make it private, 0o600).
    """
    while True:
        tmp = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                           0o666), tmp
        except FileExistsError:
            continue


def _sync_folder(folder):
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- reading -----------------------------------------------------------------
def _read(path):
    """The metadata (checked) and the arrays of an npae file; ValueError for anything else.

    The first bytes decide what the file is before NumPy opens it, so a file
    that is neither a zip archive nor a .npy array never reaches NumPy's
    pickle fallback; members are read with ``allow_pickle=False``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no model file at {path}")
    with open(path, "rb") as f:
        magic = f.read(len(NPY_MAGIC))
    if magic.startswith(NPY_MAGIC):
        raise ValueError(f"{path} is not an npae model file: it is a single .npy array, "
                         "not an .npz archive")
    if magic[:4] not in ZIP_MAGIC:
        what = "it is empty" if not magic else "it is not an .npz (zip) archive"
        raise ValueError(f"{path} is not an npae model file: {what}")
    corrupt = f"{path} is not an npae model file, or is truncated or corrupt"
    arrays = {}
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as archive:
            if "__npae__" not in archive.files:
                raise _Refused(f"{path} is not an npae model file: it has no npae metadata "
                               f"(an .npz written by something else?)")
            for name in archive.files:
                try:
                    arrays[name] = archive[name]
                except ValueError as exc:
                    if "object" in str(exc).lower() or "pickle" in str(exc).lower():
                        raise _Refused(f"{path}: refused, array {name!r} holds Python objects "
                                       "(npae never unpickles)") from None
                    raise
    except _Refused as exc:
        raise ValueError(str(exc)) from None
    except MemoryError:
        raise
    except Exception as exc:  # zip, zlib, header and EOF errors: nothing was executed
        raise ValueError(f"{corrupt} ({type(exc).__name__}: {exc})") from None
    for name, value in arrays.items():
        if not isinstance(value, np.ndarray):
            raise ValueError(f"{path}: member {name!r} is not a NumPy array")
    meta = _metadata(arrays.pop("__npae__"), path)
    for name, value in arrays.items():
        if value.dtype.kind not in "biuf":
            raise ValueError(f"{path}: array {name!r} has dtype {value.dtype}, not numbers")
    return meta, arrays


class _Refused(Exception):
    """A file refused for a reason already worded for the user."""


def _metadata(stored, path):
    """The JSON metadata, checked field by field."""
    if stored.dtype.kind != "U" or stored.ndim != 0:
        raise ValueError(f"{path}: its npae metadata is not a JSON string")
    try:
        meta = json.loads(stored.item())
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{path}: its npae metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"{path} is not an npae model file (format {found!r})")
    version = meta.get("version")
    if type(version) is not int or version != VERSION:
        raise ValueError(f"{path} has npae file format version {version!r}; "
                         f"this npae reads version {VERSION}")

    def need(ok, what):
        if not ok:
            raise ValueError(f"{path}: its npae metadata is invalid: {what}")

    need(isinstance(meta.get("model"), str) and meta["model"] in MODELS,
         f"'model' must be one of {sorted(MODELS)}, "
                                      f"got {meta.get('model')!r}")
    need(isinstance(meta.get("config"), dict), "'config' must be an object")
    need(_is_history(meta.get("history", {})), "'history' must map names to lists of numbers")
    need(isinstance(meta.get("optimizer", {}), dict), "'optimizer' must be an object")
    training = meta.get("training")
    if training is not None:
        need(isinstance(training, dict), "'training' must be an object")
        for key in ("epoch", "batch"):
            need(_is_int(training.get(key)) and training[key] >= 0,
                 f"training {key!r} must be a non-negative int")
        need(_is_number(training.get("loss_sum")) and math.isfinite(training["loss_sum"]),
             "training 'loss_sum' must be a finite number")
        need(isinstance(training.get("rng"), dict), "training 'rng' must be a generator state")
        need(_is_history(training.get("history")), "training 'history' must map names to lists")
    return meta


def _is_int(value):
    return type(value) is int


def _is_number(value):
    return type(value) in (int, float)


def _is_history(history):
    return isinstance(history, dict) and all(
        isinstance(values, list) and all(_is_number(v) for v in values) for values in history.values())


def _build(meta, arrays, path):
    cls = MODELS[meta["model"]]
    try:
        model = cls(**meta["config"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: its model configuration is invalid: {exc}") from None
    saved = _params(meta, arrays, model, path)
    for name, p in model.params.items():
        p[...] = saved[name]
    return model


def _params(meta, arrays, model, path):
    saved = {}
    for name, p in model.params.items():
        value = arrays.get(f"param/{name}")
        if value is None:
            raise ValueError(f"{path}: parameter {name!r} is missing")
        if value.shape != p.shape or value.dtype != p.dtype:
            raise ValueError(f"{path}: parameter {name!r} is {value.dtype}{value.shape}, "
                             f"the model needs {p.dtype}{p.shape}")
        if not np.isfinite(value).all():
            raise ValueError(f"{path}: parameter {name!r} holds NaN or infinity")
        saved[name] = value
    return saved


def _optimizer(meta, arrays, params, path):
    """The optimiser the file describes, its hyper-parameters and moments checked, or None."""
    state = meta.get("optimizer")
    if state is None:
        return None
    cls = OPTIMIZERS.get(state.get("name")) if isinstance(state.get("name"), str) else None
    if cls is None:
        raise ValueError(f"{path}: unknown optimiser {state.get('name')!r}; "
                         f"valid: {', '.join(OPTIMIZERS)}")
    hyper = {k: v for k, v in state.items() if k not in ("name", "t")}
    try:
        optimizer = cls(**hyper)  # the constructor checks every hyper-parameter
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: its optimiser state is invalid: {exc}") from None
    full = optimizer.state_dict()
    if "t" in full:
        if not (_is_int(state.get("t")) and state["t"] >= 0):
            raise ValueError(f"{path}: its optimiser step count must be a non-negative int, "
                             f"got {state.get('t')!r}")
        full["t"] = state["t"]
    moments = [key for key, value in full.items() if isinstance(value, dict)]
    for key, value in arrays.items():
        if not key.startswith("optim/"):
            continue
        moment, _, name = key[len("optim/"):].partition("/")
        if moment not in moments or name not in params:
            raise ValueError(f"{path}: unexpected optimiser state {key!r} (moments: {moments}, "
                             f"for the model's parameters)")
        p = params[name]
        if value.shape != p.shape or value.dtype != p.dtype or not np.isfinite(value).all():
            raise ValueError(f"{path}: optimiser state {key!r} must be finite {p.dtype}{p.shape}, "
                             f"got {value.dtype}{value.shape}")
        if moment == "v" and (value < 0).any():
            raise ValueError(f"{path}: optimiser state {key!r} (a second moment) is negative")
        full[moment][name] = value
    optimizer.load_state_dict(full)
    return optimizer


def _generator(state, path):
    try:
        bit_generator = BIT_GENERATORS[state["bit_generator"]]()
        bit_generator.state = state
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{path}: its generator state is invalid: {exc}") from None
    return np.random.Generator(bit_generator)


def _check_position(training, order, setup, path):
    """The checkpoint's position must mean the same thing in the run that resumes it."""
    for key, value in setup.items():
        if key in training and training[key] != value:
            raise ValueError(f"{path}: the checkpoint was written with {key}={training[key]!r}, "
                             f"but this run has {key}={value!r}; resume with the same data and "
                             f"settings")
    n, batch_size = setup["n_samples"], setup["batch_size"]
    if training["batch"] >= math.ceil(n / batch_size):
        raise ValueError(f"{path}: its position (batch {training['batch']}) is past the end of an epoch")
    if len(training["history"].get("loss", [])) != training["epoch"]:
        raise ValueError(f"{path}: its history does not have one loss per completed epoch")
    if ("val_loss" in training["history"]) != setup["validation"]:
        raise ValueError(f"{path}: the checkpoint was written "
                         f"{'with' if not setup['validation'] else 'without'} validation_data; "
                         f"resume with the same")
    if order is None:
        if setup["shuffle"] and training["batch"] > 0:
            raise ValueError(f"{path}: the checkpoint stops mid-epoch but holds no permutation")
        return
    if not setup["shuffle"]:
        raise ValueError(f"{path}: the checkpoint holds a permutation, but this run has shuffle=False")
    if (order.ndim != 1 or order.dtype.kind not in "iu" or len(order) != n or order.min() < 0
            or order.max() >= n or not (np.bincount(order, minlength=n) == 1).all()):
        raise ValueError(f"{path}: its permutation is not a permutation of the {n} rows")
