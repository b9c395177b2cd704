"""bench-train.py: the side-by-side table of scripts/bench-train.sh.

Usage: bench-train.py DRIVER WORKDIR SEEDS

Writes the six data sets of issue 18 as CSV files under WORKDIR, then for every (set, trainer,
seed) runs DRIVER (train-bench.c: mm_train_run as the worker runs it, default config plus the
seed), reads back the split the library made, fits scikit-learn's counterpart on exactly those
rows (features standardised with the training rows' mean and std, as the library does) and scores
it on the same validation rows. Prints mean +- sd over the seeds, the gap in points (library minus
scikit-learn), the mean fit time of each side (the library's without reading the CSV, which
scikit-learn's fit() does not do either) and the library's whole job time.
"""
import json
import os
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np
import sklearn
from sklearn import datasets
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neural_network import MLPClassifier

warnings.filterwarnings("ignore", category=ConvergenceWarning)


def sets():
    """The issue's six data sets: name -> (X, y, is_regression)."""
    return {
        "iris": datasets.load_iris(return_X_y=True) + (False,),
        "moons": datasets.make_moons(1000, noise=0.25, random_state=0) + (False,),
        "blobs": datasets.make_blobs(1000, centers=4, cluster_std=2.0, random_state=0) + (False,),
        "breast_cancer": datasets.load_breast_cancer(return_X_y=True) + (False,),
        "digits": datasets.load_digits(return_X_y=True) + (False,),
        "regression": datasets.make_regression(1000, 8, noise=10, random_state=0) + (True,),
    }


def write_csv(path, X, y, regression):
    """A CSV with a header row, the label last; every double printed exactly (repr)."""
    with open(path, "w") as f:
        f.write(",".join([f"x{i}" for i in range(X.shape[1])] + ["label"]) + "\n")
        for row, t in zip(X, y):
            label = repr(float(t)) if regression else str(int(t))
            f.write(",".join(repr(float(v)) for v in row) + "," + label + "\n")


def sklearn_model(trainer, seed):
    """scikit-learn's counterpart of a trainer, with scikit-learn's defaults."""
    if trainer == "logreg":
        return LogisticRegression()
    if trainer == "mlp":
        return MLPClassifier(random_state=seed)
    return LinearRegression()


def one_run(driver, workdir, name, trainer, extra, seed, X, y, regression):
    """Both sides on one seed's split: (ours score, ours fit s, sklearn score, sklearn s, epochs,
    ours job s)."""
    cfg = {"trainer": trainer, "seed": seed,
           "dataset": {"url": f"file://{workdir}/{name}.csv", "label": "label"}}
    cfg.update(extra)
    split_path = os.path.join(workdir, "split.txt")
    out = subprocess.run([driver, json.dumps(cfg), workdir, split_path], check=True,
                         capture_output=True, text=True).stdout
    ours = json.loads(out)
    with open(split_path) as f:
        train = np.array([int(v) for v in f.readline().split()])
        val = np.array([int(v) for v in f.readline().split()])
    Xt, Xv = X[train], X[val]
    mean = Xt.mean(axis=0)
    std = Xt.std(axis=0)
    std[std == 0] = 1
    Xt = (Xt - mean) / std
    Xv = (Xv - mean) / std
    model = sklearn_model(trainer, seed)
    t0 = time.perf_counter()
    model.fit(Xt, y[train])
    sk_s = time.perf_counter() - t0
    sk = model.score(Xv, y[val])  # accuracy, or R^2 for the regressor
    our = ours["r2"] if regression else ours["accuracy"]
    fit_s = max(ours["seconds"] - ours["load_seconds"], 0.0)
    return our, fit_s, sk, sk_s, ours["epochs"], ours["seconds"]


def fmt(vals):
    """mean +- sd in percent points."""
    m = statistics.mean(vals) * 100
    sd = statistics.stdev(vals) * 100 if len(vals) > 1 else 0.0
    return f"{m:5.1f} ± {sd:3.1f}"


def main():
    driver, workdir, nseeds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    only = os.environ.get("BENCH_SETS", "").split()
    data = sets()
    print(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}; {nseeds} seeds; "
          "score = validation accuracy (R^2 for regression) in %; time = mean fit seconds")
    print()
    print("| set | trainer | ModelMine | scikit-learn | gap (points) | ModelMine fit s | "
          "scikit-learn fit s | fit time ratio | ModelMine job s | epochs |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, (X, y, regression) in data.items():
        if only and name not in only:
            continue
        write_csv(os.path.join(workdir, f"{name}.csv"), X, y, regression)
        trainers = [("linreg", "linreg", {})] if regression else \
            [("logreg", "logreg", {}), ("mlp", "mlp", {})]
        if name == "digits":
            # scikit-learn's default architecture, for fit times on equal terms
            trainers.append(("mlp [100]", "mlp", {"hidden_layers": [100]}))
        for label, trainer, extra in trainers:
            runs = [one_run(driver, workdir, name, trainer, extra, seed, X, y, regression)
                    for seed in range(1, nseeds + 1)]
            ours = [r[0] for r in runs]
            theirs = [r[2] for r in runs]
            ot = statistics.mean(r[1] for r in runs)
            st = statistics.mean(r[3] for r in runs)
            gap = (statistics.mean(ours) - statistics.mean(theirs)) * 100
            epochs = statistics.mean(r[4] for r in runs)
            job = statistics.mean(r[5] for r in runs)
            print(f"| {name} | {label} | {fmt(ours)} | {fmt(theirs)} | {gap:+.1f} | "
                  f"{ot:.4f} | {st:.4f} | {ot / st:.2f}× | {job:.4f} | {epochs:.0f} |", flush=True)


if __name__ == "__main__":
    main()
