"""The gradient of :math:`J` written out, for one-layer models with a dense code.

On small problems per-operation overhead dominates a training step: building an
autograd graph costs about as much as the arithmetic. :func:`analytic_step`
computes the same gradient as autograd does for :func:`._objective.objective`
(the tests check it on every configuration it accepts), in about half the kernels.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ._model import SparseAutoencoder
from ._objective import Objective, StepOutput
from ._optim import LeanAdam, activation_backward
from ._sparsity import ACTIVATIONS, mechanism

__all__ = ["analytic_step", "analytic_stepper", "supports_analytic_step"]


def supports_analytic_step(module: SparseAutoencoder, spec: Objective) -> bool:
    """Whether :func:`analytic_step` covers this model and objective.

    One code layer (``hidden_layer_sizes=()``), a dense code, no decoder
    constraint, no Matryoshka prefixes, a mechanism with a written-out gradient
    (:attr:`._sparsity.Sparsity.penalty_and_grad`) or no penalty at all, and an
    output the loss sees unscaled: a linear output (standardised or not) or a
    sigmoid output on unstandardised data (what the estimator builds).
    """
    mech = mechanism(spec.sparsity)
    return (
        len(module.sizes) == 2
        and mech.code is None
        and not mech.unit_norm_decoder
        and (mech.penalty is None or mech.penalty_and_grad is not None)
        and mech.accepts(ACTIVATIONS[module.activation])
        and (module.output_activation == "linear" or not module.standardized)
        and not spec.matryoshka_widths
    )


def _squared_norm(a: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum a^2` as one kernel (a dot product of the flattened tensor)."""
    flat = a.reshape(-1)
    return flat.dot(flat)


@torch.no_grad()
def analytic_step(
    module: SparseAutoencoder,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    spec: Objective,
    noise_fn=None,
) -> StepOutput:
    r"""One optimiser step with the gradient of :func:`._objective.objective` written out.

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

    with :math:`\beta\, \partial\Omega / \partial a` the sparsity mechanism's written-out
    gradient (:attr:`._sparsity.Sparsity.penalty_and_grad`).
    Tied weights (:math:`V = W`) add the two weight gradients and decay once.

    This is the gradient autograd computes for :func:`._objective.objective` (tests check
    it), without building a graph: about half the kernels and half the time of
    an autograd step on small problems, where per-operation overhead dominates.
    Only for models :func:`supports_analytic_step` accepts. A loop calls
    :func:`analytic_stepper` once and its step for each batch instead.
    """
    return analytic_stepper(module, optimizer, spec, noise_fn)(x)


def analytic_stepper(
    module: SparseAutoencoder,
    optimizer: torch.optim.Optimizer,
    spec: Objective,
    noise_fn=None,
) -> Callable[[torch.Tensor], StepOutput]:
    """:func:`analytic_step` as a function of the batch alone, to call under ``torch.no_grad()``.

    The parameters, kernels and branches that depend on the model, objective and
    optimiser only are looked up once here, not in each step: at about 45 kernels
    of a few µs a step, attribute lookups between them are a sizeable share of its
    time. Valid while these stay the same objects (one epoch of :func:`._training.run_epoch`).
    """
    W, c = module.encoder_weights[0], module.encoder_biases[0]
    V, b = module.decoder_weight(1), module.output_bias
    Wt = W.t()  # views: they follow W and V, updated in place
    Vt = V.t()
    normalize = module.normalize if module.standardized else None
    activation = ACTIVATIONS[module.activation]
    code_forward = activation.forward
    code_backward = activation_backward(activation)
    sigmoid_backward = activation_backward(ACTIVATIONS["sigmoid"])
    output = "bce" if spec.loss == "bce" else module.output_activation  # or sigmoid, linear
    penalty = mechanism(spec.sparsity).penalty_and_grad
    decay = spec.weight_decay
    tied = module.tied_weights
    step_optimizer = optimizer.fast_step if isinstance(optimizer, LeanAdam) else optimizer.step

    def step(x: torch.Tensor) -> StepOutput:
        m = x.shape[0]
        u = noise_fn(x) if noise_fn is not None else x
        if normalize is not None:
            u = normalize(u)
            target = normalize(x) if noise_fn is not None else u
        else:
            target = x
        code = code_forward(torch.addmm(c, u, Wt))
        out = torch.addmm(b, code, V)
        # the reconstruction loss is error * error_scale (scaled with the penalty's add)
        if output == "bce":
            error = F.binary_cross_entropy_with_logits(out, target, reduction="sum")
            error_scale = 1.0 / m
            delta_out = torch.sigmoid(out).sub_(target).div_(m)
        elif output == "sigmoid":
            x_hat = torch.sigmoid(out)
            diff = x_hat - target
            error, error_scale = _squared_norm(diff), 0.5 / m
            delta_out = sigmoid_backward(diff, x_hat).div_(m)
        else:
            diff = out.sub_(target)
            error, error_scale = _squared_norm(diff), 0.5 / m
            delta_out = diff.div_(m)

        # the column sums: the epoch's mean activation (run_epoch) and KL's rho_hat
        code_sum = code.sum(dim=0)
        if penalty is not None:  # d(penalty)/d(code) = scale * grad
            value, grad, scale = penalty(code, activation, spec, code_sum)
            total = value.add_(error, alpha=error_scale)
            delta_code = torch.addmm(grad, delta_out, Vt, beta=scale)
        else:
            total = error.mul_(error_scale)
            delta_code = delta_out.mm(Vt)
        delta_pre = code_backward(delta_code, code)

        if decay > 0:
            squares = _squared_norm(W)
            if not tied:
                squares = squares.add_(_squared_norm(V))
            total = total.add_(squares, alpha=0.5 * decay)
        grad_W = torch.addmm(W, delta_pre.t(), u, beta=decay)
        if tied:
            grad_W.addmm_(code.t(), delta_out)
        else:
            V.grad = torch.addmm(V, code.t(), delta_out, beta=decay)
        W.grad = grad_W
        c.grad = delta_pre.sum(dim=0)
        b.grad = delta_out.sum(dim=0)
        step_optimizer()
        return StepOutput(total, code, code_sum)

    return step
