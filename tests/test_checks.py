"""npae.checks: one exception policy for every argument, and scikit-learn's wording for data.

A value of the wrong *type* is a TypeError, a value of the right type but the
wrong value is a ValueError, and the message starts with the argument's name.
Data messages use scikit-learn's phrases ("Expected 2D array", "Found array
with 0 sample(s)", "Complex data not supported", "X has 3 features, but VAE is
expecting 4 features as input") with npae's hints added.  The checks that the
models, optimisers and gradient checker make through this policy are tested
here too; what a model does with a refused input (nothing) is in test_estimator.
"""

import math
import os

import numpy as np
import pytest

import npae
from npae import checks
from npae.nn.activations import ACTIVATIONS, get_activation


# =============================================================================
# Numbers, names and choices
# =============================================================================
@pytest.mark.parametrize("check, value, expected", [
    (checks.integer, 3, 3), (checks.integer, -3, -3), (checks.integer, np.int64(7), 7),
    (checks.integer, np.uint8(255), 255),
    (checks.positive_int, 1, 1), (checks.positive_int, np.int32(12), 12),
    (checks.non_negative_int, 0, 0), (checks.non_negative_int, 5, 5),
])
def test_integers_are_accepted_and_returned_as_python_ints(check, value, expected):
    result = check("n", value)
    assert result == expected and type(result) is int


@pytest.mark.parametrize("check, value, error, message", [
    (checks.integer, 2.0, TypeError, "n must be an int, got float 2.0"),
    (checks.integer, True, TypeError, "n must be an int, got bool True"),
    (checks.integer, "3", TypeError, "n must be an int, got str '3'"),
    (checks.integer, None, TypeError, "n must be an int, got NoneType None"),
    (checks.positive_int, 0, ValueError, "n must be a positive int, got 0"),
    (checks.positive_int, -2, ValueError, "n must be a positive int, got -2"),
    (checks.positive_int, 2.5, TypeError, "n must be an int, got float 2.5"),
    (checks.positive_int, np.bool_(True), TypeError, "n must be an int, got bool np.True_"),
    (checks.non_negative_int, -1, ValueError, "n must be an int ≥ 0, got -1"),
    (checks.non_negative_int, 1.0, TypeError, "n must be an int, got float 1.0"),
])
def test_integers_of_the_wrong_type_or_value_are_refused_by_name(check, value, error, message):
    with pytest.raises(error) as info:
        check("n", value)
    assert str(info.value) == message


@pytest.mark.parametrize("kwargs, value, expected", [
    (dict(), -1e300, -1e300),
    (dict(low=0), 0, 0.0),                                     # closed at a finite bound
    (dict(low=0, high=1), 1, 1.0),
    (dict(low=0, high=1, high_open=True), np.float32(0.5), 0.5),
    (dict(low=0, low_open=True), 1e-300, 1e-300),
])
def test_numbers_inside_the_interval_are_accepted_as_floats(kwargs, value, expected):
    result = checks.number("x", value, **kwargs)
    assert result == expected and type(result) is float


