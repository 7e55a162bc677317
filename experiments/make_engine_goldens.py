"""Write PyTorch's values and gradients for random engine programs as golden data.

tests/test_engine_golden.py replays every program with micronet Values and
demands agreement to 1e-12 relative, without importing torch; this script is
the only place torch runs. Install the pinned version and run it from the
repository root:

    pip install torch==2.13.0      # CPU is enough; mpmath comes with it
    /work/refvenv/bin/python experiments/make_engine_goldens.py

A program is a tiny SSA listing: nodes 0..n-1 are the inputs, then op k
defines node n+k. In an op `[name, arg, ...]` an int is a node index, a float
a Python-number constant, and a list a list of such operands (dot's weights
and inputs). Every program is also evaluated in 40-digit mpmath, its
gradients by mpmath's own numerical differentiation, and a random program is
kept only if PyTorch agrees with that to 1e-13: then a 1e-12 disagreement in
the test is the engine's, never float64 rounding amplified by a badly
conditioned graph. A random program whose gradient nearly vanishes (nonzero
but below 1e-3) is drawn again too, since the test's absolute tolerance would
let almost anything pass for it. mpmath's derivatives step each input by a
step relative to its size, so inputs like 1e-160 are checked too.

A few "edge" programs hold PyTorch's conventions where a numerical
derivative means nothing: slopes at kinks (relu and abs at 0), NaN inputs,
and quotients whose slopes are beyond the float range (+-inf). They are
PyTorch's numbers as they are, not checked against mpmath, and the test
demands them exactly (NaN for NaN, inf for inf).
"""

import argparse
import json
import math
import random
import sys
from functools import partial
from pathlib import Path
from types import SimpleNamespace

TORCH_VERSION = "2.13.0"
COMMAND = "/work/refvenv/bin/python experiments/make_engine_goldens.py"
OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "engine_goldens.json"
SEED = 20240601

LIMIT = 1e3  # |value| bound for random ops: far from overflow, no huge slopes
ACCURACY = 1e-13  # PyTorch vs 40-digit mpmath, relative (absolute near zero)

# name -> (operand kinds, forward). Kinds: v node, n number, V list of nodes,
# X list of nodes or numbers. `L` is the math library of the backend, so the
# same table runs on floats (guards), mpmath (truth) and tensors (goldens).
OPS = {
    "add": ("vv", lambda L, a, b: a + b),
    "sub": ("vv", lambda L, a, b: a - b),
    "mul": ("vv", lambda L, a, b: a * b),
    "div": ("vv", lambda L, a, b: a / b),
    "pow": ("vv", lambda L, a, b: a**b),  # Value exponent
    "neg": ("v", lambda L, a: -a),
    "add_const": ("vn", lambda L, a, c: a + c),
    "radd": ("nv", lambda L, c, a: c + a),
    "sub_const": ("vn", lambda L, a, c: a - c),
    "rsub": ("nv", lambda L, c, a: c - a),
    "mul_const": ("vn", lambda L, a, c: a * c),
    "rmul": ("nv", lambda L, c, a: c * a),
    "div_const": ("vn", lambda L, a, c: a / c),
    "rdiv": ("nv", lambda L, c, a: c / a),
    "pow_const": ("vn", lambda L, a, c: a**c),  # number exponent
    "rpow": ("nv", lambda L, c, a: c**a),  # number ** Value
    "exp": ("v", lambda L, a: L.exp(a)),
    "log": ("v", lambda L, a: L.log(a)),
    "tanh": ("v", lambda L, a: L.tanh(a)),
    "sigmoid": ("v", lambda L, a: L.sigmoid(a)),
    "relu": ("v", lambda L, a: L.relu(a)),
    "abs": ("v", lambda L, a: abs(a)),  # Python's abs: Value.__abs__, torch.abs, mpmath's fabs
    "sin": ("v", lambda L, a: L.sin(a)),
    "cos": ("v", lambda L, a: L.cos(a)),
    "dot": ("VX", lambda L, w, x: L.dot(w, x)),
    "dot_bias": ("VXv", lambda L, w, x, b: L.dot(w, x) + b),
}
OP_NAMES = sorted(OPS)

