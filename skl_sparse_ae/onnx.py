"""ONNX export of :class:`~skl_sparse_ae.SparseAutoencoderTransformer`, through skl2onnx.

Importing this module registers a converter for the estimator with
`skl2onnx <https://onnx.ai/sklearn-onnx/>`_, so that a fitted
:class:`~sklearn.pipeline.Pipeline` holding it converts with
:func:`skl2onnx.to_onnx` as one with :class:`~sklearn.decomposition.PCA` does, and
runs in onnxruntime without torch::

    import skl_sparse_ae.onnx  # registers the converter
    import skl2onnx

    onx = skl2onnx.to_onnx(pipe, X[:1].astype(np.float32))

The exported graph is ``transform``: the input standardisation, the pre-encoder
bias of TopK-style models, the encoder's hidden layers, the code layer with its
mechanism's code (the activation; TopK's ReLU'd top ``k``; BatchTopK's and
JumpReLU's learned thresholds) and the division by ``code_scale_``. It computes in
the dtype of the graph's input (float32 or float64), with the fitted weights cast
to it. skl2onnx and onnx are optional dependencies: without them importing this
module raises an ImportError that names the ``onnx`` extra.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

try:
    import onnx
    from skl2onnx import update_registered_converter
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
    from skl2onnx.common.utils import check_input_and_output_numbers, check_input_and_output_types
except ImportError as exc:  # pragma: no cover - tested in a subprocess without skl2onnx
    raise ImportError(
        "skl_sparse_ae.onnx needs skl2onnx and onnx (and onnxruntime to run the exported "
        'graphs). Install them with `pip install -e ".[onnx]"` from a checkout.'
    ) from exc

from ._estimator import SparseAutoencoderTransformer
from ._sparsity import _batchtopk_code, _jumprelu_code, _topk_code, mechanism

__all__ = ["register_onnx_converter"]

#: The name the converter is registered under in skl2onnx.
ALIAS = "SklSparseAeSparseAutoencoderTransformer"

#: ONNX operators of the code and hidden-layer activations, by their torch function.
_ACTIVATION_OPS = {torch.sigmoid: "Sigmoid", torch.tanh: "Tanh", torch.relu: "Relu"}

#: The opset TopK (with ``k`` as an input) and ScatterElements need.
_TOPK_OPSET = 11


def register_onnx_converter() -> None:
    """Register the ONNX converter of :class:`~skl_sparse_ae.SparseAutoencoderTransformer`.

    Importing :mod:`skl_sparse_ae.onnx` calls it, so that a pipeline holding the
    estimator converts with skl2onnx afterwards; calling it again (for example
    after another library replaced the registration) is harmless: it registers the
    same converter, shape calculator and (default) parser again.

    Examples
    --------
    >>> from skl_sparse_ae.onnx import register_onnx_converter
    >>> register_onnx_converter()  # already done by the import; harmless again

    Export a fitted pipeline ``pipe`` (here with a float32 example row ``X[:1]``)
    and run it with onnxruntime::

        import numpy as np
        import onnxruntime as ort
        import skl2onnx

        import skl_sparse_ae.onnx  # registers the converter

        onx = skl2onnx.to_onnx(pipe, X[:1].astype(np.float32))
        session = ort.InferenceSession(onx.SerializeToString())
        outputs = session.run(None, {session.get_inputs()[0].name: X.astype(np.float32)})

    The graph computes ``transform`` in the dtype of its input (float32 above; a
    float64 example row gives a float64 graph). A transform it cannot express
    raises :class:`NotImplementedError` at conversion, naming what is missing.
    """
    update_registered_converter(
        SparseAutoencoderTransformer,
        ALIAS,
        _shape_calculator,
        _converter,
        overwrite=True,
    )


def _shape_calculator(operator) -> None:
    """One float or double input of shape ``(N, n_features)``; one output ``(N, n_components)``
    of the same type."""
    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=1)
    check_input_and_output_types(operator, good_input_types=[FloatTensorType, DoubleTensorType])
    estimator = operator.raw_operator
    check_is_fitted(estimator)
    n_rows = operator.inputs[0].get_first_dimension()
    width = estimator.components_.shape[0]
    operator.outputs[0].type = operator.inputs[0].type.__class__([n_rows, width])


class _Graph:
    """Adds nodes and constants in one dtype to skl2onnx's container, with unique names."""

    def __init__(self, scope, container, dtype):
        self.scope = scope
        self.container = container
        self.dtype = np.dtype(dtype)
        self.proto_type = onnx.helper.np_dtype_to_tensor_dtype(self.dtype)

    def name(self, hint: str) -> str:
        return self.scope.get_unique_variable_name(hint)

    def const(self, hint: str, value, dtype=None) -> str:
        """An initializer holding ``value`` (a tensor or array), in the graph's dtype."""
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        array = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        name = self.name(hint)
        proto_type = onnx.helper.np_dtype_to_tensor_dtype(array.dtype)
        self.container.add_initializer(name, proto_type, list(array.shape), array.ravel())
        return name

    def node(self, op_type: str, inputs, hint: str, n_outputs: int = 1, **attrs):
        """Add one node; its output name (or names, for ``n_outputs > 1``)."""
        outputs = [self.name(f"{hint}{i}" if n_outputs > 1 else hint) for i in range(n_outputs)]
        self.container.add_node(
            op_type,
            list(inputs),
            outputs,
            name=self.scope.get_unique_operator_name(op_type),
            **attrs,
        )
        return outputs if n_outputs > 1 else outputs[0]

    def zeros_like(self, x: str, hint: str) -> str:
        """A tensor of zeros of ``x``'s (run-time) shape, in the graph's dtype."""
        shape = self.node("Shape", [x], f"{hint}_shape")
        zero = onnx.helper.make_tensor("value", self.proto_type, [1], [0])
        return self.node("ConstantOfShape", [shape], hint, value=zero)


