"""Shared fixtures: small data sets that ship with scikit-learn, and thread hygiene."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import skl_sparse_ae._estimator as estimator_module


@pytest.fixture(scope="session")
def digits_raw():
    """``load_digits`` as ``(X, y)``, pixel values 0-16 (1797 x 64)."""
    X, y = load_digits(return_X_y=True)
    return X, y


@pytest.fixture(scope="session")
def digits01(digits_raw):
    """600 digits scaled to [0, 1] (a fixed subsample, for quick fits)."""
    X, _ = digits_raw
    rows = np.random.RandomState(0).permutation(X.shape[0])[:600]
    X01 = X[rows] / 16.0
    X01.flags.writeable = False  # shared between tests: nobody may modify it
    return X01


@pytest.fixture
def X_small():
    """A small dense float64 matrix (40 x 6), uniform in [0, 1)."""
    return np.random.RandomState(0).rand(40, 6)


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Tests may change ``torch.set_num_threads``; leave the next test the same setting."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def fit_threads(monkeypatch):
    """A dict whose ``"fit"`` is torch's thread count when minibatch training starts."""
    seen = {}
    original = estimator_module.fit_minibatch

    def recording(*args, **kwargs):
        seen["fit"] = torch.get_num_threads()
        return original(*args, **kwargs)

    monkeypatch.setattr(estimator_module, "fit_minibatch", recording)
    return seen
