"""Objective and training loops: minibatch (Adam) and full-batch L-BFGS.

The objective, for a batch of ``m`` samples, is

.. math::

    J = \\underbrace{\\frac{1}{m}\\sum_i \\ell(x_i, \\hat x_i)}_{\\text{reconstruction}}
        + \\underbrace{\\beta\\, \\Omega(h)}_{\\text{sparsity}}
        + \\frac{\\lambda}{2} \\sum_l \\|W_l\\|_F^2
        + \\alpha_{aux} \\mathcal{L}_{aux}

with :math:`\\ell` half the squared error summed over features (UFLDL's cost) or
the binary cross-entropy summed over features, :math:`\\Omega` the KL or L1
penalty of :mod:`._sparsity` (none for TopK, whose sparsity is structural), and
:math:`\\mathcal{L}_{aux}` TopK's AuxK loss.

The loops keep ``X`` as one tensor on its device, draw one permutation per epoch
from a local generator and slice batches: no ``DataLoader``, no per-sample Python
and no host synchronisation inside an epoch (the epoch loss is accumulated on the
device and read once per epoch).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ._model import AutoencoderOutput, SparseAutoencoder
from ._sparsity import auxk_loss, kl_penalty, l1_penalty

__all__ = [
    "History",
    "Objective",
    "activity_threshold",
    "check_finite",
    "corrupt",
    "cross_entropy",
    "fit_lbfgs",
    "objective",
    "run_epoch",
    "squared_error",
    "weight_penalty",
]

#: AuxK's coefficient, as in openai/sparse_autoencoder.
AUXK_WEIGHT = 1.0 / 32.0


# --------------------------------------------------------------------------- math
def squared_error(reconstruction: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    r"""UFLDL's reconstruction cost :math:`\frac{1}{m}\sum_i \frac12\|\hat x_i - x_i\|^2`."""
    return 0.5 * (reconstruction - x).pow(2).sum(dim=1).mean()


def cross_entropy(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    r"""Binary cross-entropy summed over features, averaged over samples.

    .. math:: -\frac{1}{m}\sum_i\sum_f x_{if}\log\hat x_{if} + (1 - x_{if})\log(1 - \hat x_{if})

    with :math:`\hat x = \mathrm{sigmoid}(\text{logits})`, computed from the logits
    (never from a softmax) for numerical stability. ``x`` must lie in ``[0, 1]``.
    """
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=1).mean()


def weight_penalty(weights: list[torch.Tensor], weight_decay: float) -> torch.Tensor:
    r"""Weight decay :math:`\frac{\lambda}{2}\sum_l \|W_l\|_F^2` (biases are not decayed)."""
    return 0.5 * weight_decay * sum(w.pow(2).sum() for w in weights)


def corrupt(
    x: torch.Tensor, noise: float, noise_type: str, generator: torch.Generator
) -> torch.Tensor:
    r"""Denoising corruption :math:`\tilde x` of a batch (training only).

    - ``"gaussian"``: :math:`\tilde x = x + \epsilon`, :math:`\epsilon \sim \mathcal N(0, \text{noise}^2)`;
    - ``"masking"``: each entry is set to 0 with probability ``noise``.
    """
    if noise_type == "gaussian":
        eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return x + noise * eps
    keep = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) >= noise
    return x * keep


def activity_threshold(activation: str, topk: bool) -> float:
    """The code value above which a unit counts as active on a sample.

    The activation's midpoint: 0.5 for a sigmoid code (pre-activation > 0), 0 for
    tanh, ReLU and TopK codes.
    """
    return 0.5 if (activation == "sigmoid" and not topk) else 0.0


@dataclass(frozen=True)
class Objective:
    """Everything that defines the training objective besides the module."""

    loss: str = "mse"
    sparsity: str | None = None
    sparsity_target: float = 0.05
    sparsity_weight: float = 0.0
    weight_decay: float = 0.0
    activation: str = "sigmoid"
    k_aux: int = 0
    dead_after: int = 1


class LossTerms(NamedTuple):
    total: torch.Tensor
    reconstruction: torch.Tensor
    output: AutoencoderOutput


def objective(
    module: SparseAutoencoder, x_input: torch.Tensor, x_target: torch.Tensor, spec: Objective
) -> LossTerms:
    """The training objective ``J`` (module docstring) on one batch.

    ``x_input`` is what the encoder sees (corrupted when denoising), ``x_target``
    what the decoder must reproduce.
    """
    out = module(x_input)
    if spec.loss == "bce":
        reconstruction = cross_entropy(out.logits, x_target)
    else:  # on the standardised scale: (x̂ - x) / s
        reconstruction = squared_error(out.reconstruction, x_target) / module.input_scale.square()
    total = reconstruction
    if spec.sparsity == "kl":
        total = total + spec.sparsity_weight * kl_penalty(
            out.code, spec.sparsity_target, spec.activation
        )
    elif spec.sparsity == "l1":
        total = total + spec.sparsity_weight * l1_penalty(out.code)
    elif spec.sparsity == "topk" and spec.k_aux > 0:
        dead = module.samples_since_fired >= spec.dead_after
        residual = ((x_target - out.reconstruction) / module.input_scale).detach()
        total = total + AUXK_WEIGHT * auxk_loss(
            out.pre_code, residual, dead, spec.k_aux, module.decode_contribution
        )
    if spec.weight_decay > 0:
        total = total + weight_penalty(module.weights(), spec.weight_decay)
    return LossTerms(total, reconstruction, out)


