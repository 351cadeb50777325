"""The thread rule: one thread for small steps, the caller's budget for large ones.

Restoring the caller's setting after fit, transform and failed fits is tested in
test_device.py; here: the rule itself, the context manager, large problems,
joblib workers and concurrent Python threads.
"""

import io
import threading

import joblib
import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV

from skl_sparse_ae import SparseAutoencoderTransformer, _device
from skl_sparse_ae._device import SMALL_STEP_FLOPS, choose_num_threads, num_threads, threads_for
from skl_sparse_ae._device import busy_cores as real_busy_cores  # before conftest patches it
from skl_sparse_ae._diagnostics import DivergedError


def test_small_steps_get_one_thread_large_steps_every_available_thread():
    assert choose_num_threads(0.5 * SMALL_STEP_FLOPS, 8) == 1
    assert choose_num_threads(SMALL_STEP_FLOPS, 8) == 8
    assert choose_num_threads(100 * SMALL_STEP_FLOPS, 3) == 3
    assert choose_num_threads(100 * SMALL_STEP_FLOPS, 0) == 1


@pytest.mark.parametrize(
    ("cores", "budget", "busy", "expected"),
    [(2, 2, 0, 2), (2, 2, 1, 1), (2, 2, 2, 1), (2, 2, 7, 1), (8, 4, 3, 4), (8, 4, 6, 2)],
)
def test_large_steps_use_only_the_cores_other_processes_leave_idle(
    monkeypatch, cores, budget, busy, expected
):
    """A thread on a core another process holds stalls every step (issue 21, item 4):
    the rule takes min(budget, cores - busy cores), at least one thread."""
    monkeypatch.setattr(_device, "busy_cores", lambda: busy)
    monkeypatch.setattr(_device.os, "cpu_count", lambda: cores)
    torch.set_num_threads(budget)
    assert threads_for((64, 512), 200) == expected  # 7.9e7 FLOPs: a large step
    assert threads_for((64, 512), 1000, training=False) == expected  # 1.3e8: inference too
    assert threads_for((64, 512), 200, n_threads=budget) == budget  # explicit: obeyed


def test_small_steps_do_not_read_the_load(monkeypatch):
    def boom():
        raise AssertionError("busy_cores read for a one-thread step")

    monkeypatch.setattr(_device, "busy_cores", boom)
    torch.set_num_threads(2)
    assert threads_for((64, 64), 16) == 1


def test_busy_cores_counts_other_processes_runnable_tasks(monkeypatch):
    """The fewest runnable tasks outside this process over the readings; 0 when
    /proc cannot be read."""
    readings = iter(["0.5 0.4 0.3 4/120 999\n", "0.5 0.4 0.3 3/120 999\n", "0.5 0.4 0.3 5/120 9\n"])

    real_open = open

    def fake_open(path, *args, **kwargs):
        if path == "/proc/loadavg":
            return io.StringIO(next(readings))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(_device, "_own_running_threads", lambda: 1)
    monkeypatch.setattr("builtins.open", fake_open)
    assert real_busy_cores() == 2  # min(4, 3, 5) - 1 (this thread)
    monkeypatch.setattr(_device, "_own_running_threads", lambda: 9)
    readings = iter(["0 0 0 3/1 1"] * 3)
    assert real_busy_cores() == 0  # never negative

    def unreadable(*args, **kwargs):
        raise OSError("no /proc here")

    monkeypatch.setattr("builtins.open", unreadable)
    assert real_busy_cores() == 0


def test_busy_cores_reads_this_machine():
    assert real_busy_cores() >= 0


def test_the_threshold_lies_in_the_measured_range():
    """benchmarks/bench_threads.py on 2 shared cores (2026-11-23): the best threshold
    was in [1.3e7, 2.5e7] FLOPs per step on a quiet machine, [2.5e7, 7.7e7] loaded."""
    assert 1.3e7 <= SMALL_STEP_FLOPS <= 7.7e7


@pytest.mark.parametrize("before", [1, 2])
def test_num_threads_restores_the_setting_even_on_error(before):
    torch.set_num_threads(before)
    with pytest.raises(RuntimeError, match="boom"):
        with num_threads(3 - before) as n:
            assert n == torch.get_num_threads() == 3 - before
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def test_num_threads_none_leaves_the_setting_alone_and_nests():
    torch.set_num_threads(2)
    with num_threads(None) as n:
        assert n == torch.get_num_threads() == 2
        with num_threads(1):
            assert torch.get_num_threads() == 1
            with num_threads(2):
                assert torch.get_num_threads() == 2
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2


