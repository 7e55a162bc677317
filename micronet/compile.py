"""A batch executor: trace a model once, then run whole batches with NumPy.

Tracing calls the model on placeholder Values and records the scalar graph.
Scalar nodes that do the same thing to the same inputs are then grouped into
array operations: all the dot-product nodes of a layer (they share their
inputs) become one matrix product with BLAS, and the activations on top of
them one vectorised NumPy call (np.tanh, np.exp, ...). Anything else runs
node by node, each node over the whole batch. The built-in losses run as
vectorised kernels (micronet.batch_losses); any other loss is traced too.

The arithmetic is eager's, but not its rounding: BLAS sums in its own order
and NumPy's exp, log and tanh may differ from Python's math module in the
last bit. Outputs, losses and gradients agree with the eager engine to
about 1e-15 relative (the tests demand 1e-12), and runs are reproducible
bit for bit within this backend on one machine. (micronet 0.1 replayed
eager's sums in order, exact per sample; that replay cost 5-16x and is gone.)

`loss_and_grad` adds gradients into the parameters' `.grad`, as eager
backward does. For training, `training_session(optimizer)` keeps the
parameters, gradients and optimizer state in flat float64 arrays instead, so
a step never touches a Value; see `TrainingSession` for when the Values are
current.

A graph whose shape depends on the input values (Python `if` on `.data`)
cannot be replayed: tracing on several inputs detects it and refuses with
`CompileError`, and the trainer falls back to the eager engine.
"""

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, cast

import numpy as np
from numpy.typing import ArrayLike

from micronet.activations import ACTIVATIONS
from micronet.batch_losses import kernel_for
from micronet.engine import Value, make_node, unfused
from micronet.engine import topological_order as _topological_order
from micronet.optim import Optimizer as _Optimizer
from micronet.optim import array_twin

__all__ = ["CompileError", "CompiledModel", "TrainingSession", "Traceable", "compile_model"]

CHUNK = 4096  # rows per forward chunk when only predicting: bounds the temporaries of a large grid
# BLAS threads during the executor's calls. Its matrices are small (a layer
# of a few dozen units times a batch): a second thread costs more than it
# saves, and on a busy machine a BLAS thread waiting for a core stalls every
# product (a 1347x64 @ 64x64 product took 3.6 ms with 2 threads under load,
# 0.56 ms with one). None leaves the library's own setting alone.
BLAS_THREADS = 1
MAX_TRACED_TARGETS = 32  # beyond this many distinct targets, a custom loss runs row by row on Values


class CompileError(ValueError):
    """The model's graph cannot be run as a fixed batch program."""


# ----- kernels: one per engine op, over whole columns -------------------------
# A unary op is (forward(x) -> out, slope(x, out) -> d out / d x), the batch
# twin of the engine op, its derivative written from what forward computed.


def _exp(x):
    out = np.exp(x)
    if np.any(np.isinf(out) & np.isfinite(x)):
        bad = float(x[np.isinf(out) & np.isfinite(x)].flat[0])
        raise OverflowError(f"exp({bad!r}) overflows a float (the largest finite result is exp(709.78))")
    return out


def _log(x):
    if not np.all(x > 0.0):
        bad = float(x[~(x > 0.0)].flat[0])
        raise ValueError(f"log is defined for positive numbers only, got x={bad!r}")
    return np.log(x)


def _sign(x):
    return (x > 0.0).astype(float) - (x < 0.0)  # 0 at 0 and for NaN (eager's abs)


UNARY: dict[str, tuple[Callable, Callable]] = {
    "exp": (_exp, lambda x, out: out),
    "log": (_log, lambda x, out: 1.0 / x),
    "abs": (np.abs, lambda x, out: _sign(x)),
    "sin": (np.sin, lambda x, out: np.cos(x)),
    "cos": (np.cos, lambda x, out: -np.sin(x)),
}


def _activation_kernels(ops):
    """Every registered activation's batch twin, from its one entry in micronet.activations, bound to NumPy."""
    kernels = {}
    for name, spec in ACTIVATIONS.items():
        if not spec.identity:  # an identity makes no node
            assert name not in ops, f"activation {name!r} takes the name of an engine op"
            kernels[name] = (functools.partial(spec.batch, np), functools.partial(spec.batch_slope, np))
    return kernels


UNARY.update(_activation_kernels(UNARY))


