"""CONTRIBUTING.md's recipes work on today's code: their diffs apply and their tests pass.

Each recipe is a `## ` section of the guide with at least one diff. The guide
is read the way a contributor would follow it, in a copy of the repository:

- every ```diff block is applied to the copy; each hunk's context and
  removed lines must appear exactly once, in order, in the named file;
- every ```python block whose first line is `# tests/<file>.py` is appended
  to that test file;
- tests/data/contributing/ holds what the guide's patched make_*_goldens.py
  scripts write with PyTorch; it is copied over tests/data/, as regenerating
  would (experiments/make_contributing_goldens.py writes it);
- every line of a recipe's ```bash blocks that starts with `pytest` runs in
  the copy, with the copy's micronet first on the import path, and every
  test function the recipe adds must be among those that pass.

Nothing outside the temporary copy is touched, so the registries the recipes
extend stay as they are for the rest of the suite. Applying the diffs is
quick and always runs; running the recipes' tests is `slow`.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
GUIDE = ROOT / "CONTRIBUTING.md"
GUIDE_GOLDENS = ROOT / "tests" / "data" / "contributing"
COPIED = ["micronet", "tests", "experiments", "configs", "docs", "pyproject.toml", "README.md"]
TORCH_VERSION = "2.13.0"

# What each recipe must touch: the one place for the extension, and its goldens script.
EXTENSION_POINTS = {
    "op": {"micronet/engine.py", "micronet/batch_kernels.py"},
    "activation": {"micronet/activations.py"},
    "dataset": {"micronet/data.py"},  # one entry: the config and the budget read it
    "loss": {"micronet/losses.py", "micronet/batch_losses.py", "experiments/make_loss_goldens.py"},
    "optimizer": {"micronet/optim.py", "experiments/make_optim_goldens.py"},  # the class declares its options
}


# ----- reading the guide ------------------------------------------------------------


@dataclass
class Recipe:
    title: str
    diffs: list = field(default_factory=list)  # (path, [hunk lines])
    additions: list = field(default_factory=list)  # (path, code)
    commands: list = field(default_factory=list)  # argv lists, each starting with "pytest"

    @property
    def added_tests(self):
        return [name for _, code in self.additions for name in re.findall(r"^def (test_\w+)", code, re.M)]

    @property
    def touched(self):
        return {path for path, _ in self.diffs}


def fenced_blocks(text):
    """(info string, body) of every fenced code block that starts at the margin."""
    return re.findall(r"^```(\w*)\n(.*?)^```\s*$", text, flags=re.M | re.S)


def parse_diff(body):
    """[(path, hunks)] of a unified diff; each hunk a list of ' ', '-', '+' lines (no line numbers needed)."""
    files, hunks = [], None
    for line in body.splitlines():
        if line.startswith("--- "):
            continue
        if line.startswith("+++ "):
            path = line[4:].strip()
            hunks = []
            files.append((path[2:] if path.startswith("b/") else path, hunks))
        elif line.startswith("@@"):
            hunks.append([])
        elif hunks:
            hunks[-1].append(line if line else " ")  # an editor may strip a blank context line's space
    return files


def read_guide(text=None):
    """The guide's recipes, in order."""
    text = GUIDE.read_text() if text is None else text
    recipes = []
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        recipe = Recipe(section.splitlines()[0].strip())
        for info, body in fenced_blocks(section):
            if info == "diff":
                for path, hunks in parse_diff(body):
                    recipe.diffs.extend((path, hunk) for hunk in hunks)
            elif info == "python":
                target = re.match(r"# (tests/\w+\.py)\s", body)
                if target:
                    recipe.additions.append((target.group(1), body))
            elif info in ("bash", "sh", "console"):
                recipe.commands.extend(shlex.split(line) for line in body.splitlines() if line.startswith("pytest "))
        if recipe.diffs:
            recipes.append(recipe)
    return recipes


