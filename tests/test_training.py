"""The training engine: steps, loops, stopping rules, L-BFGS, partial_fit, warm_start, output."""

import itertools
import math
import re
import sys
import warnings

import numpy as np
import pytest
import torch
from classic import CLASSIC, with_base
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline

from skl_sparse_ae import SparseAutoencoderTransformer
from skl_sparse_ae._analytic import analytic_step, supports_analytic_step
from skl_sparse_ae._model import SparseAutoencoder
from skl_sparse_ae._objective import Objective, objective
from skl_sparse_ae._optim import make_adam
from skl_sparse_ae._sparsity import auxk_loss, kl_divergence_grad, topk_activation
from skl_sparse_ae._training import (
    Schedule,
    TrainState,
    _validation_split,
    run_epoch,
    train,
    train_step,
)

FAST = {**CLASSIC, "n_components": 8, "batch_size": 50, "random_state": 0}
HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")


@pytest.fixture
def X(digits01):
    """200 digits in [0, 1], float64."""
    return np.array(digits01[:200])


def _fit_quietly(sae, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return sae.fit(X)


# ------------------------------------------------------------ the written-out step
class _KeepGrad:
    """An optimiser that leaves parameters alone, so gradients can be compared."""

    def step(self):
        pass


def _one_layer(activation, output, tied, standardized, x):
    module = SparseAutoencoder(
        x.shape[1],
        5,
        activation=activation,
        output_activation=output,
        tied_weights=tied,
        dtype=torch.float64,
    )
    if standardized:
        module.set_standardization(x.mean(dim=0), 0.7)
    module.reset_parameters(torch.Generator().manual_seed(1), x.mean(dim=0))
    return module


ANALYTIC_CASES = [
    case
    for case in itertools.product(
        ["sigmoid", "tanh", "relu"],  # activation
        ["linear", "sigmoid"],  # output
        ["mse", "bce"],  # loss
        [None, "kl", "l1"],  # sparsity
        [False, True],  # tied
        [0.0, 0.1],  # weight decay
    )
    if not (case[2] == "bce" and case[1] != "sigmoid")
    and not (case[3] == "kl" and case[0] == "relu")
]


@pytest.mark.parametrize("activation, output, loss, sparsity, tied, decay", ANALYTIC_CASES)
def test_analytic_step_is_the_autograd_gradient(activation, output, loss, sparsity, tied, decay):
    x = torch.rand(37, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    spec = Objective(
        loss=loss,
        sparsity=sparsity,
        sparsity_target=0.1,
        sparsity_weight=0.3,
        weight_decay=decay,
    )
    # linear outputs are standardised by the estimator, sigmoid outputs are not
    module = _one_layer(activation, output, tied, output == "linear", x)
    assert supports_analytic_step(module, spec)
    reference = objective(module, x, x, spec).total
    reference.backward()
    expected = [p.grad.clone() for p in module.parameters()]
    result = analytic_step(module, _KeepGrad(), x, spec)
    assert float(result.total) == pytest.approx(float(reference.detach()), rel=1e-12, abs=1e-12)
    for want, param in zip(expected, module.parameters()):
        torch.testing.assert_close(param.grad, want, rtol=1e-10, atol=1e-12)


def test_analytic_kl_gradient_is_zero_where_the_penalty_clips():
    """A unit that never fires (rho_hat < 1e-6) gets no KL gradient, as in autograd."""
    x = torch.rand(20, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    spec = Objective(sparsity="kl", sparsity_target=0.05, sparsity_weight=3.0)
    module = _one_layer("sigmoid", "sigmoid", False, False, x)
    with torch.no_grad():
        module.encoder_biases[0][:2] = -40.0  # sigmoid(-40) ~ 4e-18: clipped
    rho_hat = module(x).code.mean(dim=0)
    grad = kl_divergence_grad(0.05, rho_hat)
    assert (grad[:2] == 0).all() and (grad[2:] != 0).all()
    objective(module, x, x, spec).total.backward()
    expected = [p.grad.clone() for p in module.parameters()]
    analytic_step(module, _KeepGrad(), x, spec)
    for want, param in zip(expected, module.parameters()):
        torch.testing.assert_close(param.grad, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "params",
    [
        {"hidden_layer_sizes": (6,)},
        {"sparsity": "topk", "k": 2},
        {"activation": "relu", "sparsity": "l1", "hidden_layer_sizes": (6,)},
    ],
)
def test_models_the_written_out_step_does_not_cover_use_autograd(X, params):
    sae = _fit_quietly(SparseAutoencoderTransformer(max_iter=2, **{**FAST, **params}), X)
    assert np.isfinite(sae.loss_curve_).all()
    assert not supports_analytic_step(sae.module_, sae._objective(sae._config(X), X.shape[1]))
    # and the one-layer dense models it covers
    dense = _fit_quietly(SparseAutoencoderTransformer(max_iter=1, **FAST), X)
    assert supports_analytic_step(dense.module_, dense._objective(dense._config(X), X.shape[1]))


# ---------------------------------------------------------- no host synchronisation
@pytest.fixture
def host_reads(monkeypatch):
    """Count reads of tensor values by the host (float(t), int(t), bool(t), t.item()...)."""
    counts = {"n": 0}
    for name in ("__float__", "__int__", "__bool__", "__index__", "item", "tolist", "numpy"):
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, **kwargs):
            counts["n"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    return counts


@pytest.mark.parametrize(
    "params",
    [
        {},  # the written-out step
        {"hidden_layer_sizes": (6,), "noise": 0.1},  # autograd
        {"activation": "tanh", "sparsity": "l1", "tied_weights": True},
    ],
)
def test_an_epoch_never_reads_values_back_to_the_host(X, params, host_reads):
    sae = SparseAutoencoderTransformer(max_iter=1, **{**FAST, **params})
    _fit_quietly(sae, X)  # builds the module, optimiser and objective the estimator uses
    module = sae.module_
    spec = sae._objective(sae._config(X), X.shape[1])
    optimizer = make_adam(module.parameters(), 1e-3)
    Xt = torch.from_numpy(X)
    noise = (lambda x: x + 0.1 * torch.randn_like(x)) if params.get("noise") else None
    host_reads["n"] = 0
    stats = run_epoch(
        module,
        optimizer,
        Xt,
        spec,
        batch_size=20,
        generator=torch.Generator().manual_seed(0),
        noise_fn=noise,
    )
    assert host_reads["n"] == 0  # 10 batches, not one read
    assert math.isfinite(float(stats.loss))


def test_fit_reads_the_loss_once_per_epoch_and_once_per_fit(X, host_reads):
    sae = SparseAutoencoderTransformer(max_iter=1, **FAST)
    _fit_quietly(sae, X)
    module, spec = sae.module_, sae._objective(sae._config(X), X.shape[1])
    state = TrainState.new(0, torch.device("cpu"))
    state = TrainState(state.generator_states, initialized=True)
    schedule = Schedule(batch_size=20, max_iter=3, tol=0.0)
    host_reads["n"] = 0
    history = train(module, torch.from_numpy(X), spec, schedule, state).history
    assert history.n_iter == 3
    # one read per epoch, and one per fit: the starting loss for the blow-up check
    assert host_reads["n"] == 3 + 1


def _auxk_reference(pre_code, residual, dead_mask, k_aux, decode):
    """The AuxK loss as first written: with the number of dead units read on the host."""
    n_dead = int(dead_mask.sum())
    if n_dead == 0:
        return pre_code.new_zeros(())
    masked = pre_code.masked_fill(~dead_mask, float("-inf"))
    z_aux = topk_activation(masked, min(k_aux, n_dead))
    # AuxK's normalisation (see auxk_loss): the residual's variance around its batch mean
    scale = (residual - residual.mean(dim=0)).pow(2).mean().clamp_min(1e-6)
    e_hat = decode(z_aux)
    alpha = max(0.0, float((e_hat * residual).sum() / e_hat.pow(2).sum()))  # host read
    alpha = (e_hat * residual).sum() / e_hat.pow(2).sum() if alpha > 0 else 0.0
    return 0.5 * (alpha * e_hat - residual).pow(2).sum(dim=1).mean() / scale


@pytest.mark.parametrize("n_dead", [0, 1, 3, 8])
def test_auxk_loss_without_host_reads_keeps_its_value_and_gradient(n_dead, host_reads):
    gen = torch.Generator().manual_seed(0)
    pre_code = torch.randn(10, 8, generator=gen, dtype=torch.float64)
    residual = torch.randn(10, 5, generator=gen, dtype=torch.float64)
    decoder = torch.randn(8, 5, generator=gen, dtype=torch.float64)
    dead = torch.zeros(8, dtype=torch.bool)
    dead[:n_dead] = True
    results = []
    for function in (_auxk_reference, auxk_loss):
        leaf = pre_code.clone().requires_grad_()
        host_reads["n"] = 0
        loss = function(leaf, residual, dead, 4, lambda z: z @ decoder)
        reads = host_reads["n"]
        if loss.requires_grad:
            loss.backward()
        grad = leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)
        results.append((float(loss.detach()), grad, reads))
    (want, want_grad, _), (got, got_grad, reads) = results
    assert got == pytest.approx(want, rel=1e-12, abs=0)
    torch.testing.assert_close(got_grad, want_grad)
    assert reads == 0


def test_topk_training_with_auxk_runs_end_to_end(X):
    """AuxK without the host read still trains the TopK model end to end.

    That AuxK revives dead units is measured in test_training_behaviour.py."""
    sae = _fit_quietly(SparseAutoencoderTransformer(sparsity="topk", k=2, max_iter=5, **FAST), X)
    assert np.isfinite(sae.loss_curve_).all()
    assert sae.mean_l0_ <= 2


# ------------------------------------------------------------ transform batching
@pytest.fixture(scope="module")
def wide(digits_raw):
    """A 64 -> 2048 model: its inference chunks are 2**21 // 2048 = 1024 rows."""
    X = digits_raw[0] / 16.0
    sae = SparseAutoencoderTransformer(n_components=2048, max_iter=1, random_state=0)
    return _fit_quietly(sae, X[:40]), X


def test_transform_does_not_depend_on_batching(wide):
    sae, X = wide
    assert sae._inference_rows(sae.module_) == 1024
    full = sae.transform(X)  # 1797 rows: two chunks
    # rows across the chunk boundary, on their own (one chunk) and in another order
    rows = np.array([1022, 1023, 1024, 1025, 3, 1796])
    np.testing.assert_allclose(sae.transform(X[rows]), full[rows], rtol=0, atol=1e-7)
    np.testing.assert_allclose(sae.transform(X[1000:1100]), full[1000:1100], rtol=0, atol=1e-7)
    for method, arg in (("score_samples", X), ("inverse_transform", full)):
        whole = getattr(sae, method)(arg)
        np.testing.assert_allclose(getattr(sae, method)(arg[rows]), whole[rows], atol=1e-7)


def test_transform_works_in_chunks_of_bounded_size(wide):
    sae, X = wide
    seen = []
    encode = sae.module_.encode

    def spy(x):
        seen.append(x.shape[0])
        return encode(x)

    sae.module_.encode = spy
    try:
        sae.transform(X)
    finally:
        del sae.module_.encode
    assert seen == [1024, 1797 - 1024]


def test_inference_chunk_does_not_grow_with_n_samples():
    sae = SparseAutoencoderTransformer(n_components=64)
    rows = sae._inference_rows(SparseAutoencoder(64, 64))
    assert 256 <= rows <= 2**21 // 64  # a few MiB of activations per chunk at most


# --------------------------------------------------------------- stopping rules
@pytest.mark.parametrize("n_iter_no_change", [1, 3])
def test_no_improvement_rule_is_mlpregressors(X, n_iter_no_change):
    """With a tolerance nothing meets, both stop after n_iter_no_change + 2 epochs."""
    params = {"tol": 1e9, "n_iter_no_change": n_iter_no_change, "max_iter": 50}
    mlp = MLPRegressor(hidden_layer_sizes=(8,), random_state=0, **params).fit(X, X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # converged: no warning
        sae = SparseAutoencoderTransformer(**{**FAST, **params}).fit(X)
    assert sae.n_iter_ == mlp.n_iter_ == n_iter_no_change + 2
    assert len(sae.loss_curve_) == sae.n_iter_


def test_training_stops_once_the_loss_stops_improving(X):
    sae = with_base(FAST, max_iter=500, tol=1e-3, n_iter_no_change=2, learning_rate=1e-2).fit(X)
    assert sae.n_iter_ < 500
    curve = np.array(sae.loss_curve_) / X.shape[1]  # tol applies to the loss per feature
    # the last three epochs each failed to beat the best loss before it by tol
    for i in range(len(curve) - 3, len(curve)):
        assert curve[i] > curve[:i].min() - 1e-3
    # and with tol on the summed loss (64 times stricter) training goes on longer
    strict = with_base(
        FAST, max_iter=500, tol=1e-3 / X.shape[1], n_iter_no_change=2, learning_rate=1e-2
    ).fit(X)
    assert strict.n_iter_ > sae.n_iter_


def test_max_iter_without_convergence_warns(X):
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        sae = with_base(FAST, max_iter=3, tol=0.0).fit(X)
    assert sae.n_iter_ == 3


def test_early_stopping_restores_the_best_weights(X):
    # a large step makes the validation score wander, so the best epoch is not the last
    sae = with_base(
        FAST,
        early_stopping=True,
        validation_fraction=0.2,
        learning_rate=0.05,
        n_iter_no_change=3,
        tol=0.0,
        max_iter=60,
    ).fit(X)
    scores = np.array(sae.validation_scores_)
    assert len(scores) == sae.n_iter_ < 60
    assert sae.best_validation_score_ == scores.max()
    # measured: 43 epochs, the best at epoch 39, the last four worse
    assert scores.argmax() < len(scores) - 1
    # the held-out rows: the first draw of the fit's generator (random_state=0)
    cpu_gen, _ = TrainState.new(0, torch.device("cpu")).generators(torch.device("cpu"))
    X_train, X_val = _validation_split(torch.from_numpy(X), 0.2, cpu_gen)
    assert X_val.shape[0] == 40 and X_train.shape[0] == 160
    X_val = X_val.numpy()
    # the final model is the best one: its validation score is the best score
    # (the score is in the units of X, the validation score on the loss's scale s)
    scale = float(sae.module_.input_scale)
    assert sae.score(X_val) / scale**2 == pytest.approx(sae.best_validation_score_, rel=1e-10)
    assert sae.score(X_val) > scores[-1]


def test_early_stopping_counts_epochs_without_validation_improvement(X):
    sae = with_base(FAST, early_stopping=True, tol=1e9, n_iter_no_change=2, max_iter=50).fit(X)
    assert sae.n_iter_ == 4  # as MLPRegressor: best + tol never reached after epoch 1


def test_validation_attributes_are_none_without_early_stopping(X):
    sae = _fit_quietly(with_base(FAST, max_iter=2), X)
    assert sae.validation_scores_ is None and sae.best_validation_score_ is None
    assert all(p.grad is None for p in sae.module_.parameters())  # no stale gradients


# ------------------------------------------------------- partial_fit, warm_start
@pytest.mark.parametrize(
    "params", [{}, {"noise": 0.1, "hidden_layer_sizes": (6,)}, {"sparsity": "topk", "k": 2}]
)
def test_two_partial_fits_are_two_epochs_of_fit(X, params):
    streamed = SparseAutoencoderTransformer(**{**FAST, **params})
    streamed.partial_fit(X)
    assert streamed.n_iter_ == 1 and len(streamed.loss_curve_) == 1
    streamed.partial_fit(X)
    fitted = _fit_quietly(with_base({**FAST, **params}, max_iter=2, tol=0), X)
    assert streamed.n_iter_ == 2
    np.testing.assert_array_equal(streamed.loss_curve_, fitted.loss_curve_)
    np.testing.assert_array_equal(streamed.transform(X), fitted.transform(X))


def test_partial_fit_continues_from_the_previous_block(X):
    sae = SparseAutoencoderTransformer(**FAST)
    sae.partial_fit(X[:100])
    first = sae.components_.copy()
    sae.partial_fit(X[100:])
    assert sae.n_iter_ == 2
    assert not np.array_equal(first, sae.components_)
    # a fresh model on the second block alone starts elsewhere
    fresh = SparseAutoencoderTransformer(**FAST).partial_fit(X[100:])
    assert not np.allclose(fresh.components_, sae.components_)


def test_partial_fit_keeps_the_number_of_features(X):
    sae = SparseAutoencoderTransformer(**FAST).partial_fit(X)
    with pytest.raises(ValueError, match="64 features"):
        sae.partial_fit(X[:, :10])
    assert sae.n_features_in_ == 64 and sae.n_iter_ == 1


@pytest.mark.parametrize("params", [{}, {"noise": 0.2, "noise_type": "masking"}])
def test_warm_start_continues_exactly_where_fit_stopped(X, params):
    """fit(max_iter=2) then a warm fit(max_iter=2) is fit(max_iter=4), bit for bit."""
    once = _fit_quietly(with_base({**FAST, **params}, max_iter=4, tol=0), X)
    twice = with_base({**FAST, **params}, max_iter=2, tol=0, warm_start=True)
    _fit_quietly(twice, X)
    _fit_quietly(twice, X)
    assert twice.n_iter_ == once.n_iter_ == 4
    np.testing.assert_array_equal(twice.loss_curve_, once.loss_curve_)
    np.testing.assert_array_equal(twice.transform(X), once.transform(X))


def test_without_warm_start_fit_starts_over(X):
    sae = with_base(FAST, max_iter=2, tol=0)
    first = _fit_quietly(sae, X).transform(X)
    again = _fit_quietly(sae, X).transform(X)
    assert sae.n_iter_ == 2
    np.testing.assert_array_equal(first, again)


# ------------------------------------------------------------------------ L-BFGS
def test_lbfgs_stopped_by_its_evaluation_budget_says_so(X, monkeypatch):
    """Fewer than max_iter iterations ran: the warning must not claim max_iter did."""

    class FewEvaluations(torch.optim.LBFGS):
        def __init__(self, params, **kwargs):
            super().__init__(params, **{**kwargs, "max_eval": 4})

    monkeypatch.setattr(torch.optim, "LBFGS", FewEvaluations)
    sae = with_base(FAST, solver="lbfgs", max_iter=15, tol=0.0)
    with pytest.warns(
        ConvergenceWarning, match=r"function evaluations .* after (\d) of max_iter=15"
    ):
        sae.fit(X)
    assert sae.n_iter_ < 15


def test_lbfgs_loss_curve_is_the_objective_at_the_accepted_points(X):
    with pytest.warns(ConvergenceWarning, match="max_iter=15 iterations"):
        sae = with_base(
            FAST, solver="lbfgs", max_iter=15, tol=0.0, output_activation="sigmoid"
        ).fit(X)
    assert sae.n_iter_ == 15 == len(sae.loss_curve_)
    curve = np.array(sae.loss_curve_)
    assert (np.diff(curve) <= 0).all()
    assert curve[-1] < 0.8 * curve[0]  # measured: 1.69 / 2.60 = 0.65
    # the last entry is J at the final weights (not merely the last trial point)
    spec = sae._objective(sae._config(X), X.shape[1])
    with torch.no_grad():
        final = float(objective(sae.module_, torch.from_numpy(X), torch.from_numpy(X), spec).total)
    assert curve[-1] == pytest.approx(final, rel=1e-10)


def test_lbfgs_stops_when_the_gradient_is_small(X):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        sae = with_base(FAST, solver="lbfgs", max_iter=200, tol=0.1).fit(X)
    assert 1 < sae.n_iter_ < 200  # measured: 10 iterations
    assert len(sae.loss_curve_) == sae.n_iter_
    # it stopped because the largest gradient entry fell below tol
    spec = sae._objective(sae._config(X), X.shape[1])
    Xt = torch.from_numpy(X)
    assert all(p.grad is None for p in sae.module_.parameters())  # no stale gradients
    objective(sae.module_, Xt, Xt, spec).total.backward()
    assert max(float(p.grad.abs().max()) for p in sae.module_.parameters()) <= 0.1


def test_lbfgs_verbose_prints_one_line_per_iteration(X, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sae = with_base(FAST, solver="lbfgs", max_iter=6, tol=0.0, verbose=1).fit(X)
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert len(lines) - 1 == sae.n_iter_ == 6
    assert lines[-1] == "Stopped: L-BFGS used up max_iter=6 iterations without converging."
    for i, (line, loss) in enumerate(zip(lines, sae.loss_curve_), start=1):
        match = re.fullmatch(rf"Iteration {i}: loss (\S+), \d+\.\d+ s", line)
        assert match and float(match.group(1)) == pytest.approx(loss, rel=1e-5)


# ----------------------------------------------------------------------- verbose
def _check_epoch_lines(lines, label, loss_curve, of=""):
    """One verbose line per epoch: ``{label} i{of}: loss L, mean activation ..., s``."""
    assert len(lines) == len(loss_curve)
    pattern = (
        rf"{label} (\d){of}: loss (\S+), mean activation \S+, active units \d+\.\d\d/8, \d+\.\d+ s"
    )
    for i, (line, loss) in enumerate(zip(lines, loss_curve), start=1):
        match = re.fullmatch(pattern, line)
        assert match, line
        assert int(match.group(1)) == i
        assert float(match.group(2)) == pytest.approx(loss, rel=1e-5)


def test_verbose_prints_one_line_per_epoch(X, capsys):
    sae = _fit_quietly(with_base(FAST, max_iter=3, tol=0, verbose=1), X)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    _check_epoch_lines(lines[:3], "Epoch", sae.loss_curve_, of="/3")
    assert lines[3] == "Stopped at max_iter=3 epochs without converging."


def test_verbose_shows_each_learning_rate_drop_and_why_training_stopped(X, capsys):
    """tol=1e9: every epoch after the first is "no improvement"; patience 1 means a
    plateau after two such epochs, so the step is divided after epochs 3 and 5 and
    training stops at 7."""
    sae = _fit_quietly(
        with_base(
            FAST,
            max_iter=50,
            tol=1e9,
            n_iter_no_change=1,
            learning_rate=0.01,
            learning_rate_schedule="plateau",
            verbose=1,
        ),
        X,
    )
    lines = capsys.readouterr().out.splitlines()
    plateau = "the loss per feature did not improve by tol=1e+09 for 2 epochs"
    assert sae.n_iter_ == 7
    assert lines[3] == f"{plateau}: learning rate divided by 10, 0.01 -> 0.001"
    assert lines[6] == f"{plateau}: learning rate divided by 10, 0.001 -> 0.0001"
    assert lines[-1] == f"Converged at epoch 7: {plateau} after 2 learning-rate drops."
    assert [line.split(":")[0] for line in lines if line.startswith("Epoch")] == [
        f"Epoch {i}/50" for i in range(1, 8)
    ]


def test_verbose_partial_fit_prints_the_same_line_as_an_epoch(X, capsys):
    sae = with_base(FAST, verbose=1).partial_fit(X).partial_fit(X)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    _check_epoch_lines(lines, "partial_fit", sae.loss_curve_)


def test_verbose_with_early_stopping_shows_the_validation_score(X, capsys):
    _fit_quietly(with_base(FAST, max_iter=2, early_stopping=True, verbose=1), X)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(", validation score " in line for line in lines[:2])


def test_silent_by_default(X, capsys):
    _fit_quietly(with_base(FAST, max_iter=2), X)
    assert capsys.readouterr().out == ""


def test_verbose_2_shows_a_progress_bar_on_long_epochs(X, capsys):
    pytest.importorskip("tqdm")
    # 200 rows in batches of 2: 100 batches per epoch
    _fit_quietly(
        SparseAutoencoderTransformer(**{**FAST, "batch_size": 2}, max_iter=1, verbose=2), X
    )
    out = capsys.readouterr().out
    assert re.search(r"epoch 1: +\d+%\|.*\| \d+/100", out)  # tqdm's bar and counter
    assert re.search(r"(^|\r)Epoch 1/1: loss", out, flags=re.MULTILINE)


def test_verbose_2_without_tqdm_prints_plain_progress_lines(X, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now raises ImportError
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    _fit_quietly(
        SparseAutoencoderTransformer(**{**FAST, "batch_size": 2}, max_iter=2, verbose=2), X
    )
    lines = capsys.readouterr().out.splitlines()
    progress = [line for line in lines if "batch" in line]
    assert len(progress) == 20  # every 10 % of each of the two epochs
    assert progress[0] == "  epoch 1: batch 10/100 (10%)"
    assert progress[-1] == "  epoch 2: batch 100/100 (100%)"
    assert sum(line.startswith("Epoch ") for line in lines) == 2


def test_verbose_2_short_epochs_have_no_progress_bar(X, capsys):
    _fit_quietly(with_base(FAST, max_iter=1, verbose=2), X)
    assert capsys.readouterr().out.splitlines()[0].startswith("Epoch 1/1: loss")


# ------------------------------------------------------------------ units, GPU
@pytest.mark.parametrize("early_stopping", [False, True])
def test_linear_output_trains_the_same_whatever_the_units(X, early_stopping):
    """Standardised inputs: X and X * 1e200 give the same model (nothing overflows)."""
    params = {**FAST, "max_iter": 3, "tol": 0, "early_stopping": early_stopping}
    small = _fit_quietly(SparseAutoencoderTransformer(**params), X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow, not even in diagnostics
        huge = _fit_quietly(SparseAutoencoderTransformer(**params), X * 1e200)
    np.testing.assert_allclose(huge.loss_curve_, small.loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(huge.transform(X * 1e200), small.transform(X), atol=1e-9)
    if early_stopping:  # the validation score is on the loss's scale too
        np.testing.assert_allclose(huge.validation_scores_, small.validation_scores_, rtol=1e-9)
    assert huge.fraction_variance_unexplained_ == pytest.approx(
        small.fraction_variance_unexplained_, rel=1e-9
    )
    # In the units of X: the error scales with the square of the units.
    scaled = _fit_quietly(SparseAutoencoderTransformer(**params), X * 1e3)
    assert scaled.reconstruction_err_ == pytest.approx(small.reconstruction_err_ * 1e6, rel=1e-9)
    assert scaled.reconstruction_err_ == pytest.approx(-scaled.score(X * 1e3), rel=1e-9)


@needs_cuda
@pytest.mark.parametrize("params", [{}, {"hidden_layer_sizes": (6,), "noise": 0.1}])
def test_cuda_epoch_never_synchronises(X, params):
    sae = SparseAutoencoderTransformer(device="cuda", max_iter=1, **{**FAST, **params})
    _fit_quietly(sae, X)
    module = sae.module_
    spec = sae._objective(sae._config(X), X.shape[1])
    optimizer = make_adam(module.parameters(), 1e-3)
    Xt = torch.from_numpy(X).to("cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        stats = run_epoch(
            module,
            optimizer,
            Xt,
            spec,
            batch_size=20,
            generator=torch.Generator().manual_seed(0),
        )
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert stats.loss.device.type == "cuda"
    assert math.isfinite(float(stats.loss))


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_analytic_step_is_the_autograd_gradient(dtype):
    x = torch.rand(64, 7, device="cuda", dtype=dtype)
    spec = Objective(sparsity="kl", sparsity_target=0.1, sparsity_weight=0.3, weight_decay=0.1)
    module = _one_layer("sigmoid", "sigmoid", False, False, x.double().cpu()).to("cuda", dtype)
    objective(module, x, x, spec).total.backward()
    expected = [p.grad.clone() for p in module.parameters()]
    analytic_step(module, _KeepGrad(), x, spec)
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    for want, param in zip(expected, module.parameters()):
        torch.testing.assert_close(param.grad, want, rtol=tol, atol=tol)


@needs_cuda
def test_cuda_partial_fit_and_warm_start_stay_on_the_gpu(X):
    sae = SparseAutoencoderTransformer(device="cuda", **FAST).partial_fit(X).partial_fit(X)
    assert sae.n_iter_ == 2
    assert all(p.device.type == "cuda" for p in sae.module_.parameters())
    sae.set_params(warm_start=True, max_iter=2)
    _fit_quietly(sae, X)
    assert sae.n_iter_ == 4
    assert sae.transform(X).shape == (200, 8)


def test_train_step_returns_the_batch_code(X):
    module = SparseAutoencoder(64, 8, dtype=torch.float64)
    xt = torch.from_numpy(X[:30])
    module.reset_parameters(torch.Generator().manual_seed(0), xt.mean(dim=0))
    spec = Objective(sparsity="kl", sparsity_target=0.05, sparsity_weight=0.1)
    with torch.no_grad():
        expected_code = module(xt).code
    out = train_step(module, make_adam(module.parameters(), 1e-3), xt, spec)
    torch.testing.assert_close(out.code, expected_code)
    assert out.total.shape == () and not out.total.requires_grad


@pytest.mark.parametrize("call", ["fit", "fit_transform", "pipeline"])
def test_convergence_warning_points_at_the_callers_line(X, call):
    sae = with_base(FAST, max_iter=2, tol=0.0)
    with pytest.warns(ConvergenceWarning) as record:
        if call == "fit":
            sae.fit(X)
        elif call == "fit_transform":
            sae.fit_transform(X)
        else:
            make_pipeline(sae).fit(X)
    # the fit is also of little use after 2 epochs: its FitQualityWarning points there too
    assert {w.filename for w in record} == {__file__}
