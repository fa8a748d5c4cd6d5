"""Every argument check in npae, and the generators drawn from a seed.

One policy everywhere: a value of the wrong *type* raises ``TypeError``, a
value of the right type but out of range raises ``ValueError``, and the
message starts with the argument's name.  The checks return the value in
the form the caller uses (``int``, ``float``, a tuple, a dtype), so a caller
writes ``self.k = checks.positive_int("k", k)`` once.

Data checks follow scikit-learn's wording, which its estimator checks look
for ("Reshape your data", "0 sample(s)", "Complex data not supported",
"X has 3 features, but VAE is expecting 4 features as input"), with npae's
own hints added.
"""

import math
import numbers
import os

import numpy as np

FLOAT_DTYPES = ("float32", "float64")
SCAN_ROWS = 8192  # rows per chunk when a large array is scanned for its range


# -- numbers and names -------------------------------------------------------
def integer(name, value):
    """``value`` as an int; bools and non-integers are a TypeError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {_shown(value)}")
    return int(value)


def positive_int(name, value):
    """An int ≥ 1."""
    value = integer(name, value)
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return value


def non_negative_int(name, value):
    """An int ≥ 0."""
    value = integer(name, value)
    if value < 0:
        raise ValueError(f"{name} must be an int ≥ 0, got {value}")
    return value


def n_jobs(name, value):
    """None, or an int that is not 0, in scikit-learn's meaning (-1 every core, -2 all but one,
    …); floats (even ``-1.0``) are a TypeError, 0 a ValueError."""
    if value is None:
        return None
    value = integer(name, value)
    if value == 0:
        raise ValueError(f"{name} must be None, an int ≥ 1, or -1 for every core (-2 for all "
                         "but one, …), got 0")
    return value


def number(name, value, *, low=-math.inf, high=math.inf, low_open=False, high_open=False):
    """A real number in the interval from ``low`` to ``high``, as a float.

    The interval is closed unless ``low_open`` / ``high_open``; an infinite
    bound is always open, so NaN and ±inf are refused unless the interval
    says otherwise.  ``number("beta", b, low=0)`` accepts [0, ∞).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {_shown(value)}")
    value = float(value)
    low_open, high_open = low_open or low == -math.inf, high_open or high == math.inf
    inside = ((value > low if low_open else value >= low)
              and (value < high if high_open else value <= high))
    if not inside:  # NaN is never inside
        interval = (f"{'(' if low_open else '['}{_bound(low)}, "
                    f"{_bound(high)}{')' if high_open else ']'}")
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return value


def _bound(b):
    return "inf" if b == math.inf else "-inf" if b == -math.inf else f"{b:g}"


def boolean(name, value):
    """True or False (NumPy's bools too)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {_shown(value)}")
    return bool(value)


def one_of(name, value, choices):
    """``value`` if it is one of ``choices`` (compared by equality; None may be a choice)."""
    if value is not None and not isinstance(value, (str, int, float)):
        raise TypeError(f"{name} must be one of {_listed(choices)}, got {_shown(value)}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {_listed(choices)}, got {value!r}")
    return value


def sizes(name, value, *, allow_empty=False):
    """Layer sizes as a tuple of positive ints; one int ``k`` means ``(k,)``."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a tuple of positive ints, got {_shown(value)}")
    value = tuple(value)
    if not value and not allow_empty:
        raise ValueError(f"{name} must name at least one layer size, e.g. {name}=(64,)")
    for size in value:
        if isinstance(size, bool) or not isinstance(size, numbers.Integral):
            raise TypeError(f"{name} must be a tuple of positive ints, got {_shown(value)}")
        if size < 1:
            raise ValueError(f"{name} must be a tuple of positive ints, got {value!r}")
    return tuple(int(size) for size in value)


def float_dtype(name, value, *, allow_none=False):
    """``numpy.dtype`` float32 or float64 (or None when ``allow_none``)."""
    if value is None and allow_none:
        return None
    try:
        dtype = np.dtype(value) if value is not None else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.name not in FLOAT_DTYPES:
        choices = FLOAT_DTYPES + ((None,) if allow_none else ())
        raise ValueError(f"{name} must be one of {_listed(choices)}, got {value!r}")
    return dtype


def callable_with(name, value, method):
    """An object with a callable ``method`` (e.g. an optimiser's ``step``)."""
    if not callable(getattr(value, method, None)):
        raise TypeError(f"{name} must have a {method}() method, got {_shown(value)}")
    return value


# -- randomness ----------------------------------------------------------------
def generators(seed, n, *, name="seed"):
    """``n`` independent ``numpy.random.Generator`` streams from one seed.

    ``seed`` is an int ≥ 0 (the same streams every time), None (fresh
    entropy), a ``SeedSequence`` or a ``Generator`` (whose own stream then
    seeds the children, so it advances).
    """
    if isinstance(seed, np.random.Generator):
        sequence = np.random.SeedSequence(seed.integers(2**63, size=4).tolist())
    elif isinstance(seed, np.random.SeedSequence):
        sequence = seed
    else:
        sequence = np.random.SeedSequence(
            _seed_int(seed, name, "None, a numpy.random.Generator or a SeedSequence"))
    return [np.random.default_rng(child) for child in sequence.spawn(n)]


