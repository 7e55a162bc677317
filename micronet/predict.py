"""Predictions from a trained model: any Module, a saved model.json, or a whole run.

    python -m micronet.predict RUN_DIR data.csv [--out predictions.csv]

`predict(model, X)` and `predict_proba(model, X)` run a bare Module over a
NumPy batch, with the compiled executor when the model can be traced (the
eager engine otherwise). `load(path)` turns a run directory or a model.json
into a `Predictor`, which applies the stored input scaling and returns the
original labels (or, for regression, values in the target's own units), so
it takes the same raw features the run was trained on.

The command line reads a CSV file with a header row. When the model's
feature names are known (the checkpoint's `feature_names`, or the header of
the CSV file a run was trained on, if it is still where the run's config
says), the file must have those columns, in any order; other columns, such
as the label, are ignored. Otherwise (generated and bundled datasets) the
file must have exactly as many columns as the model has inputs, under any
names (`x0, x1, ...` reads well). Each output row holds the prediction, and
for classification one probability per class, in input order.
"""

import argparse
import contextlib
import csv
import io
import itertools
import math
import os
import shutil
import sys
import tempfile
import types
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np
from numpy.typing import ArrayLike

from micronet import files
from micronet.checkpoint import Checkpoint, load_checkpoint, load_into
from micronet.compile import CompileError, compile_model
from micronet.data import DECIMAL, parse_number
from micronet.engine import Value
from micronet.nn import MLP, Layer, Module, Neuron

if TYPE_CHECKING:  # annotations only: config is imported when a run is predicted from
    from micronet.config import RunConfig

__all__ = ["Predictor", "load", "predict", "predict_proba", "softmax", "main"]

TASKS = ("classification", "regression")

# model -> ((n_features, structure), CompiledModel or None for eager); traced again when either changes
_executors: weakref.WeakKeyDictionary[Any, tuple] = weakref.WeakKeyDictionary()


# ----- bare modules ------------------------------------------------------------------


