"""scipy.sparse input: the same model as dense input, without the dense matrix.

Sparse training rows are densified one batch at a time (``SparseRows``), so a fit
on a sparse matrix must give the model a fit on its dense copy gives (up to the
rounding of the column mean, which scipy and torch sum in different orders), and
must never allocate the dense matrix.
"""

import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from skl_sparse_ae import SparseAutoencoderTransformer

FAST = {"n_components": 12, "max_iter": 4, "random_state": 0}


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    return load_digits().data / 16.0  # about half of the entries are 0


def _fit(sae, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return sae.fit(X)


CONFIGS = {
    "defaults": {},
    "mse": {"loss": "mse"},  # a linear output: the standardisation is read sparsely
    "topk": {"sparsity": "topk", "k": 3},
    "early_stopping": {"early_stopping": True},  # a sparse validation split
    "lbfgs": {"solver": "lbfgs", "sparsity_weight": 3.0},  # densified: full batch
    "stacked": {"hidden_layer_sizes": (20,), "activation": "relu", "sparsity": "l1"},
    "batchtopk": {"sparsity": "batchtopk", "k": 3},
    "jumprelu": {"sparsity": "jumprelu", "activation": "relu"},
    "matryoshka": {"sparsity": "topk", "k": 3, "matryoshka_widths": (4, 8)},
}


@pytest.mark.parametrize("name", CONFIGS)
def test_fit_on_sparse_gives_the_dense_model(digits, name):
    # in float64, so that float32's rounding of the two standardisations (sparse
    # sums in float64, dense ones in the training dtype) cannot hide a difference
    params = {**FAST, "training_dtype": "float64", **CONFIGS[name]}
    dense = _fit(SparseAutoencoderTransformer(**params), digits)
    sparse = _fit(SparseAutoencoderTransformer(**params), sp.csr_matrix(digits))
    np.testing.assert_allclose(sparse.loss_curve_, dense.loss_curve_, rtol=1e-10)
    np.testing.assert_allclose(sparse.components_, dense.components_, rtol=1e-8, atol=1e-10)
    assert sparse.loss_ == dense.loss_
    np.testing.assert_allclose(sparse.reconstruction_err_, dense.reconstruction_err_, rtol=1e-10)


def test_fit_on_sparse_gives_the_dense_model_in_float32_training(digits):
    """The defaults' float32 training (a sigmoid output: no standardisation to round
    differently), sparse against dense: measured identical."""
    dense = _fit(SparseAutoencoderTransformer(**FAST), digits)
    sparse = _fit(SparseAutoencoderTransformer(**FAST), sp.csr_matrix(digits))
    np.testing.assert_allclose(sparse.loss_curve_, dense.loss_curve_, rtol=1e-6)
    np.testing.assert_allclose(sparse.components_, dense.components_, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "container", [sp.csr_matrix, sp.csc_matrix, sp.csr_array, sp.csc_array, sp.coo_matrix]
)
def test_inference_on_sparse_equals_dense(digits, container):
    sae = _fit(SparseAutoencoderTransformer(**FAST), digits)
    X = container(digits)
    np.testing.assert_array_equal(sae.transform(X), sae.transform(digits))
    np.testing.assert_array_equal(sae.score_samples(X), sae.score_samples(digits))
    assert sae.score(X) == sae.score(digits)


def test_inverse_transform_accepts_sparse_codes(digits):
    sae = _fit(SparseAutoencoderTransformer(sparsity="topk", k=2, **FAST), digits)
    codes = sae.transform(digits)
    assert (codes == 0).mean() > 0.5  # TopK codes are mostly zeros
    np.testing.assert_array_equal(
        sae.inverse_transform(sp.csr_matrix(codes)), sae.inverse_transform(codes)
    )


def test_partial_fit_on_sparse_blocks(digits):
    dense = SparseAutoencoderTransformer(**FAST)
    sparse = SparseAutoencoderTransformer(**FAST)
    for block in np.array_split(digits, 3):
        dense.partial_fit(block)
        sparse.partial_fit(sp.csr_matrix(block))
    np.testing.assert_allclose(sparse.components_, dense.components_, rtol=1e-8, atol=1e-10)


def test_float32_sparse_stays_float32(digits):
    X = sp.csr_matrix(digits.astype(np.float32))
    sae = _fit(SparseAutoencoderTransformer(**FAST), X)
    assert sae.transform(X).dtype == np.float32
    assert sae.components_.dtype == np.float32


def test_bce_range_check_sees_the_implicit_zeros():
    """``loss="auto"`` reads min and max over every entry, stored or not."""
    X = sp.csr_matrix(np.array([[0.0, 0.5, 0.0], [0.2, 0.0, 0.9], [0.0, 0.0, 0.3]]))
    assert _fit(SparseAutoencoderTransformer(n_components=2, max_iter=2), X).loss_ == "bce"
    X_neg = X.copy()
    X_neg.data[0] = -0.5
    assert _fit(SparseAutoencoderTransformer(n_components=2, max_iter=2), X_neg).loss_ == "mse"
    with pytest.raises(ValueError, match=r"loss='bce'.*X in \[0, 1\]"):
        SparseAutoencoderTransformer(n_components=2, loss="bce").fit(X_neg)


def _peak_numpy_bytes(fn):
    """Peak bytes numpy (and Python) allocated during ``fn()`` (tracemalloc)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_sparse_fit_and_transform_never_densify_the_matrix():
    """An 8000 x 4000 CSR at 0.2 % density: 256 MB dense, 0.8 MB stored.

    numpy's allocations (``toarray`` included) are traced by tracemalloc. Chunks
    of inference hold 2**21 values (16.8 MB in float64), and two may be alive at
    once (the next is built while the loop still holds the last). Measured peaks:
    fit 33.7 MB, transform 34.4 MB; densifying the whole matrix instead (``as_rows``
    on ``X.toarray()``) peaks at 256 MB. The 12-unit code gets a hidden layer of 256
    ("auto"), whose start reads at most 2**21 entries densified (HIDDEN_INIT_VALUES;
    its 2048 rows, 65.8 MB, failed this test); the peaks above are with it.
    """
    rng = np.random.default_rng(0)
    X = sp.random(8000, 4000, density=0.002, format="csr", random_state=rng)
    dense_bytes = X.shape[0] * X.shape[1] * 8
    sae = SparseAutoencoderTransformer(n_components=12, max_iter=1, batch_size=200)
    _fit(sae, X[:300])  # first use imports modules lazily: keep that out of the peak
    fit_peak = _peak_numpy_bytes(lambda: _fit(sae, X))
    transform_peak = _peak_numpy_bytes(lambda: sae.transform(X))
    assert fit_peak < dense_bytes / 5, fit_peak
    assert transform_peak < dense_bytes / 5, transform_peak


def test_sparse_input_example(capsys):
    """``examples/plot_sparse_input.py`` runs, and its printed figures hold.

    Measured (seed 0): one-hot 0.944, TruncatedSVD(64) 0.931, ours 0.862, mean
    activation 0.060 against 0.05, codes of CSR and dense input identical.
    """
    import re
    import runpy
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "plot_sparse_input.py"
    runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    accuracy = dict(re.findall(r"^(\S+)\(64\)\s+([\d.]+)", out, flags=re.M))
    assert float(accuracy["TruncatedSVD"]) > 0.9
    assert float(accuracy["SparseAutoencoderTransformer"]) > 0.8
    assert re.search(r"transform\(dense\)\|: 0$", out, flags=re.M), out
    assert "csr_matrix" in out
