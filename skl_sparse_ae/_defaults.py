"""Every ``"auto"`` resolved in one place.

:func:`resolve` takes the estimator's parameters and the few facts about the
training data that matter (:class:`DataFacts`) and returns one frozen
:class:`Resolved` configuration. The estimator calls it once per fit and keeps each
resolved value as a fitted attribute (``loss_``, ``noise_``, ``code_scaling_``,
``learning_rate_``, ``tol_``, ...). An explicit value always wins; ``"auto"`` is
decided by the *regime* of the fit (:func:`regime`):

- ``"bounded code"``: a sigmoid or tanh code under KL, L1 or no penalty (the
  default, a denoising KL autoencoder);
- ``"relu code"``: a ReLU code under L1 or no penalty (Keras' recipes);
- ``"sae"``: TopK, BatchTopK and JumpReLU, which keep the field's practice
  (squared error, no corruption, raw codes; Gao et al. 2024).

:func:`defaults_table` renders the rule as the user guide's table; a test checks
that the guide shows exactly that table.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import scipy.sparse as sp

from ._sparsity import ACTIVATIONS, SPARSITY, mechanism

__all__ = ["DataFacts", "Resolved", "data_facts", "defaults_table", "regime", "resolve"]

#: :func:`data_facts` reads its means and entropies from at most about this many rows:
#: the entropies' logarithms cost 0.23 s on 10000 x 784 (a sixth of a hand-written
#: loop's whole fit of 20000 x 784 -> 1024, 3 epochs); from 4096 rows 0.06 s, and the
#: learnable loss moved from 0.19311 to 0.19319 per feature.
FACT_ROWS = 4096
#: ``noise="auto"``: the masking probability of a denoising bounded code.
AUTO_MASKING = 0.2
#: ``noise="auto"`` masks only rows with at least this many non-zero entries on
#: average: masking a one-hot row (or a short document's few terms) erases it.
MASKING_MIN_NONZEROS = 8.0
#: ``batch_size="auto"``: ``n_samples // AUTO_BATCH_STEPS`` rows, within AUTO_BATCH_RANGE.
AUTO_BATCH_STEPS = 100
AUTO_BATCH_RANGE = (200, 1000)
#: ... from STACKED_BATCH_MIN rows with hidden layers (on digits, codes of 2, 4 and 8
#: units behind a hidden layer of 128 probe 0.60/0.86/0.87 in scikit-learn's
#: compare-reduction pipeline at 100 rows, 0.59/0.84/0.87 at 200).
STACKED_BATCH_MIN = 100
#: ... and on a small table (fewer than SMALL_TABLE_ROWS training rows: under two
#: batches of 200) ``ceil(n / SMALL_TABLE_STEPS)`` rows, at least SMALL_BATCH_MIN, except
#: for a one-layer KL code by Adam (whose short schedule converges there). With one
#: step an epoch, L1, TopK, BatchTopK, JumpReLU and unpenalised codes on load_wine
#: (133 rows) ran out of 200 epochs still improving; at 17 rows all converge in 82-141
#: epochs, at an equal or lower error.
SMALL_TABLE_ROWS = 400
SMALL_TABLE_STEPS = 8
SMALL_BATCH_MIN = 16
#: ``n_iter_no_change="auto"`` counts steps too: a patience of at least PATIENCE_STEPS
#: Adam steps (digits' 1347 training rows take 7 steps an epoch, so 2 epochs there).
#: Scaling the 10-epoch patience to 70 steps kept tables of 133-426 rows (1-3 steps an
#: epoch) from ever converging under the plateau schedule's three plateaus.
PATIENCE_STEPS = 14
#: ``tol="auto"`` for Adam, per feature: TOL_FAST (one-layer KL) or TOL, the values
#: calibrated on standardised data and digits / 16, scaled down by
#: ``learnable / LEARNABLE_REF`` where a model predicting the mean leaves less to learn
#: (:meth:`DataFacts.learnable`: 0.09 per feature for a small TF-IDF matrix under
#: cross-entropy, 0.21 for digits / 16, 1/2 on standardised data), never up.
TOL_FAST = 1e-3
TOL = 1e-4
LEARNABLE_REF = 0.21
#: L-BFGS: the largest gradient entry.
TOL_LBFGS = 1e-4
#: Adam declares no plateau before the training loss is below the mean predictor's by
#: this fraction of what it leaves to learn (a fraction of variance unexplained of
#: 0.9): the flat start of a stacked sigmoid model is not convergence.
LEARNT_FRACTION = 0.1
#: ``hidden_layer_sizes="auto"``: a bounded code by Adam of at most NARROW_MAX units,
#: fewer than the features, is learnt behind one hidden layer of
#: ``min(2 n_features, NARROW_HIDDEN_MAX)`` units. One layer of 2, 4 or 8 sigmoid
#: units cannot bend: in scikit-learn's compare-reduction pipeline on digits it probed
#: 0.45/0.71/0.83 against PCA's 0.52/0.75/0.86; behind 128 units, 0.59/0.85/0.87.
NARROW_MAX = 32
NARROW_HIDDEN_MAX = 256
#: ``max_iter="auto"``: LBFGS_MAX_ITER iterations for L-BFGS; ADAM_MAX_ITER epochs for
#: Adam, STACKED_MAX_ITER behind hidden layers. With 200 epochs (``MLPRegressor``'s),
#: fits the defaults reach ran out still improving: narrow KL codes behind one hidden
#: layer on standardised digits needed up to 292 / 296 / 240 epochs at 2 / 4 / 8 units
#: (10, 12 and 5 of 18 fits warned), the default 16-unit code on load_wine (one step an
#: epoch) up to 236 (2-3 % of seeds), and ``sparsity="l1"`` on digits, wine and a TF-IDF
#: matrix 204-344 at 128 units; L1 ReLU, TopK, BatchTopK and JumpReLU codes on wine
#: 211-246. Unpenalised narrow codes on standardised digits took up to 635 epochs (2, 4, 8
#: units, 3-fold training sets, seeds 0-2), hence the larger budget behind hidden layers.
LBFGS_MAX_ITER = 200
ADAM_MAX_ITER = 500
STACKED_MAX_ITER = 1000
#: ``sparsity_target="auto"`` is ``3 / n_components`` within [0.05, TARGET_CAP], and
#: within [0.05, STACKED_TARGET_CAP] behind hidden layers (a 2-unit code behind 128
#: units at target 0.5 held its KL weight at the floor and never converged).
TARGET_CAP = 0.5
STACKED_TARGET_CAP = 0.3


@dataclass(frozen=True)
class DataFacts:
    """What the ``"auto"`` rules read from the training data.

    Attributes
    ----------
    n_samples, n_features : int
        The shape of ``X``.
    in_unit_interval : bool
        Every value of ``X`` lies in [0, 1].
    nonzeros_per_row : float
        The mean number of non-zero entries of a row.
    variance : float
        The mean over features of each feature's variance.
    bce_learnable : float or None
        Per feature, the cross-entropy of predicting each feature's mean minus that
        of a perfect reconstruction, :math:`\\frac{1}{d}\\sum_f H(\\bar x_f) -
        \\frac{1}{nd}\\sum_{i,f} H(x_{if})` (:math:`H` the binary entropy); None
        unless ``in_unit_interval``.
    bce_floor : float or None
        The second term: per feature, the cross-entropy of a perfect reconstruction.
    dtype : numpy dtype
        The dtype of ``X``.
    """

    n_samples: int
    n_features: int
    in_unit_interval: bool
    nonzeros_per_row: float
    variance: float
    bce_learnable: float | None
    dtype: np.dtype
    bce_floor: float | None = None

    def learnable(self, loss: str, output_activation: str) -> float:
        """Per feature, the training loss a model predicting the mean leaves to learn.

        Half the mean variance for a squared error, on the scale the loss uses: 1/2
        for a linear output (``X`` is standardised to unit mean variance), half the
        raw variance for a sigmoid output; :attr:`bce_learnable` for cross-entropy.
        """
        if loss == "bce":  # NaN for X outside [0, 1], which cross-entropy rejects
            return math.nan if self.bce_learnable is None else self.bce_learnable
        return 0.5 if output_activation == "linear" else 0.5 * self.variance

    def mean_loss(self, loss: str, output_activation: str) -> float:
        """Per feature, the training loss of predicting each feature's mean (the
        learnable part plus what no reconstruction removes: cross-entropy's floor)."""
        floor = (self.bce_floor or 0.0) if loss == "bce" else 0.0
        return self.learnable(loss, output_activation) + floor


