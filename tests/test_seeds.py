"""The classic sparse-autoencoder set-ups ("seed systems"), each one estimator call.

Every threshold below comes from a measurement on this code base, noted next to
it, with a safety margin. The figures can be reproduced with the same calls on
the same data (``load_digits``; the 600-sample subsample is the ``digits01``
fixture of ``conftest.py``).
"""

import numpy as np
import pytest
from classic import classic
from scipy.special import xlogy
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from skl_sparse_ae import SparseAutoencoderTransformer

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _bce(X, P):
    """Binary cross-entropy summed over features, averaged over samples."""
    P = np.clip(P, 1e-7, 1 - 1e-7)
    return float(-(xlogy(X, P) + xlogy(1 - X, 1 - P)).sum(axis=1).mean())


def test_kl_sparsity_reaches_target_mean_activation(digits01):
    """UFLDL recipe (sigmoid code and output, KL, weight decay, L-BFGS) hits rho."""
    rho = 0.05
    sae = classic(
        n_components=25,
        output_activation="sigmoid",
        sparsity="kl",
        sparsity_target=rho,
        sparsity_weight=3.0,
        weight_decay=1e-4,
        solver="lbfgs",
        max_iter=200,
        random_state=0,
    ).fit(digits01)
    # Measured on all 1797 digits/16, random_state 0..2: mean of rho_hat
    # 0.0548-0.0551, every unit within [0.0534, 0.0565], FVU 0.24.
    rho_hat = sae.mean_activation_
    assert abs(rho_hat.mean() - rho) < 0.015
    assert np.all(np.abs(rho_hat - rho) < 0.03)
    # Not achieved by collapsing the model: it still reconstructs.
    assert sae.fraction_variance_unexplained_ < 0.5


def test_kl_sparsity_is_what_moves_the_mean_activation(digits01):
    """Control for the test above: without the KL term rho_hat is far from rho."""
    sae = classic(
        n_components=25,
        output_activation="sigmoid",
        sparsity=None,
        weight_decay=1e-4,
        solver="lbfgs",
        max_iter=50,
        random_state=0,
    ).fit(digits01)
    assert sae.mean_activation_.mean() > 0.15


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_one_hot_vectors_come_back(solver):
    """4 one-hot vectors through a 100-unit KL code decode to the right argmax."""
    X = np.tile(np.eye(4), (25, 1))
    sae = classic(
        n_components=100,
        sparsity="kl",
        sparsity_target=0.1,
        sparsity_weight=3.0,
        weight_decay=1e-4,
        solver=solver,
        max_iter=200,
        random_state=0,
    ).fit(X)
    reconstruction = sae.inverse_transform(sae.transform(X))
    np.testing.assert_array_equal(reconstruction.argmax(axis=1), X.argmax(axis=1))
    # Measured (random_state 0..4): max |x_hat - x| about 0.1 (adam, 200 epochs),
    # below 0.01 (lbfgs).
    assert np.abs(reconstruction - X).max() < 0.35


def test_l1_on_tanh_code_gives_many_near_zero_codes(digits01):
    """An L1 penalty on a tanh code (sigmoid output) pushes codes to zero."""

    def near_zero_fraction(weight):
        sae = classic(
            n_components=64,
            activation="tanh",
            output_activation="sigmoid",
            sparsity="l1",
            sparsity_weight=weight,
            max_iter=50,
            random_state=0,
        )
        code = sae.fit_transform(digits01)
        return float(np.mean(np.abs(code) < 0.05)), sae.fraction_variance_unexplained_

    plain, _ = near_zero_fraction(0.0)
    penalised, fvu = near_zero_fraction(0.1)
    # Measured (random_state 0..2): 0.061 without, 0.31-0.33 with, FVU 0.30.
    assert penalised > 0.2
    assert penalised > 3 * plain
    assert fvu < 0.5


def test_relu_stack_with_bce_trains(digits01):
    """A 64-128-64-28 ReLU stack with BCE on [0, 1] data learns to reconstruct."""
    sae = classic(
        n_components=28,
        hidden_layer_sizes=(128, 64),
        activation="relu",
        loss="bce",
        sparsity=None,
        max_iter=50,
        random_state=0,
    ).fit(digits01)
    assert sae.module_.sizes == (64, 128, 64, 28)
    assert sae.module_.output_activation == "sigmoid"
    # Measured (random_state 0..3): loss_curve_ 27.1 -> 16.4-16.6.
    assert sae.loss_curve_[-1] < 0.75 * sae.loss_curve_[0]
    # BCE has a floor above 0 on grey levels (the entropy of X itself): compare
    # the excess over that floor with the mean predictor's. Measured: 0.20-0.21.
    X = digits01
    floor = _bce(X, X)
    mean_predictor = _bce(X, np.broadcast_to(X.mean(axis=0), X.shape))
    model = _bce(X, sae.inverse_transform(sae.transform(X)))
    assert (model - floor) / (mean_predictor - floor) < 0.4
    # Measured FVU 0.15-0.16.
    assert sae.fraction_variance_unexplained_ < 0.3


def test_l1_makes_relu_code_sparser(digits01):
    """An L1 penalty on a ReLU code at least halves its mean activation."""

    def fit(weight):
        return classic(
            n_components=64,
            activation="relu",
            sparsity="l1",
            sparsity_weight=weight,
            max_iter=50,
            random_state=0,
        ).fit(digits01)

    plain, penalised = fit(0.0), fit(1.0)
    # Measured (random_state 0..2): mean activation 0.53 without, 0.12 with
    # (ratio 4.4); mean L0 33 -> 17; FVU 0.086 -> 0.23.
    assert penalised.mean_activation_.mean() < 0.5 * plain.mean_activation_.mean()
    assert penalised.mean_l0_ < plain.mean_l0_
    assert penalised.fraction_variance_unexplained_ < 0.5


def test_defaults_in_pipeline_at_least_as_good_as_pca(digits_raw):
    """The default estimator, as a drop-in for PCA() before a linear classifier."""
    X, y = digits_raw
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )

    def accuracy(reducer):
        pipe = Pipeline([("reduce", reducer), ("clf", LogisticRegression(max_iter=2000))])
        return pipe.fit(X_train, y_train).score(X_test, y_test)

    # Measured on raw 0-16 pixels: PCA() 0.9644, defaults 0.9867 (0.1.0 defaults: 0.9756).
    ours = accuracy(SparseAutoencoderTransformer(random_state=0))
    assert ours >= accuracy(PCA())
