"""Models and run state as JSON, written atomically, read back with checks.

JSON rather than pickle: loading a checkpoint can never execute code, and a
person can read it. Floats survive the round trip exactly (json writes the
shortest repr that reads back to the same double). A file is written to a
temporary name in the same directory, flushed to disk and renamed over the
old one, so a crash mid-write leaves the previous checkpoint intact.

Format version 2 (version 1 files still load) holds any Module: the
parameters are its `state_dict()`, and `architecture` records how to rebuild
a built-in MLP (null for a custom module, which `load_state` fills in).
`task` says how to read the outputs: class scores (`classes` maps output i
to its label) or regression values (`target_preprocessing` maps them back to
the target's units). `training` is the trainer's resume state, kept as given.
"""

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from micronet import files
from micronet.budget import MAX_PARAMETERS, memory_problem, parameters_problem
from micronet.nn import ACTIVATIONS, MLP, Module, mlp_layout

__all__ = [
    "FORMAT",
    "VERSION",
    "TASKS",
    "Checkpoint",
    "save",
    "save_model",
    "load_state",
    "load_model",
    "load_checkpoint",
    "MAX_CONTENT_BYTES",
    "MAX_FILE_BYTES",
    "load_into",
    "write_json_atomic",
    "write_text_atomic",
]

FORMAT = "micronet-model"
VERSION = 2  # written; version 1 (MLP classifiers only) is still read
TASKS = ("classification", "regression")


@dataclass
class Checkpoint:
    """What model.json holds: the model and what it needs to make predictions."""

    model: Module  # an MLP from load_checkpoint; the caller's module from load_state
    classes: list | None  # classification: the label of each output; regression: None
    mean: list | None  # feature standardisation fitted on the training split, or None
    scale: list | None
    training: dict | None  # resume state written by the trainer, or None
    task: str = "classification"
    target_mean: list | None = None  # regression: outputs are value * target_scale + target_mean
    target_scale: list | None = None
    feature_names: list | None = None  # the input columns' names, when known
    version: int = VERSION  # the format version the file was written in


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    """Write `data` as strict JSON to `path` atomically (micronet.files.write_json_atomic).

    Non-finite floats are written as null: JSON has no NaN, and a file that
    says NaN is not JSON other tools can read.
    """
    files.write_json_atomic(path, data)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Replace `path` with `text` atomically (micronet.files.write_text_atomic)."""
    files.write_text_atomic(path, text)


def save(
    model: Module,
    path: str | os.PathLike,
    *,
    task: str = "classification",
    classes: Sequence | None = None,
    mean: Sequence[float] | None = None,
    scale: Sequence[float] | None = None,
    target_mean: Sequence[float] | None = None,
    target_scale: Sequence[float] | None = None,
    feature_names: Sequence[str] | None = None,
    training: dict | None = None,
    parameters: dict | None = None,
) -> Path:
    """Write any Module's parameters, and what predictions need, to `path` as JSON.

    A built-in MLP also gets an architecture record, so `load`/`load_model`
    can rebuild it; any other module (an MLP subclass too) is stored as its
    state_dict alone, to be filled back with `load_state`. `mean`/`scale`
    are the input standardisation, `target_mean`/`target_scale` a regression
    target's (predictions are mapped back to its units). `parameters`, a
    `model.state_dict()` taken earlier, is written in place of the model's
    current weights (the trainer keeps one per finished epoch). Everything
    is checked before the file is touched, and the write is atomic.
    """
    if not isinstance(model, Module):
        raise TypeError(f"model must be a micronet Module, got {type(model).__name__}")
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    architecture = _architecture(model)
    nin = architecture["nin"] if architecture else None
    n_out = architecture["nouts"][-1] if architecture else None
    if task == "classification":
        if target_mean is not None or target_scale is not None:
            raise ValueError("target_mean and target_scale are for regression; task is 'classification'")
        if classes is None and n_out is not None:
            classes = list(range(n_out))
        if classes is not None:
            classes = [_plain(c) for c in classes]
            problem = _labels_problem(classes, n_out)
            if problem:
                raise ValueError(f"classes must be {problem}, got {classes!r}")
    elif classes is not None:
        raise ValueError(f"classes is for classification; a regression model has none, got {classes!r}")
    pre = _scaling("mean", "scale", mean, scale, nin)
    target_pre = _scaling("target_mean", "target_scale", target_mean, target_scale, n_out)
    if feature_names is not None:
        feature_names = list(feature_names)
        width = nin if nin is not None else (len(pre["mean"]) if pre else None)
        problem = _names_problem(feature_names, width)
        if problem:
            raise ValueError(f"feature_names must be {problem}, got {feature_names!r}")
    if training is not None and not isinstance(training, dict):
        raise TypeError(f"training must be a dict or None, got {type(training).__name__}")
    path = Path(path)
    text = files.json_text(
        {
            "format": FORMAT,
            "version": VERSION,
            "task": task,
            "architecture": architecture,
            "parameters": model.state_dict() if parameters is None else parameters,
            "classes": classes,
            "preprocessing": pre,
            "target_preprocessing": target_pre,
            "feature_names": feature_names,
            "training": training,
        }
    )
    # Checked as loading will check it, before the previous file is replaced:
    # a checkpoint that would not load back is never written.
    try:
        _check_loadable(json.loads(text, parse_constant=_reject_constant), path)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"not writing a checkpoint that would not load back: {e}") from None
    files.write_text_atomic(path, text)
    return path


def _check_loadable(data, path):
    """Raise ValueError unless `data` is a model file that loads (and, for an MLP, rebuilds)."""
    record = _parse(data, path)
    arch = record["architecture"]
    if arch is not None:
        MLP(arch["nin"], arch["nouts"], arch["activation"], seed=0).load_state_dict(record["parameters"])


def save_model(model: Module, path: str | os.PathLike[str], *, classes: Sequence | None = None,
               mean: Sequence[float] | None = None, scale: Sequence[float] | None = None,
               training: dict | None = None, **more: Any) -> Path:
    """The trainer's name for `save` (same arguments: task=, target_mean=, target_scale=, feature_names=)."""
    return save(model, path, classes=classes, mean=mean, scale=scale, training=training, **more)


