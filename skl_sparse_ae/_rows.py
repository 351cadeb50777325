"""Training rows that stay sparse: a scipy.sparse matrix read as dense batches.

Training reads its data through a handful of tensor operations: ``shape``,
``device``, ``dtype``, ``index_select(0, rows)`` for a minibatch, ``X[rows]`` for a
validation split and ``split(n)`` for chunked passes. :class:`SparseRows` offers
those over a CSR matrix, densifying only the rows asked for, on the device, so
that memory is bounded by the batch and the model, never by the dense matrix.
A dense ``torch.Tensor`` needs no wrapper.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch

from ._device import to_tensor


class SparseRows:
    """A CSR matrix that hands out dense rows on ``device`` as ``dtype`` tensors.

    Parameters
    ----------
    X : scipy.sparse matrix or array of shape (n_samples, n_features)
        Converted to CSR (rows are what training reads); not densified.
    device : torch.device
        Where the dense rows go.
    dtype : torch.dtype
        Their dtype.

    Examples
    --------
    >>> import scipy.sparse as sp, torch
    >>> rows = SparseRows(sp.eye(4, format="csr"), torch.device("cpu"), torch.float64)
    >>> rows.index_select(0, torch.tensor([2, 0]))
    tensor([[0., 0., 1., 0.],
            [1., 0., 0., 0.]], dtype=torch.float64)
    """

    def __init__(self, X, device: torch.device, dtype: torch.dtype):
        self.matrix = sp.csr_matrix(X)  # a view of CSR input's arrays, not a copy
        self.device = torch.device(device)
        self.dtype = dtype

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    def __len__(self) -> int:
        return self.matrix.shape[0]

    def _dense(self, block) -> torch.Tensor:
        return to_tensor(block.toarray(), self.device, self.dtype)

    def index_select(self, dim: int, index: torch.Tensor) -> torch.Tensor:
        """The rows ``index`` (``dim`` must be 0), densified on the device."""
        if dim != 0:
            raise ValueError("SparseRows selects rows only (dim=0).")
        return self._dense(self.matrix[index.cpu().numpy()])

    def __getitem__(self, index) -> SparseRows:
        """The rows ``index`` (a tensor, array or slice), still sparse."""
        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        return SparseRows(self.matrix[index], self.device, self.dtype)

    def split(self, rows: int):
        """Consecutive dense chunks of ``rows`` rows (as :meth:`torch.Tensor.split`)."""
        for start in range(0, self.matrix.shape[0], rows):
            yield self._dense(self.matrix[start : start + rows])

    def to_dense(self) -> torch.Tensor:
        """All rows, densified (the full-batch solver needs them at once)."""
        return self._dense(self.matrix)


def as_rows(X, device: torch.device, dtype: torch.dtype):
    """Training rows on ``device``: a tensor for dense ``X``, :class:`SparseRows` for sparse."""
    if sp.issparse(X):
        return SparseRows(X, device, dtype)
    return to_tensor(X, device, dtype)


def standardization(X) -> tuple[torch.Tensor, float]:
    r"""The column mean :math:`\bar x` and one global scale :math:`s` of ``X``.

    .. math::

        s = \sqrt{\frac{1}{n d} \sum_{i,f} (x_{if} - \bar x_f)^2}

    the root mean square of the centred data (0 for constant data). A dense tensor
    is centred and divided by its largest absolute entry first, so that squaring
    cannot overflow; a sparse matrix uses
    :math:`\sum_{i,f} x_{if}^2 - n \sum_f \bar x_f^2` in float64, which never
    forms the dense matrix.
    """
    if isinstance(X, SparseRows):
        M = X.matrix
        n, d = M.shape
        mean = np.asarray(M.mean(axis=0), dtype=np.float64).ravel()
        squares = float(M.multiply(M).sum(dtype=np.float64))
        variance = max(0.0, squares / n - float(mean @ mean)) / d
        mean_t = torch.from_numpy(mean).to(device=X.device, dtype=X.dtype)
        return mean_t, math.sqrt(variance)
    mean = X.mean(dim=0)
    centred = X - mean  # the one temporary: the rest works in place
    low, high = torch.aminmax(centred)
    peak = max(-float(low), float(high))  # RMS of centred / peak: no overflow
    scale = peak * float(centred.div_(peak).pow_(2).mean().sqrt()) if peak > 0 else 0.0
    return mean, scale
