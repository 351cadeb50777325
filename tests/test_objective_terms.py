"""Every term of the objective J against an independent numpy computation.

The other tests compare the autograd objective with the written-out step, so a bug
planted in both (the ½ of the squared error dropped, λ for λ/2, ρ and ρ̂ swapped,
β ignored) would pass them. Here each term is pinned, on both paths, against

- literal values worked out by hand, mostly on a model whose code is constant
  (W = 0), and
- the formulas of the objective (below), written in numpy (float64) from scratch,
  on a tiny model (3 samples, 2 features, 2 units) with weights set by hand
  (AuxK, which only the autograd path computes, on that path only).

For a batch of m samples,

    J = (1/m) Σ_i ℓ(x_i, x̂_i) + β Ω(h) + (λ/2) Σ_l ‖W_l‖²_F  (+ AuxK for TopK)

with ℓ = ½ ‖(x̂ - x)/s‖² (s the standardisation scale, 1 if none) or the binary
cross-entropy summed over features, Ω = Σ_j KL(ρ ‖ ρ̂_j) (ρ̂ the batch mean of a
sigmoid code, or of (1 + h)/2 for tanh) or (1/m) Σ_ij |h_ij|; biases are not decayed
and tied weights are decayed once.
"""

import math

import numpy as np
import pytest
import torch

from skl_sparse_ae._analytic import analytic_step
from skl_sparse_ae._model import SparseAutoencoder
from skl_sparse_ae._objective import Objective, objective

# ------------------------------------------------------------------ the tiny case
X = np.array([[0.2, 0.9], [0.7, 0.1], [0.5, 0.4]])  # in [0, 1]: also valid for BCE
W = np.array([[0.5, -1.0], [1.5, 0.25]])  # encoder, (units, features)
C = np.array([0.1, -0.2])  # encoder bias
V = np.array([[0.8, -0.3], [-0.6, 1.2]])  # decoder, (units, features)
B = np.array([0.05, 0.3])  # output bias
MEAN = np.array([0.45, 0.5])  # a standardisation: (x - MEAN) / SCALE
SCALE = 0.35
RTOL = 1e-12


def _module(W=W, C=C, V=V, B=B, *, activation="sigmoid", output="linear", tied=False, k=None):
    module = SparseAutoencoder(
        2,
        2,
        activation=activation,
        output_activation=output,
        k=k,
        sparsity=None if k is None else "topk",
        tied_weights=tied,
        dtype=torch.float64,
    )
    with torch.no_grad():
        module.encoder_weights[0].copy_(torch.as_tensor(W, dtype=torch.float64))
        module.encoder_biases[0].copy_(torch.as_tensor(C, dtype=torch.float64))
        if not tied:
            module.decoder_weight(1).copy_(torch.as_tensor(V, dtype=torch.float64))
        module.output_bias.copy_(torch.as_tensor(B, dtype=torch.float64))
    return module


def _standardize(module, mean=MEAN, scale=SCALE):
    module.set_standardization(torch.as_tensor(mean, dtype=torch.float64), scale)
    return module


def _autograd_total(module, x, spec):
    x = torch.as_tensor(x, dtype=torch.float64)
    return float(objective(module, x, x, spec).total.detach())


def _analytic_total(module, x, spec):
    """The total the written-out step reports; the step itself changes nothing (lr 0)."""
    x = torch.as_tensor(x, dtype=torch.float64)
    before = [p.detach().clone() for p in module.parameters()]
    optimizer = torch.optim.SGD(module.parameters(), lr=0.0)
    total = float(analytic_step(module, optimizer, x, spec).total)
    for p, q in zip(module.parameters(), before):
        assert torch.equal(p.detach(), q)
    return total


PATHS = {"autograd": _autograd_total, "analytic": _analytic_total}


def _totals(make_module, x, spec):
    """J from both paths, each on a fresh module (the step sets gradients)."""
    return {name: fn(make_module(), x, spec) for name, fn in PATHS.items()}


def _assert_totals(make_module, x, spec, want):
    got = _totals(make_module, x, spec)
    for name, value in got.items():
        assert value == pytest.approx(want, rel=RTOL, abs=1e-14), (name, got, want)


# ------------------------------------------------------------ the numpy reference
def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


