"""The scikit-learn estimator: parameters, validation and orchestration only.

``fit`` is: validate, build or restore the module, :func:`._training.train`, commit.
The math lives in :mod:`._sparsity` and :mod:`._objective`, the network in
:mod:`._model`, training in :mod:`._training`, the fitted diagnostics in
:mod:`._diagnostics`, devices and threads in :mod:`._device`.
"""

from __future__ import annotations

import contextlib
import copy
import pathlib
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._available_if import available_if
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._arrays import (
    as_numpy_or_tensor,
    check_same_namespace,
    input_namespace,
    is_torch,
    to_host,
    to_namespace,
)
from ._defaults import Resolved, data_facts, resolve
from ._device import (
    num_threads,
    resolve_device,
    threads_for,
    to_numpy,
    to_tensor,
    torch_dtype,
)
from ._diagnostics import (
    FitQualityWarning,
    fit_quality_problems,
    fitted_diagnostics,
    warn_at_caller,
)
from ._model import SparseAutoencoder
from ._objective import Objective
from ._persistence import loadable_state, portable_state
from ._rows import as_rows
from ._sparsity import ACTIVATIONS, SPARSITY, activity_threshold, mechanism
from ._training import Schedule, TrainState, train

__all__ = ["SparseAutoencoderTransformer"]

_FLOAT_DTYPES = (np.float64, np.float32)


def _n_values(X) -> int:
    """Entries of ``X``, dense or sparse (a sparse matrix's ``size`` is its nnz)."""
    return X.shape[0] * X.shape[1]


