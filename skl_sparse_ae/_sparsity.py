"""Sparsity mechanisms and code activations: pure functions and the two registries.

Every function here is a small, stateless torch function: tensors in, tensor out,
no numpy, no scikit-learn. The two registries at the bottom, :data:`ACTIVATIONS`
and :data:`SPARSITY`, are the only place that knows what an activation or a
sparsity mechanism is: the estimator's ``_parameter_constraints`` read their keys
(live, so a mechanism added at run time is a valid parameter value), the model reads
the code function, :mod:`._objective` the penalty, :mod:`._analytic` the written-out
gradient, and the diagnostics the activity threshold. Adding a mechanism is one
:class:`Sparsity` entry; one that has neither a penalty nor a code function of its
own is refused when it is built.

Shapes follow one convention: ``x`` is ``(n_samples, n_features)``, ``code`` and
``pre_code`` are ``(n_samples, n_components)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = [
    "ACTIVATIONS",
    "AUXK_WEIGHT",
    "SPARSITY",
    "Activation",
    "Sparsity",
    "activity_threshold",
    "auxk_loss",
    "auxk_ties_dead_encoders",
    "batchtopk_activation",
    "jumprelu",
    "kl_divergence",
    "kl_divergence_and_grad",
    "kl_divergence_grad",
    "kl_penalty",
    "l1_penalty",
    "mechanism",
    "rectangle",
    "step",
    "threshold_activation",
    "topk_activation",
]


# ---------------------------------------------------------------------- penalties
def kl_divergence(rho: float, rho_hat: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    r"""Summed Bernoulli KL divergence between a target and achieved activations.

    With :math:`r = \operatorname{clip}(\hat\rho, \epsilon, 1 - \epsilon)`:

    .. math::

        \sum_j \rho \log\frac{\rho}{r_j} + (1 - \rho) \log\frac{1 - \rho}{1 - r_j}

    Parameters
    ----------
    rho : float
        Target mean activation, in ``(0, 1)``.
    rho_hat : Tensor of shape (n_components,)
        Achieved mean activation of each unit, in ``[0, 1]``. It is clipped to
        ``[eps, 1 - eps]`` so that a saturated unit gives a large but finite penalty.
    eps : float, default=1e-6
        Clipping margin.

    Returns
    -------
    Tensor
        A scalar.
    """
    clipped = rho_hat.clamp(eps, 1.0 - eps)
    entropy = rho * math.log(rho) + (1.0 - rho) * math.log(1.0 - rho)
    # lerp(a, b, w) = a + w (b - a) = (1 - rho) log(1 - r) + rho log r
    cross = torch.lerp((1.0 - clipped).log(), clipped.log(), rho).sum()
    return rho_hat.shape[-1] * entropy - cross


def kl_divergence_grad(rho: float, rho_hat: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    r"""The derivative of :func:`kl_divergence` in ``rho_hat``.

    .. math::

        \frac{\partial\,\mathrm{KL}}{\partial\hat\rho_j}
            = \frac{1 - \rho}{1 - r_j} - \frac{\rho}{r_j} = \frac{r_j - \rho}{r_j (1 - r_j)}

    and zero where the clipping is active, as autograd gives (computed by
    :func:`kl_divergence_and_grad`, which the training step calls).
    """
    return kl_divergence_and_grad(rho, rho_hat, eps)[1]


def kl_divergence_and_grad(
    rho: float, rho_hat: torch.Tensor, eps: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    r""":func:`kl_divergence` and :func:`kl_divergence_grad` of the same ``rho_hat``,
    computed once: the clipped :math:`r` and :math:`1 - r` serve both,

    .. math::

        \mathrm{KL} = \sum_j \rho \log\frac{\rho}{r_j}
            + (1 - \rho) \log\frac{1 - \rho}{1 - r_j},
        \qquad
        \frac{\partial\,\mathrm{KL}}{\partial\hat\rho_j} = \frac{r_j - \rho}{r_j (1 - r_j)}

    (zero where the clipping is active). A training step needs both; two kernels
    fewer than calling the two functions, on a step of about fifty.
    """
    clipped = rho_hat.clamp(eps, 1.0 - eps)
    # torch.rsub(t, a) is a - t without the Python wrapper of ``float - Tensor``;
    # masked_fill_ zeroes without converting a boolean mask to floats
    complement = torch.rsub(clipped, 1.0)
    entropy = rho * math.log(rho) + (1.0 - rho) * math.log(1.0 - rho)
    cross = torch.lerp(complement.log(), clipped.log(), rho).sum()
    value = torch.rsub(cross, rho_hat.shape[-1] * entropy)
    grad = (clipped - rho).div_(clipped * complement).masked_fill_(rho_hat != clipped, 0.0)
    return value, grad


def kl_penalty(code: torch.Tensor, rho: float, activation: Activation) -> torch.Tensor:
    r"""Classic (UFLDL) KL sparsity penalty of a batch of codes.

    :math:`\hat\rho_j = \frac{1}{m} \sum_i a_{ij}` is the mean activation of unit
    ``j`` over the batch, and the penalty is :func:`kl_divergence` of ``rho`` and
    :math:`\hat\rho`. The KL divergence is defined for probabilities, so the code
    is mapped into ``[0, 1]`` by the activation's :attr:`Activation.unit_interval`
    ``(a, b)``, :math:`a_{ij} = a h_{ij} + b`: a sigmoid code as is, a tanh code as
    :math:`(1 + h)/2` (so ``-1`` counts as "off", the mapping UFLDL suggests). ReLU
    codes have no such map and are refused.

    Parameters
    ----------
    code : Tensor of shape (n_samples, n_components)
        Code activations of the batch.
    rho : float
        Target mean activation, in ``(0, 1)``.
    activation : Activation
        The code's activation (an entry of :data:`ACTIVATIONS`).

    Returns
    -------
    Tensor
        A scalar.
    """
    if activation.unit_interval is None:
        raise ValueError(
            f"The KL penalty needs a code in (0, 1); got activation={activation.name!r}. "
            "Use 'sigmoid' or 'tanh'."
        )
    scale, shift = activation.unit_interval
    return kl_divergence(rho, code.mean(dim=0) * scale + shift)


def l1_penalty(code: torch.Tensor) -> torch.Tensor:
    r"""L1 activity penalty, as Keras' ``activity_regularizer=l1``.

    .. math:: \frac{1}{m} \sum_i \sum_j |h_{ij}|

    Parameters
    ----------
    code : Tensor of shape (n_samples, n_components)

    Returns
    -------
    Tensor
        A scalar: the summed absolute code, averaged over samples.
    """
    return code.abs().sum(dim=1).mean()


def topk_activation(pre_code: torch.Tensor, k: int) -> torch.Tensor:
    r"""Keep the ``k`` largest pre-activations of each row, ReLU them, zero the rest.

    .. math:: z = \mathrm{ReLU}(\mathrm{TopK}_k(W_{enc}(x - b_{pre}) + b_{enc}))

    as in Gao et al. (2024), "Scaling and evaluating sparse autoencoders". Each row
    of the result has at most ``k`` non-zeros (fewer where a kept value is ≤ 0).

    Parameters
    ----------
    pre_code : Tensor of shape (n_samples, n_components)
    k : int
        Number of units kept per sample, ``1 <= k <= n_components``.

    Returns
    -------
    Tensor of shape (n_samples, n_components)
    """
    values, indices = pre_code.topk(k, dim=-1, sorted=False)
    return torch.zeros_like(pre_code).scatter_(-1, indices, torch.relu(values))


def batchtopk_activation(pre_code: torch.Tensor, k: int) -> torch.Tensor:
    r"""Keep the ``k * m`` largest ReLU'd pre-activations of the whole batch.

    .. math::

        z = \mathrm{ReLU}(h) \odot 1[\mathrm{ReLU}(h) \ge t_B],
        \qquad t_B = \text{the } (k m)\text{-th largest entry of } \mathrm{ReLU}(h)

    over all ``m`` rows of the batch together, as in Bussmann et al. (2024),
    "BatchTopK sparse autoencoders": ``k`` is the *average* number of active units
    per sample, and a sample may have more or fewer. Training only: the code of a
    sample depends on the rest of its batch (inference uses
    :func:`threshold_activation` with a threshold learned during training).

    Parameters
    ----------
    pre_code : Tensor of shape (n_samples, n_components)
    k : int
        Mean number of units kept per sample.

    Returns
    -------
    Tensor of shape (n_samples, n_components)
    """
    flat = torch.relu(pre_code).flatten()
    values, indices = flat.topk(min(k * pre_code.shape[0], flat.numel()), sorted=False)
    return torch.zeros_like(flat).scatter_(0, indices, values).view_as(pre_code)


def threshold_activation(pre_code: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    r"""Zero every pre-activation at or below its threshold, keep the rest.

    .. math:: z = \mathrm{ReLU}(h) \odot 1[h > \theta]

    Per sample and per unit, so independent of the batch: BatchTopK's inference
    code (one scalar :math:`\theta`) and JumpReLU's forward pass (one
    :math:`\theta_j` per unit, broadcast over rows).
    """
    return torch.relu(pre_code) * (pre_code > threshold)


def rectangle(u: torch.Tensor) -> torch.Tensor:
    r"""The rectangle kernel :math:`K(u) = 1[-\tfrac12 < u < \tfrac12]`."""
    return ((u > -0.5) & (u < 0.5)).to(u.dtype)


class _JumpReLU(torch.autograd.Function):
    """``z = h * 1[h > θ]`` with the straight-through gradient of :func:`jumprelu`."""

    @staticmethod
    def forward(ctx, pre_code, threshold, bandwidth):
        ctx.save_for_backward(pre_code, threshold)
        ctx.bandwidth = bandwidth
        return pre_code * (pre_code > threshold)

    @staticmethod
    def backward(ctx, grad):
        pre_code, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_pre = grad * (pre_code > threshold)
        kernel = rectangle((pre_code - threshold) / eps)
        grad_threshold = -(threshold / eps) * kernel * grad
        return grad_pre, _sum_to(grad_threshold, threshold), None


class _Step(torch.autograd.Function):
    """``1[h > θ]`` with the straight-through gradient of :func:`step`."""

    @staticmethod
    def forward(ctx, pre_code, threshold, bandwidth):
        ctx.save_for_backward(pre_code, threshold)
        ctx.bandwidth = bandwidth
        return (pre_code > threshold).to(pre_code.dtype)

    @staticmethod
    def backward(ctx, grad):
        pre_code, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_threshold = -(1.0 / eps) * rectangle((pre_code - threshold) / eps) * grad
        return torch.zeros_like(pre_code), _sum_to(grad_threshold, threshold), None


def _sum_to(grad: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``grad`` summed over the dimensions ``like`` was broadcast along."""
    while grad.dim() > like.dim():
        grad = grad.sum(dim=0)
    return grad


