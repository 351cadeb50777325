"""AuxK against no AuxK: dead units and FVU of TopK on digits (issue 13, item 4).

Digits in [0, 1] (the 1347 training rows of the 75/25 split), squared error, no
noise, ``random_state=0``; three settings: 512 units with k = 4 at Adam's 3e-3 for 60
epochs and at 1e-2 for 30 epochs, and 256 units with k = 8 at 3e-3 for 60 epochs.
"No AuxK" sets ``_sparsity.AUXK_WEIGHT`` to 0 for the run. Reported: dead units
(``dead_components_``, never active on the training rows) and the training FVU.

Run: OMP_NUM_THREADS=1 python benchmarks/bench_auxk.py   # about 1 min
"""

import warnings

from _common import machine, table
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import skl_sparse_ae._sparsity as sparsity
from skl_sparse_ae import SparseAutoencoderTransformer

SETTINGS = [(512, 4, 3e-3, 60), (512, 4, 1e-2, 30), (256, 8, 3e-3, 60)]


def main():
    warnings.simplefilter("ignore")
    X, y = load_digits(return_X_y=True)
    X_train = train_test_split(X / 16, test_size=0.25, random_state=0, stratify=y)[0]
    shipped = sparsity.AUXK_WEIGHT
    rows = []
    for units, k, step, epochs in SETTINGS:
        row = [f"{units} units, k = {k}, lr {step:g}, {epochs} epochs"]
        for weight in (shipped, 0.0):
            sparsity.AUXK_WEIGHT = weight
            sae = SparseAutoencoderTransformer(
                units,
                sparsity="topk",
                k=k,
                loss="mse",
                noise=0.0,
                learning_rate=step,
                max_iter=epochs,
                random_state=0,
            ).fit(X_train)
            row += [int(sae.dead_components_.sum()), f"{sae.fraction_variance_unexplained_:.4f}"]
        sparsity.AUXK_WEIGHT = shipped
        rows.append(row)
    print(machine())
    print(table(rows, ["setting", "AuxK dead", "AuxK FVU", "no AuxK dead", "no AuxK FVU"]))


if __name__ == "__main__":
    main()
