"""
The sparsity-reconstruction frontier: L1, TopK, BatchTopK, JumpReLU, Matryoshka
================================================================================

Sparse autoencoders trade how many units are active per sample (the L0 norm of
the code) against how well the code reconstructs the input (the fraction of
variance unexplained, FVU). Each mechanism has one knob that moves along that
trade-off:

- ``sparsity="l1"``: the weight of an L1 penalty on a ReLU code;
- ``sparsity="topk"``: ``k``, the number of units kept per sample;
- ``sparsity="batchtopk"``: ``k``, the *average* number kept per sample (the
  ``k * batch`` largest activations of a training batch; a learned threshold
  ``threshold_`` afterwards, so that each sample's code is its own);
- ``sparsity="jumprelu"``: the weight of an L0 penalty, with a learned threshold
  per unit.

Here each is fitted on digits (a small setting: 128 units, 40 epochs) and its
held-out L0 and FVU are plotted; lower left is better. A second panel shows what
``matryoshka_widths`` buys: the reconstruction from only the first units of the
code. ``benchmarks/bench_frontier.py`` runs the full-size comparison.
"""

# %%
# Data and a common setting
# -------------------------
# Digits scaled to [0, 1], three quarters to train and one to evaluate; the same
# width, loss and schedule for every model.
import time
import warnings

import matplotlib.pyplot as plt
from matplotlib.ticker import ScalarFormatter
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skl_sparse_ae import SparseAutoencoderTransformer

X = load_digits().data / 16.0
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)
COMMON = {"n_components": 128, "loss": "mse", "noise": 0.0, "max_iter": 40, "random_state": 0}


def fit(**params):
    sae = SparseAutoencoderTransformer(**COMMON, **params)
    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sae.fit(X_train)
    return sae, time.perf_counter() - tic


def held_out(sae, width=None):
    """Held-out ``(L0, FVU)``, decoding only the first ``width`` units if given."""
    codes = sae.transform(X_test)
    if width is not None:
        codes[:, width:] = 0.0
    error = ((sae.inverse_transform(codes) - X_test) ** 2).sum()
    return (codes > 0).sum(axis=1).mean(), error / ((X_test - X_test.mean(axis=0)) ** 2).sum()


# %%
# One sweep per mechanism
# -----------------------
SWEEPS = {
    "l1": [{"sparsity": "l1", "activation": "relu", "sparsity_weight": w} for w in (0.3, 1.0)],
    "topk": [{"sparsity": "topk", "k": k} for k in (4, 8, 16)],
    "batchtopk": [{"sparsity": "batchtopk", "k": k} for k in (4, 8, 16)],
    "jumprelu": [{"sparsity": "jumprelu", "sparsity_weight": w} for w in (0.1, 0.3, 1.0)],
}
frontier = {}
for name, settings in SWEEPS.items():
    frontier[name] = []
    for params in settings:
        sae, seconds = fit(**params)
        l0, fvu = held_out(sae)
        frontier[name].append((l0, fvu))
        knob = {k: v for k, v in params.items() if k in ("k", "sparsity_weight")}
        print(f"{name:<10} {knob}  L0 {l0:5.2f}  FVU {fvu:.3f}  fit {seconds:.1f} s")

# %%
# Matryoshka: the first units on their own
# ----------------------------------------
# The same TopK model with and without ``matryoshka_widths=(16, 64)``, decoded from
# its first ``m`` units only.
plain, _ = fit(sparsity="topk", k=8)
nested, _ = fit(sparsity="topk", k=8, matryoshka_widths=(16, 64))
widths = [8, 16, 32, 64, 128]
prefix = {
    "topk k=8": [held_out(plain, m)[1] for m in widths],
    "topk k=8, matryoshka (16, 64)": [held_out(nested, m)[1] for m in widths],
}

# %%
# The figure
# ----------
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
for name, points in frontier.items():
    l0, fvu = zip(*sorted(points))
    left.plot(l0, fvu, marker="o", label=name)
left.set_xscale("log", base=2)  # a label at each power of 2, not at 10 alone
left.xaxis.set_major_formatter(ScalarFormatter())
left.set_xlabel("held-out L0 (active units per sample)")
left.set_ylabel("held-out FVU")
left.set_title("Sparsity against reconstruction (lower left is better)")
left.legend()
for name, values in prefix.items():
    right.plot(widths, values, marker="o", label=name)
right.set_xscale("log", base=2)
right.set_xticks(widths, [str(m) for m in widths])
right.set_xlabel("units decoded (the first m)")
right.set_ylabel("held-out FVU")
right.set_title("Decoding a prefix of the code")
right.legend()
fig.tight_layout()
