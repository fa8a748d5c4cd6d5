"""Check that every implementation computes the same model.

With one set of weights (PyTorch's default initialisation, seed 0) copied
into each implementation, one batch of 32 rows and one fixed ε, the loss
and every gradient are compared against a float64 NumPy transcription of
the formulas in benchmarks/README.md:

    M1   L = (1/B) Σ_b Σ_j [log(1 + e^ℓ_bj) − x_bj ℓ_bj],   ℓ = relu(x W1 + b1) W2 + b2
    M2   L = (1/B) Σ_b { Σ_j [log(1 + e^ℓ_bj) − x_bj ℓ_bj] + ½ Σ_k (μ² + σ² − 1 − log σ²) }
         with z = μ + exp(½ log σ²) ⊙ ε and ℓ the decoder's logits

A sigmoid output followed by binary cross-entropy (torch-usual) is the
same loss as BCE from the logits up to float32 rounding.

    python benchmarks/check_models.py
"""

from __future__ import annotations

import sys

import numpy as np

import _common as C

B, LATENT = 32, 20


def reference(model: str, weights: list, x, eps):
    """Loss and gradients in float64 NumPy, written out by hand from the formulas."""
    w = [(W.astype(np.float64), b.astype(np.float64)) for W, b in weights]
    x = x.astype(np.float64)
    n = x.shape[0]

    def bce_logits(logits):
        return np.sum(np.logaddexp(0.0, logits) - x * logits), (1 / (1 + np.exp(-logits)) - x) / n

    if model == "m1":
        (W1, b1), (W2, b2) = w
        a = x @ W1 + b1
        h = np.maximum(a, 0)
        loss, dlogits = bce_logits(h @ W2 + b2)
        dh = dlogits @ W2.T * (a > 0)
        return loss / n, [(x.T @ dh, dh.sum(0)), (h.T @ dlogits, dlogits.sum(0))]
    (W1, b1), (Wmu, bmu), (Wlv, blv), (W3, b3), (W4, b4) = w
    a = x @ W1 + b1
    h = np.maximum(a, 0)
    mu, logvar = h @ Wmu + bmu, h @ Wlv + blv
    std = np.exp(0.5 * logvar)
    z = mu + std * eps
    a2 = z @ W3 + b3
    h2 = np.maximum(a2, 0)
    recon, dlogits = bce_logits(h2 @ W4 + b4)
    kl = 0.5 * np.sum(mu ** 2 + std ** 2 - 1 - logvar)
    dh2 = dlogits @ W4.T * (a2 > 0)
    dz = dh2 @ W3.T
    dmu = dz + mu / n
    dlogvar = dz * eps * 0.5 * std + 0.5 * (std ** 2 - 1) / n
    dh = (dmu @ Wmu.T + dlogvar @ Wlv.T) * (a > 0)
    return (recon + kl) / n, [(x.T @ dh, dh.sum(0)), (h.T @ dmu, dmu.sum(0)),
                              (h.T @ dlogvar, dlogvar.sum(0)), (z.T @ dh2, dh2.sum(0)),
                              (h2.T @ dlogits, dlogits.sum(0))]


def rel_err(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def compare(name, loss, grads, ref_loss, ref_grads) -> list:
    errs = [rel_err(loss, ref_loss)] + [rel_err(g, r) for pair, rpair in zip(grads, ref_grads)
                                        for g, r in zip(pair, rpair)]
    return [name, float(loss), errs[0], max(errs[1:])]


def torch_run(model, variant, x, eps):
    import torch
    import impl_torch
    torch.manual_seed(0)
    net, loss_fn = impl_torch.build(model, variant, 64 if model == "m1" else 400)
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    weights = [(l.weight.detach().numpy().T.copy(), l.bias.detach().numpy().copy())
               for l in linears]
    original = torch.randn_like
    torch.randn_like = lambda t, **kw: torch.from_numpy(eps.astype(np.float32))
    try:
        loss = loss_fn(net, torch.from_numpy(x))
    finally:
        torch.randn_like = original
    loss.backward()
    grads = [(l.weight.grad.numpy().T, l.bias.grad.numpy()) for l in linears]
    return float(loss.detach()), grads, weights


def main():
    report = C.Report("check_models", False)
    X, _, source = C.load_data()
    rng = np.random.default_rng(0)
    x = X[rng.choice(len(X), B, replace=False)]
    eps = rng.standard_normal((B, LATENT)).astype(np.float32)
    report.say(f"data: {source}; batch {B}; relative errors are max |a − b| / max |b| "
               "against float64 NumPy")
    if not C.peer_available("torch"):
        print("torch not installed: skipped (its weights are the common starting point)")
        return 0
    rows, worst = [], 0.0
    for model in ("m1", "m2"):
        best_loss, best_grads, weights = torch_run(model, "best", x, eps)
        ref_loss, ref_grads = reference(model, weights, x, eps.astype(np.float64))
        rows.append(compare(f"{model} torch-best", best_loss, best_grads, ref_loss, ref_grads))
        loss, grads, _ = torch_run(model, "usual", x, eps)
        rows.append(compare(f"{model} torch-usual", loss, grads, ref_loss, ref_grads))
        if C.peer_available("autograd"):
            from autograd import value_and_grad
            import impl_autograd
            params = [(W.copy(), b.copy()) for W, b in weights]
            fn = impl_autograd.m1_loss if model == "m1" else impl_autograd.m2_loss
            loss, grads = value_and_grad(fn)(params, x, eps)
            rows.append(compare(f"{model} autograd", loss, grads, ref_loss, ref_grads))
        else:
            print("autograd not installed: skipped")
        try:
            import npae
            net = (npae.Autoencoder(784, hidden=(64,), seed=0) if model == "m1"
                   else npae.VAE(784, hidden=(400,), latent=20, seed=0))
            names = (["encoder.0", "decoder.0"] if model == "m1" else
                     ["encoder.0", "mu", "logvar", "decoder.0", "decoder.1"])
            for name, (W, b) in zip(names, weights):
                net.params[name + ".W"][...] = W
                net.params[name + ".b"][...] = b
            loss, g = net.loss_and_grads(x, eps=eps) if model == "m2" else net.loss_and_grads(x)
            grads = [(g[name + ".W"], g[name + ".b"]) for name in names]
            rows.append(compare(f"{model} npae", loss, grads, ref_loss, ref_grads))
        except (ImportError, AttributeError, KeyError) as exc:
            print(f"npae not usable here ({type(exc).__name__}: {exc}): skipped")
        worst = max(worst, max(max(r[2], r[3]) for r in rows))
    report.table(["implementation", "loss", "loss rel. err", "max grad rel. err"], rows)
    ok = worst < 1e-4
    report.say(f"worst relative error {worst:.2e}: "
               + ("the same model everywhere (float32 rounding)" if ok else "MISMATCH"))
    report.write({"data": source, "batch": B, "rows": rows, "worst": worst})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
