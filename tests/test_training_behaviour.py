"""What training does, seen only through the public estimator.

AuxK revives dead TopK units, early stopping hands back the best epoch's weights,
and a denoising model learns to reconstruct the clean input. Thresholds come from
measurements on CPU (torch 2.13, scikit-learn 1.9) given in each docstring, with
"without" the figures of the same run with the mechanism broken (AuxK's weight set
to 0, the restore skipped, the corrupted input as the target): the thresholds sit
between the two.
"""

import warnings

import numpy as np
import pytest
from classic import classic
from sklearn.exceptions import ConvergenceWarning

from skl_sparse_ae import SparseAutoencoderTransformer


@pytest.fixture(scope="module")
def digits():
    """All 1797 digits, scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    return load_digits().data / 16.0


def _fit(sae, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return sae.fit(X)


# ------------------------------------------------------------------------- TopK
def test_auxk_keeps_topk_units_alive(digits):
    """256 units, k = 8, Adam at 1e-2 for 30 epochs on all digits (about 2 s).

    Measured dead units (``dead_components_.sum()``), random_state 0 / 1 / 2:
    0 / 0 / 0; without AuxK 52 / 53 / 45. The fit is as good either way (training
    FVU 0.074 against 0.079), so only the dead-unit count tells them apart.
    """
    sae = _fit(
        classic(
            256, sparsity="topk", k=8, learning_rate=1e-2, max_iter=30, random_state=0, n_threads=1
        ),
        digits,
    )
    assert sae.mean_l0_ == pytest.approx(8.0)
    assert sae.dead_components_.sum() <= 10, sae.dead_components_.sum()
    assert sae.fraction_variance_unexplained_ < 0.1


def test_topk_training_revives_units_that_died(digits):
    """256 units, k = 4, Adam at 1e-2: dead units after epoch 8 and after epoch 30.

    Early on units stop firing; AuxK brings them back. Measured (random_state
    0 / 1 / 2): dead after 8 epochs 36 / 35 / 35, after 30 epochs 1 / 0 / 2, and
    36 / 35 / 34 units dead at epoch 8 alive at epoch 30. Without AuxK: 98 / 91 /
    100 dead at epoch 8, 111 / 98 / 101 at epoch 30, 7 / 5 / 10 revived. (AuxK
    before its best-scale alpha: 105 / 102 / 111 dead at epoch 8, 8 / 9 / 14 at
    epoch 30.) About 2 s.
    """
    sae = _fit(
        classic(
            256, sparsity="topk", k=4, learning_rate=1e-2, max_iter=8, random_state=0, n_threads=1
        ),
        digits,
    )
    dead_early = sae.dead_components_.copy()
    _fit(sae.set_params(warm_start=True, max_iter=22), digits)
    dead_late = sae.dead_components_
    assert sae.n_iter_ == 30
    assert dead_early.sum() >= 20, dead_early.sum()  # the units did die
    assert dead_late.sum() <= 6, dead_late.sum()
    revived = int((dead_early & ~dead_late).sum())
    assert revived >= 25, revived


# --------------------------------------------------------------- early stopping
def test_early_stopping_returns_the_best_epochs_weights(digits):
    """A large step (0.05) makes the validation score wander, so the best epoch is
    not the last; the fitted model must be the best epoch's, not the last one's.

    The split, the initialisation and the epoch order depend only on random_state,
    so a refit stopped at the best epoch (``max_iter`` = its number) runs the same
    epochs and ends on the best epoch's weights. Measured on 200 digits, 8 units,
    20 % held out: 43 epochs, the best at 39 (validation score -0.44577, the last
    -0.45402); both fits give the same transform to the bit and a training score
    of -0.0279974 (random_state 1 and 2: 18 epochs, best at 14; 40, best at 36).
    """
    X = digits[np.random.RandomState(0).permutation(len(digits))[:200]]
    params = {
        "n_components": 8,
        "batch_size": 50,
        "random_state": 0,
        "early_stopping": True,
        "validation_fraction": 0.2,
        "learning_rate": 0.05,
        "n_iter_no_change": 3,
        "tol": 0.0,
        "max_iter": 60,
    }
    full = classic(**params).fit(X)
    scores = np.array(full.validation_scores_)
    best_epoch = int(scores.argmax()) + 1
    assert len(scores) == full.n_iter_ < 60
    assert full.best_validation_score_ == scores.max()
    assert best_epoch < full.n_iter_  # the last epochs are worse
    assert scores[-1] < full.best_validation_score_ - 1e-3

    stopped = _fit(classic(**{**params, "max_iter": best_epoch}), X)
    np.testing.assert_array_equal(stopped.validation_scores_, scores[:best_epoch])
    assert stopped.best_validation_score_ == full.best_validation_score_
    # the fully trained model is the one stopped at the best epoch
    np.testing.assert_allclose(full.transform(X), stopped.transform(X), rtol=0, atol=1e-12)
    assert full.score(X) == pytest.approx(stopped.score(X), rel=1e-12)
    assert full.reconstruction_err_ == pytest.approx(stopped.reconstruction_err_, rel=1e-12)


# -------------------------------------------------------------------- denoising
@pytest.fixture(scope="module")
def masked_digits(digits):
    """1000 training digits; 400 held-out ones, clean and with 30 % of pixels zeroed."""
    rows = np.random.RandomState(0).permutation(len(digits))
    train, test = digits[rows[:1000]], digits[rows[1000:1400]]
    corrupted = test * (np.random.RandomState(1).uniform(size=test.shape) >= 0.3)
    return train, test, corrupted


def _reconstruct(sae, X):
    return sae.inverse_transform(sae.transform(X))


def _denoising_model(train, noise):
    return _fit(
        classic(64, noise=noise, noise_type="masking", max_iter=80, random_state=0),
        train,
    )


def test_denoising_model_reconstructs_the_clean_digit_from_a_masked_one(masked_digits):
    """Masking noise 0.3 in training, 64 units, KL, 80 epochs (about 0.7 s).

    Fed the masked held-out digits, the model's output is measured against the
    clean digits and against its masked input: MSE 0.0266 and 0.0538 (ratio 0.49;
    0.0268 and 0.0541 with random_state=1), and the mean intensity of its output
    is 0.9994 of the clean digits' (masking removed 30 %). Trained to reproduce
    its corrupted input instead: 0.0652 and 0.0065 (ratio 10), intensity 0.699.
    """
    train, clean, corrupted = masked_digits
    output = _reconstruct(_denoising_model(train, 0.3), corrupted)
    to_clean = float(((output - clean) ** 2).mean())
    to_input = float(((output - corrupted) ** 2).mean())
    assert to_clean <= 0.7 * to_input, (to_clean, to_input)
    intensity = output.mean() / clean.mean()
    assert 0.93 <= intensity <= 1.07, intensity


def test_denoising_beats_a_plain_autoencoder_on_masked_digits(masked_digits):
    """The same model, trained with and without masking noise (about 1.3 s).

    Measured MSE against the clean held-out digits, from their masked version:
    0.0266 with noise 0.3, 0.0486 without (ratio 0.548; 0.549 with
    random_state=1). Trained to reproduce its corrupted input, the noisy model
    does worse than the plain one: 0.0652 (ratio 1.34).
    """
    train, clean, corrupted = masked_digits
    errors = {
        noise: float(
            ((_reconstruct(_denoising_model(train, noise), corrupted) - clean) ** 2).mean()
        )
        for noise in (0.0, 0.3)
    }
    assert errors[0.3] <= 0.75 * errors[0.0], errors


# ------------------------------------------------------------- per-epoch record
def test_mean_activation_curve_records_each_epoch(digits):
    """One value per epoch, kept across ``partial_fit``; None for L-BFGS.

    With a step size of 1e-12 the model does not move, so the first epoch's
    mean activation (one clean full batch) must equal the fitted
    ``mean_activation_`` averaged over units, computed separately by the
    diagnostics pass.
    """
    sae = classic(
        n_components=12,
        learning_rate=1e-12,
        batch_size=len(digits),
        max_iter=3,
        noise=0.0,
        random_state=0,
    )
    _fit(sae, digits)
    assert len(sae.mean_activation_curve_) == len(sae.loss_curve_) == sae.n_iter_ == 3
    np.testing.assert_allclose(
        sae.mean_activation_curve_[0], sae.mean_activation_.mean(), rtol=1e-9
    )
    sae.partial_fit(digits)
    assert len(sae.mean_activation_curve_) == 4

    steered = _fit(
        SparseAutoencoderTransformer(
            n_components=32, hidden_layer_sizes=(), max_iter=60, random_state=0
        ),
        digits,
    )
    target = steered.sparsity_target_
    # The code biases start at the target, the activation drifts up (to 0.13 by
    # epoch 11) and the steered weight brings it back: measured on seeds 0-2,
    # first epoch 0.092-0.096, last three 0.100-0.101, against 0.094.
    curve = np.asarray(steered.mean_activation_curve_)
    assert abs(curve[0] - target) < 0.1 * target
    assert curve[5:20].max() > 1.2 * target
    np.testing.assert_allclose(curve[-3:], target, rtol=0.1)

    lbfgs = _fit(classic(n_components=8, solver="lbfgs", max_iter=5, random_state=0), digits)
    assert lbfgs.mean_activation_curve_ is None
