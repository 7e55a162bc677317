"""The run schema: defaults, files, overrides, every validation message, and fuzzing."""

import copy
import inspect
import os
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from micronet.config import (
    HIDDEN_ACTIVATIONS,
    ConfigError,
    RunConfig,
    apply_overrides,
    config_to_dict,
    load_config,
    parse_config,
)
from micronet.optim import OPTIMIZERS, SCHEDULES

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.yaml"))
MOONS = next(p for p in CONFIGS if p.name == "moons.yaml")


def write(tmp_path, text, name="run.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


# ----- defaults and registries ----------------------------------------------------


def test_empty_mapping_gives_the_documented_defaults():
    cfg = parse_config({})
    assert (cfg.name, cfg.seed, cfg.task, cfg.loss.name, cfg.loss.delta) == ("run", 0, "classification", "cross_entropy", None)
    assert (cfg.dataset.name, cfg.dataset.n_samples, cfg.dataset.noise) == ("moons", 300, 0.1)
    assert cfg.dataset.factor is None and cfg.dataset.path is None
    assert (cfg.dataset.test_size, cfg.dataset.standardize) == (0.25, True)
    assert (cfg.model.hidden, cfg.model.activation) == ([16, 16], "relu")
    opt = cfg.optimizer
    assert (opt.name, opt.lr, opt.momentum, opt.nesterov, opt.weight_decay) == ("sgd", 0.1, 0.9, False, 0.0)
    assert opt.betas is None and opt.eps is None
    assert (opt.schedule.name, opt.schedule.interval) == ("constant", "epoch")
    t = cfg.training
    assert (t.epochs, t.batch_size, t.shuffle, t.backend) == (100, 32, True, "compiled")
    assert (t.validation_split, t.early_stopping) == (0.0, None)


def test_none_sections_and_values_mean_defaults():
    assert parse_config({"dataset": None, "optimizer": {"lr": None}, "seed": None}) == parse_config({})


def test_adam_gets_its_own_defaults():
    opt = parse_config({"optimizer": {"name": "adam"}}).optimizer
    assert (opt.betas, opt.eps, opt.momentum, opt.nesterov) == ((0.9, 0.999), 1e-8, None, None)
    assert opt.params() == {"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}


def test_schedule_defaults_per_schedule():
    def schedule(**s):
        return parse_config({"optimizer": {"schedule": s}}).optimizer.schedule.params()

    assert schedule(name="step", step_size=5) == {"step_size": 5, "gamma": 0.1}
    assert schedule(name="exponential") == {"gamma": 0.95}
    assert schedule(name="cosine") == {"T_max": None, "eta_min": 0.0}
    assert schedule(name="linear") == {"start_factor": 1.0, "end_factor": 0.1, "total_iters": None}
    assert schedule(name="invscaling") == {"power_t": 0.5}
    assert schedule(name="constant") == {}


def test_the_config_takes_each_optimizer_and_schedule_option_as_its_class_declares_it():
    for registry in (OPTIMIZERS, SCHEDULES):
        for cls in registry.values():
            signature = inspect.signature(cls).parameters
            assert set(cls.options) <= set(signature)
            for key, option in cls.options.items():  # the class's default is the declaration's
                wanted = inspect.Parameter.empty if option.required or option.run_length else option.default
                assert signature[key].default == wanted, (cls, key)


def test_params_build_the_optimizer_and_schedule():
    from micronet.engine import Value

    cfg = parse_config({"optimizer": {"name": "sgd", "nesterov": True, "schedule": {"name": "step", "step_size": 2}}})
    opt = OPTIMIZERS[cfg.optimizer.name]([Value(1.0)], **cfg.optimizer.params())
    SCHEDULES[cfg.optimizer.schedule.name](opt, **cfg.optimizer.schedule.params())


def test_numpy_scalars_and_tuples_from_python_callers_are_accepted():
    import numpy as np

    cfg = parse_config({"seed": np.int64(3), "model": {"hidden": (np.int32(4),)}, "optimizer": {"lr": np.float64(0.5)}})
    assert cfg.seed == 3 and type(cfg.seed) is int
    assert cfg.model.hidden == [4] and type(cfg.model.hidden[0]) is int
    assert cfg.optimizer.lr == 0.5 and type(cfg.optimizer.lr) is float


# ----- shipped configs -------------------------------------------------------------


def test_all_seven_configs_are_shipped():
    names = {p.stem for p in CONFIGS}
    assert {"moons", "circles", "blobs", "iris", "wine", "breast_cancer", "digits"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_loads_and_names_itself(path):
    cfg = load_config(path)
    assert cfg.name == path.stem
    assert cfg.dataset.name == path.stem or cfg.dataset.name == "csv" and Path(cfg.dataset.path).is_file()


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_comments_every_key(path):
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert " # " in line, f"{path.name}: no comment on {line!r}"


# ----- file handling ----------------------------------------------------------------


def test_name_defaults_to_a_safe_file_stem(tmp_path):
    assert load_config(write(tmp_path, "seed: 1\n", "my run (2).yaml")).name == "my_run_2_"
    assert load_config(write(tmp_path, "name: given\n", "other.yaml")).name == "given"


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match=r"config file not found: '.*nope.yaml'"):
        load_config(tmp_path / "nope.yaml")


def test_config_path_that_is_a_directory(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_config_that_is_not_utf8(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"seed: \xff\n")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(path)


def test_unreadable_config(tmp_path, monkeypatch):
    path = write(tmp_path, "seed: 1\n")
    path.chmod(0)
    if os.geteuid() == 0:  # root reads anything: have the open fail as it would for anyone else
        real_open = os.open

        def refuse(name, *args, **kwargs):
            if os.fspath(name) == os.fspath(path):
                raise PermissionError(13, "Permission denied", os.fspath(name))
            return real_open(name, *args, **kwargs)

        monkeypatch.setattr("micronet.files.os.open", refuse)
    with pytest.raises(ConfigError, match="cannot read config .*Permission denied"):
        load_config(path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "is empty; expected a YAML mapping"),
        ("# only a comment\n", "is empty"),
        ("- 1\n- 2\n", "is a list, not a mapping"),
        ("just text\n", "is a str, not a mapping"),
    ],
)
def test_a_document_that_is_not_a_mapping(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_duplicate_keys_name_the_key_and_line(tmp_path):
    text = "seed: 1\noptimizer:\n  lr: 0.1\n  lr: 0.2\n"
    with pytest.raises(ConfigError, match=r"duplicate key 'lr' at line 4, column 3"):
        load_config(write(tmp_path, text))
    with pytest.raises(ConfigError, match=r"duplicate key 'seed' at line 2"):
        load_config(write(tmp_path, "seed: 1\nseed: 2\n"))


def test_merge_keys_may_override_merged_values(tmp_path):
    text = "base: &b {lr: 0.5, name: sgd}\n"
    cfg_text = "optimizer:\n  <<: {lr: 0.5, name: sgd}\n  lr: 0.2\n"
    assert load_config(write(tmp_path, cfg_text)).optimizer.lr == 0.2
    with pytest.raises(ConfigError, match="unknown key 'base'"):
        load_config(write(tmp_path, text))


@pytest.mark.parametrize(
    "text, where",
    [
        ("seed: 1\noptimizer: [1, 2\n", "line 3, column 1"),
        ("seed: 1\n  lr: 2\n", "line 2, column 5"),
        ("dataset:\n\tname: moons\n", "line 2, column 1"),
        ("a: 'unclosed\n", "line 2, column 1"),
    ],
)
def test_malformed_yaml_reports_line_and_column(tmp_path, text, where):
    with pytest.raises(ConfigError, match=where):
        load_config(write(tmp_path, text))


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
        "!!python/object/apply:builtins.exec [\"open('{marker}', 'w').close()\"]",
        "!!python/name:os.system",
        "!!python/module:os",
    ],
)
def test_python_tags_are_refused_and_never_run(tmp_path, tag):
    marker = tmp_path / "marker"
    text = "seed: " + tag.format(marker=marker) + "\n"
    with pytest.raises(ConfigError, match=r"YAML tag 'tag:yaml.org,2002:python/.*' is not allowed.* line 1, column 7"):
        load_config(write(tmp_path, text))
    with pytest.raises(ConfigError, match="is not allowed"):
        load_config(MOONS, ["seed=" + tag.format(marker=marker)])
    assert not marker.exists()


