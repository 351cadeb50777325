"""The estimator's HTML repr links to its page of the documentation site, as
scikit-learn's estimators do (the "?" in a notebook)."""

import re
from pathlib import Path

from skl_sparse_ae import SparseAutoencoderTransformer

ROOT = Path(__file__).resolve().parents[1]


def test_html_repr_links_to_the_api_page():
    html = SparseAutoencoderTransformer(32)._repr_html_()
    links = re.findall(r'<a class="sk-estimator-doc-link[^"]*"[^>]*href="([^"]+)"', html)
    page = "/generated/skl_sparse_ae.SparseAutoencoderTransformer.html"
    # the site as the README builds it from this checkout: docs/_build/html
    assert links == [(ROOT / "docs" / "_build" / "html").as_uri() + page], links


def test_the_link_is_the_page_autosummary_writes():
    """docs/api.rst documents the class from ``skl_sparse_ae`` into ``generated/``,
    which is where the link points."""
    api = (ROOT / "docs" / "api.rst").read_text()
    section = api[api.index(".. currentmodule:: skl_sparse_ae\n") :]
    assert re.match(
        r".. currentmodule:: skl_sparse_ae\n\n.. autosummary::\n   :toctree: generated/\n"
        r"(   :\w+: .*\n)*\n   SparseAutoencoderTransformer\n",
        section,
    ), section[:300]
