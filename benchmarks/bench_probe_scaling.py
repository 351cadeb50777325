"""Two downstream probes that pull the bounded code's defaults apart (issue 19).

scikit-learn's RBM example (digits nudged one pixel four ways, min-max scaled, 80/20
split, 100 units, ``LogisticRegression(C=6000, max_iter=1000)``) and the digits probe
of the default path (``load_digits() / 16``, stratified 75/25 split, 128 units,
``LogisticRegression(max_iter=1000)``, so C=1). For each ``weight_decay`` the script
fits ours once per seed with ``code_scaling=None`` and probes the raw codes multiplied
by 1, 4 and 16, and divided per unit by their training mean (what
``code_scaling="mean"``, the default, does), so that each fit is seen under every
scaling. BernoulliRBM(n_components=100, learning_rate=0.06, n_iter=10) is the RBM
example's reference, over the same seeds.

A third probe, the PCA-tuned pipeline of issue 19 (``StandardScaler -> reducer(30) ->
LogisticRegression(tol=0.1)``, ``cross_val_score(cv=3)`` on digits, that is unshuffled
stratified 3-fold): ours (default ``code_scaling``) and ``PCA(30)``, their codes
multiplied by 1, 2 and 4 before the early-stopped classifier, and a converged one
(``max_iter=2000``) at x1; ours also trained further (a longer patience, or clean
inputs). It shows what that pipeline's accuracy measures.

Run: python benchmarks/bench_probe_scaling.py [--quick] [--pipeline-only]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from _common import machine, table
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.neural_network import BernoulliRBM
from sklearn.preprocessing import StandardScaler

from skl_sparse_ae import SparseAutoencoderTransformer

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from conftest import rbm_example_split  # the suite's copy of the RBM example's data (needs pytest)

SCALINGS = ("x1", "x4", "x16", "per-unit mean")


def digits_data():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)


def probe(C, F_train, y_train, F_test, y_test):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression(C=C, max_iter=1000).fit(F_train, y_train)
    return clf.score(F_test, y_test)


def scaled_accuracies(codes_train, codes_test, y_train, y_test, C):
    """Accuracy under each of SCALINGS, from one fit's raw codes."""
    mean = codes_train.mean(axis=0)
    mean = np.where(mean > 0, mean, 1.0)
    divisors = {"x1": 1.0, "x4": 0.25, "x16": 1 / 16, "per-unit mean": mean}
    return {
        name: probe(C, codes_train / d, y_train, codes_test / d, y_test)
        for name, d in divisors.items()
    }


def ours(data, n_components, C, weight_decay, seed):
    X_train, X_test, y_train, y_test = data
    sae = SparseAutoencoderTransformer(
        n_components, code_scaling=None, weight_decay=weight_decay, random_state=seed
    )
    tic = time.perf_counter()
    sae.fit(X_train)
    seconds = time.perf_counter() - tic
    accuracies = scaled_accuracies(
        sae.transform(X_train), sae.transform(X_test), y_train, y_test, C
    )
    return accuracies, seconds


PIPELINE_FACTORS = (1, 2, 4)


def pipeline_accuracies(make_reducer):
    """The PCA-tuned pipeline's 3-fold accuracy with the codes multiplied by each factor.

    ``cross_val_score(make_pipeline(StandardScaler(), reducer, LogisticRegression(
    tol=0.1)), X, y, cv=3)`` at factor 1, written out so that one fit of the reducer per
    fold serves every factor; "converged" is ``LogisticRegression(max_iter=2000)``.
    """
    X, y = load_digits(return_X_y=True)
    scores = {**{f"x{f}": [] for f in PIPELINE_FACTORS}, "converged": []}
    for train, test in StratifiedKFold(3).split(X, y):
        scaler = StandardScaler().fit(X[train])
        X_train, X_test = scaler.transform(X[train]), scaler.transform(X[test])
        reducer = make_reducer().fit(X_train)
        F_train, F_test = reducer.transform(X_train), reducer.transform(X_test)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for f in PIPELINE_FACTORS:
                clf = LogisticRegression(tol=0.1).fit(f * F_train, y[train])
                scores[f"x{f}"].append(clf.score(f * F_test, y[test]))
            clf = LogisticRegression(max_iter=2000).fit(F_train, y[train])
            scores["converged"].append(clf.score(F_test, y[test]))
    return {name: float(np.mean(values)) for name, values in scores.items()}


