"""Scaling: M2 step time against batch size and hidden width, npae against the GEMM limit.

At small batches and narrow layers a step is a few small matrix products
and many Python-level operations: the fixed cost per step dominates and
npae sits far above the GEMM limit.  At large batches and wide layers the
products dominate and the two curves should meet.  Each point is timed
for about ``--budget`` seconds after a warm-up, each implementation in
its own process, alternating over ``--repeats``; the median is shown.

    python benchmarks/scaling.py
    python benchmarks/scaling.py --quick            # one repeat, short budget
    python benchmarks/scaling.py --torch            # add PyTorch (best spelling)
"""

from __future__ import annotations

import json

import _common as C

BATCHES = [1, 16, 128, 1024]
WIDTHS = [100, 200, 400, 1000, 2000]


def main():
    p = C.harness_parser(__doc__.splitlines()[0], repeats=3)
    p.add_argument("--model", choices=("m1", "m2"), default="m2")
    p.add_argument("--budget", type=float, default=1.5, help="seconds per point")
    p.add_argument("--torch", action="store_true", help="also time torch-best")
    args = p.parse_args()
    if args.quick:
        args.repeats, args.budget = 1, 0.3
    report = C.Report("scaling", args.quick)
    env = C.child_env(args.keep_openblas_env)
    wanted = ["npae", "gemm-limit"] + (["torch-best"] if args.torch else [])
    impls = C.select_impls(args.only.split(",") if args.only else wanted, env, report.say)
    data = C.PreparedData()
    machine = C.machine_info(env)
    default_width = 64 if args.model == "m1" else 400
    points = [(args.model, b, default_width) for b in BATCHES]
    points += [(args.model, 128, w) for w in WIDTHS if w != default_width or 128 not in BATCHES]
    report.say(f"data: {data.source}")
    report.say(f"model {args.model.upper()}, {C.THREADS} threads per process, about "
               f"{args.budget} s per point, {args.repeats} repeat(s); cpu {machine['cpu']}")
    report.say()

    runs = []
    for rep in range(args.repeats):
        for impl in impls:
            script, extra = C.IMPL_SCRIPTS[impl]
            res = C.run_child(script, extra + ["--task", "sweep", "--sweep", json.dumps(points),
                                               "--budget", args.budget, "--train", data.train,
                                               "--max-wait", args.max_wait / 4],
                              env, max_wait=args.max_wait)
            res.update(impl=impl, repeat=rep)
            runs.append(res)
            load = res.get("background_cpus")
            report.say(f"  repeat {rep + 1}/{args.repeats} {impl}: "
                       + ("FAILED: " + res["error"] if "error" in res else "done")
                       + (f" (other load {load:.2f} CPUs)" if load is not None else ""))

    def point_values(impl, batch, width, key):
        vals = []
        for r in runs:
            if r["impl"] == impl and "points" in r:
                vals += [q[key] for q in r["points"]
                         if q["batch"] == batch and q["hidden"] == width]
        return vals

    def ms(impl, batch, width):
        return C.median(point_values(impl, batch, width, "ms_per_step"))

    summary = []
    for title, sweep in (("against batch size (width %d)" % default_width,
                          [(b, default_width) for b in BATCHES]),
                         ("against hidden width (batch 128)", [(128, w) for w in WIDTHS])):
        rows = []
        for batch, width in sweep:
            entry = {"batch": batch, "hidden": width,
                     **{impl: ms(impl, batch, width) for impl in impls}}
            npae, gemm = entry.get("npae"), entry.get("gemm-limit")
            entry["gemm_over_npae"] = gemm / npae if npae and gemm else None
            entry["overhead_ms"] = npae - gemm if npae and gemm else None
            loads = [v for impl in impls
                     for v in point_values(impl, batch, width, "background_cpus") if v is not None]
            entry["max_other_load"] = max(loads) if loads else None
            summary.append(entry)
            row = [str(batch), str(width)] + [entry.get(impl) for impl in impls]
            row += [entry["gemm_over_npae"], entry["overhead_ms"],
                    batch / npae * 1e3 if npae else None,
                    "–" if entry["max_other_load"] is None else f"{entry['max_other_load']:.2f}"]
            rows.append(row)
        report.say(f"ms per step {title}:")
        report.table(["batch", "width"] + [f"{impl} ms" for impl in impls]
                     + ["GEMM / npae", "npae − GEMM ms", "npae samples/s", "max other load"],
                     rows)
        report.say()
    if any((e["max_other_load"] or 0) > 0.3 for e in summary):
        report.say("WARNING: other processes were busy during some points (max other load, in "
                   "CPUs); those times are inflated")
    report.say("GEMM / npae near 1: the matrix products dominate; near 0: per-step overhead "
               "(Python, small element-wise operations) dominates.")
    threads = threads_axis(args, data, report)
    report.write({"machine": machine, "data": data.describe(),
                  "settings": {"quick": args.quick, "repeats": args.repeats,
                               "budget": args.budget, "model": args.model, "points": points},
                  "summary": summary, "runs": runs, "threads": threads})


def threads_axis(args, data, report) -> list:
    """Step time at batch 128 and the default width for n_jobs = 1, 2, … up to the cores
    present, against the GEMM limit with as many BLAS threads."""
    width = 64 if args.model == "m1" else 400
    cores = C.machine_info(C.child_env())["logical_cpus"] or 1
    point = json.dumps([(args.model, 128, width)])
    rows, out = [], []
    for n in range(1, cores + 1):
        env = C.child_env(args.keep_openblas_env, threads=n)
        times = {}
        for impl, extra in (("npae", ["--n-jobs", n]), ("gemm-limit", [])):
            script, _ = C.IMPL_SCRIPTS[impl]
            vals = []
            for _ in range(args.repeats):
                res = C.run_child(script, extra + ["--task", "sweep", "--sweep", point, "--budget",
                                                   args.budget, "--train", data.train],
                                  env, max_wait=args.max_wait)
                if "points" in res:
                    vals.append(res["points"][0]["ms_per_step"])
            times[impl] = C.median(vals)
        npae, gemm = times["npae"], times["gemm-limit"]
        out.append({"n_jobs": n, "npae_ms": npae, "gemm_ms": gemm})
        rows.append([str(n), npae, gemm, gemm / npae if npae and gemm else None,
                     (out[0]["npae_ms"] / npae) if npae and out[0]["npae_ms"] else None])
    report.say()
    report.say(f"ms per step against threads ({args.model.upper()}, batch 128, width {width}): "
               "npae with n_jobs = n, the GEMM limit with n BLAS threads")
    report.table(["threads", "npae ms", "GEMM-limit ms", "GEMM / npae", "npae speed-up"], rows)
    return out


if __name__ == "__main__":
    main()
