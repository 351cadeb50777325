"""Every ```python block of README.md and docs/*.md runs as written.

The blocks of one page run in order in one namespace (a page builds on its earlier
blocks), in a fresh Python process started in a temporary directory (they may write
files), with ``__name__ == "__main__"``. Blocks of ``>>>`` lines run as doctests in the
same namespace. A block that is not meant to run is fenced as something else
(```text for output or formulas, ```bash for commands): a fence with no language
fails here, so that no Python block escapes by being untagged. Pages that import
dask run when the ``dask`` extra is installed (CI: ``.ci/run``) and skip otherwise.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(`{3,})([^`\n]*)\n(.*?)^\1[ \t]*$", re.MULTILINE | re.DOTALL)
#: fence languages that are not run; ``{...}`` are MyST directives (toctree, include)
NOT_RUN = {"bash", "text"}
DASK = ("dask", "distributed", "dask_ml")

#: run in the child process: argv[1] is a JSON list of {"line", "source"} blocks
RUNNER = r"""
import doctest, json, sys
page, blocks = sys.argv[1], json.load(open(sys.argv[2]))
namespace = {"__name__": "__main__"}
for block in blocks:
    source, line = block["source"], block["line"]
    print(f"--- {page}:{line}", flush=True)
    if source.lstrip().startswith(">>>"):
        test = doctest.DocTestParser().get_doctest(source, namespace, page, page, line)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        runner.run(test, clear_globs=False)
        if runner.failures:
            sys.exit(f"{page}:{line}: {runner.failures} doctest failure(s)")
    else:
        # pad so that a traceback gives the line number in the page
        exec(compile("\n" * (line - 1) + source, page, "exec"), namespace)
"""


def blocks(page):
    """``[(language, line number of the code's first line, code)]`` of the page's fences."""
    text = page.read_text()
    return [
        (m.group(2).strip(), text.count("\n", 0, m.start(3)) + 1, m.group(3))
        for m in FENCE.finditer(text)
    ]


def python_blocks(page):
    return [(line, code) for lang, line, code in blocks(page) if lang in ("python", "pycon")]


def test_every_fence_says_what_it_is():
    for page in PAGES:
        for lang, line, _ in blocks(page):
            name = f"{page.relative_to(ROOT)}:{line}"
            assert lang, f"{name}: a fence without a language (```python, ```text, ```bash)"
            assert lang in NOT_RUN | {"python", "pycon"} or lang.startswith("{"), (name, lang)


def test_readme_keeps_its_three_commands():
    """Installation, Quick start and Testing are one fenced command each (CI follows them)."""
    readme = (ROOT / "README.md").read_text()
    for heading in ("Installation", "Quick start", "Testing"):
        section = re.search(rf"^## {heading}\n(.*?)(?=^## )", readme, re.M | re.S)
        assert section, heading
        commands = [code for lang, _, code in blocks_of(section.group(1)) if lang == "bash"]
        assert len(commands) == 1 and len(commands[0].strip().splitlines()) == 1, heading


def blocks_of(text):
    return [(m.group(2).strip(), None, m.group(3)) for m in FENCE.finditer(text)]


@pytest.mark.parametrize(
    "page",
    [p for p in PAGES if python_blocks(p)],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_page_snippets_run(page, tmp_path):
    snippets = python_blocks(page)
    imports = "\n".join(code for _, code in snippets)
    if re.search(rf"^\s*(from|import) ({'|'.join(DASK)})\b", imports, re.M):
        missing = [name for name in DASK if importlib.util.find_spec(name) is None]
        if missing:
            pytest.skip(f"needs the dask extra ({', '.join(missing)}): pip install -e '.[dask]'")
    data = tmp_path / "blocks.json"
    data.write_text(json.dumps([{"line": line, "source": code} for line, code in snippets]))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    env.setdefault("OMP_NUM_THREADS", "1")  # small fits: one thread is fastest
    name = str(page.relative_to(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, name, str(data)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, f"{name}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"


def test_the_local_cluster_snippet_runs_as_a_script(tmp_path):
    """Saved as a file and run, the cluster's block starts its worker processes
    (each imports the script again: without ``if __name__ == "__main__":`` the
    nannies fail to start)."""
    if any(importlib.util.find_spec(name) is None for name in DASK):
        pytest.skip("needs the dask extra: pip install -e '.[dask]'")
    (cluster,) = [
        code
        for _, code in python_blocks(ROOT / "docs" / "scaling_out.md")
        if "LocalCluster(" in code
    ]
    script = tmp_path / "cluster.py"
    script.write_text(cluster + "    print(len(client.scheduler_info()['workers']), 'workers')\n")
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and "2 workers" in result.stdout, result.stderr[-5000:]
