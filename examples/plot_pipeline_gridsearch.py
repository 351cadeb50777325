"""
Swap PCA for a sparse autoencoder in a tuned Pipeline
=====================================================

``SparseAutoencoderTransformer`` has PCA's interface (``n_components``,
``transform``, ``inverse_transform``, ``components_``), so it can take PCA's place as
the step of a :class:`~sklearn.pipeline.Pipeline`, and a
:class:`~sklearn.model_selection.GridSearchCV` can choose between them: the step
itself is a parameter of the grid.

Digits (pixels divided by 16, 75/25 split), a logistic regression on the codes, and
a grid over PCA's width and the autoencoder's width and sparsity target. The
autoencoders train for at most 40 epochs here (the default is 200) so that the
search takes seconds; ``--quick`` runs a smaller search, as the test suite does.
"""

# %%
# A grid over the reducing step
# -----------------------------
import sys
import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline

from skl_sparse_ae import SparseAutoencoderTransformer
from skl_sparse_ae.plotting import ActivationProfileDisplay, TrainingCurvesDisplay

quick = "--quick" in sys.argv[1:]
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X / 16.0, y, test_size=0.25, random_state=0, stratify=y
)

pipe = Pipeline([("reduce", PCA()), ("clf", LogisticRegression(max_iter=2000))])
sae = SparseAutoencoderTransformer(max_iter=5 if quick else 40, random_state=0)
param_grid = [
    {"reduce": [PCA(random_state=0)], "reduce__n_components": [32] if quick else [16, 32]},
    {
        "reduce": [sae],
        "reduce__n_components": [32] if quick else [64, 128],
        "reduce__sparsity_target": [0.05] if quick else [0.05, 0.1],
    },
]
search = GridSearchCV(pipe, param_grid, cv=2 if quick else 3)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    search.fit(X_train, y_train)

# %%
# The candidates, best first
# --------------------------
# ``GridSearchCV`` scores the pipeline with the classifier's accuracy; the
# autoencoder's own ``score`` (negative reconstruction error) would be used if it
# were searched alone.
results = search.cv_results_
order = results["rank_test_score"].argsort()
print(f"{'reduce':<32}{'n_components':>13}{'target':>8}{'CV accuracy':>13}")
for i in order:
    params = results["params"][i]
    target = params.get("reduce__sparsity_target", "-")
    print(
        f"{type(params['reduce']).__name__:<32}{params['reduce__n_components']:>13}"
        f"{target!s:>8}{results['mean_test_score'][i]:>13.4f}"
    )
best = search.best_estimator_
print(f"best: {type(best.named_steps['reduce']).__name__}, {search.best_params_}")
print(f"held-out accuracy of the best pipeline: {search.score(X_test, y_test):.4f}")

# %%
# Inside the best autoencoder
# ---------------------------
# The best autoencoder candidate, refitted on the whole training set: its training
# curves (loss and mean activation per epoch, with the target) ...
sae_params = [
    (score, params)
    for score, params in zip(results["mean_test_score"], results["params"])
    if isinstance(params["reduce"], SparseAutoencoderTransformer)
]
_, params = max(sae_params, key=lambda item: item[0])
best_sae = pipe.set_params(**params).named_steps["reduce"]
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    best_sae.fit(X_train)
curves = TrainingCurvesDisplay.from_estimator(best_sae)

# %%
# ... and how active each unit is on the held-out digits, sorted, against the
# target (a figure of its own, so that the page shows both at full size).
profile = ActivationProfileDisplay.from_estimator(best_sae, X_test, sort=True)
plt.show()