def test_scalar_tags_with_bad_text_are_config_errors(tmp_path):
    for text in ["seed: !!float abc\n", "seed: !!int x\n", "seed: !!timestamp nope\n"]:
        with pytest.raises(ConfigError, match="malformed YAML"):
            load_config(write(tmp_path, text))


# ----- overrides ----------------------------------------------------------------------


def test_overrides_set_scalars_lists_and_nested_keys():
    cfg = load_config(
        MOONS,
        [
            "optimizer.lr=0.05",
            "model.hidden=[32,32]",
            "seed=3",
            "training.batch_size=full",
            "optimizer.schedule.name=step",
            "optimizer.schedule.step_size=10",
            "dataset.noise=0.2",
            "name=moons-wide",
        ],
    )
    assert cfg.optimizer.lr == 0.05 and cfg.model.hidden == [32, 32] and cfg.seed == 3
    assert cfg.training.batch_size == "full" and cfg.dataset.noise == 0.2 and cfg.name == "moons-wide"
    assert cfg.optimizer.schedule.params() == {"step_size": 10, "gamma": 0.1}


def test_exponent_without_a_dot_is_a_number():
    # PyYAML reads 1e-3 as a string; float fields accept it anyway.
    assert load_config(MOONS, ["optimizer.lr=1e-3"]).optimizer.lr == 1e-3
    assert parse_config({"optimizer": {"lr": "1e-3", "weight_decay": "5E-4"}}).optimizer.weight_decay == 5e-4


