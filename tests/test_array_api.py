"""Torch tensors in and out, and scikit-learn's array API dispatch (issue 20).

Without dispatch a tensor is data like a numpy array of its dtype (the results are
numpy); with ``array_api_dispatch=True`` the results are arrays of the input's
namespace, on its device, and a torch tensor never goes through the host.
"""

import os
import pickle

import numpy as np
import pytest
import scipy
import sklearn
import torch
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import check_array_api_input

import skl_sparse_ae._estimator as estimator_module
from skl_sparse_ae import SparseAutoencoderTransformer

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::skl_sparse_ae.FitQualityWarning"),
]

FAST = {"n_components": 5, "max_iter": 4, "random_state": 0, "device": "cpu"}
HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")


def dispatch():
    return sklearn.config_context(array_api_dispatch=True)


@pytest.fixture
def X32():
    return np.random.RandomState(0).rand(60, 8).astype(np.float32)


def _fitted(X, **params):
    return SparseAutoencoderTransformer(**{**FAST, **params}).fit(X)


def _outputs(model, X):
    codes = model.transform(X)
    return codes, model.inverse_transform(codes), model.score_samples(X)


def test_scipy_reads_array_api_support_in_the_test_session():
    """conftest.py sets SCIPY_ARRAY_API before scipy is first imported (else the
    array-API estimator checks of test_common skip themselves)."""
    assert os.environ.get("SCIPY_ARRAY_API") == "1"
    from scipy._lib import _array_api

    assert _array_api.SCIPY_ARRAY_API, f"scipy {scipy.__version__} was imported first"


def test_tags_declare_array_api_support():
    assert get_tags(SparseAutoencoderTransformer()).array_api_support is True


# ------------------------------------------------------- without dispatch: numpy out
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_tensor_trains_and_transforms_in_its_dtype(X32, dtype):
    X = X32.astype(dtype)
    from_tensor = _fitted(torch.from_numpy(X))
    from_numpy = _fitted(X)
    assert from_tensor.components_.dtype == dtype
    assert (
        next(from_tensor.module_.parameters()).dtype == next(from_numpy.module_.parameters()).dtype
    )
    codes = from_tensor.transform(torch.from_numpy(X))
    assert isinstance(codes, np.ndarray) and codes.dtype == dtype
    np.testing.assert_array_equal(from_tensor.components_, from_numpy.components_)
    np.testing.assert_array_equal(codes, from_numpy.transform(X))


def test_a_tensor_that_requires_grad_is_read_detached(X32):
    """Every method takes it, and gives what the numpy float32 data give."""
    X = torch.from_numpy(X32.copy()).requires_grad_()
    model = _fitted(X)
    model.partial_fit(X)
    reference = _fitted(X32).partial_fit(X32)
    np.testing.assert_array_equal(model.components_, reference.components_)
    codes = model.transform(X)
    assert codes.dtype == np.float32
    np.testing.assert_array_equal(codes, reference.transform(X32))
    decoded = model.inverse_transform(torch.from_numpy(codes).requires_grad_())
    np.testing.assert_array_equal(decoded, reference.inverse_transform(codes))
    np.testing.assert_array_equal(model.score_samples(X), reference.score_samples(X32))
    assert model.score(X) == reference.score(X32)
    assert X.grad is None and X.requires_grad  # the caller's tensor is untouched


@needs_cuda
def test_a_cuda_tensor_is_read_on_the_host_without_dispatch(X32):
    X = torch.from_numpy(X32).to("cuda").requires_grad_()
    model = _fitted(X, device="cuda")
    codes = model.transform(X)
    assert isinstance(codes, np.ndarray) and codes.dtype == np.float32
    np.testing.assert_allclose(codes, model.transform(X32), rtol=0, atol=0)


