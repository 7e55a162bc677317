"""Datasets by name, the stratified split, standardisation and mini-batches.

Everything here returns numpy arrays in scikit-learn's layout: `X` is
(n_samples, n_features) float64 and `y` int64 labels 0..k-1, with the original
label values kept in `class_names`. Randomness comes from the run seed (data
and split) or a `random.Random` the caller owns (batch order), so a run and a
resumed run see the same numbers.
"""

import csv
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping

import numpy as np
from sklearn import datasets as skd
from sklearn.model_selection import train_test_split

__all__ = [
    "DATASETS",
    "DataError",
    "DatasetSpec",
    "PreparedData",
    "Standardizer",
    "batches",
    "load_dataset",
    "prepare_data",
    "split",
]


class DataError(ValueError):
    """A dataset that cannot be loaded or split; the message names the config key."""


# ----- the registry -----------------------------------------------------------


@dataclass(frozen=True)
class DatasetSpec:
    """How to load one dataset and which options it takes.

    `load(options, seed)` gets every option of `options` filled in and returns
    `(X, y_raw, names)`: `names` maps a raw label to its display name, or is
    None when the raw labels are already the names.
    """

    load: Callable[[dict, int], tuple]
    options: Mapping[str, Any] = field(default_factory=dict)  # option -> default (None: required)


def _moons(o, seed):
    return (*skd.make_moons(o["n_samples"], noise=o["noise"], random_state=seed), None)


def _circles(o, seed):
    X, y = skd.make_circles(o["n_samples"], noise=o["noise"], factor=o["factor"], random_state=seed)
    return X, y, None


def _blobs(o, seed):
    X, y = skd.make_blobs(
        o["n_samples"],
        n_features=o["n_features"],
        centers=o["centers"],
        cluster_std=o["cluster_std"],
        random_state=seed,
    )
    return X, y, None


def _classification(o, seed):
    # No redundant or repeated features and one cluster per class, so that
    # two features and two informative ones are a valid request.
    X, y = skd.make_classification(
        o["n_samples"],
        n_features=o["n_features"],
        n_informative=o["n_informative"],
        n_redundant=0,
        n_repeated=0,
        n_classes=o["n_classes"],
        n_clusters_per_class=1,
        random_state=seed,
    )
    return X, y, None


def _gaussian_quantiles(o, seed):
    X, y = skd.make_gaussian_quantiles(
        n_samples=o["n_samples"], n_features=o["n_features"], n_classes=o["n_classes"], random_state=seed
    )
    return X, y, None


def _bundled(loader):
    """A bundled scikit-learn loader (shipped with the package: no download)."""

    def load(o, seed):
        bunch = loader()
        return bunch.data, bunch.target, list(bunch.target_names)

    return load


def _csv(o, seed):
    return _read_csv(o["path"], o["target"])


def _generated(load, **options):
    """A scikit-learn make_* generator, drawn from the run seed."""
    return DatasetSpec(load, MappingProxyType(options))


DATASETS = {
    "moons": _generated(_moons, n_samples=300, noise=0.1),
    "circles": _generated(_circles, n_samples=300, noise=0.05, factor=0.5),
    "blobs": _generated(_blobs, n_samples=300, centers=3, cluster_std=1.0, n_features=2),
    "classification": _generated(_classification, n_samples=300, n_features=2, n_classes=2, n_informative=2),
    "gaussian_quantiles": _generated(_gaussian_quantiles, n_samples=300, n_features=2, n_classes=3),
    "iris": DatasetSpec(_bundled(skd.load_iris), MappingProxyType({})),
    "wine": DatasetSpec(_bundled(skd.load_wine), MappingProxyType({})),
    "breast_cancer": DatasetSpec(_bundled(skd.load_breast_cancer), MappingProxyType({})),
    "digits": DatasetSpec(_bundled(skd.load_digits), MappingProxyType({})),
    "csv": DatasetSpec(_csv, MappingProxyType({"path": None, "target": None})),
}


def _plain(value):
    """A numpy scalar as the Python str/int/float it stands for (JSON-friendly)."""
    return value.item() if isinstance(value, np.generic) else value


