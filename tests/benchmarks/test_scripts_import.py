"""Every benchmark script imports: the scripts are not run by the suite, so a moved name would
otherwise break ``make bench`` unnoticed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).parents[2] / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_benchmark_script_imports(script):
    spec = importlib.util.spec_from_file_location(f"benchmark_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # runs the imports and definitions; main() is behind __main__
    assert callable(getattr(module, "main", None)), f"{script.name} has no main()"
