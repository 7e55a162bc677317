"""The compiled model: a model (and its loss) traced once, then run over whole NumPy batches.

This is the public door to batch execution; `compile_model` builds a
`CompiledModel`. Tracing calls the model on placeholder Values and records
the scalar graph (micronet.tracing); its nodes are grouped into array
steps: a layer's dot products become one matrix product with BLAS, the
activations on top of them one vectorised NumPy call (micronet.batch_steps,
over the kernels of micronet.batch_kernels). The built-in losses run as
vectorised kernels (micronet.batch_losses); any other loss is traced too
(micronet.traced_losses).

The arithmetic is eager's, but not its rounding: BLAS sums in its own order
and NumPy's exp, log and tanh may differ from Python's math module in the
last bit. Outputs, losses and gradients agree with the eager engine to
about 1e-15 relative (the tests demand 1e-12), and runs are reproducible
bit for bit within this backend on one machine. (micronet 0.1 replayed
eager's sums in order, exact per sample; that replay cost 5-16x and is gone.)

`loss_and_grad` adds gradients into the parameters' `.grad`, as eager
backward does. For training, `training_session(optimizer)` keeps the
parameters, gradients and optimizer state in flat float64 arrays instead, so
a step never touches a Value; see `TrainingSession` (micronet.training_session)
for when the Values are current.

A graph whose shape depends on the input values (Python `if` on `.data`)
cannot be replayed: tracing on several inputs detects it and refuses with
`CompileError`, and the trainer falls back to the eager engine.
"""

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike

from micronet.batch_kernels import UNARY
from micronet.batch_losses import kernel_for
from micronet.batch_runtime import quietly
from micronet.engine import Value
from micronet.optim import Optimizer
from micronet.traced_losses import TracedLoss
from micronet.tracing import CompileError, Program
from micronet.training_session import TrainingSession

# CompileError, TrainingSession and UNARY live in the modules above; this is their public path too.
__all__ = ["CompileError", "CompiledModel", "TrainingSession", "Traceable", "UNARY", "compile_model"]

CHUNK = 4096  # rows per forward chunk when only predicting: bounds the temporaries of a large grid


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
        self.program = Program(model, n_inputs, self.params, rows)
        self.n_outputs = len(self.program.outputs)
        # (logits, y, seed) -> (losses, seed * d(loss)/d(logits)); None without a loss (require_loss checks)
        self._loss: Any = None if loss is None else kernel_for(loss) or TracedLoss(loss, self.n_outputs)
        self.session: TrainingSession | None = None  # the live training session, whose arrays hold the parameters

    def _parameters(self):
        """The newest parameters: a session's arrays while it has unsynced steps, else the Values."""
        session = self.session
        if session is not None and not session.synced:
            return session.p
        return np.array([p.data for p in self.params], dtype=float)

    @quietly
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

    @quietly
    def evaluate(self, X: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """(per-sample losses, logits) for rows X with targets y."""
        self.require_loss()
        logits = self.logits(X)
        losses, _ = self._loss(logits, np.asarray(y), None)
        return losses, logits

    @quietly
    def loss_and_grad(self, X: ArrayLike, y: ArrayLike) -> float:
        """Mean loss over the batch; its gradient is added into the parameters' grads."""
        pgrad = np.zeros(len(self.params))
        loss = self.mean_loss_and_grad(np.asarray(X, dtype=float), np.asarray(y), self._parameters(), pgrad)
        for param, g in zip(self.params, pgrad.tolist()):
            param.grad += g
        return loss

    def mean_loss_and_grad(self, X: np.ndarray, y: np.ndarray, p: np.ndarray, pgrad: np.ndarray) -> float:
        """Mean loss over rows X at the flat parameters p; its gradient overwrites pgrad (a session's step)."""
        self.require_loss()
        if self.program.needs_zeroed_grads:
            pgrad.fill(0.0)
        program = self.program
        env = program.forward(X, p)
        seed = 1.0 / len(X)  # d(mean)/d(loss_i), as eager's sum(...) * (1 / n) passes it down
        losses, d_logits = self._loss(program.outputs_of(env, p), y, seed)
        program.backward(env, d_logits, p, pgrad)
        return float(np.add.reduce(losses)) * seed

    def require_loss(self) -> None:
        """ValueError unless this model was compiled with a loss."""
        if self._loss is None:
            raise ValueError("this model was compiled without a loss: compile_model(model, n_inputs, loss)")

    def training_session(self, optimizer: Optimizer) -> "TrainingSession":
        """Train on flat arrays: see `TrainingSession`. Raises CompileError for an optimizer without an array twin."""
        return TrainingSession(self, optimizer)


def compile_model(model: Traceable, n_inputs: int, loss: Callable[..., Value] | None = None,
                  examples: Sequence[Sequence[float]] | np.ndarray | None = None) -> CompiledModel:
    """Trace `model` (and `loss(logits, target)`) into a CompiledModel, or raise CompileError."""
    return CompiledModel(model, n_inputs, loss, examples)