@functools.lru_cache(maxsize=8)
def _ones(n):
    """A row of n ones: ones @ dZ sums dZ over its rows with BLAS, five times faster than np.sum here."""
    ones = np.ones(n)
    ones.flags.writeable = False
    return ones


def _divide(x, y):
    if np.any(np.asarray(y) == 0.0):
        raise ZeroDivisionError("division by zero in a batch")
    return x / y


def _power(b, e, differentiate_exponent):
    b, e = np.broadcast_arrays(np.asarray(b, float), np.asarray(e, float))
    if np.any((b == 0.0) & (e < 0.0)):
        raise ZeroDivisionError("0.0 cannot be raised to a negative power")
    if np.any((b < 0.0) & (e != np.round(e))):
        raise ValueError("a negative base to a non-integer power is not a real number")
    out = np.power(b, e)
    if np.any(np.isinf(out) & np.isfinite(b) & np.isfinite(e)):
        raise OverflowError("a power overflows a float")
    d_base = np.where(e == 0.0, 0.0, e * np.power(b, e - 1.0))
    if not differentiate_exponent:
        d_exp = np.zeros_like(out)
    else:
        d_exp = np.where(b > 0.0, out * np.log(np.where(b > 0.0, b, 1.0)), np.where(b == 0.0, 0.0, np.nan))
    return out, d_base, d_exp


def _log_softmax(xs):
    """The batch twin of engine.log_softmax_at: children are every x_j, then x_k again."""
    values = np.array(np.broadcast_arrays(*[np.asarray(x, float) for x in xs[:-1]]))  # (k, batch)
    shift = values.max(axis=0)
    exps = np.exp(values - shift)
    total = exps.sum(axis=0)
    out = (np.asarray(xs[-1], float) - shift) - np.log(total)
    return out, [*(-e / total for e in exps), 1.0]


# ----- where a value lives at run time ----------------------------------------
# ("col", block, column): a column of a block computed by a step (block 0 is X)
# ("param", index):       a model parameter, one scalar for the whole batch
# ("const", value):       a constant leaf
# ("pick", block, cols) and ("pickconst", values): one column or constant per
#                         row, chosen by the row's target (merged loss programs)
#
# A step reads its inputs through a plan: ("block", b, None) is all of block b
# (no copy), ("cols", b, indices) some of its columns. Gradients flow back into
# `grads`, one entry per block: None until something arrives, False where no
# gradient is wanted (the data X).


class _Env(list):
    """The blocks of one run of a program; each row's target choice; what Node steps keep."""

    def __init__(self, X, choice=None):
        super().__init__([X])
        self.choice = choice
        self.kept = {}


def _gather(env, plan):
    kind, block, cols = plan
    return env[block] if kind == "block" else env[block][:, cols]


def _backpropagate(grads, env, plan, dZ, W):
    """Add dZ @ W, the gradient an affine step passes to its inputs, unless none is wanted there."""
    current = grads[plan[1]]
    if current is False:
        return
    if plan[0] == "block" and current is None:  # the usual case: the first gradient of a whole block
        grads[plan[1]] = dZ @ W
    else:
        _scatter_add(grads, env, plan, dZ @ W)


def _scatter_add(grads, env, plan, d):
    """Add d into the gradient of the columns `plan` reads; d must be a fresh array."""
    kind, block, cols = plan
    current = grads[block]
    if current is False:
        return
    if kind == "block":
        if current is None:
            grads[block] = d
        else:
            current += d
        return
    if current is None:
        current = grads[block] = np.zeros_like(env[block])
    np.add.at(current, (slice(None), cols), d)  # type: ignore[arg-type]  # NumPy's stubs refuse a (slice, array) index; a column may be read twice


def _column_grad(grads, env, block):
    """The gradient array of a block, created as zeros on first use."""
    if grads[block] is None:
        grads[block] = np.zeros_like(env[block])
    return grads[block]


def _value(env, p, ref):
    kind = ref[0]
    if kind == "col":
        return env[ref[1]][:, ref[2]]
    if kind == "param":
        return p[ref[1]]
    if kind == "pick":
        return env[ref[1]][np.arange(len(env[0])), ref[2][env.choice]]
    if kind == "pickconst":
        return ref[1][env.choice]
    return ref[1]


# ----- steps ----------------------------------------------------------------------


