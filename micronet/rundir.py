"""A run directory: created once, written as training goes, read back to resume.

Everything a run leaves on disk is written here, each file so that it is
readable at any moment: config.yaml (the resolved config), metrics.csv (one
row per completed epoch, synced every epoch), model.json (the checkpoint),
summary.json, and the plots. Every file but metrics.csv is replaced
atomically through micronet.files, never written through a symlink;
metrics.csv is appended, through no link either. A process that writes a
run directory holds an exclusive lock on its `.lock` file for the whole run,
so two trainers can never write one directory.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import hashlib
import io
import json
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from micronet import files
from micronet.checkpoint import save_model, write_json_atomic
from micronet.config import RunConfig, config_to_dict, config_yaml
from micronet.options import show
from micronet.tasks import LOSS, TASKS, class_report

if TYPE_CHECKING:  # annotations only: the loop and the data come in as values
    from micronet.animate import TrainingRecorder
    from micronet.compile import CompiledModel
    from micronet.data import PreparedData
    from micronet.executors import EagerExecutor
    from micronet.state import TrainState

    Executor = EagerExecutor | CompiledModel

__all__ = [
    "LOCK_NAME",
    "METRIC_COLUMNS",
    "RunLock",
    "UsageError",
    "RunWriter",
    "check_fingerprint",
    "check_out",
    "fingerprint",
    "lock_run_dir",
    "metric_columns",
    "new_run_dir",
    "read_history",
    "start_run_dir",
]


def metric_columns(task: str = "classification", validating: bool = False) -> list[str]:
    """metrics.csv's header: the epoch, loss and scores per split, the lr and the epoch's seconds."""
    splits = ("train", "val", "test") if validating else ("train", "test")
    names = [LOSS.name, *(m.name for m in TASKS[task].metrics)]
    return ["epoch", *(f"{s}_{m}" for s in splits for m in names), "lr", "seconds"]


METRIC_COLUMNS = metric_columns()  # a classification run without validation


class UsageError(ValueError):
    """A bad command line: wrong arguments, or an output path that cannot be used."""


def new_run_dir(name: str, out: str | os.PathLike[str] | None = None) -> Path:
    """Create and return the run directory; never reuse a non-empty one.

    `out` is used as given; without it, runs/<name>-<YYYYmmdd-HHMMSS>, with
    -1, -2, ... appended when that name is taken.
    """
    try:
        if out is not None:
            path = _out_path(out)
            if path.is_dir() and any(path.iterdir()):
                raise UsageError(f"--out {out!r} is not empty; choose a new directory (runs are never overwritten)")
            path.mkdir(parents=True, exist_ok=True)
            return path
        base = Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        for suffix in ["", *(f"-{i}" for i in range(1, 1000))]:
            path = base.with_name(base.name + suffix)
            try:
                path.mkdir(parents=True)
                return path
            except FileExistsError:
                continue
    except OSError as e:  # e.g. a parent that is a file, or no permission
        where = f"--out {out!r}" if out is not None else f"the run directory {str(e.filename)!r}"
        raise UsageError(f"{where} cannot be created: {e.strerror}") from None
    raise UsageError(f"could not find a free run directory name next to {base}")


LOCK_NAME = ".lock"


class RunLock:
    """An exclusive `flock` on a run directory's lock file, which holds the owner's PID.

    The lock file is never deleted or replaced: a lock taken on a file that
    someone else then unlinks would lock nothing. The kernel drops the lock
    when the process ends, however it ends.
    """

    def __init__(self, run_dir: str | os.PathLike[str], fd: int | None) -> None:
        self.dir, self.fd = Path(run_dir), fd

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)  # no PID: nobody holds it
            os.close(self.fd)  # closing the only descriptor releases the flock
            self.fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _holder(fd):
    """The PID the lock's holder wrote, waiting briefly for a holder that has just taken it."""
    deadline = time.monotonic() + 2.0
    while True:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text.isdigit() or time.monotonic() > deadline:
            return f"process {text}" if text.isdigit() else "another process"
        time.sleep(0.01)


