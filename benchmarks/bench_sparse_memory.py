"""Peak memory of ``fit`` and ``transform`` on a sparse matrix: bounded by the batch.

Each measurement runs in a fresh subprocess: it makes a CSR matrix ``X`` of
``n x d`` at the given density (values uniform in (0, 1], float64, as a TF-IDF
matrix), warms the estimator up on 500 rows (lazy imports and initialisations),
resets the kernel's peak-RSS mark (``/proc/self/clear_refs``, Linux) and records
the resident-set high-water mark (``VmHWM``) during the call. Reported: the extra
memory over what was resident before the call, against the stored CSR matrix and
the dense matrix it stands for (which is never formed). ``transform`` is measured
in a process whose model was fitted on 2000 rows (the same shape), so that the
memory a full fit freed cannot hide its own.

``fit`` runs ``--max-iter`` epochs (default 1: memory does not grow with epochs;
each epoch's batches are densified one at a time) with the defaults otherwise
(128 units, batch 200, BCE for data in [0, 1]).

Run: python benchmarks/bench_sparse_memory.py [--n-samples 50000 --n-features 20000
--density 0.001 --max-iter 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from _common import machine, table

CHILD = r"""
import json, sys, time, warnings
import numpy as np, scipy.sparse as sp
from skl_sparse_ae import SparseAutoencoderTransformer

n, d, density, max_iter, mode = (
    int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
)

def status():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return {k: int(fields[k].split()[0]) * 1024 for k in ("VmRSS", "VmHWM")}

rng = np.random.default_rng(0)
X = sp.random(n, d, density=density, format="csr", random_state=rng)
X.data = 1.0 - X.data  # in (0, 1]
sae = SparseAutoencoderTransformer(max_iter=max_iter, random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    sae.fit(X[:500])  # warm-up
    sae.transform(X[:10])
    if mode == "transform":  # the same model shape, without a full fit's freed memory
        sae.fit(X[:2000])
run = (lambda: sae.fit(X)) if mode == "fit" else (lambda: sae.transform(X))
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status()["VmRSS"]
tic = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    run()
seconds = time.perf_counter() - tic
peak = status()["VmHWM"]
stored = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
print(json.dumps({
    "extra": peak - before, "before": before, "stored": stored, "dense": n * d * 8,
    "seconds": seconds, "nnz": X.nnz,
}))
"""


def measure(n, d, density, max_iter, mode):
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), str(d), str(density), str(max_iter), mode],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=50_000)
    parser.add_argument("--n-features", type=int, default=20_000)
    parser.add_argument("--density", type=float, default=0.001)
    parser.add_argument("--max-iter", type=int, default=1)
    parser.add_argument("--transform-only", action="store_true")
    args = parser.parse_args()
    mib = 2.0**20
    rows = []
    modes = ("fit", "transform") if not args.transform_only else ("transform",)
    for mode in modes:
        r = measure(args.n_samples, args.n_features, args.density, args.max_iter, mode)
        rows.append(
            [
                mode,
                f"{r['stored'] / mib:.1f}",
                f"{r['dense'] / mib:,.0f}",
                f"{r['before'] / mib:.0f}",
                f"{r['extra'] / mib:.0f}",
                f"{r['extra'] / r['dense']:.3f}",
                f"{r['seconds']:.1f}",
            ]
        )
    print(
        f"{args.n_samples:,} x {args.n_features:,} CSR at density {args.density} "
        f"({r['nnz']:,} stored values), float64; defaults (128 units), fit for "
        f"{args.max_iter} epoch(s); {machine()}"
    )
    print(
        table(
            rows,
            [
                "call",
                "CSR stored MiB",
                "dense would be MiB",
                "RSS before MiB",
                "peak extra RSS MiB",
                "extra / dense",
                "seconds",
            ],
        )
    )


if __name__ == "__main__":
    main()
