"""A batch executor: trace a model once, then run whole batches with NumPy.

Tracing calls the model on placeholder Values and records the scalar graph.
Scalar nodes that do the same thing to the same inputs are then grouped into
array operations: all the dot-product nodes of a layer (they share their
inputs) become one (batch, inputs, neurons) product-and-sum, and the
activations on top of them one elementwise call. Anything else runs node by
node, each node over the whole batch.

Each sample's arithmetic is the eager engine's, operation for operation:
its sums run left to right (NumPy reduces a non-contiguous axis in order),
gradients reaching a node are added in the order backward() visits them,
and exp, log and tanh use Python's math module (NumPy's vectorised versions
can differ in the last bit). So outputs and losses equal eager's bit for
bit, and so do the gradients of a batch of one; over a batch, the sums over
samples (the parameter gradients) are BLAS calls and agree with eager's to
about 1e-15. Gradients are added into the same `Value.grad` fields eager
backward would fill, so optimizers and checkpoints work unchanged.

A graph whose shape depends on the input values (Python `if` on `.data`)
cannot be replayed: tracing on several inputs detects it and refuses with
`CompileError`, and the trainer falls back to the eager engine.
"""

import functools
import math
from functools import reduce
from operator import add

import numpy as np

from micronet.engine import Value, _topological_order, make_node
from micronet.losses import (
    Loss,
    cross_entropy,
    huber_loss,
    l1_loss,
    mse_loss,
    multiclass_hinge_loss,
    one_hot_mse_loss,
)

__all__ = ["CompileError", "CompiledModel", "compile_model"]

CHUNK = 4096  # rows per forward chunk when only predicting: bounds the (rows, in, out) temporaries


class CompileError(ValueError):
    """The model's graph cannot be run as a fixed batch program."""


# ----- kernels: one per engine op, over whole columns -------------------------
# Each returns (output, local derivatives), the batch twin of the engine op.


def _exact(fn, a):
    """`fn` from Python's math module applied to every element (bit-equal to eager)."""
    a = np.asarray(a, dtype=float)
    return np.fromiter(map(fn, a.ravel().tolist()), float, a.size).reshape(a.shape)


def _exp(x):
    if np.any(x > 709.78):
        bad = float(x[x > 709.78].flat[0])
        raise OverflowError(f"exp({bad!r}) overflows a float (the largest finite result is exp(709.78))")
    e = _exact(math.exp, x)
    return e, e


def _log(x):
    if not np.all(x > 0.0):
        bad = float(x[~(x > 0.0)].flat[0])
        raise ValueError(f"log is defined for positive numbers only, got x={bad!r}")
    return _exact(math.log, x), 1.0 / x


def _tanh(x):
    t = _exact(math.tanh, x)
    return t, 1.0 - t * t


def _sigmoid(x):
    e = _exact(math.exp, -np.abs(x))  # exp(-x) where x >= 0, exp(x) elsewhere: never large
    s = np.where(x >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))
    return s, s * (1.0 - s)


def _relu(x):
    off = x <= 0.0  # NaN is not: it passes through with slope 1, as in eager
    return np.where(off, 0.0, x), np.where(off, 0.0, 1.0)


def _abs(x):
    return np.abs(x), np.sign(x)  # np.sign is 0 at 0 (and NaN for NaN: the loss is NaN anyway)


UNARY = {
    "exp": _exp,
    "log": _log,
    "tanh": _tanh,
    "sigmoid": _sigmoid,
    "relu": _relu,
    "abs": _abs,
    "sin": lambda x: (np.sin(x), np.cos(x)),  # NumPy's sin and cos agree with math's
    "cos": lambda x: (np.cos(x), -np.sin(x)),
}


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
    with np.errstate(all="ignore"):
        out = np.power(b, e)
        if np.any(np.isinf(out) & np.isfinite(b) & np.isfinite(e)):
            raise OverflowError("a power overflows a float")
        d_base = np.where(e == 0.0, 0.0, e * np.power(b, e - 1.0))
        if not differentiate_exponent:
            d_exp = np.zeros_like(out)
        else:
            d_exp = np.where(b > 0.0, out * np.log(np.where(b > 0.0, b, 1.0)), np.where(b == 0.0, 0.0, np.nan))
    return out, d_base, d_exp


# ----- where a value lives at run time ----------------------------------------
# ("col", block, column): a column of a block computed by a step (block 0 is X)
# ("param", index):       a model parameter, one scalar for the whole batch
# ("const", value):       a constant leaf


