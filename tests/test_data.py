"""The dataset registry, csv reading, the stratified split, standardisation and batches."""

import random
from types import SimpleNamespace

import numpy as np
import pytest

from micronet.data import (
    DATASETS,
    DataError,
    PreparedData,
    Standardizer,
    batches,
    load_dataset,
    prepare_data,
    split,
    split_validation,
)

SHAPES = {
    "moons": (300, 2, 2),
    "circles": (300, 2, 2),
    "blobs": (300, 2, 3),
    "classification": (300, 2, 2),
    "gaussian_quantiles": (300, 2, 3),
    "iris": (150, 4, 3),
    "wine": (178, 13, 3),
    "breast_cancer": (569, 30, 2),
    "digits": (1797, 64, 10),
    "xor": (300, 2, 2),
    "spiral": (300, 2, 2),
}
REGRESSION_SHAPES = {"regression": (300, 5), "friedman1": (500, 10), "sine": (200, 1), "diabetes": (442, 10)}


def test_registry_names():
    assert set(DATASETS) == set(SHAPES) | set(REGRESSION_SHAPES) | {"csv"}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_dataset_loads_offline_with_integer_labels(name):
    X, y, class_names = load_dataset(name, {}, seed=0)
    n, d, k = SHAPES[name]
    assert X.shape == (n, d) and X.dtype == np.float64
    assert y.shape == (n,) and y.dtype == np.int64
    assert sorted(set(y.tolist())) == list(range(k))
    assert len(class_names) == k
    assert all(type(c) in (str, int, float) for c in class_names)


def test_bundled_sets_keep_their_class_names():
    assert load_dataset("iris")[2] == ["setosa", "versicolor", "virginica"]
    assert load_dataset("digits")[2] == list(range(10))


@pytest.mark.parametrize("name", ["moons", "circles", "blobs", "classification", "gaussian_quantiles", "xor", "spiral"])
def test_generated_sets_follow_the_seed(name):
    X1, y1, _ = load_dataset(name, {}, seed=1)
    X2, y2, _ = load_dataset(name, {}, seed=1)
    X3, _, _ = load_dataset(name, {}, seed=2)
    assert np.array_equal(X1, X2) and np.array_equal(y1, y2)
    assert not np.array_equal(X1, X3)


def test_options_reach_the_generator():
    X, y, names = load_dataset("blobs", {"n_samples": 40, "centers": 4, "n_features": 3}, seed=0)
    assert X.shape == (40, 3) and names == [0, 1, 2, 3]
    X, y, names = load_dataset("classification", {"n_features": 5, "n_informative": 3, "n_classes": 4}, seed=0)
    assert X.shape == (300, 5) and len(names) == 4
    X, _, _ = load_dataset("moons", {"n_samples": 50, "noise": None}, seed=0)  # None: the default
    assert X.shape == (50, 2)


def test_an_option_of_another_dataset_is_refused():
    with pytest.raises(DataError, match=r"dataset\.factor does not apply to dataset 'moons' \(it takes: n_samples, noise\)"):
        load_dataset("moons", {"factor": 0.5})
    with pytest.raises(DataError, match="it takes: no options"):
        load_dataset("iris", {"n_samples": 10})
    with pytest.raises(DataError, match="dataset.name must be one of moons"):
        load_dataset("mnist")


def test_fewer_than_two_classes_is_an_error(tmp_path):
    with pytest.raises(DataError, match="dataset.centers must be an int >= 2, got 1"):  # the option's rule
        load_dataset("blobs", {"n_samples": 2, "centers": 1})
    path = tmp_path / "one.csv"
    path.write_text("x,label\n1,a\n2,a\n3,a\n")
    with pytest.raises(DataError, match="need at least 2"):  # the data's own check
        load_dataset("csv", {"path": str(path), "target": "label"})


# ----- split ------------------------------------------------------------------


def test_split_is_stratified_and_seeded():
    X, y, _ = load_dataset("iris")
    X_train, X_test, y_train, y_test = split(X, y, 0.2, seed=0)
    assert len(X_test) == 30 and len(X_train) == 120
    assert np.bincount(y_test).tolist() == [10, 10, 10]
    assert np.bincount(y_train).tolist() == [40, 40, 40]
    again = split(X, y, 0.2, seed=0)
    other = split(X, y, 0.2, seed=1)
    assert np.array_equal(again[1], X_test)
    assert not np.array_equal(other[1], X_test)


