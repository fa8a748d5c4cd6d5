"""Inference: the model's row maps over any number of rows, in chunks or lazily on Dask arrays.

``encode``, ``decode``, ``reconstruct`` and ``score_samples`` read their input a chunk of rows
at a time into one preallocated result (a memory-mapped file larger than memory is fine); a
Dask array, recognised by its interface, gives a lazy Dask array (:mod:`npae.data.dask_arrays`);
Dask is never imported.
"""

import numpy as np

from .. import checks
from ..data import batches, columns, dask_arrays, unit_interval


class Inference:
    """The row maps and scores (a base of :class:`~npae.models.estimator.Estimator`)."""

    # -- inference --------------------------------------------------------------
    def _checked(self, X, *, fitting=False, name="X", width=None, first_row=0):
        """One in-memory batch (of ``width`` columns, data by default): checked, converted to
        the model's dtype, C-contiguous."""
        self.built()
        X = np.asarray(checks.rows(X, name=name, n_features=width or self.n_features_in_,
                                   owner=type(self).__name__))
        if fitting and self.needs_unit_interval:
            low, high = checks.value_range(X, self.dtype_, name=name, first_row=first_row)
            X = unit_interval.accept(X, low, high, name=name, first_row=first_row,
                                     instead=self.unit_interval_alternative)
        else:
            checks.finite(X, self.dtype_, name=name, first_row=first_row)
        return np.ascontiguousarray(X, dtype=self.dtype_)

    def _chunks(self, X, *, fitting=False, name="X"):
        """``(start, chunk)`` over the rows of ``X``, each chunk checked and converted."""
        self.built()
        self._check_names(X)
        X = checks.rows(X, name=name, n_features=self.n_features_in_, owner=type(self).__name__,
                        allow_empty=True)
        for start, chunk in batches.chunks(X):
            yield start, self._checked(chunk, fitting=fitting, name=name, first_row=start)

    def apply(self, kind, X, *, wrap=True):
        """One of the model's row maps — "encode", "decode", "reconstruct", "score_samples" —
        over all rows of ``X``: in memory or memory-mapped a chunk of rows at a time into one
        preallocated result (a file larger than memory is fine); a Dask array gives a lazy Dask
        array, this method running on each block.  A result that is not finite for finite
        input means the data's scale overflowed the network: refused, saying so."""
        self.built()
        fn, out_width, codes = {  # function of a checked batch, output width, input is codes
            "encode": (self.encode_batch, self.code_size, False),
            "decode": (self.decode_batch, self.n_features_in_, True),
            "reconstruct": (lambda x: self.decode_batch(self.encode_batch(x)),
                            self.n_features_in_, False),
            "score_samples": (self.score_batch, None, False)}[kind]
        name, width = ("Z", self.code_size) if codes else ("X", self.n_features_in_)
        if checks.is_dask_array(X):
            checks.rows(X, name=name, n_features=width, owner=type(self).__name__, allow_empty=True,
                        unknown_rows=True)
            return dask_arrays.map_rows(self, kind, X, out_width, self.dtype_)
        index = columns.pandas_index(X)
        if not codes:
            self._check_names(X)
        X = checks.rows(X, name=name, n_features=width, owner=type(self).__name__,
                        allow_empty=True)
        out = np.empty((X.shape[0],) + ((out_width,) if out_width else ()), dtype=self.dtype_)
        for start, chunk in batches.chunks(X):
            chunk = self._checked(chunk, name=name, width=width, first_row=start)
            with np.errstate(over="ignore", invalid="ignore"):
                result = fn(chunk)
            if not np.isfinite(result).all():
                raise ValueError(f"{name}: the network's output overflowed {self.dtype_.name} for "
                                 f"rows {start}..{start + len(chunk) - 1}, whose values reach "
                                 f"{np.abs(chunk).max():.3g}: rescale the data")
            out[start:start + len(chunk)] = result
        return self._wrap_output(out, index) if wrap and kind == "encode" else out

    def encode(self, X):
        """The code of each row of ``X``: (n, n_features) → (n, code size).  A DataFrame with
        ``set_output(transform="pandas")``; a lazy Dask array for a Dask array."""
        return self.apply("encode", X)

    def decode(self, Z):
        """Data-space values for codes ``Z`` (n, code size) → (n, n_features);
        probabilities when the output is a sigmoid / Bernoulli."""
        return self.apply("decode", Z)

    def reconstruct(self, X):
        """``decode(encode(X))``: the model's reconstruction of each row."""
        return self.apply("reconstruct", X)

    def transform(self, X):
        """Same as :meth:`encode`."""
        return self.encode(X)

    def inverse_transform(self, Z):
        """Same as :meth:`decode`."""
        return self.decode(Z)

    def score_samples(self, X):
        """The model's score of each row, higher is better; deterministic, and independent of
        the other rows (see the model's ``score_batch``)."""
        return self.apply("score_samples", X)

    def score(self, X, y=None):
        """The mean of :meth:`score_samples` over the rows of ``X``, as a Python float."""
        scores = self.score_samples(X)
        if checks.is_dask_array(scores):  # its length may be known only once computed
            total, n = dask_arrays.sum_and_count(scores)
        else:
            total, n = None, scores.shape[0]
        if n == 0:
            raise ValueError("X is empty: the score of no rows is undefined")
        return float(scores.mean()) if total is None else total / n