def _entropy(p: np.ndarray) -> np.ndarray:
    """Binary entropy in nats, 0 at 0 and 1."""
    p = np.clip(p, 0.0, 1.0)
    out = np.zeros_like(p, dtype=np.float64)
    inside = (p > 0) & (p < 1)
    q = p[inside].astype(np.float64)
    out[inside] = -(q * np.log(q) + (1 - q) * np.log1p(-q))
    return out


def data_facts(X) -> DataFacts:
    """The :class:`DataFacts` of ``X`` (dense or CSR).

    The range is read from every entry (cross-entropy needs all of ``X`` in [0, 1]),
    and a sparse matrix's non-zero count is known; the means, the variance, the
    entropies and a dense ``X``'s non-zeros per row, which only set ``tol``, the
    no-plateau bound and whether rows are masked, from every ``ceil(n / FACT_ROWS)``-th
    row: on 60000 x 784 reading them from every entry took 4.3 s, a fifth of the fit.
    """
    n, d = X.shape
    sparse = sp.issparse(X)
    values = X.data if sparse else X
    lo = float(values.min()) if values.size else 0.0
    hi = float(values.max()) if values.size else 0.0
    if sparse and X.nnz < n * d:  # implicit zeros
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    rows = X[:: math.ceil(n / FACT_ROWS)] if n > FACT_ROWS else X
    m = rows.shape[0]
    # a dense X's non-zeros are counted on the sampled rows (counting all of 20000 x
    # 784 took 30 ms, a pass as long as the sampled rows' entropies)
    nonzeros_per_row = X.nnz / max(n, 1) if sparse else np.count_nonzero(rows) / max(m, 1)
    # the variance of rows / top, so that no square overflows
    top = max(abs(lo), abs(hi))
    top = top if 0 < top < math.inf else 1.0
    scaled = rows / top
    mean = np.asarray(scaled.mean(axis=0), dtype=np.float64).ravel()
    if sparse:
        mean_sq = np.asarray(scaled.multiply(scaled).mean(axis=0), dtype=np.float64).ravel()
    else:
        mean_sq = np.square(scaled, dtype=np.float64).mean(axis=0)
    with np.errstate(over="ignore"):  # inf for data beyond float64's square root
        variance = float(np.mean(mean_sq - mean**2) * np.float64(top) ** 2)
    in_unit = bool(lo >= 0 and hi <= 1)
    learnable = floor = None
    if in_unit and m * d:
        floor = float(_entropy(rows.data if sparse else rows).sum() / (m * d))
        learnable = float(_entropy(mean * top).mean()) - floor
    return DataFacts(
        n_samples=n,
        n_features=d,
        in_unit_interval=in_unit,
        nonzeros_per_row=float(nonzeros_per_row),
        variance=variance,
        bce_learnable=learnable,
        dtype=np.dtype(X.dtype),
        bce_floor=floor,
    )