def _architecture(model):
    """The record that rebuilds a built-in MLP, or None for any other module."""
    if type(model) is not MLP:  # a subclass may add parameters or change forward
        return None
    return {
        "type": "MLP",
        "nin": len(model.layers[0].neurons[0].w),
        "nouts": [len(layer.neurons) for layer in model.layers],
        "activation": model.activation,
    }


def _plain(x):
    """A numpy scalar as the Python value it holds (json cannot write numpy types)."""
    return x.item() if hasattr(x, "item") and not isinstance(x, (str, bytes)) else x


def _scaling(mean_name, scale_name, mean, scale, width):
    """{"mean": [...], "scale": [...]} as floats, or None; a bad pair raises ValueError naming it."""
    if mean is None and scale is None:
        return None
    if mean is None or scale is None:
        given, missing = (mean_name, scale_name) if scale is None else (scale_name, mean_name)
        raise ValueError(f"{given} needs {missing} too (give both or neither)")
    try:
        mean, scale = [float(v) for v in mean], [float(v) for v in scale]
    except (TypeError, ValueError) as e:
        raise ValueError(f"{mean_name} and {scale_name} must be sequences of numbers: {e}") from None
    if len(mean) != len(scale) or (width is not None and len(mean) != width):
        expected = f"{width} numbers each" if width is not None else "the same length"
        raise ValueError(f"{mean_name} and {scale_name} must have {expected}, got {len(mean)} and {len(scale)}")
    for i, m in enumerate(mean):
        if not math.isfinite(m):
            raise ValueError(f"{mean_name} must be finite, got {mean_name}[{i}] = {m!r}")
    for i, s in enumerate(scale):
        if not (math.isfinite(s) and s > 0):
            raise ValueError(f"{scale_name} must be finite and > 0, got {scale_name}[{i}] = {s!r}")
    return {"mean": mean, "scale": scale}


def _labels_problem(classes, n_out):
    """What is wrong with a label list (None if nothing): its length, types or duplicates."""
    if not isinstance(classes, list) or (n_out is not None and len(classes) != n_out) or not classes:
        return f"a list of {n_out if n_out is not None else 'one or more'} labels"
    if not all(isinstance(c, str) or _finite_number(c) for c in classes):
        return "strings or finite numbers"
    if len({(type(c) is str, c) for c in classes}) != len(classes):
        return "distinct labels"
    return None