FLOATS = SimpleNamespace(
    exp=math.exp,
    log=math.log,
    tanh=math.tanh,
    sigmoid=lambda x: 1.0 / (1.0 + math.exp(-x)),
    relu=lambda x: max(x, 0.0),
    sin=math.sin,
    cos=math.cos,
    dot=lambda w, x: math.fsum(a * b for a, b in zip(w, x)),
)

# Constants drawn for number operands; none is zero, so x / c is always defined.
CONSTANTS = [0.5, 2.0, 3.0, -1.5, 0.25, -4.0, 1.75, 10.0, -0.3]
EXPONENTS = [2.0, 3.0, 4.0, -1.0, -2.0, 0.0, 1.0, 0.5, 1.5, -0.5, 2.5]
RPOW_BASES = [0.5, 2.0, 3.0, 1.5, 0.25, math.e, 10.0]


# ----- one interpreter, three backends ---------------------------------------


def resolve(arg, nodes):
    """An int names a node, a float is a constant, a list resolves elementwise."""
    if isinstance(arg, list):
        return [resolve(a, nodes) for a in arg]
    if isinstance(arg, int):
        return nodes[arg]
    return arg


def apply_op(op, nodes, lib):
    """One op's result from the nodes computed so far."""
    name, *args = op
    return OPS[name][1](lib, *(resolve(a, nodes) for a in args))


def evaluate(ops, leaves, lib):
    """Every node's value: the leaves, then each op in order."""
    nodes = list(leaves)
    for op in ops:
        nodes.append(apply_op(op, nodes, lib))
    return nodes


# ----- building programs -----------------------------------------------------


class Builder:
    """A program under construction, with float values to steer the guards."""

    def __init__(self, inputs):
        self.inputs = [float(x) for x in inputs]
        self.ops = []
        self.vals = list(self.inputs)

    def op(self, name, *args):
        """Append an op unconditionally (hand-written programs); return its node."""
        op = [name, *args]
        check_signature(op, len(self.vals))
        value = apply_op(op, self.vals, FLOATS)
        if not (isinstance(value, float) and math.isfinite(value)):
            raise ValueError(f"op {op} gives {value!r}")
        self.ops.append(op)
        self.vals.append(value)
        return len(self.vals) - 1

    def try_op(self, op):
        """Append a random op only if it is safe and well conditioned."""
        try:
            value = apply_op(op, self.vals, FLOATS)
        except (ArithmeticError, ValueError):  # domain errors, overflow, x / 0
            return False
        name, *args = op
        if not well_posed(name, [resolve(a, self.vals) for a in args], value):
            return False
        self.ops.append(op)
        self.vals.append(value)
        return True

    def finish(self, graph_id):
        """Sum every node nothing else uses into the output, so all of them count.

        The sum picks + or - by sign, so it never cancels.
        """
        used = {i for op in self.ops for i in node_refs(op)}
        last = len(self.vals) - 1
        loose = [i for i in range(last) if i not in used]
        acc = last
        for i in loose:
            same_sign = self.vals[acc] * self.vals[i] >= 0.0
            acc = self.op("add" if same_sign else "sub", acc, i)
        return {"id": graph_id, "inputs": self.inputs, "ops": self.ops, "output": acc}


def node_refs(op):
    """The node indices an op reads."""
    refs = []
    for a in op[1:]:
        for b in a if isinstance(a, list) else [a]:
            if isinstance(b, int):
                refs.append(b)
    return refs


def check_signature(op, n_nodes):
    """Fail early if an op's operands do not match its declared kinds."""
    name, *args = op
    kinds = OPS[name][0]
    assert len(args) == len(kinds), op
    for kind, a in zip(kinds, args):
        if kind == "v":
            assert isinstance(a, int) and 0 <= a < n_nodes, op
        elif kind == "n":
            assert isinstance(a, float), op  # an int would read as a node index
        else:
            assert isinstance(a, list) and a, op
            for b in a:
                assert (isinstance(b, int) and 0 <= b < n_nodes) or (kind == "X" and isinstance(b, float)), op


