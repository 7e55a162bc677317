"""`micronet.fit`: the training loop behind one call that takes a model and arrays, as Keras's `model.fit` does.

Defaults and checks come from micronet.defaults and the optimizers' own
declarations; a message names the keyword as written: `epochs= must be an
int >= 1, got 0`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from micronet.callbacks import EarlyStopping, History
from micronet.data import PreparedData, split_validation
from micronet.defaults import SETTINGS, default
from micronet.epochs import run_epochs
from micronet.executors import make_executor
from micronet.losses import get_loss
from micronet.nn import Module
from micronet.optim import OPTIMIZERS, SCHEDULES
from micronet.options import Choice, check_options
from micronet.progress import ProgressBar, interactive
from micronet.state import Plan, TrainState, fill_run_length, sub_rng

__all__ = ["fit"]


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
        return SCHEDULES[name](optimizer, **fill_run_length(name, params, epochs))
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
