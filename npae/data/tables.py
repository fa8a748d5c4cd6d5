"""Tables: comma-separated files of named columns, and choosing the columns of any data file.

A ``.csv`` file is read as text, one row per line: an optional header line of names
(a first line with no number in it), then numbers. Columns are named by their header
name or by their index from 0 (negative from the end). :func:`choose_columns` leaves
out the columns the user drops and takes the label column out of the features: the
labels may be integers, or words (``M``, ``B``), which become the integers 0, 1, … in
sorted order, the words kept as the labels' names. A model file records the choice
(:class:`Choice`), so that the columns are chosen again the same way.
"""

import csv
from typing import NamedTuple

import numpy as np


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_csv(path):
    """``(cells, names)``: the file's fields as a 2-D array of strings ``(n, d)`` and the
    header's column names (None without a header). Ragged lines are refused by number."""
    with open(path, encoding="utf-8-sig", newline="") as f:  # a byte-order mark is not data
        lines = [row for row in csv.reader(f) if row and any(field.strip() for field in row)]
    names = None
    if lines and not any(_is_number(field) for field in lines[0]):
        names, lines = [field.strip() for field in lines[0]], lines[1:]
    width = len(names) if names is not None else len(lines[0]) if lines else 0
    for number, row in enumerate(lines, 2 if names is not None else 1):
        if len(row) != width:
            raise ValueError(f"line {number} has {len(row)} field{'s' * (len(row) != 1)}, but "
                             f"{'the header has' if names is not None else 'line 1 has'} {width}")
    cells = np.array([[field.strip() for field in row] for row in lines], dtype=str)
    return cells.reshape(len(lines), width), names


def column_index(column, names, width, what):
    """The index of ``column`` (a name or an index from 0, negative from the end)."""
    if isinstance(column, int):
        if not -width <= column < width:
            raise ValueError(f"{what} {column}: the data has {width} columns (0 to {width - 1})")
        return column % width
    if names is None:
        raise ValueError(f"{what} {column!r}: the data has no header of column names; "
                         "give the column's index from 0")
    if column not in names:
        shown = ", ".join(names[:8]) + (", …" if len(names) > 8 else "")
        raise ValueError(f"{what} {column!r}: no such column (the columns are {shown})")
    return names.index(column)


def label_codes(values):
    """``(codes, names)``: integer labels as they are (names None), or words as 0, 1, … in
    sorted order with the words as names."""
    values = np.asarray(values)
    if values.dtype.kind in "iu":
        return values.astype(np.int64), None
    if values.dtype.kind == "f":
        if np.isfinite(values).all() and (values == np.round(values)).all():
            return values.astype(np.int64), None
        raise ValueError("the labels must be integers or words, not fractions")
    try:
        numbers = values.astype(np.float64)
    except ValueError:
        names, codes = np.unique(values, return_inverse=True)
        return codes.astype(np.int64), tuple(str(name) for name in names)
    return label_codes(numbers)


def choose_columns(X, names=None, *, drop=(), labels=None):
    """``(X, y, label_names, names)``: ``X`` without the dropped columns and the label column,
    the labels as integer codes (None without ``labels``), their names for words, and the
    names of the columns kept. ``X`` may hold strings (a table's cells), converted to numbers
    here: a column that is not numbers is refused, naming it and the flags that fix it."""
    width = X.shape[1]
    dropped = {column_index(c, names, width, "--drop") for c in drop}
    label = None if labels is None else column_index(labels, names, width, "--labels")
    if label in dropped:
        raise ValueError(f"--labels {labels!r} is also in --drop")
    keep = [j for j in range(width) if j not in dropped and j != label]
    if not keep:
        raise ValueError("no columns are left once --drop and --labels take theirs")
    y, label_names = (None, None) if label is None else label_codes(X[:, label])
    kept = None if names is None else [names[j] for j in keep]
    if X.dtype.kind not in "US":
        return X[:, keep], y, label_names, kept
    features = np.empty((len(X), len(keep)), dtype=np.float64)
    for out, j in enumerate(keep):
        try:
            features[:, out] = X[:, j].astype(np.float64)
        except ValueError:
            row = next(i for i, cell in enumerate(X[:, j]) if not _is_number(cell))
            column = repr(names[j]) if names is not None else str(j)
            raise ValueError(f"column {column} holds {str(X[row, j])!r} (row {row + 1}), not a number: "
                             f"leave it out with --drop {column.strip(chr(39))}, or make it the "
                             f"labels with --labels {column.strip(chr(39))}") from None
    return features, y, label_names, kept


class Choice(NamedTuple):
    """The columns a user chose for training: ``drop`` (names or indices) and the ``labels``
    column (a name, an index or None), as a model file records them, so that the same
    columns are chosen again when the model is used."""

    drop: tuple
    labels: str | int | None

    def record(self):
        """The JSON-ready record saved with a model: ``{"drop": […], "labels": …}``."""
        return {"drop": list(self.drop), "labels": self.labels}

    @classmethod
    def from_record(cls, record):
        """The choice a model file records; ValueError naming what is wrong."""
        def column(value):
            return isinstance(value, str) or type(value) is int

        if not (isinstance(record, dict) and set(record) == {"drop", "labels"}
                and isinstance(record["drop"], list) and all(map(column, record["drop"]))
                and (record["labels"] is None or column(record["labels"]))):
            raise ValueError("'columns' must be {'drop': [names or indices], 'labels': a name, "
                             "an index or null}")
        return cls(tuple(record["drop"]), record["labels"])

    def flags(self):
        """The command-line flags that make this choice: ``--drop id --labels diagnosis``."""
        return " ".join(([f"--drop {','.join(map(str, self.drop))}"] if self.drop else [])
                        + ([f"--labels {self.labels}"] if self.labels is not None else []))
