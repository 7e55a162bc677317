"""Datasets by name, the train/validation/test split, standardisation and mini-batches.

Everything here returns numpy arrays in scikit-learn's layout: `X` is
(n_samples, n_features) float64; for classification `y` is int64 labels
0..k-1 with the original label values kept in `class_names`, for regression
float64 targets, (n_samples,) or (n_samples, n_outputs). Randomness comes
from the run seed (data and split) or a `random.Random` the caller owns
(batch order), so a run and a resumed run see the same numbers.

scikit-learn is imported only when a dataset is loaded or split, so that
reading and checking a config stays fast.
"""

import csv
import math
import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from micronet.options import Integer, Option, OptionError, Real, Text, check_options
from micronet.tasks import TASKS as TASK_SPECS

__all__ = [
    "DATASETS",
    "DECIMAL",
    "DataError",
    "DatasetSpec",
    "PreparedData",
    "Shape",
    "Standardizer",
    "batches",
    "load_dataset",
    "parse_number",
    "prepare_data",
    "split",
    "split_validation",
    "TASKS",
]

TASKS = tuple(TASK_SPECS)  # the task names, from their specs


class DataError(ValueError):
    """A dataset that cannot be loaded or split; the message names the config key."""


# ----- the registry -----------------------------------------------------------


