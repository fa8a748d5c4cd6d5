"""Dask arrays, transformed lazily block by block — recognised by their interface, never imported.

``model.encode(dask_array)`` (and ``decode``, ``reconstruct``, ``score_samples``)
returns a Dask array of the right shape, chunks and dtype, each block computed
where it lives by the model's own in-memory method.  Blocks must hold whole
rows; the models rechunk the columns to one block first.  The lazy result holds a
copy of the model as it was when the result was made: a later ``fit`` does not
change it, and its key is hashed from the parameters it computes with.
"""

import copy

import numpy as np


class BlockMap:
    """``model.apply(kind, block)`` as a picklable function of one block (it travels to the
    workers with the model's parameters): of a copy of ``model`` as it is now, without its
    training state, so that refitting the model later leaves the lazy result as it was made."""

    def __init__(self, model, kind):
        frozen = copy.copy(model)
        if hasattr(frozen, "training_"):
            del frozen.training_  # the optimiser's moments are not needed to compute
        self.model, self.kind = copy.deepcopy(frozen), kind

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


def sum_and_count(values):
    """``(Σ values, number of values)`` of a 1-D Dask array, in one pass over its blocks: right
    even when its chunk sizes are unknown until computed."""
    per_block = values.map_blocks(_block_sum_and_count, chunks=((2,) * values.numblocks[0],),
                                  dtype=np.float64, meta=np.empty((0,), dtype=np.float64))
    total, n = np.asarray(per_block.compute()).reshape(-1, 2).sum(axis=0)
    return float(total), int(n)


def _block_sum_and_count(block):
    return np.array([block.sum(dtype=np.float64), block.shape[0]], dtype=np.float64)