def generator(seed, *, name="seed"):
    """A ``numpy.random.Generator`` from an int ≥ 0 or None; a Generator is used as it is."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(_seed_int(seed, name, "None or a numpy.random.Generator"))


def _seed_int(seed, name, others):
    """An int seed ≥ 0 or None: TypeError for another type, ValueError for a negative int."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be an int ≥ 0, {others}, got {_shown(seed)}")
    if seed < 0:
        raise ValueError(f"{name} must be an int ≥ 0, got {seed}")
    return int(seed)


BIT_GENERATORS = {"PCG64": np.random.PCG64, "PCG64DXSM": np.random.PCG64DXSM,
                  "Philox": np.random.Philox, "SFC64": np.random.SFC64, "MT19937": np.random.MT19937}


def generator_from_state(state, *, name="generator state"):
    """The ``Generator`` whose ``bit_generator.state`` was ``state`` (as a checkpoint records it)."""
    try:
        bit_generator = BIT_GENERATORS[state["bit_generator"]]()
        if state["bit_generator"] == "MT19937":
            key = np.asarray(state["state"]["key"])
            if key.shape != (624,) or not key.any():
                raise ValueError("an MT19937 key must be 624 words, not all zero")
        bit_generator.state = state
    except (KeyError, TypeError, ValueError, OverflowError, IndexError) as exc:
        raise ValueError(f"its {name} is invalid ({_shown_error(exc)})") from None
    return np.random.Generator(bit_generator)


def _shown_error(exc):
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


# -- paths -----------------------------------------------------------------------
def path(name, value):
    """A file-system path (str, bytes or os.PathLike) as a str."""
    try:
        value = os.fspath(value)
    except TypeError:
        raise TypeError(f"{name} must be a file path, got {_shown(value)}") from None
    value = os.fsdecode(value)
    if not value:
        raise ValueError(f"{name} must be a file path, got an empty string")
    return value


def output_file(name, value):
    """A path a file can be written to: its folder exists, and it is not itself a folder.

    (Whether the folder is writable is found out by writing: see
    :func:`npae.files.probe_writable`.)
    """
    value = path(name, value)
    folder = os.path.dirname(os.path.abspath(value))
    if os.path.isdir(value):
        raise ValueError(f"{name} must be a file path, but {value} is a folder")
    if not os.path.isdir(folder):
        raise ValueError(f"{name}: cannot write {value}, the folder {folder} does not exist")
    return value


# -- data ------------------------------------------------------------------------
def is_dask_array(X):
    """A Dask array, recognised by its interface (npae never imports Dask)."""
    return all(hasattr(X, attr) for attr in ("chunks", "map_blocks", "compute", "dtype", "shape"))


def is_lazy_array(X):
    """An array-like that is read a slice at a time (np.memmap, h5py, Dask, npae's row views):
    anything with ``shape``, ``dtype`` and ``__getitem__`` that is not an in-memory ndarray."""
    if isinstance(X, np.ndarray):
        return isinstance(X, np.memmap)
    return (all(hasattr(X, attr) for attr in ("shape", "dtype", "ndim", "__getitem__"))
            and not hasattr(X, "columns") and not _is_sparse(X))


def _is_sparse(X):
    return hasattr(X, "tocsr") and hasattr(X, "nnz")


