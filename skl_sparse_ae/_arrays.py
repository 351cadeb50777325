"""Inputs other than numpy arrays: torch tensors, and scikit-learn's array API dispatch.

Without ``sklearn.set_config(array_api_dispatch=True)`` every input is read as numpy,
as scikit-learn does, but a torch tensor is read in its own dtype (scikit-learn's
validation cannot see a torch dtype and would make float32 data float64), detached (a
tensor that requires grad has no ``numpy()``) and copied to the host. With dispatch,
results follow the input: a torch tensor is fed to the module where it lies and the
results are tensors on its device; the arrays of another namespace (array-api-strict,
CuPy) are computed through numpy and converted back to that namespace and device.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from sklearn import get_config
from sklearn.externals import array_api_compat
from sklearn.utils._array_api import _convert_to_numpy, get_namespace_and_device

try:  # scikit-learn >= 1.9
    from sklearn.utils._array_api import check_same_namespace
except ImportError:  # pragma: no cover - older scikit-learn: no namespace check

    def check_same_namespace(X, estimator, *, attribute, method):
        return


__all__ = [
    "check_same_namespace",
    "input_namespace",
    "is_torch",
    "to_host",
    "to_namespace",
]


def is_torch(xp) -> bool:
    """Whether ``xp`` is torch's namespace (array-api-compat's wrapper of it)."""
    return xp is not None and xp.__name__.rsplit(".", 1)[-1] == "torch"


def input_namespace(X):
    """The namespace and device that results for ``X`` go to.

    ``(None, None)`` means numpy: dispatch is off, or ``X`` is a numpy array, a
    sparse matrix, a data frame or a list.
    """
    if not get_config()["array_api_dispatch"] or sp.issparse(X):
        return None, None
    xp, is_array_api, device = get_namespace_and_device(X)
    if not is_array_api or xp.__name__.rsplit(".", 1)[-1] == "numpy":
        return None, None
    return xp, device


def to_host(X, xp=None):
    """``X`` ready for numpy validation: arrays of other libraries as numpy arrays in
    their own dtype (a torch tensor detached and copied to the host; bfloat16, which
    numpy lacks, as float32); anything else unchanged."""
    if isinstance(X, torch.Tensor):
        X = X.detach().resolve_conj().resolve_neg()
        if X.dtype == torch.bfloat16:
            X = X.float()
        return X.cpu().numpy()
    if xp is not None:
        return _convert_to_numpy(X, xp)
    if hasattr(X, "__array_namespace__") and not isinstance(X, np.ndarray):
        try:  # array-api-strict on its CPU device: its dtype kept
            return np.asarray(X)
        except (TypeError, RuntimeError, ValueError):
            return X  # (CuPy: scikit-learn's validation says why not)
    return X


def as_numpy_or_tensor(a):
    """A fitted attribute as a numpy array or a torch tensor (what the module reads)."""
    if isinstance(a, (np.ndarray, torch.Tensor)):
        return a
    return _convert_to_numpy(a, array_api_compat.get_namespace(a))


def to_namespace(a: np.ndarray, xp, device):
    """The numpy array ``a`` as an array of ``xp`` on ``device`` (float64 as float32
    where the device has no float64: MPS)."""
    if is_torch(xp):
        if torch.device(device).type == "mps" and a.dtype == np.float64:
            a = a.astype(np.float32)
        return torch.as_tensor(a, device=device)
    return xp.asarray(a, device=device)