class _Step:
    """One block of columns: a group of isomorphic nodes, or a single node."""

    def __init__(self, block):
        self.block = block  # where its output columns live in the run's blocks


class _Affine(_Step):
    """Dot-product nodes sharing their inputs: Z = sum_i X_i * W_i + b.

    Each sample's sums (the outputs, and the gradient reaching the inputs)
    run in eager's order, so one sample's numbers are eager's bit for bit.
    The sums over samples (weight and bias gradients) are plain BLAS calls:
    exact for a batch of one, equal to eager's to ~1e-16 otherwise.
    """

    def __init__(self, block, inputs, weights, biases):
        super().__init__(block)
        self.inputs = inputs  # gather plan of the shared inputs
        self.weights = np.array(weights)  # (width, n) parameter indices
        self.biases = None if biases is None else np.array(biases)
        used = self.weights.ravel().tolist() + ([] if biases is None else list(biases))
        self._shared = len(set(used)) < len(used)  # a parameter used twice needs np.add.at

    def forward(self, env, p, keep):
        X = _gather(env, self.inputs)
        W = p[self.weights]
        Z = _sum_of_products(X.T, W.T)  # over the inputs, left to right
        if self.biases is not None:
            Z += p[self.biases]
        if keep:
            self.saved = (X, W)
        return Z

    def backward(self, grads, dZ, pgrad):
        X, W = self.saved
        # Eager visits the group's nodes newest (last) first.
        _scatter_add(grads, self.inputs, _sum_of_products(dZ.T[::-1], W[::-1]))
        dW = dZ.T @ X
        db = None if self.biases is None else np.add.reduce(dZ, axis=0)
        if self._shared:
            np.add.at(pgrad, self.weights, dW)
            if db is not None:
                np.add.at(pgrad, self.biases, db)
        else:
            pgrad[self.weights] += dW
            if db is not None:
                pgrad[self.biases] += db


def _sum_first_axis(P):
    """Sum a (k, batch) array over k, left to right (see `_sum_of_products`)."""
    P = np.ascontiguousarray(P)
    if P.shape[1] > 1:
        return np.add.reduce(P, axis=0)
    return np.array([reduce(add, P[:, 0].tolist(), 0.0)])


def _sum_of_products(A, B):
    """(m, n) array of sum_k A[k, m] * B[k, n], each sum strictly left to right in k.

    NumPy sums along a contiguous run pairwise (a different rounding), but
    reducing axis 0 of a C-ordered (k, ., .) array whose other axes hold
    more than one element runs the other axes in the inner loop and
    accumulates k in order. The longer of m, n goes innermost (faster).
    """
    k, m, n = A.shape[0], A.shape[1], B.shape[1]
    if m * n == 1:
        return np.array([[reduce(add, (A[:, 0] * B[:, 0]).tolist(), 0.0)]])
    if m >= n:
        products = np.multiply(B[:, :, None], A[:, None, :], out=np.empty((k, n, m)))
        return np.add.reduce(products, axis=0).T
    products = np.multiply(A[:, :, None], B[:, None, :], out=np.empty((k, m, n)))
    return np.add.reduce(products, axis=0)


class _Map(_Step):
    """One unary op applied to a block of columns."""

    def __init__(self, block, op, inputs):
        super().__init__(block)
        self.kernel = UNARY[op]
        self.inputs = inputs

    def forward(self, env, p, keep):
        out, local = self.kernel(_gather(env, self.inputs))
        if keep:
            self.saved = local
        return out

    def backward(self, grads, dout, pgrad):
        _scatter_add(grads, self.inputs, self.saved * dout)


