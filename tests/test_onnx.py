"""ONNX export (issue 20): the exported graph computes ``transform``, in onnxruntime.

Every mechanism and shape is fitted briefly on digits (a few epochs: the weights
need not be good, only fitted), exported with skl2onnx and run in onnxruntime, and
its output is compared with ``transform`` in the same process.

The models are fitted on float64 digits, so their ``transform`` computes in float64;
a float32 graph computes in float32. For TopK, BatchTopK and JumpReLU a
pre-activation within float32 rounding of the k-th largest one (or of the
threshold) could then be kept by one and dropped by the other: on these rows, with
these seeds, none is (the differences measured are below 3e-6, where a flipped unit
would differ by a whole activation). A float64 graph computes what ``transform``
computes, and is compared much more tightly.
"""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

skl2onnx = pytest.importorskip("skl2onnx")
pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import skl_sparse_ae.onnx as sae_onnx  # noqa: E402
from skl_sparse_ae import FitQualityWarning, SparseAutoencoderTransformer  # noqa: E402
from skl_sparse_ae._sparsity import SPARSITY, Sparsity  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::skl_sparse_ae.FitQualityWarning"),
]

#: float32 graph against ``transform(X32)`` (the issue's tolerance).
F32 = {"atol": 1e-5, "rtol": 1e-5}
#: float64 graph against ``transform(X64)``: the same arithmetic, in another order.
F64 = {"atol": 1e-12, "rtol": 1e-10}

#: Each mechanism, and each shape a transform can take.
CASES = {
    "kl-sigmoid": {"sparsity": "kl"},
    "kl-tanh": {"sparsity": "kl", "activation": "tanh"},
    "l1-relu": {"sparsity": "l1", "activation": "relu"},
    "l1-sigmoid": {"sparsity": "l1"},
    "none-sigmoid": {"sparsity": None},
    "none-tanh": {"sparsity": None, "activation": "tanh"},
    "topk": {"sparsity": "topk", "k": 4},
    # k near n_components: some kept pre-activations are negative, and ReLU'd to 0
    "topk-wide": {"sparsity": "topk", "k": 16},
    "batchtopk": {"sparsity": "batchtopk", "k": 4},
    "jumprelu": {"sparsity": "jumprelu"},
    "matryoshka-topk": {"sparsity": "topk", "k": 4, "matryoshka_widths": (8, 16)},
    "matryoshka-jumprelu": {"sparsity": "jumprelu", "matryoshka_widths": (8,)},
    "stacked-kl": {"sparsity": "kl", "hidden_layer_sizes": (32,)},
    "stacked-l1-relu": {"sparsity": "l1", "activation": "relu", "hidden_layer_sizes": (32,)},
    "stacked-topk-tanh": {
        "sparsity": "topk",
        "k": 4,
        "activation": "tanh",
        "hidden_layer_sizes": (32,),
    },
    "stacked-batchtopk": {"sparsity": "batchtopk", "k": 4, "hidden_layer_sizes": (32,)},
    "tied-kl": {"sparsity": "kl", "tied_weights": True},
    "tied-stacked-jumprelu": {
        "sparsity": "jumprelu",
        "tied_weights": True,
        "hidden_layer_sizes": (32,),
    },
    "code-scaling-none": {"sparsity": "kl", "code_scaling": None},
    "code-scaling-mean": {"sparsity": "l1", "activation": "relu", "code_scaling": "mean"},
    "code-scaling-rms": {"sparsity": "topk", "k": 4, "code_scaling": "rms"},
    # a sigmoid output: no standardisation; TopK's pre-encoder bias is its own parameter
    "bce-kl": {"sparsity": "kl", "loss": "bce"},
    "bce-topk": {"sparsity": "topk", "k": 4, "loss": "bce"},
    "bce-jumprelu": {"sparsity": "jumprelu", "loss": "bce", "code_scaling": "mean"},
}

