"""The one training loop, shared by the CLI, the sweep, the estimators and `micronet.fit`.

`run_epochs` trains a `TrainState` (model, optimizer, schedule, shuffling
stream, early-stopping tracker) on prepared data for the epochs of a `Plan`,
scores every split after each epoch, and reports each finished epoch to
its callers: `on_epoch(state, row)` for the run directory, and user
callbacks `on_epoch_end(epoch, logs)` that may stop training. `fit` is the
same loop behind one call that takes a model and arrays, as Keras's
`model.fit` does.

Where parameters live while training: the compiled executor may move them
into NumPy arrays for speed (see `micronet.compile`). They are written back
to the model's Values at the end of every epoch, before any callback or
checkpoint sees them, and when the loop returns or raises; so whatever looks
at `model.parameters()` from outside the loop sees current numbers.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from micronet.data import PreparedData, Standardizer, batches, split_validation
from micronet.defaults import SETTINGS, default
from micronet.losses import get_loss
from micronet.nn import MLP, Module
from micronet.optim import OPTIMIZERS, SCHEDULES
from micronet.options import Choice, check_options
from micronet.tasks import LOSS, TASKS, find_metric, headlines

if TYPE_CHECKING:  # annotations only: the loop takes a validated config as a value
    from matplotlib.axes import Axes

    from micronet.compile import CompiledModel
    from micronet.config import RunConfig

__all__ = [
    "Diverged",
    "EagerExecutor",
    "EarlyStopping",
    "History",
    "Plan",
    "TrainState",
    "fit",
    "make_executor",
    "new_state",
    "run_epochs",
    "score",
]


class Diverged(ArithmeticError):
    """Training produced a non-finite loss, gradient or parameter."""

    def __init__(self, epoch: int, cause: str, hint: str = "try a smaller optimizer.lr") -> None:
        super().__init__(f"training diverged at epoch {epoch} ({cause}); {hint}")
        self.epoch, self.cause = epoch, cause


# ----- executors: how a batch turns into a loss and gradients -----------------


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


def _stepper(executor, optimizer):
    """The executor's array-backed training session when it has one, else steps on Values."""
    start = getattr(executor, "training_session", None)
    if start is not None:
        try:
            return start(optimizer)
        except (TypeError, ValueError):  # an optimizer or model the array twins do not cover
            pass
    return _ValueStepper(executor, optimizer)


# ----- early stopping and history ---------------------------------------------


