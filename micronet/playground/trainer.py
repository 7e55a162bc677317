"""One playground session's run: a request turned into a config, the training, and what the page draws.

Nothing here knows about HTTP. A request's setup (a small subset of the run
config) is checked against the playground's hard limits, completed with the
settings the playground fixes, and validated by `parse_config`, so the page
can offer nothing the trainer would refuse. Training goes one epoch per call
through `micronet.loop.run_epochs`; with a constant learning rate that is the
same run as `micronet-train` on the exported config, number for number.
"""

from __future__ import annotations

import base64
import copy
import numbers
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import yaml

from micronet.activations import ACTIVATIONS
from micronet.config import HIDDEN_ACTIVATIONS, RunConfig, config_to_dict, parse_config
from micronet.data import DATASETS, PreparedData, prepare_data
from micronet.epochs import Diverged, run_epochs
from micronet.executors import make_executor
from micronet.losses import TASKS as TASK_LOSSES
from micronet.optim import OPTIMIZERS
from micronet.palette import CLASS_COLORS, NEGATIVE, POSITIVE, SPLIT_COLORS
from micronet.predict import softmax
from micronet.state import Plan, config_loss, new_state
from micronet.tasks import TASKS as TASK_SPECS

__all__ = [
    "CONTROLS",
    "DATASET_NAMES",
    "DEFAULT_SETUP",
    "MAX_LAYERS",
    "MAX_SAMPLES",
    "MAX_WIDTH",
    "SetupError",
    "Trainer",
    "config_setup",
    "in_page_words",
    "open_config",
    "options",
    "setup_to_config",
]

DATASET_NAMES = ("moons", "circles", "blobs", "xor", "spiral", "sine")
MAX_SAMPLES = 2000  # dataset.n_samples
MAX_LAYERS = 6  # hidden layers
MAX_WIDTH = 32  # neurons per hidden layer
GRID = 100  # the output heat map is GRID x GRID cells (2 features) or GRID * 2 points (1 feature)
THUMB = 25  # neuron thumbnails are THUMB x THUMB (every 4th cell of the grid), or THUMB * 2 points

# What the page starts with: moons and a 2-16-16-2 network that separates it in a few epochs. No
# loss: a setup without one takes the trainer's default for its dataset's task.
DEFAULT_SETUP = {
    "seed": 0,
    "dataset": {"name": "moons", "n_samples": 300, "noise": 0.1, "test_size": 0.25},
    "model": {"hidden": [16, 16], "activation": "relu"},
    "optimizer": {"name": "sgd", "lr": 0.03},
    "training": {"batch_size": 10},
}


def _own_options(name: str) -> dict[str, Any]:
    """An optimizer's own options with their declared defaults: all it takes but lr, which has its own
    control, and weight_decay, an L2 penalty the page does not offer."""
    return {key: list(o.default) if isinstance(o.default, tuple) else o.default
            for key, o in OPTIMIZERS[name].options.items() if key not in ("lr", "weight_decay")}


# The page's name for each setting it has a control for: its labels read them from here, and every
# refusal the page shows speaks of these, not of config keys (`in_page_words`).
CONTROLS = {
    "dataset.name": "Dataset",
    "dataset.n_samples": "Samples",
    "dataset.noise": "Noise",
    "dataset.cluster_std": "Spread",
    "dataset.test_size": "Test fraction",
    "seed": "Seed",
    "model.hidden": "Hidden layers",
    "model.activation": "Activation",
    "loss": "Loss",
    "optimizer.name": "Optimizer",
    "optimizer.lr": "Learning rate",
    "training.batch_size": "Batch size",
    # each optimizer's own options, as the optimizer declares them (micronet.optim)
    **{f"optimizer.{key}": key.capitalize() for name in OPTIMIZERS for key in _own_options(name)},
}

# The keys a request may set, per section; everything else is fixed below.
_SETTABLE: dict[str, tuple[str, ...] | None] = {
    "seed": None,
    # every option of the page's datasets (circles' factor, blobs' centers too: an opened config may set them)
    "dataset": ("name", "n_samples", "noise", "cluster_std", "test_size",
                *dict.fromkeys(k for n in DATASET_NAMES for k in DATASETS[n].options if k != "n_features")),
    "model": ("hidden", "activation"),
    "loss": ("name",),
    "optimizer": ("name", "lr", *dict.fromkeys(k for name in OPTIMIZERS for k in _own_options(name))),
    "training": ("batch_size",),
}