def predict(model: Module, X: ArrayLike, *, task: str = "classification") -> np.ndarray:
    """Class indices (argmax of the outputs) for every row of `X`; raw outputs for task="regression".

    A one-output classifier is read as a score: class 1 where it is > 0 (the
    hinge-loss convention of micrograd's demo). A one-output regression
    model gives a 1-D array, k outputs an (n, k) array.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    out = _finite_outputs(model_outputs(model, X))
    if task == "regression":
        return out[:, 0] if out.shape[1] == 1 else out
    if out.shape[1] == 1:
        return (out[:, 0] > 0).astype(np.int64)
    return out.argmax(axis=1)


def predict_proba(model: Module, X: ArrayLike) -> np.ndarray:
    """Class probabilities, (n, k): the softmax of the outputs (a sigmoid pair for one output)."""
    out = _finite_outputs(model_outputs(model, X))
    if out.shape[1] == 1:
        return _sigmoid_pair(out[:, 0])
    return softmax(out)


def model_outputs(model: Module, X: ArrayLike) -> np.ndarray:
    """The model's raw outputs (logits) for every row of `X`, as an (n, k) float array.

    The model is traced once and the batch program reused while the input
    width and the model's structure stay the same (parameter values are read
    afresh on every call, so predictions follow training); a model whose
    graph depends on its input values runs eagerly.
    """
    if not isinstance(model, Module):
        raise TypeError(f"model must be a micronet Module, got {type(model).__name__}")
    X = check_X(X, _input_width(model))
    executor = _executor(model, X)
    if executor is not None:
        return executor.logits(X)
    rows = []
    for row in X.tolist():
        out = model(row)
        out = [out] if not isinstance(out, (list, tuple)) else out
        rows.append([v.data for v in out])
    return np.array(rows, dtype=np.float64)


_TOO_LARGE = "the features are too large for this model (its arithmetic leaves the float range)"


def _finite_outputs(out):
    """`out`, or a ValueError naming the first row of X whose outputs are not finite: never a silent NaN."""
    bad = ~np.isfinite(out).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"the model's outputs for row {i} of X are not finite "
                         f"({', '.join(map(repr, out[i].tolist()))}): {_TOO_LARGE}")
    return out


def _executor(model, X):
    key = (X.shape[1], _structure(model))  # a changed model is traced again
    try:
        cached = _executors.get(model)
    except TypeError:  # a module that cannot be weakly referenced: trace every time
        cached = None
    if cached is not None and cached[0] == key:
        return cached[1]
    # Traced on a few real rows and a few random ones: the more rows, the likelier a graph that depends
    # on the data (which only eager can run) shows itself; a trace that fails at all means eager too.
    examples = np.vstack([X[:3], np.random.default_rng(0).standard_normal((3, X.shape[1]))])
    try:
        executor = compile_model(model, X.shape[1], examples=examples)
    except (CompileError, ValueError, TypeError, ArithmeticError, IndexError):
        executor = None  # eager then runs it (and raises the model's own error, if it has one)
    try:
        _executors[model] = (key, executor)
    except TypeError:
        pass
    return executor


def _structure(model: Module) -> list:
    """What a traced program bakes in besides parameter values, as a comparable list.

    Walks the model's attributes (into sub-modules, lists, tuples and dicts):
    each Value by identity, plain settings (an activation's name, a
    constant) by value, anything else by identity. Replacing a parameter or
    a layer, switching an activation or changing a constant changes it;
    training, which only moves parameter values, does not.
    """
    out: list = []
    seen: set[int] = set()
    stack: list = [model]
    while stack:
        obj = stack.pop()
        if isinstance(obj, Value) or not isinstance(obj, (Module, list, tuple, dict, str, int, float, type(None))):
            out.append(("id", id(obj)))
        elif isinstance(obj, (str, int, float, type(None))):
            out.append((type(obj), obj))
        elif id(obj) in seen:  # shared, or a cycle: once is enough
            out.append(("again", id(obj)))
        elif isinstance(obj, list) and all(isinstance(v, Value) for v in obj):  # a neuron's weights: the fast path
            seen.add(id(obj))
            out.append((list, len(obj)))
            out.extend(map(id, obj))
        else:
            seen.add(id(obj))
            items = vars(obj).items() if isinstance(obj, Module) else obj.items() if isinstance(obj, dict) else obj
            parts = [x for pair in items for x in pair] if isinstance(obj, (Module, dict)) else list(items)
            out.append((type(obj), len(parts)))
            stack.extend(reversed(parts))
    return out


def _input_width(model):
    """The number of inputs a built-in module takes; None for a custom one (it checks for itself)."""
    if isinstance(model, MLP):
        return len(model.layers[0].neurons[0].w)
    if isinstance(model, Layer):
        return len(model.neurons[0].w)
    if isinstance(model, Neuron):
        return len(model.w)
    return None


def check_X(X: ArrayLike, n_features: int | None = None, name: str = "X") -> np.ndarray:
    """`X` as a 2-D finite float64 array, or a ValueError saying what is wrong with it."""
    try:
        array = np.asarray(X)
    except ValueError as e:  # ragged rows
        raise ValueError(f"{name} must hold real numbers in rows of equal length: {e}") from None
    if array.dtype.kind in "USc":
        raise ValueError(f"{name} must hold real numbers, got an array of dtype {array.dtype}")
    try:
        array = array.astype(np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must hold real numbers: {e}") from None
    if array.ndim != 2:
        hint = "; for one sample use X.reshape(1, -1)" if array.ndim == 1 else ""
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {array.shape}{hint}")
    if len(array) == 0:
        raise ValueError(f"{name} has no rows; need at least one sample")
    if n_features is not None and array.shape[1] != n_features:
        raise ValueError(f"{name} has {array.shape[1]} features, but the model takes {n_features}")
    finite = np.isfinite(array)
    if not finite.all():
        i, j = np.argwhere(~finite)[0]
        raise ValueError(f"{name} must be finite, got {array[i, j]} at row {i}, column {j}")
    return array


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by each row's max so nothing overflows."""
    with np.errstate(all="ignore"):  # a diverged model's inf logits give nan, not a warning
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def _sigmoid_pair(score):
    """[1 - p, p] with p = sigmoid(score), from exp(-|score|) so nothing overflows."""
    e = np.exp(-np.abs(score))
    p = np.where(score >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return np.column_stack([1.0 - p, p])


# ----- saved models ------------------------------------------------------------------


class Predictor:
    """A trained model with what it needs to predict from raw features.

    `predict(X)` and `predict_proba(X)` take features as the run read them:
    the stored standardisation is applied first, and the original labels
    (or target units) come back. `classes_` holds the labels, `model` the
    Module, `config` the run's RunConfig (None for a bare model.json),
    `task` "classification" or "regression".
    """

    def __init__(
        self,
        model: Module,
        *,
        task: str = "classification",
        classes: Sequence | None = None,
        mean: Sequence[float] | None = None,
        scale: Sequence[float] | None = None,
        target_mean: Sequence[float] | None = None,
        target_scale: Sequence[float] | None = None,
        feature_names: Sequence[str] | None = None,
        config: "RunConfig | None" = None,
    ) -> None:
        if task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
        self.model = model
        self.task = task
        self.config = config
        self.classes_ = None if classes is None else _label_array(classes)
        self.feature_names_in_ = None if feature_names is None else np.array(feature_names, dtype=object)
        self._mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self._scale = None if scale is None else np.asarray(scale, dtype=np.float64)
        self._target_mean = None if target_mean is None else np.asarray(target_mean, dtype=np.float64)
        self._target_scale = None if target_scale is None else np.asarray(target_scale, dtype=np.float64)
        widths = [len(v) for v in (self._mean, feature_names) if v is not None] + [_input_width(model)]
        self.n_features_in_ = next((w for w in widths if w is not None), None)

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint, config: "RunConfig | None" = None) -> "Predictor":
        """The Predictor for a loaded checkpoint (and the run's config, if any)."""
        c = checkpoint
        return cls(c.model, task=c.task, classes=c.classes, mean=c.mean, scale=c.scale, target_mean=c.target_mean,
                   target_scale=c.target_scale, feature_names=c.feature_names, config=config)

    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """The model's raw outputs for raw features `X`: logits, or scaled regression values."""
        return _finite_outputs(self._outputs(check_X(X, self.n_features_in_), target_units=False))

    def _outputs(self, X, target_units=True):
        """Logits, or regression values (in the target's units); not checked for finiteness (callers say where).

        A row whose standardised features leave the float range gives NaN outputs.
        """
        if self._mean is not None:
            with np.errstate(over="ignore", invalid="ignore"):
                X = (X - self._mean) / self._scale
        lost = ~np.isfinite(X).all(axis=1)
        out = model_outputs(self.model, np.where(lost[:, None], 0.0, X) if lost.any() else X)
        if self.task == "regression" and target_units and self._target_mean is not None:
            with np.errstate(over="ignore", invalid="ignore"):
                out = out * self._target_scale + self._target_mean
        out[lost] = np.nan
        return out

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Labels from `classes_` (classification) or values in the target's units (regression)."""
        out = _finite_outputs(self._outputs(check_X(X, self.n_features_in_)))
        if self.task == "regression":
            return out[:, 0] if out.shape[1] == 1 else out
        return _labels(self, out)

    @property
    def predict_proba(self) -> Callable[[ArrayLike], np.ndarray]:
        """Class probabilities, (n, k) in the order of `classes_`; absent for regression (as in scikit-learn)."""
        if self.task != "classification":
            raise AttributeError(
                "predict_proba is only defined for classification; this model does regression: use predict(X)"
            )
        return self._predict_proba

    def _predict_proba(self, X) -> np.ndarray:
        out = self.decision_function(X)
        return _sigmoid_pair(out[:, 0]) if out.shape[1] == 1 else softmax(out)

    def __repr__(self) -> str:
        what = f"classes={self.classes_.tolist()}" if self.classes_ is not None else f"task={self.task!r}"
        return f"Predictor({self.model!r}, {what})"