class EarlyStopping:
    """Stop when a monitored metric has not improved for `patience` epochs (Keras's rule).

    An epoch improves on the best so far when the metric moves the right way
    by more than `min_delta`. `mode` is "min" or "max"; "auto" takes the way
    the task specs (micronet.tasks) say the metric is better, and "min" for a
    key they do not name. With `restore_best`, the model ends with the
    weights of the best epoch, whether or not training stopped early. The
    tracker's state is plain data, so a resumed run carries on counting
    exactly where it left off.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 10, min_delta: float = 0.0,
                 restore_best: bool = True, mode: str = "auto") -> None:
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"EarlyStopping monitor must be a metric name like 'val_loss', got {monitor!r}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"EarlyStopping patience must be an int >= 1, got {patience!r}")
        if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float)) or not 0 <= min_delta < math.inf:
            raise ValueError(f"EarlyStopping min_delta must be a finite number >= 0, got {min_delta!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"EarlyStopping mode must be 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":
            known = find_metric(monitor)
            mode = "min" if known is None else known.better
        self.monitor, self.patience, self.min_delta = monitor, patience, float(min_delta)
        self.restore_best, self.mode = bool(restore_best), mode
        self.best: float | None = None  # the best value seen
        self.best_epoch: int | None = None
        self.wait = 0  # epochs since the best one
        self.best_weights: dict | None = None  # model.state_dict() of the best epoch (restore_best only)

    def update(self, epoch: int, logs: dict, model: Module) -> bool:
        """Record one finished epoch; True when training should stop now."""
        if self.monitor not in logs:
            raise ValueError(
                f"early stopping monitors {self.monitor!r}, which this run does not log "
                f"(it logs: {', '.join(logs)}); validate, or monitor 'loss'"
            )
        value = float(logs[self.monitor])
        sign = 1.0 if self.mode == "min" else -1.0
        if self.best is None or sign * (value - self.best) < -self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self.best_weights = model.state_dict()
            return False
        self.wait += 1
        return self.wait >= self.patience

    def restore(self, model: Module) -> None:
        """Give the model its best epoch's weights (with restore_best, once there is a best)."""
        if self.restore_best and self.best_weights is not None:
            model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict:
        """The tracker's progress as plain JSON data (the settings come from the config)."""
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait, "best_weights": self.best_weights}

    def load_state_dict(self, data: dict) -> None:
        try:
            best, best_epoch, wait, weights = data["best"], data["best_epoch"], data["wait"], data["best_weights"]
        except (KeyError, TypeError):
            raise ValueError(f"the early-stopping state is damaged: {data!r:.100}") from None
        if best is not None and not (isinstance(best, (int, float)) and math.isfinite(best)):
            raise ValueError(f"the early-stopping best value must be a finite number, got {best!r}")
        for name, value in (("best_epoch", best_epoch), ("wait", wait)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"the early-stopping {name} must be an int >= 0, got {value!r}")
        if weights is not None and not isinstance(weights, dict):
            raise ValueError("the early-stopping best weights must be an object of parameters")
        self.best, self.best_epoch, self.wait, self.best_weights = best, best_epoch, wait or 0, weights

    def __repr__(self) -> str:
        return (
            f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, min_delta={self.min_delta}, "
            f"restore_best={self.restore_best}, mode={self.mode!r})"
        )


def _logs(row: dict) -> dict:
    """A metrics row in Keras's naming: train_loss -> loss, val_loss stays, epoch and seconds dropped."""
    return {
        (key[len("train_"):] if key.startswith("train_") else key): value
        for key, value in row.items()
        if key not in ("epoch", "seconds")
    }


class History:
    """What `fit` returns: per-epoch metrics, keyed as Keras keys them.

    `history` maps each metric (loss, accuracy or mae and r2, their val_
    twins when validating, lr) to a list with one value per epoch; `epoch`
    lists the epoch numbers (1-based, as metrics.csv counts them);
    `best_epoch` is the early-stopping tracker's best epoch (None without
    early stopping); `stopped_early` says whether patience ran out.
    """

    def __init__(self, rows: list[dict], best_epoch: int | None = None, stopped_early: bool = False) -> None:
        self.rows = [dict(row) for row in rows]
        self.epoch = [row["epoch"] for row in rows]
        self.history: dict[str, list] = {}
        for row in rows:
            for key, value in _logs(row).items():
                self.history.setdefault(key, []).append(value)
        self.best_epoch = best_epoch
        self.stopped_early = stopped_early

    def __len__(self) -> int:
        return len(self.epoch)

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.history.items() if k != "lr") if self.epoch else ""
        stop = f", stopped early (best epoch {self.best_epoch})" if self.stopped_early else ""
        return f"History({len(self)} epochs{': ' + last if last else ''}{stop})"

    def to_csv(self, path: str | os.PathLike[str]) -> None:
        """One row per epoch, the columns of metrics.csv, written atomically."""
        from micronet.files import csv_text, write_text_atomic

        columns = list(self.rows[0]) if self.rows else ["epoch"]
        write_text_atomic(path, csv_text(columns, self.rows))

    def plot(self, ax: Axes | None = None) -> Axes:
        """Loss (and accuracy or R²) per epoch; returns the matplotlib Axes."""
        from micronet import plot

        return plot.history(self, ax=ax)


# ----- the state and the plan -------------------------------------------------


