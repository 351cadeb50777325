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
