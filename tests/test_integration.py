"""The estimator inside scikit-learn's machinery: search, pipelines, output
containers, persistence, dtypes and random state."""

import pathlib
import pickle
import subprocess
import sys
import textwrap
import warnings

import joblib
import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch
from classic import CLASSIC
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline

from skl_sparse_ae import SparseAutoencoderTransformer

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FAST = {**CLASSIC, "n_components": 5, "max_iter": 5, "random_state": 0}


@pytest.fixture(scope="module")
def fitted(request):
    """A small fitted model and its training data (float64, 80 x 8)."""
    X = np.random.RandomState(1).rand(80, 8)
    return SparseAutoencoderTransformer(**FAST).fit(X), X


# ------------------------------------------------------------------ model selection
def test_grid_search_over_pipeline_steps(digits_raw):
    X, y = digits_raw
    rows = np.random.RandomState(0).permutation(X.shape[0])[:300]
    X, y = X[rows] / 16.0, y[rows]
    sae = SparseAutoencoderTransformer(n_components=16, max_iter=20, random_state=0)
    param_grid = [
        {"reduce": [PCA(16)]},
        {"reduce": [sae], "reduce__sparsity_weight": [0.0, 3.0]},
    ]
    pipe = Pipeline([("reduce", PCA()), ("clf", LogisticRegression(max_iter=300))])
    search = GridSearchCV(pipe, param_grid=param_grid, cv=3, n_jobs=2).fit(X, y)

    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == 3
    assert np.isfinite(scores).all()
    # Measured: PCA(16) 0.95, the autoencoders (20 epochs) 0.82-0.83.
    assert search.best_score_ == scores.max()
    # The refitted step is the best candidate's, fitted on all the data.
    best = search.cv_results_["params"][search.best_index_]
    reducer = search.best_estimator_.named_steps["reduce"]
    assert type(reducer) is type(best["reduce"])
    assert reducer.get_params() == clone(best["reduce"]).get_params()
    assert reducer.n_features_in_ == 64
    # The grid's template estimator was cloned, never fitted.
    assert not hasattr(sae, "module_")
    sae_params = search.cv_results_["param_reduce__sparsity_weight"]
    assert sorted(v for v in sae_params if v is not np.ma.masked) == [0.0, 3.0]


def test_grid_search_without_scoring_uses_negative_mse(digits01):
    search = GridSearchCV(
        SparseAutoencoderTransformer(n_components=8, max_iter=10, random_state=0),
        {"sparsity_weight": [0.0, 1.0]},
        cv=3,
    ).fit(digits01)
    # Each candidate's score is -MSE on the held-out fold, as computed here by hand.
    for i, params in enumerate(search.cv_results_["params"]):
        fold_scores = []
        for train, test in KFold(3).split(digits01):
            model = SparseAutoencoderTransformer(
                n_components=8, max_iter=10, random_state=0, **params
            ).fit(digits01[train])
            recon = model.inverse_transform(model.transform(digits01[test]))
            fold_scores.append(-np.mean((recon - digits01[test]) ** 2))
        assert search.cv_results_["mean_test_score"][i] == pytest.approx(np.mean(fold_scores))
    # It is the estimator's own score: -MSE of the refitted best model.
    best = search.best_estimator_
    mse = np.mean((best.inverse_transform(best.transform(digits01)) - digits01) ** 2)
    assert best.score(digits01) == pytest.approx(-mse, rel=1e-10)
    assert best.score(digits01) == pytest.approx(-best.reconstruction_err_, rel=1e-10)


def test_clone_gives_an_unfitted_copy_with_equal_params(fitted):
    sae, _ = fitted
    twin = clone(sae)
    assert twin.get_params() == sae.get_params()
    assert not hasattr(twin, "module_")
    assert not hasattr(twin, "n_features_in_")


# ------------------------------------------------------------------ containers
def test_pandas_output_and_feature_names(fitted):
    _, X = fitted
    columns = [f"pixel_{i}" for i in range(X.shape[1])]
    df = pd.DataFrame(X, columns=columns)
    sae = SparseAutoencoderTransformer(**FAST).set_output(transform="pandas")
    out = sae.fit_transform(df)
    assert isinstance(out, pd.DataFrame)
    expected = [f"sparseautoencodertransformer{i}" for i in range(5)]
    assert list(out.columns) == expected
    assert list(out.index) == list(df.index)
    np.testing.assert_array_equal(sae.feature_names_in_, columns)
    np.testing.assert_array_equal(sae.get_feature_names_out(), expected)
    # transform as well as fit_transform, and the values are the numpy ones.
    np.testing.assert_array_equal(
        sae.transform(df).to_numpy(), sae.set_output(transform="default").transform(df)
    )


