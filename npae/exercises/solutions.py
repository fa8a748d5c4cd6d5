"""The reference solutions of the exercises, in plain NumPy: what ``npae exercise check`` grades
a student's forward values against.  (The grader never prints them.)

Each class follows the protocol its exercise asks for — a layer (``forward`` / ``backward``),
a loss (``loss_and_grads``) or a model (``params`` and ``loss_and_grads``) — and the loss
convention of :mod:`npae.losses`: summed over features, averaged over the n rows.
"""

import numpy as np


# -- 1. the dense layer ----------------------------------------------------------------------
class Dense:
    """``Y = X W + b``; X (n, d_in), W (d_in, d_out), b (d_out,).

    dW = Xᵀ dY,  db = Σ_rows dY,  dX = dY Wᵀ.
    """

    def __init__(self, n_in=4, n_out=4, seed=0):
        rng = np.random.default_rng(seed)
        self.params = {"W": rng.normal(scale=0.5, size=(n_in, n_out)), "b": rng.normal(size=n_out)}
        self.grads = {}

    def forward(self, X):
        self.X = X
        return X @ self.params["W"] + self.params["b"]

    def backward(self, dY):
        self.grads["W"] = self.X.T @ dY
        self.grads["b"] = dY.sum(axis=0)
        return dY @ self.params["W"].T


# -- 2. the activations, f′ from the output --------------------------------------------------
class Sigmoid:
    """``y = σ(x) = 1 / (1 + e^{−x})``, ``σ′ = y (1 − y)``."""

    def forward(self, X):
        self.Y = np.exp(-np.logaddexp(0.0, -X))
        return self.Y

    def backward(self, dY):
        return dY * self.Y * (1 - self.Y)


class Tanh:
    """``y = tanh(x)``, ``tanh′ = 1 − y²``."""

    def forward(self, X):
        self.Y = np.tanh(X)
        return self.Y

    def backward(self, dY):
        return dY * (1 - self.Y * self.Y)


class Relu:
    """``y = max(x, 0)``, ``relu′ = [y > 0]``."""

    def forward(self, X):
        self.Y = np.maximum(X, 0.0)
        return self.Y

    def backward(self, dY):
        return dY * (self.Y > 0)


# -- 3, 4. the reconstruction losses -----------------------------------------------------------
class BCEWithLogits:
    """``ℓ = Σ_j [max(t, 0) − x t + log(1 + e^{−|t|})]``, ``∂L/∂t = (σ(t) − x) / n``."""

    def loss_and_grads(self, logits, x):
        n = logits.shape[0]
        per_entry = np.maximum(logits, 0) - x * logits + np.log1p(np.exp(-np.abs(logits)))
        sigma = np.exp(-np.logaddexp(0.0, -logits))
        return per_entry.sum() / n, (sigma - x) / n


class SquaredError:
    """``ℓ = Σ_j (x̂_j − x_j)²``, ``∂L/∂x̂ = 2 (x̂ − x) / n``."""

    def loss_and_grads(self, prediction, x):
        n = prediction.shape[0]
        diff = prediction - x
        return (diff * diff).sum() / n, 2 * diff / n


# -- 5, 6. the Gaussian terms ----------------------------------------------------------------
class GaussianNLL:
    """``ℓ = ½ Σ_j [log 2π + s_j + (x_j − μ_j)² e^{−s_j}]`` with one learned ``s = log σ²`` per
    feature, shape (d,), broadcast over the rows; its gradient is summed back over them."""

    def loss_and_grads(self, x, mu, logvar):
        n = x.shape[0]
        inv_var = np.exp(-logvar)
        diff = mu - x
        scaled_sq = diff * diff * inv_var
        loss = 0.5 * (np.log(2 * np.pi) + logvar + scaled_sq).sum() / n
        return loss, (diff * inv_var / n, (0.5 * (1 - scaled_sq) / n).sum(axis=0))


