"""The README's quick start is what CI runs."""

from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_ci_runs_the_readme_test_command():
    readme = ROOT.joinpath("README.md").read_text()
    ci_lines = ROOT.joinpath(".ci", "run").read_text().splitlines()
    command = next(line for line in ci_lines if "pytest" in line and not line.startswith("#"))
    assert command in readme
    assert "pip install -e '.[test]'" in command and command.startswith("python3 -m venv .venv")
