"""Shared helpers for the benchmark scripts (data, timing, tables).

Not part of the package and not imported by the tests.
"""

from __future__ import annotations

import platform
import statistics
import time

import torch


def machine() -> str:
    """One line describing where the benchmark ran."""
    return (
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch "
        f"threads, torch {torch.__version__}, "
        f"{'CUDA ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU only'}"
    )


def matmul_rate(repeats: int = 5, size: int = 2048) -> float:
    """GFLOP/s of ``torch.mm`` on two square float32 matrices, best of ``repeats``.

    The host's fp32 matmul rate with the current torch threads: printed beside a
    benchmark's figures so that figures from different hosts can be compared.
    """
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(size, size, generator=gen)
    b = torch.rand(size, size, generator=gen)
    for _ in range(2):
        torch.mm(a, b)
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - tic)
    return 2.0 * size**3 / min(times) / 1e9


def machine_with_rate(repeats: int = 5) -> str:
    """:func:`machine` plus the host's 2048² float32 ``torch.mm`` rate, measured now."""
    return f"{machine()}; 2048² fp32 torch.mm {matmul_rate(repeats):.0f} GFLOP/s"


def timed(fn):
    """``(seconds, result)`` of one call to ``fn()``."""
    tic = time.perf_counter()
    result = fn()
    return time.perf_counter() - tic, result


def interleaved(contenders: dict, repeats: int, warmup: bool = True):
    """Run each contender once per round, ``repeats`` rounds; times per contender.

    Interleaving spreads the noise of a shared machine evenly over the contenders.
    With ``warmup``, one untimed round first (imports, allocator, thread pools).
    """
    times = {name: [] for name in contenders}
    results = {}
    if warmup:
        for fn in contenders.values():
            fn()
    for _ in range(repeats):
        for name, fn in contenders.items():
            seconds, results[name] = timed(fn)
            times[name].append(seconds)
    return times, results


def median(values) -> float:
    return float(statistics.median(values))


def table(rows, headers) -> str:
    """A plain-text (also Markdown) table."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
