"""Hypothesis fuzzing for issue 7: configs, autograd, checkpoints.

(a) text-level mutations of the shipped configs, and random YAML documents in
    every style PyYAML writes, through `load_config`: a RunConfig or a
    ConfigError, nothing else. tests/test_config.py already fuzzes mappings,
    short random texts and structural edits of the shipped configs.
(b) random expression graphs over every engine op, checked against central
    differences wherever the function is defined and smooth.
(c) random bytes and mutated real checkpoints through `load_model`: a model
    or a ValueError, nothing else.

Every test is derandomized (the same examples on every run) and the file runs
in a few seconds.
"""

import functools
import json
import math
import operator
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from micronet import engine
from micronet.activations import ACTIVATIONS
from micronet.checkpoint import Checkpoint, load_checkpoint
from micronet.config import ConfigError, RunConfig, load_config, parse_config
from micronet.data import prepare_data
from micronet.engine import Value, dot, dots, log_softmax_at
from micronet.gradcheck import gradcheck
from micronet.loop import Plan, config_loss, make_executor, new_state, run_epochs
from micronet.nn import MLP
from micronet.rundir import RunWriter

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.yaml"))


def fuzz(examples):
    """Deterministic, no example database, no per-example deadline (CI machines vary)."""
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


# ----- (a) configs ---------------------------------------------------------------------


def assert_config_or_config_error(path):
    try:
        result = load_config(path)
    except ConfigError as e:
        assert "\n" not in str(e), "the CLI prints it as one line"
    else:
        assert isinstance(result, RunConfig)


# Characters that change what YAML means.
YAML_CHARACTERS = list(":-[]{},#&*!|>'\"%@`? \t\n0.e~") + ["null", "<<: ", "!!python/object:os.system "]


@st.composite
def mutated_config_text(draw):
    """A shipped config with a few typing accidents: lines lost, doubled, moved or re-indented, characters swapped."""
    lines = draw(st.sampled_from([p.read_text() for p in CONFIGS])).splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["delete-line", "duplicate-line", "swap-lines", "indent", "dedent",
                                       "swap-characters", "delete-character", "insert"]))
        line = lines[i]
        if action == "delete-line":
            del lines[i]
        elif action == "duplicate-line":
            lines.insert(i, line)
        elif action == "swap-lines":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], line
        elif action == "indent":
            lines[i] = "  " + line
        elif action == "dedent":
            lines[i] = line[2:] if line.startswith("  ") else line.lstrip()
        elif len(line) >= 2:
            k = draw(st.integers(0, len(line) - 2))
            if action == "swap-characters":
                lines[i] = line[:k] + line[k + 1] + line[k] + line[k + 2 :]
            elif action == "delete-character":
                lines[i] = line[:k] + line[k + 1 :]
            else:
                lines[i] = line[:k] + draw(st.sampled_from(YAML_CHARACTERS)) + line[k:]
    return "".join(lines)


@fuzz(200)
@given(mutated_config_text())
def test_fuzz_text_mutations_of_shipped_configs_give_config_or_config_error(text):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "mutated.yaml"
        path.write_text(text, encoding="utf-8")
        assert_config_or_config_error(path)


# Keys from the schema, so documents often get past the first check.
SCHEMA_KEYS = ["name", "seed", "dataset", "model", "loss", "optimizer", "training", "schedule", "lr", "hidden",
               "n_samples", "noise", "momentum", "betas", "epochs", "batch_size", "backend", "gamma", "interval"]
yaml_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=10),
    st.binary(max_size=6),  # !!binary
    st.complex_numbers(max_magnitude=10, allow_nan=False),  # !!python/complex
    st.sampled_from(["moons", "adam", "cosine", "full", "eager", "relu", "1e-3", "step", "csv"]),
)
yaml_data = st.recursive(
    yaml_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),  # !!python/tuple
        st.frozensets(st.integers(0, 5), max_size=3),  # !!set
        st.dictionaries(st.sampled_from(SCHEMA_KEYS) | st.text(max_size=5), inner, max_size=4),
    ),
    max_leaves=15,
)