class KL:
    """``KL(N(μ, diag e^{s}) ‖ N(0, I)) = ½ Σ_j (μ_j² + e^{s_j} − 1 − s_j)``, averaged over rows."""

    def loss_and_grads(self, mu, logvar):
        n = mu.shape[0]
        var = np.exp(logvar)
        kl = 0.5 * (mu * mu + var - 1 - logvar).sum() / n
        return kl, (mu / n, 0.5 * (var - 1) / n)


# -- 7, 8. sampling and importance weights ----------------------------------------------------
class Reparameterize:
    """``z = μ + e^{s/2} ⊙ ε``, ε a fixed input: dμ = dz, ds = ½ dz ⊙ e^{s/2} ⊙ ε."""

    def forward(self, mu, logvar, eps):
        self.std_eps = np.exp(0.5 * logvar) * eps
        return mu + self.std_eps

    def backward(self, dz):
        return dz, 0.5 * dz * self.std_eps


class IWAELoss:
    """``L = −(1/n) Σ_i [logsumexp_k log w_ik − log K]``; ``∂L/∂log w_ik = −w̃_ik / n`` with the
    normalised importance weights ``w̃_ik = w_ik / Σ_l w_il`` (a softmax over k)."""

    def loss_and_grads(self, log_w):
        n, k = log_w.shape
        top = log_w.max(axis=1, keepdims=True)
        shifted = np.exp(log_w - top)
        total = shifted.sum(axis=1, keepdims=True)
        bound = (top + np.log(total)).ravel() - np.log(k)
        return -bound.sum() / n, -(shifted / total) / n


# -- 9. a whole one-layer VAE ----------------------------------------------------------------------
class OneLayerVAE:
    """``h = tanh(X W_enc + b_enc)``; ``μ = h W_mu + b_mu``, ``s = h W_logvar + b_logvar``;
    ``z = μ + e^{s/2} ⊙ ε``; ``t = z W_dec + b_dec``;
    ``L = (1/n) Σ_i [BCE(t_i, x_i) + KL_i]``, the negative ELBO of one sample per row."""

    def __init__(self, n_features=6, n_hidden=5, latent=2, seed=0, scale=0.3):
        rng = np.random.default_rng(seed)
        shapes = {"W_enc": (n_features, n_hidden), "b_enc": (n_hidden,), "W_mu": (n_hidden, latent),
                  "b_mu": (latent,), "W_logvar": (n_hidden, latent), "b_logvar": (latent,),
                  "W_dec": (latent, n_features), "b_dec": (n_features,)}
        self.params = {k: rng.normal(scale=scale, size=s) for k, s in shapes.items()}

    def loss_and_grads(self, X, eps):
        p = self.params
        h = np.tanh(X @ p["W_enc"] + p["b_enc"])
        mu, logvar = h @ p["W_mu"] + p["b_mu"], h @ p["W_logvar"] + p["b_logvar"]
        std = np.exp(0.5 * logvar)
        z = mu + std * eps
        logits = z @ p["W_dec"] + p["b_dec"]
        recon, dlogits = BCEWithLogits().loss_and_grads(logits, X)
        kl, (dmu, dlogvar) = KL().loss_and_grads(mu, logvar)
        dz = dlogits @ p["W_dec"].T
        dmu = dmu + dz                                   # z = μ + σ ε: ∂z/∂μ = 1
        dlogvar = dlogvar + 0.5 * dz * std * eps         # ∂z/∂s = ½ σ ε
        dh = dmu @ p["W_mu"].T + dlogvar @ p["W_logvar"].T
        da = dh * (1 - h * h)
        grads = {"W_enc": X.T @ da, "b_enc": da.sum(axis=0),
                 "W_mu": h.T @ dmu, "b_mu": dmu.sum(axis=0),
                 "W_logvar": h.T @ dlogvar, "b_logvar": dlogvar.sum(axis=0),
                 "W_dec": z.T @ dlogits, "b_dec": dlogits.sum(axis=0)}
        return recon + kl, grads
