"""The torch module ``SparseAutoencoder`` on its own (no estimator, no numpy)."""

import math

import pytest
import torch

from skl_sparse_ae._model import AutoencoderOutput, SparseAutoencoder

DTYPE = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _x(n=20, d=7, seed=0):
    return torch.rand(n, d, generator=_gen(seed), dtype=DTYPE) * 3.0 + 1.0


def _module(x, n_components=5, standardize=True, **kwargs):
    if kwargs.get("k") is not None:  # a TopK code
        kwargs.setdefault("sparsity", "topk")
    module = SparseAutoencoder(x.shape[1], n_components, dtype=DTYPE, **kwargs)
    if standardize and module.output_activation == "linear":
        module.set_standardization(x.mean(dim=0), float((x - x.mean(dim=0)).pow(2).mean().sqrt()))
    module.reset_parameters(_gen(1), x.mean(dim=0))
    return module


# ------------------------------------------------------------------ forward
@pytest.mark.parametrize("hidden", [(), (6,), (6, 4)])
@pytest.mark.parametrize("k", [None, 2])
def test_forward_returns_the_documented_named_tuple(hidden, k):
    x = _x()
    module = _module(x, hidden_layer_sizes=hidden, k=k)
    out = module(x)
    assert isinstance(out, AutoencoderOutput)
    assert out._fields == ("reconstruction", "logits", "code", "pre_code")
    assert out.reconstruction.shape == out.logits.shape == x.shape
    assert out.code.shape == out.pre_code.shape == (x.shape[0], 5)
    assert all(t.dtype == DTYPE for t in out)
    pre_code, code = module.encode(x)
    torch.testing.assert_close(out.code, code)
    torch.testing.assert_close(out.pre_code, pre_code)
    torch.testing.assert_close(out.reconstruction, module.decode(code))
    if k is not None:
        assert int((out.code != 0).sum(dim=1).max()) <= k


def test_linear_output_reconstruction_equals_logits_and_sigmoid_applies_sigmoid():
    x = _x()
    linear = _module(x)(x)
    assert torch.equal(linear.reconstruction, linear.logits)
    sig = _module(x / 10.0, output_activation="sigmoid")(x / 10.0)
    torch.testing.assert_close(sig.reconstruction, torch.sigmoid(sig.logits))


def test_one_layer_forward_is_the_documented_equations():
    x = _x()
    module = _module(x, activation="tanh")
    W, c = module.encoder_weights[0], module.encoder_biases[0]
    V, b = module.decoder_weights[0], module.output_bias
    mu, s = module.input_mean, module.input_scale
    with torch.no_grad():
        W.add_(0.1)
        c.add_(0.2)
        b.add_(0.3)
    code = torch.tanh(((x - mu) / s) @ W.T + c)
    expected = s * (code @ V + b) + mu
    out = module(x)
    torch.testing.assert_close(out.code, code)
    torch.testing.assert_close(out.reconstruction, expected)


def test_topk_encoder_subtracts_the_pre_encoder_bias():
    """latents = ReLU(TopK(W (x_std - b_pre) + c)), x̂_std = z V + b_pre (Gao et al.)."""
    x = _x()
    module = _module(x, k=2, activation="relu")
    assert module.center_input
    with torch.no_grad():
        module.output_bias.copy_(torch.linspace(-1, 1, x.shape[1], dtype=DTYPE))
        module.encoder_biases[0].fill_(0.1)
    W, c, b = module.encoder_weights[0], module.encoder_biases[0], module.output_bias
    pre_code = (module.normalize(x) - b) @ W.T + c
    torch.testing.assert_close(module.encode(x)[0], pre_code)
    assert module.pre_bias is None  # the output bias doubles as b_pre


def test_topk_sigmoid_output_has_its_own_pre_encoder_bias():
    """A sigmoid output's bias is a logit: b_pre is a parameter of its own, at the mean."""
    x = _x() / 10.0  # in (0, 1)
    module = _module(x, k=2, output_activation="sigmoid")
    assert module.center_input
    assert any(param is module.pre_bias for param in module.parameters())  # learnt
    torch.testing.assert_close(module.pre_bias.detach(), x.mean(dim=0))
    torch.testing.assert_close(module.output_bias.detach(), torch.logit(x.mean(dim=0)))
    W, c = module.encoder_weights[0], module.encoder_biases[0]
    torch.testing.assert_close(module.encode(x)[0], (x - module.pre_bias) @ W.T + c)
    assert _module(x, output_activation="sigmoid").pre_bias is None  # dense codes: none


