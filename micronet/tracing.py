"""Tracing a model into a batch program: record its scalar graph once, group the nodes into array steps, order them.

Tracing calls the function on placeholder Values and records the graph.
Scalar nodes that do the same thing to the same inputs are then grouped:
all the dot-product nodes of a layer (they share their inputs) become one
`Affine` step, and the activations on top of them one `Map`. Anything else
becomes a `Node` step of its own (micronet.batch_steps runs them all). A
graph whose shape depends on the input values (Python `if` on `.data`)
cannot be replayed: tracing on several inputs detects it and refuses with
`CompileError`.
"""

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from micronet.batch_kernels import UNARY
from micronet.batch_steps import Affine, Env, Map, Node, column_grad, value_at
from micronet.engine import Value, make_node, topological_order, unfused

__all__ = ["CompileError", "Program", "merge_programs"]


class CompileError(ValueError):
    """The model's graph cannot be run as a fixed batch program."""


def _trace(fn, n_inputs, row):
    """Run `fn` on placeholder leaves; return (placeholders, outputs, nodes in eager order).

    Traced with the engine's activation fusion off, so a layer's graph has
    the same shape whichever relus happen to be active.
    """
    placeholders = [Value(float(x)) for x in row]
    with unfused():
        outputs = fn(placeholders)
    if isinstance(outputs, Value):
        outputs = [outputs]
    if not isinstance(outputs, (list, tuple)) or not all(isinstance(o, Value) for o in outputs):
        raise CompileError(f"the model must return a list of Values, got {type(outputs).__name__}")
    root = make_node(0.0, tuple(outputs), (0.0,) * len(outputs), "outputs")
    nodes = topological_order(root)[:-1]  # the same order eager backward uses, without the root
    for node in nodes:
        if node._local is None:  # its derivative is Python code, not numbers a batch kernel can use
            raise CompileError(f"op {node._op!r} was written micrograd's way (a _backward function); "
                               "it runs on the eager engine only")
        if node._op not in UNARY and node._op not in Node.OPS:
            raise CompileError(f"op {node._op!r} has no batch kernel; use the eager backend")
    return placeholders, list(outputs), nodes


def _signature(placeholders, outputs, nodes, params):
    """The graph's shape: ops, wiring and constants (what must not depend on the data)."""
    index = {id(v): ("in", i) for i, v in enumerate(placeholders)}
    index.update({id(v): ("param", i) for i, v in enumerate(params)})
    index.update({id(v): ("node", i) for i, v in enumerate(nodes)})

    def ref(v):
        return index.get(id(v)) or ("const", v.data)

    return [(n._op, tuple(ref(c) for c in n._prev)) for n in nodes], [ref(o) for o in outputs]


def _ref(v, where, param_index):
    if id(v) in where:
        return where[id(v)]
    if id(v) in param_index:
        return ("param", param_index[id(v)])
    return ("const", v.data)


