"""One table of defaults, the same through every door: the config, micronet.fit, both estimators, the playground.

Each door is used as a user would (nothing but the data given), the settings
it trains with are read back, and they must be the table's (micronet.defaults
and each optimizer's own declaration), except where DIFFERENCES says a door
differs, and then they must be what it says.
"""

import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_moons

import micronet
import micronet.fitting
import micronet.loop
import micronet.sklearn
from micronet.config import ConfigError, parse_config, reference_tables, render_reference
from micronet.defaults import DIFFERENCES, SETTINGS, default
from micronet.nn import MLP
from micronet.optim import OPTIMIZERS
from micronet.sklearn import MicronetClassifier, MicronetRegressor

ROOT = Path(__file__).resolve().parents[1]


def expected(task: str) -> dict:
    """The table's settings for a task, by config key, the chosen optimizer's options included."""
    wanted = {setting.config: default(key, task) for key, setting in SETTINGS.items()}
    optimizer = OPTIMIZERS[wanted["optimizer.name"]]
    wanted.update({f"optimizer.{key}": option.default for key, option in optimizer.options.items()})
    return wanted


def from_config(config) -> dict:
    """What a validated RunConfig trains with, by config key."""
    settings = {
        "seed": config.seed,
        "dataset.name": config.dataset.name,
        "model.hidden": config.model.hidden,
        "model.activation": config.model.activation,
        "loss.name": config.loss.name,
        "optimizer.name": config.optimizer.name,
        **{f"optimizer.{key}": value for key, value in config.optimizer.params().items()},
    }
    for key in ("epochs", "batch_size", "shuffle", "backend", "validation_split"):
        settings[f"training.{key}"] = getattr(config.training, key)
    return settings


class Caught(Exception):
    """Stops training at its first epoch, once the settings are recorded."""


def from_fit(monkeypatch, X, y, **keywords) -> dict:
    """What micronet.fit trains with, read from the loop it starts, by config key."""
    seen = {}

    def record(plan, data, state, executor, **_):
        optimizer = state.optimizer
        seen.update({
            "loss.name": executor.loss.name,
            "optimizer.name": optimizer.name,
            **{f"optimizer.{key}": getattr(optimizer, key) for key in type(optimizer).options},
            "training.epochs": plan.epochs,
            "training.batch_size": plan.batch_size,
            "training.shuffle": plan.shuffle,
            "training.backend": executor.name,
            "training.validation_split": len(data.y_val) / (len(data.y_val) + len(data.y_train)),
            "seed": next(seed for seed in range(10) if micronet.loop.sub_rng(seed, "shuffle").getstate()
                         == state.shuffle_rng.getstate()),
        })
        raise Caught

    monkeypatch.setattr(micronet.fitting, "run_epochs", record)
    monkeypatch.setattr(micronet.fitting, "make_executor", lambda model, loss, backend, n: _Named(loss, backend))
    n_outputs = 2 if y.dtype.kind in "iu" else 1
    with pytest.raises(Caught):
        micronet.fit(MLP(X.shape[1], [3, n_outputs], seed=0), X, y, progress=False, **keywords)
    return seen


class _Named:
    """Stands in for the executor: what fit asked for."""

    def __init__(self, loss, backend):
        self.loss, self.name = loss, backend


def from_estimator(monkeypatch, estimator, X, y) -> dict:
    """What an estimator trains with: the config it builds, read back."""
    configs = []
    parse = micronet.sklearn.parse_config
    monkeypatch.setattr(micronet.sklearn, "parse_config", lambda mapping: configs.append(parse(mapping)) or configs[-1])
    estimator.fit(X, y)
    return from_config(configs[0])


def differences(door: str) -> dict:
    return {d.setting: d.value for d in DIFFERENCES if d.door == door}


@pytest.fixture(scope="module")
def moons():
    X, y = make_moons(40, noise=0.1, random_state=0)
    return X, y


DOOR_KEYS = {  # what each door sets at all (fit takes a model of its own: no hidden layers, no dataset)
    "fit": {s.config for s in SETTINGS.values() if s.fit} | {"seed"},
    "estimators": {s.config for s in SETTINGS.values() if s.estimator},
}


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_every_door_trains_with_the_tables_defaults(monkeypatch, moons, task):
    X, y = moons
    if task == "regression":
        y = y.astype(np.float64)
    wanted = expected(task)
    optimizer_keys = {key for key in wanted if key.startswith("optimizer.")}

    config = from_config(parse_config({"task": task}))
    assert config == wanted

    fit_keys = DOOR_KEYS["fit"] | optimizer_keys
    fitted = from_fit(monkeypatch, X, y, **({"task": "regression"} if task == "regression" else {}))
    assert fitted == {k: v for k, v in wanted.items() if k in fit_keys}

    estimator = (MicronetClassifier if task == "classification" else MicronetRegressor)(epochs=1)
    through_estimator = from_estimator(monkeypatch, estimator, X, y)
    estimator_wanted = {**wanted, **differences("estimators"), "training.epochs": 1}  # epochs=1: a quick fit
    for key in DOOR_KEYS["estimators"] | optimizer_keys:
        if estimator_wanted[key] is not None:  # None: the door has none (a fresh seed per fit)
            assert through_estimator[key] == estimator_wanted[key], key