def test_split_names_the_numbers_when_too_few_test_samples():
    y = np.array([0, 0, 1, 1])
    with pytest.raises(DataError, match=r"dataset.n_samples=4 with dataset.test_size=0.25 gives 1 test sample for 2 classes"):
        split(np.zeros((4, 1)), y, 0.25, seed=0)


def test_split_names_the_numbers_when_too_few_training_samples():
    y = np.array([0, 0, 1, 1, 2, 2])
    with pytest.raises(DataError, match="gives 2 training samples for 3 classes"):
        split(np.zeros((6, 1)), y, 0.6, seed=0)


def test_split_refuses_a_class_with_one_member():
    y = np.array([0, 0, 0, 0, 1])
    with pytest.raises(DataError, match="class 1 has 1 sample"):
        split(np.zeros((5, 1)), y, 0.4, seed=0)


# ----- standardiser -------------------------------------------------------------


def test_standardizer_uses_training_statistics_only():
    cfg = SimpleNamespace(name="wine", test_size=0.25, standardize=True)
    data = prepare_data(cfg, seed=0)
    X, y, _ = load_dataset("wine")
    X_train, X_test, _, _ = split(X, y, 0.25, seed=0)
    assert np.allclose(data.scaler.mean_, X_train.mean(axis=0))
    assert np.allclose(data.scaler.scale_, X_train.std(axis=0))
    assert not np.allclose(data.scaler.mean_, X.mean(axis=0))
    assert np.allclose(data.X_train.mean(axis=0), 0) and np.allclose(data.X_train.std(axis=0), 1)
    assert np.allclose(data.X_test, (X_test - X_train.mean(axis=0)) / X_train.std(axis=0))


def test_constant_feature_gets_scale_one():
    X = np.array([[1.0, 0.1], [3.0, 0.1], [5.0, 0.1]])
    s = Standardizer().fit(X)
    assert s.scale_.tolist()[1] == 1.0
    assert s.transform(X)[:, 1].tolist() == [0.0, 0.0, 0.0]


def test_standardizer_round_trips_as_plain_lists():
    s = Standardizer().fit(np.array([[1.0, 2.0], [3.0, 6.0]]))
    d = s.to_dict()
    assert d == {"mean": [2.0, 4.0], "scale": [1.0, 2.0]}
    t = Standardizer.from_dict(d)
    x = np.array([[0.0, 0.0]])
    assert np.array_equal(t.transform(x), s.transform(x))


def test_unfitted_standardizer_says_so():
    with pytest.raises(ValueError, match="not fitted"):
        Standardizer().transform(np.zeros((1, 2)))


def test_prepare_data_without_standardisation():
    cfg = SimpleNamespace(name="moons", n_samples=40, noise=0.2, test_size=0.25, standardize=False)
    data = prepare_data(cfg, seed=3)
    assert isinstance(data, PreparedData) and data.scaler is None
    assert data.X_train.shape == (30, 2) and data.X_test.shape == (10, 2)
    assert data.feature_count == 2 and data.n_classes == 2 and data.class_names == [0, 1]


# ----- batches -------------------------------------------------------------------


def test_batches_cover_every_index_once():
    out = batches(10, 3, random.Random(0))
    assert [len(b) for b in out] == [3, 3, 3, 1]
    assert sorted(i for b in out for i in b) == list(range(10))


def test_batch_size_larger_than_the_set_is_one_batch():
    assert batches(5, 32, random.Random(0), shuffle=False) == [[0, 1, 2, 3, 4]]
    assert batches(5, "full", random.Random(0), shuffle=False) == [[0, 1, 2, 3, 4]]


def test_batches_without_shuffle_keep_order_and_leave_rng_alone():
    rng = random.Random(0)
    state = rng.getstate()
    assert batches(5, 2, rng, shuffle=False) == [[0, 1], [2, 3], [4]]
    assert rng.getstate() == state