def well_posed(name, args, out):
    """Keep a random op away from domain edges, kinks, saturation and cancellation."""
    if not (isinstance(out, float) and math.isfinite(out) and abs(out) <= LIMIT):
        return False  # also rejects the complex result of (-x) ** 0.5
    if 0.0 < abs(out) < 1e-3:
        return False  # tiny values would hide under the tests' absolute tolerance
    if name in ("add", "sub", "add_const", "radd", "sub_const", "rsub"):
        return abs(out) >= 0.1 * (abs(args[0]) + abs(args[1]))  # lose < 1 digit
    if name in ("div", "div_const", "rdiv"):
        return abs(args[1]) >= 0.25  # the denominator is always the second operand
    if name == "pow_const":
        x, c = args
        if not c.is_integer() and x < 0.05:
            return False  # fractional exponents only for positive bases
        return c >= 0.0 or abs(x) >= 0.25
    if name == "pow":
        x, e = args
        return x >= 0.1 and abs(math.log(x)) >= 0.05 and abs(e * math.log(x)) <= 4.0
    if name == "rpow":
        c, x = args
        return abs(x * math.log(c)) <= 4.0
    if name == "log":
        return args[0] >= 0.05 and abs(out) >= 0.05  # log near 1 amplifies error
    if name == "exp":
        return -6.0 <= args[0] <= 4.0
    if name == "tanh":
        return abs(args[0]) <= 3.0  # 1 - t*t stays >= 0.01
    if name == "sigmoid":
        return abs(args[0]) <= 6.0
    if name == "relu":
        return abs(args[0]) >= 1e-3  # well clear of the kink
    if name == "abs":
        return abs(args[0]) >= 1e-3  # well clear of the kink
    if name in ("sin", "cos"):
        return abs(args[0]) <= 10.0 and abs(out) >= 0.05
    if name in ("dot", "dot_bias"):
        w, x = args[0], args[1]
        bias = abs(args[2]) if name == "dot_bias" else 0.0
        return abs(out) >= 0.1 * (math.fsum(abs(a * b) for a, b in zip(w, x)) + bias)
    return True  # mul, neg, mul_const, rmul: bounded by the LIMIT check


def random_input(rng):
    """A leaf value in [-2, 2] with three decimals, so the JSON stays readable."""
    x = round(rng.uniform(-2.0, 2.0), 3)
    return x if abs(x) >= 0.05 else 0.75  # no input sits on relu's kink


def pick_node(rng, b, recent_bias=0.5):
    """A node index, favouring the last few so random programs grow deep."""
    n = len(b.vals)
    if rng.random() < recent_bias:
        return rng.randrange(max(0, n - 3), n)
    return rng.randrange(n)


def propose(rng, b, name, primary, max_width):
    """A random op called `name`; `primary`, if given, is one of its operands."""
    kinds = OPS[name][0]
    width = rng.randint(1, max_width)  # dot's weights and inputs match in length
    args = []
    for kind in kinds:
        if kind == "v":
            args.append(pick_node(rng, b))
        elif kind == "n":
            pool = {"pow_const": EXPONENTS, "rpow": RPOW_BASES}.get(name, CONSTANTS)
            args.append(rng.choice(pool))
        else:
            args.append([pick_node(rng, b) for _ in range(width)])
    if "X" in kinds:  # some numbers among dot's inputs: micronet's mixed path
        args[1] = [rng.choice(CONSTANTS) if rng.random() < 0.15 else x for x in args[1]]
    if primary is not None:
        if kinds[0] == "V":
            args[0][rng.randrange(len(args[0]))] = primary
        else:
            args[kinds.index("v")] = primary
    return [name, *args]


def random_program(rng, graph_id, n_inputs, n_ops, chain=False, max_width=4):
    """Grow a program op by op; with `chain`, each op reads the one before it."""
    b = Builder([random_input(rng) for _ in range(n_inputs)])
    attempts = 0
    while len(b.ops) < n_ops:
        attempts += 1
        if attempts > 100 * n_ops:
            raise RuntimeError(f"{graph_id}: could not find safe ops")
        primary = len(b.vals) - 1 if chain else None
        op = propose(rng, b, rng.choice(OP_NAMES), primary, max_width)
        if primary is None or keeps_gradient(op, b.vals, primary):
            b.try_op(op)
    return b.finish(graph_id)


