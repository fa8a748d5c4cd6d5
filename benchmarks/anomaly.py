"""Anomaly detection: npae.OutlierDetector against scikit-learn's detectors and PyOD's deep ones.

Protocols (one row of the tables per data set; every method sees the same rows):

* **Fashion-MNIST, one class**: each class in turn is normal; train on that class's training
  images (``--train-per-class`` of them, the first ones); score the test set (``--test`` rows,
  the first ones, all ten classes); the anomalies are the other classes.  AUC per class, and
  the mean.
* **digits, one class**: the same on scikit-learn's 8×8 digits (npae's bundled copy), split
  half/half (stratified, seed 0) into training and test rows.
* **breast cancer**: train on half the benign rows; score the other half and every malignant
  row (the anomalies).  MinMaxScaler fitted on the training rows.
* **wine, one class**: each class in turn normal: train on half its rows; score the other half
  and the two other classes.  MinMaxScaler fitted on the training rows.

Methods: npae ``OutlierDetector()`` (its defaults: a Gaussian VAE 128 → 16, ~3,000 steps), the same detector
around a squared-error ``Autoencoder(hidden=(128, 16))`` (60 epochs), ``IsolationForest``,
``LocalOutlierFactor(novelty=True)``, ``OneClassSVM`` (scikit-learn's defaults, seed 0), the
reconstruction error of a PCA with as many components as npae's code (16; at most half
the features, 6 for wine), and PyOD's
``AutoEncoder`` and ``VAE`` (their defaults, verbose off; the batch no larger than the training rows, which
PyOD's loader otherwise drops whole) when PyOD is installed.  ROC AUC and
average precision (anomalies as the positive class), and the mean training seconds per fit.

    python benchmarks/anomaly.py                 # ~30 min on a quiet 2-core machine
    python benchmarks/anomaly.py --quick         # a smoke run (fewer rows)

Writes ``benchmarks/results/anomaly_<date>-<time>.json`` and ``anomaly_latest.{json,txt}``.
"""

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # measure this checkout's npae
    sys.path.insert(0, str(ROOT))
import npae  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CODE = 16  # the default detector's code size, given to the PCA too


def methods(with_pyod):
    """name → a function returning a fresh detector with ``fit`` and a normal-is-high score."""
    from sklearn.decomposition import PCA
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import LocalOutlierFactor
    from sklearn.svm import OneClassSVM

    class PCAError:
        """Minus the squared reconstruction error of a PCA of CODE components (at most half
        the features: a PCA as wide as the data reconstructs every row, and its "error" is
        rounding)."""
        def fit(self, X):
            size = min(CODE, X.shape[1] // 2, X.shape[0])
            self.pca = PCA(n_components=size, random_state=0).fit(X)
            return self

        def score_samples(self, X):
            back = self.pca.inverse_transform(self.pca.transform(X))
            return -((X - back) ** 2).sum(axis=1)

    found = {"npae OutlierDetector": lambda: npae.OutlierDetector(),
             "npae (autoencoder)": lambda: npae.OutlierDetector(npae.Autoencoder(
                 hidden=(128, CODE), loss="mse", epochs=60, batch_size=32)),
             "IsolationForest": lambda: IsolationForest(random_state=0),
             "LOF (novelty)": lambda: LocalOutlierFactor(novelty=True),
             "OneClassSVM": lambda: OneClassSVM(),
             f"PCA ({CODE}) error": PCAError}
    if with_pyod:
        from pyod.models.auto_encoder import AutoEncoder
        from pyod.models.vae import VAE

        class PyOD:
            """A PyOD detector, its outlier score negated (PyOD: higher is more abnormal)."""
            def __init__(self, make):
                self.make = make

            def fit(self, X):
                self.model = self.make(min(32, len(X))).fit(X)
                return self

            def score_samples(self, X):
                return -self.model.decision_function(X)

        found["PyOD AutoEncoder"] = lambda: PyOD(lambda batch: AutoEncoder(
            verbose=0, random_state=0, batch_size=batch))
        found["PyOD VAE"] = lambda: PyOD(lambda batch: VAE(verbose=0, random_state=0,
                                                           batch_size=batch))
    return found


def pyod_status():
    """(available, note)."""
    try:
        import pyod
        import torch
    except ImportError as exc:
        return False, f"PyOD not available ({exc.name} not installed): its detectors skipped"
    torch.set_num_threads(2)
    return True, f"PyOD {pyod.__version__}, torch {torch.__version__}"


def tasks(args):
    """(data set, [(name of the normal part, X_train, X_test, is_anomaly)])."""
    from sklearn.datasets import load_breast_cancer, load_wine
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import MinMaxScaler

    (train, train_labels), (test, test_labels) = npae.datasets.load_fashion_mnist()
    test, test_labels = test[:args.test], test_labels[:args.test]
    fashion = [(npae.datasets.FASHION_MNIST_CLASSES[c],
                train[train_labels == c][:args.train_per_class], test, test_labels != c)
               for c in range(10)]
    X, y = npae.datasets.load_digits()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, stratify=y,
                                                        random_state=0)
    digits = [(str(c), X_train[y_train == c], X_test, y_test != c) for c in range(10)]
    yield "Fashion-MNIST", fashion
    yield "digits", digits
    X, y = load_breast_cancer(return_X_y=True)             # y == 0: malignant
    benign, malignant = X[y == 1], X[y == 0]
    fit_rows, held_out = train_test_split(benign, test_size=0.5, random_state=0)
    scaler = MinMaxScaler().fit(fit_rows)
    test_rows = np.vstack([held_out, malignant])
    is_anomaly = np.r_[np.zeros(len(held_out), bool), np.ones(len(malignant), bool)]
    yield "breast cancer", [("benign", scaler.transform(fit_rows), scaler.transform(test_rows),
                             is_anomaly)]
    X, y = load_wine(return_X_y=True)
    wine = []
    for c in range(3):
        fit_rows, held_out = train_test_split(X[y == c], test_size=0.5, random_state=0)
        scaler = MinMaxScaler().fit(fit_rows)
        test_rows = np.vstack([held_out, X[y != c]])
        is_anomaly = np.r_[np.zeros(len(held_out), bool), np.ones((y != c).sum(), bool)]
        wine.append((f"class {c}", scaler.transform(fit_rows), scaler.transform(test_rows),
                     is_anomaly))
    yield "wine", wine