def test_null_override_unsets_an_option_so_the_optimizer_can_change():
    with pytest.raises(ConfigError, match="optimizer.momentum does not apply to optimizer 'adam'"):
        load_config(MOONS, ["optimizer.name=adam"])
    cfg = load_config(MOONS, ["optimizer.name=adam", "optimizer.momentum=null", "optimizer.nesterov=null"])
    assert cfg.optimizer.name == "adam" and cfg.optimizer.momentum is None and cfg.optimizer.betas == (0.9, 0.999)


def test_a_section_override_replaces_the_section():
    cfg = load_config(MOONS, ["optimizer.schedule={name: cosine, T_max: 50}"])
    assert cfg.optimizer.schedule.params() == {"T_max": 50, "eta_min": 0.0}


def test_last_override_wins_and_value_may_contain_equals():
    cfg = load_config(MOONS, ["seed=1", "seed=2", "name=a", "dataset.name=csv", "dataset.noise=null",
                              "dataset.n_samples=null", "dataset.path=x=y.csv", "dataset.target=label"])
    assert cfg.seed == 2 and cfg.dataset.path == "x=y.csv"


def test_overrides_do_not_change_the_callers_mapping():
    raw = {"optimizer": {"lr": 0.5}}
    before = copy.deepcopy(raw)
    assert apply_overrides(raw, ["optimizer.lr=0.1"]) == {"optimizer": {"lr": 0.1}}
    assert raw == before


def test_override_into_a_section_that_is_missing_or_null(tmp_path):
    cfg = load_config(write(tmp_path, "training:\n"), ["training.epochs=5", "optimizer.schedule.name=exponential"])
    assert cfg.training.epochs == 5 and cfg.optimizer.schedule.name == "exponential"


# ----- the catalogue of bad configs -----------------------------------------------------

