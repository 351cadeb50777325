"""
Serving a pipeline with ONNX
============================

A fitted :class:`~sklearn.pipeline.Pipeline` that holds a
``SparseAutoencoderTransformer`` converts to `ONNX <https://onnx.ai>`_ with
`skl2onnx <https://onnx.ai/sklearn-onnx/>`_, as one with PCA does, once
:mod:`skl_sparse_ae.onnx` is imported (the import registers the converter). The
exported graph runs in `onnxruntime <https://onnxruntime.ai>`_: a server needs
neither torch nor scikit-learn to predict.

Digits (75/25 split), standardised, a TopK autoencoder (64 units, 8 active per
sample) and a logistic regression on its codes. The autoencoder trains for at most
30 epochs so that the example takes seconds. It needs the ``onnx`` extra:
``pip install -e ".[onnx]"`` from a checkout.
"""

# %%
# Fit the pipeline
# ----------------
import warnings

import matplotlib.pyplot as plt
import numpy as np
import onnxruntime as ort
import skl2onnx
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skl_sparse_ae.onnx  # noqa: F401  (registers the converter with skl2onnx)
from skl_sparse_ae import SparseAutoencoderTransformer

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, random_state=0, stratify=y
)
sae = SparseAutoencoderTransformer(
    n_components=64, sparsity="topk", k=8, max_iter=30, random_state=0
)
pipe = make_pipeline(StandardScaler(), sae, LogisticRegression(max_iter=1000))
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    pipe.fit(X_train, y_train)
print(f"held-out accuracy (scikit-learn): {pipe.score(X_test, y_test):.4f}")

# %%
# Export to ONNX
# --------------
# One example row fixes the input's type and width: float32 here, the type most
# serving runtimes use (a float64 row gives a float64 graph). ``zipmap=False``
# returns the probabilities as one array instead of a list of dictionaries.
onx = skl2onnx.to_onnx(
    pipe, X_train[:1].astype(np.float32), options={LogisticRegression: {"zipmap": False}}
)
model_bytes = onx.SerializeToString()  # what you would write to a .onnx file
print(f"ONNX model: {len(model_bytes) / 1024:.0f} KiB, operators:")
print(" ", " ".join(sorted({node.op_type for node in onx.graph.node})))

# %%
# Run it in onnxruntime
# ---------------------
# The session needs only the bytes. Its outputs are the labels and the
# probabilities; they agree with the pipeline's up to float32 rounding.
session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
input_name = session.get_inputs()[0].name
labels, probabilities = session.run(None, {input_name: X_test.astype(np.float32)})
agree = np.mean(labels == pipe.predict(X_test))
gap = np.abs(probabilities - pipe.predict_proba(X_test)).max()
print(f"labels equal to pipe.predict: {agree:.2%}")
print(f"max |difference| of the probabilities: {gap:.1e}")

# %%
# The codes themselves
# --------------------
# The autoencoder step converts on its own too: its graph computes ``transform``.
# Below, the code of one test digit from each: 8 active units of 64, the same in
# both.
scaler, sae = pipe.named_steps["standardscaler"], pipe.named_steps["sparseautoencodertransformer"]
Z32 = scaler.transform(X_test).astype(np.float32)
sae_session = ort.InferenceSession(
    skl2onnx.to_onnx(sae, Z32[:1]).SerializeToString(), providers=["CPUExecutionProvider"]
)
(codes,) = sae_session.run(None, {sae_session.get_inputs()[0].name: Z32})
code_gap = np.abs(codes - sae.transform(Z32)).max()
print(f"max |difference| of the codes: {code_gap:.1e}")

fig, ax = plt.subplots(figsize=(7, 2.5))
ax.stem(sae.transform(Z32)[0], linefmt="C0-", markerfmt="C0o", basefmt=" ", label="transform")
ax.plot(codes[0], "C1x", label="onnxruntime")
ax.set_xlabel("unit")
ax.set_ylabel("code")
ax.set_title(f"The code of one test digit (a {y_test[0]})")
ax.legend()
fig.tight_layout()
plt.show()
