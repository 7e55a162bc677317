"""The training state: `Plan` (how to train), `TrainState` (what changes, with its resume JSON) and their factories.

`new_state` and `config_loss` build them from a validated config;
`sub_rng` gives each random purpose its own stream from the run seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from micronet.callbacks import EarlyStopping
from micronet.data import PreparedData, batches
from micronet.defaults import SETTINGS
from micronet.losses import get_loss
from micronet.nn import MLP, Module
from micronet.optim import OPTIMIZERS, SCHEDULES

if TYPE_CHECKING:  # annotations only: the state takes a validated config as a value
    from micronet.config import RunConfig

__all__ = ["Plan", "TrainState", "config_loss", "fill_run_length", "new_state", "sub_rng"]


@dataclass
class Plan:
    """How to train, independent of what is trained: the loop's fixed settings."""

    epochs: int  # the last epoch to reach
    batch_size: int | str = SETTINGS["batch_size"].option.default  # samples per step, or "full"
    shuffle: bool = SETTINGS["shuffle"].option.default  # reshuffle the training split every epoch
    step_schedule: bool = False  # advance the lr schedule per optimizer step (else per epoch)

    @classmethod
    def from_config(cls, config: RunConfig) -> Plan:
        """The plan of a validated `RunConfig`."""
        training = config.training
        return cls(
            training.epochs, training.batch_size, training.shuffle, config.optimizer.schedule.interval == "step"
        )


@dataclass
class TrainState:
    """Everything that changes while training, and all that resume needs."""

    model: Module
    optimizer: Any
    schedule: Any
    shuffle_rng: random.Random
    epoch: int = 0  # completed epochs
    history: list = field(default_factory=list)  # one metrics dict per completed epoch
    stopper: EarlyStopping | None = None  # early stopping, if asked for
    stopped_early: bool = False  # patience ran out: the run is over before its last epoch

    def finish(self) -> None:
        """End training: with early stopping's restore_best, the model takes its best epoch's weights.

        Separate from the loop, which may run a few epochs at a time (a
        playground steps one by one); call it once, when the run is over.
        """
        if self.stopper is not None:
            self.stopper.restore(self.model)

    def final_row(self) -> dict:
        """The metrics row of the model as it ends: the best epoch's with restore_best, else the last one."""
        if not self.history:
            return {}
        stopper = self.stopper
        if stopper is not None and stopper.restore_best and stopper.best_epoch is not None:
            return self.history[stopper.best_epoch - 1]
        return self.history[-1]

    def to_dict(self) -> dict:
        """The resume part of a checkpoint: plain JSON data."""
        return {
            "epoch": self.epoch,
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "shuffle_rng": _rng_to_json(self.shuffle_rng.getstate()),
            "early_stopping": None if self.stopper is None else self.stopper.state_dict(),
            "stopped_early": self.stopped_early,
        }

    def load_dict(self, data: dict) -> None:
        """Restore `to_dict()` output; raise ValueError if it does not fit."""
        try:
            self.optimizer.load_state_dict(data["optimizer"])
            self.schedule.load_state_dict(data["schedule"])
            self.shuffle_rng.setstate(_rng_from_json(data["shuffle_rng"]))
            epoch = data["epoch"]
            stopping, stopped = data.get("early_stopping"), data.get("stopped_early", False)
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise ValueError(f"the checkpoint's training state is damaged: {e}") from None
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"the checkpoint's epoch must be an int >= 0, got {epoch!r}")
        if (stopping is None) != (self.stopper is None):
            raise ValueError(
                "the checkpoint's early-stopping state does not match the config's training.early_stopping"
            )
        if self.stopper is not None:
            self.stopper.load_state_dict(stopping)  # type: ignore[arg-type]  # both or neither, checked above
        self.epoch, self.stopped_early = epoch, stopped is True


def _rng_to_json(state):
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _rng_from_json(data):
    version, internal, gauss = data
    return (version, tuple(internal), gauss)


def sub_rng(seed: int, purpose: str) -> random.Random:
    """An independent stream per purpose, all from the one run seed (str seeds hash stably)."""
    return random.Random(f"micronet:{seed}:{purpose}")


def _steps_per_epoch(n: int, batch_size: int | str) -> int:
    return len(batches(n, batch_size, random.Random(0), shuffle=False))


def fill_run_length(name: str, params: dict, run_length: int) -> dict:
    """A schedule's parameters with each unset run length (cosine's T_max, linear's total_iters) the run's."""
    options = SCHEDULES[name].options
    return {k: (run_length if v is None and options[k].run_length else v) for k, v in params.items()}


def new_state(config: RunConfig, data: PreparedData, model: Module | None = None) -> TrainState:
    """A fresh optimizer, schedule and early-stopping tracker for `config` and the data's shape.

    The model is `model`, or else a new MLP with the config's layers and
    one output per class (or per target column), seeded by the run seed.
    """
    if model is None:
        model = MLP(
            data.feature_count,
            [*config.model.hidden, data.n_outputs],
            activation=config.model.activation,
            seed=sub_rng(config.seed, "init"),
        )
    opt = config.optimizer
    optimizer = OPTIMIZERS[opt.name](model.parameters(), **opt.params())
    run_length = config.training.epochs
    if opt.schedule.interval == "step":
        run_length *= _steps_per_epoch(len(data.y_train), config.training.batch_size)
    params = fill_run_length(opt.schedule.name, opt.schedule.params(), run_length)
    schedule = SCHEDULES[opt.schedule.name](optimizer, **params)
    stopping = config.training.early_stopping
    stopper = None if stopping is None else EarlyStopping(**stopping.params())
    return TrainState(model, optimizer, schedule, sub_rng(config.seed, "shuffle"), stopper=stopper)


def config_loss(config: RunConfig) -> Callable:
    """The per-sample loss function a config asks for."""
    return get_loss(config.loss.name, config.task, **config.loss.params())
