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
def test_python_examples_run_in_order(tmp_path, monkeypatch):
    from micronet.train import main

    monkeypatch.chdir(tmp_path)  # the examples write files, and read the run directory made here
    assert main(["moons", "--out", "runs/moons", "--no-progress"]) == 0
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert len(blocks) >= 6
    namespace = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # our own README
    assert namespace["loss"].data < 0.5  # the 10-line loop trained
    assert namespace["c"].grad == 1.0
    assert namespace["history"].stopped_early and namespace["history"].history["val_accuracy"][-1] > 0.9
    assert (tmp_path / "moons-model.json").is_file()


def test_the_library_example_is_under_25_lines():
    blocks = re.findall(r"```python\n(.*?)```", README.split("## The library", 1)[1], flags=re.S)
    assert "micronet.fit(" in blocks[0] and "micronet.load(" in blocks[0] and "decision_boundary(" in blocks[0]
    assert len(blocks[0].strip().splitlines()) < 25


def test_every_quoted_shipped_config_exists():
    from micronet.config import shipped_configs

    shipped = set(shipped_configs())
    for name in re.findall(r"micronet-train (\w+)(?![.=\w])", README):
        if name not in ("my", "that"):
            assert name in shipped, name
