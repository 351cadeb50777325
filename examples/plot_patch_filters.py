"""
Edge-like filters from natural-image patches (UFLDL)
====================================================

The classic sparse autoencoder exercise of Andrew Ng's UFLDL tutorial, on 8x8 grey
patches of scikit-learn's two sample photographs
(:func:`skl_sparse_ae.datasets.load_ufldl_patches`, normalised to [0.1, 0.9] as in
the exercise): 64 inputs, 25 sigmoid units, a sigmoid output, the squared error,
a KL penalty pulling each unit's mean activation toward :math:`\\rho = 0.01`
(:math:`\\beta = 3`) and weight decay :math:`\\lambda = 10^{-4}`, trained by
full-batch L-BFGS.

The learnt filters, the rows of the first encoder layer shown as 8x8 images (as
UFLDL's ``display_network``), come out as oriented edges and bars at different
positions.

Run it with ``python examples/plot_patch_filters.py`` (needs matplotlib and Pillow).
``--quick`` trains on fewer patches for fewer iterations; the test suite runs it so.
"""

# %%
# The patches and the model
# -------------------------
import sys
import time
import warnings

import matplotlib.pyplot as plt
from sklearn.exceptions import ConvergenceWarning

from skl_sparse_ae import SparseAutoencoderTransformer
from skl_sparse_ae.datasets import load_ufldl_patches
from skl_sparse_ae.plotting import ComponentsDisplay, TrainingCurvesDisplay

quick = "--quick" in sys.argv[1:]
n_patches, max_iter = (2000, 40) if quick else (10000, 400)
X = load_ufldl_patches(n_patches=n_patches, patch_size=8, random_state=0)

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

# %%
# The filters
# -----------
# Each tile is one unit's encoder weights, on its own symmetric grey scale (black
# negative, white positive). ``weights="decoder"`` would show ``components_``, what
# each unit adds to the reconstruction; with a KL code both look alike.
filters = ComponentsDisplay.from_estimator(sae, image_shape=(8, 8), weights="encoder", n_cols=5)

# %%
# The objective per L-BFGS iteration
# ----------------------------------
# L-BFGS records the objective at each accepted step (``loss_curve_``); it records
# no per-epoch mean activation, so the Display draws the loss alone.
curves = TrainingCurvesDisplay.from_estimator(sae)
plt.show()