@pytest.mark.parametrize("output_activation", ["linear", "sigmoid"])
def test_auxk_decoder_adds_the_dead_units_to_the_reconstruction(output_activation):
    """decode(z) - residual = (x̂ with z's units added) - x, on the loss's scale."""
    x = _x() / 10.0
    module = _module(x, k=2, output_activation=output_activation)
    z = torch.rand(x.shape[0], 5, generator=_gen(3), dtype=DTYPE)
    with torch.no_grad():
        out = module(x)
        residual = module.residual(x, out.reconstruction)
        error = module.auxk_decoder(out)(z) - residual
        with_z = module.decode(out.code + z)  # one layer: the units add up in the logits
    torch.testing.assert_close(error, module.residual(with_z, x))


def test_decode_contribution_is_the_decoder_without_its_bias():
    x = _x()
    module = _module(x)
    with torch.no_grad():
        module.output_bias.fill_(0.7)
    code = torch.rand(4, 5, generator=_gen(2), dtype=DTYPE)
    torch.testing.assert_close(module.decode_contribution(code), code @ module.decoder_weights[0])


# ------------------------------------------------------------- tied weights
@pytest.mark.parametrize("hidden", [(), (6,)])
def test_tied_weights_share_storage_with_the_encoder(hidden):
    x = _x()
    module = _module(x, hidden_layer_sizes=hidden, tied_weights=True)
    assert module.decoder_weights is None
    for layer, weight in enumerate(module.encoder_weights, start=1):
        decoder = module.decoder_weight(layer)
        assert decoder is weight
        assert decoder.data_ptr() == weight.data_ptr()
    assert len(module.weights()) == len(hidden) + 1
    # a change through the encoder is a change of the decoder
    with torch.no_grad():
        module.encoder_weights[0][0, 0] = 123.0
    assert float(module.decoder_weight(1)[0, 0].detach()) == 123.0
    # and the decoder's gradient lands on the one matrix
    module(x).reconstruction.sum().backward()
    assert module.encoder_weights[0].grad is not None


def test_untied_weights_are_separate_matrices():
    module = _module(_x(), hidden_layer_sizes=(6,))
    assert len(module.weights()) == 4
    assert module.decoder_weight(1).data_ptr() != module.encoder_weights[0].data_ptr()
    assert module.decoder_weight(1).shape == module.encoder_weights[0].shape == (6, 7)


# ------------------------------------------------------------ initialisation
def test_reset_parameters_follows_the_ufldl_rule_and_the_generator():
    x = _x()
    first = _module(x, hidden_layer_sizes=(6,))
    second = _module(x, hidden_layer_sizes=(6,))
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
    for weight in first.weights():
        weight = weight.detach()
        d_out, d_in = weight.shape
        bound = math.sqrt(6.0 / (d_in + d_out + 1))
        assert float(weight.abs().max()) <= bound
        assert float(weight.abs().max()) > 0.5 * bound
    assert not any(bias.any() for bias in first.encoder_biases)
    # the output starts at the (standardised) data mean: zero
    torch.testing.assert_close(first.output_bias, torch.zeros(7, dtype=DTYPE))


def test_reset_parameters_sigmoid_output_starts_at_the_logit_of_the_mean():
    x = _x() / 5.0
    module = _module(x, output_activation="sigmoid")
    torch.testing.assert_close(torch.sigmoid(module.output_bias), x.mean(dim=0))


@pytest.mark.parametrize("tied", [False, True])
def test_topk_starts_with_unit_decoder_rows_and_the_encoder_as_their_transpose(tied):
    x = _x()
    module = _module(x, k=2, tied_weights=tied)
    decoder = module.decoder_weight(1)  # (n_components, n_features): z @ V
    torch.testing.assert_close(decoder.norm(dim=1), torch.ones(5, dtype=DTYPE))
    # the encoder computes x @ W.T, so W = V is the decoder's transpose as a map
    assert torch.equal(module.encoder_weights[0], decoder)
    assert not module.samples_since_fired.any()


