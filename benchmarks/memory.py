"""Peak memory: resident set of one M2 training epoch, npae against PyTorch.

Each implementation runs in its own process and reports its resident
memory after its imports, after loading the data, and its peak (VmHWM,
or ``ru_maxrss`` where /proc is missing) after one epoch of M2 at batch
128.  The training column is peak minus after-data: what the model,
its gradients, Adam's moments and the step's temporaries cost.

    python benchmarks/memory.py
    python benchmarks/memory.py --quick     # 50 steps instead of an epoch
"""

from __future__ import annotations

import _common as C

IMPLS = ["npae", "torch-best"]


def main():
    p = C.harness_parser(__doc__.splitlines()[0], repeats=1)
    args = p.parse_args()
    report = C.Report("memory", args.quick)
    env = C.child_env(args.keep_openblas_env)
    impls = C.select_impls(args.only.split(",") if args.only else IMPLS, env, report.say)
    data = C.PreparedData()
    machine = C.machine_info(env)
    report.say(f"data: {data.source}")
    report.say(f"training data in memory: {data.shape_train[0]:,} × {data.shape_train[1]} "
               f"float32 = {data.nbytes_train / 2**20:.1f} MiB")
    report.say(f"cpu: {machine['cpu']}; python {machine['python']}, numpy {machine['numpy']}, "
               f"torch {machine['torch'] or 'not installed'}")
    report.say()
    steps = 50 if args.quick else 0
    runs = []
    for rep in range(args.repeats):
        for impl in impls:
            script, extra = C.IMPL_SCRIPTS[impl]
            res = C.run_child(script, extra + ["--task", "memory", "--model", "m2",
                                               "--batch", 128, "--steps", steps,
                                               "--train", data.train], env)
            res.update(impl=impl, repeat=rep)
            runs.append(res)
            if "error" in res:
                print(f"  {impl}: FAILED: {res['error']}")

    def mib(mem: dict, key: str = "rss_mib"):
        return mem.get(key, mem.get("maxrss_mib"))

    rows, summary = [], []
    for impl in impls:
        ok = [r for r in runs if r["impl"] == impl and "memory_after_epoch" in r]
        if not ok:
            rows.append([impl, "failed", "–", "–", "–", "–"])
            continue
        entry = {
            "impl": impl,
            "after_import_mib": C.median([mib(r["memory_after_import"]) for r in ok]),
            "after_data_mib": C.median([mib(r["memory_after_data"]) for r in ok]),
            "peak_mib": C.median([mib(r["memory_after_epoch"], "hwm_mib") for r in ok]),
            "maxrss_mib": C.median([r["memory_after_epoch"]["maxrss_mib"] for r in ok]),
            "sec_per_epoch": C.median([r["sec_per_epoch"] for r in ok]),
        }
        entry["data_mib"] = entry["after_data_mib"] - entry["after_import_mib"]
        entry["training_mib"] = entry["peak_mib"] - entry["after_data_mib"]
        summary.append(entry)
        rows.append([impl, entry["after_import_mib"], entry["data_mib"], entry["peak_mib"],
                     entry["training_mib"], entry["maxrss_mib"]])
    report.say("Resident memory in MiB (one process each; M2, batch 128, "
               + ("50 steps" if args.quick else "one epoch") + "):")
    report.table(["implementation", "after imports", "+ data", "peak", "peak − after data",
                  "ru_maxrss"], rows)
    report.say("peak is VmHWM from /proc/self/status; ru_maxrss can be larger because Linux "
               "carries the harness's own peak across fork and exec")
    report.write({"machine": machine, "data": data.describe(),
                  "settings": {"quick": args.quick, "repeats": args.repeats, "model": "m2",
                               "batch": 128, "steps": steps or "one epoch"},
                  "summary": summary, "runs": runs})


if __name__ == "__main__":
    main()