def jumprelu(pre_code: torch.Tensor, threshold: torch.Tensor, bandwidth: float) -> torch.Tensor:
    r"""JumpReLU :math:`z = h \cdot H(h - \theta)`, with a straight-through threshold gradient.

    Rajamanoharan et al. (2024), "Jumping ahead: improving reconstruction fidelity
    with JumpReLU sparse autoencoders". The forward pass is
    :func:`threshold_activation` for :math:`\theta > 0`; the backward pass gives
    :math:`h` the gradient of the kept entries, and :math:`\theta` the
    pseudo-derivative

    .. math::

        \frac{\partial z}{\partial \theta} := -\frac{\theta}{\varepsilon}
            K\Big(\frac{h - \theta}{\varepsilon}\Big)

    with :math:`K` the :func:`rectangle` kernel and :math:`\varepsilon` the
    ``bandwidth``: only pre-activations within :math:`\varepsilon/2` of the
    threshold tell it which way to move.

    Parameters
    ----------
    pre_code : Tensor of shape (n_samples, n_components)
    threshold : Tensor of shape (n_components,)
        :math:`\theta > 0`.
    bandwidth : float
        :math:`\varepsilon`.
    """
    return _JumpReLU.apply(pre_code, threshold, bandwidth)


def step(pre_code: torch.Tensor, threshold: torch.Tensor, bandwidth: float) -> torch.Tensor:
    r"""Heaviside step :math:`H(h - \theta)`, with a straight-through threshold gradient.

    The forward pass is ``1[h > θ]`` (which units are active, whose sum over units
    is the L0 norm); the backward pass gives :math:`h` no gradient and :math:`\theta`

    .. math::

        \frac{\partial H}{\partial \theta} := -\frac{1}{\varepsilon}
            K\Big(\frac{h - \theta}{\varepsilon}\Big)

    (Rajamanoharan et al. 2024, eq. 11), :math:`K` the :func:`rectangle` kernel.
    """
    return _Step.apply(pre_code, threshold, bandwidth)


