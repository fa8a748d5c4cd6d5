"""The two benchmark models in HIPS autograd (NumPy traced by autograd).

Written in the manner of autograd's own ``examples/variational_autoencoder.py``:
parameters as a list of ``(W, b)`` pairs, the loss as a plain function, the
Bernoulli log-likelihood through ``logaddexp``, ``value_and_grad`` for the
gradient.  Adam is a few lines of float32 NumPy here (autograd's
``misc.optimizers.adam`` keeps its moments in float64, which would turn
the whole model into float64 after one step).  Initialisation matches
PyTorch's ``nn.Linear`` default: uniform in ±1/√fan_in.

Run by the harness as ``python benchmarks/impl_autograd.py --model m2 --epochs 1``.
"""

from __future__ import annotations

import math
import time

import autograd.numpy as anp
import numpy as np
from autograd import value_and_grad

import _common as C

LATENT = 20


def init_layer(rng, n_in: int, n_out: int) -> tuple:
    bound = 1.0 / math.sqrt(n_in)
    W = rng.uniform(-bound, bound, (n_in, n_out)).astype(np.float32)
    b = rng.uniform(-bound, bound, n_out).astype(np.float32)
    return W, b


def init_params(model: str, hidden: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    if model == "m1":
        return [init_layer(rng, 784, hidden), init_layer(rng, hidden, 784)]
    return [init_layer(rng, 784, hidden), init_layer(rng, hidden, LATENT),
            init_layer(rng, hidden, LATENT), init_layer(rng, LATENT, hidden),
            init_layer(rng, hidden, 784)]


def bernoulli_neg_log_lik(logits, x):
    """−log p(x | logits) summed over pixels: Σ log(1 + e^ℓ) − x ℓ."""
    return anp.sum(anp.logaddexp(0.0, logits) - x * logits)


def m1_loss(params, x, eps):
    (W1, b1), (W2, b2) = params
    h = anp.maximum(0.0, anp.dot(x, W1) + b1)
    logits = anp.dot(h, W2) + b2
    return bernoulli_neg_log_lik(logits, x) / x.shape[0]


def m2_loss(params, x, eps):
    """Negative ELBO per example, batch mean: recon + ½Σ(μ² + σ² − 1 − log σ²)."""
    (W1, b1), (Wmu, bmu), (Wlv, blv), (W3, b3), (W4, b4) = params
    h = anp.maximum(0.0, anp.dot(x, W1) + b1)
    mu = anp.dot(h, Wmu) + bmu
    logvar = anp.dot(h, Wlv) + blv
    z = mu + anp.exp(0.5 * logvar) * eps
    h2 = anp.maximum(0.0, anp.dot(z, W3) + b3)
    logits = anp.dot(h2, W4) + b4
    kl = 0.5 * anp.sum(mu ** 2 + anp.exp(logvar) - 1.0 - logvar)
    return (bernoulli_neg_log_lik(logits, x) + kl) / x.shape[0]


class Adam:
    """Adam (Kingma & Ba) in float32, updating the arrays in place."""

    def __init__(self, params: list, lr: float = 1e-3, b1: float = 0.9, b2: float = 0.999,
                 eps: float = 1e-8):
        self.lr, self.b1, self.b2, self.eps, self.t = lr, b1, b2, eps, 0
        self.m = [np.zeros_like(p) for layer in params for p in layer]
        self.v = [np.zeros_like(p) for layer in params for p in layer]

    def step(self, params: list, grads: list) -> None:
        self.t += 1
        bc1 = 1.0 - self.b1 ** self.t
        bc2 = 1.0 - self.b2 ** self.t
        flat_p = [p for layer in params for p in layer]
        flat_g = [g for layer in grads for g in layer]
        for p, g, m, v in zip(flat_p, flat_g, self.m, self.v):
            m *= self.b1
            m += (1.0 - self.b1) * g
            v *= self.b2
            v += (1.0 - self.b2) * g * g
            p -= (self.lr / bc1) * m / (np.sqrt(v) / math.sqrt(bc2) + self.eps)


def train(model: str, params: list, opt: Adam, X, batch: int, epochs: int, rng) -> None:
    loss_grad = value_and_grad(m1_loss if model == "m1" else m2_loss)
    n = len(X)
    for _ in range(epochs):
        perm = rng.permutation(n)
        for start in range(0, n, batch):
            xb = X[perm[start:start + batch]]
            eps = rng.standard_normal((len(xb), LATENT), dtype=np.float32) if model == "m2" else None
            _, grads = loss_grad(params, xb, eps)
            opt.step(params, grads)


def timed(args, X, model: str, batch: int, hidden: int, steps: int, epochs: int,
          warmup: int) -> dict:
    params = init_params(model, hidden, args.seed)
    opt = Adam(params, lr=args.lr)
    rng = np.random.default_rng(args.seed)
    if warmup:
        train(model, params, opt, C.rows_for_steps(X, warmup, batch), batch, 1, rng)
    if steps:
        X_sub = C.rows_for_steps(X, steps, batch)
        t0 = time.perf_counter()
        train(model, params, opt, X_sub, batch, 1, rng)
        return C.speed_result(time.perf_counter() - t0, steps, steps * batch, len(X), batch, True)
    t0 = time.perf_counter()
    train(model, params, opt, X, batch, epochs, rng)
    return C.speed_result(time.perf_counter() - t0, epochs * math.ceil(len(X) / batch),
                          epochs * len(X), len(X), batch, False)


def main():
    args = C.child_parser(__doc__.splitlines()[0]).parse_args()
    hidden = C.default_hidden(args.model, args.hidden)
    if args.task == "memory":
        out = C.memory_task(timed, args, hidden)
    elif args.task == "speed":
        X = C.child_load(args.train)
        out = timed(args, X, args.model, args.batch, hidden, args.steps, args.epochs,
                    args.warmup)
    else:
        raise SystemExit(f"impl_autograd.py: task {args.task!r} is not implemented")
    params = init_params(args.model, hidden, 0)
    eps = np.zeros((2, LATENT), dtype=np.float32)
    _, grads = value_and_grad(m1_loss if args.model == "m1" else m2_loss)(params, X[:2], eps)
    out.update(impl="autograd", model=args.model, hidden=hidden,
               grad_dtypes=sorted({str(g.dtype) for layer in grads for g in layer}))
    C.emit(out)


if __name__ == "__main__":
    main()
