"""The two benchmark models in npae, through its public API only.

M1 is ``npae.Autoencoder(784, hidden=(64,))`` (relu code, sigmoid output,
binary cross-entropy from the logits); M2 is ``npae.VAE(784, hidden=(400,),
latent=20)`` with its Bernoulli likelihood.  Training is ``model.fit`` with
``npae.Adam(lr=1e-3)``, ``shuffle=True``: the timer covers everything
``fit`` does (a fresh shuffle each epoch, batch gathering, forward,
backward, Adam).

Run by the harness as ``python benchmarks/impl_npae.py --model m2 --epochs 1``.
"""

from __future__ import annotations

import math
import time

import numpy as np

import _common as C
import npae


N_JOBS = INIT = None  # set from the command line (--n-jobs, --init)


def build(model: str, hidden: int, seed: int):
    options = {"n_jobs": N_JOBS} if INIT is None else {"n_jobs": N_JOBS, "init": INIT}
    if model == "m1":
        return npae.Autoencoder(784, hidden=(hidden,), seed=seed, **options)
    return npae.VAE(784, hidden=(hidden,), latent=20, seed=seed, **options)


def fit(net, X, batch: int, epochs: int, lr: float, seed: int):
    return net.fit(X, epochs=epochs, batch_size=batch, optimizer=npae.Adam(lr=lr),
                   shuffle=True, seed=seed, verbose=0)


def timed(args, X, model: str, batch: int, hidden: int, steps: int, epochs: int,
          warmup: int) -> dict:
    net = build(model, hidden, args.seed)
    if warmup:
        fit(net, C.rows_for_steps(X, warmup, batch), batch, 1, args.lr, args.seed)
    if steps:
        X_sub = C.rows_for_steps(X, steps, batch)
        t0 = time.perf_counter()
        fit(net, X_sub, batch, 1, args.lr, args.seed + 1)
        return C.speed_result(time.perf_counter() - t0, steps, steps * batch, len(X), batch, True)
    t0 = time.perf_counter()
    fit(net, X, batch, epochs, args.lr, args.seed + 1)
    return C.speed_result(time.perf_counter() - t0, epochs * math.ceil(len(X) / batch),
                          epochs * len(X), len(X), batch, False)


def test_scores(net, model: str, X_test, seed: int, iw_k: int, iw_n: int) -> dict:
    if model == "m1":
        if hasattr(net, "average_loss"):
            loss = net.average_loss(X_test)
        else:
            loss, _ = net.loss_and_grads(X_test)
        return {"test_bce_per_pixel": float(loss) / X_test.shape[1]}
    elbo = np.asarray(net.elbo(X_test, seed=seed), dtype=np.float64)
    ll = np.asarray(net.log_likelihood(X_test[:iw_n], k=iw_k, seed=seed), dtype=np.float64)
    return {"test_neg_elbo": -float(elbo.mean()), "iw_neg_log_px": -float(ll.mean()),
            "iw_k": iw_k, "iw_n": iw_n}


def main():
    args = C.child_parser(__doc__.splitlines()[0]).parse_args()
    global N_JOBS, INIT
    N_JOBS, INIT = args.n_jobs or None, args.init
    hidden = C.default_hidden(args.model, args.hidden)
    if args.task == "memory":
        out = C.memory_task(timed, args, hidden)
    elif args.task == "quality":
        X = C.child_load(args.train)
        X_test = C.child_load(args.test, 10000)
        net = build(args.model, hidden, args.seed)
        t0 = time.perf_counter()
        fit(net, X, args.batch, args.epochs, args.lr, args.seed)
        out = {"train_seconds": time.perf_counter() - t0, "epochs": args.epochs,
               "seed": args.seed}
        history = getattr(net, "history_", None) or getattr(net, "history", None)
        if isinstance(history, dict) and "loss" in history:
            out["train_loss"] = [float(v) for v in history["loss"]]
        t0 = time.perf_counter()
        out.update(test_scores(net, args.model, X_test, args.seed, args.iw_k, args.iw_n))
        out["eval_seconds"] = time.perf_counter() - t0
    elif args.task == "sweep":
        X = C.child_load(args.train)
        out = {"points": C.sweep_points(lambda m, b, h, steps, warm: timed(args, X, m, b, h, steps, 1, warm),
                                        args.sweep, args.budget, args.max_wait)}
    else:
        X = C.child_load(args.train)
        out = timed(args, X, args.model, args.batch, hidden, args.steps, args.epochs,
                    args.warmup)
    out.update(impl="npae", model=args.model, hidden=hidden, n_jobs=N_JOBS,
               init=build(args.model, hidden, args.seed).init)
    C.emit(out)


if __name__ == "__main__":
    main()
