"""Training: one front door, :func:`train`, and the loops behind it.

:func:`train` takes a module, the training data as one tensor on its device, the
:class:`._objective.Objective`, a :class:`Schedule` (how to optimise) and a
:class:`TrainState` (what a previous call left: random generators, Adam's moments,
the loss curve) and returns a :class:`TrainResult`. Everything between lives here:
the validation split, the data-dependent initialisation of a new module, the
denoising corruption, the batch-size rule, the thread count, the choice between
minibatch Adam, one ``partial_fit`` epoch and full-batch L-BFGS, and the stopping rule.

The loops keep ``X`` as one tensor on its device, draw one permutation per epoch
from a local generator and gather batches with ``index_select``: no
``DataLoader``, no per-sample Python and no host synchronisation inside an epoch
(the epoch loss is accumulated on the device and read once per epoch). Sparse
training data stay sparse on the host (:class:`._rows.SparseRows`): each batch is
densified on its own, so memory is bounded by the batch and the model. Models with
one code layer and a dense code take a step with the gradient written out
(:mod:`._analytic`), and Adam's fused kernel is called directly
(:class:`._optim.LeanAdam`): on small problems, where per-operation overhead
dominates, a step costs about half of an autograd step (``benchmarks/``).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import sys
import time
from dataclasses import dataclass, field

import torch

from ._analytic import analytic_step, analytic_stepper, supports_analytic_step
from ._device import make_generators, num_threads, threads_for
from ._diagnostics import check_finite, check_no_blow_up
from ._model import SparseAutoencoder
from ._objective import Objective, StepOutput, objective
from ._optim import make_adam, optimizer_step
from ._rows import SparseRows
from ._sparsity import ACTIVATIONS, activity_threshold, auxk_ties_dead_encoders, mechanism

__all__ = [
    "History",
    "Schedule",
    "TrainResult",
    "TrainState",
    "corrupt",
    "run_epoch",
    "train",
    "train_step",
]


@dataclass(frozen=True)
class Schedule:
    """How to optimise: everything :func:`train` needs besides the objective.

    Attributes
    ----------
    solver : {"adam", "lbfgs"}
        Minibatch Adam, or full-batch L-BFGS with a strong-Wolfe line search.
    learning_rate : float
        Adam's step size.
    learning_rate_schedule : {"plateau", "constant"}
        ``"plateau"``: divide the step size by 10 on a plateau, twice, before
        stopping (:func:`fit_minibatch`); ``"constant"``: stop on the first.
    batch_size : int
        Rows per Adam step (``batch_size="auto"`` is resolved by
        :mod:`._defaults`); clipped to ``n_samples``.
    max_iter : int
        Epochs (Adam) or iterations (L-BFGS).
    tol, n_iter_no_change : float, int
        Adam stops once the loss (or validation score) has not improved by ``tol``
        for more than ``n_iter_no_change`` epochs; L-BFGS stops when the largest
        gradient entry falls below ``tol``.
    early_stopping, validation_fraction : bool, float
        Hold out this fraction of the rows, stop on their score and restore the
        best weights (Adam).
    noise, noise_type : float, {"gaussian", "masking"}
        Denoising corruption of the encoder's input during training (:func:`corrupt`).
    one_epoch : bool
        One pass over the data and no stopping rule (``partial_fit``).
    learnt_loss : float
        The stopping rule declares no plateau while the training loss :math:`J` is
        above this: the loss of predicting the mean, less a tenth of what that leaves
        to learn (:mod:`._defaults`; inf: no such guard).
    steer_sparsity : bool
        After each epoch, move ``sparsity_weight`` toward the value at which the
        epoch's mean activation meets ``sparsity_target`` (:func:`steer_weight`); the
        stopping rule then also waits for the target to be met.
    n_threads : int or None
        Torch CPU threads; None: :func:`._device.threads_for` decides.
    verbose : int
        1: one line per epoch; 2: also a progress bar within long epochs.
    """

    solver: str = "adam"
    learning_rate: float = 1e-3
    learning_rate_schedule: str = "constant"
    batch_size: int = 200
    max_iter: int = 200
    tol: float = 1e-4
    n_iter_no_change: int = 10
    early_stopping: bool = False
    validation_fraction: float = 0.1
    noise: float = 0.0
    noise_type: str = "gaussian"
    one_epoch: bool = False
    steer_sparsity: bool = False
    n_threads: int | None = None
    verbose: int = 0
    learnt_loss: float = math.inf


@dataclass(frozen=True)
class TrainState:
    """What one training call leaves for the next (``warm_start``, ``partial_fit``).

    Attributes
    ----------
    generator_states : tuple
        ``(cpu, device)`` states of the two local generators (:func:`._device.make_generators`);
        the device one is None on the CPU.
    optimizer_state : dict or None
        Adam's ``state_dict`` (None: a new Adam).
    loss_curve : list of float
        The loss per epoch so far.
    mean_activation_curve : list of float
        The mean activation of the code per epoch so far (Adam only).
    n_iter : int
        Epochs so far.
    sparsity_weight : float or None
        The steered sparsity weight to continue from (None: the objective's).
    initialized : bool
        Whether the module was initialised from data; :func:`train` initialises a
        module whose state says it was not.
    """

    generator_states: tuple
    optimizer_state: dict | None = None
    loss_curve: list = field(default_factory=list)
    n_iter: int = 0
    mean_activation_curve: list = field(default_factory=list)
    sparsity_weight: float | None = None
    initialized: bool = False

    @classmethod
    def new(cls, random_state, device: torch.device) -> TrainState:
        """The state of a new model: generators seeded from ``random_state``."""
        cpu, dev = make_generators(random_state, device)
        return cls((cpu.get_state(), None if dev is cpu else dev.get_state()))

    def generators(self, device: torch.device):
        """``(cpu, device)`` generators in this state (one object on the CPU)."""
        cpu, dev = make_generators(0, device)
        cpu.set_state(self.generator_states[0])
        if dev is not cpu and self.generator_states[1] is not None:
            dev.set_state(self.generator_states[1])
        return cpu, dev


@dataclass
class History:
    """What a training run reports back (the loss per epoch, the stopping rule)."""

    loss_curve: list = field(default_factory=list)
    #: the code's mean activation over each epoch's batches (None for L-BFGS)
    mean_activation_curve: list | None = None
    validation_scores: list | None = None
    best_loss: float = math.inf
    best_validation_score: float | None = None
    n_iter: int = 0
    converged: bool = False
    #: what ran out when training stopped without converging, for the warning
    exhausted: str = ""
    #: the objective of the model this call started from (its first batch)
    initial_loss: float | torch.Tensor | None = None


@dataclass
class TrainResult:
    """What :func:`train` returns: the run's history, the state to resume from, and
    the objective as training left it (its ``sparsity_weight`` steered, if asked)."""

    history: History
    state: TrainState
    objective: Objective


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


@dataclass
class EpochStats:
    """Device-side sums over one epoch, read once at its end."""

    loss: torch.Tensor
    first_loss: torch.Tensor | None = None
    code_sum: torch.Tensor | None = None
    active: torch.Tensor | None = None
    n_samples: int = 0
    #: ``code_sum``'s mean per sample, once read on the host
    mean_activation: float | None = None


def train_step(
    module: SparseAutoencoder,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    spec: Objective,
    noise_fn=None,
) -> StepOutput:
    """One optimiser step on batch ``x``.

    One code layer with a dense code takes :func:`analytic_step` (the gradient
    written out, about twice as fast on small problems); everything else
    differentiates :func:`._objective.objective` with autograd.

    A mechanism with ``unit_norm_decoder`` (TopK) adds its two constraints around
    the step: no gradient along the decoder rows before it, unit-norm rows after
    it; and counts how long each unit has gone without firing (for AuxK's dead
    units; with ``_sparsity.AUXK_DEAD_ENCODER = "decoder_transpose"``, off by
    default, their encoder rows then follow their decoder rows,
    :meth:`._model.SparseAutoencoder.tie_dead_encoders`). A mechanism's
    ``after_step`` (BatchTopK's running threshold) runs last.
    """
    if supports_analytic_step(module, spec):
        return analytic_step(module, optimizer, x, spec, noise_fn)
    x_input = noise_fn(x) if noise_fn is not None else x
    terms = objective(module, x_input, x, spec)
    optimizer.zero_grad(set_to_none=True)
    terms.total.backward()
    if module.center_input:
        module.remove_parallel_decoder_grad()
    optimizer_step(optimizer)
    if module.center_input:
        module.normalize_decoder()
        with torch.no_grad():
            fired = (terms.output.code > 0).any(dim=0)
            module.samples_since_fired.add_(x.shape[0]).masked_fill_(fired, 0)
            if spec.k_aux > 0 and auxk_ties_dead_encoders():
                module.tie_dead_encoders(module.samples_since_fired >= spec.dead_after)
    after_step = mechanism(module.sparsity).after_step
    if after_step is not None:  # BatchTopK's running threshold
        with torch.no_grad():
            after_step(module, terms.output)
    return StepOutput(terms.total.detach(), terms.output.code.detach())


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


def _epoch_step(module, optimizer, spec, noise_fn):
    """``(step, analytic)``: :func:`train_step` as a function of the batch for one
    epoch, and whether it is the written-out gradient (:func:`._analytic.analytic_stepper`,
    its lookups done once per epoch; to run without autograd)."""
    if supports_analytic_step(module, spec):
        return analytic_stepper(module, optimizer, spec, noise_fn), True
    return (lambda x: train_step(module, optimizer, x, spec, noise_fn)), False


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
    the code's column sums and (only with ``verbose``, whose epoch line shows the
    mean L0) the count of active units.
    """
    n = X.shape[0]
    perm = torch.randperm(n, generator=generator)
    if isinstance(X, torch.Tensor):  # SparseRows selects its rows on the host
        perm = perm.to(X.device, non_blocking=True)
    threshold = activity_threshold(module.sparsity, module.activation)
    count_active = track_code and verbose > 0  # only the verbose epoch line shows L0
    # Each step's loss and column sums are kept and summed once at the end of the
    # epoch: accumulating them step by step cost two kernels a step (about 4 % of a
    # 64 -> 64 step on 128 rows).
    totals, code_sums, actives = [], [], []
    n_batches = math.ceil(n / batch_size)
    update, close = _progress(n_batches, verbose, desc)
    step, analytic = _epoch_step(module, optimizer, spec, noise_fn)
    with torch.set_grad_enabled(not analytic):  # the written-out gradient needs no graph
        for i, rows in enumerate(perm.split(batch_size), start=1):  # views, made at once
            xb = X.index_select(0, rows)  # 4x faster than X[rows]
            terms = step(xb)
            totals.append(terms.total)
            if track_code:  # the step's own column sums where it has them (analytic_step)
                code = terms.code
                code_sums.append(code.sum(dim=0) if terms.code_sum is None else terms.code_sum)
            if count_active:
                actives.append((terms.code > threshold).sum())
            if update is not None:
                update(i)
    if close is not None:
        close()
    module.zero_grad(set_to_none=True)  # a fitted module carries no gradients
    # the sample-weighted loss: every batch has batch_size rows but the last
    last = n - (n_batches - 1) * batch_size
    weights = torch.full((n_batches,), float(batch_size), device=X.device, dtype=X.dtype)
    weights[-1] = last
    stats = EpochStats(loss=torch.stack(totals).to(X.dtype) @ weights, n_samples=n)
    stats.first_loss = totals[0]  # the objective before any step of this epoch
    if track_code:
        stats.code_sum = torch.stack(code_sums).sum(dim=0).to(X.dtype)
    if count_active:
        stats.active = torch.stack(actives).sum().to(X.dtype)
    return stats


def epoch_line(label, stats: EpochStats, loss, val_score, seconds, n_components) -> str:
    """The ``verbose`` line of one epoch: loss, validation score, sparsity, seconds."""
    line = f"{label}: loss {loss:.6g}"
    if val_score is not None:
        line += f", validation score {val_score:.6g}"
    if stats.code_sum is not None and stats.n_samples:
        mean_act = stats.mean_activation
        l0 = float(stats.active) / stats.n_samples
        line += f", mean activation {mean_act:.4g}, active units {l0:.2f}/{n_components}"
    return line + f", {seconds:.3f} s"


def validation_score(module: SparseAutoencoder, X_val: torch.Tensor | SparseRows) -> torch.Tensor:
    """Negative mean squared reconstruction error on held-out data, on the loss's scale.

    Scored with the code of inference (``eval()``: BatchTopK's threshold, not the
    batch's TopK). Sparse rows are read in chunks of :data:`SPARSE_CHUNK_ROWS`,
    densified one at a time.
    """
    module.eval()
    with torch.no_grad():
        if isinstance(X_val, torch.Tensor):
            score = -module.residual(module(X_val).reconstruction, X_val).pow(2).mean()
        else:
            total = sum(
                module.residual(module(x).reconstruction, x).pow(2).sum()
                for x in X_val.split(SPARSE_CHUNK_ROWS)
            )
            score = -total / (X_val.shape[0] * X_val.shape[1])
    module.train()
    return score


#: Rows per chunk when held-out sparse rows are scored.
SPARSE_CHUNK_ROWS = 1024


def _validation_split(X: torch.Tensor | SparseRows, fraction: float, generator: torch.Generator):
    """``(X_train, X_val)``: a random ``fraction`` of the rows held out (at least one)."""
    n_samples = X.shape[0]
    perm = torch.randperm(n_samples, generator=generator)
    if isinstance(X, torch.Tensor):
        perm = perm.to(X.device)
    n_val = max(1, round(fraction * n_samples))
    if n_val >= n_samples:
        raise ValueError(
            f"early_stopping needs at least 2 samples; got {n_samples} sample(s) "
            f"with validation_fraction={fraction}."
        )
    return X[perm[n_val:]], X[perm[:n_val]]


class _AcceptedCurve:
    """The objective at each L-BFGS iteration's accepted point, from the evaluations.

    ``lowest[i]`` is the lowest objective evaluated during iteration ``i`` (0: the
    starting point); iteration ``i`` accepted ``min(curve[i - 1], lowest[i])``.
    """

    def __init__(self, verbose: int):
        self.lowest: dict[int, float] = {}
        self.curve: list[float] = []
        self.verbose = verbose
        self.tic = time.perf_counter()

    def evaluated(self, iteration: int, value: float) -> None:
        """An evaluation during ``iteration``: every earlier iteration is complete."""
        self.close(iteration - 1)
        # a NaN trial point is rejected by the line search (it is not lower)
        value = value if value == value else math.inf
        self.lowest[iteration] = min(self.lowest.get(iteration, math.inf), value)

    def close(self, through: int) -> None:
        """Record iterations up to ``through``, whose evaluations are all in."""
        while len(self.curve) < through:
            iteration = len(self.curve) + 1
            previous = self.curve[-1] if self.curve else self.lowest[0]
            self.curve.append(min(previous, self.lowest.get(iteration, math.inf)))
            if self.verbose:
                now = time.perf_counter()
                line = f"Iteration {iteration}: loss {self.curve[-1]:.6g}, {now - self.tic:.3f} s"
                print(line, flush=True)
                self.tic = now


def fit_lbfgs(
    module: SparseAutoencoder,
    X: torch.Tensor,
    spec: Objective,
    schedule: Schedule,
    noise_fn=None,
) -> History:
    """Full-batch L-BFGS with a strong-Wolfe line search (the UFLDL recipe).

    One :meth:`torch.optim.LBFGS.step` runs up to ``schedule.max_iter`` iterations
    with 100 correction pairs and at most ``2 * max_iter`` function evaluations
    (minFunc's defaults, as in UFLDL; line searches rarely need more than one or
    two); it stops early when the largest gradient entry falls below ``tol`` or
    the objective stops changing. A denoising corruption is drawn
    once, so that the line search sees one deterministic objective.

    ``History.loss_curve`` holds, per iteration, the objective at the point its
    line search accepted. That is the lowest value the line search evaluated, or
    the previous iteration's value when it found nothing lower (the strong-Wolfe
    search always returns the lowest point of its bracket), so no extra
    evaluation is needed.
    """
    max_iter = schedule.max_iter
    optimizer = torch.optim.LBFGS(
        module.parameters(),
        lr=1.0,
        max_iter=max_iter,
        max_eval=2 * max_iter,
        tolerance_grad=schedule.tol,
        tolerance_change=1e-12,
        history_size=100,
        line_search_fn="strong_wolfe",
    )
    x_input = noise_fn(X) if noise_fn is not None else X
    state = optimizer.state[optimizer.param_groups[0]["params"][0]]
    accepted = _AcceptedCurve(schedule.verbose)

    def closure():
        optimizer.zero_grad(set_to_none=True)
        total = objective(module, x_input, X, spec).total
        total.backward()
        accepted.evaluated(int(state.get("n_iter", 0)), float(total.detach()))
        return total

    optimizer.step(closure)
    module.zero_grad(set_to_none=True)
    n_iter = int(state.get("n_iter", 0))
    accepted.close(n_iter)
    history = History(n_iter=max(1, n_iter), loss_curve=accepted.curve or [accepted.lowest[0]])
    check_finite(history.loss_curve[-1], f"iteration {history.n_iter}")
    history.best_loss = min(history.loss_curve)
    max_eval = optimizer.param_groups[0]["max_eval"]
    history.converged = n_iter < max_iter and state.get("func_evals", 0) < max_eval
    if history.n_iter < max_iter:
        history.exhausted = (
            f"its {max_eval} function evaluations (2 * max_iter) after "
            f"{history.n_iter} of max_iter={max_iter} iterations"
        )
    else:
        history.exhausted = f"max_iter={max_iter} iterations"
    if schedule.verbose:
        print(
            f"Converged at iteration {history.n_iter}: the largest gradient entry fell "
            f"below tol={schedule.tol:.3g}, or the objective stopped changing."
            if history.converged
            else f"Stopped: L-BFGS used up {history.exhausted} without converging.",
            flush=True,
        )
    return history


#: How far a steered sparsity weight moves after an epoch: β ← β (ρ̂ / ρ)^STEER_RATE.
STEER_RATE = 0.5
#: A steered mean activation within this relative distance of the target is on target.
STEER_TOLERANCE = 0.1
#: The range a steered sparsity weight is kept in.
STEER_BOUNDS = (1e-4, 1e4)


def steer_weight(spec: Objective, rho_hat: float) -> tuple[Objective, bool]:
    r"""Move :math:`\beta` toward the weight at which the mean activation meets :math:`\rho`.

    .. math:: \beta \leftarrow \operatorname{clip}\Big(\beta
        \Big(\frac{\hat\rho}{\rho}\Big)^{\eta}\Big), \qquad \eta = 0.5

    (a multiplicative dual-ascent step on the constraint :math:`\hat\rho = \rho`):
    a code more active than the target gets a larger weight, a less active one a
    smaller. ``rho_hat`` is the epoch's mean activation in the unit interval.

    Returns the objective with the new weight, and whether ``rho_hat`` was on target
    (within ``STEER_TOLERANCE``) or the weight is held at a bound of ``STEER_BOUNDS``
    (a target the code cannot reach, such as 0.5 for two units behind a hidden layer,
    would otherwise keep training going until ``max_iter``).
    """
    ratio = max(rho_hat, 1e-12) / spec.sparsity_target
    low, high = STEER_BOUNDS
    wanted = spec.sparsity_weight * ratio**STEER_RATE
    beta = min(max(wanted, low), high)
    on_target = abs(math.log(ratio)) <= math.log1p(STEER_TOLERANCE)
    # a weight held at its bound cannot move the code further: waiting is in vain
    return dataclasses.replace(spec, sparsity_weight=beta), on_target or beta != wanted


class _NoImprovement:
    """MLPRegressor's stopping rule, and the best weights when there is validation data.

    An epoch counts as no improvement when the loss per feature (``J / n_features``,
    the scale of MLPRegressor's loss, a mean over samples and outputs) is not below
    the best so far minus ``tol`` or, with validation data, the validation score (a
    mean squared error, higher is better) is not above the best so far plus ``tol``.
    A plateau is more than ``patience`` such epochs in a row.
    """

    def __init__(self, history: History, tol: float, patience: int, n_features: int):
        self.history, self.tol, self.patience = history, tol, patience
        self.loss_tol = tol * n_features
        self.count = 0
        self.best_state = None

    def update(
        self, module: SparseAutoencoder, loss: float, val_score: float | None, settled: bool
    ) -> bool:
        """Record one epoch; True on a plateau.

        An epoch that is not ``settled`` (a steered weight still off target) never
        counts as no improvement.
        """
        history = self.history
        if val_score is None:
            worse = loss > history.best_loss - self.loss_tol
        else:
            worse = val_score < history.best_validation_score + self.tol
            if val_score > history.best_validation_score:
                history.best_validation_score = val_score
                self.best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        self.count = self.count + 1 if (worse and settled) else 0
        history.best_loss = min(history.best_loss, loss)
        return self.count > self.patience

    def plateau(self) -> str:
        """What the last plateau was, for the ``verbose`` lines."""
        what = "validation score" if self.best_state is not None else "loss per feature"
        return f"the {what} did not improve by tol={self.tol:.3g} for {self.patience + 1} epochs"

    def restore_best(self, module: SparseAutoencoder) -> None:
        """Load the weights of the best validation score, if there was validation data."""
        if self.best_state is not None:
            module.load_state_dict(self.best_state)


@dataclass
class _Loop:
    """What every epoch of one training call shares."""

    module: SparseAutoencoder
    optimizer: torch.optim.Optimizer
    spec: Objective
    schedule: Schedule
    batch_size: int
    generator: torch.Generator
    noise_fn: object
    history: History

    def epoch(self, X: torch.Tensor, desc: str, where: str) -> tuple[EpochStats, float]:
        """One pass over ``X``: its stats and mean loss, recorded in the history."""
        stats = run_epoch(
            self.module,
            self.optimizer,
            X,
            self.spec,
            batch_size=self.batch_size,
            generator=self.generator,
            noise_fn=self.noise_fn,
            track_code=True,
            verbose=self.schedule.verbose,
            desc=desc,
        )
        # one host read for both sums (a device synchronisation each)
        loss_sum, code_mean = torch.stack([stats.loss, stats.code_sum.mean()]).tolist()
        loss, stats.mean_activation = loss_sum / stats.n_samples, code_mean / stats.n_samples
        check_finite(loss, where)
        if self.history.initial_loss is None:  # read once, at the end of training
            self.history.initial_loss = stats.first_loss
        self.history.loss_curve.append(loss)
        self.history.mean_activation_curve.append(stats.mean_activation)
        self.history.n_iter += 1
        return stats, loss

    def steer(self, stats: EpochStats) -> bool:
        """Steer the sparsity weight after an epoch (:func:`steer_weight`); True if on target.

        The mean activation is the epoch's, of the codes the penalty saw (of the
        corrupted inputs, when denoising): the weight acts on those. (Steering it
        by the clean codes, which a denoising model's corrupted inputs do not
        move in step, drove the weight to its bound on standardised digits.)
        """
        if not self.schedule.steer_sparsity:
            return True
        scale, shift = ACTIVATIONS[self.module.activation].unit_interval
        rho_hat = stats.mean_activation * scale + shift
        self.spec, on_target = steer_weight(self.spec, rho_hat)
        return on_target

    def say(self, line: str) -> None:
        """A ``verbose`` line about the schedule (a step-size drop, why training stopped)."""
        if self.schedule.verbose:
            print(line, flush=True)

    def report(self, label, stats, loss, val_score, tic) -> None:
        if self.schedule.verbose:
            seconds = time.perf_counter() - tic
            width = self.module.sizes[-1]
            print(epoch_line(label, stats, loss, val_score, seconds, width), flush=True)


#: ``learning_rate_schedule="plateau"``: on a plateau the step size is divided by
#: PLATEAU_FACTOR, at most PLATEAU_DROPS times; the next plateau ends training.
PLATEAU_FACTOR = 10.0
PLATEAU_DROPS = 2


def fit_minibatch(loop: _Loop, X: torch.Tensor, X_val: torch.Tensor | None) -> None:
    """Epochs of :func:`run_epoch` until convergence.

    A plateau is more than ``n_iter_no_change`` consecutive epochs in which the loss
    per feature fails to drop by ``tol`` (with ``X_val``: :func:`validation_score`
    fails to rise by ``tol``; the best weights are restored at the end). With the
    ``"constant"`` schedule the first plateau ends training, as in ``MLPRegressor``;
    with ``"plateau"`` the step size is first divided by ``PLATEAU_FACTOR`` up to
    ``PLATEAU_DROPS`` times, so that training settles into the minimum it found.
    """
    history, schedule = loop.history, loop.schedule
    if X_val is not None:
        history.validation_scores, history.best_validation_score = [], -math.inf
    n_features = loop.module.sizes[0]
    stopper = _NoImprovement(history, schedule.tol, schedule.n_iter_no_change, n_features)
    drops = 0
    for i in range(1, schedule.max_iter + 1):
        tic = time.perf_counter()
        epoch = history.n_iter + 1
        stats, loss = loop.epoch(X, f"epoch {epoch}", f"epoch {epoch}")
        val_score = None
        if X_val is not None:
            val_score = float(validation_score(loop.module, X_val))
            check_finite(val_score, f"epoch {epoch} (validation)")
            history.validation_scores.append(val_score)
        settled = loop.steer(stats) and loss < schedule.learnt_loss
        stop = stopper.update(loop.module, loss, val_score, settled)
        loop.report(f"Epoch {i}/{schedule.max_iter}", stats, loss, val_score, tic)
        if stop and schedule.learning_rate_schedule == "plateau" and drops < PLATEAU_DROPS:
            drops, stopper.count = drops + 1, 0
            for group in loop.optimizer.param_groups:
                old = group["lr"]
                group["lr"] /= PLATEAU_FACTOR
            loop.say(
                f"{stopper.plateau()}: learning rate divided by {PLATEAU_FACTOR:g}, "
                f"{old:.3g} -> {old / PLATEAU_FACTOR:.3g}"
            )
        elif stop:
            history.converged = True
            after = f" after {drops} learning-rate drops" if drops else ""
            loop.say(f"Converged at epoch {i}: {stopper.plateau()}{after}.")
            break
    stopper.restore_best(loop.module)
    if not history.converged:
        history.exhausted = f"max_iter={schedule.max_iter} epochs"
        loop.say(f"Stopped at max_iter={schedule.max_iter} epochs without converging.")


def fit_one_epoch(loop: _Loop, X: torch.Tensor) -> None:
    """One pass over ``X`` (``partial_fit``): no stopping rule, no validation."""
    tic = time.perf_counter()
    label = f"partial_fit {loop.history.n_iter + 1}"
    stats, loss = loop.epoch(X, label, f"partial_fit call {loop.history.n_iter + 1}")
    loop.steer(stats)
    loop.report(label, stats, loss, None, tic)


def _noise_fn(schedule: Schedule, generator: torch.Generator):
    """The corruption :func:`corrupt` of ``schedule``, drawn from ``generator``; or None."""
    if schedule.noise <= 0:
        return None
    return functools.partial(
        corrupt, noise=float(schedule.noise), noise_type=schedule.noise_type, generator=generator
    )


def _adam_loop(module, spec, schedule, state, batch_size, generator, noise_fn) -> _Loop:
    """The :class:`_Loop` of an Adam run that continues ``state`` (its curves, its
    epoch count and Adam's moments; a new state starts them afresh)."""
    history = History(
        loss_curve=list(state.loss_curve),
        mean_activation_curve=list(state.mean_activation_curve),
        best_loss=min(state.loss_curve, default=math.inf),
        n_iter=state.n_iter,
    )
    # Adam updates its loaded state tensors in place: train on a copy.
    moments = copy.deepcopy(state.optimizer_state)
    optimizer = make_adam(module.parameters(), schedule.learning_rate, moments)
    return _Loop(module, optimizer, spec, schedule, batch_size, generator, noise_fn, history)


def train(
    module: SparseAutoencoder,
    X: torch.Tensor | SparseRows,
    spec: Objective,
    schedule: Schedule,
    state: TrainState,
) -> TrainResult:
    """Train ``module`` on ``X`` (one tensor on the module's device, or
    :class:`._rows.SparseRows` densified a batch at a time), in place.

    The one front door of training. In order: hold out a validation split
    (``schedule.early_stopping``, Adam only), initialise a module that ``state``
    says is new from the training rows (:meth:`._model.SparseAutoencoder.initialize`;
    with ``steer_sparsity`` the code biases start where the code meets its target),
    then run L-BFGS, one epoch (``schedule.one_epoch``) or epochs until the
    stopping rule, with the corruption, batch size and thread count of ``schedule``
    (the initialisation runs with that thread count too).
    ``spec.dead_after=None`` means one pass over the training rows. Raises
    :class:`._diagnostics.DivergedError` if the loss becomes NaN or infinite.

    Returns the run's :class:`History` (a continued Adam run's loss curve includes
    ``state``'s) and the :class:`TrainState` to continue from.
    """
    cpu_gen, dev_gen = state.generators(X.device)
    module.train()  # and eval() at the end: transform's code is per sample (BatchTopK)
    adam = schedule.solver == "adam"
    if not adam and isinstance(X, SparseRows):  # L-BFGS evaluates all rows at once
        X = X.to_dense()
    X_val = None
    if adam and schedule.early_stopping and not schedule.one_epoch:
        X, X_val = _validation_split(X, schedule.validation_fraction, cpu_gen)
    if spec.dead_after is None:
        spec = dataclasses.replace(spec, dead_after=max(1, X.shape[0]))
    if state.sparsity_weight is not None:
        spec = dataclasses.replace(spec, sparsity_weight=state.sparsity_weight)
    noise_fn = _noise_fn(schedule, dev_gen)
    batch_size = max(1, min(int(schedule.batch_size), X.shape[0]))
    threads = threads_for(module.sizes, batch_size if adam else X.shape[0], schedule.n_threads)
    with num_threads(threads):
        # The initialisation's passes over X take the training's threads too: with
        # the caller's (all cores) while another process holds a core, OpenMP made
        # them 40x slower (45 ms instead of 1 on 8000 x 64, bench_vs_skorch's fit).
        if not state.initialized:
            module.initialize(X, cpu_gen)
            if schedule.steer_sparsity:  # start the code at its target activation
                preimage = ACTIVATIONS[module.activation].preimage(spec.sparsity_target)
                module.set_code_bias(preimage)
        if not adam:
            history, optimizer_state = fit_lbfgs(module, X, spec, schedule, noise_fn), None
        else:
            loop = _adam_loop(module, spec, schedule, state, batch_size, cpu_gen, noise_fn)
            if schedule.one_epoch:
                fit_one_epoch(loop, X)
            else:
                fit_minibatch(loop, X, X_val)
            history, spec = loop.history, loop.spec
            optimizer_state = copy.deepcopy(loop.optimizer.state_dict())
            this_call = history.loss_curve[state.n_iter :]
            advice = f"Lower learning_rate (for example to {schedule.learning_rate / 10:g})"
            where = f"epoch {history.n_iter}"
            check_no_blow_up(this_call, float(history.initial_loss), where, advice)
    module.eval()
    generator_states = (cpu_gen.get_state(), None if dev_gen is cpu_gen else dev_gen.get_state())
    new_state = TrainState(
        generator_states,
        optimizer_state,
        history.loss_curve,
        history.n_iter,
        history.mean_activation_curve or [],
        sparsity_weight=spec.sparsity_weight if schedule.steer_sparsity else None,
        initialized=True,
    )
    return TrainResult(history, new_state, spec)