def _names_problem(names, width):
    if not isinstance(names, list) or (width is not None and len(names) != width) or not names:
        return f"a list of {width if width is not None else 'one or more'} column names"
    if not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        return "distinct non-empty strings"
    return None


def load_model(path: str | os.PathLike[str]) -> MLP:
    """The MLP stored at `path`; a damaged or mismatched file raises ValueError."""
    return load_checkpoint(path).model  # type: ignore[return-value]  # load_checkpoint builds an MLP


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Everything in a model.json that holds a built-in MLP, checked field by field.

    A file written for a custom module (architecture null) cannot be rebuilt
    here: build the module and call `load_state(module, path)`.
    """
    path = Path(path)
    record = _parse(_read_json(path), path)
    arch = record.pop("architecture")
    if arch is None:
        raise ValueError(
            f"{path} holds a custom module's parameters (architecture null), which micronet cannot rebuild; "
            "build the module yourself and fill it with micronet.load_state(module, path)"
        )
    model = MLP(arch["nin"], arch["nouts"], arch["activation"], seed=0)
    try:
        model.load_state_dict(record.pop("parameters"))
    except (KeyError, ValueError, TypeError) as e:
        problem = f"parameters do not match the architecture: {e.args[0]}"
        raise ValueError(f"{path} is not a valid model file: {problem}") from None
    return Checkpoint(model=model, **record)


def load_state(model: Module, path: str | os.PathLike) -> Module:
    """Fill `model`'s parameters from the file `save` wrote; return `model`.

    The file's parameter names and sizes must match `model.state_dict()`;
    otherwise ValueError names the first entry that does not, and `model` is
    left unchanged. Works for any Module, including an MLP saved by the
    trainer (its architecture must then match too).
    """
    return load_into(model, path).model


def load_into(model: Module, path: str | os.PathLike[str]) -> Checkpoint:
    """load_state, returning the whole Checkpoint (classes, scaling) around `model`."""
    if not isinstance(model, Module):
        raise TypeError(f"model must be a micronet Module, got {type(model).__name__}")
    path = Path(path)
    record = _parse(_read_json(path), path)
    arch, own = record.pop("architecture"), _architecture(model)
    if arch is not None and own is not None:
        for key in ("nin", "nouts", "activation"):
            if arch[key] != own[key]:
                raise ValueError(f"{path} does not fit this model: architecture.{key} is {arch[key]!r} in the file, "
                                 f"{own[key]!r} in the model")
    try:
        model.load_state_dict(record.pop("parameters"))
    except (KeyError, ValueError, TypeError) as e:
        raise ValueError(f"{path} does not fit {type(model).__name__}: {e.args[0]}") from None
    return Checkpoint(model=model, **record)


# What a model file may hold, from the parameter budget: each parameter, and in the trainer's state up
# to three more numbers per parameter (Adam's two moments, the best epoch's weights), each at most
# _BYTES_PER_NUMBER bytes with its comma and indentation, plus a little more (the shuffling RNG, the
# config). Runs of _SQUEEZED_RUN or more whitespace are read as one space, so padding costs nothing;
# the file itself may be _MAX_WHITESPACE_RATIO times larger than what is kept.
_BYTES_PER_NUMBER = 41  # the longest repr of a double (24), a comma, and up to 16 characters of indentation
_SQUEEZED_RUN = 16
MAX_CONTENT_BYTES = 4 * MAX_PARAMETERS * _BYTES_PER_NUMBER + 2**20
_MAX_WHITESPACE_RATIO = 4
MAX_FILE_BYTES = _MAX_WHITESPACE_RATIO * MAX_CONTENT_BYTES
_PARSED_BYTES_PER_BYTE = 10  # json.loads: the text as str, and a float object and a list slot per number
_CHUNK = 2**20
_SPACES = re.compile(rb"[ \t\n\r]{%d,}" % _SQUEEZED_RUN)
_STRING_BODY = re.compile(rb'(?:[^"\\]|\\.)*', re.DOTALL)


def _read_json(path):
    """The JSON in `path`, read in chunks with long runs of whitespace between tokens squeezed out as it goes.

    So a file padded with gigabytes of spaces costs one chunk of memory, and
    what is kept is checked against the size cap and the memory budget
    before it is parsed.
    """
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not a model file")
    if not path.exists():
        raise ValueError(f"{path} does not exist")
    try:
        with files.open_regular(path, MAX_FILE_BYTES) as f:  # a FIFO or /dev/zero is refused before reading
            raw = _squeezed(f, path)
    except ValueError as e:
        raise ValueError(f"{path} is not a valid model file: {e}") from None
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"{path} is not a valid model file: invalid JSON ({e})") from None


def _squeezed(f, path):
    """The file's bytes with each long run of whitespace outside strings as one space; strings kept byte for byte.

    JSON reads the same either way: whitespace between tokens means nothing.
    """
    kept, size = [], 0
    in_string = escaped = False
    while chunk := f.read(_CHUNK):
        pos, end, parts = 0, len(chunk), []
        while pos < end:
            if in_string and escaped:  # the character after a backslash that ended the previous chunk
                parts.append(chunk[pos:pos + 1])
                pos, escaped = pos + 1, False
            elif in_string:
                stop = _STRING_BODY.match(chunk, pos).end()  # type: ignore[union-attr]  # matches the empty string
                if stop >= end:  # the string goes on in the next chunk
                    parts.append(chunk[pos:])
                else:  # its closing quote, or a backslash that ends the chunk
                    parts.append(chunk[pos:stop + 1])
                    in_string, escaped = chunk[stop] != ord('"'), chunk[stop] != ord('"')
                pos = stop + 1
            else:
                quote = chunk.find(b'"', pos)
                stop = end if quote < 0 else quote
                parts.append(_SPACES.sub(b" ", chunk[pos:stop]))
                if quote >= 0:
                    parts.append(b'"')
                    in_string = True
                pos = stop + 1
        piece = b"".join(parts)
        size += len(piece)
        if size > MAX_CONTENT_BYTES:
            raise ValueError(f"it holds over {MAX_CONTENT_BYTES:,} bytes of JSON, more than a model within "
                             f"micronet's budget of {MAX_PARAMETERS:,} parameters can need")
        problem = memory_problem(_PARSED_BYTES_PER_BYTE * size, f"reading {size:,} bytes of JSON")
        if problem is not None:
            raise ValueError(problem)
        kept.append(piece)
    return b"".join(kept)


def _reject_constant(name):
    raise ValueError(f"non-finite number {name} in JSON")


def _parse(data, path):
    """The file's fields, checked; the MLP (if any) is not built yet, but its size is checked."""

    def fail(problem):
        raise ValueError(f"{path} is not a valid model file: {problem}")

    if not isinstance(data, dict):
        fail(f"expected a JSON object, got {type(data).__name__}")
    if data.get("format") != FORMAT:
        fail(f"format is {data.get('format')!r}, expected {FORMAT!r}")
    version = data.get("version")
    if type(version) is not int or version not in (1, VERSION):
        fail(f"version {version!r} is not supported (this micronet reads versions 1 and {VERSION})")
    required: tuple[str, ...] = ("architecture", "parameters", "classes", "preprocessing")
    if version >= 2:
        required = ("task", *required, "target_preprocessing")
    for key in required:
        if key not in data:
            fail(f"missing field {key!r}")
    task = data.get("task", "classification")
    if task not in TASKS:
        fail(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if version == 1 and task != "classification":
        fail(f"version 1 files hold classifiers only, but this one says task {task!r}; "
             f"a regression model needs version {VERSION} (its target scaling)")

    arch, params = data["architecture"], data["parameters"]
    nin = n_out = None
    if arch is not None or version == 1:
        if not isinstance(arch, dict) or arch.get("type") != "MLP":
            fail("architecture must be an object with type 'MLP'" + (" or null" if version >= 2 else ""))
        nin, nouts, activation = arch.get("nin"), arch.get("nouts"), arch.get("activation")
        if not _positive_int(nin):
            fail(f"architecture.nin must be an int >= 1, got {nin!r}")
        if not isinstance(nouts, list) or not nouts or not all(_positive_int(n) for n in nouts):
            fail(f"architecture.nouts must be a non-empty list of ints >= 1, got {nouts!r}")
        if not isinstance(activation, str) or activation not in ACTIVATIONS:
            fail(f"architecture.activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
        stored = None
        if isinstance(params, dict):
            stored = sum(len(v) if isinstance(v, list) else 1 for v in params.values())
        sizes = [nin, *nouts]
        expected = sum((sizes[i] + 1) * sizes[i + 1] for i in range(len(nouts)))
        # All checked before the model is built (a Python object per parameter): a forged size
        # cannot exhaust memory, nor wrong names cost the building of a model that is then refused.
        too_big = parameters_problem(expected)
        if too_big is not None:
            fail(f"the architecture (nin {nin}, {len(nouts)} layers) has {too_big}")
        if stored != expected:
            fail(f"the architecture has {expected} parameters, the file stores {stored}")
        _check_layout(params, nin, nouts, fail)
        arch, n_out = {"nin": nin, "nouts": nouts, "activation": activation}, nouts[-1]
    elif not isinstance(params, dict):
        fail(f"parameters must be an object of name -> number or list of numbers, got {type(params).__name__}")

    classes = data["classes"]
    if task == "classification":
        if classes is None and n_out is not None:
            classes = list(range(n_out))
        if classes is not None and _labels_problem(classes, n_out):
            fail(f"classes must be {_labels_problem(classes, n_out)}, got {classes!r}")
    elif classes is not None:
        fail(f"classes must be null for a regression model, got {classes!r}")

    mean, scale = _stored_scaling(data["preprocessing"], "preprocessing", nin, fail)
    width = nin if nin is not None else (len(mean) if mean is not None else None)
    target_mean, target_scale = _stored_scaling(data.get("target_preprocessing"), "target_preprocessing", n_out, fail)
    if task == "classification" and target_mean is not None:
        fail("target_preprocessing must be null for a classification model")
    feature_names = data.get("feature_names")
    if feature_names is not None and _names_problem(feature_names, width):
        fail(f"feature_names must be {_names_problem(feature_names, width)}")
    training = data.get("training")
    if training is not None and not isinstance(training, dict):
        fail("training must be null or an object")
    return {
        "architecture": arch, "parameters": params, "classes": classes, "mean": mean, "scale": scale,
        "training": training, "task": task, "target_mean": target_mean, "target_scale": target_scale,
        "feature_names": feature_names, "version": version,
    }


def _check_layout(params, nin, nouts, fail):
    """Every name and size `MLP(nin, nouts)` expects, and no other name."""
    names = set()
    for name, size in mlp_layout(nin, nouts):
        names.add(name)
        if name not in params:
            fail(f"parameters do not match the architecture: no entry {name!r}")
        given = params[name]
        if size is None and isinstance(given, list):
            fail(f"parameters do not match the architecture: {name!r} must be a number, got list")
        if size is not None and (not isinstance(given, list) or len(given) != size):
            what = f"a list of {len(given)}" if isinstance(given, list) else type(given).__name__
            fail(f"parameters do not match the architecture: {name!r} must be a list of {size} numbers, got {what}")
    if len(names) != len(params):
        extra = next(name for name in params if name not in names)
        fail(f"parameters do not match the architecture: unexpected entry {extra!r}")


def _stored_scaling(pre, name, width, fail):
    if pre is None:
        return None, None
    if not isinstance(pre, dict) or set(pre) != {"mean", "scale"}:
        fail(f"{name} must be null or an object with mean and scale")
    mean, scale = pre["mean"], pre["scale"]
    if width is None and isinstance(mean, list):
        width = len(mean)
    for part, values in (("mean", mean), ("scale", scale)):
        if not isinstance(values, list) or len(values) != width or not all(_finite_number(v) for v in values):
            fail(f"{name}.{part} must be a list of {width} finite numbers")
    if not all(s > 0 for s in scale):
        fail(f"{name}.scale must be positive")
    return mean, scale


def _positive_int(x):
    return isinstance(x, int) and not isinstance(x, bool) and x >= 1


def _finite_number(x):
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return False
    try:
        return math.isfinite(float(x))
    except OverflowError:  # an int beyond the float range
        return False