def measure(make, parts):
    """Per part: (AUC, average precision, training seconds)."""
    from sklearn.metrics import average_precision_score, roc_auc_score
    out = []
    for _, X_train, X_test, is_anomaly in parts:
        start = time.perf_counter()
        detector = make().fit(X_train)
        seconds = time.perf_counter() - start
        outlier_score = -np.asarray(detector.score_samples(X_test), dtype=np.float64)
        out.append((float(roc_auc_score(is_anomaly, outlier_score)),
                    float(average_precision_score(is_anomaly, outlier_score)), seconds))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-per-class", type=int, default=6000,
                        help="Fashion-MNIST training images per normal class (default: all 6000)")
    parser.add_argument("--test", type=int, default=10000,
                        help="Fashion-MNIST test rows scored (default: all 10000)")
    parser.add_argument("--only", default="", help="comma-separated method names to run")
    parser.add_argument("--data", default="",
                        help="comma-separated data sets to run (default: all four)")
    parser.add_argument("--quick", action="store_true", help="500 training, 1000 test images")
    args = parser.parse_args()
    if args.quick:
        args.train_per_class, args.test = 500, 1000
    with_pyod, note = pyod_status()
    print(note, flush=True)
    chosen = methods(with_pyod)
    if args.only:
        chosen = {k: v for k, v in chosen.items() if k in args.only.split(",")}
    started = datetime.datetime.now(datetime.timezone.utc)
    record = {"date": started.strftime("%Y-%m-%d %H:%M UTC"), "npae": npae.__version__,
              "pyod": note, "train_per_class": args.train_per_class, "test": args.test,
              "results": {}}
    fashion = (f"; Fashion-MNIST: {args.train_per_class} training images per class, "
               f"{args.test} test images" if not args.data or "Fashion-MNIST" in args.data else "")
    lines = [f"Anomaly detection, {record['date']}{fashion}; {note}", ""]
    for data, parts in tasks(args):
        if args.data and data not in args.data.split(","):
            continue
        record["results"][data] = {"parts": [p[0] for p in parts], "methods": {}}
        for name, make in chosen.items():
            rows = measure(make, parts)
            record["results"][data]["methods"][name] = rows
            auc, ap, sec = (float(np.mean(column)) for column in zip(*rows))
            print(f"{data:14s} {name:22s} AUC {auc:.3f}  AP {ap:.3f}  {sec:7.2f} s/fit", flush=True)
        save(record, lines, started)   # after each data set: a stopped run keeps what it did


def save(record, lines, started):
    """Print the tables so far and write them, with the raw results, into ``results/``."""
    text = "\n".join(lines + tables(record))
    print(text)
    RESULTS.mkdir(exist_ok=True)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    for path in (RESULTS / f"anomaly_{stamp}.json", RESULTS / "anomaly_latest.json"):
        path.write_text(json.dumps(record, indent=1))
    (RESULTS / "anomaly_latest.txt").write_text(text + "\n")


def tables(record):
    """The Markdown tables: mean AUC / AP / seconds per data set and method; AUC per class."""
    results = record["results"]
    names = list(next(iter(results.values()))["methods"])
    lines = ["| data set | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for data, r in results.items():
        cells = []
        for name in names:
            auc, ap, sec = (float(np.mean(column)) for column in zip(*r["methods"][name]))
            cells.append(f"{auc:.3f} / {ap:.3f} · {sec:.1f} s")
        lines.append(f"| {data} | " + " | ".join(cells) + " |")
    lines += ["", "(ROC AUC / average precision · mean training seconds per fit)", ""]
    for data in ("Fashion-MNIST", "digits", "wine"):
        if data not in results:
            continue
        r = results[data]
        lines += [f"ROC AUC per normal class, {data}:", "",
                  "| normal class | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for i, part in enumerate(r["parts"]):
            lines.append(f"| {part} | " + " | ".join(f"{r['methods'][n][i][0]:.3f}"
                                                     for n in names) + " |")
        lines.append("")
    return lines


if __name__ == "__main__":
    main()
