"""Scale-out: npae on files larger than it holds in memory, and on a Dask cluster.

Measured, each in a process of its own (peak memory read from the process):

1. ``encode`` of 10⁶ × 784 float32 rows (3.1 GB, a memory-mapped ``.npy``): one process with
   BLAS on 2 threads, one process on 1 thread, and a ``dask.distributed`` LocalCluster of 2
   worker processes × 1 thread, each worker reading its blocks from the file itself;
2. one epoch of ``fit`` streaming 200,000 × 784 uint8 rows from a memory-mapped file that sits in
   the page cache (scaled to [0, 1] as read), against the same rows as a float32 array in memory;
3. one epoch of ``fit`` from the memory-mapped file against the number of rows, 10⁵ … 10⁶: the
   time should grow linearly and the memory stay flat;
4. gathering a batch from a file that is *not* in the page cache, with the batch's row indices
   sorted before the read and unsorted.

The model is M2 of ``train_speed.py``: ``npae.VAE(hidden=(400,), latent=20)``, batch 128.

    python benchmarks/scale_out.py            # ~15 min; writes ~4 GB of data files
    python benchmarks/scale_out.py --quick    # 10⁵ rows, a minute
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

import _common as C

D = 784
MiB = 2**20


# ---------------------------------------------------------------- measured in children

class PeakMemory:
    """Peak anonymous memory (RssAnon, sampled every 2 ms) and peak resident set (VmHWM)."""

    def __init__(self):
        self.peak_anon = self.anon()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)

    @staticmethod
    def anon():
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
        return 0

    def sample(self):
        while not self.done.is_set():
            self.peak_anon = max(self.peak_anon, self.anon())
            time.sleep(0.002)

    def __enter__(self):
        self.start_anon = self.anon()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()
        hwm = [int(line.split()[1]) * 1024 for line in open("/proc/self/status")
               if line.startswith("VmHWM")]
        self.result = {"peak_anon_mib": self.peak_anon / MiB,
                       "anon_growth_mib": (self.peak_anon - self.start_anon) / MiB,
                       "peak_rss_mib": hwm[0] / MiB if hwm else None}


def model_for_encoding(seed=0):
    import npae
    return npae.VAE(D, hidden=(400,), latent=20, seed=seed).built()


def task_encode(args):
    X = np.load(args.file, mmap_mode="r")
    model = model_for_encoding()
    model.encode(X[:4096])                                   # warm up
    with PeakMemory() as memory:
        t0 = time.perf_counter()
        codes = model.encode(X)
        seconds = time.perf_counter() - t0
    return {"rows": len(X), "seconds": seconds, "rows_per_s": len(X) / seconds,
            "codes_checksum": float(np.abs(codes).sum()), **memory.result}


def load_rows(path, start, stop):
    return np.load(path, mmap_mode="r")[start:stop]


def task_encode_cluster(args):
    import dask
    import dask.array as da
    from distributed import Client, LocalCluster
    X = np.load(args.file, mmap_mode="r")
    n, block = len(X), args.block_rows
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        parts = [da.from_delayed(dask.delayed(load_rows)(args.file, s, min(s + block, n)),
                                 shape=(min(s + block, n) - s, D), dtype=np.float32)
                 for s in range(0, n, block)]
        data = da.concatenate(parts)
        model = model_for_encoding()
        model.transform(data[:4096]).compute()                # warm up (workers import npae)
        with PeakMemory() as memory:
            t0 = time.perf_counter()
            codes = model.transform(data).compute()
            seconds = time.perf_counter() - t0
        workers = client.run(lambda: PeakMemory.anon())
    return {"rows": n, "seconds": seconds, "rows_per_s": n / seconds, "block_rows": block,
            "codes_checksum": float(np.abs(codes).sum()), "client": memory.result,
            "workers_anon_mib_at_end": {k: v / MiB for k, v in workers.items()}}


def task_fit(args):
    import npae
    from npae.data.batches import RowView
    X = np.load(args.file, mmap_mode="r")[:args.rows]
    if args.in_memory:
        data = np.asarray(X, dtype=np.float32) / np.float32(255)   # loaded before the timer
    else:
        data = RowView(X, divide_by=255)
        for start in range(0, len(X), 65536):                     # into the page cache
            np.asarray(X[start:start + 65536]).max()
    model = npae.VAE(hidden=(400,), latent=20, epochs=1, batch_size=128)
    with PeakMemory() as memory:
        t0 = time.perf_counter()
        model.fit(data)
        seconds = time.perf_counter() - t0
    return {"rows": len(X), "in_memory": bool(args.in_memory), "seconds": seconds,
            "rows_per_s": len(X) / seconds, "loss": model.history_["loss"][0], **memory.result}


def evict(path):
    """Drop the file's pages from the page cache (posix_fadvise DONTNEED: no root needed)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def task_gather(args):
    rng = np.random.default_rng(0)
    out, results = np.empty((128, D), np.float32), {}
    for trial in range(args.repeats):
        for sort in (False, True) if trial % 2 == 0 else (True, False):
            evict(args.file)  # with no mapping open: the kernel keeps the pages a process maps
            X = np.load(args.file, mmap_mode="r")
            batches = [rng.choice(len(X), 128, replace=False) for _ in range(args.batches)]
            t0 = time.perf_counter()
            for index in batches:
                np.copyto(out, X[np.sort(index) if sort else index])
            results.setdefault("sorted" if sort else "unsorted", []).append(
                (time.perf_counter() - t0) / args.batches * 1e3)
            del X
    return {"batches": args.batches, "ms_per_batch": results}


