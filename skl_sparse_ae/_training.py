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
from a local generator and gather batches with ``index_select``: no
``DataLoader``, no per-sample Python and no host synchronisation inside an epoch
(the epoch loss is accumulated on the device and read once per epoch). Models with
one code layer and a dense code take a step with the gradient written out
(:func:`analytic_step`, no autograd graph), and Adam's fused kernel is called
directly (:class:`LeanAdam`): on small problems, where per-operation overhead
dominates, a step costs about half of an autograd step (``benchmarks/``).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
import torch.optim.optimizer as _torch_optimizer

from ._model import AutoencoderOutput, SparseAutoencoder
from ._sparsity import ACTIVATIONS, auxk_loss, kl_penalty, l1_penalty

__all__ = [
    "DEAD_RANGE",
    "Diagnostics",
    "History",
    "LeanAdam",
    "Objective",
    "activity_threshold",
    "analytic_step",
    "check_finite",
    "check_finite_fit",
    "corrupt",
    "cross_entropy",
    "epoch_line",
    "fit_lbfgs",
    "kl_divergence_and_grad",
    "make_adam",
    "objective",
    "optimizer_step",
    "run_epoch",
    "squared_error",
    "supports_analytic_step",
    "train_step",
    "training_diagnostics",
    "weight_penalty",
]

#: AuxK's coefficient, as in openai/sparse_autoencoder.
AUXK_WEIGHT = 1.0 / 32.0


# --------------------------------------------------------------------------- math
def squared_error(residual: torch.Tensor) -> torch.Tensor:
    r"""UFLDL's reconstruction cost :math:`\frac{1}{m}\sum_i \frac12\|r_i\|^2`.

    ``residual`` is :math:`r = \hat x - x` of shape ``(m, n_features)``, on the scale
    the loss is computed on (:meth:`._model.SparseAutoencoder.residual`).
    """
    return 0.5 * residual.pow(2).sum(dim=1).mean()


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


#: A unit whose code varies by no more than this over the training data is dead:
#: it carries no information. For ReLU and TopK codes these are the units that
#: never fire; for sigmoid and tanh codes, the saturated ones.
DEAD_RANGE = 1e-6


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
        reconstruction = squared_error(module.residual(out.reconstruction, x_target))
    total = reconstruction
    if spec.sparsity == "kl":
        total = total + spec.sparsity_weight * kl_penalty(
            out.code, spec.sparsity_target, spec.activation
        )
    elif spec.sparsity == "l1":
        total = total + spec.sparsity_weight * l1_penalty(out.code)
    elif spec.sparsity == "topk" and spec.k_aux > 0:
        dead = module.samples_since_fired >= spec.dead_after
        # Skipping AuxK when no unit is dead needs the mask's value on the host:
        # free on the CPU, a synchronisation on an accelerator, where AuxK always
        # runs instead (it is then exactly zero, see auxk_loss).
        if dead.device.type != "cpu" or bool(dead.any()):
            residual = module.residual(x_target, out.reconstruction).detach()
            total = total + AUXK_WEIGHT * auxk_loss(
                out.pre_code, residual, dead, spec.k_aux, module.auxk_decoder(out)
            )
    if spec.weight_decay > 0:
        total = total + weight_penalty(module.weights(), spec.weight_decay)
    return LossTerms(total, reconstruction, out)