def auxk_loss(
    pre_code: torch.Tensor,
    residual: torch.Tensor,
    dead_mask: torch.Tensor,
    k_aux: int,
    decode_linear,
    eps: float = 1e-6,
) -> torch.Tensor:
    r"""Auxiliary TopK loss that lets dead units learn from the residual (AuxK).

    With :math:`e = x - \hat x` the main model's residual and :math:`z_{aux}` the
    TopK of the dead units' pre-activations (``k_aux`` per sample, live units masked
    out), the dead units are asked to reconstruct the residual, up to the one scale
    :math:`\alpha` that fits it best over the batch:

    .. math::

        \mathcal{L}_{aux} = \frac{1}{2m} \sum_i \frac{\| e_i - \alpha\, \hat e_i \|^2}{s_e^2},
        \qquad \hat e_i = W_{dec} z_{aux,i}, \qquad
        \alpha = \max\Big(0, \frac{\sum_i \langle \hat e_i, e_i \rangle}{\sum_i \|\hat e_i\|^2}\Big),

        s_e^2 = \max\Big(\frac{1}{m d} \sum_{i,f} (e_{if} - \bar e_f)^2,\ \epsilon\Big)

    (Gao et al. 2024, section A.2, with :math:`\alpha = 1`), :math:`\bar e` the
    residual's batch mean. :math:`\alpha` is differentiated through, so the loss
    depends on the direction of :math:`\hat e` only: it turns the dead units toward
    the residual but never asks them to shrink. Without it (:math:`\alpha = 1`),
    ``k_aux`` = 32 dead units with random decoder rows overshoot the residual, the
    gradient lowers every one of their pre-activations, and they stay dead: with
    512 units and k = 4 on digits (squared error, 60 epochs) the plain AuxK ended
    with 286 dead units, more than the 196 of no AuxK; the scaled one with 142, at
    a lower FVU (``benchmarks/README.md``).
    Dividing by the residual's variance :math:`s_e^2` (the denominator of
    ``normalized_mse`` in openai/sparse_autoencoder) is what keeps AuxK alive late
    in training, when the residual is
    small: :math:`\mathcal{L}_{aux}` is :math:`\frac{d}{2}` times the normalised
    MSE of openai/sparse_autoencoder, on the scale of the main term
    :math:`\frac{1}{2m}\sum_i \|\hat x_i - x_i\|^2` of standardised data
    (:math:`\frac{d}{2}` times the fraction of variance unexplained), so that
    their ratio is the reference implementation's. ``residual`` is detached by
    the caller, so only the dead units' encoder and decoder weights receive this
    gradient.

    Parameters
    ----------
    pre_code : Tensor of shape (n_samples, n_components)
        Pre-activations of the code layer.
    residual : Tensor of shape (n_samples, n_features)
        Detached reconstruction residual :math:`x - \hat x`.
    dead_mask : bool Tensor of shape (n_components,)
        Units considered dead.
    k_aux : int
        Number of dead units used per sample.
    decode_linear : callable
        Maps the dead units' code to the change it makes to the reconstruction:
        ``z @ W_dec`` for a linear output (see
        :meth:`._model.SparseAutoencoder.auxk_decoder`).
    eps : float, default=1e-6
        Floor of :math:`s_e^2`, so that a (near-)perfect reconstruction gives a
        finite loss (on the standardised scale the data's variance is 1).

    Returns
    -------
    Tensor
        A scalar (zero when no unit is dead).

    Notes
    -----
    No host synchronisation: live units are masked to :math:`-\infty`, so when
    fewer than ``k_aux`` units are dead TopK also picks some of them, and ReLU
    turns those into zeros; the loss is multiplied by ``dead_mask.any()``.
    """
    if k_aux <= 0:
        return pre_code.new_zeros(())
    masked = pre_code.masked_fill(~dead_mask, float("-inf"))
    z_aux = topk_activation(masked, min(k_aux, pre_code.shape[-1]))
    scale = (residual - residual.mean(dim=0)).pow(2).mean().clamp_min(eps)
    e_hat = decode_linear(z_aux)
    alpha = ((e_hat * residual).sum() / e_hat.pow(2).sum().clamp_min(1e-12)).clamp_min(0.0)
    loss = 0.5 * (alpha * e_hat - residual).pow(2).sum(dim=1).mean() / scale
    return loss * dead_mask.any()


