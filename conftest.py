"""Collection rules for the whole repository (``--doctest-modules`` imports every module).

:mod:`skl_sparse_ae.onnx` needs the optional ``onnx`` extra (skl2onnx, onnx): where
they are absent its import raises, by design, so its doctests are not collected.
"""

import importlib.util

collect_ignore = []
if any(importlib.util.find_spec(name) is None for name in ("skl2onnx", "onnx")):
    collect_ignore.append("skl_sparse_ae/onnx.py")