def test_polars_output(fitted):
    _, X = fitted
    sae = SparseAutoencoderTransformer(**FAST).set_output(transform="polars")
    out = sae.fit_transform(pl.DataFrame(X, schema=[f"x{i}" for i in range(X.shape[1])]))
    assert isinstance(out, pl.DataFrame)
    assert out.columns == [f"sparseautoencodertransformer{i}" for i in range(5)]
    np.testing.assert_array_equal(sae.feature_names_in_, [f"x{i}" for i in range(X.shape[1])])


def test_feature_names_out_without_input_names(fitted):
    sae, _ = fitted
    names = sae.get_feature_names_out()
    assert names.dtype == object
    assert list(names) == [f"sparseautoencodertransformer{i}" for i in range(5)]
    assert not hasattr(sae, "feature_names_in_")


# ------------------------------------------------------------------ persistence
def test_pickle_round_trip(fitted):
    sae, X = fitted
    loaded = pickle.loads(pickle.dumps(sae))
    np.testing.assert_array_equal(loaded.transform(X), sae.transform(X))
    np.testing.assert_array_equal(loaded.components_, sae.components_)
    assert loaded.get_params() == sae.get_params()
    assert loaded.device_ == "cpu"
    # The loaded model can go on training.
    loaded.partial_fit(X)
    assert loaded.n_iter_ == sae.n_iter_ + 1