@pytest.mark.parametrize("kwargs, value, message", [
    (dict(low=0), -1.0, "x must be in [0, inf), got -1.0"),
    (dict(low=0, low_open=True), 0, "x must be in (0, inf), got 0.0"),
    (dict(low=0, high=1, high_open=True), 1.0, "x must be in [0, 1), got 1.0"),
    (dict(low=0, high=1, low_open=True, high_open=True), 0.0, "x must be in (0, 1), got 0.0"),
    (dict(low=-2, high=3), 3.5, "x must be in [-2, 3], got 3.5"),
    (dict(), float("nan"), "x must be in (-inf, inf), got nan"),       # NaN is never inside
    (dict(), float("inf"), "x must be in (-inf, inf), got inf"),       # an infinite bound is open
    (dict(low=0), -float("inf"), "x must be in [0, inf), got -inf"),
    (dict(low=0), float("inf"), "x must be in [0, inf), got inf"),
])
def test_numbers_outside_the_interval_are_a_value_error_showing_it(kwargs, value, message):
    with pytest.raises(ValueError) as info:
        checks.number("x", value, **kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize("value", ["0.5", None, True, np.bool_(False), [0.5], 1 + 0j])
def test_a_number_of_the_wrong_type_is_a_type_error(value):
    with pytest.raises(TypeError, match=r"^x must be a number, got "):
        checks.number("x", value, low=0)


def test_booleans():
    assert checks.boolean("flag", True) is True and checks.boolean("flag", np.bool_(False)) is False
    for value in (1, 0, "yes", None, np.int64(1)):
        with pytest.raises(TypeError, match=r"^flag must be True or False, got "):
            checks.boolean("flag", value)


def test_choices():
    assert checks.one_of("noise", None, (None, "mask")) is None
    assert checks.one_of("likelihood", "gaussian", ("bernoulli", "gaussian")) == "gaussian"
    with pytest.raises(ValueError) as info:
        checks.one_of("likelihood", "poisson", ("bernoulli", "gaussian"))
    assert str(info.value) == "likelihood must be one of 'bernoulli', 'gaussian', got 'poisson'"
    with pytest.raises(ValueError, match=r"^noise must be one of None, 'mask', got 'salt'$"):
        checks.one_of("noise", "salt", (None, "mask"))
    for value in (["bernoulli"], {"bernoulli"}, np.array("bernoulli"), object()):
        with pytest.raises(TypeError, match=r"^likelihood must be one of 'bernoulli', 'gaussian', got "):
            checks.one_of("likelihood", value, ("bernoulli", "gaussian"))


@pytest.mark.parametrize("value, expected", [
    (64, (64,)), (np.int64(8), (8,)), ((128, 64), (128, 64)), ([3, 2, 1], (3, 2, 1)),
    (np.array([4, 2]), (4, 2)), (range(3, 0, -1), (3, 2, 1)),
])
def test_sizes_become_tuples_of_python_ints(value, expected):
    result = checks.sizes("hidden", value)
    assert result == expected and all(type(s) is int for s in result)


@pytest.mark.parametrize("value, error, message", [
    ((), ValueError, "hidden must name at least one layer size, e.g. hidden=(64,)"),
    ((4, 0), ValueError, "hidden must be a tuple of positive ints, got (4, 0)"),
    (-3, ValueError, "hidden must be a tuple of positive ints, got (-3,)"),
    ((4.0,), TypeError, "hidden must be a tuple of positive ints, got tuple (4.0,)"),
    ((4, True), TypeError, "hidden must be a tuple of positive ints, got tuple (4, True)"),
    ("64", TypeError, "hidden must be a tuple of positive ints, got str '64'"),
    (4.0, TypeError, "hidden must be a tuple of positive ints, got float 4.0"),
    (None, TypeError, "hidden must be a tuple of positive ints, got NoneType None"),
])
def test_bad_sizes_are_refused_by_name(value, error, message):
    with pytest.raises(error) as info:
        checks.sizes("hidden", value)
    assert str(info.value) == message


def test_no_sizes_at_all_only_where_allowed():
    assert checks.sizes("hidden", (), allow_empty=True) == ()
    with pytest.raises(ValueError, match="hidden must name at least one layer size"):
        checks.sizes("hidden", [])


@pytest.mark.parametrize("value", ["float32", "float64", np.float32, np.dtype("float64"), "f4"])
def test_float_dtypes(value):
    dtype = checks.float_dtype("dtype", value)
    assert isinstance(dtype, np.dtype) and dtype.name in ("float32", "float64")
    assert dtype == np.dtype(value)


@pytest.mark.parametrize("value", ["float16", "int32", np.int64, "complex128", "banana", 3, None])
def test_other_dtypes_are_refused_listing_the_choices(value):
    with pytest.raises(ValueError, match=r"^dtype must be one of 'float32', 'float64', got "):
        checks.float_dtype("dtype", value)


def test_none_is_a_dtype_choice_only_where_allowed():
    assert checks.float_dtype("dtype", None, allow_none=True) is None
    with pytest.raises(ValueError, match=r"^dtype must be one of 'float32', 'float64', None, got 'int8'$"):
        checks.float_dtype("dtype", "int8", allow_none=True)


def test_callable_with():
    adam = npae.Adam()
    assert checks.callable_with("optimizer", adam, "step") is adam
    for value in ("adam", None, type("NoStep", (), {"step": 3})()):
        with pytest.raises(TypeError, match=r"^optimizer must have a step\(\) method, got "):
            checks.callable_with("optimizer", value, "step")


def test_long_values_are_shortened_in_the_message():
    with pytest.raises(TypeError) as info:
        checks.integer("n", "x" * 500)
    assert len(str(info.value)) < 100 and str(info.value).endswith("…")


# =============================================================================
# Randomness
# =============================================================================
def _states(generators):
    return [g.bit_generator.state for g in generators]


def test_an_int_seed_gives_the_same_independent_streams_every_time():
    first, again = checks.generators(7, 4), checks.generators(7, 4)
    assert _states(first) == _states(again)
    draws = [g.random(8) for g in first]
    assert all(not np.array_equal(draws[i], draws[j]) for i in range(4) for j in range(i))
    assert not np.array_equal(checks.generators(8, 1)[0].random(8), draws[0])
    # stream i does not depend on how many streams were asked for: the model's
    # generators(seed, 3) and fit's generators(seed, 4) agree on the first three
    assert _states(checks.generators(7, 3)) == _states(checks.generators(7, 4))[:3]
    assert _states(checks.generators(np.int64(7), 2)) == _states(again)[:2]


def test_seed_sequences_none_and_generators():
    sequence = np.random.SeedSequence(11)
    assert _states(checks.generators(sequence, 2)) == _states(checks.generators(11, 2))
    assert not np.array_equal(checks.generators(None, 1)[0].random(4),
                              checks.generators(None, 1)[0].random(4))   # fresh entropy
    source = np.random.default_rng(3)
    before = source.bit_generator.state
    first = checks.generators(source, 2)
    assert source.bit_generator.state != before   # a Generator's own stream seeds the children
    again = checks.generators(np.random.default_rng(3), 2)
    assert _states(first) == _states(again)


@pytest.mark.parametrize("seed", [1.5, "7", True, [1, 2], np.float64(3.0)])
def test_a_seed_of_the_wrong_type_is_a_type_error_naming_the_argument(seed):
    for call in (lambda: checks.generators(seed, 2), lambda: checks.generator(seed)):
        with pytest.raises(TypeError, match=r"^seed must be an int ≥ 0, None"):
            call()
    with pytest.raises(TypeError, match=r"^rng must be an int ≥ 0"):
        checks.generator(seed, name="rng")


def test_a_negative_seed_is_a_value_error_naming_the_argument():
    for call in (lambda: checks.generators(-1, 2), lambda: checks.generator(-1)):
        with pytest.raises(ValueError, match=r"^seed must be an int ≥ 0, got -1$"):
            call()


def test_a_generator_is_used_as_it_is():
    rng = np.random.default_rng(0)
    assert checks.generator(rng) is rng
    assert checks.generator(5).random() == np.random.default_rng(5).random()


# =============================================================================
# Paths
# =============================================================================
def test_paths(tmp_path):
    assert checks.path("path", tmp_path / "m.npz") == str(tmp_path / "m.npz")
    assert checks.path("path", os.fsencode(str(tmp_path / "m.npz"))) == str(tmp_path / "m.npz")
    with pytest.raises(TypeError, match=r"^path must be a file path, got float 3.5$"):
        checks.path("path", 3.5)
    with pytest.raises(TypeError, match=r"^path must be a file path, got NoneType None$"):
        checks.path("path", None)
    with pytest.raises(ValueError, match=r"^path must be a file path, got an empty string$"):
        checks.path("path", "")


def test_an_output_file_needs_an_existing_folder_and_must_not_be_one(tmp_path):
    assert checks.output_file("out", tmp_path / "new.npz") == str(tmp_path / "new.npz")
    missing = tmp_path / "missing" / "new.npz"
    with pytest.raises(ValueError) as info:
        checks.output_file("out", missing)
    assert str(info.value) == (f"out: cannot write {missing}, the folder {tmp_path / 'missing'} "
                               "does not exist")
    with pytest.raises(ValueError) as info:
        checks.output_file("out", tmp_path)
    assert str(info.value) == f"out must be a file path, but {tmp_path} is a folder"
    with pytest.raises(TypeError, match="^out must be a file path"):
        checks.output_file("out", 3)
    assert list(tmp_path.iterdir()) == []


# =============================================================================
# Data, in scikit-learn's words
# =============================================================================
def test_array_likes_become_2d_arrays_and_numbers_in_object_arrays_are_converted():
    X = checks.rows([[1, 2], [3, 4]])
    assert isinstance(X, np.ndarray) and X.shape == (2, 2)
    objects = checks.rows(np.array([[1, 2.5], [3, 4]], dtype=object))
    assert objects.dtype == np.float64 and objects.tolist() == [[1.0, 2.5], [3.0, 4.0]]
    assert checks.rows(np.array([[True, False]])).dtype == bool
    import pandas as pd
    frame = checks.rows(pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}))
    assert isinstance(frame, np.ndarray) and frame.tolist() == [[1.0, 3.0], [2.0, 4.0]]


