"""Epochs each path needs to converge, against the ``max_iter="auto"`` budget.

The measurement behind ``max_iter="auto"`` (500 Adam epochs, 1000 behind hidden
layers; ``MLPRegressor``'s 200 ran out on these paths). Each fit has
``max_iter=2000`` and otherwise its mechanism's own knobs only; the table gives the
epochs it took (2000: it never converged), its budget under ``"auto"``, and whether
200 and the ``"auto"`` budget would have been enough.

Paths: the narrow default code behind a ``StandardScaler`` (3-fold training sets of
digits, as ``cross_val_score(cv=3)`` fits them, seeds 0-2), the default 16-unit code on
all of ``load_wine`` (one step an epoch) over 20 seeds, and the mechanisms at 128 or 8
units on digits / 16, standardised wine and the test suite's small TF-IDF matrix
(seeds 0 and 1).

Run: python benchmarks/bench_epochs_needed.py [--quick]     # about 4 min; --quick 1 min
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from _common import machine, table
from sklearn.datasets import load_digits, load_wine
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from skl_sparse_ae import SparseAutoencoderTransformer
from skl_sparse_ae._defaults import data_facts, resolve

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from conftest import tfidf_corpus  # the suite's TF-IDF matrix (needs pytest), no download

CAP = 2000


def epochs(X, n_components, seed, **params):
    """``(epochs taken with max_iter=CAP, the "auto" budget)`` of one fit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sae = SparseAutoencoderTransformer(
            n_components, random_state=seed, max_iter=CAP, **params
        ).fit(X)
    auto = SparseAutoencoderTransformer(n_components, **params).get_params()
    return sae.n_iter_, resolve(auto, data_facts(X)).max_iter


def row(name, runs):
    taken = [t for t, _ in runs]
    auto = runs[0][1]
    return [
        name,
        len(runs),
        f"{int(np.median(taken))}",
        f"{max(taken)}",
        auto,
        sum(t > 200 for t in taken),
        sum(t > auto for t in taken),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seed 0 only, fewer paths")
    args = parser.parse_args()
    seeds = (0,) if args.quick else (0, 1, 2)
    X, y = load_digits(return_X_y=True)
    folds = [train for train, _ in StratifiedKFold(3).split(X, y)]
    rows = []
    for width in (2, 4) if args.quick else (2, 4, 8):
        for name, params in (("KL (defaults)", {}), ("sparsity=None", {"sparsity": None})):
            runs = [
                epochs(StandardScaler().fit_transform(X[train]), width, seed, **params)
                for seed in seeds
                for train in folds
            ]
            rows.append(row(f"{name}, {width} units, standardised digits folds", runs))
    for scaler in (StandardScaler, MinMaxScaler):
        wine = scaler().fit_transform(load_wine().data)
        runs = [epochs(wine, 16, seed) for seed in range(5 if args.quick else 20)]
        rows.append(row(f"KL (defaults), 16 units, all of wine, {scaler.__name__}", runs))
    data = {
        "digits / 16": X / 16.0,
        "wine, standardised": StandardScaler().fit_transform(load_wine().data),
        "TF-IDF (200 sentences)": tfidf_corpus()[0],
    }
    mechanisms = {
        'sparsity="l1" (sigmoid), 128 units': (128, {"sparsity": "l1"}),
        "sparsity=None, 128 units": (128, {"sparsity": None}),
        "L1 ReLU, 8 units": (8, {"sparsity": "l1", "activation": "relu"}),
        "TopK k=8, 128 units": (128, {"sparsity": "topk", "k": 8}),
        "BatchTopK k=2, 8 units": (8, {"sparsity": "batchtopk", "k": 2}),
        "JumpReLU, 8 units": (8, {"sparsity": "jumprelu"}),
    }
    for mech, (width, params) in mechanisms.items():
        for name, Xm in data.items():
            if args.quick and name != "wine, standardised":
                continue
            runs = [epochs(Xm, width, seed, **params) for seed in (0, 1)]
            rows.append(row(f"{mech}, {name}", runs))
    headers = ["path", "fits", "median", "max", '"auto"', "> 200", '> "auto"']
    print(f"epochs to converge (max_iter={CAP}); {machine()}")
    print(table(rows, headers))


if __name__ == "__main__":
    main()
