"""docs/model-format.md against model.json files the trainer writes: every field documented, every documented field real.

Three short runs between them hold every field: sgd on generated data,
adam on a regression with early stopping, and a CSV file (feature names,
the data's digest). A field documented without sub-fields (such as
`training.fingerprint.config`) is compared as a whole; arrays are leaves.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest

import micronet
from micronet.config import load_config
from micronet.train import run

DOC = Path(__file__).parents[1] / "docs" / "model-format.md"

RUNS = {
    "moons": ["training.epochs=1", "dataset.n_samples=40"],
    "sine": ["training.epochs=2", "dataset.n_samples=40", "training.validation_split=0.25",
             "training.early_stopping=1"],
    "csv_iris": ["training.epochs=1"],
}


def documented_fields(text):
    """The first cell of every table row that names a field: `a.b.<i>.c` -> ("a", "b", "<n>", "c")."""
    fields = set()
    for line in text.splitlines():
        found = re.match(r"\|\s*`([\w.<>]+)`\s*\|", line)
        if found:
            fields.add(tuple("<n>" if re.fullmatch(r"<\w+>", part) else part for part in found[1].split(".")))
    return fields


def real_fields(data, leaves, prefix=()):
    """Every path in a JSON object, numbered keys as <n>; stops at arrays and at the documented leaves."""
    found = set()
    for key, value in data.items():
        path = (*prefix, *("<n>" if part.isdigit() else part for part in key.split(".")))
        found.add(path)
        if isinstance(value, dict) and path not in leaves:
            found |= real_fields(value, leaves, path)
    return found


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    files = {}
    for name, overrides in RUNS.items():
        (root / name).mkdir()
        run(load_config(name, overrides), root / name)
        files[name] = json.loads((root / name / "model.json").read_text())
    return files


def test_the_reader_finds_the_documented_fields():
    fields = documented_fields(DOC.read_text())
    assert ("format",) in fields and ("training", "fingerprint", "config") in fields
    assert ("parameters", "layers", "<n>", "neurons", "<n>", "w") in fields
    assert len(fields) > 40


def test_every_field_of_a_real_model_json_is_documented_and_every_documented_field_is_real(model_files):
    documented = documented_fields(DOC.read_text())
    leaves = {f for f in documented if not any(g[:len(f)] == f and g != f for g in documented)}
    real = set().union(*(real_fields(data, leaves) for data in model_files.values()))
    assert sorted(real - documented) == [], "fields the trainer writes that docs/model-format.md does not describe"
    assert sorted(documented - real) == [], "fields docs/model-format.md describes that no model.json here holds"


def test_the_runs_cover_what_the_table_says_varies(model_files):
    assert model_files["moons"]["training"]["optimizer"]["optimizer"] == "sgd"
    assert model_files["sine"]["training"]["optimizer"]["optimizer"] == "adam"
    assert model_files["sine"]["task"] == "regression" and model_files["sine"]["training"]["early_stopping"]
    assert model_files["csv_iris"]["training"]["fingerprint"]["data_sha256"]


def predict_as_the_page_says(data, X):
    """Steps 1 to 3 of "Predicting without micronet", in NumPy alone."""
    pre, arch, params = data["preprocessing"], data["architecture"], data["parameters"]
    z = (X - np.array(pre["mean"])) / np.array(pre["scale"])
    activation = {"relu": lambda v: np.maximum(v, 0), "tanh": np.tanh, "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
                  "linear": lambda v: v}[arch["activation"]]
    for i, width in enumerate(arch["nouts"]):
        W = np.array([params[f"layers.{i}.neurons.{j}.w"] for j in range(width)])
        b = np.array([params[f"layers.{i}.neurons.{j}.b"] for j in range(width)])
        z = z @ W.T + b
        if i < len(arch["nouts"]) - 1:
            z = activation(z)
    if data["task"] == "regression":
        target = data["target_preprocessing"]
        return z * np.array(target["scale"]) + np.array(target["mean"])
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_the_recipe_on_the_page_predicts_as_micronet_does(model_files, name, tmp_path):
    data = model_files[name]
    path = tmp_path / "model.json"
    path.write_text(json.dumps(data))
    predictor = micronet.load(path)
    X = np.random.default_rng(0).standard_normal((30, data["architecture"]["nin"])) + data["preprocessing"]["mean"]
    expected = predictor.predict_proba(X) if data["task"] == "classification" else predictor.predict(X)[:, None]
    np.testing.assert_allclose(predict_as_the_page_says(data, X), expected, rtol=1e-12, atol=1e-12)
