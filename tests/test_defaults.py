"""The options behind the defaults: loss="auto", code scaling, the steered sparsity
weight, the plateau schedule and tol's scale (issue "Defaults that win")."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from skl_sparse_ae import SparseAutoencoderTransformer
from skl_sparse_ae._defaults import DataFacts, resolve
from skl_sparse_ae._objective import Objective
from skl_sparse_ae._training import STEER_BOUNDS, STEER_RATE, STEER_TOLERANCE, steer_weight

FAST = {"n_components": 16, "max_iter": 5, "random_state": 0}


@pytest.fixture
def X(digits01):
    return np.array(digits01[:300])


def _fit(X, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return SparseAutoencoderTransformer(**{**FAST, **params}).fit(X)


# ------------------------------------------------------------------- loss="auto"
def test_auto_loss_is_cross_entropy_for_data_in_the_unit_interval(X):
    sae = _fit(X, loss="auto")
    assert sae.loss_ == "bce"
    assert sae.module_.output_activation == "sigmoid"
    assert (
        (sae.inverse_transform(sae.transform(X)) > 0)
        & (sae.inverse_transform(sae.transform(X)) < 1)
    ).all()


def test_auto_loss_is_squared_error_otherwise(X):
    Xs = StandardScaler().fit_transform(X)
    sae = _fit(Xs, loss="auto")
    assert sae.loss_ == "mse" and sae.module_.output_activation == "linear"
    # a linear output asked for: squared error even on [0, 1] data
    assert _fit(X, loss="auto", output_activation="linear").loss_ == "mse"


def test_explicit_loss_wins(X):
    assert _fit(X, loss="mse").loss_ == "mse"
    assert _fit(X, loss="bce").loss_ == "bce"


def test_auto_loss_is_kept_by_continued_fits(X):
    sae = _fit(X, loss="auto")
    sae.partial_fit(X[:50])
    assert sae.loss_ == "bce"
    with pytest.raises(ValueError, match=r"loss='bce' \(chosen by loss='auto' at the first fit\)"):
        sae.partial_fit(X[:50] * 2 - 0.5)
    assert sae.loss_ == "bce" and sae.n_iter_ == FAST["max_iter"] + 1


# ------------------------------------------------------------------ code scaling
STATISTICS = {
    "rms": lambda codes: np.sqrt((codes**2).mean(axis=0)),
    "mean": lambda codes: np.abs(codes).mean(axis=0),
}


@pytest.mark.parametrize("scaling", ["rms", "mean"])
def test_code_scaling_divides_by_the_training_statistic_and_keeps_zeros(X, scaling):
    raw = _fit(X, sparsity="topk", k=3, code_scaling=None)
    scaled = _fit(X, sparsity="topk", k=3, code_scaling=scaling)
    codes_raw, codes = raw.transform(X), scaled.transform(X)
    # the same network (the scale is applied after training) ...
    np.testing.assert_array_equal(raw.components_, scaled.components_)
    # ... codes divided per unit by their training statistic: zeros stay zeros
    np.testing.assert_array_equal(codes == 0, codes_raw == 0)
    statistic = STATISTICS[scaling](codes_raw)
    np.testing.assert_allclose(
        scaled.code_scale_, np.where(statistic > 0, statistic, 1.0), rtol=1e-9
    )
    alive = statistic > 0
    np.testing.assert_allclose(STATISTICS[scaling](codes[:, alive]), 1.0, rtol=1e-9)
    # inverse_transform takes what transform returns: the same reconstructions
    np.testing.assert_allclose(
        scaled.inverse_transform(codes), raw.inverse_transform(codes_raw), rtol=1e-9, atol=1e-12
    )
    assert scaled.score(X) == pytest.approx(raw.score(X), rel=1e-12)
    np.testing.assert_array_equal(raw.code_scale_, np.ones(16))


# ------------------------------------------------------ the steered sparsity weight
def test_steer_weight_is_a_multiplicative_step_toward_the_target():
    spec = Objective(sparsity="kl", sparsity_target=0.05, sparsity_weight=2.0)
    assert 0 < STEER_RATE <= 1
    up, on_target = steer_weight(spec, 0.2)  # four times too active
    assert up.sparsity_weight == pytest.approx(2.0 * 4.0**STEER_RATE) and not on_target
    down, _ = steer_weight(spec, 0.0125)  # four times too quiet
    assert down.sparsity_weight == pytest.approx(2.0 / 4.0**STEER_RATE)
    ratio = 1 + STEER_TOLERANCE / 2
    same, on_target = steer_weight(spec, 0.05 * ratio)
    assert on_target and same.sparsity_weight == pytest.approx(2.0 * ratio**STEER_RATE)
    assert not steer_weight(spec, 0.05 * (1 + 2 * STEER_TOLERANCE))[1]
    assert up.sparsity_target == 0.05 and up.loss == spec.loss


def test_a_weight_held_at_its_bound_counts_as_settled():
    """An unreachable target (too quiet a code, the weight already at its floor) must
    not keep training going until max_iter: the step is clipped, and settled."""
    low, high = STEER_BOUNDS
    floor = Objective(sparsity="kl", sparsity_target=0.5, sparsity_weight=low)
    held, settled = steer_weight(floor, 0.4)  # 20 % too quiet, yet no lower weight exists
    assert held.sparsity_weight == low and settled
    ceiling = Objective(sparsity="kl", sparsity_target=0.05, sparsity_weight=high)
    assert steer_weight(ceiling, 0.2) == (ceiling, True)
    free = Objective(sparsity="kl", sparsity_target=0.5, sparsity_weight=1.0)
    assert not steer_weight(free, 0.4)[1]  # off target and free to move: not settled


@pytest.mark.parametrize("target", [0.05, 0.15])
@pytest.mark.parametrize("scaled", [False, True])
def test_auto_weight_meets_the_target(digits_raw, target, scaled):
    X = digits_raw[0][:600] / 16.0
    if scaled:
        X = StandardScaler().fit_transform(X)
    sae = _fit(
        X, n_components=32, sparsity_target=target, noise=0.0, max_iter=60, sparsity_weight="auto"
    )
    assert sae.mean_activation_.mean() == pytest.approx(target, rel=0.3)
    assert sae.sparsity_weight_ != 1.0  # it moved from its start


def test_a_fixed_weight_is_not_steered(X):
    sae = _fit(X, sparsity_weight=0.3)
    assert sae.sparsity_weight_ == 0.3


# ---------------------------------------------------------- plateau schedule, tol
@pytest.mark.parametrize("patience", [1, 3])
def test_plateau_schedule_divides_the_step_twice_before_stopping(X, patience):
    """tol=1e9: every epoch after the first is no improvement, so each plateau takes
    patience + 1 epochs (the first patience + 2): 3 * patience + 4 epochs in all."""
    params = {"tol": 1e9, "n_iter_no_change": patience, "max_iter": 100, "sparsity_weight": 0.1}
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        sae = _fit(X, learning_rate_schedule="plateau", learning_rate=1e-3, **params)
        constant = _fit(X, learning_rate_schedule="constant", **params)
    assert sae.n_iter_ == 3 * patience + 4
    assert constant.n_iter_ == patience + 2
    lr = sae._optimizer_state["param_groups"][0]["lr"]
    assert lr == pytest.approx(1e-5)


def test_steered_fits_do_not_stop_before_the_target_is_met(X, capsys):
    """tol=1e9 makes every epoch after the first "no improvement": a fixed weight stops
    after 3 epochs (patience 1); a steered one goes on until the batches' mean
    activation is within STEER_TOLERANCE of the target."""
    params = {"tol": 1e9, "n_iter_no_change": 1, "learning_rate_schedule": "constant"}
    params["learning_rate"] = 3e-3  # slow enough that the target is not met at once
    params["max_iter"] = 300
    params["hidden_layer_sizes"] = ()  # one layer's steering (16 units would get a hidden one)
    fixed = _fit(X, sparsity_weight=1.0, noise=0.0, **params)
    steered = _fit(X, sparsity_weight="auto", sparsity_target=0.05, noise=0.0, verbose=1, **params)
    assert fixed.n_iter_ == 3
    assert steered.n_iter_ > 3
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Epoch")]
    last = [float(line.split("mean activation ")[1].split(",")[0]) for line in lines[-2:]]
    assert all(abs(a / 0.05 - 1) <= STEER_TOLERANCE for a in last)


# ------------------------------------------------------- the "auto" training schedule
def _resolve(n_samples=1347, n_features=64, **params):
    """The resolved configuration of ``params`` on standardised data of this shape."""
    facts = DataFacts(
        n_samples, n_features, False, float(n_features), 1.0, None, np.dtype("float64")
    )
    return resolve(SparseAutoencoderTransformer(**params).get_params(), facts)


@pytest.mark.parametrize(
    "n_features, expected", [(13, 0.02), (64, 0.02), (784, 0.02 * (64 / 784) ** 0.5), (5000, 3e-3)]
)
def test_auto_learning_rate_of_kl_shrinks_with_the_input_width(n_features, expected):
    config = _resolve(n_features=n_features)
    assert config.learning_rate == pytest.approx(expected)
    # on standardised data (half a unit variance per feature to learn): 1e-3 per feature
    assert config.tol == pytest.approx(1e-3) and config.n_iter_no_change == 2


@pytest.mark.parametrize(
    "params, learning_rate",
    [
        ({"sparsity": "l1"}, 3e-3),
        ({"sparsity": None}, 3e-3),
        ({"sparsity": "l1", "activation": "relu"}, 1e-2),
        ({"sparsity": "topk"}, 1e-2),
        ({"sparsity": "jumprelu"}, 1e-2),
        ({"solver": "lbfgs"}, None),
    ],
)
def test_other_mechanisms_and_lbfgs_keep_the_calibrated_schedule(params, learning_rate):
    config = _resolve(**params)
    assert config.learning_rate == learning_rate
    assert config.tol == pytest.approx(1e-4)
    assert config.n_iter_no_change == 10


def test_explicit_schedule_wins_and_resolved_values_are_recorded(X):
    sae = _fit(X, learning_rate=0.005, tol=0.1, n_iter_no_change=1)
    assert sae.learning_rate_ == 0.005
    assert sae.tol_ == 0.1 and sae.n_iter_no_change_ == 1
    assert _fit(X).learning_rate_ == pytest.approx(0.02)
    assert _fit(X, solver="lbfgs", max_iter=3).learning_rate_ is None


@pytest.mark.parametrize(
    "n_samples, expected", [(50, 50), (1347, 200), (20000, 200), (60000, 600), (500000, 1000)]
)
def test_auto_batch_size_grows_with_the_data_within_its_range(n_samples, expected):
    assert _resolve(n_samples=n_samples).batch_size == expected
    assert _resolve(n_samples=n_samples, batch_size=64).batch_size == min(64, n_samples)


def test_data_facts_count_non_zeros_per_row_dense_and_sparse():
    """Every row of a 10000 x 40 matrix has 5 non-zeros (1 + its row number mod 5 at 5
    random places; FACT_ROWS sampled rows for dense X, the known count for CSR): 5.0
    both ways. Dividing the sampled rows' count by all n rows gives 1.67 and fails."""
    import scipy.sparse as sp

    from skl_sparse_ae._defaults import FACT_ROWS, data_facts

    rng = np.random.default_rng(0)
    n, d = 10000, 40
    assert n > FACT_ROWS  # the dense count is a sample's
    X = np.zeros((n, d))
    for i in range(n):
        X[i, rng.choice(d, size=5, replace=False)] = 0.1 + (i % 5) / 10
    for matrix in (X, sp.csr_matrix(X)):
        facts = data_facts(matrix)
        assert facts.nonzeros_per_row == pytest.approx(5.0)
        assert facts.in_unit_interval and (facts.n_samples, facts.n_features) == (n, d)


