"""What a pickled estimator holds: tensors on the CPU, and states of older versions.

``SparseAutoencoderTransformer.__getstate__`` and ``__setstate__`` delegate here, so
that a model fitted on a GPU loads on a CPU-only machine and a model pickled by an
earlier version loads with the behaviour it had.
"""

from __future__ import annotations

import copy
import warnings

from ._device import resolve_device, tensors_to_cpu

__all__ = ["loadable_state", "portable_state"]

#: Parameters added after 0.1.0, with the value that gives 0.1.0's behaviour.
_NEW_PARAMETERS = {"code_scaling": None, "learning_rate_schedule": "constant"}


def portable_state(state: dict) -> dict:
    """``state`` with the module and the optimiser state copied to the CPU."""
    if "module_" not in state:
        return state
    state = dict(state)
    state["module_"] = copy.deepcopy(state["module_"]).to("cpu")
    state["_optimizer_state"] = tensors_to_cpu(state.get("_optimizer_state"))
    return state


def loadable_state(state: dict) -> dict:
    """``state`` ready for this machine and version.

    Parameters an older version did not have get the value that behaves as it did; a
    model fitted on a device this machine lacks is loaded on the CPU, with a warning.
    """
    state = {**{k: v for k, v in _NEW_PARAMETERS.items() if k not in state}, **state}
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
