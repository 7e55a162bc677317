"""Callbacks: what the loop tells after every epoch (EarlyStopping, History and the callback protocol).

A callback is a callable `(epoch, logs)` or an object with
`on_epoch_end(epoch, logs)`; returning True or setting `stop_training`
ends training after that epoch. `logs` name the metrics as Keras does
(`keras_logs`).
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

from micronet.tasks import find_metric

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from micronet.nn import Module

__all__ = ["EarlyStopping", "History", "ask_to_stop", "keras_logs"]


class EarlyStopping:
    """Stop when a monitored metric has not improved for `patience` epochs (Keras's rule).

    An epoch improves on the best so far when the metric moves the right way
    by more than `min_delta`. `mode` is "min" or "max"; "auto" takes the way
    the task specs (micronet.tasks) say the metric is better, and "min" for a
    key they do not name. With `restore_best`, the model ends with the
    weights of the best epoch, whether or not training stopped early. The
    tracker's state is plain data, so a resumed run carries on counting
    exactly where it left off.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 10, min_delta: float = 0.0,
                 restore_best: bool = True, mode: str = "auto") -> None:
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"EarlyStopping monitor must be a metric name like 'val_loss', got {monitor!r}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"EarlyStopping patience must be an int >= 1, got {patience!r}")
        if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float)) or not 0 <= min_delta < math.inf:
            raise ValueError(f"EarlyStopping min_delta must be a finite number >= 0, got {min_delta!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"EarlyStopping mode must be 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":
            known = find_metric(monitor)
            mode = "min" if known is None else known.better
        self.monitor, self.patience, self.min_delta = monitor, patience, float(min_delta)
        self.restore_best, self.mode = bool(restore_best), mode
        self.best: float | None = None  # the best value seen
        self.best_epoch: int | None = None
        self.wait = 0  # epochs since the best one
        self.best_weights: dict | None = None  # model.state_dict() of the best epoch (restore_best only)

    def update(self, epoch: int, logs: dict, model: Module) -> bool:
        """Record one finished epoch; True when training should stop now."""
        if self.monitor not in logs:
            raise ValueError(
                f"early stopping monitors {self.monitor!r}, which this run does not log "
                f"(it logs: {', '.join(logs)}); validate, or monitor 'loss'"
            )
        value = float(logs[self.monitor])
        sign = 1.0 if self.mode == "min" else -1.0
        if self.best is None or sign * (value - self.best) < -self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self.best_weights = model.state_dict()
            return False
        self.wait += 1
        return self.wait >= self.patience

    def restore(self, model: Module) -> None:
        """Give the model its best epoch's weights (with restore_best, once there is a best)."""
        if self.restore_best and self.best_weights is not None:
            model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict:
        """The tracker's progress as plain JSON data (the settings come from the config)."""
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait, "best_weights": self.best_weights}

    def load_state_dict(self, data: dict) -> None:
        try:
            best, best_epoch, wait, weights = data["best"], data["best_epoch"], data["wait"], data["best_weights"]
        except (KeyError, TypeError):
            raise ValueError(f"the early-stopping state is damaged: {data!r:.100}") from None
        if best is not None and not (isinstance(best, (int, float)) and math.isfinite(best)):
            raise ValueError(f"the early-stopping best value must be a finite number, got {best!r}")
        for name, value in (("best_epoch", best_epoch), ("wait", wait)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"the early-stopping {name} must be an int >= 0, got {value!r}")
        if weights is not None and not isinstance(weights, dict):
            raise ValueError("the early-stopping best weights must be an object of parameters")
        self.best, self.best_epoch, self.wait, self.best_weights = best, best_epoch, wait or 0, weights

    def __repr__(self) -> str:
        return (
            f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, min_delta={self.min_delta}, "
            f"restore_best={self.restore_best}, mode={self.mode!r})"
        )


def keras_logs(row: dict) -> dict:
    """A metrics row in Keras's naming: train_loss -> loss, val_loss stays, epoch and seconds dropped."""
    return {
        (key[len("train_"):] if key.startswith("train_") else key): value
        for key, value in row.items()
        if key not in ("epoch", "seconds")
    }


class History:
    """What `fit` returns: per-epoch metrics, keyed as Keras keys them.

    `history` maps each metric (loss, accuracy or mae and r2, their val_
    twins when validating, lr) to a list with one value per epoch; `epoch`
    lists the epoch numbers (1-based, as metrics.csv counts them);
    `best_epoch` is the early-stopping tracker's best epoch (None without
    early stopping); `stopped_early` says whether patience ran out.
    """

    def __init__(self, rows: list[dict], best_epoch: int | None = None, stopped_early: bool = False) -> None:
        self.rows = [dict(row) for row in rows]
        self.epoch = [row["epoch"] for row in rows]
        self.history: dict[str, list] = {}
        for row in rows:
            for key, value in keras_logs(row).items():
                self.history.setdefault(key, []).append(value)
        self.best_epoch = best_epoch
        self.stopped_early = stopped_early

    def __len__(self) -> int:
        return len(self.epoch)

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.history.items() if k != "lr") if self.epoch else ""
        stop = f", stopped early (best epoch {self.best_epoch})" if self.stopped_early else ""
        return f"History({len(self)} epochs{': ' + last if last else ''}{stop})"

    def to_csv(self, path: str | os.PathLike[str]) -> None:
        """One row per epoch, the columns of metrics.csv, written atomically."""
        from micronet.files import csv_text, write_text_atomic

        columns = list(self.rows[0]) if self.rows else ["epoch"]
        write_text_atomic(path, csv_text(columns, self.rows))

    def plot(self, ax: Axes | None = None) -> Axes:
        """Loss (and accuracy or R²) per epoch; returns the matplotlib Axes."""
        from micronet import plot

        return plot.history(self, ax=ax)


def ask_to_stop(callbacks: list, epoch: int, logs: dict) -> bool:
    """Tell every callback about the epoch (each sees it, even after one asks to stop); True to stop."""
    stop = False
    for callback in callbacks:
        hook = getattr(callback, "on_epoch_end", callback)
        if hook(epoch, dict(logs)) is True or getattr(callback, "stop_training", False) is True:
            stop = True
    return stop