def test_batches_resume_exactly_from_a_saved_rng_state():
    rng = random.Random(7)
    batches(20, 4, rng)
    saved = rng.getstate()
    expected = [batches(20, 4, rng) for _ in range(3)]
    resumed = random.Random()
    resumed.setstate(saved)
    assert [batches(20, 4, resumed) for _ in range(3)] == expected


def test_shuffled_epochs_differ():
    rng = random.Random(0)
    assert batches(20, 4, rng) != batches(20, 4, rng)


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, "half"])
def test_bad_batch_size_is_refused(bad):
    with pytest.raises(ValueError, match="batch_size must be an int >= 1 or 'full'"):
        batches(10, bad, random.Random(0))


# ----- csv -------------------------------------------------------------------------


def _csv(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return {"path": str(path), "target": "label"}


def test_csv_with_string_labels(tmp_path):
    options = _csv(tmp_path, "a,label,b\n1,cat,2\n3,dog,4\n5, cat ,6.5\n\n")
    X, y, names = load_dataset("csv", options)
    assert X.tolist() == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.5]]
    assert y.tolist() == [0, 1, 0] and names == ["cat", "dog"]


def test_csv_numeric_labels_sort_as_numbers(tmp_path):
    options = _csv(tmp_path, "x,label\n1,10\n2,2\n3,10\n4,2\n")
    X, y, names = load_dataset("csv", options)
    assert names == [2, 10] and type(names[0]) is int
    assert y.tolist() == [1, 0, 1, 0]


def test_csv_goes_through_prepare_data(tmp_path):
    rows = "".join(f"{i},{i % 3},{'abc'[i % 3]}\n" for i in range(30))
    options = _csv(tmp_path, "x,y,label\n" + rows)
    cfg = SimpleNamespace(name="csv", test_size=0.2, standardize=True, **options)
    data = prepare_data(cfg, seed=0)
    assert data.class_names == ["a", "b", "c"] and data.feature_count == 2
    assert len(data.y_test) == 6


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "is empty"),
        ("\n\n", "is empty"),
        ("a,label\n", "header but no data rows"),
        ("a,b\n1,2\n3,4\n", r"dataset.target 'label' is not a column of .*; columns: a, b"),
        ("label\nx\ny\n", "only the target column"),
        ("a,a,label\n1,2,x\n", "duplicate column names: a"),
        ("a,label\n1,x\nfoo,y\n", r"column 'a' at line 3 is not a number: 'foo'"),
        ("a,label\n1,x\nnan,y\n", r"column 'a' at line 3 is not finite: 'nan'"),
        ("a,label\n1,x\n-inf,y\n", r"column 'a' at line 3 is not finite"),
        ("a,label\n1,x\n,y\n", r"empty value in column 'a' at line 3"),
        ("a,label\n1,x\n2,\n", r"empty value in column 'label' at line 3"),
        ("a,label\n1,x\n2,y,3\n", r"line 3 has 3 fields, the header has 2"),
        ("a,label\n1,x\n2\n", r"line 3 has 1 fields"),
        ("a,label\n1,x\n2,x\n", r"dataset.target 'label' has a single class 'x'"),
        ("a,label\n1,x\n2,nan\n", r"label 'nan' in column 'label' at line 3 is not finite"),
    ],
)
def test_csv_errors_name_the_problem(tmp_path, text, message):
    options = _csv(tmp_path, text)
    with pytest.raises(DataError, match=message):
        load_dataset("csv", options)


def test_csv_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"dataset.path '.*nope.csv': file not found"):
        load_dataset("csv", {"path": str(tmp_path / "nope.csv"), "target": "label"})


def test_csv_path_that_is_a_directory(tmp_path):
    with pytest.raises(DataError, match="is not a file"):
        load_dataset("csv", {"path": str(tmp_path), "target": "label"})


def test_csv_that_is_not_text(tmp_path):
    path = tmp_path / "bin.csv"
    path.write_bytes(b"a,label\n\xff\xfe,1\n")
    with pytest.raises(DataError, match="cannot be read"):
        load_dataset("csv", {"path": str(path), "target": "label"})


