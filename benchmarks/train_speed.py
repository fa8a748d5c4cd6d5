"""Training speed: seconds per epoch of M1 and M2, npae against its peers.

Each implementation runs in its own process (2 threads), the processes
alternate A B C … A B C … over several repeats, and the median is
reported.  See benchmarks/README.md for the models and the rules.

    python benchmarks/train_speed.py            # full run, 5 repeats
    python benchmarks/train_speed.py --quick    # smoke run, a minute or two
    python benchmarks/train_speed.py --from-json benchmarks/results/train_speed_latest.json
                                                # print the tables of a saved run again
    python benchmarks/train_speed.py --baseline ../npae-main
                                                # also an earlier checkout's npae (as "base" and
                                                # "base-1"), alternating with the others
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import _common as C

IMPLS = ["npae", "npae-1", "gemm-limit", "torch-usual", "torch-best", "autograd"]
# npae at its default (threads as the step is worth, here 2) and npae-1 at n_jobs=1
TARGETS = {"M1": {"npae/torch-best": 0.8, "gemm/npae": 0.4},
           "M2": {"npae/torch-best": 0.8, "gemm/npae": 0.7},
           "M1 b=1": {"npae/torch-best": 0.9}}
# A run during which other processes kept this many CPUs busy is "disturbed":
# the medians leave it out (sharing the cores only ever slows a run down)
# unless every repeat was disturbed.
DISTURBED = 0.3


def configs(args) -> list:
    """(label, model, batch, timed steps or 0 for whole epochs, warm-up steps)."""
    if args.quick:
        return [("M1", "m1", 128, 100, 20), ("M2", "m2", 128, 100, 20),
                ("M1 b=1", "m1", 1, 300, 100)]
    return [("M1", "m1", 128, 0, args.warmup), ("M2", "m2", 128, 0, args.warmup),
            ("M1 b=1", "m1", 1, args.b1_steps, 300)]


def main():
    p = C.harness_parser(__doc__.splitlines()[0])
    p.add_argument("--warmup", type=int, default=200, help="untimed steps per process")
    p.add_argument("--b1-steps", type=int, default=2000,
                   help="timed steps at batch size 1 (extrapolated to an epoch)")
    p.add_argument("--from-json", default="", help="re-print the tables of a saved run")
    p.add_argument("--baseline", default="",
                   help="another checkout of npae, measured in the same run as base and base-1")
    args = p.parse_args()
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        settings = saved["settings"]
        report = C.Report("train_speed", settings["quick"], stamp=saved.get("stamp"))
        render(report, saved["machine"], saved["data"], settings, saved["runs"])
        return
    if args.quick:
        args.repeats = min(args.repeats, 2)
    report = C.Report("train_speed", args.quick)
    env = C.child_env(args.keep_openblas_env)
    impls = C.select_impls(args.only.split(",") if args.only else IMPLS, env, report.say)
    baseline = Path(args.baseline).resolve() if args.baseline else None
    if baseline is not None:
        if not (baseline / "benchmarks" / "impl_npae.py").is_file():
            p.error(f"--baseline {args.baseline}: no benchmarks/impl_npae.py there")
        impls += ["base", "base-1"]
    data = C.PreparedData()
    machine = C.machine_info(env)
    settings = {"quick": args.quick, "epochs": args.epochs, "repeats": args.repeats,
                "warmup": args.warmup, "b1_steps": args.b1_steps, "batch": 128, "lr": 1e-3,
                "impls": impls, "configs": configs(args),
                "openblas_env_unset_for_children": not args.keep_openblas_env,
                "max_wait": args.max_wait, "baseline": str(baseline) if baseline else None,
                "baseline_commit": C.commit_of(baseline) if baseline else None}
    header(report, machine, data.describe(), settings)

    runs = []
    for label, model, batch, steps, warmup in configs(args):
        for rep in range(args.repeats):
            for impl in impls:
                script, extra = C.IMPL_SCRIPTS[impl.replace("base", "npae")]
                child_env = env
                if impl.startswith("base"):  # the other checkout's own harness and npae
                    script = baseline / "benchmarks" / script
                    child_env = dict(env, PYTHONPATH=str(baseline))
                child_args = extra + ["--task", "speed", "--model", model, "--batch", batch,
                                      "--epochs", args.epochs, "--steps", steps,
                                      "--warmup", warmup, "--train", data.train]
                t0 = time.perf_counter()
                res = C.run_child(script, child_args, child_env, max_wait=args.max_wait)
                res.update(label=label, impl=impl, repeat=rep, wall=time.perf_counter() - t0)
                runs.append(res)
                shown = (f"{res['sec_per_epoch']:.3f} s/epoch" if "sec_per_epoch" in res
                         else "FAILED: " + res["error"])
                if res.get("background_cpus") is not None:
                    shown += f"  (other load {res['background_cpus']:.2f} CPUs)"
                print(f"  {label:7s} repeat {rep + 1}/{args.repeats} {impl:12s} {shown}",
                      flush=True)
    render(report, machine, data.describe(), settings, runs, printed_header=True)


def header(report, machine: dict, data: dict, settings: dict) -> None:
    report.say(f"data: {data['source']}")
    if data["random"]:
        report.say("NOTE: Fashion-MNIST was not found; timing random uniform data of the same shape")
    report.say(f"cpu: {machine['cpu']} ({machine['logical_cpus']} logical), "
               f"{C.THREADS} threads per process; python {machine['python']}, numpy "
               f"{machine['numpy']}, torch {machine['torch'] or 'not installed'}, "
               f"autograd {machine['autograd'] or 'not installed'}")
    report.say(f"repeats: {settings['repeats']}, alternating {' '.join(settings['impls'])}; "
               + ("quick: fixed step counts, extrapolated to an epoch" if settings["quick"]
                  else f"{settings['epochs']} epoch(s) timed per repeat after "
                       f"{settings['warmup']} warm-up steps"))
    report.say()


def render(report, machine: dict, data: dict, settings: dict, runs: list,
           printed_header: bool = False) -> None:
    """The tables, the target checks and the JSON, from the raw runs."""
    if not printed_header:
        header(report, machine, data, settings)
    cfgs, impls = settings["configs"], settings["impls"]
    summary = summarise(runs, cfgs, impls)
    report.say()
    report.say(f"Median over the undisturbed repeats (other processes busy on < {DISTURBED} "
               "CPUs); spread = min–max of all repeats:")
    rows = []
    for s in summary:
        rows.append([s["label"], s["impl"], s["sec_per_epoch"], s["spread"], s["samples_per_s"],
                     s["ms_per_step"], f"{s['n_used']}/{s['n']}", s.get("note", "")])
    report.table(["model", "implementation", "s/epoch", "spread", "samples/s", "ms/step",
                  "used", "note"], rows)
    disturbed = [s for s in summary if s["n_used"] < s["n"]]
    if disturbed:
        report.say("used: repeats in the median / repeats run; the others ran while other "
                   "processes were busy (2 threads need 2 free cores)")
    report.say()
    ratios = ratio_table(summary, cfgs)
    columns = ["model", "npae / torch-best", "npae-1 / torch-best", "npae / torch-usual",
               "npae / autograd", "GEMM-limit / npae"]
    keys = ["npae/torch-best", "npae-1/torch-best", "npae/torch-usual", "npae/autograd", "gemm/npae"]
    report.say("Ratios of median seconds per epoch (npae / peer < 1: npae faster; npae-1: n_jobs=1):")
    report.table(columns, [[r["label"]] + [r[k] for k in keys] for r in ratios])
    paired = paired_ratios(runs, cfgs)
    report.say()
    report.say("The same ratios as medians of per-repeat ratios (each pair from one repeat, "
               "run minutes apart at most; less sensitive to slow drifts of the machine):")
    report.table(columns, [[r["label"]] + [r[k] for k in keys] for r in paired])
    report.say("targets (medians of per-repeat ratios): npae / torch-best ≤ 0.8 for M1 and M2, "
               "≤ 0.9 at batch 1; GEMM-limit / npae ≥ 0.7 for M2, ≥ 0.4 for M1")
    if any(s["impl"] == "base" for s in summary):
        report.say()
        report.say(f"Against the baseline checkout {settings.get('baseline')} "
                   f"({settings.get('baseline_commit') or 'commit unknown'}), medians of "
                   "per-repeat ratios (< 1: this checkout faster):")
        report.table(["model", "npae / base", "npae-1 / base-1", "base / torch-best",
                      "base-1 / torch-best"],
                     [[r["label"], r["npae/base"], r["npae-1/base-1"], r["base/torch-best"],
                       r["base-1/torch-best"]] for r in paired])
    for r in paired:
        for key, bound in TARGETS.get(r["label"], {}).items():
            if r[key] is not None:
                ok = r[key] <= bound if key.startswith("npae") else r[key] >= bound
                report.say(f"  {r['label']}: {key} = {r[key]:.2f} "
                           f"{'meets' if ok else 'MISSES'} the target ({bound})")
    report.say("batch-1 figures (and all --quick figures) time a fixed number of steps and "
               "extrapolate to 60,000 samples per epoch")
    report.say()
    report.say("Processes (as each reported itself on its last run):")
    report.table(["implementation", "BLAS", "kernel", "threads", "OPENBLAS_CORETYPE", "extra"],
                 process_rows(runs, impls))
    report.write({"stamp": report.stamp, "machine": machine, "data": data, "settings": settings,
                  "summary": summary, "ratios": ratios, "paired_ratios": paired, "runs": runs})


def summarise(runs: list, cfgs: list, impls: list) -> list:
    out = []
    for label, *_ in cfgs:
        for impl in impls:
            mine = [r for r in runs if r["label"] == label and r["impl"] == impl]
            ok = [r for r in mine if "sec_per_epoch" in r]
            quiet = [r for r in ok if (r.get("background_cpus") or 0.0) < DISTURBED]
            used = quiet or ok
            secs = [r["sec_per_epoch"] for r in ok]
            row = {"label": label, "impl": impl, "n": len(ok), "n_used": len(used),
                   "failed": len(mine) - len(ok),
                   "sec_per_epoch": C.median([r["sec_per_epoch"] for r in used]),
                   "spread": f"{min(secs):.3g}–{max(secs):.3g}" if secs else "–",
                   "samples_per_s": C.median([r["samples_per_s"] for r in used]),
                   "ms_per_step": C.median([r["ms_per_step"] for r in used]),
                   "all_sec_per_epoch": secs,
                   "background_cpus": [r.get("background_cpus") for r in ok]}
            notes = []
            if ok and ok[0].get("extrapolated"):
                notes.append(f"{ok[0]['steps_timed']} steps, extrapolated")
            if ok and ok[0].get("adam"):
                notes.append("Adam " + ok[0]["adam"].split(" ")[0])
            if mine and not ok:
                notes.append("failed: " + mine[0]["error"][:60])
            row["note"] = "; ".join(notes)
            out.append(row)
    return out


def ratio_table(summary: list, cfgs: list) -> list:
    def sec(label, impl):
        for s in summary:
            if s["label"] == label and s["impl"] == impl:
                return s["sec_per_epoch"]
        return None

    def ratio(a, b):
        return a / b if a and b else None

    rows = []
    for label, *_ in cfgs:
        npae = sec(label, "npae")
        rows.append({"label": label,
                     "npae/torch-best": ratio(npae, sec(label, "torch-best")),
                     "npae-1/torch-best": ratio(sec(label, "npae-1"), sec(label, "torch-best")),
                     "npae/torch-usual": ratio(npae, sec(label, "torch-usual")),
                     "npae/autograd": ratio(npae, sec(label, "autograd")),
                     "gemm/npae": ratio(sec(label, "gemm-limit"), npae)})
    return rows


def paired_ratios(runs: list, cfgs: list) -> list:
    """Median over repeats of the ratio within each repeat (undisturbed pairs only)."""
    def sec(label, impl, rep):
        for r in runs:
            if (r["label"] == label and r["impl"] == impl and r["repeat"] == rep
                    and "sec_per_epoch" in r and (r.get("background_cpus") or 0.0) < DISTURBED):
                return r["sec_per_epoch"]
        return None

    def ratio(label, a, b):
        reps = sorted({r["repeat"] for r in runs})
        vals = [sec(label, a, i) / sec(label, b, i) for i in reps
                if sec(label, a, i) and sec(label, b, i)]
        return C.median(vals)

    return [{"label": label,
             "npae/torch-best": ratio(label, "npae", "torch-best"),
             "npae-1/torch-best": ratio(label, "npae-1", "torch-best"),
             "npae/torch-usual": ratio(label, "npae", "torch-usual"),
             "npae/autograd": ratio(label, "npae", "autograd"),
             "gemm/npae": ratio(label, "gemm-limit", "npae"),
             "npae/base": ratio(label, "npae", "base"),
             "npae-1/base-1": ratio(label, "npae-1", "base-1"),
             "base/torch-best": ratio(label, "base", "torch-best"),
             "base-1/torch-best": ratio(label, "base-1", "torch-best")} for label, *_ in cfgs]


def process_rows(runs: list, impls: list) -> list:
    rows = []
    for impl in impls:
        mine = [r for r in runs if r["impl"] == impl and "process" in r]
        if not mine:
            rows.append([impl, "–", "–", "–", "–", "not run"])
            continue
        proc = mine[-1]["process"]
        blas = proc["blas"]
        if blas.get("source") == "threadpoolctl":
            pools = blas["pools"]
            names = ", ".join(f"{p['internal_api']} {p['version'] or ''}".strip() for p in pools)
            kernel = ", ".join(p["architecture"] for p in pools if p.get("architecture")) or "–"
            threads = ", ".join(str(p["num_threads"]) for p in pools)
        else:
            names = f"{blas.get('name')} {blas.get('version')}"
            kernel = blas.get("architecture") or "–"
            threads = proc["env_threads"]["OPENBLAS_NUM_THREADS"] or "–"
        extra = []
        if "torch" in proc:
            extra.append(f"torch {proc['torch']} threads={proc['torch_threads']} "
                         f"{proc['torch_cpu_capability']} mkl={proc['torch_mkl']}")
        if "npae" in proc:
            extra.append(f"npae {proc['npae']}")
        if "autograd" in proc:
            extra.append(f"autograd {proc['autograd']}")
        rows.append([impl, names, kernel, threads,
                     str(proc["openblas_env"]["OPENBLAS_CORETYPE"]), "; ".join(extra)])
    return rows


if __name__ == "__main__":
    main()