def _labels(predictor, out):
    """The predicted labels for outputs `out`: a one-output classifier reads its output as a score."""
    index = (out[:, 0] > 0).astype(np.int64) if out.shape[1] == 1 else out.argmax(axis=1)
    return index if predictor.classes_ is None else predictor.classes_[index]


def _label_array(classes):
    """Labels as a NumPy array; mixed types stay Python objects rather than becoming strings."""
    mixed = len({type(c) for c in classes}) > 1
    return np.array(list(classes), dtype=object if mixed else None)


def load(path: str | os.PathLike, *, module: Module | None = None) -> Predictor:
    """A Predictor for a run directory or a model.json.

    A run directory also gives `.config`, its validated config.yaml. A file
    saved from a custom module (not a built-in MLP) cannot be rebuilt from
    JSON: pass a freshly built `module` of the same shape to be filled in.
    """
    path = Path(path)
    config = None
    if path.is_dir():
        model_path = path / "model.json"
        if not model_path.is_file():
            raise ValueError(f"{path} has no model.json: not a run directory, or no epoch finished yet")
        if (path / "config.yaml").is_file():
            from micronet.config import load_config

            config = load_config(path / "config.yaml")
    elif path.exists():
        model_path = path
    else:
        raise ValueError(f"{path} does not exist; expected a run directory or a model.json")
    checkpoint = load_checkpoint(model_path) if module is None else load_into(module, model_path)
    task = getattr(config, "task", checkpoint.task)
    if task != checkpoint.task:  # a trainer that did not record the task (nor the target's scaling)
        raise ValueError(
            f"{model_path} says task {checkpoint.task!r} but the run's config.yaml says {task!r}: the checkpoint "
            "was written without the task and target scaling, so its predictions would be wrong"
        )
    return Predictor.from_checkpoint(checkpoint, config)


