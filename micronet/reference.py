"""The config reference: docs/config.md with its tables (defaults, options, activations) made from the specs."""

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from micronet.activations import ACTIVATIONS
from micronet.defaults import DIFFERENCES, SETTINGS
from micronet.losses import loss_options
from micronet.optim import OPTIMIZERS, SCHEDULES
from micronet.options import Choice, Flag, Integer, Option, Real
from micronet.schema import (
    HIDDEN_ACTIVATIONS,
    TASKS_LOSSES,
    ConfigError,
    DatasetConfig,
    OptimizerConfig,
    ScheduleConfig,
)

__all__ = ["activation_table", "config_reference", "reference_tables", "render_reference"]


def config_reference() -> str:
    """The config reference (docs/config.md, its option tables made from the specs), shipped with the
    package so `--help-config` works anywhere."""
    package = Path(__file__).resolve().parent
    for path in (package / "docs" / "config.md", package.parent / "docs" / "config.md"):  # a wheel; a checkout
        if path.is_file():
            return render_reference(path.read_text(encoding="utf-8"))
    raise ConfigError("the config reference (docs/config.md) is not installed")


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
        "dataset options": "\n".join([*_OPTION_HEADER, *_option_rows(DatasetConfig.option_entries(), "")]),
        "optimizer options": "\n".join([*_OPTION_HEADER, *_option_rows(optimizers, "")]),
        "schedules": "\n".join(schedules),
        "schedule options": "\n".join([*_OPTION_HEADER, *_option_rows(ScheduleConfig.option_entries(), "")]),
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
