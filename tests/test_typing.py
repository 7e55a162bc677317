"""The gates of CONTRIBUTING.md: the public API is annotated, and CI lints and type-checks before testing.

mypy checks the annotations that exist (strictly in engine, nn, losses and
optim); the modules it holds more loosely may leave private helpers bare.
What no module may leave bare is its public API: every function, method and
class without a leading underscore, in a module without one, annotates
every parameter and its return.
"""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import micronet

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "micronet"


def _public(name):
    return not name.startswith("_") or (name.startswith("__") and name.endswith("__"))


def unannotated(tree):
    """'Class.method(params) ->?' for each public definition missing an annotation, at any depth of classes."""
    found = []

    def visit(node, prefix, public):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.", public and _public(child.name))
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and public and _public(child.name):
                a = child.args
                params = [*a.posonlyargs, *a.args, *a.kwonlyargs, *filter(None, [a.vararg, a.kwarg])]
                if prefix and params and not any(
                    isinstance(d, ast.Name) and d.id == "staticmethod" for d in child.decorator_list
                ):
                    params = params[1:]  # self or cls
                bare = [p.arg for p in params if p.annotation is None]
                if bare or child.returns is None:
                    found.append(f"{prefix}{child.name}({', '.join(bare)}){'' if child.returns else ' ->?'}")

    visit(tree, "", True)
    return found


def test_every_public_function_method_and_class_is_annotated():
    missing = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if not _public(path.stem) and path.stem != "__init__" or path.stem == "__main__":
            continue
        names = unannotated(ast.parse(path.read_text()))
        if names:
            missing[str(path.relative_to(ROOT))] = names
    assert not missing, "public definitions without annotations (parameters listed, ->? for the return):\n" + "\n".join(
        f"{path}: {'; '.join(names)}" for path, names in missing.items()
    )


def test_the_checker_sees_what_is_missing():
    tree = ast.parse(
        "def f(a, b: int) -> int: ...\n"
        "def g(a: int): ...\n"
        "def _private(a): ...\n"
        "class C:\n"
        "    def m(self, x: int) -> None: ...\n"
        "    def n(self, x): ...\n"
        "    @staticmethod\n"
        "    def s(x: int) -> int: ...\n"
        "    def __call__(self, x): ...\n"
        "class _Hidden:\n"
        "    def m(self, x): ...\n"
    )
    assert unannotated(tree) == ["f(a)", "g() ->?", "C.n(x) ->?", "C.__call__(x) ->?"]


def test_ci_runs_the_gates_before_the_tests():
    lines = [line for line in ROOT.joinpath(".ci", "run").read_text().splitlines() if not line.startswith("#")]
    first_test = next(i for i, line in enumerate(lines) if "pytest" in line)
    assert "ruff check ." in lines[:first_test]
    assert "mypy" in lines[:first_test]


def test_the_gate_tools_are_pinned_exactly_in_the_test_extra():
    pyproject = ROOT.joinpath("pyproject.toml").read_text()
    test_extra = re.search(r"^test = \[(.*?)^\]", pyproject, flags=re.M | re.S).group(1)
    for tool in ("ruff", "mypy", "types-PyYAML"):
        assert re.search(rf'"{tool}==\d+(\.\d+)+"', test_extra), f"{tool} is not pinned with == in the test extra"


# ----- the package's lazy names, typed for users ---------------------------------------------


def test_every_lazy_top_level_name_is_imported_for_the_type_checker():
    """Each name `micronet.__getattr__` loads on first use is imported, re-exported, under `if TYPE_CHECKING:`."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    typed = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom):
                    typed.update({a.asname: f"{statement.module}" for a in statement.names if a.asname == a.name})
    assert typed == micronet._LAZY


USER_SCRIPT = """
import numpy as np

import micronet

model = micronet.MLP(2, [4, 2], seed=0)
X, y = np.zeros((4, 2)), np.array([0, 1, 0, 1])
history = micronet.fit(model, X, y, epochs=1, early_stopping=micronet.EarlyStopping(patience=2))
reveal_type(history)
reveal_type(history.best_epoch)
reveal_type(micronet.History)
reveal_type(micronet.save(model, "model.json"))
reveal_type(micronet.load_state(model, "model.json"))
reveal_type(micronet.load("run"))
reveal_type(micronet.load("run").predict(X))
reveal_type(micronet.predict_proba(model, X))
reveal_type(micronet.Predictor(model))
labels = micronet.predict(model, X)
micronet.fit(model, X, y, epochs="many")
"""


@pytest.mark.slow  # mypy on a user script and the modules it reaches, without a cache: about 15 s
def test_a_users_mypy_sees_the_lazy_names_types(tmp_path):
    (tmp_path / "script.py").write_text(USER_SCRIPT)
    (tmp_path / "mypy.ini").write_text("[mypy]\n")  # the user's own settings, not the package's
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--cache-dir", str(tmp_path / "cache"),
         "--follow-imports=silent", "script.py"],
        cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "MYPYPATH": str(ROOT)},
    )
    revealed = re.findall(r'^script\.py:\d+: note: Revealed type is "(.*)"$', done.stdout, flags=re.M)
    expected = [
        r"micronet\.callbacks\.History",
        r"int \| None",
        r"def \(rows: .*\) -> micronet\.callbacks\.History",  # the class itself
        r"pathlib\.Path",
        r"micronet\.nn\.Module",
        r"micronet\.predict\.Predictor",
        r"numpy\.ndarray\[.*\]",
        r"numpy\.ndarray\[.*\]",
        r"micronet\.predict\.Predictor",
    ]
    assert len(revealed) == len(expected) and all(map(re.fullmatch, expected, revealed)), done.stdout
    # The one error: a wrong keyword type is caught, where `Any` would have let it through.
    errors = re.findall(r"^script\.py:\d+: error: (.*)$", done.stdout, flags=re.M)
    assert errors == ['Argument "epochs" to "fit" has incompatible type "str"; expected "int"  [arg-type]'], done.stdout
