"""Shared fixtures: small data sets that ship with scikit-learn, and thread hygiene."""

# First, before anything imports scipy: scikit-learn's array API dispatch needs scipy's
# array API support, which scipy reads once, at import. Without it scikit-learn's
# array-API estimator checks skip themselves ("SCIPY_ARRAY_API is not set").
import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")

import contextlib
import io
import sys

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits


@pytest.fixture(scope="session")
def digits_raw():
    """``load_digits`` as ``(X, y)``, pixel values 0-16 (1797 x 64)."""
    X, y = load_digits(return_X_y=True)
    return X, y


@pytest.fixture(scope="session")
def digits01(digits_raw):
    """600 digits scaled to [0, 1] (a fixed subsample, for quick fits)."""
    X, _ = digits_raw
    rows = np.random.RandomState(0).permutation(X.shape[0])[:600]
    X01 = X[rows] / 16.0
    X01.flags.writeable = False  # shared between tests: nobody may modify it
    return X01


@pytest.fixture
def X_small():
    """A small dense float64 matrix (40 x 6), uniform in [0, 1)."""
    return np.random.RandomState(0).rand(40, 6)


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Tests may change ``torch.set_num_threads``; leave the next test the same setting."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _every_core_idle(monkeypatch):
    """The thread rule reads how many cores other processes keep busy
    (``_device.busy_cores``); tests see every core idle, so that the thread counts
    they assert do not depend on what else runs on the machine. Tests of that
    reading patch it themselves."""
    from skl_sparse_ae import _device

    monkeypatch.setattr(_device, "busy_cores", lambda: 0)


@pytest.fixture
def fit_threads(monkeypatch):
    """``with fit_threads() as seen:`` around a fit with ``verbose=1`` sets ``seen["fit"]``
    to torch's thread count while the model trains.

    The first epoch line is printed from inside training, and the replaced
    ``sys.stdout`` reads the thread count as it is written. (Entered in the test
    body: pytest sets its own ``sys.stdout`` between a fixture's set-up and the test.)
    """

    class Recording(io.StringIO):
        def __init__(self):
            super().__init__()
            self.seen = {}

        def write(self, text):
            self.seen.setdefault("fit", torch.get_num_threads())
            return super().write(text)

    @contextlib.contextmanager
    def recording():
        stdout = Recording()
        with monkeypatch.context() as patch:
            patch.setattr(sys, "stdout", stdout)
            yield stdout.seen

    return recording


#: Topic words of the small TF-IDF corpus (:func:`tfidf_corpus`), and words every topic uses.
TOPICS = {
    "sport": "team ball goal match player coach score win league season field run".split(),
    "food": "bread cheese soup recipe cook oven taste salt kitchen dinner fresh sweet".split(),
    "music": "song guitar band concert melody drum sing album piano tune note stage".split(),
    "space": "planet star orbit rocket moon galaxy launch telescope comet mars light sky".split(),
    "money": "bank loan price market stock trade cash budget tax profit invest cost".split(),
}

#: Each mechanism as a user types it: only its own knobs.
MECHANISMS = {
    "kl": {},
    "l1": {"sparsity": "l1", "activation": "relu"},
    "topk": {"sparsity": "topk", "k": 8},
    "batchtopk": {"sparsity": "batchtopk", "k": 8},
    "jumprelu": {"sparsity": "jumprelu"},
    "none": {"sparsity": None},
    "matryoshka": {"sparsity": "batchtopk", "k": 8, "matryoshka_widths": (16, 32)},
}

COMMON_WORDS = "the a of and is on in with".split()


def tfidf_corpus(n_docs=200, seed=0):
    """``(X, topic)``: a ``TfidfVectorizer`` CSR matrix of ``n_docs`` short sentences
    (4 words of one of 5 topics, 2 common words; 67 terms, density 0.08), built here:
    nothing is downloaded."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    rng = np.random.default_rng(seed)
    names = sorted(TOPICS)
    docs, topics = [], []
    for i in range(n_docs):
        topic = i % len(names)
        words = [*rng.choice(TOPICS[names[topic]], 4), *rng.choice(COMMON_WORDS, 2)]
        rng.shuffle(words)
        docs.append(" ".join(words))
        topics.append(topic)
    return TfidfVectorizer().fit_transform(docs), np.array(topics)


@pytest.fixture(scope="session")
def tfidf():
    return tfidf_corpus()


def rbm_example_split():
    """scikit-learn's RBM example's data: digits and their four one-pixel shifts,
    min-max scaled (float32), split 80/20 with ``random_state=0``:
    ``(X_train, X_test, y_train, y_test)``."""
    from scipy.ndimage import convolve
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import minmax_scale

    X, y = load_digits(return_X_y=True)
    shifts = [np.zeros((3, 3)) for _ in range(4)]
    for weights, (i, j) in zip(shifts, [(0, 1), (1, 0), (1, 2), (2, 1)]):
        weights[i, j] = 1.0
    nudged = [
        np.array([convolve(x.reshape(8, 8), w, mode="constant").ravel() for x in X]) for w in shifts
    ]
    X = minmax_scale(np.concatenate([X, *nudged]).astype(np.float32))
    return train_test_split(X, np.concatenate([y] * 5), test_size=0.2, random_state=0)
