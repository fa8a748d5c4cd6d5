"""The paper forms of npae's formulas: the tests' oracles.

npae writes each formula once, on buffers, and that form is what trains.  The forms here are
the ones the papers print — plain NumPy, no buffers, no fused identities — and the tests hold
npae's functions equal to them: to 1e-12 in float64, and to float32 rounding in float32.
"""

import math

import numpy as np


# -- Adam (Kingma & Ba, 2015) ---------------------------------------------------------------
def adam_reference_update(p, g, m, v, t, *, lr=1e-3, beta_1=0.9, beta_2=0.999, eps=1e-8):
    """One Adam step exactly as Kingma & Ba print it, in place."""
    m[...] = beta_1 * m + (1 - beta_1) * g
    v[...] = beta_2 * v + (1 - beta_2) * g * g
    m_hat = m / (1 - beta_1 ** t)
    v_hat = v / (1 - beta_2 ** t)
    p -= lr * m_hat / (np.sqrt(v_hat) + eps)


# -- activations, from the pre-activation a ---------------------------------------------------
def sigmoid(a):
    return 1 / (1 + np.exp(-a))


ACTIVATION = {  # name -> (f(a), f′(a), f″(a)), as a textbook writes them
    "identity": (lambda a: a, lambda a: np.ones_like(a), lambda a: np.zeros_like(a)),
    "relu": (lambda a: np.maximum(a, 0), lambda a: (a > 0).astype(a.dtype),
             lambda a: np.zeros_like(a)),
    "leaky_relu": (lambda a: np.where(a > 0, a, 0.01 * a),
                   lambda a: np.where(a > 0, 1.0, 0.01).astype(a.dtype), lambda a: np.zeros_like(a)),
    "sigmoid": (sigmoid, lambda a: sigmoid(a) * (1 - sigmoid(a)),
                lambda a: sigmoid(a) * (1 - sigmoid(a)) * (1 - 2 * sigmoid(a))),
    "tanh": (np.tanh, lambda a: 1 - np.tanh(a) ** 2,
             lambda a: -2 * np.tanh(a) * (1 - np.tanh(a) ** 2)),
    "softplus": (lambda a: np.log1p(np.exp(a)), sigmoid,
                 lambda a: sigmoid(a) * (1 - sigmoid(a))),
}


# -- losses, per row, with their gradients for the batch mean ----------------------------------
def bce_rows(t, x):
    """−Σ_j [x log σ(t) + (1 − x) log(1 − σ(t))] per row, via log σ(t) = −log(1 + e^{−t})."""
    return (np.logaddexp(0, -t) * x + np.logaddexp(0, t) * (1 - x)).sum(axis=1)


def gaussian_rows(x, mu, logvar):
    return 0.5 * (np.log(2 * np.pi) + logvar + (x - mu) ** 2 / np.exp(logvar)).sum(axis=1)


def kl_rows(mu, logvar):
    return 0.5 * (mu ** 2 + np.exp(logvar) - 1 - logvar).sum(axis=1)


# -- the autoencoder: forward, the loss, and backpropagation, layer by layer ------------------
def autoencoder_layers(model):
    """[(W, b, activation name, W's parameter name or (encoder name, transposed))] encoder then
    decoder, read from the model's public ``params`` and ``settings_``."""
    s, p = model.settings_, model.params
    L = len(s["hidden"])
    layers = [(p[f"encoder.{i}.W"], p[f"encoder.{i}.b"], s["activation"], f"encoder.{i}.W")
              for i in range(L)]
    last = "identity" if s["loss"] == "bce" else s["output"]
    for i in range(L):
        tied = s["tied"]
        W = p[f"encoder.{L - 1 - i}.W"].T if tied else p[f"decoder.{i}.W"]
        layers.append((W, p[f"decoder.{i}.b"], last if i == L - 1 else s["activation"],
                       (f"encoder.{L - 1 - i}.W", True) if tied else f"decoder.{i}.W"))
    return layers


