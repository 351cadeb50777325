"""The optimiser and the fused kernels of ``_optim``, against their public fallbacks.

``_optim`` is the only module that uses private torch API; each fast path is
checked here, on every run, against the public computation it replaces.
"""

import copy

import pytest
import torch

from skl_sparse_ae._optim import LeanAdam, activation_backward, make_adam, optimizer_step
from skl_sparse_ae._sparsity import ACTIVATIONS


def _params(seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    return [
        torch.randn(6, 4, generator=gen, dtype=dtype).requires_grad_(),
        torch.randn(6, generator=gen, dtype=dtype).requires_grad_(),
    ]


def _run_steps(optimizer, params, steps, fast):
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen, dtype=p.dtype)
        optimizer.fast_step() if fast else optimizer.step()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lean_adam_steps_are_torch_adam_steps(dtype):
    lean_params, torch_params = _params(dtype=dtype), _params(dtype=dtype)
    lean = LeanAdam(lean_params, lr=1e-2, weight_decay=0.1, fused=True)
    reference = torch.optim.Adam(torch_params, lr=1e-2, weight_decay=0.1, fused=True)
    _run_steps(lean, lean_params, 5, fast=True)
    _run_steps(reference, torch_params, 5, fast=False)
    for a, b in zip(lean_params, torch_params):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # the same kernel: bit-identical
    for key in ("exp_avg", "exp_avg_sq", "step"):
        for a, b in zip(lean_params, torch_params):
            torch.testing.assert_close(lean.state[a][key], reference.state[b][key], rtol=0, atol=0)
    # and its state resumes a plain torch Adam (and the other way round)
    resumed = torch.optim.Adam(_params(dtype=dtype), lr=1e-2)
    resumed.load_state_dict(lean.state_dict())
    assert int(resumed.state_dict()["state"][0]["step"]) == 5


def test_lean_adam_runs_hooks_through_the_regular_step():
    params = _params()
    lean = LeanAdam(params, lr=1e-2, fused=True)
    calls = []
    lean.register_step_post_hook(lambda *args: calls.append(1))
    _run_steps(lean, params, 3, fast=True)
    assert len(calls) == 3


def test_lean_adam_runs_global_hooks_through_the_regular_step():
    from torch.optim.optimizer import register_optimizer_step_post_hook

    params = _params()
    lean = LeanAdam(params, lr=1e-2, fused=True)
    calls = []
    handle = register_optimizer_step_post_hook(lambda *args: calls.append(1))
    try:
        _run_steps(lean, params, 3, fast=True)
    finally:
        handle.remove()
    assert len(calls) == 3


def test_lean_adam_fast_step_follows_a_loaded_state():
    """The fast step's cached lists give way to the tensors of a loaded state."""
    lean_params, torch_params = _params(), _params()
    lean = LeanAdam(lean_params, lr=1e-2, fused=True)
    reference = torch.optim.Adam(torch_params, lr=1e-2, fused=True)
    _run_steps(lean, lean_params, 2, fast=True)
    _run_steps(reference, torch_params, 2, fast=False)
    saved = copy.deepcopy(lean.state_dict())  # the moments after two steps
    _run_steps(lean, lean_params, 3, fast=True)
    lean.load_state_dict(saved)
    with torch.no_grad():
        for a, b in zip(lean_params, torch_params):
            a.copy_(b)
    _run_steps(lean, lean_params, 3, fast=True)
    _run_steps(reference, torch_params, 3, fast=False)
    for a, b in zip(lean_params, torch_params):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert int(lean.state[lean_params[0]]["step"]) == 5


def test_make_adam_resumes_state_with_the_new_learning_rate():
    params = _params()
    first = make_adam(params, 1e-2)
    _run_steps(first, params, 2, fast=True)
    resumed = make_adam(params, 5e-3, first.state_dict())
    assert resumed.param_groups[0]["lr"] == 5e-3
    assert int(resumed.state[params[0]]["step"]) == 2


def test_lean_adam_fallback_step_is_torch_adam():
    """The public path (torch's own step), taken when the fused kernel is unusable."""
    lean_params, torch_params = _params(), _params()
    lean = LeanAdam(lean_params, lr=1e-2, fused=True)
    lean._slow = True  # as after the fused kernel refused its arguments
    reference = torch.optim.Adam(torch_params, lr=1e-2, fused=True)
    _run_steps(lean, lean_params, 4, fast=True)
    _run_steps(reference, torch_params, 4, fast=False)
    for a, b in zip(lean_params, torch_params):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_optimizer_step_takes_any_optimizer():
    params = _params()
    sgd = torch.optim.SGD(params, lr=0.5)
    before = params[0].detach().clone()
    params[0].grad = torch.ones_like(params[0])
    params[1].grad = torch.zeros_like(params[1])
    optimizer_step(sgd)
    torch.testing.assert_close(params[0].detach(), before - 0.5)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_activation_backward_is_the_public_formula(name, dtype):
    activation = ACTIVATIONS[name]
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(50, 7, generator=gen, dtype=dtype) * 3
    grad = torch.randn(50, 7, generator=gen, dtype=dtype)
    h = activation.forward(z)
    fused = activation_backward(activation)(grad, h)
    public = activation_backward(activation, fused=False)(grad, h)
    torch.testing.assert_close(fused, public)
    # and both are grad * f'(z), as autograd gives
    leaf = z.clone().requires_grad_()
    activation.forward(leaf).backward(grad)
    torch.testing.assert_close(public, leaf.grad)