@dataclass
class Plan:
    """How to train, independent of what is trained: the loop's fixed settings."""

    epochs: int  # the last epoch to reach
    batch_size: int | str = SETTINGS["batch_size"].option.default  # samples per step, or "full"
    shuffle: bool = SETTINGS["shuffle"].option.default  # reshuffle the training split every epoch
    step_schedule: bool = False  # advance the lr schedule per optimizer step (else per epoch)

    @classmethod
    def from_config(cls, config: RunConfig) -> Plan:
        """The plan of a validated `RunConfig`."""
        training = config.training
        return cls(
            training.epochs, training.batch_size, training.shuffle, config.optimizer.schedule.interval == "step"
        )


@dataclass
class TrainState:
    """Everything that changes while training, and all that resume needs."""

    model: Module
    optimizer: Any
    schedule: Any
    shuffle_rng: random.Random
    epoch: int = 0  # completed epochs
    history: list = field(default_factory=list)  # one metrics dict per completed epoch
    stopper: EarlyStopping | None = None  # early stopping, if asked for
    stopped_early: bool = False  # patience ran out: the run is over before its last epoch

    def finish(self) -> None:
        """End training: with early stopping's restore_best, the model takes its best epoch's weights.

        Separate from the loop, which may run a few epochs at a time (a
        playground steps one by one); call it once, when the run is over.
        """
        if self.stopper is not None:
            self.stopper.restore(self.model)

    def final_row(self) -> dict:
        """The metrics row of the model as it ends: the best epoch's with restore_best, else the last one."""
        if not self.history:
            return {}
        stopper = self.stopper
        if stopper is not None and stopper.restore_best and stopper.best_epoch is not None:
            return self.history[stopper.best_epoch - 1]
        return self.history[-1]

    def to_dict(self) -> dict:
        """The resume part of a checkpoint: plain JSON data."""
        return {
            "epoch": self.epoch,
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "shuffle_rng": _rng_to_json(self.shuffle_rng.getstate()),
            "early_stopping": None if self.stopper is None else self.stopper.state_dict(),
            "stopped_early": self.stopped_early,
        }

    def load_dict(self, data: dict) -> None:
        """Restore `to_dict()` output; raise ValueError if it does not fit."""
        try:
            self.optimizer.load_state_dict(data["optimizer"])
            self.schedule.load_state_dict(data["schedule"])
            self.shuffle_rng.setstate(_rng_from_json(data["shuffle_rng"]))
            epoch = data["epoch"]
            stopping, stopped = data.get("early_stopping"), data.get("stopped_early", False)
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise ValueError(f"the checkpoint's training state is damaged: {e}") from None
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"the checkpoint's epoch must be an int >= 0, got {epoch!r}")
        if (stopping is None) != (self.stopper is None):
            raise ValueError(
                "the checkpoint's early-stopping state does not match the config's training.early_stopping"
            )
        if self.stopper is not None:
            self.stopper.load_state_dict(stopping)  # type: ignore[arg-type]  # both or neither, checked above
        self.epoch, self.stopped_early = epoch, stopped is True


def _rng_to_json(state):
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _rng_from_json(data):
    version, internal, gauss = data
    return (version, tuple(internal), gauss)


def sub_rng(seed: int, purpose: str) -> random.Random:
    """An independent stream per purpose, all from the one run seed (str seeds hash stably)."""
    return random.Random(f"micronet:{seed}:{purpose}")


def _steps_per_epoch(n: int, batch_size: int | str) -> int:
    return len(batches(n, batch_size, random.Random(0), shuffle=False))


def _fill_run_length(name: str, params: dict, run_length: int) -> dict:
    """A schedule's parameters with each unset run length (cosine's T_max, linear's total_iters) the run's."""
    options = SCHEDULES[name].options
    return {k: (run_length if v is None and options[k].run_length else v) for k, v in params.items()}


