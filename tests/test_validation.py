"""Bad input gets a clear error, and a failed (re)fit leaves the model as it was."""

import copy
import io
import re
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from classic import CLASSIC
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from skl_sparse_ae import SparseAutoencoderTransformer
from skl_sparse_ae._diagnostics import DivergedError

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FAST = {**CLASSIC, "n_components": 3, "max_iter": 3, "random_state": 0}


def _fast(**params):
    return SparseAutoencoderTransformer(**{**FAST, **params})


# ------------------------------------------------------------------ bad data
@pytest.mark.parametrize("bad, pattern", [(np.nan, "NaN"), (np.inf, "infinity")])
@pytest.mark.parametrize("method", ["fit", "partial_fit", "transform", "score"])
def test_non_finite_input_is_rejected(X_small, bad, pattern, method):
    X_bad = X_small.copy()
    X_bad[3, 2] = bad
    sae = _fast()
    if method in ("transform", "score"):
        sae.fit(X_small)
    with pytest.raises(ValueError, match=f"Input X contains {pattern}"):
        getattr(sae, method)(X_bad)


def test_non_finite_codes_are_rejected_by_inverse_transform(X_small):
    sae = _fast().fit(X_small)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        sae.inverse_transform(np.full((2, 3), np.nan))


@pytest.mark.parametrize(
    "X_bad",
    [
        np.array([["a", "b"], ["c", "d"]]),
        np.array([[1.0, "b"], [2.0, 3.0]], dtype=object),
    ],
    ids=["strings", "object-with-strings"],
)
def test_strings_are_rejected(X_bad):
    with pytest.raises(ValueError, match="could not convert string to float"):
        _fast().fit(X_bad)


def test_numeric_object_array_is_accepted(X_small):
    codes = _fast().fit_transform(X_small.astype(object))
    assert codes.dtype == np.float64
    assert np.isfinite(codes).all()


@pytest.mark.parametrize(
    "shape, pattern",
    [((0, 5), r"0 sample\(s\)"), ((5, 0), r"0 feature\(s\)")],
)
def test_empty_input_is_rejected(shape, pattern):
    with pytest.raises(ValueError, match=pattern):
        _fast().fit(np.empty(shape))


@pytest.mark.parametrize("method", ["fit", "transform", "inverse_transform", "score"])
def test_1d_input_is_rejected(X_small, method):
    sae = _fast()
    if method != "fit":
        sae.fit(X_small)
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        getattr(sae, method)(X_small[0, :3] if method == "inverse_transform" else X_small[0])


@pytest.mark.parametrize("method", ["transform", "score", "score_samples", "partial_fit"])
def test_wrong_width_is_rejected(X_small, method):
    sae = _fast().fit(X_small)
    with pytest.raises(ValueError, match=r"X has 5 features, but .* is expecting 6 features"):
        getattr(sae, method)(X_small[:, :5])


def test_wrong_code_width_is_rejected_by_inverse_transform(X_small):
    sae = _fast().fit(X_small)
    with pytest.raises(ValueError, match=r"X has 4 features.*codes of width n_components=3"):
        sae.inverse_transform(np.zeros((2, 4)))


def test_unfitted_model_refuses_to_transform(X_small):
    for method in ("transform", "inverse_transform", "score", "score_samples"):
        with pytest.raises(NotFittedError):
            getattr(_fast(), method)(X_small)


@pytest.mark.parametrize("low, high", [(-0.5, 0.5), (0.0, 2.0)])
def test_bce_needs_data_in_unit_interval(X_small, low, high):
    X = low + (high - low) * X_small
    with pytest.raises(ValueError, match=r"loss='bce' needs X in \[0, 1\].*MinMaxScaler"):
        _fast(loss="bce").fit(X)


def test_bce_accepts_the_closed_unit_interval(X_small):
    X = X_small.copy()
    X[0, :] = 0.0
    X[1, :] = 1.0
    assert np.isfinite(_fast(loss="bce").fit_transform(X)).all()


