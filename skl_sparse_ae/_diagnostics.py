"""Fitted diagnostics and divergence errors.

After training, one pass over the training data (chunk by chunk, on the device)
gives the fitted attributes: the reconstruction error, the fraction of variance
unexplained, each unit's mean activation, the mean number of active units and the
dead units. The same pass is the last check that training did not diverge.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from typing import NamedTuple

import sklearn
import torch

from ._model import SparseAutoencoder

__all__ = [
    "DEAD_RANGE",
    "Diagnostics",
    "DivergedError",
    "FitQualityWarning",
    "FittedDiagnostics",
    "check_finite",
    "check_finite_fit",
    "check_no_blow_up",
    "fit_quality_problems",
    "fitted_diagnostics",
    "training_diagnostics",
    "warn_at_caller",
]

#: A unit whose code varies by no more than this over the training data is dead:
#: it carries no information. For ReLU and TopK codes these are the units that
#: never fire; for sigmoid and tanh codes, the saturated ones.
DEAD_RANGE = 1e-6


class DivergedError(ValueError):
    """The training loss became NaN or infinite."""


class FitQualityWarning(UserWarning):
    """A fit finished, but its model is of little use: it reconstructs no better than
    the mean, its sparse code is empty, or many of its units are dead.

    The message names the cause and the parameter to change. Filter it with
    ``warnings.filterwarnings("ignore", category=FitQualityWarning)``, or turn it into
    an error with ``"error"``.
    """


#: A model whose fraction of variance unexplained reaches this is no better than the mean.
USELESS_FVU = 0.9
#: A code with exact zeros whose mean number of active units is below this is empty.
EMPTY_L0 = 0.5
#: More than this fraction of dead units is reported.
DEAD_FRACTION = 0.1


def fit_quality_problems(
    fvu: float, mean_l0: float, dead_fraction: float, n_units: int, zeros_mean_off: bool
) -> list[str]:
    """The reasons a fitted model is of little use, each with its likely cause and fix.

    ``zeros_mean_off``: the code has exact zeros (ReLU, TopK, JumpReLU), so that its
    mean number of non-zero units is its L0 (a sigmoid code is never exactly 0).
    """
    problems = []
    if fvu >= USELESS_FVU:
        problems.append(
            f"it reconstructs the training data no better than their mean (fraction of "
            f"variance unexplained {fvu:.3g} >= {USELESS_FVU}): training stopped before the "
            "model learnt, or the sparsity penalty leaves the code nothing to carry. Lower "
            "tol or raise max_iter, or lower sparsity_weight (raise k for TopK)"
        )
    if zeros_mean_off and mean_l0 < EMPTY_L0:
        problems.append(
            f"its code is empty (on average {mean_l0:.3g} active units per sample, below "
            f"{EMPTY_L0}): the sparsity penalty switched the code off. Lower sparsity_weight"
        )
    if dead_fraction > DEAD_FRACTION:
        problems.append(
            f"{round(dead_fraction * n_units)} of its {n_units} units are dead (the same "
            "code on every training sample): they carry nothing. Lower learning_rate or "
            "sparsity_weight, use loss='mse' with noise=0 for ReLU-type codes, or fewer "
            "n_components"
        )
    return problems


def _diverged(what: str, where: str, advice: str = "Lower learning_rate") -> DivergedError:
    return DivergedError(
        f"Training diverged: {what} at {where}. The model was left as it was before "
        f"this call. {advice}, scale X (for example with StandardScaler or "
        "MinMaxScaler), or lower sparsity_weight."
    )


#: Training has diverged when its best epoch's loss is this many times the loss of
#: the model it started from (finite blow-ups: learning_rate=1e3 ends 1e3-1e13 times up).
BLOW_UP_FACTOR = 10.0
#: ... or when the trained model reconstructs the training data this many times worse
#: than their mean does (every model starts near the mean: a fraction of variance
#: unexplained near 1).
BLOW_UP_FVU = 2.0


def check_no_blow_up(losses: list[float], initial: float, where: str, advice: str) -> None:
    """Raise :class:`DivergedError` if even the best of ``losses`` is far above ``initial``.

    ``initial`` is the objective of the model training started from (its first
    batch, before any step); ``losses`` the epochs of this call.
    """
    if losses and min(losses) > BLOW_UP_FACTOR * abs(initial):
        raise _diverged(
            f"the loss rose from {initial:.4g} to at best {min(losses):.4g}", where, advice
        )


def check_finite(value: float, where: str) -> None:
    """Raise :class:`DivergedError` (a ValueError) if the loss is NaN or infinite."""
    if not math.isfinite(value):
        raise _diverged(f"the loss became {value}", where)


class Diagnostics(NamedTuple):
    """Sums over the training data that the fitted diagnostics are made of (float64)."""

    n_samples: int
    squared_error: float
    variance: float
    code_sum: torch.Tensor
    code_squares: torch.Tensor
    code_abs_sum: torch.Tensor
    code_range: torch.Tensor
    active_total: float
    reconstruction_variance: float = 0.0


@torch.inference_mode()
def training_diagnostics(
    module: SparseAutoencoder, parts: list[torch.Tensor], threshold: float, rows: int
) -> Diagnostics:
    r"""Sums over the training data for the fitted diagnostics, ``rows`` at a time.

    With :math:`r = (\hat x - x) / s` the residual on the loss's scale
    (:meth:`._model.SparseAutoencoder.residual`), :math:`c` the model's ``input_mean``
    (a shift that keeps the variance sum accurate), :math:`h` the code and :math:`t`
    the activity threshold:

    .. math::

        \text{squared\_error} = \sum_{i,f} r_{if}^2, \qquad
        \text{variance} = \sum_{i,f} \Big(\frac{x_{if} - c_f}{s}\Big)^2
            - n \sum_f \Big(\frac{\bar x_f - c_f}{s}\Big)^2
            = \sum_{i,f} \Big(\frac{x_{if} - \bar x_f}{s}\Big)^2

        \text{code\_sum}_j = \sum_i h_{ij}, \qquad
        \text{code\_squares}_j = \sum_i h_{ij}^2, \qquad
        \text{code\_abs\_sum}_j = \sum_i |h_{ij}|, \qquad
        \text{code\_range}_j = \max_i h_{ij} - \min_i h_{ij}, \qquad
        \text{active\_total} = \sum_{i,j} [h_{ij} > t]

        \text{reconstruction\_variance} = \sum_{i,f} \Big(\frac{\hat x_{if} - \bar x_f}{s}\Big)^2

    (the last about the data's mean :math:`\bar x`, accumulated with the same shift).

    The sums are additive, so ``parts`` (the training rows, split in any way, e.g.
    training and validation) are read where they are, chunk by chunk: memory is
    bounded by ``rows``, not by the number of samples, and nothing is copied to or
    from the device but the sums (float64; float32 on MPS, which has no float64).
    """
    device = parts[0].device
    acc = torch.float32 if device.type == "mps" else torch.float64
    width = module.sizes[-1]
    code_sum = torch.zeros(width, device=device, dtype=acc)
    code_squares = torch.zeros(width, device=device, dtype=acc)
    code_abs_sum = torch.zeros(width, device=device, dtype=acc)
    code_max = torch.full((width,), -math.inf, device=device, dtype=acc)
    code_min = torch.full((width,), math.inf, device=device, dtype=acc)
    shifted_sum = torch.zeros(module.sizes[0], device=device, dtype=acc)
    recon_sum = torch.zeros(module.sizes[0], device=device, dtype=acc)
    # squared error, shifted squares, active, shifted reconstruction squares
    sums = torch.zeros(4, device=device, dtype=acc)
    shift, scale = module.input_mean.to(acc), module.input_scale.to(acc)
    # Work buffers, allocated once and reused chunk after chunk: on the CPU a fresh
    # chunk-sized temporary per operation (page faults, zeroing) cost more than the
    # arithmetic. Sums of squares are dot products (one read, no temporary).
    buffers = {}

    def buffer(name, shape, dtype=acc):
        buf = buffers.get(name)
        if buf is None or buf.shape[0] < shape[0]:
            buf = buffers[name] = torch.empty(shape, device=device, dtype=dtype)
        return buf[: shape[0]]

    def in_acc(name, t):  # ``t.to(acc)``, into a buffer
        return t if t.dtype == acc else buffer(name, t.shape).copy_(t)

    standardized = module.standardized

    def shifted_acc(t):  # ``(t - shift) / scale`` in acc, into the "rows" buffer
        if not standardized:  # shift 0 and scale 1: the same values, two passes fewer
            return in_acc("rows", t)
        return buffer("rows", t.shape).copy_(t).sub_(shift).div_(scale)

    def squares(t):  # sum of t ** 2 over all entries
        flat = t.reshape(-1)
        return flat.dot(flat)

    # On the CPU the signs can be read at no cost: a chunk whose codes are all >= 0
    # (ReLU, sigmoid codes) has |h| = h, so its abs sum is its sum, bit for bit.
    cheap_sign = device.type == "cpu"
    n = 0
    for part in parts:
        for x in part.split(rows):
            m = x.shape[0]
            out = module(x)
            code = in_acc("code", out.code)
            chunk_sum = code.sum(dim=0)
            code_sum += chunk_sum
            tmp = buffer("code_tmp", code.shape)
            code_squares += torch.mul(code, code, out=tmp).sum(dim=0)
            chunk_min = code.amin(dim=0)
            torch.maximum(code_max, code.amax(dim=0), out=code_max)
            torch.minimum(code_min, chunk_min, out=code_min)
            if cheap_sign and bool(chunk_min.min() >= 0):
                code_abs_sum += chunk_sum
            else:
                code_abs_sum += torch.abs(code, out=tmp).sum(dim=0)
            sums[2] += torch.gt(code, threshold, out=buffer("active", code.shape, torch.bool)).sum()
            shifted = shifted_acc(x)
            shifted_sum += shifted.sum(dim=0)
            sums[1] += squares(shifted)
            # the residual on the loss's scale (a division by 1 unstandardised)
            reconstruction = out.reconstruction
            residual = module.residual(reconstruction, x) if standardized else reconstruction - x
            sums[0] += squares(in_acc("rows", residual))
            recon = shifted_acc(reconstruction)
            recon_sum += recon.sum(dim=0)
            sums[3] += squares(recon)
            n += m
    squared_error, shifted_squares, active_total, recon_squares = sums.tolist()
    mean = shifted_sum / max(n, 1)
    variance = shifted_squares - float(shifted_sum.pow(2).sum()) / max(n, 1)
    recon_variance = recon_squares - 2.0 * float(recon_sum @ mean) + n * float(mean @ mean)
    return Diagnostics(
        n,
        squared_error,
        max(variance, 0.0),
        code_sum.cpu(),
        code_squares.cpu(),
        code_abs_sum.cpu(),
        (code_max - code_min).cpu(),
        active_total,
        max(recon_variance, 0.0),
    )


def check_finite_fit(diagnostics: Diagnostics, where: str) -> None:
    """Raise :class:`DivergedError` if the trained model's outputs are not finite.

    ``diagnostics`` sums what the trained model gives on the training data (codes,
    squared errors on the loss's scale); a NaN or infinite entry makes its sum so.
    The loss is measured before each step, so a step that blows the weights up (the
    last one of a fit, say) shows only here.
    """
    if not (
        math.isfinite(diagnostics.squared_error)
        and bool(torch.isfinite(diagnostics.code_sum).all())
    ):
        raise _diverged("the trained model's codes or reconstructions are NaN or infinite", where)


class FittedDiagnostics(NamedTuple):
    """The estimator's fitted diagnostics (its class docstring has the formulas)."""

    reconstruction_err: float
    fraction_variance_unexplained: float
    mean_activation: torch.Tensor
    mean_l0: float
    dead_components: torch.Tensor
    code_rms: torch.Tensor
    code_mean_abs: torch.Tensor
    shrinkage: float = 1.0


def fitted_diagnostics(
    module: SparseAutoencoder,
    X: torch.Tensor,
    threshold: float,
    rows: int,
    where: str,
    advice: str = "Lower learning_rate",
) -> FittedDiagnostics:
    """The fitted diagnostics of ``module`` on its training data ``X`` (on its device).

    ``threshold`` is the activity threshold (:func:`._sparsity.activity_threshold`),
    ``rows`` the chunk size, ``where`` names the last step and ``advice`` the first
    remedy in a divergence error. Raises :class:`DivergedError` if the trained
    model's outputs are not finite, or if it reconstructs the training data more than
    ``BLOW_UP_FVU`` times worse than their mean.
    """
    stats = training_diagnostics(module, [X], threshold, rows)
    check_finite_fit(stats, where)
    if stats.variance > 0 and stats.squared_error > BLOW_UP_FVU * stats.variance:
        ratio = stats.squared_error / stats.variance
        raise _diverged(
            f"the trained model reconstructs X {ratio:.3g} times worse than its mean", where, advice
        )
    # Sums of squares on the loss's scale s (no overflow); s**2 brings the error
    # back to the units of X (a Python float: inf past float64's range).
    scale = float(module.input_scale)
    n_values = stats.n_samples * module.sizes[0]
    if stats.variance > 0:
        fvu = stats.squared_error / stats.variance
    else:
        fvu = 0.0 if stats.squared_error == 0 else math.inf
    if stats.variance > 0:
        shrinkage = math.sqrt(stats.reconstruction_variance / stats.variance)
    else:
        shrinkage = 1.0
    return FittedDiagnostics(
        shrinkage=shrinkage,
        reconstruction_err=stats.squared_error * scale * scale / n_values,
        fraction_variance_unexplained=fvu,
        mean_activation=stats.code_sum / stats.n_samples,
        mean_l0=stats.active_total / stats.n_samples,
        dead_components=stats.code_range <= DEAD_RANGE,
        code_rms=(stats.code_squares / stats.n_samples).sqrt(),
        code_mean_abs=stats.code_abs_sum / stats.n_samples,
    )


_INTERNAL_DIRS = (
    os.path.dirname(os.path.abspath(__file__)),
    os.path.dirname(os.path.abspath(sklearn.__file__)),
)


def warn_at_caller(message: str, category: type[Warning]) -> None:
    """Warn from the first frame outside this package and scikit-learn: the user's line.

    ``fit`` is reached through scikit-learn's wrappers (``_fit_context``,
    ``fit_transform``, meta-estimators), so no fixed ``stacklevel`` finds the caller.
    """
    frame, level = sys._getframe(1), 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        _INTERNAL_DIRS
    ):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
