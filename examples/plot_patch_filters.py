"""Edge-like filters from natural-image patches (the UFLDL sparse autoencoder exercise).

Trains the classic sparse autoencoder of Andrew Ng's UFLDL tutorial on 8x8 grey
patches of scikit-learn's two sample photographs
(:func:`skl_sparse_ae.datasets.load_ufldl_patches`, normalised to [0.1, 0.9] as in
the exercise): 64 inputs, 25 sigmoid units, a sigmoid output, the squared error,
a KL penalty pulling each unit's mean activation toward rho = 0.01 (beta = 3) and
weight decay lambda = 1e-4, trained by full-batch L-BFGS.

It prints the achieved mean activation (the exercise reaches about rho) and saves
the 25 learnt filters, the rows of the encoder's weight matrix shown as 8x8
images (as UFLDL's ``display_network``), in a PNG. They come out as oriented
edges and bars at different positions.

Run it with::

    python examples/plot_patch_filters.py --output patch_filters.png

(``--quick`` trains on fewer patches for fewer iterations, for the tests.)
Needs matplotlib (``pip install "skl_sparse_ae[examples]"``) and Pillow.
"""

import argparse
import time
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from skl_sparse_ae import SparseAutoencoderTransformer
from skl_sparse_ae.datasets import load_ufldl_patches


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", default="patch_filters.png", help="where to save the PNG of the filters"
    )
    parser.add_argument("--quick", action="store_true", help="a small, fast run (for tests)")
    return parser.parse_args(argv)


def plot_filters(weights, patch_size, path):
    """Show each row of ``weights`` as a ``patch_size`` square, in a grid, and save."""
    n = weights.shape[0]
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols, 1.2 * rows))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, w in zip(np.ravel(axes), weights):
        limit = np.abs(w).max()  # each filter on its own symmetric grey scale
        ax.imshow(w.reshape(patch_size, patch_size), cmap="gray", vmin=-limit, vmax=limit)
    fig.suptitle("Sparse autoencoder filters on 8x8 natural-image patches")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    patch_size = 8
    n_patches, max_iter = (2000, 40) if args.quick else (10000, 400)
    X = load_ufldl_patches(n_patches=n_patches, patch_size=patch_size, random_state=0)

    rho = 0.01
    sae = SparseAutoencoderTransformer(
        25,
        activation="sigmoid",
        output_activation="sigmoid",
        loss="mse",
        sparsity="kl",
        sparsity_target=rho,
        sparsity_weight=3.0,
        weight_decay=1e-4,
        noise=0.0,  # the recipe has no corruption
        solver="lbfgs",
        max_iter=max_iter,
        random_state=0,
    )
    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sae.fit(X)
    seconds = time.perf_counter() - tic

    print(f"patches: {X.shape[0]} x {X.shape[1]}, {sae.n_iter_} L-BFGS iterations, {seconds:.1f} s")
    print(f"target mean activation rho:  {rho}")
    print(f"achieved mean activation:    {sae.mean_activation_.mean():.4f}")
    print(f"fraction of variance unexplained: {sae.fraction_variance_unexplained_:.3f}")

    encoder = sae.module_.encoder_weights[0].detach().cpu().numpy()  # (25, 64)
    plot_filters(encoder, patch_size, args.output)
    print(f"filters saved to {args.output}")


if __name__ == "__main__":
    main()