_ACT = {"sigmoid": _sigmoid, "tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0)}


def _np_forward(x, W, C, V, B, activation="sigmoid", mean=None, scale=1.0):
    """(code, logits) of the one-layer model, the logits in the units of x."""
    mean = np.zeros(x.shape[1]) if mean is None else mean
    u = (x - mean) / scale
    h = _ACT[activation](u @ W.T + C)
    logits = scale * (h @ V + B) + mean
    return h, logits


def _np_half_squared_error(x_hat, x, scale=1.0):
    r = (x_hat - x) / scale
    return np.mean(0.5 * np.sum(r**2, axis=1))


def _np_bce(logits, x):
    p = _sigmoid(logits)
    per_entry = -(x * np.log(p) + (1.0 - x) * np.log(1.0 - p))
    return np.mean(np.sum(per_entry, axis=1))


def _np_kl(rho, h, activation):
    a = (1.0 + h) / 2.0 if activation == "tanh" else h
    rho_hat = a.mean(axis=0)
    return np.sum(rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat)))


def _np_l1(h):
    return np.sum(np.abs(h)) / h.shape[0]


def _np_decay(lam, *weights):
    return 0.5 * lam * sum(np.sum(w**2) for w in weights)


# ----------------------------------------------------------- worked out by hand
# W = 0 and c = 0: every sigmoid unit gives 0.5 on every sample, every tanh unit 0.
ZERO = np.zeros((2, 2))
EYE = np.eye(2)
X_HAND = np.array([[0.5, 1.5], [1.5, 0.5], [0.5, 0.5]])


def test_half_squared_error_by_hand():
    """x̂ = 0.5 V + b = (0.5, 0.5): residuals (0, -1), (-1, 0), (0, 0).

    ½ Σ ‖r‖² = ½ + ½ + 0 = 1, over m = 3 samples: J = 1/3 (2/3 without the ½).
    """
    spec = Objective(loss="mse")
    _assert_totals(lambda: _module(ZERO, [0, 0], EYE, [0, 0]), X_HAND, spec, 1.0 / 3.0)


def test_half_squared_error_is_on_the_standardised_scale_by_hand():
    """Mean 0, scale s = 2: x̂ = s (0.5 V + b) + μ = (1, 1) for x = 2 X_HAND.

    Residuals (x̂ - x) / s are again (0, -1), (-1, 0), (0, 0): J = 1/3 (4/3 in the
    units of x, 2/3 without the ½).
    """
    spec = Objective(loss="mse")

    def make():
        return _standardize(_module(ZERO, [0, 0], EYE, [0, 0]), mean=[0.0, 0.0], scale=2.0)

    _assert_totals(make, 2.0 * X_HAND, spec, 1.0 / 3.0)


def test_cross_entropy_by_hand():
    """V = 0, b = 0: every logit is 0, x̂ = ½, each entry costs log 2 whatever x is.

    Two features per sample: J = 2 log 2.
    """
    spec = Objective(loss="bce")
    x = np.array([[0.0, 1.0], [1.0, 0.0], [0.25, 0.5]])
    make = lambda: _module(ZERO, [0, 0], ZERO, [0, 0], output="sigmoid")  # noqa: E731
    _assert_totals(make, x, spec, 2.0 * math.log(2.0))


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_kl_penalty_by_hand(activation):
    """ρ̂ = ½ for both units (sigmoid 0.5, or tanh 0 mapped to (1 + 0)/2).

    β Σ_j KL(ρ ‖ ½) = 2 β (ρ log 2ρ + (1 - ρ) log 2(1 - ρ)); with ρ = 0.05, β = 3:
    2.9678..., against 2 β KL(½ ‖ ρ) = 4.9822... with ρ and ρ̂ swapped. The
    reconstruction (x̂ = x on every sample) costs nothing.
    """
    rho, beta = 0.05, 3.0
    h = 0.5 if activation == "sigmoid" else 0.0
    x = np.full((3, 2), h) @ EYE + np.array([0.1, -0.2])  # x̂ = h V + b exactly
    spec = Objective(loss="mse", sparsity="kl", sparsity_target=rho, sparsity_weight=beta)
    want = 2 * beta * (rho * math.log(2 * rho) + (1 - rho) * math.log(2 * (1 - rho)))
    assert want == pytest.approx(2.96779, abs=1e-5)
    make = lambda: _module(ZERO, [0, 0], EYE, [0.1, -0.2], activation=activation)  # noqa: E731
    _assert_totals(make, x, spec, want)


