"""
Denoising: corrupted digits and their reconstructions
=====================================================

A denoising autoencoder sees a corrupted input during training and must reproduce
the clean one. Here half of each training digit's pixels are set to 0
(``noise=0.5, noise_type="masking"``); a plain autoencoder of the same size
(``noise=0``) is trained for comparison. On held-out digits corrupted the same way,
the denoising model's reconstructions are closer to the clean digits.

Both models train with ``early_stopping=True`` for at most 200 epochs
(``--quick``: 10, as the test suite runs it).
"""

# %%
# Train a denoising and a plain autoencoder
# -----------------------------------------
import sys
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skl_sparse_ae import SparseAutoencoderTransformer
from skl_sparse_ae.plotting import ComponentsDisplay, TrainingCurvesDisplay

quick = "--quick" in sys.argv[1:]
X, y = load_digits(return_X_y=True)
X_train, X_test = train_test_split(X / 16.0, test_size=0.25, random_state=0)

params = {
    "n_components": 64,
    "max_iter": 10 if quick else 200,
    "early_stopping": True,
    "random_state": 0,
}
models = {
    "denoising (masking 0.5)": SparseAutoencoderTransformer(
        noise=0.5, noise_type="masking", **params
    ),
    "plain (no noise)": SparseAutoencoderTransformer(noise=0.0, **params),
}
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    for model in models.values():
        model.fit(X_train)

# %%
# Corrupt held-out digits and reconstruct them
# --------------------------------------------
# The same corruption as in training: each pixel is set to 0 with probability 0.5.
rng = np.random.default_rng(0)
X_corrupted = X_test * (rng.random(X_test.shape) >= 0.5)
reconstructions = {
    name: model.inverse_transform(model.transform(X_corrupted)) for name, model in models.items()
}

print(f"mean squared error to the clean held-out digits ({X_test.shape[0]} images)")
print(f"  corrupted input itself       {np.mean((X_corrupted - X_test) ** 2):.4f}")
for name, X_hat in reconstructions.items():
    print(f"  {name:<28} {np.mean((X_hat - X_test) ** 2):.4f}")

# %%
# Side by side: clean, corrupted, and the two reconstructions
# -----------------------------------------------------------
n_show = 8
rows = {
    "clean": X_test,
    "corrupted": X_corrupted,
    **{f"{name}": X_hat for name, X_hat in reconstructions.items()},
}
fig, axes = plt.subplots(len(rows), n_show, figsize=(n_show * 1.1, len(rows) * 1.25))
for r, (label, images) in enumerate(rows.items()):
    for c in range(n_show):
        ax = axes[r, c]
        ax.imshow(images[c].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
fig.suptitle("Held-out digits with half of the pixels masked")
fig.subplots_adjust(left=0.22)

# %%
# What the denoising model learnt
# -------------------------------
# Its 64 components (``components_``, what each unit adds to a reconstruction) as
# 8x8 images, and its training curves: with early stopping the held-out score is
# recorded per epoch too.
denoising = models["denoising (masking 0.5)"]
components = ComponentsDisplay.from_estimator(denoising, image_shape=(8, 8))

# %%
curves = TrainingCurvesDisplay.from_estimator(denoising)
plt.show()
