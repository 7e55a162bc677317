"""Models and run state as JSON, written atomically, read back with checks.

JSON rather than pickle: loading a checkpoint can never execute code, and a
person can read it. Floats survive the round trip exactly (json writes the
shortest repr that reads back to the same double). A file is written to a
temporary name in the same directory, flushed to disk and renamed over the
old one, so a crash mid-write leaves the previous checkpoint intact.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path

from micronet import files
from micronet.nn import ACTIVATIONS, MLP

__all__ = [
    "FORMAT",
    "VERSION",
    "Checkpoint",
    "save_model",
    "load_model",
    "load_checkpoint",
    "write_json_atomic",
    "write_text_atomic",
]

FORMAT = "micronet-model"
VERSION = 1


@dataclass
class Checkpoint:
    """What model.json holds: the model and what it needs to make predictions."""

    model: MLP
    classes: list  # the original label of each output (class index -> label)
    mean: list | None  # standardisation fitted on the training split, or None
    scale: list | None
    training: dict | None  # resume state written by the trainer, or None


def write_json_atomic(path, data):
    """Write `data` as strict JSON to `path` atomically (micronet.files.write_json_atomic)."""
    files.write_json_atomic(path, data)


def write_text_atomic(path, text):
    """Replace `path` with `text` atomically (micronet.files.write_text_atomic)."""
    files.write_text_atomic(path, text)


def save_model(model, path, *, classes=None, mean=None, scale=None, training=None):
    """Write an MLP, its class labels and its input scaling to `path` atomically."""
    if not isinstance(model, MLP):
        raise TypeError(
            f"save_model stores MLPs, got {type(model).__name__}; "
            "for other modules save model.state_dict() and rebuild the module yourself"
        )
    n_out = len(model.layers[-1].neurons)
    data = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": {
            "type": "MLP",
            "nin": len(model.layers[0].neurons[0].w),
            "nouts": [len(layer.neurons) for layer in model.layers],
            "activation": model.activation,
        },
        "parameters": model.state_dict(),
        "classes": list(range(n_out)) if classes is None else list(classes),
        "preprocessing": None if mean is None else {"mean": list(mean), "scale": list(scale)},
        "training": training,
    }
    # Checked as load_model will check it before it replaces the previous file:
    # a checkpoint that would not load back is never written.
    text = files.json_text(data)
    try:
        _checkpoint_from_dict(json.loads(text, parse_constant=_reject_constant), path)
    except ValueError as e:
        raise ValueError(f"not writing a checkpoint that would not load back: {e}") from None
    files.write_text_atomic(path, text)


def load_model(path):
    """The MLP stored at `path`; a damaged or mismatched file raises ValueError."""
    return load_checkpoint(path).model


def load_checkpoint(path):
    """Everything in model.json, checked field by field."""
    path = Path(path)
    try:
        raw = files.read_regular_bytes(path)  # a FIFO or /dev/zero is refused before reading
    except ValueError as e:
        raise ValueError(f"{path} is not a valid model file: {e}") from None
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"{path} is not a valid model file: invalid JSON ({e})") from None
    return _checkpoint_from_dict(data, path)


def _reject_constant(name):
    raise ValueError(f"non-finite number {name} in JSON")


def _checkpoint_from_dict(data, path):
    def fail(problem):
        raise ValueError(f"{path} is not a valid model file: {problem}")

    if not isinstance(data, dict):
        fail(f"expected a JSON object, got {type(data).__name__}")
    if data.get("format") != FORMAT:
        fail(f"format is {data.get('format')!r}, expected {FORMAT!r}")
    if data.get("version") != VERSION:
        fail(f"version {data.get('version')!r} is not supported (this micronet reads version {VERSION})")
    for key in ("architecture", "parameters", "classes", "preprocessing"):
        if key not in data:
            fail(f"missing field {key!r}")
    arch = data["architecture"]
    if not isinstance(arch, dict) or arch.get("type") != "MLP":
        fail("architecture must be an object with type 'MLP'")
    nin, nouts, activation = arch.get("nin"), arch.get("nouts"), arch.get("activation")
    if not _positive_int(nin):
        fail(f"architecture.nin must be an int >= 1, got {nin!r}")
    if not isinstance(nouts, list) or not nouts or not all(_positive_int(n) for n in nouts):
        fail(f"architecture.nouts must be a non-empty list of ints >= 1, got {nouts!r}")
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        fail(f"architecture.activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    params = data["parameters"]
    stored = sum(len(v) if isinstance(v, list) else 1 for v in params.values()) if isinstance(params, dict) else None
    sizes = [nin, *nouts]
    expected = sum((sizes[i] + 1) * sizes[i + 1] for i in range(len(nouts)))
    if stored != expected:  # checked before building, so a forged size cannot exhaust memory
        fail(f"the architecture has {expected} parameters, the file stores {stored}")
    model = MLP(nin, nouts, activation, seed=0)
    try:
        model.load_state_dict(params)
    except (KeyError, ValueError, TypeError) as e:
        fail(f"parameters do not match the architecture: {e.args[0]}")
    classes = data["classes"]
    if not isinstance(classes, list) or len(classes) != nouts[-1]:
        fail(f"classes must be a list of {nouts[-1]} labels, got {classes!r}")
    mean = scale = None
    if data["preprocessing"] is not None:
        pre = data["preprocessing"]
        if not isinstance(pre, dict) or set(pre) != {"mean", "scale"}:
            fail("preprocessing must be null or an object with mean and scale")
        mean, scale = pre["mean"], pre["scale"]
        for name, values in (("mean", mean), ("scale", scale)):
            if not isinstance(values, list) or len(values) != nin or not all(_finite_number(v) for v in values):
                fail(f"preprocessing.{name} must be a list of {nin} finite numbers")
        if not all(s > 0 for s in scale):
            fail("preprocessing.scale must be positive")
    training = data.get("training")
    if training is not None and not isinstance(training, dict):
        fail("training must be null or an object")
    return Checkpoint(model, classes, mean, scale, training)


def _positive_int(x):
    return isinstance(x, int) and not isinstance(x, bool) and x >= 1


def _finite_number(x):
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return False
    try:
        return math.isfinite(float(x))
    except OverflowError:  # an int beyond the float range
        return False
