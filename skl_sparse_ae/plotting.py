"""Plotting Displays in scikit-learn's style (matplotlib is optional).

Each Display stores the values it draws, builds itself from a fitted estimator with
``from_estimator(estimator, ..., ax=None)``, draws with ``plot(ax=None)`` (which
returns the Display) and keeps the matplotlib objects it made as attributes
(``ax_`` or ``axes_``, ``figure_`` and the artists), as
:class:`sklearn.metrics.ConfusionMatrixDisplay` does.

- :class:`ComponentsDisplay`: learned components (decoder rows, or first-layer
  encoder filters) as a mosaic of images.
- :class:`TrainingCurvesDisplay`: loss, validation score and mean activation per
  epoch, from the curves recorded during ``fit``.
- :class:`ActivationProfileDisplay`: the mean activation of every unit against the
  sparsity target, dead units marked.

matplotlib is imported only when something is drawn; without it, ``plot`` raises an
``ImportError`` that names the ``plot`` extra.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._sparsity import ACTIVATIONS, mechanism

__all__ = ["ActivationProfileDisplay", "ComponentsDisplay", "TrainingCurvesDisplay"]


def _pyplot(caller: str):
    """``matplotlib.pyplot``, or an ImportError that says how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            f"{caller} needs matplotlib. Install it with "
            '`pip install "skl_sparse_ae[plot]"` (or `pip install matplotlib`).'
        ) from exc
    return plt


def _new_axes(caller: str, ax):
    """``(figure, ax)``: ``ax`` and its figure, or a new figure with one axes."""
    plt = _pyplot(caller)
    if ax is None:
        _, ax = plt.subplots(layout="constrained")
    return ax.figure, ax


def _name(estimator) -> str:
    return type(estimator).__name__


def _target_on_code_scale(estimator) -> float | None:
    """The sparsity target on the scale of the raw code (None when there is no target).

    The target :math:`\\rho` applies to the code mapped into the unit interval
    (KL reads a tanh code :math:`h` as :math:`(1 + h) / 2`, so its target is
    :math:`2\\rho - 1` for ``h`` itself): :meth:`._sparsity.Activation.code_at`.
    """
    if not mechanism(estimator.sparsity).steers_target:
        return None
    return ACTIVATIONS[estimator.activation].code_at(float(estimator.sparsity_target_))