# ------------------------------------------------------------------ bad parameters
@pytest.mark.parametrize(
    "name, value",
    [
        ("activation", "softmax"),
        ("output_activation", "tanh"),
        ("loss", "mae"),
        ("sparsity", "l2"),
        ("solver", "sgd"),
        ("noise_type", "salt"),
        ("batch_size", "big"),
        ("device", 0),
        ("sparsity_target", 0.0),
        ("sparsity_target", 1.0),
        ("sparsity_target", 1.5),
        ("n_components", 0),
        ("n_components", 2.5),
        ("k", 0),
        ("sparsity_weight", -0.1),
        ("weight_decay", -1e-4),
        ("noise", -0.1),
        ("learning_rate", 0.0),
        ("batch_size", 0),
        ("max_iter", 0),
        ("tol", -1.0),
        ("n_iter_no_change", 0),
        ("validation_fraction", 1.0),
        ("n_threads", 0),
        ("tied_weights", "yes"),
    ],
)
def test_bad_parameter_values_are_rejected(X_small, name, value):
    sae = _fast(**{name: value})
    pattern = rf"The '{name}' parameter of SparseAutoencoderTransformer must be .* Got {re.escape(repr(value))} instead"
    with pytest.raises(InvalidParameterError, match=pattern):
        sae.fit(X_small)
    # InvalidParameterError is both a ValueError and a TypeError, as sklearn's.
    assert issubclass(InvalidParameterError, ValueError)


@pytest.mark.parametrize("sizes", [(0,), (4, -1), (2.5,), ("a",)])
def test_bad_hidden_layer_sizes_are_rejected(X_small, sizes):
    with pytest.raises(ValueError, match="hidden_layer_sizes must be a tuple of positive integers"):
        _fast(hidden_layer_sizes=sizes).fit(X_small)


def test_k_larger_than_n_components_is_rejected(X_small):
    with pytest.raises(ValueError, match=r"k must satisfy 1 <= k <= n_components=3; got k=4"):
        _fast(sparsity="topk", k=4).fit(X_small)


@pytest.mark.parametrize("noise", [1.0, 1.5])
def test_masking_noise_must_be_a_probability(X_small, noise):
    with pytest.raises(ValueError, match=r"noise_type='masking'.*must be < 1"):
        _fast(noise=noise, noise_type="masking").fit(X_small)


def test_gaussian_noise_may_exceed_one(X_small):
    assert np.isfinite(_fast(noise=1.5).fit_transform(X_small)).all()


def test_kl_with_relu_is_rejected_with_the_fix(X_small):
    with pytest.raises(
        ValueError, match=r"sparsity='kl'.*activation='relu'.*'sigmoid', 'tanh'.*sparsity='l1'"
    ):
        _fast(activation="relu", sparsity="kl").fit(X_small)


def test_bce_with_linear_output_is_rejected(X_small):
    with pytest.raises(
        ValueError, match=r"loss='bce'.*output_activation='sigmoid' or 'auto'.*'linear'"
    ):
        _fast(loss="bce", output_activation="linear").fit(X_small)


def test_lbfgs_with_topk_is_rejected(X_small):
    with pytest.raises(ValueError, match=r"solver='lbfgs' does not support sparsity='topk'"):
        _fast(solver="lbfgs", sparsity="topk").fit(X_small)


def test_partial_fit_needs_adam():
    sae = _fast(solver="lbfgs")
    assert not hasattr(sae, "partial_fit")
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'") as info:
        sae.partial_fit  # noqa: B018
    # The reason is in the chained exception the traceback shows.
    assert re.search("only available with solver='adam'", str(info.value.__cause__))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:3"])
