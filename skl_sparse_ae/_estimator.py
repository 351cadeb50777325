"""The scikit-learn estimator: parameters, validation and orchestration only.

The math lives in :mod:`._sparsity` and :mod:`._training`, the network in
:mod:`._model`, devices and threads in :mod:`._device`.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
import warnings
from numbers import Integral, Real

import numpy as np
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

from ._device import (
    choose_num_threads,
    make_generators,
    num_threads,
    resolve_device,
    to_numpy,
    to_tensor,
    torch_dtype,
)
from ._model import SparseAutoencoder
from ._sparsity import ACTIVATIONS, SPARSITY_PENALTIES
from ._training import (
    DEAD_RANGE,
    History,
    Objective,
    activity_threshold,
    check_finite,
    check_finite_fit,
    corrupt,
    epoch_line,
    fit_lbfgs,
    fit_minibatch,
    make_adam,
    run_epoch,
    training_diagnostics,
)

__all__ = ["SparseAutoencoderTransformer"]

_FLOAT_DTYPES = (np.float64, np.float32)


class SparseAutoencoderTransformer(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    r"""Sparse autoencoder as a scikit-learn transformer, trained with PyTorch.

    ``transform`` returns the sparse code :math:`h` of each sample (shape
    ``(n_samples, n_components)``), ``inverse_transform`` decodes codes back to
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
    - ``None``: a plain (possibly denoising) autoencoder.

    Parameters
    ----------
    n_components : int, default=128
        Size of the code (the number of output features of ``transform``). It may
        exceed ``n_features`` (an over-complete code).

    hidden_layer_sizes : tuple of int, default=()
        Sizes of extra encoder layers between the input and the code (a stacked
        autoencoder). The decoder mirrors them in reverse order.

    activation : {"sigmoid", "tanh", "relu"}, default="sigmoid"
        Non-linearity of the code and the hidden layers. With
        ``sparsity="topk"`` the code is ReLU(TopK) and this applies to hidden
        layers only.

    output_activation : {"auto", "linear", "sigmoid"}, default="auto"
        Non-linearity of the reconstruction. ``"auto"`` means ``"sigmoid"`` for
        ``loss="bce"`` and ``"linear"`` otherwise.

    loss : {"mse", "bce"}, default="mse"
        Reconstruction loss. ``"bce"`` needs ``X`` in ``[0, 1]`` and a sigmoid
        output.

    sparsity : {"kl", "l1", "topk"} or None, default="kl"
        Sparsity mechanism, see above.

    sparsity_target : float, default=0.05
        :math:`\rho`, the target mean activation for ``sparsity="kl"``, in (0, 1).

    sparsity_weight : float, default=0.1
        :math:`\beta`, the weight of the KL or L1 penalty.

    k : int, default=None
        Active units per sample for ``sparsity="topk"``, ``1 <= k <=
        n_components``. ``None`` means ``max(1, n_components // 8)``.

    weight_decay : float, default=1e-4
        :math:`\lambda`, the L2 penalty on weights (not biases).

    noise : float, default=0.0
        Corruption level for a denoising autoencoder: the standard deviation of
        Gaussian noise, or the probability that an entry is masked to 0. The
        corruption is drawn during training only; ``transform`` is deterministic.

    noise_type : {"gaussian", "masking"}, default="gaussian"
        Kind of corruption when ``noise > 0``.

    tied_weights : bool, default=False
        If True, each decoder weight matrix is the transpose of the encoder's.

    solver : {"adam", "lbfgs"}, default="adam"
        ``"adam"``: minibatch Adam. ``"lbfgs"``: full-batch L-BFGS with a
        strong-Wolfe line search (the UFLDL recipe; not with ``"topk"``).

    learning_rate : float, default=3e-3
        Adam's step size.

    batch_size : int or "auto", default="auto"
        Minibatch size for Adam; ``"auto"`` is ``min(200, n_samples)``. Larger
        values are clipped to ``n_samples``.

    max_iter : int, default=200
        Epochs for Adam, iterations for L-BFGS.

    tol : float, default=1e-4
        Adam stops when the training loss (or, with early stopping, the
        validation score) has not improved by ``tol`` for more than
        ``n_iter_no_change`` consecutive epochs. L-BFGS stops when the largest
        gradient entry falls below ``tol``.

    n_iter_no_change : int, default=10
        Epochs without improvement tolerated before stopping (Adam).

    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data, stop on its
        score and restore the best weights (Adam). ``partial_fit`` ignores it:
        each call is one pass over the block it is given.

    validation_fraction : float, default=0.1
        Fraction of the training data held out for early stopping.

    device : str, default="auto"
        ``"auto"`` (CUDA if available, else MPS, else CPU), ``"cpu"``,
        ``"cuda"``, ``"cuda:N"`` or ``"mps"``. Resolved in ``fit``; a device that
        is not present is an error.

    n_threads : int, default=None
        Torch CPU threads used while fitting and transforming. ``None`` picks
        one thread for small steps (under 3e7 floating point operations per
        step, where more threads only add overhead) and the caller's
        ``torch.get_num_threads()`` otherwise. The caller's setting is restored
        afterwards.

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
        when ``hidden_layer_sizes=()``, as in PCA.

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

    validation_scores_ : list of float or None
        With ``early_stopping=True``, the negative mean squared reconstruction
        error of the held-out data after each epoch, else None. It is computed on
        the scale the loss uses (``X`` standardised by one global scale for a
        linear output, unchanged for a sigmoid one), so that ``tol`` means the
        same for it as for the training loss whatever the units of ``X``.

    best_validation_score_ : float or None
        Best of ``validation_scores_``.

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

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "output_activation": [StrOptions({"auto", "linear", "sigmoid"})],
        "loss": [StrOptions({"mse", "bce"})],
        "sparsity": [StrOptions(set(SPARSITY_PENALTIES)), None],
        "sparsity_target": [Interval(Real, 0, 1, closed="neither")],
        "sparsity_weight": [Interval(Real, 0, None, closed="left")],
        "k": [Interval(Integral, 1, None, closed="left"), None],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "noise": [Interval(Real, 0, None, closed="left")],
        "noise_type": [StrOptions({"gaussian", "masking"})],
        "tied_weights": ["boolean"],
        "solver": [StrOptions({"adam", "lbfgs"})],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
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
        hidden_layer_sizes=(),
        activation="sigmoid",
        output_activation="auto",
        loss="mse",
        sparsity="kl",
        sparsity_target=0.05,
        sparsity_weight=0.1,
        k=None,
        weight_decay=1e-4,
        noise=0.0,
        noise_type="gaussian",
        tied_weights=False,
        solver="adam",
        learning_rate=3e-3,
        batch_size="auto",
        max_iter=200,
        tol=1e-4,
        n_iter_no_change=10,
        early_stopping=False,
        validation_fraction=0.1,
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
        self.weight_decay = weight_decay
        self.noise = noise
        self.noise_type = noise_type
        self.tied_weights = tied_weights
        self.solver = solver
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
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

    def _resolved_hidden_sizes(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, Integral):
            sizes = (sizes,)
        sizes = tuple(sizes)
        if not all(isinstance(s, Integral) and not isinstance(s, bool) and s >= 1 for s in sizes):
            raise ValueError(
                "hidden_layer_sizes must be a tuple of positive integers (layer widths); "
                f"got {self.hidden_layer_sizes!r}."
            )
        return tuple(int(s) for s in sizes)

    def _resolved_output_activation(self) -> str:
        if self.output_activation == "auto":
            return "sigmoid" if self.loss == "bce" else "linear"
        return self.output_activation

    def _resolved_k(self) -> int | None:
        if self.sparsity != "topk":
            return None
        k = max(1, self.n_components // 8) if self.k is None else self.k
        if k > self.n_components:
            raise ValueError(
                f"k must satisfy 1 <= k <= n_components={self.n_components}; got k={k}."
            )
        return k

    def _check_config(self) -> None:
        """Rules that involve several parameters (single values are checked by
        ``_parameter_constraints``)."""
        allowed = SPARSITY_PENALTIES.get(self.sparsity, tuple(ACTIVATIONS))
        if self.activation not in allowed:
            raise ValueError(
                f"sparsity={self.sparsity!r} needs a code in (0, 1), which "
                f"activation={self.activation!r} does not give. Use activation in "
                f"{sorted(allowed)} (a tanh code h enters KL as (1 + h) / 2), or "
                "sparsity='l1' or 'topk' for ReLU codes."
            )
        if self.loss == "bce" and self._resolved_output_activation() != "sigmoid":
            raise ValueError(
                "loss='bce' needs a reconstruction in (0, 1): use output_activation="
                f"'sigmoid' or 'auto'; got output_activation={self.output_activation!r}."
            )
        if self.noise_type == "masking" and self.noise >= 1:
            raise ValueError(
                "With noise_type='masking', noise is the probability of masking an "
                f"entry and must be < 1; got noise={self.noise!r}."
            )
        if self.solver == "lbfgs" and self.sparsity == "topk":
            raise ValueError(
                "solver='lbfgs' does not support sparsity='topk' (its decoder-norm "
                "constraint needs a first-order step); use solver='adam'."
            )
        self._resolved_hidden_sizes()
        self._resolved_k()

    def _check_X_range(self, X) -> None:
        if self.loss == "bce" and X.size and (X.min() < 0 or X.max() > 1):
            raise ValueError(
                "loss='bce' needs X in [0, 1] (it is a cross-entropy between "
                f"probabilities); X has values in [{X.min():.4g}, {X.max():.4g}]. "
                "Scale X (for example with MinMaxScaler) or use loss='mse'."
            )

    def _objective(self, n_train: int, n_features: int) -> Objective:
        k = self._resolved_k()
        return Objective(
            loss=self.loss,
            sparsity=self.sparsity,
            sparsity_target=float(self.sparsity_target),
            sparsity_weight=float(self.sparsity_weight),
            weight_decay=float(self.weight_decay),
            activation=self.activation,
            k_aux=0 if k is None else min(max(1, n_features // 2), self.n_components),
            dead_after=max(1, n_train),
        )

    def _threads(self, module: SparseAutoencoder, rows: int, training: bool = True) -> int:
        """Torch threads for a step over ``rows`` samples (``n_threads`` or the rule).

        A training step costs about ``6 * rows * n_weights`` floating point
        operations (forward 2, backward 4 per weight and sample), inference
        ``2 * rows * n_weights``; the rule is :func:`._device.choose_num_threads`.
        """
        if self.n_threads is not None:
            return int(self.n_threads)
        n_weights = 2 * sum(a * b for a, b in zip(module.sizes[:-1], module.sizes[1:]))
        flops = (6.0 if training else 2.0) * rows * n_weights
        return choose_num_threads(flops, torch.get_num_threads())

    def _inference_rows(self, module: SparseAutoencoder) -> int:
        """Rows per inference chunk: bounded memory, independent of ``n_samples``."""
        return max(256, 2**21 // max(module.sizes))

    def _map_batches(self, X: np.ndarray, fn, out_width: int, out_dtype) -> np.ndarray:
        """Apply ``fn`` (tensor -> tensor) to fixed-size chunks of ``X``."""
        module = self.module_
        device = next(module.parameters()).device
        dtype = next(module.parameters()).dtype
        rows = self._inference_rows(module)
        out = np.empty((X.shape[0], out_width), dtype=out_dtype)
        with num_threads(self._threads(module, min(rows, X.shape[0]), training=False)):
            with torch.inference_mode():
                for start in range(0, X.shape[0], rows):
                    chunk = to_tensor(X[start : start + rows], device, dtype)
                    out[start : start + rows] = to_numpy(fn(chunk), out_dtype)
        return out

    def _squared_errors(self, X: np.ndarray) -> np.ndarray:
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
        X : array-like of shape (n_samples, n_features)
            Training data.
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
        X : array-like of shape (n_samples, n_features)
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
        self._check_config()
        continuing = hasattr(self, "module_") and (incremental or self.warm_start)
        X = validate_data(
            self,
            X,
            dtype=_FLOAT_DTYPES,
            reset=not continuing,
            ensure_min_samples=2 if (self.early_stopping and not incremental) else 1,
        )
        self._check_X_range(X)
        device = resolve_device(self.device)
        hidden = self._resolved_hidden_sizes()
        n_samples, n_features = X.shape

        if continuing:
            module = copy.deepcopy(self.module_).to(device)
            same_shape = module.sizes == (n_features, *hidden, self.n_components) and (
                module.k == self._resolved_k()
                and module.tied_weights == bool(self.tied_weights)
                and module.activation == self.activation
                and module.output_activation == self._resolved_output_activation()
            )
            if not same_shape:
                raise ValueError(
                    "The architecture parameters changed since the model was fitted "
                    "(n_components, hidden_layer_sizes, activation, output_activation, "
                    "sparsity/k or tied_weights); warm_start and partial_fit need the "
                    "same ones. Set warm_start=False to train a new model."
                )
            dtype = next(module.parameters()).dtype
            cpu_gen, dev_gen = make_generators(0, device)
            cpu_gen.set_state(self._generator_states[0])
            if dev_gen is not cpu_gen and self._generator_states[1] is not None:
                dev_gen.set_state(self._generator_states[1])
            # Adam updates its loaded state tensors in place: train on a copy.
            optimizer_state = copy.deepcopy(self._optimizer_state)
            history = History(
                loss_curve=list(self.loss_curve_),
                best_loss=min(self.loss_curve_, default=math.inf),
                n_iter=self.n_iter_,
            )
        else:
            dtype = torch_dtype(X.dtype, device)
            cpu_gen, dev_gen = make_generators(self.random_state, device)
            module = SparseAutoencoder(
                n_features,
                self.n_components,
                hidden,
                activation=self.activation,
                output_activation=self._resolved_output_activation(),
                k=self._resolved_k(),
                tied_weights=bool(self.tied_weights),
                dtype=dtype,
                device=device,
            )
            optimizer_state = None
            history = History()

        Xt = to_tensor(X, device, dtype)
        X_val = None
        use_validation = self.early_stopping and not incremental and self.solver == "adam"
        if use_validation:
            perm = torch.randperm(n_samples, generator=cpu_gen).to(device)
            n_val = max(1, round(self.validation_fraction * n_samples))
            if n_val >= n_samples:
                raise ValueError(
                    f"early_stopping needs at least 2 samples; got {n_samples} sample(s) "
                    f"with validation_fraction={self.validation_fraction}."
                )
            X_val, Xt = Xt[perm[:n_val]], Xt[perm[n_val:]]
        if not continuing:
            x_mean = Xt.mean(dim=0)
            if module.output_activation == "linear":
                centred = Xt - x_mean
                peak = float(centred.abs().max())  # RMS of centred / peak: no overflow
                scale = peak * float((centred / peak).pow(2).mean().sqrt()) if peak > 0 else 0.0
                module.set_standardization(x_mean, scale if scale > 0 else 1.0)
            module.reset_parameters(cpu_gen, x_mean)

        spec = self._objective(Xt.shape[0], n_features)
        noise_fn = None
        if self.noise > 0:
            noise, noise_type = float(self.noise), self.noise_type

            def noise_fn(x):
                return corrupt(x, noise, noise_type, dev_gen)

        batch_size = (
            min(200, Xt.shape[0])
            if self.batch_size == "auto"
            else min(self.batch_size, Xt.shape[0])
        )
        threads_rows = Xt.shape[0] if self.solver == "lbfgs" else batch_size
        with num_threads(self._threads(module, threads_rows)):
            if self.solver == "lbfgs":
                history = fit_lbfgs(
                    module,
                    Xt,
                    spec,
                    max_iter=self.max_iter,
                    tol=self.tol,
                    noise_fn=noise_fn,
                    verbose=self.verbose,
                )
                optimizer_state = None
            else:
                optimizer = make_adam(module.parameters(), self.learning_rate, optimizer_state)
                if incremental:
                    self._partial_epoch(
                        module, optimizer, Xt, spec, batch_size, cpu_gen, noise_fn, history
                    )
                else:
                    history = fit_minibatch(
                        module,
                        optimizer,
                        Xt,
                        spec,
                        batch_size=batch_size,
                        max_iter=self.max_iter,
                        tol=self.tol,
                        n_iter_no_change=self.n_iter_no_change,
                        generator=cpu_gen,
                        noise_fn=noise_fn,
                        X_val=X_val,
                        validation_score=_validation_score,
                        verbose=self.verbose,
                        history=history,
                    )
                optimizer_state = copy.deepcopy(optimizer.state_dict())

        # Everything trained: commit the new state in one go.
        self.module_ = module
        self.device_ = str(device)
        self._optimizer_state = optimizer_state
        self._generator_states = (
            cpu_gen.get_state(),
            None if dev_gen is cpu_gen else dev_gen.get_state(),
        )
        self.n_iter_ = history.n_iter
        self.loss_curve_ = history.loss_curve
        self.validation_scores_ = history.validation_scores if use_validation else None
        self.best_validation_score_ = history.best_validation_score if use_validation else None
        self._set_diagnostics([Xt] if X_val is None else [Xt, X_val], X.dtype)
        if not incremental and not history.converged:
            if self.solver == "lbfgs" and history.n_iter < self.max_iter:
                limit = (
                    f"its {2 * self.max_iter} function evaluations (2 * max_iter) after "
                    f"{history.n_iter} of max_iter={self.max_iter} iterations"
                )
            else:
                unit = "iterations" if self.solver == "lbfgs" else "epochs"
                limit = f"max_iter={self.max_iter} {unit}"
            warnings.warn(
                f"{type(self).__name__} used up {limit} without converging; increase "
                "max_iter, or raise tol.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _partial_epoch(self, module, optimizer, Xt, spec, batch_size, generator, noise_fn, history):
        tic = time.perf_counter()
        label = f"partial_fit {history.n_iter + 1}"
        stats = run_epoch(
            module,
            optimizer,
            Xt,
            spec,
            batch_size=batch_size,
            generator=generator,
            noise_fn=noise_fn,
            track_code=self.verbose > 0,
            verbose=self.verbose,
            desc=label,
        )
        loss = float(stats.loss) / stats.n_samples
        check_finite(loss, f"partial_fit call {history.n_iter + 1}")
        history.loss_curve.append(loss)
        history.n_iter += 1
        if self.verbose:
            seconds = time.perf_counter() - tic
            print(epoch_line(label, stats, loss, None, seconds, module.sizes[-1]), flush=True)

    def _set_diagnostics(self, parts: list[torch.Tensor], dtype) -> None:
        """Training-set diagnostics (see the class docstring for the formulas).

        ``parts`` are the training rows already on the device (training and
        validation parts), reduced chunk by chunk by :func:`._training.training_diagnostics`.
        """
        module = self.module_
        rows = self._inference_rows(module)
        threshold = activity_threshold(self.activation, module.k is not None)
        with num_threads(self._threads(module, rows, training=False)):
            stats = training_diagnostics(module, parts, threshold, rows)
        unit = "iteration" if self.solver == "lbfgs" else "epoch"
        check_finite_fit(stats, f"the end of {unit} {self.n_iter_}")
        # Sums of squares on the loss's scale s (no overflow); s**2 brings the
        # error back to the units of X (a Python float: inf past float64's range).
        scale = float(module.input_scale)
        n_values = stats.n_samples * module.sizes[0]
        self.reconstruction_err_ = stats.squared_error * scale * scale / n_values
        self.fraction_variance_unexplained_ = (
            stats.squared_error / stats.variance
            if stats.variance > 0
            else (0.0 if stats.squared_error == 0 else math.inf)
        )
        self.mean_activation_ = stats.code_sum.numpy() / stats.n_samples
        self.mean_l0_ = stats.active_total / stats.n_samples
        self.dead_components_ = stats.code_range.numpy() <= DEAD_RANGE
        top = module.decoder_weight(len(module.sizes) - 1)
        if len(module.sizes) == 2:  # in the units of X, as PCA's components_
            top = top * module.input_scale
        self.components_ = to_numpy(top, dtype)

    # ---------------------------------------------------------------- inference
    def transform(self, X):
        """Encode ``X`` into its sparse code.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            The codes, in the dtype of ``X`` (float32 or float64).
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=_FLOAT_DTYPES, reset=False)
        width = self.components_.shape[0]  # as fitted, whatever n_components is now
        return self._map_batches(X, lambda x: self.module_.encode(x)[1], width, X.dtype)

    def inverse_transform(self, X):
        """Decode codes back to the input space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, as returned by :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in_)
            The reconstructions.
        """
        check_is_fitted(self)
        X = check_array(X, dtype=_FLOAT_DTYPES, input_name="X")
        if X.shape[1] != self.components_.shape[0]:
            raise ValueError(
                f"X has {X.shape[1]} features, but inverse_transform expects codes of "
                f"width n_components={self.components_.shape[0]}."
            )
        return self._map_batches(X, self.module_.decode, self.n_features_in_, X.dtype)

    def score_samples(self, X):
        """Negative mean squared reconstruction error of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            :math:`-\\frac{1}{d}\\sum_f (\\hat x_{if} - x_{if})^2`; higher is better.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=_FLOAT_DTYPES, reset=False)
        return -self._squared_errors(X)

    def score(self, X, y=None):
        """Negative mean squared reconstruction error (higher is better).

        This is what ``GridSearchCV`` maximises when no ``scoring`` is given.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.
        y : None
            Ignored.

        Returns
        -------
        score : float
            :math:`-\\frac{1}{n d}\\sum_{i,f}(\\hat x_{if} - x_{if})^2`.
        """
        return float(np.mean(self.score_samples(X)))

    # -------------------------------------------------------------- scikit-learn
    @property
    def _n_features_out(self):
        """Number of transformed output features (for get_feature_names_out)."""
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.allow_nan = False
        return tags

    def __getstate__(self):
        """Pickle with every tensor on the CPU, so a GPU model loads anywhere."""
        state = super().__getstate__()
        if "module_" in state:
            state = dict(state)
            state["module_"] = copy.deepcopy(state["module_"]).to("cpu")
            state["_optimizer_state"] = _tensors_to_cpu(state.get("_optimizer_state"))
        return state

    def __setstate__(self, state):
        device = state.get("device_")
        if device is not None and device != "cpu":
            try:
                resolve_device(device)
            except ValueError:
                warnings.warn(
                    f"This model was fitted on {device!r}, which this machine does not "
                    "have; it was loaded on the CPU.",
                    UserWarning,
                    stacklevel=2,
                )
                state = dict(state)
                state["device_"] = "cpu"
                cpu_state = state["_generator_states"][0]
                state["_generator_states"] = (cpu_state, None)
        super().__setstate__(state)
        if "module_" in state:
            self.module_.to(self.device_)


def _validation_score(module: SparseAutoencoder, X_val: torch.Tensor) -> torch.Tensor:
    """Negative mean squared reconstruction error on held-out data, on the loss's scale."""
    with torch.no_grad():
        return -module.residual(module(X_val).reconstruction, X_val).pow(2).mean()


def _tensors_to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu")
    if isinstance(obj, dict):
        return {k: _tensors_to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_tensors_to_cpu(v) for v in obj)
    return obj
