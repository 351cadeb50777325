"""The plotting Displays: figures made, axes labelled, values equal to the fitted attributes."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from skl_sparse_ae import SparseAutoencoderTransformer
from skl_sparse_ae.plotting import (
    ActivationProfileDisplay,
    ComponentsDisplay,
    TrainingCurvesDisplay,
)

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
plt = pytest.importorskip("matplotlib.pyplot")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _fit(X, **params):
    # one layer: components_ in the units of X (16 units would get a hidden layer)
    params = {"max_iter": 4, "tol": 1.0, "random_state": 0, "hidden_layer_sizes": (), **params}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return SparseAutoencoderTransformer(**params).fit(X)


@pytest.fixture(scope="module")
def sae(digits01):
    return _fit(digits01, n_components=12)


@pytest.fixture(scope="module")
def sae_early(digits01):
    return _fit(digits01, n_components=12, early_stopping=True, n_iter_no_change=50)


@pytest.fixture(scope="module")
def sae_dead(digits01):
    """A ReLU + L1 code with a heavy penalty, cross-entropy and masking noise: some
    units never fire."""
    model = _fit(
        digits01,
        n_components=24,
        activation="relu",
        sparsity="l1",
        sparsity_weight=3.0,
        loss="bce",
        noise=0.2,
        learning_rate=3e-3,
    )
    assert model.dead_components_.any() and not model.dead_components_.all()
    return model


# ------------------------------------------------------------------ components
def test_components_display_tiles_equal_the_components(sae):
    display = ComponentsDisplay.from_estimator(sae, image_shape=(8, 8), n_cols=4)
    assert isinstance(display.figure_, matplotlib.figure.Figure)
    assert display.ax_.figure is display.figure_
    # 12 tiles in 3 rows of 4, 8x8 each with 1 blank pixel between
    assert display.mosaic_.shape == (3 * 9 - 1, 4 * 9 - 1)
    np.testing.assert_array_equal(display.image_.get_array().filled(np.nan), display.mosaic_)
    for i, row in enumerate(sae.components_):
        top, left = (i // 4) * 9, (i % 4) * 9
        tile = display.mosaic_[top : top + 8, left : left + 8]
        np.testing.assert_allclose(tile, (row / np.abs(row).max()).reshape(8, 8))
    assert np.isnan(display.mosaic_[8, :]).all()  # the padding row between tiles
    assert "12 components" in display.ax_.get_title()


def test_components_display_normalize_all_and_units(sae):
    units = [5, 0]
    display = ComponentsDisplay.from_estimator(
        sae, image_shape=(8, 8), units=units, normalize="all", padding=0
    )
    chosen = sae.components_[units]
    expected = np.hstack([c.reshape(8, 8) for c in chosen]) / np.abs(chosen).max()
    np.testing.assert_allclose(display.mosaic_, expected)


def test_components_display_encoder_weights(sae):
    display = ComponentsDisplay.from_estimator(
        sae, image_shape=(8, 8), weights="encoder", padding=0, n_cols=12
    )
    encoder = sae.module_.encoder_weights[0].detach().numpy()
    first = display.mosaic_[:, :8]
    np.testing.assert_allclose(first, (encoder[0] / np.abs(encoder[0]).max()).reshape(8, 8))


def test_components_display_draws_in_the_given_axes(sae):
    fig, ax = plt.subplots()
    display = ComponentsDisplay.from_estimator(sae, image_shape=(8, 8), ax=ax)
    assert display.ax_ is ax and display.figure_ is fig


@pytest.mark.parametrize("image_shape", [(8, 7), (64,), (4, 4, 4), (8.0, 8.0), (-8, -8), 64])
def test_components_display_rejects_a_bad_image_shape(sae, image_shape):
    with pytest.raises(ValueError, match="image_shape"):
        ComponentsDisplay.from_estimator(sae, image_shape=image_shape)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"weights": "code"}, "weights"),
        ({"units": [12]}, "units"),
        ({"normalize": "none"}, "normalize"),
        ({"padding": -1}, "padding"),
        ({"n_cols": 0}, "n_cols"),
    ],
)
def test_components_display_names_the_bad_parameter(sae, kwargs, name):
    with pytest.raises(ValueError, match=name):
        ComponentsDisplay.from_estimator(sae, image_shape=(8, 8), **kwargs)


@pytest.mark.parametrize(
    "display_class, kwargs",
    [
        (ComponentsDisplay, {"image_shape": (8, 8)}),
        (TrainingCurvesDisplay, {}),
        (ActivationProfileDisplay, {}),
    ],
)
def test_from_estimator_needs_a_fitted_estimator(display_class, kwargs):
    with pytest.raises(NotFittedError):
        display_class.from_estimator(SparseAutoencoderTransformer(), **kwargs)


# --------------------------------------------------------------- training curves
def test_training_curves_equal_the_recorded_curves(sae_early):
    display = TrainingCurvesDisplay.from_estimator(sae_early)
    assert list(display.lines_) == ["loss", "validation_score", "mean_activation"]
    assert len(display.axes_) == 3
    epochs = np.arange(1, sae_early.n_iter_ + 1)
    for key, fitted in [
        ("loss", sae_early.loss_curve_),
        ("validation_score", sae_early.validation_scores_),
        ("mean_activation", sae_early.mean_activation_curve_),
    ]:
        np.testing.assert_array_equal(display.lines_[key].get_xdata(), epochs)
        np.testing.assert_array_equal(display.lines_[key].get_ydata(), fitted)
    labels = [(ax.get_xlabel(), ax.get_ylabel()) for ax in display.axes_]
    assert labels == [
        ("epoch", "training loss (J)"),
        ("epoch", "validation score"),
        ("epoch", "mean activation"),
    ]
    assert display.target_line_.get_ydata()[0] == sae_early.sparsity_target_
    assert display.lines_["mean_activation"].axes is display.axes_[2]


def test_training_curves_without_validation_or_activation(digits01):
    sae = _fit(digits01[:200], n_components=8, solver="lbfgs")
    assert sae.validation_scores_ is None and sae.mean_activation_curve_ is None
    display = TrainingCurvesDisplay.from_estimator(sae)
    assert list(display.lines_) == ["loss"]
    assert display.target_line_ is None
    assert display.axes_[0].get_xlabel() == "L-BFGS iteration"
    np.testing.assert_array_equal(display.lines_["loss"].get_ydata(), sae.loss_curve_)


def test_training_curves_target_of_a_tanh_code(digits01):
    sae = _fit(digits01[:200], n_components=8, activation="tanh", sparsity_target=0.1)
    display = TrainingCurvesDisplay.from_estimator(sae)
    # KL reads a tanh code h as (1 + h) / 2: the target on h's scale is 2 rho - 1
    assert display.target_line_.get_ydata()[0] == pytest.approx(2 * 0.1 - 1)


def test_training_curves_no_target_line_without_kl(sae_dead):
    display = TrainingCurvesDisplay.from_estimator(sae_dead)
    assert display.target_line_ is None


def test_training_curves_x_label(sae):
    display = TrainingCurvesDisplay.from_estimator(sae, x_label="block")
    assert [ax.get_xlabel() for ax in display.axes_] == ["block", "block"]


def test_training_curves_in_given_axes(sae):
    fig, axes = plt.subplots(2, 1)
    display = TrainingCurvesDisplay.from_estimator(sae, ax=axes)
    assert display.figure_ is fig and list(display.axes_) == list(axes)
    with pytest.raises(ValueError, match="ax must hold 2 axes"):
        TrainingCurvesDisplay.from_estimator(sae, ax=axes[:1])


def test_training_curves_constructor_checks_its_values():
    with pytest.raises(ValueError, match="loss"):
        TrainingCurvesDisplay([]).plot()


# ------------------------------------------------------------- activation profile
def test_activation_profile_equals_the_fitted_attributes(sae_dead):
    display = ActivationProfileDisplay.from_estimator(sae_dead)
    heights = [bar.get_height() for bar in display.bars_]
    np.testing.assert_allclose(heights, sae_dead.mean_activation_)
    np.testing.assert_array_equal(display.units_, np.arange(24))
    dead = np.flatnonzero(sae_dead.dead_components_)
    np.testing.assert_array_equal(display.dead_markers_.get_xdata(), dead)
    np.testing.assert_allclose(display.dead_markers_.get_ydata(), sae_dead.mean_activation_[dead])
    red = matplotlib.colors.to_rgba("tab:red")
    marked = [bar.get_facecolor() == red for bar in display.bars_]
    assert marked == list(sae_dead.dead_components_)
    assert display.ax_.get_xlabel() == "unit"
    assert display.ax_.get_ylabel() == "mean activation"
    assert f"dead units ({dead.size})" in [t.get_text() for t in display.ax_.get_legend().texts]
    assert display.target_line_ is None  # L1 has no target


def test_activation_profile_sorted_with_target(sae):
    display = ActivationProfileDisplay.from_estimator(sae, sort=True)
    order = np.argsort(sae.mean_activation_, kind="stable")
    np.testing.assert_array_equal(display.units_, order)
    heights = np.array([bar.get_height() for bar in display.bars_])
    np.testing.assert_allclose(heights, sae.mean_activation_[order])
    assert np.all(np.diff(heights) >= 0)
    assert display.target_line_.get_ydata()[0] == sae.sparsity_target_
    assert display.ax_.get_xlabel() == "unit, by increasing mean activation"


def test_activation_profile_sorted_marks_the_dead_units_where_they_are_drawn(sae_dead):
    display = ActivationProfileDisplay.from_estimator(sae_dead, sort=True)
    dead_drawn = sae_dead.dead_components_[display.units_]
    red = matplotlib.colors.to_rgba("tab:red")
    assert [bar.get_facecolor() == red for bar in display.bars_] == list(dead_drawn)
    np.testing.assert_array_equal(display.dead_markers_.get_xdata(), np.flatnonzero(dead_drawn))


def test_activation_profile_on_other_data(sae_dead, digits01):
    X = digits01[:100]
    display = ActivationProfileDisplay.from_estimator(sae_dead, X)
    raw = sae_dead.transform(X) * sae_dead.code_scale_
    heights = [bar.get_height() for bar in display.bars_]
    np.testing.assert_allclose(heights, raw.mean(axis=0))
    # a unit dead on the training data is dead on any part of it
    on_x = np.zeros(24, dtype=bool)
    on_x[display.dead_markers_.get_xdata().astype(int)] = True
    assert on_x[sae_dead.dead_components_].all()


def test_activation_profile_checks_shapes():
    with pytest.raises(ValueError, match="dead_components"):
        ActivationProfileDisplay([0.1, 0.2], [True]).plot()
    with pytest.raises(ValueError, match="mean_activation"):
        ActivationProfileDisplay([]).plot()


# ---------------------------------------------------------------- matplotlib optional
def test_matplotlib_is_imported_lazily_and_named_when_missing():
    code = (
        "import sys\n"
        "import skl_sparse_ae.plotting as p\n"
        "assert 'matplotlib' not in sys.modules, 'imported at module level'\n"
        "sys.modules['matplotlib'] = None  # as if it were not installed\n"
        "sys.modules['matplotlib.pyplot'] = None\n"
        "try:\n"
        "    p.ActivationProfileDisplay([0.1, 0.2]).plot()\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "ActivationProfileDisplay.plot needs matplotlib" in result.stdout
    assert "skl_sparse_ae[plot]" in result.stdout


def test_components_display_of_a_stacked_model_names_the_fix(digits01):
    """A narrow code gets a hidden layer by default: its components_ are not images, and
    the error says why and what to do; the encoder's first layer still tiles."""
    stacked = _fit(np.asarray(digits01[:200]), n_components=4, hidden_layer_sizes="auto")
    assert stacked.hidden_layer_sizes_ == (128,)
    with pytest.raises(ValueError, match=r"hidden_layer_sizes=\(\)"):
        ComponentsDisplay.from_estimator(stacked, image_shape=(8, 8))
    display = ComponentsDisplay.from_estimator(stacked, image_shape=(8, 8), weights="encoder")
    assert display.components.shape == (128, 64)
