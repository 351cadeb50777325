"""The sparsity family: penalties and activations, TopK, denoising, tied weights, diagnostics.

The pure functions of ``_sparsity`` are checked against formulas written out in numpy;
the estimator-level behaviour (TopK's constraints, denoising, tied weights and the
diagnostics after ``fit``) against values computed independently from ``transform`` and
``inverse_transform``. Quality (how good the models are) lives in ``test_quality.py``.
"""

import dataclasses
import re
import tracemalloc
import warnings

import numpy as np
import pytest
import torch
from classic import CLASSIC
from sklearn.exceptions import ConvergenceWarning

from skl_sparse_ae import SparseAutoencoderTransformer
from skl_sparse_ae._analytic import analytic_step, supports_analytic_step
from skl_sparse_ae._diagnostics import fitted_diagnostics
from skl_sparse_ae._objective import Objective, objective
from skl_sparse_ae._sparsity import (
    ACTIVATIONS,
    SPARSITY,
    Activation,
    Sparsity,
    activity_threshold,
    auxk_loss,
    kl_divergence,
    kl_divergence_and_grad,
    kl_penalty,
    l1_penalty,
    topk_activation,
)
from skl_sparse_ae._training import Schedule, _noise_fn, corrupt, train_step


@pytest.fixture
def X(digits01):
    """300 digits in [0, 1], float64 (a writeable copy)."""
    return np.array(digits01[:300])


def _fit(X, **params):
    params = {**CLASSIC, "n_components": 16, "max_iter": 5, "random_state": 0, **params}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return SparseAutoencoderTransformer(**params).fit(X)


def _diagnose(sae, X, rows=256):
    """The fitted diagnostics of ``sae``'s module on ``X``, in chunks of ``rows``."""
    module = sae.module_
    threshold = activity_threshold(module.sparsity, module.activation)
    return fitted_diagnostics(module, torch.from_numpy(X), threshold, rows, "test")


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# --------------------------------------------------------------------------- KL
def test_kl_divergence_is_the_bernoulli_kl_summed_over_units():
    rho = 0.05
    rho_hat = np.random.RandomState(0).uniform(0.01, 0.99, size=20)
    expected = np.sum(rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat)))
    got = kl_divergence(rho, torch.as_tensor(rho_hat))
    assert got.shape == ()
    assert float(got) == pytest.approx(expected, rel=1e-12)


def test_kl_divergence_and_its_gradient_in_one_pass():
    """The fused value and gradient the training step uses: the Bernoulli KL written out
    in numpy, and its derivative (r - rho) / (r (1 - r)), zero for the two clipped units
    (0 and 1 - 1e-9), as autograd of the clipped formula gives."""
    rho = 0.05
    rho_hat = np.r_[np.random.RandomState(1).uniform(0.01, 0.99, size=8), 0.0, 1 - 1e-9]
    r = np.clip(rho_hat, 1e-6, 1 - 1e-6)
    expected = np.sum(rho * np.log(rho / r) + (1 - rho) * np.log((1 - rho) / (1 - r)))
    derivative = np.where(r == rho_hat, (r - rho) / (r * (1 - r)), 0.0)
    value, grad = kl_divergence_and_grad(rho, torch.as_tensor(rho_hat))
    assert float(value) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(grad.numpy(), derivative, rtol=1e-12, atol=0)
    leaf = torch.as_tensor(rho_hat).requires_grad_()
    kl_divergence(rho, leaf).backward()
    np.testing.assert_allclose(grad.numpy(), leaf.grad.numpy(), rtol=1e-12, atol=0)


def test_kl_divergence_is_zero_at_the_target_and_positive_elsewhere():
    rho = 0.1
    assert float(kl_divergence(rho, torch.full((7,), rho, dtype=torch.float64))) == 0.0
    for value in (0.02, 0.09, 0.11, 0.5):
        assert float(kl_divergence(rho, torch.full((3,), value, dtype=torch.float64))) > 0


