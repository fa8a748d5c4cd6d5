"""Rows served in batches, from data in memory, in memory-mapped files, or spread over a cluster.

Training reads its data through :class:`Rows`; inference through
:func:`chunks`.  Either way only one batch or chunk is converted to the
model's dtype at a time, so a ``uint8`` memmap of any length never becomes
a float32 copy, and a Dask array is never gathered on the client.

The rows are grouped in *blocks*: an array in memory (or a memmap, or any
array-like with ``shape``, ``dtype`` and fancy indexing) is one block of
all its rows; a Dask array has one block per chunk of rows.  An epoch
visits the blocks in a shuffled order and each block's rows in a shuffled
order, batch by batch; a batch never spans two blocks.  The indices of a
batch are sorted before they are read, so a batch is one fancy-indexing
read that walks the file forwards.  ``benchmarks/scale_out.py`` measures
what that gains on a file not in the page cache (``benchmarks/README.md``):
nothing on a disk where every page costs the same; it is kept because sorting
costs next to nothing, and a device that serves page faults in order (a
rotating disk) pays less for reads that move one way.  A batch is a set:
the order of its rows does not change its loss, only the rounding of the
sum.
"""

import math
import threading

import numpy as np

from .. import checks

INFERENCE_ROWS = 4096  # rows per chunk of encode / decode / score: bounds memory for any n


class Rows:
    """The rows of ``X`` at ``index`` (all rows when None), converted to ``dtype`` batch by batch.

    Parameters
    ----------
    X : ndarray, memmap, lazy array-like or Dask array, 2-D
    dtype : the model's float dtype
    index : sorted 1-D int array of row numbers, or None
    """

    def __init__(self, X, dtype, *, index=None):
        self.X, self.dtype = X, np.dtype(dtype)
        self.dask = checks.is_dask_array(X)
        if self.dask:
            if index is not None:
                raise ValueError("a Dask array is split by blocks, not by row indices")
            X = X.rechunk({1: -1})  # whole rows in each block
            if 0 in X.chunks[0]:  # a block of no rows holds no batch (nor validation rows)
                X = _blocks(X, [b for b, n in enumerate(X.chunks[0]) if n])
            self.X = X
            self.block_sizes = [int(n) for n in X.chunks[0]]
        else:
            self.block_sizes = [X.shape[0] if index is None else len(index)]
        self.index = None if index is None else np.asarray(index, dtype=np.intp)
        self.n_rows = sum(self.block_sizes)
        self.n_features = int(X.shape[1])
        # an in-memory array of the model's dtype (or a computed Dask block) is gathered
        # straight into the batch buffer; anything else is read, then converted
        self.takes = self.dask or (type(X) is np.ndarray and X.dtype == self.dtype
                                   and X.flags.c_contiguous)

    def block(self, b, then=None):
        """Block ``b`` as an array-like that :meth:`gather` reads.  A Dask block is computed;
        with ``then``, that block is fetched meanwhile, in the background, so that training on
        one block overlaps the transfer of the next."""
        if not self.dask:
            return self.X
        fetching, self.prefetch = getattr(self, "prefetch", None), None
        block = fetching.result() if fetching is not None and fetching.b == b else self._fetch(b)
        if then is not None:
            self.prefetch = _Fetch(self._fetch, then)
        return block

    def _fetch(self, b):
        return np.ascontiguousarray(self.X.blocks[b].compute(), dtype=self.dtype)

    def gather(self, block, positions, out):
        """Rows ``positions`` (sorted, within the block) of ``block`` into ``out[:len(positions)]``."""
        rows = out[: len(positions)]
        at = positions if self.index is None else self.index[positions]
        if self.takes:
            return np.take(block, at, axis=0, out=rows)
        np.copyto(rows, block[at], casting="unsafe")  # one fancy-indexing read, then the dtype
        return rows

    def split(self, fraction, rng):
        """``(train, held_out)`` Rows: a random ``fraction`` of the rows (of the blocks, for
        Dask) held out, by index, without copying the data."""
        if self.dask:
            n_blocks = len(self.block_sizes)
            n_out = max(1, round(fraction * n_blocks))
            if n_blocks < 2 or n_out >= n_blocks:
                raise ValueError(f"validation_fraction={fraction} of a Dask array holds out whole "
                                 f"blocks, and it has {n_blocks}; pass validation_data instead")
            held = np.sort(rng.permutation(n_blocks)[:n_out])
            kept = np.setdiff1d(np.arange(n_blocks), held)
            return (Rows(_blocks(self.X, kept), self.dtype),
                    Rows(_blocks(self.X, held), self.dtype))
        n = self.n_rows
        n_out = max(1, round(fraction * n))
        if n_out >= n:
            raise ValueError(f"validation_fraction={fraction} leaves no rows of {n} to train on")
        order = rng.permutation(n)
        base = np.arange(n) if self.index is None else self.index
        held, kept = base[np.sort(order[:n_out])], base[np.sort(order[n_out:])]
        return Rows(self.X, self.dtype, index=kept), Rows(self.X, self.dtype, index=held)

    def array_like(self):
        """The rows as an array-like the models' chunked methods read (for validation losses)."""
        if self.dask or self.index is None:
            return self.X
        return RowView(self.X, self.index)