def keeps_gradient(op, vals, primary):
    """Refuse ops whose slope along a deep chain is exactly zero.

    Otherwise one dead relu (or x / x, x ** 0, a product with a zero) leaves
    the 40-op chain above it with nothing to check but zeros and rounding noise.
    """
    name, *args = op
    if name == "relu":
        return vals[primary] > 0.0
    if name == "pow_const":
        return args[1] != 0.0
    if name == "div" and args[0] == args[1]:
        return False
    return all(vals[i] != 0.0 for i in node_refs(op))


def wide_program(rng, graph_id, n_inputs):
    """Many inputs, each through its own op, then wide dots and a long sum."""
    b = Builder([random_input(rng) for _ in range(n_inputs)])
    unary = ["exp", "tanh", "sigmoid", "sin", "cos", "relu", "neg", "mul_const", "rsub", "pow_const"]
    for i in range(n_inputs):
        while not b.try_op(propose(rng, b, rng.choice(unary), i, 1)):
            pass
    for _ in range(3):  # a dot as wide as half the inputs
        while not b.try_op(propose(rng, b, rng.choice(["dot", "dot_bias"]), None, n_inputs // 2)):
            pass
    return b.finish(graph_id)


def hand_programs():
    """Shapes that break naive engines, and every op with named operands."""
    programs = []

    def add(graph_id, inputs, build):
        b = Builder(inputs)
        build(b)
        programs.append(b.finish(graph_id))

    add("square_x_times_x", [1.3], lambda b: b.op("mul", 0, 0))
    add("cube_x_times_x_times_x", [-0.7], lambda b: b.op("mul", b.op("mul", 0, 0), 0))

    def double_double(b):  # b = a + a; c = b + b
        twice = b.op("add", 0, 0)
        b.op("add", twice, twice)

    add("double_double_b_eq_a_plus_a", [0.9], double_double)
    add("diamond", [0.6], lambda b: b.op("mul", b.op("sin", 0), b.op("exp", 0)))

    def diamond_through_product(b):  # a = x*y feeds two branches and the join
        a = b.op("mul", 0, 1)
        d = b.op("add", b.op("tanh", a), b.op("sigmoid", a))
        b.op("mul", d, a)

    add("diamond_through_product", [0.8, -1.1], diamond_through_product)
    add("sub_self_is_zero", [1.7], lambda b: b.op("sub", 0, 0))
    add("div_self_is_one", [-2.3], lambda b: b.op("div", 0, 0))

    def numbers_either_side(b):  # 2 - x, 3 / x, x * 0.5 and friends
        for op in (
            ["rsub", 2.0, 0], ["rdiv", 3.0, 0], ["mul_const", 0, 0.5], ["rmul", 0.5, 0],
            ["radd", 1.5, 0], ["add_const", 0, 1.5], ["sub_const", 0, 2.0], ["div_const", 0, 4.0],
        ):
            b.op(*op)

    add("numbers_on_either_side", [1.3], numbers_either_side)

    def number_exponents(b):
        for e in EXPONENTS:
            b.op("pow_const", 0, e)

    add("pow_number_exponents", [1.7], number_exponents)

    def integer_exponents_negative_base(b):
        for e in (2.0, 3.0, -1.0, -2.0, 0.0, 1.0):
            b.op("pow_const", 0, e)

    add("pow_integer_exponents_negative_base", [-1.3], integer_exponents_negative_base)

    def value_exponents(b):
        b.op("pow", 0, 1)
        b.op("pow", 0, 0)  # x ** x: base and exponent are one node

    add("pow_value_exponent", [1.6, -0.8], value_exponents)

    def number_base(b):
        for c in RPOW_BASES:
            b.op("rpow", c, 0)

    add("rpow_number_base", [0.7], number_base)

    def each_unary(b):
        for name in ("exp", "tanh", "sigmoid", "relu", "abs", "sin", "cos", "neg"):
            b.op(name, 0)
        b.op("log", b.op("exp", 0))

    add("unary_functions", [0.4], each_unary)
    add("log_of_positive", [2.5], lambda b: b.op("log", 0))
    add("unary_functions_negative", [-0.9], each_unary)
    add("relu_both_sides", [0.8, -0.8], lambda b: (b.op("relu", 0), b.op("relu", 1)))
    add("dot_without_bias", [0.5, -1.2, 0.3, 1.1, 0.7, -0.4], lambda b: b.op("dot", [0, 1, 2], [3, 4, 5]))
    add("dot_with_bias", [0.5, -1.2, 0.3, 1.1, 0.7, -0.4, 0.9],
        lambda b: b.op("dot_bias", [0, 1, 2], [3, 4, 5], 6))
    add("dot_same_node_as_weight_and_input", [0.6, -1.4], lambda b: b.op("dot", [0, 1], [0, 1]))
    add("dot_repeated_node_and_bias", [0.6, -1.4], lambda b: b.op("dot_bias", [0, 0], [1, 1], 0))
    add("dot_number_inputs", [0.6, -1.4, 1.9, 0.3],
        lambda b: (b.op("dot_bias", [0, 1, 2], [3, 0.5, -2.0], 3), b.op("dot", [0, 1], [0.25, 3.0])))
    add("neuron_tanh_of_dot", [0.2, -0.5, 0.8, 1.5, -0.3, 0.1],
        lambda b: b.op("tanh", b.op("dot_bias", [0, 1], [3, 4], 2)))

    def reuse_chain(b):  # one product read by every later node
        a = b.op("mul", 0, 1)
        c = b.op("mul", b.op("mul", a, a), a)
        b.op("div", c, a)

    add("reuse_chain", [1.2, 0.9], reuse_chain)

    add("abs_of_a_difference", [0.4, 1.9], lambda b: b.op("mul", b.op("abs", b.op("sub", 0, 1)), 0))

    # Division is its own op: quotients of any magnitude, rounded once. Numbers
    # here are far from 1, so these programs are checked with no absolute
    # tolerance ("abs_tol": 0), which would otherwise let any tiny slope pass.
    add("div_tiny_by_tiny", [1e-160, 1e-160], lambda b: b.op("div", 0, 1))
    add("div_huge_by_huge", [3e200, -7e199], lambda b: b.op("div", 0, 1))
    add("div_tiny_by_huge", [2.5e-150, 4e150], lambda b: b.op("div", 0, 1))
    add("div_rounded_once", [0.3, 0.1], lambda b: b.op("div", 0, 1))  # 2.9999999999999996
    add("rdiv_tiny_denominator", [3e-100], lambda b: b.op("rdiv", 2.0, 0))
    for program in programs[-5:]:
        program["abs_tol"] = 0.0
    return programs


def edge_programs():
    """PyTorch's conventions where no numerical derivative applies (see the module docstring)."""
    programs = []

    def add(graph_id, inputs, build):
        b = EdgeBuilder(inputs)
        build(b)
        programs.append({"id": graph_id, "inputs": b.inputs, "ops": b.ops, "output": len(b.inputs) + len(b.ops) - 1})

    add("edge_relu_at_zero", [0.0], lambda b: b.op("relu", 0))
    add("edge_relu_at_negative_zero", [-0.0], lambda b: b.op("relu", 0))
    add("edge_abs_at_zero", [0.0], lambda b: b.op("abs", 0))
    add("edge_relu_of_nan", [math.nan], lambda b: b.op("relu", 0))  # nan, slope 1
    add("edge_relu_of_nan_chain", [math.nan, 1.5], lambda b: b.op("mul", b.op("relu", 0), 1))
    add("edge_abs_of_nan", [math.nan], lambda b: b.op("abs", 0))  # nan, slope 0
    add("edge_div_slopes_beyond_floats", [1e-300, 1e-320], lambda b: b.op("div", 0, 1))  # 1e20; inf, -inf
    add("edge_div_slope_overflows", [3e150, -2e-150], lambda b: b.op("div", 0, 1))
    return programs


class EdgeBuilder(Builder):
    """Like Builder, but values may be NaN or infinite (no guards)."""

    def op(self, name, *args):
        op = [name, *args]
        check_signature(op, len(self.vals))
        self.ops.append(op)
        self.vals.append(None)
        return len(self.vals) - 1


def all_programs():
    """(make, is_random) pairs: hand-written shapes, then seeded random, deep and wide ones.

    Random makers draw from one shared rng, so calling one again (to replace
    an ill-conditioned program) gives a new program, deterministically.
    """
    rng = random.Random(SEED)
    programs = [(lambda p=p: p, False) for p in hand_programs()]
    for k in range(40):
        size = rng.randint(1, 5), rng.randint(4, 16)  # inputs, ops
        programs.append((partial(random_program, rng, f"random_{k:02d}", *size), True))
    for k in range(10):
        deep = partial(random_program, rng, f"deep_{k:02d}", rng.randint(1, 3), 40, chain=True)
        programs.append((deep, True))
    for k in range(8):
        programs.append((partial(wide_program, rng, f"wide_{k:02d}", rng.randint(16, 32)), True))
    return programs


# ----- evaluating ------------------------------------------------------------


def torch_backend(torch):
    """PyTorch's own functions; dot is torch.dot, not micronet's left-to-right sum."""

    def dot(w, x):
        x = [xi if isinstance(xi, torch.Tensor) else torch.tensor(xi, dtype=torch.float64) for xi in x]
        return torch.dot(torch.stack(w), torch.stack(x))

    return SimpleNamespace(
        exp=torch.exp, log=torch.log, tanh=torch.tanh, sigmoid=torch.sigmoid,
        relu=torch.relu, sin=torch.sin, cos=torch.cos, dot=dot,
    )


def mpmath_backend(mpmath):
    """The reference arithmetic: every function at the working precision."""
    return SimpleNamespace(
        exp=mpmath.exp, log=mpmath.log, tanh=mpmath.tanh,
        sigmoid=lambda x: 1 / (1 + mpmath.exp(-x)),
        relu=lambda x: x if x > 0 else mpmath.mpf(0),
        sin=mpmath.sin, cos=mpmath.cos,
        dot=lambda w, x: mpmath.fsum(a * b for a, b in zip(w, x)),
    )


def run_torch(torch, lib, program):
    """Every node's value and d(output)/d(input) in PyTorch float64."""
    leaves = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in program["inputs"]]
    nodes = evaluate(program["ops"], leaves, lib)
    grads = torch.autograd.grad(nodes[program["output"]], leaves, allow_unused=True)
    values = [n.item() for n in nodes]
    return values, [0.0 if g is None else g.item() for g in grads]


def run_mpmath(mpmath, lib, program):
    """The same in 40 digits, gradients by numerical differentiation (no autograd).

    Each partial derivative steps its input by 1e-12 of its size: the
    truncation error is then ~1e-24 relative, and an input of 1e-160 is
    stepped as finely as one of 1.
    """
    with mpmath.workdps(40):
        leaves = [mpmath.mpf(x) for x in program["inputs"]]
        values = evaluate(program["ops"], leaves, lib)

        def partial_derivative(i):
            def along(t):
                return evaluate(program["ops"], leaves[:i] + [t] + leaves[i + 1 :], lib)[program["output"]]

            step = (abs(leaves[i]) or 1) * mpmath.mpf("1e-12")
            return mpmath.diff(along, leaves[i], h=step)

        grads = [partial_derivative(i) for i in range(len(leaves))]
        return [float(v) for v in values], [float(g) for g in grads]


def disagreements(program, torch_result, mp_result):
    """Where PyTorch and 40-digit truth differ by more than ACCURACY."""
    bad = []
    for kind, ours, truth in zip(("value", "grad"), torch_result, mp_result):
        for i, (a, b) in enumerate(zip(ours, truth)):
            if not math.isclose(a, b, rel_tol=ACCURACY, abs_tol=ACCURACY):
                bad.append(f"{program['id']} {kind} {i}: torch {a!r}, mpmath {b!r}")
    return bad


def make_goldens(torch, mpmath):
    """Every program with PyTorch's numbers, checked against mpmath; and the header."""
    torch.set_num_threads(1)
    t_lib, mp_lib = torch_backend(torch), mpmath_backend(mpmath)
    graphs, rejected = [], 0
    for make, is_random in all_programs():
        while True:
            program = make()
            for op in program["ops"]:
                check_signature(op, len(program["inputs"]) + len(program["ops"]))
            result = run_torch(torch, t_lib, program)
            bad = disagreements(program, result, run_mpmath(mpmath, mp_lib, program))
            if is_random:  # a slope that nearly vanished would hide under the absolute tolerance
                tiny = [(i, g) for i, g in enumerate(result[1]) if 0.0 < abs(g) < 1e-3]
                bad += [f"{program['id']} grad {i} is tiny: {g!r}" for i, g in tiny]
            if not bad:
                break
            if not is_random:
                raise RuntimeError("a hand-written program is ill-conditioned:\n" + "\n".join(bad))
            rejected += 1  # draw again: the rng has moved on
            print(f"redrawing {program['id']}: {bad[0]}", file=sys.stderr)
        program["values"], program["grads"] = result
        assert all(map(math.isfinite, program["values"] + program["grads"])), program["id"]
        graphs.append(program)
    edges = []
    for program in edge_programs():
        program["values"], program["grads"] = run_torch(torch, t_lib, program)
        edges.append(program)
    missing = set(OPS) - {op[0] for g in graphs for op in g["ops"]}
    assert not missing, f"no program uses {sorted(missing)}"
    header = {
        "description": "PyTorch float64 values of every node and d(output)/d(input) for "
        "random and hand-written scalar programs, for micronet's engine",
        "torch": torch.__version__,
        "mpmath_check": f"every number agrees with 40-digit mpmath to {ACCURACY:g}",
        "command": COMMAND,
        "seed": SEED,
        "format": "nodes are the inputs, then one per op; in [name, arg, ...] an int is a node "
        "index, a float a constant, a list a list of operands; dot_bias is dot(w, x, b); "
        "'values' holds every node, 'grads' one per input",
        "ops": {name: kinds for name, (kinds, _) in OPS.items()},
    }
    header["edges"] = ("PyTorch's numbers at kinks, for NaN inputs and for slopes beyond the float range; "
                       "not checked against mpmath")
    return {"header": header, "graphs": graphs, "edges": edges}, rejected


def to_json(goldens):
    """One program per line: readable diffs, exact floats (repr round-trips)."""
    header = json.dumps(goldens["header"], indent=2).replace("\n", "\n  ")
    graphs = ",\n    ".join(json.dumps(g) for g in goldens["graphs"])
    edges = ",\n    ".join(json.dumps(g) for g in goldens["edges"])  # NaN and Infinity: Python's json reads them
    text = ('{\n  "header": ' + header + ',\n  "graphs": [\n    ' + graphs
            + '\n  ],\n  "edges": [\n    ' + edges + "\n  ]\n}\n")
    assert json.dumps(json.loads(text)) == json.dumps(goldens)  # NaN != NaN, so compare the text
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write (default {OUT})")
    args = parser.parse_args(argv)
    try:
        import mpmath  # a dependency of torch (through sympy)
        import torch
    except ImportError as e:
        sys.exit(f"error: this script needs torch=={TORCH_VERSION} (CPU; it brings mpmath): "
                 f"pip install torch=={TORCH_VERSION}, then run\n    {COMMAND}\n({e})")
    if torch.__version__.split("+")[0] != TORCH_VERSION:
        sys.exit(f"error: the goldens are pinned to torch=={TORCH_VERSION}, found {torch.__version__}")
    goldens, rejected = make_goldens(torch, mpmath)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(to_json(goldens))
    tmp.replace(args.out)  # never leave a half-written file behind
    print(f"wrote {len(goldens['graphs'])} programs to {args.out} ({rejected} random ones redrawn)")


if __name__ == "__main__":
    main()