class SparseAutoencoderTransformer(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    r"""Sparse autoencoder as a scikit-learn transformer, trained with PyTorch.

    ``transform`` returns the sparse code :math:`h` of each sample (shape
    ``(n_samples, n_components)``; each unit divided by its mean absolute training
    code with the default ``code_scaling="mean"``), ``inverse_transform`` decodes codes back to
    the input space, and ``score`` is the negative mean squared reconstruction
    error, so that it can replace :class:`~sklearn.decomposition.PCA` in a
    :class:`~sklearn.pipeline.Pipeline` and be tuned by
    :class:`~sklearn.model_selection.GridSearchCV` with no ``scoring``.

    The model minimises, over minibatches of ``m`` samples,

    .. math::

        J = \frac{1}{m}\sum_i \ell(x_i, \hat x_i) + \beta\,\Omega(h)
            + \frac{\lambda}{2}\sum_l \|W_l\|_F^2

    where :math:`\ell` is half the squared error summed over features
    (``loss="mse"``, the UFLDL cost) or the binary cross-entropy summed over
    features (``loss="bce"``), :math:`\beta` is ``sparsity_weight``,
    :math:`\lambda` is ``weight_decay``, and the sparsity term :math:`\Omega` is

    - ``"kl"``: :math:`\sum_j \rho\log\frac{\rho}{\hat\rho_j} + (1-\rho)\log\frac{1-\rho}{1-\hat\rho_j}`,
      :math:`\hat\rho_j` the mean activation of unit ``j`` over the batch and
      :math:`\rho` the ``sparsity_target`` (Ng's sparse autoencoder). It needs a
      code in (0, 1): a sigmoid code is used as is, a tanh code :math:`h` as
      :math:`(1 + h)/2`; a ReLU code is rejected.
    - ``"l1"``: :math:`\frac{1}{m}\sum_i\sum_j |h_{ij}|` (Keras' L1 activity
      regulariser).
    - ``"topk"``: no penalty; the code keeps the ``k`` largest pre-activations of
      each sample, ReLU'd, and zeros the rest (Gao et al. 2024), with unit-norm
      decoder rows, a data-initialised pre-encoder bias and the AuxK loss that
      revives dead units.
    - ``"batchtopk"``: as ``"topk"``, but training keeps the ``k * m`` largest
      activations of the whole batch of ``m`` samples, so that ``k`` is the
      average number of active units per sample (Bussmann et al. 2024). After
      training the code of each sample is its own: the pre-activations above
      ``threshold_``, a running estimate of the smallest activation training
      kept.
    - ``"jumprelu"``: :math:`\Omega = \frac{1}{m}\sum_i \|h_i\|_0`, the mean
      number of active units, with the code :math:`h = z \cdot 1[z > \theta]` of
      a learned threshold :math:`\theta_j` per unit (``threshold_``), trained
      through straight-through gradients (Rajamanoharan et al. 2024); with TopK's
      decoder, pre-encoder bias and AuxK.
    - ``None``: a plain (possibly denoising) autoencoder.

    Parameters
    ----------
    n_components : int, default=128
        Size of the code (the number of output features of ``transform``). It may
        exceed ``n_features`` (an over-complete code).

    hidden_layer_sizes : tuple of int or "auto", default="auto"
        Sizes of extra encoder layers between the input and the code (a stacked
        autoencoder). The decoder mirrors them in reverse order. ``"auto"``: none,
        except for a narrow bounded code trained by Adam (a sigmoid or tanh code of
        at most 32 units, fewer than ``n_features``: PCA's use), which is learnt
        behind one hidden layer of ``min(2 n_features, 256)`` units; a single layer
        of a few sigmoid units cannot bend, and loses to PCA. Give ``()`` for a
        single layer (``components_`` then in the units of ``X``).
        ``hidden_layer_sizes_`` holds the sizes used.

    activation : {"sigmoid", "tanh", "relu"}, default="sigmoid"
        Non-linearity of the code and the hidden layers. With
        ``sparsity="topk"`` the code is ReLU(TopK) and this applies to hidden
        layers only.

    output_activation : {"auto", "linear", "sigmoid"}, default="auto"
        Non-linearity of the reconstruction. ``"auto"`` means ``"sigmoid"`` for
        cross-entropy and ``"linear"`` otherwise.

    loss : {"auto", "mse", "bce"}, default="auto"
        Reconstruction loss. ``"bce"`` needs ``X`` in ``[0, 1]`` and a sigmoid
        output. ``"auto"`` chooses at the first fit: ``"bce"`` when every value of
        ``X`` lies in ``[0, 1]`` (and the output may be a sigmoid), ``"mse"``
        otherwise; ``loss_`` says which.

    sparsity : {"kl", "l1", "topk", "batchtopk", "jumprelu"} or None, default="kl"
        Sparsity mechanism, see above.

    sparsity_target : float or "auto", default="auto"
        :math:`\rho`, the target mean activation for ``sparsity="kl"``, in (0, 1).
        ``"auto"``: 0.05, or ``3 / n_components`` when that is larger (a narrow
        code keeps about three units active per sample), at most 0.5 (0.3 behind
        hidden layers). ``sparsity_target_`` holds the value used.

    sparsity_weight : float or "auto", default="auto"
        :math:`\beta`, the weight of the KL or L1 penalty. ``"auto"``: for KL
        trained by Adam, the weight is steered after each epoch,
        :math:`\beta \leftarrow \beta(\hat\rho/\rho)^{0.5}` from 1, so that the
        mean activation meets ``sparsity_target`` (within about 30 %), and the code
        biases start where the code meets it; training does not stop before the
        target is met (within 10 % on the training batches). With L-BFGS it is 1;
        for L1, 0.1; for JumpReLU, 0.3. ``sparsity_weight_`` holds the final value.
        A number fixes :math:`\beta` (the UFLDL recipe: 3; Keras' ``l1(c)``: ``c``).
        For JumpReLU, :math:`\beta` is the reconstruction cost (half the squared
        error summed over features, of ``X`` standardised to unit RMS) that one more
        active unit per sample must save: on digits, 0.03 to 1 spans about 23 to
        4 active units (256 units, 200 epochs).

    k : int, default=None
        Active units per sample for ``sparsity="topk"`` (on average, for
        ``"batchtopk"``), ``1 <= k <= n_components``. ``None`` means
        ``max(1, n_components // 8)``.

    matryoshka_widths : tuple of int, default=None
        Increasing widths :math:`m_1 < m_2 < \dots` below ``n_components`` of
        nested dictionaries (Matryoshka SAEs, Bussmann et al. 2025): the
        reconstruction term is the mean of the reconstruction losses of the code
        truncated to its first :math:`m_g` units and of the whole code, so that the
        first units form a good small dictionary on their own. With
        ``sparsity`` ``"l1"``, ``"topk"``, ``"batchtopk"`` or ``"jumprelu"``. None:
        the whole code only.

    weight_decay : float, default=1e-4
        :math:`\lambda`, the L2 penalty on weights (not biases).

    noise : float or "auto", default="auto"
        Corruption level for a denoising autoencoder: the standard deviation of
        Gaussian noise, or the probability that an entry is masked to 0. The
        corruption is drawn during training only; ``transform`` is deterministic.
        ``0`` trains a plain autoencoder. ``"auto"``: 0.2 for a sigmoid or tanh code
        on rows with at least 8 non-zero entries on average (masking a one-hot row
        erases it), else 0 (ReLU, TopK, BatchTopK and JumpReLU codes: the field's
        practice). ``noise_`` holds the value used.

    noise_type : {"gaussian", "masking"}, default="masking"
        Kind of corruption when ``noise > 0``.

    tied_weights : bool, default=False
        If True, each decoder weight matrix is the transpose of the encoder's.

    solver : {"adam", "lbfgs"}, default="adam"
        ``"adam"``: minibatch Adam. ``"lbfgs"``: full-batch L-BFGS with a
        strong-Wolfe line search (the UFLDL recipe; not with ``"topk"``).

    learning_rate : float or "auto", default="auto"
        Adam's step size. ``"auto"``: for a ``sparsity="kl"`` code behind at most
        one hidden layer,
        :math:`0.02\sqrt{64 / n_{features}}` kept within [3e-3, 0.02] (0.02 on
        digits, 0.0057 on 784 pixels); 1e-2 for ReLU-type codes (ReLU, TopK,
        BatchTopK, JumpReLU); 3e-3 otherwise (see Notes). ``learning_rate_`` holds
        the value used.

    learning_rate_schedule : {"plateau", "constant"}, default="plateau"
        ``"plateau"``: when the loss stops improving (see ``tol``), divide the step
        size by 10, at most twice, then stop; ``"constant"``: stop at the first
        plateau, as ``MLPRegressor`` does.

    batch_size : int or "auto", default="auto"
        Minibatch size for Adam; ``"auto"`` is ``n_samples // 100`` kept within
        200 and 1000, and at most ``n_samples``: 200 rows up to 20000 samples, then
        larger batches, whose matrix products run closer to the machine's rate,
        with at least 100 steps an epoch up to 100000 samples. Larger values are
        clipped to ``n_samples``.

    max_iter : int or "auto", default="auto"
        Epochs for Adam, iterations for L-BFGS. ``"auto"``: 500 epochs for
        Adam, 1000 behind hidden layers (``hidden_layer_sizes_`` not empty); 200
        iterations for L-BFGS. A fit stops earlier when it converges; with 200
        epochs (``MLPRegressor``'s) narrow codes on standardised data, small
        tables and L1, TopK and JumpReLU codes ran out still improving.

    tol : float or "auto", default="auto"
        A plateau (Adam) is more than ``n_iter_no_change`` consecutive epochs in
        which the training loss per feature (:math:`J / n_{features}`, the scale
        of ``MLPRegressor``'s loss) or, with early stopping, the validation
        score (a mean squared error) has not improved by ``tol``. L-BFGS stops
        when the largest gradient entry falls below ``tol``. ``"auto"`` for Adam:
        1e-3 (one-layer KL) or 1e-4, times :math:`\min(1, L / 0.21)` where
        :math:`L` is the loss per feature a model predicting each feature's mean
        leaves to learn (0.21 on digits / 16 under cross-entropy, 1/2 on
        standardised data, 0.09 on a small TF-IDF matrix), and no plateau before
        the loss is a tenth of the way below the mean predictor's; for L-BFGS,
        1e-4 (see Notes). ``tol_`` holds the value used.

    n_iter_no_change : int or "auto", default="auto"
        Epochs without improvement tolerated before a plateau (Adam). ``"auto"``:
        2 for a one-layer ``sparsity="kl"`` code, else 10, and at least 14 Adam
        steps (a small data set makes few steps an epoch). ``n_iter_no_change_``
        holds the value used.

    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data, stop on its
        score and restore the best weights (Adam). ``partial_fit`` ignores it:
        each call is one pass over the block it is given.

    validation_fraction : float, default=0.1
        Fraction of the training data held out for early stopping.

    code_scaling : {"auto", "mean", "rms"} or None, default="auto"
        What ``transform`` divides each unit's code by (``code_scale_``), so that
        a downstream model tuned for PCA's output gets features it can use; zeros
        stay zeros, and ``inverse_transform`` undoes it. ``"mean"``: the unit's
        mean absolute code on the training data, so that 1 is the unit's average
        activity (a sparse unit's active samples reach many times that, as PCA's
        leading components reach many times a unit scale); ``"rms"``: its root
        mean square (unit-RMS features); None: the raw code. ``"auto"``: ``"mean"``
        for sigmoid and tanh codes, whose range is the activation's; None for
        ReLU-type codes, whose size is what the sparsity penalty shaped (so that
        ``transform(X).mean()`` shows it). ``code_scaling_`` holds the value used.

    training_dtype : {"auto", "float32", "float64"}, default="auto"
        Floating-point precision of the training arithmetic. ``"auto"``: float32
        for ``solver="adam"`` (a minibatch gradient is noisier than float32's
        rounding; on digits an epoch costs 0.6 times a float64 one on a CPU, on a
        GPU far less) and the dtype of ``X`` for ``solver="lbfgs"`` (its line
        search compares nearly equal objective values). The fitted model is kept,
        and ``transform`` computes, in the dtype of the ``X`` it was last trained
        on, either way. MPS has no float64.

    device : str, default="auto"
        ``"auto"`` (CUDA if available, else MPS, else CPU), ``"cpu"``,
        ``"cuda"``, ``"cuda:N"`` or ``"mps"``. Resolved in ``fit``; a device that
        is not present is an error.

    n_threads : int, default=None
        Torch CPU threads used while fitting and transforming. ``None`` picks
        one thread for small steps (under 3e7 floating point operations per
        step, where more threads only add overhead) and the caller's
        ``torch.get_num_threads()`` otherwise, less the cores other processes
        keep busy (read on Linux when the call starts: a thread on a busy core
        stalls every step). The caller's setting is restored afterwards.

    random_state : int, RandomState instance or None, default=None
        Seeds the weight initialisation, the epoch order, the noise and the
        validation split, through local ``torch.Generator`` objects (global
        seeds are never touched). An int gives identical refits.

    verbose : int, default=0
        ``1`` prints one line per epoch (loss, sparsity, seconds); ``2`` also
        shows a progress bar within long epochs (tqdm if installed).

    warm_start : bool, default=False
        If True, ``fit`` continues from the previous solution.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features_out_of_code)
        Decoder weights of the code layer; ``(n_components, n_features_in_)``
        when ``hidden_layer_sizes_`` is ``()``, as in PCA, and
        ``(n_components, hidden_layer_sizes_[-1])`` behind hidden layers.

    module_ : SparseAutoencoder
        The fitted :class:`torch.nn.Module`.

    device_ : str
        The device the model lives on, e.g. ``"cpu"`` or ``"cuda:0"``.

    n_features_in_ : int
        Number of features seen during ``fit``.

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during ``fit``, when ``X`` has string column names.

    n_iter_ : int
        Epochs (Adam) or iterations (L-BFGS) run.

    loss_curve_ : list of float
        Training objective :math:`J` per epoch (or iteration).

    mean_activation_curve_ : list of float or None
        Mean activation of the code per epoch, averaged over the epoch's batches
        (of the corrupted inputs, when denoising; the codes the sparsity penalty
        saw), before any ``code_scale_``. None with ``solver="lbfgs"``.

    validation_scores_ : list of float or None
        With ``early_stopping=True``, the negative mean squared reconstruction
        error of the held-out data after each epoch, else None. It is computed on
        the scale the loss uses (``X`` standardised by one global scale for a
        linear output, unchanged for a sigmoid one), so that ``tol`` means the
        same for it as for the training loss whatever the units of ``X``.

    best_validation_score_ : float or None
        Best of ``validation_scores_``.

    loss_ : {"mse", "bce"}
        The reconstruction loss used (``loss="auto"`` resolved).

    learning_rate_ : float or None
        Adam's initial step size (``learning_rate="auto"`` resolved; the
        ``"plateau"`` schedule divides it during training); None for L-BFGS.

    noise_, code_scaling_, tol_ : float, str or None
        ``noise``, ``code_scaling`` and ``tol`` as used (``"auto"`` resolved).

    hidden_layer_sizes_ : tuple of int
        The hidden layers used (``hidden_layer_sizes="auto"`` resolved).

    n_iter_no_change_, batch_size_ : int or None
        ``n_iter_no_change`` and ``batch_size`` as used; None for L-BFGS.

    max_iter_ : int
        ``max_iter`` as used (``"auto"`` resolved): epochs for Adam, iterations
        for L-BFGS.

    sparsity_target_ : float
        The target mean activation used (``sparsity_target="auto"`` resolved).

    sparsity_weight_ : float
        The sparsity weight at the end of training (steered when
        ``sparsity_weight="auto"``).

    code_scale_ : ndarray of shape (n_components,)
        What ``transform`` divides each unit's code by: its mean absolute value
        (``code_scaling="mean"``) or RMS (``"rms"``) on the training data (1 for a
        unit that is always 0), else 1.

    reconstruction_err_ : float
        Mean squared reconstruction error on the training data,
        :math:`\frac{1}{n d}\sum_{i,f}(\hat x_{if} - x_{if})^2` (equals ``-score``).

    fraction_variance_unexplained_ : float
        :math:`\sum_{i,f}(\hat x_{if} - x_{if})^2 / \sum_{i,f}(x_{if} - \bar x_f)^2`
        on the training data: 0 is perfect, 1 is no better than the mean.

    mean_activation_ : ndarray of shape (n_components,)
        :math:`\hat\rho_j = \frac{1}{n}\sum_i h_{ij}`, the mean code value of each
        unit on the training data (for a tanh code, in (-1, 1), not the
        :math:`(1 + h)/2` the KL penalty sees).

    mean_l0_ : float
        :math:`\frac{1}{n}\sum_i \sum_j [h_{ij} > t]`, the mean number of active
        units per training sample. A unit is active when its code exceeds the
        activation's midpoint :math:`t`: 0.5 for a sigmoid code, 0 for tanh, ReLU
        and TopK codes (a TopK code has ``mean_l0_ <= k``).

    fraction_variance_explained_ : float
        ``1 - fraction_variance_unexplained_`` (the "explained variance" SAE papers
        report).

    shrinkage_ : float
        :math:`\sqrt{\sum_i \|\hat x_i - \bar x\|^2 / \sum_i \|x_i - \bar x\|^2}`
        on the training data: the norm of the reconstructions relative to that of
        the inputs, about their mean. Below 1 the code shrinks (as an L1 penalty
        does); 1 for a perfect reconstruction.

    dead_fraction_ : float
        The fraction of ``dead_components_``.

    threshold_ : float or ndarray of shape (n_components,)
        Only for ``sparsity="batchtopk"`` (a float) and ``"jumprelu"`` (one per
        unit): the learned threshold above which a unit's raw code (before
        ``code_scale_``) is kept.

    dead_components_ : ndarray of shape (n_components,), dtype=bool
        :math:`\max_i h_{ij} - \min_i h_{ij} \le 10^{-6}`: units whose code is
        the same on every training sample, so that they carry no information.
        For ReLU and TopK codes these are the units that never fire; for sigmoid
        and tanh codes, the saturated ones. (A working sigmoid unit of a KL code
        with a small target may never exceed 0.5, so "never active" in the sense
        of ``mean_l0_`` would wrongly call it dead.)

    See Also
    --------
    sklearn.decomposition.PCA : Linear, dense, orthogonal components.
    sklearn.decomposition.MiniBatchDictionaryLearning : Sparse codes by lasso.
    sklearn.neural_network.BernoulliRBM : Another learned non-linear feature map.

    Notes
    -----
    **Defaults.** Every ``"auto"`` is resolved once per fit by
    :func:`skl_sparse_ae._defaults.resolve`, by the regime of the code (the user
    guide has the table). A one-layer KL code (the default) is trained by Adam with
    a step of 0.02 on 64 features, ``tol`` 1e-3 per feature (less on data with
    little to learn) and a patience of 2: on digits the fit converges in about 30 epochs with the linear
    probe of a 160-epoch schedule, in about the time of ``BernoulliRBM`` at the
    same width (``benchmarks/bench_defaults.py``). The step shrinks as
    :math:`1/\sqrt{n_{features}}` (one-hot digits, 1088 features: probe 0.75 at
    0.02, 0.86 at 0.005). ReLU-type codes (L1 with ReLU, TopK, BatchTopK,
    JumpReLU) take the field's squared error on clean inputs, a step of 1e-2 and
    raw codes: on digits their units all stay alive and they converge. Other
    codes take 3e-3, 1e-4 and 10. L-BFGS uses ``tol=1e-4``.
    A fit that is of little use (no better than the mean, an empty code, many
    dead units) raises a :class:`~skl_sparse_ae.FitQualityWarning`.

    References
    ----------
    A. Ng, "Sparse autoencoder", CS294A lecture notes (UFLDL), 2011.
    L. Gao et al., "Scaling and evaluating sparse autoencoders", 2024.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skl_sparse_ae import SparseAutoencoderTransformer
    >>> X = load_digits().data / 16.0
    >>> sae = SparseAutoencoderTransformer(n_components=32, max_iter=5, random_state=0)
    >>> codes = sae.fit_transform(X)
    >>> codes.shape
    (1797, 32)
    >>> sae.inverse_transform(codes).shape
    (1797, 64)
    """

    # The HTML repr's "?" opens this class's page of the documentation site built from
    # the checkout the package is installed from (pip install -e; README "Documentation"
    # builds it into docs/_build/html): there is no hosted site to point at.
    _doc_link_module = "skl_sparse_ae"
    _doc_link_template = (
        pathlib.Path(__file__).resolve().parents[1].joinpath("docs", "_build", "html").as_uri()
        + "/generated/{estimator_module}.{estimator_name}.html"
    )

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": [
            StrOptions({"auto"}),
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        # live views of the registries: a registered option is a valid value
        "activation": [StrOptions(ACTIVATIONS.keys())],
        "output_activation": [StrOptions({"auto", "linear", "sigmoid"})],
        "loss": [StrOptions({"auto", "mse", "bce"})],
        "sparsity": [StrOptions(SPARSITY.keys()), None],
        "sparsity_target": [Interval(Real, 0, 1, closed="neither"), StrOptions({"auto"})],
        "sparsity_weight": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "k": [Interval(Integral, 1, None, closed="left"), None],
        "matryoshka_widths": ["array-like", None],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "noise": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "noise_type": [StrOptions({"gaussian", "masking"})],
        "tied_weights": ["boolean"],
        "solver": [StrOptions({"adam", "lbfgs"})],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "learning_rate_schedule": [StrOptions({"plateau", "constant"})],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "max_iter": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "tol": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "code_scaling": [StrOptions({"auto", "mean", "rms"}), None],
        "training_dtype": [StrOptions({"auto", "float32", "float64"})],
        "device": [str],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
    }

    def __init__(
        self,
        n_components=128,
        *,
        hidden_layer_sizes="auto",
        activation="sigmoid",
        output_activation="auto",
        loss="auto",
        sparsity="kl",
        sparsity_target="auto",
        sparsity_weight="auto",
        k=None,
        matryoshka_widths=None,
        weight_decay=1e-4,
        noise="auto",
        noise_type="masking",
        tied_weights=False,
        solver="adam",
        learning_rate="auto",
        learning_rate_schedule="plateau",
        batch_size="auto",
        max_iter="auto",
        tol="auto",
        n_iter_no_change="auto",
        early_stopping=False,
        validation_fraction=0.1,
        code_scaling="auto",
        training_dtype="auto",
        device="auto",
        n_threads=None,
        random_state=None,
        verbose=0,
        warm_start=False,
    ):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.output_activation = output_activation
        self.loss = loss
        self.sparsity = sparsity
        self.sparsity_target = sparsity_target
        self.sparsity_weight = sparsity_weight
        self.k = k
        self.matryoshka_widths = matryoshka_widths
        self.weight_decay = weight_decay
        self.noise = noise
        self.noise_type = noise_type
        self.tied_weights = tied_weights
        self.solver = solver
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.code_scaling = code_scaling
        self.training_dtype = training_dtype
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    # ------------------------------------------------------------------ helpers
    @contextlib.contextmanager
    def _restore_on_error(self):
        """Leave the estimator exactly as it was if the block raises.

        Fitted objects are never mutated in place (training runs on copies), so a
        shallow snapshot of ``__dict__`` is a complete one.
        """
        saved = dict(self.__dict__)
        try:
            yield
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    def _config(
        self, X, continuing: bool = False, device_type: str = "cpu", incremental: bool = False
    ) -> Resolved:
        """Every ``"auto"`` resolved for training data ``X`` (:func:`._defaults.resolve`).

        A continued fit keeps the loss its model was fitted with.
        """
        fitted_loss = getattr(self, "loss_", None) if continuing else None
        return resolve(
            self.get_params(deep=False),
            data_facts(X),
            fitted_loss=fitted_loss,
            device_type=device_type,
            one_epoch=incremental,
        )

    def _check_config(self) -> None:
        """Rules that involve several parameters (single values are checked by
        ``_parameter_constraints``)."""
        mech = mechanism(self.sparsity)
        if not mech.accepts(ACTIVATIONS[self.activation]):
            allowed = sorted(name for name, act in ACTIVATIONS.items() if mech.accepts(act))
            others = " or ".join(
                repr(name)
                for name, m in SPARSITY.items()
                if m.accepts(ACTIVATIONS[self.activation])
            )
            raise ValueError(
                f"sparsity={self.sparsity!r} does not accept activation={self.activation!r}"
                f" (KL needs a code in (0, 1); a tanh code h enters it as (1 + h) / 2). "
                f"Use activation in {allowed}, or sparsity={others} for "
                f"{self.activation!r} codes."
            )
        if self.loss == "bce" and self.output_activation == "linear":
            raise ValueError(
                "loss='bce' needs a reconstruction in (0, 1): use output_activation="
                f"'sigmoid' or 'auto'; got output_activation={self.output_activation!r}."
            )
        if self.noise_type == "masking" and self.noise != "auto" and self.noise >= 1:
            raise ValueError(
                "With noise_type='masking', noise is the probability of masking an "
                f"entry and must be < 1; got noise={self.noise!r}."
            )
        if self.solver == "lbfgs" and not mech.supports_lbfgs:
            raise ValueError(
                f"solver='lbfgs' does not support sparsity={self.sparsity!r} (its "
                "training needs a first-order step); use solver='adam'."
            )

    def _check_X_range(self, X, loss: str) -> None:
        if loss == "bce" and _n_values(X) and (X.min() < 0 or X.max() > 1):
            chosen = " (chosen by loss='auto' at the first fit)" if self.loss == "auto" else ""
            raise ValueError(
                f"loss='bce'{chosen} needs X in [0, 1] (it is a cross-entropy between "
                f"probabilities); X has values in [{X.min():.4g}, {X.max():.4g}]. "
                "Scale X (for example with MinMaxScaler) or use loss='mse'."
            )

    def _objective(self, config: Resolved, n_features: int) -> Objective:
        auxk = mechanism(self.sparsity).unit_norm_decoder  # dead units are counted
        return Objective(
            loss=config.loss,
            sparsity=self.sparsity,
            sparsity_target=config.sparsity_target,
            sparsity_weight=config.sparsity_weight,
            weight_decay=float(self.weight_decay),
            k_aux=min(max(1, n_features // 2), self.n_components) if auxk else 0,
            dead_after=None,  # one pass over the training rows
            matryoshka_widths=config.matryoshka_widths,
        )

    def _schedule(self, config: Resolved, incremental: bool) -> Schedule:
        return Schedule(
            solver=self.solver,
            learning_rate=config.learning_rate,
            learning_rate_schedule=self.learning_rate_schedule,
            batch_size=config.batch_size,
            max_iter=config.max_iter,
            tol=config.tol,
            n_iter_no_change=config.n_iter_no_change,
            early_stopping=bool(self.early_stopping),
            validation_fraction=float(self.validation_fraction),
            noise=config.noise,
            noise_type=config.noise_type,
            one_epoch=incremental,
            steer_sparsity=config.steer_sparsity,
            n_threads=self.n_threads,
            verbose=int(self.verbose),
            learnt_loss=config.learnt_loss,
        )

    def _inference_rows(self, module: SparseAutoencoder) -> int:
        """Rows per inference chunk: bounded memory, independent of ``n_samples``."""
        return max(256, 2**21 // max(module.sizes))

    def _map_batches(self, X, fn, out_width: int, out_dtype):
        """Apply ``fn`` (tensor -> tensor) to fixed-size chunks of ``X`` (a sparse
        ``X`` is densified one chunk at a time).

        A numpy or sparse ``X`` gives a numpy array of ``out_dtype``; a torch tensor
        gives a tensor on its device, of ``out_dtype`` (a numpy or torch dtype), its
        chunks moved between devices only if the module lives elsewhere.
        """
        module = self.module_
        device = next(module.parameters()).device
        dtype = next(module.parameters()).dtype
        rows = self._inference_rows(module)
        if isinstance(X, torch.Tensor):
            if not isinstance(out_dtype, torch.dtype):
                out_dtype = torch_dtype(out_dtype, X.device)
            out = torch.empty((X.shape[0], out_width), dtype=out_dtype, device=X.device)
        else:
            out = np.empty((X.shape[0], out_width), dtype=out_dtype)
        threads = threads_for(module.sizes, min(rows, X.shape[0]), self.n_threads, training=False)
        with num_threads(threads):
            with torch.inference_mode():
                for start in range(0, X.shape[0], rows):
                    block = X[start : start + rows]
                    if isinstance(out, torch.Tensor):
                        out[start : start + rows].copy_(fn(block.to(device=device, dtype=dtype)))
                        continue
                    block = block.toarray() if sp.issparse(block) else block
                    chunk = to_tensor(block, device, dtype)
                    out[start : start + rows] = to_numpy(fn(chunk), out_dtype)
        return out

    def _validated(self, X, method: str):
        """``X`` validated for an inference ``method``, and the namespace and device of
        its results (``None``: numpy).

        With array API dispatch a torch tensor stays a tensor on its device; the
        arrays of other namespaces, and every input without dispatch, are read as numpy
        (:mod:`._arrays`). As in scikit-learn, with dispatch ``X`` must come from the
        namespace and device of ``fit``'s.
        """
        check_is_fitted(self)
        check_same_namespace(X, self, attribute="components_", method=method)
        xp, device = input_namespace(X)
        if is_torch(xp):
            X, dtype = X.detach(), [xp.float64, xp.float32]
        else:
            X, dtype = to_host(X, xp), _FLOAT_DTYPES
        if method == "inverse_transform":  # codes: not the features fit saw
            X = check_array(X, accept_sparse="csr", dtype=dtype, input_name="X")
        else:
            X = validate_data(self, X, accept_sparse="csr", dtype=dtype, reset=False)
        return X, xp, device

    @staticmethod
    def _result(out, xp, device):
        """A method's result in the namespace and on the device of its input."""
        if xp is None or isinstance(out, torch.Tensor):
            return out
        return to_namespace(out, xp, device)

    def _code_scale_tensor(self) -> torch.Tensor:
        """``code_scale_`` where the module computes (ones for models without it)."""
        param = next(self.module_.parameters())
        scale = getattr(self, "code_scale_", None)
        if scale is None:
            return torch.ones((), device=param.device, dtype=param.dtype)
        scale = as_numpy_or_tensor(scale)  # (an array of fit's namespace)
        return torch.as_tensor(scale, device=param.device, dtype=param.dtype)

    def _squared_errors(self, X):
        """Per-sample mean squared reconstruction error."""
        return self._map_batches(
            X,
            lambda x: (self.module_(x).reconstruction - x).pow(2).mean(dim=1, keepdim=True),
            1,
            np.float64,
        )[:, 0]

    # ------------------------------------------------------------------ fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the autoencoder on ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. A sparse matrix stays sparse: each minibatch is
            densified on its own, so memory is bounded by the batch and the
            model (``solver="lbfgs"``, a full-batch method, densifies ``X``).
            A torch tensor is read in its dtype. With ``array_api_dispatch=True``
            the fitted arrays (``components_``, ``code_scale_``, ...) are of the
            namespace and device of ``X``.
        y : None
            Ignored.

        Returns
        -------
        self : SparseAutoencoderTransformer
            The fitted estimator.
        """
        with self._restore_on_error():
            self._fit(X, incremental=False)
        return self

    def _check_solver(self):
        if self.solver != "adam":
            raise AttributeError(
                f"partial_fit is only available with solver='adam' (minibatch), "
                f"not solver={self.solver!r}."
            )
        return True

    @available_if(_check_solver)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """One epoch of Adam over ``X``, continuing from the current state.

        The first call initialises the model and fixes ``n_features_in_``; later
        calls continue training (weights, Adam moments and random generators), so
        a stream of blocks can be learnt out of core.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            One block of training data.
        y : None
            Ignored.

        Returns
        -------
        self : SparseAutoencoderTransformer
            The updated estimator.
        """
        with self._restore_on_error():
            self._fit(X, incremental=True)
        return self

    def _fit(self, X, incremental: bool) -> None:
        """Validate, build or restore the module, train it, commit the result."""
        self._check_config()
        continuing = hasattr(self, "module_") and (incremental or self.warm_start)
        xp, device_X = input_namespace(X)  # training reads numpy, whatever X is
        X = validate_data(
            self,
            to_host(X, xp),
            accept_sparse="csr",
            dtype=_FLOAT_DTYPES,
            reset=not continuing,
            ensure_min_samples=2 if (self.early_stopping and not incremental) else 1,
        )
        device = resolve_device(self.device)
        config = self._config(X, continuing, device.type, incremental)
        self._check_X_range(X, config.loss)
        dtype = torch_dtype(np.dtype(config.training_dtype), device)
        if continuing:
            module, state = self._restore(X.shape[1], config, device, dtype)
        else:
            module, state = self._build(X.shape[1], config, device, dtype)
        Xt = as_rows(X, device, dtype)
        objective = self._objective(config, X.shape[1])
        result = train(module, Xt, objective, self._schedule(config, incremental), state)
        if Xt.dtype != torch_dtype(X.dtype, device):
            Xt = None  # the training copy goes before X is read again in its own dtype
        self._commit(module, result, X, device, config, Xt)
        if xp is not None:  # array API dispatch: fitted arrays follow X
            for key, value in list(vars(self).items()):
                if isinstance(value, np.ndarray):
                    setattr(self, key, to_namespace(value, xp, device_X))
        if incremental:
            return
        if not result.history.converged:
            warn_at_caller(
                f"{type(self).__name__} used up {result.history.exhausted} without "
                "converging; increase max_iter, or raise tol.",
                ConvergenceWarning,
            )
        problems = fit_quality_problems(
            self.fraction_variance_unexplained_,
            self.mean_l0_,
            self.dead_fraction_,
            self.components_.shape[0],
            zeros_mean_off=config.regime != "bounded code",
        )
        for problem in problems:
            warn_at_caller(
                f"{type(self).__name__}'s fit is of little use: {problem}.", FitQualityWarning
            )

    def _architecture(self, n_features: int, config: Resolved) -> dict:
        """The module's constructor arguments that the parameters determine."""
        return {
            "n_features": n_features,
            "n_components": self.n_components,
            "hidden_layer_sizes": config.hidden_layer_sizes,
            "activation": self.activation,
            "output_activation": config.output_activation,
            "sparsity": self.sparsity,
            "k": config.k,
            "tied_weights": bool(self.tied_weights),
        }

    def _build(self, n_features: int, config: Resolved, device: torch.device, dtype):
        """A new module (initialised from the data by ``train``) and a new train state."""
        arch = self._architecture(n_features, config)
        module = SparseAutoencoder(**arch, dtype=dtype, device=device)
        return module, TrainState.new(self.random_state, device)

    def _restore(self, n_features: int, config: Resolved, device: torch.device, dtype):
        """A copy of the fitted module on ``device``, in the training ``dtype``, and
        the state to continue from.

        The fitted objects are never trained in place, so that a failed call leaves
        the estimator as it was.
        """
        module = copy.deepcopy(self.module_).to(device=device, dtype=dtype)
        arch = self._architecture(n_features, config)
        same = module.sizes == (n_features, *arch["hidden_layer_sizes"], self.n_components) and all(
            getattr(module, key) == arch[key]
            for key in ("activation", "output_activation", "k", "tied_weights")
        )
        if not same or mechanism(module.sparsity).code is not mechanism(self.sparsity).code:
            raise ValueError(
                "The architecture parameters changed since the model was fitted "
                "(n_components, hidden_layer_sizes, activation, output_activation, "
                "sparsity/k or tied_weights); warm_start and partial_fit need the "
                "same ones. Set warm_start=False to train a new model."
            )
        state = TrainState(
            self._generator_states,
            self._optimizer_state,
            list(self.loss_curve_),
            self.n_iter_,
            list(getattr(self, "mean_activation_curve_", None) or []),
            sparsity_weight=getattr(self, "sparsity_weight_", None)
            if config.steer_sparsity
            else None,
            initialized=True,
        )
        return module, state

    def _commit(self, module, result, X, device: torch.device, config: Resolved, Xt=None) -> None:
        """Set every fitted attribute from a finished training run on ``X``.

        The module is kept in the dtype of ``X`` (whatever ``training_dtype`` was),
        so that the diagnostics, computed here on ``X``, are what ``transform``,
        ``inverse_transform`` and ``score`` give. ``Xt``, the training rows on
        ``device``, is reused when given (they are in that dtype: float32 data, or
        ``training_dtype="float64"``); else ``X`` is read to ``device`` in its own
        dtype. The diagnostics pass (:func:`._diagnostics.fitted_diagnostics`) may
        still raise a divergence error; ``_restore_on_error`` then undoes the whole
        commit.
        """
        history, state = result.history, result.state
        dtype = X.dtype
        module = module.to(dtype=torch_dtype(dtype, device))
        if Xt is None:
            Xt = as_rows(X, device, next(module.parameters()).dtype)
        self.module_ = module
        self.device_ = str(Xt.device)
        self._optimizer_state = state.optimizer_state
        self._generator_states = state.generator_states
        self.n_iter_ = history.n_iter
        self.loss_curve_ = history.loss_curve
        self.mean_activation_curve_ = history.mean_activation_curve
        self.validation_scores_ = history.validation_scores
        self.best_validation_score_ = history.best_validation_score
        self.sparsity_weight_ = result.objective.sparsity_weight
        self.sparsity_target_ = result.objective.sparsity_target
        self.loss_ = config.loss
        self.learning_rate_ = config.learning_rate
        self.noise_ = config.noise
        self.code_scaling_ = config.code_scaling
        self.hidden_layer_sizes_ = config.hidden_layer_sizes
        self.tol_ = config.tol
        self.n_iter_no_change_ = config.n_iter_no_change if self.solver == "adam" else None
        self.batch_size_ = config.batch_size if self.solver == "adam" else None
        self.max_iter_ = config.max_iter
        rows = self._inference_rows(module)
        threshold = activity_threshold(module.sparsity, module.activation)
        unit = "iteration" if self.solver == "lbfgs" else "epoch"
        with num_threads(threads_for(module.sizes, rows, self.n_threads, training=False)):
            where = f"the end of {unit} {self.n_iter_}"
            advice = (
                "Lower weight_decay or sparsity_weight"
                if self.solver == "lbfgs"
                else f"Lower learning_rate (for example to {self.learning_rate_ / 10:g})"
            )
            diag = fitted_diagnostics(module, Xt, threshold, rows, where, advice)
        self.reconstruction_err_ = diag.reconstruction_err
        self.fraction_variance_unexplained_ = diag.fraction_variance_unexplained
        self.mean_activation_ = diag.mean_activation.numpy()
        self.mean_l0_ = diag.mean_l0
        self.dead_components_ = diag.dead_components.numpy()
        self.fraction_variance_explained_ = 1.0 - diag.fraction_variance_unexplained
        self.shrinkage_ = diag.shrinkage
        self.dead_fraction_ = float(self.dead_components_.mean())
        threshold = module.code_threshold()
        if threshold is not None:
            threshold = threshold.detach().cpu().double().numpy()
            self.threshold_ = float(threshold) if threshold.ndim == 0 else threshold
        else:
            self.__dict__.pop("threshold_", None)
        rms = diag.code_rms.numpy()
        statistic = {"rms": rms, "mean": diag.code_mean_abs.numpy()}.get(config.code_scaling)
        if statistic is not None:  # zeros stay zeros; a unit that is always 0 keeps 1
            self.code_scale_ = np.where(statistic > 0, statistic, 1.0)
        else:
            self.code_scale_ = np.ones_like(rms)
        top = module.decoder_weight(len(module.sizes) - 1)
        if len(module.sizes) == 2:  # in the units of X, as PCA's components_
            top = top * module.input_scale
        self.components_ = to_numpy(top, dtype)

    # ---------------------------------------------------------------- inference
    def transform(self, X):
        """Encode ``X`` into its sparse code.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            The codes, in the dtype of ``X`` (float32 or float64). With
            ``array_api_dispatch=True``, an array of the namespace and device of
            ``X`` (a torch tensor for a tensor).
        """
        X, xp, device = self._validated(X, "transform")
        width = self.components_.shape[0]  # as fitted, whatever n_components is now
        scale = self._code_scale_tensor()
        out = self._map_batches(X, lambda x: self.module_.encode(x)[1] / scale, width, X.dtype)
        return self._result(out, xp, device)

    def inverse_transform(self, X):
        """Decode codes back to the input space.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_components)
            Codes, as returned by :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in_)
            The reconstructions: the code times ``code_scale_``, decoded. With
            ``array_api_dispatch=True``, of the namespace and device of ``X``.
        """
        X, xp, device = self._validated(X, "inverse_transform")
        if X.shape[1] != self.components_.shape[0]:
            raise ValueError(
                f"X has {X.shape[1]} features, but inverse_transform expects codes of "
                f"width n_components={self.components_.shape[0]}."
            )
        scale = self._code_scale_tensor()
        out = self._map_batches(
            X, lambda z: self.module_.decode(z * scale), self.n_features_in_, X.dtype
        )
        return self._result(out, xp, device)

    def score_samples(self, X):
        """Negative mean squared reconstruction error of each sample.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            :math:`-\\frac{1}{d}\\sum_f (\\hat x_{if} - x_{if})^2`; higher is better.
            float64 (float32 on MPS); with ``array_api_dispatch=True``, of the
            namespace and device of ``X``.
        """
        X, xp, device = self._validated(X, "score_samples")
        return self._result(-self._squared_errors(X), xp, device)

    def score(self, X, y=None):
        """Negative mean squared reconstruction error (higher is better).

        This is what ``GridSearchCV`` maximises when no ``scoring`` is given.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.
        y : None
            Ignored.

        Returns
        -------
        score : float
            :math:`-\\frac{1}{n d}\\sum_{i,f}(\\hat x_{if} - x_{if})^2`.
        """
        X, _, _ = self._validated(X, "score")
        return -float(self._squared_errors(X).mean())

    # -------------------------------------------------------------- scikit-learn
    @property
    def _n_features_out(self):
        """Number of transformed output features (for get_feature_names_out)."""
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = True
        tags.array_api_support = True
        return tags

    def __getstate__(self):
        """Pickle with every tensor on the CPU, so a GPU model loads anywhere."""
        return portable_state(super().__getstate__())

    def __setstate__(self, state):
        state = loadable_state(state)
        super().__setstate__(state)
        if "module_" in state:
            self.module_.to(self.device_)
