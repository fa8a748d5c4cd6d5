"""The variational autoencoder (Kingma & Welling, 2013), with gradients through the sampling.

Model and approximate posterior, for a data row x and a latent z ∈ ℝᵏ:

.. math::

    p(z) = N(0, I)                       p(x|z) = Bernoulli(σ(T(z)))  or  N(x; μ_x(z), σ_x² I)
    q(z|x) = N(μ(x), diag σ²(x))         h = f(x W₁ + b₁)  (the encoder stack)
    μ = h W_μ + b_μ                      log σ² = h W_v + b_v      (two linear heads)

The encoder predicts **log σ²**, not σ² through an activation: any real
number is a valid log-variance, so no activation is needed to keep σ²
positive, and the KL term is linear in it.  Sampling is *reparameterised*:

.. math::

    z = μ + σ ⊙ ε,   σ = exp(½ log σ²),   ε ~ N(0, I)

so z is a differentiable function of μ and log σ² for a fixed ε, and the
gradients of the decoder reach the encoder:

.. math::

    ∂L/∂μ = ∂L/∂z + β μ / n          ∂L/∂log σ² = ∂L/∂z ⊙ ε ⊙ σ / 2 + β (σ² − 1) / 2n

The loss per example is the negative evidence lower bound

.. math::

    −ELBO = −E_q[log p(x|z)] + β KL(q(z|x) ‖ N(0, I)),    KL = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²)

with the expectation estimated by one sample; for β = 1 it is in nats and
bounds −log p(x) from above.  With ``objective="iwae"`` the loss is instead
the importance-weighted bound of Burda et al. (2015) with k samples,

.. math::

    −log (1/k) Σ_i w_i,    log w_i = log p(x|z_i) + β [log p(z_i) − log q(z_i|x)],

whose reparameterised gradient weighs each sample's gradient by its
normalised weight ``w̃_i = w_i / Σ_l w_l`` (a softmax of the log-weights).

The encoder's log σ² (and the Gaussian decoder's log σ_x²) is clamped to
[−30, 20] before use; outside that range its gradient is zero, consistent
with the clamped forward pass.  e^20 ≈ 5·10⁸ and e^−30 ≈ 10⁻¹³ are far past
anything a trained model uses, and keep exp() finite in float32.
"""

import math

import numpy as np

from .activations import sigmoid
from .autoencoder import _check_fraction, _check_hidden
from .layers import Dense, Sequential, check_dtype, check_size, rng_from
from .losses import bce_with_logits, gaussian_nll, kl_normal
from .model import Model, check_rows

LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0
LIKELIHOODS = ("bernoulli", "gaussian")
OBJECTIVES = ("elbo", "iwae")
_ROWS_PER_PASS = 8192  # rows (examples × samples) of one decoder pass in evaluation