@dataclass(frozen=True)
class Resolved:
    """The values a fit uses, every ``"auto"`` decided (see :func:`resolve`)."""

    regime: str
    loss: str
    output_activation: str
    hidden_layer_sizes: tuple[int, ...]
    k: int | None
    matryoshka_widths: tuple[int, ...]
    sparsity_target: float
    sparsity_weight: float
    steer_sparsity: bool
    noise: float
    noise_type: str
    code_scaling: str | None
    learning_rate: float | None
    tol: float
    n_iter_no_change: int
    batch_size: int
    training_dtype: str
    learnt_loss: float = math.inf
    max_iter: int = ADAM_MAX_ITER


def regime(sparsity: str | None, activation: str) -> str:
    """The regime whose ``"auto"`` values a fit takes: ``"sae"`` for mechanisms with
    a code of their own (TopK, BatchTopK, JumpReLU), else by the code's range."""
    if mechanism(sparsity).code is not None:
        return "sae"
    return "bounded code" if ACTIVATIONS[activation].unit_interval is not None else "relu code"


def _fast_schedule(params, hidden=()) -> bool:
    """The short Adam schedule (tol 2e-3, patience 2): a one-layer KL code by Adam."""
    return params["sparsity"] == "kl" and params["solver"] == "adam" and not hidden


