"""The VAE's training step on preallocated buffers (see :mod:`npae.training.step`).

The arithmetic of ``VAE.network_loss_and_grads`` — the encoder stack, the μ and log σ² heads
with the clamp, the reparameterised sample z = μ + σ ⊙ ε, the decoder stack, the Bernoulli or
Gaussian likelihood, the β-weighted analytic KL, and the importance-weighted bound — for one
part of a batch, written into buffers that live as long as the run (the IWAE bound keeps a few
small temporaries).  The tests hold it equal to the model's plain code for every variant.
"""

import math
from types import SimpleNamespace

import numpy as np

from ..nn import kernels
from ..training.step import FastStep


class VAEStep(FastStep):
    """One batch of a :class:`~npae.VAE`, on buffers and threads."""

    def __init__(self, model, optimizer, batch_size, n_jobs):
        self.low, self.high = model.logvar_bounds
        self.settings = model.settings_
        self.encoder, self.decoder = model.encoder_.layers, model.decoder_.layers
        self.heads = (model.mu_head_, model.logvar_head_)
        self.samples = self.settings["k"] if self.settings["objective"] == "iwae" else 1
        super().__init__(model, optimizer, batch_size, n_jobs)

    def workspace(self, rows):
        d, k, latent = self.model.n_features_in_, self.samples, self.settings["latent"]

        def buffers(layers, n):
            sizes = [layer.params["W"].shape[1] for layer in layers]
            return ([np.empty((n, s), self.dtype) for s in sizes],
                    [np.empty((n, s), self.dtype) for s in sizes],
                    [np.empty((n, s), self.dtype) for s in sizes])

        enc, dec = buffers(self.encoder, rows), buffers(self.decoder, k * rows)
        one = lambda n=rows: np.empty((n, latent), self.dtype)  # noqa: E731
        return SimpleNamespace(
            enc_Y=enc[0], enc_dY=enc[1], enc_scratch=enc[2],
            dec_Y=dec[0], dec_dY=dec[1], dec_scratch=dec[2],
            mu=one(), raw=one(), logvar=one(), std=one(), var=one(), dmu=one(), dlogvar=one(),
            z=one(k * rows), dz=one(k * rows), inside=np.empty((rows, latent), bool),
            dH=np.empty((rows, self.heads[0].params["W"].shape[0]), self.dtype),
            dH_logvar=np.empty((rows, self.heads[0].params["W"].shape[0]), self.dtype),
            e=np.empty((k * rows, d), self.dtype), negative=np.empty((k * rows, d), self.dtype),
            positive=np.empty((k * rows, d), self.dtype))

    def part(self, ws, grads, X, eps, scale):
        s, n = self.settings, len(X)
        # encoder and heads: μ = h W_μ + b_μ, log σ² = clip(h W_v + b_v)
        H = self.stack_forward(self.encoder, X, ws.enc_Y, n)
        mu_head, logvar_head = self.heads
        mu, raw = ws.mu[:n], ws.raw[:n]
        kernels.dense_forward(H, mu_head.params["W"], mu_head.params["b"], "identity", mu)
        kernels.dense_forward(H, logvar_head.params["W"], logvar_head.params["b"], "identity", raw)
        logvar = np.clip(raw, self.low, self.high, out=ws.logvar[:n])
        std = np.multiply(logvar, 0.5, out=ws.std[:n])
        np.exp(std, out=std)                                  # σ = exp(½ log σ²)
        var = np.multiply(std, std, out=ws.var[:n])
        beta = self.model.kl_weight_
        if s["objective"] == "elbo":
            loss = self.elbo_part(ws, grads, X, eps, mu, logvar, std, var, beta, scale)
        else:
            loss = self.iwae_part(ws, grads, X, eps, mu, logvar, std, beta, scale)
        dlogvar, inside = ws.dlogvar[:n], ws.inside[:n]
        np.greater_equal(raw, self.low, out=inside)
        dlogvar *= inside
        np.less_equal(raw, self.high, out=inside)
        dlogvar *= inside                                     # the clamp passes no gradient
        dH = ws.dH[:n]
        kernels.dense_backward(ws.dmu[:n], H, mu_head.params["W"], grads["mu.W"], grads["mu.b"], dH)
        kernels.dense_backward(dlogvar, H, logvar_head.params["W"], grads["logvar.W"],
                               grads["logvar.b"], ws.dH_logvar[:n])
        dH += ws.dH_logvar[:n]
        self.stack_backward(self.encoder, "encoder", X, ws.enc_Y, ws.enc_dY, ws.enc_scratch, n,
                            dH, grads)
        return loss

    def elbo_part(self, ws, grads, X, eps, mu, logvar, std, var, beta, scale):
        """−ELBO of the part (one sample), with ∂/∂μ and ∂/∂log σ² left in ws.dmu, ws.dlogvar."""
        n = len(X)
        z = np.multiply(std, eps, out=ws.z[:n])
        z += mu                                               # z = μ + σ ⊙ ε
        logits = self.stack_forward(self.decoder, z, ws.dec_Y, n)
        recon = self.likelihood(logits, X, scale, ws.dec_dY[-1][:n], ws, grads, n)
        # KL = ½ Σ (μ² + σ² − 1 − log σ²), ∂/∂μ = μ, ∂/∂log σ² = ½ (σ² − 1)
        kl = 0.5 * (float(np.vdot(mu, mu)) + float(var.sum()) - mu.size - float(logvar.sum()))
        dz = ws.dz[:n]
        self.stack_backward(self.decoder, "decoder", z, ws.dec_Y, ws.dec_dY, ws.dec_scratch, n,
                            None, grads, dX=dz)
        dmu = np.multiply(mu, beta * scale, out=ws.dmu[:n])
        dmu += dz
        dlogvar = np.multiply(dz, eps, out=ws.dlogvar[:n])
        dlogvar *= std
        dlogvar *= 0.5
        dlogvar += (0.5 * beta * scale) * (var - 1)
        return recon + beta * kl * scale

    def likelihood(self, logits, X, scale, dlogits, ws, grads, n):
        """−log p(x|z) · scale; its gradient into dlogits (and log σ_x²'s into grads)."""
        if self.settings["likelihood"] == "bernoulli":
            return kernels.bce_from_logits(logits, X, scale, dlogits, ws.e[:n], ws.negative[:n],
                                           ws.positive[:n])
        x_logvar = np.clip(self.model.x_logvar_, self.low, self.high)
        value, dx_logvar = kernels.gaussian_nll(logits, X, x_logvar, scale, dlogits, ws.e[:n])
        inside = (self.model.x_logvar_ >= self.low) & (self.model.x_logvar_ <= self.high)
        np.multiply(dx_logvar, inside, out=grads["x_logvar"])
        return value

    def iwae_part(self, ws, grads, X, eps, mu, logvar, std, beta, scale):
        """The k-sample bound of the part; ∂/∂μ, ∂/∂log σ² left in ws.dmu, ws.dlogvar."""
        k, n, latent = eps.shape
        rows = k * n
        z = ws.z[:rows]
        np.multiply(std, eps, out=z.reshape(k, n, latent))
        z.reshape(k, n, latent)[...] += mu
        logits = self.stack_forward(self.decoder, z, ws.dec_Y, rows)
        X_rows = np.broadcast_to(X, (k, n, X.shape[1])).reshape(rows, X.shape[1])
        dlogits = ws.dec_dY[-1][:rows]
        if self.settings["likelihood"] == "bernoulli":
            nll = kernels.bce_rows(logits, X_rows, dlogits, ws.e[:rows], ws.negative[:rows],
                                   ws.positive[:rows])
        else:
            x_logvar = np.clip(self.model.x_logvar_, self.low, self.high)
            nll = kernels.gaussian_rows(logits, X_rows, x_logvar, dlogits, ws.e[:rows])
        eps_rows = eps.reshape(rows, latent)
        # log p(z) − log q(z|x) = ½ Σ_j (ε_j² + log σ_j² − z_j²)
        prior_minus_q = 0.5 * ((eps_rows * eps_rows - z * z).sum(axis=1)
                               + np.tile(logvar.sum(axis=1), k))
        log_w = (-nll + beta * prior_minus_q).reshape(k, n)
        top = log_w.max(axis=0)
        w = np.exp(log_w - top)
        total = w.sum(axis=0)
        loss = -float(np.sum(np.log(total) + top - math.log(k))) * scale
        weight = (w / total * scale).astype(self.dtype).reshape(rows, 1)   # w̃_i / N
        dlogits *= weight
        if self.settings["likelihood"] == "gaussian":
            inside = (self.model.x_logvar_ >= self.low) & (self.model.x_logvar_ <= self.high)
            dx_logvar = (0.5 * (1 - ws.e[:rows]) * weight).sum(axis=0)
            np.multiply(dx_logvar, inside, out=grads["x_logvar"])
        dz = ws.dz[:rows]
        self.stack_backward(self.decoder, "decoder", z, ws.dec_Y, ws.dec_dY, ws.dec_scratch, rows,
                            None, grads, dX=dz)
        dz += beta * z * weight                              # from −β log p(z_i)
        dz3 = dz.reshape(k, n, latent)
        np.sum(dz3, axis=0, out=ws.dmu[:n])
        dlogvar = (dz3 * eps).sum(axis=0)
        dlogvar *= std
        dlogvar *= 0.5
        dlogvar -= beta * 0.5 * scale                        # the −β log q part
        ws.dlogvar[:n] = dlogvar
        return loss

    def stack_forward(self, layers, X, Y, n):
        """The stack's outputs into Y (row views); returns the last."""
        out = X
        for layer, y in zip(layers, Y):
            out = kernels.dense_forward(out, layer.params["W"], layer.params["b"],
                                        layer.activation.name, y[:n])
        return out

    def stack_backward(self, layers, prefix, X, Y, dY, scratch, n, dOut, grads, dX=None):
        """Backward through the stack from ∂L/∂(last output) — ``dOut``, or already in dY[-1]
        when None — writing its gradients into ``grads`` and ∂L/∂X into ``dX`` (if given)."""
        L = len(layers)
        if dOut is not None:
            if L == 0:  # no layers: ∂L/∂X is dOut itself (not needed below the encoder)
                return
            dY[-1][:n] = dOut
        inputs = [X] + [y[:n] for y in Y[:-1]]
        for i in range(L - 1, -1, -1):
            layer, d = layers[i], dY[i][:n]
            kernels.activation_backward(d, Y[i][:n], layer.activation.name, scratch[i][:n])
            below = dY[i - 1][:n] if i else dX
            kernels.dense_backward(d, inputs[i], layer.params["W"], grads[f"{prefix}.{i}.W"],
                                   grads[f"{prefix}.{i}.b"], below)