#: What AuxK does to a dead unit's encoder row. ``"learned"``: AuxK's gradient
#: trains it, as in Gao et al. (2024); ``"decoder_transpose"``: AuxK trains only the
#: dead units' decoder rows and the encoder row follows as their transpose. With
#: 512 units and k = 4 on digits (squared error, Adam at 3e-3, 60 epochs),
#: "learned" ended with 277 dead units, more than the 200 of no AuxK at all: it
#: pushes down the pre-activations of dead units whose (still random) decoder rows
#: do not help, and no unit revived after epoch 3; "decoder_transpose" ended with
#: 103 (FVU 0.100 against 0.110). But at a step of 1e-2 (30 epochs) it did not
#: help (210 against 209 dead, 512 units) and hurt the fit of 256 units with k = 8
#: (FVU 0.243 against 0.074), so it is off (benchmarks/README.md). (Those figures
#: predate AuxK's best-scale alpha, :func:`auxk_loss`, which fixed the dead units.)
AUXK_DEAD_ENCODER = "learned"


def auxk_ties_dead_encoders() -> bool:
    """Whether dead units' encoder rows follow their decoder rows (``AUXK_DEAD_ENCODER``)."""
    return AUXK_DEAD_ENCODER == "decoder_transpose"


#: AuxK's coefficient, as in openai/sparse_autoencoder.
AUXK_WEIGHT = 1.0 / 32.0