# (config mapping, expected message) -- each must raise ConfigError matching the message.
BAD_CONFIGS = [
    ([1, 2], r"config must be a mapping of settings, got list"),
    ({"sede": 1}, r"unknown key 'sede'; did you mean 'seed'\? \(valid: name, seed, task, dataset"),
    ({1: 2}, r"unknown key '1' \(valid: name, seed"),
    ({"name": ""}, r"name must be 1-100 letters, digits"),
    ({"name": "a/b"}, r"name must be .*it names a directory.*got 'a/b'"),
    ({"name": ".."}, r"name must be"),
    ({"name": 5}, r"name must be .*got 5"),
    ({"seed": -1}, r"seed must be an int in \[0, 4294967295\], got -1"),
    ({"seed": 2**32}, r"seed must be an int in \[0, 4294967295\], got 4294967296"),
    ({"seed": 1.0}, r"seed must be an int .*got 1.0"),
    ({"seed": True}, r"seed must be an int .*got True"),
    ({"seed": "3"}, r"seed must be an int .*got '3'"),
    ({"dataset": 3}, r"dataset must be a mapping, got int 3"),
    ({"dataset": {"name": "mons"}}, r"dataset.name must be one of moons, circles, .*; got 'mons' \(did you mean 'moons'\?\)"),
    ({"dataset": {"nsamples": 3}}, r"unknown key 'dataset.nsamples'; did you mean 'dataset.n_samples'\?"),
    ({"dataset": {"name": "iris", "n_samples": 100}}, r"dataset.n_samples does not apply to dataset 'iris' \(it takes: no options\)"),
    ({"dataset": {"factor": 0.5}}, r"dataset.factor does not apply to dataset 'moons' \(it takes: n_samples, noise\)"),
    ({"dataset": {"n_samples": 1}}, r"dataset.n_samples must be an int >= 2, got 1"),
    ({"dataset": {"n_samples": 2.5}}, r"dataset.n_samples must be an int >= 2, got 2.5"),
    ({"dataset": {"noise": -0.1}}, r"dataset.noise must be a finite number >= 0, got -0.1"),
    ({"dataset": {"noise": float("nan")}}, r"dataset.noise must be a finite number >= 0, got nan"),
    ({"dataset": {"noise": "inf"}}, r"dataset.noise must be a finite number >= 0, got 'inf'"),
    ({"dataset": {"noise": False}}, r"dataset.noise must be a finite number >= 0, got False"),
    ({"dataset": {"name": "circles", "factor": 1.0}}, r"dataset.factor must be a finite number in \(0, 1\), got 1.0"),
    ({"dataset": {"name": "blobs", "centers": 1}}, r"dataset.centers must be an int >= 2, got 1"),
    ({"dataset": {"name": "blobs", "cluster_std": 0}}, r"dataset.cluster_std must be a finite number > 0, got 0"),
    ({"dataset": {"name": "blobs", "n_features": 0}}, r"dataset.n_features must be an int >= 1, got 0"),
    ({"dataset": {"name": "classification", "n_classes": 1}}, r"dataset.n_classes must be an int >= 2, got 1"),
    ({"dataset": {"name": "classification", "n_informative": 3}}, r"dataset.n_informative must be <= dataset.n_features \(2\), got 3"),
    ({"dataset": {"name": "classification", "n_classes": 5}}, r"dataset.n_classes must be <= 2\*\*dataset.n_informative \(4\), got 5"),
    ({"dataset": {"name": "gaussian_quantiles", "n_samples": 2}}, r"dataset.n_samples must be >= dataset.n_classes \(3\), got 2"),
    ({"dataset": {"name": "csv", "target": "y"}}, r"dataset.path is required for dataset 'csv'"),
    ({"dataset": {"name": "csv", "path": "a.csv"}}, r"dataset.target is required for dataset 'csv'"),
    ({"dataset": {"name": "csv", "path": "", "target": "y"}}, r"dataset.path must be a non-empty string, got ''"),
    ({"dataset": {"test_size": 1}}, r"dataset.test_size must be a finite number in \(0, 1\), got 1"),
    ({"dataset": {"test_size": 0}}, r"dataset.test_size must be a finite number in \(0, 1\), got 0"),
    ({"dataset": {"standardize": "yes"}}, r"dataset.standardize must be true or false, got 'yes'"),
    ({"model": [16]}, r"model must be a mapping, got list \[16\]"),
    ({"model": {"hidden": 16}}, r"model.hidden must be a list of ints >= 1 .*got 16"),
    ({"model": {"hidden": [16, 0]}}, r"model.hidden\[1\] must be an int >= 1, got 0"),
    ({"model": {"hidden": [16.0]}}, r"model.hidden\[0\] must be an int >= 1, got 16.0"),
    ({"model": {"activation": "linear"}}, rf"model.activation must be one of {', '.join(HIDDEN_ACTIVATIONS)}; got 'linear'"),
    ({"model": {"activation": "Relu"}}, r"model.activation must be one of .*; got 'Relu' \(did you mean 'relu'\?\)"),
    ({"loss": "nll"}, r"loss must be one of cross_entropy, hinge, mse; got 'nll'"),
    ({"optimizer": {"name": "rmsprop"}}, r"optimizer.name must be one of sgd, adam; got 'rmsprop'"),
    ({"optimizer": {"lrr": 0.1}}, r"unknown key 'optimizer.lrr'; did you mean 'optimizer.lr'\? \(valid: name, lr, momentum"),
    ({"optimizer": {"lr": -0.1}}, r"optimizer.lr must be a finite number > 0, got -0.1"),
    ({"optimizer": {"lr": 0}}, r"optimizer.lr must be a finite number > 0, got 0"),
    ({"optimizer": {"lr": float("inf")}}, r"optimizer.lr must be a finite number > 0, got inf"),
    ({"optimizer": {"lr": "fast"}}, r"optimizer.lr must be a finite number > 0, got 'fast'"),
    ({"optimizer": {"lr": 10**400}}, r"optimizer.lr must be a finite number > 0"),
    ({"optimizer": {"lr": [0.1]}}, r"optimizer.lr must be a finite number > 0, got \[0.1\]"),
    ({"optimizer": {"momentum": 1.0}}, r"optimizer.momentum must be a finite number in \[0, 1\), got 1.0"),
    ({"optimizer": {"nesterov": 1}}, r"optimizer.nesterov must be true or false, got 1"),
    ({"optimizer": {"nesterov": True, "momentum": 0}}, r"optimizer.nesterov needs optimizer.momentum > 0, got 0.0"),
    ({"optimizer": {"name": "adam", "momentum": 0.9}}, r"optimizer.momentum does not apply to optimizer 'adam' \(it takes: lr, betas, eps, weight_decay\)"),
    ({"optimizer": {"betas": [0.9, 0.99]}}, r"optimizer.betas does not apply to optimizer 'sgd' \(it takes: lr, momentum, nesterov, weight_decay\)"),
    ({"optimizer": {"name": "adam", "betas": [0.9]}}, r"optimizer.betas must be a pair \(beta1, beta2\) of finite numbers, each in \[0, 1\), got \[0.9\]"),
    ({"optimizer": {"name": "adam", "betas": [0.9, 1.0]}}, r"optimizer.betas\[1\] must be a finite number in \[0, 1\), got 1.0"),
    ({"optimizer": {"name": "adam", "eps": 0}}, r"optimizer.eps must be a finite number > 0, got 0"),
    ({"optimizer": {"weight_decay": -1}}, r"optimizer.weight_decay must be a finite number >= 0, got -1"),
    ({"optimizer": {"schedule": 3}}, r"optimizer.schedule must be a mapping like \{name: cosine\}, got int 3"),
    ({"optimizer": {"schedule": {"name": "cos"}}}, r"optimizer.schedule.name must be one of constant, step, .*; got 'cos' \(did you mean 'cosine'\?\)"),
    ({"optimizer": {"schedule": {"name": "step"}}}, r"optimizer.schedule.step_size is required for schedule 'step'"),
    ({"optimizer": {"schedule": {"name": "step", "step_size": 0}}}, r"optimizer.schedule.step_size must be an int >= 1, got 0"),
    ({"optimizer": {"schedule": {"name": "cosine", "gamma": 0.5}}}, r"optimizer.schedule.gamma does not apply to schedule 'cosine' \(it takes: T_max, eta_min\)"),
    ({"optimizer": {"schedule": {"T_max": 10}}}, r"optimizer.schedule.T_max does not apply to schedule 'constant' \(it takes: no options\)"),
    ({"optimizer": {"schedule": {"name": "exponential", "gamma": 0}}}, r"optimizer.schedule.gamma must be a finite number > 0, got 0"),
    ({"optimizer": {"schedule": {"name": "cosine", "T_max": 1.5}}}, r"optimizer.schedule.T_max must be an int >= 1, got 1.5"),
    ({"optimizer": {"schedule": {"name": "linear", "start_factor": 0}}}, r"optimizer.schedule.start_factor must be a finite number in \(0, 1\], got 0"),
    ({"optimizer": {"schedule": {"name": "linear", "end_factor": 1.5}}}, r"optimizer.schedule.end_factor must be a finite number in \[0, 1\], got 1.5"),
    ({"optimizer": {"schedule": {"name": "invscaling", "power_t": -1}}}, r"optimizer.schedule.power_t must be a finite number >= 0, got -1"),
    ({"optimizer": {"schedule": {"interval": "batch"}}}, r"optimizer.schedule.interval must be one of epoch, step; got 'batch'"),
    ({"optimizer": {"schedule": {"nmae": "step"}}}, r"unknown key 'optimizer.schedule.nmae'; did you mean 'optimizer.schedule.name'\?"),
    ({"training": {"epochs": 0}}, r"training.epochs must be an int >= 1, got 0"),
    ({"training": {"epochs": 2.5}}, r"training.epochs must be an int >= 1, got 2.5"),
    ({"training": {"batch_size": "all"}}, r"training.batch_size must be an int >= 1 or 'full', got 'all'"),
    ({"training": {"batch_size": 0}}, r"training.batch_size must be an int >= 1 or 'full', got 0"),
    ({"training": {"shuffle": "no"}}, r"training.shuffle must be true or false, got 'no'"),
    ({"training": {"backend": "gpu"}}, r"training.backend must be one of compiled, eager; got 'gpu'"),
    ({"training": {"epoch": 5}}, r"unknown key 'training.epoch'; did you mean 'training.epochs'\?"),
]


