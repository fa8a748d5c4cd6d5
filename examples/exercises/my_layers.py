"""Two layers a student might write, to try ``python -m npae check`` on.

Both compute the same thing, a per-feature scaled square plus a shift,

    Y = γ ⊙ X² + β            X, Y: (n, d);  γ, β: (d,)

whose backward pass, given dY = ∂L/∂Y, is

    ∂L/∂X = 2 γ ⊙ X ⊙ dY      (the power rule: d(x²)/dx = 2x)
    ∂L/∂γ = Σ_rows X² ⊙ dY
    ∂L/∂β = Σ_rows dY

``Good`` writes all three correctly.  ``Buggy`` forgets the 2 of the power
rule in ∂L/∂X, the most common slip there is; the checker's table shows the
X row wrong (relative error |x − 2x| / (|x| + |2x|) = 1/3, analytic/numeric = 1/2 at
every entry) while γ and β pass:

    python -m npae check examples/exercises/my_layers.py:Good     # PASS, exit 0
    python -m npae check examples/exercises/my_layers.py:Buggy    # FAIL, exit 1

The graded series of exercises is ``python -m npae exercise list`` (see README.md here).
"""

import numpy as np


class Good:
    """``Y = γ ⊙ X² + β``, with a correct backward."""

    input_shapes = [(4, 3)]  # one input X of 4 rows and 3 features; --shape overrides it

    def __init__(self, n_features=3):
        rng = np.random.default_rng(0)
        self.params = {"gamma": rng.uniform(0.5, 1.5, n_features), "beta": np.zeros(n_features)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, X):
        self.X = X  # kept for backward
        return self.params["gamma"] * X**2 + self.params["beta"]

    def backward(self, dY):
        X, gamma = self.X, self.params["gamma"]
        self.grads["gamma"] = (X**2 * dY).sum(axis=0)
        self.grads["beta"] = dY.sum(axis=0)
        return 2 * gamma * X * dY


class Buggy(Good):
    """``Y = γ ⊙ X² + β``, with the 2 of d(x²)/dx = 2x forgotten in ∂L/∂X."""

    def backward(self, dY):
        super().backward(dY)
        return self.params["gamma"] * self.X * dY  # should be 2 * gamma * X * dY