def autoencoder_loss_and_grads(model, X, eps, alpha=None):
    """The autoencoder's loss (mean over rows, plus every penalty) and its gradients."""
    s, n = model.settings_, X.shape[0]
    X_in = X
    if s["noise"] == "mask":
        X_in = X * (eps >= s["noise_level"])
    elif s["noise"] == "gaussian":
        X_in = X + s["noise_level"] * eps
    layers = autoencoder_layers(model)
    inputs, pre = [X_in], []
    for W, b, f, _ in layers:
        pre.append(inputs[-1] @ W + b)
        inputs.append(ACTIVATION[f][0](pre[-1]))
    out, L_enc = inputs[-1], len(s["hidden"])
    if s["loss"] == "bce":
        loss, d = bce_rows(out, X).mean(), (sigmoid(out) - X) / n
    else:
        loss, d = ((out - X) ** 2).sum(axis=1).mean(), 2 * (out - X) / n
    grads = {}
    H = inputs[L_enc]
    for k in range(len(layers) - 1, -1, -1):
        W, b, f, name = layers[k]
        if k == L_enc - 1:                                  # d is ∂L/∂H: the code's penalty
            lam = s["sparsity_weight"]
            if s["sparsity"] == "l1":
                loss += lam * np.abs(H).sum() / n
                d = d + lam * np.sign(H) / n
            elif s["sparsity"] == "kl":
                rho, rho_hat = s["sparsity_target"], H.mean(axis=0)
                loss += lam * (rho * np.log(rho / rho_hat)
                               + (1 - rho) * np.log((1 - rho) / (1 - rho_hat))).sum()
                d = d + lam * (-rho / rho_hat + (1 - rho) / (1 - rho_hat)) / n
        dA = d * ACTIVATION[f][1](pre[k])
        dW = inputs[k].T @ dA
        if k == 0 and s["contractive_weight"]:              # λ/n Σ_i ‖∂h_i/∂x_i‖²_F
            lam, df, d2f = s["contractive_weight"], ACTIVATION[f][1](pre[0]), ACTIVATION[f][2](pre[0])
            c = (W ** 2).sum(axis=0)
            loss += lam / n * ((df ** 2) @ c).sum()
            dA = dA + 2 * lam / n * df * d2f * c
            dW = inputs[0].T @ dA + 2 * lam / n * W * (df ** 2).sum(axis=0)
        if isinstance(name, tuple):
            grads[name[0]] = grads.get(name[0], 0) + dW.T
        else:
            grads[name] = grads.get(name, 0) + dW
        grads[name.replace(".W", ".b") if isinstance(name, str) else f"decoder.{k - L_enc}.b"] = \
            dA.sum(axis=0)
        d = dA @ W.T
    return _with_l2(model, loss, grads, alpha)


def _with_l2(model, loss, grads, alpha):
    alpha = model.alpha if alpha is None else alpha
    for name, p in model.params.items():
        if name.endswith(".W"):
            loss += 0.5 * alpha * (p ** 2).sum()
            grads[name] = grads[name] + alpha * p
    return float(loss), grads


