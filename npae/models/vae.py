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

``score_samples`` is each row's ELBO (β = 1) estimated with the same four
draws ε₁…ε₄ for every row (from a fixed seed), so a row's score depends on
that row alone, never on its position in X; ``score`` is their mean.
"""

import math

import numpy as np

from .. import checks
from ..nn.activations import get_activation, sigmoid
from ..nn.layers import INITS, Dense, Sequential, stack_shapes
from ..data import unit_interval
from ..nn.losses import bce_with_logits, gaussian_nll, kl_normal
from .estimator import Estimator
from .fast_vae import VAEStep

LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0
LIKELIHOODS = ("bernoulli", "gaussian")
OBJECTIVES = ("elbo", "iwae")
ROWS_PER_PASS = 8192  # rows (examples × samples) of one decoder pass in evaluation
SCORE_DRAWS = 4       # ε draws shared by every row in score_samples


class VAE(Estimator):
    """A variational autoencoder with a diagonal-Gaussian posterior and a standard-normal prior.

    Parameters
    ----------
    n_features : int or None
        Width d of the data; None takes it from the data at ``fit``.
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
    init : ``"fan-in"`` (default) or ``"he-glorot"``: the initial weights
        (:func:`npae.layers.init_params`).  PyTorch's U(±1/√fan_in) trains the better VAE:
        on Fashion-MNIST and on the digits, for every seed tried (``benchmarks/README.md``).
    alpha, epochs, batch_size, lr, shuffle, verbose, warm_start, early_stopping,
    validation_fraction, n_iter_no_change, n_jobs, seed, dtype :
        As for :class:`~npae.Autoencoder`.

    Attributes
    ----------
    n_features_in_, feature_names_in_, history_, n_iter_, interrupted_, best_epoch_,
    best_val_loss_ as for the autoencoder; encoder_, decoder_ (:class:`~npae.Sequential`),
    mu_head_, logvar_head_ (:class:`~npae.Dense`), x_logvar_ (Gaussian likelihood).

    ``loss_and_grads(X, eps=...)``: ``eps`` fixes ε — shape (n, latent) for
    the ELBO, (k, n, latent) for IWAE — making the loss deterministic.
    """

    def __init__(self, n_features=None, hidden=(400,), latent=20, *, activation="relu",
                 likelihood="bernoulli", beta=1.0, warmup_epochs=0, objective="elbo", k=1,
                 alpha=0.0, epochs=10, batch_size=128, lr=1e-3, shuffle=True, verbose=0,
                 warm_start=False, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=10, n_jobs=None, init="fan-in", seed=0, dtype="float32"):
        self.n_features, self.hidden, self.latent = n_features, hidden, latent
        self.activation, self.likelihood, self.beta = activation, likelihood, beta
        self.warmup_epochs, self.objective, self.k = warmup_epochs, objective, k
        self.alpha, self.epochs, self.batch_size, self.lr = alpha, epochs, batch_size, lr
        self.shuffle, self.verbose, self.warm_start = shuffle, verbose, warm_start
        self.early_stopping, self.validation_fraction = early_stopping, validation_fraction
        self.n_iter_no_change, self.n_jobs, self.init = n_iter_no_change, n_jobs, init
        self.seed, self.dtype = seed, dtype

    # -- settings and the network --------------------------------------------
    def check_settings(self):
        """The network's hyper-parameters, checked: a dict of their values."""
        s = {"hidden": checks.sizes("hidden", self.hidden, allow_empty=True),
             "latent": checks.positive_int("latent", self.latent),
             "activation": get_activation(self.activation).name,
             "likelihood": checks.one_of("likelihood", self.likelihood, LIKELIHOODS),
             "beta": checks.number("beta", self.beta, low=0),
             "warmup_epochs": checks.non_negative_int("warmup_epochs", self.warmup_epochs),
             "objective": checks.one_of("objective", self.objective, OBJECTIVES),
             "k": checks.positive_int("k", self.k)}
        s["init"] = checks.one_of("init", self.init, INITS)
        checks.number("alpha", self.alpha, low=0)
        return s

    network_settings = ("hidden", "latent", "activation", "likelihood")
    logvar_bounds = (LOGVAR_MIN, LOGVAR_MAX)  # the clamp of log σ² and log σ_x²

    @property
    def needs_unit_interval(self):
        return self.likelihood == "bernoulli"

    unit_interval_alternative = "likelihood='gaussian'"

    def parameter_shapes(self, n_features):
        """name → shape of every parameter for data of width ``n_features`` (nothing built)."""
        s = self.check_settings()
        sizes, latent = (n_features,) + s["hidden"], s["latent"]
        heads = {f"{head}.{k}": shape for head in ("mu", "logvar")
                 for k, shape in (("W", (sizes[-1], latent)), ("b", (latent,)))}
        shapes = {**stack_shapes("encoder", sizes), **heads,
                  **stack_shapes("decoder", (latent,) + sizes[:0:-1] + (n_features,))}
        if s["likelihood"] == "gaussian":
            shapes["x_logvar"] = (n_features,)
        return shapes

    def make_network(self, n_features, rng):
        """Encoder stack, μ and log σ² heads, decoder stack, weights drawn from ``rng``."""
        s = self.settings_ = self.check_settings()
        dtype, sizes = self.dtype_, (n_features,) + s["hidden"]
        def dense(a, b, activation):
            return Dense(a, b, activation, seed=rng, dtype=dtype, init=s["init"])

        self.encoder_ = Sequential(dense(a, b, s["activation"]) for a, b in zip(sizes[:-1], sizes[1:]))
        self.mu_head_ = dense(sizes[-1], s["latent"], "identity")
        self.logvar_head_ = dense(sizes[-1], s["latent"], "identity")
        back = (s["latent"],) + s["hidden"][::-1] + (n_features,)
        self.decoder_ = Sequential(dense(a, b, "identity" if i == len(back) - 2 else s["activation"])
                                   for i, (a, b) in enumerate(zip(back[:-1], back[1:])))
        # log σ_x² of the Gaussian decoder, one per feature, starting at σ_x = 1
        self.x_logvar_ = np.zeros(n_features, dtype=dtype) if s["likelihood"] == "gaussian" else None
        self.kl_weight_ = s["beta"]

    def bind_params(self, views):
        """Make the layers' arrays ``views`` (name → array, the names of ``network_params``)."""
        self.encoder_.bind(views, "encoder")
        for head, layer in (("mu", self.mu_head_), ("logvar", self.logvar_head_)):
            layer.params = {"W": views[f"{head}.W"], "b": views[f"{head}.b"]}
        self.decoder_.bind(views, "decoder")
        if self.x_logvar_ is not None:
            self.x_logvar_ = views["x_logvar"]

    @property
    def code_size(self):
        return checks.positive_int("latent", self.latent)

    def network_params(self):
        """``encoder.<i>.W/b``, ``mu.W/b``, ``logvar.W/b``, ``decoder.<i>.W/b`` and, for the
        Gaussian likelihood, ``x_logvar``."""
        params = {f"encoder.{k}": v for k, v in self.encoder_.params.items()}
        params.update({f"mu.{k}": v for k, v in self.mu_head_.params.items()})
        params.update({f"logvar.{k}": v for k, v in self.logvar_head_.params.items()})
        params.update({f"decoder.{k}": v for k, v in self.decoder_.params.items()})
        if self.x_logvar_ is not None:
            params["x_logvar"] = self.x_logvar_
        return params

    def describe(self):
        s, d = self.settings_, self.n_features_in_
        down = " → ".join(map(str, (d,) + s["hidden"]))
        up = " → ".join(map(str, s["hidden"][::-1] + (d,)))
        return (f"{down} → (μ, log σ²) {s['latent']} → {up}, {s['activation']}, "
                f"{s['likelihood']} likelihood" + (f", IWAE k={s['k']}" if s["objective"] == "iwae"
                                                  else "") + (f", β={s['beta']:g}" if s["beta"] != 1
                                                              else ""))

    def begin_epoch(self, epoch):
        """KL warm-up: β_epoch = β · min(1, (epoch + 1) / warmup_epochs); β outside training."""
        s = self.built().settings_
        ramp = (1.0 if s["warmup_epochs"] == 0 or epoch is None
                else min(1.0, (epoch + 1) / s["warmup_epochs"]))
        self.kl_weight_ = s["beta"] * ramp

    def training_step(self, optimizer, batch_size, n_jobs):
        """The step ``fit`` trains with: on buffers and ``n_jobs`` threads (:mod:`npae.models.fast_vae`)."""
        return VAEStep(self, optimizer, batch_size, n_jobs)

    # -- the pieces of the model ----------------------------------------------
    def posterior(self, X):
        """``(mu, logvar)`` of q(z|x) for each row of X, each (n, latent)."""
        latent = self.built().code_size
        both = np.empty((0, 2 * latent), dtype=self.dtype_)
        parts = [np.concatenate(self._posterior_batch(chunk)[:2], axis=1)
                 for _, chunk in self._chunks(X)]
        both = np.concatenate(parts) if parts else both
        return both[:, :latent], both[:, latent:]

    def _posterior_batch(self, X):
        H = self.encoder_.forward(X)
        mu = self.mu_head_.forward(H)
        raw = self.logvar_head_.forward(H)
        return mu, np.clip(raw, LOGVAR_MIN, LOGVAR_MAX), raw

    def _nll(self, logits, X, *, per_example):
        """−log p(x|z) from the decoder output: (loss, dlogits, dx_logvar or None)."""
        if self.settings_["likelihood"] == "bernoulli":
            return (*bce_with_logits(logits, X, per_example=per_example), None)
        x_logvar = np.clip(self.x_logvar_, LOGVAR_MIN, LOGVAR_MAX)
        if per_example == "rows":  # gradient of log σ_x² kept per row, for weighting
            x_logvar = np.broadcast_to(x_logvar, logits.shape)
        return gaussian_nll(X, logits, x_logvar, per_example=bool(per_example))

    def draw_noise(self, n, rng):
        """ε of n rows from ``rng``: (n, latent) for the ELBO, (k, n, latent) for IWAE."""
        s = self.built().settings_
        shape = (n, s["latent"]) if s["objective"] == "elbo" else (s["k"], n, s["latent"])
        return rng.standard_normal(shape, dtype=self.dtype_)

    # -- loss and gradients ---------------------------------------------------
    def network_loss_and_grads(self, X, eps):
        mu, logvar, raw = self._posterior_batch(X)
        std = np.exp(0.5 * logvar)
        backward = self._elbo_backward if self.settings_["objective"] == "elbo" else self._iwae_backward
        loss, dmu, dlogvar, dx_logvar = backward(X, mu, logvar, std, eps)
        dlogvar *= (raw >= LOGVAR_MIN) & (raw <= LOGVAR_MAX)  # the clamp passes no gradient
        dH = self.mu_head_.backward(dmu)
        dH += self.logvar_head_.backward(dlogvar)
        self.encoder_.backward(dH, need_dX=False)
        grads = {f"encoder.{k}": v for k, v in self.encoder_.grads.items()}
        grads.update({f"mu.{k}": v for k, v in self.mu_head_.grads.items()})
        grads.update({f"logvar.{k}": v for k, v in self.logvar_head_.grads.items()})
        grads.update({f"decoder.{k}": v for k, v in self.decoder_.grads.items()})
        if self.x_logvar_ is not None:
            inside = (self.x_logvar_ >= LOGVAR_MIN) & (self.x_logvar_ <= LOGVAR_MAX)
            grads["x_logvar"] = dx_logvar * inside
        return loss, grads

    def _elbo_backward(self, X, mu, logvar, std, eps):
        """One-sample −ELBO (β-weighted KL) and its gradients for μ, log σ², log σ_x²."""
        z = mu + std * eps
        recon, dlogits, dx_logvar = self._nll(self.decoder_.forward(z), X, per_example=False)
        kl, dmu_kl, dlogvar_kl = kl_normal(mu, logvar)
        beta = self.kl_weight_
        dz = self.decoder_.backward(dlogits)
        dmu = dz + beta * dmu_kl
        dlogvar = dz * eps * std * 0.5 + beta * dlogvar_kl
        return recon + beta * kl, dmu, dlogvar, dx_logvar

    def _iwae_backward(self, X, mu, logvar, std, eps):
        """k-sample importance-weighted bound and its reparameterised gradients."""
        k, n = eps.shape[0], X.shape[0]
        beta = self.kl_weight_
        log_w, (z, dlogits, dx_logvar_rows) = self._log_weights(X, mu, logvar, std, eps, beta,
                                                                keep="rows")
        top = log_w.max(axis=0)
        w = np.exp(log_w - top)
        total = w.sum(axis=0)
        loss = -float(np.mean(np.log(total) + top - math.log(k)))
        weight = (w / total) / n                                      # w̃_i / n, shape (k, n)
        # ∂(−log w_i)/∂logits = ∂nll/∂logits; the nll's gradient came divided by k·n rows
        row_weight = (weight * (k * n)).reshape(-1, 1)
        dz = self.decoder_.backward(dlogits * row_weight)
        dz += beta * z * weight.reshape(-1, 1)                        # from −β log p(z_i)
        dz = dz.reshape(k, n, -1)
        dmu = dz.sum(axis=0)
        dlogvar = (dz * eps).sum(axis=0) * std * 0.5 - beta * 0.5 / n  # the −β log q part
        dx_logvar = None
        if dx_logvar_rows is not None:
            dx_logvar = (dx_logvar_rows * row_weight).sum(axis=0)
        return loss, dmu, dlogvar, dx_logvar

    def _log_weights(self, X, mu, logvar, std, eps, beta, *, keep=None):
        """``log w_i = log p(x|z_i) + β [log p(z_i) − log q(z_i|x)]`` for eps (k, n, latent).

        With z = μ + σ ⊙ ε, ``log p(z) − log q(z|x) = ½ Σ_j (ε_j² + log σ_j² − z_j²)``
        (the ½ log 2π terms cancel).  Returns log w (k, n) and, with ``keep``,
        what the gradient needs.
        """
        k, n, latent = eps.shape
        z = (mu + std * eps).reshape(k * n, latent)
        logits = self.decoder_.forward(z)
        X_rows = np.broadcast_to(X, (k, n, X.shape[1])).reshape(k * n, X.shape[1])
        nll, dlogits, dx_logvar = self._nll(logits, X_rows, per_example=keep or True)
        eps_rows = eps.reshape(k * n, latent)
        prior_minus_q = 0.5 * ((eps_rows * eps_rows - z * z).sum(axis=1)
                               + np.tile(logvar.sum(axis=1), k))
        log_w = (-nll + beta * prior_minus_q).reshape(k, n)
        return log_w, (z, dlogits, dx_logvar)

    # -- evaluation ------------------------------------------------------------
    def elbo(self, X, *, n_samples=1, seed=None):
        """Per-example ELBO (β = 1), averaged over ``n_samples`` draws of ε; shape (n,)."""
        n_samples = checks.positive_int("n_samples", n_samples)
        rng = checks.generator(seed)
        parts = []
        for _, x in self._chunks(X, fitting=True):
            eps = rng.standard_normal((n_samples,) + (len(x), self.code_size), dtype=self.dtype_)
            parts.append(self._elbo_rows(x, eps))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=self.dtype_)

    def _elbo_rows(self, x, eps):
        """Each row's ELBO estimated with the draws ``eps`` (S, n, latent) or (S, 1, latent)."""
        mu, logvar, _ = self._posterior_batch(x)
        std = np.exp(0.5 * logvar)
        recon = np.zeros(x.shape[0], dtype=np.float64)
        for e in eps:
            recon += self._nll(self.decoder_.forward(mu + std * e), x, per_example=True)[0]
        return -(recon / len(eps) + kl_normal(mu, logvar, per_example=True)[0])

    def score_batch(self, X):
        """Each row's ELBO (β = 1) from SCORE_DRAWS draws of ε shared by every row (seed 0):
        deterministic, and independent of the other rows.  A Bernoulli row outside [0, 1]
        scores as its clipped row less λ nats per unit outside (:mod:`npae.data.unit_interval`)."""
        outside = 0.0
        if self.settings_["likelihood"] == "bernoulli":
            X, outside = unit_interval.scored_targets(X)
        eps = np.random.default_rng(0).standard_normal((SCORE_DRAWS, 1, self.code_size),
                                                       dtype=self.dtype_)
        return (self._elbo_rows(X, eps) - outside).astype(self.dtype_)

    def log_likelihood(self, X, *, k=1000, seed=None):
        """Per-example importance-weighted estimate of log p(x) with k samples (the IWAE bound).

        .. math::

            log p(x) ≥ log (1/k) Σ_i p(x, z_i) / q(z_i|x),   z_i ~ q(z|x)

        computed with logsumexp, in passes of at most ~8k decoder rows so memory
        stays bounded for any k.  It is at least the ELBO on average and grows with k.
        """
        k = checks.positive_int("k", k)
        rng = checks.generator(seed)
        parts = []
        for _, chunk in self._chunks(X, fitting=True):
            for start in range(0, len(chunk), 256):
                parts.append(self._log_likelihood_rows(chunk[start:start + 256], k, rng))
        return np.concatenate(parts) if parts else np.zeros(0)

    def _log_likelihood_rows(self, x, k, rng):
        n = x.shape[0]
        mu, logvar, _ = self._posterior_batch(x)
        std = np.exp(0.5 * logvar)
        running = np.full(n, -np.inf)
        per_pass = max(1, ROWS_PER_PASS // n)
        for start in range(0, k, per_pass):
            eps = rng.standard_normal((min(per_pass, k - start), n, self.code_size), dtype=self.dtype_)
            log_w = self._log_weights(x, mu, logvar, std, eps, 1.0)[0].astype(np.float64)
            top = log_w.max(axis=0)
            running = np.logaddexp(running, top + np.log(np.exp(log_w - top).sum(axis=0)))
        return running - math.log(k)

    def sample(self, n, *, seed=None):
        """``n`` draws from the model: decoded means for z ~ N(0, I); shape (n, n_features)."""
        n = checks.positive_int("n", n)
        z = checks.generator(seed).standard_normal((n, self.built().code_size), dtype=self.dtype_)
        return self.decode(z)

    # -- checked batches -----------------------------------------------------------
    def encode_batch(self, X):
        return self.mu_head_.forward(self.encoder_.forward(X)).copy()  # μ alone: no log σ²

    def decode_batch(self, Z):
        logits = self.decoder_.forward(Z)
        return sigmoid(logits) if self.settings_["likelihood"] == "bernoulli" else logits.copy()
