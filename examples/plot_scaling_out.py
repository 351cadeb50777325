"""
Scaling out with dask
=====================

The estimator needs nothing special to go past one machine: it pickles, it trains
from ``partial_fit`` one block at a time, and its ``transform`` works on any
block of rows. This example shows the three patterns on a
:class:`dask.distributed.LocalCluster`; on a real cluster, connect the
:class:`~dask.distributed.Client` to its scheduler instead
(``Client("tcp://scheduler:8786")``) and nothing else changes.

1. **Hyper-parameter search on the cluster**: ``GridSearchCV`` fans its fits out
   through joblib, and ``joblib.parallel_config(backend="dask")`` sends them to the
   dask workers. The search finds what joblib's default (loky) backend finds.
2. **Incremental training** over a chunked dask array with
   :class:`dask_ml.wrappers.Incremental`, which calls ``partial_fit`` (one epoch of
   Adam) on one block after another: the data never need to fit in memory.
3. **Chunked transform** of a larger-than-memory dask array, as
   :class:`dask_ml.wrappers.ParallelPostFit` does: each chunk is encoded where it
   lives and only reductions come back.

Needs the ``dask`` extra (``pip install -e ".[dask]"`` from a checkout: dask, distributed
and dask-ml); dask is not a dependency of the package. The cluster here runs in
this process (``processes=False``) with two threads, and the big array has 200,000
rows, so that the example runs in seconds when the documentation is built;
``--quick`` makes everything smaller still (the test suite runs it so).
"""

# %%
# A local cluster
# ---------------
import sys
import warnings

import dask.array as da
import joblib
import matplotlib.pyplot as plt
import numpy as np
from dask.distributed import Client, LocalCluster
from dask_ml.wrappers import Incremental, ParallelPostFit
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split

from skl_sparse_ae import SparseAutoencoderTransformer
from skl_sparse_ae.plotting import TrainingCurvesDisplay

quick = "--quick" in sys.argv[1:]
warnings.filterwarnings("ignore", category=ConvergenceWarning)  # short fits, on purpose

cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None)
client = Client(cluster)
# counts only: the client's repr and ``client.nthreads()`` list the workers' addresses
n_threads = sum(client.nthreads().values())
print(f"workers: {len(client.scheduler_info()['workers'])}, threads: {n_threads}")

X, y = load_digits(return_X_y=True)
X_train, X_test = train_test_split(X / 16.0, test_size=0.25, random_state=0)

# %%
# 1. GridSearchCV through joblib's dask backend
# ---------------------------------------------
# With no ``scoring``, ``GridSearchCV`` maximises the estimator's ``score``, the
# negative reconstruction error. Inside ``parallel_config(backend="dask")`` every
# fit of every fold is a task on the cluster; outside it, the same search runs on
# local processes (loky). Both find the same best parameters, with the same scores.
param_grid = {"n_components": [16, 32], "noise": [0.0, 0.2]}
sae = SparseAutoencoderTransformer(max_iter=5 if quick else 20, random_state=0)

search_dask = GridSearchCV(sae, param_grid, cv=3)
with joblib.parallel_config(backend="dask"):
    search_dask.fit(X_train)

search_loky = GridSearchCV(sae, param_grid, cv=3, n_jobs=2).fit(X_train)

print(f"best parameters, dask backend: {search_dask.best_params_}")
print(f"best parameters, loky backend: {search_loky.best_params_}")
same = np.allclose(
    search_dask.cv_results_["mean_test_score"], search_loky.cv_results_["mean_test_score"]
)
print(f"same best parameters: {search_dask.best_params_ == search_loky.best_params_}")
print(f"same scores for every candidate: {same}")

# %%
# 2. Incremental training over a chunked array
# --------------------------------------------
# ``Incremental`` calls ``partial_fit`` on each block of the dask array in turn
# (shuffling the order of the blocks); each call is one epoch of Adam over that
# block. Calling ``partial_fit`` on the wrapper again makes another pass.
dX = da.from_array(X_train, chunks=(200, X_train.shape[1]))
incremental = Incremental(
    SparseAutoencoderTransformer(32, random_state=0), shuffle_blocks=True, random_state=0
)
n_passes = 2 if quick else 10
for _ in range(n_passes):
    incremental.partial_fit(dX)
model = incremental.estimator_
print(
    f"{dX.numblocks[0]} blocks x {n_passes} passes = {model.n_iter_} partial_fit calls; "
    f"held-out score {model.score(X_test):.4f}"
)

# %%
# ``partial_fit`` records one point of ``loss_curve_`` and ``mean_activation_curve_``
# per call, so the curves below have one point per block.
curves = TrainingCurvesDisplay.from_estimator(model, x_label="partial_fit call (one block)")

# %%
# 3. Chunked transform of a larger-than-memory array
# --------------------------------------------------
# A dask array whose chunks are made on the workers when needed: jittered copies of
# the training digits. Nothing is computed until ``.compute()``, and then only a
# few chunks are in memory at a time, so the same code serves any number of rows.
n_rows, chunk = (20_000, 5_000) if quick else (200_000, 20_000)


def jittered_digits(block_info=None):
    """One chunk: random training digits plus a little noise, seeded by its position."""
    info = block_info[None]
    rng = np.random.default_rng(info["chunk-location"][0])
    rows = X_train[rng.integers(0, len(X_train), info["chunk-shape"][0])]
    return np.clip(rows + rng.normal(0, 0.05, rows.shape), 0.0, 1.0)


big = da.map_blocks(
    jittered_digits, chunks=((chunk,) * (n_rows // chunk), (X.shape[1],)), dtype=np.float64
)
print(f"big: {big.shape}, {big.nbytes / 1e6:.0f} MB in {big.numblocks[0]} chunks")

# %%
# ``map_blocks`` applies ``transform`` chunk by chunk; giving the output's chunks
# (the same rows, ``n_components`` columns) keeps its shape right. Only the
# reductions (the mean code per unit, the mean score) come back. The big array
# is jittered training digits, so its mean code is close to theirs.
width = model.components_.shape[0]
codes = big.map_blocks(model.transform, chunks=(big.chunks[0], (width,)), dtype=np.float64)
scores = big.map_blocks(model.score_samples, drop_axis=1, dtype=np.float64)
mean_code, mean_score = da.compute(codes.mean(axis=0), scores.mean())
print(f"codes: {codes.shape}; mean score over {n_rows} rows: {mean_score:.4f}")
gap = np.abs(mean_code - model.transform(X_train).mean(axis=0)).max()
print(f"mean code per unit, big array vs training digits: largest gap {gap:.3f}")

# %%
# dask-ml's ``ParallelPostFit`` wraps the same pattern. It declares the output's
# chunks to be the input's, so for a transformer that changes the width its
# ``shape`` is only right once computed:
lazy = ParallelPostFit(model).transform(big)
print(
    f"ParallelPostFit: declared shape {lazy.shape}, a computed chunk has shape "
    f"{lazy.blocks[0].compute().shape}"
)

client.close()
cluster.close()
plt.show()