@pytest.mark.parametrize("mapping, message", BAD_CONFIGS, ids=[m for _, m in BAD_CONFIGS])
def test_bad_config_is_refused_with_key_and_expectation(mapping, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(mapping)


BAD_OVERRIDES = [
    (["optimizer.lr"], r"malformed override 'optimizer.lr': expected KEY=VALUE"),
    (["=3"], r"malformed override '=3': the key must be a dotted path"),
    (["optimizer..lr=1"], r"malformed override 'optimizer..lr=1'"),
    (["optimizer.lr="], r"malformed override 'optimizer.lr=': no value \(write optimizer.lr=null to unset\)"),
    (["model.hidden=[32,"], r"override 'model.hidden=\[32,'.*line 1, column"),
    (["optimizer.lrr=0.1"], r"unknown key 'optimizer.lrr' in override 'optimizer.lrr=0.1'; did you mean 'optimizer.lr'\?"),
    (["modle.hidden=[3]"], r"unknown key 'modle' in override .*did you mean 'model'\?"),
    (["seed.value=1"], r"override 'seed.value=1': 'seed' is not a section"),
    (["optimizer.schedule.T_maxx=3"], r"unknown key 'optimizer.schedule.T_maxx' .*did you mean 'optimizer.schedule.T_max'\?"),
    (["optimizer.lr=-1"], r"optimizer.lr must be a finite number > 0, got -1"),
    (["training.epochs=ten"], r"training.epochs must be an int >= 1, got 'ten'"),
    (["model.hidden=[32, -1]"], r"model.hidden\[1\] must be an int >= 1, got -1"),
    (["optimizer.lr=nan"], r"optimizer.lr must be a finite number > 0, got 'nan'"),
    (["optimizer.lr=.nan"], r"optimizer.lr must be a finite number > 0, got nan"),
    (["dataset.name=iris"], r"dataset.n_samples does not apply to dataset 'iris'"),
    (["optimizer={a: 1, a: 2}"], r"duplicate key 'a'"),
    ([3], r"malformed override 3"),
    ("seed=3", r"overrides must be a list of KEY=VALUE strings"),
]


@pytest.mark.parametrize("overrides, message", BAD_OVERRIDES, ids=[str(o) for o, _ in BAD_OVERRIDES])
def test_bad_override_is_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(MOONS, overrides)


def test_override_into_a_value_that_is_not_a_mapping(tmp_path):
    path = write(tmp_path, "optimizer: [1, 2]\n")
    with pytest.raises(ConfigError, match=r"override 'optimizer.lr=1': 'optimizer' is list \[1, 2\] in the config, not a mapping"):
        load_config(path, ["optimizer.lr=1"])


def test_messages_stay_short_for_huge_values():
    with pytest.raises(ConfigError) as info:
        parse_config({"seed": "x" * 10_000})
    assert len(str(info.value)) < 200
    with pytest.raises(ConfigError, match="seed must be an int"):
        parse_config({"seed": [10**5000]})


# ----- round trip -------------------------------------------------------------------------


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_resolved_config_round_trips_through_yaml(tmp_path, path):
    cfg = load_config(path)
    assert parse_config(config_to_dict(cfg)) == cfg
    out = write(tmp_path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False), "resolved.yaml")
    assert load_config(out) == cfg