def test_lazy_arrays_are_returned_unread(tmp_path):
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=(5, 3))
    assert checks.rows(mm) is mm
    view = npae.data.batches.RowView(mm, [0, 2])
    assert checks.rows(view) is view
    import dask.array as da
    lazy = da.zeros((6, 3), chunks=(2, 3))
    assert checks.rows(lazy) is lazy and checks.is_dask_array(lazy) and not checks.is_dask_array(mm)


@pytest.mark.parametrize("X, kwargs, error, message", [
    (np.zeros(4), dict(n_features=4), ValueError,      # a model of 4 features: only one reshape fits
     "Expected 2D array, got 1D array of shape (4,) instead: X must be 2-D (n_samples, 4). "
     "Reshape your data: pass X.reshape(1, -1) if it contains a single sample"),
    (np.zeros(4), dict(n_features=1), ValueError,
     "Expected 2D array, got 1D array of shape (4,) instead: X must be 2-D (n_samples, 1). "
     "Reshape your data: pass X.reshape(-1, 1) if it has a single feature"),
    (np.zeros(4), dict(), ValueError,
     "Expected 2D array, got 1D array of shape (4,) instead: X must be 2-D (n_samples, "
     "n_features). Reshape your data: pass X.reshape(1, -1) if it contains a single sample, "
     "or X.reshape(-1, 1) if it has a single feature"),
    (np.zeros(4), dict(n_features=3, name="Z"), ValueError,
     "Expected 2D array, got 1D array of shape (4,) instead: Z must be 2-D (n_samples, 3). "
     "Reshape your data: pass an array of shape (n, 3)"),
    (np.float64(2.0), dict(n_features=3), ValueError,
     "Expected 2D array, got scalar array instead: X must be 2-D (n_samples, 3)"),
    (np.zeros((2, 3, 1)), dict(n_features=3), ValueError,
     "Found array with dim 3: X must be 2-D (n_samples, 3), got shape (2, 3, 1)"),
    (np.zeros((0, 3)), dict(), ValueError,
     "Found array with 0 sample(s) (shape=(0, 3)) while a minimum of 1 is required: X is empty"),
    (np.zeros((3, 0)), dict(), ValueError,
     "Found array with 0 feature(s) (shape=(3, 0)) while a minimum of 1 is required: "
     "X has no columns"),
    (np.zeros((2, 10)), dict(n_features=64, owner="VAE"), ValueError,
     "X has 10 features, but VAE is expecting 64 features as input"),
    (np.zeros((2, 3), dtype=complex), dict(), ValueError,
     "Complex data not supported: X has dtype complex128"),
    (np.zeros((2, 3)).astype(str), dict(), TypeError, "X must hold real numbers, got dtype <U32"),
    (np.zeros((2, 3), dtype="datetime64[s]"), dict(), TypeError,
     "X must hold real numbers, got dtype datetime64[s]"),
    (np.array([["a", 1.0]], dtype=object), dict(), TypeError, "X must hold real numbers: "),
    ([[0.5, 0.5], [0.5]], dict(), TypeError, "X must be an array of real numbers: "),
])
def test_malformed_data_is_refused_in_scikit_learns_words(X, kwargs, error, message):
    with pytest.raises(error) as info:
        checks.rows(X, **kwargs)
    assert str(info.value).startswith(message), str(info.value)


