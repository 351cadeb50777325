"""The autoencoder as a plain :class:`torch.nn.Module` (no numpy, no scikit-learn)."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from ._rows import SparseRows, standardization
from ._sparsity import ACTIVATIONS, mechanism

__all__ = ["AutoencoderOutput", "SparseAutoencoder", "geometric_median"]


#: Where a ``unit_norm_decoder`` model's pre-encoder bias starts: ``"mean"`` (the
#: data mean, Gao et al. 2024) or ``"geometric_median"`` (Bricken et al. 2023).
#: Chosen by measurement: benchmarks/README.md.
PRE_BIAS_START = "mean"
#: How a ``unit_norm_decoder`` model's encoder starts: ``"decoder_transpose"``
#: (Gao et al. 2024) or ``"uniform"`` (the rule of the other models).
#: Chosen by measurement: benchmarks/README.md.
ENCODER_START = "decoder_transpose"
#: Rows of the training data that set the scale of hidden layers at the start
#: (:meth:`SparseAutoencoder.scale_hidden_layers`): at most HIDDEN_INIT_ROWS, and
#: no more than HIDDEN_INIT_VALUES entries once densified (2**21, 16.8 MB in float64,
#: an inference chunk's size), but never fewer than HIDDEN_INIT_MIN_ROWS.
HIDDEN_INIT_ROWS = 2048
HIDDEN_INIT_VALUES = 2**21
HIDDEN_INIT_MIN_ROWS = 256


def _to_unit_std(z: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Divide ``weight`` and its (bias-free) pre-activations ``z`` by ``z``'s standard
    deviation, in place; ``z`` as it is when constant."""
    scale = float(z.std())
    if scale > 0:
        weight.div_(scale)
        z.div_(scale)
    return z


def geometric_median(X: torch.Tensor, n_iter: int = 100, eps: float = 1e-8) -> torch.Tensor:
    r"""The geometric median of the rows of ``X``, by Weiszfeld's iteration.

    .. math::

        m = \arg\min_m \sum_i \|x_i - m\|, \qquad
        m \leftarrow \frac{\sum_i x_i / \max(\|x_i - m\|, \epsilon)}
                         {\sum_i 1 / \max(\|x_i - m\|, \epsilon)}

    from the mean, for ``n_iter`` steps or until ``m`` moves by less than
    ``eps`` times its norm (Bricken et al. 2023 start the pre-encoder bias here).
    """
    median = X.mean(dim=0)
    for _ in range(n_iter):
        weights = 1.0 / (X - median).norm(dim=1).clamp_min(eps)
        new = (weights[:, None] * X).sum(dim=0) / weights.sum()
        moved = float((new - median).norm())
        median = new
        if moved <= eps * max(float(median.norm()), 1.0):
            break
    return median


class AutoencoderOutput(NamedTuple):
    """What :meth:`SparseAutoencoder.forward` returns.

    Attributes
    ----------
    reconstruction : Tensor of shape (n_samples, n_features)
        :math:`\\hat x`, after the output activation.
    logits : Tensor of shape (n_samples, n_features)
        The output layer before its activation (equal to ``reconstruction`` for a
        linear output); binary cross-entropy is computed from these for stability.
    code : Tensor of shape (n_samples, n_components)
        The sparse code :math:`h` (what ``transform`` returns).
    pre_code : Tensor of shape (n_samples, n_components)
        The code layer before its activation (TopK's ranking and AuxK use it).
    """

    reconstruction: torch.Tensor
    logits: torch.Tensor
    code: torch.Tensor
    pre_code: torch.Tensor


