"""Small data sets built from what ships with scikit-learn (nothing is downloaded)."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.datasets import load_sample_images
from sklearn.feature_extraction.image import extract_patches_2d
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params

__all__ = ["load_ufldl_patches"]


@validate_params(
    {
        "n_patches": [Interval(Integral, 1, None, closed="left")],
        "patch_size": [Interval(Integral, 1, 427, closed="both")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def load_ufldl_patches(n_patches=10000, patch_size=8, random_state=0):
    r"""Grey natural-image patches, normalised as in the UFLDL sparse autoencoder exercise.

    Square patches are cut at random positions from the two photographs of
    :func:`sklearn.datasets.load_sample_images` (about half from each; needs
    Pillow), turned grey by averaging the RGB channels, and normalised as in
    UFLDL's ``sampleIMAGES``: with :math:`p_i` a patch (a row),
    :math:`\bar p_i` its mean and :math:`s` the standard deviation of all the
    centred values,

    .. math::

        q_i = \operatorname{clip}(p_i - \bar p_i,\ -3s,\ 3s), \qquad
        x_i = 0.1 + 0.8\,\frac{q_i + 3s}{6s} \in [0.1, 0.9],

    so that the data suit a sigmoid output (the exercise's 64 → 25 sparse
    autoencoder with a KL penalty toward :math:`\rho = 0.01`).

    Parameters
    ----------
    n_patches : int, default=10000
        Number of patches (rows).

    patch_size : int, default=8
        Side of the square patches, in pixels (at most 427, the images' height).

    random_state : int, RandomState instance or None, default=0
        Where the patches are cut.

    Returns
    -------
    X : ndarray of shape (n_patches, patch_size ** 2), dtype=float64
        One flattened (row-major) patch per row, in ``[0.1, 0.9]``.

    References
    ----------
    A. Ng, "Sparse autoencoder", CS294A lecture notes, and the UFLDL tutorial
    exercise "Sparse Autoencoder" (``sampleIMAGES.m``), Stanford, 2011.

    Examples
    --------
    >>> from skl_sparse_ae.datasets import load_ufldl_patches
    >>> X = load_ufldl_patches(n_patches=500, random_state=0)
    >>> X.shape
    (500, 64)
    >>> bool(X.min() >= 0.1 and X.max() <= 0.9)
    True
    """
    rng = check_random_state(random_state)
    images = load_sample_images().images
    counts = [n_patches // len(images)] * len(images)
    counts[0] += n_patches - sum(counts)
    patches = [
        extract_patches_2d(
            image.mean(axis=2), (patch_size, patch_size), max_patches=count, random_state=rng
        )
        for image, count in zip(images, counts)
        if count > 0
    ]
    X = np.concatenate(patches).reshape(n_patches, patch_size * patch_size)
    X = X[rng.permutation(n_patches)]
    X -= X.mean(axis=1, keepdims=True)
    s = X.std()
    if s == 0:  # flat patches only (a tiny or uniform sample): all mid-grey
        return np.full_like(X, 0.5)
    X = np.clip(X, -3.0 * s, 3.0 * s)
    return 0.1 + 0.8 * (X + 3.0 * s) / (6.0 * s)