def test_no_rows_only_where_allowed():
    assert checks.rows(np.zeros((0, 3)), n_features=3, allow_empty=True).shape == (0, 3)
    with pytest.raises(ValueError, match=r"0 feature\(s\)"):
        checks.rows(np.zeros((0, 0)), allow_empty=True)


def test_a_sparse_matrix_is_a_type_error_saying_how_to_densify_it():
    import scipy.sparse as sparse
    for X in (sparse.csr_matrix(np.eye(3)), sparse.coo_matrix(np.eye(3))):
        with pytest.raises(TypeError, match=r"^X is a sparse matrix: .*X\.toarray\(\).*sparse"):
            checks.rows(X)
    with pytest.raises(TypeError, match=r"^validation_data is a sparse matrix"):
        checks.rows(sparse.csr_matrix(np.eye(3)), name="validation_data")


def test_the_range_of_the_data_as_it_will_be_in_the_dtype():
    assert checks.value_range(np.array([[0.25, -3.0], [7.5, 1.0]]), np.float32) == (-3.0, 7.5)
    assert checks.value_range(np.zeros((0, 4)), np.float32) == (0.0, 0.0)
    assert checks.value_range(np.array([[1e39]]), np.float64) == (1e39, 1e39)
    assert checks.value_range(np.array([[255, 0]], dtype=np.uint8), np.float32) == (0.0, 255.0)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("row, col", [(0, 0), (9, 2), (4, 1)])