class Shape(NamedTuple):
    """A dataset's size: what the resource budget checks before anything is loaded."""

    n_samples: int
    n_features: int
    n_outputs: int  # classes, or 1 for a regression target


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: how to load it, its options, its task and its shape.

    `load(options, seed)` gets every option of `options` filled in and returns
    `(X, y_raw, names, feature_names)`: `names` maps a raw label to its
    display name, or is None when the raw labels are already the names (and
    for regression); `feature_names` are the columns' names, or None.
    `options` declares each option once (rule, default, help): the config's
    keys, their checks and docs/config.md read it. `task` is
    "classification", "regression", or None when the data can be either (a
    CSV file: the config's task decides). `shape(options)` is the data's
    `Shape` for filled-in options, or None when only the data can tell (a
    CSV file). `check(options, named)` holds the rules between options
    (`named(key)` is the key as the caller wrote it). `truth`, when known,
    is the noise-free function of a 1-feature regression set, for plots.
    """

    load: Callable[[dict, int], tuple]
    options: Mapping[str, Option] = field(default_factory=dict)
    task: str | None = "classification"
    shape: Callable[[Mapping[str, Any]], Shape | None] = lambda options: None
    check: Callable[[Mapping[str, Any], Callable[[str], str]], None] | None = None
    truth: Callable[[np.ndarray], np.ndarray] | None = None

    def defaults(self) -> dict[str, Any]:
        """Each option's default (None: required, or unset)."""
        return {key: option.default for key, option in self.options.items()}

    def one_input_regression(self, options: Mapping[str, Any]) -> bool | None:
        """Whether these options give a regression on one feature with one target (the run draws fit.png);
        None when only the data can tell."""
        shape = self.shape(options)
        if shape is None or self.task is None:
            return None
        return self.task == "regression" and shape.n_features == 1 and shape.n_outputs == 1


# Each option's rule and help; each dataset gives its own default.
def _n_samples(default: int) -> Option:
    return Option(Integer(2), default, "samples drawn")


def _noise(default: float) -> Option:
    return Option(Real(0.0), default, "the standard deviation of the Gaussian noise on the points (on the target, "
                                      "for a regression set)")


def _n_features(default: int, minimum: int = 1) -> Option:
    return Option(Integer(minimum), default, "input features")


def _n_classes(default: int) -> Option:
    return Option(Integer(2), default, "classes")


def _plane(options: Mapping[str, Any]) -> Shape:
    """Two classes in the plane: moons, circles, xor, spiral."""
    return Shape(options["n_samples"], 2, 2)


def _fixed(n_samples: int, n_features: int, n_outputs: int) -> Callable[[Mapping[str, Any]], Shape]:
    """A bundled dataset's shape, which no option changes."""
    return lambda options: Shape(n_samples, n_features, n_outputs)


def _targets(options: Mapping[str, Any]) -> Shape:
    """A generated regression set: one target."""
    return Shape(options["n_samples"], options["n_features"], 1)


def _check_classification(options: Mapping[str, Any], named: Callable[[str], str]) -> None:
    """make_classification's own limits, worded with the caller's keys."""
    informative, features, classes = options["n_informative"], options["n_features"], options["n_classes"]
    if informative > features:
        raise OptionError(f"{named('n_informative')} must be <= {named('n_features')} ({features}), got {informative}")
    if classes > 2**informative:
        raise OptionError(
            f"{named('n_classes')} must be <= 2**{named('n_informative')} ({2**informative}), got {classes}"
        )


def _check_quantiles(options: Mapping[str, Any], named: Callable[[str], str]) -> None:
    if options["n_samples"] < options["n_classes"]:
        raise OptionError(
            f"{named('n_samples')} must be >= {named('n_classes')} ({options['n_classes']}), got {options['n_samples']}"
        )


def _sk():
    from sklearn import datasets

    return datasets


def _moons(o, seed):
    return (*_sk().make_moons(o["n_samples"], noise=o["noise"], random_state=seed), None, None)


def _circles(o, seed):
    X, y = _sk().make_circles(o["n_samples"], noise=o["noise"], factor=o["factor"], random_state=seed)
    return X, y, None, None


def _blobs(o, seed):
    X, y = _sk().make_blobs(
        o["n_samples"],
        n_features=o["n_features"],
        centers=o["centers"],
        cluster_std=o["cluster_std"],
        random_state=seed,
    )
    return X, y, None, None


def _classification(o, seed):
    # No redundant or repeated features and one cluster per class, so that
    # two features and two informative ones are a valid request.
    X, y = _sk().make_classification(
        o["n_samples"],
        n_features=o["n_features"],
        n_informative=o["n_informative"],
        n_redundant=0,
        n_repeated=0,
        n_classes=o["n_classes"],
        n_clusters_per_class=1,
        random_state=seed,
    )
    return X, y, None, None


def _gaussian_quantiles(o, seed):
    X, y = _sk().make_gaussian_quantiles(
        n_samples=o["n_samples"], n_features=o["n_features"], n_classes=o["n_classes"], random_state=seed
    )
    return X, y, None, None


def _xor(o, seed):
    """Points in the square [-1, 1]^2, class 1 where x0 and x1 share a sign, then jittered."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, size=(o["n_samples"], 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    return X + rng.normal(0.0, o["noise"], size=X.shape), y, None, None


def _spiral(o, seed):
    """Two arms winding 1.5 turns out of the origin, half a turn apart (TensorFlow Playground's spiral)."""
    rng = np.random.default_rng(seed)
    n = o["n_samples"]
    y = np.arange(n) % 2
    t = rng.uniform(0.05, 1.0, size=n)  # distance along the arm, 0 at the centre
    angle = 3.0 * math.pi * t + math.pi * y
    X = np.column_stack([t * np.cos(angle), t * np.sin(angle)])
    return X + rng.normal(0.0, o["noise"], size=X.shape), y, None, None


def _regression(o, seed):
    X, y = _sk().make_regression(o["n_samples"], n_features=o["n_features"], noise=o["noise"], random_state=seed)
    return X, y, None, None


def _friedman1(o, seed):
    X, y = _sk().make_friedman1(o["n_samples"], n_features=o["n_features"], noise=o["noise"], random_state=seed)
    return X, y, None, None


def _sine(o, seed):
    """y = sin(x) + noise for x uniform on [-pi, pi]: a curve to watch a network fit."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-math.pi, math.pi, size=o["n_samples"])
    return x[:, None], np.sin(x) + rng.normal(0.0, o["noise"], size=x.shape), None, None


def _sine_truth(X):
    return np.sin(np.asarray(X, dtype=np.float64)[:, 0])


def _bundled(name):
    """A bundled scikit-learn loader (shipped with the package: no download)."""

    def load(o, seed):
        bunch = getattr(_sk(), f"load_{name}")()
        names = list(bunch.target_names) if hasattr(bunch, "target_names") else None
        return bunch.data, bunch.target, names, [str(f) for f in bunch.feature_names]

    return load


def _csv(o, seed):
    return _read_csv(o["path"], o["target"])


def _bundled_spec(name: str, shape: tuple[int, int, int], task: str = "classification") -> DatasetSpec:
    return DatasetSpec(_bundled(name), MappingProxyType({}), task, _fixed(*shape))


def _generated(load, shape, task="classification", check=None, truth=None, **options):
    """A generator drawn from the run seed, with its options."""
    return DatasetSpec(load, MappingProxyType(options), task, shape, check, truth)


DATASETS = {
    "moons": _generated(_moons, _plane, n_samples=_n_samples(300), noise=_noise(0.1)),
    "circles": _generated(_circles, _plane, n_samples=_n_samples(300), noise=_noise(0.05),
                          factor=Option(Real(0.0, 1.0, low_open=True, high_open=True), 0.5,
                                        "the inner circle's radius over the outer one's")),
    "blobs": _generated(_blobs, lambda o: Shape(o["n_samples"], o["n_features"], o["centers"]),
                        n_samples=_n_samples(300), centers=Option(Integer(2), 3, "clusters, one class each"),
                        cluster_std=Option(Real(0.0, low_open=True), 1.0, "the clusters' standard deviation"),
                        n_features=_n_features(2)),
    "classification": _generated(_classification, lambda o: Shape(o["n_samples"], o["n_features"], o["n_classes"]),
                                 check=_check_classification, n_samples=_n_samples(300), n_features=_n_features(2),
                                 n_classes=_n_classes(2),
                                 n_informative=Option(Integer(1), 2, "features that carry the classes")),
    "gaussian_quantiles": _generated(_gaussian_quantiles,
                                     lambda o: Shape(o["n_samples"], o["n_features"], o["n_classes"]),
                                     check=_check_quantiles, n_samples=_n_samples(300), n_features=_n_features(2),
                                     n_classes=_n_classes(3)),
    "xor": _generated(_xor, _plane, n_samples=_n_samples(300), noise=_noise(0.05)),
    "spiral": _generated(_spiral, _plane, n_samples=_n_samples(300), noise=_noise(0.05)),
    "iris": _bundled_spec("iris", (150, 4, 3)),
    "wine": _bundled_spec("wine", (178, 13, 3)),
    "breast_cancer": _bundled_spec("breast_cancer", (569, 30, 2)),
    "digits": _bundled_spec("digits", (1797, 64, 10)),
    "regression": _generated(_regression, _targets, "regression", n_samples=_n_samples(300),
                             n_features=_n_features(5), noise=_noise(10.0)),
    "friedman1": _generated(_friedman1, _targets, "regression", n_samples=_n_samples(500),
                            n_features=_n_features(10, minimum=5), noise=_noise(1.0)),
    "sine": _generated(_sine, lambda o: Shape(o["n_samples"], 1, 1), "regression", truth=_sine_truth,
                       n_samples=_n_samples(200), noise=_noise(0.1)),
    "diabetes": _bundled_spec("diabetes", (442, 10, 1), "regression"),
    "csv": DatasetSpec(_csv, MappingProxyType({
        "path": Option(Text(), help="the CSV file, with a header row", required=True),
        "target": Option(Text(), help="the label (or regression target) column's name", required=True),
    }), None),
}


def _plain(value):
    """A numpy scalar as the Python str/int/float it stands for (JSON-friendly)."""
    return value.item() if isinstance(value, np.generic) else value


def load_dataset(name: str, options: Mapping[str, Any] | None = None, seed: int = 0,
                 task: str = "classification") -> tuple:
    """Load dataset `name` as `(X, y, class_names)`.

    `options` holds that dataset's options (absent or None: its default).
    For classification, labels are mapped through `np.unique`, so `y` is
    0..k-1 in sorted order of the original labels and `class_names[y[i]]`
    is sample i's original label. For regression `y` is float64 and
    `class_names` is None.
    """
    return _load(name, _filled(name, options, task), seed, task)[:3]


def _filled(name, options, task):
    """The dataset's options checked, with defaults filled in, after checking name and task."""
    if name not in DATASETS:
        raise DataError(f"dataset.name must be one of {', '.join(DATASETS)}; got {name!r}")
    spec = DATASETS[name]
    if spec.task is not None and spec.task != task:
        raise DataError(f"dataset {name!r} is a {spec.task} dataset, but the task is {task}")
    given = {k: v for k, v in (options or {}).items() if v is not None}
    try:
        filled = check_options(spec.options, given, lambda key: f"dataset.{key}", f"dataset {name!r}")
        if spec.check is not None:
            spec.check(filled, lambda key: f"dataset.{key}")
    except OptionError as e:
        raise DataError(str(e)) from None
    return filled


def _load(name, filled, seed, task):
    """(X, y, class_names, feature_names) of a dataset whose options are all filled in."""
    try:
        X, y_raw, names, feature_names = DATASETS[name].load(filled, seed)
    except DataError:
        raise
    except ValueError as e:  # scikit-learn's own parameter check
        raise DataError(f"dataset {name!r} with {filled}: {e}") from None
    X = np.asarray(X, dtype=np.float64)
    if not np.all(np.isfinite(X)):  # a generator asked for values beyond the float range
        raise DataError(
            f"dataset {name!r} with {filled} gives features that are not finite (beyond the float range, "
            "about 1.8e308); the data, not the model, is the problem"
        )
    if task == "regression":
        return X, _regression_targets(name, np.asarray(y_raw)), None, feature_names
    y_raw = np.asarray(y_raw)
    if name == "csv":
        _refuse_continuous_labels(filled["target"], y_raw)
    values, y = np.unique(y_raw, return_inverse=True)
    class_names = [_plain(names[v] if names is not None else v) for v in values]
    if len(class_names) < 2 and name == "csv":
        raise DataError(f"dataset.target {filled['target']!r} has a single class {class_names[0]!r}; need at least 2")
    if len(class_names) < 2:
        raise DataError(f"dataset {name!r} has {len(class_names)} class(es) {class_names}; need at least 2")
    return X, y.astype(np.int64).reshape(-1), class_names, feature_names


def _regression_targets(name, y_raw):
    """Regression targets as float64, refusing labels that are not numbers."""
    if y_raw.dtype.kind not in "iuf":
        example = next(v for v in y_raw.ravel().tolist() if parse_number(str(v)) is None)
        where = "dataset.target" if name == "csv" else f"dataset {name!r}"
        raise DataError(f"{where}: a regression target must be numeric, got {_plain(example)!r}")
    y = y_raw.astype(np.float64)
    if not np.all(np.isfinite(y)):
        raise DataError(f"dataset {name!r}: the regression target holds a non-finite value")
    return y


def _refuse_continuous_labels(target, labels):
    """A numeric label column that looks like a measurement, not classes, is a mistake for classification."""
    if labels.dtype.kind not in "iuf":
        return
    distinct = len(np.unique(labels))
    non_integer = labels.dtype.kind == "f" and not np.all(labels == np.round(labels))
    if non_integer or distinct > len(labels) / 2:
        why = "non-integer values" if non_integer else f"{distinct} distinct values among {len(labels)} rows"
        raise DataError(
            f"dataset.target {target!r} looks continuous ({why}), not like class labels; "
            "for a numeric target set task: regression"
        )


# ----- csv --------------------------------------------------------------------


# ASCII only: `\d` alone also matches other scripts' digits ("١٢", "１２"), which float() reads as 12.
DECIMAL = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", re.ASCII)
_NON_FINITE = re.compile(r"[-+]?(inf|infinity|nan)", re.IGNORECASE | re.ASCII)
_INTEGER = re.compile(r"[-+]?\d+", re.ASCII)


def parse_number(text: str) -> float | None:
    """The cell as a float if it is a plain decimal or scientific number, else None.

    The one rule for numbers in CSV files: the trainer's and micronet-predict's.

    Stricter than `float()`, which also takes `5_1` (as 51) and spaces.
    `inf` and `nan` parse, so that the caller can say they are not finite.
    """
    if DECIMAL.fullmatch(text) or _NON_FINITE.fullmatch(text):
        return float(text)
    return None


def _label_values(cells):
    """Labels as ints if every cell is an integer literal, else floats if all are numbers, else strings.

    The numeric rule means `1` and `1.0` name the same class (both are the
    number one); quote-free text labels such as `a`, `1a` stay strings.
    """
    if all(_INTEGER.fullmatch(c) for c in cells):
        return [int(c) for c in cells]
    numbers = [parse_number(c) for c in cells]
    if all(x is not None for x in numbers):
        return numbers
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
                x = parse_number(cell)
                if x is not None and not math.isfinite(x):
                    raise DataError(f"{where}: label {cell!r} in column {column!r} at line {line} is not finite")
                labels.append(cell)
                continue
            x = parse_number(cell)
            if x is None:
                raise DataError(f"{where}: column {column!r} at line {line} is not a number: {cell!r}")
            if not math.isfinite(x):
                raise DataError(f"{where}: column {column!r} at line {line} is not finite: {cell!r}")
            values.append(x)
        features.append(values)
    feature_names = [h for h in header if h != target]
    return np.array(features, dtype=np.float64), np.array(_label_values(labels)), None, feature_names


# ----- split, standardise, batch ----------------------------------------------


def split(X: np.ndarray, y: np.ndarray, test_size: float, seed: int, stratify: bool = True,
          size_key: str = "dataset.test_size",
          count_key: str = "dataset.n_samples") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`(X_train, X_test, y_train, y_test)`, stratified by class unless told not to.

    Checked first: scikit-learn needs every class to have two members and
    each side at least one sample per class, and its own errors do not say
    which setting to change. `size_key` and `count_key` name the settings
    in messages.
    """
    from sklearn.model_selection import train_test_split

    n = len(y)
    n_test = math.ceil(test_size * n)  # scikit-learn's rounding
    n_train = n - n_test
    if not stratify:
        if n_test < 1 or n_train < 1:
            raise DataError(
                f"{count_key}={n} with {size_key}={test_size} leaves a side of the split empty "
                f"({n} sample{'s' if n != 1 else ''}: {n_train} for training, {n_test} held out)"
            )
        return tuple(train_test_split(X, y, test_size=test_size, random_state=seed))
    counts = np.bincount(y)
    k = int(np.count_nonzero(counts))
    for label, count in enumerate(counts):
        if count == 1:
            raise DataError(
                f"class {label} has 1 sample among {count_key}={n}; "
                "each class needs at least 2 (one on each side of the split)"
            )
    held_out = "test" if size_key == "dataset.test_size" else "validation"
    for side, count in ((held_out, n_test), ("training", n_train)):
        if count < k:
            raise DataError(
                f"{count_key}={n} with {size_key}={test_size} gives {count} {side} "
                f"sample{'s' if count != 1 else ''} for {k} classes; each class needs a member on both sides"
            )
    return tuple(train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y))


def split_validation(X: np.ndarray, y: np.ndarray, fraction: float, seed: int, stratify: bool = True,
                     name: str = "training.validation_split") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`(X_train, y_train, X_val, y_val)`: a seeded draw of `fraction` of the rows held out for validation.

    Stratified by class for classification, so a data set sorted by class
    (as scikit-learn's bundled ones are) still validates on every class.
    """
    X_train, X_val, y_train, y_val = split(
        X, y, fraction, _validation_seed(seed), stratify, size_key=name, count_key="the training split's size"
    )
    return X_train, y_train, X_val, y_val


def _validation_seed(seed):
    """A seed for the validation draw that differs from the test split's (which uses `seed` itself)."""
    return int(np.random.SeedSequence([int(seed), 1]).generate_state(1)[0])


class Standardizer:
    """Per-column (x - mean) / scale, fitted on the training split only.

    Kept tiny (rather than StandardScaler) so that a checkpoint can hold it as
    two plain lists. A constant column gets scale 1, as in scikit-learn, so
    it maps to 0 instead of dividing by zero. The spread is measured on
    columns divided by their largest magnitude first, so values near the
    float limits (1e300, or 1e-200 whose square underflows) still get their
    true, finite standard deviation, and `transform` keeps such columns
    finite even where x - mean itself would overflow.
    """

    def __init__(self, mean: Iterable[float] | None = None, scale: Iterable[float] | None = None) -> None:
        # float64 arrays once fitted (or given); None before. Any: every method but fit reads them fitted.
        self.mean_: Any = None if mean is None else np.asarray(mean, dtype=np.float64)
        self.scale_: Any = None if scale is None else np.asarray(scale, dtype=np.float64)

    def fit(self, X: np.ndarray) -> "Standardizer":
        """Learn each column's mean and standard deviation (ddof 0) from `X` (2-d, or 1-d: one column)."""
        X = np.asarray(X, dtype=np.float64)
        X = X[:, None] if X.ndim == 1 else X
        if X.ndim != 2 or len(X) == 0:
            raise ValueError(f"Standardizer.fit needs a non-empty 2-d array, got shape {X.shape}")
        if not np.all(np.isfinite(X)):
            raise ValueError("Standardizer.fit needs finite values")
        constant = np.all(X == X[0], axis=0)  # not np.ptp, whose max - min overflows for +-1e308
        size = np.where(constant, 1.0, np.max(np.abs(X), axis=0))
        unit = X / size  # every entry in [-1, 1]: no overflow or underflow in the squares below
        mean = np.mean(unit, axis=0) * size
        scale = np.std(unit, axis=0) * size
        self.mean_ = np.where(constant, X[0], mean)  # exact, so a constant maps to exactly 0
        self.scale_ = np.where(constant | (scale == 0), 1.0, scale)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """`X` standardised with the fitted statistics (the same shape as `X`)."""
        if self.mean_ is None:
            raise ValueError("Standardizer is not fitted; call fit(X_train) first")
        X = np.asarray(X, dtype=np.float64)
        mean, scale = (self.mean_[0], self.scale_[0]) if X.ndim == 1 else (self.mean_, self.scale_)
        with np.errstate(over="ignore", invalid="ignore"):
            Z = (X - mean) / scale
            # X - mean overflows when both are near the float limit (1.7e308 - -1e308);
            # the quotients of the two terms are finite there, and the same number.
            return np.where(np.isinf(X - mean) & np.isfinite(X), X / scale - mean / scale, Z)

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        """Values in original units: the inverse of `transform`."""
        Z = np.asarray(Z, dtype=np.float64)
        mean, scale = (self.mean_[0], self.scale_[0]) if Z.ndim == 1 else (self.mean_, self.scale_)
        with np.errstate(over="ignore", invalid="ignore"):
            X = Z * scale + mean
            return np.where(np.isinf(Z * scale) & np.isfinite(Z), (Z + mean / scale) * scale, X)  # as in transform

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
    y_train: np.ndarray  # (n_train,) int64 in 0..k-1; regression: float64, (n_train,) or (n_train, outputs)
    X_test: np.ndarray  # (n_test, n_features)
    y_test: np.ndarray  # (n_test,) like y_train
    class_names: list | None  # original label of class i, a plain str/int/float; None for regression
    feature_count: int  # n_features, the model's input size
    scaler: Standardizer | None  # fitted on X_train; None when standardize is off
    # The validation split (empty when not validating): None is accepted, and __post_init__ makes it empty.
    X_val: np.ndarray = None  # type: ignore[assignment]  # made an array after init
    y_val: np.ndarray = None  # type: ignore[assignment]  # made an array after init
    task: str = "classification"
    target_scaler: Standardizer | None = None  # regression: fitted on y_train; None when off
    feature_names: list | None = None  # column names (csv and bundled sets), else None

    def __post_init__(self) -> None:
        if self.X_val is None:
            self.X_val, self.y_val = self.X_train[:0], self.y_train[:0]

    @property
    def n_classes(self) -> int:
        """k, the number of classes (classification only)."""
        return len(self.class_names)  # type: ignore[arg-type]  # set for classification

    @property
    def n_outputs(self) -> int:
        """The model's output size: one per class, or one per target column."""
        if self.task == "classification":
            return self.n_classes
        return 1 if self.y_train.ndim == 1 else self.y_train.shape[1]


def prepare_data(dataset: Any, seed: int, task: str = "classification", validation_split: float = 0.0) -> PreparedData:
    """Load, split and standardise the dataset a `config.DatasetConfig` describes.

    `dataset` needs `name`, `test_size`, `standardize` (and, for
    regression, `standardize_target`) and an attribute per option of that
    dataset (None: the default). The seed drives the generator, the test
    split and the validation split, which is drawn from the training
    split; scaling is fitted on what remains for training.
    """
    spec = DATASETS.get(dataset.name)
    options = {key: getattr(dataset, key, None) for key in (spec.options if spec else ())}
    X, y, class_names, feature_names = _load(dataset.name, _filled(dataset.name, options, task), seed, task)
    stratify = task == "classification"
    X_train, X_test, y_train, y_test = split(X, y, dataset.test_size, seed, stratify)
    X_val, y_val = X_train[:0], y_train[:0]
    if validation_split:
        X_train, y_train, X_val, y_val = split_validation(X_train, y_train, validation_split, seed, stratify)
    scaler = target_scaler = None
    if dataset.standardize:
        scaler = Standardizer().fit(X_train)
        X_train, X_val, X_test = (_scaled(scaler, A, "features") for A in (X_train, X_val, X_test))
    if task == "regression" and getattr(dataset, "standardize_target", True) is not False:
        target_scaler = Standardizer().fit(y_train)
        y_train, y_val, y_test = (_scaled(target_scaler, A, "target") for A in (y_train, y_val, y_test))
    return PreparedData(
        X_train, y_train, X_test, y_test, class_names, X.shape[1], scaler,
        X_val=X_val, y_val=y_val, task=task, target_scaler=target_scaler,
        feature_names=feature_names,
    )


def _scaled(scaler, A, what):
    with np.errstate(all="ignore"):
        Z = scaler.transform(A)
    if not np.all(np.isfinite(Z)):
        raise DataError(
            f"the dataset's {what} are not finite after standardising (values too far beyond the training "
            "split's range); the data, not the learning rate, is the problem"
        )
    return Z
