"""Training throughput at scale, as a fraction of this machine's fp32 matmul rate.

The problem: 20000 x 784 float32 (digits upsampled to 28 x 28: each 8 x 8 image
blown up 3x and padded, with a little noise), 784 -> 1024 -> 784 (sigmoid code,
KL penalty, linear output), Adam, batch 1024.

FLOPs counted: the matrix products of one training step on ``m`` rows with
``d = 784`` features and ``k = 1024`` code units, the ones that dominate:

    forward    x W^T (2mdk), h V (2mkd)
    backward   delta_out V^T (2mkd), h^T delta_out (2mkd), delta_z^T x (2mdk)

that is ``10 * m * d * k`` per step and ``10 * n * d * k`` per epoch (no gradient
is needed for the input, so not 12). Elementwise work is not counted.

The reference rate is torch.mm on exactly these five shapes (batch 1024), with the
same threads, measured in the same run, interleaved with the fits: the best of
the rounds (the machine's rate when it is least disturbed, which makes the
fraction conservative). Epoch time is the slope between a
``--epochs``-epoch fit and a 1-epoch fit, so the fixed costs of ``fit`` (input
validation, standardisation, the diagnostics pass) are left out; the whole-fit
rate, with those costs, is shown too.

Run: python benchmarks/bench_compute_bound.py [--quick]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from _common import machine, median, table
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skl_sparse_ae import SparseAutoencoderTransformer

N, D, K, BATCH = 20000, 784, 1024, 1024


def upsampled_digits(n, random_state=0):
    """``n`` rows of 28 x 28 digits in [0, 1] (float32), tiled from load_digits."""
    rng = np.random.default_rng(random_state)
    images = load_digits().images / 16.0  # (1797, 8, 8)
    big = np.kron(images, np.ones((3, 3)))  # (1797, 24, 24)
    big = np.pad(big, ((0, 0), (2, 2), (2, 2))).reshape(len(images), -1)
    X = big[rng.integers(0, len(images), size=n)]
    X += rng.normal(0.0, 0.02, size=X.shape)
    return np.clip(X, 0.0, 1.0).astype(np.float32)


def mm_rate(repeats):
    """GFLOP/s of torch.mm over the five products of one training step."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(BATCH, D, generator=gen)
    h = torch.rand(BATCH, K, generator=gen)
    W = torch.rand(K, D, generator=gen)
    V = torch.rand(K, D, generator=gen)
    g = torch.rand(BATCH, D, generator=gen)

    def products():
        torch.mm(x, W.t())
        torch.mm(h, V)
        torch.mm(g, V.t())
        torch.mm(h.t(), g)
        torch.mm(h.t(), x)

    for _ in range(3):
        products()
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        for _ in range(5):
            products()
        times.append((time.perf_counter() - tic) / 5)
    return 10.0 * BATCH * D * K / min(times) / 1e9


def fit_seconds(X, epochs):
    est = SparseAutoencoderTransformer(
        K,
        batch_size=BATCH,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=epochs + 1,
        device="cpu",
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        tic = time.perf_counter()
        est.fit(X)
        return time.perf_counter() - tic


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats, 3-epoch fits")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    epochs = args.epochs or (3 if args.quick else 4)
    repeats = args.repeats or (2 if args.quick else 3)

    X = upsampled_digits(N)
    fit_seconds(X[:2048], 1)  # warm-up
    short, long, rates = [], [], []
    for _ in range(repeats):  # interleaved: reference, 1 epoch, `epochs` epochs
        rates.append(mm_rate(10))
        short.append(fit_seconds(X, 1))
        long.append(fit_seconds(X, epochs))
    peak = max(rates)
    flops_epoch = 10.0 * N * D * K
    epoch_seconds = (median(long) - median(short)) / (epochs - 1)
    achieved = flops_epoch / epoch_seconds / 1e9
    whole = flops_epoch * epochs / median(long) / 1e9
    print(
        f"{N} x {D} -> {K}, batch {BATCH}, float32; {10 * N * D * K / 1e9:.0f} GFLOP per "
        f"epoch (10 n d k); median of {repeats} interleaved repeats"
    )
    print(machine())
    rows = [
        ["torch.mm, the step's five products (best)", f"{peak:.1f}", "1.00", "-"],
        [
            "training epochs (slope)",
            f"{achieved:.1f}",
            f"{achieved / peak:.2f}",
            f"{epoch_seconds:.2f} s / epoch",
        ],
        [
            f"whole fit, {epochs} epochs",
            f"{whole:.1f}",
            f"{whole / peak:.2f}",
            f"{median(long):.2f} s",
        ],
    ]
    print(table(rows, ["what", "GFLOP/s", "fraction of torch.mm", "time"]))
    print(f"training / matmul rate = {achieved / peak:.2f} (target >= 0.50)")


if __name__ == "__main__":
    main()