class _Affine:
    """Dot-product nodes sharing their inputs: Z = X @ W.T + b, one BLAS call.

    When the weights and biases sit in the parameter vector as a Layer puts
    them (neuron by neuron, weights then bias), W and b are views of it and
    their gradients are written straight into the gradient vector.
    """

    def __init__(self, block, inputs, weights, biases):
        self.block = block
        self.inputs = inputs
        self.weights = np.array(weights)  # (width, n) parameter indices
        self.biases = None if biases is None else np.array(biases)
        self.width, self.n = self.weights.shape
        self.dense = _dense_slice(self.weights, self.biases)  # (start, stop) or None
        self._views = {"p": (None, None, None), "grad": (None, None, None)}  # the last vector viewed, per role
        self.accumulate = True  # add into the gradients (the program clears it when this step alone writes them)

    def writes(self):
        """The parameter indices whose gradient this step produces."""
        return self.weights.ravel().tolist() + ([] if self.biases is None else self.biases.tolist())

    def _params(self, p, role="p"):
        """(W, b) as views of the vector p (copies when the layout is not dense).

        A session passes the same two vectors (parameters, gradients) every
        step, so the views of the last vector in each role are kept.
        """
        if self.dense is None:
            return p[self.weights], None if self.biases is None else p[self.biases]
        last, W, b = self._views[role]
        if last is p:
            return W, b
        rows = p[self.dense[0] : self.dense[1]].reshape(self.width, -1)
        W, b = rows[:, : self.n], None if self.biases is None else rows[:, self.n]
        self._views[role] = (p, W, b)
        return W, b

    def forward(self, env, p):
        W, b = self._params(p)
        Z = _gather(env, self.inputs) @ W.T
        if b is not None:
            Z += b
        return Z

    def backward(self, env, grads, dZ, p, pgrad):
        W, _ = self._params(p)
        X = _gather(env, self.inputs)
        _backpropagate(grads, env, self.inputs, dZ, W)
        if not self.accumulate:  # dense and written by this step alone: straight into the vector
            gW, gb = self._params(pgrad, "grad")
            np.matmul(dZ.T, X, out=gW)
            if gb is not None:
                np.matmul(_ones(len(dZ)), dZ, out=gb)
            return
        dW = dZ.T @ X
        db = None if self.biases is None else _ones(len(dZ)) @ dZ
        if self.dense is not None:
            gW, gb = self._params(pgrad, "grad")
            gW += dW
            if gb is not None:
                gb += db
        else:
            np.add.at(pgrad, self.weights, dW)
            if db is not None:
                np.add.at(pgrad, self.biases, db)  # type: ignore[arg-type]  # db is set exactly when biases is


def _dense_slice(weights, biases):
    """(start, stop) if the parameters are a contiguous run, row i = weights then bias of neuron i."""
    given = weights if biases is None else np.column_stack([weights, biases])
    width, row = given.shape
    start = int(given[0, 0])
    layout = start + np.arange(width)[:, None] * row + np.arange(row)[None, :]
    return (start, start + width * row) if np.array_equal(given, layout) else None


class _Map:
    """One unary op applied to a block of columns."""

    accumulate = False  # writes no parameter gradient

    def __init__(self, block, op, inputs):
        self.block = block
        self.op = op
        self.kernel, self.slope = UNARY[op]
        self.inputs = inputs

    def writes(self):
        return []

    def forward(self, env, p):
        return self.kernel(_gather(env, self.inputs))

    def backward(self, env, grads, dout, p, pgrad):
        if grads[self.inputs[1]] is not False:  # dout is this step's own array: scale it in place
            dout *= self.slope(_gather(env, self.inputs), env[self.block])
            _scatter_add(grads, env, self.inputs, dout)