class SetupError(ValueError):
    """A request the playground refuses; the message names the setting, what it takes and what it got."""


def _losses(name: str) -> list[str]:
    """The losses the trainer accepts for a dataset: those registered for the dataset's task."""
    return list(TASK_LOSSES[DATASETS[name].task])  # the page's datasets all have a task


def options() -> dict:
    """What the page builds its controls from: the trainer's registries and rules, so new entries appear.

    Per dataset: its task, the losses the trainer accepts for it and its
    options' defaults. Then the activations and optimizers, the page's limits,
    its controls' names, the score shown per task, and the palette its
    pictures share with the PNGs and the GIF.
    """
    return {
        "datasets": {
            name: {
                "task": DATASETS[name].task,
                "losses": _losses(name),
                "defaults": {k: v for k, v in DATASETS[name].defaults().items() if k in _SETTABLE["dataset"]},  # type: ignore[operator]  # a tuple
            }
            for name in DATASET_NAMES
        },
        "activations": list(HIDDEN_ACTIVATIONS),
        "activation_formulas": {name: ACTIVATIONS[name].formula for name in HIDDEN_ACTIVATIONS},
        "optimizers": list(OPTIMIZERS),
        # per optimizer, its own options and their defaults: the page shows them and lets the user set them
        "optimizer_options": {name: copy.deepcopy(_own_options(name)) for name in OPTIMIZERS},
        "limits": {"n_samples": MAX_SAMPLES, "layers": MAX_LAYERS, "width": MAX_WIDTH},
        "controls": dict(CONTROLS),
        "scores": {  # the metric shown beside the loss, per task (micronet.tasks)
            name: {"key": task.headline, "label": task.headline_metric.label, "digits": task.headline_metric.digits}
            for name, task in TASK_SPECS.items()
        },
        "palette": {"classes": list(CLASS_COLORS), "negative": NEGATIVE, "positive": POSITIVE,
                    "splits": dict(SPLIT_COLORS)},
        "default": copy.deepcopy(DEFAULT_SETUP),
    }


_KEYS = "|".join(re.escape(k) for k in sorted(CONTROLS, key=len, reverse=True))
_CONTROL_KEY = re.compile(rf"(?<![\w.'])({_KEYS})(\[\d+\])?(?:(=)|(?![\w.]))")  # a key, maybe indexed or assigned


def in_page_words(message: str) -> str:
    """A refusal as the page says it: each config key becomes the name of the control that sets it.

    `optimizer.lr must be a finite number > 0, got -1` becomes `Learning rate
    must be ...`; `model.hidden[1]` becomes `neurons in hidden layer 2`. A
    key without a dot (`seed`, `loss`) is one only where a message starts.
    """

    def control(match: re.Match) -> str:
        key, index, equals = match.groups()
        if "." not in key and match.start() > 0:  # "loss" or "seed" inside a sentence is the English word
            return match.group(0)
        name = f"neurons in hidden layer {int(index[1:-1]) + 1}" if index else CONTROLS[key]
        return name + (" " if equals else "")

    text = _CONTROL_KEY.sub(control, message)
    return text[:1].upper() + text[1:] if _CONTROL_KEY.match(message) else text


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_keys(setup: Any) -> dict:
    """The request as a dict of known sections with known keys (sections it omits take the defaults)."""
    if not isinstance(setup, Mapping):
        raise SetupError(
            f"the setup must be a JSON object like {{\"dataset\": {{\"name\": \"moons\"}}}}, got {_show(setup)}"
        )
    for key, value in setup.items():
        if key not in _SETTABLE:
            raise SetupError(f"unknown setting {_show(key)}; the playground sets: {', '.join(_SETTABLE)}")
        keys = _SETTABLE[key]
        if keys is None or key == "loss" and isinstance(value, str):
            continue
        if not isinstance(value, Mapping):
            raise SetupError(f"{key} must be an object with keys {', '.join(keys)}, got {_show(value)}")
        for inner in value:
            if inner not in keys:
                raise SetupError(f"unknown setting {key}.{_show(inner)}; {key} takes: {', '.join(keys)}")
    return {**copy.deepcopy(DEFAULT_SETUP), **copy.deepcopy(dict(setup))}


