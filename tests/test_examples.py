"""The gallery examples run end to end, draw their figures and print the expected numbers.

Each example is run in this process, as sphinx-gallery runs it (``__name__`` is
``"__main__"``), mostly with ``--quick`` (smaller fits); the test then reads what
it printed and the Displays it left in its namespace.
"""

import importlib.util
import re
import runpy
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from skl_sparse_ae.plotting import (  # noqa: E402
    ActivationProfileDisplay,
    ComponentsDisplay,
    TrainingCurvesDisplay,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def run_example(monkeypatch, capsys):
    """``run_example(name, *args)`` -> (the example's globals, its stdout, its figures)."""

    def run(name, *args):
        plt.close("all")
        monkeypatch.setattr(sys, "argv", [str(EXAMPLES / name), *args])
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*non-interactive.*")  # plt.show()
            namespace = runpy.run_path(str(EXAMPLES / name), run_name="__main__")
        figures = [plt.figure(n) for n in plt.get_fignums()]
        return namespace, capsys.readouterr().out, figures

    yield run
    plt.close("all")


def _has_drawing(figure):
    return any(ax.has_data() or ax.images for ax in figure.axes)


def test_gallery_has_a_title_for_every_example():
    for path in EXAMPLES.glob("*.py"):
        lines = path.read_text().splitlines()
        assert lines[0] == '"""', path.name
        assert set(lines[2]) == {"="} and len(lines[2]) >= len(lines[1]), path.name


def test_plot_patch_filters(run_example):
    pytest.importorskip("PIL")  # load_sample_images needs Pillow
    ns, out, figures = run_example("plot_patch_filters.py", "--quick")
    match = re.search(r"achieved mean activation:\s+(\S+)", out)
    assert match, out
    # even the quick run lands near rho = 0.01 (measured 0.0103)
    assert 0.005 < float(match.group(1)) < 0.02
    assert float(match.group(1)) == pytest.approx(ns["sae"].mean_activation_.mean(), abs=1e-4)
    filters = ns["filters"]
    assert isinstance(filters, ComponentsDisplay)
    assert filters.mosaic_.shape == (5 * 9 - 1, 5 * 9 - 1)  # 25 filters of 8x8, 5 a row
    assert isinstance(ns["curves"], TrainingCurvesDisplay)
    assert len(figures) == 2 and all(_has_drawing(f) for f in figures)


def test_plot_compare_sparsity(run_example):
    ns, out, figures = run_example("plot_compare_sparsity.py", "--quick")
    lines = out.splitlines()
    table = {line.split()[0]: line.split() for line in lines[2:6]}
    assert set(table) == {"PCA", "KL", "L1", "TopK"}
    assert float(table["TopK"][2]) == 8.0  # "TopK (k=8)": L0 is exactly k
    probes = [float(row[-2]) for row in table.values()]
    assert min(probes) > 0.8, out
    profile = ns["profile"]  # the last of the three profiles, TopK's
    assert isinstance(profile, ActivationProfileDisplay)
    heights = sorted(bar.get_height() for bar in profile.bars_)
    np.testing.assert_allclose(heights, np.sort(ns["models"]["TopK (k=8)"].mean_activation_))
    # the text says the fits stop by their own rule: the page prints the epochs run
    for name, model in ns["models"].items():
        assert f"{name:<16}{model.n_iter_:>4} epochs (max_iter={model.max_iter})" in out
    # the accuracy bars start at 0, so their heights compare honestly
    assert figures[0].axes[2].get_ylim()[0] == 0.0
    assert len(figures) == 3 and all(_has_drawing(f) for f in figures)


def test_plot_denoising_beats_the_plain_autoencoder(run_example):
    # the full run: two fits of at most 200 epochs on 1347 digits take seconds
    ns, out, figures = run_example("plot_denoising.py")
    mse = {
        key: float(re.search(rf"{key}.*?\s(\d\.\d+)$", out, re.M).group(1))
        for key in ("corrupted input itself", "denoising", "plain")
    }
    # measured 0.1178, 0.0390, 0.0436
    assert mse["denoising"] < mse["plain"] < mse["corrupted input itself"], out
    assert isinstance(ns["components"], ComponentsDisplay)
    assert list(ns["curves"].lines_) == ["loss", "validation_score", "mean_activation"]
    assert len(figures) == 3 and all(_has_drawing(f) for f in figures)


def test_plot_pipeline_gridsearch(run_example):
    ns, out, figures = run_example("plot_pipeline_gridsearch.py", "--quick")
    accuracy = float(re.search(r"held-out accuracy of the best pipeline: (\S+)", out).group(1))
    assert accuracy > 0.9, out
    assert "SparseAutoencoderTransformer" in out and "PCA" in out
    assert len(ns["search"].cv_results_["params"]) == 2
    np.testing.assert_array_equal(
        ns["curves"].lines_["loss"].get_ydata(), ns["best_sae"].loss_curve_
    )
    assert len(figures) == 2 and all(_has_drawing(f) for f in figures)


def test_plot_scaling_out_on_a_tiny_local_cluster(run_example):
    missing = [
        name
        for name in ("dask.array", "dask.distributed", "dask_ml")
        if importlib.util.find_spec(name.split(".")[0]) is None
        or importlib.util.find_spec(name) is None
    ]
    if missing:
        pytest.skip(
            f"the scaling-out example needs the dask extra ({', '.join(missing)} not "
            'installed): pip install -e ".[dask]"'
        )
    ns, out, figures = run_example("plot_scaling_out.py", "--quick")
    assert "same best parameters: True" in out, out
    assert "same scores for every candidate: True" in out, out
    assert ns["search_dask"].best_params_ == ns["search_loky"].best_params_
    model = ns["model"]
    assert model.n_iter_ == ns["dX"].numblocks[0] * ns["n_passes"]  # one call per block
    assert len(model.loss_curve_) == model.n_iter_
    assert ns["codes"].shape == (ns["n_rows"], 32)
    # the chunked transform equals transform on the computed rows
    first = ns["big"].blocks[0].compute()
    np.testing.assert_allclose(ns["codes"].blocks[0].compute(), model.transform(first))
    assert ns["gap"] < 0.2, out
    assert ns["client"].status == "closed"
    assert {ax.get_xlabel() for ax in ns["curves"].axes_} == {"partial_fit call (one block)"}
    assert len(figures) == 1 and _has_drawing(figures[0])


def test_plot_onnx_serving_agrees_with_the_pipeline(run_example):
    pytest.importorskip("skl2onnx")
    pytest.importorskip("onnxruntime")
    ns, out, figures = run_example("plot_onnx_serving.py")
    assert "labels equal to pipe.predict: 100.00%" in out, out
    gap = float(re.search(r"max \|difference\| of the probabilities: (\S+)", out).group(1))
    assert gap < 1e-5, out  # float32 rounding (measured 9e-07)
    np.testing.assert_array_equal(ns["labels"], ns["pipe"].predict(ns["X_test"]))
    np.testing.assert_allclose(ns["codes"], ns["sae"].transform(ns["Z32"]), atol=1e-5, rtol=1e-5)
    assert (np.count_nonzero(ns["codes"], axis=1) <= 8).all()  # TopK's k in ONNX too
    assert float(re.search(r"held-out accuracy \(scikit-learn\): (\S+)", out).group(1)) > 0.9
    assert len(figures) == 1 and all(_has_drawing(f) for f in figures)
