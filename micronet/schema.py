"""The run schema: typed dataclasses for every section, and `parse_config`, which checks a mapping into them.

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
import numbers
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from micronet.data import DATASETS, TASKS
from micronet.defaults import BACKENDS, SETTINGS, default, hidden_activations
from micronet.losses import CLASSIFICATION_LOSSES, REGRESSION_LOSSES, loss_options
from micronet.optim import OPTIMIZERS, SCHEDULES
from micronet.options import (
    Choice,
    Flag,
    Integer,
    Option,
    OptionError,
    Real,
    RealPair,
    Rule,
    check_options,
    show,
)
from micronet.tasks import TASKS as TASK_SPECS

__all__ = [
    "BACKENDS",
    "HIDDEN_ACTIVATIONS",
    "INTERVALS",
    "SECTIONS",
    "TASKS_LOSSES",
    "ConfigError",
    "DatasetConfig",
    "EarlyStoppingConfig",
    "LossConfig",
    "ModelConfig",
    "OptimizerConfig",
    "RunConfig",
    "ScheduleConfig",
    "TrainingConfig",
    "config_to_dict",
    "expand_short_form",
    "parse_config",
    "section_keys",
]


class ConfigError(ValueError):
    """A config the trainer cannot run; the message names the key and the fix."""


HIDDEN_ACTIVATIONS = tuple(hidden_activations())
INTERVALS = ("epoch", "step")


# A section chosen by name (dataset, optimizer, schedule, loss) keeps the chosen
# entry's options in `values`, filled in; they are declared once, in the entry
# (micronet.data.DATASETS, micronet.optim, micronet.losses), and read back as
# attributes: cfg.optimizer.momentum (None when the chosen entry has no such option).


class _Chosen:
    """The options of a section's chosen entry, read as attributes."""

    values: dict[str, Any]

    @staticmethod
    def option_entries() -> Mapping[str, Mapping[str, Option]]:
        """Every entry's options, by entry name."""
        return {}

    @classmethod
    def option_names(cls) -> list[str]:
        """Every option some entry takes, in registry order: the section's option keys."""
        names: dict[str, None] = {}
        for options in cls.option_entries().values():
            names.update(dict.fromkeys(options))
        return list(names)

    def __getattr__(self, key: str) -> Any:
        # Only called when normal lookup fails: an option, or a real AttributeError.
        if not key.startswith("_") and key != "values":
            values = self.__dict__.get("values")
            if values is not None and key in values:
                return values[key]
            if key in self.option_names():
                return None
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {key!r}")


@dataclass
class DatasetConfig(_Chosen):
    name: str = "moons"  # a key of micronet.data.DATASETS (regression's default: sine)
    # That dataset's options (DATASETS[name].options), every one filled in.
    values: dict[str, Any] = field(default_factory=lambda: DATASETS["moons"].defaults())
    test_size: float = 0.25  # held-out fraction, 0 < x < 1, stratified for classification
    standardize: bool = True  # scale features with statistics of the training split
    standardize_target: bool | None = None  # regression only [true]: scale the target too; predictions unscaled

    @staticmethod
    def option_entries() -> Mapping[str, Mapping[str, Option]]:
        return {name: spec.options for name, spec in DATASETS.items()}

    def options(self) -> dict:
        """The options the chosen dataset takes, by name (for `data.load_dataset`)."""
        return dict(self.values)


@dataclass
class ModelConfig:
    hidden: list[int] = field(default_factory=lambda: default("hidden"))  # hidden layer widths; [] is linear
    activation: str = SETTINGS["activation"].option.default  # hidden-layer activation, one of HIDDEN_ACTIVATIONS


@dataclass
class ScheduleConfig(_Chosen):
    name: str = "constant"  # a key of micronet.optim.SCHEDULES
    interval: str = "epoch"  # advance the schedule once per "epoch" or per optimizer "step"
    # That schedule's options (SCHEDULES[name].options); a None run length is for the trainer to fill.
    values: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def option_entries() -> Mapping[str, Mapping[str, Option]]:
        return {name: cls.options for name, cls in SCHEDULES.items()}

    def params(self) -> dict:
        """Keyword arguments for `SCHEDULES[name]` (a None T_max/total_iters is for the trainer to fill)."""
        return dict(self.values)


