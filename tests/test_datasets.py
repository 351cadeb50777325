"""``skl_sparse_ae.datasets``: the UFLDL patches."""

import numpy as np
import pytest
from sklearn.datasets import load_sample_images

import skl_sparse_ae
from skl_sparse_ae.datasets import load_ufldl_patches

pytest.importorskip("PIL")  # load_sample_images needs Pillow


def test_exported_from_the_package():
    assert skl_sparse_ae.datasets.load_ufldl_patches is load_ufldl_patches
    assert "datasets" in skl_sparse_ae.__all__


@pytest.mark.parametrize("n_patches, patch_size", [(1000, 8), (301, 5)])
def test_shape_range_and_dtype(n_patches, patch_size):
    X = load_ufldl_patches(n_patches=n_patches, patch_size=patch_size, random_state=0)
    assert X.shape == (n_patches, patch_size**2)
    assert X.dtype == np.float64
    assert X.min() >= 0.1 - 1e-12 and X.max() <= 0.9 + 1e-12
    # the +-3 std clipping is active on some values (natural images are heavy-tailed)
    assert np.isclose(X, 0.1).any() or np.isclose(X, 0.9).any()


def test_the_ufldl_normalisation():
    """Each centred patch maps affinely onto [0.1, 0.9]: rows left unclipped average 0.5."""
    X = load_ufldl_patches(n_patches=2000, random_state=0)
    unclipped = ~(np.isclose(X, 0.1) | np.isclose(X, 0.9)).any(axis=1)
    assert unclipped.mean() > 0.5
    np.testing.assert_allclose(X[unclipped].mean(axis=1), 0.5, atol=1e-12)
    # one std of the centred values is 0.8 / 6 after the mapping; clipping the heavy
    # tails at 3 std only lowers it (measured 0.118)
    assert 0.7 * 0.8 / 6 < X.std() <= 0.8 / 6


def test_patches_come_from_the_grey_sample_images():
    """Undo the normalisation on one patch and find it in one of the photographs."""
    X = load_ufldl_patches(n_patches=20, patch_size=8, random_state=0)
    greys = [image.mean(axis=2) for image in load_sample_images().images]
    row = X[np.argmax((X == 0.1).sum(axis=1) + (X == 0.9).sum(axis=1) == 0)]
    target = (row - row.mean()) / row.std()
    found = False
    for grey in greys:
        windows = np.lib.stride_tricks.sliding_window_view(grey, (8, 8)).reshape(-1, 64)
        centred = windows - windows.mean(axis=1, keepdims=True)
        std = centred.std(axis=1)
        ok = std > 0
        distance = np.abs(centred[ok] / std[ok, None] - target).max(axis=1)
        found = found or bool(distance.min() < 1e-9)
    assert found


def test_random_state():
    a = load_ufldl_patches(n_patches=200, random_state=0)
    np.testing.assert_array_equal(a, load_ufldl_patches(n_patches=200, random_state=0))
    assert not np.array_equal(a, load_ufldl_patches(n_patches=200, random_state=1))


@pytest.mark.parametrize(
    "params, name",
    [
        ({"n_patches": 0}, "n_patches"),
        ({"patch_size": 0}, "patch_size"),
        ({"patch_size": 500}, "patch_size"),
    ],
)
def test_bad_parameters_are_clear_errors(params, name):
    with pytest.raises(ValueError, match=f"'{name}' parameter"):
        load_ufldl_patches(**params)
