"""Shared plumbing for the benchmark scripts.

Everything here is bookkeeping, not modelling: the environment each
measured process runs in, spawning it and reading back its one line of
JSON, describing the machine, preparing the data once, printing tables
and writing result files.  The models themselves live in ``impl_*.py``,
one file per implementation, each with a small command line.

Only the standard library and NumPy are needed.  ``threadpoolctl`` and
the peers (PyTorch, HIPS autograd) are used when they are installed.
"""

from __future__ import annotations

import argparse
import atexit
import datetime as _dt
import gzip
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

THREADS = 2
if str(REPO_ROOT) not in sys.path:  # measure this checkout's npae, installed or not
    sys.path.insert(1, str(REPO_ROOT))
N_FEATURES = 784
# Variables that slow OpenBLAS on some processors of these machines; they
# are removed for the measured processes only (see README.md).
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
FASHION_DIRS = ("/usr/share/datasets/fashion-mnist",)


# ---------------------------------------------------------------- processes

def child_env(keep_openblas_env: bool = False, threads: int = THREADS) -> dict:
    """Environment for one measured process: ``threads`` BLAS/OpenMP threads.

    The repository root goes first on ``PYTHONPATH`` so that a fresh clone
    measures its own ``npae`` without being installed.
    """
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    if not keep_openblas_env:
        for name in OPENBLAS_OVERRIDES:
            env.pop(name, None)
    path = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + path if path else "")
    return env


def run_child(script: str, args: list, env: dict, timeout: float = 3600.0,
              max_wait: float = 0.0) -> dict:
    """Run ``python benchmarks/<script> <args>`` and return its last JSON line.

    A child that fails gives ``{"error": ...}`` instead, so one broken
    implementation never stops the others from being measured.
    """
    cmd = [sys.executable, str(BENCH_DIR / script)] + [str(a) for a in args]
    quiet = wait_for_quiet(max_wait=max_wait) if max_wait > 0 else None
    busy0, wall0, child0 = _busy_seconds(), time.perf_counter(), _children_cpu()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                              timeout=timeout, cwd=str(REPO_ROOT))
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s", "cmd": " ".join(cmd[1:])}
    background = None
    if busy0 is not None:
        wall = time.perf_counter() - wall0
        others = (_busy_seconds() - busy0) - (_children_cpu() - child0)
        background = max(0.0, others / wall)
    for line in reversed(proc.stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                result = json.loads(line)
            except json.JSONDecodeError:
                continue
            result["cmd"] = " ".join(cmd[1:])
            result["background_cpus"] = background
            result["quiet_wait"] = quiet
            return result
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"exit {proc.returncode}: {tail}", "cmd": " ".join(cmd[1:]),
            "stderr": proc.stderr[-4000:], "background_cpus": background}


def background_load(seconds: float = 0.5):
    """CPUs kept busy by other processes over the next ``seconds`` (this one sleeps)."""
    busy0 = _busy_seconds()
    if busy0 is None:
        return None
    time.sleep(seconds)
    return max(0.0, (_busy_seconds() - busy0) / seconds)


def wait_for_quiet(threshold: float = 0.3, max_wait: float = 120.0) -> dict:
    """Wait (up to ``max_wait`` s) until other processes use < ``threshold`` CPUs.

    On a shared 2-core machine a second busy process makes OpenBLAS's and
    OpenMP's spinning threads wait on each other and can slow a step tenfold;
    waiting for a quiet moment before each run keeps most of that out.
    """
    t0 = time.perf_counter()
    load = background_load()
    while load is not None and load >= threshold and time.perf_counter() - t0 < max_wait:
        time.sleep(2.0)
        load = background_load()
    return {"waited_s": round(time.perf_counter() - t0, 1), "load_before": load}


def _busy_seconds():
    """CPU seconds the whole machine has spent busy since boot (/proc/stat)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def emit(result: dict) -> None:
    """Print a child's result as the single JSON line the harness reads."""
    result = dict(result)
    result["process"] = process_info()
    print(json.dumps(result, default=_json_default), flush=True)


# ---------------------------------------------------------------- availability