class ComponentsDisplay:
    """Learned components shown as images, in one mosaic.

    Each row of ``components`` is reshaped to ``image_shape`` and placed in a grid
    of tiles, separated by ``padding`` blank pixels, as UFLDL's
    ``display_network``. With ``normalize="each"`` every tile is divided by its
    largest absolute value, so that each filter uses the whole grey scale
    (-1 black, 0 mid-grey, 1 white).

    Use :meth:`from_estimator` to build it from a fitted
    :class:`~skl_sparse_ae.SparseAutoencoderTransformer`.

    Parameters
    ----------
    components : array-like of shape (n_units, n_pixels)
        One image per row.

    image_shape : tuple of int
        Shape of one image, ``(height, width)``; its product must be
        ``n_pixels``.

    n_cols : int, default=None
        Tiles per row of the mosaic; ``None`` makes it about square.

    estimator_name : str, default=None
        Used in the title.

    Attributes
    ----------
    mosaic_ : ndarray of shape (mosaic_height, mosaic_width)
        The tiled, normalised images (NaN between tiles and in empty tiles).

    image_ : matplotlib.image.AxesImage
        The image of the mosaic.

    ax_ : matplotlib.axes.Axes
        Axes with the mosaic.

    figure_ : matplotlib.figure.Figure
        Figure containing the mosaic.

    See Also
    --------
    TrainingCurvesDisplay : Loss, validation score and mean activation per epoch.
    ActivationProfileDisplay : Mean activation per unit against the target.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skl_sparse_ae import SparseAutoencoderTransformer
    >>> from skl_sparse_ae.plotting import ComponentsDisplay
    >>> X = load_digits().data / 16.0
    >>> sae = SparseAutoencoderTransformer(
    ...     16, hidden_layer_sizes=(), max_iter=2, tol=1.0, random_state=0
    ... ).fit(X)
    >>> display = ComponentsDisplay.from_estimator(sae, image_shape=(8, 8))
    >>> display.mosaic_.shape
    (35, 35)
    """

    def __init__(self, components, image_shape, *, n_cols=None, estimator_name=None):
        self.components = components
        self.image_shape = image_shape
        self.n_cols = n_cols
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(
        cls,
        estimator,
        *,
        image_shape,
        weights="decoder",
        units=None,
        n_cols=None,
        ax=None,
        cmap="gray",
        normalize="each",
        padding=1,
    ):
        """Draw the components of a fitted sparse autoencoder.

        Parameters
        ----------
        estimator : SparseAutoencoderTransformer
            A fitted estimator.

        image_shape : tuple of int
            Shape of one image; its product must equal the width of the chosen
            weights (``n_features_in_`` for the encoder, and for the decoder of a
            model with ``hidden_layer_sizes=()``).

        weights : {"decoder", "encoder"}, default="decoder"
            ``"decoder"``: the rows of ``components_`` (what each unit adds to
            the reconstruction, in the units of ``X``). ``"encoder"``: the rows of
            the first encoder layer (the filter each first-layer unit applies to
            the input, as UFLDL shows them; on the standardised input scale when
            the output is linear).

        units : array-like of int, default=None
            Which units to show, in this order; ``None`` shows all of them.

        n_cols : int, default=None
            Tiles per row; ``None`` makes the mosaic about square.

        ax : matplotlib Axes, default=None
            Axes to draw in; ``None`` makes a new figure.

        cmap : str or matplotlib Colormap, default="gray"
            Colormap of the tiles.

        normalize : {"each", "all"}, default="each"
            Divide each tile by its own largest absolute value, or all of them by
            the largest over every tile.

        padding : int, default=1
            Blank pixels between tiles.

        Returns
        -------
        display : ComponentsDisplay
            The Display, drawn.
        """
        check_is_fitted(estimator)
        if weights == "decoder":
            hidden = tuple(getattr(estimator, "hidden_layer_sizes_", ()))
            if hidden:
                raise ValueError(
                    f"weights='decoder' shows components_ in the units of X, but this "
                    f"model has hidden layers {hidden} (hidden_layer_sizes_): its "
                    "components_ are in the units of its last hidden layer. Use "
                    "weights='encoder' for the first layer's filters, or fit with "
                    "hidden_layer_sizes=() (the default adds a hidden layer to bounded "
                    "codes of at most 32 units)."
                )
            components = np.asarray(estimator.components_)
        elif weights == "encoder":
            first = estimator.module_.encoder_weights[0]
            components = first.detach().to("cpu").numpy()
        else:
            raise ValueError(f"weights must be 'decoder' or 'encoder'; got {weights!r}.")
        if units is not None:
            units = np.asarray(units, dtype=int).ravel()
            if units.size == 0 or units.min() < 0 or units.max() >= components.shape[0]:
                raise ValueError(
                    f"units must hold indices of units, between 0 and "
                    f"{components.shape[0] - 1}; got {units!r}."
                )
            components = components[units]
        display = cls(components, image_shape, n_cols=n_cols, estimator_name=_name(estimator))
        return display.plot(ax=ax, cmap=cmap, normalize=normalize, padding=padding)

    def _check(self, normalize, padding):
        components = np.asarray(self.components, dtype=np.float64)
        if components.ndim != 2:
            raise ValueError(
                f"components must be 2-d (n_units, n_pixels); got shape {components.shape}."
            )
        shape = tuple(self.image_shape) if np.iterable(self.image_shape) else None
        if (
            shape is None
            or len(shape) != 2
            or not all(isinstance(s, (int, np.integer)) and s > 0 for s in shape)
            or shape[0] * shape[1] != components.shape[1]
        ):
            raise ValueError(
                "image_shape must be a pair of positive ints (height, width) whose "
                f"product is the width of the components, {components.shape[1]}; "
                f"got image_shape={self.image_shape!r}."
            )
        if normalize not in ("each", "all"):
            raise ValueError(f"normalize must be 'each' or 'all'; got {normalize!r}.")
        if not isinstance(padding, (int, np.integer)) or padding < 0:
            raise ValueError(f"padding must be a non-negative int; got {padding!r}.")
        if self.n_cols is not None and (
            not isinstance(self.n_cols, (int, np.integer)) or self.n_cols < 1
        ):
            raise ValueError(f"n_cols must be a positive int or None; got {self.n_cols!r}.")
        return components, shape

    def plot(self, ax=None, *, cmap="gray", normalize="each", padding=1):
        """Draw the mosaic.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw in; ``None`` makes a new figure.

        cmap : str or matplotlib Colormap, default="gray"
            Colormap of the tiles.

        normalize : {"each", "all"}, default="each"
            Divide each tile by its own largest absolute value, or all of them by
            the largest over every tile.

        padding : int, default=1
            Blank pixels between tiles.

        Returns
        -------
        display : ComponentsDisplay
            The Display, with ``mosaic_``, ``image_``, ``ax_`` and ``figure_`` set.
        """
        components, (height, width) = self._check(normalize, padding)
        n = components.shape[0]
        n_cols = self.n_cols or int(np.ceil(np.sqrt(n)))
        n_rows = int(np.ceil(n / n_cols))
        if normalize == "each":
            scale = np.abs(components).max(axis=1, keepdims=True)
        else:
            scale = np.full((n, 1), np.abs(components).max())
        tiles = components / np.where(scale > 0, scale, 1.0)
        mosaic = np.full(
            (n_rows * (height + padding) - padding, n_cols * (width + padding) - padding),
            np.nan,
        )
        for i, tile in enumerate(tiles):
            top, left = (i // n_cols) * (height + padding), (i % n_cols) * (width + padding)
            mosaic[top : top + height, left : left + width] = tile.reshape(height, width)

        fig, ax = _new_axes("ComponentsDisplay.plot", ax)
        plt = _pyplot("ComponentsDisplay.plot")
        colormap = plt.get_cmap(cmap).with_extremes(bad="white")
        self.image_ = ax.imshow(mosaic, cmap=colormap, vmin=-1.0, vmax=1.0)
        ax.set_axis_off()
        name = f"{self.estimator_name}: " if self.estimator_name else ""
        ax.set_title(f"{name}{n} components as {height}x{width} images")
        self.mosaic_, self.ax_, self.figure_ = mosaic, ax, fig
        return self


class TrainingCurvesDisplay:
    """Training curves: loss, validation score and mean activation per epoch.

    One panel per recorded curve: the training objective (``loss_curve_``),
    the validation score (``validation_scores_``, with ``early_stopping=True``)
    and the mean activation of the code (``mean_activation_curve_``, Adam), with
    the sparsity target as a dashed line.

    Use :meth:`from_estimator` to build it from a fitted
    :class:`~skl_sparse_ae.SparseAutoencoderTransformer`.

    Parameters
    ----------
    loss_curve : array-like of shape (n_epochs,)
        Training objective per epoch (or L-BFGS iteration).

    validation_scores : array-like of shape (n_epochs,), default=None
        Validation score per epoch; ``None`` draws no panel for it.

    mean_activation_curve : array-like of shape (n_epochs,), default=None
        Mean code activation per epoch; ``None`` draws no panel for it.

    sparsity_target : float, default=None
        Drawn as a dashed line in the mean-activation panel.

    x_label : str, default="epoch"
        Label of the x axes.

    estimator_name : str, default=None
        Used in the title.

    Attributes
    ----------
    lines_ : dict of str to matplotlib.lines.Line2D
        The curves drawn, under ``"loss"``, ``"validation_score"`` and
        ``"mean_activation"``.

    target_line_ : matplotlib.lines.Line2D or None
        The sparsity target's line.

    axes_ : ndarray of matplotlib Axes
        One axes per panel, in the order loss, validation score, mean activation.

    figure_ : matplotlib.figure.Figure
        Figure containing the panels.

    See Also
    --------
    ComponentsDisplay : The learned components as images.
    ActivationProfileDisplay : Mean activation per unit against the target.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skl_sparse_ae import SparseAutoencoderTransformer
    >>> from skl_sparse_ae.plotting import TrainingCurvesDisplay
    >>> X = load_digits().data / 16.0
    >>> sae = SparseAutoencoderTransformer(16, max_iter=3, tol=1.0, random_state=0).fit(X)
    >>> display = TrainingCurvesDisplay.from_estimator(sae)
    >>> sorted(display.lines_)
    ['loss', 'mean_activation']
    """

    def __init__(
        self,
        loss_curve,
        *,
        validation_scores=None,
        mean_activation_curve=None,
        sparsity_target=None,
        x_label="epoch",
        estimator_name=None,
    ):
        self.loss_curve = loss_curve
        self.validation_scores = validation_scores
        self.mean_activation_curve = mean_activation_curve
        self.sparsity_target = sparsity_target
        self.x_label = x_label
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(cls, estimator, *, x_label=None, ax=None):
        """Draw the curves a fitted sparse autoencoder recorded.

        Parameters
        ----------
        estimator : SparseAutoencoderTransformer
            A fitted estimator.

        x_label : str, default=None
            Label of the x axes; ``None`` means ``"epoch"``, or ``"L-BFGS
            iteration"`` for ``solver="lbfgs"`` (after ``partial_fit``, a point is
            one call).

        ax : array-like of matplotlib Axes, default=None
            One axes per panel (loss, then validation score if recorded, then
            mean activation if recorded); ``None`` makes a new figure.

        Returns
        -------
        display : TrainingCurvesDisplay
            The Display, drawn.
        """
        check_is_fitted(estimator)
        display = cls(
            estimator.loss_curve_,
            validation_scores=estimator.validation_scores_,
            mean_activation_curve=estimator.mean_activation_curve_,
            sparsity_target=_target_on_code_scale(estimator),
            x_label=x_label or ("L-BFGS iteration" if estimator.solver == "lbfgs" else "epoch"),
            estimator_name=_name(estimator),
        )
        return display.plot(ax=ax)

    def _panels(self):
        panels = [("loss", self.loss_curve, "training loss (J)")]
        if self.validation_scores is not None:
            panels.append(("validation_score", self.validation_scores, "validation score"))
        if self.mean_activation_curve is not None:
            panels.append(("mean_activation", self.mean_activation_curve, "mean activation"))
        for key, values, _ in panels:
            values = np.asarray(values, dtype=np.float64)
            if values.ndim != 1 or values.size == 0:
                raise ValueError(
                    f"{key} must be a non-empty 1-d sequence; got shape {values.shape}."
                )
        return panels

    def plot(self, ax=None):
        """Draw the curves.

        Parameters
        ----------
        ax : array-like of matplotlib Axes, default=None
            One axes per panel; ``None`` makes a new figure with the panels side
            by side.

        Returns
        -------
        display : TrainingCurvesDisplay
            The Display, with ``lines_``, ``target_line_``, ``axes_`` and
            ``figure_`` set.
        """
        panels = self._panels()
        plt = _pyplot("TrainingCurvesDisplay.plot")
        if ax is None:
            fig, axes = plt.subplots(
                1, len(panels), figsize=(4.0 * len(panels), 3.2), layout="constrained"
            )
            axes = np.atleast_1d(axes)
        else:
            axes = np.ravel(np.asarray(ax, dtype=object))
            if len(axes) != len(panels):
                raise ValueError(
                    f"ax must hold {len(panels)} axes, one per panel "
                    f"({', '.join(key for key, _, _ in panels)}); got {len(axes)}."
                )
            fig = axes[0].figure
        self.lines_, self.target_line_ = {}, None
        for axis, (key, values, label) in zip(axes, panels):
            values = np.asarray(values, dtype=np.float64)
            epochs = np.arange(1, len(values) + 1)
            (self.lines_[key],) = axis.plot(epochs, values, label=label)
            axis.set_xlabel(self.x_label)
            axis.set_ylabel(label)
            if key == "mean_activation" and self.sparsity_target is not None:
                self.target_line_ = axis.axhline(
                    self.sparsity_target, color="k", linestyle="--", label="sparsity target"
                )
                axis.legend()
        if self.estimator_name:
            fig.suptitle(f"{self.estimator_name}: training curves")
        self.axes_, self.figure_ = axes, fig
        return self


class ActivationProfileDisplay:
    """Mean activation of every unit, against the sparsity target; dead units marked.

    A bar per unit: its mean code value on the training data (or on ``X``),
    before ``code_scale_``. The sparsity target is a dashed line; units whose
    code never changes (``dead_components_``) are drawn in red and marked with
    a cross.

    Use :meth:`from_estimator` to build it from a fitted
    :class:`~skl_sparse_ae.SparseAutoencoderTransformer`.

    Parameters
    ----------
    mean_activation : array-like of shape (n_units,)
        Mean activation of each unit.

    dead_components : array-like of bool of shape (n_units,), default=None
        Which units are dead; ``None`` marks none.

    sparsity_target : float, default=None
        Drawn as a dashed line.

    estimator_name : str, default=None
        Used in the title.

    Attributes
    ----------
    units_ : ndarray of shape (n_units,)
        The unit drawn at each bar position (``arange(n_units)``, or the units
        in increasing mean activation with ``sort=True``).

    bars_ : matplotlib.container.BarContainer
        The bars, in the order of ``units_``.

    dead_markers_ : matplotlib.lines.Line2D
        Crosses on the dead units (no points when none is dead).

    target_line_ : matplotlib.lines.Line2D or None
        The sparsity target's line.

    ax_ : matplotlib.axes.Axes
        Axes with the profile.

    figure_ : matplotlib.figure.Figure
        Figure containing the profile.

    See Also
    --------
    ComponentsDisplay : The learned components as images.
    TrainingCurvesDisplay : Loss, validation score and mean activation per epoch.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skl_sparse_ae import SparseAutoencoderTransformer
    >>> from skl_sparse_ae.plotting import ActivationProfileDisplay
    >>> X = load_digits().data / 16.0
    >>> sae = SparseAutoencoderTransformer(16, max_iter=2, tol=1.0, random_state=0).fit(X)
    >>> display = ActivationProfileDisplay.from_estimator(sae)
    >>> len(display.bars_)
    16
    """

    def __init__(
        self, mean_activation, dead_components=None, *, sparsity_target=None, estimator_name=None
    ):
        self.mean_activation = mean_activation
        self.dead_components = dead_components
        self.sparsity_target = sparsity_target
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(cls, estimator, X=None, *, sort=False, ax=None):
        """Draw the activation profile of a fitted sparse autoencoder.

        Parameters
        ----------
        estimator : SparseAutoencoderTransformer
            A fitted estimator.

        X : array-like of shape (n_samples, n_features), default=None
            Data to measure the activations on. ``None`` uses what ``fit``
            measured on the training data (``mean_activation_`` and
            ``dead_components_``); with ``X``, a unit is dead when its code
            varies by at most 1e-6 over ``X``, the rule of ``dead_components_``.

        sort : bool, default=False
            Order the bars by increasing mean activation.

        ax : matplotlib Axes, default=None
            Axes to draw in; ``None`` makes a new figure.

        Returns
        -------
        display : ActivationProfileDisplay
            The Display, drawn.
        """
        check_is_fitted(estimator)
        if X is None:
            mean, dead = estimator.mean_activation_, estimator.dead_components_
        else:
            codes = estimator.transform(X) * estimator.code_scale_  # the raw code
            mean = codes.mean(axis=0)
            dead = (codes.max(axis=0) - codes.min(axis=0)) <= 1e-6
        display = cls(
            mean,
            dead,
            sparsity_target=_target_on_code_scale(estimator),
            estimator_name=_name(estimator),
        )
        return display.plot(ax=ax, sort=sort)

    def plot(self, ax=None, *, sort=False):
        """Draw the profile.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw in; ``None`` makes a new figure.

        sort : bool, default=False
            Order the bars by increasing mean activation.

        Returns
        -------
        display : ActivationProfileDisplay
            The Display, with ``units_``, ``bars_``, ``dead_markers_``,
            ``target_line_``, ``ax_`` and ``figure_`` set.
        """
        mean = np.asarray(self.mean_activation, dtype=np.float64)
        if mean.ndim != 1 or mean.size == 0:
            raise ValueError(
                f"mean_activation must be a non-empty 1-d array; got shape {mean.shape}."
            )
        if self.dead_components is None:
            dead = np.zeros(mean.shape, dtype=bool)
        else:
            dead = np.asarray(self.dead_components, dtype=bool)
            if dead.shape != mean.shape:
                raise ValueError(
                    f"dead_components must have the shape of mean_activation, {mean.shape}; "
                    f"got {dead.shape}."
                )
        units = np.argsort(mean, kind="stable") if sort else np.arange(mean.size)
        fig, ax = _new_axes("ActivationProfileDisplay.plot", ax)
        positions = np.arange(mean.size)
        colors = np.where(dead[units], "tab:red", "tab:blue")
        self.bars_ = ax.bar(positions, mean[units], width=0.9, color=colors)
        is_dead = dead[units]
        (self.dead_markers_,) = ax.plot(
            positions[is_dead],
            mean[units][is_dead],
            linestyle="none",
            marker="x",
            color="tab:red",
            label=f"dead units ({int(dead.sum())})",
        )
        self.target_line_ = None
        if self.sparsity_target is not None:
            self.target_line_ = ax.axhline(
                self.sparsity_target, color="k", linestyle="--", label="sparsity target"
            )
        ax.set_xlabel("unit, by increasing mean activation" if sort else "unit")
        ax.set_ylabel("mean activation")
        ax.legend()
        name = f"{self.estimator_name}: " if self.estimator_name else ""
        ax.set_title(f"{name}mean activation of {mean.size} units")
        self.units_, self.ax_, self.figure_ = units, ax, fig
        return self