def _fast_step(params, hidden=()) -> bool:
    """The large step (0.02 on 64 features): a KL code by Adam with at most one hidden
    layer. Behind two sigmoid layers a model starts on a plateau at the mean that
    lasts tens of epochs at 3e-3 and that 0.02 never left (digits, (128, 64) -> 32)."""
    return params["sparsity"] == "kl" and params["solver"] == "adam" and len(hidden) <= 1


def _loss(params, facts: DataFacts, fitted_loss: str | None, reg: str) -> str:
    """``"auto"``: for a bounded code, cross-entropy when ``X`` lies in [0, 1] and the
    output may be a sigmoid; squared error otherwise, and for ReLU-type codes (the
    SAE family's practice; a ReLU code under L1 with a sigmoid output left 142 of
    256 units dead on digits). A continued fit keeps the loss it was fitted with."""
    if params["loss"] != "auto":
        return params["loss"]
    if fitted_loss is not None:
        return fitted_loss
    sigmoid_ok = params["output_activation"] in ("auto", "sigmoid")
    if reg == "bounded code" and facts.in_unit_interval and facts.n_samples * facts.n_features:
        return "bce" if sigmoid_ok else "mse"
    return "mse"


def _noise(params, facts: DataFacts, reg: str) -> float:
    """``"auto"``: masking 0.2 for a bounded code on rows with at least 8 non-zero
    entries on average; else no corruption."""
    if params["noise"] != "auto":
        return float(params["noise"])
    if reg == "bounded code" and facts.nonzeros_per_row >= MASKING_MIN_NONZEROS:
        return AUTO_MASKING
    return 0.0


def _code_scaling(params, reg: str) -> str | None:
    """``"auto"``: each unit divided by its mean for a bounded code (its range is the
    activation's, not the data's); the raw code for ReLU-type codes, whose size is
    what the penalty shaped."""
    if params["code_scaling"] != "auto":
        return params["code_scaling"]
    return "mean" if reg == "bounded code" else None


