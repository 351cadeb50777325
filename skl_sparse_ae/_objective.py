r"""The training objective :math:`J` of one batch.

.. math::

    J = \underbrace{\frac{1}{m}\sum_i \ell(x_i, \hat x_i)}_{\text{reconstruction}}
        + \underbrace{P(h)}_{\text{sparsity}}
        + \frac{\lambda}{2} \sum_l \|W_l\|_F^2

with :math:`\ell` half the squared error summed over features (UFLDL's cost, on the
standardised scale of a linear output) or the binary cross-entropy summed over
features, and :math:`P` the sparsity mechanism's term from the registry
:data:`._sparsity.SPARSITY`: :math:`\beta\,\mathrm{KL}(\rho\|\hat\rho)`,
:math:`\beta\,L_1`, TopK's and BatchTopK's AuxK loss :math:`\alpha_{aux}\mathcal{L}_{aux}`
(their sparsity itself is structural), or JumpReLU's :math:`\lambda L_0` plus AuxK.
With ``matryoshka_widths`` the reconstruction term is the mean over nested prefixes
of the code (:func:`matryoshka_reconstruction`). :func:`objective` is the only place that adds the
mechanism's term, and it reads it from the registry: it never branches on a
mechanism's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ._model import AutoencoderOutput, SparseAutoencoder
from ._sparsity import mechanism

__all__ = [
    "LossTerms",
    "Objective",
    "StepOutput",
    "cross_entropy",
    "matryoshka_reconstruction",
    "objective",
    "prefix_code",
    "reconstruction_loss",
    "squared_error",
    "weight_penalty",
]


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


@dataclass(frozen=True)
class Objective:
    """Everything that defines :math:`J` besides the module.

    Attributes
    ----------
    loss : {"mse", "bce"}
        The reconstruction loss :math:`\\ell`.
    sparsity : str or None
        A key of :data:`._sparsity.SPARSITY`.
    sparsity_target, sparsity_weight : float
        :math:`\\rho` and :math:`\\beta`, as the mechanism reads them.
    weight_decay : float
        :math:`\\lambda`.
    k_aux : int
        AuxK's dead units per sample (0: no AuxK).
    matryoshka_widths : tuple of int
        Increasing widths :math:`m_1 < \\dots < m_G` below ``n_components``: the
        reconstruction term is the mean of the reconstruction losses of the code's
        prefixes of these widths and of the whole code
        (:func:`matryoshka_reconstruction`). Empty: the whole code only.
    dead_after : int
        Training samples without firing after which a unit counts as dead (AuxK).
    """

    loss: str = "mse"
    sparsity: str | None = None
    sparsity_target: float = 0.05
    sparsity_weight: float = 0.0
    weight_decay: float = 0.0
    k_aux: int = 0
    dead_after: int = 1
    matryoshka_widths: tuple = ()


def prefix_code(code: torch.Tensor, width: int) -> torch.Tensor:
    """``code`` with every unit from ``width`` on set to zero: its first ``width`` units alone."""
    keep = torch.arange(code.shape[-1], device=code.device) < width
    return code * keep


def reconstruction_loss(
    module: SparseAutoencoder, logits: torch.Tensor, x_target: torch.Tensor, loss: str
) -> torch.Tensor:
    r""":math:`\frac{1}{m}\sum_i \ell(x_i, \hat x_i)` from the output layer's ``logits``."""
    if loss == "bce":
        return cross_entropy(logits, x_target)
    reconstruction = torch.sigmoid(logits) if module.output_activation == "sigmoid" else logits
    return squared_error(module.residual(reconstruction, x_target))  # on the standardised scale


def matryoshka_reconstruction(
    module: SparseAutoencoder,
    out: AutoencoderOutput,
    x_target: torch.Tensor,
    loss: str,
    widths: tuple,
) -> torch.Tensor:
    r"""The Matryoshka reconstruction term: the mean over nested prefixes of the code.

    .. math::

        rac{1}{G + 1} \sum_{g=1}^{G+1} rac{1}{m}\sum_i
            \ellig(x_i,\ \mathrm{dec}(h_{i,1:m_g})ig),
        \qquad m_1 < \dots < m_G < m_{G+1} = n_{components}

    where :math:`\mathrm{dec}(h_{i,1:m})` decodes the code with every unit past
    the first :math:`m` set to zero (Bussmann et al. 2025, Nabeshima 2025: the first
    :math:`m_1` units must make a good dictionary on their own, the next ones
    refine it). The code itself is computed once, from the whole layer (TopK
    chooses among all units); only the decoding is truncated. The mean (not the
    sum) keeps the term on the scale of the plain reconstruction, so that penalty
    weights keep their meaning.
    """
    total = reconstruction_loss(module, out.logits, x_target, loss)
    for width in widths:
        logits = module.decode_logits(prefix_code(out.code, width))
        total = total + reconstruction_loss(module, logits, x_target, loss)
    return total / (len(widths) + 1)


class LossTerms(NamedTuple):
    """:math:`J`, its reconstruction term, and the forward pass they came from."""

    total: torch.Tensor
    reconstruction: torch.Tensor
    output: AutoencoderOutput


class StepOutput(NamedTuple):
    """What one training step reports: the batch objective and the batch's code, and
    the code's column sums where the step computed them anyway (or None)."""

    total: torch.Tensor
    code: torch.Tensor
    code_sum: torch.Tensor | None = None


def objective(
    module: SparseAutoencoder, x_input: torch.Tensor, x_target: torch.Tensor, spec: Objective
) -> LossTerms:
    """:math:`J` (module docstring) on one batch.

    ``x_input`` is what the encoder sees (corrupted when denoising), ``x_target``
    what the decoder must reproduce.
    """
    out = module(x_input)
    if spec.matryoshka_widths:
        reconstruction = matryoshka_reconstruction(
            module, out, x_target, spec.loss, spec.matryoshka_widths
        )
    elif spec.loss == "bce":
        reconstruction = cross_entropy(out.logits, x_target)
    else:  # on the standardised scale: (x̂ - x) / s
        reconstruction = squared_error(module.residual(out.reconstruction, x_target))
    total = reconstruction
    penalty = mechanism(spec.sparsity).penalty
    term = None if penalty is None else penalty(out, x_target, module, spec)
    if term is not None:
        total = total + term
    if spec.weight_decay > 0:
        total = total + weight_penalty(module.weights(), spec.weight_decay)
    return LossTerms(total, reconstruction, out)