#: BatchTopK's threshold is a running average of each batch's smallest kept
#: activation, :math:`\theta \leftarrow \mu\theta + (1 - \mu) t_B`, with this momentum.
BATCHTOPK_MOMENTUM = 0.99
#: JumpReLU's kernel bandwidth :math:`\varepsilon`, on the standardised scale.
JUMPRELU_BANDWIDTH = 0.05
#: JumpReLU's ``sparsity_weight="auto"``: :math:`\lambda` of its L0 penalty.
JUMPRELU_DEFAULT_WEIGHT = 0.3
#: JumpReLU's starting threshold :math:`\theta_0` of every unit.
JUMPRELU_INITIAL_THRESHOLD = 0.5


def running_threshold(
    threshold: torch.Tensor, code: torch.Tensor, momentum: float = BATCHTOPK_MOMENTUM
) -> torch.Tensor:
    r"""BatchTopK's inference threshold after one more training batch.

    With :math:`t_B = \min\{z_{ij} : z_{ij} > 0\}` the batch's smallest kept
    activation (as dictionary_learning's and bartbussmann's BatchTopK trainers do):

    .. math::

        \theta \leftarrow \begin{cases} t_B & \theta < 0 \text{ (not yet set)} \\
            \mu\,\theta + (1 - \mu)\,t_B & \text{otherwise} \end{cases}

    and :math:`\theta` is unchanged by a batch with no kept activation. No host
    synchronisation.

    Parameters
    ----------
    threshold : Tensor of shape ()
        The current estimate (negative: none yet).
    code : Tensor of shape (n_samples, n_components)
        The batch's BatchTopK code.
    momentum : float
        :math:`\mu`.

    Returns
    -------
    Tensor of shape ()
    """
    smallest = code.masked_fill(code <= 0, math.inf).amin()
    blended = torch.where(threshold < 0, smallest, torch.lerp(smallest, threshold, momentum))
    return torch.where(torch.isfinite(smallest), blended, threshold)


# ------------------------------------------------------------ what each term needs
def _kl_term(out, target, module, spec) -> torch.Tensor:
    """:math:`\\beta\\,\\mathrm{KL}(\\rho \\| \\hat\\rho)` of the batch's code."""
    activation = ACTIVATIONS[module.activation]
    return spec.sparsity_weight * kl_penalty(out.code, spec.sparsity_target, activation)