@pytest.mark.parametrize(
    "overrides",
    [
        ["optimizer.name=adam", "optimizer.momentum=null", "optimizer.nesterov=null", "optimizer.lr=1e-3"],
        ["optimizer.schedule={name: linear, total_iters: 7}", "optimizer.schedule.interval=step"],
        ["dataset={name: classification, n_features: 4, n_informative: 3, n_classes: 3}", "training.batch_size=full"],
        ["dataset={name: csv, path: data.csv, target: label}", "model.hidden=[]", "loss=mse"],
    ],
)
def test_round_trip_with_other_choices(tmp_path, overrides):
    cfg = load_config(MOONS, overrides)
    out = write(tmp_path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False), "resolved.yaml")
    assert load_config(out) == cfg


def test_resolved_dict_leaves_out_options_that_do_not_apply():
    d = config_to_dict(parse_config({"dataset": {"name": "iris"}, "optimizer": {"name": "adam"}}))
    assert d["dataset"] == {"name": "iris", "test_size": 0.25, "standardize": True}
    assert set(d["optimizer"]) == {"name", "lr", "betas", "eps", "weight_decay", "schedule"}
    assert d["optimizer"]["schedule"] == {"name": "constant", "interval": "epoch"}


# ----- fuzzing: any input gives a RunConfig or a ConfigError ------------------------------

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["full", "1e-3", "nan", "adam", "moons", "cosine", "relu", "csv", "step", "-0"]),
)
keys = st.one_of(
    st.sampled_from(["name", "seed", "dataset", "model", "optimizer", "schedule", "training", "lr", "hidden",
                     "n_samples", "noise", "momentum", "betas", "epochs", "batch_size", "T_max", "path"]),
    st.text(max_size=8),
    st.integers(),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=20)