#: One per mechanism, for the pipeline criterion of the issue.
MECHANISMS = {
    "kl": {"sparsity": "kl"},
    "l1": {"sparsity": "l1"},
    "none": {"sparsity": None},
    "topk": {"sparsity": "topk", "k": 4},
    "batchtopk": {"sparsity": "batchtopk", "k": 4},
    "jumprelu": {"sparsity": "jumprelu"},
    "matryoshka-topk": {"sparsity": "topk", "k": 4, "matryoshka_widths": (8, 16)},
}


@pytest.fixture(scope="module")
def digits(digits_raw):
    """400 digits for fitting (pixel values 0-16, float64) and all 1797 for checking."""
    X, y = digits_raw
    return X[:400], y[:400], X


def _fit(params, X):
    sae = SparseAutoencoderTransformer(n_components=24, max_iter=8, random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", FitQualityWarning)
        return sae.fit(X)


def _run(model, X, options=None):
    """Export ``model`` with ``X``'s dtype and run it on ``X`` in onnxruntime."""
    onx = skl2onnx.to_onnx(model, X[:1], options=options)
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X})


@pytest.mark.parametrize("params", list(CASES.values()), ids=list(CASES))
def test_onnx_graph_computes_transform(digits, params):
    X_fit, _, X = digits
    data = X_fit / 16.0 if params.get("loss") == "bce" else X_fit
    X = X / 16.0 if params.get("loss") == "bce" else X
    sae = _fit(params, data)
    X32 = X.astype(np.float32)
    expected32 = sae.transform(X32)
    (got32,) = _run(sae, X32)
    assert got32.dtype == np.float32 and got32.shape == (X.shape[0], 24)
    np.testing.assert_allclose(got32, expected32, **F32)
    (got64,) = _run(sae, X)
    assert got64.dtype == np.float64
    np.testing.assert_allclose(got64, sae.transform(X), **F64)

    # what the comparison exercised: codes that are neither empty nor constant, and
    # for the mechanisms that zero units, zeros that the graph had to place
    assert np.ptp(expected32, axis=0).max() > 0.1
    if params.get("sparsity") in ("topk", "batchtopk", "jumprelu"):
        active = expected32 > 0
        assert 0.02 < active.mean() < 0.95
        np.testing.assert_array_equal(got32 > 0, active)
        if params["sparsity"] == "topk":
            assert active.sum(axis=1).max() <= params["k"]


def test_onnx_graph_of_a_float32_fit(digits):
    """A model fitted on float32 data computes in float32: the graph is as close."""
    X_fit, _, X = digits
    for params in (CASES["kl-sigmoid"], CASES["topk"], CASES["jumprelu"]):
        sae = _fit(params, X_fit.astype(np.float32))
        X32 = X.astype(np.float32)
        (got,) = _run(sae, X32)
        np.testing.assert_allclose(got, sae.transform(X32), **F32)


@pytest.mark.parametrize("params", list(MECHANISMS.values()), ids=list(MECHANISMS))
def test_scaler_autoencoder_logistic_pipeline_predicts_the_same(digits, params):
    """Issue 20's criterion: the exported pipeline predicts what ``pipe.predict`` does."""
    X_fit, y_fit, X = digits
    sae = SparseAutoencoderTransformer(n_components=32, max_iter=8, random_state=0, **params)
    pipe = make_pipeline(StandardScaler(), sae, LogisticRegression(max_iter=300))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", FitQualityWarning)
        pipe.fit(X_fit, y_fit)
    options = {LogisticRegression: {"zipmap": False}}  # probabilities as an array
    labels, proba = _run(pipe, X.astype(np.float32), options)
    np.testing.assert_array_equal(labels, pipe.predict(X))
    np.testing.assert_allclose(proba, pipe.predict_proba(X), atol=1e-5, rtol=0)
    assert len(np.unique(labels)) == 10  # a classifier that learnt something