def _kl_term_and_grad(code, activation: Activation, spec, code_sum=None):
    r"""``(β KL, G, s)`` with :math:`\partial(\beta\,\mathrm{KL})/\partial h_{ij} = s\,G_j`.

    With :math:`(a, b)` the activation's unit interval map and :math:`m` the batch
    size, :math:`G = \partial\mathrm{KL}/\partial\hat\rho` (:func:`kl_divergence_grad`)
    and :math:`s = \beta a / m`. ``code_sum``: the code's column sums, if the caller
    has them (``code_sum / m`` is bit for bit ``code.mean(dim=0)``: torch's mean is
    the sum divided).
    """
    scale, shift = activation.unit_interval
    mean = code.mean(dim=0) if code_sum is None else code_sum / code.shape[0]
    rho_hat = mean if (scale, shift) == (1.0, 0.0) else mean.mul_(scale).add_(shift)
    rho, beta = spec.sparsity_target, spec.sparsity_weight
    value, grad = kl_divergence_and_grad(rho, rho_hat)
    return value.mul_(beta), grad, beta * scale / code.shape[0]


def _l1_term(out, target, module, spec) -> torch.Tensor:
    """:math:`\\beta \\frac{1}{m}\\sum_i\\sum_j |h_{ij}|`."""
    return spec.sparsity_weight * l1_penalty(out.code)


def _l1_term_and_grad(code, activation: Activation, spec, code_sum=None):
    r"""``(β L1, sign(h), β / m)``: :math:`\partial(\beta L_1)/\partial h_{ij} = \frac{\beta}{m}\operatorname{sign}(h_{ij})`."""
    scale = spec.sparsity_weight / code.shape[0]
    return code.abs().sum().mul_(scale), torch.sign(code), scale


def _auxk_term(out, target, module, spec) -> torch.Tensor:
    r""":math:`\alpha_{aux}\mathcal{L}_{aux}` (:func:`auxk_loss`) over the units dead so far.

    A unit is dead once it has not fired for ``spec.dead_after`` training samples.
    With ``AUXK_DEAD_ENCODER="decoder_transpose"`` (not the default) AuxK trains the
    dead units' decoder rows only (the pre-activations pick which units and how
    much) and training ties their encoder rows to them after each step
    (:meth:`._model.SparseAutoencoder.tie_dead_encoders`).
    Skipping AuxK when no unit is dead needs the mask's value on the host: free on
    the CPU, a synchronisation on an accelerator, where AuxK always runs instead
    (it is then exactly zero, see :func:`auxk_loss`).
    """
    if spec.k_aux <= 0:
        return None
    dead = module.samples_since_fired >= spec.dead_after
    if dead.device.type == "cpu" and not bool(dead.any()):
        return None
    residual = module.residual(target, out.reconstruction).detach()
    pre_code = out.pre_code.detach() if auxk_ties_dead_encoders() else out.pre_code
    loss = auxk_loss(pre_code, residual, dead, spec.k_aux, module.auxk_decoder(out))
    return AUXK_WEIGHT * loss


def _jumprelu_term(out, target, module, spec) -> torch.Tensor:
    r""":math:`\lambda \frac{1}{m}\sum_i \sum_j H(h_{ij} - \theta_j)` (:func:`step`), plus AuxK.

    The L0 norm of the code, averaged over the batch, weighted by
    :math:`\lambda` = ``sparsity_weight``: the reconstruction cost (half the squared
    error, on the standardised scale) one more active unit must save.
    """
    l0 = step(out.pre_code, module.code_threshold(), JUMPRELU_BANDWIDTH).sum(dim=1).mean()
    term = spec.sparsity_weight * l0
    aux = _auxk_term(out, target, module, spec)
    return term if aux is None else term + aux


def _topk_code(pre_code, module) -> torch.Tensor:
    return topk_activation(pre_code, module.k)


def _batchtopk_code(pre_code, module) -> torch.Tensor:
    """BatchTopK while training; the learned threshold (per sample) otherwise."""
    if module.training:
        return batchtopk_activation(pre_code, module.k)
    return threshold_activation(pre_code, module.code_threshold())


def _jumprelu_code(pre_code, module) -> torch.Tensor:
    return jumprelu(pre_code, module.code_threshold(), JUMPRELU_BANDWIDTH)