@fuzz(150)
@given(
    document=st.dictionaries(st.sampled_from(SCHEMA_KEYS), yaml_data, max_size=6) | yaml_data,
    flow=st.sampled_from([None, True, False]),
    canonical=st.booleans(),
    explicit=st.booleans(),
    shared=st.booleans(),
)
def test_fuzz_random_yaml_documents_give_config_or_config_error(document, flow, canonical, explicit, shared):
    if shared and isinstance(document, dict) and document:
        first = next(iter(document.values()))
        document = {**document, "model": {"hidden": first}, "optimizer": {"betas": first}}  # anchors and aliases
    # yaml.dump, not safe_dump: tuples, complex numbers and the like get python tags, which must be refused.
    text = yaml.dump(document, default_flow_style=flow, canonical=canonical, explicit_start=explicit)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "random.yaml"
        path.write_text(text, encoding="utf-8")
        assert_config_or_config_error(path)


# ----- (b) autograd against central differences -----------------------------------------

UNARY = {
    "neg": operator.neg,
    "exp": Value.exp,
    "log": Value.log,
    "tanh": Value.tanh,
    "sigmoid": Value.sigmoid,
    "relu": Value.relu,
    "abs": Value.abs,  # also reaches __abs__
    "sin": Value.sin,
    "cos": Value.cos,
    # every registered activation through Value.activate, so that a new one is fuzzed too
    **{f"activate:{name}": (lambda v, name=name: v.activate(name)) for name in ACTIVATIONS},
}
KINKS = {"relu": (0.0,), "abs": (0.0,), **{f"activate:{name}": spec.kinks for name, spec in ACTIVATIONS.items()}}
# With a number on the left these reach __radd__, __rsub__, __rmul__, __rtruediv__, __rpow__.
BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "**": operator.pow}
REACHED_DUNDERS = {"__neg__", *(f"__{n}__" for n in ("add", "sub", "mul", "truediv", "pow")),
                   *(f"__r{n}__" for n in ("add", "sub", "mul", "truediv", "pow")), "__abs__"}
# Dunders that make no graph node: conversions, comparisons, identity, copying.
NOT_OPS = {"__float__", "__bool__", "__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__hash__", "__deepcopy__"}
GRAPH_FUNCTIONS = {"dot", "dots", "log_softmax_at"}

MARGIN = 0.05  # how far from a kink or a domain edge a point must be for finite differences to hold
LARGEST = 1e3  # no intermediate value beyond this: keeps rounding error far below the tolerance
ATOL, RTOL = 1e-6, 1e-5  # tighter than gradcheck's defaults: central differences at h=1e-6 give ~1e-9


class NotSmooth(Exception):
    """The point is too near a kink or a domain edge, or the values are too large, to check."""


numbers = st.one_of(st.integers(-3, 3), st.floats(-3.0, 3.0).map(lambda x: round(x, 2)))
KINDS = ["unary", "binary", "dot", "dots", "log_softmax_at"]


@st.composite
def graphs(draw, depth=3):
    """A random program over the leaves x0..x2: nested tuples that `build` evaluates.

    The root is always an op; below it each node is a leaf with rising
    probability as the depth budget runs out.
    """

    def node(budget):
        if budget == 0 or (budget < depth and draw(st.integers(0, budget)) == 0):
            return ("x", draw(st.integers(0, 2)))
        below = budget - 1
        kind = draw(st.sampled_from(KINDS))

        def operand():  # a subgraph, or a number on either side of an op
            return ("num", draw(numbers)) if draw(st.integers(0, 2)) == 0 else node(below)

        if kind == "unary":
            return ("unary", draw(st.sampled_from(sorted(UNARY))), node(below))
        if kind == "binary":
            op = draw(st.sampled_from(sorted(BINARY)))
            left, right = (operand(), node(below)) if draw(st.booleans()) else (node(below), operand())
            return ("binary", op, left, right)
        n = draw(st.integers(1, 3))
        if kind == "dot":
            bias = node(below) if draw(st.booleans()) else None
            return ("dot", [node(below) for _ in range(n)], [operand() for _ in range(n)], bias)
        if kind == "dots":
            rows = [[node(below) for _ in range(n)] for _ in range(draw(st.integers(1, 3)))]
            return ("dots", rows, [operand() for _ in range(n)], draw(st.sampled_from([None, *ACTIVATIONS])))
        return ("log_softmax_at", [node(below) for _ in range(n)], draw(st.integers(0, n - 1)))

    return node(depth)