def test_register_onnx_converter_is_idempotent(digits):
    from skl2onnx._supported_operators import sklearn_operator_name_map

    X_fit, _, X = digits
    sae = _fit(CASES["topk"], X_fit)
    X32 = X[:50].astype(np.float32)
    (before,) = _run(sae, X32)
    sae_onnx.register_onnx_converter()
    sae_onnx.register_onnx_converter()
    assert sklearn_operator_name_map[SparseAutoencoderTransformer] == sae_onnx.ALIAS
    (after,) = _run(sae, X32)
    np.testing.assert_array_equal(after, before)  # the same graph, run twice here


def test_unfitted_estimator_is_refused():
    with pytest.raises(NotFittedError):
        skl2onnx.to_onnx(SparseAutoencoderTransformer(), np.zeros((1, 4), dtype=np.float32))


def test_batchtopk_threshold_not_yet_set(digits):
    """A BatchTopK threshold that training never set (negative) keeps ReLU(h), as
    ``transform`` does: ``ReLU(h) * 1[h > θ]``, not ``h * 1[h > θ]``."""
    X_fit, _, X = digits
    sae = _fit(CASES["batchtopk"], X_fit)
    with torch.no_grad():
        sae.module_.threshold.fill_(-1.0)
    X32 = X.astype(np.float32)
    expected = sae.transform(X32)
    with torch.no_grad():
        pre_code = sae.module_.encode(torch.as_tensor(X))[0].numpy()
    assert ((pre_code > -1) & (pre_code < 0)).mean() > 0.1  # what the ReLU must zero
    (got,) = _run(sae, X32)
    np.testing.assert_allclose(got, expected, **F32)


def test_batchtopk_in_training_mode_is_refused(digits):
    X_fit, _, _ = digits
    sae = _fit(CASES["batchtopk"], X_fit)
    sae.module_.train()  # transform's code would now depend on the whole batch
    with pytest.raises(NotImplementedError, match="training mode"):
        _run(sae, X_fit[:1].astype(np.float32))


def test_unknown_code_function_and_activation_are_refused(digits, monkeypatch):
    X_fit, _, _ = digits
    X32 = X_fit[:1].astype(np.float32)
    sae = _fit(CASES["topk"], X_fit)
    custom = Sparsity("custom", code=lambda pre_code, module: torch.relu(pre_code) ** 2)
    monkeypatch.setitem(SPARSITY, "custom", custom)
    monkeypatch.setattr(sae.module_, "sparsity", "custom")
    with pytest.raises(NotImplementedError, match="sparsity='custom'"):
        _run(sae, X32)

    plain = _fit(CASES["kl-sigmoid"], X_fit)
    monkeypatch.setattr(plain.module_, "_act", torch.nn.functional.gelu)
    with pytest.raises(NotImplementedError, match="activation='sigmoid' has no ONNX"):
        _run(plain, X32)


def test_parameters_changed_after_fit_do_not_change_the_graph(digits):
    """The converter reads the fitted model, as ``transform`` does, not the parameters."""
    X_fit, _, X = digits
    sae = _fit(CASES["l1-relu"], X_fit)
    sae.set_params(n_components=7, sparsity="topk", k=2, code_scaling="rms")
    X32 = X[:100].astype(np.float32)
    (got,) = _run(sae, X32)
    assert got.shape == (100, 24)
    np.testing.assert_allclose(got, sae.transform(X32), **F32)


def test_the_package_imports_without_the_onnx_extra():
    """``skl_sparse_ae`` imports without skl2onnx and onnx; ``skl_sparse_ae.onnx`` says
    which extra to install."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["skl2onnx"] = None  # as if not installed
        sys.modules["onnx"] = None
        import skl_sparse_ae
        try:
            import skl_sparse_ae.onnx
        except ImportError as exc:
            print("ImportError:", exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "ImportError: skl_sparse_ae.onnx needs skl2onnx and onnx" in done.stdout
    assert 'pip install -e ".[onnx]"' in done.stdout
