"""The README's quick start is what CI runs, and its code examples run as written."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
README = ROOT.joinpath("README.md").read_text()


def test_ci_runs_the_readme_test_command():
    ci_lines = ROOT.joinpath(".ci", "run").read_text().splitlines()
    command = next(line for line in ci_lines if "pytest" in line and not line.startswith("#"))
    assert command in README
    assert "pip install -e '.[test]'" in command and command.startswith("python3 -m venv .venv")


def test_quick_start_trains_the_moons_config():
    assert "pip install -e . && python -m micronet.train configs/moons.yaml" in README


@pytest.mark.slow
def test_python_examples_run_in_order():
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert len(blocks) >= 4
    namespace = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # our own README
    assert namespace["loss"].data < 0.5  # the 10-line loop trained
    assert namespace["c"].grad == 1.0
