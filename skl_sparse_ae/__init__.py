"""Sparse autoencoders as scikit-learn transformers, trained with PyTorch."""

from . import datasets
from ._diagnostics import FitQualityWarning
from ._estimator import SparseAutoencoderTransformer

__version__ = "0.2.0"

__all__ = ["FitQualityWarning", "SparseAutoencoderTransformer", "__version__", "datasets"]
