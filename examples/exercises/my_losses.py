"""A loss a student might write, to try ``python -m npae check`` on.

The Huber loss of a prediction ŷ against a target y, with r = ŷ − y and
threshold δ, averaged over the n rows and summed over the features:

    ρ(r) = ½ r²             if |r| ≤ δ
         = δ (|r| − ½ δ)    otherwise

    L = (1/n) Σ_i Σ_j ρ(r_ij),     ∂L/∂ŷ = ψ(r) / n,   ∂L/∂y = −ψ(r) / n,
    ψ(r) = ρ′(r) = clip(r, −δ, δ)

Quadratic near zero and linear in the tails, it is the squared error that
stops listening to outliers.  ψ is continuous, so the loss has no kink (only
its second derivative jumps at |r| = δ) and finite differences agree with ψ.

``loss_and_grads(prediction, target)`` returns the loss and a tuple of the
gradients with respect to each input, in the order of the arguments:

    python -m npae check examples/exercises/my_losses.py:Huber
    python -m npae check examples/exercises/my_losses.py:Huber --shape 8,5 --shape 8,5
"""

import numpy as np


class Huber:
    """Huber loss ``(1/n) Σ ρ(ŷ − y)`` with δ = 1."""

    delta = 1.0

    def loss_and_grads(self, prediction, target):
        n, delta = prediction.shape[0], self.delta
        r = prediction - target
        small = np.abs(r) <= delta
        loss = np.where(small, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta)).sum() / n
        psi = np.clip(r, -delta, delta)
        return loss, (psi / n, -psi / n)


class PseudoHuber:
    """Pseudo-Huber loss ``(1/n) Σ δ² (√(1 + (r/δ)²) − 1)``, smooth everywhere.

    ∂/∂r = r / √(1 + (r/δ)²); the gradients are returned as a dict keyed by
    the argument names, the other convention ``npae check`` accepts.
    """

    delta = 1.0

    def loss_and_grads(self, prediction, target):
        n, delta = prediction.shape[0], self.delta
        r = prediction - target
        root = np.sqrt(1 + (r / delta) ** 2)
        psi = r / root
        return (delta**2 * (root - 1)).sum() / n, {"prediction": psi / n, "target": -psi / n}