def new_state(config: RunConfig, data: PreparedData, model: Module | None = None) -> TrainState:
    """A fresh optimizer, schedule and early-stopping tracker for `config` and the data's shape.

    The model is `model`, or else a new MLP with the config's layers and
    one output per class (or per target column), seeded by the run seed.
    """
    if model is None:
        model = MLP(
            data.feature_count,
            [*config.model.hidden, data.n_outputs],
            activation=config.model.activation,
            seed=sub_rng(config.seed, "init"),
        )
    opt = config.optimizer
    optimizer = OPTIMIZERS[opt.name](model.parameters(), **opt.params())
    run_length = config.training.epochs
    if opt.schedule.interval == "step":
        run_length *= _steps_per_epoch(len(data.y_train), config.training.batch_size)
    params = _fill_run_length(opt.schedule.name, opt.schedule.params(), run_length)
    schedule = SCHEDULES[opt.schedule.name](optimizer, **params)
    stopping = config.training.early_stopping
    stopper = None if stopping is None else EarlyStopping(**stopping.params())
    return TrainState(model, optimizer, schedule, sub_rng(config.seed, "shuffle"), stopper=stopper)


def config_loss(config: RunConfig) -> Callable:
    """The per-sample loss function a config asks for."""
    return get_loss(config.loss.name, config.task, **config.loss.params())


# ----- scoring ----------------------------------------------------------------


def score(task: str, outputs: np.ndarray, y: np.ndarray, target_scaler: Standardizer | None = None) -> dict:
    """The task's metrics for one split (micronet.tasks): accuracy, or MAE in the target's own units and R²."""
    return TASKS[task].score(outputs, y, 1.0 if target_scaler is None else target_scaler.scale_)


def _evaluate(executor, task, X, y, target_scaler) -> dict:
    losses, outputs = executor.evaluate(X, y)
    return {"loss": float(np.mean(losses)), **score(task, outputs, y, target_scaler)}


# ----- the loop ---------------------------------------------------------------


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
    stepper = _stepper(executor, state.optimizer)
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
            logs = _logs(row)
            if state.stopper is not None and state.stopper.update(epoch, logs, state.model):
                state.stopped_early = True
            if on_epoch is not None:
                on_epoch(state, row)
            if _callbacks_ask_to_stop(callbacks, epoch, logs) or state.stopped_early:
                break
        return "completed"
    finally:
        stepper.sync()


def _callbacks_ask_to_stop(callbacks: list, epoch: int, logs: dict) -> bool:
    stop = False
    for callback in callbacks:
        hook = getattr(callback, "on_epoch_end", callback)
        if hook(epoch, dict(logs)) is True or getattr(callback, "stop_training", False) is True:
            stop = True
    return stop


@contextlib.contextmanager
def _as_divergence(epoch: int):
    """Arithmetic that blew up inside a step (a non-finite loss, gradient or parameter, the
    engine's overflow and domain errors, a schedule's lr overflowing) ends the run as diverged."""
    try:
        yield
    except (FloatingPointError, OverflowError, ZeroDivisionError, ValueError) as e:
        cause = str(e) if isinstance(e, FloatingPointError) else f"{type(e).__name__}: {e}"
        raise Diverged(epoch, cause) from None


# ----- progress ---------------------------------------------------------------


def interactive() -> bool:
    """True in a Jupyter kernel or at a terminal: where a progress bar helps."""
    return "ipykernel" in sys.modules or sys.stderr.isatty()


def _has_widgets() -> bool:
    """tqdm's notebook bar needs ipywidgets; without it, a text bar (tqdm.auto would warn)."""
    import importlib.util

    return importlib.util.find_spec("ipywidgets") is not None