def lock_run_dir(run_dir: str | os.PathLike[str], create: bool = True, record: bool = True) -> RunLock:
    """Lock `run_dir` for this process, or raise UsageError naming the process that has it.

    `create=False` only locks an existing lock file (FileNotFoundError if
    there is none); `record=False` leaves this PID unwritten, for a caller
    that may still back out without writing anything.
    """
    path = Path(run_dir) / LOCK_NAME
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | (os.O_CREAT if create else 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as e:
        if isinstance(e, FileNotFoundError) and not create:
            raise
        why = "is a symlink" if e.errno == errno.ELOOP else f"cannot be opened: {e.strerror}"
        raise UsageError(f"the lock file {path} {why}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UsageError(f"the lock file {path} is not a regular file")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"run directory {run_dir} is in use by {_holder(fd)}; wait for it to finish, or stop it first"
            ) from None
    except BaseException:
        os.close(fd)
        raise
    lock = RunLock(run_dir, fd)
    if record:
        _record(lock)
    return lock


def _record(lock: RunLock) -> None:
    """Write this process's PID into the lock file, for anyone refused the lock to name."""
    os.ftruncate(lock.fd, 0)  # type: ignore[arg-type]  # a lock just taken holds its descriptor
    os.pwrite(lock.fd, f"{os.getpid()}\n".encode(), 0)  # type: ignore[arg-type]  # as above


def start_run_dir(name: str, out: str | os.PathLike[str] | None = None) -> tuple[Path, RunLock]:
    """A new run directory, created and locked: (path, lock).

    Like `new_run_dir`, it never reuses a directory that holds anything;
    and when two trainers are started on one `--out` at once, exactly one
    gets it: the other is told which process has it.
    """
    if out is None:
        path = new_run_dir(name)  # a fresh name: nobody else can be in it
        lock = lock_run_dir(path)
        return path, lock
    path = _out_path(out)
    if path.is_dir() and not _only_lock(path):
        if (path / LOCK_NAME).exists():  # a run in progress there: name it rather than saying "not empty"
            lock_run_dir(path, create=False, record=False).release()
        new_run_dir(name, out)  # raises: not empty
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        what = "is an existing file, not a directory" if path.exists() else f"cannot be created: {e.strerror}"
        raise UsageError(f"--out {out!r} {what}") from None
    lock = lock_run_dir(path, record=False)
    if not _only_lock(path):  # someone ran a whole run here between our check and our lock
        lock.release()
        raise UsageError(f"--out {out!r} is not empty; choose a new directory (runs are never overwritten)")
    _record(lock)
    return path, lock


def _out_path(out):
    """`--out` as a Path, refused when it cannot be a run directory of its own, before anything is written.

    A symlink is refused (even one to an empty directory): the run would be
    written wherever it points, and `--resume` would follow it again. A FIFO,
    a device or any other file is never touched.
    """
    if os.fspath(out) == "":
        raise UsageError("--out '' is an empty path; give a directory name")
    path = Path(out)
    try:
        info = path.lstat()
    except FileNotFoundError:
        return path
    except OSError as e:
        raise UsageError(f"--out {out!r} cannot be created: {e.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise UsageError(f"--out {out!r} is a symbolic link; give the real directory (or a new name) instead")
    if not stat.S_ISDIR(info.st_mode):
        kind = "an existing file" if stat.S_ISREG(info.st_mode) else "a special file (FIFO, socket or device)"
        raise UsageError(f"--out {out!r} is {kind}, not a directory")
    return path


def check_out(out: str | os.PathLike[str]) -> None:
    """Raise UsageError now if `--out` could not become a new run directory (checked again when it is made).

    For commands with slow work before the directory is made (a sweep
    reaching its cluster): a local mistake is reported first.
    """
    path = _out_path(out)
    if path.is_dir() and not _only_lock(path):
        raise UsageError(f"--out {os.fspath(out)!r} is not empty; choose a new directory (runs are never overwritten)")


def _only_lock(path):
    """True when `path` is a directory holding nothing but perhaps a lock file."""
    try:
        return all(entry.name == LOCK_NAME for entry in os.scandir(path))
    except OSError:
        return False


def fingerprint(config: RunConfig) -> dict:
    """What a checkpoint records of the run it belongs to: the resolved config, and a CSV's digest.

    On resume, config.yaml (and the data file) must still say the same, or
    the run would silently continue as a different one.
    """
    record = {"config": config_to_dict(config)}
    if config.dataset.name == "csv":
        record["data_sha256"] = _sha256(config.dataset.path)
    return record


def _sha256(path):
    try:
        return hashlib.sha256(files.read_regular_bytes(path)).hexdigest()
    except OSError as e:
        raise ValueError(f"cannot read the data file {path}: {e.strerror}") from None


def _flat(tree, prefix=""):
    """A nested mapping as {dotted.key: value}, in order."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat = {}
    for key, value in tree.items():
        flat.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def check_fingerprint(recorded: object, config: RunConfig, run_dir: str | os.PathLike[str]) -> None:
    """Raise ValueError naming the first setting in which `config` differs from the checkpoint's record."""
    checkpoint, config_file = Path(run_dir) / "model.json", Path(run_dir) / "config.yaml"
    if not isinstance(recorded, dict) or not isinstance(recorded.get("config"), dict):
        raise ValueError(f"{checkpoint} does not record the config it was trained with; it cannot be resumed")
    now = _flat(json.loads(json.dumps(config_to_dict(config))))  # as the checkpoint stores it
    then = _flat(recorded["config"])
    for key in [*now, *(k for k in then if k not in now)]:
        if now.get(key, "<unset>") != then.get(key, "<unset>"):
            raise ValueError(
                f"{config_file} does not match the checkpoint {checkpoint}: {key} is "
                f"{show(now.get(key, '<unset>'))} in config.yaml but was {show(then.get(key, '<unset>'))} when "
                "training started; put it back, or start a new run"
            )
    if config.dataset.name == "csv" and recorded.get("data_sha256") != _sha256(config.dataset.path):
        raise ValueError(
            f"the data file changed: {config.dataset.path} is not the file {checkpoint} was trained on "
            "(its SHA-256 differs); put the original back, or start a new run"
        )


class RunWriter:
    """Writes a run directory as training goes: each file readable at any moment."""

    def __init__(self, run_dir: str | os.PathLike[str], config: RunConfig, data: PreparedData,
                 resumed: bool = False) -> None:
        self.dir = Path(run_dir)
        self.config = config
        self.data = data
        self.column_names = RunWriter.columns(config, data)
        self.last_good: dict | None = None
        self.recorder: TrainingRecorder | None = None  # training.gif's recorder, once start_animation is called
        self.saved_epoch: int | None = None  # the epoch of the last checkpoint this writer wrote
        self.pending: tuple | None = None  # (epoch, weights, training state) of a finished epoch not yet on disk
        self.written_at = time.monotonic()  # when the last checkpoint was written
        self.model: Any = None  # the model checkpoints describe (set by the first save_checkpoint)
        self.fingerprint = fingerprint(config)
        if not resumed:
            files.write_text_atomic(self.dir / "config.yaml", config_yaml(config))
            files.write_text_atomic(self.dir / "metrics.csv", files.csv_text(self.column_names, []))

    @staticmethod
    def columns(config: RunConfig, data: PreparedData) -> list[str]:
        """The metrics.csv header of a run of `config` on `data`."""
        return metric_columns(config.task, len(data.y_val) > 0)

    def restart_metrics(self, history: list[dict]) -> None:
        """On resume: metrics.csv holds exactly the checkpoint's epochs (a crash may have left one more row).

        Rewritten atomically, so a metrics.csv that was a symlink becomes a
        file of this run's own before any row is appended.
        """
        files.write_text_atomic(self.dir / "metrics.csv", files.csv_text(self.column_names, history))

    def on_epoch(self, state: TrainState, row: dict) -> None:
        """After each finished epoch: its metrics row, and a checkpoint when one is due.

        The row is appended at once (unsynced); the epoch's state is kept in
        memory and written at most once per training.checkpoint_seconds, so
        a fast run does not spend its time in fsync. `flush` writes the last
        finished epoch whenever the run ends, however it ends; after a crash,
        resume replays the epochs past the checkpoint, which gives the same
        numbers (training is deterministic).
        """
        files.append_text(self.dir / "metrics.csv", files.csv_text(self.column_names, [row], header=False), sync=False)
        self.model = state.model
        self.last_good = state.model.state_dict()  # what plots show if a later epoch diverges
        self.pending = (state.epoch, self.last_good, state.to_dict())
        if time.monotonic() - self.written_at >= self.config.training.checkpoint_seconds:
            self.flush()

    def flush(self) -> None:
        """Write the last finished epoch's checkpoint if it is not on disk yet."""
        if self.pending is not None:
            (epoch, parameters, training), self.pending = self.pending, None  # a failed write is not retried
            self._write(parameters, training)
            self.saved_epoch = epoch

    def save_checkpoint(self, state: TrainState) -> None:
        """Write the checkpoint of `state` as it is now (the start of a run, or its final weights)."""
        self.model = state.model
        self.last_good = state.model.state_dict()
        self._write(self.last_good, state.to_dict())
        self.saved_epoch, self.pending = state.epoch, None

    def _write(self, parameters, training):
        scaler = self.data.scaler
        target = self.data.target_scaler
        save_model(
            self.model,
            self.dir / "model.json",
            task=self.data.task,
            classes=self.data.class_names,
            **({} if scaler is None else scaler.to_dict()),  # mean and scale, as plain lists
            **({} if target is None else {"target_mean": target.mean_.tolist(),
                                          "target_scale": target.scale_.tolist()}),
            feature_names=self.data.feature_names,
            training={**training, "fingerprint": self.fingerprint},
            parameters=parameters,
        )
        self.written_at = time.monotonic()

    def summary(self, state: TrainState, status: str, error: str | None = None, executor: Executor | None = None
                ) -> dict:
        """summary.json: the status and the scores of the model as saved.

        With early stopping's restore_best, that model is the best epoch's,
        so its row is reported; otherwise the last epoch's.
        """
        best = None if state.stopper is None else state.stopper.best_epoch
        shown = state.final_row() if status == "completed" else state.history[-1] if state.history else {}
        summary = {
            "status": status,
            **({"error": error} if error else {}),
            "epochs": state.epoch,
            **{c: shown.get(c) for c in self.column_names if c not in ("epoch", "lr", "seconds")},
            "best_epoch": best,
            "stopped_early": state.stopped_early,
            "seconds": sum(row["seconds"] for row in state.history),
            "n_parameters": len(state.model.parameters()),
        }
        data = self.data
        if executor is not None and data.task == "classification" and len(data.y_test):
            names = data.class_names if data.class_names is not None else list(range(data.n_classes))
            report = class_report(executor.logits(data.X_test), data.y_test, list(names))
            summary["test_per_class"] = report["per_class"]
            if "collapsed" in report:
                summary["collapsed"] = report["collapsed"]
        write_json_atomic(self.dir / "summary.json", summary)
        return summary

    def plot_names(self) -> list[str]:
        """The plots this run draws, once it has an epoch."""
        data = self.data
        if data.task == "regression":
            one_curve = data.feature_count == 1 and data.n_outputs == 1
            return ["loss.png", "predictions.png", *(["fit.png"] if one_curve else [])]
        return ["loss.png", *(["decision_boundary.png"] if data.feature_count == 2 else []), "confusion_matrix.png"]

    def plots(self, state: TrainState, executor: Executor, should_stop: Callable[[], bool] | None = None) -> None:
        """The run's pictures: loss.png, then decision_boundary.png (two features) and confusion_matrix.png
        of the test split (classification), or predictions.png and, for one input, fit.png (regression).
        `should_stop()` is polled between them, and a stop leaves the rest undrawn."""
        from micronet import plot
        from micronet.predict import softmax

        data = self.data
        if state.history:
            plot.plot_history(state.history, self.dir / "loss.png")
        if should_stop is not None and should_stop():
            return
        if data.task == "regression":
            self._regression_plots(plot, executor, should_stop)
            return
        if data.feature_count == 2:
            plot.plot_decision_boundary(
                lambda X: softmax(executor.logits(X)),
                data.X_train, data.y_train, data.X_test, data.y_test,
                self.dir / "decision_boundary.png",
                class_names=data.class_names,
                standardized=data.scaler is not None,
            )
            if should_stop is not None and should_stop():
                return
        predicted = executor.logits(data.X_test).argmax(axis=1)
        plot.plot_confusion_matrix(
            data.y_test, predicted, data.n_classes, self.dir / "confusion_matrix.png", data.class_names
        )

    def _regression_plots(self, plot, executor, should_stop):
        """Predicted against true on the test split, and the fitted curve for one input, in original units."""
        data = self.data
        predict, original_targets, raw_features = self._in_original_units(executor)
        plot.plot_predictions(original_targets(data.y_test), predict(raw_features(data.X_test)),
                              self.dir / "predictions.png")
        if data.feature_count == 1 and data.n_outputs == 1 and not (should_stop is not None and should_stop()):
            plot.plot_fit(predict, raw_features(data.X_train), original_targets(data.y_train), self.dir / "fit.png",
                          true_function=self._true_curve())

    def _in_original_units(self, executor):
        """(predict from raw features to target units, targets to original units, features to raw) of a regression."""
        data = self.data
        scaler, target_scaler = data.scaler, data.target_scaler

        def original_targets(y):
            y = y if target_scaler is None else target_scaler.inverse_transform(y)
            return y.reshape(len(y), -1)[:, 0] if y.ndim == 1 or y.shape[1] == 1 else y

        def raw_features(X):
            return X if scaler is None else scaler.inverse_transform(X)

        def predict(X_raw):
            outputs = executor.logits(X_raw if scaler is None else scaler.transform(X_raw))
            return original_targets(outputs[:, 0] if data.n_outputs == 1 else outputs)

        return predict, original_targets, raw_features

    def _true_curve(self):
        """The noise-free curve of a generated 1-input regression set (sine), as a function of x, or None."""
        from micronet.data import DATASETS

        truth = DATASETS[self.config.dataset.name].truth
        return None if truth is None else lambda x: truth(np.asarray(x).reshape(-1, 1))

    # ----- training.gif ------------------------------------------------------------

    def start_animation(self, executor: Executor, history: list[dict]) -> None:
        """Record training.gif's frames from now on; `history` holds the epochs already trained.

        Classification shows the standardised plane the model sees (as
        decision_boundary.png does); a regression's curve is in original units.
        """
        from micronet.animate import recorder_for
        from micronet.predict import softmax

        data, epochs = self.data, self.config.training.epochs
        if data.task == "regression":
            predict, original_targets, raw_features = self._in_original_units(executor)
            self.recorder = recorder_for(
                "regression", raw_features(data.X_train), original_targets(data.y_train), epochs,
                X_test=raw_features(data.X_test), y_test=original_targets(data.y_test),
                true_function=self._true_curve(),
            )
        else:
            def predict(G):
                return softmax(executor.logits(G))

            self.recorder = recorder_for(
                "classification", data.X_train, data.y_train, epochs,
                X_test=data.X_test, y_test=data.y_test, class_names=data.class_names,
            )
        self._predict = predict
        recorder = self.recorder
        recorder.add_rows(history)
        if not history and recorder.kind != "curves":
            recorder.snapshot(0, predict)  # the GIF opens with the untrained model

    def record(self, state: TrainState, row: dict) -> None:
        """The epoch's metrics (and, on planned epochs, a snapshot of the model) for training.gif."""
        if self.recorder is not None:
            self.recorder.on_epoch(row["epoch"], row, self._predict)

    def render_animation(self) -> None:
        """training.gif, when the run records one and has frames."""
        if self.recorder is not None and self.recorder.rows:
            self.recorder.render(self.dir / "training.gif", predict=self._predict)


def read_history(path: str | os.PathLike[str], epochs: int, columns: list[str] = METRIC_COLUMNS) -> list[dict]:
    """The first `epochs` rows of metrics.csv; rows beyond them (written after the checkpoint) are dropped."""
    try:
        reader = csv.reader(io.StringIO(files.read_regular_bytes(path).decode("utf-8"), newline=""))
        header = next(reader, None)
        rows = list(reader)
    except (OSError, ValueError, csv.Error) as e:  # ValueError: not UTF-8, or not a regular file
        raise ValueError(f"cannot read {path}: {e}") from None
    if header != columns:
        raise ValueError(f"{path} does not start with the header {','.join(columns)}")
    history: list[dict] = []
    for line, row in enumerate(rows[:epochs], start=2):
        try:
            values = dict(zip(columns, row, strict=True))
            parsed = {k: (int(v) if k == "epoch" else float(v)) for k, v in values.items()}
        except ValueError:
            raise ValueError(f"{path} line {line} is damaged: {','.join(row)!r}") from None
        if parsed["epoch"] != len(history) + 1:
            raise ValueError(f"{path} line {line} has epoch {parsed['epoch']}, expected {len(history) + 1}")
        history.append(parsed)
    if len(history) != epochs:
        raise ValueError(f"{path} has {len(history)} epochs, but the checkpoint was written after epoch {epochs}")
    return history
