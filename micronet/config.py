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
import numbers
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from micronet.activations import ACTIVATIONS
from micronet.data import DATASETS, TASKS
from micronet.defaults import BACKENDS, DIFFERENCES, SETTINGS, default, hidden_activations
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
    "reference_tables",
    "render_reference",
    "parse_config",
    "apply_overrides",
    "config_to_dict",
    "HIDDEN_ACTIVATIONS",
    "BACKENDS",
]


class ConfigError(ValueError):
    """A config the trainer cannot run; the message names the key and the fix."""


HIDDEN_ACTIVATIONS = tuple(hidden_activations())
INTERVALS = ("epoch", "step")


# ----- the schema -------------------------------------------------------------
# A section chosen by name (dataset, optimizer, schedule, loss) keeps the chosen
# entry's options in `values`, filled in; they are declared once, in the entry
# (micronet.data.DATASETS, micronet.optim, micronet.losses), and read back as
# attributes: cfg.optimizer.momentum (None when the chosen entry has no such option).


class _Chosen:
    """The options of a section's chosen entry, read as attributes."""

    values: dict[str, Any]

    @staticmethod
    def _entries() -> Mapping[str, Mapping[str, Option]]:
        """Every entry's options, by entry name."""
        return {}

    @classmethod
    def option_names(cls) -> list[str]:
        """Every option some entry takes, in registry order: the section's option keys."""
        names: dict[str, None] = {}
        for options in cls._entries().values():
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
    def _entries() -> Mapping[str, Mapping[str, Option]]:
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
    def _entries() -> Mapping[str, Mapping[str, Option]]:
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
    def _entries() -> Mapping[str, Mapping[str, Option]]:
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
    def _entries() -> Mapping[str, Mapping[str, Option]]:
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


_SECTIONS: dict[str, type] = {
    "dataset": DatasetConfig,
    "model": ModelConfig,
    "optimizer": OptimizerConfig,
    "optimizer.schedule": ScheduleConfig,
    "training": TrainingConfig,
    "training.early_stopping": EarlyStoppingConfig,
    "loss": LossConfig,
}


def _keys(cls: type) -> list[str]:
    """A section's keys: its fields, with a chosen entry's `values` spelled out as the option names."""
    keys: list[str] = []
    for f in fields(cls):
        keys.extend(cls.option_names() if f.name == "values" and issubclass(cls, _Chosen) else [f.name])
    return keys


# ----- value checks -----------------------------------------------------------
# The rules are micronet.options'; these name the config key and raise ConfigError.

_show = show  # a short repr for messages, bounded for huge or deeply shared values
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
                          f"got {_show(value)}")
    return value