# --------------------------------------------------------------------------- loops
class LeanAdam(torch.optim.Adam):
    """:class:`torch.optim.Adam` whose step calls the fused kernel directly.

    Same algorithm, same state and ``state_dict`` as ``torch.optim.Adam(...,
    fused=True)`` and bit-identical steps (tests check it). Once the state exists,
    :meth:`fast_step` skips the per-step Python bookkeeping of ``torch.optim``
    (the profiling wrapper, hooks, grouping tensors by device and dtype): about
    150 µs less per step here, a quarter of a small training step. It runs
    :meth:`step` instead for anything else: the first step, hooks, options the
    fast path does not cover, or a torch without ``torch._fused_adam_``.
    """

    def _fast_lists(self):
        if len(self.param_groups) != 1 or not hasattr(torch, "_fused_adam_"):
            return None
        if self._optimizer_step_pre_hooks or self._optimizer_step_post_hooks:
            return None
        if getattr(_torch_optimizer, "_global_optimizer_pre_hooks", None) or getattr(
            _torch_optimizer, "_global_optimizer_post_hooks", None
        ):
            return None
        group = self.param_groups[0]
        if (
            not group.get("fused")
            or group.get("amsgrad")
            or group.get("capturable")
            or group.get("differentiable")
            or group.get("decoupled_weight_decay", False)
            or isinstance(group["lr"], torch.Tensor)
        ):
            return None
        params = group["params"]
        if len({(p.device, p.dtype) for p in params}) != 1:  # one kernel launch
            return None
        try:
            states = [self.state[p] for p in params]
            lists = (
                params,
                [p.grad for p in params],
                [state["exp_avg"] for state in states],
                [state["exp_avg_sq"] for state in states],
                [state["step"] for state in states],
            )
        except KeyError:  # no state yet: the first step
            return None
        if any(grad is None for grad in lists[1]):
            return None
        return lists

    def fast_step(self) -> None:
        """One Adam step, as :meth:`step` without a closure."""
        lists = None if getattr(self, "_slow", False) else self._fast_lists()
        if lists is None:
            self.step()
            return
        params, grads, exp_avgs, exp_avg_sqs, steps = lists
        group = self.param_groups[0]
        beta1, beta2 = group["betas"]
        with torch.no_grad():
            torch._foreach_add_(steps, 1)
            try:
                torch._fused_adam_(
                    params,
                    grads,
                    exp_avgs,
                    exp_avg_sqs,
                    [],
                    steps,
                    amsgrad=False,
                    lr=group["lr"],
                    beta1=beta1,
                    beta2=beta2,
                    weight_decay=group["weight_decay"],
                    eps=group["eps"],
                    maximize=group["maximize"],
                    grad_scale=None,
                    found_inf=None,
                )
            except (TypeError, RuntimeError):  # another signature: use torch's step
                torch._foreach_sub_(steps, 1)
                self._slow = True
                self.step()


def optimizer_step(optimizer: torch.optim.Optimizer) -> None:
    """``optimizer.step()``, through :meth:`LeanAdam.fast_step` where possible."""
    if isinstance(optimizer, LeanAdam):
        optimizer.fast_step()
    else:
        optimizer.step()


def make_adam(params, lr: float, state: dict | None = None) -> torch.optim.Adam:
    """Adam over ``params``, resumed from ``state`` (an Adam ``state_dict``) if given.

    Uses torch's fused implementation (one kernel for all parameters) through
    :class:`LeanAdam` where this torch and device support it, else the default
    one. A resumed optimiser keeps the new ``lr`` and its own implementation
    choice, so a state saved on one device or torch version resumes on another.
    """
    params = list(params)
    try:
        optimizer = LeanAdam(params, lr=lr, fused=True)
    except (RuntimeError, ValueError, TypeError):  # fused is unsupported here
        optimizer = torch.optim.Adam(params, lr=lr)
    if state is not None:
        own = {key: optimizer.param_groups[0].get(key) for key in ("fused", "foreach")}
        optimizer.load_state_dict(state)
        for group in optimizer.param_groups:
            group.update(own, lr=lr)
    return optimizer


@dataclass
class EpochStats:
    """Device-side sums over one epoch, read once at its end."""

    loss: torch.Tensor
    code_sum: torch.Tensor | None = None
    active: torch.Tensor | None = None
    n_samples: int = 0


