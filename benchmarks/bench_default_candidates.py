"""Candidate training defaults, quickly: digits probe, fit time against BernoulliRBM,
the StandardScaler pipeline and convergence on the small tabular sets.

Each argument is a JSON dict of estimator parameters (``{}``: today's defaults). For
seeds 0 and 1: digits in [0, 1] (75/25 split, w = 128): LogisticRegression(max_iter=1000)
probe accuracy, fit time as a multiple of ``BernoulliRBM(128)``'s in the same run,
epochs, ConvergenceWarning (cw), mean activation; standardised digits: the pipeline's
probe with ``LogisticRegression(tol=0.1)`` (PCA(64)'s: 0.9022). Then whether a
ConvergenceWarning is raised on standardised breast cancer and wine (w = 2 x n_features).

Run: OMP_NUM_THREADS=1 python benchmarks/bench_default_candidates.py '{}' \\
        '{"learning_rate": 0.01, "n_iter_no_change": 3}'
"""

import json
import sys
import time
import warnings

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


def main():
    warnings.simplefilter("ignore")
    X_train, X_test, y_train, y_test = split(load_digits)
    scaler = StandardScaler().fit(X_train)
    Z_train, Z_test = scaler.transform(X_train), scaler.transform(X_test)
    SparseAutoencoderTransformer(max_iter=2).fit(X_train / 16)  # warm-up
    rbm_seconds, _ = timed_fit(BernoulliRBM(128, random_state=0), X_train / 16)
    small = []
    for loader in (load_breast_cancer, load_wine):
        A_train = split(loader)[0]
        small.append(StandardScaler().fit_transform(A_train))
    for params in map(json.loads, sys.argv[1:]):
        row = [json.dumps(params)]
        for seed in (0, 1):
            sae = SparseAutoencoderTransformer(random_state=seed, **params)
            seconds, cw = timed_fit(sae, X_train / 16)
            probe = LogisticRegression(max_iter=1000).fit(sae.transform(X_train / 16), y_train)
            acc = probe.score(sae.transform(X_test / 16), y_test)
            std = SparseAutoencoderTransformer(random_state=seed, **params)
            _, std_cw = timed_fit(std, Z_train)
            loose = LogisticRegression(tol=0.1).fit(std.transform(Z_train), y_train)
            std_acc = loose.score(std.transform(Z_test), y_test)
            row.append(
                f"s{seed}: d01 {acc:.4f} {seconds / rbm_seconds:.2f}xRBM ep{sae.n_iter_} "
                f"cw{int(cw)} act{sae.mean_activation_.mean():.3f} | std tol.1 {std_acc:.4f} "
                f"ep{std.n_iter_} cw{int(std_cw)} act{std.mean_activation_.mean():.3f}"
            )
        warned = [
            int(
                timed_fit(
                    SparseAutoencoderTransformer(2 * A.shape[1], random_state=0, **params), A
                )[1]
            )
            for A in small
        ]
        row.append(f"small CW {warned}")
        print(" || ".join(row), flush=True)
    print(f"PCA std tol.1: 0.9022; BernoulliRBM(128) fit {rbm_seconds:.2f} s")


if __name__ == "__main__":
    main()
