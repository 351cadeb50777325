"""scikit-learn's estimator checks, on several configurations, with no expected failures."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skl_sparse_ae import SparseAutoencoderTransformer

# Small and quick: the checks fit dozens of times on tiny data sets.
_FAST = {"n_components": 4, "max_iter": 20, "random_state": 0}

CONFIGURATIONS = [
    SparseAutoencoderTransformer(**_FAST),  # the defaults: sigmoid code, KL
    SparseAutoencoderTransformer(activation="relu", sparsity="l1", **_FAST),
    SparseAutoencoderTransformer(activation="tanh", **_FAST),
    SparseAutoencoderTransformer(sparsity=None, **_FAST),
    SparseAutoencoderTransformer(
        hidden_layer_sizes=(6,), activation="relu", sparsity="l1", **_FAST
    ),
    SparseAutoencoderTransformer(sparsity="topk", k=1, **_FAST),
    SparseAutoencoderTransformer(sparsity="batchtopk", k=1, **_FAST),
    SparseAutoencoderTransformer(sparsity="jumprelu", **_FAST),
    # (a check refits with n_components=1: widths and k must allow it)
    SparseAutoencoderTransformer(sparsity="topk", k=1, matryoshka_widths=(1,), **_FAST),
    SparseAutoencoderTransformer(sparsity="l1", activation="relu", matryoshka_widths=(1,), **_FAST),
    SparseAutoencoderTransformer(noise=0.1, tied_weights=True, **_FAST),
    SparseAutoencoderTransformer(solver="lbfgs", **_FAST),
    SparseAutoencoderTransformer(early_stopping=True, **_FAST),
]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(CONFIGURATIONS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