def _k(params) -> int | None:
    if not mechanism(params["sparsity"]).uses_k:
        return None
    n = params["n_components"]
    k = max(1, n // 8) if params["k"] is None else params["k"]
    if k > n:
        raise ValueError(f"k must satisfy 1 <= k <= n_components={n}; got k={k}.")
    return int(k)


def _hidden_sizes(params, n_features: int, reg: str) -> tuple[int, ...]:
    """``"auto"``: one hidden layer of ``min(2 n_features, NARROW_HIDDEN_MAX)`` units
    for a narrow bounded code by Adam (``n_components <= NARROW_MAX`` and below
    ``n_features``), where PCA is what it replaces; none otherwise."""
    sizes = params["hidden_layer_sizes"]
    if isinstance(sizes, str) and sizes == "auto":
        n = params["n_components"]
        narrow = n <= NARROW_MAX and n < n_features
        if narrow and reg == "bounded code" and params["solver"] == "adam":
            return (min(2 * n_features, NARROW_HIDDEN_MAX),)
        return ()
    if isinstance(sizes, Integral):
        sizes = (sizes,)
    sizes = tuple(sizes)
    if not all(isinstance(s, Integral) and not isinstance(s, bool) and s >= 1 for s in sizes):
        raise ValueError(
            "hidden_layer_sizes must be a tuple of positive integers (layer widths); "
            f"got {params['hidden_layer_sizes']!r}."
        )
    return tuple(int(s) for s in sizes)


def _matryoshka_widths(params) -> tuple[int, ...]:
    """``matryoshka_widths`` as a tuple, checked; the whole width is implied."""
    given, n = params["matryoshka_widths"], params["n_components"]
    if given is None:
        return ()
    widths = tuple(np.ravel(given).tolist())
    ok = all(isinstance(w, Integral) and not isinstance(w, bool) for w in widths)
    if not widths or not ok or widths[0] < 1 or widths[-1] > n:
        raise ValueError(
            "matryoshka_widths must be a non-empty tuple of increasing integers in "
            f"[1, n_components={n}]; got {given!r}."
        )
    if any(b <= a for a, b in itertools.pairwise(widths)):
        raise ValueError(f"matryoshka_widths must be strictly increasing; got {given!r}.")
    if not mechanism(params["sparsity"]).matryoshka:
        allowed = sorted(name for name, m in SPARSITY.items() if m.matryoshka)
        raise ValueError(
            f"matryoshka_widths needs a sparse code whose zeros mean 'off': sparsity "
            f"in {allowed}; got sparsity={params['sparsity']!r}."
        )
    return tuple(int(w) for w in widths if w < n)


def _batch_size(
    params, n_samples: int, stacked_bounded: bool = False, small_steps: bool = False
) -> int:
    """``"auto"``: ``n_samples // 100`` within [200, 1000] ([100, 1000] for a bounded
    code behind hidden layers, which leaves its plateau at the mean in steps); clipped
    to ``n_samples``. With ``small_steps``, a table of fewer than SMALL_TABLE_ROWS rows
    takes SMALL_TABLE_STEPS batches an epoch.

    200 rows up to 20000 samples; beyond, at least 100 steps an epoch with larger
    batches, whose matrix products run closer to the machine's rate (on 60000 x 784
    an epoch of 500-row batches cost 0.63 times one of 200-row batches).
    """
    if params["batch_size"] == "auto" and small_steps and n_samples < SMALL_TABLE_ROWS:
        size = max(SMALL_BATCH_MIN, math.ceil(n_samples / SMALL_TABLE_STEPS))
    elif params["batch_size"] == "auto":
        low, high = AUTO_BATCH_RANGE
        low = STACKED_BATCH_MIN if stacked_bounded else low
        size = min(max(n_samples // AUTO_BATCH_STEPS, low), high)
    else:
        size = int(params["batch_size"])
    return max(1, min(size, n_samples))


def _learning_rate(params, n_features: int, reg: str, hidden) -> float | None:
    r"""``"auto"``: for KL by Adam, :math:`0.02\sqrt{64 / n_{features}}` within
    [3e-3, 0.02]; 1e-2 for ReLU-type codes (on digits, TopK, BatchTopK, JumpReLU and
    L1 converge in 100-155 epochs at an equal or lower error, where 3e-3 ran out of
    200); 3e-3 otherwise; None for L-BFGS."""
    if params["solver"] != "adam":
        return None
    if params["learning_rate"] != "auto":
        return float(params["learning_rate"])
    if _fast_step(params, hidden):
        return min(0.02, max(3e-3, 0.02 * math.sqrt(64.0 / n_features)))
    return 1e-2 if reg != "bounded code" else 3e-3


def _patience(params, n_train: int, batch_size: int, hidden) -> int:
    """``"auto"``: 2 epochs (one-layer KL by Adam) or 10, and at least
    ``PATIENCE_STEPS`` steps, so that a small data set (one step an epoch) is not
    declared converged after three steps."""
    if params["n_iter_no_change"] != "auto":
        return int(params["n_iter_no_change"])
    base = 2 if _fast_schedule(params, hidden) else 10
    if params["solver"] != "adam":  # unused: L-BFGS stops on its gradient
        return base
    steps = max(1, math.ceil(n_train / batch_size))
    return max(base, math.ceil(PATIENCE_STEPS / steps))


def _tol(params, facts: DataFacts, loss: str, output_activation: str, hidden) -> float:
    """``"auto"``: Adam's tol per feature is TOL_FAST (one-layer KL) or TOL, times
    ``min(1, learnable / LEARNABLE_REF)``; L-BFGS's, 1e-4 on the gradient."""
    if params["tol"] != "auto":
        return float(params["tol"])
    if params["solver"] != "adam":
        return TOL_LBFGS
    base = TOL_FAST if _fast_schedule(params, hidden) else TOL
    return base * min(1.0, facts.learnable(loss, output_activation) / LEARNABLE_REF)


def _learnt_loss(params, facts: DataFacts, loss: str, output_activation: str) -> float:
    """With ``tol="auto"``, the training loss :math:`J` below which a plateau may be
    declared: the mean predictor's, less ``LEARNT_FRACTION`` of what it leaves to
    learn; an explicit ``tol`` is MLPRegressor's rule as written (inf: no guard)."""
    if params["tol"] != "auto":
        return math.inf
    mean_loss = facts.mean_loss(loss, output_activation)
    learnable = facts.learnable(loss, output_activation)
    return facts.n_features * (mean_loss - LEARNT_FRACTION * learnable)


def _max_iter(params, hidden) -> int:
    """``"auto"``: LBFGS_MAX_ITER iterations for L-BFGS; for Adam ADAM_MAX_ITER epochs,
    STACKED_MAX_ITER behind hidden layers (a stacked model leaves its plateau at the
    mean slowly). A fit that converges earlier stops there."""
    if params["max_iter"] != "auto":
        return int(params["max_iter"])
    if params["solver"] != "adam":
        return LBFGS_MAX_ITER
    return STACKED_MAX_ITER if hidden else ADAM_MAX_ITER


def _training_dtype(params, facts: DataFacts, device_type: str) -> str:
    """``"auto"``: float32 for Adam, the data's dtype for L-BFGS (float32 on MPS)."""
    chosen = params["training_dtype"]
    if chosen == "float64" and device_type == "mps":
        raise ValueError(
            "training_dtype='float64' is not available on an MPS device (it has no "
            "float64); use training_dtype='auto' or 'float32', or device='cpu'."
        )
    if chosen == "auto":
        chosen = "float32" if params["solver"] == "adam" else facts.dtype.name
    return "float32" if device_type == "mps" else chosen


def resolve(
    params: dict,
    facts: DataFacts,
    *,
    fitted_loss: str | None = None,
    device_type: str = "cpu",
    one_epoch: bool = False,
) -> Resolved:
    """Decide every ``"auto"`` of ``params`` (``get_params()``) for data ``facts``.

    ``fitted_loss`` is the loss of the model a continued fit resumes (it keeps it);
    ``one_epoch``: a ``partial_fit`` call (no validation split).
    Raises ValueError for values that cannot work together (k above
    ``n_components``, bad ``matryoshka_widths``, float64 on MPS).
    """
    sparsity, solver = params["sparsity"], params["solver"]
    reg = regime(sparsity, params["activation"])
    loss = _loss(params, facts, fitted_loss, reg)
    output = params["output_activation"]
    if output == "auto":
        output = "sigmoid" if loss == "bce" else "linear"
    n_train = facts.n_samples
    if params["early_stopping"] and not one_epoch:
        n_train -= max(1, round(params["validation_fraction"] * facts.n_samples))
    hidden = _hidden_sizes(params, facts.n_features, reg)
    if solver == "adam":
        batch_size = _batch_size(
            params,
            max(1, n_train),
            bool(hidden) and reg == "bounded code",
            small_steps=not _fast_schedule(params, hidden),
        )
    else:  # L-BFGS: the full batch
        batch_size = max(1, n_train)
    target = params["sparsity_target"]
    if target == "auto":  # narrow codes keep about three units active
        cap = STACKED_TARGET_CAP if hidden else TARGET_CAP
        target = min(cap, max(0.05, 3.0 / params["n_components"]))
    weight = params["sparsity_weight"]
    steer = weight == "auto" and mechanism(sparsity).steers_target and solver == "adam"
    if weight == "auto":
        weight = mechanism(sparsity).default_weight
    return Resolved(
        regime=reg,
        loss=loss,
        output_activation=output,
        hidden_layer_sizes=hidden,
        k=_k(params),
        matryoshka_widths=_matryoshka_widths(params),
        sparsity_target=float(target),
        sparsity_weight=float(weight),
        steer_sparsity=steer,
        noise=_noise(params, facts, reg),
        noise_type=params["noise_type"],
        code_scaling=_code_scaling(params, reg),
        learning_rate=_learning_rate(params, facts.n_features, reg, hidden),
        tol=_tol(params, facts, loss, output, hidden),
        n_iter_no_change=_patience(params, max(1, n_train), batch_size, hidden),
        batch_size=batch_size,
        training_dtype=_training_dtype(params, facts, device_type),
        learnt_loss=_learnt_loss(params, facts, loss, output),
        max_iter=_max_iter(params, hidden),
    )


#: The user guide's table: one row per regime, one column per ``"auto"`` parameter.
TABLE_COLUMNS = (
    "hidden_layer_sizes",
    "loss",
    "noise",
    "code_scaling",
    "learning_rate",
    "tol",
    "n_iter_no_change",
    "batch_size",
    "max_iter",
)
_EPOCHS = f"{ADAM_MAX_ITER} epochs, {STACKED_MAX_ITER} behind hidden layers"
_BOUNDED = {
    "hidden_layer_sizes": f"narrow: `(min(2·n_features, {NARROW_HIDDEN_MAX}),)`, else `()`",
    "loss": "`bce` on X in [0, 1], else `mse`",
    "noise": f"masking {AUTO_MASKING} if rows have ≥ {MASKING_MIN_NONZEROS:g} non-zeros, else 0",
    "code_scaling": "`mean`",
    "max_iter": _EPOCHS,
}
_SLOW = {
    "tol": f"{TOL:g} × min(1, learnable / {LEARNABLE_REF:g})",
    "n_iter_no_change": f"10 epochs, ≥ {PATIENCE_STEPS} steps",
}
_SMALL = f"; under {SMALL_TABLE_ROWS} rows ⌈n_samples / {SMALL_TABLE_STEPS}⌉, ≥ {SMALL_BATCH_MIN}"
_BATCH = "n_samples // 100 in [200, 1000]" + _SMALL
_STACKED_BATCH = f"n_samples // 100 in [{STACKED_BATCH_MIN}, 1000]" + _SMALL
_KL_STEP = "0.02·√(64/n_features) in [3e-3, 0.02]"
_RAW = {
    "hidden_layer_sizes": "`()`",
    "loss": "`mse`",
    "noise": "0",
    "code_scaling": "None",
    "learning_rate": "1e-2",
    "max_iter": _EPOCHS,
}
TABLE_ROWS = {
    "bounded code: KL by Adam, no hidden layer": {
        **_BOUNDED,
        "learning_rate": _KL_STEP,
        "tol": f"{TOL_FAST:g} × min(1, learnable / {LEARNABLE_REF:g})",
        "n_iter_no_change": f"2 epochs, ≥ {PATIENCE_STEPS} steps",
        "batch_size": "n_samples // 100 in [200, 1000]",
    },
    "bounded code: KL by Adam, one hidden layer": {
        **_BOUNDED,
        "learning_rate": _KL_STEP,
        **_SLOW,
        "batch_size": _STACKED_BATCH,
    },
    "bounded code: other stacked (deeper KL, L1, none)": {
        **_BOUNDED,
        "learning_rate": "3e-3",
        **_SLOW,
        "batch_size": _STACKED_BATCH,
    },
    "bounded code: L1 or none, no hidden layer": {
        **_BOUNDED,
        "learning_rate": "3e-3",
        **_SLOW,
        "batch_size": _BATCH,
    },
    "relu code: L1 or none": {**_RAW, **_SLOW, "batch_size": _BATCH},
    "sae: TopK, BatchTopK, JumpReLU": {**_RAW, **_SLOW, "batch_size": _BATCH},
    "L-BFGS (any code)": {
        "hidden_layer_sizes": "`()`",
        **dict.fromkeys(("loss", "noise", "code_scaling"), "as its code's row"),
        "learning_rate": "None",
        "tol": f"{TOL_LBFGS:g} (gradient)",
        "n_iter_no_change": "—",
        "batch_size": "— (full batch)",
        "max_iter": f"{LBFGS_MAX_ITER} iterations",
    },
}


def defaults_table() -> str:
    """The rule as a Markdown table (the user guide embeds exactly this)."""
    lines = [
        "| regime | " + " | ".join(f"`{c}`" for c in TABLE_COLUMNS) + " |",
        "|---" * (len(TABLE_COLUMNS) + 1) + "|",
    ]
    for name, row in TABLE_ROWS.items():
        lines.append(f"| {name} | " + " | ".join(row[c] for c in TABLE_COLUMNS) + " |")
    return "\n".join(lines)
