"""The defaults of version 0.1.0: the classic configuration (squared error, KL with a
fixed weight 0.1 toward 0.05, no corruption, raw codes, a constant step size of 3e-3,
tol 1e-4 per feature with a patience of 10, training in float64 as 0.1.0 did for
float64 data).

Tests of mechanisms that were calibrated on it spell it out, so that they keep testing
the mechanism when the defaults move; the defaults themselves are tested in
test_defaults.py and test_quality.py.
"""

CLASSIC = {
    "hidden_layer_sizes": (),  # "auto" adds a hidden layer to codes of <= 32 units
    "loss": "mse",
    "sparsity_target": 0.05,
    "sparsity_weight": 0.1,
    "noise": 0.0,
    "noise_type": "gaussian",
    "code_scaling": None,
    "learning_rate_schedule": "constant",
    "learning_rate": 3e-3,
    "tol": 1e-4,
    "n_iter_no_change": 10,
    "batch_size": 200,  # "auto" takes 8 batches an epoch under 400 rows
    "training_dtype": "float64",
}


def classic(*args, **params):
    """``SparseAutoencoderTransformer`` with the 0.1.0 defaults under ``params``."""
    from skl_sparse_ae import SparseAutoencoderTransformer

    return SparseAutoencoderTransformer(*args, **{**CLASSIC, **params})


def with_base(base, /, **params):
    """``SparseAutoencoderTransformer(**{**base, **params})``: ``params`` override ``base``."""
    from skl_sparse_ae import SparseAutoencoderTransformer

    return SparseAutoencoderTransformer(**{**base, **params})