class ProgressBar:
    """A tqdm bar over epochs (tqdm.auto: a widget in Jupyter, text at a terminal)."""

    def __init__(self, total: int, initial: int = 0, notebook: bool = True) -> None:
        if notebook and _has_widgets():
            from tqdm.auto import tqdm
        else:
            from tqdm import tqdm  # type: ignore[assignment]  # the plain bar, where tqdm.auto picks a widget
        self.bar = tqdm(total=total, initial=initial, unit="epoch", file=sys.stderr, leave=False, dynamic_ncols=True)

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        shown = {}
        scores = [(f"{split}_", metric) for metric in headlines() for split in ("val", "test")]
        for prefix, metric in [("", LOSS), ("val_", LOSS), *scores]:
            if prefix + metric.name in logs:
                shown[f"{prefix or 'train_'}{metric.short}"] = metric.show(logs[prefix + metric.name])
        self.bar.update(1)
        self.bar.set_postfix(shown)

    def close(self) -> None:
        self.bar.close()


# ----- one call: micronet.fit -------------------------------------------------
# Defaults and checks come from micronet.defaults and the optimizers' own declarations;
# a message names the keyword as written: `epochs= must be an int >= 1, got 0`.


def _keyword(key: str, value: Any) -> Any:
    """fit's keyword `key`, checked by its setting's rule."""
    return SETTINGS[key].option.rule(value, f"{key}=")


def fit(
    model: Module,
    X: ArrayLike,
    y: ArrayLike,
    *,
    epochs: int = SETTINGS["epochs"].option.default,
    batch_size: int | str = SETTINGS["batch_size"].option.default,
    optimizer: str | Any | None = None,
    loss: str | Callable | None = None,
    task: str | None = None,
    schedule: str | Any | None = None,
    validation_split: float = SETTINGS["validation_split"].option.default,
    validation_data: tuple | None = None,
    early_stopping: int | EarlyStopping | None = None,
    callbacks: Iterable = (),
    shuffle: bool = SETTINGS["shuffle"].option.default,
    backend: str = SETTINGS["backend"].option.default,
    progress: bool | None = None,
    seed: int = SETTINGS["seed"].option.default,
    **optimizer_options: Any,
) -> History:
    """Train `model` on (X, y) in one call and return its `History`, as Keras's `model.fit` does.

    `model` is any Module whose call returns a list of outputs (logits for
    classification). `y` holds class indices 0..k-1 for classification, or
    numbers (one column per output) for regression; the task follows the
    loss (mse, l1, huber: regression) unless `task` says otherwise, and the
    loss the task (None: cross_entropy, or mse for regression).
    `optimizer` is "sgd" or "adam" (None: the task's default, sgd for
    classification and adam for regression) with its options as keywords
    (lr, momentum, nesterov, betas, eps, weight_decay; unset: the
    optimizer's defaults, docs/config.md's table), or an optimizer instance
    over `model.parameters()`. `schedule` is a schedule name (cosine and
    linear span the whole run) or instance. Validation: `validation_data=(Xv,
    yv)`, or `validation_split`, a fraction of (X, y) held out by a draw
    seeded by `seed` (stratified by class for classification; Keras takes
    the last rows instead, which misleads on data sorted by class).
    `early_stopping` is a patience in epochs (monitoring val_loss when
    validating, else loss) or an `EarlyStopping`. Training shuffles with
    `seed`; the model's initial weights are the model's own.
    """
    if not isinstance(model, Module) or not callable(model):
        raise TypeError(f"model must be a callable micronet Module, got {type(model).__name__}")
    task = _task(task, loss, y)
    loss_fn = get_loss(default("loss", task) if loss is None else loss, task) if loss is None or \
        isinstance(loss, str) else _callable_loss(loss)
    X, y = _check_xy("X", "y", X, y, task)
    validation_split = _keyword("validation_split", validation_split)
    if validation_data is not None:
        if validation_split:
            raise ValueError("pass validation_split= or validation_data=, not both")
        X_val, y_val = _unpack_validation(validation_data, task, X.shape[1], y)
    elif validation_split:
        X, y, X_val, y_val = split_validation(X, y, validation_split, seed, stratify=task == "classification",
                                               name="validation_split")
    else:
        X_val, y_val = X[:0], y[:0]
    n_outputs = _check_model_outputs(model, X, y, task)
    plan = Plan(_keyword("epochs", epochs), _keyword("batch_size", batch_size), _keyword("shuffle", shuffle))
    opt = _optimizer(model, optimizer, optimizer_options, task)
    sched = _schedule(schedule, opt, plan.epochs)
    stopper = _early_stopping(early_stopping, validating=len(y_val) > 0)
    seed = _keyword("seed", seed)
    backend = _keyword("backend", backend)
    data = PreparedData(
        X, y, X[:0], y[:0], list(range(n_outputs)) if task == "classification" else None, X.shape[1], None,
        X_val=X_val, y_val=y_val, task=task,
    )
    state = TrainState(model, opt, sched, sub_rng(seed, "shuffle"), stopper=stopper)
    executor = make_executor(model, loss_fn, backend, X.shape[1])
    bar = ProgressBar(plan.epochs) if (interactive() if progress is None else progress) else None
    try:
        run_epochs(plan, data, state, executor, callbacks=[*callbacks, *([bar] if bar else [])])
        state.finish()
    finally:
        if bar is not None:
            bar.close()
    return History(state.history, None if stopper is None else stopper.best_epoch, state.stopped_early)


