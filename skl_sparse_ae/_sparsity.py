"""Pure sparsity penalties and code activations.

Every function here is a small, stateless torch function: tensors in, tensor out,
no module state, no numpy, no scikit-learn. The registries at the bottom are what
the estimator's ``_parameter_constraints`` read their allowed values from, so adding
an option here makes it a valid parameter value there.

Shapes follow one convention: ``x`` is ``(n_samples, n_features)``, ``code`` and
``pre_code`` are ``(n_samples, n_components)``.
"""

from __future__ import annotations

import torch

__all__ = [
    "ACTIVATIONS",
    "SPARSITY_PENALTIES",
    "auxk_loss",
    "kl_divergence",
    "kl_penalty",
    "l1_penalty",
    "topk_activation",
]


def kl_divergence(rho: float, rho_hat: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    r"""Summed Bernoulli KL divergence between a target and achieved activations.

    .. math::

        \sum_j \rho \log\frac{\rho}{\hat\rho_j}
        + (1 - \rho) \log\frac{1 - \rho}{1 - \hat\rho_j}

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
    rho_hat = rho_hat.clamp(eps, 1.0 - eps)
    return (
        rho * torch.log(rho / rho_hat) + (1.0 - rho) * torch.log((1.0 - rho) / (1.0 - rho_hat))
    ).sum()


def kl_penalty(code: torch.Tensor, rho: float, activation: str) -> torch.Tensor:
    r"""Classic (UFLDL) KL sparsity penalty of a batch of codes.

    :math:`\hat\rho_j = \frac{1}{m} \sum_i a_{ij}` is the mean activation of unit
    ``j`` over the batch, and the penalty is :func:`kl_divergence` of ``rho`` and
    :math:`\hat\rho`. The KL divergence is defined for probabilities, so the code
    must lie in ``[0, 1]``:

    - ``"sigmoid"``: :math:`a = h`, used as is;
    - ``"tanh"``: :math:`a = (1 + h) / 2` maps ``(-1, 1)`` onto ``(0, 1)``, so
      ``-1`` counts as "off" (the mapping UFLDL suggests for tanh units);
    - ``"relu"`` and TopK codes are unbounded above and have no such mapping:
      the estimator rejects them with KL before training starts.

    Parameters
    ----------
    code : Tensor of shape (n_samples, n_components)
        Code activations of the batch.
    rho : float
        Target mean activation, in ``(0, 1)``.
    activation : {"sigmoid", "tanh"}
        The code's activation function.

    Returns
    -------
    Tensor
        A scalar.
    """
    if activation == "tanh":
        code = 0.5 * (code + 1.0)
    elif activation != "sigmoid":
        raise ValueError(
            f"The KL penalty needs a code in (0, 1); got activation={activation!r}. "
            "Use 'sigmoid' or 'tanh'."
        )
    return kl_divergence(rho, code.mean(dim=0))


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
    out), the dead units are asked to reconstruct the residual:

    .. math::

        \mathcal{L}_{aux} = \frac{1}{2m} \sum_i \frac{\| e_i - W_{dec} z_{aux,i} \|^2}{s_e^2},
        \qquad s_e^2 = \max\Big(\frac{1}{m d} \sum_{i,f} (e_{if} - \bar e_f)^2,\ \epsilon\Big)

    (Gao et al. 2024, section A.2), :math:`\bar e` the residual's batch mean.
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
    loss = 0.5 * (decode_linear(z_aux) - residual).pow(2).sum(dim=1).mean() / scale
    return loss * dead_mask.any()


#: Code non-linearities, by the name ``activation`` accepts.
ACTIVATIONS = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
}

#: Sparsity modes, by the name ``sparsity`` accepts (``None`` is accepted too).
#: The value says which activations the mode works with.
SPARSITY_PENALTIES = {
    "kl": ("sigmoid", "tanh"),
    "l1": ("sigmoid", "tanh", "relu"),
    "topk": ("sigmoid", "tanh", "relu"),
}
