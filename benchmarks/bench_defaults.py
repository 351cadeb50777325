"""The estimator's defaults side by side with scikit-learn's feature learners.

The question: with nothing tuned, what does a user get from
``SparseAutoencoderTransformer(n_components=w, random_state=0)`` compared with PCA,
``BernoulliRBM``, ``MiniBatchDictionaryLearning`` and ``NMF`` at the same width, on
data that ships with scikit-learn? ``--ours-params`` replaces our defaults (it may be
given several times: one row per candidate, fitted on the same split in the same run),
so the same script compares candidate defaults.

Data sets (``--datasets``; nothing is downloaded)
-------------------------------------------------
digits01       ``load_digits().data / 16`` (in [0, 1]), w = 128.
digits_std     raw ``load_digits().data`` with a ``StandardScaler`` in front of every
               contender (fitted on the training split), w = 128. A contender fitted on
               the scaled training split and probed with ``LogisticRegression(tol=0.1)``
               is exactly ``make_pipeline(StandardScaler(), contender,
               LogisticRegression(tol=0.1)).fit(X_raw_train, y_train)``: that column
               *is* the pipeline on raw digits.
breast_cancer  ``load_breast_cancer`` standardised the same way (30 features).
wine           ``load_wine`` standardised the same way (13 features).
patches        ``skl_sparse_ae.datasets.load_ufldl_patches(10000)`` (8 x 8 grey patches
               in [0.1, 0.9]); no labels: FVU, time and activations only, on a random
               (unstratified) 75/25 split.

Labelled sets use one stratified 75/25 split (``random_state=0``).

Width rule: w = 128 for digits and patches (a 2x over-complete code of 64 pixels); for
the small tabular sets w = 2 x n_features (60 for breast_cancer, 26 for wine), the same
over-completeness. ``--width N`` imposes w = N everywhere.

Contenders, all at width w, ``random_state=0``, otherwise scikit-learn's defaults
--------------------------------------------------------------------------------
ours   ``SparseAutoencoderTransformer(n_components=w, random_state=0, **ours_params)``
       (no ``ours_params``: the defaults).
PCA    ``PCA(n_components=min(w, n_features))``.
RBM    ``BernoulliRBM(n_components=w, random_state=0)`` (only data in [0, 1]).
MBDL   ``MiniBatchDictionaryLearning(n_components=w, random_state=0)`` (its default
       OMP transform); ``--quick``: ``max_iter=20`` instead of 1000 epochs.
NMF    ``NMF(n_components=w, init="nndsvda", max_iter=500, random_state=0)`` (only
       non-negative data). NNDSVD cannot build more components than
       ``min(n_samples, n_features)``; above that (w = 128 on 64 pixels) ``init="random"``,
       the one initialisation scikit-learn accepts there.
input  the input features themselves (the probe's reference; FVU 0).

``--mechanisms`` adds, after the ours rows, one row of ours per sparsity mechanism typed
with only its own knobs (every other parameter ``"auto"``), labelled by mechanism:
``kl`` {}, ``l1`` {"sparsity": "l1", "activation": "relu"}, ``topk`` {"sparsity":
"topk", "k": 8}, ``batchtopk`` {"sparsity": "batchtopk", "k": 8}, ``jumprelu``
{"sparsity": "jumprelu"}, ``none`` {"sparsity": None}, ``matryoshka`` {"sparsity":
"batchtopk", "k": 8, "matryoshka_widths": (16, 32)}. Those fit any w >= 32; below, k =
min(8, w // 2) and the widths are (16,) for 16 < w < 32 (wine's w = 26) and (w // 2,)
for w <= 16; each row's label shows the parameters it ran with.

Metrics (held-out = the 25 % test split)
----------------------------------------
fit s      seconds of the contender's ``fit`` on the training split, one fit each, not
           interleaved: read them as +-20 % on a quiet machine. On a machine where
           another process holds a core, a fit whose steps use two threads (ours with
           large batches, see ``bench_threads.py``) can be several times slower. An
           untimed warm-up fit of ours runs first (torch's one-time initialisation).
FVU        held-out fraction of variance unexplained: sum (x - x_hat)^2 / sum (x -
           mean_train)^2 on the test split. x_hat: ``inverse_transform(transform(x))``
           for ours, PCA and NMF; ``transform(x) @ components_`` for MBDL (no centring,
           as it fits); for the RBM the mean-field reconstruction
           ``sigmoid(transform(x) @ components_ + intercept_visible_)``.
LR         ``LogisticRegression(max_iter=1000)`` fitted on the training codes, accuracy
           on the test codes.
LR tol=.1  ``LogisticRegression(tol=0.1)`` (its default max_iter=100): what a user who
           tuned the probe for PCA features writes. No scaler between the codes and
           either probe.
tol=.1 RMS the same probe on codes divided by their per-unit training RMS,
           ``codes / sqrt(mean(train_codes ** 2, axis=0))`` (units that never fire are
           left as they are): does that scaling rescue the fast probe?
tol=.1 z   the same probe on codes standardised per unit (``StandardScaler`` fitted
           on the training codes): centred as well as scaled.
probe CW   which probes raised a ``ConvergenceWarning`` ("1000", "tol", "rms", "z").
           Why ``tol=0.1`` can give chance accuracy (0.1 on digits) without any warning:
           its L-BFGS stops before the first step when the largest entry of the
           gradient at zero weights, ``|F.T @ (1/K - Y)| / n``, is below 0.1; that
           entry is a per-unit difference of class means, small for features with a
           small spread (pixels in [0, 1], sigmoid codes); the model stays all zero.
n_iter     ``n_iter_`` (epochs for ours, MBDL; iterations for NMF).
fit CW     whether ``fit`` raised a ``ConvergenceWarning`` (NMF's ``transform``, which
           solves again, may warn too: those are silenced and not counted).
mean act   ours: ``mean_activation_.mean()`` (target: ``sparsity_target_``, for KL).
l0 / dead  ours: ``mean_l0_`` and the number of ``dead_components_``.

``--scale``: 70000 x 784 in [0, 1] (float32), MNIST-shaped
------------------------------------------------------------
Recipe: each 8 x 8 ``load_digits`` image / 16 is enlarged to 28 x 28 with
``scipy.ndimage.zoom(image, 3.5, order=1)`` (bilinear); the 1797 source images are
split stratified 75/25 (``random_state=0``) *before* resampling, so no test row is a
copy of a training image; 60000 training rows are drawn with replacement from the
training images and 10000 test rows from the test images
(``numpy.random.default_rng(0)``), each plus Gaussian noise of standard deviation 0.05,
clipped to [0, 1]. Contenders: ours (``n_components=128``, ``random_state=0``,
``ours_params``), ``BernoulliRBM(128, n_iter=10, random_state=0)``, ``PCA(128)``; fit
on the 60000 rows. Probes as above, fitted on the codes of the first 10000 training
rows (to keep the probe's time small; rows are independent draws) and scored on the
10000 test rows. ``--scale --quick``: 20000 training and 5000 test rows.

Time to the RBM's quality (``--scale`` only, after the table): the seconds each of ours
and the RBM trains before its codes reach the RBM's final ``LR`` probe accuracy (the
table's ``LR`` of ``BernoulliRBM``), the probe fitted and scored after every epoch as in
the table (probe time not counted). Ours: ``partial_fit`` on all training rows, one
epoch a call, from the same parameters as the table's first ours row (each call also
recomputes the fitted diagnostics, counted). The RBM: its own iterations, run as
``BernoulliRBM.fit`` runs them (the same initialisation, generator and even batch
slices, calling its private ``_fit`` per batch), so its tenth iteration is the
table's fit. Each stops at the first epoch that reaches the target (the RBM by
construction at the latest after its ``n_iter``); a contender that does not reach it
in ``--ttq-epochs`` epochs (default 30) shows ">" and its time so far.

Run: python benchmarks/bench_defaults.py [--quick] [--ours-params JSON ...]
                                          [--datasets NAMES] [--width N] [--scale]
                                          [--mechanisms]
(2 shared cores: all five data sets about 8 min, most of it NMF's 500 iterations at
128 components; ``--quick`` about 2 min. ``--scale`` is long: ours' default 200 epochs
on 60000 x 784 cost about 0.65 s per 20000 rows per epoch with one thread, so about
6-7 min on a quiet machine, and several times that when another process holds a core
(two OpenMP threads then wait on each other; on 2026-11-25 a full ``--scale`` run did
not finish in 16 min, nor ``--scale --quick`` ours' fit in 8 min). Cap the epochs to
bound it: ``--scale --ours-params '{"max_iter": 30}'``. Progress goes to stderr.)
Examples:
  python benchmarks/bench_defaults.py --datasets digits01,digits_std
  python benchmarks/bench_defaults.py --datasets digits01 --ours-params '{}' \\
      --ours-params '{"loss": "bce", "noise": 0.3, "noise_type": "masking"}'
  python benchmarks/bench_defaults.py --datasets digits_std --width 30
  python benchmarks/bench_defaults.py --quick --mechanisms    # + 7 rows a data set
  python benchmarks/bench_defaults.py --datasets patches --mechanisms
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np
from _common import machine_with_rate, table
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.decomposition import NMF, PCA, MiniBatchDictionaryLearning
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import BernoulliRBM
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state, gen_even_slices

from skl_sparse_ae import SparseAutoencoderTransformer
from skl_sparse_ae.datasets import load_ufldl_patches

DATASETS = ["digits01", "digits_std", "breast_cancer", "wine", "patches"]
QUICK_DATASETS = ["digits01", "digits_std", "breast_cancer", "wine"]


# ---------------------------------------------------------------------------- data


def _split(X, y, standardise):
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=y
    )
    if standardise:
        scaler = StandardScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    return X_train, X_test, y_train, y_test


def load(name, width):
    """``(description, X_train, X_test, y_train, y_test, w)``; y is None without labels."""
    if name == "patches":
        X = load_ufldl_patches(n_patches=10000, random_state=0)
        X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)
        desc = "load_ufldl_patches(10000): 8x8 grey patches in [0.1, 0.9], no labels"
        return desc, X_train, X_test, None, None, width or 128
    if name in ("digits01", "digits_std"):
        X, y = load_digits(return_X_y=True)
        std = name == "digits_std"
        desc = (
            "raw load_digits, StandardScaler (fitted on train) in front of each contender"
            if std
            else "load_digits().data / 16, in [0, 1]"
        )
        parts = _split(X if std else X / 16.0, y, std)
        return (desc, *parts, width or 128)
    loader = {"breast_cancer": load_breast_cancer, "wine": load_wine}[name]
    X, y = loader(return_X_y=True)
    desc = f"{loader.__name__}, StandardScaler (fitted on train)"
    return (desc, *_split(X, y, True), width or 2 * X.shape[1])


def scale_data(quick):
    """The --scale data: digits enlarged to 28 x 28, resampled, noised (see the docstring)."""
    from scipy.ndimage import zoom

    digits = load_digits()
    images = np.stack([zoom(im / 16.0, 3.5, order=1) for im in digits.images])
    images = np.clip(images.reshape(len(images), -1), 0.0, 1.0)  # (1797, 784)
    idx_train, idx_test = train_test_split(
        np.arange(len(images)), test_size=0.25, random_state=0, stratify=digits.target
    )
    rng = np.random.default_rng(0)
    n_train, n_test = (20000, 5000) if quick else (60000, 10000)

    def draw(pool, n):
        pick = rng.choice(pool, size=n, replace=True)
        X = images[pick] + rng.normal(0.0, 0.05, size=(n, images.shape[1]))
        return np.clip(X, 0.0, 1.0).astype(np.float32), digits.target[pick]

    X_train, y_train = draw(idx_train, n_train)
    X_test, y_test = draw(idx_test, n_test)
    return X_train, X_test, y_train, y_test


# ---------------------------------------------------------------------- contenders


def ours_label(params):
    return "ours" + (" " + json.dumps(params) if params else " (defaults)")


def ours_contenders(w, ours_params, labels=None):
    """One ``(name, estimator, reconstruct)`` per candidate parameter set of ours."""
    return [
        (
            ours_label(params) if labels is None else label,
            SparseAutoencoderTransformer(n_components=w, random_state=0, **params),
            lambda est, X: est.inverse_transform(est.transform(X)),
        )
        for label, params in zip(labels or [None] * len(ours_params), ours_params)
    ]


def mechanisms(w):
    """``--mechanisms``: ``{label: params}``, each mechanism typed with only its own knobs.

    k = 8 and widths (16, 32) as typed for w >= 32; below, k = min(8, w // 2) and the
    widths (16,) for 16 < w < 32 (wine's 26), (w // 2,) for w <= 16.
    """
    k = min(8, max(1, w // 2))
    widths = (16, 32) if w >= 32 else (16,) if w > 16 else (max(1, w // 2),)
    return {
        "kl": {},
        "l1": {"sparsity": "l1", "activation": "relu"},
        "topk": {"sparsity": "topk", "k": k},
        "batchtopk": {"sparsity": "batchtopk", "k": k},
        "jumprelu": {"sparsity": "jumprelu"},
        "none": {"sparsity": None},
        "matryoshka": {"sparsity": "batchtopk", "k": k, "matryoshka_widths": widths},
    }


def mechanism_contenders(w):
    """Ours once per mechanism, labelled ``mechanism {params}``."""
    mech = mechanisms(w)
    labels = [f"{name} {json.dumps(params)}" for name, params in mech.items()]
    return ours_contenders(w, list(mech.values()), labels)


def contenders(X_train, w, ours_params, quick, with_mechanisms=False):
    """``[(name, estimator or None, reconstruct)]`` that apply to this data."""
    d = X_train.shape[1]
    in01 = X_train.min() >= 0.0 and X_train.max() <= 1.0
    nonneg = X_train.min() >= 0.0
    out = [("input features", None, lambda est, X: X), *ours_contenders(w, ours_params)]
    out += mechanism_contenders(w) if with_mechanisms else []
    out.append(
        (
            f"PCA({min(w, d)})",
            PCA(n_components=min(w, d)),
            lambda est, X: est.inverse_transform(est.transform(X)),
        )
    )
    if in01:
        out.append(
            (
                f"BernoulliRBM({w})",
                BernoulliRBM(n_components=w, random_state=0),
                lambda est, X: (
                    1.0
                    / (1.0 + np.exp(-(est.transform(X) @ est.components_ + est.intercept_visible_)))
                ),
            )
        )
    mbdl_kw = {"max_iter": 20} if quick else {}
    out.append(
        (
            f"MiniBatchDictionaryLearning({w}" + (", max_iter=20)" if quick else ")"),
            MiniBatchDictionaryLearning(n_components=w, random_state=0, **mbdl_kw),
            lambda est, X: est.transform(X) @ est.components_,
        )
    )
    if nonneg:
        init = "nndsvda" if w <= min(X_train.shape) else "random"
        out.append(
            (
                f"NMF({w}, init={init!r})",
                NMF(n_components=w, init=init, max_iter=500, random_state=0),
                lambda est, X: est.inverse_transform(est.transform(X)),
            )
        )
    return out


# ------------------------------------------------------------------------- metrics


def fit_recorded(est, X):
    """``(seconds, ConvergenceWarning raised?)`` of ``est.fit(X)``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tic = time.perf_counter()
        est.fit(X)
        seconds = time.perf_counter() - tic
    return seconds, any(issubclass(c.category, ConvergenceWarning) for c in caught)


def probe(clf, F_train, y_train, F_test, y_test):
    """``(accuracy, ConvergenceWarning raised?)`` of a probe fitted on the codes."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.fit(F_train, y_train)
    return clf.score(F_test, y_test), any(
        issubclass(c.category, ConvergenceWarning) for c in caught
    )


def rms_scaled(F_train, F_test):
    rms = np.sqrt(np.mean(np.asarray(F_train, dtype=np.float64) ** 2, axis=0))
    rms[rms == 0] = 1.0
    return F_train / rms, F_test / rms


def fvu(X_test, X_hat, train_mean):
    return float(np.sum((X_test - X_hat) ** 2) / np.sum((X_test - train_mean) ** 2))


def evaluate(name, est, reconstruct, X_train, X_test, y_train, y_test, n_probe=None):
    """One table row (a list of strings) for one contender."""
    seconds, fit_cw = (float("nan"), False) if est is None else fit_recorded(est, X_train)
    with warnings.catch_warnings():  # NMF's transform solves again and may warn: not counted
        warnings.simplefilter("ignore", ConvergenceWarning)
        F_train = X_train if est is None else est.transform(X_train)
        F_test = X_test if est is None else est.transform(X_test)
        error = fvu(X_test, reconstruct(est, X_test), X_train.mean(axis=0))
    row = [name, F_train.shape[1], "—" if est is None else f"{seconds:.2f}", f"{error:.4f}"]
    if y_train is not None:
        P_train, P_y = (
            (F_train, y_train) if n_probe is None else (F_train[:n_probe], y_train[:n_probe])
        )
        R_train, R_test = rms_scaled(P_train, F_test)
        zscore = StandardScaler().fit(P_train)
        Z_train, Z_test = zscore.transform(P_train), zscore.transform(F_test)
        acc, cw = {}, []
        for key, clf, (A, B) in (
            ("1000", LogisticRegression(max_iter=1000), (P_train, F_test)),
            ("tol", LogisticRegression(tol=0.1), (P_train, F_test)),
            ("rms", LogisticRegression(tol=0.1), (R_train, R_test)),
            ("z", LogisticRegression(tol=0.1), (Z_train, Z_test)),
        ):
            acc[key], warned = probe(clf, A, P_y, B, y_test)
            if warned:
                cw.append(key)
        row += [f"{acc[key]:.4f}" for key in ("1000", "tol", "rms", "z")]
        row.append(",".join(cw) or "-")
    n_iter = getattr(est, "n_iter_", None)
    row += ["—" if n_iter is None else int(np.max(n_iter)), "yes" if fit_cw else "-"]
    if isinstance(est, SparseAutoencoderTransformer):
        target = (
            getattr(est, "sparsity_target_", est.sparsity_target) if est.sparsity == "kl" else None
        )
        row += [
            f"{est.mean_activation_.mean():.4f}" + (f" ({target:g})" if target else ""),
            f"{est.mean_l0_:.1f} / {int(np.sum(est.dead_components_))}",
        ]
    else:
        row += ["—", "—"]
    return row


def headers(labelled):
    h = ["contender", "dims", "fit s", "FVU test"]
    if labelled:
        h += ["LR", "LR tol=.1", "tol=.1 RMS", "tol=.1 z", "probe CW"]
    return [*h, "n_iter", "fit CW", "mean act (target)", "l0 / dead"]


def run_rows(cands, X_train, X_test, y_train, y_test, n_probe=None):
    """Table rows, and the error messages of the contenders that failed."""
    rows, failures = [], []
    for name, est, reconstruct in cands:
        tic = time.perf_counter()
        try:
            rows.append(evaluate(name, est, reconstruct, X_train, X_test, y_train, y_test, n_probe))
            print(f"  [{name}: {time.perf_counter() - tic:.0f} s]", file=sys.stderr, flush=True)
        except (ValueError, RuntimeError) as exc:  # e.g. loss="bce" on standardised data
            rows.append([name, "—", f"failed ({type(exc).__name__})"])
            failures.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    width = len(headers(y_train is not None))
    return [r + ["—"] * (width - len(r)) for r in rows], failures


def show(rows, failures, labelled):
    print(table(rows, headers(labelled)))
    for failure in failures:
        print(f"\n- {failure}")


def rbm_iterations(rbm, X):
    """Yield after each iteration of ``rbm`` on ``X``, training as ``rbm.fit`` does.

    The same initialisation, generator and batch slices as ``BernoulliRBM.fit``
    (scikit-learn 1.9), one iteration per step of the generator.
    """
    X = np.asarray(X)
    rng = check_random_state(rbm.random_state)
    rbm.components_ = np.asarray(
        rng.normal(0, 0.01, (rbm.n_components, X.shape[1])), order="F", dtype=X.dtype
    )
    rbm._n_features_out = rbm.components_.shape[0]
    rbm.n_features_in_ = X.shape[1]
    rbm.intercept_hidden_ = np.zeros(rbm.n_components, dtype=X.dtype)
    rbm.intercept_visible_ = np.zeros(X.shape[1], dtype=X.dtype)
    rbm.h_samples_ = np.zeros((rbm.batch_size, rbm.n_components), dtype=X.dtype)
    n_batches = int(np.ceil(len(X) / rbm.batch_size))
    slices = list(gen_even_slices(n_batches * rbm.batch_size, n_batches, n_samples=len(X)))
    while True:
        for batch in slices:
            rbm._fit(X[batch], rng)
        yield


def time_to_quality(target, w, ours_params, X_train, X_test, y_train, y_test, n_probe, epochs):
    """Rows ``[contender, epochs, train s, probe at each epoch]``: training seconds until
    the ``LogisticRegression(max_iter=1000)`` probe reaches ``target``."""

    def accuracy(est):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = LogisticRegression(max_iter=1000).fit(
                est.transform(X_train[:n_probe]), y_train[:n_probe]
            )
            return clf.score(est.transform(X_test), y_test)

    ours = SparseAutoencoderTransformer(n_components=w, random_state=0, **ours_params)
    rbm = BernoulliRBM(n_components=w, random_state=0)
    steps = rbm_iterations(rbm, X_train)

    def ours_epoch():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours.partial_fit(X_train)

    rows = []
    for name, est, epoch in (
        (f"ours partial_fit {ours_label(ours_params)}", ours, ours_epoch),
        (f"BernoulliRBM({w}) iterations", rbm, lambda: next(steps)),
    ):
        seconds, trail = 0.0, []
        for n in range(1, epochs + 1):
            tic = time.perf_counter()
            epoch()
            seconds += time.perf_counter() - tic
            trail.append(accuracy(est))
            print(
                f"  [{name} epoch {n}: {seconds:.1f} s, probe {trail[-1]:.4f}]",
                file=sys.stderr,
                flush=True,
            )
            if trail[-1] >= target:
                break
        reached = trail[-1] >= target
        rows.append(
            [
                name,
                str(n) if reached else f">{n}",
                f"{seconds:.2f}",
                " ".join(f"{a:.3f}" for a in trail),
            ]
        )
    return rows


def warm_up():
    """Untimed: torch's one-time initialisation, so that ours' first timed fit is fair."""
    X = np.random.default_rng(0).random((256, 16))
    with warnings.catch_warnings():  # two epochs: convergence and quality warnings
        warnings.simplefilter("ignore")
        SparseAutoencoderTransformer(8, max_iter=2, random_state=0).fit(X).transform(X)


# ---------------------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="digits01, digits_std, breast_cancer, wine only (no patches) and "
        "MiniBatchDictionaryLearning(max_iter=20); with --scale, 20000 + 5000 rows",
    )
    parser.add_argument(
        "--ours-params",
        action="append",
        type=json.loads,
        default=None,
        metavar="JSON",
        help='parameters for ours, e.g. \'{"loss": "bce"}\'; repeat for several rows',
    )
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=None,
        help=f"comma- or space-separated, from {DATASETS}",
    )
    parser.add_argument("--width", type=int, default=None, help="w for every data set")
    parser.add_argument(
        "--scale", action="store_true", help="only the 70000 x 784 comparison (see above)"
    )
    parser.add_argument(
        "--ttq-epochs",
        type=int,
        default=30,
        help="--scale: the most epochs for the time to the RBM's probe accuracy (0: skip it)",
    )
    parser.add_argument(
        "--mechanisms",
        action="store_true",
        help="also one row of ours per sparsity mechanism, typed with only its own knobs",
    )
    args = parser.parse_args()
    ours_params = args.ours_params or [{}]
    for params in ours_params:
        if not isinstance(params, dict):
            parser.error(f"--ours-params must be a JSON object, got {params!r}")

    warm_up()
    if args.scale:
        tic = time.perf_counter()
        X_train, X_test, y_train, y_test = scale_data(args.quick)
        w = args.width or 128
        cands = [("input features", None, lambda est, X: X), *ours_contenders(w, ours_params)]
        cands += mechanism_contenders(w) if args.mechanisms else []
        cands += [
            (
                f"BernoulliRBM({w}, n_iter=10)",
                BernoulliRBM(n_components=w, n_iter=10, random_state=0),
                lambda est, X: (
                    1.0
                    / (1.0 + np.exp(-(est.transform(X) @ est.components_ + est.intercept_visible_)))
                ),
            ),
            (
                f"PCA({w})",
                PCA(n_components=w),
                lambda est, X: est.inverse_transform(est.transform(X)),
            ),
        ]
        n_probe = min(10000, len(X_train))
        print(
            f"### scale: {len(X_train)} train / {len(X_test)} test x {X_train.shape[1]} "
            f"float32 in [0, 1] (digits zoomed to 28x28, resampled, noise 0.05); "
            f"fit on all training rows, probes on the codes of {n_probe} of them\n"
        )
        rows, failures = run_rows(cands, X_train, X_test, y_train, y_test, n_probe=n_probe)
        show(rows, failures, True)
        rbm_row = next(r for r in rows if r[0].startswith("BernoulliRBM"))
        if args.ttq_epochs > 0 and rbm_row[4] != "—":
            target = float(rbm_row[4])
            print(f"\nTraining seconds to the RBM's final LR probe accuracy, {target:.4f}:\n")
            print(
                table(
                    time_to_quality(
                        target,
                        w,
                        ours_params[0],
                        X_train,
                        X_test,
                        y_train,
                        y_test,
                        n_probe,
                        args.ttq_epochs,
                    ),
                    ["contender", "epochs", "train s", "LR probe after each epoch"],
                )
            )
        print(f"\n{machine_with_rate()}; {time.perf_counter() - tic:.0f} s in all")
        print(f"load average at the end: {os.getloadavg()}")
        return

    names = (
        [n for arg in args.datasets for n in arg.split(",") if n]
        if args.datasets
        else (QUICK_DATASETS if args.quick else DATASETS)
    )
    unknown = sorted(set(names) - set(DATASETS))
    if unknown:
        parser.error(f"unknown data sets {unknown}; choose from {DATASETS}")
    total = time.perf_counter()
    for name in names:
        tic = time.perf_counter()
        desc, X_train, X_test, y_train, y_test, w = load(name, args.width)
        print(
            f"### {name}: {desc}; {len(X_train)} train / {len(X_test)} test x "
            f"{X_train.shape[1]} features; w = {w}\n"
        )
        cands = contenders(X_train, w, ours_params, args.quick, args.mechanisms)
        show(*run_rows(cands, X_train, X_test, y_train, y_test), y_train is not None)
        print(f"\n({time.perf_counter() - tic:.0f} s)\n")
    print(f"{machine_with_rate()}; {time.perf_counter() - total:.0f} s in all")


if __name__ == "__main__":
    main()