# ----- the command line --------------------------------------------------------------


def feature_columns(predictor: Predictor) -> list | None:
    """The column names a CSV for this model must have, or None when only the count is known."""
    if predictor.feature_names_in_ is not None:
        return list(predictor.feature_names_in_)
    dataset = getattr(predictor.config, "dataset", None)
    if dataset is None or dataset.name != "csv":
        return None
    try:  # the file the run was trained on, if it is still there: its header minus the label
        with _csv_rows(dataset.path) as rows:
            header = next((row for _, row in rows), None)
    except (OSError, UnicodeDecodeError, csv.Error, ValueError):
        return None
    if header is None:
        return None
    names = [c for c in header if c != dataset.target]
    return names if len(names) == predictor.n_features_in_ else None


CHUNK_ROWS = 16384  # rows parsed, predicted and written at a time: memory stays flat however long the file


@contextlib.contextmanager
def _csv_rows(path):
    """(line number, stripped cells) of each non-blank row of a regular file; a FIFO or device is refused unread."""
    with files.open_regular(path) as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
        reader = csv.reader(text)
        yield ((reader.line_num, row) for row in map(_stripped, reader) if row not in ([], [""]))


def _stripped(row):
    return [c.strip() for c in row]


def data_line(path: str | os.PathLike, k: int) -> int:
    """The line of `path` where its data row `k` (0-based, after the header; blank rows skipped) starts.

    Read again from the start: only an error message needs it.
    """
    with _csv_rows(path) as rows:
        return next(itertools.islice(rows, k + 1, None))[0]


def feature_chunks(path: str | os.PathLike, columns: list | None,
                   n_features: int | None) -> Iterator[tuple[int, np.ndarray]]:
    """The feature rows of a CSV file with a header row, CHUNK_ROWS at a time: (index of the first row, X).

    The trainer's rules: a header of distinct names, every feature a plain
    ASCII decimal number (`5_1`, `0x1A` and other scripts' digits are not),
    finite. A first row of numbers is a header only when it holds every one
    of the model's feature names (a run trained on a CSV whose header is
    `1,2,3`), or, when the names are not known, when it is `0,1,...` as
    pandas writes for an unnamed array; otherwise it is data, and a header
    row is asked for. Errors name the line (`data_line`).
    """
    where = str(path)
    start = 0
    try:
        with files.open_regular(path) as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
            reader = csv.reader(text)
            header = next((row for row in map(_stripped, reader) if row not in ([], [""])), None)
            if header is None:
                raise ValueError(f"{where} is empty; expected a header row and data rows")
            picks = _picks(where, header, columns, n_features)
            names = [header[i] for i in picks]
            rows = filter(None, reader)  # empty lines; other blank rows are dropped in _chunk_features
            while chunk := list(itertools.islice(rows, CHUNK_ROWS)):
                X = _chunk_features(where, chunk, len(header), picks, names, start)
                if len(X):
                    yield start, X
                start += len(X)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"cannot read {where}: {e}") from None
    if start == 0:
        raise ValueError(f"{where} has a header but no data rows")