def load_dataset(name: str, options: Mapping[str, Any] | None = None, seed: int = 0) -> tuple:
    """Load dataset `name` as `(X, y, class_names)`.

    `options` holds that dataset's options (absent or None: its default).
    Labels are mapped through `np.unique`, so `y` is 0..k-1 in sorted order of
    the original labels and `class_names[y[i]]` is sample i's original label.
    """
    if name not in DATASETS:
        raise DataError(f"dataset.name must be one of {', '.join(DATASETS)}; got {name!r}")
    spec = DATASETS[name]
    given = {k: v for k, v in (options or {}).items() if v is not None}
    for key in given:
        if key not in spec.options:
            takes = ", ".join(spec.options) or "no options"
            raise DataError(f"dataset.{key} does not apply to dataset {name!r} (it takes: {takes})")
    filled = {**spec.options, **given}
    for key, value in filled.items():
        if value is None:
            raise DataError(f"dataset.{key} is required for dataset {name!r}")
    try:
        X, y_raw, names = spec.load(filled, seed)
    except DataError:
        raise
    except ValueError as e:  # scikit-learn's own parameter check
        raise DataError(f"dataset {name!r} with {filled}: {e}") from None
    values, y = np.unique(np.asarray(y_raw), return_inverse=True)
    class_names = [_plain(names[v] if names is not None else v) for v in values]
    if len(class_names) < 2:
        raise DataError(f"dataset {name!r} has {len(class_names)} class(es) {class_names}; need at least 2")
    return np.asarray(X, dtype=np.float64), y.astype(np.int64).reshape(-1), class_names


# ----- csv --------------------------------------------------------------------


def _number(text):
    """The cell as a float, or None if it is not a number literal."""
    try:
        return float(text)
    except ValueError:
        return None


def _label_values(cells):
    """Labels as ints if every cell is an int, else floats if all are numbers, else strings."""
    for convert in (int, float):
        try:
            return [convert(c) for c in cells]
        except ValueError:
            pass
    return cells


def _read_csv(path, target):
    """Read a csv file with a header row: numeric features plus the `target` column."""
    where = f"dataset.path {str(path)!r}"
    p = Path(path)
    if not p.exists():
        raise DataError(f"{where}: file not found")
    if not p.is_file():
        raise DataError(f"{where} is not a file")
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            rows = [(reader.line_num, [c.strip() for c in row]) for row in reader]
        rows = [(line, row) for line, row in rows if row not in ([], [""])]  # blank lines
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{where} cannot be read: {e}") from None
    if not rows:
        raise DataError(f"{where} is empty; expected a header row and data rows")
    (_, header), body = rows[0], rows[1:]
    if target not in header:
        raise DataError(f"dataset.target {target!r} is not a column of {str(path)!r}; columns: {', '.join(header)}")
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        raise DataError(f"{where} has duplicate column names: {', '.join(dupes)}")
    if len(header) < 2:
        raise DataError(f"{where} has only the target column {target!r}; need at least one feature column")
    if not body:
        raise DataError(f"{where} has a header but no data rows")
    features, labels = [], []
    for line, row in body:
        if len(row) != len(header):
            raise DataError(f"{where}: line {line} has {len(row)} fields, the header has {len(header)}")
        values = []
        for column, cell in zip(header, row):
            if cell == "":
                raise DataError(f"{where}: empty value in column {column!r} at line {line}")
            if column == target:
                x = _number(cell)
                if x is not None and not math.isfinite(x):
                    raise DataError(f"{where}: label {cell!r} in column {column!r} at line {line} is not finite")
                labels.append(cell)
                continue
            x = _number(cell)
            if x is None:
                raise DataError(f"{where}: column {column!r} at line {line} is not a number: {cell!r}")
            if not math.isfinite(x):
                raise DataError(f"{where}: column {column!r} at line {line} is not finite: {cell!r}")
            values.append(x)
        features.append(values)
    labels = _label_values(labels)
    if len(set(labels)) < 2:
        raise DataError(f"dataset.target {target!r} has a single class {labels[0]!r}; need at least 2")
    return np.array(features, dtype=np.float64), np.array(labels), None


# ----- split, standardise, batch ----------------------------------------------