class _Node(_Step):
    """A single node of any engine op, over the batch: the general fallback."""

    def __init__(self, block, node, refs):
        super().__init__(block)
        self.op = node._op
        self.refs = refs  # one ref per child
        if self.op not in UNARY and self.op not in ("+", "*", "/", "**", "dot", "log_softmax"):
            raise CompileError(f"op {self.op!r} has no batch kernel; use the eager backend")
        if self.op == "**":  # does the exponent get a gradient? eager records 0.0 for a number
            self.differentiate_exponent = refs[1][0] != "const" or node._local[1] != 0.0

    def forward(self, env, p, keep):
        xs = [_value(env, p, ref) for ref in self.refs]
        op = self.op
        if op in UNARY:
            out, local = UNARY[op](np.asarray(xs[0], float))
            locals_ = [local]
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
            out = reduce(add, (w * x for w, x in zip(xs[:n], xs[n : 2 * n])), 0.0)
            if len(xs) % 2:
                out = out + xs[-1]
            locals_ = [*xs[n : 2 * n], *xs[:n], 1.0][: len(xs)]
        else:  # log_softmax: children are every x_j, then the selected x_k again
            out, locals_ = _log_softmax(xs)
        out = np.broadcast_to(np.asarray(out, float), (len(env[0]),))
        if keep:
            self.saved = locals_, env.choice
        return out[:, None]

    def backward(self, grads, dout, pgrad):
        g = dout[:, 0]
        locals_, choice = self.saved
        for ref, local in zip(self.refs, locals_):
            contribution = local * g
            if ref[0] == "col":
                grads[ref[1]][:, ref[2]] += contribution
            elif ref[0] == "pick":  # one column per row, chosen by the row's target
                grads[ref[1]][np.arange(len(g)), ref[2][choice]] += contribution
            elif ref[0] == "param":
                pgrad[ref[1]] += reduce(add, np.broadcast_to(contribution, g.shape)[::-1].tolist(), 0.0)


def _log_softmax(xs):
    """The batch twin of engine.log_softmax_at, summing over classes left to right."""
    values = np.array(np.broadcast_arrays(*[np.asarray(x, float) for x in xs[:-1]]))  # (k, batch)
    shift = values.max(axis=0)
    exps = _exact(math.exp, values - shift)
    total = _sum_first_axis(exps)
    out = (np.asarray(xs[-1], float) - shift) - _exact(math.log, total)
    return out, [*(-e / total for e in exps), 1.0]


def _value(env, p, ref):
    kind = ref[0]
    if kind == "col":
        return env[ref[1]][:, ref[2]]
    if kind == "param":
        return p[ref[1]]
    if kind == "pick":  # ("pick", block, column of each target)
        return env[ref[1]][np.arange(len(env[0])), ref[2][env.choice]]
    if kind == "pickconst":  # ("pickconst", constant of each target)
        return ref[1][env.choice]
    return ref[1]


class _Env(list):
    """The blocks of one run of a program, and each row's target (for merged loss programs)."""

    choice = None


def _gather(env, plan):
    kind, block, cols = plan
    if kind == "block":
        return env[block]
    return env[block][:, cols]


def _scatter_add(grads, plan, d):
    kind, block, cols = plan
    if kind == "block":
        grads[block] += d
    else:
        np.add.at(grads[block], (slice(None), cols), d)


# ----- tracing and grouping -----------------------------------------------------


def _trace(fn, n_inputs, row):
    """Run `fn` on placeholder leaves; return (placeholders, outputs, nodes in eager order)."""
    placeholders = [Value(float(x)) for x in row]
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
        signatures = [_signature(*t, params) for t in traces]
        if any(s != signatures[0] for s in signatures[1:]):
            raise CompileError(
                "the graph changes with the input values (Python control flow on .data?); "
                "it cannot be compiled into one batch program"
            )
        placeholders, outputs, nodes = traces[0]
        self.n_inputs = n_inputs
        where = {id(v): ("col", 0, i) for i, v in enumerate(placeholders)}
        param_index = {id(p): i for i, p in enumerate(params)}
        self.steps, block_of = _group(nodes, where, param_index, n_inputs)
        where.update({id(n): block_of[i] for i, n in enumerate(nodes)})
        self.outputs = [self._ref(o, where, param_index) for o in outputs]

    @staticmethod
    def _ref(v, where, param_index):
        if id(v) in where:
            return where[id(v)]
        if id(v) in param_index:
            return ("param", param_index[id(v)])
        return ("const", v.data)

    def forward(self, X, p, keep, choice=None):
        env = _Env([X])
        env.choice = choice
        for step in self.steps:
            env.append(step.forward(env, p, keep))
        self.env = env if keep else None
        return np.column_stack([np.broadcast_to(_value(env, p, r), (len(X),)) for r in self.outputs])

    def backward(self, d_outputs, pgrad):
        """Add d(loss)/d(inputs) into the returned array and d/d(params) into pgrad."""
        grads = [np.zeros_like(block) for block in self.env]
        for ref, d in zip(self.outputs, d_outputs.T):
            if ref[0] == "col":
                grads[ref[1]][:, ref[2]] += d
            elif ref[0] == "param":
                pgrad[ref[1]] += reduce(add, d[::-1].tolist(), 0.0)
        for step in reversed(self.steps):
            step.backward(grads, grads[step.block], pgrad)
        return grads[0]