def test_l1_penalty_by_hand():
    """tanh code h = (tanh 0.5, tanh(-1)) on every sample (W = 0, c = (0.5, -1)).

    β (1/m) Σ_ij |h_ij| = β (tanh 0.5 + tanh 1); the reconstruction is exact.
    """
    beta = 0.7
    h = np.tanh([0.5, -1.0])
    x = np.tile(h, (3, 1))  # V = I, b = 0: x̂ = h
    spec = Objective(loss="mse", sparsity="l1", sparsity_weight=beta)
    want = beta * (math.tanh(0.5) + math.tanh(1.0))
    make = lambda: _module(ZERO, [0.5, -1.0], EYE, [0, 0], activation="tanh")  # noqa: E731
    _assert_totals(make, x, spec, want)


@pytest.mark.parametrize("tied", [False, True])
def test_weight_decay_by_hand(tied):
    """λ = 0.1; ‖W‖² = 1² + 2² = 5, ‖V‖² = 3² = 9 (untied), biases of 10 not decayed.

    Untied: (λ/2)(5 + 9) = 0.7; tied (V = W, one matrix): (λ/2) 5 = 0.25.
    The term is J(λ) - J(0) on each path.
    """
    lam = 0.1
    W_hand = np.array([[1.0, 0.0], [0.0, -2.0]])
    V_hand = np.array([[0.0, 3.0], [0.0, 0.0]])
    big = [10.0, 10.0]
    want = 0.25 if tied else 0.7

    def make():
        return _module(W_hand, big, V_hand, big, tied=tied)

    with_decay = _totals(make, X, Objective(loss="mse", weight_decay=lam))
    without = _totals(make, X, Objective(loss="mse", weight_decay=0.0))
    for name in PATHS:
        assert with_decay[name] - without[name] == pytest.approx(want, rel=1e-12), name


# ------------------------------------------------ against the numpy reference
@pytest.mark.parametrize("standardized", [False, True])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_squared_error_matches_numpy(activation, standardized):
    mean, scale = (MEAN, SCALE) if standardized else (None, 1.0)

    def make():
        module = _module(activation=activation)
        return _standardize(module) if standardized else module

    _, x_hat = _np_forward(X, W, C, V, B, activation, mean, scale)
    want = _np_half_squared_error(x_hat, X, scale)
    _assert_totals(make, X, Objective(loss="mse"), want)


def test_squared_error_with_a_sigmoid_output_matches_numpy():
    _, logits = _np_forward(X, W, C, V, B)
    want = _np_half_squared_error(_sigmoid(logits), X)
    _assert_totals(lambda: _module(output="sigmoid"), X, Objective(loss="mse"), want)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_cross_entropy_matches_numpy(activation):
    _, logits = _np_forward(X, W, C, V, B, activation)
    want = _np_bce(logits, X)
    spec = Objective(loss="bce")
    _assert_totals(lambda: _module(activation=activation, output="sigmoid"), X, spec, want)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
@pytest.mark.parametrize("beta", [0.5, 3.0])
def test_kl_penalty_matches_numpy(activation, beta):
    """β KL(ρ ‖ ρ̂) is J(β) minus the reconstruction term, on both paths."""
    rho = 0.2
    h, x_hat = _np_forward(X, W, C, V, B, activation)
    reconstruction = _np_half_squared_error(x_hat, X)
    penalty = _np_kl(rho, h, activation)
    assert penalty > 0.05  # the code is far enough from ρ that the term matters
    spec = Objective(loss="mse", sparsity="kl", sparsity_target=rho, sparsity_weight=beta)
    _assert_totals(lambda: _module(activation=activation), X, spec, reconstruction + beta * penalty)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_l1_penalty_matches_numpy(activation):
    beta = 0.3
    h, x_hat = _np_forward(X, W, C, V, B, activation)
    want = _np_half_squared_error(x_hat, X) + beta * _np_l1(h)
    spec = Objective(loss="mse", sparsity="l1", sparsity_weight=beta)
    _assert_totals(lambda: _module(activation=activation), X, spec, want)