class SparseAutoencoder(nn.Module):
    r"""A (stacked) autoencoder whose code layer is the sparse representation.

    With layer sizes :math:`d_0 = n_{features}, d_1, \dots, d_L = n_{components}`,
    :math:`\sigma` the activation, and ``mu``, ``s`` the buffers ``input_mean``
    and ``input_scale`` (a fixed standardisation, identity by default)::

        h_0 = (x - mu) / s - b_pre            (b_pre = 0 unless centring, see below)
        h_l = σ(h_{l-1} W_l^T + c_l)          l = 1 .. L-1          (encoder)
        code = σ(h_{L-1} W_L^T + c_L)         or the mechanism's code (TopK, ...)
        g_L = code
        g_{l-1} = σ(g_l V_l + e_l)            l = L .. 2            (decoder)
        logits = s * (g_1 V_1 + b_out) + mu
        x̂ = output_activation(logits)

    ``W_l`` has shape ``(d_l, d_{l-1})`` (as :class:`torch.nn.Linear`) and ``V_l``
    the same shape ``(d_l, d_{l-1})``, so tied weights are simply ``V_l = W_l``
    and, for one layer, ``V_1`` is ``components_`` of shape
    ``(n_components, n_features)``.

    For a TopK-style mechanism (``unit_norm_decoder`` in its registry entry) with a
    linear output, the output bias doubles as the pre-encoder bias ``b_pre``
    (subtracted from the input, added back to the output), as in Gao et al. (2024). Losses are computed on the standardised
    scale, so that penalty weights mean the same whatever the units of ``x``.

    Parameters
    ----------
    n_features : int
    n_components : int
    hidden_layer_sizes : tuple of int
        Encoder layers between the input and the code; the decoder mirrors them.
    activation : {"sigmoid", "tanh", "relu"}
        Hidden-layer and code activation (TopK codes are ReLU'd TopK instead).
    output_activation : {"linear", "sigmoid"}
    k : int or None
        Units kept per sample, for a mechanism that uses it (TopK, BatchTopK);
        ignored otherwise.
    tied_weights : bool
        Decoder weights are the encoder's (one matrix per layer).
    sparsity : str or None
        The sparsity mechanism (a key of :data:`._sparsity.SPARSITY`): its code
        function, if it has one, replaces the activation on the code layer, a
        ``unit_norm_decoder`` mechanism gets TopK's decoder and pre-encoder bias,
        and the tensors of its ``state`` are parameters or buffers of the module
        (BatchTopK's ``threshold``, JumpReLU's ``log_threshold``). A mechanism whose
        code depends on the batch while training (BatchTopK) uses its learned
        threshold in evaluation mode (``module.eval()``), where each sample's code
        is its own.
    dtype, device
        Where the parameters live.
    """

    def __init__(
        self,
        n_features: int,
        n_components: int,
        hidden_layer_sizes: tuple[int, ...] = (),
        activation: str = "sigmoid",
        output_activation: str = "linear",
        k: int | None = None,
        tied_weights: bool = False,
        *,
        sparsity: str | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ):
        super().__init__()
        self.sizes = (int(n_features), *map(int, hidden_layer_sizes), int(n_components))
        self.activation = activation
        self.output_activation = output_activation
        self.sparsity = sparsity
        uses_k = mechanism(sparsity).uses_k
        if uses_k and k is None:
            raise ValueError(f"sparsity={sparsity!r} needs k, the units kept per sample.")
        self.k = int(k) if uses_k else None
        self.tied_weights = tied_weights
        self.center_input = mechanism(sparsity).unit_norm_decoder
        self.standardized = False
        self._act = ACTIVATIONS[activation].forward
        factory = {"dtype": dtype, "device": device}
        pairs = list(zip(self.sizes[:-1], self.sizes[1:]))
        self.encoder_weights = nn.ParameterList(
            nn.Parameter(torch.empty(d_out, d_in, **factory)) for d_in, d_out in pairs
        )
        self.encoder_biases = nn.ParameterList(
            nn.Parameter(torch.zeros(d_out, **factory)) for _, d_out in pairs
        )
        self.decoder_weights = (
            None
            if tied_weights
            else nn.ParameterList(
                nn.Parameter(torch.empty(d_out, d_in, **factory)) for d_in, d_out in pairs
            )
        )
        # decoder_biases[l - 1] is added after V_l for l >= 2 (hidden sizes);
        # the output layer's bias is output_bias.
        self.decoder_biases = nn.ParameterList(
            nn.Parameter(torch.zeros(d_in, **factory)) for d_in, _ in pairs[1:]
        )
        self.output_bias = nn.Parameter(torch.zeros(self.sizes[0], **factory))
        # TopK's pre-encoder bias: the output bias itself for a linear output; for a
        # sigmoid output (whose bias is a logit) a parameter of its own.
        needs_pre_bias = self.center_input and output_activation != "linear"
        self.pre_bias = (
            nn.Parameter(torch.zeros(self.sizes[0], **factory)) if needs_pre_bias else None
        )
        self._register_state(factory)

    def _register_state(self, factory: dict) -> None:
        """Buffers, and the sparsity mechanism's own tensors at their starting values.

        The standardisation (``input_mean``, ``input_scale``), the training samples
        seen since each code unit last fired (TopK's dead units), and what the
        registry's ``state`` gives (BatchTopK's threshold, JumpReLU's log θ).
        """
        self.register_buffer("input_mean", torch.zeros(self.sizes[0], **factory))
        self.register_buffer("input_scale", torch.ones((), **factory))
        self.register_buffer(
            "samples_since_fired",
            torch.zeros(self.sizes[-1], device=factory["device"], dtype=torch.long),
        )
        for name, value in self._mechanism_state(factory).items():
            if isinstance(value, nn.Parameter):
                self.register_parameter(name, value)
            else:
                self.register_buffer(name, value)

    def _mechanism_state(self, factory: dict) -> dict:
        """The sparsity mechanism's tensors at their starting values (its registry's ``state``)."""
        state = mechanism(self.sparsity).state
        return {} if state is None else state(self.sizes[-1], factory)

    def code_threshold(self) -> torch.Tensor | None:
        """The code's learned threshold (BatchTopK's scalar, JumpReLU's θ per unit), or None."""
        threshold = mechanism(self.sparsity).threshold
        return None if threshold is None else threshold(self)

    # ------------------------------------------------------------------ weights
    def decoder_weight(self, layer: int) -> torch.Tensor:
        """``V_layer`` (1-based), of shape ``(d_layer, d_{layer-1})``."""
        weights = self.encoder_weights if self.tied_weights else self.decoder_weights
        return weights[layer - 1]

    def weights(self) -> list[torch.Tensor]:
        """Every distinct weight matrix (biases excluded), for weight decay."""
        if self.tied_weights:
            return list(self.encoder_weights)
        return [*self.encoder_weights, *self.decoder_weights]

    @torch.no_grad()
    def set_standardization(self, mean: torch.Tensor, scale: float) -> None:
        """Fix the input standardisation ``(x - mean) / scale`` (before training)."""
        self.input_mean.copy_(mean)
        self.input_scale.fill_(scale)
        self.standardized = True

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - input_mean) / input_scale``: data on the scale losses are computed on."""
        if not self.standardized:
            return x
        return (x - self.input_mean) / self.input_scale

    def residual(self, reconstruction: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``(reconstruction - x) / input_scale``: the error on the scale losses use.

        Squared errors, early stopping's validation score and the fitted diagnostics
        are computed from this, so that they mean the same and cannot overflow
        whatever the units of ``x`` (the identity scale for a sigmoid output).
        """
        return (reconstruction - x) / self.input_scale

    @torch.no_grad()
    def initialize(self, X: torch.Tensor | SparseRows, generator: torch.Generator) -> None:
        """Initialise a new model from its training data ``X``, before training.

        A linear output gets the standardisation ``(x - mean) / s``, with ``s`` the
        root mean square of the centred data (one global scale, so that penalty
        weights mean the same whatever the units of ``X``;
        :func:`._rows.standardization`, which also reads sparse rows); then
        :meth:`reset_parameters` draws the weights from ``generator``.
        """
        x_mean, scale = standardization(X)
        if self.output_activation == "linear":
            self.set_standardization(x_mean, scale if scale > 0 else 1.0)
        pre_bias = None
        if self.center_input and PRE_BIAS_START == "geometric_median":
            pre_bias = geometric_median(X)
        self.reset_parameters(generator, x_mean, pre_bias)
        if len(self.sizes) > 2 and ACTIVATIONS[self.activation].unit_interval is not None:
            rows = min(HIDDEN_INIT_ROWS, HIDDEN_INIT_VALUES // self.sizes[0])
            self.scale_hidden_layers(X[: max(HIDDEN_INIT_MIN_ROWS, rows)])

    @torch.no_grad()
    def scale_hidden_layers(self, X: torch.Tensor | SparseRows) -> None:
        """Scale each hidden layer's weights so that its pre-activations have unit
        standard deviation on the rows ``X`` (layer-sequential unit variance, Mishkin
        & Matas 2016), encoder then decoder.

        With UFLDL's uniform start a sigmoid layer's pre-activations on digits have a
        standard deviation of about 0.2: its outputs are 0.5 give or take 0.05, two
        such layers pass the code almost nothing, and a stacked sigmoid autoencoder
        stayed at the mean (fraction of variance unexplained 1.0). Biases are zero at
        the start (so they are left out), and dividing the weights divides the
        pre-activations.
        """
        x = X.to_dense() if isinstance(X, SparseRows) else X
        h = self.normalize(x)
        if self.center_input:
            h = h - self.pre_encoder_bias()
        for layer in range(len(self.encoder_weights) - 1):
            z = torch.nn.functional.linear(h, self.encoder_weights[layer])
            h = self._act(_to_unit_std(z, self.encoder_weights[layer]))
        if self.tied_weights:  # the decoder's weights are the encoder's
            return
        g = self.encode(x)[1]
        for layer in range(len(self.sizes) - 1, 1, -1):
            weight = self.decoder_weight(layer)
            g = self._act(_to_unit_std(g @ weight, weight))

    @torch.no_grad()
    def reset_parameters(
        self,
        generator: torch.Generator,
        x_mean: torch.Tensor,
        pre_bias: torch.Tensor | None = None,
    ) -> None:
        """Initialise every parameter from ``generator`` and the data mean.

        Weights are uniform in :math:`\\pm\\sqrt{6 / (d_{in} + d_{out} + 1)}` (UFLDL's
        rule), biases zero, the output bias the (standardised) data mean, or its
        logit for a sigmoid output, so that training starts from the mean
        reconstruction. For TopK the code layer's decoder rows are random unit
        vectors and the encoder starts as their transpose (Gao et al. 2024;
        ``ENCODER_START``), and ``pre_bias`` (default: the data mean;
        ``PRE_BIAS_START``) is the pre-encoder bias's start.
        """
        x_mean = self.normalize(x_mean.to(self.output_bias))
        pre_bias = x_mean if pre_bias is None else self.normalize(pre_bias.to(x_mean))
        params = [*self.encoder_weights]
        if not self.tied_weights:
            params += [*self.decoder_weights]
        for weight in params:
            d_out, d_in = weight.shape
            bound = math.sqrt(6.0 / (d_in + d_out + 1))
            # drawn in float64 whatever the training dtype: the same start for both
            noise = torch.rand(weight.shape, generator=generator, dtype=torch.float64)
            weight.copy_((2.0 * noise - 1.0) * bound)
        for bias in [*self.encoder_biases, *self.decoder_biases]:
            bias.zero_()
        if self.pre_bias is not None:
            self.pre_bias.copy_(pre_bias)
        if self.output_activation == "sigmoid":
            x_mean = torch.logit(x_mean.clamp(1e-3, 1.0 - 1e-3))
        self.output_bias.copy_(pre_bias if self.center_input and self.pre_bias is None else x_mean)
        if self.center_input:
            top = self.decoder_weight(len(self.sizes) - 1)
            direction = torch.randn(top.shape, generator=generator, dtype=torch.float64)
            top.copy_(direction / direction.norm(dim=1, keepdim=True))
            if ENCODER_START == "decoder_transpose":
                self.encoder_weights[-1].copy_(top)
        self.samples_since_fired.zero_()
        factory = {"dtype": self.output_bias.dtype, "device": self.output_bias.device}
        for name, value in self._mechanism_state(factory).items():
            getattr(self, name).copy_(value)

    @torch.no_grad()
    def set_code_bias(self, value: float) -> None:
        """Set every code unit's bias ``c_L`` to ``value`` (a pre-activation)."""
        self.encoder_biases[-1].fill_(value)

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Rescale the code layer's decoder rows to unit norm (TopK)."""
        top = self.decoder_weight(len(self.sizes) - 1)
        top.div_(top.norm(dim=1, keepdim=True).clamp_min(1e-12))

    @torch.no_grad()
    def remove_parallel_decoder_grad(self) -> None:
        r"""Drop the gradient component along each (unit-norm) decoder row.

        :math:`g_j \leftarrow g_j - (g_j \cdot v_j) v_j`, so that a step changes a
        row's direction, not its norm (Gao et al. 2024).
        """
        top = self.decoder_weight(len(self.sizes) - 1)
        if top.grad is not None:
            parallel = (top.grad * top).sum(dim=1, keepdim=True)
            top.grad.sub_(parallel * top)

    @torch.no_grad()
    def tie_dead_encoders(self, dead: torch.Tensor) -> None:
        r"""Point each dead unit's encoder row along its decoder row, keeping its norm.

        :math:`w_j \leftarrow \|w_j\| \, v_j` for every unit :math:`j` in the
        boolean mask ``dead`` (:math:`v_j` unit-norm): the encoder-as-transpose start
        of Gao et al. (2024), applied again to the units AuxK is training, so that a
        unit fires on the inputs its decoder row has learnt to reconstruct.
        """
        encoder = self.encoder_weights[-1]
        tied = self.decoder_weight(len(self.sizes) - 1) * encoder.norm(dim=1, keepdim=True)
        encoder.copy_(torch.where(dead[:, None], tied, encoder))

    # ------------------------------------------------------------------ forward
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(pre_code, code)`` for a batch ``x`` of shape (n, n_features)."""
        h = self.normalize(x)
        if self.center_input:
            h = h - self.pre_encoder_bias()
        n_layers = len(self.encoder_weights)
        for layer in range(n_layers - 1):
            h = self._act(
                torch.nn.functional.linear(
                    h, self.encoder_weights[layer], self.encoder_biases[layer]
                )
            )
        pre_code = torch.nn.functional.linear(h, self.encoder_weights[-1], self.encoder_biases[-1])
        code_fn = mechanism(self.sparsity).code
        code = self._act(pre_code) if code_fn is None else code_fn(pre_code, self)
        return pre_code, code

    def decode_normalized(self, code: torch.Tensor) -> torch.Tensor:
        """The output layer before its activation, on the standardised scale."""
        g = code
        for layer in range(len(self.sizes) - 1, 1, -1):
            g = self._act(
                torch.addmm(self.decoder_biases[layer - 2], g, self.decoder_weight(layer))
            )
        return torch.addmm(self.output_bias, g, self.decoder_weight(1))

    def decode_logits(self, code: torch.Tensor) -> torch.Tensor:
        """The output layer before its activation, for a batch of codes."""
        logits = self.decode_normalized(code)
        if not self.standardized:
            return logits
        return logits * self.input_scale + self.input_mean

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """:math:`\\hat x` for a batch of codes (the output activation applied)."""
        logits = self.decode_logits(code)
        return torch.sigmoid(logits) if self.output_activation == "sigmoid" else logits

    def decode_contribution(self, code: torch.Tensor) -> torch.Tensor:
        """What ``code`` adds to the standardised output over an all-zero code.

        AuxK's decoder: for one layer this is ``code @ V_1``, the decoder without
        its bias.
        """
        zero = code.new_zeros((1, code.shape[1]))
        return self.decode_normalized(code) - self.decode_normalized(zero)

    def pre_encoder_bias(self) -> torch.Tensor:
        """:math:`b_{pre}` of a TopK model, subtracted from the (standardised) input.

        With a linear output it is the output bias (added back to the output, as in
        Gao et al. 2024); with a sigmoid output, whose bias is a logit, a parameter of
        its own. Both start at the data mean.
        """
        return self.output_bias if self.pre_bias is None else self.pre_bias

    def auxk_decoder(self, out: AutoencoderOutput):
        r"""AuxK's decoder: the change extra units' code ``z`` makes to :math:`\hat x`.

        On the loss's scale, with the live units' output ``out`` held fixed:
        :math:`z V` for a linear output, and
        :math:`\sigma(\text{logits} + z V) - \hat x` for a sigmoid one, so that
        AuxK's error ``decode(z) - residual`` is always the reconstruction with the
        dead units added, minus the data.
        """
        if self.output_activation == "linear":
            return self.decode_contribution
        logits, x_hat = out.logits.detach(), out.reconstruction.detach()

        def decode(code: torch.Tensor) -> torch.Tensor:
            change = self.input_scale * self.decode_contribution(code)
            return self.residual(torch.sigmoid(logits + change), x_hat)

        return decode

    def __setstate__(self, state):
        # Modules pickled before 0.2 had no ``sparsity``: a k meant TopK.
        if "sparsity" not in state:
            state["sparsity"] = "topk" if state.get("k") is not None else None
        super().__setstate__(state)

    def forward(self, x: torch.Tensor) -> AutoencoderOutput:
        pre_code, code = self.encode(x)
        logits = self.decode_logits(code)
        reconstruction = torch.sigmoid(logits) if self.output_activation == "sigmoid" else logits
        return AutoencoderOutput(reconstruction, logits, code, pre_code)