_FRACTION = Real(0.0, 1.0, low_open=True, high_open=True)
_NON_NEGATIVE = Real(0.0)


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
            f"optimizer.schedule must be a mapping like {{name: cosine}}, got {type(raw).__name__} {_show(raw)}"
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
    if not isinstance(_expand_short_form(key, raw), Mapping):
        raise ConfigError(
            f"{key} must be null, true, a patience (int >= 1) or a mapping like {{patience: 10}}, got {_show(raw)}"
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
        raise ConfigError(f"config must be a mapping of settings, got {type(mapping).__name__} {_show(mapping)}")
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


def config_reference() -> str:
    """The config reference (docs/config.md, its option tables made from the specs), shipped with the
    package so `--help-config` works anywhere."""
    package = Path(__file__).resolve().parent
    for path in (package / "docs" / "config.md", package.parent / "docs" / "config.md"):  # a wheel; a checkout
        if path.is_file():
            return render_reference(path.read_text(encoding="utf-8"))
    raise ConfigError("the config reference (docs/config.md) is not installed")


# ----- the reference's tables, made from the specs ------------------------------------


def _shown(value: Any) -> str:
    """A default as a config would write it, in backticks."""
    def plain(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(plain(x) for x in v) + "]"
        return str(v)

    return f"`{plain(value)}`"


def _grouped(by_entry: dict[str, str], everyone: int) -> str:
    """`a` (x, y); `b` (z): entries grouped by what they show; one group for all needs no names."""
    groups: dict[str, list[str]] = {}
    for entry, text in by_entry.items():
        groups.setdefault(text, []).append(entry)
    if len(groups) == 1 and len(by_entry) == everyone:
        return next(iter(groups))
    return "; ".join(f"{text} ({', '.join(entries)})" if text else "" for text, entries in groups.items())


def _option_rows(entries: Mapping[str, Mapping[str, Option]], key_prefix: str) -> list[str]:
    """One row per option name: type, which entries take it, default and allowed values, help."""
    rows = []
    names: dict[str, None] = {}
    for options in entries.values():
        names.update(dict.fromkeys(options))
    for key in names:
        takers = {entry: options[key] for entry, options in entries.items() if key in options}
        first = next(iter(takers.values()))
        applies = "all" if len(takers) == len(entries) else ", ".join(f"`{e}`" for e in takers)
        defaults = _grouped({e: ("required" if o.required else o.unset if o.default is None else _shown(o.default))
                             for e, o in takers.items()}, len(takers))
        allowed = _grouped({e: o.rule.allowed for e, o in takers.items()}, len(takers))
        rows.append(f"| `{key_prefix}{key}` | {first.rule.kind} | {applies} | {defaults} | {allowed} | {first.help} |")
    return rows


_OPTION_HEADER = ["| key | type | applies to | default | allowed | what it does |",
                  "| --- | --- | --- | --- | --- | --- |"]


def reference_tables() -> dict[str, str]:
    """docs/config.md's generated tables by name: the defaults, the differences between doors, and the
    options of the datasets, optimizers, schedules and losses, each from its one declaration."""
    rows = ["| setting | config key | `micronet.fit` | estimators | default | allowed |",
            "| --- | --- | --- | --- | --- | --- |"]
    for setting in SETTINGS.values():
        if setting.by_task:
            shown = "; ".join(f"{_shown(v)} ({task})" for task, v in setting.by_task.items())
        else:
            shown = _shown(setting.option.default)
        fit = f"`{setting.fit}=`" if setting.fit else ""
        estimator = f"`{setting.estimator}`" if setting.estimator else ""
        allowed = setting.option.rule.allowed if isinstance(setting.option.rule, (Choice, Integer, Flag, Real)) \
            else f"see `{setting.config.split('.')[0]}`" if setting.by_task else setting.option.rule.allowed
        rows.append(f"| {setting.option.help} | `{setting.config}` | {fit} | {estimator} | {shown} | {allowed} |")
    optimizers = {name: cls.options for name, cls in OPTIMIZERS.items()}
    for key in OptimizerConfig.option_names():
        takers = {name: options[key] for name, options in optimizers.items() if key in options}
        shown = _grouped({name: _shown(o.default) for name, o in takers.items()}, len(optimizers))
        first = next(iter(takers.values()))
        rows.append(f"| {first.help} | `optimizer.{key}` | `{key}=` | `{key}` | {shown} | {first.rule.allowed} |")
    differences = ["| door | setting | its default | why |", "| --- | --- | --- | --- |"]
    differences += [f"| {d.door} | `{d.setting}` | {d.shown} | {d.why} |" for d in DIFFERENCES]
    schedules = ["| name | learning rate at t |", "| --- | --- |"]
    for name, cls in SCHEDULES.items():
        formula = (cls.__doc__ or "").strip().splitlines()[0].removeprefix("lr(t) = ").rstrip(".")
        schedules.append(f"| `{name}` | {formula} |")
    losses = {f"{name}": loss_options(name, task) for task, names in TASKS_LOSSES.items() for name in names
              if loss_options(name, task)}
    return {
        "defaults": "\n".join(rows),
        "differences": "\n".join(differences),
        "activations": activation_table(),
        "dataset options": "\n".join([*_OPTION_HEADER, *_option_rows(DatasetConfig._entries(), "")]),
        "optimizer options": "\n".join([*_OPTION_HEADER, *_option_rows(optimizers, "")]),
        "schedules": "\n".join(schedules),
        "schedule options": "\n".join([*_OPTION_HEADER, *_option_rows(ScheduleConfig._entries(), "")]),
        "loss options": "\n".join([*_OPTION_HEADER, *_option_rows(losses, "")]),
    }


_GENERATED = re.compile(r"(<!-- generated: ([^>]+?) -->\n)(.*?)(<!-- end -->)", re.S)


def render_reference(text: str) -> str:
    """`text` with each `<!-- generated: NAME -->` ... `<!-- end -->` block holding `reference_tables()[NAME]`."""
    tables = reference_tables()
    return _GENERATED.sub(lambda m: m.group(1) + tables[m.group(2)] + "\n" + m.group(4), text)


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
