"""The array steps a compiled program runs, forward and backward over a whole batch.

A program is a list of steps, each computing one block of columns: an
`Affine` step is the dot-product nodes of a layer as one BLAS product, a
`Map` one unary kernel over a block, and a `Node` any single engine node
over the batch, the general fallback. micronet.tracing builds the steps
from a traced graph; this module only runs them.

Where a value lives at run time (a ref):

- ("col", block, column): a column of a block computed by a step (block 0 is X)
- ("param", index): a model parameter, one scalar for the whole batch
- ("const", value): a constant leaf
- ("pick", block, cols) and ("pickconst", values): one column or constant per
  row, chosen by the row's target (merged loss programs)

A step reads its inputs through a plan: ("block", b, None) is all of block b
(no copy), ("cols", b, indices) some of its columns. Gradients flow back into
`grads`, one entry per block: None until something arrives, False where no
gradient is wanted (the data X).
"""

import copy
import functools
from typing import Any

import numpy as np

from micronet.batch_kernels import UNARY, divide, log_softmax, power
from micronet.engine import Value

__all__ = ["Env", "Affine", "Map", "Node", "value_at", "column_grad"]


class Env(list):
    """The blocks of one run of a program; each row's target choice; what Node steps keep."""

    def __init__(self, X: np.ndarray, choice: np.ndarray | None = None) -> None:
        super().__init__([X])
        self.choice = choice
        self.kept: dict[int, list[Any]] = {}


@functools.lru_cache(maxsize=8)
def _ones(n):
    """A row of n ones: ones @ dZ sums dZ over its rows with BLAS, five times faster than np.sum here."""
    ones = np.ones(n)
    ones.flags.writeable = False
    return ones


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


def column_grad(grads: list[Any], env: Env, block: int) -> np.ndarray:
    """The gradient array of a block, created as zeros on first use."""
    if grads[block] is None:
        grads[block] = np.zeros_like(env[block])
    return grads[block]


def value_at(env: Env, p: np.ndarray, ref: tuple) -> Any:
    """The value a ref names in this run: a column, a parameter, a constant or a per-row pick."""
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


class Affine:
    """Dot-product nodes sharing their inputs: Z = X @ W.T + b, one BLAS call.

    When the weights and biases sit in the parameter vector as a Layer puts
    them (neuron by neuron, weights then bias), W and b are views of it and
    their gradients are written straight into the gradient vector.
    """

    def __init__(self, block: int, inputs: tuple, weights: list[list[int]], biases: list[int] | None) -> None:
        self.block = block
        self.inputs = inputs
        self.weights = np.array(weights)  # (width, n) parameter indices
        self.biases = None if biases is None else np.array(biases)
        self.width, self.n = self.weights.shape
        self.dense = _dense_slice(self.weights, self.biases)  # (start, stop) or None
        self._views = {"p": (None, None, None), "grad": (None, None, None)}  # the last vector viewed, per role
        self.accumulate = True  # add into the gradients (the program clears it when this step alone writes them)

    def writes(self) -> list[int]:
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

    def forward(self, env: Env, p: np.ndarray) -> np.ndarray:
        """The block this step computes, for parameters p."""
        W, b = self._params(p)
        Z = _gather(env, self.inputs) @ W.T
        if b is not None:
            Z += b
        return Z

    def backward(self, env: Env, grads: list[Any], dZ: np.ndarray, p: np.ndarray, pgrad: np.ndarray) -> None:
        """Pass dZ, the gradient of this step's block, to its inputs' blocks and into pgrad."""
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