def test_the_first_nan_or_infinity_is_located_across_chunks(value, row, col, monkeypatch):
    monkeypatch.setattr(checks, "SCAN_ROWS", 4)   # rows 0-3, 4-7, 8-9: the offset must be added
    X = np.zeros((10, 3), dtype=np.float32)
    X[row, col] = value
    if row < 9:
        X[9, 0] = np.nan                          # a later one is not the first
    with pytest.raises(ValueError) as info:
        checks.value_range(X, np.float32, name="Z")
    assert str(info.value) == f"Z contains NaN or infinity (first at row {row}, column {col})"


@pytest.mark.parametrize("value", [1e39, -1e39, 3.5e38])
def test_float64_values_too_large_for_float32_are_refused(value):
    with pytest.raises(ValueError) as info:
        checks.value_range(np.array([[0.0, value]]), np.float32)
    assert str(info.value) == f"X holds {value:g}, too large for float32; rescale the data"


def test_the_range_of_a_dask_array_is_found_block_by_block():
    import dask.array as da
    X = da.from_array(np.arange(12.0).reshape(6, 2) - 4, chunks=(2, 1))
    assert checks.value_range(X, np.float32) == (-4.0, 7.0)
    bad = np.arange(12.0).reshape(6, 2)
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match=r"^X contains NaN or infinity"):
        checks.value_range(da.from_array(bad, chunks=(2, 2)), np.float32)
    with pytest.raises(ValueError, match=r"^X holds 1e\+39, too large for float32"):
        checks.value_range(da.from_array(np.array([[1e39, 0.0]]), chunks=(1, 1)), np.float32)


def test_data_outside_the_unit_interval_is_refused_saying_how_to_fix_it():
    from npae.data import unit_interval
    inside = np.array([[0.0, 1.0]])
    assert unit_interval.accept(inside, 0.0, 1.0) is inside   # the bounds are inside
    cases = [
        (np.array([[0.0, 255.0]]), dict(), "255.0", "; scale it to [0, 1]"),
        (np.array([[0.0, 255.0]]), dict(instead="likelihood='gaussian'"), "255.0",
         "; scale it to [0, 1] or use likelihood='gaussian'"),
        (np.array([[0, 255]], dtype=np.uint8), dict(), "255",
         "; integer images such as uint8 should be scaled to [0, 1] first, e.g. X / 255, or "
         "npae.RowView(X, divide_by=255) a batch at a time"),
    ]
    for X, kwargs, shown, hint in cases:
        with pytest.raises(ValueError) as info:
            unit_interval.accept(X, 0.0, 255.0, **kwargs)
        assert str(info.value) == ("X must lie in [0, 1] for a Bernoulli / binary cross-entropy "
                                   f"likelihood, but X[0, 1] = {shown} (its values span [0, 255])"
                                   + hint)
    with pytest.raises(ValueError, match=r"e\.g\. X / 65535, or npae\.RowView\(X, divide_by=65535\)"):
        unit_interval.accept(np.array([[0, 65535]], dtype=np.uint16), 0.0, 65535.0)