# ----- following it in a copy ---------------------------------------------------------


class DiffError(AssertionError):
    """A diff of the guide no longer fits the code."""


def apply_hunk(root, path, hunk):
    target = root / path
    if not target.is_file():
        raise DiffError(f"CONTRIBUTING.md changes {path}, which does not exist")
    old = [line[1:] for line in hunk if line[0] in " -"]
    new = [line[1:] for line in hunk if line[0] in " +"]
    if not old:
        raise DiffError(f"a hunk for {path} has no context lines to place it by")
    lines = target.read_text().split("\n")
    starts = [i for i in range(len(lines) - len(old) + 1) if lines[i : i + len(old)] == old]
    if len(starts) != 1:
        where = "are not in" if not starts else f"occur {len(starts)} times in"
        shown = "\n".join(old)
        raise DiffError(f"CONTRIBUTING.md is stale: these lines {where} {path}; update the guide's diff:\n{shown}")
    i = starts[0]
    target.write_text("\n".join(lines[:i] + new + lines[i + len(old) :]))


def copy_repository(dest):
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, dest / name)


def follow_guide(dest, recipes, goldens=True):
    """A copy of the repository at `dest` with every recipe's diffs and test additions applied."""
    copy_repository(dest)
    for recipe in recipes:
        for path, hunk in recipe.diffs:
            apply_hunk(dest, path, hunk)
        for path, code in recipe.additions:
            with open(dest / path, "a") as f:
                f.write("\n\n" + code)
    if goldens:
        for golden in GUIDE_GOLDENS.glob("*.json"):
            shutil.copy2(golden, dest / "tests" / "data" / golden.name)
    with open(dest / "tests" / "conftest.py", "a") as f:  # the copy's micronet, not the installed one
        f.write(
            "\n\nimport pathlib as _pathlib\n\nimport micronet as _micronet\n\n"
            "assert _pathlib.Path(_micronet.__file__).parents[1] == _pathlib.Path(__file__).parents[1], _micronet.__file__\n"
        )
    return dest


def environment(root):
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


RECIPES = read_guide()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every recipe's pytest commands, started at once in one copy that follows the whole guide."""
    root = follow_guide(tmp_path_factory.mktemp("guide") / "repo", RECIPES)
    started = {}
    for recipe in RECIPES:
        started[recipe.title] = [
            subprocess.Popen(
                [sys.executable, "-m", *command, "-v", "-p", "no:cacheprovider"],
                cwd=root, env=environment(root), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )
            for command in recipe.commands
        ]
    yield started
    for processes in started.values():
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


# ----- the tests ----------------------------------------------------------------------


def test_the_guide_has_one_recipe_per_extension_point():
    found = {}
    for recipe in RECIPES:
        kinds = [kind for kind in EXTENSION_POINTS if re.search(rf"\b{kind}\b", recipe.title.lower())]
        assert len(kinds) == 1, f"recipe {recipe.title!r} should name one of {list(EXTENSION_POINTS)}"
        found[kinds[0]] = recipe
    assert set(found) == set(EXTENSION_POINTS)
    for kind, recipe in found.items():
        assert EXTENSION_POINTS[kind] <= recipe.touched, (kind, recipe.touched)
        assert recipe.added_tests, f"recipe {recipe.title!r} adds no test"
        assert recipe.commands, f"recipe {recipe.title!r} says no pytest command to run"


def test_every_diff_applies_to_todays_code(tmp_path):
    copy_repository(tmp_path)
    stale = []
    for recipe in RECIPES:
        for path, hunk in recipe.diffs:
            try:
                apply_hunk(tmp_path, path, hunk)
            except DiffError as e:
                stale.append(str(e))
    assert not stale, "\n\n".join(stale)


