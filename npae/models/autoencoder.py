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

``score`` is minus the mean reconstruction loss of the clean input (no
corruption, no penalties): higher is better, as scikit-learn expects.

The loss and its gradients are written once, in :meth:`Autoencoder.batch_loss`, on the
layers' and losses' buffered functions (:mod:`npae.nn.layers`, :mod:`npae.nn.losses`).
``loss_and_grads`` calls it with fresh buffers; ``fit``'s training step calls it for each
part of a batch, on each thread, with buffers that live as long as the run.  Change it and
training changes.
"""

import numpy as np

from .. import checks
from ..data import unit_interval
from ..nn import activations
from ..nn.activations import get_activation, sigmoid
from ..nn.buffers import Workspace
from ..nn.layers import (INITS, Dense, Sequential, affine_backward, backward_stack, forward_stack,
                         stack_shapes)
from ..nn.losses import bce_with_logits, mse
from .estimator import Estimator

OUTPUT_LOSS_PAIRS = (("sigmoid", "bce"), ("identity", "mse"), ("sigmoid", "mse"), ("tanh", "mse"))
NOISES = (None, "mask", "gaussian")
SPARSITIES = (None, "l1", "kl")
KL_CLAMP = 1e-6  # ρ̂ is kept in [1e-6, 1 − 1e-6] so a saturated unit cannot give log(0)


class Autoencoder(Estimator):
    """An autoencoder ``X → H → X̂`` trained to reconstruct its input.

    Parameters
    ----------
    n_features : int or None
        Width d of the data; None takes it from the data at ``fit``.  Given, the
        network can be built before any data is seen (for a training loop of
        your own).
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
    alpha : float
        L2 penalty ``(alpha / 2) Σ ‖W‖²`` on the weight matrices (scikit-learn MLP's name).
    epochs, batch_size, lr, shuffle, verbose :
        Training by ``fit``: passes over the data, rows per step, Adam's learning
        rate, reshuffling each epoch, 0 (silent) or 1 (a line per epoch).
    warm_start : bool
        ``fit`` continues from the current weights instead of starting over.
    early_stopping, validation_fraction, n_iter_no_change :
        Hold out that fraction of the rows, stop when their loss has not improved
        for that many epochs, and keep the best epoch's parameters.
    n_jobs : int or None
        Threads a training step runs on (each with one BLAS thread): None, every core
        this process may use when the step is large enough to gain from them; -1, every
        core; 1, the serial step.  Results are bit-identical run to run for a given n_jobs.
    init : ``"he-glorot"`` (default) or ``"fan-in"``: the initial weights
        (:func:`npae.layers.init_params`).  He/Glorot trains the better autoencoder on
        Fashion-MNIST, for every seed tried (``benchmarks/README.md``).
    seed : int, numpy.random.Generator or None
        Initial weights, then the shuffles and the noise of training.
    dtype : ``"float32"`` (default), ``"float64"`` (for gradient checks) or None (the data's).

    Attributes
    ----------
    n_features_in_, feature_names_in_ (DataFrames only), history_ (per-epoch ``"loss"``
    and ``"val_loss"``), n_iter_, interrupted_, encoder_, decoder_ (:class:`~npae.Sequential`),
    best_epoch_ and best_val_loss_ (early stopping).

    ``loss_and_grads(X, eps=...)``: ``eps`` (n, d) fixes the denoising noise —
    uniform draws U for ``"mask"``, standard normal E for ``"gaussian"``.
    """

    def __init__(self, n_features=None, hidden=(64,), *, activation="relu", output="sigmoid",
                 loss="bce", tied=False, noise=None, noise_level=0.0, sparsity=None,
                 sparsity_weight=0.0, sparsity_target=0.05, contractive_weight=0.0, alpha=0.0,
                 epochs=10, batch_size=128, lr=1e-3, shuffle=True, verbose=0, warm_start=False,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10, n_jobs=None,
                 init="he-glorot", seed=0, dtype="float32"):
        self.n_features, self.hidden = n_features, hidden
        self.activation, self.output, self.loss, self.tied = activation, output, loss, tied
        self.noise, self.noise_level = noise, noise_level
        self.sparsity, self.sparsity_weight = sparsity, sparsity_weight
        self.sparsity_target, self.contractive_weight = sparsity_target, contractive_weight
        self.alpha, self.epochs, self.batch_size, self.lr = alpha, epochs, batch_size, lr
        self.shuffle, self.verbose, self.warm_start = shuffle, verbose, warm_start
        self.early_stopping, self.validation_fraction = early_stopping, validation_fraction
        self.n_iter_no_change, self.n_jobs, self.init = n_iter_no_change, n_jobs, init
        self.seed, self.dtype = seed, dtype

    # -- settings and the network --------------------------------------------
    def check_settings(self):
        """The network's hyper-parameters, checked: a dict of their values."""
        settings = {"hidden": checks.sizes("hidden", self.hidden),
             "activation": get_activation(self.activation).name,
             "output": get_activation(self.output).name,
             "loss": checks.one_of("loss", self.loss, ("bce", "mse")),
             "tied": checks.boolean("tied", self.tied),
             "noise": checks.one_of("noise", self.noise, NOISES),
             "sparsity": checks.one_of("sparsity", self.sparsity, SPARSITIES),
             "sparsity_weight": checks.number("sparsity_weight", self.sparsity_weight, low=0),
             "sparsity_target": checks.number("sparsity_target", self.sparsity_target, low=0,
                                              high=1, low_open=True, high_open=True),
             "contractive_weight": checks.number("contractive_weight", self.contractive_weight,
                                                 low=0)}
        settings["noise_level"] = checks.number("noise_level", self.noise_level, low=0,
                                         high=1 if settings["noise"] == "mask" else np.inf, high_open=True)
        if (settings["output"], settings["loss"]) not in OUTPUT_LOSS_PAIRS:
            raise ValueError(f"output={self.output!r} with loss={self.loss!r} is not supported; use "
                             f"one of {OUTPUT_LOSS_PAIRS} (bce is computed from the logits of a sigmoid)")
        if settings["sparsity"] == "kl" and settings["activation"] != "sigmoid":
            raise ValueError("sparsity='kl' needs codes in (0, 1): use activation='sigmoid'")
        if settings["contractive_weight"] and len(settings["hidden"]) != 1:
            raise ValueError("contractive_weight needs a one-layer encoder: hidden=(k,)")
        settings["init"] = checks.one_of("init", self.init, INITS)
        checks.number("alpha", self.alpha, low=0)
        return settings

    network_settings = ("hidden", "activation", "output", "loss", "tied")

    @property
    def needs_unit_interval(self):
        return self.loss == "bce"

    unit_interval_alternative = "loss='mse'"

    def parameter_shapes(self, n_features):
        """name → shape of every parameter for data of width ``n_features`` (nothing built)."""
        settings = self.check_settings()
        sizes = (n_features,) + settings["hidden"]
        return {**stack_shapes("encoder", sizes),
                **stack_shapes("decoder", sizes[::-1], weights=not settings["tied"])}

    def make_network(self, n_features, rng):
        """The encoder and decoder stacks for ``n_features`` inputs, weights drawn from ``rng``."""
        settings = self.settings_ = self.check_settings()
        sizes = (n_features,) + settings["hidden"]
        dtype = self.dtype_
        def dense(a, b, activation):
            return Dense(a, b, activation, seed=rng, dtype=dtype, init=settings["init"])

        self.encoder_ = Sequential(dense(a, b, settings["activation"]) for a, b in zip(sizes[:-1], sizes[1:]))
        last = "identity" if settings["loss"] == "bce" else settings["output"]  # bce takes the logits
        back = sizes[::-1]
        self.decoder_ = Sequential(dense(a, b, last if i == len(back) - 2 else settings["activation"])
                                   for i, (a, b) in enumerate(zip(back[:-1], back[1:])))
        if settings["tied"]:
            for dec, enc in zip(self.decoder_.layers, reversed(self.encoder_.layers)):
                dec.params["W"] = enc.params["W"].T

    def bind_params(self, views):
        """Make the layers' arrays ``views`` (name → array, the names of ``network_params``)."""
        self.encoder_.bind(views, "encoder")
        self.decoder_.bind(views, "decoder")
        if self.settings_["tied"]:
            for dec, enc in zip(self.decoder_.layers, reversed(self.encoder_.layers)):
                dec.params["W"] = enc.params["W"].T

    @property
    def code_size(self):
        return checks.sizes("hidden", self.hidden)[-1]

    def network_params(self):
        """``encoder.<i>.W/b``, ``decoder.<i>.W/b`` (no decoder W when tied)."""
        params = {f"encoder.{k}": v for k, v in self.encoder_.params.items()}
        for k, v in self.decoder_.params.items():
            if not (self.settings_["tied"] and k.endswith(".W")):
                params[f"decoder.{k}"] = v
        return params

    def describe(self):
        settings = self.settings_
        sizes = (self.n_features_in_,) + settings["hidden"] + settings["hidden"][-2::-1] + (self.n_features_in_,)
        return " → ".join(map(str, sizes)) + f", {settings['activation']}, {settings['output']} output, {settings['loss']}"

    @property
    def rows_coupled(self):
        """The KL sparsity penalty couples the rows of a batch (through their mean code): such a
        batch is computed whole, on one thread."""
        return self.built().settings_["sparsity"] == "kl"

    def loss_weights(self, epoch):
        """Nothing in the autoencoder's loss changes from epoch to epoch."""
        return None

    # -- noise, loss and gradients --------------------------------------------
    def draw_noise(self, n, rng):
        """The denoising noise of n rows from ``rng``: uniform U (mask) or normal E; None without."""
        noise = self.built().settings_["noise"]
        if noise is None:
            return None
        draw = rng.random if noise == "mask" else rng.standard_normal
        return draw((n, self.n_features_in_), dtype=self.dtype_)

    def noise_rows(self, eps, rows):
        """The noise of the batch's ``rows`` (a slice)."""
        return None if eps is None else eps[rows]

    def corrupt(self, X, eps, work=None):
        """The denoising corruption X̃ of the clean batch X, given the noise draws eps:
        ``X ⊙ 1[U ≥ ν]`` (mask) or ``X + ν E`` (gaussian); X itself without noise."""
        noise, level = self.built().settings_["noise"], self.settings_["noise_level"]
        if noise is None:
            return X
        work = Workspace(X.dtype) if work is None else work
        corrupted = work.like("corrupted", X)
        if noise == "mask":
            np.greater_equal(eps, level, out=corrupted, casting="unsafe")   # 1[U ≥ ν], as floats
            return np.multiply(X, corrupted, out=corrupted)
        np.multiply(eps, level, out=corrupted)
        corrupted += X
        return corrupted

    def batch_loss(self, X, eps, work, grads, scale, weights=None):
        """The loss of the rows ``X`` (times ``scale``) and its gradients, written into ``grads``.

        Forward: X̃ = corrupt(X), H = encoder(X̃), X̂ = decoder(H); the loss of X̂ against the
        clean X (BCE from the logits, or squared error), plus the code's penalty.  Backward:
        through the decoder to ∂L/∂H, the penalty's ∂/∂H added, then through the encoder (with
        the contractive penalty's own terms for a one-layer encoder); a tied weight's two
        gradients summed.  ``work`` holds every intermediate array (:mod:`npae.nn.buffers`);
        ``grads`` maps each name of ``params`` to its gradient's array, which is overwritten.
        """
        settings = self.settings_
        X_in = self.corrupt(X, eps, work)
        encoder, decoder = self.encoder_.layers, self.decoder_.layers
        code = forward_stack(encoder, X_in, work, "encoder")
        H = code[-1]
        out = forward_stack(decoder, H, work, "decoder")
        if settings["loss"] == "bce":                     # the decoder's last layer gave the logits
            loss, dout = bce_with_logits(out[-1], X, scale=scale, out=work.like("dout", X),
                                         work=work)
        else:
            loss, dout = mse(out[-1], X, scale=scale, out=work.like("dout", X))
        tied = [work.array(f"tied.{i}", layer.params["W"].shape)
                for i, layer in enumerate(decoder)] if settings["tied"] else None
        dH = backward_stack(decoder, H, out, dout, grads, work, "decoder", work.like("dH", H), tied)
        loss += self.code_penalty(H, dH, scale, work)
        if settings["contractive_weight"]:
            loss += self.contractive_backward(X_in, H, dH, scale, grads, work)
        else:
            backward_stack(encoder, X_in, code, dH, grads, work, "encoder")
        for i, dW in enumerate(tied or ()):        # each tied weight is used twice: sum both
            grads[f"encoder.{len(encoder) - 1 - i}.W"] += dW.T
        return loss

    def code_penalty(self, H, dH, scale, work):
        """The sparsity penalty of the codes H (times ``scale``); its ∂/∂H added into ``dH``.

        L1: λ Σ|h|, gradient λ sign(h).  KL: λ Σ_j KL(ρ ‖ ρ̂_j) with ρ̂ = the rows' mean code
        (the whole batch: ``rows_coupled``), weighted by the batch's share n · scale; where the
        clamp of ρ̂ to [1e-6, 1 − 1e-6] bites, the penalty is flat and passes no gradient."""
        settings = self.settings_
        weight = settings["sparsity_weight"]
        if settings["sparsity"] == "l1":
            signs = np.sign(H, out=work.like("signs", H))
            penalty = weight * scale * float(np.vdot(signs, H))   # Σ |h| = Σ sign(h) h
            signs *= weight * scale
            dH += signs
            return penalty
        if settings["sparsity"] != "kl":
            return 0.0
        rho, mean_h = settings["sparsity_target"], H.mean(axis=0)
        rho_hat = np.clip(mean_h, KL_CLAMP, 1 - KL_CLAMP)
        share = scale * H.shape[0]
        penalty = weight * share * float(np.sum(
            rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat))))
        inside = (mean_h >= KL_CLAMP) & (mean_h <= 1 - KL_CLAMP)
        dH += (weight * scale) * (-rho / rho_hat + (1 - rho) / (1 - rho_hat)) * inside
        return penalty

    def contractive_backward(self, X, H, dH, scale, grads, work):
        """Backward through the one-layer encoder H = f(X W + b) with the contractive penalty
        λ Σ_i Σ_j f′(a_ij)² c_j (times ``scale``), c_j = Σ_k W[k, j]²; returns the penalty.

        ∂/∂a_ij = ∂L/∂h_ij f′(a_ij) + 2λ f′ f″ c_j, and W gets the direct 2λ f′² W[k, j] too."""
        layer, lam = self.encoder_.layers[0], self.settings_["contractive_weight"]
        W, f = layer.params["W"], layer.activation
        df, d2f = f.df(H, out=work.like("df", H)), f.d2f(H, out=work.like("d2f", H))
        c = (W * W).sum(axis=0)
        squares = df * df
        penalty = lam * scale * float((squares @ c).sum())
        dA = activations.backward(dH, H, f, work.like("scratch", H))
        d2f *= df
        d2f *= (2 * lam * scale) * c
        dA += d2f
        affine_backward(dA, X, W, grads["encoder.0.W"], grads["encoder.0.b"])
        grads["encoder.0.W"] += (2 * lam * scale) * W * squares.sum(axis=0)
        return penalty

    # -- checked batches -----------------------------------------------------------
    def encode_batch(self, X):
        return forward_stack(self.encoder_.layers, X, Workspace(self.dtype_), "encoder")[-1]

    def decode_batch(self, H):
        out = forward_stack(self.decoder_.layers, H, Workspace(self.dtype_), "decoder")[-1]
        return sigmoid(out, out=out) if self.settings_["loss"] == "bce" else out

    def feature_terms(self, X):
        """Each feature's term of each row's score, (n, d): minus its reconstruction loss
        (clean input, no penalties) — each entry taken as a row of one by the loss — less, for
        binary cross-entropy, λ nats per unit it lies outside [0, 1] (its value clipped first:
        :mod:`npae.data.unit_interval`; the cross-entropy of such a value is not a loss, and an
        anomaly must not hide)."""
        outside = 0.0
        if self.settings_["loss"] == "bce":
            X, outside = unit_interval.scored_targets(X)
        work = Workspace(self.dtype_)
        H = forward_stack(self.encoder_.layers, X, work, "encoder")[-1]
        out = forward_stack(self.decoder_.layers, H, work, "decoder")[-1]
        loss = bce_with_logits if self.settings_["loss"] == "bce" else mse
        terms = -loss(out.reshape(-1, 1), X.reshape(-1, 1), per_example=True)[0]
        return terms.reshape(X.shape) - outside

    def score_batch(self, X):
        """Minus each row's reconstruction loss: the sum of its :meth:`feature_terms`."""
        return self.feature_terms(X).sum(axis=1, dtype=np.float64).astype(self.dtype_)