class _Fetch(threading.Thread):
    """``fetch(b)`` on a thread of its own; ``result()`` waits for it (and raises its error)."""

    def __init__(self, fetch, b):
        super().__init__(daemon=True)
        self.fetch, self.b, self.value, self.error = fetch, b, None, None
        self.start()

    def run(self):
        try:
            self.value = self.fetch(self.b)
        except BaseException as exc:  # handed to the thread that waits for the block
            self.error = exc

    def result(self):
        self.join()
        if self.error is not None:
            raise self.error
        return self.value


def _blocks(X, numbers):
    """The Dask array made of blocks ``numbers`` of ``X``, in order (a lazy selection)."""
    return X.blocks[np.asarray(numbers)]


class RowView:
    """The rows ``index`` of ``X`` (all rows when None), divided by ``divide_by`` as they are read.

    An array-like (``shape``, ``dtype``, ``ndim``, indexing by rows) that reads
    ``X`` on demand and never copies it whole: a held-out part of a memory-mapped
    file, or 8-bit images seen as floats in [0, 1], cost one index array at most.
    With ``divide_by`` (a positive finite number), rows come out as float32.

    ``index`` means what it means to NumPy, or is refused: a boolean mask of
    ``len(X)`` selects the rows where it is True; integers (negative ones count from
    the end) must lie within ``len(X)`` (ValueError); a float index, or anything else, is
    a TypeError.  Every check is made here, so a bad index never fails half-way through
    training.
    """

    def __init__(self, X, index=None, *, divide_by=None):
        if not all(hasattr(X, attr) for attr in ("shape", "dtype", "ndim", "__getitem__")):
            raise TypeError(f"RowView reads an array (an ndarray, a memmap or another array-like "
                            f"with shape, dtype and indexing), got {type(X).__name__}; pass "
                            "numpy.asarray(X)")
        if X.ndim < 1:
            raise ValueError("RowView needs an array of rows, got a 0-d array")
        self.X = X
        self.divide_by = None if divide_by is None else checks.number(
            "divide_by", divide_by, low=0, low_open=True)
        self.index = None if index is None else row_index(index, X.shape[0])
        n = X.shape[0] if self.index is None else len(self.index)
        self.shape, self.ndim = (n,) + tuple(X.shape[1:]), X.ndim
        self.dtype = np.dtype(np.float32) if divide_by is not None else np.dtype(X.dtype)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        rows, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if self.index is not None:
            rows = self.index[rows]
        values = np.asarray(self.X[(rows,) + rest])
        if self.divide_by is not None:
            values = values.astype(np.float32)
            values /= np.float32(self.divide_by)
        return values

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self[:], dtype=dtype)


