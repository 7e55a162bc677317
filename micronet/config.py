"""Loading a run's config: a YAML file or a shipped config by name, overrides applied, validated and budgeted.

A run's settings come from three layers, last wins: the defaults (see
micronet.schema), the YAML file, then `dotted.key=value` overrides
(micronet.overrides). `parse_config` checks the result once. The schema's,
the overrides' and the reference's public names are re-exported here, so
`from micronet.config import ...` reaches all of them.
"""

import difflib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

from micronet.budget import config_problem
from micronet.files import read_regular_bytes
from micronet.overrides import apply_overrides, parse_yaml
from micronet.reference import activation_table, config_reference, reference_tables, render_reference
from micronet.schema import (
    BACKENDS,
    HIDDEN_ACTIVATIONS,
    ConfigError,
    DatasetConfig,
    EarlyStoppingConfig,
    LossConfig,
    ModelConfig,
    OptimizerConfig,
    RunConfig,
    ScheduleConfig,
    TrainingConfig,
    config_to_dict,
    parse_config,
)

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
    "shipped_config_dir",
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
    "MAX_CONFIG_BYTES",
]


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
    mapping = parse_yaml(text, str(path))
    if not isinstance(mapping, Mapping):
        what = "empty" if mapping is None else f"a {type(mapping).__name__}, not a mapping"
        raise ConfigError(f"config {str(path)!r} is {what}; expected a YAML mapping such as 'dataset: {{name: moons}}'")
    mapping = _data_path_from(mapping, p.resolve().parent)
    config = parse_config(apply_overrides(mapping, overrides), name=_default_name(p))
    problem = config_problem(config)  # a model or data set too big for this machine is refused now
    if problem is not None:
        raise ConfigError(problem)
    return config