class _Node:
    """A single node of any engine op, over the batch: the general fallback."""

    OPS = ("+", "*", "/", "**", "dot", "log_softmax")

    def __init__(self, block, node, refs):
        self.block = block
        self.op = node._op
        self.refs = refs  # one ref per child
        if self.op not in UNARY and self.op not in self.OPS:
            raise CompileError(f"op {self.op!r} has no batch kernel; use the eager backend")
        if self.op == "**":  # does the exponent get a gradient? eager records 0.0 for a number
            self.differentiate_exponent = refs[1][0] != "const" or node._local[1] != 0.0

    def writes(self):
        return [ref[1] for ref in self.refs if ref[0] == "param"]

    @property
    def accumulate(self):  # adds into the gradients of the parameters it reads
        return bool(self.writes())

    def forward(self, env, p):
        xs = [_value(env, p, ref) for ref in self.refs]
        op = self.op
        if op in UNARY:
            x = np.asarray(xs[0], float)
            out = UNARY[op][0](x)
            locals_ = [UNARY[op][1](x, out)]
        elif op == "+":
            out, locals_ = xs[0] + xs[1], [1.0, 1.0]
        elif op == "*":
            out, locals_ = xs[0] * xs[1], [xs[1], xs[0]]
        elif op == "/":
            out = _divide(xs[0], xs[1])
            locals_ = [1.0 / xs[1], -out / xs[1]]  # as eager: -x/y^2 = -(x/y)/y
        elif op == "**":
            out, d_base, d_exp = _power(xs[0], xs[1], self.differentiate_exponent)
            locals_ = [d_base, d_exp]
        elif op == "dot":
            n = len(xs) // 2
            out = sum(w * x for w, x in zip(xs[:n], xs[n : 2 * n]))
            if len(xs) % 2:
                out = out + xs[-1]
            locals_ = [*xs[n : 2 * n], *xs[:n], 1.0][: len(xs)]
        else:
            out, locals_ = _log_softmax(xs)
        env.kept[self.block] = locals_
        out = np.asarray(out, dtype=float)  # a fresh array, or a scalar when no input varies by row
        return (out if out.ndim else np.full(len(env[0]), out)).reshape(-1, 1)

    def backward(self, env, grads, dout, p, pgrad):
        g = dout[:, 0]
        for ref, local in zip(self.refs, env.kept[self.block]):
            kind = ref[0]
            if kind in ("const", "pickconst"):
                continue  # constants take no gradient
            contribution = local * g  # a fresh array
            if kind == "col" and grads[ref[1]] is None and env[ref[1]].shape[1] == 1:
                grads[ref[1]] = contribution.reshape(-1, 1)  # the first gradient of a one-column block
            elif kind == "col" and grads[ref[1]] is not False:
                _column_grad(grads, env, ref[1])[:, ref[2]] += contribution
            elif kind == "pick" and grads[ref[1]] is not False:
                _column_grad(grads, env, ref[1])[np.arange(len(g)), ref[2][env.choice]] += contribution
            elif kind == "param":
                pgrad[ref[1]] += np.add.reduce(contribution, axis=None)


# ----- tracing and grouping -----------------------------------------------------


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
    nodes = _topological_order(root)[:-1]  # the same order eager backward uses, without the root
    return placeholders, list(outputs), nodes


def _signature(placeholders, outputs, nodes, params):
    """The graph's shape: ops, wiring and constants (what must not depend on the data)."""
    index = {id(v): ("in", i) for i, v in enumerate(placeholders)}
    index.update({id(v): ("param", i) for i, v in enumerate(params)})
    index.update({id(v): ("node", i) for i, v in enumerate(nodes)})

    def ref(v):
        return index.get(id(v)) or ("const", v.data)

    return [(n._op, tuple(ref(c) for c in n._prev)) for n in nodes], [ref(o) for o in outputs]