# --------------------------------------------- the user guide's table and the module
def test_the_user_guide_shows_the_modules_table():
    """The guide embeds ``defaults_table()`` verbatim: editing one without the other fails."""
    import pathlib

    from skl_sparse_ae._defaults import defaults_table

    guide = (pathlib.Path(__file__).parents[1] / "docs" / "user_guide.md").read_text()
    assert defaults_table() in guide


#: A representative fit of each row of the table: the parameters and whether X lies in
#: [0, 1] with at least 8 non-zeros a row (digits / 16).
ROW_FITS = {
    "bounded code: KL by Adam, no hidden layer": {},
    "bounded code: KL by Adam, one hidden layer": {"hidden_layer_sizes": (128,)},
    "bounded code: other stacked (deeper KL, L1, none)": {"hidden_layer_sizes": (128, 64)},
    "bounded code: L1 or none, no hidden layer": {"sparsity": "l1"},
    "relu code: L1 or none": {"sparsity": "l1", "activation": "relu"},
    "sae: TopK, BatchTopK, JumpReLU": {"sparsity": "topk"},
    "L-BFGS (any code)": {"solver": "lbfgs"},
}


def test_every_row_of_the_table_is_checked():
    from skl_sparse_ae._defaults import TABLE_ROWS

    assert set(ROW_FITS) == set(TABLE_ROWS)