# =============================================================================
# The same policy in the optimisers, the gradient checker and the activations
# =============================================================================
BAD_OPTIMISERS = [
    (lambda: npae.Adam(lr=-1), ValueError, r"^lr must be in \(0, inf\), got -1\.0$"),
    (lambda: npae.Adam(lr=0), ValueError, r"^lr must be in \(0, inf\), got 0\.0$"),
    (lambda: npae.Adam(lr=float("inf")), ValueError, r"^lr must be in \(0, inf\), got inf$"),
    (lambda: npae.Adam(lr=float("nan")), ValueError, r"^lr must be in \(0, inf\), got nan$"),
    (lambda: npae.Adam(lr="0.1"), TypeError, r"^lr must be a number, got str '0\.1'$"),
    (lambda: npae.Adam(beta_1=1.0), ValueError, r"^beta_1 must be in \[0, 1\), got 1\.0$"),
    (lambda: npae.Adam(beta_2=-0.1), ValueError, r"^beta_2 must be in \[0, 1\), got -0\.1$"),
    (lambda: npae.Adam(eps=0), ValueError, r"^eps must be in \(0, inf\), got 0\.0$"),
    (lambda: npae.Adam(eps=None), TypeError, r"^eps must be a number, got NoneType None$"),
    (lambda: npae.SGD(lr=-0.1), ValueError, r"^lr must be in \(0, inf\), got -0\.1$"),
    (lambda: npae.SGD(momentum=1.5), ValueError, r"^momentum must be in \[0, 1\), got 1\.5$"),
    (lambda: npae.SGD(momentum=True), TypeError, r"^momentum must be a number, got bool True$"),
    (lambda: npae.Adam().step([np.zeros(2)], [np.zeros(2)]), TypeError,
     "^params and grads must be dicts"),
    (lambda: npae.Adam().step({"w": np.zeros(2)}, {"w": np.zeros(3)}), ValueError,
     r"^grads\['w'\] has shape \(3,\), but params\['w'\] has shape \(2,\)$"),
    (lambda: npae.SGD().step({"w": np.zeros(2)}, {"v": np.zeros(2)}), ValueError,
     r"^params and grads must have the same keys; they differ in \['v', 'w'\]$"),
]


@pytest.mark.parametrize("call, error, pattern", BAD_OPTIMISERS,
                         ids=[p.strip("^$")[:28] for _, _, p in BAD_OPTIMISERS])
def test_bad_optimiser_arguments_are_refused_by_name(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_a_refused_optimiser_step_changes_no_parameter():
    params = {"w": np.ones(3), "b": np.ones(2)}
    opt = npae.Adam()
    with pytest.raises(ValueError, match=r"grads\['b'\] has shape \(5,\)"):
        opt.step(params, {"w": np.ones(3), "b": np.ones(5)})
    assert np.array_equal(params["w"], np.ones(3)) and np.array_equal(params["b"], np.ones(2))
    assert opt.t == 0 and opt.m == {} and opt.v == {}


def _loss_of(p):
    return lambda: (float((p["w"] ** 2).sum()), {"w": 2 * p["w"]})


BAD_GRADCHECKS = [
    (lambda p: npae.gradcheck(_loss_of(p), [p["w"]]), TypeError, "params must be a non-empty dict"),
    (lambda p: npae.gradcheck(_loss_of(p), {}), TypeError, "params must be a non-empty dict"),
    (lambda p: npae.gradcheck(_loss_of(p), {"w": p["w"].astype(np.float32)}), TypeError,
     r"params\['w'\] must be a float64 ndarray"),
    (lambda p: npae.gradcheck(3, p), TypeError, "fn must be callable"),
    (lambda p: npae.gradcheck(_loss_of(p), p, eps=0.0), ValueError, r"eps must be a float in \(0, 1\)"),
    (lambda p: npae.gradcheck(_loss_of(p), p, n_entries=0), ValueError,
     "n_entries must be a positive int"),
    (lambda p: npae.gradcheck(lambda: (0.0, {}), p), ValueError, r"fn's grads lack the parameters \['w'\]"),
]


@pytest.mark.parametrize("call, error, pattern", BAD_GRADCHECKS, ids=[p[:24] for _, _, p in BAD_GRADCHECKS])
def test_bad_gradcheck_arguments_are_refused_by_name_and_leave_the_parameters(call, error, pattern):
    params = {"w": np.array([1.0, -2.0, 3.0])}
    with pytest.raises(error, match="^" + pattern):
        call(params)
    assert np.array_equal(params["w"], [1.0, -2.0, 3.0])


def test_an_unknown_activation_name_lists_the_valid_ones():
    with pytest.raises(ValueError) as info:
        get_activation("gelu")
    assert str(info.value) == ("unknown activation 'gelu'; valid activations are: "
                               + ", ".join(ACTIVATIONS))
    with pytest.raises(TypeError, match="^activation must be a string, got builtin_function"):
        get_activation(math.tanh)