def _group(nodes, where, param_index, n_inputs):
    """Steps for the traced nodes: dot nodes sharing inputs and the unary ops on them grouped."""
    position = {id(n): i for i, n in enumerate(nodes)}

    def child_ref(c):  # before grouping: every interior child is ("node", position)
        if id(c) in position:
            return ("node", position[id(c)])
        return _Program._ref(c, where, param_index)

    groups, owner = {}, {}  # key -> member positions in creation order; position -> key
    for i, n in enumerate(nodes):
        key = ("node", i)
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

    steps, block_of, widths = [], {}, {0: n_inputs}  # block_of: node position -> ("col", block, column)
    for key in _schedule(groups, nodes, position, owner):
        members = groups[key]
        block = len(steps) + 1
        refs = [[_resolve(child_ref(c), block_of) for c in nodes[m]._prev] for m in members]
        step = None
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
    return steps, block_of


def _schedule(groups, nodes, position, owner):
    """Group keys in an order where every group runs after the groups it reads."""
    deps = {
        key: {owner[position[id(c)]] for m in members for c in nodes[m]._prev if id(c) in position} - {key}
        for key, members in groups.items()
    }
    order, done = [], set()
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
    """How a group reads its inputs from one block (None if they span several).

    ("block", b, None) when they are exactly block b's columns in order (no
    copy), else ("cols", b, indices).
    """
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
    return merged


def _same_map(a, b):
    (kind_a, block_a, cols_a), (kind_b, block_b, cols_b) = a.inputs, b.inputs
    same_cols = cols_a is None and cols_b is None or (
        cols_a is not None and cols_b is not None and np.array_equal(cols_a, cols_b)
    )
    return a.kernel is b.kernel and (kind_a, block_a) == (kind_b, block_b) and same_cols


def _merge_refs(refs):
    if all(r == refs[0] for r in refs):
        return refs[0]
    if all(r[0] == "col" and r[1] == 0 for r in refs):  # a different input column per target
        return ("pick", 0, np.array([r[2] for r in refs]))
    if all(r[0] == "const" for r in refs):
        return ("pickconst", np.array([r[1] for r in refs]))
    return None


# ----- the loss over a batch ------------------------------------------------------
# A loss maps (logits (n, k), targets y, seed) to (per-row losses, seed * d(loss_i)/d(logits)),
# the gradient only when seed is given. The built-in losses have vectorised
# twins below, written in the eager graph's order of operations; any other
# loss is traced (few distinct targets) or run per row on Values.

MAX_TRACED_TARGETS = 32  # beyond this many distinct targets, a custom loss runs per row


def _row_sums(A):
    """Sum each row left to right (eager's `sum` over a sample's terms)."""
    total = A[:, 0].copy()
    for j in range(1, A.shape[1]):
        total += A[:, j]
    return total


def _class_indices(y, k):
    t = np.asarray(y)
    if t.ndim != 1 or (t.size and not np.all(t == np.round(t))):
        raise TypeError(f"targets must be integer class indices (one per row), got an array of shape {t.shape}")
    t = t.astype(np.intp)
    bad = (t < 0) | (t >= k)
    if np.any(bad):
        raise IndexError(f"target {t[bad][0]} is out of range for {k} classes (expected 0..{k - 1})")
    return t


def _regression_targets(name, y, k):
    Y = np.asarray(y, dtype=float)
    Y = Y[:, None] if Y.ndim == 1 else Y
    if Y.ndim != 2 or Y.shape[1] != k:
        given = Y.shape[1] if Y.ndim == 2 else f"an array of shape {np.shape(y)}"
        raise ValueError(f"{name} needs as many targets as outputs, got {given} and {k}")
    return Y


def _cross_entropy(logits, y, seed):
    """log(sum_j exp(x_j - m)) - (x_t - m), with m the row's largest logit."""
    rows, t = np.arange(len(logits)), _class_indices(y, logits.shape[1])
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    total = _row_sums(e)
    losses = np.log(total) - z[rows, t]
    if seed is None:
        return losses, None
    d = e / total[:, None]  # softmax - one_hot
    d[rows, t] -= 1.0
    return losses, d * seed