def test_missing_cuda_is_an_error(X_small, device):
    with pytest.raises(ValueError, match=rf"device='{device}'.*CUDA is not available"):
        _fast(device=device).fit(X_small)


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="needs a machine without MPS")
def test_missing_mps_is_an_error(X_small):
    with pytest.raises(ValueError, match=r"device='mps'.*MPS is not available"):
        _fast(device="mps").fit(X_small)


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "CPU", "cuda:", "", "cpu:0"])
def test_malformed_device_is_an_error(X_small, device):
    with pytest.raises(
        ValueError, match=rf"device must be 'auto', 'cpu', 'cuda', 'cuda:N'.*got '{device}'"
    ):
        _fast(device=device).fit(X_small)


# ------------------------------------------------------------------ one sample
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_one_sample_fits(X_small, solver):
    sae = _fast(solver=solver).fit(X_small[:1])
    codes = sae.transform(X_small)
    assert codes.shape == (40, 3)
    assert np.isfinite(codes).all()
    assert np.isfinite(sae.reconstruction_err_)


def test_one_sample_with_early_stopping_is_rejected(X_small):
    # The message check_fit2d_1sample accepts: it names "1 sample".
    with pytest.raises(ValueError, match=r"1 sample\(s\).*minimum of 2"):
        _fast(early_stopping=True).fit(X_small[:1])


# ------------------------------------------------------------------ divergence
@pytest.mark.parametrize(
    "params, scale, dtype",
    [
        ({"learning_rate": 1e30}, 1.0, np.float32),
        ({"learning_rate": 1e10, "activation": "relu", "sparsity": "l1"}, 1.0, np.float32),
        ({"learning_rate": 1e300, "activation": "relu", "sparsity": None}, 1.0, np.float64),
        ({"learning_rate": 1e300, "batch_size": 10}, 1.0, np.float64),
        # A sigmoid output is not standardised: its squared error on huge X is inf.
        ({"output_activation": "sigmoid"}, 1e200, np.float64),
        ({"output_activation": "sigmoid", "solver": "lbfgs"}, 1e200, np.float64),
    ],
    ids=["lr-f32", "lr-relu-f32", "lr-relu-f64", "lr-f64", "huge-X-sigmoid", "huge-X-lbfgs"],
)
def test_divergence_raises_a_clear_error(X_small, params, scale, dtype):
    X = (X_small * scale).astype(dtype)
    sae = _fast(**{**params, "max_iter": 10})
    message = r"diverged.*(nan|inf|times worse than its mean).*learning_rate"
    with pytest.raises(DivergedError, match=message) as info:
        sae.fit(X)
    assert isinstance(info.value, ValueError)
    # Nothing half-trained is left behind: there are no codes at all.
    assert not hasattr(sae, "module_")
    with pytest.raises(NotFittedError):
        sae.transform(X_small)


def test_divergence_in_partial_fit_raises(X_small):
    sae = _fast(output_activation="sigmoid")
    with pytest.raises(DivergedError, match=r"partial_fit call 1.*learning_rate"):
        sae.partial_fit(X_small * 1e200)
    assert not hasattr(sae, "module_")


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_diverging_last_step_is_caught(X_small, method, dtype):
    """One batch, one epoch: the loss (measured before the step) is finite, the weights
    after it are not. No NaN codes may come out of that."""
    sae = _fast(batch_size=X_small.shape[0], learning_rate=1e300, max_iter=1)
    with pytest.raises(DivergedError, match=r"reconstructions are NaN or infinite at the end of"):
        getattr(sae, method)(X_small.astype(dtype))
    assert not hasattr(sae, "module_")


def test_diverging_warm_start_keeps_finite_codes(X_small):
    X = X_small.astype(np.float32)
    sae = _fast().fit(X)
    before = sae.transform(X)
    sae.set_params(warm_start=True, learning_rate=1e30, max_iter=10)
    with pytest.raises(DivergedError, match="learning_rate"):
        sae.fit(X)
    after = sae.transform(X)
    assert np.isfinite(after).all()
    np.testing.assert_array_equal(after, before)