def test_joblib_round_trip_in_a_fresh_process(fitted, tmp_path):
    sae, X = fitted
    joblib.dump(sae, tmp_path / "model.joblib")
    np.save(tmp_path / "X.npy", X)
    script = textwrap.dedent(
        f"""
        import joblib, numpy as np
        model = joblib.load({str(tmp_path / "model.joblib")!r})
        X = np.load({str(tmp_path / "X.npy")!r})
        np.save({str(tmp_path / "codes.npy")!r}, model.transform(X))
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    # Another process may run other kernels (thread count, MKL's code path): measured
    # with the child under ATEN_CPU_CAPABILITY=default, MKL_ENABLE_INSTRUCTIONS=AVX2 or
    # MKL_CBWR=COMPATIBLE, 2.2e-16 at most. A load that rebuilds the network in torch's
    # default float32 moves the codes by 8.4e-8. (The in-process round trip is exact.)
    np.testing.assert_allclose(
        np.load(tmp_path / "codes.npy"), sae.transform(X), rtol=1e-12, atol=1e-12
    )


def test_model_loaded_through_read_only_memmaps_transforms_and_trains(fitted, tmp_path):
    """joblib.load(mmap_mode="r") hands numpy attributes back as read-only memmaps."""
    sae, X = fitted
    joblib.dump(sae, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib", mmap_mode="r")
    assert isinstance(loaded.components_, np.memmap)
    assert not loaded.components_.flags.writeable
    np.testing.assert_array_equal(loaded.transform(X), sae.transform(X))
    loaded.partial_fit(X)  # training goes on: nothing writes into the memmaps
    assert loaded.n_iter_ == sae.n_iter_ + 1


def test_transform_runs_in_inference_mode(fitted, monkeypatch):
    """No autograd graph is recorded while encoding (memory and speed)."""
    sae, X = fitted
    seen = []
    encode = sae.module_.encode

    def spy(x):
        seen.append(torch.is_inference_mode_enabled())
        return encode(x)

    monkeypatch.setattr(sae.module_, "encode", spy)
    sae.transform(X)
    assert seen and all(seen)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_fit_on_read_only_memmap_without_warnings(tmp_path, solver):
    X = np.random.RandomState(0).rand(60, 8)
    joblib.dump(X, tmp_path / "X.joblib")
    X_mm = joblib.load(tmp_path / "X.joblib", mmap_mode="r")
    assert isinstance(X_mm, np.memmap)
    assert not X_mm.flags.writeable
    # Enough iterations to converge, so that no ConvergenceWarning is expected
    # either: any warning at all (torch's non-writable tensor warning, a
    # requires_grad conversion warning, ...) fails the test. tol="auto": an explicit
    # tol=1e-2 per feature stopped Adam at FVU 0.95, which FitQualityWarning reports.
    sae = SparseAutoencoderTransformer(n_components=4, max_iter=500, solver=solver, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        codes = sae.fit(X_mm).transform(X_mm)
        sae.score(X_mm)
        sae.inverse_transform(codes)
    np.testing.assert_array_equal(codes, sae.transform(X))


def test_converged_fits_emit_no_warnings_in_a_fresh_process():
    """No warning at all from converged fits (torch warns some things once per
    process only, so a fresh process is the only reliable place to look)."""
    script = textwrap.dedent(
        """
        import warnings
        import numpy as np
        from skl_sparse_ae import SparseAutoencoderTransformer

        warnings.simplefilter("error")
        X = np.random.RandomState(0).rand(60, 8)
        for solver in ("adam", "lbfgs"):
            sae = SparseAutoencoderTransformer(
                n_components=4, max_iter=500, solver=solver, random_state=0
            )
            sae.fit(X).transform(X)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


# ------------------------------------------------------------------ dtypes
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(fitted, dtype):
    _, X = fitted
    X = X.astype(dtype)
    sae = SparseAutoencoderTransformer(**FAST)
    codes = sae.fit_transform(X)
    assert codes.dtype == dtype
    assert sae.transform(X).dtype == dtype
    assert sae.inverse_transform(codes).dtype == dtype
    assert sae.components_.dtype == dtype
    assert next(sae.module_.parameters()).dtype == getattr(torch, np.dtype(dtype).name)


def _moment_dtypes(sae):
    return {
        v.dtype
        for state in sae._optimizer_state["state"].values()
        for k, v in state.items()
        if k != "step"
    }


@pytest.mark.parametrize(
    "training_dtype, trained_in",
    [("auto", torch.float32), ("float64", torch.float64), ("float32", torch.float32)],
)
def test_training_dtype_sets_the_arithmetic_and_the_model_keeps_the_data_dtype(
    fitted, training_dtype, trained_in
):
    """Adam's moments are in the training dtype; the kept model in the data's."""
    _, X = fitted
    sae = SparseAutoencoderTransformer(**{**FAST, "training_dtype": training_dtype})
    codes = sae.fit_transform(X)
    assert _moment_dtypes(sae) == {trained_in}
    assert next(sae.module_.parameters()).dtype == torch.float64
    assert codes.dtype == sae.components_.dtype == np.float64
    # the diagnostics are those of the kept (float64) model, exactly
    assert sae.reconstruction_err_ == pytest.approx(-sae.score(X), rel=1e-12)
    sae.partial_fit(X)  # continues in the training dtype
    assert _moment_dtypes(sae) == {trained_in}
    assert next(sae.module_.parameters()).dtype == torch.float64


def test_float32_training_follows_float64_training(fitted):
    """The same start, the same batches, no noise: the loss curves agree to float32's
    rounding (a float32 path that skipped a step or lost a term would not)."""
    _, X = fitted
    params = {**FAST, "noise": 0.0, "max_iter": 20, "tol": 0.0}
    curves = [
        SparseAutoencoderTransformer(**{**params, "training_dtype": dtype}).fit(X).loss_curve_
        for dtype in ("float32", "float64")
    ]
    np.testing.assert_allclose(curves[0], curves[1], rtol=1e-5)  # measured: 2e-7


def test_lbfgs_trains_in_the_data_dtype_by_default():
    from skl_sparse_ae._defaults import data_facts, resolve
    from skl_sparse_ae._estimator import SparseAutoencoderTransformer as Est

    X64 = np.random.default_rng(0).random((20, 4))

    def dtype(est, X, device="cpu"):
        return resolve(est.get_params(), data_facts(X), device_type=device).training_dtype

    assert dtype(Est(solver="lbfgs"), X64) == "float64"
    assert dtype(Est(solver="lbfgs"), X64.astype(np.float32)) == "float32"
    assert dtype(Est(solver="lbfgs"), X64, "mps") == "float32"
    assert dtype(Est(), X64) == "float32"
    with pytest.raises(ValueError, match=r"training_dtype='float64'.*MPS"):
        dtype(Est(training_dtype="float64"), X64, "mps")


def test_float32_model_transforms_float64_input(fitted):
    _, X = fitted
    sae = SparseAutoencoderTransformer(**FAST).fit(X.astype(np.float32))
    codes64 = sae.transform(X)
    assert codes64.dtype == np.float64
    np.testing.assert_allclose(codes64, sae.transform(X.astype(np.float32)), atol=1e-6)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8])
def test_integer_input(dtype):
    X = np.random.RandomState(0).randint(0, 17, size=(50, 8)).astype(dtype)
    sae = SparseAutoencoderTransformer(**FAST)
    codes = sae.fit_transform(X)
    assert codes.dtype == np.float64
    assert np.isfinite(codes).all()
    np.testing.assert_array_equal(codes, sae.transform(X.astype(np.float64)))