def _check_limits(setup: dict) -> None:
    """The playground's hard limits, checked before parse_config so that no large request does any work."""
    dataset, model = setup["dataset"], setup["model"]
    name = dataset.get("name")
    if name not in DATASET_NAMES:
        raise SetupError(f"dataset.name must be one of {', '.join(DATASET_NAMES)} in the playground, got {_show(name)}")
    n = dataset.get("n_samples")
    if isinstance(n, numbers.Real) and not isinstance(n, bool) and n > MAX_SAMPLES:  # type: ignore[operator]  # Real vs int
        raise SetupError(f"dataset.n_samples must be <= {MAX_SAMPLES} in the playground, got {_show(n)}")
    if dataset.get("n_features", 2) != 2:
        raise SetupError(f"dataset.n_features must be 2 in the playground, got {_show(dataset['n_features'])}")
    hidden = model.get("hidden")
    if isinstance(hidden, (list, tuple)):
        if len(hidden) > MAX_LAYERS:
            raise SetupError(f"model.hidden must have at most {MAX_LAYERS} layers in the playground, got {len(hidden)}")
        for i, width in enumerate(hidden):
            if isinstance(width, numbers.Real) and not isinstance(width, bool) and width > MAX_WIDTH:  # type: ignore[operator]  # Real vs int
                raise SetupError(f"model.hidden[{i}] must be at most {MAX_WIDTH} in the playground, got {_show(width)}")


def setup_to_config(setup: Any) -> RunConfig:
    """The validated run config of a request's setup, or SetupError / ConfigError naming what is wrong.

    The dataset sets the task (the page has no control for it), and a setup
    without a loss takes the trainer's default for that task. The playground
    fixes what makes a session reproducible from its export: a constant
    learning rate (a decaying one would depend on the run's length), the
    compiled backend, shuffling, no validation split and no early stopping.
    `training.epochs` is a placeholder until export.
    """
    setup = _check_keys(setup)
    _check_limits(setup)
    name = setup["dataset"]["name"]
    loss = setup.get("loss")
    given = loss.get("name") if isinstance(loss, Mapping) else loss
    losses = _losses(name)
    if isinstance(given, str) and given not in losses and any(given in known for known in TASK_LOSSES.values()):
        raise SetupError(f"loss {given!r} does not fit the {name} dataset; its losses are {', '.join(losses)}")
    mapping = {
        "name": "playground",
        "seed": setup["seed"],
        "task": DATASETS[name].task,  # the page has no task control: the dataset decides
        "dataset": {**setup["dataset"], "standardize": True},
        "model": setup["model"],
        **({} if loss is None else {"loss": loss}),  # none: the trainer's default for the task
        "optimizer": {**setup["optimizer"], "schedule": {"name": "constant", "interval": "epoch"}},
        "training": {
            **setup["training"],
            "epochs": 1,
            "shuffle": True,
            "backend": "compiled",
            "validation_split": 0.0,
            "early_stopping": None,
        },
    }
    return parse_config(mapping)


def config_setup(config: RunConfig) -> dict:
    """The setup a config came from, with every default filled in (what the page shows)."""
    dataset = {"name": config.dataset.name, "test_size": config.dataset.test_size}
    dataset.update({k: getattr(config.dataset, k) for k in DATASETS[config.dataset.name].options
                    if k != "n_features"})  # the page draws two features (blobs' default)
    return {
        "seed": config.seed,
        "dataset": dataset,
        "model": {"hidden": list(config.model.hidden), "activation": config.model.activation},
        "loss": config.loss.name,
        "optimizer": {"name": config.optimizer.name, "lr": config.optimizer.lr,
                      **{k: getattr(config.optimizer, k) for k in _own_options(config.optimizer.name)}},
        "training": {"batch_size": config.training.batch_size},
    }