#: ours in the PCA-tuned pipeline: the defaults, and two ways of training further.
PIPELINE_VARIANTS = {
    "ours(30), defaults": {},
    "ours(30), n_iter_no_change=30, max_iter=600": {"n_iter_no_change": 30, "max_iter": 600},
    "ours(30), noise=0.0, max_iter=600": {"noise": 0.0, "max_iter": 600},
}


def pipeline_section(seeds):
    columns = [*(f"x{f}" for f in PIPELINE_FACTORS), "converged"]
    rows = []
    for name, params in PIPELINE_VARIANTS.items():
        runs = []
        for seed in seeds:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                runs.append(
                    pipeline_accuracies(
                        lambda s=seed, p=params: SparseAutoencoderTransformer(
                            30, random_state=s, **p
                        )
                    )
                )
        cells = [
            f"{np.mean([r[c] for r in runs]):.4f} "
            f"({min(r[c] for r in runs):.4f}-{max(r[c] for r in runs):.4f})"
            for c in columns
        ]
        rows.append([name, *cells])
    pca = pipeline_accuracies(lambda: PCA(30))
    rows.append(["PCA(30)", *(f"{pca[c]:.4f}" for c in columns)])
    print(
        "PCA-tuned pipeline, StandardScaler -> reducer(30) -> LogisticRegression(tol=0.1), "
        f"cv=3 on digits, codes multiplied before the classifier; ours: mean (range) over "
        f"seeds {list(seeds)}"
    )
    print(table(rows, ["reducer", *columns]))
    print(f"target (issue 19): ours at x1 >= PCA's x1 - 0.005 = {pca['x1'] - 0.005:.4f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seeds 0-2 instead of 0-5")
    parser.add_argument(
        "--pipeline-only", action="store_true", help="only the PCA-tuned pipeline's section"
    )
    args = parser.parse_args()
    seeds = range(3 if args.quick else 6)
    if args.pipeline_only:
        pipeline_section(seeds)
        print(machine())
        return
    rbm_data, digits = rbm_example_split(), digits_data()

    rbm_acc, rbm_seconds = [], []
    for seed in seeds:
        X_train, X_test, y_train, y_test = rbm_data
        rbm = BernoulliRBM(n_components=100, learning_rate=0.06, n_iter=10, random_state=seed)
        tic = time.perf_counter()
        rbm.fit(X_train)
        rbm_seconds.append(time.perf_counter() - tic)
        rbm_acc.append(probe(6000, rbm.transform(X_train), y_train, rbm.transform(X_test), y_test))
    print(
        f"BernoulliRBM(100) in the RBM example, seeds {list(seeds)}: "
        f"{', '.join(f'{a:.4f}' for a in rbm_acc)} (mean {np.mean(rbm_acc):.4f}), "
        f"fit {np.median(rbm_seconds):.2f} s (median)"
    )

    rows = []
    for weight_decay in (1e-4, 1e-3, 2e-3):
        runs = {"RBM example (C=6000)": [], "digits probe (C=1)": []}
        seconds = []
        for seed in seeds:
            accuracies, secs = ours(rbm_data, 100, 6000, weight_decay, seed)
            runs["RBM example (C=6000)"].append(accuracies)
            seconds.append(secs)
            runs["digits probe (C=1)"].append(ours(digits, 128, 1.0, weight_decay, seed)[0])
        for what, results in runs.items():
            cells = []
            for name in SCALINGS:
                values = [r[name] for r in results]
                cells.append(f"{np.mean(values):.4f} (s0 {values[0]:.4f})")
            rows.append([f"{weight_decay:g}", what, *cells])
        rows[-2][1] += f", fit {np.median(seconds):.2f} s"
    print(table(rows, ["weight_decay", "probe", *SCALINGS]))
    print("mean over the seeds (seed 0's figure in brackets);", machine())
    print(
        "targets (issue 19): RBM example >= the RBM's accuracy; digits probe >= 0.982 "
        "(seed 0) and >= 0.98 (mean over seeds 0-5)"
    )
    print()
    pipeline_section(seeds)


if __name__ == "__main__":
    main()
