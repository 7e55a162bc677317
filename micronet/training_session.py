"""The training session: compiled training with the parameters, gradients and optimizer state in flat arrays."""

import math
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from micronet.batch_runtime import quietly
from micronet.optim import Optimizer, array_twin
from micronet.tracing import CompileError

if TYPE_CHECKING:
    from micronet.compile import CompiledModel

__all__ = ["TrainingSession"]


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

    def __init__(self, compiled: "CompiledModel", optimizer: Optimizer) -> None:
        params = list(getattr(optimizer, "params", ()))
        if len(params) != len(compiled.params) or any(a is not b for a, b in zip(params, compiled.params)):
            raise ValueError("the optimizer must hold the compiled model's parameters, in model.parameters() order")
        compiled.require_loss()
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
        compiled.session = self

    @quietly
    def step(self, X: ArrayLike, y: ArrayLike) -> float:
        """One training step on a batch; returns its mean loss.

        Raises FloatingPointError before the update when the loss or a
        gradient is not finite, and after it when a parameter is not.
        """
        if self.synced:  # the Values may have been changed since: start from them
            self.reload()
        loss = self.compiled.mean_loss_and_grad(np.asarray(X, dtype=float), np.asarray(y), self.p, self.g)
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
        if self.compiled.session is self:
            self.compiled.session = None

    def __enter__(self) -> "TrainingSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _first_non_finite(a):
    return float(a[~np.isfinite(a)][0])
