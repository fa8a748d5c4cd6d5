"""Buffers: many named arrays as views of one flat array, and a workspace of scratch arrays.

A model's parameters live in one contiguous buffer, each layer's ``W`` and ``b``
a view of its part, so a whole-model operation — an optimiser's update, a
gradient's norm, a sum of the threads' partial gradients — is one pass over
one array instead of a loop over a dozen.  The same layout describes the
gradient buffer and the optimiser's moments, which therefore line up entry
by entry with the parameters.

A :class:`Workspace` holds the intermediate arrays of one loss computation —
each layer's output, the gradients flowing back — under names, allocated on
first use and reused by every later call that asks for the same name and a
shape no larger.  ``loss_and_grads`` gives each call a fresh one; the training
step gives each of its threads one that lives as long as the run, so a step
allocates nothing.  Nothing is kept on the layers: two computations with two
workspaces never share an intermediate array.
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

    def weight_names(self):
        """The names of the weight matrices (``….W``): what an L2 penalty applies to."""
        return [name for name in self.shapes if name.endswith(".W")]

    @classmethod
    def of(cls, arrays):
        """The layout of ``arrays`` (name → array) as they stand."""
        return cls({name: np.shape(a) for name, a in arrays.items()})


def is_view_of(arrays, buffer):
    """Every array of ``arrays`` shares memory with ``buffer``."""
    return all(np.shares_memory(a, buffer) for a in arrays.values())


class Workspace:
    """Named scratch arrays of one ``dtype``, reused from call to call (see the module)."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        self.storage = {}   # name -> the flat array behind it, as large as any shape asked so far
        self.views = {}     # (name, shape) -> the view last handed out

    def array(self, name, shape):
        """An uninitialised array called ``name`` (any hashable: a string, or a tuple such as
        ``("encoder", 0, "Y")``) of ``shape`` (a tuple), in the workspace's dtype.

        Two names never share memory; one name asked again returns the same memory."""
        view = self.views.get((name, shape))
        if view is not None:
            return view
        size = math.prod(shape)
        flat = self.storage.get(name)
        if flat is None or flat.size < size:
            flat = self.storage[name] = np.empty(size, self.dtype)
            self.views = {key: v for key, v in self.views.items() if key[0] != name}
        view = self.views[(name, shape)] = flat[:size].reshape(shape)
        return view

    def like(self, name, a):
        """:meth:`array` of the shape of ``a``."""
        return self.array(name, a.shape)