def test_csv_requires_path_and_target(tmp_path):
    with pytest.raises(DataError, match="dataset.path is required for dataset 'csv'"):
        load_dataset("csv", {"target": "label"})
    with pytest.raises(DataError, match="dataset.target is required"):
        load_dataset("csv", {"path": "x.csv"})


# ----- regression, new generators, validation, extreme scales --------------------------------


@pytest.mark.parametrize("name", sorted(REGRESSION_SHAPES))
def test_regression_sets_load_float_targets(name):
    X, y, class_names = load_dataset(name, {}, seed=0, task="regression")
    n, d = REGRESSION_SHAPES[name]
    assert X.shape == (n, d) and y.shape == (n,) and y.dtype == np.float64
    assert class_names is None and len(np.unique(y)) > 50  # many distinct values


def test_a_dataset_of_the_other_task_is_refused():
    with pytest.raises(DataError, match="dataset 'sine' is a regression dataset, but the task is classification"):
        load_dataset("sine")
    with pytest.raises(DataError, match="dataset 'moons' is a classification dataset, but the task is regression"):
        load_dataset("moons", task="regression")


def test_sine_is_a_noisy_sine_curve():
    X, y, _ = load_dataset("sine", {"noise": 0.0, "n_samples": 50}, seed=3, task="regression")
    assert np.all(np.abs(X) <= np.pi) and np.array_equal(y, np.sin(X[:, 0]))
    assert DATASETS["sine"].truth(X).tolist() == y.tolist()
    _, noisy, _ = load_dataset("sine", {"noise": 0.1, "n_samples": 50}, seed=3, task="regression")
    assert 0.05 < np.std(noisy - y) < 0.2


def test_xor_labels_follow_the_quadrants():
    X, y, _ = load_dataset("xor", {"noise": 0.0}, seed=0)
    assert np.array_equal(y, (X[:, 0] * X[:, 1] > 0).astype(int))
    assert 100 < np.sum(y) < 200  # both classes, roughly balanced


def test_spiral_arms_are_balanced_and_half_a_turn_apart():
    X, y, _ = load_dataset("spiral", {"noise": 0.0, "n_samples": 200}, seed=0)
    assert np.bincount(y).tolist() == [100, 100]
    radius = np.hypot(X[:, 0], X[:, 1])
    angle = np.arctan2(X[:, 1], X[:, 0])
    expected = 3 * np.pi * radius + np.pi * y  # each point sits on its arm's curve
    assert np.allclose(np.cos(angle - expected), 1.0)


def test_regression_split_is_not_stratified_and_target_is_standardised():
    cfg = SimpleNamespace(name="regression", test_size=0.25, standardize=True, standardize_target=True,
                          n_samples=80, n_features=3, noise=1.0)
    data = prepare_data(cfg, seed=0, task="regression")
    assert len(data.y_train) == 60 and len(data.y_test) == 20
    assert data.n_outputs == 1 and data.class_names is None
    assert np.isclose(data.y_train.mean(), 0) and np.isclose(data.y_train.std(), 1)
    _, y, _ = load_dataset("regression", {"n_samples": 80, "n_features": 3, "noise": 1.0}, 0, "regression")
    original = data.target_scaler.inverse_transform(np.concatenate([data.y_train, data.y_test]))
    assert np.allclose(np.sort(original), np.sort(y))


def test_standardize_target_off_keeps_original_units():
    cfg = SimpleNamespace(name="diabetes", test_size=0.25, standardize=True, standardize_target=False)
    data = prepare_data(cfg, seed=0, task="regression")
    assert data.target_scaler is None and data.y_train.max() > 100


def test_validation_is_drawn_from_the_training_split_stratified_and_seeded():
    cfg = SimpleNamespace(name="iris", test_size=0.2, standardize=True)
    data = prepare_data(cfg, seed=0, validation_split=0.25)
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (90, 30, 30)
    assert np.bincount(data.y_val).tolist() == [10, 10, 10]
    plain = prepare_data(cfg, seed=0)
    rows = lambda A, scaler: {tuple(r) for r in scaler.inverse_transform(A).round(9)}  # noqa: E731
    assert not rows(data.X_val, data.scaler) & rows(data.X_train, data.scaler)
    assert rows(data.X_val, data.scaler) | rows(data.X_train, data.scaler) == rows(plain.X_train, plain.scaler)
    # The scaling is fitted on what remains for training, never on validation rows.
    assert np.allclose(data.scaler.mean_, data.scaler.inverse_transform(data.X_train).mean(axis=0))


