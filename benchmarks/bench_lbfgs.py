"""UFLDL's sparse autoencoder exercise: our L-BFGS vs numpy + scipy's L-BFGS-B.

The problem (Ng's CS294A exercise): 10000 8x8 grey patches of scikit-learn's
sample images, UFLDL-normalised to [0.1, 0.9]; 64 -> 25 -> 64 with sigmoid code
and sigmoid output, cost

    J = 1/(2m) sum ||a3 - x||^2 + lambda/2 (||W1||^2 + ||W2||^2) + beta sum_j KL(rho || rho_hat_j)

with rho = 0.01, beta = 3, lambda = 1e-4, minimised by full-batch L-BFGS for the
same number of iterations from the same starting point.

Contenders
----------
ours        SparseAutoencoderTransformer(solver="lbfgs"): torch.optim.LBFGS, strong
            Wolfe line search, 100 correction pairs, float64, the whole fit
            (validation, diagnostics) included.
scipy m=100 scipy.optimize.minimize(method="L-BFGS-B", jac=True) on a hand-written,
            vectorised numpy cost and gradient (the UFLDL sparseAutoencoderCost),
            100 correction pairs like ours (and minFunc in UFLDL).
scipy m=10  the same with scipy's default of 10 correction pairs.

Tolerances are 0 so that every contender runs the full iteration budget (scipy may
stop earlier when its line search cannot progress; iterations are reported).

Run: python benchmarks/bench_lbfgs.py [--quick]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch
from _common import interleaved, machine, median, table
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning

from skl_sparse_ae import SparseAutoencoderTransformer
from skl_sparse_ae._device import make_generators
from skl_sparse_ae._model import SparseAutoencoder
from skl_sparse_ae.datasets import load_ufldl_patches

RHO, BETA, LAMBDA, HIDDEN = 0.01, 3.0, 1e-4, 25


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def cost_and_grad(theta, X, d, k):
    """UFLDL's sparseAutoencoderCost, vectorised numpy (rows are samples)."""
    m = X.shape[0]
    W1 = theta[: k * d].reshape(k, d)  # encoder, (hidden, visible)
    W2 = theta[k * d : 2 * k * d].reshape(k, d)  # decoder rows, (hidden, visible)
    b1 = theta[2 * k * d : 2 * k * d + k]
    b2 = theta[2 * k * d + k :]
    a2 = sigmoid(X @ W1.T + b1)
    a3 = sigmoid(a2 @ W2 + b2)
    rho_hat = np.clip(a2.mean(axis=0), 1e-6, 1 - 1e-6)
    diff = a3 - X
    kl = np.sum(RHO * np.log(RHO / rho_hat) + (1 - RHO) * np.log((1 - RHO) / (1 - rho_hat)))
    cost = (
        0.5 * np.sum(diff * diff) / m
        + 0.5 * LAMBDA * (np.sum(W1 * W1) + np.sum(W2 * W2))
        + BETA * kl
    )
    delta3 = diff * a3 * (1 - a3) / m
    sparsity_delta = BETA * (-RHO / rho_hat + (1 - RHO) / (1 - rho_hat)) / m
    delta2 = (delta3 @ W2.T + sparsity_delta) * a2 * (1 - a2)
    grad = np.concatenate(
        [
            (delta2.T @ X + LAMBDA * W1).ravel(),
            (a2.T @ delta3 + LAMBDA * W2).ravel(),
            delta2.sum(axis=0),
            delta3.sum(axis=0),
        ]
    )
    return cost, grad


def initial_theta(X):
    """The estimator's own starting point (same generator, same rule)."""
    cpu_gen, _ = make_generators(0, torch.device("cpu"))
    module = SparseAutoencoder(X.shape[1], HIDDEN, output_activation="sigmoid", dtype=torch.float64)
    module.reset_parameters(cpu_gen, torch.from_numpy(X).mean(dim=0))
    parts = [
        module.encoder_weights[0],
        module.decoder_weights[0],
        module.encoder_biases[0],
        module.output_bias,
    ]
    return np.concatenate([p.detach().numpy().ravel() for p in parts])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 iterations, 2 repeats")
    parser.add_argument("--n-patches", type=int, default=10000)
    parser.add_argument("--max-iter", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    max_iter = args.max_iter or (50 if args.quick else 200)
    repeats = args.repeats or (2 if args.quick else 3)

    X = load_ufldl_patches(n_patches=args.n_patches)
    d = X.shape[1]
    theta0 = initial_theta(X)
    # same cost at the same point: a check that the two objectives agree
    est0 = SparseAutoencoderTransformer(
        HIDDEN,
        output_activation="sigmoid",
        loss="mse",  # the UFLDL cost
        noise=0.0,
        sparsity_target=RHO,
        sparsity_weight=BETA,
        weight_decay=LAMBDA,
        solver="lbfgs",
        max_iter=max_iter,
        tol=0.0,
        device="cpu",
        random_state=0,
    )

    def ours(iterations):
        def run():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                est = SparseAutoencoderTransformer(**est0.get_params())
                est.set_params(max_iter=iterations).fit(X)
            return est.n_iter_, est.loss_curve_[-1]

        return run

    def scipy_lbfgs(maxcor, iterations):
        def run():
            res = minimize(
                cost_and_grad,
                theta0,
                args=(X, d, HIDDEN),
                jac=True,
                method="L-BFGS-B",
                options={"maxiter": iterations, "maxcor": maxcor, "ftol": 0.0, "gtol": 0.0},
            )
            return res.nit, float(res.fun)

        return run

    def contenders(iterations):
        return {
            "ours (torch L-BFGS, m=100)": ours(iterations),
            "numpy + scipy L-BFGS-B, m=100": scipy_lbfgs(100, iterations),
            "numpy + scipy L-BFGS-B, m=10": scipy_lbfgs(10, iterations),
        }

    start_cost = cost_and_grad(theta0, X, d, HIDDEN)[0]
    interleaved(contenders(5), 1, warmup=False)  # warm-up: imports, allocators, threads
    times, results = interleaved(contenders(max_iter), repeats, warmup=False)
    ref = median(times["ours (torch L-BFGS, m=100)"])
    rows = [
        [
            name,
            f"{median(t):.2f}",
            f"{median(t) / ref:.2f}",
            results[name][0],
            f"{results[name][1]:.5f}",
        ]
        for name, t in times.items()
    ]
    print(f"UFLDL exercise: {X.shape[0]} patches, 64 -> {HIDDEN}, max_iter={max_iter},")
    print(f"median of {repeats} interleaved runs after a warm-up; start cost {start_cost:.5f}")
    print(machine())
    print(
        table(
            rows,
            ["contender", "seconds", "time / ours", "iterations", "final cost"],
        )
    )


if __name__ == "__main__":
    main()