@pytest.mark.parametrize("row", sorted(ROW_FITS))
def test_each_row_of_the_table_is_what_resolve_does(row):
    """Each cell's claim, checked against :func:`resolve` on digits-like facts (in [0, 1],
    30 non-zeros a row) and on facts that flip the data-dependent cells."""
    from skl_sparse_ae._defaults import TABLE_ROWS

    cells = TABLE_ROWS[row]
    dense01 = DataFacts(1347, 64, True, 30.0, 0.1, 0.21, np.dtype("float64"))
    sparse01 = DataFacts(1347, 64, True, 3.0, 0.1, 0.21, np.dtype("float64"))
    other = DataFacts(1347, 64, False, 64.0, 1.0, None, np.dtype("float64"))
    params = SparseAutoencoderTransformer(**ROW_FITS[row]).get_params()
    config, off_unit, few = (resolve(params, f) for f in (dense01, other, sparse01))
    narrow = dict(params, n_components=8, hidden_layer_sizes="auto")
    wide = dict(params, n_components=128, hidden_layer_sizes="auto")
    if cells["hidden_layer_sizes"] == "`()`":
        assert resolve(narrow, dense01).hidden_layer_sizes == ()
    else:  # 8 units of 64 features: one layer of 128; 33 units, or 128: none
        assert cells["hidden_layer_sizes"].startswith("narrow: `(min(2·n_features, 256),)`")
        assert resolve(narrow, dense01).hidden_layer_sizes == (128,)
        assert resolve(dict(narrow, n_components=32), dense01).hidden_layer_sizes == (128,)
        assert resolve(dict(narrow, n_components=33), dense01).hidden_layer_sizes == ()
        assert resolve(wide, dense01).hidden_layer_sizes == ()
        big = DataFacts(1347, 784, True, 150.0, 0.1, 0.21, np.dtype("float64"))
        assert resolve(narrow, big).hidden_layer_sizes == (256,)
    if cells["loss"] == "`mse`":
        assert config.loss == off_unit.loss == "mse"
    elif cells["loss"].startswith("`bce` on X in [0, 1]"):
        assert (config.loss, off_unit.loss) == ("bce", "mse")
    if cells["noise"] == "0":
        assert config.noise == 0.0
    elif cells["noise"].startswith("masking 0.2 if rows"):
        assert (config.noise, config.noise_type, few.noise) == (0.2, "masking", 0.0)
    scaling = {"`mean`": "mean", "None": None}.get(cells["code_scaling"], config.code_scaling)
    assert config.code_scaling == scaling
    if cells["learning_rate"] == "None":
        assert config.learning_rate is None
    elif not cells["learning_rate"].startswith("0.02"):
        assert config.learning_rate == float(cells["learning_rate"])
    else:
        assert config.learning_rate == 0.02
        assert resolve(params, DataFacts(10, 784, True, 30.0, 0.1, 0.21, np.dtype("float64")))
    if "× min(1, learnable / 0.21)" in cells["tol"]:
        base = float(cells["tol"].split(" ")[0])
        # digits-like cross-entropy (0.21) and standardised data: the base value
        assert config.tol == pytest.approx(base) and off_unit.tol == pytest.approx(base)
        if config.loss == "bce":  # less to learn (a sparse text matrix): smaller
            text = DataFacts(200, 64, True, 5.0, 0.01, 0.09, np.dtype("float64"))
            assert resolve(params, text).tol == pytest.approx(base * 0.09 / 0.21)
    else:
        assert config.tol == float(cells["tol"].split(" ")[0])
    if cells["batch_size"].startswith("n_samples // 100 in ["):
        low = int(cells["batch_size"].split("[")[1].split(",")[0])
        assert config.batch_size == low  # 1347 // 100 is below the range
        big = DataFacts(300000, 64, False, 64.0, 1.0, None, np.dtype("float64"))
        assert resolve(params, big).batch_size == 1000
    else:
        assert config.batch_size == 1347  # full batch: all rows
    if "epochs" in cells["n_iter_no_change"]:
        epochs = int(cells["n_iter_no_change"].split(" ")[0])
        steps = int(cells["n_iter_no_change"].split("≥ ")[1].split(" ")[0])
        assert (
            resolve(
                params, DataFacts(1400, 64, False, 64.0, 1.0, None, np.dtype("float64"))
            ).n_iter_no_change
            == epochs
        )  # 7 or more steps an epoch
        one_step = DataFacts(100, 64, False, 64.0, 1.0, None, np.dtype("float64"))
        one_batch = dict(params, batch_size=100)
        assert resolve(one_batch, one_step).n_iter_no_change == steps  # one step an epoch
    epochs, _, stacked = cells["max_iter"].partition(", ")
    count, unit = epochs.split(" ")
    flat = dict(params, hidden_layer_sizes=())
    assert resolve(flat, dense01).max_iter == int(count)
    assert resolve(dict(flat, max_iter=7), dense01).max_iter == 7  # explicit wins
    deep = resolve(dict(params, hidden_layer_sizes=(128,)), dense01).max_iter
    if unit == "epochs":  # Adam: 500 epochs, more behind hidden layers
        assert (count, stacked) == ("500", "1000 behind hidden layers")
        assert deep == 1000
        # a narrow code is learnt behind a hidden layer where the row says so
        narrow_budget = 500 if cells["hidden_layer_sizes"] == "`()`" else 1000
        assert resolve(narrow, dense01).max_iter == narrow_budget
        assert resolve(wide, dense01).max_iter == 500
    else:  # L-BFGS: iterations, whatever the layers
        assert (unit, stacked, deep) == ("iterations", "", int(count))
    small = DataFacts(133, 13, False, 13.0, 1.0, None, np.dtype("float64"))  # load_wine
    if cells["batch_size"].endswith("under 400 rows ⌈n_samples / 8⌉, ≥ 16"):
        assert resolve(params, small).batch_size == 17  # 8 steps an epoch
        tiny = DataFacts(60, 13, False, 13.0, 1.0, None, np.dtype("float64"))
        assert resolve(params, tiny).batch_size == 16
        at_400 = DataFacts(400, 13, False, 13.0, 1.0, None, np.dtype("float64"))
        low = int(cells["batch_size"].split("[")[1].split(",")[0])
        assert resolve(params, at_400).batch_size == low  # 400 rows: the usual rule
    elif params["solver"] == "adam":
        assert resolve(params, small).batch_size == 133  # one step an epoch


def test_no_plateau_before_the_model_beats_the_mean_with_auto_tol_only():
    """``learnt_loss``: the mean predictor's loss less a tenth of what it leaves to learn
    (standardised data: 1/2 per feature, so 0.45 per feature); inf for an explicit tol,
    which keeps MLPRegressor's rule as written."""
    config = _resolve(n_features=64)
    assert config.learnt_loss == pytest.approx(64 * 0.45)
    assert _resolve(n_features=64, tol=1e-4).learnt_loss == np.inf
    bce = DataFacts(1347, 64, True, 30.0, 0.1, 0.21, np.dtype("float64"), bce_floor=0.2)
    config = resolve(SparseAutoencoderTransformer().get_params(), bce)
    assert config.learnt_loss == pytest.approx(64 * (0.21 + 0.2 - 0.021))