def _batchtopk_state(n_components: int, factory: dict) -> dict:
    """A scalar threshold buffer, negative until the first training batch sets it."""
    return {"threshold": torch.full((), -1.0, **factory)}


def _jumprelu_state(n_components: int, factory: dict) -> dict:
    r""":math:`\log\theta_j`, learned (Rajamanoharan et al. parameterise it so)."""
    start = math.log(JUMPRELU_INITIAL_THRESHOLD)
    return {"log_threshold": torch.nn.Parameter(torch.full((n_components,), start, **factory))}


def _update_batchtopk_threshold(module, out) -> None:
    module.threshold.copy_(running_threshold(module.threshold, out.code.detach()))


# -------------------------------------------------------------------- registries
@dataclass(frozen=True)
class Activation:
    """Everything the package knows about one code non-linearity.

    Attributes
    ----------
    name : str
        The value of the ``activation`` parameter.
    forward : callable
        ``h = forward(z)``.
    backward : callable
        ``backward(grad, h) = grad * forward'(z)``, written with the output ``h``
        (the written-out gradient uses it; :mod:`._optim` may swap in a fused kernel
        that computes the same).
    midpoint : float
        The code value above which a unit counts as active on a sample.
    unit_interval : tuple of float or None
        ``(a, b)`` with ``a * h + b`` in ``[0, 1]`` for every code value (what the KL
        penalty needs), or None for an unbounded code.
    inverse : callable or None
        ``z = inverse(h)``, the pre-activation giving code ``h`` (to start a code at
        a target activation); None where there is none.
    """

    name: str
    forward: Callable[[torch.Tensor], torch.Tensor]
    backward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    midpoint: float
    unit_interval: tuple[float, float] | None
    inverse: Callable[[torch.Tensor], torch.Tensor] | None = None

    def code_at(self, rho: float) -> float:
        """The code value whose unit-interval value is ``rho``: ``(rho - b) / a``."""
        scale, shift = self.unit_interval
        return (rho - shift) / scale

    def preimage(self, rho: float) -> float:
        """The pre-activation at which the code's unit-interval value is ``rho``."""
        return float(self.inverse(torch.tensor(self.code_at(rho), dtype=torch.float64)))


@dataclass(frozen=True)
class Sparsity:
    """Everything the package knows about one sparsity mechanism.

    Attributes
    ----------
    name : str
        The value of the ``sparsity`` parameter.
    penalty : callable or None
        ``penalty(out, target, module, spec)``: the term the mechanism adds to the
        objective :math:`J` of a batch, weight included (a scalar tensor, or None
        for nothing this batch). ``out`` is the module's
        :class:`._model.AutoencoderOutput`, ``spec`` the :class:`._objective.Objective`.
    penalty_and_grad : callable or None
        ``penalty_and_grad(code, activation, spec, code_sum) -> (value, G, s)``: the penalty of
        a one-layer dense code and its gradient :math:`s\\,G` in the code (``G``
        broadcastable to the code's shape), for the written-out step of
        :mod:`._analytic` (``code_sum``: the code's column sums, which the step has
        computed anyway). None: those models are trained with autograd.
    code : callable or None
        ``code(pre_code, module)``: a code function of the mechanism's own (TopK's),
        reading what it needs from the module (``k``, a threshold, whether it is
        training); None: the activation's. Its activity threshold is 0.
    uses_k : bool
        The mechanism reads ``k`` (units kept per sample).
    unit_norm_decoder : bool
        TopK-style training: unit-norm decoder rows, a pre-encoder bias, and the
        count of samples since each unit fired (dead units).
    supports_lbfgs : bool
        Whether full-batch L-BFGS can train it.
    steers_target : bool
        ``sparsity_weight="auto"`` steers the weight during training until the mean
        activation (in the unit interval, as KL sees it) meets ``sparsity_target``.
    default_weight : float
        The weight ``sparsity_weight="auto"`` starts from (steered mechanisms) or
        uses (the others).
    accepts : callable
        ``accepts(activation) -> bool``: the code activations the mechanism works with.
    state : callable or None
        ``state(n_components, factory) -> dict``: tensors the module holds for the
        mechanism, at their starting values (a :class:`torch.nn.Parameter` is
        learned, a plain tensor is a buffer); ``factory`` holds dtype and device.
    after_step : callable or None
        ``after_step(module, out)``: an update of that state after each training
        step (under ``no_grad``), from the step's :class:`._model.AutoencoderOutput`.
    threshold : callable or None
        ``threshold(module) -> Tensor``: the learned inference threshold of the code
        (what ``threshold_`` exposes); None: the mechanism has none.
    matryoshka : bool
        Whether ``matryoshka_widths`` works with it (a code whose zeros mean "off").
    """

    name: str
    penalty: Callable | None = None
    penalty_and_grad: Callable | None = None
    code: Callable | None = None
    uses_k: bool = False
    unit_norm_decoder: bool = False
    supports_lbfgs: bool = True
    steers_target: bool = False
    default_weight: float = 0.0
    accepts: Callable[[Activation], bool] = lambda activation: True
    state: Callable[[int, dict], dict] | None = None
    after_step: Callable | None = None
    threshold: Callable | None = None
    matryoshka: bool = False

    def __post_init__(self):
        if self.name != "none" and self.penalty is None and self.code is None:
            raise ValueError(
                f"Sparsity mechanism {self.name!r} has neither a penalty nor a code "
                "function: it would train as a plain autoencoder."
            )
        if self.penalty_and_grad is not None and (self.penalty is None or self.code):
            raise ValueError(
                f"Sparsity mechanism {self.name!r}: a written-out gradient needs a "
                "penalty on a dense code."
            )


