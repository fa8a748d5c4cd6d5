"""What a trained VAE says about data: each row's ELBO and score, the importance-weighted
log-likelihood, samples, codes and decodings.

Every formula here is the one the loss trains with (:class:`~npae.models.vae.VAE`'s
``posterior_batch``, ``nll`` and ``log_weights``, and :func:`npae.nn.losses.kl_normal`),
evaluated with β = 1 and without gradients, each call in a workspace of its own.

``score_samples`` is each row's ELBO estimated with the same four draws ε₁…ε₄ for every row
(from a fixed seed), so a row's score depends on that row alone, never on its position in X;
``score`` is their mean.
"""

import math

import numpy as np

from .. import checks
from ..data import unit_interval
from ..nn.activations import sigmoid
from ..nn.buffers import Workspace
from ..nn.layers import forward_stack
from ..nn.losses import kl_normal

ROWS_PER_PASS = 8192  # rows (examples × samples) of one decoder pass in evaluation
SCORE_DRAWS = 4       # ε draws shared by every row in score_samples
DRAWS_AT_ONCE = 2**20  # ε values drawn at once by elbo: bounds its memory for any n_samples


class VAEEvaluation:
    """The VAE's evaluation (a base of :class:`~npae.VAE`)."""

    def posterior(self, X):
        """``(mu, logvar)`` of q(z|x) for each row of X, each (n, latent)."""
        latent = self.built().code_size
        both = np.empty((0, 2 * latent), dtype=self.dtype_)
        parts = [np.concatenate(self.posterior_batch(chunk, Workspace(self.dtype_))[2:5:2], axis=1)
                 for _, chunk in self._chunks(X)]
        both = np.concatenate(parts) if parts else both
        return both[:, :latent], both[:, latent:]

    def elbo(self, X, *, n_samples=1, seed=None):
        """Per-example ELBO (β = 1), averaged over ``n_samples`` draws of ε; shape (n,).  The
        draws are taken at most DRAWS_AT_ONCE values at a time: memory is bounded for any
        ``n_samples``, and the result is the one all draws at once would give."""
        n_samples = checks.positive_int("n_samples", n_samples)
        rng = checks.generator(seed)
        parts = []
        for _, x in self._chunks(X, fitting=True):
            shape = (len(x), self.code_size)
            group = max(1, DRAWS_AT_ONCE // math.prod(shape))
            draws = (rng.standard_normal((min(group, n_samples - start),) + shape,
                                         dtype=self.dtype_)
                     for start in range(0, n_samples, group))
            parts.append(self.elbo_rows(x, draws, n_samples))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=self.dtype_)

    def elbo_rows(self, x, draws, n_draws, *, per_feature=False):
        """Each row's ELBO estimated with ``n_draws`` draws of ε, given as arrays of shape
        (S, n, latent) or (S, 1, latent): −(the mean over draws of −log p(x|z) + KL).  With
        ``per_feature``, each feature's term of it, (n, d): its own −log p(x_j|z), and an equal
        share of the KL, which belongs to the whole row."""
        work = Workspace(self.dtype_)
        _, _, mu, _, logvar, std = self.posterior_batch(x, work)
        recon = np.zeros(x.shape if per_feature else x.shape[0], dtype=np.float64)
        for eps in draws:
            for e in eps:
                z = reparameterise(mu, std, e, work.like("z", mu))
                logits = forward_stack(self.decoder_.layers, z, work, "decoder")[-1]
                recon += self.nll(logits, x, work, None, 1.0, per_example=True,
                                  per_entry=per_feature)[0]
        kl = kl_normal(mu, logvar, per_example=True)[0]
        if per_feature:
            return -(recon / n_draws) - kl[:, None] / x.shape[1]
        return -(recon / n_draws + kl)

    def feature_terms(self, X):
        """Each feature's term of each row's score, (n, d), with the SCORE_DRAWS draws of ε
        every row shares (seed 0); a Bernoulli entry outside [0, 1] scores as its clipped value
        less λ nats per unit outside (:mod:`npae.data.unit_interval`): an anomaly never scores
        as more normal for lying outside the data's range."""
        outside = 0.0
        if self.settings_["likelihood"] == "bernoulli":
            X, outside = unit_interval.scored_targets(X)
        eps = np.random.default_rng(0).standard_normal((SCORE_DRAWS, 1, self.code_size),
                                                       dtype=self.dtype_)
        return self.elbo_rows(X, [eps], SCORE_DRAWS, per_feature=True) - outside

    def score_batch(self, X):
        """Each row's ELBO (β = 1): the sum of its :meth:`feature_terms` — deterministic, and
        independent of the other rows."""
        return self.feature_terms(X).sum(axis=1, dtype=np.float64).astype(self.dtype_)

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
                parts.append(self.log_likelihood_rows(chunk[start:start + 256], k, rng))
        return np.concatenate(parts) if parts else np.zeros(0)

    def log_likelihood_rows(self, x, k, rng):
        """log (1/k) Σ_i w_i of each row, the k draws taken a pass of ≤ ROWS_PER_PASS rows at a
        time and accumulated with logaddexp."""
        n = x.shape[0]
        work = Workspace(self.dtype_)
        _, _, mu, _, logvar, std = self.posterior_batch(x, work)
        running = np.full(n, -np.inf)
        per_pass = max(1, ROWS_PER_PASS // n)
        for start in range(0, k, per_pass):
            eps = rng.standard_normal((min(per_pass, k - start), n, self.code_size),
                                      dtype=self.dtype_)
            log_w = self.log_weights(x, mu, logvar, std, eps, 1.0, work)[0].astype(np.float64)
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
        return self.posterior_batch(X, Workspace(self.dtype_))[2]   # μ alone: no log σ²

    def decode_batch(self, Z):
        logits = forward_stack(self.decoder_.layers, Z, Workspace(self.dtype_), "decoder")[-1]
        return sigmoid(logits, out=logits) if self.settings_["likelihood"] == "bernoulli" \
            else logits


def reparameterise(mu, std, eps, out=None):
    """The reparameterised sample ``z = μ + σ ⊙ ε`` (into ``out``); ε of μ's shape, or (k, n,
    latent) for k samples of each row.  z is a differentiable function of μ and σ for a fixed
    ε: ∂z/∂μ = 1, ∂z/∂σ = ε."""
    z = np.multiply(std, eps, out=out)
    z += mu
    return z