# ------------------------------------------------------------------ randomness
def test_same_random_state_gives_bit_identical_refits(fitted):
    _, X = fitted
    params = {**FAST, "noise": 0.1, "early_stopping": True}
    first = SparseAutoencoderTransformer(**params).fit(X)
    second = SparseAutoencoderTransformer(**params).fit(X)
    np.testing.assert_array_equal(first.transform(X), second.transform(X))
    assert first.loss_curve_ == second.loss_curve_
    # Refitting the same object gives the same result too.
    np.testing.assert_array_equal(first.fit(X).transform(X), second.transform(X))


def test_different_random_states_differ(fitted):
    _, X = fitted
    a = SparseAutoencoderTransformer(**{**FAST, "random_state": 0}).fit_transform(X)
    b = SparseAutoencoderTransformer(**{**FAST, "random_state": 1}).fit_transform(X)
    assert not np.allclose(a, b)


def test_random_state_none_differs_between_fits(fitted):
    _, X = fitted
    sae = SparseAutoencoderTransformer(**{**FAST, "random_state": None})
    assert not np.allclose(sae.fit_transform(X), clone(sae).fit_transform(X))


def test_random_state_instance_is_accepted(fitted):
    _, X = fitted
    a = SparseAutoencoderTransformer(**{**FAST, "random_state": np.random.RandomState(3)})
    b = SparseAutoencoderTransformer(**{**FAST, "random_state": np.random.RandomState(3)})
    np.testing.assert_array_equal(a.fit_transform(X), b.fit_transform(X))


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_fit_leaves_the_global_torch_rng_alone(fitted, solver):
    _, X = fitted
    params = {**FAST, "solver": solver, "noise": 0.1}
    if solver == "adam":
        params["early_stopping"] = True
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    sae = SparseAutoencoderTransformer(**params).fit(X)
    sae.transform(X)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_fit_does_not_depend_on_the_global_torch_seed(fitted):
    _, X = fitted
    params = {**FAST, "noise": 0.1, "early_stopping": True}
    torch.manual_seed(1)
    a = SparseAutoencoderTransformer(**params).fit_transform(X)
    torch.manual_seed(2)
    b = SparseAutoencoderTransformer(**params).fit_transform(X)
    np.testing.assert_array_equal(a, b)


def test_components_are_the_code_layers_decoder_rows():
    """One layer: (n_components, n_features), as PCA. Stacked: the code layer's decoder,
    (n_components, hidden_layer_sizes[-1]) (documented departure from PCA's shape)."""
    X = np.random.RandomState(0).rand(60, 8)
    one = SparseAutoencoderTransformer(**FAST).fit(X)
    assert one.components_.shape == (FAST["n_components"], 8)
    stacked = SparseAutoencoderTransformer(**{**FAST, "hidden_layer_sizes": (6,)}).fit(X)
    assert stacked.components_.shape == (FAST["n_components"], 6)
    np.testing.assert_array_equal(
        stacked.components_, stacked.module_.decoder_weight(2).detach().numpy()
    )


def test_models_pickled_by_version_0_1_0_load_transform_and_train():
    """``data/models_v0.1.0.pkl``: KL, TopK and a stacked L1 model pickled by 0.1.0
    (commit 1093a8f, before training was split into modules), with their codes then.

    The codes were computed on another machine: BLAS and torch pick their kernels by
    CPU (and thread count), so they agree to rounding, not to the bit.
    """
    path = pathlib.Path(__file__).parent / "data" / "models_v0.1.0.pkl"
    with open(path, "rb") as f:
        saved = pickle.load(f)
    X = saved["X"]
    for name, model in saved["models"].items():
        # Measured: kernels of other CPUs, MKL or thread counts differ by 1.3e-15 at most
        # (codes up to 2.2); the standardised input rounded to float32 (a transform in
        # the float32 training dtype) moves the codes by 1.8e-8 to 6.2e-8.
        np.testing.assert_allclose(
            model.transform(X), saved["codes"][name], rtol=1e-12, atol=1e-12, err_msg=name
        )
        n_iter = model.n_iter_
        model.partial_fit(X)  # the optimiser and generator states resume
        assert model.n_iter_ == n_iter + 1
        assert np.isfinite(model.transform(X)).all()
    assert saved["models"]["topk"].module_.sparsity == "topk"
    # they trained in their data's dtype: a continued fit still does
    assert {m.training_dtype for m in saved["models"].values()} == {"float64"}
    assert (saved["models"]["topk"].transform(X) > 0).sum(axis=1).max() <= 3