def split(X: np.ndarray, y: np.ndarray, test_size: float, seed: int) -> tuple:
    """Stratified `(X_train, X_test, y_train, y_test)`, after checking that it can work.

    scikit-learn needs every class to have two members and each side at least
    one sample per class; its own errors do not say which setting to change.
    """
    counts = np.bincount(y)
    n, k = len(y), int(np.count_nonzero(counts))
    for label, count in enumerate(counts):
        if count == 1:
            raise DataError(
                f"class {label} has 1 sample among dataset.n_samples={n}; "
                "each class needs at least 2 (one on each side of the split)"
            )
    n_test = math.ceil(test_size * n)  # scikit-learn's rounding
    n_train = n - n_test
    for side, count in (("test", n_test), ("training", n_train)):
        if count < k:
            raise DataError(
                f"dataset.n_samples={n} with dataset.test_size={test_size} gives {count} {side} "
                f"sample{'s' if count != 1 else ''} for {k} classes; each class needs a member on both sides"
            )
    return tuple(train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y))


class Standardizer:
    """Per-feature (x - mean) / scale, fitted on the training split only.

    Kept tiny (rather than StandardScaler) so that a checkpoint can hold it as
    two plain lists. A constant feature gets scale 1, as in scikit-learn, so
    it maps to 0 instead of dividing by zero.
    """

    def __init__(self, mean: Iterable[float] | None = None, scale: Iterable[float] | None = None):
        self.mean_ = None if mean is None else np.asarray(mean, dtype=np.float64)
        self.scale_ = None if scale is None else np.asarray(scale, dtype=np.float64)

    def fit(self, X: np.ndarray) -> "Standardizer":
        """Learn each feature's mean and standard deviation (ddof 0) from `X`."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or len(X) == 0:
            raise ValueError(f"Standardizer.fit needs a non-empty 2-d array, got shape {X.shape}")
        constant = np.ptp(X, axis=0) == 0
        self.mean_ = np.where(constant, X[0], X.mean(axis=0))  # exact, so a constant maps to exactly 0
        self.scale_ = np.where(constant, 1.0, X.std(axis=0))
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """`X` standardised with the fitted statistics."""
        if self.mean_ is None:
            raise ValueError("Standardizer is not fitted; call fit(X_train) first")
        return (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_

    def to_dict(self) -> dict:
        """`{"mean": [...], "scale": [...]}` as plain floats, for a JSON checkpoint."""
        return {"mean": self.mean_.tolist(), "scale": self.scale_.tolist()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Standardizer":
        """The inverse of `to_dict`."""
        return cls(d["mean"], d["scale"])


def batches(n: int, batch_size: int | str, rng: random.Random, shuffle: bool = True) -> list[list[int]]:
    """One epoch's mini-batches of indices into a training set of size `n`.

    The order is drawn from `rng` now (one `rng.shuffle`), so saving
    `rng.getstate()` between epochs makes a resumed run draw the same batches.
    Every index appears once; the last batch may be smaller; a `batch_size`
    of "full" or larger than `n` gives a single batch.
    """
    if batch_size == "full":
        batch_size = max(n, 1)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1 or 'full', got {batch_size!r}")
    order = list(range(n))
    if shuffle:
        rng.shuffle(order)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


@dataclass
class PreparedData:
    """A dataset ready for training: split, and standardised if asked."""

    X_train: np.ndarray  # (n_train, n_features) float64
    y_train: np.ndarray  # (n_train,) int64 in 0..k-1
    X_test: np.ndarray  # (n_test, n_features)
    y_test: np.ndarray  # (n_test,)
    class_names: list  # original label of class i, a plain str/int/float
    feature_count: int  # n_features, the model's input size
    scaler: Standardizer | None  # fitted on X_train; None when standardize is off

    @property
    def n_classes(self) -> int:
        """k, the model's output size."""
        return len(self.class_names)


def prepare_data(dataset: Any, seed: int) -> PreparedData:
    """Load, split and standardise the dataset a `config.DatasetConfig` describes.

    `dataset` needs `name`, `test_size`, `standardize` and an attribute per
    option of that dataset (None: the default). The seed drives both the
    generator and the split.
    """
    spec = DATASETS.get(dataset.name)
    options = {key: getattr(dataset, key, None) for key in (spec.options if spec else ())}
    X, y, class_names = load_dataset(dataset.name, options, seed)
    X_train, X_test, y_train, y_test = split(X, y, dataset.test_size, seed)
    scaler = None
    if dataset.standardize:
        scaler = Standardizer().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    return PreparedData(X_train, y_train, X_test, y_test, class_names, X.shape[1], scaler)
