"""Sphinx configuration: numpydoc API reference, MyST pages, sphinx-gallery examples.

Build with ``python -m sphinx -W -b html docs docs/_build/html`` (the ``docs`` extra).
Nothing is fetched from the network, neither by the build nor by the pages it makes:
no intersphinx, the gallery uses data that ships with scikit-learn, and MathJax is
served from ``_static/mathjax`` (bundled, see its README.txt) rather than a CDN.
"""

import os
import re
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # document this checkout, whatever is installed
sys.path.insert(0, str(ROOT / "docs"))  # _sorting

# the gallery fits small models, for which one thread is fastest (and on shared
# cores, more threads can be many times slower); set before torch is imported
os.environ.setdefault("OMP_NUM_THREADS", "1")

import skl_sparse_ae  # noqa: E402

project = "skl_sparse_ae"
author = "The skl_sparse_ae developers"
copyright = "The skl_sparse_ae developers, BSD-3-Clause"
version = release = skl_sparse_ae.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "_static", "Thumbs.db", ".DS_Store"]

# ------------------------------------------------------------------------ math
# MathJax 3.2.2 bundled under _static (copied from the npm package, Apache-2.0): the
# pages render their math offline. A path under html_static_path, not a URL.
mathjax_path = "mathjax/tex-chtml.js"

# ---------------------------------------------------------------- API reference
autosummary_generate = True
autodoc_default_options = {"members": True}
autodoc_typehints = "none"  # numpydoc sections say the types
# "On this page" lists methods as ``fit``, ``transform``..., not each as
# "SparseAutoencoderTransformer." (Sphinx >= 5.2)
toc_object_entries_show_parents = "hide"
numpydoc_show_class_members = False  # the class template lists the members
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False  # no intersphinx: types stay plain text
numpydoc_validation_checks = set()

# ------------------------------------------------------------------------ MyST
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3

# ------------------------------------------------------------------- gallery
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/(plot_|quickstart)",  # execute every example
    "ignore_pattern": r"__init__\.py|_helpers",
    "within_subsection_order": "_sorting.ExampleOrder",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "backreferences_dir": "generated/backreferences",  # "Gallery examples using ..."
    "doc_module": ("skl_sparse_ae",),
    "show_memory": False,
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "image_scrapers": ("matplotlib",),
    "plot_gallery": "True",
    "min_reported_time": 1,
    # its execution-times page loads jQuery and DataTables from CDNs; each example's
    # page still says how long it ran
    "write_computation_times": False,
}

# the gallery's fits stop early on purpose (small max_iter keeps the build quick)
warnings.filterwarnings("ignore", message=".*without converging.*")
warnings.filterwarnings("ignore", category=UserWarning, message="Matplotlib is currently using agg")

# ------------------------------------------------------------------------- HTML
html_theme = "pydata_sphinx_theme"
html_title = f"skl_sparse_ae {version}"
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False


# ----------------------------------------------------------------------- hooks
_SHAPE_NAME = re.compile(r"(?<=\w)_(?=[,)])")


def _escape_shape_names(app, what, name, obj, options, lines):
    """``ndarray of shape (n_features_in_,)``: escape the trailing underscore.

    In a numpydoc type line, reST would read ``n_features_in_`` as a reference to a
    target ``n_features_in``; scikit-learn's docstrings write shapes this way too.
    """
    for i, line in enumerate(lines):
        if " : " in line and "shape (" in line:
            head, _, shape = line.partition("shape (")
            lines[i] = head + "shape (" + _SHAPE_NAME.sub(r"\\_", shape)


_REF_WITH_TEXT = re.compile(r":(?:ref|term):`([^`<]+?)\s*<[^>`]+>`")
_REF_BARE = re.compile(r":(?:ref|term):`([^`<]+)`")


def _unlink_scikit_learn_refs(app, what, name, obj, options, lines):
    """Inherited scikit-learn methods (``set_output``, ``get_metadata_routing``...)
    cite labels of scikit-learn's own site; with no network for intersphinx, keep
    their text and drop the link."""
    module = getattr(obj, "__module__", None) or ""
    if not module.startswith("sklearn"):
        return
    for i, line in enumerate(lines):
        line = _REF_WITH_TEXT.sub(r"\1", line)
        lines[i] = _REF_BARE.sub("scikit-learn's documentation", line)


def setup(app):
    app.connect("autodoc-process-docstring", _escape_shape_names, priority=100)
    app.connect("autodoc-process-docstring", _unlink_scikit_learn_refs, priority=100)