# ------------------------------------------------------------------ failed refits
def _deep_equal(a, b):
    """Equality of values, recursing into containers, tensors and modules."""
    if isinstance(a, torch.nn.Module):
        return type(a) is type(b) and _deep_equal(a.state_dict(), b.state_dict())
    if isinstance(a, torch.Tensor):
        return (
            isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and a.device == b.device
            and torch.equal(a, b)
        )
    if isinstance(a, np.ndarray):
        return (
            isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
        )
    if isinstance(a, dict):
        return (
            isinstance(b, dict) and a.keys() == b.keys() and all(_deep_equal(a[k], b[k]) for k in a)
        )
    if isinstance(a, (list, tuple)):
        return (
            type(a) is type(b) and len(a) == len(b) and all(_deep_equal(x, y) for x, y in zip(a, b))
        )
    return a == b


def _interrupt_training(monkeypatch):
    """Ctrl-C during training: the first epoch line (``verbose=1``) raises KeyboardInterrupt."""

    class Interrupting(io.StringIO):
        def write(self, text):
            raise KeyboardInterrupt

    monkeypatch.setattr(sys, "stdout", Interrupting())


# Each case: (parameters to set before the call, the call, the exception). The
# data of the failing call has another width (7 instead of 6 columns) and no
# feature names where that gets past validation, so that an early reset of
# n_features_in_ / feature_names_in_ would show.
FAILED_REFITS = {
    "NaN in X": ({}, lambda s, X: s.fit(np.where(X == X[0, 0], np.nan, X)), ValueError),
    "strings in X": ({}, lambda s, X: s.fit(X.astype(str).astype(object) + "x"), ValueError),
    "bad parameter": ({"activation": "softmax"}, lambda s, X: s.fit(X), InvalidParameterError),
    "kl with relu": ({"activation": "relu"}, lambda s, X: s.fit(X), ValueError),
    "missing device": ({"device": "cuda:99"}, lambda s, X: s.fit(X), ValueError),
    "malformed device": ({"device": "gpu"}, lambda s, X: s.fit(X), ValueError),
    "bce range": ({"loss": "bce"}, lambda s, X: s.fit(2 * X), ValueError),
    "warm start width": ({"warm_start": True}, lambda s, X: s.fit(X), ValueError),
    "warm start architecture": (
        {"warm_start": True, "n_components": 4},
        lambda s, X: s.fit(X[:, :6]),
        ValueError,
    ),
    "partial_fit width": ({}, lambda s, X: s.partial_fit(X), ValueError),
    "divergence": (
        {"learning_rate": 1e300, "batch_size": 10},
        lambda s, X: s.fit(X),
        DivergedError,
    ),
    "divergence lbfgs": (
        {"solver": "lbfgs", "output_activation": "sigmoid"},
        lambda s, X: s.fit(X * 1e200),
        DivergedError,
    ),
    "divergence warm start": (
        {"warm_start": True, "learning_rate": 1e300, "max_iter": 10},
        lambda s, X: s.fit(X[:, :6] * 1e150),
        DivergedError,
    ),
    "divergence partial_fit": (
        {"learning_rate": 1e300, "batch_size": 10},
        lambda s, X: s.partial_fit(X[:, :6]),
        DivergedError,
    ),
    "interrupted training": ("interrupt", lambda s, X: s.fit(X), KeyboardInterrupt),
    "interrupted warm start": (
        "interrupt-warm",
        lambda s, X: s.fit(X[:, :6]),
        KeyboardInterrupt,
    ),
}


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
@pytest.mark.parametrize("case", list(FAILED_REFITS))
def test_failed_refit_leaves_the_model_exactly_as_it_was(monkeypatch, case):
    params, call, exception = FAILED_REFITS[case]
    rng = np.random.RandomState(0)
    X_fit = pd.DataFrame(rng.rand(40, 6), columns=[f"f{i}" for i in range(6)])
    X_new = rng.rand(40, 7)
    sae = _fast(early_stopping=True).fit(X_fit)
    sae.partial_fit(X_fit)  # also set the optimiser and generator states
    if params == "interrupt":
        _interrupt_training(monkeypatch)
        params = {"verbose": 1}
    elif params == "interrupt-warm":
        _interrupt_training(monkeypatch)
        params = {"warm_start": True, "verbose": 1}
    sae.set_params(**params)
    codes = sae.transform(X_fit)
    shallow = dict(sae.__dict__)
    deep = copy.deepcopy(sae.__dict__)

    with pytest.raises(exception):
        call(sae, X_new)

    assert sae.__dict__.keys() == shallow.keys()
    for name, value in shallow.items():
        assert sae.__dict__[name] is value, name  # the same objects ...
        assert _deep_equal(value, deep[name]), name  # ... not modified in place
    np.testing.assert_array_equal(sae.transform(X_fit), codes)