def peer_available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def npae_status(env: dict) -> tuple:
    """(True, "") when ``npae`` with the models the benchmarks use imports."""
    code = ("import npae; npae.Autoencoder; npae.VAE; npae.Adam; "
            "print(getattr(npae, '__version__', '?'))")
    try:
        proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=str(REPO_ROOT),
                              capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return False, "import timed out"
    if proc.returncode == 0:
        return True, proc.stdout.strip()
    lines = proc.stderr.strip().splitlines() or ["unknown error"]
    return False, lines[-1]


def select_impls(wanted: list, env: dict, say=print) -> list:
    """Keep the implementations that can run here; print a note for the rest."""
    kept = []
    torch_ok = peer_available("torch")
    autograd_ok = peer_available("autograd")
    wants_npae = any(impl.startswith("npae") for impl in wanted)
    npae_ok, npae_why = npae_status(env) if wants_npae else (True, "")
    notes = set()
    for impl in wanted:
        if impl.startswith("torch") and not torch_ok:
            notes.add("torch not installed: skipped")
        elif impl == "autograd" and not autograd_ok:
            notes.add("autograd not installed: skipped")
        elif impl.startswith("npae") and not npae_ok:
            notes.add(f"npae not importable ({npae_why}): skipped")
        else:
            kept.append(impl)
    for note in sorted(notes):
        say(note)
    return kept


IMPL_SCRIPTS = {
    "npae": ("impl_npae.py", []),
    "npae-1": ("impl_npae.py", ["--n-jobs", "1"]),
    "npae-he-glorot": ("impl_npae.py", ["--init", "he-glorot"]),
    "npae-fan-in": ("impl_npae.py", ["--init", "fan-in"]),
    "gemm-limit": ("impl_gemm.py", []),
    "torch-usual": ("impl_torch.py", ["--variant", "usual"]),
    "torch-best": ("impl_torch.py", ["--variant", "best"]),
    "autograd": ("impl_autograd.py", []),
}


# ---------------------------------------------------------------- machine

def _version(dist: str):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> list:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    return [x for x in ("avx", "avx2", "fma", "avx512f") if x in flags]
    except OSError:
        pass
    return []


def checkout_state() -> str | None:
    """The commit this checkout is at, with "+changes" when npae/ has local edits."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=str(REPO_ROOT),
                              capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "npae"],
                               cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def commit_of(checkout) -> str | None:
    """The commit a git checkout is at, or None."""
    try:
        out = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def machine_info(env: dict) -> dict:
    """What the results depend on, recorded in every JSON file."""
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": _version("torch"),
        "autograd": _version("autograd"),
        "threadpoolctl": _version("threadpoolctl"),
        "npae_checkout": checkout_state(),
        "threads_per_process": THREADS,
        "loadavg_at_start": load,
        "openblas_env_of_harness": {k: os.environ.get(k) for k in OPENBLAS_OVERRIDES},
        "openblas_env_of_children": {k: env.get(k) for k in OPENBLAS_OVERRIDES},
    }


def _openblas_corename() -> str | None:
    """OpenBLAS's kernel name, asked of the loaded library (no threadpoolctl)."""
    import ctypes
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "openblas" in line.lower()}
    except OSError:
        return None
    for lib in libs:
        try:
            handle = ctypes.CDLL(lib)
        except OSError:
            continue
        for symbol in ("openblas_get_corename", "openblas_get_corename64_",
                       "scipy_openblas_get_corename64_", "scipy_openblas_get_corename"):
            func = getattr(handle, symbol, None)
            if func is not None:
                func.restype = ctypes.c_char_p
                return func().decode()
    return None


def blas_info() -> dict:
    """The BLAS this process actually loaded, and the kernel it chose."""
    try:
        from threadpoolctl import threadpool_info
        pools = threadpool_info()
        return {"source": "threadpoolctl",
                "pools": [{k: p.get(k) for k in ("internal_api", "prefix", "version",
                                                  "architecture", "num_threads")}
                          for p in pools]}
    except ImportError:
        pass
    info = {"source": "numpy.show_config", "architecture": _openblas_corename()}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info.update(name=blas.get("name"), version=blas.get("version"))
    except Exception as exc:  # older NumPy: no dict mode
        info["error"] = repr(exc)
    return info


