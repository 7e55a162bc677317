"""The run schema: typed dataclasses, YAML loading, overrides and validation.

A run's settings come from three layers, last wins: the defaults below, the
YAML file, then `dotted.key=value` overrides. `parse_config` checks the
result once, in schema order, and raises `ConfigError` at the first problem
with a one-line message naming the dotted key, the value and what is
expected. After that the trainer can trust every field.

`null` (or an absent key) means "unset": the default applies. Options that
belong to another dataset, optimizer, schedule or loss must stay unset. A
section chosen by name may be given as just the name: `dataset: iris` is
`dataset: {name: iris}`.

The task (classification or regression) follows from the loss and the
dataset unless `task` sets it: mse, l1 and huber, or a regression dataset,
mean regression; everything else classification.
"""

import difflib
import math
import numbers
import re
import reprlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from micronet.activations import ACTIVATIONS
from micronet.data import DATASETS, TASKS
from micronet.losses import CLASSIFICATION_LOSSES, REGRESSION_LOSSES
from micronet.optim import OPTIMIZERS, SCHEDULES
from micronet.tasks import TASKS as TASK_SPECS

__all__ = [
    "ConfigError",
    "DatasetConfig",
    "ModelConfig",
    "ScheduleConfig",
    "OptimizerConfig",
    "TrainingConfig",
    "EarlyStoppingConfig",
    "LossConfig",
    "RunConfig",
    "load_config",
    "find_config",
    "shipped_configs",
    "config_yaml",
    "config_reference",
    "activation_table",
    "parse_config",
    "apply_overrides",
    "config_to_dict",
    "HIDDEN_ACTIVATIONS",
    "BACKENDS",
]


class ConfigError(ValueError):
    """A config the trainer cannot run; the message names the key and the fix."""


# Every registered activation but the identity: a linear hidden layer adds nothing.
HIDDEN_ACTIVATIONS = tuple(name for name, spec in ACTIVATIONS.items() if not spec.identity)
BACKENDS = ("compiled", "eager")
INTERVALS = ("epoch", "step")
MAX_SEED = 2**32 - 1  # numpy's and scikit-learn's random_state limit

# Options that only some optimizers or schedules take, with their defaults
# (_REQUIRED: no default). Keyed by the names in OPTIMIZERS and SCHEDULES;
# tests check that the two agree.
_REQUIRED = object()
OPTIMIZER_OPTIONS: dict[str, dict[str, Any]] = {
    "sgd": {"momentum": 0.9, "nesterov": False},
    "adam": {"betas": [0.9, 0.999], "eps": 1e-8},
}
SCHEDULE_OPTIONS: dict[str, dict[str, Any]] = {
    "constant": {},
    "step": {"step_size": _REQUIRED, "gamma": 0.1},
    "exponential": {"gamma": 0.95},
    "cosine": {"T_max": None, "eta_min": 0.0},  # T_max None: the whole run
    "linear": {"start_factor": 1.0, "end_factor": 0.1, "total_iters": None},  # None: the whole run
    "invscaling": {"power_t": 0.5},
}
LOSS_OPTIONS = {"huber": {"delta": 1.0}}  # losses not listed take no options


# ----- the schema -------------------------------------------------------------


@dataclass
class DatasetConfig:
    name: str = "moons"  # a key of micronet.data.DATASETS (regression's default: sine)
    # Generator and csv options; None means that dataset's default, and an
    # option the dataset does not take stays None.
    n_samples: int | None = None  # generated: samples drawn, >= 2
    noise: float | None = None  # moons, circles, xor, spiral, sine, regression, friedman1: noise std, >= 0
    factor: float | None = None  # circles: inner/outer radius, 0 < x < 1
    centers: int | None = None  # blobs: number of clusters (classes), >= 2
    cluster_std: float | None = None  # blobs: cluster spread, > 0
    n_features: int | None = None  # blobs, classification, gaussian_quantiles, regression: >= 1; friedman1: >= 5
    n_classes: int | None = None  # classification, gaussian_quantiles: >= 2
    n_informative: int | None = None  # classification: 1..n_features, 2**n_informative >= n_classes
    path: str | None = None  # csv: the file, with a header row
    target: str | None = None  # csv: the label (or regression target) column's name
    test_size: float = 0.25  # held-out fraction, 0 < x < 1, stratified for classification
    standardize: bool = True  # scale features with statistics of the training split
    standardize_target: bool | None = None  # regression only [true]: scale the target too; predictions unscaled

    def options(self) -> dict:
        """The options the chosen dataset takes, by name (for `data.load_dataset`)."""
        return {key: getattr(self, key) for key in DATASETS[self.name].options}


