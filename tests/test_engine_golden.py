"""Replay PyTorch's golden programs with micronet Values; torch is not needed.

tests/data/engine_goldens.json comes from experiments/make_engine_goldens.py:
random and hand-written scalar programs with PyTorch 2.13's float64 value of
every node and gradient of the output with respect to every input, each also
confirmed against 40-digit mpmath. Agreement to 1e-12 relative therefore
pins micronet's forward math and its backward rules, reused nodes included.
Its "edges" are PyTorch's conventions at kinks, for NaN inputs and for
slopes beyond the float range; those must match exactly.
"""

import json
import math
from pathlib import Path

import pytest

from micronet.engine import Value, dot

GOLDENS = json.loads((Path(__file__).parent / "data" / "engine_goldens.json").read_text())
GRAPHS = GOLDENS["graphs"]
EDGES = GOLDENS["edges"]
REL_TOL = 1e-12
ABS_TOL = 1e-12  # for numbers at or near zero, where relative error means nothing

# name -> (operand kinds, micronet op). Kinds: v node, n Python number,
# V list of nodes, X list of nodes or numbers (an int is a node index, a
# float a constant). Number operands stay plain numbers, so `2 - x` runs
# Value.__rsub__ exactly as a user's expression would.
OPS = {
    "add": ("vv", lambda a, b: a + b),
    "sub": ("vv", lambda a, b: a - b),
    "mul": ("vv", lambda a, b: a * b),
    "div": ("vv", lambda a, b: a / b),
    "pow": ("vv", lambda a, b: a**b),
    "neg": ("v", lambda a: -a),
    "add_const": ("vn", lambda a, c: a + c),
    "radd": ("nv", lambda c, a: c + a),
    "sub_const": ("vn", lambda a, c: a - c),
    "rsub": ("nv", lambda c, a: c - a),
    "mul_const": ("vn", lambda a, c: a * c),
    "rmul": ("nv", lambda c, a: c * a),
    "div_const": ("vn", lambda a, c: a / c),
    "rdiv": ("nv", lambda c, a: c / a),
    "pow_const": ("vn", lambda a, c: a**c),
    "rpow": ("nv", lambda c, a: c**a),
    "exp": ("v", lambda a: a.exp()),
    "log": ("v", lambda a: a.log()),
    "tanh": ("v", lambda a: a.tanh()),
    "sigmoid": ("v", lambda a: a.sigmoid()),
    "relu": ("v", lambda a: a.relu()),
    "abs": ("v", lambda a: abs(a)),
    "sin": ("v", lambda a: a.sin()),
    "cos": ("v", lambda a: a.cos()),
    "dot": ("VX", lambda w, x: dot(w, x)),
    "dot_bias": ("VXv", lambda w, x, b: dot(w, x, b)),
}


def _operand(kind, arg, nodes):
    """Resolve one operand, insisting it has the kind the op declares."""
    if kind == "v":
        assert type(arg) is int, f"expected a node index, got {arg!r}"
        return nodes[arg]
    if kind == "n":
        assert type(arg) is float, f"expected a number, got {arg!r}"
        return arg
    assert isinstance(arg, list), f"expected a list of operands, got {arg!r}"
    return [_operand("v" if kind == "V" or type(a) is int else "n", a, nodes) for a in arg]


def replay(graph):
    """Run a golden program with micronet and backpropagate from its output."""
    nodes = [Value(x) for x in graph["inputs"]]
    for name, *args in graph["ops"]:
        kinds, op = OPS[name]
        assert len(args) == len(kinds), f"{name} takes {len(kinds)} operands, got {args}"
        nodes.append(op(*(_operand(k, a, nodes) for k, a in zip(kinds, args))))
    nodes[graph["output"]].backward()
    return nodes


def _close(ours, theirs, abs_tol=ABS_TOL):
    return math.isclose(ours, theirs, rel_tol=REL_TOL, abs_tol=abs_tol)


def _identical(ours, theirs):
    return ours == theirs or (math.isnan(ours) and math.isnan(theirs))


@pytest.mark.parametrize("graph", GRAPHS + EDGES, ids=[g["id"] for g in GRAPHS + EDGES])
def test_engine_matches_pytorch(graph):
    nodes = replay(graph)
    n_inputs = len(graph["inputs"])
    assert len(nodes) == len(graph["values"])
    abs_tol = graph.get("abs_tol", ABS_TOL)
    close = _identical if graph in EDGES else lambda a, b: _close(a, b, abs_tol)
    wrong = []
    for i, (node, expected) in enumerate(zip(nodes, graph["values"])):
        if not close(node.data, expected):
            where = "input" if i < n_inputs else graph["ops"][i - n_inputs]
            wrong.append(f"value of node {i} {where}: micronet {node.data!r}, torch {expected!r}")
    for i, expected in enumerate(graph["grads"]):
        if not close(nodes[i].grad, expected):
            wrong.append(f"grad of input {i}: micronet {nodes[i].grad!r}, torch {expected!r}")
    assert not wrong, "\n".join(wrong)


def test_goldens_hold_enough_graphs():
    assert len(GRAPHS) >= 50
    assert len({g["id"] for g in GRAPHS}) == len(GRAPHS), "graph ids must be unique"


def test_every_op_appears_in_the_goldens():
    used = {op[0] for g in GRAPHS for op in g["ops"]}
    assert used == set(OPS), f"missing {sorted(set(OPS) - used)}, unknown {sorted(used - set(OPS))}"


def test_goldens_cover_the_awkward_shapes():
    """Reuse, numbers among dot's inputs, and deep and wide graphs stay in the data."""
    ops = [op for g in GRAPHS for op in g["ops"]]
    assert any(op[0] in ("add", "mul") and op[1] == op[2] for op in ops), "x + x or x * x"
    assert any(op[0].startswith("dot") and any(type(x) is float for x in op[2]) for op in ops)
    assert max(len(g["ops"]) for g in GRAPHS) >= 40
    assert max(len(g["inputs"]) for g in GRAPHS) >= 16


def test_edges_pin_kinks_nan_and_infinite_slopes():
    ids = {g["id"] for g in EDGES}
    assert {"edge_relu_at_zero", "edge_abs_at_zero", "edge_relu_of_nan", "edge_div_slopes_beyond_floats"} <= ids
    values = [x for g in EDGES for x in g["values"] + g["grads"]]
    assert any(math.isnan(x) for x in values) and any(math.isinf(x) for x in values)


def test_goldens_say_where_they_came_from():
    header = GOLDENS["header"]
    assert header["torch"].startswith("2.13.0")
    assert "make_engine_goldens.py" in header["command"]
