"""Executors: how a batch of rows turns into a loss and gradients (eager Values, or compiled arrays).

`make_executor` picks the compiled executor (micronet.compile) when asked
for and possible, else `EagerExecutor`; `make_stepper` gives the loop one
optimizer step per batch on whichever of them it got.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from micronet.compile import CompiledModel
    from micronet.nn import Module

__all__ = ["EagerExecutor", "make_executor", "make_stepper"]


class EagerExecutor:
    """Builds a Value graph per sample: slow, but runs any model."""

    name = "eager"

    def __init__(self, model: Callable, loss: Callable, should_stop: Callable[[], bool] | None = None) -> None:
        self.model = model
        self.loss = loss
        # Polled before every sample: a stop request ends even a batch that runs for
        # minutes, by raising KeyboardInterrupt before backward touches a gradient.
        self.should_stop = should_stop

    def _rows(self, X: np.ndarray, y: np.ndarray | None = None):
        for i, x in enumerate(X.tolist()):
            if self.should_stop is not None and self.should_stop():
                raise KeyboardInterrupt("stop requested")
            yield x if y is None else (x, y[i])

    def loss_and_grad(self, X: np.ndarray, y: np.ndarray) -> float:
        """Mean loss over the batch; its gradient is added into every parameter's grad."""
        losses = [self.loss(self.model(x), t) for x, t in self._rows(X, y.tolist())]
        total = sum(losses) * (1.0 / len(losses))
        total.backward()
        return total.data

    def evaluate(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(per-sample losses, outputs) without keeping any graph."""
        outputs, losses = [], []
        for x, t in self._rows(X, y.tolist()):
            out = self.model(x)
            outputs.append([v.data for v in out])
            losses.append(self.loss(out, t).data)
        return np.array(losses), np.array(outputs).reshape(len(outputs), -1)

    def logits(self, X: np.ndarray) -> np.ndarray:
        """The model's outputs for every row of X, as an (n, outputs) array."""
        return np.array([[v.data for v in self.model(x)] for x in self._rows(X)]).reshape(len(X), -1)


def make_executor(model: Module, loss: Callable, backend: str, n_features: int,
                  warn: Callable | None = None) -> EagerExecutor | CompiledModel:
    """The compiled executor when asked for and possible, else eager (saying why through `warn`)."""
    if backend != "eager":
        from micronet.compile import CompileError, compile_model

        try:
            return compile_model(model, n_features, loss)
        except CompileError as e:
            if warn is not None:
                warn(f"note: using the eager backend: {e}")
    return EagerExecutor(model, loss)


class _ValueStepper:
    """One optimizer step on the model's Values: works for any executor and optimizer."""

    def __init__(self, executor, optimizer):
        self.executor = executor
        self.optimizer = optimizer
        self.params = optimizer.params

    def step(self, X: np.ndarray, y: np.ndarray) -> float:
        self.optimizer.zero_grad()
        loss = self.executor.loss_and_grad(X, y)
        if not math.isfinite(loss):
            raise FloatingPointError(f"loss={loss}")
        for p in self.params:
            if not math.isfinite(p.grad):
                raise FloatingPointError(f"a gradient became {p.grad}")
        self.optimizer.step()
        for p in self.params:
            if not math.isfinite(p.data):
                raise FloatingPointError(f"a parameter became {p.data}")
        return loss

    def sync(self) -> None:
        """The Values are the parameters: nothing to write back."""

    def reload(self) -> None:
        """The Values are the parameters: nothing to read."""


def make_stepper(executor: EagerExecutor | CompiledModel, optimizer: Any) -> Any:
    """The executor's array-backed training session when it has one, else steps on Values."""
    start = getattr(executor, "training_session", None)
    if start is not None:
        try:
            return start(optimizer)
        except (TypeError, ValueError):  # an optimizer or model the array twins do not cover
            pass
    return _ValueStepper(executor, optimizer)
