"""Safe persistence: skops stores the estimator as arrays and trusts only this package."""

import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from skl_sparse_ae import SparseAutoencoderTransformer

sio = pytest.importorskip("skops.io", reason="skops is in the test extra")

CONFIGS = {
    "defaults": {},
    "topk": {"sparsity": "topk", "k": 3},
    "batchtopk matryoshka": {"sparsity": "batchtopk", "k": 3, "matryoshka_widths": (4,)},
    "jumprelu": {"sparsity": "jumprelu"},
    "stacked l1 tied": {
        "activation": "relu",
        "sparsity": "l1",
        "hidden_layer_sizes": (12,),
        "tied_weights": True,
    },
}


@pytest.fixture(scope="module")
def X(digits_raw):
    return digits_raw[0][:200] / 16.0


def _fit(X, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SparseAutoencoderTransformer(8, max_iter=3, random_state=0, **params).fit(X)


@pytest.mark.parametrize("name", CONFIGS)
def test_skops_round_trip_in_a_fresh_process_trusts_only_this_package(X, name, tmp_path):
    model = _fit(X, **CONFIGS[name])
    path, codes = tmp_path / "model.skops", tmp_path / "codes.npy"
    sio.dump(model, path)
    assert sio.get_untrusted_types(file=path) == [
        "skl_sparse_ae._estimator.SparseAutoencoderTransformer"
    ]
    np.save(tmp_path / "X.npy", X)
    script = f"""
        import numpy as np, skops.io as sio
        path = {str(path)!r}
        model = sio.load(path, trusted=sio.get_untrusted_types(file=path))
        np.save({str(codes)!r}, model.transform(np.load({str(tmp_path / "X.npy")!r})))
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    # Another process may run other kernels (thread count, MKL's code path): measured
    # with the child under ATEN_CPU_CAPABILITY=default, MKL_ENABLE_INSTRUCTIONS=AVX2 or
    # MKL_CBWR=COMPATIBLE, 5.1e-14 at most (codes up to 200). A load that rebuilds the
    # network in torch's default float32 moves the codes by 2.5e-7 to 3.4e-4.
    np.testing.assert_allclose(np.load(codes), model.transform(X), rtol=1e-12, atol=1e-12)


def test_a_skops_loaded_model_keeps_training_as_the_original(X, tmp_path):
    model = _fit(X)
    sio.dump(model, tmp_path / "m.skops")
    loaded = sio.load(
        tmp_path / "m.skops", trusted=sio.get_untrusted_types(file=tmp_path / "m.skops")
    )
    model.partial_fit(X)
    loaded.partial_fit(X)
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    assert loaded.loss_curve_ == model.loss_curve_


def test_pickles_hold_arrays_not_tensors(X):
    """What __getstate__ gives (pickle, joblib and skops use it): no torch object."""
    import torch

    state = _fit(X).__getstate__()

    def walk(obj):
        assert not isinstance(obj, (torch.Tensor, torch.nn.Module, torch.Generator)), type(obj)
        if isinstance(obj, dict):
            for value in obj.values():
                walk(value)
        elif isinstance(obj, (list, tuple)):
            for value in obj:
                walk(value)

    walk(state)
    loaded = pickle.loads(pickle.dumps(_fit(X)))
    np.testing.assert_array_equal(loaded.transform(X), _fit(X).transform(X))
