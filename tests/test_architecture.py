"""docs/architecture.md's import table and layering rules hold for the code as it is.

The table is the source of truth: each row names what a module may import,
at import time and inside functions. Every module in micronet/ must have a
row (a file for a module, a directory for a subpackage); rows of modules that
are not in the tree are skipped, so the table may run ahead of a branch.
"""

import ast
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "micronet"
DOC = ROOT / "docs" / "architecture.md"
STDLIB = set(sys.stdlib_module_names)


# ----- the code: which module imports what, and where -----------------------------------


def module_of(path):
    """The table's name for a source file: `engine`, `playground` for micronet/playground/*, `micronet` for __init__."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return "micronet" if parts == ("__init__",) else parts[0]


def is_submodule(dotted):
    """Whether `micronet.x.y` names a module or package file (rather than a name inside one)."""
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def type_checking_only(node):
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


@dataclass(frozen=True)
class Import:
    name: str  # absolute dotted name: `micronet.engine`, `sklearn.base`, `json`
    lazy: bool  # inside a function: runs when called, not when the module is imported
    where: str  # file:line, for messages


def imports_of(path):
    """Every import in a source file, relative ones made absolute; `if TYPE_CHECKING:` bodies skipped."""
    here = list(path.relative_to(ROOT).with_suffix("").parts)
    package = here[:-1]  # the package a relative import starts from (for __init__, the package itself)
    found = []

    def visit(node, lazy):
        if type_checking_only(node):
            for stmt in node.orelse:
                visit(stmt, lazy)
            return
        if isinstance(node, ast.Import):
            found.extend(Import(alias.name, lazy, f"{path.name}:{node.lineno}") for alias in node.names)
            return
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                name = full if base.split(".")[0] == "micronet" and is_submodule(full) else base
                found.append(Import(name, lazy, f"{path.name}:{node.lineno}"))
            return
        inside = lazy or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inside)

    visit(ast.parse(path.read_text(), str(path)), False)
    return found


def code_imports():
    """{module: [Import]} for every module in the tree, imports of itself left out."""
    result = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_of(path)
        result.setdefault(module, [])
        result[module] += [i for i in imports_of(path) if target_of(i) != ("micronet", module)]
    return result


def target_of(imp):
    """("micronet", module), ("third-party", package) or ("stdlib", package)."""
    parts = imp.name.split(".")
    if parts[0] == "micronet":
        return ("micronet", parts[1] if len(parts) > 1 else "micronet")
    return ("stdlib" if parts[0] in STDLIB else "third-party", parts[0])


# ----- the doc: the table -----------------------------------------------------------------


@dataclass
class Row:
    micronet: set  # may import at import time
    micronet_lazy: set  # may import inside functions only
    third_party: set
    third_party_lazy: set


def parse_cell(cell):
    now, _, lazy = cell.partition("inside functions:")
    return set(re.findall(r"`([\w.]+)`", now)), set(re.findall(r"`([\w.]+)`", lazy))


def read_table(text):
    section = text.split("## Who imports whom", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"`\w+`", cells[0]):
            (now, lazy), (third, third_lazy) = parse_cell(cells[1]), parse_cell(cells[2])
            rows[cells[0].strip("`")] = Row(now, lazy, third, third_lazy)
    return rows


TABLE = read_table(DOC.read_text())
CODE = code_imports()


# ----- the table against the code ---------------------------------------------------------


def test_the_table_is_read():
    assert {"engine", "nn", "config", "loop", "train", "micronet"} <= set(TABLE)
    assert TABLE["callbacks"].micronet_lazy == {"files", "plot"}
    assert TABLE["data"].third_party_lazy == {"sklearn"}


def test_every_module_has_a_row_in_the_table():
    missing = sorted(set(CODE) - set(TABLE))
    assert not missing, f"add a row to the import table in docs/architecture.md for: {', '.join(missing)}"


@pytest.mark.parametrize("module", sorted(CODE))
def test_imports_follow_the_table(module):
    if module not in TABLE:
        pytest.skip(f"{module} has no row (test_every_module_has_a_row_in_the_table says so)")
    row = TABLE[module]
    allowed = {
        ("micronet", False): row.micronet,
        ("micronet", True): row.micronet | row.micronet_lazy,
        ("third-party", False): row.third_party,
        ("third-party", True): row.third_party | row.third_party_lazy,
    }
    wrong = []
    for imp in CODE[module]:
        kind, name = target_of(imp)
        if kind != "stdlib" and name not in allowed[kind, imp.lazy]:
            when = "inside a function" if imp.lazy else "at import time"
            wrong.append(f"{imp.where}: {module} imports {imp.name} {when}")
    assert not wrong, "not allowed by docs/architecture.md's table:\n" + "\n".join(wrong)


def test_the_table_has_no_cycles():
    edges = {m: (r.micronet | r.micronet_lazy) & set(TABLE) for m, r in TABLE.items()}  # inside functions too
    order, done = [], set()
    while len(done) < len(edges):
        ready = sorted(m for m in edges if m not in done and edges[m] <= done)
        assert ready, f"the import table has a cycle among {sorted(set(edges) - done)}"
        order += ready
        done |= set(ready)
    assert order.index("engine") < order.index("nn") < order.index("epochs") < order.index("loop") < order.index("train") < order.index("sweep")


def test_the_code_has_no_import_cycles_even_inside_functions():
    edges = {m: {target_of(i)[1] for i in found if target_of(i)[0] == "micronet"} & set(CODE) for m, found in CODE.items()}
    done = set()
    while len(done) < len(edges):
        ready = {m for m in edges if m not in done and edges[m] <= done}
        assert ready, "modules that import each other (at import time or inside functions): " + ", ".join(
            f"{m} -> {sorted(edges[m] - done)}" for m in sorted(set(edges) - done) if edges[m] - done)
        done |= ready


def test_the_rows_name_real_modules_and_third_party_packages():
    for module, row in TABLE.items():
        for name in row.micronet | row.micronet_lazy:
            assert name in TABLE, f"row {module!r} names {name!r}, which has no row"
        for name in row.third_party | row.third_party_lazy:
            assert name not in STDLIB, f"row {module!r}: {name!r} is in the standard library"


# ----- public and private names across modules --------------------------------------------


def dotted_of(path):
    """`micronet.engine` for micronet/engine.py, `micronet.playground` for its __init__.py."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_of(dotted):
    """The file of a dotted micronet module or package, or None when it names something inside one."""
    path = ROOT.joinpath(*dotted.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def exported_names(path):
    """The strings a module's `__all__` holds (assigned or added to), or None without an `__all__`."""
    names = None
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        target = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AugAssign, ast.AnnAssign)) else []
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in target) and node.value is not None:
            names = names or set()
            names |= {c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    return names


def private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def names_across_modules():
    """(private, unexported): one message per private name a module takes from another micronet module
    (imported by name, or read as `module._name`), and per name imported from a module whose `__all__`
    does not list it. Imports under `if TYPE_CHECKING:` count: an annotation uses the name too."""
    taken_private, unexported = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = dotted_of(path)
        package = me.split(".") if path.name == "__init__.py" else me.split(".")[:-1]
        tree = ast.parse(path.read_text(), str(path))
        modules = {}  # local name -> the micronet module it is bound to
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Import):
                modules.update({a.asname or a.name: a.name for a in node.names if a.name.startswith("micronet.")})
            if not isinstance(node, ast.ImportFrom):
                continue
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] != "micronet" or base == me:
                continue
            for alias in node.names:
                if source_of(f"{base}.{alias.name}") is not None:  # a module, bound to a name
                    modules[alias.asname or alias.name] = f"{base}.{alias.name}"
                elif private(alias.name):
                    taken_private.append(f"{where}: {me} imports {base}.{alias.name}")
                elif not alias.name.startswith("__") and alias.name not in (exported_names(source_of(base)) or set()):
                    unexported.append(f"{where}: {me} imports {alias.name}, which {base}.__all__ does not list")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and private(node.attr) and ast.unparse(node.value) in modules:
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                taken_private.append(f"{where}: {me} reads {modules[ast.unparse(node.value)]}.{node.attr}")
    return taken_private, unexported


