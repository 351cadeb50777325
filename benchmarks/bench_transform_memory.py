"""Peak memory of ``transform`` on 10^6 x 64 rows: bounded by the chunk, not by n.

Each measurement runs in a fresh subprocess: it makes ``X`` (float32, 10^6 x 64,
244 MiB), fits a 64 -> 64 model on 2000 rows, resets the kernel's peak-RSS mark
(``/proc/self/clear_refs``, Linux) and records the resident-set high-water mark
(``VmHWM``) while transforming. Reported: the extra memory over what was resident
before the call, against the size of the output (which ``transform`` must
allocate), and numpy's own allocations from ``tracemalloc``.

Contenders
----------
ours    ``sae.transform(X)``: chunks of ``_inference_rows`` rows under
        ``torch.inference_mode``, each written into the preallocated output.
naive   ``sae.module_.encode(torch.from_numpy(X))[1].numpy()`` under
        ``inference_mode``: the whole input at once, as a hand-written transform
        would do; its intermediates (pre-activation, code) are full size.

Run: python benchmarks/bench_transform_memory.py [--n-samples 1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from _common import machine, table

CHILD = r"""
import json, sys, time, tracemalloc, warnings
import numpy as np, torch
from skl_sparse_ae import SparseAutoencoderTransformer

n, mode = int(sys.argv[1]), sys.argv[2]

def status():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return {k: int(fields[k].split()[0]) * 1024 for k in ("VmRSS", "VmHWM")}

X = np.random.default_rng(0).random((n, 64), dtype=np.float32)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    sae = SparseAutoencoderTransformer(64, max_iter=1, random_state=0).fit(X[:2000])
sae.transform(X[:10])  # warm-up: lazy initialisations
if mode == "naive":
    def run():
        with torch.inference_mode():
            return sae.module_.encode(torch.from_numpy(X))[1].numpy()
else:
    def run():
        return sae.transform(X)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status()["VmRSS"]
tracemalloc.start()
tic = time.perf_counter()
out = run()
seconds = time.perf_counter() - tic
_, numpy_peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
peak = status()["VmHWM"]
print(json.dumps({
    "extra": peak - before, "output": out.nbytes, "numpy_peak": numpy_peak,
    "seconds": seconds, "chunk_rows": sae._inference_rows(sae.module_), "input": X.nbytes,
}))
"""


def measure(n, mode):
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), mode], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=1_000_000)
    args = parser.parse_args()
    mib = 2.0**20
    rows = []
    for n in (args.n_samples // 10, args.n_samples):
        for mode in ("ours", "naive"):
            r = measure(n, mode)
            rows.append(
                [
                    mode,
                    f"{n:,}",
                    f"{r['output'] / mib:.0f}",
                    f"{r['extra'] / mib:.0f}",
                    f"{(r['extra'] - r['output']) / mib:.0f}",
                    f"{r['extra'] / r['output']:.2f}",
                    f"{r['numpy_peak'] / mib:.0f}",
                    f"{r['seconds']:.2f}",
                ]
            )
    chunk = r["chunk_rows"]
    print(
        f"transform of n x 64 float32 rows by a 64 -> 64 model; chunks of {chunk:,} rows "
        f"({chunk * 64 * 4 / mib:.0f} MiB of input each); {machine()}"
    )
    print(
        table(
            rows,
            [
                "contender",
                "rows",
                "output MiB",
                "peak extra RSS MiB",
                "beyond the output MiB",
                "extra / output",
                "numpy peak MiB (tracemalloc)",
                "seconds",
            ],
        )
    )


if __name__ == "__main__":
    main()
