"""The autoencoder's training step on preallocated buffers (see :mod:`npae.training.step`).

The arithmetic of ``Autoencoder.network_loss_and_grads`` — corruption, the encoder and decoder
stacks, the loss from the logits or the outputs, the L1 sparsity and contractive penalties,
tied weights — for one part of a batch, written into buffers that live as long as the run.
The tests hold it equal to the model's plain code for every variant it covers.  The KL
sparsity penalty couples the rows of a batch (through their mean), so it is not here: with
it, the model trains on the reference step, one thread.
"""

from types import SimpleNamespace

import numpy as np

from ..nn import kernels
from ..training.step import FastStep


class AutoencoderStep(FastStep):
    """One batch of an :class:`~npae.Autoencoder`, on buffers and threads."""

    def __init__(self, model, optimizer, batch_size, n_jobs):
        s = model.settings_
        self.layers = model.encoder_.layers + model.decoder_.layers
        self.n_encoder = len(model.encoder_.layers)
        self.names = ([f"encoder.{i}" for i in range(self.n_encoder)]
                      + [f"decoder.{i}" for i in range(len(model.decoder_.layers))])
        self.tied, self.settings = s["tied"], s
        super().__init__(model, optimizer, batch_size, n_jobs)

    def workspace(self, rows):
        d = self.model.n_features_in_
        sizes = [layer.params["W"].shape[1] for layer in self.layers]
        ws = SimpleNamespace(
            Y=[np.empty((rows, k), self.dtype) for k in sizes],        # each layer's output
            dY=[np.empty((rows, k), self.dtype) for k in sizes],       # ∂L/∂ of it, then of its A
            scratch=[np.empty((rows, k), self.dtype) for k in sizes],
            X_in=np.empty((rows, d), self.dtype),
            e=np.empty((rows, d), self.dtype), negative=np.empty((rows, d), self.dtype),
            positive=np.empty((rows, d), self.dtype),
            tied=[np.empty(layer.params["W"].shape, self.dtype)
                  for layer in self.layers[self.n_encoder:]] if self.tied else [])
        return ws

    def part(self, ws, grads, X, eps, scale):
        s, n, L = self.settings, len(X), len(self.layers)
        Y = [y[:n] for y in ws.Y]
        dY = [g[:n] for g in ws.dY]
        scratch = [t[:n] for t in ws.scratch]
        X_in = X
        if s["noise"] == "mask":                      # X̃ = X ⊙ 1[U ≥ ν]
            X_in = np.greater_equal(eps, s["noise_level"], out=ws.negative[:n])
            X_in = np.multiply(X, X_in, out=ws.X_in[:n])
        elif s["noise"] == "gaussian":                # X̃ = X + ν E
            X_in = np.multiply(eps, s["noise_level"], out=ws.X_in[:n])
            X_in += X
        inputs = [X_in] + Y[:-1]
        for k, layer in enumerate(self.layers):
            kernels.dense_forward(inputs[k], layer.params["W"], layer.params["b"],
                                  layer.activation.name, Y[k])
        if s["loss"] == "bce":                        # the last layer gave the logits
            loss = kernels.bce_from_logits(Y[-1], X, scale, dY[-1], ws.e[:n], ws.negative[:n],
                                           ws.positive[:n])
        else:
            loss = kernels.squared_error(Y[-1], X, scale, dY[-1])
        code = self.n_encoder - 1
        for k in range(L - 1, -1, -1):
            layer, name = self.layers[k], self.names[k]
            if k == code:                             # the penalty's ∂/∂H joins ∂L/∂H, before f′
                loss += self.sparsity(Y[k], dY[k], scale, scratch[k])
            kernels.activation_backward(dY[k], Y[k], layer.activation.name, scratch[k])
            if k == 0 and s["contractive_weight"]:
                loss += self.contractive(layer, inputs[0], Y[0], dY[0], scale, grads)
                continue
            W = layer.params["W"]
            dW = ws.tied[k - self.n_encoder] if self.tied and k >= self.n_encoder else \
                grads[f"{name}.W"]
            kernels.dense_backward(dY[k], inputs[k], W, dW, grads[f"{name}.b"],
                                   dY[k - 1] if k else None)
        if self.tied:                                 # each tied weight is used twice: sum both
            for j, dW in enumerate(ws.tied):
                grads[f"encoder.{self.n_encoder - 1 - j}.W"] += dW.T
        return loss

    def sparsity(self, H, dH, scale, scratch):
        """The L1 sparsity penalty λ Σ|h| · scale of the code H; its gradient added to dH."""
        s = self.settings
        if s["sparsity"] != "l1":
            return 0.0
        weight = s["sparsity_weight"] * scale
        np.sign(H, out=scratch)
        penalty = weight * float(np.vdot(scratch, H))   # Σ |h| = Σ sign(h) h
        scratch *= weight
        dH += scratch
        return penalty

    def contractive(self, layer, X, H, dA, scale, grads):
        """Backward of the one-layer encoder with the contractive penalty; returns the penalty.

        dA holds ∂L/∂H ⊙ f′; the penalty is λ Σ_i Σ_j f′(a_ij)² c_j · scale, c_j = Σ_k W[k, j]²
        (autoencoder.py derives its gradient).
        """
        lam, W = self.settings["contractive_weight"], layer.params["W"]
        df, d2f = layer.activation.df(H), layer.activation.d2f(H)
        c = (W * W).sum(axis=0)
        penalty = lam * scale * float(((df * df) @ c).sum())
        dA += (2 * lam * scale) * df * d2f * c
        kernels.dense_backward(dA, X, W, grads["encoder.0.W"], grads["encoder.0.b"])
        grads["encoder.0.W"] += (2 * lam * scale) * W * (df * df).sum(axis=0)
        return penalty