# --------------------------------------------------------------------------- loops
@dataclass
class EpochStats:
    """Device-side sums over one epoch, read once at its end."""

    loss: torch.Tensor
    code_sum: torch.Tensor | None = None
    active: torch.Tensor | None = None
    n_samples: int = 0


def train_step(
    module: SparseAutoencoder,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    spec: Objective,
    noise_fn=None,
) -> LossTerms:
    """One optimiser step on batch ``x``; the step you would write by hand.

    TopK adds its two constraints around the step: no gradient along the decoder
    rows before it, unit-norm rows after it; and counts how long each unit has
    gone without firing (for AuxK's dead units).
    """
    x_input = noise_fn(x) if noise_fn is not None else x
    terms = objective(module, x_input, x, spec)
    optimizer.zero_grad(set_to_none=True)
    terms.total.backward()
    if module.k is not None:
        module.remove_parallel_decoder_grad()
    optimizer.step()
    if module.k is not None:
        module.normalize_decoder()
        with torch.no_grad():
            fired = (terms.output.code > 0).any(dim=0)
            module.samples_since_fired.add_(x.shape[0]).masked_fill_(fired, 0)
    return terms


def _progress(total: int, verbose: int, desc: str):
    """A per-batch progress callback for long epochs (``verbose >= 2``)."""
    if verbose < 2 or total < 50:
        return None, None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # plain lines every 10 %
        marks = {max(1, round(total * q / 10)) for q in range(1, 11)}

        def update(i):
            if i in marks:
                print(f"  {desc}: batch {i}/{total} ({100 * i // total}%)", flush=True)

        return update, None
    bar = tqdm(total=total, desc=desc, leave=False, file=sys.stdout)
    return (lambda i: bar.update(1)), bar.close


def run_epoch(
    module: SparseAutoencoder,
    optimizer: torch.optim.Optimizer,
    X: torch.Tensor,
    spec: Objective,
    *,
    batch_size: int,
    generator: torch.Generator,
    noise_fn=None,
    track_code: bool = False,
    verbose: int = 0,
    desc: str = "",
) -> EpochStats:
    """One pass over ``X`` in a random order, in minibatches of ``batch_size``.

    Returns device-side sums: the sample-weighted loss and, with ``track_code``,
    the code's column sums and the count of active units.
    """
    n = X.shape[0]
    perm = torch.randperm(n, generator=generator).to(X.device, non_blocking=True)
    loss_sum = torch.zeros((), device=X.device, dtype=X.dtype)
    stats = EpochStats(loss=loss_sum, n_samples=n)
    threshold = activity_threshold(spec.activation, module.k is not None)
    if track_code:
        stats.code_sum = torch.zeros(module.sizes[-1], device=X.device, dtype=X.dtype)
        stats.active = torch.zeros((), device=X.device, dtype=X.dtype)
    n_batches = math.ceil(n / batch_size)
    update, close = _progress(n_batches, verbose, desc)
    for i, start in enumerate(range(0, n, batch_size), start=1):
        xb = X[perm[start : start + batch_size]]
        terms = train_step(module, optimizer, xb, spec, noise_fn)
        loss_sum += terms.total.detach() * xb.shape[0]
        if track_code:
            code = terms.output.code.detach()
            stats.code_sum += code.sum(dim=0)
            stats.active += (code > threshold).sum()
        if update is not None:
            update(i)
    if close is not None:
        close()
    return stats


@dataclass
class History:
    """What a training run reports back to the estimator."""

    loss_curve: list = field(default_factory=list)
    validation_scores: list = field(default_factory=list)
    best_loss: float = math.inf
    best_validation_score: float = -math.inf
    n_iter: int = 0
    converged: bool = False


class DivergedError(ValueError):
    """The training loss became NaN or infinite."""


def check_finite(value: float, where: str) -> None:
    """Raise :class:`DivergedError` (a ValueError) if the loss is NaN or infinite."""
    if not math.isfinite(value):
        raise DivergedError(
            f"Training diverged: the loss became {value} at {where}. The model was left "
            "as it was before this call. Lower learning_rate, scale X (for example "
            "with StandardScaler or MinMaxScaler), or lower sparsity_weight."
        )