# ----------------------------------------------------------- with dispatch(): torch
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dispatch_torch_in_torch_out(X32, dtype):
    X = torch.from_numpy(X32).to(dtype)
    reference = _fitted(X.numpy())
    with dispatch():
        model = _fitted(X)
        codes, decoded, scores = _outputs(model, X)
        score = model.score(X)
    for out, dtype_out in ((codes, dtype), (decoded, dtype), (scores, torch.float64)):
        assert isinstance(out, torch.Tensor)
        assert out.dtype == dtype_out and out.device == X.device
        assert not out.requires_grad and not out.is_inference()  # a tensor like any
    assert isinstance(model.components_, torch.Tensor) and model.components_.dtype == dtype
    assert isinstance(model.code_scale_, torch.Tensor)
    expected = _outputs(reference, X.numpy())
    for out, ref in zip((codes, decoded, scores), expected):
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-6, atol=1e-6)
    assert score == pytest.approx(reference.score(X.numpy()), abs=1e-12)


def test_dispatch_feeds_tensors_to_the_module_without_numpy(X32, monkeypatch):
    """No trip through the host: the numpy <-> tensor helpers are never called."""
    X = torch.from_numpy(X32)
    with dispatch():
        model = _fitted(X)

    def host_trip(*args, **kwargs):
        raise AssertionError("went through numpy")

    monkeypatch.setattr(estimator_module, "to_tensor", host_trip)
    monkeypatch.setattr(estimator_module, "to_numpy", host_trip)
    with dispatch():
        _outputs(model, X)
        model.score(X)


def test_dispatch_transform_checks_the_namespace_of_fit(X32):
    with dispatch():
        model = _fitted(torch.from_numpy(X32))
        with pytest.raises(ValueError, match="must use the same namespace"):
            model.transform(X32)
    assert isinstance(model.transform(X32), np.ndarray)  # without dispatch: numpy


@needs_cuda
@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_dispatch_a_cuda_tensor_stays_on_cuda(X32, device):
    """Results on the data's device, whether the model trains there or on the CPU."""
    X = torch.from_numpy(X32).to("cuda")
    with dispatch():
        model = _fitted(X, device=device)
        outputs = _outputs(model, X)
    assert model.components_.device == X.device
    for out in outputs:
        assert isinstance(out, torch.Tensor) and out.device == X.device
    reference = _fitted(X32, device=device)
    np.testing.assert_allclose(
        outputs[0].cpu().numpy(), reference.transform(X32), rtol=1e-5, atol=1e-6
    )


def test_dispatch_fitted_tensors_survive_pickle_and_skops(X32):
    sio = pytest.importorskip("skops.io")
    X = torch.from_numpy(X32)
    with dispatch():
        model = _fitted(X)
        codes = model.transform(X)
    blob = sio.dumps(model)
    copies = [
        pickle.loads(pickle.dumps(model)),
        sio.loads(blob, trusted=sio.get_untrusted_types(data=blob)),
    ]
    for copy in copies:
        assert isinstance(copy.components_, torch.Tensor)
        assert torch.equal(copy.components_, model.components_)
        with dispatch():
            assert torch.equal(copy.transform(X), codes)


# ---------------------------------------------------- with dispatch(): other namespaces
@pytest.mark.parametrize("device_name, dtype", [("CPU_DEVICE", "float64"), ("device1", "float32")])
def test_dispatch_array_api_strict_in_array_api_strict_out(X32, device_name, dtype):
    xp = pytest.importorskip("array_api_strict")
    device = xp.Device(device_name)
    X_np = X32.astype(dtype)
    X = xp.asarray(X_np, device=device)
    reference = _fitted(X_np)
    with dispatch():
        model = _fitted(X)
        outputs = _outputs(model, X)
    assert isinstance(model.components_, type(X)) and model.components_.device == device
    expected = _outputs(reference, X_np)
    for out, ref in zip(outputs, expected):
        assert isinstance(out, type(X)) and out.device == device
        assert out.dtype == getattr(xp, str(ref.dtype))
        with dispatch():
            out_np = np.asarray(xp.asarray(out, device=xp.Device("CPU_DEVICE")))
        np.testing.assert_allclose(out_np, ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "namespace, device_name", [("torch", "cpu"), ("array_api_strict", "CPU_DEVICE")]
)
def test_sklearn_array_api_check_with_values(namespace, device_name):
    """scikit-learn's check, comparing every fitted array and output with numpy's."""
    check_array_api_input(
        "SparseAutoencoderTransformer",
        SparseAutoencoderTransformer(n_components=4, max_iter=5, random_state=0),
        array_namespace=namespace,
        device_name=device_name,
        dtype_name="float64",
        check_values=True,
    )