@dataclass
class OptimizerConfig(_Chosen):
    name: str = "sgd"  # a key of micronet.optim.OPTIMIZERS
    # That optimizer's options (OPTIMIZERS[name].options: lr, weight_decay and its own), every one filled in.
    values: dict[str, Any] = field(default_factory=lambda: {k: o.default for k, o in OPTIMIZERS["sgd"].options.items()})
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)  # learning-rate schedule

    @staticmethod
    def option_entries() -> Mapping[str, Mapping[str, Option]]:
        return {name: cls.options for name, cls in OPTIMIZERS.items()}

    def params(self) -> dict:
        """Keyword arguments for `OPTIMIZERS[name]` besides the parameters."""
        return dict(self.values)


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
    epochs: int = SETTINGS["epochs"].option.default  # passes over the training split, >= 1
    batch_size: int | str = SETTINGS["batch_size"].option.default  # samples per step, >= 1, or "full"
    shuffle: bool = SETTINGS["shuffle"].option.default  # reshuffle the training split every epoch
    backend: str = SETTINGS["backend"].option.default  # "compiled" batch executor or "eager" Value graphs
    validation_split: float = SETTINGS["validation_split"].option.default  # held out of training, 0 <= x < 1
    early_stopping: EarlyStoppingConfig | None = None  # null: train every epoch
    animate: bool = False  # also write training.gif: the model learning, at most 120 frames
    checkpoint_seconds: float = 1.0  # write model.json at most this often (and always at the end), >= 0


@dataclass
class LossConfig(_Chosen):
    name: str = "cross_entropy"  # a key of micronet.losses.CLASSIFICATION_LOSSES or REGRESSION_LOSSES
    values: dict[str, Any] = field(default_factory=dict)  # that loss's options (losses.loss_options), filled in

    @staticmethod
    def option_entries() -> Mapping[str, Mapping[str, Option]]:
        return {f"{task}:{name}": loss_options(name, task) for task, losses in TASKS_LOSSES.items() for name in losses}

    def params(self) -> dict:
        """Keyword arguments for `micronet.losses.get_loss` besides name and task."""
        return dict(self.values)


TASKS_LOSSES = {"classification": CLASSIFICATION_LOSSES, "regression": REGRESSION_LOSSES}


@dataclass
class RunConfig:
    name: str = "run"  # run name, used in the run directory's name: letters, digits, . _ -
    seed: int = SETTINGS["seed"].option.default  # seeds data, split, initialisation and shuffling; < 2**32
    task: str = "classification"  # or "regression"; unset: from the loss and the dataset
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)  # or just its name: `loss: mse`
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)


SECTIONS: dict[str, type] = {
    "dataset": DatasetConfig,
    "model": ModelConfig,
    "optimizer": OptimizerConfig,
    "optimizer.schedule": ScheduleConfig,
    "training": TrainingConfig,
    "training.early_stopping": EarlyStoppingConfig,
    "loss": LossConfig,
}


def section_keys(cls: type) -> list[str]:
    """A section's keys: its fields, with a chosen entry's `values` spelled out as the option names."""
    keys: list[str] = []
    for f in fields(cls):
        keys.extend(cls.option_names() if f.name == "values" and issubclass(cls, _Chosen) else [f.name])
    return keys


def expand_short_form(section: str, value: Any) -> Any:
    """A section's short form as its mapping: a name, or early stopping's true or patience."""
    cls = SECTIONS.get(section)
    if isinstance(value, str) and cls is not None and "name" in section_keys(cls):
        return {"name": value}
    if section == "training.early_stopping":
        if value is True:
            return {}
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return {"patience": value}
    return value


# The rules are micronet.options'; these name the config key and raise ConfigError.

_NUMBER = re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")


def _yaml_number(rule: Rule, value: Any) -> Any:
    """A numeric string as its number where the rule wants one: YAML reads `1e-3` as a string."""
    if isinstance(rule, RealPair) and isinstance(value, (list, tuple)):
        return [_yaml_number(rule.each, v) for v in value]
    if isinstance(rule, Real) and isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    return value


def _check(rule: Rule, key: str, value: Any) -> Any:
    """`value` checked by `rule` under the config key `key`, or ConfigError."""
    try:
        return rule(_yaml_number(rule, value), key)
    except OptionError as e:
        raise ConfigError(str(e)) from None