class Program:
    """A traced function of n inputs as a list of steps over blocks of columns."""

    def __init__(self, fn: Callable[[list[Value]], Any], n_inputs: int, params: Sequence[Value],
                 rows: Sequence[Sequence[float]]) -> None:
        traces = [_trace(fn, n_inputs, row) for row in rows]
        signatures = [_signature(placeholders, outputs, nodes, params) for placeholders, outputs, nodes in traces]
        if any(s != signatures[0] for s in signatures[1:]):
            raise CompileError(
                "the graph changes with the input values (Python control flow on .data?); "
                "it cannot be compiled into one batch program"
            )
        placeholders, outputs, nodes = traces[0]
        where = {id(v): ("col", 0, i) for i, v in enumerate(placeholders)}
        param_index = {id(p): i for i, p in enumerate(params)}
        steps, block_of, widths = _group(nodes, where, param_index, n_inputs)
        where.update({id(n): block_of[i] for i, n in enumerate(nodes)})
        self._build(n_inputs, steps, [_ref(o, where, param_index) for o in outputs], widths)

    @classmethod
    def from_steps(cls, n_inputs: int, steps: list[Any], outputs: list[tuple], widths: dict[int, int]) -> "Program":
        """A program from steps and output refs already built (see merge_programs)."""
        program = cls.__new__(cls)
        program._build(n_inputs, steps, outputs, widths)
        return program

    def _build(self, n_inputs, steps, outputs, widths):
        """Decide which steps may write parameter gradients directly, and the outputs' fast path."""
        self.n_inputs = n_inputs
        self.steps = steps
        self.outputs = outputs
        self.widths = widths
        writers: dict[int, Any] = {}
        for step in self.steps:
            for i in step.writes():
                writers[i] = writers.get(i, 0) + 1
        for step in self.steps:
            if isinstance(step, Affine):
                step.accumulate = step.dense is None or any(writers[i] > 1 for i in step.writes())
        # Where some step adds into a parameter's gradient, the vector must start at zero.
        self.needs_zeroed_grads = any(step.accumulate for step in self.steps)
        # The fast path for outputs: exactly the columns of one block, in order (an MLP's last layer).
        block = self.outputs[0][1] if self.outputs and self.outputs[0][0] == "col" else None
        whole = [("col", block, j) for j in range(self.widths.get(block, -1))]
        self.output_block = block if block and self.outputs == whole else None

    def forward(self, X: np.ndarray, p: np.ndarray, choice: np.ndarray | None = None) -> Env:
        """The run's blocks (keep them for backward); `outputs_of(env, p)` reads the result."""
        env = Env(X, choice)
        for step in self.steps:
            env.append(step.forward(env, p))
        return env

    def outputs_of(self, env: Env, p: np.ndarray) -> np.ndarray:
        """The outputs of a run, one column each."""
        if self.output_block is not None:
            return env[self.output_block]
        n = len(env[0])
        return np.column_stack([np.broadcast_to(value_at(env, p, r), (n,)) for r in self.outputs])

    def backward(self, env: Env, d_outputs: np.ndarray, p: np.ndarray, pgrad: np.ndarray,
                 input_grad: bool = False) -> np.ndarray | None:
        """Add d/d(params) into pgrad; return d/d(inputs) when asked for (else None)."""
        grads: list[Any] = [None] * len(env)  # per block: None (nothing yet), False (not wanted) or an array
        grads[0] = None if input_grad else False
        if self.output_block is not None:
            grads[self.output_block] = d_outputs
        else:
            for ref, d in zip(self.outputs, d_outputs.T):
                if ref[0] == "col" and grads[ref[1]] is not False:
                    column_grad(grads, env, ref[1])[:, ref[2]] += d
                elif ref[0] == "param":
                    pgrad[ref[1]] += d.sum()
        for step in reversed(self.steps):
            d = grads[step.block]
            if d is None:  # nothing reached this block: its parameters' gradient is zero
                d = np.zeros_like(env[step.block])
            step.backward(env, grads, d, p, pgrad)
        if input_grad:
            return np.zeros_like(env[0]) if grads[0] is None else grads[0]
        return None


# ----- grouping and ordering -----------------------------------------------------------


def _group(nodes, where, param_index, n_inputs):
    """Steps for the traced nodes: dot nodes sharing inputs and the unary ops on them grouped."""
    position = {id(n): i for i, n in enumerate(nodes)}

    def child_ref(c):  # before grouping: every interior child is ("node", position)
        if id(c) in position:
            return ("node", position[id(c)])
        return _ref(c, where, param_index)

    groups: dict[tuple, list[int]] = {}  # key -> member positions in creation order
    owner: dict[int, tuple] = {}  # position -> key
    for i, n in enumerate(nodes):
        key: tuple = ("node", i)
        kids = [child_ref(c) for c in n._prev]
        if n._op == "dot":
            k = len(kids) // 2
            inputs, weights, bias = kids[k : 2 * k], kids[:k], kids[2 * k :]
            if all(r[0] == "param" for r in weights + bias) and all(r[0] != "param" for r in inputs):
                key = ("dot", tuple(inputs), bool(bias))
        elif n._op in UNARY and kids[0][0] == "node":
            key = (n._op, "on", owner[kids[0][1]])
        groups.setdefault(key, []).append(i)
        owner[i] = key

    steps: list[Affine | Map | Node] = []
    block_of: dict[int, tuple] = {}  # node position -> ("col", block, column)
    widths = {0: n_inputs}
    for key in _schedule(groups, nodes, position, owner):
        members = groups[key]
        block = len(steps) + 1
        refs = [[_resolve(child_ref(c), block_of) for c in nodes[m]._prev] for m in members]
        step: Affine | Map | Node | None = None
        if key[0] == "dot":
            k = len(refs[0]) // 2
            plan = _plan(refs[0][k : 2 * k], widths)
            if plan is not None:
                weights = [[r[1] for r in rr[:k]] for rr in refs]
                biases = [rr[2 * k][1] for rr in refs] if key[2] else None
                step = Affine(block, plan, weights, biases)
        elif key[0] != "node":
            plan = _plan([rr[0] for rr in refs], widths)
            if plan is not None:
                step = Map(block, key[0], plan)
        if step is None:  # ungroupable: one step per node
            for m, rr in zip(members, refs):
                step = Node(len(steps) + 1, nodes[m], rr)
                block_of[m] = ("col", step.block, 0)
                widths[step.block] = 1
                steps.append(step)
            continue
        for column, m in enumerate(members):
            block_of[m] = ("col", block, column)
        widths[block] = len(members)
        steps.append(step)
    return steps, block_of, widths