def open_config(config: RunConfig) -> dict:
    """The playground's setup for a run config (`micronet-playground CONFIG`), or SetupError if it cannot show it.

    The page opens on the config's data, network, loss and optimizer with the
    same seed, so the same data and first weights. What the playground fixes
    (a constant learning rate, whole epochs, no early stopping) replaces the
    config's own settings of those; a dataset or size the page cannot show is
    refused with the playground's rule.
    """
    name = config.dataset.name
    if name not in DATASET_NAMES:
        raise SetupError(f"dataset.name must be one of {', '.join(DATASET_NAMES)} in the playground, got {name!r}")
    features = getattr(config.dataset, "n_features", None)
    if name == "blobs" and features != 2:
        raise SetupError(f"dataset.n_features must be 2 in the playground, got {features}")
    setup = config_setup(config)
    setup_to_config(setup)  # the playground's limits, and the trainer's rules once more
    return setup


def _bytes(a: np.ndarray) -> str:
    """Numbers in 0..255 as one byte each, base64: compact frames that the page decodes cheaply."""
    return base64.b64encode(np.clip(np.rint(a), 0, 255).astype(np.uint8).tobytes()).decode("ascii")


def _signed_bytes(a: np.ndarray) -> tuple[str, list[float]]:
    """Each row scaled by its largest magnitude to [-1, 1], as bytes with 128 for zero; and the scales."""
    scale = np.max(np.abs(a), axis=-1, keepdims=True)
    safe = np.where(scale > 0, scale, 1.0)
    return _bytes(128.0 + 127.0 * a / safe), np.round(scale.ravel(), 6).tolist()


