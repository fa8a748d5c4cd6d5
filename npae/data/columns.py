"""Column names in and out, as scikit-learn has them: DataFrames' names checked, DataFrames returned.

A model fitted on a DataFrame whose column names are all strings records
them as ``feature_names_in_``; later inputs must have the same names in the
same order (a ValueError in scikit-learn's words otherwise), and inputs with
or without names where the fit had the other get a warning.  Outputs become
DataFrames when ``set_output(transform="pandas")`` (or scikit-learn's global
``transform_output``) asks; pandas is imported only then.  DataFrames are
recognised by their ``columns`` attribute.
"""

import sys
import warnings

import numpy as np


def feature_names(X):
    """The column names of a DataFrame when they are all strings (scikit-learn's rule), else None."""
    names = getattr(X, "columns", None)
    if names is None or hasattr(X, "map_blocks"):
        return None
    names = np.asarray(list(names), dtype=object)
    return names if len(names) and all(isinstance(n, str) for n in names) else None


def pandas_index(X):
    """The row index of a DataFrame (kept by DataFrame outputs), else None."""
    return getattr(X, "index", None) if hasattr(X, "columns") else None


def check_names(owner, fitted, X):
    """``X``'s column names against ``fitted`` (those seen at fit, or None)."""
    names = feature_names(X)
    if fitted is None and names is not None:
        warnings.warn(f"X has feature names, but {owner} was fitted without feature names",
                      UserWarning, stacklevel=4)
    elif fitted is not None and names is None:
        warnings.warn(f"X does not have valid feature names, but {owner} was fitted with "
                      "feature names", UserWarning, stacklevel=4)
    elif fitted is not None and list(names) != list(fitted):
        raise ValueError(_names_differ(fitted, names))


def check_input_features(input_features, fitted, n_features):
    """``get_feature_names_out``'s argument: None, or the names seen at fit (as many as the
    model's inputs)."""
    if input_features is None:
        return
    input_features = np.asarray(input_features, dtype=object)
    if fitted is not None and not np.array_equal(input_features, fitted):
        raise ValueError("input_features is not equal to feature_names_in_")
    if len(input_features) != n_features:
        raise ValueError(f"input_features should have length equal to number of features "
                         f"({n_features}), got {len(input_features)}")


def _names_differ(fitted, names):
    message = "The feature names should match those that were passed during fit.\n"
    unseen, missing = sorted(set(names) - set(fitted)), sorted(set(fitted) - set(names))
    for title, group in (("Feature names unseen at fit time:", unseen),
                         ("Feature names seen at fit time, yet now missing:", missing)):
        if group:
            message += title + "\n" + "".join(f"- {n}\n" for n in group[:5])
            message += "- ...\n" if len(group) > 5 else ""
    if not unseen and not missing:
        message += "Feature names must be in the same order as they were in fit.\n"
    return message


def wrap(out, kind, names, index):
    """``out`` as the output ``kind`` asks: "default" (the array), "pandas" or "polars"."""
    if kind == "default" and "sklearn" in sys.modules:  # scikit-learn's global setting
        kind = sys.modules["sklearn"].get_config().get("transform_output", "default")
    if kind == "pandas":
        import pandas  # only when a DataFrame was asked for
        return pandas.DataFrame(out, columns=names, index=index)
    if kind == "polars":
        import polars
        return polars.DataFrame(out, schema=names)
    return out
