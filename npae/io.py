"""Saving and loading models: one ``.npz`` file, JSON metadata, no pickle.

File format (version 1): a NumPy ``.npz`` archive holding

* ``__npae__`` — a 0-d unicode array with JSON metadata: ``format: "npae"``,
  ``version``, the model class and its constructor arguments, the parameter
  names, and optionally the optimiser's hyper-parameters and step count and a
  training position (epoch, batch, generator state, history);
* ``param/<name>`` — each parameter array;
* ``optim/<moment>/<name>`` — the optimiser's per-parameter state, when saved;
* ``train/order`` — the current epoch's permutation, in checkpoints.

Guarantees: files are written atomically (a temporary file in the same
folder, flushed to disk, then ``os.replace``), so a crash mid-save leaves the
old file intact; files are read with ``allow_pickle=False``, so loading
never executes anything; anything that is not a complete, known-version npae
file is refused with a ``ValueError`` that says what is wrong, and a refused
load changes nothing.
"""

import json
import os
import tempfile
import zipfile

import numpy as np

from .autoencoder import Autoencoder
from .optim import optimizer_from_state
from .vae import VAE

FORMAT, VERSION = "npae", 1
MODELS = {"Autoencoder": Autoencoder, "VAE": VAE}
BIT_GENERATORS = {"PCG64": np.random.PCG64, "PCG64DXSM": np.random.PCG64DXSM,
                  "Philox": np.random.Philox, "SFC64": np.random.SFC64, "MT19937": np.random.MT19937}


def save(model, path, *, optimizer=None):
    """Write ``model`` (and ``optimizer``'s state, if given) to ``path`` atomically."""
    _write(path, model, optimizer, training=None)


def load(path, *, return_optimizer=False):
    """Read a model written by :func:`save`; with ``return_optimizer``, ``(model, optimizer)``
    (``optimizer`` is None when the file holds none)."""
    meta, arrays = _read(path)
    model = _build(meta, arrays, path)
    optimizer = _optimizer(meta, arrays, path)
    model.history = meta.get("history", {})
    return (model, optimizer) if return_optimizer else model


def save_checkpoint(path, model, optimizer, *, position, history):
    """A model file plus what resuming needs: optimiser, generator state, position, history."""
    training = {"epoch": int(position["epoch"]), "batch": int(position["batch"]),
                "loss_sum": float(position["loss_sum"]),
                "rng": model.rng.bit_generator.state, "history": history}
    _write(path, model, optimizer, training=training, order=position["order"])


def load_checkpoint(path, model, optimizer):
    """Restore ``model`` and ``optimizer`` in place from a checkpoint of the same model.

    Everything is read and checked before anything is changed.
    Returns ``{"position": {...}, "history": {...}}``.
    """
    meta, arrays = _read(path)
    training = meta.get("training")
    if training is None:
        raise ValueError(f"{path}: this is a model file, not a checkpoint (no training state)")
    if meta["model"] != type(model).__name__ or meta["config"] != _json_config(model):
        raise ValueError(f"{path}: the checkpoint was written by a different model "
                         f"({meta['model']} {meta['config']}), not {model!r}")
    saved = _params(meta, arrays, model, path)
    saved_optimizer = _optimizer(meta, arrays, path)
    if saved_optimizer is None or type(saved_optimizer) is not type(optimizer):
        raise ValueError(f"{path}: the checkpoint's optimiser ({saved_optimizer!r}) "
                         f"is not a {type(optimizer).__name__}")
    rng = _generator(training["rng"], path)
    order = arrays.get("train/order")
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
    path = os.fspath(path)
    params = model.params
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
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".npae-", suffix=".tmp", dir=folder)
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


# -- reading -----------------------------------------------------------------
def _read(path):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no model file at {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError("it is a single .npy array, not an .npz archive")
            if "__npae__" not in archive.files:
                raise ValueError("it has no npae metadata")
            arrays = {name: archive[name] for name in archive.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise ValueError(f"{path}: refused, it holds object arrays (npae never unpickles)") from None
        raise ValueError(f"{path} is not an npae model file: {exc}") from None
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as exc:
        raise ValueError(f"{path} is not an npae model file, or is truncated or corrupt: {exc}") from None
    try:
        meta = json.loads(str(arrays.pop("__npae__")))
    except (json.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"{path}: its npae metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not an npae model file (format {meta.get('format')!r})")
    if meta.get("version") != VERSION:
        raise ValueError(f"{path} has npae file format version {meta.get('version')!r}; "
                         f"this npae reads version {VERSION}")
    for name, value in arrays.items():
        if value.dtype.kind not in "biuf":
            raise ValueError(f"{path}: array {name!r} has dtype {value.dtype}, not numbers")
    return meta, arrays


def _build(meta, arrays, path):
    cls = MODELS.get(meta.get("model"))
    if cls is None:
        raise ValueError(f"{path}: unknown model class {meta.get('model')!r}")
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


def _optimizer(meta, arrays, path):
    state = meta.get("optimizer")
    if state is None:
        return None
    state = dict(state)
    for key in arrays:
        if key.startswith("optim/"):
            _, moment, name = key.split("/", 2)
            state.setdefault(moment, {})[name] = arrays[key]
    try:
        return optimizer_from_state(state)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: its optimiser state is invalid: {exc}") from None


def _generator(state, path):
    try:
        bit_generator = BIT_GENERATORS[state["bit_generator"]]()
        bit_generator.state = state
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: its generator state is invalid: {exc}") from None
    return np.random.Generator(bit_generator)
