"""Tests for npae.layers: Dense ``Y = f(X W + b)`` and the Sequential stack.

A forward and a backward pass worked by hand, the link to the source
document's column-vector form ``h = f(W1 x + b1)``, every activation's
backward against central differences over hypothesis-drawn shapes, then the
initialisation's variance and bounds, seeding, argument checking and dtypes.
"""

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from conftest import H, assert_gradients_ok
from npae import Dense, Sequential, gradcheck_layer
from npae.nn.activations import ACTIVATIONS, KINKED

NAMES = sorted(ACTIVATIONS)

# A tiny layer worked by hand: 2 inputs, 3 outputs.
X_HAND = np.array([[1.0, -1.0],
                   [2.0, 0.5]])
W_HAND = np.array([[1.0, 2.0, -1.0],
                   [3.0, -4.0, 0.0]])
b_HAND = np.array([0.5, -0.5, 0.25])
# A = X W + b:
#   row 1: (1·1 − 1·3, 1·2 + 1·4, −1 + 0) + b = (−2, 6, −1) + b = (−1.5, 5.5, −0.75)
#   row 2: (2·1 + 0.5·3, 2·2 − 0.5·4, −2 + 0) + b = (3.5, 2, −2) + b = (4, 1.5, −1.75)
A_HAND = np.array([[-1.5, 5.5, -0.75],
                   [4.0, 1.5, -1.75]])


def hand_layer(activation):
    layer = Dense(2, 3, activation, seed=0, dtype="float64")
    layer.params["W"][...] = W_HAND
    layer.params["b"][...] = b_HAND
    return layer