def test_no_module_takes_another_modules_private_names():
    taken, _ = names_across_modules()
    assert not taken, "make the name public (and list it in __all__), or keep it in its module:\n" + "\n".join(taken)


def test_every_name_used_across_modules_is_in_its_modules_all():
    _, unexported = names_across_modules()
    assert not unexported, "add these names to their module's __all__:\n" + "\n".join(unexported)


def test_the_name_checker_sees_private_and_unexported_names(tmp_path, monkeypatch):
    package = tmp_path / "micronet"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("__version__ = '1'\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "low.py").write_text("__all__ = ['shown']\n__all__ += ['added']\nshown = added = hidden = _inner = 1\n")
    (package / "bare.py").write_text("thing = 1\n")
    (package / "sub" / "high.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from micronet import __version__, low\n"
        "from micronet.low import shown, added, hidden\n"
        "from ..low import _inner\n"
        "import micronet.bare as b\n"
        "if TYPE_CHECKING:\n"
        "    from micronet.bare import thing\n"
        "x = low._inner + b._secret + low.shown\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", package)
    taken, unexported = names_across_modules()
    assert taken == [
        "micronet/sub/high.py:4: micronet.sub.high imports micronet.low._inner",
        "micronet/sub/high.py:8: micronet.sub.high reads micronet.low._inner",
        "micronet/sub/high.py:8: micronet.sub.high reads micronet.bare._secret",
    ]
    assert unexported == [
        "micronet/sub/high.py:3: micronet.sub.high imports hidden, which micronet.low.__all__ does not list",
        "micronet/sub/high.py:7: micronet.sub.high imports thing, which micronet.bare.__all__ does not list",
    ]


# ----- the rules in prose ------------------------------------------------------------------


def test_the_engine_imports_only_the_standard_library():
    # The activations' specs it reads are standard library only themselves. Its notebook display
    # is handed in (engine.DISPLAY, filled by the package), so not even a function imports graph.
    specs = [i for i in CODE["engine"] if target_of(i) == ("micronet", "activations") and not i.lazy]
    assert specs, "the engine reads the activation registry"
    assert [i.name for i in CODE["engine"] if target_of(i)[0] != "stdlib" and i not in specs] == []
    assert [i.name for i in CODE["activations"] if target_of(i)[0] != "stdlib"] == []


def test_only_the_sweep_imports_train_and_nothing_imports_sweep_or_the_estimators():
    importers = {}
    for module, found in CODE.items():
        for imp in found:
            kind, name = target_of(imp)
            if kind == "micronet":
                importers.setdefault(name, set()).add(module)
    assert importers.get("train", set()) <= {"sweep"}
    assert importers.get("sweep", set()) == set()
    assert importers.get("sklearn", set()) == set()


LOADED = """
import json, sys
before = set(sys.modules)
import {module}
new = {{name.split(".")[0] for name in set(sys.modules) - before}}
print(json.dumps(sorted(new - set(sys.stdlib_module_names) - {{"micronet"}})))
"""


def third_party_loaded_by(module):
    """Top-level third-party packages a fresh interpreter loads to import `module`."""
    out = subprocess.run([sys.executable, "-c", LOADED.format(module=module)], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return set(json.loads(out.stdout))


def test_importing_micronet_loads_no_third_party_package():
    assert third_party_loaded_by("micronet") == set()


def test_importing_the_config_loads_neither_scikit_learn_nor_matplotlib():
    loaded = third_party_loaded_by("micronet.config")
    assert "yaml" in loaded  # the probe sees what the import pulls in
    assert not loaded & {"sklearn", "matplotlib", "scipy"}, loaded


def reads_of_the_outside(path):
    """(line, what, enclosing function) for each read of sys.argv, os.environ or os.getenv."""
    found = []

    def visit(node, function):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            what = f"{node.value.id}.{node.attr}"
            if what in ("sys.argv", "os.environ", "os.getenv", "os.environb"):
                found.append((node.lineno, what, function))
        if isinstance(node, ast.ImportFrom) and node.module in ("sys", "os"):  # `from sys import argv`
            for alias in node.names:
                what = f"{node.module}.{alias.name}"
                if what in ("sys.argv", "os.environ", "os.getenv", "os.environb"):
                    found.append((node.lineno, what, function))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(ast.parse(path.read_text(), str(path)), None)
    return found


def test_argv_and_the_environment_are_read_only_inside_main():
    outside = [
        f"{path.relative_to(ROOT)}:{line}: {what} in {function or 'module scope'}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, what, function in reads_of_the_outside(path)
        if function != "main"
    ]
    assert not outside, "read the command line and the environment only in main():\n" + "\n".join(outside)


def test_the_outside_reader_finds_argv_wherever_it_is(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(
        "import os, sys\n"
        "X = os.environ.get('A')\n"
        "def main(argv=None):\n"
        "    return sys.argv\n"
        "def f(argv):\n"
        "    from os import getenv\n"
        "    return argv\n"
    )
    assert reads_of_the_outside(source) == [(2, "os.environ", None), (4, "sys.argv", "main"), (6, "os.getenv", "f")]


def test_the_import_reader_sees_lazy_relative_and_type_checking_imports(tmp_path, monkeypatch):
    package = tmp_path / "micronet"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "engine.py").write_text("")
    source = package / "sub" / "part.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "import numpy as np\n"
        "from .. import engine\n"
        "from micronet.engine import Value\n"
        "if TYPE_CHECKING:\n"
        "    from micronet.config import RunConfig\n"
        "def f():\n"
        "    import sklearn.base\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    found = [(i.name, i.lazy) for i in imports_of(source)]
    assert found == [("typing", False), ("numpy", False), ("micronet.engine", False), ("micronet.engine", False),
                     ("sklearn.base", True)]
