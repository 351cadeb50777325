"""Devices (resolution, errors, moving models between machines) and torch threads."""

import io
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from classic import CLASSIC, with_base

import skl_sparse_ae._device as device_module
from skl_sparse_ae import SparseAutoencoderTransformer
from skl_sparse_ae._device import resolve_device
from skl_sparse_ae._diagnostics import DivergedError

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FAST = {**CLASSIC, "n_components": 4, "max_iter": 5, "random_state": 0}
HAS_CUDA = torch.cuda.is_available()
HAS_MPS = torch.backends.mps.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
needs_no_accelerator = pytest.mark.skipif(
    HAS_CUDA or HAS_MPS, reason="needs a machine without CUDA and MPS"
)


@pytest.fixture
def X():
    return np.random.RandomState(0).rand(50, 7)


# ------------------------------------------------------------------ resolution
@needs_no_accelerator
def test_auto_resolves_to_cpu_without_accelerator(X):
    assert resolve_device("auto") == torch.device("cpu")
    sae = SparseAutoencoderTransformer(**FAST).fit(X)
    assert sae.device_ == "cpu"
    assert next(sae.module_.parameters()).device.type == "cpu"


@pytest.mark.parametrize(
    "cuda, mps, expected",
    [(True, True, "cuda:0"), (True, False, "cuda:0"), (False, True, "mps"), (False, False, "cpu")],
)
def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(device_module, "_mps_available", lambda: mps)
    assert resolve_device("auto") == torch.device(expected)
    if cuda:  # named as an explicit "cuda" is: device_ reads "cuda:0" either way
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
        assert resolve_device("auto") == resolve_device("cuda")


def test_explicit_cpu(X):
    assert resolve_device("cpu") == torch.device("cpu")
    sae = SparseAutoencoderTransformer(device="cpu", **FAST).fit(X)
    assert sae.device_ == "cpu"


def test_device_is_resolved_in_fit_not_init():
    sae = SparseAutoencoderTransformer(device="cuda:99")  # no error yet
    assert sae.get_params()["device"] == "cuda:99"
    assert not hasattr(sae, "device_")


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "CUDA", "cuda:-1", " cpu", "tpu", None, 0])
def test_resolve_device_rejects_malformed_names(device):
    with pytest.raises(ValueError, match=r"device must be 'auto', 'cpu', 'cuda', 'cuda:N'"):
        resolve_device(device)


