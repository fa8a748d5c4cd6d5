"""Data for a Bernoulli likelihood: [0, 1] up to rounding, and what a value outside it scores.

Training refuses data outside [0, 1], with two allowances for how real data arrives:

* **Rounding.**  A value that leaves [0, 1] by at most ``ULPS`` units of its dtype's rounding
  (``ULPS · eps`` of the dtype, e.g. 1.0000000000000002 or −5.6e-17 from scikit-learn's
  ``MinMaxScaler``) is accepted and trained on as the boundary it was meant to be.
* **The message.**  A value beyond that is refused naming its row and column and printing it
  at full precision (``repr``), so the message never contradicts itself by rounding.

Scoring is different: a row outside [0, 1] is what anomaly detection is looking for, so it is
scored, and never as more normal than it would be inside.  The Bernoulli likelihood gives a
value outside [0, 1] probability zero; its cross-entropy, continued linearly outside, can fall
(for a value above 1 where the model predicts 1, it keeps falling), which would rank such a row
as *more* normal the further out it lies.  npae's rule (:func:`scored_targets`):

.. math::

    score(x) = score(clip(x, 0, 1)) − λ Σ_j dist(x_j, [0, 1]),     λ = OUTSIDE_NATS nats per unit

The row is scored at the nearest point of [0, 1]ᵈ, less λ nats for each unit of distance
outside, summed over the features.  So a row outside always scores below the same row pulled
back inside, further out scores lower still, and the score stays finite (means, cross-validation
and ``GridSearchCV`` see numbers, never NaN or −∞).  λ = 16 nats (≈ −log 2⁻²³, the cost of
a prediction wrong with all of float32's confidence) is far above the cross-entropy a trained
model gives an in-range feature (at most log 2 ≈ 0.69 for a value of ½ predicted exactly): one
hundredth of a unit outside costs as much as a poorly reconstructed feature.
"""

import numpy as np

from .. import checks

ULPS = 4             # how far outside [0, 1] rounding may put a value, in units of its dtype's eps
OUTSIDE_NATS = 16.0  # λ: nats per unit of distance outside [0, 1] in a Bernoulli score
SCAN_ROWS = 4096     # rows looked at together when locating a refused value


def tolerance(dtype):
    """How far outside [0, 1] a value of ``dtype`` may lie and still count as the boundary:
    ``ULPS · eps`` for floats, 0 for integers."""
    dtype = np.dtype(dtype)
    return ULPS * float(np.finfo(dtype).eps) if dtype.kind == "f" else 0.0


def accept(X, low, high, *, name="X", instead=None, first_row=0):
    """``X`` (its values spanning ``[low, high]``) ready for a Bernoulli likelihood.

    Inside [0, 1]: ``X`` itself.  Outside by no more than :func:`tolerance`: an array in
    memory is returned clipped to [0, 1] (a copy); others (memory maps, Dask arrays) are
    returned as they are, the model's dtype and the loss treating the excess as rounding.
    Further outside: ValueError naming the first such value, its row and its column.
    """
    if 0 <= low and high <= 1:
        return X
    dtype = np.dtype(X.dtype)
    slack = tolerance(dtype)
    if -slack <= low and high <= 1 + slack:
        return np.clip(X, 0, 1) if type(X) is np.ndarray else X
    row, col, value = first_outside(X, slack)
    if dtype.kind in "biu":
        scale = f"{255 if high <= 255 else high:g}"
        hint = (f"; integer images such as uint8 should be scaled to [0, 1] first, e.g. "
                f"{name} / {scale}, or npae.RowView({name}, divide_by={scale}) a batch at a time")
    else:
        hint = "; scale it to [0, 1]" + (f" or use {instead}" if instead else "")
    raise ValueError(f"{name} must lie in [0, 1] for a Bernoulli / binary cross-entropy "
                     f"likelihood, but {name}[{first_row + row}, {col}] = {value!r} (its values "
                     f"span [{full(low)}, {full(high)}]){hint}")


def first_outside(X, slack=0.0):
    """``(row, column, value)`` of the first value of ``X`` outside [−slack, 1 + slack], looked
    for a chunk of rows (a Dask block) at a time; ``value`` a Python number."""
    if checks.is_dask_array(X):
        X = X.rechunk({1: -1})
        starts = np.cumsum((0,) + X.chunks[0])
        chunks = ((int(start), X.blocks[i]) for i, start in enumerate(starts[:-1]))
    else:
        chunks = ((start, X[start:start + SCAN_ROWS]) for start in range(0, X.shape[0], SCAN_ROWS))
    for start, chunk in chunks:
        chunk = np.asarray(chunk)
        where = np.argwhere((chunk < -slack) | (chunk > 1 + slack))
        if len(where):
            row, col = (int(i) for i in where[0])
            return start + row, col, chunk[row, col].item()
    raise ValueError("no value lies outside [0, 1]")


def full(value):
    """A number as ``:g`` writes it when that is exact, else at full precision (``repr``)."""
    value = float(value)
    return f"{value:g}" if float(f"{value:g}") == value else repr(value)


def scored_targets(X):
    """``(targets, outside)`` for scoring rows ``X`` (n, d) under a Bernoulli likelihood:
    ``targets`` is ``X`` clipped to [0, 1] (``X`` itself when inside), ``outside`` (n, d) is each
    entry's penalty ``λ dist(x_j, [0, 1])`` in nats, to subtract from the clipped entry's term
    of the score (the rule in this module's docstring)."""
    if X.size == 0 or (X.min() >= 0 and X.max() <= 1):
        return X, np.zeros(X.shape, dtype=X.dtype)
    targets = np.clip(X, 0, 1)
    outside = np.abs(X - targets)
    outside *= OUTSIDE_NATS
    return targets, outside