def memory_now() -> dict:
    """Resident memory of this process in MiB: current, peak, ru_maxrss."""
    out = {"maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key = "rss_mib" if line.startswith("VmRSS") else "hwm_mib"
                    out[key] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return out


def process_info() -> dict:
    """Versions, threads and BLAS kernel of the running (measured) process."""
    info = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "env_threads": {k: os.environ.get(k) for k in
                        ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
        "openblas_env": {k: os.environ.get(k) for k in OPENBLAS_OVERRIDES},
        "blas": blas_info(),
        "memory": memory_now(),
    }
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        info["torch_mkl"] = torch.backends.mkl.is_available()
    if "autograd" in sys.modules:
        info["autograd"] = _version("autograd")
    if "npae" in sys.modules:
        npae = sys.modules["npae"]
        info["npae"] = getattr(npae, "__version__", None)
        info["npae_file"] = getattr(npae, "__file__", None)
    return info


# ---------------------------------------------------------------- data

def _read_idx_images(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    n, rows, cols = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
    pixels = np.frombuffer(raw, dtype=np.uint8, offset=16)
    return pixels.reshape(n, rows * cols).astype(np.float32) / np.float32(255.0)


def load_data(allow_random: bool = True) -> tuple:
    """Fashion-MNIST as ``(X_train, X_test, source)``, float32 in [0, 1].

    Tried in order: ``npae.datasets.load_fashion_mnist()``; the IDX files
    under ``$FASHION_MNIST_DIR`` or /usr/share/datasets/fashion-mnist;
    random uniform data of the same shape (``source`` then says so).
    """
    reasons = []
    try:
        from npae.data.datasets import load_fashion_mnist
        (X_train, _), (X_test, _) = load_fashion_mnist()
        return (np.ascontiguousarray(X_train, dtype=np.float32),
                np.ascontiguousarray(X_test, dtype=np.float32),
                "fashion-mnist (npae.datasets.load_fashion_mnist)")
    except Exception as exc:
        reasons.append(f"npae.datasets: {type(exc).__name__}: {exc}")
    dirs = [os.environ["FASHION_MNIST_DIR"]] if os.environ.get("FASHION_MNIST_DIR") else []
    for d in dirs + list(FASHION_DIRS):
        train = Path(d) / "train-images-idx3-ubyte.gz"
        test = Path(d) / "t10k-images-idx3-ubyte.gz"
        if train.exists() and test.exists():
            return (_read_idx_images(train), _read_idx_images(test),
                    f"fashion-mnist (IDX files in {d}; npae.datasets unavailable)")
        reasons.append(f"no IDX files in {d}")
    if not allow_random:
        raise RuntimeError("Fashion-MNIST not found: " + "; ".join(reasons))
    rng = np.random.default_rng(0)
    X_train = rng.random((60000, N_FEATURES), dtype=np.float32)
    X_test = rng.random((10000, N_FEATURES), dtype=np.float32)
    return X_train, X_test, "RANDOM uniform data (Fashion-MNIST not found: " + "; ".join(reasons) + ")"


class PreparedData:
    """Data loaded once by the harness and handed to each child as .npy files.

    Every implementation then trains on byte-identical arrays, and loading
    stays outside every timer.
    """

    def __init__(self):
        X_train, X_test, self.source = load_data()
        self.is_random = self.source.startswith("RANDOM")
        self.shape_train = X_train.shape
        self.shape_test = X_test.shape
        self.nbytes_train = X_train.nbytes
        self.dir = Path(tempfile.mkdtemp(prefix="npae-bench-"))
        atexit.register(shutil.rmtree, self.dir, True)
        self.train = self.dir / "train.npy"
        self.test = self.dir / "test.npy"
        np.save(self.train, X_train)
        np.save(self.test, X_test)

    def describe(self) -> dict:
        return {"source": self.source, "random": self.is_random,
                "train_shape": list(self.shape_train), "test_shape": list(self.shape_test),
                "dtype": "float32", "train_mib": self.nbytes_train / 2**20}


# ---------------------------------------------------------------- child side

def child_parser(description: str) -> argparse.ArgumentParser:
    """Arguments every ``impl_*.py`` understands."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--task", choices=("speed", "quality", "memory", "sweep"), default="speed")
    p.add_argument("--model", choices=("m1", "m2"), default="m1")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--hidden", type=int, default=None,
                   help="hidden width (default: 64 for m1, 400 for m2)")
    p.add_argument("--epochs", type=int, default=1, help="timed epochs (when --steps is 0)")
    p.add_argument("--steps", type=int, default=0,
                   help="time this many steps instead of whole epochs, and extrapolate")
    p.add_argument("--warmup", type=int, default=200, help="untimed steps before the timer")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--train", default="", help=".npy file of training rows (default: random)")
    p.add_argument("--test", default="", help=".npy file of test rows (quality task)")
    p.add_argument("--iw-k", type=int, default=1000)
    p.add_argument("--iw-n", type=int, default=1000)
    p.add_argument("--sweep", default="", help="JSON list of [model, batch, hidden] (sweep task)")
    p.add_argument("--budget", type=float, default=1.5, help="seconds per sweep point")
    p.add_argument("--max-wait", type=float, default=0.0,
                   help="sweep: seconds to wait before each point for a quiet machine")
    p.add_argument("--variant", choices=("usual", "best"), default="best")
    p.add_argument("--n-jobs", type=int, default=0, help="npae's n_jobs (0: its default)")
    p.add_argument("--init", default=None, help="npae's init (default: the model's own)")
    return p


def default_hidden(model: str, hidden) -> int:
    return hidden if hidden else (64 if model == "m1" else 400)


def child_load(path: str, n: int = 60000) -> np.ndarray:
    if path:
        return np.load(path)
    return np.random.default_rng(0).random((n, N_FEATURES), dtype=np.float32)


def rows_for_steps(X: np.ndarray, steps: int, batch: int) -> np.ndarray:
    """The first ``steps * batch`` rows (wrapping round), for a fixed-step run."""
    n = steps * batch
    if n <= len(X):
        return X[:n]
    return X[np.arange(n) % len(X)]


def batch_sizes(n: int, batch: int) -> list:
    """Sizes of the batches of one epoch over ``n`` rows (the last one may be short)."""
    full, rest = divmod(n, batch)
    return [batch] * full + ([rest] if rest else [])


def speed_result(seconds: float, steps_timed: int, rows_timed: int, n_epoch: int,
                 batch: int, extrapolated: bool) -> dict:
    """Seconds per epoch of ``n_epoch`` rows from a timed run."""
    sec_per_row = seconds / rows_timed
    return {"seconds": seconds, "steps_timed": steps_timed, "rows_timed": rows_timed,
            "sec_per_epoch": sec_per_row * n_epoch,
            "ms_per_step": 1e3 * seconds / steps_timed,
            "samples_per_s": 1.0 / sec_per_row, "batch": batch,
            "extrapolated": extrapolated}


# ---------------------------------------------------------------- reporting

def median(values: list):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits: int = 3) -> str:
    """A number for a table: thousands separated, else three significant digits."""
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:#.{digits}g}".rstrip(".")


class Report:
    """Collects what a script prints so the same text lands in results/."""

    def __init__(self, name: str, quick: bool, stamp: str | None = None):
        self.name = name + ("_quick" if quick else "")
        self.lines = []
        self.stamp = stamp or _dt.datetime.now().strftime("%Y%m%d-%H%M%S")

    def say(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    def table(self, headers: list, rows: list) -> None:
        """A Markdown table: text columns to the left, numbers to the right."""
        def number_like(c):
            return isinstance(c, (int, float)) or (
                isinstance(c, str) and re.fullmatch(r"[-+]?[\d,.]+(e[-+]?\d+)?( ?%)?", c))
        numeric = [any(number_like(r[i]) for r in rows)
                   and all(number_like(r[i]) or r[i] in ("–", None) for r in rows)
                   for i in range(len(headers))]
        cells = [[str(h) for h in headers]] + [[c if isinstance(c, str) else fmt(c) for c in r]
                                                for r in rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

        def line(r):
            return "| " + " | ".join(c.rjust(w) if num else c.ljust(w)
                                     for c, w, num in zip(r, widths, numeric)) + " |"
        self.say(line(cells[0]))
        self.say("|" + "|".join("-" * (w + 1) + (":" if num else "-")
                                for w, num in zip(widths, numeric)) + "|")
        for r in cells[1:]:
            self.say(line(r))

    def write(self, payload: dict) -> Path:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        payload = dict(payload, script=self.name, finished=_dt.datetime.now().isoformat(
            timespec="seconds"), printed=self.lines)
        text = json.dumps(payload, indent=1, default=_json_default)
        dated = RESULTS_DIR / f"{self.name}_{self.stamp}.json"
        dated.write_text(text + "\n")
        (RESULTS_DIR / f"{self.name}_latest.json").write_text(text + "\n")
        (RESULTS_DIR / f"{self.name}_latest.txt").write_text("\n".join(self.lines) + "\n")
        print(f"\nwrote {dated.relative_to(REPO_ROOT)} and {self.name}_latest.json/.txt")
        return dated


def _json_default(obj):
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)


def harness_parser(description: str, epochs: int = 1, repeats: int = 5) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="short smoke run: few steps, few repeats")
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--repeats", type=int, default=repeats)
    p.add_argument("--only", default="", help="comma-separated implementations to run")
    p.add_argument("--max-wait", type=float, default=120.0,
                   help="seconds to wait before each run for other processes to go quiet "
                        "(0: do not wait)")
    p.add_argument("--keep-openblas-env", action="store_true",
                   help="do not unset OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for the children")
    return p


def adaptive_steps(run, batch: int, budget: float, max_wait: float = 0.0) -> dict:
    """Time a step for about ``budget`` seconds.

    ``run(steps, warmup)`` builds a fresh model, warms it up and returns a
    ``speed_result``.  A short probe picks the number of steps; the second
    call is the measurement, taken after waiting (up to ``max_wait`` s) for
    other processes to go quiet, and reported with the load they added.
    """
    warm = 200 if batch < 16 else 20
    probe = run(max(10, warm // 4), warm)
    per_step = probe["ms_per_step"] / 1e3
    steps = int(min(20000, max(10, budget / max(per_step, 1e-6))))
    if max_wait > 0:
        wait_for_quiet(max_wait=max_wait)
    busy0, cpu0, t0 = _busy_seconds(), _own_cpu(), time.perf_counter()
    out = run(steps, 10)
    background = None
    if busy0 is not None:
        others = (_busy_seconds() - busy0) - (_own_cpu() - cpu0)
        background = max(0.0, others / (time.perf_counter() - t0))
    return {"batch": batch, "steps": steps, "ms_per_step": out["ms_per_step"],
            "samples_per_s": out["samples_per_s"], "background_cpus": background}


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def memory_task(timed, args, hidden: int) -> dict:
    """The ``--task memory`` body of every implementation: resident memory after the
    imports, after loading the data, and after one timed epoch of ``timed``."""
    before = memory_now()
    X = child_load(args.train)
    after_data = memory_now()
    out = timed(args, X, args.model, args.batch, hidden, args.steps, 1, 0)
    out.update(memory_after_import=before, memory_after_data=after_data,
               memory_after_epoch=memory_now())
    return out


def sweep_points(time_point, sweep: str, budget: float, max_wait: float) -> list:
    """The ``--task sweep`` body: for each (model, batch, hidden) of the JSON ``sweep``,
    ``adaptive_steps`` over ``time_point(model, batch, hidden, steps, warmup)``."""
    return [dict(model=model, hidden=hid, **adaptive_steps(
                lambda steps, warm, m=model, b=batch, h=hid: time_point(m, b, h, steps, warm),
                batch, budget, max_wait))
            for model, batch, hid in json.loads(sweep)]