def test_forward_by_hand():
    np.testing.assert_array_equal(hand_layer("identity").forward(X_HAND), A_HAND)
    np.testing.assert_array_equal(hand_layer("relu").forward(X_HAND),
                                  [[0.0, 5.5, 0.0], [4.0, 1.5, 0.0]])
    np.testing.assert_allclose(hand_layer("leaky_relu").forward(X_HAND),
                               [[-0.015, 5.5, -0.0075], [4.0, 1.5, -0.0175]], rtol=1e-15)
    np.testing.assert_allclose(hand_layer("tanh").forward(X_HAND), np.tanh(A_HAND), rtol=1e-15)
    np.testing.assert_allclose(hand_layer("sigmoid").forward(X_HAND), 1 / (1 + np.exp(-A_HAND)),
                               rtol=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_forward_is_f_of_affine_map(name):
    # Y = f(X W + b) for every activation, with A = X W + b worked out above.
    np.testing.assert_allclose(hand_layer(name).forward(X_HAND), ACTIVATIONS[name].f(A_HAND),
                               rtol=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_forward_matches_the_column_vector_form(name):
    # The source document: h = f(W1 x + b1) for a column vector x, with W1 of
    # shape (n_out, n_in).  npae's W is W1ᵀ, and the rows of X are the xᵀ.
    layer = hand_layer(name)
    W1 = layer.params["W"].T                     # (3, 2)
    b1 = layer.params["b"].reshape(-1, 1)        # (3, 1)
    f = ACTIVATIONS[name].f
    for x_row in X_HAND:
        x = x_row.reshape(-1, 1)                 # (2, 1), a column
        h = f(W1 @ x + b1)                       # (3, 1)
        np.testing.assert_allclose(layer.forward(x.T), h.T, rtol=1e-15)
    # And for a whole batch: Y = f(X W + b) is [f(W1 x_i + b1)]ᵀ stacked.
    np.testing.assert_allclose(layer.forward(X_HAND), f(W1 @ X_HAND.T + b1).T, rtol=1e-15)


def test_backward_by_hand():
    # identity, dY = 1: dA = dY, ∂L/∂W = Xᵀ dA, ∂L/∂b = Σ_rows dA, ∂L/∂X = dA Wᵀ.
    #   Xᵀ 1 = (1 + 2, −1 + 0.5) in every column = [[3, 3, 3], [−0.5, −0.5, −0.5]]
    #   Σ_rows 1 = (2, 2, 2);  1 Wᵀ = row sums of W = (1 + 2 − 1, 3 − 4 + 0) = (2, −1) per row
    layer = hand_layer("identity")
    layer.forward(X_HAND)
    dX = layer.backward(np.ones((2, 3)))
    np.testing.assert_array_equal(layer.grads["W"], [[3.0, 3.0, 3.0], [-0.5, -0.5, -0.5]])
    np.testing.assert_array_equal(layer.grads["b"], [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(dX, [[2.0, -1.0], [2.0, -1.0]])
    # relu: f′ = 1[A > 0] = [[0, 1, 0], [1, 1, 0]] masks dY = 1, so dA is that mask.
    #   Xᵀ dA = [[0·1 + 1·2, 1·1 + 1·2, 0], [0·(−1) + 1·0.5, 1·(−1) + 1·0.5, 0]] = [[2, 3, 0], [0.5, −0.5, 0]]
    #   Σ_rows dA = (1, 2, 0)
    #   dA Wᵀ: row 1 picks W's column 2 = (2, −4); row 2 adds columns 1 and 2 = (3, −1)
    layer = hand_layer("relu")
    layer.forward(X_HAND)
    dX = layer.backward(np.ones((2, 3)))
    np.testing.assert_array_equal(layer.grads["W"], [[2.0, 3.0, 0.0], [0.5, -0.5, 0.0]])
    np.testing.assert_array_equal(layer.grads["b"], [1.0, 2.0, 0.0])
    np.testing.assert_array_equal(dX, [[2.0, -4.0], [3.0, -1.0]])


def test_need_dX_false_skips_only_the_input_gradient():
    layer = hand_layer("tanh")
    layer.forward(X_HAND)
    dY = np.arange(6.0).reshape(2, 3)
    dX = layer.backward(dY)
    grads = {k: v.copy() for k, v in layer.grads.items()}
    layer.forward(X_HAND)
    assert layer.backward(dY, need_dX=False) is None
    for k in grads:
        np.testing.assert_array_equal(layer.grads[k], grads[k])
    assert dX.shape == X_HAND.shape


# --- backward against central differences ---------------------------------------------
#
# gradcheck_layer checks L = Σ Y ⊙ dY, whose gradient is exactly what backward(dY)
# returns, for the input X and for W and b.  Two kinds of draw are set aside:
# * for relu and leaky_relu, pre-activations within 1e-3 of the kink at 0
#   (h = 1e-5 must not carry A across it);
# * draws with a gradient entry that is nonzero but below 1e-4: the central
#   difference's rounding noise is ~ε·|L|/h ≈ 1e-10, so a relative error of such
#   an entry would measure the noise, not the gradient.  (Exact zeros are kept:
#   a dead relu unit has gradient 0 and an unchanged loss, so both sides are 0.)

KINK_MARGIN = 1e-3
GRADIENT_FLOOR = 1e-4


def well_conditioned(arrays):
    return all(np.all((a == 0) | (np.abs(a) >= GRADIENT_FLOOR)) for a in arrays)


def pre_activations(layer):
    """A = X W + b of the layer's last forward pass."""
    return layer.X @ layer.params["W"] + layer.params["b"]


def analytic_gradients(layer, X, dY):
    layer.forward(X)
    dX = layer.backward(dY)
    return [dX, *(g.copy() for g in layer.grads.values())]


sizes = st.integers(1, 4)


@pytest.mark.parametrize("name", NAMES)
@given(n=sizes, n_in=sizes, n_out=sizes, seed=st.integers(0, 2**32 - 1))
def test_dense_gradients(name, n, n_in, n_out, seed):
    rng = np.random.default_rng(seed)
    layer = Dense(n_in, n_out, name, seed=rng, dtype="float64")
    layer.params["b"][...] = rng.normal(scale=0.5, size=n_out)
    X = rng.normal(size=(n, n_in))
    dY = rng.normal(size=(n, n_out))
    grads = analytic_gradients(layer, X, dY)
    if name in KINKED:
        assume(np.abs(pre_activations(layer)).min() >= KINK_MARGIN)
    assume(well_conditioned(grads))
    report = gradcheck_layer(layer, X, dY=dY, eps=H)
    assert [row.name for row in report.rows] == ["X", "W", "b"]
    assert_gradients_ok(report)


@given(sizes=st.lists(sizes, min_size=3, max_size=4),
       activations=st.lists(st.sampled_from(NAMES), min_size=3, max_size=3),
       n=sizes, seed=st.integers(0, 2**32 - 1))
def test_sequential_gradients(sizes, activations, n, seed):
    rng = np.random.default_rng(seed)
    layers = [Dense(n_in, n_out, activation, seed=rng, dtype="float64")
              for n_in, n_out, activation in zip(sizes, sizes[1:], activations)]
    for layer in layers:
        layer.params["b"][...] = rng.normal(scale=0.5, size=layer.shape[1])
    stack = Sequential(layers)
    X = rng.normal(size=(n, sizes[0]))
    dY = rng.normal(size=(n, sizes[-1]))
    grads = analytic_gradients(stack, X, dY)
    inputs = X
    for layer in layers:   # a stack keeps nothing on its layers: their inputs, recomputed
        A = inputs @ layer.params["W"] + layer.params["b"]
        if layer.activation.name in KINKED:
            assume(np.abs(A).min() >= KINK_MARGIN)
        inputs = layer.activation.f(A)
    assume(well_conditioned(grads))
    report = gradcheck_layer(stack, X, dY=dY, eps=H)
    assert [row.name for row in report.rows] == ["X"] + [f"{i}.{k}" for i in range(len(layers))
                                                         for k in ("W", "b")]
    assert_gradients_ok(report)


# --- Sequential bookkeeping -------------------------------------------------------------

def test_sequential_params_are_the_layers_arrays():
    first, second = Dense(2, 3, "tanh", seed=0), Dense(3, 1, "sigmoid", seed=1)
    stack = Sequential([first, second])
    assert list(stack.params) == ["0.W", "0.b", "1.W", "1.b"]
    assert stack.params["1.W"] is second.params["W"]
    assert stack.grads["0.b"] is first.grads["b"]
    stack.params["0.W"][0, 0] = 7.0      # updating the stack's dict updates the layer
    assert first.params["W"][0, 0] == 7.0


def test_sequential_composes_forward_and_reverses_backward():
    first, second = hand_layer("relu"), Dense(3, 2, "identity", seed=3, dtype="float64")
    stack = Sequential([first, second])
    Y = stack.forward(X_HAND)
    np.testing.assert_array_equal(Y, second.forward(first.forward(X_HAND)))
    dY = np.array([[1.0, -2.0], [0.5, 3.0]])
    dX = stack.backward(dY)
    # Chain rule by hand: dH = dY W₂ᵀ, then the first layer's backward.
    dH = dY @ second.params["W"].T
    np.testing.assert_allclose(dX, (dH * (first.forward(X_HAND) > 0)) @ W_HAND.T, rtol=1e-15)


def test_empty_sequential_passes_through():
    stack = Sequential([])
    X = np.ones((2, 3))
    assert stack.forward(X) is X
    assert stack.params == {}


def test_reprs_tell_the_architecture():
    stack = Sequential([Dense(4, 3, "tanh"), Dense(3, 2, "sigmoid")])
    assert repr(stack.layers[0]) == "Dense(4, 3, activation='tanh')"
    assert "Dense(3, 2, activation='sigmoid')" in repr(stack)


# --- initialisation -----------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_initial_weights(name, dtype):
    n_in, n_out = 300, 500
    layer = Dense(n_in, n_out, name, seed=0, dtype=dtype)
    W, b = layer.params["W"], layer.params["b"]
    # U(−r, r) has variance r²/3.  He: r = √(6/n_in) → 2/n_in.
    # Glorot: r = √(6/(n_in + n_out)) → 2/(n_in + n_out).
    fan = n_in if name in ("relu", "leaky_relu") else n_in + n_out
    limit, variance = math.sqrt(6 / fan), 2 / fan
    assert W.shape == (n_in, n_out) and W.dtype == dtype
    assert np.abs(W).max() <= np.asarray(limit, dtype=dtype)
    assert np.abs(W).max() >= 0.999 * limit          # the whole interval is used
    # 150,000 draws: the sample variance has relative standard error √(0.8/N) ≈ 0.23%.
    assert W.astype(np.float64).var() == pytest.approx(variance, rel=0.02)
    assert abs(W.astype(np.float64).mean()) < 4 * math.sqrt(variance / W.size)
    assert b.shape == (n_out,) and b.dtype == dtype and not b.any()


def test_he_and_glorot_are_told_apart():
    relu = Dense(300, 500, "relu", seed=0, dtype="float64").params["W"].var()
    tanh = Dense(300, 500, "tanh", seed=0, dtype="float64").params["W"].var()
    assert relu / tanh == pytest.approx(800 / 300, rel=0.03)


def test_same_seed_same_weights():
    a, b = Dense(5, 4, seed=123), Dense(5, 4, seed=123)
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    assert not np.array_equal(a.params["W"], Dense(5, 4, seed=124).params["W"])


def test_a_generator_is_accepted_and_advanced():
    from_int = Dense(5, 4, seed=7).params["W"]
    rng = np.random.default_rng(7)
    first = Dense(5, 4, seed=rng).params["W"]
    second = Dense(5, 4, seed=rng).params["W"]
    np.testing.assert_array_equal(first, from_int)
    assert not np.array_equal(first, second)
    assert Dense(5, 4, seed=np.int64(7)).params["W"].tolist() == from_int.tolist()


@pytest.mark.parametrize("seed, error", [(-1, ValueError), (1.5, TypeError), ("7", TypeError),
                                         (True, TypeError), ([1, 2], TypeError)])
def test_bad_seed(seed, error):
    with pytest.raises(error, match="seed"):
        Dense(2, 3, seed=seed)


@pytest.mark.parametrize("argument", ["n_in", "n_out"])
@pytest.mark.parametrize("value, error", [(0, ValueError), (-2, ValueError), (2.0, TypeError),
                                          (True, TypeError), ("3", TypeError), (None, TypeError)])
def test_bad_size(argument, value, error):
    # a wrong type is a TypeError, a wrong value a ValueError; both name the argument
    sizes = {"n_in": 2, "n_out": 3, argument: value}
    with pytest.raises(error, match=argument):
        Dense(sizes["n_in"], sizes["n_out"])


@pytest.mark.parametrize("dtype", ["float16", "int64", np.int32, "complex128", "banana"])
def test_bad_dtype(dtype):
    with pytest.raises(ValueError, match="dtype"):
        Dense(2, 3, dtype=dtype)


def test_bad_activation():
    with pytest.raises(ValueError, match="activation"):
        Dense(2, 3, "swish")


def test_wrong_input_shape_and_backward_before_forward():
    layer = Dense(2, 3)
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        layer.forward(np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        layer.forward(np.ones(2, np.float32))
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((4, 3), np.float32))


# --- dtypes -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_float32_in_float32_out(name):
    rng = np.random.default_rng(0)
    stack = Sequential([Dense(3, 4, name, seed=rng), Dense(4, 2, name, seed=rng)])
    X = rng.normal(size=(5, 3)).astype(np.float32)
    Y = stack.forward(X)
    dX = stack.backward(np.ones((5, 2), np.float32))
    assert Y.dtype == np.float32 and dX.dtype == np.float32
    for key, grad in stack.grads.items():
        assert grad.dtype == np.float32, key
        assert stack.params[key].dtype == np.float32, key
    # The float32 result is the float64 one, rounded.
    twin = Sequential([Dense(3, 4, name, dtype="float64"), Dense(4, 2, name, dtype="float64")])
    for key, value in stack.params.items():
        twin.params[key][...] = value
    np.testing.assert_allclose(Y, twin.forward(X.astype(np.float64)), rtol=1e-5, atol=1e-6)