def assert_config_or_error(call):
    try:
        result = call()
    except ConfigError as e:
        assert "\n" not in str(e)  # one line, for the CLI's `error: ...`
    else:
        assert isinstance(result, RunConfig)


@FUZZ
@given(st.dictionaries(keys, values, max_size=6))
def test_fuzz_any_mapping_gives_config_or_config_error(mapping):
    assert_config_or_error(lambda: parse_config(mapping))


@FUZZ
@given(values)
def test_fuzz_any_value_gives_config_or_config_error(value):
    assert_config_or_error(lambda: parse_config(value))


yaml_bits = st.sampled_from(
    ["seed", "optimizer", "lr", ":", " ", "\n", "  ", "-", "[", "]", "{", "}", ",", "'", '"', "&a", "*a",
     "!!python/object:os.system", "!!float", "!!int", "!!binary", "!!set", "<<", "?", "#", "|", ">", "%YAML 1.1",
     "---", "...", "1e-3", "0x1F", ".inf", "null", "~", "yes", "2024-01-01", "\t", "\\", "é", "\x00"]
)


@FUZZ
@given(st.one_of(st.text(max_size=60), st.lists(yaml_bits, max_size=25).map("".join)))
def test_fuzz_any_yaml_text_gives_config_or_config_error(text):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzz.yaml"
        path.write_text(text, encoding="utf-8")
        assert_config_or_error(lambda: load_config(path))
        assert_config_or_error(lambda: load_config(MOONS, ["seed=" + text]))


def paths_of(node, prefix=()):
    """Every (path, value) in a nested mapping."""
    for k, v in node.items():
        yield prefix + (k,), v
        if isinstance(v, dict):
            yield from paths_of(v, prefix + (k,))


SHIPPED = [yaml.safe_load(p.read_text()) for p in CONFIGS]


