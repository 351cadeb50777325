"""The plotting examples run end to end (in their quick mode) and write their PNG."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _run(script, output, cwd):
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--quick", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def _check_png(path):
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert path.stat().st_size > 5000  # a picture, not an empty canvas


def test_plot_patch_filters(tmp_path):
    pytest.importorskip("PIL")  # load_sample_images needs Pillow
    output = tmp_path / "filters.png"
    result = _run("plot_patch_filters.py", output, tmp_path)
    assert result.returncode == 0, result.stderr
    _check_png(output)
    match = re.search(r"achieved mean activation:\s+(\S+)", result.stdout)
    assert match, result.stdout
    # even the quick run lands near rho = 0.01 (measured 0.0103)
    assert 0.005 < float(match.group(1)) < 0.02


def test_plot_compare_sparsity(tmp_path):
    output = tmp_path / "compare.png"
    result = _run("plot_compare_sparsity.py", output, tmp_path)
    assert result.returncode == 0, result.stderr
    _check_png(output)
    table = {line.split()[0]: line.split() for line in result.stdout.splitlines()[2:6]}
    assert set(table) == {"PCA", "KL", "L1", "TopK"}
    assert float(table["TopK"][2]) == 8.0  # "TopK (k=8)": L0 is exactly k


def test_examples_default_output_is_in_the_current_directory(tmp_path):
    import importlib.util

    for script, name in [
        ("plot_patch_filters.py", "patch_filters.png"),
        ("plot_compare_sparsity.py", "compare_sparsity.png"),
    ]:
        spec = importlib.util.spec_from_file_location("example", EXAMPLES / script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert module.parse_args([]).output == name
        assert not module.parse_args([]).quick
