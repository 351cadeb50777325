"""Training throughput at scale, as a fraction of this machine's fp32 matmul rate.

The problem: 20000 x 784 float32 (digits upsampled to 28 x 28: each 8 x 8 image
blown up 3x and padded, with a little noise), 784 -> 1024 -> 784 (sigmoid code,
KL penalty, linear output), Adam, batch 1024.

FLOPs counted: the matrix products of one training step on ``m`` rows with
``d = 784`` features and ``k = 1024`` code units, the ones that dominate:

    forward    x W^T (2mdk), h V (2mkd)
    backward   delta_out V^T (2mkd), h^T delta_out (2mkd), delta_z^T x (2mdk)

that is ``10 * m * d * k`` per step and ``10 * n * d * k`` per epoch (no gradient
is needed for the input, so not 12). Elementwise work is not counted. The issue
that asked for this benchmark counts ``6 * n * d * k`` per epoch (6 per weight and
sample for *one* d x k matrix); the rate is reported under both counts.

Two reference rates, with the same threads, measured in the same run, interleaved
with the fits, each the best of its rounds (the machine's rate when it is least
disturbed, which makes the fractions conservative): torch.mm on 2048 x 2048
matrices (the machine's fp32 matmul rate), and torch.mm on exactly the step's five
shapes (batch 1024; what those shapes allow). Epoch time is the slope between a
``--epochs``-epoch fit and a 1-epoch fit, so the fixed costs of ``fit`` (input
validation, standardisation, the diagnostics pass) are left out; the whole-fit
rate, with those costs, is shown too. The hand loop's epoch is its slope likewise.

Against a hand loop (issue 21): the whole fit of ours next to what a careful user
writes for the same epochs, in the same run, interleaved: ``X`` as one tensor, a
permutation per epoch from a ``torch.Generator``, batches by ``index_select``,
``addmm``, autograd, ``torch.optim.Adam(fused=True)``, the epoch loss summed on the
device and read once an epoch; timed with 1 thread and with all of torch's threads,
the better of the two is the reference (a busy core stalls two threads). Two problems: the one
above (squared error, linear output, no corruption) and the defaults' (cross-entropy
with a sigmoid output, masking 0.2; ours with every other parameter at its default).
The hand loop has no input validation, standardisation check, data-dependent
initialisation, stopping rule or diagnostics pass: those are what ours adds.

Run: python benchmarks/bench_compute_bound.py [--quick]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from _common import machine, matmul_rate, median, table
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skl_sparse_ae import FitQualityWarning, SparseAutoencoderTransformer
from skl_sparse_ae._device import num_threads

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


def square_mm_rate(repeats, size=2048):
    """GFLOP/s of torch.mm on two square float32 matrices (the machine's matmul rate)."""
    return matmul_rate(repeats, size)


#: The benchmark's problem, as first measured (the 0.1.0 defaults' schedule).
MSE_PARAMS = dict(
    loss="mse",
    noise=0.0,
    sparsity_target=0.05,
    sparsity_weight=0.1,
    learning_rate_schedule="constant",
)


def fit_seconds(X, epochs, params=MSE_PARAMS):
    """Seconds of ``fit`` for exactly ``epochs`` epochs; ``params={}``: the defaults."""
    est = SparseAutoencoderTransformer(
        K,
        **params,
        batch_size=BATCH,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=epochs + 1,
        device="cpu",
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", FitQualityWarning)  # 1-epoch fits
        tic = time.perf_counter()
        est.fit(X)
        return time.perf_counter() - tic


def hand_loop_seconds(X, epochs, defaults=False, threads=None):
    """Seconds of the hand loop with ``threads`` threads, or the better of 1 and all."""
    if threads is None:
        counts = sorted({1, torch.get_num_threads()})
        return min(hand_loop_seconds(X, epochs, defaults, count) for count in counts)
    with num_threads(threads):
        return _hand_loop(X, epochs, defaults)


def _hand_loop(X, epochs, defaults, rho=0.05, beta=0.1, lam=1e-4, lr=1e-3):
    """Seconds of a hand-written autograd loop for ``epochs`` epochs, from the numpy X.

    ``defaults``: cross-entropy on a sigmoid output and masking 0.2 (the defaults'
    objective on this data); else squared error on a linear output, clean inputs."""
    tic = time.perf_counter()
    x = torch.from_numpy(X)
    n = x.shape[0]
    gen = torch.Generator().manual_seed(0)
    W = (torch.randn(K, D, generator=gen) / D**0.5).requires_grad_()
    b = torch.zeros(K, requires_grad=True)
    V = (torch.randn(K, D, generator=gen) / K**0.5).requires_grad_()
    c = torch.zeros(D, requires_grad=True)
    optimizer = torch.optim.Adam([W, b, V, c], lr=lr, fused=True)
    for _ in range(epochs):
        total = torch.zeros(())
        for rows in torch.randperm(n, generator=gen).split(BATCH):
            xb = x.index_select(0, rows)
            seen = xb * (torch.rand(xb.shape, generator=gen) >= 0.2) if defaults else xb
            h = torch.sigmoid(torch.addmm(b, seen, W.t()))
            out = torch.addmm(c, h, V)
            if defaults:
                error = F.binary_cross_entropy_with_logits(out, xb, reduction="sum")
            else:
                error = 0.5 * (out - xb).pow(2).sum()
            rho_hat = h.mean(dim=0).clamp(1e-6, 1 - 1e-6)
            kl = (rho * (rho / rho_hat).log() + (1 - rho) * ((1 - rho) / (1 - rho_hat)).log()).sum()
            decay = 0.5 * lam * (W.pow(2).sum() + V.pow(2).sum())
            loss = error / xb.shape[0] + beta * kl + decay
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
        float(total)
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
    hand_loop_seconds(X[:2048], 1, defaults=True)  # warm-up
    short, long, rates, squares = [], [], [], []
    hand, hand_short, ours_defaults, hand_defaults = [], [], [], []
    for _ in range(repeats):  # interleaved: references, 1 epoch, `epochs` epochs, loops
        rates.append(mm_rate(10))
        squares.append(square_mm_rate(10))
        short.append(fit_seconds(X, 1))
        long.append(fit_seconds(X, epochs))
        hand.append(hand_loop_seconds(X, epochs))
        hand_short.append(hand_loop_seconds(X, 1))
        ours_defaults.append(fit_seconds(X, epochs, params={}))
        hand_defaults.append(hand_loop_seconds(X, epochs, defaults=True))
    step_peak, square_peak = max(rates), max(squares)
    epoch_seconds = (median(long) - median(short)) / (epochs - 1)
    print(
        f"{N} x {D} -> {K}, batch {BATCH}, float32; median of {repeats} interleaved "
        f"repeats; {epoch_seconds:.2f} s per epoch (slope), {median(long):.2f} s for the "
        f"whole {epochs}-epoch fit"
    )
    print(machine())
    rows = [
        ["torch.mm 2048 x 2048 (machine's rate, best)", f"{square_peak:.1f}", "-", "-"],
        ["torch.mm, the step's five shapes (best)", f"{step_peak:.1f}", "-", "-"],
    ]
    for count, label in ((10, "executed, 10 n d k"), (6, "the issue's 6 n d k")):
        for what, seconds in (
            ("training epochs (slope)", epoch_seconds),
            (f"whole fit / {epochs}", median(long) / epochs),
        ):
            rate = count * N * D * K / seconds / 1e9
            rows.append(
                [
                    f"{what}, {label}",
                    f"{rate:.1f}",
                    f"{rate / square_peak:.2f}",
                    f"{rate / step_peak:.2f}",
                ]
            )
    for what, seconds in (
        (f"hand loop, whole / {epochs}", median(hand) / epochs),
        (f"ours, defaults, whole fit / {epochs}", median(ours_defaults) / epochs),
        (f"hand loop, defaults' objective, whole / {epochs}", median(hand_defaults) / epochs),
    ):
        rate = 10 * N * D * K / seconds / 1e9
        row = [f"{what}, executed, 10 n d k", f"{rate:.1f}", f"{rate / square_peak:.2f}"]
        rows.append([*row, f"{rate / step_peak:.2f}"])
    print(table(rows, ["what", "GFLOP/s", "of 2048^2 mm", "of the step's mm"]))
    print(
        f"ours / hand loop, whole {epochs}-epoch fit: squared error "
        f"{median(long) / median(hand):.2f} ({median(long):.2f} s against "
        f"{median(hand):.2f} s); the defaults {median(ours_defaults) / median(hand_defaults):.2f} "
        f"({median(ours_defaults):.2f} s against {median(hand_defaults):.2f} s)"
    )
    print(
        "targets: training epochs >= 0.50 of the machine's matmul rate; issue 21: the "
        "whole fit >= 0.85 of it and <= 0.9x the hand loop's time"
    )
    hand_fraction = 10 * N * D * K * epochs / median(hand) / 1e9 / step_peak
    hand_epoch = (median(hand) - median(hand_short)) / (epochs - 1)
    print(
        f"per epoch (slope): ours {epoch_seconds:.2f} s, the hand loop {hand_epoch:.2f} s; "
        f"fixed costs (whole fit less its epochs): ours "
        f"{median(long) - epochs * epoch_seconds:.2f} s, the hand loop "
        f"{median(hand) - epochs * hand_epoch:.2f} s; 0.9x the hand loop leaves ours "
        f"{0.9 * median(hand) - epochs * epoch_seconds:.2f} s of fixed costs"
    )
    print(
        f"ceiling: a loop doing nothing but the step's five products runs at their rate, "
        f"{step_peak / square_peak:.2f} of the 2048^2 mm; 0.85 of the 2048^2 mm is "
        f"{0.85 * square_peak / step_peak:.2f} of that ceiling, and the hand loop (gathers, "
        f"elementwise work, Adam) reaches {hand_fraction:.2f} of it"
    )


if __name__ == "__main__":
    main()