def _chunk_features(where, chunk, width, picks, names, start):
    """The chunk's features as an (n, k) float array, or a ValueError naming the line of the first bad row."""
    if len(chunk[0]) == width and all(len(row) == width for row in chunk):
        cells = [row[i] for row in chunk for i in picks]
        if all(map(DECIMAL.fullmatch, cells)):  # the common case, at C speed
            X = np.array(cells, dtype=np.float64).reshape(len(chunk), len(picks))
            if np.isfinite(X).all():  # 1e999 is a plain number, but not a finite one
                return X
    # The slow way: cells with spaces around them, blank rows, or an error to report with its line.
    rows = [row for row in map(_stripped, chunk) if row not in ([], [""])]
    X = np.empty((len(rows), len(picks)))
    for r, row in enumerate(rows):
        if len(row) != width:
            line = data_line(where, start + r)
            raise ValueError(f"{where}: line {line} has {len(row)} fields, the header has {width}")
        for c, (i, name) in enumerate(zip(picks, names)):
            x = parse_number(row[i])
            if x is None or not math.isfinite(x):
                problem = "not a number" if x is None else "not finite"
                line = data_line(where, start + r)
                raise ValueError(f"{where}: column {name!r} at line {line} is {problem}: {row[i]!r}")
            X[r, c] = x
    return X