@pytest.mark.parametrize("before", [1, 2])
@pytest.mark.parametrize("n_threads", [None, 1, 2])
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_thread_setting_is_restored_when_training_diverges(before, n_threads, solver):
    X = np.random.RandomState(0).rand(40, 6).astype(np.float32)
    # L-BFGS: a sigmoid output is not standardised, so the squared error overflows
    params = {"learning_rate": 1e30} if solver == "adam" else {"output_activation": "sigmoid"}
    scale = 1.0 if solver == "adam" else 1e30
    torch.set_num_threads(before)
    sae = SparseAutoencoderTransformer(
        n_components=4, max_iter=5, n_threads=n_threads, solver=solver, random_state=0, **params
    )
    with pytest.raises(DivergedError):
        sae.fit((X * scale).astype(np.float32))
    assert torch.get_num_threads() == before


# 64 -> 512 -> 64 with batches of 200: 6 * 200 * 2 * 64 * 512 = 7.9e7 FLOPs per step
LARGE = {"n_components": 512, "batch_size": 200, "max_iter": 1, "random_state": 0}


@pytest.mark.parametrize("before", [1, 2])
def test_large_problems_use_the_callers_threads_and_no_more(before, fit_threads):
    X = np.random.RandomState(0).rand(200, 64)
    torch.set_num_threads(before)
    with pytest.warns(Warning), fit_threads() as seen:  # one epoch: not converged
        SparseAutoencoderTransformer(verbose=1, **LARGE).fit(X)
    assert seen["fit"] == before
    assert torch.get_num_threads() == before


def test_transform_threads_follow_the_chunk_size(monkeypatch):
    """Inference: 2 * rows * weights FLOPs per chunk decide, as for training."""
    X = np.random.RandomState(0).rand(3000, 64)
    with pytest.warns(Warning):
        sae = SparseAutoencoderTransformer(
            n_components=256, max_iter=1, batch_size=10, random_state=0
        ).fit(X[:20])
    torch.set_num_threads(2)
    seen = []
    encode = sae.module_.encode

    def spy(x):
        seen.append((x.shape[0], torch.get_num_threads()))
        return encode(x)

    monkeypatch.setattr(sae.module_, "encode", spy)
    sae.transform(X[:10])  # 2 * 10 * 2 * 64 * 256 = 6.6e5 FLOPs: one thread
    sae.transform(X)  # one chunk of 3000 rows: 2e8 FLOPs: every thread
    assert seen == [(10, 1), (3000, 2)]
    assert torch.get_num_threads() == 2


def _threads_for_a_large_step(estimator, X, y=None):
    """A scorer run in the worker: the thread count the rule picks there."""
    return float(threads_for(estimator.module_.sizes, LARGE["batch_size"], estimator.n_threads))


def test_grid_search_workers_stay_within_joblibs_thread_budget():
    """Loky workers get OMP_NUM_THREADS = cores // n_jobs; the rule uses that budget."""
    X = np.random.RandomState(0).rand(200, 64)
    search = GridSearchCV(
        SparseAutoencoderTransformer(**LARGE),
        {"learning_rate": [1e-3, 2e-3]},
        cv=2,
        n_jobs=2,
        scoring=lambda est, X, y=None: _threads_for_a_large_step(est, X),
        refit=False,
        error_score="raise",
    )
    before = torch.get_num_threads()
    search.fit(X)
    budget = max(1, joblib.cpu_count() // 2)
    # at most the budget; fewer where other processes keep cores busy (busy_cores)
    scores = search.cv_results_["mean_test_score"]
    assert np.all((scores >= 1) & (scores <= budget)), scores
    assert torch.get_num_threads() == before


def test_concurrent_fits_in_threads_restore_each_threads_setting():
    """torch's thread count is per OS thread: each fit restores its own caller's."""
    X = np.random.RandomState(0).rand(60, 6)
    results, errors = {}, []

    def work(name, before, n_threads):
        try:
            # torch initialises a thread's count from the last value set in any
            # thread on its first use there: use it once before setting it
            torch.get_num_threads()
            torch.set_num_threads(before)
            for _ in range(3):  # converges after 3 epochs: no warning from a thread
                SparseAutoencoderTransformer(
                    n_components=4, tol=1e9, n_iter_no_change=1, n_threads=n_threads
                ).fit(X)
                results.setdefault(name, []).append(torch.get_num_threads())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    torch.set_num_threads(2)
    threads = [
        threading.Thread(target=work, args=("a", 1, 2)),
        threading.Thread(target=work, args=("b", 2, 1)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert results == {"a": [1, 1, 1], "b": [2, 2, 2]}
    assert torch.get_num_threads() == 2
