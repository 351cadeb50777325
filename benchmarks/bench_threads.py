"""Calibrate the thread rule: one torch thread or all of them, per training step size.

For a grid of problem sizes (batch x n_features -> n_components, one code layer,
sigmoid code, KL penalty, Adam) this times our training step (``train_step``,
what ``fit`` runs) with 1 thread and with every thread, interleaved, and reports
the speed-up of all threads over one against the step's floating point
operations, ``6 * batch * 2 * n_features * n_components`` (forward 2, backward 4
per weight and sample, encoder and decoder).

The rule in ``skl_sparse_ae._device.choose_num_threads`` uses one thread below
``SMALL_STEP_FLOPS``; the script prints the threshold these measurements suggest:
the one that loses the least time over the grid, i.e. that minimises
``sum(|log speed-up|)`` over the sizes where the rule would pick the slower
setting (robust to a few noisy points on a shared machine), placed at the
geometric middle of the best range.

``--under-load``: whole fits (the defaults on ``load_digits().data / 16``, all 1797
rows; bench_defaults' digits01 training split, 1347 rows; 20000 x 784 -> 256, one
epoch) with and without another process spinning on one core (``python -c "while
True: pass"``, started and killed by its PID around each loaded round), for the
caller's budget of 1 and of every thread, forced (``n_threads=1`` / ``n_threads=N``),
and for the rule with ``n_threads=None`` as it stands ("rule", which leaves out the
cores other processes keep busy) and as it was before it read them ("old rule":
``_device.busy_cores`` patched to 0). Rounds alternate the machine as it is and the
machine plus the busy loop, contenders interleaved within each; the table gives the
median seconds and each one's ratio to one thread under the same load, and the busy
cores the rule read at the start of each round.

Run: python benchmarks/bench_threads.py [--quick] [--under-load [--repeats R]]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import os
import subprocess
import sys
import time
import warnings

import torch
from _common import machine_with_rate, median, table

from skl_sparse_ae._device import SMALL_STEP_FLOPS
from skl_sparse_ae._model import SparseAutoencoder
from skl_sparse_ae._objective import Objective
from skl_sparse_ae._optim import make_adam
from skl_sparse_ae._training import train_step

SPEC = Objective(
    loss="mse",
    sparsity="kl",
    sparsity_target=0.05,
    sparsity_weight=0.1,
    weight_decay=1e-4,
)


def step_time(batch, d, k, threads, seconds, dtype):
    """Median seconds per step over ``seconds`` of stepping with ``threads``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(0)
        X = torch.rand(batch, d, generator=gen, dtype=dtype)
        module = SparseAutoencoder(d, k, dtype=dtype)
        module.reset_parameters(gen, X.mean(dim=0))
        optimizer = make_adam(module.parameters(), 1e-3)
        for _ in range(3):  # warm-up
            train_step(module, optimizer, X, SPEC)
        times = []
        end = time.perf_counter() + seconds
        while time.perf_counter() < end or len(times) < 5:
            tic = time.perf_counter()
            train_step(module, optimizer, X, SPEC)
            times.append(time.perf_counter() - tic)
        return median(times)
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def busy_core(busy):
    """With ``busy``, another process spinning on one core for the block."""
    if not busy:
        yield
        return
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # let it start and be scheduled
        yield
    finally:
        proc.kill()
        proc.wait()


def under_load_problems():
    """``{name: (X, estimator parameters)}`` for ``--under-load``."""
    from bench_compute_bound import upsampled_digits
    from bench_defaults import load
    from sklearn.datasets import load_digits

    return {
        "digits / 16, 1797x64->128, defaults": (load_digits().data / 16.0, {"n_components": 128}),
        "bench_defaults digits01, 1347x64->128": (load("digits01", None)[1], {"n_components": 128}),
        "20000x784->256, 1 epoch": (
            upsampled_digits(20000),
            {"n_components": 256, "max_iter": 1},
        ),
    }


