"""The L0-FVU frontier of the sparsity mechanisms, side by side in one run.

For each data set (digits in [0, 1]; UFLDL whitened-and-squashed 8x8 patches), one
75/25 split, the same width for every contender, squared error on clean inputs,
the default Adam schedule, one torch thread. Each mechanism is swept over its
sparsity knob (``sparsity_weight`` for L1 and JumpReLU, ``k`` for TopK and
BatchTopK), and each is also fitted with ``matryoshka_widths=(16, 64)``.

Columns (all on the held-out rows except ``dead`` and ``fit s``):

- ``L0``: mean number of non-zero code units per sample;
- ``FVU``: fraction of variance unexplained, sum (x - x_hat)^2 / sum (x - mean)^2;
- ``FVU@16``: the same, decoding the first 16 units only (what Matryoshka targets);
- ``shrink``: sqrt(sum ||x_hat - mean||^2 / sum ||x - mean||^2);
- ``dead``: fraction of units that never fire on the training rows (``dead_fraction_``);
- ``fit s``: seconds of one fit (the same machine, the same run: compare ratios);
- ``ms/epoch``: ``fit s`` per epoch (fits stop at different epochs).

Usage::

    python benchmarks/bench_frontier.py            # about 10 min on 2 quiet cores
    python benchmarks/bench_frontier.py --quick    # digits only, fewer points, 60 epochs
    python benchmarks/bench_frontier.py --training-details   # initialisations on/off
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch
from _common import machine, table, timed
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skl_sparse_ae import SparseAutoencoderTransformer
from skl_sparse_ae.datasets import load_ufldl_patches

WIDTH = 256
PREFIXES = (16, 64)


def sweeps(quick: bool) -> list[tuple[str, dict]]:
    """``(label, params)`` of every contender."""
    weights = [0.1, 0.3] if quick else [0.03, 0.1, 0.3, 1.0]
    ks = [8, 16] if quick else [4, 8, 16, 32]
    rows = []
    for w in weights:
        rows.append((f"l1 β={w}", {"sparsity": "l1", "activation": "relu", "sparsity_weight": w}))
    for k in ks:
        rows.append((f"topk k={k}", {"sparsity": "topk", "k": k}))
    for k in ks:
        rows.append((f"batchtopk k={k}", {"sparsity": "batchtopk", "k": k}))
    for w in weights:
        rows.append((f"jumprelu λ={w}", {"sparsity": "jumprelu", "sparsity_weight": w}))
    matryoshka = [
        ("l1 β=0.3", {"sparsity": "l1", "activation": "relu", "sparsity_weight": 0.3}),
        ("topk k=8", {"sparsity": "topk", "k": 8}),
        ("batchtopk k=8", {"sparsity": "batchtopk", "k": 8}),
        ("jumprelu λ=0.3", {"sparsity": "jumprelu", "sparsity_weight": 0.3}),
    ]
    for label, params in matryoshka:
        rows.append((f"{label} + matryoshka", {**params, "matryoshka_widths": PREFIXES}))
    return rows


def held_out(sae, X, width=None):
    codes = sae.transform(X)
    if width is not None:
        codes[:, width:] = 0.0
    recon = sae.inverse_transform(codes)
    centred = ((X - X.mean(axis=0)) ** 2).sum()
    fvu = ((recon - X) ** 2).sum() / centred
    shrink = np.sqrt(((recon - X.mean(axis=0)) ** 2).sum() / centred)
    return fvu, (codes > 0).sum(axis=1).mean(), shrink


def frontier(name, X, quick, max_iter):
    X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)
    rows = []
    for label, params in sweeps(quick):
        sae = SparseAutoencoderTransformer(
            WIDTH, loss="mse", noise=0.0, max_iter=max_iter, random_state=0, n_threads=1, **params
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            seconds, _ = timed(lambda sae=sae: sae.fit(X_train))
        fvu, l0, shrink = held_out(sae, X_test)
        fvu16, _, _ = held_out(sae, X_test, PREFIXES[0])
        rows.append(
            [
                label,
                f"{l0:.2f}",
                f"{fvu:.4f}",
                f"{fvu16:.4f}",
                f"{shrink:.3f}",
                f"{sae.dead_fraction_:.3f}",
                sae.n_iter_,
                f"{seconds:.1f}",
                f"{1000 * seconds / sae.n_iter_:.0f}",
            ]
        )
        print(" | ".join(map(str, rows[-1])), flush=True)
    print(f"\n### {name}: {X_train.shape[0]} train / {X_test.shape[0]} test, width {WIDTH}\n")
    headers = ["contender", "L0", "FVU", "FVU@16", "shrink", "dead", "n_iter", "fit s", "ms/epoch"]
    print(table(rows, headers), flush=True)


def training_details(quick):
    """Each training detail of the references on and off, the rest as shipped.

    ``PRE_BIAS_START`` (data mean or geometric median) and ``ENCODER_START`` (the
    decoder's transpose or uniform) of :mod:`skl_sparse_ae._model`, 80 epochs.
    """
    from skl_sparse_ae import _model

    data = {"digits (/16)": load_digits().data / 16.0}
    if not quick:
        data["UFLDL patches (4000)"] = load_ufldl_patches(n_patches=4000)
    mechanisms = [
        ("topk k=8", {"sparsity": "topk", "k": 8}),
        ("batchtopk k=8", {"sparsity": "batchtopk", "k": 8}),
        ("jumprelu λ=0.3", {"sparsity": "jumprelu", "sparsity_weight": 0.3}),
    ]
    variants = {
        "as shipped": {},
        "geometric median b_pre": {"PRE_BIAS_START": "geometric_median"},
        "data mean b_pre": {"PRE_BIAS_START": "mean"},
        "uniform encoder": {"ENCODER_START": "uniform"},
        "encoder = decoder^T": {"ENCODER_START": "decoder_transpose"},
    }
    shipped = {name: getattr(_model, name) for name in ("PRE_BIAS_START", "ENCODER_START")}
    rows = []
    for data_name, X in data.items():
        X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)
        for label, params in mechanisms:
            for variant, settings in variants.items():
                if variant != "as shipped" and all(shipped[k] == v for k, v in settings.items()):
                    continue  # the shipped setting is the first row
                for name, value in {**shipped, **settings}.items():
                    setattr(_model, name, value)
                sae = SparseAutoencoderTransformer(
                    WIDTH, loss="mse", noise=0.0, max_iter=80, random_state=0, n_threads=1, **params
                )
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    seconds, _ = timed(lambda sae=sae, X=X_train: sae.fit(X))
                fvu, l0, _ = held_out(sae, X_test)
                dead = f"{sae.dead_fraction_:.3f}"
                rows.append(
                    [data_name, label, variant, f"{l0:.2f}", f"{fvu:.4f}", dead, f"{seconds:.1f}"]
                )
                print(" | ".join(rows[-1]), flush=True)
    for name, value in shipped.items():
        setattr(_model, name, value)
    headers = ["data", "mechanism", "variant", "L0", "FVU", "dead", "fit s"]
    print("\n" + table(rows, headers), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--training-details",
        action="store_true",
        help="the references' initialisations on and off, instead of the frontier",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(machine())
    if args.training_details:
        training_details(args.quick)
        return
    max_iter = 60 if args.quick else 200
    frontier("digits (/16)", load_digits().data / 16.0, args.quick, max_iter)
    if not args.quick:
        frontier("UFLDL patches (4000)", load_ufldl_patches(n_patches=4000), args.quick, max_iter)


if __name__ == "__main__":
    main()