def test_the_diff_reader_places_hunks_by_their_context(tmp_path):
    """The reader itself: a hunk lands after its unique context; ambiguous context is refused."""
    (tmp_path / "f.py").write_text("a = 1\nb = 2\nb = 2\nc = 3\n")
    [(path, hunks)] = parse_diff("--- a/f.py\n+++ b/f.py\n@@\n a = 1\n+x = 0\n@@\n-c = 3\n+c = 4\n")
    for hunk in hunks:
        apply_hunk(tmp_path, path, hunk)
    assert (tmp_path / "f.py").read_text() == "a = 1\nx = 0\nb = 2\nb = 2\nc = 4\n"
    with pytest.raises(DiffError, match="occur 2 times in f.py"):
        apply_hunk(tmp_path, "f.py", [" b = 2", "+y = 1"])
    with pytest.raises(DiffError, match="are not in f.py"):
        apply_hunk(tmp_path, "f.py", ["-d = 4"])


@pytest.mark.slow  # a pytest run per recipe: about 20 s of CPU in all
@pytest.mark.parametrize("recipe", RECIPES, ids=[r.title for r in RECIPES])
def test_recipe_passes_its_tests_in_a_copy_that_follows_the_guide(recipe, runs):
    output = ""
    for process, command in zip(runs[recipe.title], recipe.commands):
        out, _ = process.communicate(timeout=600)
        output += out
        assert process.returncode == 0, f"`{shlex.join(command)}` failed in the patched copy:\n{out[-6000:]}"
    for name in recipe.added_tests:
        assert re.search(rf"::{name}(\[[^\]]*\])? PASSED", output), f"{name} did not run (check the -k expression)"


@pytest.mark.slow  # mypy on the whole package, without a cache: about 15 s
def test_the_code_the_guide_adds_passes_the_lint_and_type_gates(tmp_path):
    """What a contributor pastes into micronet/ and experiments/ passes `ruff check` and `mypy`, as CI runs them.

    (The guide's test code is appended to the end of the test files here; a contributor moves its
    imports to the top, so the copy's tests/ are not linted.)
    """
    root = follow_guide(tmp_path / "repo", RECIPES, goldens=False)
    for command in (["ruff", "check", "micronet", "experiments"], ["mypy", "--cache-dir", str(tmp_path / "cache")]):
        done = subprocess.run([sys.executable, "-m", *command], cwd=root, capture_output=True, text=True)
        assert done.returncode == 0, f"`{shlex.join(command)}` fails on the code the guide adds:\n{done.stdout}{done.stderr}"


def regenerate_guide_goldens(dest, python):
    """Run the guide's patched golden scripts with `python` (PyTorch) and return {file name: text}."""
    root = follow_guide(dest, RECIPES, goldens=False)
    written = {}
    for recipe in RECIPES:
        for script in sorted({p for p in recipe.touched if re.fullmatch(r"experiments/make_\w+_goldens\.py", p)}):
            out = root / "tests" / "data" / script.split("make_")[1].replace("_goldens.py", "_goldens.json")
            subprocess.run([python, script], cwd=root, check=True, capture_output=True, text=True)
            written[out.name] = out.read_text()
    return written


# ----- what the guide promises besides the recipes --------------------------------------


def test_the_guide_gives_the_readmes_test_command_and_the_slow_marker():
    text = GUIDE.read_text()
    readme = (ROOT / "README.md").read_text()
    command = "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]' && pytest"
    assert command in readme and command in text
    assert 'pytest -m "not slow"' in text
    assert re.search(r'markers = \["slow:', (ROOT / "pyproject.toml").read_text())


def test_the_guides_links_resolve():
    text = GUIDE.read_text()
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if "://" not in target:
            assert (ROOT / target).exists(), f"CONTRIBUTING.md links to {target}, which does not exist"


def test_the_readme_links_the_guide_and_the_architecture():
    readme = (ROOT / "README.md").read_text()
    assert "(CONTRIBUTING.md)" in readme and "(docs/architecture.md)" in readme
