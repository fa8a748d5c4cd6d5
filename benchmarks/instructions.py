"""Instructions per training step, counted by valgrind's callgrind: a measure of the work a step does
that does not move with the machine's load, for comparing two checkouts of npae.

Seconds on a shared virtual machine wander by 10 % and more from run to run (other tenants, steal
time, frequency); instruction counts repeat to the last digit.  For each model, a child process fits
``--low`` and then ``--high`` steps on one thread (``n_jobs=1``, one BLAS thread) under callgrind; the
difference divided by the difference in steps is the step's cost, free of start-up and imports.
With ``--baseline DIR`` the same is counted for the npae of another checkout, and the ratio shown.

    python benchmarks/instructions.py                          # this checkout
    python benchmarks/instructions.py --baseline ../npae-main  # and another, side by side

It needs valgrind (Debian's ``valgrind``); without it, it says so and stops.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import _common as C

CHILD = """
import sys, numpy as np, npae
kind, steps = sys.argv[1], int(sys.argv[2])
X = (np.random.default_rng(0).random((max(steps, 1) * 128, 784)) < 0.3).astype(np.float32)
if kind == "M2":
    model = npae.VAE(784, hidden=(400,), latent=20, n_jobs=1)
else:
    model = npae.Autoencoder(784, hidden=(64,), n_jobs=1)
batch = 1 if kind == "M1 b=1" else 128
model.fit(X[:steps * batch], epochs=1, batch_size=batch, shuffle=False)
"""
MODELS = {"M1": (4, 14), "M2": (3, 13), "M1 b=1": (20, 220)}  # (low, high) steps


def count(checkout: Path, kind: str, steps: int, python: str) -> int:
    """Instructions callgrind collects for a child that fits ``steps`` steps with ``checkout``'s npae."""
    env = dict(os.environ, PYTHONPATH=str(checkout), OPENBLAS_NUM_THREADS="1",
               OMP_NUM_THREADS="1")
    for name in C.OPENBLAS_OVERRIDES:
        env.pop(name, None)
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          python, "-c", CHILD, kind, str(steps)],
                         env=env, capture_output=True, text=True, timeout=3600)
    found = re.search(r"Collected\s*:\s*(\d+)", out.stderr)
    if out.returncode != 0 or not found:
        raise RuntimeError(f"callgrind failed for {checkout} {kind}: {out.stderr.strip()[-300:]}")
    return int(found.group(1))


def per_step(checkout: Path, kind: str, python: str) -> float:
    low, high = MODELS[kind]
    return (count(checkout, kind, high, python) - count(checkout, kind, low, python)) / (high - low)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", default="", help="another checkout of npae to count beside this one")
    args = p.parse_args()
    report = C.Report("instructions", False)
    if shutil.which("valgrind") is None:
        report.say("valgrind is not installed (apt-get install valgrind): nothing counted")
        return
    python = os.path.realpath(sys.executable)  # the interpreter itself, not a launcher script
    checkouts = {"this": C.REPO_ROOT}
    if args.baseline:
        checkouts["base"] = Path(args.baseline).resolve()
    commits = {name: C.commit_of(path) for name, path in checkouts.items()}
    report.say("instructions per training step (callgrind; n_jobs=1, one BLAS thread, "
               "random binary data, batch 128 unless said):")
    rows, results = [], {}
    for kind in MODELS:
        results[kind] = {name: per_step(path, kind, python) for name, path in checkouts.items()}
        row = [kind] + [f"{results[kind][name] / 1e6:.3f} M" for name in checkouts]
        if "base" in checkouts:
            row.append(f"{results[kind]['this'] / results[kind]['base']:.4f}")
        rows.append(row)
        print(f"  {kind}: " + ", ".join(f"{n} {v / 1e6:.3f} M" for n, v in results[kind].items()),
              flush=True)
    columns = ["model"] + [f"{name} ({commits[name] or 'no commit'})" for name in checkouts]
    if "base" in checkouts:
        columns.append("this / base")
    report.table(columns, rows)
    report.write({"stamp": report.stamp, "commits": commits,
                  "checkouts": {k: str(v) for k, v in checkouts.items()},
                  "steps": MODELS, "instructions_per_step": results})


if __name__ == "__main__":
    main()
