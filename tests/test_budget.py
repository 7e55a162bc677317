"""micronet.budget: a model or data set too big for the machine is refused from the config
alone, in one line, before anything is allocated or written."""

import copy
import dataclasses
import re
import tracemalloc

import pytest
import yaml

from micronet import budget
from micronet.config import ConfigError, load_config, parse_config
from micronet.data import DATASETS, load_dataset
from micronet.train import main

TINY = {"name": "tiny", "dataset": {"name": "moons", "n_samples": 60}, "model": {"hidden": [4]},
        "training": {"epochs": 1}}


def one_error_line(stderr):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


# The examples: each ran for a minute and died with a MemoryError.
HUGE = {
    "one-huge-layer": (["model.hidden=[100000000]"],
                       r"has 500,000,002 parameters, over micronet's budget of 10,000,000"),
    "a-thousand-layers": ([f"model.hidden=[{','.join(['1000'] * 1000)}]"], r"has 1,000,004,002 parameters"),
    "a-billion-samples": (["dataset.n_samples=1000000000"], r"1,000,000,000 samples .* over 50% of the"),
    "a-million-features": (["dataset={name: blobs, n_features: 1000000}", "model.hidden=[16,16]"],
                           r"1,000,000 input features and 3 outputs has 16,000,339 parameters, over"),
}


@pytest.mark.parametrize("overrides, message", HUGE.values(), ids=HUGE.keys())
def test_a_run_too_big_is_refused_in_one_line_before_allocating(tmp_path, capsys, overrides, message):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    tracemalloc.start()
    try:
        status = main([str(tmp_path / "tiny.yaml"), *overrides, "--out", str(tmp_path / "run"), "--no-progress"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 2
    assert re.search(message, one_error_line(capsys.readouterr().err))
    assert not (tmp_path / "run").exists()
    assert peak < 50 * 2**20  # nothing near the sizes asked for was allocated


def config(**sections):
    return parse_config({**copy.deepcopy(TINY), **sections})


def test_the_parameter_budget_is_inclusive():
    # 1 input, hidden [w], 1 output: 2w + w + 1 = 3w + 1 parameters.
    assert budget.count_parameters(1, [3333333], 1) == 10_000_000
    assert budget.data_problem(config(model={"hidden": [3333333]}), 0, 1, 1) is None
    problem = budget.data_problem(config(model={"hidden": [3333334]}), 0, 1, 1)
    assert "10,000,003 parameters, over micronet's budget of 10,000,000" in problem


def test_the_memory_budget_is_a_fraction_of_the_memory_available(monkeypatch):
    cfg = config(dataset={"name": "moons", "n_samples": 1000})
    # 1000 samples x (2 + 4 + 2) numbers x 40 bytes + 22 parameters x 400 bytes
    needed = 1000 * 8 * budget.BYTES_PER_NUMBER + 22 * budget.BYTES_PER_PARAMETER
    monkeypatch.setattr(budget, "available_memory", lambda: 2 * needed)
    assert budget.config_problem(cfg) is None
    monkeypatch.setattr(budget, "available_memory", lambda: 2 * needed - 2)
    assert re.search(r"needs about .* over 50% of the .* available; use fewer samples", budget.config_problem(cfg))
    monkeypatch.setattr(budget, "available_memory", lambda: None)  # unknown: the parameter budget still holds
    assert budget.config_problem(cfg) is None


def test_the_available_memory_is_known_here_and_positive():
    available = budget.available_memory()
    assert available is None or available > 0


@pytest.mark.parametrize("name", [n for n in DATASETS if n != "csv"])
def test_the_budget_knows_the_shape_of_every_dataset(name):
    """Each dataset's spec gives its shape; a wrong or missing one would be estimated wrongly: this fails first."""
    spec = DATASETS[name]
    config = parse_config({"dataset": name, "task": spec.task})
    X, y, classes = load_dataset(name, None, 0, spec.task)
    outputs = 1 if spec.task == "regression" else len(classes)
    assert budget._shape(config.dataset, spec.task) == (X.shape[0], X.shape[1], outputs)


@pytest.mark.parametrize("dataset", [
    {"name": "blobs", "n_samples": 40, "n_features": 5, "centers": 4},
    {"name": "classification", "n_samples": 30, "n_features": 6, "n_classes": 4, "n_informative": 3},
    {"name": "gaussian_quantiles", "n_samples": 20, "n_features": 3, "n_classes": 5},
    {"name": "regression", "n_samples": 25, "n_features": 7},
    {"name": "friedman1", "n_samples": 30, "n_features": 6},
    {"name": "sine", "n_samples": 12},
    {"name": "moons", "n_samples": 10},
])
def test_the_shape_follows_the_options(dataset):
    spec = DATASETS[dataset["name"]]
    config = parse_config({"dataset": dataset, "task": spec.task})
    X, y, classes = load_dataset(dataset["name"], config.dataset.options(), 0, spec.task)
    outputs = 1 if spec.task == "regression" else len(classes)
    assert spec.shape(config.dataset.options()) == (X.shape[0], X.shape[1], outputs)
    assert spec.one_input_regression(config.dataset.options()) is (dataset["name"] == "sine")


def test_a_dataset_whose_shape_only_the_data_can_tell_is_checked_after_loading(monkeypatch, tmp_path):
    """A registered dataset without a shape loads and trains; the budget checks the loaded data instead
    (a missing shape used to crash load_config with a TypeError)."""
    from micronet.data import DatasetSpec

    monkeypatch.setitem(DATASETS, "grid", DatasetSpec(lambda options, seed: DATASETS["moons"].load(
        {"n_samples": 20, "noise": 0.0}, seed)))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({**TINY, "dataset": "grid"}))
    config = load_config(tmp_path / "c.yaml")
    assert budget.config_problem(config) is None and DATASETS["grid"].one_input_regression({}) is None
    huge = dataclasses.replace(config, model=dataclasses.replace(config.model, hidden=[10**4, 10**4]))
    assert "over micronet's budget" in budget.data_problem(huge, 20, 2, 2)


def test_a_csv_too_large_for_memory_is_refused_before_it_is_read(tmp_path, monkeypatch):
    path = tmp_path / "data.csv"
    path.write_text("x,label\n" + "1.0,a\n2.0,b\n" * 50)
    cfg = {**TINY, "dataset": {"name": "csv", "path": str(path), "target": "label"}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    load_config(tmp_path / "c.yaml")
    monkeypatch.setattr(budget, "available_memory", lambda: path.stat().st_size * budget.BYTES_PER_CSV_BYTE)
    with pytest.raises(ConfigError, match=r"dataset.path .* reading it needs about .* over 50% of"):
        load_config(tmp_path / "c.yaml")


def test_the_exact_check_after_loading_counts_a_csv_s_classes(tmp_path, capsys):
    """A CSV's label count is known only once it is read; the model is refused before it is built."""
    path = tmp_path / "data.csv"
    path.write_text("x,label\n" + "".join(f"{i}.5,c{i % 1000}\n" for i in range(4000)))
    cfg = {**TINY, "dataset": {"name": "csv", "path": str(path), "target": "label"}, "model": {"hidden": [10000]}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main([str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    # (1 + 1) * 10000 + (10000 + 1) * 1000
    assert "1 input features and 1,000 outputs has 10,021,000 parameters" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()
