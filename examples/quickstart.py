"""
Quick start: swap PCA for a sparse autoencoder
==============================================

Trains ``PCA`` and ``SparseAutoencoderTransformer`` (defaults) as the first step of
``Pipeline([reduce, LogisticRegression])`` on scikit-learn's digits (75/25 split)
and prints, side by side, on the held-out quarter:

- the linear-probe accuracy of the logistic regression on each representation,
- the mean squared reconstruction error (``-score``, in pixel units 0-16),
- how sparse the representation is: the mean number of active units per sample
  (``mean_l0_``'s rule: a sigmoid unit is active above 0.5; a PCA component
  counts whenever it is non-zero), also as a fraction of the code size.

Run it with ``python examples/quickstart.py`` (the README's Quick start; about 10 s
on two CPU cores).
"""

import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from skl_sparse_ae import SparseAutoencoderTransformer


def evaluate(reducer, X_train, X_test, y_train, y_test):
    """Fit ``reducer`` + logistic regression; return a row of the table."""
    pipe = Pipeline([("reduce", reducer), ("clf", LogisticRegression(max_iter=2000))])
    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(X_train, y_train)
    seconds = time.perf_counter() - tic
    reduce = pipe.named_steps["reduce"]
    codes = reduce.transform(X_test)
    reconstruction = reduce.inverse_transform(codes)
    if isinstance(reduce, SparseAutoencoderTransformer):
        threshold = 0.5 if reduce.activation == "sigmoid" else 0.0
        raw = codes * reduce.code_scale_  # transform divides each unit by its scale
        active = (raw > threshold).sum(axis=1).mean()
    else:
        active = (np.abs(codes) > 0).sum(axis=1).mean()
    return {
        "accuracy": pipe.score(X_test, y_test),
        "mse": float(np.mean((reconstruction - X_test) ** 2)),
        "dims": codes.shape[1],
        "active": float(active),
        "seconds": seconds,
    }


def main():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=y
    )
    rows = {
        "PCA()": PCA(),
        "PCA(n_components=32)": PCA(n_components=32),
        "SparseAutoencoderTransformer()": SparseAutoencoderTransformer(random_state=0),
        "SparseAutoencoderTransformer(32)": SparseAutoencoderTransformer(
            n_components=32, random_state=0
        ),
    }
    header = (
        f"{'representation':34s} {'dims':>5s} {'probe acc':>9s} {'recon MSE':>9s} "
        f"{'active/sample':>13s} {'(% of dims)':>11s} {'fit s':>6s}"
    )
    print("digits, 75/25 split; metrics on the held-out 450 images")
    print(header)
    print("-" * len(header))
    for name, reducer in rows.items():
        r = evaluate(reducer, X_train, X_test, y_train, y_test)
        print(
            f"{name:34s} {r['dims']:5d} {r['accuracy']:9.4f} {r['mse']:9.3f} "
            f"{r['active']:13.1f} {r['active'] / r['dims']:11.1%} {r['seconds']:6.1f}"
        )
    print(
        "\nactive/sample: code units above 0.5 (sigmoid autoencoder) or non-zero "
        "components (PCA).\nHigher accuracy, lower MSE and fewer active units are better."
    )


if __name__ == "__main__":
    main()

# This script draws nothing: the gallery's thumbnail shows its data, the first digits
# of load_digits (drawn by docs/_static/quickstart_thumbnail.py)
# sphinx_gallery_thumbnail_path = "_static/quickstart_thumbnail.png"