# -- the VAE: −ELBO and the IWAE bound, by reverse-mode differentiation written out -----------
def vae_loss_and_grads(model, X, eps, beta=None):
    """−ELBO (one sample per row) or the k-sample IWAE bound, with β, and the gradients."""
    s, p, n = model.settings_, model.params, X.shape[0]
    beta = s["beta"] if beta is None else beta
    lo, hi = -30.0, 20.0
    enc, pre = [X], []
    for i in range(len(s["hidden"])):
        pre.append(enc[-1] @ p[f"encoder.{i}.W"] + p[f"encoder.{i}.b"])
        enc.append(ACTIVATION[s["activation"]][0](pre[-1]))
    h = enc[-1]
    mu = h @ p["mu.W"] + p["mu.b"]
    raw = h @ p["logvar.W"] + p["logvar.b"]
    logvar = np.clip(raw, lo, hi)
    std = np.exp(0.5 * logvar)
    iwae = s["objective"] == "iwae"
    E = eps if iwae else eps[None]
    k = E.shape[0]
    Z = (mu + std * E).reshape(k * n, -1)                     # z_i = μ + σ ε_i
    dec, dpre = [Z], []
    depth = len(s["hidden"]) + 1
    for i in range(depth):
        dpre.append(dec[-1] @ p[f"decoder.{i}.W"] + p[f"decoder.{i}.b"])
        f = "identity" if i == depth - 1 else s["activation"]
        dec.append(ACTIVATION[f][0](dpre[-1]))
    out = dec[-1]
    Xk = np.tile(X, (k, 1))
    gaussian = s["likelihood"] == "gaussian"
    if gaussian:
        x_logvar = np.clip(p["x_logvar"], lo, hi)
        nll = gaussian_rows(Xk, out, x_logvar)
        dnll_out = (out - Xk) / np.exp(x_logvar)
        dnll_xlv = 0.5 * (1 - (Xk - out) ** 2 / np.exp(x_logvar))
    else:
        nll = bce_rows(out, Xk)
        dnll_out = sigmoid(out) - Xk
    E2 = E.reshape(k * n, -1)
    if iwae:   # log w = −nll + β (log p(z) − log q(z|x)) = −nll + β ½ Σ (ε² + log σ² − z²)
        log_w = (-nll + beta * 0.5 * ((E2 ** 2).sum(1) - (Z ** 2).sum(1)
                                      + np.tile(logvar.sum(1), k))).reshape(k, n)
        m = log_w.max(axis=0)
        loss = -np.mean(m + np.log(np.exp(log_w - m).sum(axis=0)) - np.log(k))
        wt = (np.exp(log_w - m) / np.exp(log_w - m).sum(axis=0)).reshape(k * n, 1) / n
        d_out = dnll_out * wt
        extra_dz = beta * Z * wt
        dlogvar_direct = -beta * 0.5 / n * np.ones_like(mu)
        dmu_direct = 0
    else:
        kl = kl_rows(mu, logvar)
        loss = np.mean(nll + beta * kl)
        wt = np.full((n, 1), 1 / n)
        d_out = dnll_out / n
        extra_dz = 0
        dmu_direct = beta * mu / n
        dlogvar_direct = beta * 0.5 * (np.exp(logvar) - 1) / n
    grads = {}
    if gaussian:
        grads["x_logvar"] = (dnll_xlv * wt).sum(axis=0) * ((p["x_logvar"] >= lo) & (p["x_logvar"] <= hi))
    d = d_out
    for i in range(depth - 1, -1, -1):
        f = "identity" if i == depth - 1 else s["activation"]
        dA = d * ACTIVATION[f][1](dpre[i])
        grads[f"decoder.{i}.W"], grads[f"decoder.{i}.b"] = dec[i].T @ dA, dA.sum(axis=0)
        d = dA @ p[f"decoder.{i}.W"].T
    dZ = (d + extra_dz).reshape(k, n, -1)
    dmu = dZ.sum(axis=0) + dmu_direct                            # ∂z/∂μ = 1
    dlogvar = (dZ * E).sum(axis=0) * 0.5 * std + dlogvar_direct  # ∂z/∂log σ² = ½ σ ε
    dlogvar = dlogvar * ((raw >= lo) & (raw <= hi))
    grads["mu.W"], grads["mu.b"] = h.T @ dmu, dmu.sum(axis=0)
    grads["logvar.W"], grads["logvar.b"] = h.T @ dlogvar, dlogvar.sum(axis=0)
    d = dmu @ p["mu.W"].T + dlogvar @ p["logvar.W"].T
    for i in range(len(s["hidden"]) - 1, -1, -1):
        dA = d * ACTIVATION[s["activation"]][1](pre[i])
        grads[f"encoder.{i}.W"], grads[f"encoder.{i}.b"] = enc[i].T @ dA, dA.sum(axis=0)
        d = dA @ p[f"encoder.{i}.W"].T
    return _with_l2(model, loss, grads, None)


def loss_and_grads(model, X, eps, **kw):
    """The oracle of either model."""
    if hasattr(model, "latent"):
        return vae_loss_and_grads(model, X, eps, **kw)
    return autoencoder_loss_and_grads(model, X, eps, **kw)