class _Program:
    """A traced function of n inputs as a list of steps over blocks of columns."""

    def __init__(self, fn, n_inputs, params, rows):
        traces = [_trace(fn, n_inputs, row) for row in rows]
        signatures = [_signature(placeholders, outputs, nodes, params) for placeholders, outputs, nodes in traces]
        if any(s != signatures[0] for s in signatures[1:]):
            raise CompileError(
                "the graph changes with the input values (Python control flow on .data?); "
                "it cannot be compiled into one batch program"
            )
        placeholders, outputs, nodes = traces[0]
        self.n_inputs = n_inputs
        where = {id(v): ("col", 0, i) for i, v in enumerate(placeholders)}
        param_index = {id(p): i for i, p in enumerate(params)}
        self.steps, block_of, self.widths = _group(nodes, where, param_index, n_inputs)
        where.update({id(n): block_of[i] for i, n in enumerate(nodes)})
        self.outputs = [self._ref(o, where, param_index) for o in outputs]
        self._finish()

    def _finish(self):
        """Decide which steps may write parameter gradients directly, and the outputs' fast path."""
        writers: dict[int, Any] = {}
        for step in self.steps:
            for i in step.writes():
                writers[i] = writers.get(i, 0) + 1
        for step in self.steps:
            if isinstance(step, _Affine):
                step.accumulate = step.dense is None or any(writers[i] > 1 for i in step.writes())
        # Where some step adds into a parameter's gradient, the vector must start at zero.
        self.needs_zeroed_grads = any(step.accumulate for step in self.steps)
        # The fast path for outputs: exactly the columns of one block, in order (an MLP's last layer).
        block = self.outputs[0][1] if self.outputs and self.outputs[0][0] == "col" else None
        whole = [("col", block, j) for j in range(self.widths.get(block, -1))]
        self.output_block = block if block and self.outputs == whole else None

    @staticmethod
    def _ref(v, where, param_index):
        if id(v) in where:
            return where[id(v)]
        if id(v) in param_index:
            return ("param", param_index[id(v)])
        return ("const", v.data)

    def forward(self, X, p, choice=None):
        """The run's blocks (keep them for backward); `outputs(env)` reads the result."""
        env = _Env(X, choice)
        for step in self.steps:
            env.append(step.forward(env, p))
        return env

    def outputs_of(self, env, p):
        if self.output_block is not None:
            return env[self.output_block]
        n = len(env[0])
        return np.column_stack([np.broadcast_to(_value(env, p, r), (n,)) for r in self.outputs])

    def backward(self, env, d_outputs, p, pgrad, input_grad=False):
        """Add d/d(params) into pgrad; return d/d(inputs) when asked for (else None)."""
        grads: list[Any] = [None] * len(env)  # per block: None (nothing yet), False (not wanted) or an array
        grads[0] = None if input_grad else False
        if self.output_block is not None:
            grads[self.output_block] = d_outputs
        else:
            for ref, d in zip(self.outputs, d_outputs.T):
                if ref[0] == "col" and grads[ref[1]] is not False:
                    _column_grad(grads, env, ref[1])[:, ref[2]] += d
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


def _group(nodes, where, param_index, n_inputs):
    """Steps for the traced nodes: dot nodes sharing inputs and the unary ops on them grouped."""
    position = {id(n): i for i, n in enumerate(nodes)}

    def child_ref(c):  # before grouping: every interior child is ("node", position)
        if id(c) in position:
            return ("node", position[id(c)])
        return _Program._ref(c, where, param_index)

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

    steps: list[_Affine | _Map | _Node] = []
    block_of: dict[int, tuple] = {}  # node position -> ("col", block, column)
    widths = {0: n_inputs}
    for key in _schedule(groups, nodes, position, owner):
        members = groups[key]
        block = len(steps) + 1
        refs = [[_resolve(child_ref(c), block_of) for c in nodes[m]._prev] for m in members]
        step: _Affine | _Map | _Node | None = None
        if key[0] == "dot":
            k = len(refs[0]) // 2
            plan = _plan(refs[0][k : 2 * k], widths)
            if plan is not None:
                weights = [[r[1] for r in rr[:k]] for rr in refs]
                biases = [rr[2 * k][1] for rr in refs] if key[2] else None
                step = _Affine(block, plan, weights, biases)
        elif key[0] != "node":
            plan = _plan([rr[0] for rr in refs], widths)
            if plan is not None:
                step = _Map(block, key[0], plan)
        if step is None:  # ungroupable: one step per node
            for m, rr in zip(members, refs):
                step = _Node(len(steps) + 1, nodes[m], rr)
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


def _merge(programs):
    """One program for several traced loss programs, or None if their shapes differ.

    A loss traced for each target usually differs between targets only in
    which logit it reads (cross-entropy's x_t) or in a constant (hinge's
    -y). Such refs become per-row choices, so the loss runs once over the
    whole batch instead of once per class, with each row's numbers unchanged.
    """
    first = programs[0]
    if len({len(p.steps) for p in programs}) != 1 or len({len(p.outputs) for p in programs}) != 1:
        return None
    merged_steps = []
    for steps in zip(*(p.steps for p in programs)):
        if all(type(s) is _Map for s in steps) and all(_same_map(s, steps[0]) for s in steps):
            merged_steps.append(steps[0])
            continue
        if not all(type(s) is _Node for s in steps):
            return None
        if len({(s.op, len(s.refs), getattr(s, "differentiate_exponent", None)) for s in steps}) != 1:
            return None
        refs = [_merge_refs(column) for column in zip(*(s.refs for s in steps))]
        if None in refs:
            return None
        step = _Node.__new__(_Node)
        step.__dict__.update(steps[0].__dict__, refs=refs)
        merged_steps.append(step)
    outputs = [_merge_refs(column) for column in zip(*(p.outputs for p in programs))]
    if None in outputs or any(r[0] not in ("col", "param", "const") for r in outputs):
        return None
    merged = _Program.__new__(_Program)
    merged.__dict__.update(first.__dict__, steps=merged_steps, outputs=outputs)
    merged._finish()
    return merged


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


