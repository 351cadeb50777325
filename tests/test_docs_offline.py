"""The documentation site's pages load nothing from the network (no sphinx build here).

``docs/conf.py`` is read, not imported (importing it would set ``OMP_NUM_THREADS``
for the rest of the suite): its top-level assignments are parsed with ``ast``.
"""

import ast
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _conf():
    """``name -> ast node`` of the values docs/conf.py assigns at top level."""
    tree = ast.parse((DOCS / "conf.py").read_text())
    return {
        target.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def test_mathjax_is_served_from_the_bundled_copy():
    conf = _conf()
    path = ast.literal_eval(conf["mathjax_path"])
    # a path under html_static_path, not a URL (Sphinx's default is a CDN)
    assert "//" not in path and not path.startswith("http"), path
    static = [DOCS / p for p in ast.literal_eval(conf["html_static_path"])]
    script = [s / path for s in static if (s / path).is_file()]
    assert script, f"{path} is in none of {static}"
    bundle = script[0].parent
    # tex-chtml.js loads its fonts relative to its own address
    fonts = list((bundle / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))
    assert len(fonts) >= 20, fonts
    assert "Apache License" in (bundle / "LICENSE").read_text()
    assert "mathjax@3.2.2" in (bundle / "README.txt").read_text()


def test_no_page_loads_scripts_or_styles_from_a_cdn():
    conf = _conf()
    for name in ("html_js_files", "html_css_files"):
        if name in conf:
            for entry in ast.literal_eval(conf[name]):
                entry = entry if isinstance(entry, str) else entry[0]
                assert "//" not in entry, (name, entry)
    # sphinx-gallery's execution-times page pulls jQuery and DataTables from CDNs
    gallery = conf["sphinx_gallery_conf"]
    options = {ast.literal_eval(k): v for k, v in zip(gallery.keys, gallery.values)}
    assert ast.literal_eval(options["write_computation_times"]) is False