def _epoch_line(epoch, stats: EpochStats, loss, val_score, seconds, n_components):
    line = f"Epoch {epoch}: loss {loss:.6g}"
    if val_score is not None:
        line += f", validation score {val_score:.6g}"
    if stats.code_sum is not None and stats.n_samples:
        mean_act = float(stats.code_sum.mean()) / stats.n_samples
        l0 = float(stats.active) / stats.n_samples
        line += f", mean activation {mean_act:.4g}, active units {l0:.2f}/{n_components}"
    return line + f", {seconds:.3f} s"


def fit_minibatch(
    module: SparseAutoencoder,
    optimizer: torch.optim.Optimizer,
    X: torch.Tensor,
    spec: Objective,
    *,
    batch_size: int,
    max_iter: int,
    tol: float,
    n_iter_no_change: int,
    generator: torch.Generator,
    noise_fn=None,
    X_val: torch.Tensor | None = None,
    validation_score=None,
    verbose: int = 0,
    history: History | None = None,
) -> History:
    """Epochs of :func:`run_epoch` until convergence, as ``MLPRegressor`` decides it.

    Without validation data, training stops once the epoch loss has failed to drop
    by ``tol`` for more than ``n_iter_no_change`` consecutive epochs. With
    ``X_val``, the same rule applies to ``validation_score(module, X_val)``
    (higher is better) and the best weights are restored at the end.
    """
    history = history if history is not None else History()
    no_improvement = 0
    best_state = None
    start_epoch = history.n_iter
    for epoch in range(start_epoch + 1, start_epoch + max_iter + 1):
        tic = time.perf_counter()
        stats = run_epoch(
            module,
            optimizer,
            X,
            spec,
            batch_size=batch_size,
            generator=generator,
            noise_fn=noise_fn,
            track_code=verbose > 0,
            verbose=verbose,
            desc=f"epoch {epoch}",
        )
        loss = float(stats.loss) / stats.n_samples
        check_finite(loss, f"epoch {epoch}")
        history.loss_curve.append(loss)
        history.n_iter = epoch
        val_score = None
        if X_val is not None:
            val_score = float(validation_score(module, X_val))
            check_finite(val_score, f"epoch {epoch} (validation)")
            history.validation_scores.append(val_score)
            if val_score < history.best_validation_score + tol:
                no_improvement += 1
            else:
                no_improvement = 0
            if val_score > history.best_validation_score:
                history.best_validation_score = val_score
                best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        else:
            no_improvement = no_improvement + 1 if loss > history.best_loss - tol else 0
        history.best_loss = min(history.best_loss, loss)
        if verbose:
            print(
                _epoch_line(
                    epoch, stats, loss, val_score, time.perf_counter() - tic, module.sizes[-1]
                ),
                flush=True,
            )
        if no_improvement > n_iter_no_change:
            history.converged = True
            break
    if best_state is not None:
        module.load_state_dict(best_state)
    return history


def fit_lbfgs(
    module: SparseAutoencoder,
    X: torch.Tensor,
    spec: Objective,
    *,
    max_iter: int,
    tol: float,
    noise_fn=None,
    verbose: int = 0,
) -> History:
    """Full-batch L-BFGS with a strong-Wolfe line search (the UFLDL recipe).

    One :meth:`torch.optim.LBFGS.step` runs up to ``max_iter`` iterations (and
    ``1.25 * max_iter`` function evaluations); it stops early when the largest
    gradient entry falls below ``tol``. A denoising corruption is drawn once, so
    that the line search sees one deterministic objective.
    """
    history = History()
    optimizer = torch.optim.LBFGS(
        module.parameters(),
        lr=1.0,
        max_iter=max_iter,
        max_eval=max(1, int(max_iter * 1.25)),
        tolerance_grad=tol,
        tolerance_change=1e-12,
        history_size=100,
        line_search_fn="strong_wolfe",
    )
    x_input = noise_fn(X) if noise_fn is not None else X
    per_iteration: dict[int, float] = {}
    state = optimizer.state[optimizer.param_groups[0]["params"][0]]
    tic = time.perf_counter()

    def report(iteration):
        if verbose and iteration > 0:
            print(
                f"Iteration {iteration}: loss {per_iteration[iteration]:.6g}, "
                f"{time.perf_counter() - tic:.3f} s",
                flush=True,
            )

    def closure():
        optimizer.zero_grad(set_to_none=True)
        total = objective(module, x_input, X, spec).total
        total.backward()
        iteration = state.get("n_iter", 0)
        if iteration not in per_iteration:
            report(iteration - 1)  # the previous iteration's last evaluation is final
        per_iteration[iteration] = float(total)
        return total

    optimizer.step(closure)
    report(max(per_iteration))
    history.n_iter = max(1, int(state.get("n_iter", 1)))
    history.loss_curve = [per_iteration[i] for i in sorted(per_iteration) if i > 0] or [
        per_iteration[0]
    ]
    check_finite(history.loss_curve[-1], f"iteration {history.n_iter}")
    history.best_loss = min(history.loss_curve)
    history.converged = history.n_iter < max_iter and state.get("func_evals", 0) < int(
        max_iter * 1.25
    )
    return history