def test_kl_divergence_of_saturated_units_is_large_but_finite():
    value = kl_divergence(0.05, torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert torch.isfinite(value) and float(value) > 10


def test_kl_penalty_uses_the_batch_mean_and_maps_tanh_codes_to_0_1():
    code = torch.rand(50, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    rho = 0.2
    sigmoid = kl_penalty(code, rho, ACTIVATIONS["sigmoid"])
    assert float(sigmoid) == pytest.approx(float(kl_divergence(rho, code.mean(dim=0))))
    # a tanh code h in (-1, 1) enters as (1 + h) / 2: 2a - 1 gives back a
    tanh = kl_penalty(2 * code - 1, rho, ACTIVATIONS["tanh"])
    assert float(tanh) == pytest.approx(float(sigmoid), rel=1e-12)


def test_kl_penalty_rejects_unbounded_codes():
    with pytest.raises(ValueError, match="activation='relu'"):
        kl_penalty(torch.ones(3, 2), 0.1, ACTIVATIONS["relu"])


# --------------------------------------------------------------------------- L1
def test_l1_penalty_is_the_summed_absolute_code_averaged_over_samples():
    code = _randn(30, 9)
    expected = np.abs(code.numpy()).sum(axis=1).mean()
    assert float(l1_penalty(code)) == pytest.approx(expected, rel=1e-12)


# ------------------------------------------------------------------------- TopK
@pytest.mark.parametrize("k", [1, 3, 7])
def test_topk_activation_keeps_exactly_the_k_largest_and_relus_them(k):
    pre = _randn(40, 7, seed=k)
    got = topk_activation(pre, k).numpy()
    pre = pre.numpy()
    expected = np.zeros_like(pre)
    rows = np.arange(pre.shape[0])[:, None]
    largest = np.argsort(-pre, axis=1)[:, :k]
    expected[rows, largest] = np.maximum(pre[rows, largest], 0)
    np.testing.assert_array_equal(got, expected)
    assert ((got != 0).sum(axis=1) <= k).all()
    # where the k largest are all positive there are exactly k non-zeros
    positive = np.sort(pre, axis=1)[:, -k] > 0
    assert positive.any()
    assert ((got[positive] != 0).sum(axis=1) == k).all()


def test_topk_activation_gradient_reaches_only_the_kept_positive_units():
    pre = _randn(10, 6).requires_grad_()
    code = topk_activation(pre, 2)
    code.sum().backward()
    np.testing.assert_array_equal(pre.grad.numpy(), (code > 0).double().numpy())


# ------------------------------------------------------------------------- AuxK
def _auxk_problem(n_dead, seed=0):
    """Pre-codes, decoder rows and a residual that the dead units partly explain
    (so that AuxK's best scale is positive and its gradient not zero)."""
    pre = _randn(12, 8, seed=seed).requires_grad_()
    decoder = _randn(8, 5, seed=seed + 1).requires_grad_()
    with torch.no_grad():
        explained = pre.clamp_min(0)[:, 8 - n_dead :] @ decoder[8 - n_dead :] if n_dead else 0.0
    residual = 0.5 * explained + _randn(12, 5, seed=seed + 2)
    dead = torch.zeros(8, dtype=torch.bool)
    dead[8 - n_dead :] = True
    return pre, decoder, residual, dead


def test_auxk_loss_is_zero_without_dead_units():
    pre, decoder, residual, dead = _auxk_problem(0)
    loss = auxk_loss(pre, residual, dead, 4, lambda z: z @ decoder)
    assert float(loss.detach()) == 0.0
    if loss.requires_grad:
        loss.backward()
        assert not pre.grad.any() and not decoder.grad.any()


def test_auxk_loss_matches_the_formula():
    """Half the squared error of the dead units' TopK, at the one scale alpha that
    fits the residual best (least squares over the batch, at least 0), over the
    residual's variance around its batch mean (openai/sparse_autoencoder's
    normalized_mse)."""
    pre, decoder, residual, dead = _auxk_problem(4)
    k_aux = 2
    got = float(auxk_loss(pre, residual, dead, k_aux, lambda z: z @ decoder).detach())
    p, w, e = pre.detach().numpy(), decoder.detach().numpy(), residual.numpy()
    z = np.zeros_like(p)
    for i, row in enumerate(p):
        candidates = np.flatnonzero(dead.numpy())
        top = candidates[np.argsort(-row[candidates])[:k_aux]]
        z[i, top] = np.maximum(row[top], 0)
    e_hat = z @ w
    alpha = max(0.0, np.vdot(e_hat, e) / np.vdot(e_hat, e_hat))
    assert 0.0 < alpha != 1.0  # the scale matters in this problem
    expected = (
        0.5 * ((alpha * e_hat - e) ** 2).sum(axis=1).mean() / ((e - e.mean(axis=0)) ** 2).mean()
    )
    assert got == pytest.approx(expected, rel=1e-12)


def test_auxk_loss_does_not_ask_dead_units_to_shrink():
    """Scaling the dead units' code leaves AuxK unchanged: only its direction counts.

    (With the unscaled loss, 32 dead units with random decoder rows overshoot the
    residual and AuxK lowers all their pre-activations: measured on digits, 512
    units, k = 4, 286 dead units against 196 without AuxK; 142 with this loss.)
    """
    pre, decoder, residual, dead = _auxk_problem(4)
    values = [
        float(auxk_loss(scale * pre, residual, dead, 2, lambda z: z @ decoder).detach())
        for scale in (1.0, 3.0)
    ]
    assert values[1] == pytest.approx(values[0], rel=1e-9)


@pytest.mark.parametrize("n_dead", [1, 3, 8])
def test_auxk_gradient_reaches_only_dead_units(n_dead):
    pre, decoder, residual, dead = _auxk_problem(n_dead, seed=n_dead)
    auxk_loss(pre, residual, dead, 4, lambda z: z @ decoder).backward()
    live = ~dead
    assert not pre.grad[:, live].any()
    assert not decoder.grad[live].any()
    assert pre.grad[:, dead].abs().sum() > 0
    assert decoder.grad[dead].abs().sum() > 0


def test_auxk_loss_does_not_depend_on_the_residual_scale():
    """AuxK is normalised by the residual, as openai/sparse_autoencoder's AuxK.

    Late in training the residual is small; an unnormalised AuxK then fades away
    and dead units stay dead (measured on digits, 256 units, k=8, 100 epochs:
    10/256 dead units with the unnormalised loss, 2/256 with this one).
    """
    pre, decoder, residual, dead = _auxk_problem(3)
    values = []
    for scale in (1.0, 1e-2):

        def decode(z, scale=scale):
            return scale * (z @ decoder)

        values.append(float(auxk_loss(pre, scale * residual, dead, 2, decode).detach()))
    assert values[1] == pytest.approx(values[0], rel=1e-9)


def test_auxk_loss_is_finite_for_a_perfect_reconstruction():
    pre, decoder, residual, dead = _auxk_problem(3)
    loss = auxk_loss(pre, torch.zeros_like(residual), dead, 2, lambda z: z @ decoder)
    assert torch.isfinite(loss)


def test_registries_are_the_allowed_parameter_values():
    constraints = SparseAutoencoderTransformer._parameter_constraints
    assert set(constraints["activation"][0].options) == set(ACTIVATIONS)
    assert set(constraints["sparsity"][0].options) == set(SPARSITY)
    for name, mech in SPARSITY.items():
        assert mech.name == name
        assert any(mech.accepts(activation) for activation in ACTIVATIONS.values())


# ------------------------------------------------------------- TopK estimator
@pytest.mark.parametrize(
    "params",
    [
        {"k": 1},
        {"k": 3},
        {"k": 3, "tied_weights": True},
        {"k": 2, "hidden_layer_sizes": (24,), "activation": "relu"},
        {"k": 3, "loss": "bce"},
    ],
)
def test_topk_transform_has_at_most_k_non_zeros_per_row(X, params):
    sae = _fit(X, sparsity="topk", **params)
    codes = sae.transform(X)
    counts = (codes != 0).sum(axis=1)
    assert counts.max() <= params["k"]
    assert (codes >= 0).all()
    assert counts.mean() > params["k"] - 1  # and (nearly) always exactly k
    assert sae.mean_l0_ <= params["k"]


def test_topk_default_k_is_an_eighth_of_the_code(X):
    codes = _fit(X, sparsity="topk", n_components=32).transform(X)
    assert (codes != 0).sum(axis=1).max() == 4


@pytest.mark.parametrize("k", [17, 100])
def test_topk_k_larger_than_the_code_is_a_clear_error(X, k):
    sae = SparseAutoencoderTransformer(n_components=16, sparsity="topk", k=k)
    with pytest.raises(ValueError, match=rf"1 <= k <= n_components=16; got k={k}"):
        sae.fit(X)
    assert not hasattr(sae, "module_")


@pytest.mark.parametrize("k", [0, -2, 2.5, "3"])
def test_topk_k_must_be_a_positive_integer(X, k):
    with pytest.raises(ValueError, match="'k' parameter"):
        SparseAutoencoderTransformer(n_components=16, sparsity="topk", k=k).fit(X)


@pytest.mark.parametrize("tied", [False, True])
def test_topk_decoder_rows_stay_unit_norm_through_training(X, tied):
    sae = _fit(X, sparsity="topk", k=2, tied_weights=tied)
    module = sae.module_
    rows = module.decoder_weight(1).detach().norm(dim=1)
    torch.testing.assert_close(rows, torch.ones_like(rows))
    # components_ are the rows in the units of X: norm = the standardisation scale
    np.testing.assert_allclose(
        np.linalg.norm(sae.components_, axis=1), float(module.input_scale), rtol=1e-6
    )


class _RecordParallelGrad:
    """An optimiser that records how much gradient lies along each decoder row."""

    def __init__(self, module):
        self.module = module
        self.top = module.decoder_weight(1)
        self.parallel = []

    def zero_grad(self, set_to_none=True):
        self.module.zero_grad(set_to_none=set_to_none)

    def step(self):
        with torch.no_grad():
            self.parallel.append(float((self.top.grad * self.top).sum(dim=1).abs().max()))


def test_topk_training_projects_out_the_parallel_decoder_gradient(X):
    """Every TopK step removes the gradient along the decoder rows before stepping."""
    sae = _fit(X, sparsity="topk", k=2, max_iter=1)
    module, xt = sae.module_, torch.from_numpy(X[:50])
    spec = Objective(sparsity="topk", k_aux=8, dead_after=300)
    recorder = _RecordParallelGrad(module)
    for _ in range(3):
        train_step(module, recorder, xt, spec)
    assert len(recorder.parallel) == 3 and max(recorder.parallel) < 1e-10
    # without the projection (a mechanism without the decoder constraint) it is there
    module.center_input = False
    recorder = _RecordParallelGrad(module)
    train_step(module, recorder, xt, spec)
    assert recorder.parallel[0] > 1e-4


@pytest.fixture
def registered():
    """``registered(entry)`` adds a Sparsity or Activation to its registry for one test."""
    added = []

    def register(entry):
        registry = SPARSITY if isinstance(entry, Sparsity) else ACTIVATIONS
        registry[entry.name] = entry
        added.append((registry, entry.name))
        return entry

    yield register
    for registry, name in added:
        del registry[name]


def test_auxk_revives_dead_units_on_digits(digits_raw, registered):
    """The same TopK fit with and without AuxK: AuxK is what keeps units alive.

    "Without" is TopK registered again with no penalty (AuxK is TopK's penalty).

    Measured (256 units, k=8, lr 1e-2, 30 epochs, seeds 0-2): 0 dead units with
    AuxK, 45-53 without.
    """
    X = digits_raw[0] / 16.0
    params = {"n_components": 256, "k": 8, "learning_rate": 1e-2, "max_iter": 30, "tol": 0}
    with_auxk = _fit(X, sparsity="topk", **params)
    registered(dataclasses.replace(SPARSITY["topk"], name="topk_no_auxk", penalty=None))
    without_auxk = _fit(X, sparsity="topk_no_auxk", **params)
    assert with_auxk.dead_components_.sum() <= 5
    assert without_auxk.dead_components_.sum() >= 25


def test_topk_pre_encoder_bias_starts_at_the_data_mean_and_is_learnt(X):
    """b_pre is the output bias: 0 on the standardised scale = the data mean in X units."""
    sae = _fit(X, sparsity="topk", k=2, max_iter=1)
    module = sae.module_
    assert module.center_input
    start = SparseAutoencoderTransformer(
        **CLASSIC, n_components=16, sparsity="topk", k=2, random_state=0
    )
    start.set_params(max_iter=1, learning_rate=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start.fit(X)
    b_pre = start.module_.output_bias.detach() * start.module_.input_scale
    b_pre = b_pre + start.module_.input_mean
    np.testing.assert_allclose(b_pre.numpy(), X.mean(axis=0), atol=1e-6)
    assert not torch.equal(module.output_bias, start.module_.output_bias)


def test_topk_dead_units_are_counted_in_samples(X):
    """Training counts samples since each unit last fired; one epoch without firing is dead."""
    sae = _fit(X, sparsity="topk", k=1, n_components=32, max_iter=3)
    since = sae.module_.samples_since_fired
    assert since.dtype == torch.long
    assert int(since.min()) == 0  # some unit fired in the last batch
    assert int(since.max()) <= 3 * X.shape[0]
    spec = sae._objective(sae._config(X), X.shape[1])
    assert spec.dead_after is None  # train() makes it one pass over the training rows
    assert spec.k_aux == X.shape[1] // 2


# ----------------------------------------------------------------- denoising
@pytest.mark.parametrize("noise_type, noise", [("gaussian", 0.2), ("masking", 0.3)])
def test_denoising_is_reproducible_and_transform_deterministic(X, noise_type, noise):
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()  # noqa: NPY002
    first = _fit(X, noise=noise, noise_type=noise_type)
    second = _fit(X, noise=noise, noise_type=noise_type)
    # the corruption comes from the estimator's own generator, not the global ones
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state[1])  # noqa: NPY002
    np.testing.assert_array_equal(first.components_, second.components_)
    assert first.loss_curve_ == second.loss_curve_
    # transform and score see the clean input, with no randomness
    codes = first.transform(X)
    np.testing.assert_array_equal(codes, first.transform(X))
    clean = first.module_.encode(torch.as_tensor(X, dtype=torch.float64))[1].detach().numpy()
    np.testing.assert_allclose(codes, clean, rtol=1e-12, atol=1e-12)
    recon = first.inverse_transform(codes)
    assert first.score(X) == pytest.approx(-((recon - X) ** 2).mean(), rel=1e-12)


@pytest.mark.parametrize("noise_type, noise", [("gaussian", 0.2), ("masking", 0.3)])
def test_denoising_changes_training_and_follows_random_state(X, noise_type, noise):
    plain = _fit(X)
    noisy = _fit(X, noise=noise, noise_type=noise_type)
    other_seed = _fit(X, noise=noise, noise_type=noise_type, random_state=1)
    assert not np.allclose(plain.components_, noisy.components_)
    assert not np.allclose(noisy.components_, other_seed.components_)
    # fitting on corrupted inputs against clean targets costs training loss
    assert noisy.loss_curve_[-1] > plain.loss_curve_[-1]


@pytest.mark.parametrize("noise_type, noise", [("gaussian", 0.3), ("masking", 0.25)])
def test_corruption_has_the_documented_distribution(noise_type, noise):
    x = torch.full((400, 50), 0.5, dtype=torch.float64)
    torch_state = torch.get_rng_state()
    first = corrupt(x, noise, noise_type, torch.Generator().manual_seed(0))
    again = corrupt(x, noise, noise_type, torch.Generator().manual_seed(0))
    assert torch.equal(first, again)
    assert torch.equal(torch.get_rng_state(), torch_state)
    if noise_type == "gaussian":
        assert float((first - x).mean()) == pytest.approx(0.0, abs=0.01)
        assert float((first - x).std()) == pytest.approx(noise, rel=0.03)
    else:
        assert set(first.unique().tolist()) == {0.0, 0.5}
        assert float((first == 0).double().mean()) == pytest.approx(noise, abs=0.01)


def test_training_corruption_is_the_schedules_from_its_generator():
    """Training corrupts batches with the schedule's noise, drawn from the given generator."""
    gen = torch.Generator().manual_seed(0)
    noise_fn = _noise_fn(Schedule(noise=0.3, noise_type="masking"), gen)
    x = torch.full((100, 20), 0.5, dtype=torch.float64)
    expected = corrupt(x, 0.3, "masking", torch.Generator().manual_seed(0))
    assert torch.equal(noise_fn(x), expected)
    assert _noise_fn(Schedule(noise=0.0), gen) is None


def test_inference_is_never_corrupted(X):
    sae = _fit(X, noise=0.3, noise_type="masking", max_iter=2)
    codes = sae.transform(X)
    module = sae.module_
    with torch.no_grad():
        expected = module.encode(torch.from_numpy(X))[1].numpy()
        recon = module.decode(torch.from_numpy(codes)).numpy()
    # transform picks its own thread count (1 for this model), the calls above run on
    # the caller's: measured under MKL_ENABLE_INSTRUCTIONS=AVX2 or MKL_CBWR=COMPATIBLE,
    # 3.3e-16 apart (1.1e-16 for the reconstructions). Masking the input as in training
    # (30 %) moves the codes by 0.80, masking the codes the reconstructions by 0.20.
    np.testing.assert_allclose(codes, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sae.inverse_transform(codes), recon, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sae.score_samples(X), -((recon - X) ** 2).mean(axis=1))


def test_masking_noise_must_be_a_probability(X):
    with pytest.raises(ValueError, match=r"noise_type='masking'.*< 1"):
        SparseAutoencoderTransformer(noise=1.0, noise_type="masking").fit(X)


# -------------------------------------------------------------- tied weights
@pytest.mark.parametrize("hidden", [(), (24,)])
def test_tied_weights_are_one_matrix_per_layer(X, hidden):
    sae = _fit(X, tied_weights=True, hidden_layer_sizes=hidden)
    module = sae.module_
    n_layers = len(hidden) + 1
    matrices = [p for p in module.parameters() if p.ndim == 2]
    assert len(matrices) == n_layers == len(module.weights())
    assert module.decoder_weights is None
    for layer in range(1, n_layers + 1):
        assert module.decoder_weight(layer) is module.encoder_weights[layer - 1]
    untied = _fit(X, hidden_layer_sizes=hidden).module_
    assert len([p for p in untied.parameters() if p.ndim == 2]) == 2 * n_layers


def test_tied_components_are_the_encoder_weights_in_the_units_of_x(X):
    sae = _fit(X, tied_weights=True)
    encoder = sae.module_.encoder_weights[0].detach().numpy()
    scale = float(sae.module_.input_scale)
    assert scale != 1.0
    np.testing.assert_allclose(sae.components_, encoder * scale, rtol=1e-12)
    # a sigmoid output is not standardised: components_ is the encoder matrix itself
    bce = _fit(X, tied_weights=True, loss="bce")
    np.testing.assert_array_equal(bce.components_, bce.module_.encoder_weights[0].detach())


def test_tied_weights_are_trained(X):
    before = _fit(X, tied_weights=True, max_iter=1, learning_rate=1e-12)
    after = _fit(X, tied_weights=True, max_iter=5)
    assert not np.allclose(before.components_, after.components_, atol=1e-3)
    assert after.loss_curve_[-1] < after.loss_curve_[0]


# --------------------------------------------------------------- diagnostics
DIAGNOSTIC_CASES = {
    "kl-sigmoid": ({"sparsity": "kl"}, 0.5),
    "kl-tanh": ({"sparsity": "kl", "activation": "tanh"}, 0.0),
    "l1-relu": ({"sparsity": "l1", "activation": "relu"}, 0.0),
    "l1-sigmoid": ({"sparsity": "l1"}, 0.5),
    "topk": ({"sparsity": "topk", "k": 3}, 0.0),
    "topk-tied": ({"sparsity": "topk", "k": 3, "tied_weights": True}, 0.0),
    "none": ({"sparsity": None}, 0.5),
    "bce-kl": ({"loss": "bce"}, 0.5),
    "stacked-relu": ({"sparsity": "l1", "activation": "relu", "hidden_layer_sizes": (24,)}, 0.0),
    "denoising": ({"noise": 0.2}, 0.5),
    # diagnostics cover every training row: the training and the validation part
    "early-stopping": ({"early_stopping": True}, 0.5),
}


@pytest.mark.parametrize("chunk_rows", [None, 7])
@pytest.mark.parametrize("case", DIAGNOSTIC_CASES)
def test_diagnostics_match_transform_and_inverse_transform(X, case, chunk_rows):
    params, threshold = DIAGNOSTIC_CASES[case]
    sae = _fit(X, **params)
    if chunk_rows is not None:  # many chunks, the last one partial: the same figures
        diag = _diagnose(sae, X, rows=chunk_rows)
        sae.reconstruction_err_ = diag.reconstruction_err
        sae.fraction_variance_unexplained_ = diag.fraction_variance_unexplained
        sae.mean_activation_ = diag.mean_activation.numpy()
        sae.mean_l0_ = diag.mean_l0
        sae.dead_components_ = diag.dead_components.numpy()
    codes = sae.transform(X)
    errors = (sae.inverse_transform(codes) - X) ** 2
    assert sae.reconstruction_err_ == pytest.approx(errors.mean(), rel=1e-9)
    assert sae.reconstruction_err_ == pytest.approx(-sae.score(X), rel=1e-9)
    variance = ((X - X.mean(axis=0)) ** 2).sum()
    assert sae.fraction_variance_unexplained_ == pytest.approx(errors.sum() / variance, rel=1e-9)
    np.testing.assert_allclose(sae.mean_activation_, codes.mean(axis=0), rtol=1e-9, atol=1e-12)
    active = codes > threshold
    assert sae.mean_l0_ == pytest.approx(active.sum(axis=1).mean(), rel=1e-12)
    constant = codes.max(axis=0) - codes.min(axis=0) <= 1e-6
    np.testing.assert_array_equal(sae.dead_components_, constant)
    assert sae.dead_components_.dtype == bool
    assert sae.mean_activation_.shape == sae.dead_components_.shape == (16,)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_dead_units_are_the_constant_ones(X, activation):
    """Dead means the code never changes, not that it never crosses the midpoint."""
    params = {"sparsity": "l1"} if activation == "relu" else {}
    sae = _fit(X, activation=activation, **params)
    with torch.no_grad():
        sae.module_.encoder_weights[0][0].zero_()  # unit 0 now ignores its input
        sae.module_.encoder_weights[0][1].mul_(0.1)  # unit 1 works, but softly
        sae.module_.encoder_biases[0][1].fill_(-4.0 if activation != "relu" else 0.0)
    dead = _diagnose(sae, X).dead_components.numpy()
    codes = sae.transform(X)
    assert dead[0]
    assert not dead[1]
    assert np.ptp(codes[:, 1]) > 1e-3
    if activation == "sigmoid":  # never "active" by the midpoint rule, yet alive
        assert codes[:, 1].max() < 0.5


def test_diagnostics_memory_does_not_grow_with_the_samples():
    """The diagnostics pass reduces chunk by chunk: no per-sample table of codes.

    A (n, 2k + 1) float64 table would be 8.2 MB here; numpy may allocate only the
    small per-unit results.
    """
    rng = np.random.RandomState(0)
    sae = _fit(rng.rand(50, 16), n_components=256, max_iter=1)
    big = torch.from_numpy(rng.rand(4000, 16))
    diag = None
    tracemalloc.start()
    try:
        diag = _diagnose(sae, big.numpy())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 200_000, peak
    assert diag.mean_activation.shape == (256,)


def test_diagnostics_are_float32_consistent(X):
    X32 = X.astype(np.float32)
    sae = _fit(X32, sparsity="topk", k=3)
    codes = sae.transform(X32)
    assert codes.dtype == np.float32
    errors = (sae.inverse_transform(codes).astype(np.float64) - X32) ** 2
    assert sae.reconstruction_err_ == pytest.approx(errors.mean(), rel=1e-5)
    assert sae.mean_l0_ == pytest.approx((codes > 0).sum(axis=1).mean())


def test_fraction_variance_unexplained_is_one_for_the_mean(X):
    """A model that ignores its input (a masked-out code) explains nothing: FVU ~ 1."""
    sae = _fit(X, sparsity=None)
    with torch.no_grad():
        for weight in sae.module_.weights():
            weight.zero_()
    fvu = _diagnose(sae, X).fraction_variance_unexplained
    # the output bias started at the mean and moved a little in 5 epochs
    assert fvu == pytest.approx(1.0, abs=0.05)
    assert fvu >= 1.0


def test_verbose_reports_loss_and_topk_sparsity_per_epoch(X, capsys):
    sae = _fit(X, sparsity="topk", k=3, max_iter=3, tol=0, verbose=1)
    lines = capsys.readouterr().out.splitlines()[:-1]  # the last says why it stopped
    assert len(lines) == sae.n_iter_ == 3
    for line, loss in zip(lines, sae.loss_curve_):
        match = re.search(r"loss (\S+), mean activation (\S+), active units (\S+)/16", line)
        assert match, line
        assert float(match.group(1)) == pytest.approx(loss, rel=1e-5)
        assert float(match.group(2)) > 0
        assert 0 < float(match.group(3)) <= 3


# ----------------------------------------------------------- the registries at work
def _l2_term(out, target, module, spec):
    r""":math:`\beta \frac{1}{m}\sum_i \|h_i\|^2`: a toy mechanism's penalty."""
    return spec.sparsity_weight * out.code.pow(2).sum(dim=1).mean()


def test_a_registered_mechanism_is_a_parameter_value_and_trains(X, registered):
    registered(Sparsity("l2", penalty=_l2_term))
    weak = _fit(X, sparsity="l2", activation="relu", sparsity_weight=0.0, max_iter=10)
    strong = _fit(X, sparsity="l2", activation="relu", sparsity_weight=5.0, max_iter=10)
    # the penalty acts: it drives the code toward zero
    assert strong.mean_activation_.mean() < 0.8 * weak.mean_activation_.mean()  # measured 0.66
    # and it is what the objective adds: J of the final model, recomputed by hand
    module, xt = strong.module_, torch.from_numpy(X)
    spec = strong._objective(strong._config(X), X.shape[1])
    with torch.no_grad():
        out = module(xt)
        by_hand = (
            0.5 * module.residual(out.reconstruction, xt).pow(2).sum(dim=1).mean()
            + 5.0 * out.code.pow(2).sum(dim=1).mean()
            + 0.5 * 1e-4 * sum(w.pow(2).sum() for w in module.weights())
        )
        assert float(objective(module, xt, xt, spec).total) == pytest.approx(float(by_hand))
    # no written-out gradient registered: such models train with autograd
    assert not supports_analytic_step(module, spec)


def test_a_registered_activation_trains_with_the_written_out_step(X, registered):
    softplus = registered(
        Activation(
            "softplus",
            torch.nn.functional.softplus,
            lambda g, h: g * -torch.expm1(-h),  # softplus'(z) = sigmoid(z) = 1 - exp(-h)
            midpoint=float(np.log(2.0)),
            unit_interval=None,
        )
    )
    sae = _fit(X, activation="softplus", sparsity="l1", sparsity_weight=0.01)
    spec = sae._objective(sae._config(X), X.shape[1])
    assert supports_analytic_step(sae.module_, spec)
    # the written-out gradient with the new activation is autograd's
    module, xt = sae.module_, torch.from_numpy(X[:40])
    objective(module, xt, xt, spec).total.backward()
    expected = [p.grad.clone() for p in module.parameters()]

    class KeepGrad:
        def step(self):
            pass

    analytic_step(module, KeepGrad(), xt, spec)
    for want, param in zip(expected, module.parameters()):
        torch.testing.assert_close(param.grad, want, rtol=1e-9, atol=1e-12)
    # its midpoint is the activity threshold of the diagnostics
    codes = sae.transform(X)
    assert sae.mean_l0_ == pytest.approx((codes > softplus.midpoint).sum(axis=1).mean())
    # KL needs a code in (0, 1), which an unbounded activation does not give
    with pytest.raises(ValueError, match="sparsity='kl' does not accept activation='softplus'"):
        _fit(X, activation="softplus", sparsity="kl")


def test_a_mechanism_with_nothing_to_do_cannot_be_registered():
    with pytest.raises(ValueError, match="neither a penalty nor a code function"):
        Sparsity("nothing")
    with pytest.raises(ValueError, match="written-out gradient needs a penalty"):
        Sparsity("gradient_only", code=topk_activation, penalty_and_grad=lambda *a: None)
