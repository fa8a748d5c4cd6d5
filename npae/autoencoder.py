"""The autoencoder: compress each example to a code, then reconstruct it.

For one hidden layer this is the source document's model, in row-batch form:

.. math::

    H = f(X W₁ + b₁)          (the code; h = f(W1 x + b1) with W1 = W₁ᵀ)
    X̂ = g(H W₂ + b₂)          (the reconstruction)
    L = (1/n) Σ_i ℓ(x̂_i, x_i)

with ``ℓ`` the binary cross-entropy for a sigmoid output ``g`` (computed from
the logits ``T = H W₂ + b₂``, so ``∂ℓ/∂T = X̂ − X``) or the squared error.
``Autoencoder(784, hidden=(64,))`` is exactly the source document's Keras
model: 784 → Dense 64 relu → Dense 784 sigmoid, binary cross-entropy.

Members of the family, all options of the one class and all adding to ``L``:

* **denoising** (Vincent et al., 2008): encode a corrupted ``X̃`` but score
  the reconstruction against the clean ``X``.  ``noise="mask"`` zeroes each
  input with probability ν (``X̃ = X ⊙ 1[U ≥ ν]``, U uniform);
  ``noise="gaussian"`` adds ``ν·E`` with E standard normal.
* **sparse**: ``sparsity="l1"`` adds ``λ (1/n) Σ_i Σ_j |h_ij|``;
  ``sparsity="kl"`` (sigmoid codes) adds ``λ Σ_j KL(ρ ‖ ρ̂_j)`` where
  ``ρ̂_j = (1/n) Σ_i h_ij`` is unit j's mean activation over the batch and
  ``KL(ρ ‖ ρ̂) = ρ log(ρ/ρ̂) + (1 − ρ) log((1 − ρ)/(1 − ρ̂))`` — the
  penalty of the classic sparse autoencoder, after Olshausen & Field's
  sparse coding.
* **contractive** (Rifai et al., 2011), one-layer encoder: adds
  ``λ (1/n) Σ_i ‖∂h_i/∂x_i‖²_F``.  With ``a = W₁ᵀx + b₁`` the Jacobian is
  ``diag(f′(a)) W₁ᵀ``, so ``‖J‖²_F = Σ_j f′(a_j)² c_j`` with
  ``c_j = Σ_k W₁[k, j]²``, and

  .. math::

      ∂/∂a_j = 2 f′(a_j) f″(a_j) c_j,        ∂/∂W₁[k, j] (direct) = 2 f′(a_j)² W₁[k, j]

* **tied** weights: each decoder weight is the transpose of its encoder
  twin (one parameter; its gradient is the sum of both uses).
"""

import numpy as np

from .activations import get_activation
from .layers import Dense, Sequential, check_dtype, check_size, rng_from
from .losses import bce_with_logits, mse
from .model import Model

OUTPUT_LOSS_PAIRS = {("sigmoid", "bce"), ("identity", "mse"), ("sigmoid", "mse"), ("tanh", "mse")}
NOISES = (None, "mask", "gaussian")
SPARSITIES = (None, "l1", "kl")