# ----- a custom loss over a batch --------------------------------------------------

_NO_PARAMETERS = np.zeros(0)  # a loss program's parameter gradient: it has none


class _CustomLoss:
    """A loss without a vectorised kernel, as a batch loss (see batch_losses).

    Traced once per distinct target and merged into one program where the
    traces differ only in a picked logit or a constant (a classification
    loss over a few classes), or else built on Values row by row (many
    distinct targets, or several target columns): any loss works.
    """

    def __init__(self, loss, n_outputs):
        self.loss = loss
        self.n_outputs = n_outputs
        self.programs = {}  # target -> traced loss program
        self.merged: tuple[Any, Any] | None = None  # (one program for every known target, their values)

    def __call__(self, logits, y, seed):
        if np.ndim(y) != 1 or len(y) == 0:
            return self._row_by_row(logits, y, seed)
        choice = self._known_choice(y)
        if choice is None:  # a target not traced yet
            targets = np.unique(y).tolist()
            if len(set(targets) | set(self.programs)) > MAX_TRACED_TARGETS:
                return self._row_by_row(logits, y, seed)
            for t in targets:
                self._program(t)
            known = sorted(self.programs)
            self.merged = (_merge([self.programs[t] for t in known]), np.array(known))
            choice = self._known_choice(y)
        merged, known = self.merged  # type: ignore[misc]  # set just above when it was None
        if merged is not None:  # the usual case: one program for the whole batch
            env = merged.forward(logits, (), choice)
            losses = merged.outputs_of(env, ())[:, 0]
            if seed is None:
                return losses, None
            d_seed = np.empty((len(losses), 1))
            d_seed.fill(seed)
            return losses, merged.backward(env, d_seed, (), _NO_PARAMETERS, input_grad=True)
        losses = np.empty(len(logits))  # shapes differ between targets: one program per target
        d_logits: Any = None if seed is None else np.empty_like(logits)
        for t in np.unique(y).tolist():
            rows = np.flatnonzero(y == t)
            program = self.programs[t]
            env = program.forward(logits[rows], ())
            losses[rows] = program.outputs_of(env, ())[:, 0]
            if seed is not None:
                d_seed = np.full((len(rows), 1), seed)
                d_logits[rows] = program.backward(env, d_seed, (), _NO_PARAMETERS, input_grad=True)
        return losses, d_logits

    def _known_choice(self, y):
        """Each row's index among the traced targets, or None if some target is new."""
        if self.merged is None:
            return None
        known = self.merged[1]
        choice = known.searchsorted(y)
        return choice if (known.take(choice, mode="clip") == y).all() else None

    def _program(self, target):
        """The loss for one target value, traced with the logits as its inputs."""
        if target not in self.programs:
            rows = np.random.default_rng(1).standard_normal((3, self.n_outputs)).tolist()
            self.programs[target] = _Program(lambda logits: [self.loss(logits, target)], self.n_outputs, [], rows)
        return self.programs[target]

    def _row_by_row(self, logits, y, seed):
        """The loss on Values for each row: any loss and any targets, at eager speed."""
        losses = np.empty(len(logits))
        d_logits: Any = None if seed is None else np.empty_like(logits)
        for i, (row, target) in enumerate(zip(logits.tolist(), np.asarray(y).tolist())):
            values = [Value(x) for x in row]
            loss = self.loss(values, target)
            losses[i] = loss.data
            if seed is not None:
                (loss * seed).backward()  # the loss node gets seed, as in eager's mean
                d_logits[i] = [v.grad for v in values]
        return losses, d_logits