TASKS = {"encode": task_encode, "encode-cluster": task_encode_cluster, "fit": task_fit,
         "gather": task_gather}


# ---------------------------------------------------------------- the harness

def make_files(folder: Path, rows: int, say) -> dict:
    """float32 rows in [0, 1) for encode, uint8 rows for fit, written once and reused."""
    files = {"float32": folder / f"rows{rows}_float32.npy", "uint8": folder / f"rows{rows}_uint8.npy"}
    for kind, path in files.items():
        dtype = np.float32 if kind == "float32" else np.uint8
        if path.exists() and np.load(path, mmap_mode="r").shape == (rows, D):
            continue
        say(f"writing {path} ({rows * D * np.dtype(dtype).itemsize / 1e9:.1f} GB) …")
        out = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(rows, D))
        rng = np.random.default_rng(1)
        for start in range(0, rows, 50_000):
            n = min(50_000, rows - start)
            out[start:start + n] = (rng.random((n, D), dtype=np.float32) if kind == "float32"
                                    else rng.integers(0, 256, (n, D), dtype=np.uint8))
        out.flush()
        del out
    return files


def child(task, env, **options):
    args = ["--task", task] + [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
    cmd = [sys.executable, str(Path(__file__).resolve())] + args
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=7200,
                          cwd=str(C.REPO_ROOT))
    for line in reversed(proc.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=sorted(TASKS))
    p.add_argument("--file")
    p.add_argument("--rows", type=int, default=0)
    p.add_argument("--in-memory", type=int, default=0)
    p.add_argument("--block-rows", type=int, default=65536)
    p.add_argument("--batches", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--folder", default=str(C.BENCH_DIR / "data"),
                   help="where the data files go (about 4 GB; reused between runs)")
    p.add_argument("--max-wait", type=float, default=120.0)
    args = p.parse_args()
    if args.task:
        print(json.dumps(TASKS[args.task](args), default=C._json_default), flush=True)
        return

    report = C.Report("scale_out", args.quick)
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    big = 100_000 if args.quick else 1_000_000
    files = make_files(folder, big, report.say)
    machine = C.machine_info(C.child_env())
    results = {"machine": machine, "rows": big}

    report.say(f"\n## 1. encode of {big:,} × {D} float32 rows from a memory-mapped .npy\n")
    runs = {}
    for name, env, task in (("one process, 2 BLAS threads", C.child_env(threads=2), "encode"),
                            ("one process, 1 BLAS thread", C.child_env(threads=1), "encode"),
                            ("LocalCluster, 2 workers × 1 thread", C.child_env(threads=1),
                             "encode-cluster")):
        C.wait_for_quiet(max_wait=args.max_wait)
        runs[name] = child(task, env, file=files["float32"])
        report.say(f"{name}: {runs[name]}")
    results["encode"] = runs
    one2, one1 = runs["one process, 2 BLAS threads"], runs["one process, 1 BLAS thread"]
    cluster = runs["LocalCluster, 2 workers × 1 thread"]
    rows = []
    for name, r in runs.items():
        memory = r.get("client", r)
        rows.append([name, r.get("rows_per_s"), r.get("seconds"), memory.get("peak_anon_mib"),
                     memory.get("peak_rss_mib")])
    report.table(["", "rows/s", "seconds", "peak anon MiB (client)", "peak RSS MiB (client)"], rows)
    if all("rows_per_s" in r for r in (one2, one1, cluster)):
        results["encode_ratios"] = {"cluster/one-process-2-threads": cluster["rows_per_s"] / one2["rows_per_s"],
                                    "cluster/one-process-1-thread": cluster["rows_per_s"] / one1["rows_per_s"]}
        report.say(f"\ncluster / one process on 2 threads: "
                   f"{results['encode_ratios']['cluster/one-process-2-threads']:.2f} (target ≥ 0.9); "
                   f"cluster / one process on 1 thread: "
                   f"{results['encode_ratios']['cluster/one-process-1-thread']:.2f} (target ≥ 1.7)")

    n_fit = 20_000 if args.quick else 200_000
    report.say(f"\n## 2. one epoch of fit on {n_fit:,} × {D} rows: memmap (uint8, page cache) "
               "against an array in memory (float32)\n")
    fit = {}
    for name, in_memory in (("memory-mapped uint8, scaled as read", 0), ("float32 in memory", 1)):
        C.wait_for_quiet(max_wait=args.max_wait)
        fit[name] = child("fit", C.child_env(), file=files["uint8"], rows=n_fit, in_memory=in_memory)
        report.say(f"{name}: {fit[name]}")
    results["fit"] = fit
    report.table(["", "seconds", "rows/s", "peak anon MiB", "anon growth MiB", "peak RSS MiB"],
                 [[k, r.get("seconds"), r.get("rows_per_s"), r.get("peak_anon_mib"),
                   r.get("anon_growth_mib"), r.get("peak_rss_mib")] for k, r in fit.items()])
    mm, mem = fit["memory-mapped uint8, scaled as read"], fit["float32 in memory"]
    if "seconds" in mm and "seconds" in mem:
        results["fit_ratio"] = mm["seconds"] / mem["seconds"]
        report.say(f"\nmemmap / in memory: {results['fit_ratio']:.2f} (target ≤ 1.2); peak anonymous "
                   f"memory of the memmap fit: {mm['peak_anon_mib']:.0f} MiB (target < 250)")

    report.say(f"\n## 3. one epoch of fit from the memory-mapped uint8 file against rows\n")
    sweep = []
    for n in ([25_000, 50_000, 100_000] if args.quick else [100_000, 200_000, 500_000, 1_000_000]):
        C.wait_for_quiet(max_wait=args.max_wait)
        r = child("fit", C.child_env(), file=files["uint8"], rows=n, in_memory=0)
        report.say(f"{n:,} rows: {r}")
        sweep.append(r)
    results["fit_sweep"] = sweep
    report.table(["rows", "seconds", "µs per row", "peak anon MiB", "peak RSS MiB"],
                 [[r.get("rows"), r.get("seconds"), 1e6 * r["seconds"] / r["rows"] if "seconds" in r else None,
                   r.get("peak_anon_mib"), r.get("peak_rss_mib")] for r in sweep])

    report.say(f"\n## 4. gathering a batch of 128 random rows from a file not in the page cache\n")
    gather = child("gather", C.child_env(), file=files["float32"], batches=50 if args.quick else 200,
                   repeats=1 if args.quick else 5)
    results["gather"] = gather
    if "ms_per_batch" in gather:
        ms = gather["ms_per_batch"]
        report.table(["indices", "ms per batch (each repeat)", "median"],
                     [[k, ", ".join(f"{v:.2f}" for v in vals), C.median(vals)] for k, vals in ms.items()])
        results["gather_ratio_sorted_over_unsorted"] = C.median(ms["sorted"]) / C.median(ms["unsorted"])
        report.say(f"\nsorted / unsorted: {results['gather_ratio_sorted_over_unsorted']:.2f}")
    report.write(results)


if __name__ == "__main__":
    main()