def _setting(key: str, raw: Mapping, task: str = "classification") -> Any:
    """A setting of the defaults table: the value given under its config key, checked, or its default."""
    setting = SETTINGS[key]
    given = raw.get(setting.config.rsplit(".", 1)[-1])
    value = _check(setting.option.rule, setting.config, given) if given is not None else default(key, task)
    return list(value) if isinstance(value, tuple) else value


def _name(key: str, value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", value) or set(value) == {"."}:
        raise ConfigError(f"{key} must be 1-100 letters, digits, '.', '_' or '-' (it names a directory), "
                          f"got {show(value)}")
    return value


_FRACTION = Real(0.0, 1.0, low_open=True, high_open=True)
_NON_NEGATIVE = Real(0.0)


def _section(key: str, value: Any, cls) -> dict:
    """`value` as a dict with known keys only; None is an empty section, a short form its mapping."""
    if value is None:
        return {}
    valid = section_keys(cls)
    value = expand_short_form(key, value)
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key} must be a mapping, got {type(value).__name__} {show(value)}")
    prefix = "" if cls is RunConfig else key + "."
    for k in value:
        if k not in valid:
            close = difflib.get_close_matches(str(k), valid, n=1)
            hint = f"; did you mean {prefix + close[0]!r}?" if close else ""
            raise ConfigError(f"unknown key {prefix + str(k)!r}{hint} (valid: {', '.join(valid)})")
    return {k: v for k, v in value.items() if v is not None}


def _options(prefix: str, raw: dict, cls, owner: str, options: Mapping[str, Option],
             together: Callable[[Mapping[str, Any], Callable[[str], str]], None] | None = None) -> dict:
    """The chosen entry's options: checked when given, else their defaults; another entry's are refused."""
    given = {key: _yaml_number(options[key].rule, raw[key]) if key in options else raw[key]
             for key in cls.option_names() if key in raw}

    def named(key: str) -> str:
        return f"{prefix}.{key}"

    try:
        values = check_options(options, given, named, owner)
        if together is not None:
            together(values, named)
    except OptionError as e:
        raise ConfigError(str(e)) from None
    return values


def _dataset(raw: Any, task: str) -> DatasetConfig:
    raw = _section("dataset", raw, DatasetConfig)
    name = _check(Choice(DATASETS), "dataset.name", raw.get("name", default("dataset", task)))
    spec = DATASETS[name]
    if spec.task is not None and spec.task != task:
        fitting = ", ".join(n for n, s in DATASETS.items() if s.task in (task, None))
        raise ConfigError(
            f"dataset {name!r} is a {spec.task} dataset, but the task is {task} (its datasets: {fitting})"
        )
    values = _options("dataset", raw, DatasetConfig, f"dataset {name!r}", spec.options, spec.check)
    test_size = _check(_FRACTION, "dataset.test_size", raw.get("test_size", DatasetConfig.test_size))
    standardize = _check(Flag(), "dataset.standardize", raw.get("standardize", DatasetConfig.standardize))
    standardize_target = None
    if task == "regression":
        standardize_target = _check(Flag(), "dataset.standardize_target", raw.get("standardize_target", True))
    elif "standardize_target" in raw:
        raise ConfigError("dataset.standardize_target applies to task regression only (a class label is not scaled)")
    return DatasetConfig(
        name=name, values=values, test_size=test_size, standardize=standardize, standardize_target=standardize_target
    )


def _model(raw: Any) -> ModelConfig:
    raw = _section("model", raw, ModelConfig)
    return ModelConfig(hidden=_setting("hidden", raw), activation=_setting("activation", raw))


def _schedule(raw: Any) -> ScheduleConfig:
    if raw is not None and not isinstance(raw, (Mapping, str)):
        raise ConfigError(
            f"optimizer.schedule must be a mapping like {{name: cosine}}, got {type(raw).__name__} {show(raw)}"
        )
    raw = _section("optimizer.schedule", raw, ScheduleConfig)
    name = _check(Choice(SCHEDULES), "optimizer.schedule.name", raw.get("name", ScheduleConfig.name))
    values = _options("optimizer.schedule", raw, ScheduleConfig, f"schedule {name!r}", SCHEDULES[name].options)
    interval = _check(Choice(INTERVALS), "optimizer.schedule.interval", raw.get("interval", ScheduleConfig.interval))
    return ScheduleConfig(name=name, interval=interval, values=values)


