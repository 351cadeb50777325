"""Candidate training defaults, quickly: digits probe, fit time against BernoulliRBM,
the StandardScaler pipeline and convergence on the small tabular sets.

Each argument is a JSON dict of estimator parameters (``{}``: today's defaults). For
seeds 0 .. N-1 (``--seeds N``, default 4), each seed's fit right after a
``BernoulliRBM(128)`` fit on the same rows: digits in [0, 1] (75/25 split, w = 128)
``LogisticRegression(max_iter=1000)`` probe accuracy, fit time as a multiple of the
RBM's, epochs, ConvergenceWarnings (cw), mean activation; standardised digits: the
pipeline's probe with ``LogisticRegression(tol=0.1)`` (PCA(64)'s: 0.9022) and its mean
activation; then whether standardised breast cancer and wine (w = 2 x n_features)
raise a ConvergenceWarning (``W``) or not (``.``), per seed. Means, and the minimum
over seeds in brackets.

Run: OMP_NUM_THREADS=1 python benchmarks/bench_default_candidates.py --seeds 6 '{}' \\
        '{"learning_rate": 0.003, "tol": 1e-4, "n_iter_no_change": 10}'
"""

import argparse
import json
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import BernoulliRBM
from sklearn.preprocessing import StandardScaler

from skl_sparse_ae import SparseAutoencoderTransformer


def split(loader):
    X, y = loader(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def timed_fit(model, X):
    """Seconds of ``model.fit(X)`` and whether it raised a ConvergenceWarning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        tic = time.perf_counter()
        model.fit(X)
        seconds = time.perf_counter() - tic
    return seconds, any(issubclass(w.category, ConvergenceWarning) for w in caught)


def probe(model, F_train, F_test, y_train, y_test, **params):
    clf = LogisticRegression(**params).fit(model.transform(F_train), y_train)
    return clf.score(model.transform(F_test), y_test)


def wide(A, seed, params):
    """The candidate with ``2 * n_features`` units for the small tables."""
    return SparseAutoencoderTransformer(2 * A.shape[1], random_state=seed, **params)


def candidate(params, seeds, digits, standardised, small):
    """One row: the figures of ``params`` over ``seeds``."""
    (X_train, X_test, y_train, y_test), (Z_train, Z_test) = digits, standardised
    rows = []
    for seed in seeds:
        rbm_seconds, _ = timed_fit(BernoulliRBM(128, random_state=seed), X_train)
        sae = SparseAutoencoderTransformer(random_state=seed, **params)
        seconds, cw = timed_fit(sae, X_train)
        std = SparseAutoencoderTransformer(random_state=seed, **params).fit(Z_train)
        rows.append(
            {
                "probe": probe(sae, X_train, X_test, y_train, y_test, max_iter=1000),
                "fit/RBM": seconds / rbm_seconds,
                "epochs": sae.n_iter_,
                "cw": int(cw),
                "act": sae.mean_activation_.mean(),
                "std pipe": probe(std, Z_train, Z_test, y_train, y_test, tol=0.1),
                "std act": std.mean_activation_.mean(),
                "small": "".join(
                    "W" if timed_fit(wide(A, seed, params), A)[1] else "." for A in small
                ),
            }
        )
    cells = [json.dumps(params)]
    for key in ("probe", "fit/RBM", "epochs", "cw", "act", "std pipe", "std act"):
        values = [row[key] for row in rows]
        cells.append(f"{np.mean(values):.4g} ({np.min(values):.4g})")
    cells.append(" ".join(row["small"] for row in rows))
    return "| " + " | ".join(cells) + " |"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("params", nargs="+", type=json.loads)
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    X_train, X_test, y_train, y_test = split(load_digits)
    digits = (X_train / 16, X_test / 16, y_train, y_test)
    scaler = StandardScaler().fit(X_train)
    standardised = (scaler.transform(X_train), scaler.transform(X_test))
    small = [
        StandardScaler().fit_transform(split(loader)[0])
        for loader in (load_breast_cancer, load_wine)
    ]
    SparseAutoencoderTransformer(max_iter=2).fit(digits[0])  # warm-up
    print(
        "| parameters | digits probe | fit / RBM | epochs | CW | mean act | "
        "std pipeline LR(tol=0.1) | std mean act | CW breast cancer, wine |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for params in args.params:
        print(candidate(params, range(args.seeds), digits, standardised, small), flush=True)
    print("PCA(64) in the std pipeline: 0.9022")


if __name__ == "__main__":
    main()