class Trainer:
    """A session's run: its config and data, the training state, and a snapshot of the last finished epoch.

    `train_epoch` blocks (the server runs it in a worker thread). The page
    is drawn from `params`, the parameters as they were when the last epoch
    ended, so drawing never reads a model that is half-way through a step.
    """

    def __init__(self, config: RunConfig, data: PreparedData | None = None) -> None:
        self.config = config
        if data is None:  # the playground's own limits keep far inside micronet.budget's, so no check here
            data = prepare_data(config.dataset, config.seed, config.task, config.training.validation_split)
        self.data = data
        self.state = new_state(config, self.data)
        self.executor = make_executor(self.state.model, config_loss(config), "compiled", self.data.feature_count)
        self.error: str | None = None  # why training stopped for good (divergence)
        self.params = self._snapshot()
        self._extent = self._data_extent()
        # state_dict's names and sizes, in parameters() order (an MLP shares no Values)
        self._layout = [(k, len(v) if isinstance(v, list) else None) for k, v in self.state.model.state_dict().items()]

    @property
    def epoch(self) -> int:
        return self.state.epoch

    @property
    def history(self) -> list[dict]:
        return self.state.history

    def _snapshot(self) -> np.ndarray:
        return np.array([p.data for p in self.state.model.parameters()])

    def train_epoch(self) -> None:
        """One more epoch, exactly as one more epoch of `micronet-train` would be; a divergence ends the run."""
        if self.error is not None:
            return
        training = self.config.training
        plan = Plan(self.state.epoch + 1, training.batch_size, training.shuffle, False)
        try:
            run_epochs(plan, self.data, self.state, self.executor)
        except Diverged as e:
            self.error = str(e)
            return
        self.params = self._snapshot()

    def state_dict(self) -> dict:
        """The weights after the last finished epoch, in the form of `model.state_dict()` (model.json's)."""
        values, state = iter(self.params.tolist()), {}
        for name, size in self._layout:
            state[name] = next(values) if size is None else [next(values) for _ in range(size)]
        return state

    def export_yaml(self) -> str:
        """The config that `micronet-train` turns into this session's run, epoch for epoch."""
        if self.epoch < 1:
            raise SetupError("nothing to export yet: train at least one epoch (play or step)")
        mapping = config_to_dict(self.config)
        mapping["training"]["epochs"] = self.epoch
        body = yaml.safe_dump(mapping, sort_keys=False, default_flow_style=None)
        return (
            f"# exported by micronet playground after {self.epoch} epochs\n"
            "# micronet-train this.yaml trains the same data, weights and metrics, number for number\n" + body
        )

    # ----- what the page draws ----------------------------------------------

    def _data_extent(self) -> list[float]:
        """The plotted range: the standardised data's, padded, the same on both axes for 2 features."""
        X = np.vstack([self.data.X_train, self.data.X_test])
        if self.data.feature_count == 2:
            r = float(np.max(np.abs(X))) * 1.1
            return [-r, r, -r, r]
        y = np.concatenate([self.data.y_train, self.data.y_test]).astype(float).ravel()
        lo, hi = float(X.min()), float(X.max())
        pad_x, pad_y = 0.05 * (hi - lo), 0.1 * (y.max() - y.min())
        return [lo - pad_x, hi + pad_x, float(y.min() - pad_y), float(y.max() + pad_y)]

    def scene(self) -> dict:
        """The parts that change only with the setup: task, classes, extent, points, layer sizes."""
        data = self.data
        sizes = [data.feature_count, *self.config.model.hidden, data.n_outputs]

        def points(X, y):
            return {"x": np.round(X, 5).tolist(), "y": np.round(y, 5).tolist()}

        return {
            "task": data.task,
            "classes": None if data.class_names is None else [str(c) for c in data.class_names],
            "features": data.feature_count,
            "extent": self._extent,
            "layers": sizes,
            "activation": self.config.model.activation,
            "train": points(data.X_train, data.y_train),
            "test": points(data.X_test, data.y_test),
            "grid": GRID,
            "thumb": THUMB,
        }

    def layer_outputs(self, X: np.ndarray, params: np.ndarray | None = None) -> list[np.ndarray]:
        """Every layer's output for rows X (inputs first, logits last), from a parameter snapshot.

        For drawing only; `executor.logits` gives the same logits (a test checks it).
        """
        params = self.params if params is None else params
        activation = ACTIVATIONS[self.config.model.activation]  # the compiled executor's own batch kernel
        outputs, start = [X], 0
        layers = self.state.model.layers  # type: ignore[attr-defined]  # the playground trains MLPs
        for i, layer in enumerate(layers):
            n_in, n_out = len(layer.neurons[0].w), len(layer.neurons)
            block = params[start : start + n_out * (n_in + 1)].reshape(n_out, n_in + 1)
            start += block.size
            Z = outputs[-1] @ block[:, :n_in].T + block[:, n_in]
            outputs.append(Z if i == len(layers) - 1 else activation.batch(np, Z))
        return outputs

    def _grid(self) -> np.ndarray:
        x0, x1, y0, y1 = self._extent
        if self.data.feature_count == 1:
            return np.linspace(x0, x1, GRID * 2)[:, None]
        xs = x0 + (np.arange(GRID) + 0.5) * (x1 - x0) / GRID
        ys = y1 - (np.arange(GRID) + 0.5) * (y1 - y0) / GRID  # row 0 is the top of the picture
        gx, gy = np.meshgrid(xs, ys)
        return np.column_stack([gx.ravel(), gy.ravel()])

    def frame(self) -> dict:
        """What changes every epoch: the output over the plane, each neuron's thumbnail, the weights."""
        params = self.params
        outputs = self.layer_outputs(self._grid(), params)
        logits = outputs[-1]
        if self.data.feature_count == 2:
            picked = np.arange(GRID)[2::4]  # a THUMB x THUMB subgrid
            cells = (picked[:, None] * GRID + picked[None, :]).ravel()
        else:
            cells = np.arange(0, GRID * 2, 4)
        if self.data.task == "classification":
            probs = softmax(logits)
            k = probs.shape[1]
            strength = (probs.max(axis=1) - 1.0 / k) / (1.0 - 1.0 / k)
            output = {"label": _bytes(probs.argmax(axis=1)), "strength": _bytes(255.0 * strength)}
        else:
            output = {"curve": np.round(logits[:, 0], 5).tolist()}
        nodes = []
        for values in outputs:
            thumbs, scales = _signed_bytes(values[cells].T)
            nodes.append({"thumbs": thumbs, "scale": scales})
        weights, start = [], 0
        for layer in self.state.model.layers:  # type: ignore[attr-defined]  # the playground trains MLPs
            n_in, n_out = len(layer.neurons[0].w), len(layer.neurons)
            block = params[start : start + n_out * (n_in + 1)].reshape(n_out, n_in + 1)
            start += block.size
            weights.append({"w": np.round(block[:, :n_in], 4).tolist(), "b": np.round(block[:, n_in], 4).tolist()})
        return {"output": output, "nodes": nodes, "weights": weights}
