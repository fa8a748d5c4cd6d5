"""Dask arrays, transformed lazily block by block — recognised by their interface, never imported.

``model.encode(dask_array)`` (and ``decode``, ``reconstruct``, ``score_samples``)
returns a Dask array of the right shape, chunks and dtype, each block computed
where it lives by the model's own in-memory method.  Blocks must hold whole
rows; the models rechunk the columns to one block first.
"""

import numpy as np


class BlockMap:
    """``model.apply(kind, block)`` as a picklable function of one block (it travels to the
    workers with the model's parameters)."""

    def __init__(self, model, kind):
        self.model, self.kind = model, kind

    def __call__(self, block):
        return self.model.apply(self.kind, block, wrap=False)

    def __repr__(self):
        return f"{type(self.model).__name__.lower()}-{self.kind}"


def map_rows(model, kind, X, out_width, dtype):
    """The lazy result of ``model.apply(kind, ·)`` on every block of ``X``'s rows.

    ``out_width``: columns of the result, or None for one number per row.
    """
    X = X.rechunk({1: -1})
    function = BlockMap(model, kind)
    if out_width is None:
        return X.map_blocks(function, drop_axis=1, chunks=(X.chunks[0],), dtype=dtype,
                            meta=np.empty((0,), dtype=dtype), token=repr(function))
    return X.map_blocks(function, chunks=(X.chunks[0], (out_width,)), dtype=dtype,
                        meta=np.empty((0, out_width), dtype=dtype), token=repr(function))