def _task(task, loss, y) -> str:
    """The task given, else the loss's (mse, l1, huber: regression), else y's for a loss function of
    one's own (float targets: regression), else classification."""
    from micronet.losses import REGRESSION_LOSSES, TASKS

    if task is not None:
        return Choice(TASKS)(task, "task=")
    if isinstance(loss, str):
        return "regression" if loss in REGRESSION_LOSSES else "classification"
    if loss is None:
        return "classification"
    kind = np.asarray(y).dtype.kind
    return "classification" if kind in "iub" else "regression"


def _callable_loss(loss):
    if not callable(loss):
        raise TypeError(f"loss must be a loss name or a callable loss(outputs, target), got {type(loss).__name__}")
    return loss


def _check_xy(x_name, y_name, X, y, task) -> tuple[np.ndarray, np.ndarray]:
    """X as a finite 2-d float array and y as class indices or finite numbers, same length."""
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{x_name} must be an array of numbers of shape (n_samples, n_features): {e}") from None
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{x_name} must have shape (n_samples, n_features) with both > 0, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{x_name} contains NaN or infinite values")
    y = np.asarray(y)
    if len(y) != len(X):
        raise ValueError(f"{x_name} and {y_name} must have the same number of samples, got {len(X)} and {len(y)}")
    if task == "classification":
        if y.ndim != 1:
            raise ValueError(f"{y_name} must be 1-d class indices for classification, got shape {y.shape}")
        whole_floats = y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y))
        if y.dtype.kind not in "iu" and not whole_floats:
            raise ValueError(f"{y_name} must hold integer class indices 0..k-1, got dtype {y.dtype}")
        y = y.astype(np.int64)
        if y.min() < 0:
            raise ValueError(f"{y_name} must hold class indices 0..k-1, got {y.min()}")
        return X, y
    if y.ndim not in (1, 2):
        raise ValueError(f"{y_name} must be 1-d or (n_samples, n_outputs) for regression, got shape {y.shape}")
    try:
        y = y.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{y_name} must hold numbers for regression, got dtype {y.dtype}") from None
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{y_name} contains NaN or infinite values")
    return X, y


def _unpack_validation(validation_data, task, n_features, y):
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
        raise ValueError("validation_data must be a pair (X_val, y_val)")
    X_given, y_given = validation_data
    X_val, y_val = _check_xy("validation_data[0]", "validation_data[1]", X_given, y_given, task)
    if X_val.shape[1] != n_features:
        raise ValueError(f"validation_data[0] must have {n_features} features like X, got {X_val.shape[1]}")
    if task == "regression" and y_val.shape[1:] != y.shape[1:]:
        raise ValueError(f"validation_data[1] must have the shape of y's rows {y.shape[1:]}, got {y_val.shape[1:]}")
    return X_val, y_val