def _data(v):
    return v.data if isinstance(v, Value) else float(v)


def build(node, xs, check=True):
    """The Value (or number) that `node` computes from the leaves `xs`.

    With `check`, raises NotSmooth where the point is unfit for finite differences.
    """
    kind = node[0]
    if kind == "x":
        return xs[node[1] % len(xs)]
    if kind == "num":
        return node[1]
    if kind == "unary":
        a = build(node[2], xs, check)
        if check and any(abs(a.data - kink) < MARGIN for kink in KINKS.get(node[1], ())):
            raise NotSmooth("near a kink")
        if check and node[1] == "log" and a.data < MARGIN:
            raise NotSmooth("near log's domain edge")
        out = UNARY[node[1]](a)
    elif kind == "binary":
        op, a, b = node[1], build(node[2], xs, check), build(node[3], xs, check)
        if check and op == "/" and abs(_data(b)) < MARGIN:
            raise NotSmooth("near a division by zero")
        if check and op == "**":
            base, exponent = _data(a), _data(b)
            real_power = isinstance(b, Value) or not exponent.is_integer()
            if (real_power and base < MARGIN) or (exponent < 0 and abs(base) < MARGIN):
                raise NotSmooth("near the edge of pow's domain")
        out = BINARY[op](a, b)
    elif kind == "dot":
        weights = [build(w, xs, check) for w in node[1]]
        inputs = [build(x, xs, check) for x in node[2]]
        out = dot(weights, inputs, None if node[3] is None else build(node[3], xs, check))
    elif kind == "dots":
        rows = [[build(w, xs, check) for w in row] for row in node[1]]
        inputs = [build(x, xs, check) for x in node[2]]
        kinks = () if node[3] is None else ACTIVATIONS[node[3]].kinks
        if check and any(abs(z.data - kink) < MARGIN for z in dots(rows, inputs) for kink in kinks):
            raise NotSmooth("a pre-activation near a kink")
        out = sum(dots(rows, inputs, activation=node[3]))
    else:
        out = log_softmax_at([build(v, xs, check) for v in node[1]], node[2])
    if check and not abs(out.data) <= LARGEST:
        raise NotSmooth("values too large for finite differences")
    return out


@fuzz(300)
@given(graph=graphs(), point=st.lists(st.floats(-2.0, 2.0), min_size=1, max_size=3))
def test_fuzz_random_graphs_match_central_differences(graph, point):
    # Checked only where the function is defined and smooth around the point.
    leaves = [Value(x) for x in point]
    try:
        build(graph, leaves).backward()
    except (NotSmooth, ValueError, ZeroDivisionError, OverflowError):
        assume(False)
    assume(all(abs(leaf.grad) <= LARGEST for leaf in leaves))
    gradcheck(lambda *values: build(graph, values, check=False), point, atol=ATOL, rtol=RTOL)


def test_the_fuzzed_graphs_use_every_engine_op():
    """A new op on Value or in engine.__all__ must be added to the grammar above."""
    methods = {name for name, attribute in vars(Value).items() if callable(attribute) and not name.startswith("_")}
    assert methods - {"backward"} <= set(UNARY) | {"activate"}
    dunders = {name for name in vars(Value) if name.startswith("__") and name not in
               {"__init__", "__repr__", "__slots__", "__module__", "__doc__", "__qualname__", "__firstlineno__",
                "__static_attributes__"} and callable(getattr(Value, name))}
    assert dunders - NOT_OPS <= REACHED_DUNDERS
    not_ops = {"Value", "make_node", "topological_order", "unfused", "DISPLAY"}  # the class, the door, a walk, a switch, the notebook hook
    assert set(engine.__all__) - not_ops <= GRAPH_FUNCTIONS


