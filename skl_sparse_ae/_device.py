"""Devices, dtypes, numpy <-> torch, random generators and thread counts."""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import time

import numpy as np
import torch
from sklearn.utils import check_random_state

__all__ = [
    "busy_cores",
    "choose_num_threads",
    "make_generators",
    "num_threads",
    "resolve_device",
    "step_flops",
    "threads_for",
    "to_numpy",
    "to_tensor",
    "torch_dtype",
]

_DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")

#: Below this many floating point operations per step, one thread is faster
#: than several: the step is too short to pay for waking OpenMP workers, and on a
#: busy machine a second thread waiting for a core can make it many times slower.
#: Calibrated with ``benchmarks/bench_threads.py`` on 2 shared cores (2026-11-23):
#: the threshold that lost the least time was in [1.3e7, 2.5e7] FLOPs on a quiet
#: machine and in [2.5e7, 7.7e7] on a loaded one; 3e7 is the compromise (near
#: it, either choice is within about 15 %). Re-run the script on other machines.
SMALL_STEP_FLOPS = 3e7


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str) -> torch.device:
    """Turn the ``device`` parameter into a :class:`torch.device` that exists here.

    ``"auto"`` picks CUDA if available, then MPS, then the CPU. An explicit device
    that this machine does not have is an error, never a silent fallback.

    Parameters
    ----------
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.

    Returns
    -------
    torch.device
    """
    if not isinstance(device, str) or not _DEVICE_PATTERN.match(device):
        raise ValueError(
            "device must be 'auto', 'cpu', 'cuda', 'cuda:N' (N a GPU index) or 'mps'; "
            f"got {device!r}."
        )
    if device == "auto":
        if torch.cuda.is_available():  # with its index, as an explicit "cuda" gets
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available on this "
                "machine (torch.cuda.is_available() is False). Use device='cpu' or "
                "device='auto'."
            )
        index = int(device.split(":")[1]) if ":" in device else 0
        count = torch.cuda.device_count()
        if index >= count:
            raise ValueError(
                f"device={device!r} was requested but this machine has {count} CUDA "
                f"device(s): valid indices are 0 to {count - 1}."
            )
        return torch.device("cuda", index)
    if device == "mps" and not _mps_available():
        raise ValueError(
            "device='mps' was requested but MPS is not available on this machine. "
            "Use device='cpu' or device='auto'."
        )
    return torch.device(device)


def torch_dtype(np_dtype, device: torch.device) -> torch.dtype:
    """The torch dtype to compute in for numpy data of ``np_dtype`` on ``device``.

    float32 stays float32 and float64 stays float64, except on MPS, which has no
    float64: there the computation runs in float32.
    """
    if np.dtype(np_dtype) == np.float32 or device.type == "mps":
        return torch.float32
    return torch.float64