def _schedule(groups, nodes, position, owner):
    """Group keys in an order where every group runs after the groups it reads."""
    deps = {
        key: {owner[position[id(c)]] for m in members for c in nodes[m]._prev if id(c) in position} - {key}
        for key, members in groups.items()
    }
    order: list[tuple] = []
    done: set[tuple] = set()
    pending = sorted(groups, key=lambda k: groups[k][0])
    while pending:
        ready = [k for k in pending if deps[k] <= done]
        if not ready:
            raise CompileError("could not order the grouped graph (a cycle between groups)")
        order.extend(ready)
        done.update(ready)
        pending = [k for k in pending if k not in done]
    return order


def _resolve(ref, block_of):
    return block_of[ref[1]] if ref[0] == "node" else ref


def _plan(refs, widths):
    """How a group reads its inputs from one block (None if they span several)."""
    if any(r[0] != "col" for r in refs) or len({r[1] for r in refs}) != 1:
        return None
    block = refs[0][1]
    cols = [r[2] for r in refs]
    if cols == list(range(widths[block])):
        return ("block", block, None)
    return ("cols", block, np.array(cols))


# ----- merging programs traced per target ------------------------------------------------


def merge_programs(programs: list[Program]) -> Program | None:
    """One program for several traced loss programs, or None if their shapes differ.

    A loss traced for each target usually differs between targets only in
    which logit it reads (cross-entropy's x_t) or in a constant (hinge's
    -y). Such refs become per-row choices, so the loss runs once over the
    whole batch instead of once per class, with each row's numbers unchanged.
    """
    first = programs[0]
    if len({len(p.steps) for p in programs}) != 1 or len({len(p.outputs) for p in programs}) != 1:
        return None
    merged_steps: list[Any] = []
    for steps in zip(*(p.steps for p in programs)):
        if all(type(s) is Map for s in steps) and all(_same_map(s, steps[0]) for s in steps):
            merged_steps.append(steps[0])
            continue
        if not all(type(s) is Node for s in steps):
            return None
        if len({(s.op, len(s.refs), getattr(s, "differentiate_exponent", None)) for s in steps}) != 1:
            return None
        refs = [_merge_refs(column) for column in zip(*(s.refs for s in steps))]
        if None in refs:
            return None
        merged_steps.append(steps[0].with_refs(refs))
    outputs = [_merge_refs(column) for column in zip(*(p.outputs for p in programs))]
    if None in outputs or any(r[0] not in ("col", "param", "const") for r in outputs):
        return None
    return Program.from_steps(first.n_inputs, merged_steps, outputs, first.widths)


def _same_map(a, b):
    (kind_a, block_a, cols_a), (kind_b, block_b, cols_b) = a.inputs, b.inputs
    same_cols = cols_a is None and cols_b is None or (
        cols_a is not None and cols_b is not None and np.array_equal(cols_a, cols_b)
    )
    return a.op == b.op and (kind_a, block_a) == (kind_b, block_b) and same_cols


def _merge_refs(refs):
    if all(r == refs[0] for r in refs):
        return refs[0]
    if all(r[0] == "col" and r[1] == 0 for r in refs):  # a different input column per target
        return ("pick", 0, np.array([r[2] for r in refs]))
    if all(r[0] == "const" for r in refs):
        return ("pickconst", np.array([r[1] for r in refs]))
    return None