# ----- (c) checkpoints ---------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def real_checkpoint():
    """model.json of a real run after one epoch, as the trainer writes it."""
    config = parse_config({"seed": 3, "dataset": {"name": "moons", "n_samples": 40}, "model": {"hidden": [3]},
                           "training": {"epochs": 1, "batch_size": 10}})
    data = prepare_data(config.dataset, config.seed)
    state = new_state(config, data)
    run_epochs(Plan.from_config(config), data, state, make_executor(state.model, config_loss(config), "compiled", data.feature_count))
    with tempfile.TemporaryDirectory() as d:
        writer = RunWriter(d, config, data)
        writer.save_checkpoint(state)
        return (Path(d) / "model.json").read_bytes()


def assert_model_or_value_error(raw):
    """load_model's contract: a consistent model, or ValueError."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.json"
        path.write_bytes(raw)
        try:
            loaded = load_checkpoint(path)
        except ValueError:
            return
    assert isinstance(loaded, Checkpoint) and isinstance(loaded.model, MLP)
    assert all(math.isfinite(p.data) for p in loaded.model.parameters())
    assert len(loaded.classes) == len(loaded.model.layers[-1].neurons)


@fuzz(150)
@given(st.binary(max_size=300) | st.text(max_size=120).map(str.encode))
def test_fuzz_random_bytes_give_model_or_value_error(raw):
    assert_model_or_value_error(raw)


@st.composite
def byte_mutations(draw):
    raw = bytearray(real_checkpoint())
    for _ in range(draw(st.integers(1, 5))):
        if not raw:
            break
        i = draw(st.integers(0, len(raw) - 1))
        action = draw(st.sampled_from(["flip", "delete", "insert", "truncate", "duplicate"]))
        if action == "flip":
            raw[i] ^= 1 << draw(st.integers(0, 7))
        elif action == "delete":
            del raw[i : i + draw(st.integers(1, 20))]
        elif action == "insert":
            raw[i:i] = draw(st.sampled_from([b"0", b"-", b"e9", b",", b"]", b"}", b"\"", b"null", b"NaN", b"\xff"]))
        elif action == "truncate":
            del raw[i:]
        else:
            raw[i:i] = raw[i : i + draw(st.integers(1, 40))]
    return bytes(raw)


@fuzz(300)
@given(byte_mutations())
def test_fuzz_byte_mutations_of_a_real_checkpoint_give_model_or_value_error(raw):
    assert_model_or_value_error(raw)


# Integers include ones far beyond the float range (10**400 has no float).
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(10**400), 10**400), st.floats(), st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)


def paths(node, prefix=()):
    """Every path into a JSON document (not into long lists like the RNG state)."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list) and len(node) <= 10:
        for i, value in enumerate(node):
            yield from paths(value, (*prefix, i))


def parent_of(document, path):
    for key in path[:-1]:
        document = document[key]
    return document


@st.composite
def json_mutations(draw):
    document = json.loads(real_checkpoint())
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(paths(document))))
        if not path:
            document = draw(json_values)
            continue
        parent, key = parent_of(document, path), path[-1]
        action = draw(st.sampled_from(["replace", "delete", "rename", "add", "copy-from-elsewhere"]))
        if action == "replace":
            parent[key] = draw(json_values)
        elif action == "delete":
            del parent[key]
        elif action == "rename" and isinstance(parent, dict):
            new_key = draw(st.text(max_size=6) | st.sampled_from(list(parent)))  # drawn before the pop empties it
            parent[new_key] = parent.pop(key)
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=6))] = draw(json_values)
        elif action == "copy-from-elsewhere":
            source = draw(st.sampled_from(list(paths(document))))
            value = document if not source else parent_of(document, source)[source[-1]]
            parent[key] = json.loads(json.dumps(value))
        if not isinstance(document, (dict, list)):
            break
    return json.dumps(document).encode()  # may write NaN and Infinity: they must be refused too


@fuzz(300)
@given(json_mutations())
def test_fuzz_json_edits_of_a_real_checkpoint_give_model_or_value_error(raw):
    assert_model_or_value_error(raw)
