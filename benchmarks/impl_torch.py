"""The two benchmark models in PyTorch (eager, CPU), in two spellings.

``--variant usual`` is how the models are commonly written: a sigmoid
output layer, ``F.binary_cross_entropy`` and the default ``torch.optim.Adam``.
``--variant best`` is the faster spelling of the same mathematics:
``F.binary_cross_entropy_with_logits`` on the logits and ``Adam(fused=True)``
(``foreach=True`` where fused Adam is not available on CPU).

Both use PyTorch's default initialisation of ``nn.Linear``: weights and
biases uniform in ±1/√fan_in (``kaiming_uniform_(a=√5)`` for the weights).
The loss is summed over the 784 pixels of each example and averaged over
the batch, as in npae.

Run by the harness as, for example::

    python benchmarks/impl_torch.py --task speed --model m2 --variant best --epochs 1

which prints one JSON line of results.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import _common as C

LATENT = 20


class VAE(nn.Module):
    """784 → hidden relu → (μ, log σ²) latent → z → hidden relu → 784."""

    def __init__(self, n_in: int = 784, hidden: int = 400, latent: int = LATENT,
                 sigmoid_output: bool = False):
        super().__init__()
        self.fc1 = nn.Linear(n_in, hidden)
        self.fc_mu = nn.Linear(hidden, latent)
        self.fc_logvar = nn.Linear(hidden, latent)
        self.fc3 = nn.Linear(latent, hidden)
        self.fc4 = nn.Linear(hidden, n_in)
        self.sigmoid_output = sigmoid_output

    def encode(self, x):
        h = F.relu(self.fc1(x))
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z):
        out = self.fc4(F.relu(self.fc3(z)))
        return torch.sigmoid(out) if self.sigmoid_output else out

    def forward(self, x):
        mu, logvar = self.encode(x)
        eps = torch.randn_like(mu)
        z = mu + torch.exp(0.5 * logvar) * eps
        return self.decode(z), mu, logvar


def build(model: str, variant: str, hidden: int):
    """The network and ``loss(net, x)``: per-example sums over pixels, batch mean."""
    usual = variant == "usual"
    if model == "m1":
        layers = [nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 784)]
        net = nn.Sequential(*(layers + [nn.Sigmoid()] if usual else layers))

        def loss(net, x):
            out = net(x)
            if usual:
                return F.binary_cross_entropy(out, x, reduction="sum") / x.shape[0]
            return F.binary_cross_entropy_with_logits(out, x, reduction="sum") / x.shape[0]
        return net, loss

    net = VAE(hidden=hidden, sigmoid_output=usual)

    def loss(net, x):
        out, mu, logvar = net(x)
        if usual:
            recon = F.binary_cross_entropy(out, x, reduction="sum")
        else:
            recon = F.binary_cross_entropy_with_logits(out, x, reduction="sum")
        kl = 0.5 * torch.sum(mu.pow(2) + logvar.exp() - 1.0 - logvar)
        return (recon + kl) / x.shape[0]
    return net, loss


def make_optimizer(params, variant: str, lr: float):
    """Default Adam for ``usual``; fused Adam (else foreach) for ``best``."""
    params = list(params)
    if variant == "usual":
        return torch.optim.Adam(params, lr=lr), "default (for-loop on CPU)"
    try:
        probe = torch.zeros(3, requires_grad=True)
        probe_opt = torch.optim.Adam([probe], lr=lr, fused=True)
        probe.sum().backward()
        probe_opt.step()
        return torch.optim.Adam(params, lr=lr, fused=True), "fused"
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam(params, lr=lr, foreach=True), "foreach (fused unsupported)"


def train(net, opt, loss, X_t, batch: int, epochs: int, gen, record: bool = False) -> list:
    """Plain loop: a fresh permutation each epoch, gather, forward, backward, Adam.

    With ``record`` the mean training loss of each epoch is returned (the
    timed runs leave it off: it adds a small operation to every step).
    """
    n = X_t.shape[0]
    history = []
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        total = torch.zeros((), dtype=torch.float64)
        for start in range(0, n, batch):
            xb = X_t[perm[start:start + batch]]
            value = loss(net, xb)
            opt.zero_grad()
            value.backward()
            opt.step()
            if record:
                total += value.detach() * xb.shape[0]
        if record:
            history.append(float(total) / n)
    return history


def setup(args, hidden: int):
    torch.manual_seed(args.seed)
    net, loss = build(args.model, args.variant, hidden)
    opt, adam_kind = make_optimizer(net.parameters(), args.variant, args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    return net, loss, opt, adam_kind, gen


def timed(args, X, model: str, batch: int, hidden: int, steps: int, epochs: int,
          warmup: int) -> dict:
    """Warm up untimed, then time ``steps`` steps (or ``epochs`` full epochs)."""
    args.model = model
    net, loss, opt, adam_kind, gen = setup(args, hidden)
    if warmup:
        train(net, opt, loss, torch.from_numpy(C.rows_for_steps(X, warmup, batch)), batch, 1, gen)
    if steps:
        X_t = torch.from_numpy(C.rows_for_steps(X, steps, batch))
        t0 = time.perf_counter()
        train(net, opt, loss, X_t, batch, 1, gen)
        seconds = time.perf_counter() - t0
        out = C.speed_result(seconds, steps, steps * batch, len(X), batch, True)
    else:
        X_t = torch.from_numpy(X)
        t0 = time.perf_counter()
        train(net, opt, loss, X_t, batch, epochs, gen)
        seconds = time.perf_counter() - t0
        out = C.speed_result(seconds, epochs * math.ceil(len(X) / batch), epochs * len(X),
                             len(X), batch, False)
    out["adam"] = adam_kind
    return out


@torch.no_grad()
def test_scores(net, loss_model: str, X_test: np.ndarray, seed: int, iw_k: int,
                iw_n: int) -> dict:
    """Test −ELBO (one ε per image) and IW −log p(x), or test BCE per pixel for M1."""
    X = torch.from_numpy(X_test)
    if loss_model == "m1":
        bce = F.binary_cross_entropy_with_logits(net(X), X, reduction="sum")
        return {"test_bce_per_pixel": float(bce) / X.numel()}
    gen = torch.Generator().manual_seed(seed)
    elbos = []
    for start in range(0, len(X), 1000):
        x = X[start:start + 1000]
        mu, logvar = net.encode(x)
        eps = torch.randn(mu.shape, generator=gen)
        z = mu + torch.exp(0.5 * logvar) * eps
        recon = F.binary_cross_entropy_with_logits(net.decode(z), x, reduction="none").sum(1)
        kl = 0.5 * torch.sum(mu.pow(2) + logvar.exp() - 1.0 - logvar, dim=1)
        elbos.append(-(recon + kl))
    elbo = torch.cat(elbos).double()
    # Importance-weighted bound, k samples per image, a few images at a time.
    log2pi = math.log(2 * math.pi)
    lls = []
    per_chunk = max(1, 10000 // iw_k)
    for start in range(0, iw_n, per_chunk):
        x = X[start:min(start + per_chunk, iw_n)]
        mu, logvar = net.encode(x)
        eps = torch.randn((x.shape[0], iw_k, mu.shape[1]), generator=gen)
        z = mu[:, None] + torch.exp(0.5 * logvar)[:, None] * eps
        logits = net.decode(z.reshape(-1, mu.shape[1]))
        target = x[:, None].expand(-1, iw_k, -1).reshape(-1, x.shape[1])
        log_px_z = -F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(1)
        log_pz = -0.5 * torch.sum(z.pow(2) + log2pi, dim=2)
        log_qz = -0.5 * torch.sum(eps.pow(2) + logvar[:, None] + log2pi, dim=2)
        log_w = log_px_z.reshape(x.shape[0], iw_k).double() + (log_pz - log_qz).double()
        lls.append(torch.logsumexp(log_w, dim=1) - math.log(iw_k))
    ll = torch.cat(lls)
    return {"test_neg_elbo": -float(elbo.mean()), "iw_neg_log_px": -float(ll.mean()),
            "iw_k": iw_k, "iw_n": iw_n}


def main():
    args = C.child_parser(__doc__.splitlines()[0]).parse_args()
    torch.set_num_threads(C.THREADS)
    hidden = C.default_hidden(args.model, args.hidden)
    if args.task == "memory":
        out = C.memory_task(timed, args, hidden)
    elif args.task == "quality":
        X = C.child_load(args.train)
        X_test = C.child_load(args.test, 10000)
        net, loss, opt, adam_kind, gen = setup(args, hidden)
        t0 = time.perf_counter()
        history = train(net, opt, loss, torch.from_numpy(X), args.batch, args.epochs, gen,
                        record=True)
        out = {"train_seconds": time.perf_counter() - t0, "train_loss": history,
               "adam": adam_kind, "epochs": args.epochs, "seed": args.seed}
        out.update(test_scores(net, args.model, X_test, args.seed, args.iw_k, args.iw_n))
    elif args.task == "sweep":
        X = C.child_load(args.train)
        out = {"points": C.sweep_points(lambda m, b, h, steps, warm: timed(args, X, m, b, h, steps, 1, warm),
                                        args.sweep, args.budget, args.max_wait)}
    else:
        X = C.child_load(args.train)
        out = timed(args, X, args.model, args.batch, hidden, args.steps, args.epochs,
                    args.warmup)
    out.update(impl="torch-" + args.variant, model=args.model, hidden=hidden)
    C.emit(out)


if __name__ == "__main__":
    main()
