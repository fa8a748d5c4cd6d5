"""Flat buffers: many named arrays stored as views of one 1-D array.

A model's parameters live in one contiguous buffer, each layer's ``W`` and ``b``
a view of its part, so a whole-model operation — an optimiser's update, a
gradient's norm, a sum of the threads' partial gradients — is one pass over
one array instead of a loop over a dozen.  The same layout describes the
gradient buffer and the optimiser's moments, which therefore line up entry
by entry with the parameters.
"""

import math

import numpy as np


class FlatLayout:
    """Where each named array of ``shapes`` (name → shape, in order) sits in one buffer."""

    def __init__(self, shapes):
        self.shapes = {name: tuple(shape) for name, shape in shapes.items()}
        self.offsets, offset = {}, 0
        for name, shape in self.shapes.items():
            self.offsets[name] = offset
            offset += math.prod(shape)
        self.size = offset

    def slice(self, name):
        """The part of the buffer that ``name`` occupies."""
        start = self.offsets[name]
        return slice(start, start + math.prod(self.shapes[name]))

    def views(self, buffer):
        """name → a view of ``buffer`` (1-D, ``size`` long) in that name's shape."""
        if buffer.ndim != 1 or buffer.size != self.size:
            raise ValueError(f"a flat buffer of {self.size} entries is needed, got {buffer.shape}")
        return {name: buffer[self.slice(name)].reshape(shape) for name, shape in self.shapes.items()}

    def gather(self, arrays, dtype):
        """A new buffer holding copies of ``arrays`` (name → array), and its views."""
        buffer = np.empty(self.size, dtype=dtype)
        views = self.views(buffer)
        for name, view in views.items():
            view[...] = arrays[name]
        return buffer, views

    def parts(self, n):
        """``n`` slices cutting the buffer into nearly equal consecutive parts."""
        edges = np.linspace(0, self.size, n + 1).round().astype(int)
        return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]

    @classmethod
    def of(cls, arrays):
        """The layout of ``arrays`` (name → array) as they stand."""
        return cls({name: np.shape(a) for name, a in arrays.items()})


def is_view_of(arrays, buffer):
    """Every array of ``arrays`` shares memory with ``buffer``."""
    return all(np.shares_memory(a, buffer) for a in arrays.values())