def _check_model_outputs(model, X, y, task) -> int:
    """The model's number of outputs, checked against the targets on the first row."""
    try:
        outputs = model(X[0].tolist())
    except (TypeError, ValueError) as e:
        raise ValueError(f"model cannot take a row of X ({X.shape[1]} features): {e}") from None
    n = len(outputs) if isinstance(outputs, (list, tuple)) else -1
    if n < 1:
        raise TypeError(f"model must return a list of Values, got {type(outputs).__name__}")
    if task == "classification":
        if n < 2:
            raise ValueError(f"a classifier needs one output per class (at least 2), the model has {n}")
        if y.max() >= n:
            raise ValueError(f"y holds class index {y.max()}, but the model has {n} outputs (classes 0..{n - 1})")
    elif (y.shape[1] if y.ndim == 2 else 1) != n:
        raise ValueError(f"y has {y.shape[1] if y.ndim == 2 else 1} target column(s), but the model has {n} outputs")
    return n


def _optimizer(model, optimizer, options, task):
    """The optimizer by name with its options as keywords (each checked by the optimizer's declaration),
    or an instance."""
    known = {key for cls in OPTIMIZERS.values() for key in cls.options}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"fit() got unexpected keyword argument(s) {', '.join(unknown)}")
    if optimizer is None or isinstance(optimizer, str):
        name = _keyword("optimizer", default("optimizer", task) if optimizer is None else optimizer)
        cls = OPTIMIZERS[name]

        def named(key: str) -> str:
            return f"{key}="

        values = check_options(cls.options, options, named, f"optimizer {name!r}")
        cls.check_together(values, named)
        return cls(model.parameters(), **values)
    if options:
        raise ValueError(
            f"{', '.join(f'{k}=' for k in sorted(options))} cannot be combined with an optimizer instance: "
            "set them on the instance"
        )
    if not hasattr(optimizer, "step") or not hasattr(optimizer, "params"):
        raise TypeError(f"optimizer= must be 'sgd', 'adam' or a micronet optimizer, got {type(optimizer).__name__}")
    if {id(p) for p in optimizer.params} != {id(p) for p in model.parameters()}:
        raise ValueError("the optimizer instance must be built on model.parameters()")
    return optimizer


def _schedule(schedule, optimizer, epochs):
    """The schedule by name with its defaults (a run length: the run's epochs), or an instance."""
    if schedule is None:
        schedule = "constant"
    if isinstance(schedule, str):
        name = Choice(SCHEDULES)(schedule, "schedule=")
        options = SCHEDULES[name].options
        required = [key for key, option in options.items() if option.required]
        if required:
            raise ValueError(
                f"schedule={name!r} needs {', '.join(required)}: pass a schedule instance, "
                f"e.g. {SCHEDULES[name].__name__}(optimizer, {required[0]}=...)"
            )
        params = {key: option.default for key, option in options.items()}
        return SCHEDULES[name](optimizer, **_fill_run_length(name, params, epochs))
    if getattr(schedule, "optimizer", None) is not optimizer:
        raise ValueError("the schedule instance must wrap the optimizer that fit() uses")
    return schedule


def _early_stopping(early_stopping, validating):
    if early_stopping is None or early_stopping is False:
        return None
    if isinstance(early_stopping, EarlyStopping):
        return early_stopping
    if isinstance(early_stopping, bool) or not isinstance(early_stopping, int):
        raise TypeError(f"early_stopping= must be a patience (int) or an EarlyStopping, got {early_stopping!r}")
    return EarlyStopping(monitor="val_loss" if validating else "loss", patience=early_stopping)
