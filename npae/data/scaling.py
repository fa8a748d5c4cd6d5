"""Standard scaling: each column less its mean, divided by its standard deviation.

``x' = (x − m) / s``, with the mean ``m`` and the standard deviation ``s`` of each column
fitted on the training rows only (the held-out rows must not leak into them) and saved
with the model, so that ``encode`` and ``evaluate`` scale new rows the same way. A
constant column has ``s = 0``; it is divided by 1 instead (it becomes 0). Rows are scaled
as they are read (:class:`Standardized`), so a memory-mapped file is never copied whole.
"""

from typing import NamedTuple

import numpy as np

CHUNK_ROWS = 65536


class Standardized:
    """The rows of ``X`` scaled by ``scaling`` as they are read: an array-like of float32
    (``shape``, ``dtype``, ``ndim``, indexing by rows) that never copies ``X`` whole."""

    def __init__(self, X, scaling):
        self.X, self.scaling = X, scaling
        self.shape, self.ndim, self.dtype = tuple(X.shape), X.ndim, np.dtype(np.float32)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        rows = np.asarray(self.X[key], dtype=np.float64)
        columns = key[1] if isinstance(key, tuple) and len(key) > 1 else slice(None)
        scaled = (rows - self.scaling.mean[columns]) / self.scaling.std[columns]
        return scaled.astype(np.float32)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self[:], dtype=dtype)


class Standard(NamedTuple):
    """Per-column ``mean`` and ``std`` (float64, shape (d,)); ``std`` is 1 for a constant column."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, X):
        """The mean and standard deviation of each column of ``X`` (n, d), read a chunk at a
        time in float64: two passes, the mean first, then the squared deviations from it."""
        n = len(X)
        if n == 0:
            raise ValueError("standard scaling needs at least one training row")
        chunks = range(0, n, CHUNK_ROWS)
        mean = sum(np.asarray(X[i:i + CHUNK_ROWS], np.float64).sum(axis=0) for i in chunks) / n
        square = sum(((np.asarray(X[i:i + CHUNK_ROWS], np.float64) - mean) ** 2).sum(axis=0)
                     for i in chunks)
        std = np.sqrt(square / n)
        return cls(mean, np.where(std > 0, std, 1.0))

    def apply(self, X):
        """``X`` seen through this scaling (None stays None)."""
        return None if X is None else Standardized(X, self)

    def record(self):
        """The JSON-ready record saved with a model: ``{"kind": "standard", "mean": […], "std": […]}``."""
        return {"kind": "standard", "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_record(cls, record, width):
        """The scaling a model file records for ``width`` columns; ValueError naming what is wrong."""
        if not isinstance(record, dict) or set(record) != {"kind", "mean", "std"} \
                or record["kind"] != "standard":
            raise ValueError("'scaling' must be {'kind': 'standard', 'mean': [...], 'std': [...]}")
        arrays = []
        for name in ("mean", "std"):
            values = record[name]
            if not (isinstance(values, list) and len(values) == width
                    and all(type(v) in (int, float) for v in values)):
                raise ValueError(f"the scaling's {name} must be {width} numbers")
            arrays.append(np.array(values, dtype=np.float64))
        mean, std = arrays
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
            raise ValueError("the scaling's numbers must be finite, its deviations positive")
        return cls(mean, std)
