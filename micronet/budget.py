"""Resource budgets: refuse a run that cannot fit before anything is allocated.

A scalar-autograd model holds a Python object per parameter, and a typo such
as `model.hidden=[100000000]` or `dataset.n_samples=10**9` would otherwise
run for minutes, eat the machine's memory and die with a MemoryError. So the
size of the model and the memory a run needs are estimated from the
validated config alone, and a run over either budget is a config error:

- at most `MAX_PARAMETERS` parameters;
- at most `MEMORY_FRACTION` of the memory available when the run starts,
  estimated as `BYTES_PER_PARAMETER` per parameter (Values, optimizer state,
  checkpoint text) plus `BYTES_PER_NUMBER` per number the data and the
  layers' activations hold for a whole split (arrays, their copies, and
  the lists the eager engine reads);
- a CSV file at most `MEMORY_FRACTION` of that memory once multiplied by
  `BYTES_PER_CSV_BYTE` (parsing keeps a Python string and float per cell).

`config_problem` runs on the config before any data is loaded; `data_problem`
on the loaded data's exact shape before the model is built. Each returns
the reason in one line (or None), and the caller raises it as a config error.
"""

from __future__ import annotations

import os
import resource
from typing import TYPE_CHECKING

from micronet.data import DATASETS
from micronet.files import regular_file_size

if TYPE_CHECKING:  # for the annotations only: the schema is checked before the budget
    from micronet.schema import DatasetConfig, RunConfig

__all__ = [
    "BYTES_PER_CSV_BYTE",
    "BYTES_PER_NUMBER",
    "BYTES_PER_PARAMETER",
    "MAX_PARAMETERS",
    "MEMORY_FRACTION",
    "available_memory",
    "config_problem",
    "data_problem",
    "count_parameters",
    "memory_problem",
    "parameters_problem",
]

MAX_PARAMETERS = 10**7
MEMORY_FRACTION = 0.5
BYTES_PER_PARAMETER = 400  # measured: about 350 at the peak of building and checkpointing an MLP
BYTES_PER_NUMBER = 40
BYTES_PER_CSV_BYTE = 50


def count_parameters(n_features: int, hidden: list[int], n_outputs: int) -> int:
    """Weights and biases of an MLP with these layer widths."""
    sizes = [n_features, *hidden, n_outputs]
    return sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))


def available_memory() -> int | None:
    """Bytes this process can still allocate: the least of free RAM, its cgroup's and its rlimit's room."""
    found = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError, AttributeError):
            pass
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit != "max":
            with open("/sys/fs/cgroup/memory.current") as f:
                found.append(int(limit) - int(f.read().strip()))
    except (OSError, ValueError):
        pass
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        found.append(soft)
    return max(min(found), 0) if found else None


def _shape(dataset: DatasetConfig, task: str) -> tuple[int, int, int] | None:
    """(n_samples, n_features, n_outputs) of a config's dataset, from its spec; None when only the data
    can tell (csv)."""
    shape = DATASETS[dataset.name].shape(dataset.options())  # the config has checked the task against it
    return None if shape is None else tuple(shape)


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _problem(n_samples: int, n_features: int, n_outputs: int, hidden: list[int]) -> str | None:
    """Why a model of this size on this much data does not fit, or None."""
    parameters = count_parameters(n_features, hidden, n_outputs)
    if parameters > MAX_PARAMETERS:
        shown = hidden if len(hidden) <= 4 else [*hidden[:4], "..."]
        return (
            f"model.hidden={shown} with {n_features:,} input features and {n_outputs:,} outputs has "
            f"{parameters:,} parameters, over micronet's budget of {MAX_PARAMETERS:,}; use fewer or narrower layers"
        )
    needed = BYTES_PER_PARAMETER * parameters + BYTES_PER_NUMBER * n_samples * (n_features + sum(hidden) + n_outputs)
    available = available_memory()
    if available is not None and needed > MEMORY_FRACTION * available:
        return (
            f"this run needs about {_size(needed)} of memory ({n_samples:,} samples of {n_features:,} features, "
            f"{parameters:,} parameters), over {MEMORY_FRACTION:.0%} of the {_size(available)} available; "
            "use fewer samples or features, or a smaller model"
        )
    return None


def memory_problem(needed: int, what: str) -> str | None:
    """Why `needed` bytes for `what` (e.g. "reading model.json") exceed the memory budget, or None."""
    available = available_memory()
    if available is not None and needed > MEMORY_FRACTION * available:
        return (f"{what} needs about {_size(needed)} of memory, over {MEMORY_FRACTION:.0%} of the "
                f"{_size(available)} available")
    return None


def parameters_problem(parameters: int) -> str | None:
    """Why a model of `parameters` parameters cannot be built within the budgets, or None.

    For models that come from elsewhere than a config (a model.json): the
    trainer's limits, in words that name no config key.
    """
    if parameters > MAX_PARAMETERS:
        return f"{parameters:,} parameters, over micronet's budget of {MAX_PARAMETERS:,}"
    return memory_problem(BYTES_PER_PARAMETER * parameters, f"building {parameters:,} parameters")


def config_problem(config: RunConfig) -> str | None:
    """Why the run a validated config describes cannot fit the budgets, or None; loads nothing.

    The config loader turns the answer into a ConfigError.
    """
    shape = _shape(config.dataset, config.task)
    if shape is not None:
        return _problem(*shape, list(config.model.hidden))
    path = config.dataset.options().get("path")
    if path is None:
        return None  # only the data can tell: data_problem checks it once loaded
    try:
        size = regular_file_size(path)
    except FileNotFoundError:
        return None  # reading the data says so, naming the key
    except (OSError, ValueError) as e:
        return f"dataset.path: {e}"
    available = available_memory()
    if available is not None and BYTES_PER_CSV_BYTE * size > MEMORY_FRACTION * available:
        return (
            f"dataset.path {path!r} is {_size(size)}; reading it needs about "
            f"{_size(BYTES_PER_CSV_BYTE * size)}, over {MEMORY_FRACTION:.0%} of the {_size(available)} available"
        )
    return None


def data_problem(config: RunConfig, n_samples: int, n_features: int, n_outputs: int) -> str | None:
    """Why the config's model on data of this exact shape cannot fit the budgets, or None."""
    return _problem(n_samples, n_features, n_outputs, list(config.model.hidden))
