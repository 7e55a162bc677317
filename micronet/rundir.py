"""A run directory: created once, written as training goes, read back to resume.

Everything a run leaves on disk is written here, each file so that it is
readable at any moment: config.yaml (the resolved config), metrics.csv (one
row per completed epoch, flushed every epoch), model.json (the checkpoint,
written atomically), summary.json, and the plots.
"""

import csv
import io
import os
import time
from pathlib import Path

import numpy as np

from micronet.checkpoint import save_model, write_json_atomic, write_text_atomic
from micronet.config import config_to_dict

__all__ = ["METRIC_COLUMNS", "UsageError", "RunWriter", "metric_columns", "new_run_dir", "read_history"]

SCORES = {"classification": ("accuracy",), "regression": ("mae", "r2")}


def metric_columns(task: str = "classification", validating: bool = False) -> list[str]:
    """metrics.csv's header: the epoch, loss and scores per split, the lr and the epoch's seconds."""
    splits = ("train", "val", "test") if validating else ("train", "test")
    return ["epoch", *(f"{s}_{m}" for s in splits for m in ("loss", *SCORES[task])), "lr", "seconds"]


METRIC_COLUMNS = metric_columns()  # a classification run without validation


class UsageError(ValueError):
    """A bad command line: wrong arguments, or an output path that cannot be used."""


def new_run_dir(name, out=None):
    """Create and return the run directory; never reuse a non-empty one.

    `out` is used as given; without it, runs/<name>-<YYYYmmdd-HHMMSS>, with
    -1, -2, ... appended when that name is taken.
    """
    try:
        if out is not None:
            path = Path(out)
            if path.exists() and not path.is_dir():
                raise UsageError(f"--out {out!r} is an existing file, not a directory")
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


class RunWriter:
    """Writes a run directory as training goes: each file readable at any moment."""

    def __init__(self, run_dir, config, data, resumed=False):
        self.dir = Path(run_dir)
        self.config = config
        self.data = data
        self.columns = RunWriter.columns(config, data)
        self.last_good = None
        if not resumed:
            self.dir.joinpath("config.yaml").write_text(_yaml(config_to_dict(config)))
            with open(self.dir / "metrics.csv", "w", newline="") as f:
                csv.writer(f).writerow(self.columns)

    @staticmethod
    def columns(config, data):
        """The metrics.csv header of a run of `config` on `data`."""
        return metric_columns(config.task, len(data.y_val) > 0)

    def restart_metrics(self, history):
        """On resume: metrics.csv holds exactly the checkpoint's epochs (a crash may have left one more row)."""
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow(self.columns)
        writer.writerows([_csv_number(row[c]) for c in self.columns] for row in history)
        write_text_atomic(self.dir / "metrics.csv", text.getvalue())

    def on_epoch(self, state, row):
        with open(self.dir / "metrics.csv", "a", newline="") as f:
            csv.writer(f).writerow([_csv_number(row[c]) for c in self.columns])
            f.flush()
            os.fsync(f.fileno())
        self.save_checkpoint(state)

    def save_checkpoint(self, state):
        self.last_good = state.model.state_dict()  # what plots show if a later epoch diverges
        scaler = self.data.scaler
        target = self.data.target_scaler
        save_model(
            state.model,
            self.dir / "model.json",
            task=self.data.task,
            classes=self.data.class_names,
            **({} if scaler is None else scaler.to_dict()),  # mean and scale, as plain lists
            **({} if target is None else {"target_mean": target.mean_.tolist(), "target_scale": target.scale_.tolist()}),
            feature_names=self.data.feature_names,
            training=state.to_dict(),
        )

    def summary(self, state, status, error=None):
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
            **{c: shown.get(c) for c in self.columns if c not in ("epoch", "lr", "seconds")},
            "best_epoch": best,
            "stopped_early": state.stopped_early,
            "seconds": sum(row["seconds"] for row in state.history),
            "n_parameters": len(state.model.parameters()),
        }
        write_json_atomic(self.dir / "summary.json", summary)
        return summary

    def plots(self, state, executor):
        """The run's pictures: loss.png, then decision_boundary.png or confusion_matrix.png
        (classification), or predictions.png and, for one input, fit.png (regression)."""
        from micronet import plot

        data = self.data
        if state.history:
            plot.plot_history(state.history, self.dir / "loss.png")
        if data.task == "regression":
            self._regression_plots(plot, executor)
        elif data.feature_count == 2:
            plot.plot_decision_boundary(
                lambda X: _softmax(executor.logits(X)),
                data.X_train, data.y_train, data.X_test, data.y_test,
                self.dir / "decision_boundary.png",
                class_names=data.class_names,
                standardized=data.scaler is not None,
            )
        else:
            predicted = executor.logits(data.X_test).argmax(axis=1)
            plot.plot_confusion_matrix(
                data.y_test, predicted, data.n_classes, self.dir / "confusion_matrix.png", data.class_names
            )

    def _regression_plots(self, plot, executor):
        """Predicted against true on the test split, and the fitted curve for one input, in original units."""
        data = self.data
        scaler, target_scaler = data.scaler, data.target_scaler

        def original_targets(y):
            y = y if target_scaler is None else target_scaler.inverse_transform(y)
            return y.reshape(len(y), -1)[:, 0] if y.ndim == 1 or y.shape[1] == 1 else y

        def predict(X_raw):
            X = X_raw if scaler is None else scaler.transform(X_raw)
            return original_targets(executor.logits(X)[:, 0] if data.n_outputs == 1 else executor.logits(X))

        y_test = original_targets(data.y_test)
        predicted = original_targets(executor.logits(data.X_test)[:, 0] if data.n_outputs == 1
                                     else executor.logits(data.X_test))
        plot.plot_predictions(y_test, predicted, self.dir / "predictions.png")
        if data.feature_count == 1 and data.n_outputs == 1:
            X_train = data.X_train if scaler is None else scaler.inverse_transform(data.X_train)
            truth = _truth(self.config.dataset.name)
            plot.plot_fit(predict, X_train, original_targets(data.y_train), self.dir / "fit.png",
                          true_function=None if truth is None else lambda x: truth(x[:, None]))


def _truth(dataset_name):
    """The noise-free function of a generated 1-D regression set, when it has one."""
    from micronet.data import DATASETS

    return DATASETS[dataset_name].truth


def _softmax(logits):
    with np.errstate(all="ignore"):  # a model on the edge of diverging may give inf logits
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)


def _csv_number(x):
    return x if isinstance(x, int) else repr(float(x))


def _yaml(mapping):
    import yaml

    return "# resolved by micronet: defaults and overrides applied; rerun with it to reproduce\n" + yaml.safe_dump(
        mapping, sort_keys=False, default_flow_style=None
    )


def read_history(path, epochs, columns=METRIC_COLUMNS):
    """The first `epochs` rows of metrics.csv; rows beyond them (written after the checkpoint) are dropped."""
    try:
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"cannot read {path}: {e}") from None
    if header != columns:
        raise ValueError(f"{path} does not start with the header {','.join(columns)}")
    history = []
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