def under_load(repeats):
    """Fit times with and without a busy core, per thread setting; prints a table."""
    from skl_sparse_ae import SparseAutoencoderTransformer, _device

    all_threads = torch.get_num_threads()
    real_busy_cores = _device.busy_cores

    def fit(X, params, budget, n_threads, old_rule=False):
        def run():
            previous = torch.get_num_threads()
            torch.set_num_threads(budget)
            if old_rule:
                _device.busy_cores = lambda: 0
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    est = SparseAutoencoderTransformer(
                        random_state=0, n_threads=n_threads, **params
                    )
                    tic = time.perf_counter()
                    est.fit(X)
                    return time.perf_counter() - tic
            finally:
                _device.busy_cores = real_busy_cores
                torch.set_num_threads(previous)

        return run

    settings = {
        "1 thread": (1, 1, False),
        f"{all_threads} threads": (all_threads, all_threads, False),
        "old rule": (all_threads, None, True),
        "rule": (all_threads, None, False),
    }
    problems = under_load_problems()
    for X, params in problems.values():  # warm-up: torch's one-time initialisation
        fit(X[:256], {**params, "max_iter": 2}, all_threads, None)()
    times, readings = {}, {False: [], True: []}
    for _ in range(repeats):
        for busy in (False, True):
            with busy_core(busy):
                readings[busy].append(real_busy_cores())
                for pname, (X, params) in problems.items():
                    for sname, (budget, n_threads, old) in settings.items():
                        t = fit(X, params, budget, n_threads, old)()
                        times.setdefault((pname, busy, sname), []).append(t)
                        print(f"  [{pname}, busy={busy}, {sname}: {t:.2f} s]", file=sys.stderr)
    rows = []
    for pname in problems:
        for busy in (False, True):
            one = median(times[(pname, busy, "1 thread")])
            row = [pname, "+ a busy core" if busy else "as it was"]
            for sname in settings:
                t = median(times[(pname, busy, sname)])
                row.append(f"{t:.3f} ({t / one:.2f})")
            rows.append(row)
    print(
        f"Fit seconds, median of {repeats} rounds (ratio to 1 thread, same load); "
        f"busy cores read at the start of the rounds (other processes: ours and the "
        f"rest of the machine): quiet {readings[False]}, loaded {readings[True]}"
    )
    print(table(rows, ["problem", "load", *settings]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes, shorter timings")
    parser.add_argument("--float64", action="store_true", help="time float64 (default float32)")
    parser.add_argument(
        "--under-load", action="store_true", help="whole fits with and without a busy core"
    )
    parser.add_argument("--repeats", type=int, default=3, help="rounds of --under-load")
    args = parser.parse_args()
    if args.under_load:
        print(f"{machine_with_rate()}; load average before: {os.getloadavg()}")
        under_load(args.repeats)
        print(f"load average after: {os.getloadavg()}")
        return
    dtype = torch.float64 if args.float64 else torch.float32
    all_threads = torch.get_num_threads()
    shapes = [(64, 64), (64, 256), (256, 256), (784, 256), (784, 1024)]
    batches = [32, 128, 512] if args.quick else [16, 64, 128, 256, 1024]
    seconds = 0.15 if args.quick else 0.4
    rounds = 2 if args.quick else 3

    results = {}
    for _ in range(rounds):  # interleave 1 thread / all threads, round after round
        for d, k in shapes:
            for batch in batches:
                for threads in (1, all_threads):
                    t = step_time(batch, d, k, threads, seconds, dtype)
                    results.setdefault((batch, d, k, threads), []).append(t)

    rows, points = [], []
    for d, k in shapes:
        for batch in batches:
            flops = 6.0 * batch * 2 * d * k
            t1 = median(results[(batch, d, k, 1)])
            tn = median(results[(batch, d, k, all_threads)])
            points.append((flops, t1 / tn))
            rows.append(
                [
                    f"{batch}x{d}->{k}",
                    f"{flops:.2e}",
                    f"{t1 * 1e3:.3f}",
                    f"{tn * 1e3:.3f}",
                    f"{t1 / tn:.2f}",
                ]
            )
    rows.sort(key=lambda r: float(r[1]))
    print(f"Training step, {dtype}, median of {rounds} interleaved rounds; {machine_with_rate()}")
    print(
        table(
            rows,
            [
                "batch x d -> k",
                "step FLOPs",
                "ms, 1 thread",
                f"ms, {all_threads} threads",
                f"speed-up ({all_threads} vs 1)",
            ],
        )
    )
    if all_threads == 1:
        print("Only one thread available: nothing to calibrate.")
        return
    low, high = suggest_threshold(points)
    print(
        f"Least time lost with one thread below any threshold in [{low:.2e}, {high:.2e}] "
        f"FLOPs/step: suggested SMALL_STEP_FLOPS ~ {math.sqrt(low * high):.1e} "
        f"(current: {SMALL_STEP_FLOPS:.1e})."
    )


def suggest_threshold(points):
    """The range of thresholds that loses the least time on ``(flops, speed-up)``."""
    sizes = sorted({f for f, _ in points})
    candidates = [sizes[0] / 2, *(math.sqrt(a * b) for a, b in itertools.pairwise(sizes))]
    candidates.append(sizes[-1] * 2)

    def lost(threshold):
        return sum(abs(math.log(s)) for f, s in points if (f < threshold) == (s > 1.0))

    costs = [lost(t) for t in candidates]
    best = [t for t, c in zip(candidates, costs) if c <= min(costs) + 1e-12]
    # the tied candidates span [best[0], best[-1]]; widen to the measured sizes around them
    low = max([f for f in sizes if f < best[0]], default=best[0])
    high = min([f for f in sizes if f > best[-1]], default=best[-1])
    return low, high


if __name__ == "__main__":
    main()
