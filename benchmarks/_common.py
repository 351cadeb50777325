"""Shared helpers for the benchmark scripts (data, timing, tables).

Not part of the package and not imported by the tests.
"""

from __future__ import annotations

import platform
import statistics
import time

import numpy as np
import torch


def ufldl_patches(n_patches: int = 10000, patch_size: int = 8, random_state: int = 0):
    """``n_patches`` UFLDL-normalised grey patches from scikit-learn's sample images.

    Uses :func:`skl_sparse_ae.datasets.load_ufldl_patches` when the package has it;
    otherwise the same recipe inline: grey patches cut by ``extract_patches_2d``
    (half from each of the two photos), each patch's mean removed, clipped at
    +-3 standard deviations of all entries, and mapped to ``[0.1, 0.9]``.
    """
    try:  # the package's loader, if another contributor has added it
        from skl_sparse_ae.datasets import load_ufldl_patches
    except ImportError:
        load_ufldl_patches = None
    if load_ufldl_patches is not None:
        try:
            return np.asarray(
                load_ufldl_patches(
                    n_patches=n_patches, patch_size=patch_size, random_state=random_state
                ),
                dtype=np.float64,
            )
        except TypeError:  # another signature: fall back to the inline recipe
            pass
    from sklearn.datasets import load_sample_images
    from sklearn.feature_extraction.image import extract_patches_2d

    images = load_sample_images().images
    per_image = [
        n_patches // len(images) + (i < n_patches % len(images)) for i in range(len(images))
    ]
    patches = []
    for i, (image, count) in enumerate(zip(images, per_image)):
        grey = image.astype(np.float64).mean(axis=2) / 255.0
        p = extract_patches_2d(
            grey, (patch_size, patch_size), max_patches=count, random_state=random_state + i
        )
        patches.append(p.reshape(count, -1))
    X = np.concatenate(patches)
    X -= X.mean(axis=1, keepdims=True)
    limit = 3.0 * X.std()
    X = np.clip(X, -limit, limit) / limit
    return (X + 1.0) * 0.4 + 0.1


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
