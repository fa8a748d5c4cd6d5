"""The GEMM limit: only the matrix products of one training step, in NumPy.

A training step of a dense network cannot be faster than its matrix
products.  This script runs exactly the float32 products of one step of
M1 or M2 (forward and backward, same shapes), into preallocated outputs,
for the same sequence of batch sizes as an epoch (the last batch of an
epoch over 60,000 rows at batch 128 has 96 rows), and times that alone:
no data gathering, no activations, no loss, no Adam.

M1, batch B, width h (5 products)::

    forward   H  = X  @ W1        (B,784)·(784,h)
              Y  = H  @ W2        (B,h)·(h,784)
    backward  dW2 = Hᵀ @ dY       (h,B)·(B,784)
              dH  = dY @ W2ᵀ      (B,784)·(784,h)
              dW1 = Xᵀ @ dH       (784,B)·(B,h)

M2, latent 20 (11 products; the μ and log σ² heads as one (h, 40) product,
which is never slower than two (h, 20) ones)::

    forward   H = X @ W1, head = H @ Wh, H2 = Z @ W3, Y = H2 @ W4
    backward  dW4 = H2ᵀ dY, dH2 = dY W4ᵀ, dW3 = Zᵀ dH2, dZ = dH2 W3ᵀ,
              dWh = Hᵀ dhead, dH = dhead Whᵀ, dW1 = Xᵀ dH

No gradient with respect to the input X is formed (nothing needs it).
"""

from __future__ import annotations

import math
import time

import numpy as np

import _common as C

LATENT = 20


def plan(model: str, batch: int, hidden: int, rng) -> list:
    """The ``(a, b, out)`` triples of one step, with every array allocated once."""
    def arr(*shape):
        return (0.01 * rng.standard_normal(shape)).astype(np.float32)

    X = rng.random((batch, 784), dtype=np.float32)
    if model == "m1":
        W1, W2 = arr(784, hidden), arr(hidden, 784)
        H, Y = arr(batch, hidden), arr(batch, 784)
        dY, dH = arr(batch, 784), arr(batch, hidden)
        dW1, dW2 = arr(784, hidden), arr(hidden, 784)
        return [(X, W1, H), (H, W2, Y),
                (H.T, dY, dW2), (dY, W2.T, dH), (X.T, dH, dW1)]
    W1, Wh, W3, W4 = arr(784, hidden), arr(hidden, 2 * LATENT), arr(LATENT, hidden), arr(hidden, 784)
    H, head, Z, H2, Y = (arr(batch, hidden), arr(batch, 2 * LATENT), arr(batch, LATENT),
                         arr(batch, hidden), arr(batch, 784))
    dY, dH2, dZ, dhead, dH = (arr(batch, 784), arr(batch, hidden), arr(batch, LATENT),
                              arr(batch, 2 * LATENT), arr(batch, hidden))
    dW1, dWh, dW3, dW4 = arr(784, hidden), arr(hidden, 2 * LATENT), arr(LATENT, hidden), arr(hidden, 784)
    return [(X, W1, H), (H, Wh, head), (Z, W3, H2), (H2, W4, Y),
            (H2.T, dY, dW4), (dY, W4.T, dH2), (Z.T, dH2, dW3), (dH2, W3.T, dZ),
            (H.T, dhead, dWh), (dhead, Wh.T, dH), (X.T, dH, dW1)]


def run_steps(plans: dict, sizes: list) -> float:
    """Seconds for the products of one step per entry of ``sizes``."""
    matmul = np.matmul
    t0 = time.perf_counter()
    for size in sizes:
        for a, b, out in plans[size]:
            matmul(a, b, out=out)
    return time.perf_counter() - t0


def timed(model: str, batch: int, hidden: int, steps: int, epochs: int, warmup: int,
          n_rows: int) -> dict:
    rng = np.random.default_rng(0)
    if steps:
        sizes = [batch] * steps
    else:
        sizes = C.batch_sizes(n_rows, batch) * epochs
    plans = {size: plan(model, size, hidden, rng) for size in set(sizes)}
    run_steps(plans, [batch] * warmup)
    seconds = run_steps(plans, sizes)
    flops = {size: sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for a, b, _ in plans[size])
             for size in plans}
    if steps:
        out = C.speed_result(seconds, steps, steps * batch, n_rows, batch, True)
    else:
        out = C.speed_result(seconds, len(sizes), epochs * n_rows, n_rows, batch, False)
    out["gflops_per_s"] = sum(flops[size] for size in sizes) / seconds / 1e9
    out["products_per_step"] = len(plans[batch])
    return out


def main():
    args = C.child_parser(__doc__.splitlines()[0]).parse_args()
    hidden = C.default_hidden(args.model, args.hidden)
    n_rows = len(np.load(args.train, mmap_mode="r")) if args.train else 60000
    if args.task == "sweep":
        out = {"points": C.sweep_points(lambda m, b, h, steps, warm: timed(m, b, h, steps, 1, warm, n_rows),
                                        args.sweep, args.budget, args.max_wait)}
    else:
        out = timed(args.model, args.batch, hidden, args.steps, args.epochs, args.warmup, n_rows)
        out["steps_per_epoch"] = math.ceil(n_rows / args.batch)
    out.update(impl="gemm-limit", model=args.model, hidden=hidden)
    C.emit(out)


if __name__ == "__main__":
    main()
