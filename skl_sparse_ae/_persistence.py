"""What a pickled estimator holds: plain arrays, and states of older versions.

``SparseAutoencoderTransformer.__getstate__`` and ``__setstate__`` delegate here. The
fitted network, Adam's state and the random generators' states are stored as numpy
arrays, dicts, lists and numbers only, with the module's architecture beside its
weights, and rebuilt on load. So a model fitted on a GPU loads on a CPU-only machine,
``skops.io`` can store it without trusting any torch or pickle internals (only this
package's class), and a model pickled by an earlier version loads with the
behaviour it had.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ._device import resolve_device
from ._model import SparseAutoencoder

__all__ = ["loadable_state", "portable_state"]

#: Parameters added after 0.1.0, with the value that gives 0.1.0's behaviour.
_NEW_PARAMETERS = {
    "code_scaling": None,
    "learning_rate_schedule": "constant",
    "matryoshka_widths": None,
}


def _to_arrays(obj):
    """``obj`` with every tensor (in dicts, lists, tuples) a numpy array on the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu").numpy().copy()
    if isinstance(obj, dict):
        return {k: _to_arrays(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_arrays(v) for v in obj)
    return obj


def _to_tensors(obj):
    """The inverse of :func:`_to_arrays` (every numpy array a tensor)."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.array(obj))
    if isinstance(obj, dict):
        return {k: _to_tensors(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_tensors(v) for v in obj)
    return obj


def _module_record(module: SparseAutoencoder) -> dict:
    """The module as its constructor's arguments and its weights and buffers as arrays."""
    return {
        "architecture": {
            "n_features": module.sizes[0],
            "n_components": module.sizes[-1],
            "hidden_layer_sizes": list(module.sizes[1:-1]),
            "activation": module.activation,
            "output_activation": module.output_activation,
            "k": module.k,
            "tied_weights": module.tied_weights,
            "sparsity": module.sparsity,
        },
        "standardized": module.standardized,
        "state_dict": _to_arrays(dict(module.state_dict())),
    }


def _module_from_record(record: dict) -> SparseAutoencoder:
    arch = dict(record["architecture"])
    arch["hidden_layer_sizes"] = tuple(arch["hidden_layer_sizes"])
    weights = _to_tensors(record["state_dict"])
    module = SparseAutoencoder(**arch, dtype=weights["output_bias"].dtype)
    module.load_state_dict(weights)
    module.standardized = record["standardized"]
    return module.eval()  # a fitted module is in evaluation mode (BatchTopK's threshold)


def portable_state(state: dict) -> dict:
    """``state`` with the module, Adam's state and the generators' states as arrays."""
    if "module_" not in state:
        return state
    state = dict(state)
    state["module_"] = _module_record(state["module_"])
    state["_optimizer_state"] = _to_arrays(state.get("_optimizer_state"))
    state["_generator_states"] = _to_arrays(state.get("_generator_states"))
    # Fitted with array API dispatch on torch tensors, the fitted arrays are tensors
    # on the data's device: stored as arrays, with that device.
    tensors = {key: str(value.device) for key, value in state.items() if torch.is_tensor(value)}
    if tensors:
        state["_tensor_attributes"] = tensors
        state.update({key: _to_arrays(state[key]) for key in tensors})
    return state


def loadable_state(state: dict) -> dict:
    """``state`` ready for this machine and version.

    The module, Adam's state and the generators' states are rebuilt as tensors on the
    CPU (a state pickled by 0.1.0 holds them as tensors already). Parameters an older
    version did not have get the value that behaves as it did; a model fitted on a
    device this machine lacks is loaded on the CPU, with a warning.
    """
    state = {**{k: v for k, v in _NEW_PARAMETERS.items() if k not in state}, **state}
    if isinstance(state.get("module_"), dict):
        state["module_"] = _module_from_record(state["module_"])
        state["_optimizer_state"] = _to_tensors(state.get("_optimizer_state"))
        state["_generator_states"] = _to_tensors(state.get("_generator_states"))
    for key, where in state.pop("_tensor_attributes", {}).items():
        try:  # back on their device, or on the CPU where this machine lacks it
            where = resolve_device(where)
        except ValueError:
            where = "cpu"
        state[key] = _to_tensors(state[key]).to(where)
    if "training_dtype" not in state:  # it trained in its data's dtype then
        module = state.get("module_")
        if module is None:  # not fitted: the default
            state["training_dtype"] = "auto"
        else:
            state["training_dtype"] = str(next(module.parameters()).dtype).removeprefix("torch.")
    device = state.get("device_")
    if device is None or device == "cpu":
        return state
    try:
        resolve_device(device)
    except ValueError:
        warnings.warn(
            f"This model was fitted on {device!r}, which this machine does not "
            "have; it was loaded on the CPU.",
            UserWarning,
            stacklevel=3,
        )
        state["device_"] = "cpu"
        state["_generator_states"] = (state["_generator_states"][0], None)
    return state