@pytest.mark.parametrize("tied", [False, True])
def test_weight_decay_matches_numpy(tied):
    lam = 0.05
    V_used = W if tied else V
    _, x_hat = _np_forward(X, W, C, V_used, B)
    weights = (W,) if tied else (W, V)
    want = _np_half_squared_error(x_hat, X) + _np_decay(lam, *weights)
    spec = Objective(loss="mse", weight_decay=lam)
    _assert_totals(lambda: _module(tied=tied), X, spec, want)


@pytest.mark.parametrize(
    ("loss", "sparsity", "activation", "tied"),
    [
        ("mse", "kl", "sigmoid", False),
        ("mse", "kl", "tanh", True),
        ("mse", "l1", "relu", False),
        ("bce", "kl", "sigmoid", True),
        ("bce", "l1", "tanh", False),
    ],
)
def test_total_matches_numpy(loss, sparsity, activation, tied):
    """Every term at once: reconstruction + β Ω + (λ/2) Σ ‖W‖², standardised for MSE."""
    rho, beta, lam = 0.1, 0.4, 0.03
    bce = loss == "bce"
    mean, scale = (None, 1.0) if bce else (MEAN, SCALE)
    V_used = W if tied else V
    h, logits = _np_forward(X, W, C, V_used, B, activation, mean, scale)
    if bce:
        reconstruction = _np_bce(logits, X)
    else:
        reconstruction = _np_half_squared_error(logits, X, scale)
    penalty = _np_kl(rho, h, activation) if sparsity == "kl" else _np_l1(h)
    decay = _np_decay(lam, *((W,) if tied else (W, V)))
    want = reconstruction + beta * penalty + decay

    def make():
        module = _module(activation=activation, output="sigmoid" if bce else "linear", tied=tied)
        return module if bce else _standardize(module)

    spec = Objective(
        loss=loss,
        sparsity=sparsity,
        sparsity_target=rho,
        sparsity_weight=beta,
        weight_decay=lam,
    )
    _assert_totals(make, X, spec, want)


def test_topk_auxk_term_matches_numpy():
    """TopK (autograd path only): reconstruction + AuxK's 1/32 weight times

    L_aux = (1/2m) Σ_i ‖α z_aux,i V - e_i‖² / s_e², α = max(0, Σ⟨ê, e⟩ / Σ‖ê‖²) the best
    scale of ê = z_aux V over the batch, e = (x - x̂)/s, s_e² the variance of
    e over all its entries (each feature centred on its batch mean), z_aux the
    ReLU'd pre-code of the dead unit (unit 1, dead: it has not fired for longer than
    ``dead_after`` samples). The TopK input is centred on the output bias b.
    """
    W_k = np.array([[1.0, -0.5], [0.4, 0.9]])
    C_k = np.array([0.05, 1.5])  # unit 1 has a positive pre-code on every sample
    module = _standardize(_module(W_k, C_k, V, B, activation="relu", k=1))
    with torch.no_grad():
        module.samples_since_fired.copy_(torch.tensor([0, 10]))
    spec = Objective(loss="mse", sparsity="topk", k_aux=1, dead_after=5)

    u = (X - MEAN) / SCALE - B
    pre = u @ W_k.T + C_k
    code = np.where(pre == pre.max(axis=1, keepdims=True), np.maximum(pre, 0.0), 0.0)
    x_hat = SCALE * (code @ V + B) + MEAN
    reconstruction = _np_half_squared_error(x_hat, X, SCALE)
    e = (X - x_hat) / SCALE
    s2 = np.mean((e - e.mean(axis=0)) ** 2)
    z_aux = np.zeros_like(pre)
    z_aux[:, 1] = np.maximum(pre[:, 1], 0.0)
    assert (z_aux[:, 1] > 0).all()
    e_hat = z_aux @ V
    alpha = max(0.0, np.vdot(e_hat, e) / np.vdot(e_hat, e_hat))
    aux = np.mean(0.5 * np.sum((alpha * e_hat - e) ** 2, axis=1)) / s2
    want = reconstruction + aux / 32.0
    assert aux / 32.0 > 1e-3 * want  # the term is not negligible

    got = _autograd_total(module, X, spec)
    assert got == pytest.approx(want, rel=RTOL)