# ----- the public objects -----------------------------------------------------------


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _quietly(method: _Method) -> _Method:
    """A batch call: float overflow gives inf and NaN silently, as Python floats
    do in eager mode, and BLAS runs with BLAS_THREADS threads."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        libraries = _blas_libraries() if BLAS_THREADS is not None else ()
        saved = [library.get_num_threads() for library in libraries]
        for library, threads in zip(libraries, saved):
            if threads != BLAS_THREADS:
                library.set_num_threads(BLAS_THREADS)
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                return method(*args, **kwargs)
        finally:
            for library, threads in zip(libraries, saved):
                if threads != BLAS_THREADS:
                    library.set_num_threads(threads)

    return cast(_Method, wrapper)  # the same signature (functools.wraps)


@functools.lru_cache(maxsize=1)
def _blas_libraries():
    """The thread controls of the BLAS libraries NumPy has loaded (threadpoolctl comes with scikit-learn)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return ()
    return tuple(ThreadpoolController().select(user_api="blas").lib_controllers)


class Traceable(Protocol):
    """What compiles: a callable from a list of Values to Values (a list of them, or one), and its parameters."""

    def __call__(self, x: list[Value], /) -> Any: ...

    def parameters(self) -> list[Value]: ...


class CompiledModel:
    """A model (and optionally a loss) as fixed batch programs over NumPy arrays.

    `loss_and_grad(X, y)` returns the mean loss over the rows and adds its
    gradient into every parameter's `.grad`, as eager
    `(sum(losses) * (1 / n)).backward()` would. `training_session` trains
    on arrays instead.
    """

    name = "compiled"

    def __init__(self, model: Traceable, n_inputs: int, loss: Callable[..., Value] | None = None,
                 examples: Sequence[Sequence[float]] | np.ndarray | None = None) -> None:
        self.model = model
        self.params = model.parameters()
        self.loss = loss
        rows = np.random.default_rng(0).standard_normal((3, n_inputs)) if examples is None else examples
        rows = [list(map(float, r)) for r in rows]
        if len(rows) < 2:
            raise CompileError("tracing needs at least two example rows to detect data-dependent graphs")
        self.program = _Program(model, n_inputs, self.params, rows)
        self.n_outputs = len(self.program.outputs)
        # (logits, y, seed) -> (losses, seed * d(loss)/d(logits)); None until a loss is given (_need_loss checks)
        self._loss: Any = None if loss is None else kernel_for(loss) or _CustomLoss(loss, self.n_outputs)
        self._session: TrainingSession | None = None  # the live TrainingSession, whose arrays hold the parameters

    def _parameters(self):
        """The newest parameters: a session's arrays while it has unsynced steps, else the Values."""
        session = self._session
        if session is not None and not session.synced:
            return session.p
        return np.array([p.data for p in self.params], dtype=float)

    @_quietly
    def logits(self, X: ArrayLike) -> np.ndarray:
        """Model outputs for every row of X, in chunks so large grids fit in memory."""
        X = np.asarray(X, dtype=float)
        p = self._parameters()
        parts = []
        for i in range(0, len(X), CHUNK):
            env = self.program.forward(X[i : i + CHUNK], p)
            parts.append(self.program.outputs_of(env, p))
        if len(parts) == 1:
            return parts[0]
        return np.vstack(parts) if parts else np.zeros((0, self.n_outputs))

    @_quietly
    def evaluate(self, X: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """(per-sample losses, logits) for rows X with targets y."""
        self._need_loss()
        logits = self.logits(X)
        losses, _ = self._loss(logits, np.asarray(y), None)
        return losses, logits

    @_quietly
    def loss_and_grad(self, X: ArrayLike, y: ArrayLike) -> float:
        """Mean loss over the batch; its gradient is added into the parameters' grads."""
        pgrad = np.zeros(len(self.params))
        loss = self._loss_and_grad(np.asarray(X, dtype=float), np.asarray(y), self._parameters(), pgrad)
        for param, g in zip(self.params, pgrad.tolist()):
            param.grad += g
        return loss

    def _loss_and_grad(self, X, y, p, pgrad):
        """Mean loss; d(mean)/d(params) written into pgrad (zeroed first where steps add into it)."""
        self._need_loss()
        if self.program.needs_zeroed_grads:
            pgrad.fill(0.0)
        program = self.program
        env = program.forward(X, p)
        seed = 1.0 / len(X)  # d(mean)/d(loss_i), as eager's sum(...) * (1 / n) passes it down
        losses, d_logits = self._loss(program.outputs_of(env, p), y, seed)
        program.backward(env, d_logits, p, pgrad)
        return float(np.add.reduce(losses)) * seed

    def _need_loss(self):
        if self._loss is None:
            raise ValueError("this model was compiled without a loss: compile_model(model, n_inputs, loss)")

    def training_session(self, optimizer: _Optimizer) -> "TrainingSession":
        """Train on flat arrays: see `TrainingSession`. Raises CompileError for an optimizer without an array twin."""
        return TrainingSession(self, optimizer)


class TrainingSession:
    """Compiled training with the parameters, gradients and optimizer state in arrays.

    `step(X, y)` is zero_grad, forward, backward and the optimizer's update,
    all on flat float64 arrays; the update is the scalar optimizer's
    arithmetic element by element, so the trajectory is the one `optimizer.step()`
    would take from the same gradients, bit for bit. The optimizer's `lr`
    (and its other settings) are read at every step, so schedules work.

    Where the truth is: from the first `step` until `sync()`, in the arrays;
    `Value.data` and `.grad` of the parameters and the optimizer's state
    (`momentum_buffer`, `exp_avg`, `exp_avg_sq`, `step_count`) hold what they
    held before. `sync()` writes the arrays back, and from then until the
    next step the Values and the optimizer are the truth: change them at
    will (restore the best weights, load a checkpoint or an optimizer state)
    and the next step starts from what they hold. `reload()` does that
    reading at once; it is needed only to discard steps not yet synced.
    The compiled model's `evaluate` and `logits` always use the newest
    parameters: the arrays while steps are not synced, else the Values.
    `close()` syncs and detaches the session (so does leaving a `with` block).
    """

    def __init__(self, compiled: CompiledModel, optimizer: _Optimizer) -> None:
        params = list(getattr(optimizer, "params", ()))
        if len(params) != len(compiled.params) or any(a is not b for a, b in zip(params, compiled.params)):
            raise ValueError("the optimizer must hold the compiled model's parameters, in model.parameters() order")
        compiled._need_loss()
        try:
            self.twin = array_twin(optimizer)
        except TypeError as e:
            raise CompileError(str(e)) from None
        self.compiled = compiled
        self.optimizer = optimizer
        self.params = compiled.params
        self.p = np.array([v.data for v in self.params], dtype=float)
        self.g = np.zeros_like(self.p)
        self.synced = True  # the Values and the optimizer hold what the arrays hold
        compiled._session = self

    @_quietly
    def step(self, X: ArrayLike, y: ArrayLike) -> float:
        """One training step on a batch; returns its mean loss.

        Raises FloatingPointError before the update when the loss or a
        gradient is not finite, and after it when a parameter is not.
        """
        if self.synced:  # the Values may have been changed since: start from them
            self.reload()
        loss = self.compiled._loss_and_grad(np.asarray(X, dtype=float), np.asarray(y), self.p, self.g)
        if not math.isfinite(loss):
            raise FloatingPointError(f"loss={loss}")
        if not np.isfinite(self.g).all():
            raise FloatingPointError(f"a gradient became {_first_non_finite(self.g)}")
        self.synced = False
        self.twin.step(self.p, self.g)
        if not np.isfinite(self.p).all():
            raise FloatingPointError(f"a parameter became {_first_non_finite(self.p)}")
        return loss

    def sync(self) -> None:
        """Write the arrays back: every parameter's .data and .grad, and the optimizer's state."""
        if not self.synced:
            for value, data, grad in zip(self.params, self.p.tolist(), self.g.tolist()):
                value.data, value.grad = data, grad
            self.twin.store()
            self.synced = True

    def reload(self) -> None:
        """Read the parameters' .data and the optimizer's state into the arrays (unsynced steps are lost)."""
        self.p[:] = [v.data for v in self.params]
        self.twin.load()
        self.synced = True

    def close(self) -> None:
        """Sync, and detach from the compiled model."""
        self.sync()
        if self.compiled._session is self:
            self.compiled._session = None

    def __enter__(self) -> "TrainingSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _first_non_finite(a):
    return float(a[~np.isfinite(a)][0])


def compile_model(model: Traceable, n_inputs: int, loss: Callable[..., Value] | None = None,
                  examples: Sequence[Sequence[float]] | np.ndarray | None = None) -> CompiledModel:
    """Trace `model` (and `loss(logits, target)`) into a CompiledModel, or raise CompileError."""
    return CompiledModel(model, n_inputs, loss, examples)
