"""Optimiser steps and fused kernels: the only module that uses private torch API.

Two speed-ups for small problems, where per-operation overhead dominates a step:

- :class:`LeanAdam` calls Adam's fused kernel (``torch._fused_adam_``) directly once
  its state exists, skipping ``torch.optim``'s per-step bookkeeping;
- :func:`activation_backward` computes ``grad * activation'(z)`` from the
  activation's output in one ATen kernel (``torch.ops.aten.*_backward``).

Each has a public fallback that computes the same thing (``torch.optim.Adam.step``,
:attr:`._sparsity.Activation.backward`), taken when the private API is missing or
has changed; the tests compare the two on every run. Nothing else in the package
touches private torch API.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.optim.optimizer as _torch_optimizer

from ._sparsity import Activation

__all__ = ["LeanAdam", "activation_backward", "make_adam", "optimizer_step"]


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

    def _has_hooks(self) -> bool:
        return bool(
            self._optimizer_step_pre_hooks
            or self._optimizer_step_post_hooks
            or getattr(_torch_optimizer, "_global_optimizer_pre_hooks", None)
            or getattr(_torch_optimizer, "_global_optimizer_post_hooks", None)
        )

    def _fast_lists(self):
        """``(params, exp_avgs, exp_avg_sqs, steps)`` for the fused kernel, or None.

        Checked and built once, then reused while the parameter list and the state
        dict are the same objects (``load_state_dict`` and ``add_param_group``
        replace them); the options and hooks, which a caller may change between
        steps, are checked on every step by :meth:`fast_step`.
        """
        cache = getattr(self, "_lists_cache", None)
        params = self.param_groups[0]["params"] if len(self.param_groups) == 1 else None
        if cache is not None and cache[0] is params and cache[1] is self.state:
            return cache[2]
        if params is None or not hasattr(torch, "_fused_adam_"):
            return None
        if len({(p.device, p.dtype) for p in params}) != 1:  # one kernel launch
            return None
        try:
            states = [self.state[p] for p in params]
            lists = (
                params,
                [state["exp_avg"] for state in states],
                [state["exp_avg_sq"] for state in states],
                [state["step"] for state in states],
            )
        except KeyError:  # no state yet: the first step
            return None
        self._lists_cache = (params, self.state, lists)
        return lists

    def _fast_options(self, group: dict) -> bool:
        """Whether the fused call of :meth:`fast_step` covers ``group``'s options."""
        return not (
            not group.get("fused")
            or group.get("amsgrad")
            or group.get("capturable")
            or group.get("differentiable")
            or group.get("decoupled_weight_decay", False)
            or isinstance(group["lr"], torch.Tensor)
        )

    def fast_step(self) -> None:
        """One Adam step, as :meth:`step` without a closure."""
        lists = None
        if not getattr(self, "_slow", False) and not self._has_hooks():
            lists = self._fast_lists()
        group = self.param_groups[0]
        if lists is None or not self._fast_options(group):
            self.step()
            return
        params, exp_avgs, exp_avg_sqs, steps = lists
        grads = [p.grad for p in params]
        if any(grad is None for grad in grads):
            self.step()
            return
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


def _fused_backwards() -> dict:
    """ATen's one-kernel ``grad * f'(z)`` from ``h = f(z)``, by forward function ``f``.

    Only the kernels this torch has; the others fall back to the public formula.
    """
    aten = getattr(getattr(torch, "ops", None), "aten", None)
    sigmoid, tanh, threshold = (
        getattr(aten, name, None)
        for name in ("sigmoid_backward", "tanh_backward", "threshold_backward")
    )
    kernels = {torch.sigmoid: sigmoid, torch.tanh: tanh}
    if threshold is not None:
        kernels[torch.relu] = lambda grad, h: threshold(grad, h, 0)
    return {forward: kernel for forward, kernel in kernels.items() if kernel is not None}


_FUSED_BACKWARD = _fused_backwards()


def activation_backward(activation: Activation, fused: bool = True) -> Callable:
    """``backward(grad, h) = grad * activation'(z)`` from the output ``h``.

    One fused ATen kernel for torch's sigmoid, tanh and ReLU where this torch has it
    (``fused=True``), else the registry's public formula
    :attr:`._sparsity.Activation.backward` (the same values; the tests compare them).
    """
    if fused and activation.forward in _FUSED_BACKWARD:
        return _FUSED_BACKWARD[activation.forward]
    return activation.backward