class VAE(Model):
    """A variational autoencoder with a diagonal-Gaussian posterior and a standard-normal prior.

    Parameters
    ----------
    n_features : int
        Width d of the data.
    hidden : tuple of int
        Encoder stack sizes; the decoder mirrors them (``()`` for none).
    latent : int
        k, the size of z.
    activation : str
        f, the hidden layers' activation.
    likelihood : ``"bernoulli"`` (data in [0, 1]; decoder outputs logits) or
        ``"gaussian"`` (decoder outputs the mean; a learned per-feature log σ_x²).
    beta : float
        Weight of the KL term (β-VAE, Higgins et al., 2017); 1 gives the ELBO.
    warmup_epochs : int
        KL warm-up: β grows linearly from β/N to β over the first N epochs of ``fit``.
    objective : ``"elbo"`` or ``"iwae"`` (train on the k-sample importance-weighted bound).
    k : int
        Samples per example for ``objective="iwae"``.
    seed, dtype : as for :class:`~npae.Autoencoder`.

    ``loss_and_grads(X, eps=...)``: ``eps`` fixes ε — shape (n, latent) for
    the ELBO, (k, n, latent) for IWAE — making the loss deterministic.
    """

    needs_unit_interval = True

    def __init__(self, n_features, hidden=(400,), latent=20, *, activation="relu",
                 likelihood="bernoulli", beta=1.0, warmup_epochs=0, objective="elbo", k=1,
                 seed=None, dtype="float32"):
        self.n_features = check_size("n_features", n_features)
        self.hidden = _check_hidden(hidden, allow_empty=True)
        self.latent = check_size("latent", latent)
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        self.beta = _check_fraction("beta", beta, upper=np.inf)
        _check_fraction("warmup_epochs", warmup_epochs, upper=np.inf)
        # an int is kept as given: scikit-learn's clone checks get_params() by identity
        self.warmup_epochs = warmup_epochs if type(warmup_epochs) is int else int(warmup_epochs)
        self.k = check_size("k", k)
        self.activation, self.likelihood, self.objective = activation, likelihood, objective
        self.seed, self.dtype = seed, check_dtype(dtype)
        self.needs_unit_interval = likelihood == "bernoulli"
        self.rng = rng_from(seed)
        self.current_beta = self.beta

        sizes = (self.n_features,) + self.hidden
        top = sizes[-1]
        self.encoder = Sequential(Dense(a, b, activation, seed=self.rng, dtype=self.dtype)
                                  for a, b in zip(sizes[:-1], sizes[1:]))
        self.mu_head = Dense(top, self.latent, "identity", seed=self.rng, dtype=self.dtype)
        self.logvar_head = Dense(top, self.latent, "identity", seed=self.rng, dtype=self.dtype)
        back = (self.latent,) + self.hidden[::-1] + (self.n_features,)
        self.decoder = Sequential(
            Dense(a, b, "identity" if i == len(back) - 2 else activation, seed=self.rng, dtype=self.dtype)
            for i, (a, b) in enumerate(zip(back[:-1], back[1:])))
        # log σ_x² of the Gaussian decoder, one per feature, starting at σ_x = 1
        self.x_logvar = np.zeros(self.n_features, dtype=self.dtype) if likelihood == "gaussian" else None
        self.history = {}

    @property
    def code_size(self):
        return self.latent

    @property
    def params(self):
        """Live parameters: ``encoder.<i>.W/b``, ``mu.W/b``, ``logvar.W/b``,
        ``decoder.<i>.W/b`` and, for the Gaussian likelihood, ``x_logvar``."""
        params = {f"encoder.{k}": v for k, v in self.encoder.params.items()}
        params.update({f"mu.{k}": v for k, v in self.mu_head.params.items()})
        params.update({f"logvar.{k}": v for k, v in self.logvar_head.params.items()})
        params.update({f"decoder.{k}": v for k, v in self.decoder.params.items()})
        if self.x_logvar is not None:
            params["x_logvar"] = self.x_logvar
        return params

    def begin_epoch(self, epoch):
        """KL warm-up: β_epoch = β · min(1, (epoch + 1) / warmup_epochs)."""
        ramp = 1.0 if self.warmup_epochs == 0 else min(1.0, (epoch + 1) / self.warmup_epochs)
        self.current_beta = self.beta * ramp

    # -- the pieces of the model ----------------------------------------------
    def posterior(self, X):
        """``(mu, logvar)`` of q(z|x) for each row of X, each (n, latent)."""
        def heads(x):
            mu, logvar, _ = self._posterior_batch(x)
            return np.concatenate([mu, logvar], axis=1)
        both = self._map_rows(heads, X, self.n_features)
        return both[:, :self.latent], both[:, self.latent:]

    def _posterior_batch(self, X):
        H = self.encoder.forward(X)
        mu = self.mu_head.forward(H)
        raw = self.logvar_head.forward(H)
        logvar = np.clip(raw, LOGVAR_MIN, LOGVAR_MAX)
        return mu, logvar, raw

    def _x_logvar(self):
        return np.clip(self.x_logvar, LOGVAR_MIN, LOGVAR_MAX)

    def _nll(self, out, X, *, per_example):
        """−log p(x|z) from the decoder output: (loss, dout, dx_logvar or None)."""
        if self.likelihood == "bernoulli":
            return (*bce_with_logits(out, X, per_example=per_example), None)
        x_logvar = self._x_logvar()
        if per_example == "rows":  # gradient of log σ_x² kept per row, for weighting
            x_logvar = np.broadcast_to(x_logvar, out.shape)
        return gaussian_nll(X, out, x_logvar, per_example=bool(per_example))

    def _check_eps(self, eps, n):
        shape = (n, self.latent) if self.objective == "elbo" else (self.k, n, self.latent)
        if eps is None:
            return self.rng.standard_normal(shape, dtype=self.dtype)
        eps = np.asarray(eps, dtype=self.dtype)
        if eps.shape != shape:
            raise ValueError(f"eps must have shape {shape} for objective={self.objective!r}, "
                             f"got {eps.shape}")
        return eps

    # -- loss and gradients ---------------------------------------------------
    def _loss_and_grads(self, X, eps=None):
        eps = self._check_eps(eps, X.shape[0]) if eps is None else eps
        mu, logvar, raw = self._posterior_batch(X)
        std = np.exp(0.5 * logvar)
        if self.objective == "elbo":
            loss, dmu, dlogvar, dx_logvar = self._elbo_backward(X, mu, logvar, std, eps)
        else:
            loss, dmu, dlogvar, dx_logvar = self._iwae_backward(X, mu, logvar, std, eps)
        dlogvar *= (raw >= LOGVAR_MIN) & (raw <= LOGVAR_MAX)  # the clamp passes no gradient
        dH = self.mu_head.backward(dmu)
        dH += self.logvar_head.backward(dlogvar)
        self.encoder.backward(dH, need_dX=False)
        grads = {f"encoder.{k}": v for k, v in self.encoder.grads.items()}
        grads.update({f"mu.{k}": v for k, v in self.mu_head.grads.items()})
        grads.update({f"logvar.{k}": v for k, v in self.logvar_head.grads.items()})
        grads.update({f"decoder.{k}": v for k, v in self.decoder.grads.items()})
        if self.x_logvar is not None:
            inside = (self.x_logvar >= LOGVAR_MIN) & (self.x_logvar <= LOGVAR_MAX)
            grads["x_logvar"] = dx_logvar * inside
        return loss, grads

    def _elbo_backward(self, X, mu, logvar, std, eps):
        """One-sample −ELBO (β-weighted KL) and its gradients for μ, log σ², log σ_x²."""
        z = mu + std * eps
        out = self.decoder.forward(z)
        recon, dout, dx_logvar = self._nll(out, X, per_example=False)
        kl, dmu_kl, dlogvar_kl = kl_normal(mu, logvar)
        beta = self.current_beta
        dz = self.decoder.backward(dout)
        dmu = dz + beta * dmu_kl
        dlogvar = dz * eps * std * 0.5 + beta * dlogvar_kl
        return recon + beta * kl, dmu, dlogvar, dx_logvar

    def _iwae_backward(self, X, mu, logvar, std, eps):
        """k-sample importance-weighted bound and its reparameterised gradients."""
        k, n = eps.shape[0], X.shape[0]
        log_w, cache = self._log_weights(X, mu, logvar, std, eps, keep="rows")
        z, out, dout, dx_logvar_rows = cache
        top = log_w.max(axis=0)
        w = np.exp(log_w - top)
        total = w.sum(axis=0)
        loss = -float(np.mean(np.log(total) + top - math.log(k)))
        weight = (w / total) / n                                      # w̃_i / n, shape (k, n)
        # ∂(−log w_i)/∂out = ∂nll/∂out; the nll's gradient came divided by k·n rows
        row_weight = (weight * (k * n)).reshape(-1, 1)
        dz = self.decoder.backward(dout * row_weight)
        dz += self.current_beta * z * weight.reshape(-1, 1)           # from −β log p(z_i)
        dz = dz.reshape(k, n, self.latent)
        dmu = dz.sum(axis=0)
        dlogvar = (dz * eps).sum(axis=0) * std * 0.5 - self.current_beta * 0.5 / n  # −β log q part
        dx_logvar = None
        if dx_logvar_rows is not None:
            dx_logvar = (dx_logvar_rows * row_weight).sum(axis=0)
        return loss, dmu, dlogvar, dx_logvar

    def _log_weights(self, X, mu, logvar, std, eps, *, keep=None):
        """``log w_i = log p(x|z_i) + β [log p(z_i) − log q(z_i|x)]`` for eps (k, n, latent).

        With z = μ + σ ⊙ ε, ``log p(z) − log q(z|x) = ½ Σ_j (ε_j² + log σ_j² − z_j²)``
        (the ½ log 2π terms cancel).  Returns log w (k, n) and, with ``keep``,
        what the gradient needs.
        """
        k, n = eps.shape[0], X.shape[0]
        z = (mu + std * eps).reshape(k * n, self.latent)
        out = self.decoder.forward(z)
        X_rows = np.broadcast_to(X, (k, n, self.n_features)).reshape(k * n, self.n_features)
        nll, dout, dx_logvar = self._nll(out, X_rows, per_example=keep or True)
        eps_rows = eps.reshape(k * n, self.latent)
        prior_minus_q = 0.5 * ((eps_rows * eps_rows - z * z).sum(axis=1) + np.tile(logvar.sum(axis=1), k))
        log_w = (-nll + self.current_beta * prior_minus_q).reshape(k, n)
        return log_w, (z, out, dout, dx_logvar)

    # -- evaluation ------------------------------------------------------------
    def elbo(self, X, *, n_samples=1, seed=None):
        """Per-example ELBO (β = 1), averaged over ``n_samples`` draws of ε; shape (n,)."""
        n_samples = check_size("n_samples", n_samples)
        rng = rng_from(seed)

        def batch_elbo(x):
            mu, logvar, _ = self._posterior_batch(x)
            std = np.exp(0.5 * logvar)
            kl = kl_normal(mu, logvar, per_example=True)[0]
            recon = np.zeros(x.shape[0], dtype=np.float64)
            for _ in range(n_samples):
                z = mu + std * rng.standard_normal(mu.shape, dtype=self.dtype)
                recon += self._nll(self.decoder.forward(z), x, per_example=True)[0]
            return -(recon / n_samples + kl)
        return self._map_rows(batch_elbo, X, self.n_features)

    def log_likelihood(self, X, *, k=1000, seed=None):
        """Per-example importance-weighted estimate of log p(x) with k samples (the IWAE bound).

        .. math::

            log p(x) ≥ log (1/k) Σ_i p(x, z_i) / q(z_i|x),   z_i ~ q(z|x)

        computed with logsumexp, in passes of at most ~8k decoder rows so memory
        stays bounded for any k.  It is at least the ELBO on average and grows with k.
        """
        k = check_size("k", k)
        rng = rng_from(seed)
        beta, self.current_beta = self.current_beta, 1.0

        def batch_log_likelihood(x):
            n = x.shape[0]
            mu, logvar, _ = self._posterior_batch(x)
            std = np.exp(0.5 * logvar)
            running = np.full(n, -np.inf)
            per_pass = max(1, _ROWS_PER_PASS // n)
            for start in range(0, k, per_pass):
                eps = rng.standard_normal((min(per_pass, k - start), n, self.latent), dtype=self.dtype)
                log_w = self._log_weights(x, mu, logvar, std, eps)[0].astype(np.float64)
                top = log_w.max(axis=0)
                running = np.logaddexp(running, top + np.log(np.exp(log_w - top).sum(axis=0)))
            return running - math.log(k)

        try:
            X = check_rows(X, self.n_features, allow_empty=True)
            chunks = [self._map_rows(batch_log_likelihood, X[i:i + 256], self.n_features)
                      for i in range(0, X.shape[0], 256)]
            return np.concatenate(chunks) if chunks else np.zeros(0)
        finally:
            self.current_beta = beta

    def sample(self, n, *, seed=None):
        """``n`` draws from the model: decoded means for z ~ N(0, I); shape (n, n_features)."""
        n = check_size("n", n)
        z = rng_from(seed).standard_normal((n, self.latent), dtype=self.dtype)
        return self.decode(z)

    def _encode_batch(self, X):
        return self._posterior_batch(X)[0].copy()

    def _decode_batch(self, Z):
        out = self.decoder.forward(Z)
        return sigmoid(out) if self.likelihood == "bernoulli" else out.copy()

    def __repr__(self):
        sizes = " → ".join(str(s) for s in (self.n_features,) + self.hidden)
        back = " → ".join(str(s) for s in self.hidden[::-1] + (self.n_features,))
        extras = "".join(f", {k}={getattr(self, k)!r}" for k in ("objective", "k", "warmup_epochs")
                         if getattr(self, k) not in ("elbo", 1, 0))
        return (f"VAE({sizes} → (μ, log σ²) {self.latent} → {back}, activation={self.activation!r}, "
                f"likelihood={self.likelihood!r}, beta={self.beta:g}{extras}; "
                f"{self.n_parameters:,} parameters)")