class Map:
    """One unary op applied to a block of columns."""

    accumulate = False  # writes no parameter gradient

    def __init__(self, block: int, op: str, inputs: tuple) -> None:
        self.block = block
        self.op = op
        self.kernel, self.slope = UNARY[op]
        self.inputs = inputs

    def writes(self) -> list[int]:
        """No parameter gradients: a map has no parameters."""
        return []

    def forward(self, env: Env, p: np.ndarray) -> np.ndarray:
        """The op over the block it reads."""
        return self.kernel(_gather(env, self.inputs))

    def backward(self, env: Env, grads: list[Any], dout: np.ndarray, p: np.ndarray, pgrad: np.ndarray) -> None:
        """dout times the op's slope, into the block it read."""
        if grads[self.inputs[1]] is not False:  # dout is this step's own array: scale it in place
            dout *= self.slope(_gather(env, self.inputs), env[self.block])
            _scatter_add(grads, env, self.inputs, dout)


class Node:
    """A single node of any engine op, over the batch: the general fallback."""

    OPS = ("+", "*", "/", "**", "dot", "log_softmax")  # the ops with several inputs; one-input ops are UNARY's

    def __init__(self, block: int, node: Value, refs: list[tuple]) -> None:
        self.block = block
        self.op = node._op
        self.refs = refs  # one ref per child
        assert self.op in UNARY or self.op in self.OPS, f"op {self.op!r} has no batch kernel"
        if self.op == "**":  # does the exponent get a gradient? eager records 0.0 for a number
            assert node._local is not None  # tracing refused nodes with a Python backward function
            self.differentiate_exponent = refs[1][0] != "const" or node._local[1] != 0.0

    def with_refs(self, refs: list[tuple]) -> "Node":
        """The same step reading other refs (a merged loss program's per-row picks)."""
        step = copy.copy(self)
        step.refs = refs
        return step

    def writes(self) -> list[int]:
        """The parameters this node reads directly: it adds into their gradients."""
        return [ref[1] for ref in self.refs if ref[0] == "param"]

    @property
    def accumulate(self) -> bool:  # adds into the gradients of the parameters it reads
        return bool(self.writes())

    def forward(self, env: Env, p: np.ndarray) -> np.ndarray:
        """The node's value for every row, as a one-column block; its local slopes kept in env for backward."""
        xs = [value_at(env, p, ref) for ref in self.refs]
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
            out = divide(xs[0], xs[1])
            locals_ = [1.0 / xs[1], -out / xs[1]]  # as eager: -x/y^2 = -(x/y)/y
        elif op == "**":
            out, d_base, d_exp = power(xs[0], xs[1], self.differentiate_exponent)
            locals_ = [d_base, d_exp]
        elif op == "dot":
            n = len(xs) // 2
            out = sum(w * x for w, x in zip(xs[:n], xs[n : 2 * n]))
            if len(xs) % 2:
                out = out + xs[-1]
            locals_ = [*xs[n : 2 * n], *xs[:n], 1.0][: len(xs)]
        else:
            out, locals_ = log_softmax(xs)
        env.kept[self.block] = locals_
        out = np.asarray(out, dtype=float)  # a fresh array, or a scalar when no input varies by row
        return (out if out.ndim else np.full(len(env[0]), out)).reshape(-1, 1)

    def backward(self, env: Env, grads: list[Any], dout: np.ndarray, p: np.ndarray, pgrad: np.ndarray) -> None:
        """Each child's local slope times dout, into its block or its parameter's gradient."""
        g = dout[:, 0]
        for ref, local in zip(self.refs, env.kept[self.block]):
            kind = ref[0]
            if kind in ("const", "pickconst"):
                continue  # constants take no gradient
            contribution = local * g  # a fresh array
            if kind == "col" and grads[ref[1]] is None and env[ref[1]].shape[1] == 1:
                grads[ref[1]] = contribution.reshape(-1, 1)  # the first gradient of a one-column block
            elif kind == "col" and grads[ref[1]] is not False:
                column_grad(grads, env, ref[1])[:, ref[2]] += contribution
            elif kind == "pick" and grads[ref[1]] is not False:
                column_grad(grads, env, ref[1])[np.arange(len(g)), ref[2][env.choice]] += contribution
            elif kind == "param":
                pgrad[ref[1]] += np.add.reduce(contribution, axis=None)
