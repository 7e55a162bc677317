"""YAML safety and the override syntax: plain data only, no duplicate keys, and `dotted.key=value` overrides.

Every failure is a `ConfigError` in one line, with the line and column of
the YAML it comes from.
"""

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from micronet.options import show
from micronet.schema import SECTIONS, ConfigError, RunConfig, expand_short_form, section_keys

__all__ = ["apply_overrides", "parse_yaml"]


def _refuse_duplicatesection_keys(root: Any) -> None:
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
                        None, None, f"duplicate key {show(key_node.value)}", key_node.start_mark
                    )
                keys.add(key)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def parse_yaml(text: str, source: str) -> Any:
    """YAML text as plain data, every failure as a ConfigError with line and column."""
    try:
        _refuse_duplicatesection_keys(yaml.compose(text, Loader=yaml.SafeLoader))
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


_TOP_KEYS = section_keys(RunConfig)


def apply_overrides(mapping: Any, overrides: Iterable[str]) -> Any:
    """`mapping` with each `dotted.key=value` applied, without changing the original.

    The value is YAML (`0.05`, `[32, 32]`, `{name: cosine}`, `null`). Keys must
    be in the schema; a whole section given as a mapping replaces it.
    """
    if isinstance(overrides, str):
        raise ConfigError(f"overrides must be a list of KEY=VALUE strings, got the string {show(overrides)}")
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ConfigError(f"malformed override {show(item)}: expected KEY=VALUE, e.g. optimizer.lr=0.05")
        dotted, text = item.split("=", 1)
        dotted = dotted.strip()
        parts = dotted.split(".")
        if not dotted or "" in parts:
            raise ConfigError(f"malformed override {show(item)}: the key must be a dotted path like optimizer.lr")
        if not text.strip():
            raise ConfigError(f"malformed override {show(item)}: no value (write {dotted}=null to unset)")
        _check_path(item, parts)
        value = parse_yaml(text, f"override {item!r}")
        mapping = _set(mapping, parts, value, item, ())
    return mapping


def _check_path(item: str, parts: list[str]) -> None:
    for i, part in enumerate(parts):
        parent = ".".join(parts[:i])
        valid = _TOP_KEYS if i == 0 else section_keys(SECTIONS[parent]) if parent in SECTIONS else None
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
        raise ConfigError(f"override {item!r}: cannot set {parts[0]!r} inside {type(node).__name__} {show(node)}")
    node = dict(node)
    if len(parts) == 1:
        node[parts[0]] = value
    else:
        path = (*above, parts[0])
        child = expand_short_form(".".join(path), node.get(parts[0]))
        if child is not None and not isinstance(child, Mapping):
            raise ConfigError(
                f"override {item!r}: {parts[0]!r} is {type(child).__name__} {show(child)} in the config, not a mapping"
            )
        node[parts[0]] = _set(child, parts[1:], value, item, path)
    return node