def _picks(where, header, columns, n_features):
    """The header's column index of each feature, after checking the header."""
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        raise ValueError(f"{where} has duplicate column names: {', '.join(dupes)}; each column needs its own name")
    if all(parse_number(c) is not None for c in header):
        named = set(columns) <= set(header) if columns is not None else header == [str(i) for i in range(len(header))]
        if not named:
            raise ValueError(f"{where}: the first row looks like data; add a header row of column names")
    if columns is not None:
        missing = [c for c in columns if c not in header]
        if missing:
            lacks = ("has none of the model's feature columns" if len(missing) == len(columns) else
                     f"lacks the model's feature column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
            raise ValueError(f"{where} {lacks}; it needs {', '.join(columns)} and has {', '.join(header)}")
        return [header.index(c) for c in columns]
    if n_features is not None and len(header) != n_features:
        raise ValueError(
            f"{where} has {len(header)} column{'s' if len(header) != 1 else ''} ({', '.join(header)}), "
            f"but the model takes {n_features} features; give exactly {n_features} numeric columns, "
            f"e.g. {', '.join(f'x{i}' for i in range(n_features))}"
        )
    return list(range(len(header)))


def read_features(path: str | os.PathLike, columns: list | None, n_features: int | None) -> np.ndarray:
    """The whole feature matrix of a CSV file with a header row (see `feature_chunks`)."""
    return np.vstack([X for _, X in feature_chunks(path, columns, n_features)])


def write_predictions(predictor: Predictor, chunks: Iterable[tuple[int, np.ndarray]], out: TextIO,
                      where: str | os.PathLike | None = None) -> int:
    """Write a header, then per row the prediction and (classification) each class's probability; return the rows.

    `chunks` are (index of the first row, X), as `feature_chunks` gives
    them. A row whose outputs are not finite (features too large for the
    model) raises ValueError naming it (its line of the CSV file `where`),
    before anything of its chunk is written.
    """
    count = 0
    for start, X in chunks:
        outputs = predictor._outputs(X)
        bad = ~np.isfinite(outputs).all(axis=1)
        if bad.any():
            k = start + int(np.argmax(bad))
            row = f"row {k} of X" if where is None else f"{where}: line {data_line(where, k)}"
            raise ValueError(f"{row} gives a prediction that is not finite "
                             f"({', '.join(map(repr, outputs[int(np.argmax(bad))].tolist()))}): {_TOO_LARGE}")
        if predictor.task == "classification":
            probs = _sigmoid_pair(outputs[:, 0]) if outputs.shape[1] == 1 else softmax(outputs)
            index = (outputs[:, 0] > 0).astype(np.int64) if outputs.shape[1] == 1 else outputs.argmax(axis=1)
            labels = predictor.classes_.tolist() if predictor.classes_ is not None else list(range(probs.shape[1]))
            if count == 0:
                out.write(_csv_line(["prediction", *(f"proba_{name}" for name in labels)]))
            shown = [_csv_line([_cell(label)])[:-1] for label in labels]  # each label rendered once
            columns = [[shown[i] for i in index.tolist()], *(map(repr, column) for column in probs.T.tolist())]
        else:
            values = outputs.reshape(len(X), -1)
            if count == 0:
                out.write(_csv_line(["prediction"] if values.shape[1] == 1 else
                                    [f"prediction_{i}" for i in range(values.shape[1])]))
            columns = [map(repr, column) for column in values.T.tolist()]
        out.write("\n".join(map(",".join, zip(*columns))) + "\n")
        count += len(X)
    return count


def _csv_line(cells):
    text = io.StringIO(newline="")
    csv.writer(text, lineterminator="\n").writerow(cells)
    return text.getvalue()


def predictions_csv(predictor: Predictor, X: np.ndarray) -> str:
    """CSV text: a header, then per row the prediction and (classification) each class's probability."""
    text = io.StringIO(newline="")
    write_predictions(predictor, [(0, check_X(X, predictor.n_features_in_))], text)
    return text.getvalue()


def _cell(label):
    return repr(label) if isinstance(label, float) else label


def _out_path(out):
    """--out as a Path, checked before anything is loaded; None for standard output."""
    if out is None:
        return None
    path = Path(out)
    if out == "":
        raise ValueError("--out '' is an empty path; give a file name, or leave out --out for standard output")
    if path.is_dir():
        raise ValueError(f"--out {out!r} is a directory; give a file name")
    if not path.parent.is_dir():
        raise ValueError(f"--out {out!r}: the directory {str(path.parent)!r} does not exist")
    if path.exists() and not path.is_file():
        raise ValueError(f"--out {out!r} is not a regular file; give a file name")
    return path


def main(argv: list[str] | None = None) -> int:
    """Entry point of `micronet-predict` and `python -m micronet.predict`."""
    from micronet.commands import CommandParser, program_name

    parser = CommandParser(
        prog=program_name("predict", sys.argv[0] if sys.argv else ""),
        description="Predict with a trained run: one output row per input row of a CSV file.",
        epilog="The CSV needs a header row. When the run's feature names are known (a run trained on a CSV file "
        "or a bundled data set), those columns are read by name, in any order, and other columns (the label, "
        "an id) are ignored; otherwise the file must have exactly as many numeric columns as the model has "
        "inputs, under any names (x0, x1, ...). A first row of numbers is a header only when it holds every "
        "feature name of the run (or, names unknown, reads 0,1,... as pandas writes). Numbers are plain ASCII "
        "decimals, as the trainer reads them. Output: one row per input row, the prediction and, for "
        "classification, proba_<label> for each class; nothing is written unless every row is predicted.\n\n"
        "examples:\n"
        "  %(prog)s runs/moons-20261130-101500 points.csv\n"
        "  %(prog)s runs/iris flowers.csv --out predictions.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_version()
    parser.add_argument("run", metavar="RUN_DIR", help="a run directory (or a model.json)")
    parser.add_argument("data", metavar="DATA_CSV", help="the features to predict from, with a header row")
    parser.add_argument("--out", metavar="PATH", help="write the predictions here (default: standard output)")
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
        out = _out_path(args.out)
        predictor = load(args.run)
        chunks = feature_chunks(args.data, feature_columns(predictor), predictor.n_features_in_)
        if out is not None:
            with files.writing_text(out) as f:
                write_predictions(predictor, chunks, f, args.data)
        else:  # held until every row is predicted: an error leaves standard output empty
            with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES, mode="w+", newline="") as spool:
                write_predictions(predictor, chunks, spool, args.data)  # type: ignore[arg-type]  # a text stream
                spool.seek(0)
                shutil.copyfileobj(spool, sys.stdout)
    except (ValueError, TypeError, OSError) as e:
        message = f"{e.strerror}: {e.filename!r}" if isinstance(e, OSError) and e.strerror else str(e)
        print(f"{getattr(e, 'usage', '')}error: {message}", file=sys.stderr)  # a usage mistake: the usage line first
        return 2
    return 0


_SPOOL_BYTES = 16 * 2**20  # predictions for standard output beyond this wait in a temporary file, not in memory


class _CallableModule(types.ModuleType):
    """`micronet.predict` names both this module and its function: calling the module predicts.

    Importing a submodule sets it as an attribute of its package, which would
    replace the `micronet.predict` function with this module; making the
    module callable keeps `micronet.predict(model, X)` working either way.
    """

    def __call__(self, model, X, **kwargs):
        return predict(model, X, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    sys.exit(main())
