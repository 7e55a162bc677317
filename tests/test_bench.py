"""The benchmark harness runs end to end in the project's own environment.

The project's venv has neither micrograd nor PyTorch, so this also pins that
the harness works without them. Speed is the benchmark's business: nothing
here asserts on a time.
"""

import argparse
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
BENCH = ROOT / "experiments" / "bench.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_run_passes_its_correctness_checks_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    engines = "micronet-eager,micronet-compiled,numpy"
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--engines", engines, "--json", str(out)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ok_lines = re.findall(r"^OK +\((\w)\) (.*)$", result.stdout, flags=re.M)
    assert ("a", "micronet-compiled == micronet-eager gradients on a batch of one, bit for bit: 337 of 337 equal") in ok_lines
    assert any(w == "a" and what.startswith("numpy vs micronet-eager") for w, what in ok_lines)
    assert any(w == "b" and what.startswith("micronet-compiled vs micronet-eager") for w, what in ok_lines)
    assert any(w == "c" and "bit for bit" in what for w, what in ok_lines)
    assert "FAIL" not in result.stdout

    results = json.loads(out.read_text())
    assert set(results["workloads"]) == {"a", "b", "c"}
    assert set(results["workloads"]["a"]["engines"]) == set(engines.split(","))
    assert results["checks"] and all(c["ok"] for c in results["checks"])
    assert {"memory", "growth", "machine"} <= set(results)


def test_missing_packages_are_skipped_with_their_pinned_install_command():
    bench = load_bench()
    run, skipped = bench.available_engines(bench.ENGINES, is_installed=lambda module: False)
    assert run == ["micronet-eager", "micronet-compiled", "numpy"]
    assert skipped["torch"] == "torch is not installed (pip install torch==2.13.0)"
    assert skipped["micrograd-nogc"] == "micrograd is not installed (pip install micrograd==0.1.0)"


def test_fitted_exponent_is_the_slope_in_log_log():
    bench = load_bench()
    assert abs(bench.fitted_exponent([100, 200, 400], [1.0, 4.0, 16.0]) - 2.0) < 1e-12
    assert bench.fitted_exponent([100, 200], [1.0, None]) is None  # one point fits no line


def test_unknown_engine_is_rejected_with_a_suggestion():
    bench = load_bench()
    with pytest.raises(argparse.ArgumentTypeError, match="did you mean 'micronet-eager'"):
        bench.parse_list("numpy,micronet-eagre", bench.ENGINES, "engine")