def _relu_backward(grad: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    return grad * (h > 0)


#: Code non-linearities, by the name ``activation`` accepts.
ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation(
        "sigmoid", torch.sigmoid, lambda g, h: g * h * (1.0 - h), 0.5, (1.0, 0.0), torch.logit
    ),
    "tanh": Activation(
        "tanh", torch.tanh, lambda g, h: g * (1.0 - h * h), 0.0, (0.5, 0.5), torch.atanh
    ),
    "relu": Activation("relu", torch.relu, _relu_backward, 0.0, None),
}

#: Sparsity mechanisms, by the name ``sparsity`` accepts (``None`` too: no sparsity).
SPARSITY: dict[str, Sparsity] = {
    "kl": Sparsity(
        "kl",
        penalty=_kl_term,
        penalty_and_grad=_kl_term_and_grad,
        steers_target=True,
        default_weight=1.0,
        accepts=lambda activation: activation.unit_interval is not None,
    ),
    "l1": Sparsity(
        "l1",
        penalty=_l1_term,
        penalty_and_grad=_l1_term_and_grad,
        default_weight=0.1,
        matryoshka=True,
    ),
    "topk": Sparsity(
        "topk",
        penalty=_auxk_term,
        code=_topk_code,
        uses_k=True,
        unit_norm_decoder=True,
        supports_lbfgs=False,
        matryoshka=True,
    ),
    "batchtopk": Sparsity(
        "batchtopk",
        penalty=_auxk_term,
        code=_batchtopk_code,
        uses_k=True,
        unit_norm_decoder=True,
        supports_lbfgs=False,
        state=_batchtopk_state,
        after_step=_update_batchtopk_threshold,
        threshold=lambda module: module.threshold,
        matryoshka=True,
    ),
    "jumprelu": Sparsity(
        "jumprelu",
        penalty=_jumprelu_term,
        code=_jumprelu_code,
        unit_norm_decoder=True,
        supports_lbfgs=False,
        default_weight=JUMPRELU_DEFAULT_WEIGHT,
        state=_jumprelu_state,
        threshold=lambda module: module.log_threshold.exp(),
        matryoshka=True,
    ),
}

_NO_SPARSITY = Sparsity("none")


def mechanism(name: str | None) -> Sparsity:
    """The registered :class:`Sparsity` called ``name`` (None: no sparsity)."""
    return _NO_SPARSITY if name is None else SPARSITY[name]


def activity_threshold(sparsity: str | None, activation: str) -> float:
    """The code value above which a unit counts as active on a sample.

    The activation's midpoint (0.5 for a sigmoid code, 0 for tanh and ReLU), or 0
    for a mechanism with a code function of its own (TopK's ReLU'd code).
    """
    if mechanism(sparsity).code is not None:
        return 0.0
    return ACTIVATIONS[activation].midpoint
