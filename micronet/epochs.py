"""The training loop itself: `run_epochs` trains a `TrainState` for a `Plan`'s epochs and scores every split.

Each finished epoch is reported to the caller (`on_epoch(state, row)`, for
the run directory) and to user callbacks (`on_epoch_end(epoch, logs)`),
which may stop training.

Where parameters live while training: the compiled executor may move them
into NumPy arrays for speed (see `micronet.compile`). They are written back
to the model's Values at the end of every epoch, before any callback or
checkpoint sees them, and when the loop returns or raises; so whatever looks
at `model.parameters()` from outside the loop sees current numbers.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from micronet.callbacks import ask_to_stop, keras_logs
from micronet.data import PreparedData, Standardizer, batches
from micronet.executors import EagerExecutor, make_stepper
from micronet.state import Plan, TrainState
from micronet.tasks import TASKS

if TYPE_CHECKING:
    from micronet.compile import CompiledModel

__all__ = ["Diverged", "run_epochs", "score"]


class Diverged(ArithmeticError):
    """Training produced a non-finite loss, gradient or parameter."""

    def __init__(self, epoch: int, cause: str, hint: str = "try a smaller optimizer.lr") -> None:
        super().__init__(f"training diverged at epoch {epoch} ({cause}); {hint}")
        self.epoch, self.cause = epoch, cause


def score(task: str, outputs: np.ndarray, y: np.ndarray, target_scaler: Standardizer | None = None) -> dict:
    """The task's metrics for one split (micronet.tasks): accuracy, or MAE in the target's own units and R²."""
    return TASKS[task].score(outputs, y, 1.0 if target_scaler is None else target_scaler.scale_)


def _evaluate(executor, task, X, y, target_scaler) -> dict:
    losses, outputs = executor.evaluate(X, y)
    return {"loss": float(np.mean(losses)), **score(task, outputs, y, target_scaler)}


def run_epochs(
    plan: Plan,
    data: PreparedData,
    state: TrainState,
    executor: EagerExecutor | CompiledModel,
    *,
    on_epoch: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
    callbacks: Iterable = (),
) -> str:
    """Train from `state.epoch` to `plan.epochs`; return "completed" or "interrupted".

    After every epoch the metrics row (train, then validation and test when
    those splits are not empty) is appended to `state.history`, passed to
    `on_epoch(state, row)`, and then to each callback as
    `on_epoch_end(epoch, logs)` in Keras's naming. A callback that returns
    True or sets `stop_training`, or an early-stopping tracker whose patience
    runs out, ends training after that epoch ("completed", with
    `state.stopped_early` set by the tracker; `state.finish()` then gives
    the model its best weights). `should_stop()` is polled
    before each batch, so a stop request ends the run within one batch
    ("interrupted"). Raises `Diverged` at the first non-finite loss,
    gradient or parameter, with the Values holding the last good step.
    """
    callbacks = list(callbacks)
    stepper = make_stepper(executor, state.optimizer)
    splits = [("train", data.X_train, data.y_train)]
    held_out = (("val", data.X_val, data.y_val), ("test", data.X_test, data.y_test))
    splits += [(name, X, y) for name, X, y in held_out if len(y)]
    n = len(data.y_train)
    first = plan.epochs + 1 if state.stopped_early else state.epoch + 1  # a stopped run is over
    try:
        for epoch in range(first, plan.epochs + 1):
            started = time.perf_counter()
            lr = state.optimizer.lr
            for batch in batches(n, plan.batch_size, state.shuffle_rng, plan.shuffle):
                if should_stop is not None and should_stop():
                    return "interrupted"
                with _as_divergence(epoch):
                    stepper.step(data.X_train[batch], data.y_train[batch])
                    if plan.step_schedule:
                        state.schedule.step()
            with _as_divergence(epoch):
                if not plan.step_schedule:
                    state.schedule.step()
                row: dict[str, Any] = {"epoch": epoch}
                for name, X, y in splits:
                    metrics = _evaluate(executor, data.task, X, y, data.target_scaler)
                    if not math.isfinite(metrics["loss"]):
                        raise FloatingPointError(f"{name} loss={metrics['loss']}")
                    row.update({f"{name}_{key}": value for key, value in metrics.items()})
            row.update(lr=lr, seconds=time.perf_counter() - started)
            stepper.sync()
            state.epoch = epoch
            state.history.append(row)
            logs = keras_logs(row)
            if state.stopper is not None and state.stopper.update(epoch, logs, state.model):
                state.stopped_early = True
            if on_epoch is not None:
                on_epoch(state, row)
            if ask_to_stop(callbacks, epoch, logs) or state.stopped_early:
                break
        return "completed"
    finally:
        stepper.sync()


@contextlib.contextmanager
def _as_divergence(epoch: int):
    """Arithmetic that blew up inside a step (a non-finite loss, gradient or parameter, the
    engine's overflow and domain errors, a schedule's lr overflowing) ends the run as diverged."""
    try:
        yield
    except (FloatingPointError, OverflowError, ZeroDivisionError, ValueError) as e:
        cause = str(e) if isinstance(e, FloatingPointError) else f"{type(e).__name__}: {e}"
        raise Diverged(epoch, cause) from None