@st.composite
def mutated_config(draw):
    base = copy.deepcopy(draw(st.sampled_from(SHIPPED)))
    for _ in range(draw(st.integers(1, 4))):
        paths = list(paths_of(base))
        path, _ = draw(st.sampled_from(paths))
        parent = base
        for k in path[:-1]:
            parent = parent[k]
        action = draw(st.sampled_from(["delete", "swap", "replace"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "swap":
            parent[path[-1]] = copy.deepcopy(draw(st.sampled_from(paths))[1])
        else:
            parent[path[-1]] = draw(values)
        if not base:
            break
    return base


@FUZZ
@given(mutated_config())
def test_fuzz_mutated_shipped_configs(mapping):
    assert_config_or_error(lambda: parse_config(mapping))
    text = yaml.safe_dump(mapping)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzz.yaml"
        path.write_text(text)
        assert_config_or_error(lambda: load_config(path))


# ----- task, loss, validation and early stopping ------------------------------------------


@pytest.mark.parametrize(
    "mapping, task, loss",
    [
        ({}, "classification", "cross_entropy"),
        ({"loss": "mse", "dataset": "sine"}, "regression", "mse"),
        ({"dataset": "diabetes"}, "regression", "mse"),
        ({"dataset": "friedman1", "loss": "l1"}, "regression", "l1"),
        ({"task": "classification", "loss": "mse"}, "classification", "mse"),  # one-hot mse
        ({"task": "regression", "dataset": {"name": "csv", "path": "d.csv", "target": "y"}}, "regression", "mse"),
    ],
)
def test_the_task_follows_the_loss_and_the_dataset(mapping, task, loss):
    cfg = parse_config(mapping)
    assert (cfg.task, cfg.loss.name) == (task, loss)


@pytest.mark.parametrize(
    "mapping, message",
    [
        ({"loss": "mse", "dataset": "moons"}, r"dataset 'moons' is a classification dataset, but the task is regression"),
        ({"task": "regression", "dataset": "moons"}, r"dataset 'moons' is a classification dataset, but the task is regression \(its datasets: regression, friedman1, sine, diabetes, csv\)"),
        ({"task": "classification", "dataset": "sine"}, "dataset 'sine' is a regression dataset, but the task is classification"),
        ({"task": "classification", "loss": "huber"}, r"loss 'huber' is for regression, but the task is classification \(its losses: cross_entropy, hinge, mse\)"),
        ({"task": "regression", "dataset": "sine", "loss": "hinge"}, r"loss 'hinge' is for classification, but the task is regression"),
        ({"task": "ranking"}, "task must be one of classification, regression; got 'ranking'"),
        ({"dataset": "sine", "loss": {"name": "mse", "delta": 1.0}}, r"loss.delta does not apply to loss 'mse' \(it takes: no options\)"),
        ({"dataset": "sine", "loss": {"name": "huber", "delta": 0}}, r"loss.delta must be a finite number > 0, got 0"),
        ({"dataset": {"name": "moons", "standardize_target": True}}, "dataset.standardize_target applies to task regression only"),
        ({"dataset": {"name": "friedman1", "n_features": 4}}, r"dataset.n_features must be an int >= 5, got 4"),
        ({"training": {"validation_split": 1.0}}, r"training.validation_split must be a finite number in \[0, 1\), got 1.0"),
        ({"training": {"early_stopping": "soon"}}, "training.early_stopping must be null, true, a patience"),
        ({"training": {"early_stopping": {"patience": 0}}}, r"training.early_stopping.patience must be an int >= 1, got 0"),
        ({"training": {"early_stopping": {"monitor": "val_loss"}}}, r"training.early_stopping.monitor 'val_loss' needs training.validation_split > 0"),
        ({"training": {"early_stopping": {"monitor": "test_loss"}}}, r"training.early_stopping.monitor must be one of loss, accuracy, balanced_accuracy, f1_macro, val_loss, "
                                                              r"val_accuracy, val_balanced_accuracy, val_f1_macro; got 'test_loss'"),
        ({"training": {"early_stopping": {"wait": 3}}}, r"unknown key 'training.early_stopping.wait'"),
    ],
)
def test_task_loss_and_stopping_mistakes_are_named(mapping, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(mapping)


def test_huber_takes_a_delta_defaulting_to_one():
    assert parse_config({"dataset": "sine", "loss": "huber"}).loss.params() == {"delta": 1.0}
    assert parse_config({"dataset": "sine", "loss": {"name": "huber", "delta": 0.25}}).loss.delta == 0.25


def test_a_section_may_be_given_by_name_alone():
    assert parse_config({"dataset": "iris", "optimizer": "adam"}) == parse_config(
        {"dataset": {"name": "iris"}, "optimizer": {"name": "adam"}}
    )
    assert parse_config({"optimizer": {"schedule": "cosine"}}).optimizer.schedule.name == "cosine"


@pytest.mark.parametrize(
    "given, expected",
    [
        (None, None),
        (False, None),
        (True, (10, 0.0, True, "val_loss")),
        (4, (4, 0.0, True, "val_loss")),
        ({"patience": 2, "min_delta": 0.01, "restore_best": False, "monitor": "val_accuracy"},
         (2, 0.01, False, "val_accuracy")),
    ],
)
def test_early_stopping_short_forms(given, expected):
    stopping = parse_config({"training": {"validation_split": 0.2, "early_stopping": given}}).training.early_stopping
    if expected is None:
        assert stopping is None
    else:
        assert (stopping.patience, stopping.min_delta, stopping.restore_best, stopping.monitor) == expected


def test_early_stopping_without_validation_monitors_the_training_loss():
    assert parse_config({"training": {"early_stopping": 3}}).training.early_stopping.monitor == "loss"
    regression = parse_config({"dataset": "sine", "training": {"validation_split": 0.1, "early_stopping": True}})
    assert regression.training.early_stopping.monitor == "val_loss"


@pytest.mark.parametrize(
    "mapping",
    [
        {"dataset": "sine", "loss": {"name": "huber", "delta": 0.5}, "training": {"validation_split": 0.2, "early_stopping": 5}},
        {"task": "classification", "loss": "mse", "training": {"early_stopping": {"patience": 3, "min_delta": 0.1}}},
        {"dataset": {"name": "regression", "standardize_target": False}},
    ],
)
def test_new_keys_round_trip_through_config_to_dict(mapping):
    cfg = parse_config(mapping)
    assert parse_config(config_to_dict(cfg)) == cfg


def test_overrides_reach_inside_short_form_sections():
    base = {"dataset": "sine", "loss": "huber", "training": {"validation_split": 0.2, "early_stopping": 4}}
    cfg = parse_config(apply_overrides(base, ["loss.delta=0.5", "training.early_stopping.min_delta=0.01"]))
    assert cfg.loss.delta == 0.5
    assert (cfg.training.early_stopping.patience, cfg.training.early_stopping.min_delta) == (4, 0.01)
    cfg = parse_config(apply_overrides({"dataset": "iris"}, ["dataset.test_size=0.5"]))
    assert (cfg.dataset.name, cfg.dataset.test_size) == ("iris", 0.5)