def _multiclass_hinge(logits, y, seed, margin=1.0):
    """(1/K) sum_{k != t} relu(margin - x_t + x_k)."""
    rows, t = np.arange(len(logits)), _class_indices(y, logits.shape[1])
    m = (margin - logits[rows, t])[:, None] + logits
    terms = np.where(m <= 0.0, 0.0, m)  # relu, NaN passing through
    terms[rows, t] = 0.0
    scale = 1.0 / logits.shape[1]
    losses = _row_sums(terms) * scale
    if seed is None:
        return losses, None
    active = (m > 0.0) | np.isnan(m)  # relu's slope: 1 unless m <= 0
    active[rows, t] = False
    d = active * (scale * seed)
    d[rows, t] = -_row_sums(d)
    return losses, d


def _mean_squared(logits, Y, seed):
    D = logits - Y
    scale = 1.0 / D.shape[1]
    losses = _row_sums(D * D) * scale
    return losses, None if seed is None else 2.0 * (D * (scale * seed))


def _one_hot_mse(logits, y, seed):
    Y = np.zeros_like(logits)
    Y[np.arange(len(logits)), _class_indices(y, logits.shape[1])] = 1.0
    return _mean_squared(logits, Y, seed)


def _mse(logits, y, seed):
    return _mean_squared(logits, _regression_targets("mse_loss", y, logits.shape[1]), seed)


def _l1(logits, y, seed):
    D = logits - _regression_targets("l1_loss", y, logits.shape[1])
    scale = 1.0 / D.shape[1]
    losses = _row_sums(np.abs(D)) * scale
    if seed is None:
        return losses, None
    sign = (D > 0.0).astype(float) - (D < 0.0)  # 0 at 0 (and NaN), as eager's abs
    return losses, sign * (scale * seed)


def _huber(logits, y, seed, delta=1.0):
    D = logits - _regression_targets("huber_loss", y, logits.shape[1])
    Z = np.abs(D)
    quadratic = Z < delta
    scale = 1.0 / D.shape[1]
    losses = _row_sums(np.where(quadratic, D * D * 0.5, (Z - 0.5 * delta) * delta)) * scale
    if seed is None:
        return losses, None
    u = scale * seed
    sign = (D > 0.0).astype(float) - (D < 0.0)
    return losses, np.where(quadratic, D * u, sign * (delta * u))


KERNELS = {  # (task, name) of a registered loss -> its vectorised twin
    ("classification", "cross_entropy"): _cross_entropy,
    ("classification", "hinge"): _multiclass_hinge,
    ("classification", "mse"): _one_hot_mse,
    ("regression", "mse"): _mse,
    ("regression", "l1"): _l1,
    ("regression", "huber"): _huber,
}
BUILTIN_FUNCTIONS = {  # the same losses passed as plain functions
    cross_entropy: ("classification", "cross_entropy"),
    multiclass_hinge_loss: ("classification", "hinge"),
    one_hot_mse_loss: ("classification", "mse"),
    mse_loss: ("regression", "mse"),
    l1_loss: ("regression", "l1"),
    huber_loss: ("regression", "huber"),
}


def _batch_loss(loss, n_outputs):
    """The batch form of a per-sample loss: a vectorised kernel, or a custom loss's fallback."""
    if isinstance(loss, Loss) and (loss.task, loss.name) in KERNELS:
        return functools.partial(KERNELS[loss.task, loss.name], **loss.options)
    if not isinstance(loss, Loss) and loss in BUILTIN_FUNCTIONS:
        return KERNELS[BUILTIN_FUNCTIONS[loss]]
    return _CustomLoss(loss, n_outputs)