@dataclass
class ModelConfig:
    hidden: list[int] = field(default_factory=lambda: [16, 16])  # hidden layer widths; [] is linear
    activation: str = "relu"  # hidden-layer activation, one of HIDDEN_ACTIVATIONS


@dataclass
class ScheduleConfig:
    name: str = "constant"  # a key of micronet.optim.SCHEDULES
    interval: str = "epoch"  # advance the schedule once per "epoch" or per optimizer "step"
    step_size: int | None = None  # step: decay every step_size intervals (required)
    gamma: float | None = None  # step [0.1], exponential [0.95]: decay factor, > 0
    T_max: int | None = None  # cosine: intervals to anneal over; None = the whole run
    eta_min: float | None = None  # cosine: final lr [0.0]
    start_factor: float | None = None  # linear: first lr / base lr [1.0]
    end_factor: float | None = None  # linear: last lr / base lr [0.1]
    total_iters: int | None = None  # linear: intervals to reach end_factor; None = the whole run
    power_t: float | None = None  # invscaling: lr / (t + 1) ** power_t [0.5]

    def params(self) -> dict:
        """Keyword arguments for `SCHEDULES[name]` (a None T_max/total_iters is for the trainer to fill)."""
        return {key: getattr(self, key) for key in SCHEDULE_OPTIONS[self.name]}


@dataclass
class OptimizerConfig:
    name: str = "sgd"  # a key of micronet.optim.OPTIMIZERS
    lr: float = 0.1  # base learning rate, > 0
    momentum: float | None = 0.9  # sgd: 0 <= x < 1
    nesterov: bool | None = False  # sgd: Nesterov momentum (needs momentum > 0)
    betas: list[float] | None = None  # adam [[0.9, 0.999]]: decay of the moment estimates, each in [0, 1)
    eps: float | None = None  # adam [1e-8]: added to the denominator, > 0
    weight_decay: float = 0.0  # L2 penalty folded into the gradient, >= 0
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)  # learning-rate schedule

    def params(self) -> dict:
        """Keyword arguments for `OPTIMIZERS[name]` besides the parameters."""
        own = {key: getattr(self, key) for key in OPTIMIZER_OPTIONS[self.name]}
        return {"lr": self.lr, **own, "weight_decay": self.weight_decay}


@dataclass
class EarlyStoppingConfig:
    patience: int = 10  # epochs without improvement before stopping, >= 1
    min_delta: float = 0.0  # an improvement must beat the best by more than this, >= 0
    restore_best: bool = True  # end with the best epoch's weights
    monitor: str | None = None  # metric to watch; None: val_loss when validating, else loss

    def params(self) -> dict:
        """Keyword arguments for `micronet.loop.EarlyStopping`."""
        return {"monitor": self.monitor, "patience": self.patience, "min_delta": self.min_delta,
                "restore_best": self.restore_best}


@dataclass
class TrainingConfig:
    epochs: int = 100  # passes over the training split, >= 1
    batch_size: int | str = 32  # samples per step, >= 1, or "full" for full-batch
    shuffle: bool = True  # reshuffle the training split every epoch
    backend: str = "compiled"  # "compiled" batch executor or "eager" Value graphs
    validation_split: float = 0.0  # fraction of the training split held out for validation, 0 <= x < 1
    early_stopping: EarlyStoppingConfig | None = None  # null: train every epoch
    animate: bool = False  # also write training.gif: the model learning, at most 120 frames
    checkpoint_seconds: float = 1.0  # write model.json at most this often (and always at the end), >= 0


@dataclass
class LossConfig:
    name: str = "cross_entropy"  # a key of micronet.losses.CLASSIFICATION_LOSSES or REGRESSION_LOSSES
    delta: float | None = None  # huber [1.0]: where the loss turns from quadratic to linear, > 0

    def params(self) -> dict:
        """Keyword arguments for `micronet.losses.get_loss` besides name and task."""
        return {key: getattr(self, key) for key in LOSS_OPTIONS.get(self.name, {})}


@dataclass
class RunConfig:
    name: str = "run"  # run name, used in the run directory's name: letters, digits, . _ -
    seed: int = 0  # seeds data, split, initialisation and shuffling; 0 <= seed < 2**32
    task: str = "classification"  # or "regression"; unset: from the loss and the dataset
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)  # or just its name: `loss: mse`
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)


_SECTIONS = {
    "dataset": DatasetConfig,
    "model": ModelConfig,
    "optimizer": OptimizerConfig,
    "optimizer.schedule": ScheduleConfig,
    "training": TrainingConfig,
    "training.early_stopping": EarlyStoppingConfig,
    "loss": LossConfig,
}


