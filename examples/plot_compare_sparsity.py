"""
KL vs L1 vs TopK: sparsity against reconstruction
=================================================

Trains three sparse autoencoders with 128 units on scikit-learn's digits (pixels
divided by 16, 75/25 split), differing only in how they are made sparse:

- ``"kl"``: sigmoid code, KL penalty toward a mean activation :math:`\\rho = 0.05`
  (UFLDL);
- ``"l1"``: ReLU code, L1 penalty on the code (Keras' activity regulariser);
- ``"topk"``: ReLU of the :math:`k = 8` largest pre-activations, the rest zero (Gao
  et al. 2024); no penalty.

and measures, on the held-out quarter:

- sparsity: the mean number of active units per sample (L0; a sigmoid unit is
  active above 0.5, a ReLU/TopK unit above 0, as ``mean_l0_``) and the mean
  activation (the mean code value, :math:`\\hat\\rho`);
- reconstruction: the fraction of variance unexplained (FVU, 0 is perfect, 1 is no
  better than the mean digit);
- a linear probe: the accuracy of a logistic regression trained on the codes.

PCA with 8 components is the reference. What to look for: KL reaches its target
mean activation with every unit weakly on (few units exceed 0.5, yet the code is
not zero anywhere), L1 gives exact zeros but many active units, and TopK fixes
exactly k active units per sample at the price of reconstruction.

Run it with ``python examples/plot_compare_sparsity.py`` (needs matplotlib). The
models train for at most 150 epochs and stop earlier once their loss stops
improving (the stopping rule of the user guide; the last section prints how many
epochs each ran); ``--quick`` trains for 5, as the test suite does.
"""

# %%
# Three ways to be sparse
# -----------------------
import sys
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from skl_sparse_ae import SparseAutoencoderTransformer
from skl_sparse_ae.plotting import ActivationProfileDisplay, TrainingCurvesDisplay

quick = "--quick" in sys.argv[1:]

MODELS = {
    "KL (rho=0.05)": {"sparsity": "kl", "sparsity_target": 0.05, "sparsity_weight": 3.0},
    "L1 (ReLU)": {"sparsity": "l1", "activation": "relu", "sparsity_weight": 0.1},
    "TopK (k=8)": {"sparsity": "topk", "k": 8},
}
common = {  # the same loss, no corruption and raw codes for all three
    "loss": "mse",
    "noise": 0.0,
    "code_scaling": None,
    "learning_rate": 1e-2,
    "batch_size": 64,
    "max_iter": 5 if quick else 150,
    "random_state": 0,
}

digits = load_digits()
X_train, X_test, y_train, y_test = train_test_split(
    digits.data / 16.0, digits.target, test_size=0.25, random_state=0
)


def fraction_variance_unexplained(X, X_hat):
    return float(((X_hat - X) ** 2).sum() / ((X - X.mean(axis=0)) ** 2).sum())


def evaluate(name, reducer, threshold):
    """Fit ``reducer`` on the training digits; one row of the table."""
    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reducer.fit(X_train)
        seconds = time.perf_counter() - tic
        Z_train, Z_test = reducer.transform(X_train), reducer.transform(X_test)
        probe = LogisticRegression(max_iter=2000).fit(Z_train, y_train)
    return {
        "model": name,
        "L0": float((np.abs(Z_test) > threshold).sum(axis=1).mean()),
        # a mean activation means something for non-negative codes only (not PCA's)
        "mean activation": float(Z_test.mean()) if Z_test.min() >= 0 else float("nan"),
        "FVU": fraction_variance_unexplained(X_test, reducer.inverse_transform(Z_test)),
        "probe accuracy": probe.score(Z_test, y_test),
        "seconds": seconds,
    }


rows = [evaluate("PCA (8)", PCA(n_components=8, random_state=0), 0.0)]
models = {}
for name, params in MODELS.items():
    models[name] = SparseAutoencoderTransformer(128, **common, **params)
    # mean_l0_'s rule: a sigmoid code is active above 0.5, ReLU and TopK above 0
    threshold = 0.5 if params.get("activation", "sigmoid") == "sigmoid" else 0.0
    threshold = 0.0 if params["sparsity"] == "topk" else threshold
    rows.append(evaluate(name, models[name], threshold))

header = f"{'model':<16}{'L0':>8}{'mean act.':>11}{'FVU':>8}{'probe acc.':>12}{'fit s':>8}"
print(header)
print("-" * len(header))
for r in rows:
    mean = "-" if np.isnan(r["mean activation"]) else f"{r['mean activation']:.4f}"
    print(
        f"{r['model']:<16}{r['L0']:>8.2f}{mean:>11}{r['FVU']:>8.3f}"
        f"{r['probe accuracy']:>12.3f}{r['seconds']:>8.1f}"
    )

# %%
# Sparsity, reconstruction and the probe side by side
# ---------------------------------------------------
names = [r["model"] for r in rows]
measures = [
    ("L0", "active units per sample (L0)"),
    ("FVU", "held-out FVU (lower is better)"),
    ("probe accuracy", "linear-probe accuracy"),
]
colors = plt.cm.tab10(np.arange(len(rows)))
fig, axes = plt.subplots(1, len(measures), figsize=(12.6, 3.8), layout="constrained")
for ax, (key, title) in zip(axes, measures):
    values = [r[key] for r in rows]
    ax.bar(range(len(rows)), values, color=colors)
    ax.set_xticks(range(len(rows)), names, rotation=30, ha="right")
    ax.set_title(title)
    for i, v in enumerate(values):
        ax.annotate(f"{v:.3g}", (i, v), ha="center", va="bottom", fontsize=8)
axes[2].set_ylim(0.0, 1.08)  # from 0: the bars' heights are the accuracies
_ = fig.suptitle("Sparse autoencoders with 128 units on digits (held-out quarter)")

# %%
# How each unit is used
# ---------------------
# :class:`~skl_sparse_ae.plotting.ActivationProfileDisplay` draws each unit's mean
# activation on the training digits, sorted, with the KL target as a dashed line
# and dead units (a code that never changes) in red. KL spreads activity evenly
# around its target; L1 and TopK leave some units much busier than others.
fig, axes = plt.subplots(1, 3, figsize=(12.6, 3.4), layout="constrained")
for ax, (name, model) in zip(axes, models.items()):
    profile = ActivationProfileDisplay.from_estimator(model, sort=True, ax=ax)
    ax.set_title(name)

# %%
# Training curves
# ---------------
# The loss and the mean activation per epoch, as ``fit`` recorded them
# (``loss_curve_``, ``mean_activation_curve_``), for the KL model. Each fit ran
# until its stopping rule (or ``max_iter``) ended it:
for name, model in models.items():
    print(f"{name:<16}{model.n_iter_:>4} epochs (max_iter={model.max_iter})")
curves = TrainingCurvesDisplay.from_estimator(models["KL (rho=0.05)"])
plt.show()