def to_tensor(X: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Move a numpy array to ``device`` as a contiguous tensor of ``dtype``.

    Read-only arrays (joblib memmaps in GridSearchCV workers) are copied first,
    since :func:`torch.from_numpy` would share memory that must not be written.
    """
    X = np.ascontiguousarray(X)
    if not X.flags.writeable:
        X = X.copy()
    return torch.from_numpy(X).to(device=device, dtype=dtype)


def to_numpy(tensor: torch.Tensor, dtype) -> np.ndarray:
    """Copy a tensor back to a numpy array of ``dtype``."""
    return tensor.detach().to("cpu").numpy().astype(dtype, copy=False)


def make_generators(random_state, device: torch.device):
    """Two local generators seeded from ``random_state`` (global seeds untouched).

    Returns
    -------
    cpu_generator : torch.Generator
        For initial weights, validation splits and epoch permutations.
    device_generator : torch.Generator
        For noise drawn on ``device`` (the same object as ``cpu_generator`` on CPU).
    """
    seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    cpu_generator = torch.Generator(device="cpu").manual_seed(seed)
    if device.type == "cpu":
        return cpu_generator, cpu_generator
    device_generator = torch.Generator(device=device).manual_seed(seed + 1)
    return cpu_generator, device_generator


def choose_num_threads(step_flops: float, available: int) -> int:
    """Threads for a step of ``step_flops`` floating point operations.

    The rule: one thread below :data:`SMALL_STEP_FLOPS` (a small step is dominated
    by per-operation overhead and OpenMP wake-ups, which more threads make worse),
    otherwise every thread ``available``. The estimator passes the caller's
    ``torch.get_num_threads()``, never ``os.cpu_count()``: inside
    ``GridSearchCV(n_jobs=k)`` loky workers that is joblib's budget of
    ``cores // k`` threads (joblib sets ``OMP_NUM_THREADS`` in its workers), so
    parallel fits never oversubscribe the machine.

    :func:`step_flops` gives ``step_flops`` for a model and a number of rows.

    Parameters
    ----------
    step_flops : float
        Floating point operations of one step.
    available : int
        The most threads to use.

    Returns
    -------
    int
        1 or ``available`` (at least 1).
    """
    if step_flops < SMALL_STEP_FLOPS:
        return 1
    return max(1, int(available))


def _own_running_threads() -> int:
    """Threads of this process in state R (running or runnable), from /proc."""
    count = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:  # the thread ended meanwhile
            continue
        count += stat[stat.rindex(")") + 2] == "R"
    return count


def busy_cores(readings: int = 3) -> int:
    """Cores that other processes keep busy now (0 where it cannot be read).

    The fewest runnable tasks outside this process over ``readings`` readings of
    ``/proc/loadavg``'s instantaneous count, 0.2 ms apart (about 1 ms in all): a
    process spinning on a core is runnable at every reading, a short-lived one
    rarely at all of them. Linux only; elsewhere 0 (every core counts as idle).
    """
    try:
        fewest = None
        for i in range(readings):
            if i:
                time.sleep(2e-4)
            with open("/proc/loadavg") as f:
                runnable = int(f.read().split()[3].split("/")[0])
            others = runnable - _own_running_threads()
            fewest = others if fewest is None else min(fewest, others)
        return max(0, fewest or 0)
    except (OSError, ValueError, IndexError):
        return 0


def step_flops(sizes: tuple[int, ...], rows: int, training: bool = True) -> float:
    """Floating point operations of a step over ``rows`` samples (the FLOP model).

    With ``n_weights`` the encoder's and decoder's weights (``2 * sum d_l d_{l-1}``
    over the layer sizes ``sizes``), a training step costs about
    ``6 * rows * n_weights`` (forward 2, backward 4 per weight and sample), an
    inference chunk ``2 * rows * n_weights``.
    """
    n_weights = 2 * sum(a * b for a, b in itertools.pairwise(sizes))
    return (6.0 if training else 2.0) * rows * n_weights


def threads_for(
    sizes: tuple[int, ...], rows: int, n_threads: int | None = None, training: bool = True
) -> int:
    """Threads for a step over ``rows`` samples of a model with layer ``sizes``.

    ``n_threads`` if given (the estimator's parameter), else
    :func:`choose_num_threads` of :func:`step_flops` and the caller's
    ``torch.get_num_threads()``, capped by the idle cores: ``os.cpu_count()`` less
    :func:`busy_cores`, at least 1. An OpenMP thread on a core that another process
    holds stalls every parallel region of the step (measured 2026-12-01 on 2 cores
    with one spinning process: see benchmarks/README.md, ``bench_threads.py
    --under-load``), so a busy core is not counted.
    """
    if n_threads is not None:
        return int(n_threads)
    threads = choose_num_threads(step_flops(sizes, rows, training), torch.get_num_threads())
    if threads > 1:
        idle = (os.cpu_count() or 1) - busy_cores()
        threads = max(1, min(threads, idle))
    return threads


@contextlib.contextmanager
def num_threads(n: int | None):
    """Run a block with ``torch.set_num_threads(n)`` and restore the caller's value.

    ``None`` leaves the setting alone. The setting is restored however the block
    ends (an exception, ``KeyboardInterrupt``). Torch's thread count is per OS
    thread (OpenMP's), so fits running concurrently in Python threads each
    restore their own thread's value.
    """
    previous = torch.get_num_threads()
    if n is None or n == previous:
        yield previous
        return
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(previous)
