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
from ..nn.activations import get_activation
from ..nn.layers import (INITS, Dense, Sequential, affine_backward, backward_stack, dense_forward,
                         forward_stack, stack_shapes)
from ..nn.losses import bce_with_logits, gaussian_nll, kl_normal
from .estimator import Estimator
from .vae_evaluation import VAEEvaluation, reparameterise

LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0
LIKELIHOODS = ("bernoulli", "gaussian")
OBJECTIVES = ("elbo", "iwae")


class VAE(VAEEvaluation, Estimator):
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
        settings = {"hidden": checks.sizes("hidden", self.hidden, allow_empty=True),
             "latent": checks.positive_int("latent", self.latent),
             "activation": get_activation(self.activation).name,
             "likelihood": checks.one_of("likelihood", self.likelihood, LIKELIHOODS),
             "beta": checks.number("beta", self.beta, low=0),
             "warmup_epochs": checks.non_negative_int("warmup_epochs", self.warmup_epochs),
             "objective": checks.one_of("objective", self.objective, OBJECTIVES),
             "k": checks.positive_int("k", self.k)}
        settings["init"] = checks.one_of("init", self.init, INITS)
        checks.number("alpha", self.alpha, low=0)
        return settings

    network_settings = ("hidden", "latent", "activation", "likelihood")
    logvar_bounds = (LOGVAR_MIN, LOGVAR_MAX)  # the clamp of log σ² and log σ_x²

    @property
    def needs_unit_interval(self):
        return self.likelihood == "bernoulli"

    unit_interval_alternative = "likelihood='gaussian'"

    def parameter_shapes(self, n_features):
        """name → shape of every parameter for data of width ``n_features`` (nothing built)."""
        settings = self.check_settings()
        sizes, latent = (n_features,) + settings["hidden"], settings["latent"]
        heads = {f"{head}.{k}": shape for head in ("mu", "logvar")
                 for k, shape in (("W", (sizes[-1], latent)), ("b", (latent,)))}
        shapes = {**stack_shapes("encoder", sizes), **heads,
                  **stack_shapes("decoder", (latent,) + sizes[:0:-1] + (n_features,))}
        if settings["likelihood"] == "gaussian":
            shapes["x_logvar"] = (n_features,)
        return shapes

    def make_network(self, n_features, rng):
        """Encoder stack, μ and log σ² heads, decoder stack, weights drawn from ``rng``."""
        settings = self.settings_ = self.check_settings()
        dtype, sizes = self.dtype_, (n_features,) + settings["hidden"]
        def dense(a, b, activation):
            return Dense(a, b, activation, seed=rng, dtype=dtype, init=settings["init"])

        self.encoder_ = Sequential(dense(a, b, settings["activation"]) for a, b in zip(sizes[:-1], sizes[1:]))
        self.mu_head_ = dense(sizes[-1], settings["latent"], "identity")
        self.logvar_head_ = dense(sizes[-1], settings["latent"], "identity")
        back = (settings["latent"],) + settings["hidden"][::-1] + (n_features,)
        self.decoder_ = Sequential(dense(a, b, "identity" if i == len(back) - 2 else settings["activation"])
                                   for i, (a, b) in enumerate(zip(back[:-1], back[1:])))
        # log σ_x² of the Gaussian decoder, one per feature, starting at σ_x = 1
        self.x_logvar_ = np.zeros(n_features, dtype=dtype) if settings["likelihood"] == "gaussian" else None

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
        settings, d = self.settings_, self.n_features_in_
        down = " → ".join(map(str, (d,) + settings["hidden"]))
        up = " → ".join(map(str, settings["hidden"][::-1] + (d,)))
        text = (f"{down} → (μ, log σ²) {settings['latent']} → {up}, {settings['activation']}, "
                f"{settings['likelihood']} likelihood")
        if settings["objective"] == "iwae":
            text += f", IWAE k={settings['k']}"
        if settings["beta"] != 1:
            text += f", β={settings['beta']:g}"
        return text

    def loss_weights(self, epoch):
        """β of the loss in training epoch ``epoch`` (from 0): the KL warm-up
        β · min(1, (epoch + 1) / warmup_epochs).  ``epoch=None`` — validation, early stopping,
        ``loss_and_grads``, ``score`` and everything after ``fit`` — is the objective's full β."""
        settings = self.built().settings_
        ramp = (1.0 if settings["warmup_epochs"] == 0 or epoch is None
                else min(1.0, (epoch + 1) / settings["warmup_epochs"]))
        return settings["beta"] * ramp

    rows_coupled = False  # every row's loss is its own: a batch can be cut into parts

    def draw_noise(self, n, rng):
        """ε of n rows from ``rng``: (n, latent) for the ELBO, (k, n, latent) for IWAE."""
        settings = self.built().settings_
        shape = (n, settings["latent"]) if settings["objective"] == "elbo" else (settings["k"], n, settings["latent"])
        return rng.standard_normal(shape, dtype=self.dtype_)

    def noise_rows(self, eps, rows):
        """The noise of the batch's ``rows`` (a slice)."""
        return eps[rows] if eps.ndim == 2 else eps[:, rows]

    # -- the loss and its gradients, written once ---------------------------------
    def batch_loss(self, X, eps, work, grads, scale, beta):
        """−ELBO (or the IWAE bound) of the rows ``X`` times ``scale``, β-weighted; its gradients
        written into ``grads`` (name → array of ``params``, overwritten).

        Forward: the encoder stack h, the heads μ and log σ² (clamped), σ = exp(½ log σ²)
        (:meth:`heads_forward`);
        then :meth:`elbo_loss` or :meth:`iwae_loss`, which leave ∂L/∂μ and ∂L/∂log σ² in
        ``work``.  Backward: the clamp passes no gradient; both heads' gradients, their sum
        ∂L/∂h, and the encoder stack.  ``eps`` fixes ε; ``work`` holds every intermediate array.
        """
        code = forward_stack(self.encoder_.layers, X, work, "encoder")
        H, mu, raw, logvar, std = self.heads_forward(code[-1] if code else X, work)
        if self.settings_["objective"] == "elbo":
            loss = self.elbo_loss(X, eps, mu, logvar, std, work, grads, scale, beta)
        else:
            loss = self.iwae_loss(X, eps, mu, logvar, std, work, grads, scale, beta)
        dmu, dlogvar = work.like("dmu", mu), work.like("dlogvar", mu)
        dlogvar *= self.inside_clamp(raw, work.like("inside", raw))
        encoder = self.encoder_.layers
        dH = work.like("dH", H) if encoder else None
        affine_backward(dmu, H, self.mu_head_.params["W"], grads["mu.W"], grads["mu.b"], dH)
        dH_logvar = work.like("dH.logvar", H) if encoder else None
        affine_backward(dlogvar, H, self.logvar_head_.params["W"], grads["logvar.W"],
                        grads["logvar.b"], dH_logvar)
        if encoder:
            dH += dH_logvar
            backward_stack(encoder, X, code, dH, grads, work, "encoder")
        return loss

    def posterior_batch(self, X, work):
        """The encoder's pass: ``(stack outputs, h, μ, raw log σ², log σ² clamped, σ)``."""
        code = forward_stack(self.encoder_.layers, X, work, "encoder")
        return (code,) + self.heads_forward(code[-1] if code else X, work)

    def heads_forward(self, H, work):
        """From the code h: ``(h, μ, raw log σ², log σ² clamped to [−30, 20], σ)``."""
        shape = (H.shape[0], self.settings_["latent"])
        identity = self.mu_head_.activation
        mu = dense_forward(H, *self.head("mu"), identity, work.array("mu", shape))
        raw = dense_forward(H, *self.head("logvar"), identity, work.array("raw_logvar", shape))
        logvar = np.clip(raw, LOGVAR_MIN, LOGVAR_MAX, out=work.array("logvar", shape))
        std = np.multiply(logvar, 0.5, out=work.array("std", shape))
        np.exp(std, out=std)                                       # σ = exp(½ log σ²)
        return H, mu, raw, logvar, std

    def head(self, name):
        layer = self.mu_head_ if name == "mu" else self.logvar_head_
        return layer.params["W"], layer.params["b"]

    @staticmethod
    def inside_clamp(raw, out):
        """1 where ``raw`` lies inside [LOGVAR_MIN, LOGVAR_MAX], else 0 (floats, into ``out``)."""
        np.greater_equal(raw, LOGVAR_MIN, out=out, casting="unsafe")
        out *= raw <= LOGVAR_MAX
        return out

    def elbo_loss(self, X, eps, mu, logvar, std, work, grads, scale, beta):
        """One-sample −ELBO = −log p(x|z) + β KL(q ‖ p), times ``scale``; leaves ∂/∂μ and
        ∂/∂log σ² in ``work`` ("dmu", "dlogvar") and writes the decoder's gradients.

        ∂L/∂μ = ∂L/∂z + β μ,   ∂L/∂log σ² = ½ ∂L/∂z ⊙ ε ⊙ σ + ½ β (σ² − 1)   (z = μ + σ ⊙ ε)."""
        z = reparameterise(mu, std, eps, work.like("z", mu))
        out = forward_stack(self.decoder_.layers, z, work, "decoder")
        recon, dlogits = self.nll(out[-1], X, work, grads, scale)
        kl, dmu, dlogvar = kl_normal(mu, logvar, scale=beta * scale,
                                     out=(work.like("dmu", mu), work.like("dlogvar", mu)))
        dz = backward_stack(self.decoder_.layers, z, out, dlogits, grads, work, "decoder",
                            work.like("dz", z))
        dmu += dz
        dz *= eps
        dz *= std
        dz *= 0.5
        dlogvar += dz
        return recon + kl

    def nll(self, logits, X, work, grads, scale, *, per_example=False, per_entry=False):
        """−log p(x|z) from the decoder's output (times ``scale``, or per row, or with
        ``per_entry`` per entry as an (n, d) array): the Bernoulli's BCE from the logits, or the
        Gaussian's NLL with the clamped log σ_x² (whose gradient goes into ``grads["x_logvar"]``
        unless ``grads`` is None).  Returns (value, ∂/∂output)."""
        shape = X.shape
        if per_entry:  # each entry a row of one
            logits, X, per_example = logits.reshape(-1, 1), X.reshape(-1, 1), True
        dlogits = work.like("dlogits", logits)
        if self.settings_["likelihood"] == "bernoulli":
            value, dmean = bce_with_logits(logits, X, per_example=per_example, scale=scale,
                                           out=dlogits, work=work)
            return (value.reshape(shape) if per_entry else value), dmean
        x_logvar = np.clip(self.x_logvar_, LOGVAR_MIN, LOGVAR_MAX)
        if per_entry:
            x_logvar = np.broadcast_to(x_logvar, shape).reshape(-1, 1)
        value, dmean, dx_logvar = gaussian_nll(X, logits, x_logvar, per_example=per_example,
                                               scale=scale, out=dlogits, work=work)
        if grads is not None:
            np.multiply(dx_logvar, self.inside_clamp(self.x_logvar_, np.empty_like(dx_logvar)),
                        out=grads["x_logvar"])
        return (value.reshape(shape) if per_entry else value), dmean

    def log_weights(self, X, mu, logvar, std, eps, beta, work, grads=None):
        """``log w_i = log p(x|z_i) + β [log p(z_i) − log q(z_i|x)]`` for ε (k, n, latent):
        log w (k, n), and what the bound's gradient needs.

        With z = μ + σ ⊙ ε, ``log p(z) − log q(z|x) = ½ Σ_j (ε_j² + log σ_j² − z_j²)`` (the
        ½ log 2π terms cancel).  Each row's −log p(x|z_i) comes unscaled, its gradient per row."""
        k, n, latent = eps.shape
        z = reparameterise(mu, std, eps, work.array("z", eps.shape)).reshape(k * n, latent)
        out = forward_stack(self.decoder_.layers, z, work, "decoder")
        X_rows = work.array("x_rows", (k,) + X.shape)
        X_rows[...] = X
        X_rows = X_rows.reshape(k * n, X.shape[1])
        if self.settings_["likelihood"] == "gaussian" and grads is not None:
            x_logvar = np.broadcast_to(np.clip(self.x_logvar_, LOGVAR_MIN, LOGVAR_MAX), X_rows.shape)
            nll, dlogits, dx_logvar = gaussian_nll(X_rows, out[-1], x_logvar, per_example=True,
                                                   scale=1.0, out=work.like("dlogits", X_rows),
                                                   work=work)
        else:
            nll, dlogits = self.nll(out[-1], X_rows, work, None, 1.0, per_example=True)
            dx_logvar = None
        eps_rows = eps.reshape(k * n, latent)
        prior_minus_q = 0.5 * (np.einsum("ij,ij->i", eps_rows, eps_rows)
                               - np.einsum("ij,ij->i", z, z) + np.tile(logvar.sum(axis=1), k))
        log_w = (-nll + beta * prior_minus_q).reshape(k, n)
        return log_w, (z, out, dlogits, dx_logvar)

    def iwae_loss(self, X, eps, mu, logvar, std, work, grads, scale, beta):
        """The k-sample bound −log (1/k) Σ_i w_i of each row, times ``scale`` (logsumexp);
        leaves ∂/∂μ and ∂/∂log σ² in ``work``.  Each sample's gradient is weighted by its
        normalised weight w̃_i = w_i / Σ_l w_l (a softmax of the log-weights)."""
        k, n, latent = eps.shape
        log_w, (z, out, dlogits, dx_logvar) = self.log_weights(X, mu, logvar, std, eps, beta,
                                                                work, grads)
        top = log_w.max(axis=0)
        w = np.exp(log_w - top)
        total = w.sum(axis=0)
        loss = -float(np.sum(np.log(total) + top - math.log(k))) * scale
        weight = (w / total * scale).astype(self.dtype_).reshape(k * n, 1)    # w̃_i · scale
        dlogits *= weight
        if dx_logvar is not None:
            dx_logvar *= weight
            np.multiply(dx_logvar.sum(axis=0),
                        self.inside_clamp(self.x_logvar_, np.empty_like(self.x_logvar_)),
                        out=grads["x_logvar"])
        dz = backward_stack(self.decoder_.layers, z, out, dlogits, grads, work, "decoder",
                            work.like("dz", z))
        dz += beta * z * weight                                    # from −β log p(z_i)
        dz3 = dz.reshape(k, n, latent)
        np.sum(dz3, axis=0, out=work.like("dmu", mu))
        dlogvar = work.like("dlogvar", mu)
        np.einsum("kij,kij->ij", dz3, eps, out=dlogvar)
        dlogvar *= std
        dlogvar *= 0.5
        dlogvar -= beta * 0.5 * scale                              # the −β log q part
        return loss