def test_split_validation_names_its_setting():
    y = np.array([0, 0, 0, 1, 1, 1])
    with pytest.raises(DataError, match="training.validation_split=0.1 gives 1 validation sample for 2 classes"):
        split_validation(np.zeros((6, 1)), y, 0.1, 0)


@pytest.mark.parametrize(
    "column",
    [[0.0, 1e-200, 0.0, 1e-200], [1e300, -1e300, 5e299, 0.0], [1e308, -1e308, 1.7e308, -1.7e308]],
)
def test_standardiser_handles_spreads_near_the_float_limits(column):
    X = np.array(column)[:, None]
    s = Standardizer().fit(X)
    assert np.isfinite(s.scale_).all() and s.scale_[0] > 0
    Z = s.transform(X)
    assert np.isfinite(Z).all()
    assert np.isclose(Z.mean(), 0.0, atol=1e-12) and np.isclose(Z.std(), 1.0)


def test_standardiser_inverse_transform_round_trips():
    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 3.0, size=(20, 3))
    s = Standardizer().fit(X)
    assert np.allclose(s.inverse_transform(s.transform(X)), X)
    y = rng.normal(size=20)
    t = Standardizer().fit(y)
    assert t.transform(y).shape == (20,) and np.allclose(t.inverse_transform(t.transform(y)), y)


@pytest.mark.parametrize("cell", ["5_1", "1 000", "0x10", "١٢"])
def test_csv_features_must_be_plain_decimal_numbers(tmp_path, cell):
    options = _csv(tmp_path, f"a,label\n1,x\n{cell},y\n")
    with pytest.raises(DataError, match=r"column 'a' at line 3 is not a number"):
        load_dataset("csv", options)


def test_csv_labels_1_and_1_point_0_are_one_class_by_the_numeric_rule(tmp_path):
    X, y, names = load_dataset("csv", _csv(tmp_path, "a,label\n1,1\n2,1.0\n3,2\n4,2\n"))
    assert names == [1.0, 2.0] and y.tolist() == [0, 0, 1, 1]
    X, y, names = load_dataset("csv", _csv(tmp_path, "a,label\n1,5_1\n2,51\n3,x\n"))
    assert names == ["51", "5_1", "x"]  # not all numbers: kept as the strings written


def test_csv_continuous_target_is_refused_for_classification(tmp_path):
    rows = "".join(f"{i},{i * 1.5}\n" for i in range(10))
    with pytest.raises(DataError, match=r"dataset.target 'label' looks continuous \(non-integer values\).*task: regression"):
        load_dataset("csv", _csv(tmp_path, "a,label\n" + rows))
    rows = "".join(f"{i},{i}\n" for i in range(10))
    with pytest.raises(DataError, match=r"looks continuous \(10 distinct values among 10 rows\)"):
        load_dataset("csv", _csv(tmp_path, "a,label\n" + rows))


def test_csv_regression_target(tmp_path):
    options = _csv(tmp_path, "a,label\n1,0.5\n2,1.5\n3,-2e3\n")
    X, y, names = load_dataset("csv", options, task="regression")
    assert y.tolist() == [0.5, 1.5, -2000.0] and names is None
    options = _csv(tmp_path, "a,label\n1,0.5\n2,cat\n3,1\n")
    with pytest.raises(DataError, match=r"dataset.target: a regression target must be numeric, got 'cat'"):
        load_dataset("csv", options, task="regression")


def test_prepared_data_knows_csv_feature_names(tmp_path):
    rows = "".join(f"{i},{i % 2},{'ab'[i % 2]}\n" for i in range(20))
    options = _csv(tmp_path, "width,height,label\n" + rows)
    data = prepare_data(SimpleNamespace(name="csv", test_size=0.25, standardize=False, **options), seed=0)
    assert data.feature_names == ["width", "height"]