class _CustomLoss:
    """Any other loss: traced once per distinct target (merged into one program
    where the traces differ only in a picked logit or a constant), or built on
    Values row by row when the targets are many or have several columns."""

    def __init__(self, loss, n_outputs):
        self.loss = loss
        self.n_outputs = n_outputs
        self.programs = {}  # target -> traced loss program
        self.merged = None  # (one program for every known target, their values)

    def __call__(self, logits, y, seed):
        targets = np.unique(y).tolist() if np.ndim(y) == 1 else []
        if not targets or len(targets) > MAX_TRACED_TARGETS or len(self.programs) > MAX_TRACED_TARGETS:
            return self._row_by_row(logits, y, seed)
        for t in targets:
            self._program(t)
        if self.merged is None:
            known = sorted(self.programs)
            self.merged = (_merge([self.programs[t] for t in known]), np.array(known))
        merged, known = self.merged
        keep = seed is not None
        kept = []
        if merged is not None:
            losses = merged.forward(logits, np.zeros(0), keep, np.searchsorted(known, y))[:, 0]
            kept.append((slice(None), merged))
        else:  # shapes differ between targets: one program per target
            losses = np.empty(len(y))
            for target in targets:
                rows = np.flatnonzero(y == target)
                program = self.programs[target]
                losses[rows] = program.forward(logits[rows], np.zeros(0), keep)[:, 0]
                kept.append((rows, program))
        if not keep:
            return losses, None
        d_logits = np.zeros_like(logits)
        for rows, program in kept:
            d_logits[rows] = program.backward(np.full((len(d_logits[rows]), 1), seed), np.zeros(0))
        return losses, d_logits

    def _program(self, target):
        """The loss for one target value, traced with the logits as its inputs."""
        if target not in self.programs:
            rows = np.random.default_rng(1).standard_normal((3, self.n_outputs)).tolist()
            self.programs[target] = _Program(lambda logits: [self.loss(logits, target)], self.n_outputs, [], rows)
            self.merged = None  # a new target: merge again
        return self.programs[target]

    def _row_by_row(self, logits, y, seed):
        """The loss on Values for each row: any loss and any targets, at eager speed."""
        losses = np.empty(len(logits))
        d_logits = None if seed is None else np.empty_like(logits)
        for i, (row, target) in enumerate(zip(logits.tolist(), np.asarray(y).tolist())):
            values = [Value(x) for x in row]
            loss = self.loss(values, target)
            losses[i] = loss.data
            if seed is not None:
                (loss * seed).backward()  # the loss node gets seed, as in eager's mean
                d_logits[i] = [v.grad for v in values]
        return losses, d_logits


# ----- the public object ----------------------------------------------------------


def _quietly(method):
    """Float overflow gives inf and NaN silently, as Python floats do in eager mode."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return method(*args, **kwargs)

    return wrapper


class CompiledModel:
    """A model (and optionally a loss) as fixed batch programs over NumPy arrays.

    `loss_and_grad(X, y)` returns the mean loss over the rows and adds its
    gradient into every parameter's `.grad`, exactly as eager
    `(sum(losses) * (1 / n)).backward()` would.
    """

    name = "compiled"

    def __init__(self, model, n_inputs, loss=None, examples=None):
        self.model = model
        self.params = model.parameters()
        self.loss = loss
        rows = np.random.default_rng(0).standard_normal((3, n_inputs)) if examples is None else examples
        rows = [list(map(float, r)) for r in rows]
        if len(rows) < 2:
            raise CompileError("tracing needs at least two example rows to detect data-dependent graphs")
        self.program = _Program(model, n_inputs, self.params, rows)
        self.n_outputs = len(self.program.outputs)
        self._loss = None if loss is None else _batch_loss(loss, self.n_outputs)

    def _param_data(self):
        return np.array([p.data for p in self.params])

    @_quietly
    def logits(self, X):
        """Model outputs for every row of X, in chunks so large grids fit in memory."""
        X = np.asarray(X, dtype=float)
        p = self._param_data()
        parts = [self.program.forward(X[i : i + CHUNK], p, keep=False) for i in range(0, len(X), CHUNK)]
        return np.vstack(parts) if parts else np.zeros((0, self.n_outputs))

    @_quietly
    def evaluate(self, X, y):
        """(per-sample losses, logits) for rows X with integer targets y."""
        logits = self.logits(X)
        losses, _ = self._loss(logits, np.asarray(y), None)
        return losses, logits

    @_quietly
    def loss_and_grad(self, X, y):
        """Mean loss over the batch; its gradient is added into the parameters' grads."""
        X = np.asarray(X, dtype=float)
        y = np.asarray(y)
        p = self._param_data()
        logits = self.program.forward(X, p, keep=True)
        seed = 1.0 / len(y)  # d(mean)/d(loss_i), as eager's sum(...) * (1 / n) passes it down
        losses, d_logits = self._loss(logits, y, seed)
        pgrad = np.zeros(len(self.params))
        self.program.backward(d_logits, pgrad)
        for param, g in zip(self.params, pgrad.tolist()):
            param.grad += g
        return reduce(add, losses.tolist(), 0.0) * seed


def compile_model(model, n_inputs, loss=None, examples=None):
    """Trace `model` (and `loss(logits, target)`) into a CompiledModel, or raise CompileError."""
    return CompiledModel(model, n_inputs, loss, examples)
