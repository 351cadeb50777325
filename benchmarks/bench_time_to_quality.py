"""Seconds to digits features with a linear-probe accuracy of 0.975: ours vs MBDL.

Protocol
--------
- Data: ``load_digits()`` / 16, one fixed stratified 75/25 split
  (``train_test_split(test_size=0.25, random_state=0, stratify=y)``).
- Probe: ``LogisticRegression(max_iter=5000)`` fitted on the training codes,
  accuracy on the test codes. Raw pixels score 0.969 with this probe.
- Each learner is fitted from scratch with increasing training budgets (epochs:
  ``max_iter``) until the probe reaches 0.975. The time to quality is the time to
  produce the features at the first budget that does: the learner's ``fit`` on the
  training set plus ``transform`` of both sets (the probe's own fit, the same for
  both, is not counted). That budget is then re-timed, interleaved, and the
  median reported.

Learners (256 components each, as the design's reference figures)
-----------------------------------------------------------------
ours  SparseAutoencoderTransformer(256, learning_rate=1e-2), 0.1.0's defaults otherwise
      (sigmoid code, KL, Adam, batch 200); budgets 5, 10, 20, 40, 80 epochs.
MBDL  MiniBatchDictionaryLearning(256, batch_size=256, transform_algorithm=
      "lasso_lars", transform_alpha=0.1); budgets 1, 2, 4, 8 epochs. (With its
      default OMP transform it stays near 0.965 on this probe at any budget.)

Run: python benchmarks/bench_time_to_quality.py [--quick]
"""

from __future__ import annotations

import argparse
import time
import warnings

from _common import machine, median, table
from sklearn.datasets import load_digits
from sklearn.decomposition import MiniBatchDictionaryLearning
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from skl_sparse_ae import SparseAutoencoderTransformer

TARGET = 0.975

LEARNERS = {
    "ours (SparseAutoencoderTransformer)": (
        lambda budget: SparseAutoencoderTransformer(
            256,
            loss="mse",
            noise=0.0,
            sparsity_target=0.05,
            sparsity_weight=0.1,
            learning_rate_schedule="constant",  # the 0.1.0 defaults, as first measured
            learning_rate=1e-2,
            max_iter=budget,
            tol=0.0,
            random_state=0,
        ),
        [5, 10, 20, 40, 80],
    ),
    "MiniBatchDictionaryLearning": (
        lambda budget: MiniBatchDictionaryLearning(
            256,
            batch_size=256,
            max_iter=budget,
            transform_algorithm="lasso_lars",
            transform_alpha=0.1,
            random_state=0,
        ),
        [1, 2, 4, 8],
    ),
}


def features(make, budget, X_train, X_test):
    """Seconds to fit and transform, and the two code matrices."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        tic = time.perf_counter()
        learner = make(budget).fit(X_train)
        F_train, F_test = learner.transform(X_train), learner.transform(X_test)
        return time.perf_counter() - tic, F_train, F_test


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 re-timing instead of 3")
    args = parser.parse_args()
    repeats = 1 if args.quick else 3

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X / 16.0, y, test_size=0.25, random_state=0, stratify=y
    )

    def probe(F_train, F_test):
        clf = LogisticRegression(max_iter=5000).fit(F_train, y_train)
        return clf.score(F_test, y_test)

    print(f"raw pixels: probe accuracy {probe(X_train, X_test):.4f}")
    found, rows = {}, []
    for name, (make, budgets) in LEARNERS.items():
        for budget in budgets:
            seconds, F_train, F_test = features(make, budget, X_train, X_test)
            accuracy = probe(F_train, F_test)
            rows.append([name, budget, f"{seconds:.2f}", f"{accuracy:.4f}"])
            if accuracy >= TARGET:
                found[name] = budget
                break
    print(table(rows, ["learner", "epochs", "seconds (fit + transform)", "accuracy"]))

    if len(found) < len(LEARNERS):
        missing = [name for name in LEARNERS if name not in found]
        print(f"{missing} did not reach {TARGET} within the largest budget.")
        return
    times = {name: [] for name in LEARNERS}
    for _ in range(repeats):
        for name, (make, _) in LEARNERS.items():
            times[name].append(features(make, found[name], X_train, X_test)[0])
    ours, mbdl = (median(times[name]) for name in LEARNERS)
    print(f"\nTime to accuracy >= {TARGET}, median of {repeats} re-timings; {machine()}")
    print(
        table(
            [[name, found[name], f"{median(times[name]):.2f}"] for name in LEARNERS],
            ["learner", "epochs needed", "seconds"],
        )
    )
    print(f"ours / MBDL = {ours / mbdl:.3f} (target <= 0.1)")


if __name__ == "__main__":
    main()