class FlatRows:
    """The rows of an array of images ``(n, h, w, …)`` seen as ``(n, h·w·…)``, each read
    reshaped as it is read.

    A C-ordered array is reshaped in place, as a view; a Fortran-ordered one (a ``.npy`` that
    NumPy wrote with ``fortran_order``) cannot be, and ``reshape`` would copy it whole — this
    view copies one read at a time instead, so a memory-mapped file of any size stays on disk.
    """

    def __init__(self, X):
        self.X = X
        self.shape, self.ndim = (X.shape[0], math.prod(X.shape[1:])), 2
        self.dtype = np.dtype(X.dtype)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        rows, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        values = np.asarray(self.X[rows])
        kept = values.ndim - (self.X.ndim - 1)  # 1 for a slice or an index array, 0 for one row
        return values.reshape(values.shape[:kept] + (-1,))[(Ellipsis,) + rest]

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self[:], dtype=dtype)


def row_index(index, n, *, name="index"):
    """``index`` as a 1-D array of row numbers in [0, n), in NumPy's meaning: a boolean mask of
    length ``n`` selects rows; integers in [-n, n) count from the start (or, negative, from the
    end).  ValueError for a mask of another length, an integer out of range or an index that is
    not 1-D; TypeError for floats or anything else."""
    try:
        index = np.asarray(index)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be row numbers or a boolean mask: {exc}") from None
    if index.size == 0 and index.dtype.kind == "f":  # [] is an empty selection
        index = index.astype(np.intp)
    if index.ndim != 1:
        raise ValueError(f"{name} must be 1-D (row numbers or a boolean mask), got shape "
                         f"{index.shape}")
    if index.dtype.kind == "b":
        if len(index) != n:
            raise ValueError(f"{name}: a boolean mask must have one entry per row ({n}), "
                             f"got {len(index)}")
        return np.flatnonzero(index)
    if index.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integers or booleans, got dtype {index.dtype}")
    if len(index) and (index.min() < -n or index.max() >= n):
        bad = index[(index < -n) | (index >= n)][0]
        raise ValueError(f"{name} holds row {bad}, out of range for {n} rows")
    index = index.astype(np.intp)
    return np.where(index < 0, index + n, index)


def epoch_plan(rows, rng, shuffle):
    """The order of the blocks in one epoch: a permutation drawn from ``rng`` (or 0, 1, …)."""
    n_blocks = len(rows.block_sizes)
    return rng.permutation(n_blocks) if shuffle and n_blocks > 1 else np.arange(n_blocks)


def block_order(n, rng, shuffle):
    """The order of a block's rows: a permutation of ``n`` drawn from ``rng``, or None (in order)."""
    return rng.permutation(n) if shuffle else None


def batch_positions(order, b, batch_size, n):
    """Sorted positions of batch ``b`` of a block of ``n`` rows visited in ``order``."""
    start, stop = b * batch_size, min((b + 1) * batch_size, n)
    if order is None:
        return np.arange(start, stop)
    return np.sort(order[start:stop])


def n_batches(n, batch_size):
    return math.ceil(n / batch_size)


def chunks(X, n_rows=INFERENCE_ROWS):
    """``(start, rows)`` for consecutive chunks of ``X``'s rows, each read and made an ndarray
    (a Dask array is computed a block at a time, on the client)."""
    if checks.is_dask_array(X):
        offset = 0
        for b in range(X.numblocks[0]):
            block = np.asarray(X.blocks[b].compute())
            for start in range(0, len(block), n_rows):
                yield offset + start, block[start:start + n_rows]
            offset += len(block)
        return
    for start in range(0, X.shape[0], n_rows):
        yield start, np.asarray(X[start:start + n_rows])