def test_failed_first_fit_leaves_an_unfitted_model(X_small):
    sae = _fast(device="cuda:99")
    state = dict(sae.__dict__)
    with pytest.raises(ValueError, match="cuda:99"):
        sae.fit(X_small)
    assert sae.__dict__ == state
    assert not hasattr(sae, "n_features_in_")


def test_set_params_after_fit_does_not_break_the_fitted_model(X_small):
    """Transform follows the fitted model, not parameters changed since (as PCA)."""
    sae = _fast().fit(X_small)
    codes = sae.transform(X_small)
    sae.set_params(n_components=5)
    np.testing.assert_array_equal(sae.transform(X_small), codes)
    assert sae.inverse_transform(codes).shape == X_small.shape
    assert len(sae.get_feature_names_out()) == 3


def test_successful_warm_start_does_not_touch_the_previous_optimizer_state(X_small):
    sae = _fast().fit(X_small)
    saved = sae._optimizer_state
    snapshot = copy.deepcopy(saved)
    sae.partial_fit(X_small)
    assert _deep_equal(saved, snapshot)  # the old state object was not trained in place


# ------------------------------------------------------------- finite blow-ups
@pytest.mark.parametrize(
    "params",
    [
        {},  # the defaults
        {"sparsity": "topk"},
        {"activation": "relu", "sparsity": "l1"},
        {"loss": "mse", "activation": "relu", "sparsity": "l1"},
    ],
)
def test_a_finite_blow_up_is_an_error_that_names_learning_rate(digits_raw, params):
    """learning_rate=1e3 once returned models with a training FVU of 429 to 2.9e8.

    Measured (digits / 16, 64 units, 30 epochs): the best epoch's loss is 700 to 7e10
    times the starting model's."""
    X = digits_raw[0] / 16.0
    sae = SparseAutoencoderTransformer(64, learning_rate=1e3, max_iter=30, random_state=0)
    with pytest.raises(
        DivergedError, match=r"loss rose from .* Lower learning_rate \(for example to 100\)"
    ):
        sae.set_params(**params).fit(X)
    assert not hasattr(sae, "module_")


def test_a_model_worse_than_the_mean_is_an_error(digits_raw):
    """learning_rate=1.0 with ReLU and L1 ends 9.3 times worse than predicting the mean."""
    X = digits_raw[0] / 16.0
    sae = SparseAutoencoderTransformer(
        64, loss="mse", activation="relu", sparsity="l1", learning_rate=1.0, max_iter=30, noise=0.2
    )
    with pytest.raises(DivergedError, match=r"reconstructs X \S+ times worse than its mean"):
        sae.set_params(random_state=0).fit(X)


def test_blow_up_rule_leaves_healthy_fits_alone(digits_raw):
    X = digits_raw[0][:300] / 16.0
    for params in ({"learning_rate": 1e-2}, {"solver": "lbfgs", "max_iter": 30}):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sae = SparseAutoencoderTransformer(16, random_state=0, **params).fit(X)
        assert sae.fraction_variance_unexplained_ < 1.0