@pytest.mark.skipif(HAS_CUDA, reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:3"])
def test_resolve_device_rejects_missing_cuda(device):
    with pytest.raises(ValueError, match=rf"device='{device}'.*CUDA is not available"):
        resolve_device(device)


@pytest.mark.skipif(HAS_MPS, reason="needs a machine without MPS")
def test_resolve_device_rejects_missing_mps():
    with pytest.raises(ValueError, match=r"device='mps'.*MPS is not available"):
        resolve_device("mps")


# ------------------------------------------------------------------ moving models
def _fitted_elsewhere(X, device):
    """A CPU model whose state claims it was fitted on ``device`` (as a GPU model
    is after ``__getstate__``, which moves every tensor to the CPU)."""
    sae = SparseAutoencoderTransformer(**FAST).fit(X)
    sae.device_ = device
    return sae


@pytest.mark.skipif(HAS_CUDA, reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda:0", "cuda"])
def test_gpu_model_loads_on_a_cpu_only_machine(X, device):
    sae = _fitted_elsewhere(X, device)
    codes = sae.transform(X)
    payload = pickle.dumps(sae)
    with pytest.warns(UserWarning, match=rf"fitted on '{device}'.*loaded on the CPU"):
        loaded = pickle.loads(payload)
    assert loaded.device_ == "cpu"
    assert all(p.device.type == "cpu" for p in loaded.module_.parameters())
    np.testing.assert_array_equal(loaded.transform(X), codes)
    # It can keep training where it is now.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded.partial_fit(X)
    assert loaded.device_ == "cpu"
    assert loaded.n_iter_ == sae.n_iter_ + 1


@pytest.mark.skipif(HAS_MPS, reason="needs a machine without MPS")
def test_mps_model_loads_on_a_machine_without_mps(X):
    sae = _fitted_elsewhere(X, "mps")
    with pytest.warns(UserWarning, match="fitted on 'mps'"):
        loaded = pickle.loads(pickle.dumps(sae))
    assert loaded.device_ == "cpu"
    np.testing.assert_array_equal(loaded.transform(X), sae.transform(X))


def test_cpu_model_loads_without_warning(X):
    sae = SparseAutoencoderTransformer(device="cpu", **FAST).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = pickle.loads(pickle.dumps(sae))
    assert loaded.device_ == "cpu"


def test_pickling_does_not_move_the_live_model(X):
    sae = SparseAutoencoderTransformer(**FAST).fit(X)
    module = sae.module_
    state = sae.__getstate__()
    assert sae.module_ is module
    assert state["module_"] is not module  # a CPU copy, not the live module


# ------------------------------------------------------------------ real GPUs
@needs_cuda
def test_training_and_transform_stay_on_cuda(X):
    sae = SparseAutoencoderTransformer(device="cuda", early_stopping=True, noise=0.1, **FAST)
    codes = sae.fit_transform(X)
    assert sae.device_ == f"cuda:{torch.cuda.current_device()}"
    assert all(p.device.type == "cuda" for p in sae.module_.parameters())
    assert all(b.device.type == "cuda" for b in sae.module_.buffers())
    assert isinstance(codes, np.ndarray)
    assert codes.dtype == np.float64  # float64 in, float64 out, on the GPU too
    assert next(sae.module_.parameters()).dtype == torch.float64
    sae.partial_fit(X)
    assert all(p.device.type == "cuda" for p in sae.module_.parameters())
    float32_codes = SparseAutoencoderTransformer(device="cuda", **FAST).fit_transform(
        X.astype(np.float32)
    )
    assert float32_codes.dtype == np.float32


@needs_cuda
def test_default_training_dtype_on_cuda_trains_in_float32_and_keeps_float64(X):
    """The defaults' path: float64 data, float32 training on the GPU, a float64 model."""
    sae = SparseAutoencoderTransformer(device="cuda", n_components=4, max_iter=3, random_state=0)
    codes = sae.fit_transform(X)
    moments = sae._optimizer_state["state"].values()
    assert {v.dtype for m in moments for k, v in m.items() if k != "step"} == {torch.float32}
    assert next(sae.module_.parameters()).dtype == torch.float64
    assert next(sae.module_.parameters()).device.type == "cuda"
    assert codes.dtype == np.float64
    assert sae.reconstruction_err_ == pytest.approx(-sae.score(X), rel=1e-12)
    sae.partial_fit(X)
    assert next(sae.module_.parameters()).dtype == torch.float64


@needs_cuda
def test_cuda_fits_are_reproducible(X):
    params = {**FAST, "device": "cuda", "noise": 0.1}
    a = SparseAutoencoderTransformer(**params).fit_transform(X)
    b = SparseAutoencoderTransformer(**params).fit_transform(X)
    np.testing.assert_array_equal(a, b)


@needs_cuda
def test_cuda_index_out_of_range_is_an_error(X):
    count = torch.cuda.device_count()
    with pytest.raises(ValueError, match=rf"cuda:{count}.*valid indices are 0 to {count - 1}"):
        SparseAutoencoderTransformer(device=f"cuda:{count}", **FAST).fit(X)


@needs_cuda
def test_cuda_pickle_holds_cpu_tensors_and_loads_on_cuda(X):
    sae = SparseAutoencoderTransformer(device="cuda", **FAST).fit(X)
    state = sae.__getstate__()
    assert all(p.device.type == "cpu" for p in state["module_"].parameters())
    assert all(
        t.device.type == "cpu"
        for s in state["_optimizer_state"]["state"].values()
        for t in s.values()
        if isinstance(t, torch.Tensor)
    )
    assert all(p.device.type == "cuda" for p in sae.module_.parameters())  # untouched
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = pickle.loads(pickle.dumps(sae))
    assert loaded.device_ == sae.device_
    assert all(p.device.type == "cuda" for p in loaded.module_.parameters())
    np.testing.assert_array_equal(loaded.transform(X), sae.transform(X))
    loaded.partial_fit(X)  # optimiser and generator states resume on the GPU


@needs_cuda
def test_cuda_pickle_loads_in_a_process_without_cuda(X, tmp_path):
    """map_location semantics: a GPU model opens on a machine with no GPU."""
    sae = SparseAutoencoderTransformer(device="cuda", **FAST).fit(X)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(sae))
    np.save(tmp_path / "X.npy", X)
    script = textwrap.dedent(
        f"""
        import pickle, warnings, numpy as np, torch
        assert not torch.cuda.is_available()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with open({str(tmp_path / "model.pkl")!r}, "rb") as f:
                model = pickle.load(f)
        assert any("loaded on the CPU" in str(w.message) for w in caught), caught
        assert model.device_ == "cpu", model.device_
        X = np.load({str(tmp_path / "X.npy")!r})
        np.save({str(tmp_path / "codes.npy")!r}, model.transform(X))
        model.partial_fit(X)
        """
    )
    env = {**__import__("os").environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300, env=env)
    # The same weights on another device: equal up to kernel rounding.
    np.testing.assert_allclose(np.load(tmp_path / "codes.npy"), sae.transform(X), atol=1e-10)


# ------------------------------------------------------------------ threads
@pytest.mark.parametrize("before", [1, 2])
@pytest.mark.parametrize("n_threads", [None, 1, 2])
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_caller_thread_setting_is_restored(X, before, n_threads, solver):
    torch.set_num_threads(before)
    sae = SparseAutoencoderTransformer(n_threads=n_threads, solver=solver, **FAST).fit(X)
    assert torch.get_num_threads() == before
    sae.transform(X)
    sae.inverse_transform(sae.transform(X))
    sae.score(X)
    assert torch.get_num_threads() == before
    if solver == "adam":
        sae.partial_fit(X)
        assert torch.get_num_threads() == before


@pytest.mark.parametrize("before", [1, 2])
@pytest.mark.parametrize("n_threads", [None, 1, 2])
def test_thread_setting_is_restored_when_fit_raises(X, before, n_threads):
    torch.set_num_threads(before)
    sae = with_base(FAST, n_threads=n_threads, learning_rate=1e300, batch_size=10)
    with pytest.raises(DivergedError):  # raised inside training
        sae.fit(X)
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("before", [1, 2])
def test_thread_setting_is_restored_on_interrupt(X, before, monkeypatch):
    """Ctrl-C during training: here, while the first epoch line (verbose=1) is printed."""

    class Interrupting(io.StringIO):
        def write(self, text):
            assert torch.get_num_threads() == 3 - before  # inside training
            raise KeyboardInterrupt

    monkeypatch.setattr(sys, "stdout", Interrupting())
    torch.set_num_threads(before)
    with pytest.raises(KeyboardInterrupt):
        SparseAutoencoderTransformer(n_threads=3 - before, verbose=1, **FAST).fit(X)
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("before", [1, 2])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_n_threads_is_used_for_training_and_transform(X, before, n_threads, fit_threads):
    torch.set_num_threads(before)
    with fit_threads() as seen:
        sae = SparseAutoencoderTransformer(n_threads=n_threads, verbose=1, **FAST).fit(X)
    assert seen["fit"] == n_threads

    encode = sae.module_.encode

    def recording_encode(x):
        seen["transform"] = torch.get_num_threads()
        return encode(x)

    sae.module_.encode = recording_encode
    sae.transform(X)
    assert seen["transform"] == n_threads
    assert torch.get_num_threads() == before


def test_small_problems_train_on_one_thread_by_default(X, fit_threads):
    """n_threads=None: a 7-4-7 model on 50 rows is far below the small-step limit."""
    torch.set_num_threads(2)
    with fit_threads() as seen:
        SparseAutoencoderTransformer(verbose=1, **FAST).fit(X)
    assert seen["fit"] == 1
    assert torch.get_num_threads() == 2