def _optimizer(raw: Any, task: str) -> OptimizerConfig:
    raw = _section("optimizer", raw, OptimizerConfig)
    name = _setting("optimizer", {"name": raw.get("name")}, task)
    cls = OPTIMIZERS[name]
    values = _options("optimizer", raw, OptimizerConfig, f"optimizer {name!r}", cls.options, cls.check_together)
    return OptimizerConfig(name=name, values=values, schedule=_schedule(raw.get("schedule")))


def _early_stopping(raw: Any, task: str, validating: bool) -> EarlyStoppingConfig | None:
    """null or false: off; true: the defaults; an int: the patience; else a mapping of options."""
    key = "training.early_stopping"
    if raw is None or raw is False:
        return None
    if not isinstance(expand_short_form(key, raw), Mapping):
        raise ConfigError(
            f"{key} must be null, true, a patience (int >= 1) or a mapping like {{patience: 10}}, got {show(raw)}"
        )
    raw = _section(key, raw, EarlyStoppingConfig)
    monitor = _check(Choice(TASK_SPECS[task].monitors()), f"{key}.monitor",
                     raw.get("monitor", "val_loss" if validating else "loss"))
    if monitor.startswith("val_") and not validating:
        raise ConfigError(f"{key}.monitor {monitor!r} needs training.validation_split > 0")
    return EarlyStoppingConfig(
        patience=_check(Integer(1), f"{key}.patience", raw.get("patience", EarlyStoppingConfig.patience)),
        min_delta=_check(_NON_NEGATIVE, f"{key}.min_delta", raw.get("min_delta", EarlyStoppingConfig.min_delta)),
        restore_best=_check(Flag(), f"{key}.restore_best", raw.get("restore_best", EarlyStoppingConfig.restore_best)),
        monitor=monitor,
    )


def _training(raw: Any, task: str) -> TrainingConfig:
    raw = _section("training", raw, TrainingConfig)
    validation_split = _setting("validation_split", raw)
    return TrainingConfig(
        epochs=_setting("epochs", raw),
        batch_size=_setting("batch_size", raw),
        shuffle=_setting("shuffle", raw),
        backend=_setting("backend", raw),
        validation_split=validation_split,
        early_stopping=_early_stopping(raw.get("early_stopping"), task, validation_split > 0),
        animate=_check(Flag(), "training.animate", raw.get("animate", TrainingConfig.animate)),
        checkpoint_seconds=_check(_NON_NEGATIVE, "training.checkpoint_seconds",
                                  raw.get("checkpoint_seconds", TrainingConfig.checkpoint_seconds)),
    )


def _loss_name(raw: Any) -> str | None:
    """The loss's name as given (before any checks), to infer the task from."""
    name = raw.get("name") if isinstance(raw, Mapping) else raw
    return name if isinstance(name, str) else None


def _task(raw: Mapping) -> str:
    """The task as set, else regression for a regression loss or dataset, else classification."""
    if "task" in raw:
        return _check(Choice(TASKS), "task", raw["task"])
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
    losses = TASKS_LOSSES[task]
    given = raw.get("name", default("loss", task))
    other = REGRESSION_LOSSES if task == "classification" else CLASSIFICATION_LOSSES
    if isinstance(given, str) and given not in losses and given in other:
        raise ConfigError(
            f"loss {given!r} is for {'regression' if task == 'classification' else 'classification'}, "
            f"but the task is {task} (its losses: {', '.join(losses)})"
        )
    name = _check(Choice(losses), "loss", given)
    values = _options("loss", raw, LossConfig, f"loss {name!r}", loss_options(name, task))
    return LossConfig(name=name, values=values)


def parse_config(mapping: Any, name: str | None = None) -> RunConfig:
    """Validate a plain mapping (as YAML gives it) into a `RunConfig`.

    `name` is the run name used when the mapping has none ("run" if None).
    Defaults are filled in, so the result is fully resolved.
    """
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"config must be a mapping of settings, got {type(mapping).__name__} {show(mapping)}")
    raw = _section("config", mapping, RunConfig)
    task = _task(raw)
    return RunConfig(
        name=_name("name", raw.get("name", name if name is not None else "run")),
        seed=_setting("seed", raw),
        task=task,
        dataset=_dataset(raw.get("dataset"), task),
        model=_model(raw.get("model")),
        loss=_loss(raw.get("loss"), task),
        optimizer=_optimizer(raw.get("optimizer"), task),
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