def rows(X, *, name="X", n_features=None, owner="the model", allow_empty=False,
         unknown_rows=False):
    """``X`` as a 2-D array of real numbers: (n_samples, n_features).

    Lists, DataFrames and other array-likes become ndarrays (object arrays of
    numbers become float64; bools stay bools); memory-mapped and other lazy
    arrays (:func:`is_lazy_array`) are returned as they are, unread.  Refused:
    sparse matrices, complex, string and object data, anything not 2-D, no
    rows (unless ``allow_empty``) or no columns, and a width other than
    ``n_features`` (when given), in scikit-learn's words.  A Dask array whose chunk sizes are
    unknown (NaN, after a boolean selection) is refused, saying how to count them, unless
    ``unknown_rows`` (a lazy transform, block by block, needs no row count).
    """
    if is_dask_array(X) and any(math.isnan(n) for n in X.shape):
        if math.isnan(X.shape[-1]) or not unknown_rows:
            raise ValueError(f"{name} is a Dask array of unknown chunk sizes (shape {X.shape}): "
                             f"call {name}.compute_chunk_sizes() first (or "
                             f"{name}.rechunk() with known sizes)")
    if _is_sparse(X):
        raise TypeError(f"{name} is a sparse matrix: npae's models need dense data; "
                        f"pass {name}.toarray() (sparse input is not supported)")
    if not is_lazy_array(X):
        try:
            X = np.asarray(X)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be an array of real numbers: {exc}") from None
    kind = np.dtype(X.dtype).kind
    if kind == "c":
        raise ValueError("Complex data not supported: " + f"{name} has dtype {X.dtype}")
    if kind == "O":
        try:
            X = X.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must hold real numbers: {exc}") from None
    elif kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if X.ndim != 2:
        wanted = f"(n_samples, {n_features})" if n_features else "(n_samples, n_features)"
        if X.ndim == 0:
            raise ValueError(f"Expected 2D array, got scalar array instead: {name} must be "
                             f"2-D {wanted}")
        if X.ndim == 1:
            ways = ([f"{name}.reshape(1, -1) if it contains a single sample"]
                    if n_features in (None, X.shape[0]) else [])
            ways += ([f"{name}.reshape(-1, 1) if it has a single feature"]
                     if n_features in (None, 1) else [])
            hint = ", or ".join(ways) or f"an array of shape (n, {n_features})"
            raise ValueError(f"Expected 2D array, got 1D array of shape {X.shape} instead: "
                             f"{name} must be 2-D {wanted}. Reshape your data: pass {hint}")
        raise ValueError(f"Found array with dim {X.ndim}: {name} must be 2-D {wanted}, "
                         f"got shape {X.shape}")
    if X.shape[0] == 0 and not allow_empty:
        raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 "
                         f"is required: {name} is empty")
    if X.shape[1] == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 "
                         f"is required: {name} has no columns")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features, but {owner} is expecting "
                         f"{n_features} features as input")
    return X


def value_range(X, dtype, *, name="X", first_row=0):
    """``(low, high)`` of ``X`` as it will be in ``dtype``; ValueError where it is not finite.

    Scanned a chunk of rows at a time, so an array larger than memory (a
    memmap, a Dask array) is never converted whole.  NaN propagates through
    ``min``/``max``, so both ends are finite exactly when every value is; a
    float64 value too large for float32 is caught after the conversion.
    """
    if X.shape[0] == 0:
        return 0.0, 0.0
    if is_dask_array(X):  # one pass over the blocks, wherever they live
        per_block = X.rechunk({1: -1}).map_blocks(
            block_range, chunks=((1,) * X.numblocks[0], (2,)), dtype=np.float64).compute()
        low, high = float(per_block[:, 0].min()), float(per_block[:, 1].max())
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(f"{name} contains NaN or infinity")
        return _in_dtype_range(low, high, dtype, name)
    lows, highs = [], []
    for start in range(0, X.shape[0], SCAN_ROWS):
        chunk = np.asarray(X[start:start + SCAN_ROWS])
        low, high = chunk.min(), chunk.max()
        if not (np.isfinite(low) and np.isfinite(high)):
            row, col = np.argwhere(~np.isfinite(chunk))[0]
            raise ValueError(f"{name} contains NaN or infinity (first at row "
                             f"{first_row + start + row}, column {col})")
        lows.append(low)
        highs.append(high)
    return _in_dtype_range(float(min(lows)), float(max(highs)), dtype, name)


def finite(X, dtype, *, name="X", first_row=0):
    """``X`` (in memory) holds only numbers that are finite in ``dtype``; ValueError otherwise.

    One BLAS dot product ``Σ x²`` tells finite data apart: it is finite exactly when no value
    is NaN or infinite and the data's norm is below √(largest float).  Only when it is not are
    the values looked at (:func:`value_range`), to say which one, or to find them fine after all.
    """
    if X.size == 0 or X.dtype.kind not in "f":
        return
    flat = X.reshape(-1) if X.flags.c_contiguous else np.ascontiguousarray(X).reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.vdot(flat, flat)) and (X.dtype.itemsize <= np.dtype(dtype).itemsize):
            return
    value_range(X, dtype, name=name, first_row=first_row)


def _in_dtype_range(low, high, dtype, name):
    biggest = float(np.finfo(dtype).max)
    for value in (low, high):
        if abs(value) > biggest:
            raise ValueError(f"{name} holds {value:g}, too large for {np.dtype(dtype).name}; "
                             "rescale the data")
    return low, high


def block_range(block):
    """``[[min, max]]`` of one block (NaN if it holds one); ``[[inf, -inf]]`` when empty."""
    if block.size == 0:
        return np.array([[np.inf, -np.inf]])
    return np.array([[block.min(), block.max()]], dtype=np.float64)


# -- messages --------------------------------------------------------------------
def _shown(value):
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '…' if len(text) > 60 else text}"


def some(names, limit=5):
    """A few of ``names``, sorted, for a message: ``['a', 'b', 'c'] and 19,997 more`` — an error
    about a file of 20,000 members stays one short line."""
    names = sorted(map(str, names))
    shown = "[" + ", ".join(repr(n[:60]) for n in names[:limit]) + "]"
    return shown + (f" and {len(names) - limit:,} more" if len(names) > limit else "")


def _listed(choices):
    return ", ".join(repr(c) for c in choices)