def _keys(cls) -> list[str]:
    return [f.name for f in fields(cls)]


# ----- value checks -----------------------------------------------------------

_repr = reprlib.Repr()
_repr.maxstring, _repr.maxother, _repr.maxlevel = 60, 60, 3
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 4


def _show(value: Any) -> str:
    """A short repr for messages, bounded for huge or deeply shared values."""
    try:
        return _repr.repr(value)
    except ValueError:  # an int too long to print
        return f"<{type(value).__name__}>"


def _fail(key: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"{key} must be {expected}, got {_show(value)}")


_NUMBER = re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")


def _real(key: str, value: Any, expected: str, ok: Callable[[float], bool]) -> float:
    """A finite float satisfying `ok`; numeric strings count, since YAML reads `1e-3` as one."""
    x = None
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        x = float(value)
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            x = float(value)
        except OverflowError:  # an int beyond float range
            x = None
    if x is None or not math.isfinite(x) or not ok(x):
        raise _fail(key, f"a finite number {expected}", value)
    return x


def _int(key: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    """An int (not a bool, not 3.0; numpy ints are fine) within bounds."""
    expected = f"an int >= {minimum}" if maximum is None else f"an int in [{minimum}, {maximum}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _fail(key, expected, value)
    if int(value) < minimum or (maximum is not None and int(value) > maximum):
        raise _fail(key, expected, value)
    return int(value)


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(key, "true or false", value)
    return value


def _choice(key: str, value: Any, choices: Iterable[str]) -> str:
    choices = list(choices)
    if isinstance(value, str) and value in choices:
        return value
    hint = ""
    if isinstance(value, str):
        close = difflib.get_close_matches(value, choices, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(f"{key} must be one of {', '.join(choices)}; got {_show(value)}{hint}")


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(key, "a non-empty string", value)
    return value


def _name(key: str, value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", value) or set(value) == {"."}:
        raise _fail(key, "1-100 letters, digits, '.', '_' or '-' (it names a directory)", value)
    return value


def _number_rule(expected: str, ok: Callable[[float], bool]) -> Callable[[str, Any], float]:
    return lambda key, v: _real(key, v, expected, ok)


def _int_rule(minimum: int) -> Callable[[str, Any], int]:
    return lambda key, v: _int(key, v, minimum)


def _betas(key: str, value: Any) -> list[float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise _fail(key, "a list of two numbers [beta1, beta2], each in [0, 1)", value)
    return [_real(f"{key}[{i}]", v, "in [0, 1)", lambda x: 0 <= x < 1) for i, v in enumerate(value)]


def _hidden(key: str, value: Any) -> list[int]:
    if not isinstance(value, (list, tuple)):
        raise _fail(key, "a list of ints >= 1 (layer widths; [] for a linear model)", value)
    return [_int(f"{key}[{i}]", v, 1) for i, v in enumerate(value)]


def _batch_size(key: str, value: Any) -> int | str:
    if isinstance(value, str) and value == "full":
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise _fail(key, "an int >= 1 or 'full'", value)
    return int(value)


# How to check each option that only some datasets, optimizers or schedules take.
_OPTION_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    # dataset
    "n_samples": _int_rule(2),
    "noise": _number_rule(">= 0", lambda x: x >= 0),
    "factor": _number_rule("in (0, 1)", lambda x: 0 < x < 1),
    "centers": _int_rule(2),
    "cluster_std": _number_rule("> 0", lambda x: x > 0),
    "n_features": _int_rule(1),
    "n_classes": _int_rule(2),
    "n_informative": _int_rule(1),
    "path": _text,
    "target": _text,
    # optimizer
    "momentum": _number_rule("in [0, 1)", lambda x: 0 <= x < 1),
    "nesterov": _bool,
    "betas": _betas,
    "eps": _number_rule("> 0", lambda x: x > 0),
    # schedule
    "step_size": _int_rule(1),
    "gamma": _number_rule("> 0", lambda x: x > 0),
    "T_max": _int_rule(1),
    "eta_min": _number_rule(">= 0", lambda x: x >= 0),
    "start_factor": _number_rule("in (0, 1]", lambda x: 0 < x <= 1),
    "end_factor": _number_rule("in [0, 1]", lambda x: 0 <= x <= 1),
    "total_iters": _int_rule(1),
    "power_t": _number_rule(">= 0", lambda x: x >= 0),
    # loss
    "delta": _number_rule("> 0", lambda x: x > 0),
}


# ----- walking the mapping ----------------------------------------------------


def _section(key: str, value: Any, cls) -> dict:
    """`value` as a dict with known keys only; None is an empty section, a short form its mapping."""
    if value is None:
        return {}
    valid = _keys(cls)
    value = _expand_short_form(key, value)
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key} must be a mapping, got {type(value).__name__} {_show(value)}")
    prefix = "" if cls is RunConfig else key + "."
    for k in value:
        if k not in valid:
            close = difflib.get_close_matches(str(k), valid, n=1)
            hint = f"; did you mean {prefix + close[0]!r}?" if close else ""
            raise ConfigError(f"unknown key {prefix + str(k)!r}{hint} (valid: {', '.join(valid)})")
    return {k: v for k, v in value.items() if v is not None}


def _options(prefix: str, raw: dict, owner: str, chosen: str, table: Mapping[str, Any], all_options) -> dict:
    """Check the options `chosen` takes, fill their defaults, refuse the others."""
    for key in all_options:
        if key in raw and key not in table:
            takes = ", ".join(table) or "no options"
            raise ConfigError(f"{prefix}.{key} does not apply to {owner} {chosen!r} (it takes: {takes})")
    resolved = {}
    for key, default in table.items():
        if key in raw:
            resolved[key] = _OPTION_CHECKS[key](f"{prefix}.{key}", raw[key])
        elif default is _REQUIRED:
            raise ConfigError(f"{prefix}.{key} is required for {owner} {chosen!r}")
        else:
            resolved[key] = list(default) if isinstance(default, list) else default
    return resolved


_DATASET_OPTIONS = [
    k for k in _keys(DatasetConfig) if k not in ("name", "test_size", "standardize", "standardize_target")
]


def _dataset(raw: Any, task: str) -> DatasetConfig:
    raw = _section("dataset", raw, DatasetConfig)
    name = _choice("dataset.name", raw.get("name", "moons" if task == "classification" else "sine"), DATASETS)
    kind = DATASETS[name].task
    if kind is not None and kind != task:
        fitting = ", ".join(n for n, spec in DATASETS.items() if spec.task in (task, None))
        raise ConfigError(f"dataset {name!r} is a {kind} dataset, but the task is {task} (its datasets: {fitting})")
    opts = _options("dataset", raw, "dataset", name, DATASETS[name].options, _DATASET_OPTIONS)
    for key in ("path", "target"):
        if key in opts and opts[key] is None:
            raise ConfigError(f"dataset.{key} is required for dataset {name!r}")
    if "n_informative" in opts and opts["n_informative"] > opts["n_features"]:
        raise ConfigError(
            f"dataset.n_informative must be <= dataset.n_features ({opts['n_features']}), got {opts['n_informative']}"
        )
    if "n_informative" in opts and opts["n_classes"] > 2 ** opts["n_informative"]:
        raise ConfigError(
            f"dataset.n_classes must be <= 2**dataset.n_informative ({2 ** opts['n_informative']}), "
            f"got {opts['n_classes']}"
        )
    if name == "friedman1" and opts["n_features"] < 5:
        raise ConfigError(f"dataset.n_features must be >= 5 for dataset 'friedman1', got {opts['n_features']}")
    if name == "gaussian_quantiles" and opts["n_samples"] < opts["n_classes"]:
        raise ConfigError(
            f"dataset.n_samples must be >= dataset.n_classes ({opts['n_classes']}), got {opts['n_samples']}"
        )
    test_size = _real("dataset.test_size", raw.get("test_size", 0.25), "in (0, 1)", lambda x: 0 < x < 1)
    standardize = _bool("dataset.standardize", raw.get("standardize", True))
    standardize_target = None
    if task == "regression":
        standardize_target = _bool("dataset.standardize_target", raw.get("standardize_target", True))
    elif "standardize_target" in raw:
        raise ConfigError("dataset.standardize_target applies to task regression only (a class label is not scaled)")
    return DatasetConfig(
        name=name, test_size=test_size, standardize=standardize, standardize_target=standardize_target, **opts
    )


def _model(raw: Any) -> ModelConfig:
    raw = _section("model", raw, ModelConfig)
    hidden = _hidden("model.hidden", raw.get("hidden", [16, 16]))
    activation = _choice("model.activation", raw.get("activation", "relu"), HIDDEN_ACTIVATIONS)
    return ModelConfig(hidden=hidden, activation=activation)


_SCHEDULE_PARAMS = [k for k in _keys(ScheduleConfig) if k not in ("name", "interval")]


def _schedule(raw: Any) -> ScheduleConfig:
    if raw is not None and not isinstance(raw, (Mapping, str)):
        raise ConfigError(
            f"optimizer.schedule must be a mapping like {{name: cosine}}, got {type(raw).__name__} {_show(raw)}"
        )
    raw = _section("optimizer.schedule", raw, ScheduleConfig)
    name = _choice("optimizer.schedule.name", raw.get("name", "constant"), SCHEDULES)
    params = _options("optimizer.schedule", raw, "schedule", name, SCHEDULE_OPTIONS[name], _SCHEDULE_PARAMS)
    interval = _choice("optimizer.schedule.interval", raw.get("interval", "epoch"), INTERVALS)
    return ScheduleConfig(name=name, interval=interval, **params)


_OPTIMIZER_OPTIONS = ["momentum", "nesterov", "betas", "eps"]


def _optimizer(raw: Any) -> OptimizerConfig:
    raw = _section("optimizer", raw, OptimizerConfig)
    name = _choice("optimizer.name", raw.get("name", "sgd"), OPTIMIZERS)
    lr = _real("optimizer.lr", raw.get("lr", 0.1), "> 0", lambda x: x > 0)
    table = OPTIMIZER_OPTIONS[name]
    opts = _options("optimizer", raw, "optimizer", name, table, _OPTIMIZER_OPTIONS)
    unset = {key: None for key in _OPTIMIZER_OPTIONS if key not in table}
    if opts.get("nesterov") and opts["momentum"] == 0:
        raise ConfigError("optimizer.nesterov=true needs optimizer.momentum > 0, got 0.0")
    weight_decay = _real("optimizer.weight_decay", raw.get("weight_decay", 0.0), ">= 0", lambda x: x >= 0)
    schedule = _schedule(raw.get("schedule"))
    return OptimizerConfig(name=name, lr=lr, weight_decay=weight_decay, schedule=schedule, **opts, **unset)


def _early_stopping(raw: Any, task: str, validating: bool) -> EarlyStoppingConfig | None:
    """null or false: off; true: the defaults; an int: the patience; else a mapping of options."""
    key = "training.early_stopping"
    if raw is None or raw is False:
        return None
    if not isinstance(_expand_short_form(key, raw), Mapping):
        raise _fail(key, "null, true, a patience (int >= 1) or a mapping like {patience: 10}", raw)
    raw = _section(key, raw, EarlyStoppingConfig)
    monitors = TASK_SPECS[task].monitors()
    monitor = _choice(f"{key}.monitor", raw.get("monitor", "val_loss" if validating else "loss"), monitors)
    if monitor.startswith("val_") and not validating:
        raise ConfigError(f"{key}.monitor {monitor!r} needs training.validation_split > 0")
    return EarlyStoppingConfig(
        patience=_int(f"{key}.patience", raw.get("patience", 10), 1),
        min_delta=_real(f"{key}.min_delta", raw.get("min_delta", 0.0), ">= 0", lambda x: x >= 0),
        restore_best=_bool(f"{key}.restore_best", raw.get("restore_best", True)),
        monitor=monitor,
    )


def _training(raw: Any, task: str) -> TrainingConfig:
    raw = _section("training", raw, TrainingConfig)
    validation_split = _real(
        "training.validation_split", raw.get("validation_split", 0.0), "in [0, 1)", lambda x: 0 <= x < 1
    )
    return TrainingConfig(
        epochs=_int("training.epochs", raw.get("epochs", 100), 1),
        batch_size=_batch_size("training.batch_size", raw.get("batch_size", 32)),
        shuffle=_bool("training.shuffle", raw.get("shuffle", True)),
        backend=_choice("training.backend", raw.get("backend", "compiled"), BACKENDS),
        validation_split=validation_split,
        early_stopping=_early_stopping(raw.get("early_stopping"), task, validation_split > 0),
        animate=_bool("training.animate", raw.get("animate", False)),
        checkpoint_seconds=_real("training.checkpoint_seconds", raw.get("checkpoint_seconds", 1.0), ">= 0",
                                 lambda x: x >= 0),
    )


def _loss_name(raw: Any) -> str | None:
    """The loss's name as given (before any checks), to infer the task from."""
    name = raw.get("name") if isinstance(raw, Mapping) else raw
    return name if isinstance(name, str) else None


def _task(raw: Mapping) -> str:
    """The task as set, else regression for a regression loss or dataset, else classification."""
    if "task" in raw:
        return _choice("task", raw["task"], TASKS)
    loss = _loss_name(raw.get("loss"))
    if loss in REGRESSION_LOSSES:  # mse included: it implies regression unless the task says otherwise
        return "regression"
    if loss in CLASSIFICATION_LOSSES:
        return "classification"
    dataset = raw.get("dataset")
    name = dataset.get("name") if isinstance(dataset, Mapping) else dataset
    if isinstance(name, str) and name in DATASETS and DATASETS[name].task == "regression":
        return "regression"
    return "classification"


def _loss(raw: Any, task: str) -> LossConfig:
    raw = _section("loss", raw, LossConfig)
    losses = CLASSIFICATION_LOSSES if task == "classification" else REGRESSION_LOSSES
    default = "cross_entropy" if task == "classification" else "mse"
    given = raw.get("name", default)
    other = REGRESSION_LOSSES if task == "classification" else CLASSIFICATION_LOSSES
    if isinstance(given, str) and given not in losses and given in other:
        raise ConfigError(
            f"loss {given!r} is for {'regression' if task == 'classification' else 'classification'}, "
            f"but the task is {task} (its losses: {', '.join(losses)})"
        )
    name = _choice("loss", given, losses)
    options = _options("loss", raw, "loss", name, LOSS_OPTIONS.get(name, {}), ["delta"])
    return LossConfig(name=name, **options)


def parse_config(mapping: Any, name: str | None = None) -> RunConfig:
    """Validate a plain mapping (as YAML gives it) into a `RunConfig`.

    `name` is the run name used when the mapping has none ("run" if None).
    Defaults are filled in, so the result is fully resolved.
    """
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"config must be a mapping of settings, got {type(mapping).__name__} {_show(mapping)}")
    raw = _section("config", mapping, RunConfig)
    task = _task(raw)
    return RunConfig(
        name=_name("name", raw.get("name", name if name is not None else "run")),
        seed=_int("seed", raw.get("seed", 0), 0, MAX_SEED),
        task=task,
        dataset=_dataset(raw.get("dataset"), task),
        model=_model(raw.get("model")),
        loss=_loss(raw.get("loss"), task),
        optimizer=_optimizer(raw.get("optimizer")),
        training=_training(raw.get("training"), task),
    )


def config_to_dict(cfg: RunConfig) -> dict:
    """The resolved config as plain data in schema order, for `yaml.safe_dump`.

    Options the chosen dataset, optimizer, schedule or loss does not take
    are left out, so the file reads like one a person would write, and
    `parse_config(config_to_dict(cfg)) == cfg`.
    """
    ds, opt, sch, training = cfg.dataset, cfg.optimizer, cfg.optimizer.schedule, cfg.training
    stopping = training.early_stopping
    dataset = {"name": ds.name, **ds.options(), "test_size": ds.test_size, "standardize": ds.standardize}
    if cfg.task == "regression":
        dataset["standardize_target"] = ds.standardize_target
    loss_options = cfg.loss.params()
    return {
        "name": cfg.name,
        "seed": cfg.seed,
        "task": cfg.task,
        "dataset": dataset,
        "model": {"hidden": list(cfg.model.hidden), "activation": cfg.model.activation},
        "loss": {"name": cfg.loss.name, **loss_options} if loss_options else cfg.loss.name,
        "optimizer": {
            "name": opt.name,
            **{k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in opt.params().items()},
            "schedule": {"name": sch.name, **sch.params(), "interval": sch.interval},
        },
        "training": {
            "epochs": training.epochs,
            "batch_size": training.batch_size,
            "shuffle": training.shuffle,
            "backend": training.backend,
            "validation_split": training.validation_split,
            "early_stopping": None if stopping is None else {
                "patience": stopping.patience,
                "min_delta": stopping.min_delta,
                "restore_best": stopping.restore_best,
                "monitor": stopping.monitor,
            },
            "animate": training.animate,
            "checkpoint_seconds": training.checkpoint_seconds,
        },
    }


# ----- YAML and overrides -----------------------------------------------------


def _refuse_duplicate_keys(root: Any) -> None:
    """Raise at the second occurrence of a key in any mapping (PyYAML silently keeps the last).

    Works on the composed node tree, before anything is constructed. Aliased
    nodes are visited once, so an alias bomb costs no more than its text.
    """
    stack, seen_nodes = [root], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys = set()
            for key_node, value_node in node.value:
                stack.extend((key_node, value_node))
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<:` may legitimately repeat keys
                key = (key_node.tag, key_node.value)
                if key in keys:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {_show(key_node.value)}", key_node.start_mark
                    )
                keys.add(key)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def _parse_yaml(text: str, source: str) -> Any:
    """YAML text as plain data, every failure as a ConfigError with line and column."""
    try:
        _refuse_duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader))
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = str(e.problem or "")
        if "could not determine a constructor" in problem:
            what = f"YAML tag {problem.split('tag ')[-1]} is not allowed (plain data only)"
        elif problem.startswith("duplicate key"):
            what = problem
        else:
            what = "malformed YAML: " + ", ".join(str(p) for p in (e.context, e.problem) if p)
        raise ConfigError(_one_line(f"{source}: {what}{where}")) from None
    except RecursionError:
        raise ConfigError(f"{source}: malformed YAML: nested too deeply") from None
    except Exception as e:  # noqa: BLE001 - PyYAML's scalar constructors raise plain ValueError etc. (`!!float x`)
        detail = _one_line(f"{type(e).__name__}: {e}")
        detail = detail if len(detail) <= 120 else detail[:117] + "..."
        raise ConfigError(f"{source}: malformed YAML: {detail}") from None


def _one_line(message: str) -> str:
    return " ".join(message.split())


_TOP_KEYS = _keys(RunConfig)


def apply_overrides(mapping: Any, overrides: Iterable[str]) -> Any:
    """`mapping` with each `dotted.key=value` applied, without changing the original.

    The value is YAML (`0.05`, `[32, 32]`, `{name: cosine}`, `null`). Keys must
    be in the schema; a whole section given as a mapping replaces it.
    """
    if isinstance(overrides, str):
        raise ConfigError(f"overrides must be a list of KEY=VALUE strings, got the string {_show(overrides)}")
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ConfigError(f"malformed override {_show(item)}: expected KEY=VALUE, e.g. optimizer.lr=0.05")
        dotted, text = item.split("=", 1)
        dotted = dotted.strip()
        parts = dotted.split(".")
        if not dotted or "" in parts:
            raise ConfigError(f"malformed override {_show(item)}: the key must be a dotted path like optimizer.lr")
        if not text.strip():
            raise ConfigError(f"malformed override {_show(item)}: no value (write {dotted}=null to unset)")
        _check_path(item, parts)
        value = _parse_yaml(text, f"override {item!r}")
        mapping = _set(mapping, parts, value, item, ())
    return mapping


def _check_path(item: str, parts: list[str]) -> None:
    for i, part in enumerate(parts):
        parent = ".".join(parts[:i])
        valid = _TOP_KEYS if i == 0 else _keys(_SECTIONS[parent]) if parent in _SECTIONS else None
        if valid is None:
            raise ConfigError(f"override {item!r}: {parent!r} is not a section, it has no key {part!r}")
        if part not in valid:
            close = difflib.get_close_matches(part, valid, n=1)
            full = ".".join(parts[: i + 1])
            hint = f"; did you mean {'.'.join([*parts[:i], close[0]])!r}?" if close else ""
            raise ConfigError(f"unknown key {full!r} in override {item!r}{hint} (valid: {', '.join(valid)})")


def _set(node: Any, parts: list[str], value: Any, item: str, above: tuple) -> dict:
    """A copy of `node` with the path set, copying only the dicts along the path.

    `above` is the path to `node`. A section written in short form (`loss:
    huber`, `early_stopping: 5`) is expanded first, so `loss.delta=2` or
    `training.early_stopping.min_delta=0.01` can be set inside it.
    """
    if node is None:
        node = {}
    if not isinstance(node, Mapping):
        raise ConfigError(f"override {item!r}: cannot set {parts[0]!r} inside {type(node).__name__} {_show(node)}")
    node = dict(node)
    if len(parts) == 1:
        node[parts[0]] = value
    else:
        path = (*above, parts[0])
        child = _expand_short_form(".".join(path), node.get(parts[0]))
        if child is not None and not isinstance(child, Mapping):
            raise ConfigError(
                f"override {item!r}: {parts[0]!r} is {type(child).__name__} {_show(child)} in the config, not a mapping"
            )
        node[parts[0]] = _set(child, parts[1:], value, item, path)
    return node


def _expand_short_form(section: str, value: Any) -> Any:
    """A section's short form as its mapping: a name, or early stopping's true or patience."""
    cls = _SECTIONS.get(section)
    if isinstance(value, str) and cls is not None and "name" in _keys(cls):
        return {"name": value}
    if section == "training.early_stopping":
        if value is True:
            return {}
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return {"patience": value}
    return value


def _default_name(path: Path) -> str:
    """The file's stem made safe as a run name (`my config.yaml` -> `my_config`)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem)[:100].strip(".") or "run"


def shipped_config_dir() -> Path | None:
    """Where the shipped configs are: inside an installed wheel, or configs/ of a checkout."""
    package = Path(__file__).resolve().parent
    if (package / "configs").is_dir():  # a wheel installs them as micronet/configs
        return package / "configs"
    checkout = package.parent
    if (checkout / "configs").is_dir() and (checkout / "pyproject.toml").is_file():
        return checkout / "configs"  # an editable install or a checkout: the one copy, in place
    return None


_ACTIVATION_TABLE = "<!-- the activation table -->"  # where config_reference puts it in docs/config.md


def config_reference() -> str:
    """The config reference (docs/config.md), shipped with the package so `--help-config` works anywhere.

    The table of activations is filled in from their registry, so it lists exactly what the config accepts.
    """
    package = Path(__file__).resolve().parent
    for path in (package / "docs" / "config.md", package.parent / "docs" / "config.md"):  # a wheel; a checkout
        if path.is_file():
            return path.read_text(encoding="utf-8").replace(_ACTIVATION_TABLE, activation_table())
    raise ConfigError("the config reference (docs/config.md) is not installed")


def activation_table() -> str:
    """The choices of model.activation as a Markdown table: name, formula, initial weights."""
    rows = [
        f"| `{name}` | {ACTIVATIONS[name].formula} | {'He' if ACTIVATIONS[name].init == 'he' else 'Glorot'} |"
        for name in HIDDEN_ACTIVATIONS
    ]
    return "\n".join(["| activation | f(x) | initial weights |", "| --- | --- | --- |", *rows])


def config_yaml(cfg: "RunConfig") -> str:
    """The resolved config as YAML text: what a run directory's config.yaml holds."""
    header = "# resolved by micronet: defaults and overrides applied; rerun with it to reproduce\n"
    return header + yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=None)


def shipped_configs() -> dict[str, Path]:
    """The configs that ship with micronet, by name (moons, iris, ...), sorted."""
    where = shipped_config_dir()
    return {} if where is None else {p.stem: p for p in sorted(where.glob("*.yaml"))}


def find_config(name_or_path: str | Path) -> Path:
    """A config file: `name_or_path` when it exists, else the shipped config of that name.

    A path that exists always wins, so a file of your own called moons.yaml
    beats the shipped one. `moons` and `moons.yaml` both name the shipped one.
    """
    path = Path(name_or_path)
    shipped = shipped_configs()
    stem = path.name[:-5] if path.name.endswith(".yaml") else path.name
    is_name = path.parent == Path(".") and stem in shipped
    if path.exists() and not (path.is_dir() and is_name):  # a directory called moons is no config
        return path
    if is_name:
        return shipped[stem]
    hint = ""
    close = difflib.get_close_matches(stem, list(shipped), n=1)
    if close:
        hint = f"; did you mean the shipped config {close[0]!r}?"
    elif shipped:
        hint = f"; shipped configs: {', '.join(shipped)}"
    raise ConfigError(f"config file not found: {str(name_or_path)!r}{hint}")


def _data_path_from(mapping: Mapping, base: Path) -> Mapping:
    """The mapping with a relative dataset.path found next to the config file.

    A path in a file is looked up beside that file first (so a config and its
    data travel together, and a shipped config finds its shipped data), then
    from the current directory as before; the one found is written in full.
    """
    dataset = mapping.get("dataset")
    path = dataset.get("path") if isinstance(dataset, Mapping) else None
    if not isinstance(path, str) or not path.strip() or Path(path).is_absolute():
        return mapping
    beside = base / path
    if beside.exists():
        return {**mapping, "dataset": {**dataset, "path": str(beside.resolve())}}  # type: ignore[dict-item]  # a Mapping (path is set)
    return mapping


MAX_CONFIG_BYTES = 2**20  # a config is a screenful; anything over 1 MB is refused unread


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> RunConfig:
    """Read a YAML config file (or a shipped config by name), apply `key=value` overrides, and validate.

    Only plain YAML data is accepted: tags that would build Python objects
    are refused before anything is constructed. The file must be a regular
    file of at most MAX_CONFIG_BYTES, and the run it describes must fit
    micronet.budget's limits.
    """
    from micronet.budget import config_problem
    from micronet.files import read_regular_bytes

    p = find_config(path)
    if not p.exists():
        raise ConfigError(f"config file not found: {str(path)!r}")
    if p.is_dir():
        raise ConfigError(f"config path {str(path)!r} is a directory, not a YAML file")
    try:  # a FIFO, /dev/zero or a huge file is refused before it is read or parsed
        text = read_regular_bytes(p, limit=MAX_CONFIG_BYTES).decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config {str(path)!r}: {e}") from None
    except ValueError as e:
        raise ConfigError(f"config {e}") from None
    mapping = _parse_yaml(text, str(path))
    if not isinstance(mapping, Mapping):
        what = "empty" if mapping is None else f"a {type(mapping).__name__}, not a mapping"
        raise ConfigError(f"config {str(path)!r} is {what}; expected a YAML mapping such as 'dataset: {{name: moons}}'")
    mapping = _data_path_from(mapping, p.resolve().parent)
    config = parse_config(apply_overrides(mapping, overrides), name=_default_name(p))
    problem = config_problem(config)  # a model or data set too big for this machine is refused now
    if problem is not None:
        raise ConfigError(problem)
    return config