class StepOutput(NamedTuple):
    """What one training step reports: the batch objective and the batch's code."""

    total: torch.Tensor
    code: torch.Tensor


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
    differentiates :func:`objective` with autograd.

    TopK adds its two constraints around the step: no gradient along the decoder
    rows before it, unit-norm rows after it; and counts how long each unit has
    gone without firing (for AuxK's dead units).
    """
    if supports_analytic_step(module, spec):
        return analytic_step(module, optimizer, x, spec, noise_fn)
    x_input = noise_fn(x) if noise_fn is not None else x
    terms = objective(module, x_input, x, spec)
    optimizer.zero_grad(set_to_none=True)
    terms.total.backward()
    if module.k is not None:
        module.remove_parallel_decoder_grad()
    optimizer_step(optimizer)
    if module.k is not None:
        module.normalize_decoder()
        with torch.no_grad():
            fired = (terms.output.code > 0).any(dim=0)
            module.samples_since_fired.add_(x.shape[0]).masked_fill_(fired, 0)
    return StepOutput(terms.total.detach(), terms.output.code.detach())


# ---------------------------------------------------------- the gradient by hand
def kl_divergence_and_grad(
    rho: float, rho_hat: torch.Tensor, eps: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    r""":func:`._sparsity.kl_divergence` and its derivative in ``rho_hat``, sharing work.

    With :math:`r = \operatorname{clip}(\hat\rho, \epsilon, 1 - \epsilon)`:

    .. math::

        \mathrm{KL} = \sum_j \rho\log\rho + (1-\rho)\log(1-\rho)
            - \big[\rho \log r_j + (1 - \rho)\log(1 - r_j)\big]

        \frac{\partial\,\mathrm{KL}}{\partial\hat\rho_j}
            = \frac{1 - \rho}{1 - r_j} - \frac{\rho}{r_j} = \frac{r_j - \rho}{r_j (1 - r_j)}

    and the derivative is zero where the clipping is active, as autograd gives.
    """
    clipped = rho_hat.clamp(eps, 1.0 - eps)
    complement = 1.0 - clipped
    entropy = rho * math.log(rho) + (1.0 - rho) * math.log(1.0 - rho)
    # lerp(a, b, w) = a + w (b - a) = (1 - rho) log(1 - r) + rho log r
    cross = torch.lerp(complement.log(), clipped.log(), rho).sum()
    value = rho_hat.shape[-1] * entropy - cross
    grad = (clipped - rho).div_(clipped * complement).mul_(rho_hat == clipped)
    return value, grad


def _relu_backward(grad: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
    return torch.ops.aten.threshold_backward(grad, code, 0)


#: ``grad * activation'(z)`` from the activation's output: one kernel each.
_ACTIVATION_BACKWARD = {
    "sigmoid": torch.ops.aten.sigmoid_backward,
    "tanh": torch.ops.aten.tanh_backward,
    "relu": _relu_backward,
}


def supports_analytic_step(module: SparseAutoencoder, spec: Objective) -> bool:
    """Whether :func:`analytic_step` covers this model and objective.

    One code layer (``hidden_layer_sizes=()``), a dense code (no TopK), the KL or
    L1 penalty or none, and an output the loss sees unscaled: a linear output
    (standardised or not) or a sigmoid output on unstandardised data (what the
    estimator builds).
    """
    return (
        len(module.sizes) == 2
        and module.k is None
        and spec.sparsity in (None, "kl", "l1")
        and not (spec.sparsity == "kl" and module.activation not in ("sigmoid", "tanh"))
        and (module.output_activation == "linear" or not module.standardized)
    )


@torch.no_grad()
def analytic_step(
    module: SparseAutoencoder,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    spec: Objective,
    noise_fn=None,
) -> StepOutput:
    r"""One optimiser step with the gradient of :func:`objective` written out.

    For one code layer, with :math:`u` the (standardised, possibly corrupted)
    input, :math:`t` the standardised target, :math:`m` the batch size:

    .. math::

        a = \sigma(u W^T + c), \qquad o = a V + b, \qquad \hat x = \phi(o)

        \delta_o = \frac{1}{m} (\hat x - t) \odot \phi'(o)
        \quad\text{(squared error; } \delta_o = \frac{1}{m}(\sigma(o) - t)
        \text{ for BCE)}

        \delta_a = \delta_o V^T + \beta\, \partial\Omega / \partial a, \qquad
        \delta_z = \delta_a \odot \sigma'(z)

        \nabla_V J = a^T \delta_o + \lambda V, \quad \nabla_b J = \textstyle\sum_i \delta_{o,i},
        \quad \nabla_W J = \delta_z^T u + \lambda W, \quad \nabla_c J = \textstyle\sum_i \delta_{z,i}

    with :math:`\partial\Omega / \partial a_{ij} = \frac{1}{m}`
    the derivative of :func:`kl_divergence_and_grad` (halved for a tanh code, which enters KL as
    :math:`(1 + a)/2`) or :math:`\frac{1}{m}\operatorname{sign}(a_{ij})` for L1.
    Tied weights (:math:`V = W`) add the two weight gradients and decay once.

    This is the gradient autograd computes for :func:`objective` (tests check
    it), without building a graph: about half the kernels and half the time of
    an autograd step on small problems, where per-operation overhead dominates.
    Only for models :func:`supports_analytic_step` accepts.
    """
    m = x.shape[0]
    u = module.normalize(noise_fn(x) if noise_fn is not None else x)
    target = module.normalize(x) if noise_fn is not None else u
    W, c = module.encoder_weights[0], module.encoder_biases[0]
    V, b = module.decoder_weight(1), module.output_bias
    code = ACTIVATIONS[module.activation](torch.addmm(c, u, W.t()))
    out = torch.addmm(b, code, V)
    if spec.loss == "bce":
        total = F.binary_cross_entropy_with_logits(out, target, reduction="sum").div_(m)
        delta_out = torch.sigmoid(out).sub_(target).div_(m)
    elif module.output_activation == "sigmoid":
        x_hat = torch.sigmoid(out)
        diff = x_hat - target
        total = diff.pow(2).sum().mul_(0.5 / m)
        delta_out = torch.ops.aten.sigmoid_backward(diff, x_hat).div_(m)
    else:
        diff = out.sub_(target)
        total = diff.pow(2).sum().mul_(0.5 / m)
        delta_out = diff.div_(m)

    beta = spec.sparsity_weight
    if spec.sparsity == "kl":
        tanh = module.activation == "tanh"
        rho_hat = (code.mean(dim=0).add_(1.0).mul_(0.5)) if tanh else code.mean(dim=0)
        kl, grad_unit = kl_divergence_and_grad(spec.sparsity_target, rho_hat)
        total = total.add_(kl, alpha=beta)
        delta_code = torch.addmm(
            grad_unit, delta_out, V.t(), beta=beta / m * (0.5 if tanh else 1.0)
        )
    elif spec.sparsity == "l1":
        total = total.add_(code.abs().sum(), alpha=beta / m)
        delta_code = torch.addmm(torch.sign(code), delta_out, V.t(), beta=beta / m)
    else:
        delta_code = delta_out.mm(V.t())
    delta_pre = _ACTIVATION_BACKWARD[module.activation](delta_code, code)

    decay = spec.weight_decay
    if decay > 0:
        flat = W.reshape(-1)
        squares = flat.dot(flat)
        if not module.tied_weights:
            squares = squares.add_(V.reshape(-1).dot(V.reshape(-1)))
        total = total.add_(squares, alpha=0.5 * decay)
    grad_W = torch.addmm(W, delta_pre.t(), u, beta=decay)
    if module.tied_weights:
        grad_W.addmm_(code.t(), delta_out)
    else:
        V.grad = torch.addmm(V, code.t(), delta_out, beta=decay)
    W.grad = grad_W
    c.grad = delta_pre.sum(dim=0)
    b.grad = delta_out.sum(dim=0)
    optimizer_step(optimizer)
    return StepOutput(total, code)


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
        xb = X.index_select(0, perm[start : start + batch_size])  # 4x faster than X[idx]
        terms = train_step(module, optimizer, xb, spec, noise_fn)
        loss_sum.add_(terms.total, alpha=xb.shape[0])
        if track_code:
            code = terms.code
            stats.code_sum += code.sum(dim=0)
            stats.active += (code > threshold).sum()
        if update is not None:
            update(i)
    if close is not None:
        close()
    module.zero_grad(set_to_none=True)  # a fitted module carries no gradients
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


def _diverged(what: str, where: str) -> DivergedError:
    return DivergedError(
        f"Training diverged: {what} at {where}. The model was left as it was before "
        "this call. Lower learning_rate, scale X (for example with StandardScaler or "
        "MinMaxScaler), or lower sparsity_weight."
    )


def check_finite(value: float, where: str) -> None:
    """Raise :class:`DivergedError` (a ValueError) if the loss is NaN or infinite."""
    if not math.isfinite(value):
        raise _diverged(f"the loss became {value}", where)


class Diagnostics(NamedTuple):
    """Sums over the training data that the fitted diagnostics are made of (float64)."""

    n_samples: int
    squared_error: float
    variance: float
    code_sum: torch.Tensor
    code_range: torch.Tensor
    active_total: float


@torch.inference_mode()
def training_diagnostics(
    module: SparseAutoencoder, parts: list[torch.Tensor], threshold: float, rows: int
) -> Diagnostics:
    r"""Sums over the training data for the fitted diagnostics, ``rows`` at a time.

    With :math:`r = (\hat x - x) / s` the residual on the loss's scale
    (:meth:`._model.SparseAutoencoder.residual`), :math:`c` the model's ``input_mean``
    (a shift that keeps the variance sum accurate), :math:`h` the code and :math:`t`
    the activity threshold:

    .. math::

        \text{squared\_error} = \sum_{i,f} r_{if}^2, \qquad
        \text{variance} = \sum_{i,f} \Big(\frac{x_{if} - c_f}{s}\Big)^2
            - n \sum_f \Big(\frac{\bar x_f - c_f}{s}\Big)^2
            = \sum_{i,f} \Big(\frac{x_{if} - \bar x_f}{s}\Big)^2

        \text{code\_sum}_j = \sum_i h_{ij}, \qquad
        \text{code\_range}_j = \max_i h_{ij} - \min_i h_{ij}, \qquad
        \text{active\_total} = \sum_{i,j} [h_{ij} > t]

    The sums are additive, so ``parts`` (the training rows, split in any way, e.g.
    training and validation) are read where they are, chunk by chunk: memory is
    bounded by ``rows``, not by the number of samples, and nothing is copied to or
    from the device but the sums (float64; float32 on MPS, which has no float64).
    """
    device = parts[0].device
    acc = torch.float32 if device.type == "mps" else torch.float64
    width = module.sizes[-1]
    code_sum = torch.zeros(width, device=device, dtype=acc)
    code_max = torch.full((width,), -math.inf, device=device, dtype=acc)
    code_min = torch.full((width,), math.inf, device=device, dtype=acc)
    shifted_sum = torch.zeros(module.sizes[0], device=device, dtype=acc)
    sums = torch.zeros(3, device=device, dtype=acc)  # squared error, shifted squares, active
    shift, scale = module.input_mean.to(acc), module.input_scale.to(acc)
    n = 0
    for part in parts:
        for x in part.split(rows):
            out = module(x)
            code = out.code.to(acc)
            code_sum += code.sum(dim=0)
            torch.maximum(code_max, code.amax(dim=0), out=code_max)
            torch.minimum(code_min, code.amin(dim=0), out=code_min)
            sums[2] += (code > threshold).sum()
            shifted = (x.to(acc) - shift) / scale
            shifted_sum += shifted.sum(dim=0)
            sums[0] += module.residual(out.reconstruction, x).to(acc).pow(2).sum()
            sums[1] += shifted.pow(2).sum()
            n += x.shape[0]
    squared_error, shifted_squares, active_total = sums.tolist()
    variance = shifted_squares - float(shifted_sum.pow(2).sum()) / max(n, 1)
    return Diagnostics(
        n,
        squared_error,
        max(variance, 0.0),
        code_sum.cpu(),
        (code_max - code_min).cpu(),
        active_total,
    )


def check_finite_fit(diagnostics: Diagnostics, where: str) -> None:
    """Raise :class:`DivergedError` if the trained model's outputs are not finite.

    ``diagnostics`` sums what the trained model gives on the training data (codes,
    squared errors on the loss's scale); a NaN or infinite entry makes its sum so.
    The loss is measured before each step, so a step that blows the weights up (the
    last one of a fit, say) shows only here.
    """
    if not (
        math.isfinite(diagnostics.squared_error)
        and bool(torch.isfinite(diagnostics.code_sum).all())
    ):
        raise _diverged("the trained model's codes or reconstructions are NaN or infinite", where)


def epoch_line(label, stats: EpochStats, loss, val_score, seconds, n_components) -> str:
    """The ``verbose`` line of one epoch: loss, validation score, sparsity, seconds."""
    line = f"{label}: loss {loss:.6g}"
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
                epoch_line(
                    f"Epoch {epoch}",
                    stats,
                    loss,
                    val_score,
                    time.perf_counter() - tic,
                    module.sizes[-1],
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

    One :meth:`torch.optim.LBFGS.step` runs up to ``max_iter`` iterations with
    100 correction pairs and at most ``2 * max_iter`` function evaluations
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
    history = History()
    optimizer = torch.optim.LBFGS(
        module.parameters(),
        lr=1.0,
        max_iter=max_iter,
        max_eval=2 * max_iter,
        tolerance_grad=tol,
        tolerance_change=1e-12,
        history_size=100,
        line_search_fn="strong_wolfe",
    )
    x_input = noise_fn(X) if noise_fn is not None else X
    state = optimizer.state[optimizer.param_groups[0]["params"][0]]
    lowest: dict[int, float] = {}  # iteration -> lowest objective evaluated in it
    curve: list[float] = []  # accepted objective after iterations 1, 2, ...
    tic = [time.perf_counter()]

    def close_iterations(through: int) -> None:
        """Record iterations up to ``through``, whose evaluations are all in."""
        while len(curve) < through:
            iteration = len(curve) + 1
            previous = curve[-1] if curve else lowest[0]
            curve.append(min(previous, lowest.get(iteration, math.inf)))
            if verbose:
                now = time.perf_counter()
                print(
                    f"Iteration {iteration}: loss {curve[-1]:.6g}, {now - tic[0]:.3f} s",
                    flush=True,
                )
                tic[0] = now

    def closure():
        optimizer.zero_grad(set_to_none=True)
        total = objective(module, x_input, X, spec).total
        total.backward()
        iteration = int(state.get("n_iter", 0))  # 0: the starting point
        close_iterations(iteration - 1)
        value = float(total.detach())
        # a NaN trial point is rejected by the line search (it is not lower)
        lowest[iteration] = min(
            lowest.get(iteration, math.inf), value if value == value else math.inf
        )
        return total

    optimizer.step(closure)
    module.zero_grad(set_to_none=True)
    n_iter = int(state.get("n_iter", 0))
    close_iterations(n_iter)
    history.n_iter = max(1, n_iter)
    history.loss_curve = curve or [lowest[0]]
    check_finite(history.loss_curve[-1], f"iteration {history.n_iter}")
    history.best_loss = min(history.loss_curve)
    max_eval = optimizer.param_groups[0]["max_eval"]
    history.converged = n_iter < max_iter and state.get("func_evals", 0) < max_eval
    return history