# ------------------------------------------------------- decoder constraints
def test_normalize_decoder_makes_rows_unit_norm():
    x = _x()
    module = _module(x, k=2)
    with torch.no_grad():
        module.decoder_weight(1).mul_(torch.linspace(0.1, 5, 5, dtype=DTYPE)[:, None])
    direction = module.decoder_weight(1) / module.decoder_weight(1).norm(dim=1, keepdim=True)
    module.normalize_decoder()
    rows = module.decoder_weight(1)
    torch.testing.assert_close(rows.norm(dim=1), torch.ones(5, dtype=DTYPE))
    torch.testing.assert_close(rows, direction)


def test_normalize_decoder_acts_on_the_code_layer_of_a_stacked_model():
    module = _module(_x(), hidden_layer_sizes=(6,), k=2)
    with torch.no_grad():
        module.decoder_weight(2).mul_(3.0)
        module.decoder_weight(1).mul_(3.0)
    before = module.decoder_weight(1).clone()
    module.normalize_decoder()
    assert module.decoder_weight(2).shape == (5, 6)
    torch.testing.assert_close(module.decoder_weight(2).norm(dim=1), torch.ones(5, dtype=DTYPE))
    assert torch.equal(module.decoder_weight(1), before)


def test_remove_parallel_decoder_grad_leaves_the_orthogonal_part():
    x = _x()
    module = _module(x, k=3)
    module(x).reconstruction.pow(2).sum().backward()
    rows = module.decoder_weight(1).detach()
    grad = module.decoder_weight(1).grad.clone()
    assert (grad * rows).sum(dim=1).abs().max() > 1e-3  # something to remove
    module.remove_parallel_decoder_grad()
    new = module.decoder_weight(1).grad
    torch.testing.assert_close((new * rows).sum(dim=1), torch.zeros(5, dtype=DTYPE))
    # g - (g . v) v: only the parallel part went
    expected = grad - (grad * rows).sum(dim=1, keepdim=True) * rows
    torch.testing.assert_close(new, expected)


def test_remove_parallel_decoder_grad_without_a_gradient_is_a_no_op():
    module = _module(_x(), k=3)
    module.remove_parallel_decoder_grad()
    assert module.decoder_weight(1).grad is None


# ------------------------------------------------------------ standardisation
def test_standardization_round_trip():
    x = _x()
    module = _module(x)
    assert module.standardized
    mu, s = module.input_mean, module.input_scale
    z = module.normalize(x)
    torch.testing.assert_close(z, (x - mu) / s)
    torch.testing.assert_close(z.pow(2).mean(), torch.tensor(1.0, dtype=DTYPE))
    torch.testing.assert_close(z * s + mu, x)
    code = module.encode(x)[1]
    torch.testing.assert_close(module.decode_logits(code), module.decode_normalized(code) * s + mu)


def test_without_standardization_normalize_is_the_identity():
    x = _x()
    module = _module(x, standardize=False)
    assert not module.standardized
    assert module.normalize(x) is x
    code = module.encode(x)[1]
    torch.testing.assert_close(module.decode_logits(code), module.decode_normalized(code))


def test_standardized_model_is_equivariant_to_the_units_of_x():
    """Same parameters, data a * x + b: identical codes, outputs in the new units."""
    x = _x()
    a, b = 16.0, torch.linspace(-2, 2, x.shape[1], dtype=DTYPE)
    module = _module(x)
    other = _module(a * x + b)
    other.load_state_dict(
        {
            **module.state_dict(),
            "input_mean": other.input_mean,
            "input_scale": other.input_scale,
        }
    )
    out, out2 = module(x), other(a * x + b)
    torch.testing.assert_close(out2.code, out.code)
    torch.testing.assert_close(out2.reconstruction, a * out.reconstruction + b)


def test_samples_since_fired_is_a_saved_buffer():
    module = _module(_x(), k=2)
    state = module.state_dict()
    assert "samples_since_fired" in state and "input_mean" in state and "input_scale" in state
    assert state["samples_since_fired"].dtype == torch.long
    assert "samples_since_fired" not in dict(module.named_parameters())