class Autoencoder(Model):
    """An autoencoder ``X → H → X̂`` trained to reconstruct its input.

    Parameters
    ----------
    n_features : int
        Width d of the data.
    hidden : tuple of int
        Encoder sizes; the last is the code.  The decoder mirrors them back to d.
    activation : str
        f, the activation of every hidden layer (code included).
    output : str
        g, the output activation: ``"sigmoid"`` (data in [0, 1]), ``"identity"`` or ``"tanh"``.
    loss : ``"bce"`` (with a sigmoid output; computed from the logits) or ``"mse"``.
    tied : bool
        Decoder weights are the transposes of the encoder's.
    noise, noise_level : denoising corruption ``"mask"`` / ``"gaussian"`` and its ν.
    sparsity, sparsity_weight, sparsity_target : ``"l1"`` / ``"kl"`` penalty on the code, λ, ρ.
    contractive_weight : float
        λ of the contractive penalty (one-layer encoder only); 0 disables it.
    seed : int, numpy.random.Generator or None
        Initial weights, then the noise and shuffles of training.
    dtype : ``"float32"`` (default) or ``"float64"`` (for gradient checks).

    ``loss_and_grads(X, eps=...)``: ``eps`` (n, d) fixes the denoising noise —
    uniform draws U for ``"mask"``, standard normal E for ``"gaussian"``.
    """

    def __init__(self, n_features, hidden=(64,), *, activation="relu", output="sigmoid", loss="bce",
                 tied=False, noise=None, noise_level=0.0, sparsity=None, sparsity_weight=0.0,
                 sparsity_target=0.05, contractive_weight=0.0, seed=None, dtype="float32"):
        self.n_features = check_size("n_features", n_features)
        self.hidden = _check_hidden(hidden, allow_empty=False)
        get_activation(activation)
        get_activation(output)
        if (output, loss) not in OUTPUT_LOSS_PAIRS:
            raise ValueError(f"output={output!r} with loss={loss!r} is not supported; use one of "
                             f"{sorted(OUTPUT_LOSS_PAIRS)} (bce is computed from the logits of a sigmoid)")
        if noise not in NOISES:
            raise ValueError(f"noise must be one of {NOISES}, got {noise!r}")
        if sparsity not in SPARSITIES:
            raise ValueError(f"sparsity must be one of {SPARSITIES}, got {sparsity!r}")
        _check_fraction("noise_level", noise_level, upper=1.0 if noise == "mask" else np.inf,
                        closed_upper=False)
        _check_fraction("sparsity_weight", sparsity_weight, upper=np.inf)
        _check_fraction("sparsity_target", sparsity_target, upper=1.0, closed_upper=False,
                        open_lower=True)
        _check_fraction("contractive_weight", contractive_weight, upper=np.inf)
        if sparsity == "kl" and activation != "sigmoid":
            raise ValueError("sparsity='kl' needs codes in (0, 1): use activation='sigmoid'")
        if contractive_weight and len(self.hidden) != 1:
            raise ValueError("contractive_weight needs a one-layer encoder: hidden=(k,)")
        self.activation, self.output, self.loss = activation, output, loss
        self.tied, self.noise, self.noise_level = bool(tied), noise, float(noise_level)
        self.sparsity, self.sparsity_weight = sparsity, float(sparsity_weight)
        self.sparsity_target, self.contractive_weight = float(sparsity_target), float(contractive_weight)
        self.seed, self.dtype = seed, check_dtype(dtype)
        self.needs_unit_interval = loss == "bce"
        self.rng = rng_from(seed)

        sizes = (self.n_features,) + self.hidden
        self.encoder = Sequential(Dense(a, b, activation, seed=self.rng, dtype=self.dtype)
                                  for a, b in zip(sizes[:-1], sizes[1:]))
        last = "identity" if loss == "bce" else output  # bce takes the logits
        back = sizes[::-1]
        self.decoder = Sequential(
            Dense(a, b, last if i == len(back) - 2 else activation, seed=self.rng, dtype=self.dtype)
            for i, (a, b) in enumerate(zip(back[:-1], back[1:])))
        if self.tied:
            for dec, enc in zip(self.decoder.layers, reversed(self.encoder.layers)):
                dec.params["W"] = enc.params["W"].T
        self.history = {}

    @property
    def code_size(self):
        return self.hidden[-1]

    @property
    def params(self):
        """Live parameters: ``encoder.<i>.W/b``, ``decoder.<i>.W/b`` (no decoder W when tied)."""
        params = {f"encoder.{k}": v for k, v in self.encoder.params.items()}
        for k, v in self.decoder.params.items():
            if not (self.tied and k.endswith(".W")):
                params[f"decoder.{k}"] = v
        return params

    def _check_eps(self, eps, n):
        if self.noise is None:
            if eps is not None:
                raise ValueError("eps fixes the denoising noise, but this model has noise=None")
            return None
        if eps is None:
            draw = self.rng.random if self.noise == "mask" else self.rng.standard_normal
            return draw((n, self.n_features), dtype=self.dtype)
        eps = np.asarray(eps, dtype=self.dtype)
        if eps.shape != (n, self.n_features):
            raise ValueError(f"eps must have shape {(n, self.n_features)}, got {eps.shape}")
        return eps

    def corrupt(self, X, eps):
        """The denoising corruption X̃ of the clean batch X, given the noise draws eps."""
        if self.noise == "mask":
            return X * (eps >= self.noise_level)
        if self.noise == "gaussian":
            return X + self.noise_level * eps
        return X

    def _loss_and_grads(self, X, eps=None):
        """Forward and backward through the whole autoencoder on a checked batch."""
        if eps is None and self.noise is not None:
            eps = self._check_eps(None, X.shape[0])
        n = X.shape[0]
        X_in = self.corrupt(X, eps)
        H = self.encoder.forward(X_in)
        out = self.decoder.forward(H)
        if self.loss == "bce":
            loss, dout = bce_with_logits(out, X)
        else:
            loss, dout = mse(out, X)

        dH = self.decoder.backward(dout)
        if self.sparsity == "l1":
            loss += self.sparsity_weight * float(np.abs(H).sum()) / n
            dH += (self.sparsity_weight / n) * np.sign(H)
        elif self.sparsity == "kl":
            # ρ̂ is clamped to [1e-6, 1 − 1e-6] so a saturated unit cannot give log(0);
            # where the clamp bites, the penalty is flat and passes no gradient
            rho, mean_h = self.sparsity_target, H.mean(axis=0)
            rho_hat = np.clip(mean_h, 1e-6, 1 - 1e-6)
            loss += self.sparsity_weight * float(np.sum(
                rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat))))
            inside = (mean_h >= 1e-6) & (mean_h <= 1 - 1e-6)
            dH += (self.sparsity_weight / n) * (-rho / rho_hat + (1 - rho) / (1 - rho_hat)) * inside

        if self.contractive_weight:
            loss += self._contractive_backward(dH, n)
        else:
            self.encoder.backward(dH, need_dX=False)
        return loss, self._collect_grads()

    def _contractive_backward(self, dH, n):
        """Backward through the one-layer encoder with the contractive penalty; returns it."""
        layer, lam = self.encoder.layers[0], self.contractive_weight
        H, W = layer._Y, layer.params["W"]
        act = layer.activation
        df, d2f = act.df(H), act.d2f(H)
        c = (W * W).sum(axis=0)                       # c_j = Σ_k W[k, j]²
        penalty = lam / n * float(((df * df) @ c).sum())     # λ (1/n) Σ_i Σ_j f′(a_ij)² c_j
        dA = dH * df + (2 * lam / n) * df * d2f * c   # ∂/∂a through f′ and through the penalty
        layer.backward_affine(dA, need_dX=False)
        layer.grads["W"] += (2 * lam / n) * W * (df * df).sum(axis=0)
        return penalty

    def _collect_grads(self):
        grads = {f"encoder.{k}": v for k, v in self.encoder.grads.items()}
        for k, v in self.decoder.grads.items():
            if self.tied and k.endswith(".W"):
                i = len(self.decoder.layers) - 1 - int(k.split(".")[0])
                grads[f"encoder.{i}.W"] = grads[f"encoder.{i}.W"] + v.T
            else:
                grads[f"decoder.{k}"] = v
        return grads

    def _encode_batch(self, X):
        return self.encoder.forward(X).copy()

    def _decode_batch(self, H):
        out = self.decoder.forward(H)
        return get_activation("sigmoid").f(out) if self.loss == "bce" else out.copy()

    def __repr__(self):
        sizes = " → ".join(str(s) for s in (self.n_features,) + self.hidden + self.hidden[-2::-1]
                           + (self.n_features,))
        extras = [f"{k}={getattr(self, k)!r}" for k in ("tied", "noise", "sparsity")
                  if getattr(self, k)]
        if self.contractive_weight:
            extras.append(f"contractive_weight={self.contractive_weight:g}")
        return (f"Autoencoder({sizes}, activation={self.activation!r}, output={self.output!r}, "
                f"loss={self.loss!r}{''.join(', ' + e for e in extras)}; "
                f"{self.n_parameters:,} parameters)")


def _check_hidden(hidden, *, allow_empty):
    if isinstance(hidden, (int, np.integer)) and not isinstance(hidden, bool):
        hidden = (hidden,)
    try:
        hidden = tuple(hidden)
    except TypeError:
        raise TypeError(f"hidden must be a tuple of positive ints, got {hidden!r}") from None
    if not hidden and not allow_empty:
        raise ValueError("hidden must name at least one layer size, e.g. hidden=(64,)")
    checked = tuple(check_size("hidden", h) for h in hidden)
    # a tuple of ints is kept as given: scikit-learn's clone checks get_params() by identity
    return hidden if all(type(h) is int for h in hidden) else checked


def _check_fraction(name, value, *, upper, closed_upper=True, open_lower=False):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    low_ok = value > 0 if open_lower else value >= 0
    high_ok = value <= upper if closed_upper else value < upper
    if not (np.isfinite(value) and low_ok and high_ok):
        low = "(0" if open_lower else "[0"
        high = f"{upper:g}]" if closed_upper else f"{upper:g})"
        raise ValueError(f"{name} must be in {low}, {high}, got {value!r}")
    return value