def test_the_playground_starts_from_the_table_but_where_it_says_it_differs():
    from micronet.playground.trainer import DEFAULT_SETUP, setup_to_config

    wanted = {**expected("classification"), **differences("playground")}
    played = from_config(setup_to_config(DEFAULT_SETUP))
    for key, value in wanted.items():
        if value is not None and key != "training.validation_split":
            assert played[key] == value, key


def test_the_same_bad_lr_is_one_check_in_three_doors_words(moons):
    X, y = moons
    with pytest.raises(ConfigError, match=r"^optimizer.lr must be a finite number > 0, got -1$"):
        parse_config({"optimizer": {"lr": -1}})
    with pytest.raises(ValueError, match=r"^lr= must be a finite number > 0, got -1$"):
        micronet.fit(MLP(2, [2], seed=0), X, y, lr=-1, progress=False)
    with pytest.raises(ValueError, match=r"^lr must be a finite number > 0, got -1$"):
        MicronetClassifier(lr=-1).fit(X, y)


@pytest.mark.parametrize("key, value, config, keyword, parameter", [
    ("epochs", 0, "training.epochs", "epochs=", "epochs"),
    ("momentum", 1.5, "optimizer.momentum", "momentum=", "momentum"),
    ("batch_size", "half", "training.batch_size", "batch_size=", "batch_size"),
    ("shuffle", 1, "training.shuffle", "shuffle=", "shuffle"),
])
def test_each_door_names_the_setting_as_its_caller_wrote_it(moons, key, value, config, keyword, parameter):
    X, y = moons
    section, name = config.split(".")
    with pytest.raises(ConfigError, match=rf"^{config} must be "):
        parse_config({section: {name: value}})
    with pytest.raises(ValueError, match=rf"^{keyword} must be "):
        micronet.fit(MLP(2, [2], seed=0), X, y, progress=False, **{key: value})
    with pytest.raises(ValueError, match=rf"^{parameter} must be "):
        MicronetClassifier(**{key: value}).fit(X, y)


def test_the_estimators_take_every_optimizer_option_as_a_parameter():
    import inspect

    for cls in (MicronetClassifier, MicronetRegressor):
        parameters = inspect.signature(cls).parameters
        for optimizer in OPTIMIZERS.values():
            assert set(optimizer.options) <= set(parameters), (cls, optimizer)
        assert set(micronet.sklearn.OPTIMIZER_PARAMETERS) == {k for o in OPTIMIZERS.values() for k in o.options}


# ----- the docs show the table ----------------------------------------------------------------


def test_docs_config_md_holds_the_tables_the_code_generates():
    text = (ROOT / "docs" / "config.md").read_text()
    assert set(re.findall(r"<!-- generated: ([^>]+?) -->", text)) == set(reference_tables())
    assert render_reference(text) == text, (
        "docs/config.md is stale; regenerate it: python -c \"import pathlib, micronet.config as c; "
        "p = pathlib.Path('docs/config.md'); p.write_text(c.render_reference(p.read_text()))\""
    )


def test_the_hand_written_section_tables_show_the_tables_defaults():
    """The per-section tables of docs/config.md repeat a few defaults in prose; they must agree."""
    text = (ROOT / "docs" / "config.md").read_text()
    for key in ("seed", "hidden", "activation", "epochs", "batch_size", "shuffle", "backend", "validation_split"):
        setting = SETTINGS[key]
        name = setting.config.rsplit(".", 1)[-1]
        row = re.search(rf"^\| `{name}` \| [^|]+ \| ([^|]+) \|", text, re.M)
        shown = str(default(key)).replace("True", "true").replace("False", "false")
        assert row and row.group(1).strip() == f"`{shown}`", (key, row and row.group(0))


def test_the_playgrounds_dataset_defaults_are_the_specs_as_json():
    import json

    from micronet.data import DATASETS
    from micronet.playground.trainer import options

    menus = json.loads(json.dumps(options()))  # what the page receives
    assert menus["datasets"]["moons"]["defaults"] == {"n_samples": 300, "noise": 0.1}
    assert menus["datasets"]["blobs"]["defaults"]["cluster_std"] == DATASETS["blobs"].options["cluster_std"].default