def _activation_op(module) -> str:
    """The ONNX operator of the module's activation (hidden layers and plain codes)."""
    op = _ACTIVATION_OPS.get(module._act)
    if op is None:
        raise NotImplementedError(
            f"activation={module.activation!r} has no ONNX conversion "
            f"(converted: {', '.join(sorted(v.lower() for v in _ACTIVATION_OPS.values()))})."
        )
    return op


def _code(graph: _Graph, module, pre_code: str, container) -> str:
    """The mechanism's code of the pre-activations ``pre_code``, as ``module.encode`` computes it."""
    code_fn = mechanism(module.sparsity).code
    if code_fn is None:  # "kl", "l1", None: the activation
        return graph.node(_activation_op(module), [pre_code], "code")
    if code_fn is _topk_code:  # ReLU(TopK_k(pre_code)), the rest zero
        if container.target_opset is not None and container.target_opset < _TOPK_OPSET:
            raise NotImplementedError(
                f"sparsity='topk' needs opset {_TOPK_OPSET} or later (TopK with k as an "
                f"input, ScatterElements); target_opset={container.target_opset}."
            )
        k = graph.const("k", [module.k], dtype=np.int64)
        values, indices = graph.node("TopK", [pre_code, k], "topk", n_outputs=2, axis=-1)
        kept = graph.node("Relu", [values], "topk_relu")
        zeros = graph.zeros_like(pre_code, "zeros")
        return graph.node("ScatterElements", [zeros, indices, kept], "code", axis=1)
    if code_fn is _batchtopk_code:  # after training: ReLU(h) * 1[h > θ], θ a scalar
        if module.training:
            raise NotImplementedError(
                "sparsity='batchtopk' with module_ in training mode: its code depends on "
                "the whole batch (transform uses the learned threshold only after "
                "module_.eval(), which fit leaves it in)."
            )
        threshold = graph.const("threshold", module.code_threshold())
        above = graph.node("Greater", [pre_code, threshold], "above")
        rectified = graph.node("Relu", [pre_code], "code_relu")
        zero = graph.const("zero", 0.0)
        return graph.node("Where", [above, rectified, zero], "code")
    if code_fn is _jumprelu_code:  # h * 1[h > θ_j], θ = exp(log θ) per unit
        threshold = graph.const("threshold", module.code_threshold())
        above = graph.node("Greater", [pre_code, threshold], "above")
        zero = graph.const("zero", 0.0)
        return graph.node("Where", [above, pre_code, zero], "code")
    raise NotImplementedError(
        f"sparsity={module.sparsity!r}: its code function "
        f"{getattr(code_fn, '__name__', code_fn)!r} has no ONNX conversion."
    )


def _linear(graph: _Graph, h: str, weight, bias, hint: str) -> str:
    """``h W^T + b`` (:func:`torch.nn.functional.linear`)."""
    product = graph.node("MatMul", [h, graph.const(f"{hint}_W", weight.detach().T)], f"{hint}_mm")
    return graph.node("Add", [product, graph.const(f"{hint}_b", bias)], hint)


def _converter(scope, operator, container) -> None:
    """``transform`` of a fitted estimator as ONNX nodes (see the module's docstring).

    It follows :meth:`._model.SparseAutoencoder.encode` step by step, then divides by
    ``code_scale_``. Steps that do nothing (no standardisation, unit scales) are left
    out. Matryoshka widths and tied weights change training and the decoder only, not
    the encoder ``transform`` runs.
    """
    estimator = operator.raw_operator
    check_is_fitted(estimator)
    module = estimator.module_
    is_double = isinstance(operator.inputs[0].type, DoubleTensorType)
    graph = _Graph(scope, container, np.float64 if is_double else np.float32)
    h = operator.inputs[0].full_name
    if module.standardized:  # (x - mean) / s
        h = graph.node("Sub", [h, graph.const("input_mean", module.input_mean)], "centred")
        h = graph.node("Div", [h, graph.const("input_scale", module.input_scale)], "standardised")
    if module.center_input:  # TopK-style: minus the pre-encoder bias
        h = graph.node("Sub", [h, graph.const("pre_bias", module.pre_encoder_bias())], "shifted")
    n_layers = len(module.encoder_weights)
    for layer in range(n_layers - 1):
        z = _linear(
            graph,
            h,
            module.encoder_weights[layer],
            module.encoder_biases[layer],
            f"hidden{layer + 1}_pre",
        )
        h = graph.node(_activation_op(module), [z], f"hidden{layer + 1}")
    pre_code = _linear(graph, h, module.encoder_weights[-1], module.encoder_biases[-1], "pre_code")
    code = _code(graph, module, pre_code, container)
    scale = getattr(estimator, "code_scale_", None)
    if scale is not None and np.any(np.asarray(scale) != 1):
        code = graph.node("Div", [code, graph.const("code_scale", scale)], "scaled_code")
    container.add_node(
        "Identity",
        [code],
        [operator.outputs[0].full_name],
        name=scope.get_unique_operator_name("Identity"),
    )


register_onnx_converter()
