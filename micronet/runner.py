"""One run: `run` trains a config into a run directory, the library form that the command line and sweeps share.

micronet.epochs runs the epochs and micronet.rundir writes the files; a
divergence is explained, naming the data when the data is the cause.
"""

import os
import sys
from collections.abc import Callable

import numpy as np

from micronet.budget import data_problem
from micronet.config import ConfigError, RunConfig
from micronet.data import PreparedData, prepare_data
from micronet.epochs import Diverged, run_epochs
from micronet.executors import EagerExecutor, make_executor
from micronet.progress import ProgressBar
from micronet.rundir import RunWriter
from micronet.state import Plan, TrainState, config_loss, new_state

__all__ = ["UNSCALED_LIMIT", "load_run_data", "run"]


def load_run_data(config: RunConfig) -> PreparedData:
    """The prepared data a config trains on, checked against micronet.budget before a model is built."""
    data = prepare_data(config.dataset, config.seed, config.task, config.training.validation_split)
    problem = data_problem(config, len(data.y_train) + len(data.y_val) + len(data.y_test), data.feature_count,
                           data.n_outputs)
    if problem is not None:
        raise ConfigError(problem)
    return data


def run(config: RunConfig, run_dir: str | os.PathLike[str], *, data: PreparedData | None = None,
        state: TrainState | None = None, resumed: bool = False, progress: bool = False,
        should_stop: Callable[[], bool] | None = None, warn: Callable[[str], object] | None = None) -> dict:
    """Train `config` into the existing directory `run_dir`; return the summary dict.

    The library form of the CLI (the sweep runs it once per point): every
    file of the run directory is written here. `data` and `state` default to
    a fresh start; `summary["status"]` is completed, interrupted or diverged
    (then `summary["error"]` says why). Any other failure writes a `failed`
    summary naming it, when it can, and is raised. `should_stop()` is polled
    before every batch (before every sample with the eager backend) and
    between plots. `warn` receives notes such as a fallback to the eager
    backend.
    """
    data = load_run_data(config) if data is None else data
    state = new_state(config, data) if state is None else state
    on_disk = state.epoch  # the epoch of the checkpoint in run_dir until this run writes one
    writer = RunWriter(run_dir, config, data, resumed=resumed)
    executor = make_executor(state.model, config_loss(config), config.training.backend, data.feature_count,
                             warn or _note)
    if isinstance(executor, EagerExecutor):
        executor.should_stop = should_stop
    bar = ProgressBar(config.training.epochs, state.epoch, notebook=False) if progress else None
    error = None
    try:
        if resumed:
            writer.restart_metrics(state.history)
        else:
            writer.save_checkpoint(state)  # from the start, model.json records the run (see _load_resume)
        if config.training.animate:
            writer.start_animation(executor, state.history)

        def on_epoch(state, row):
            writer.on_epoch(state, row)
            writer.record(state, row)

        status = run_epochs(
            Plan.from_config(config), data, state, executor,
            on_epoch=on_epoch, should_stop=should_stop, callbacks=[bar] if bar else [],
        )
        if status == "completed":
            state.finish()
            writer.save_checkpoint(state)  # the final weights (the best epoch's, with restore_best)
        else:
            writer.flush()  # interrupted: every finished epoch is kept
    except Diverged as e:
        status, error = "diverged", _divergence(e, config, data)
        writer.flush()  # the last good epoch
    except KeyboardInterrupt:
        if not _stopping(should_stop):
            raise
        status = "interrupted"  # the eager executor gave up a batch part-way
        writer.flush()
    except Exception as e:
        try:
            writer.flush()  # keep what can be kept (a full disk may refuse this too)
        except Exception:  # noqa: BLE001 - the caller still hears of `e`
            pass
        kept = on_disk if writer.saved_epoch is None else writer.saved_epoch  # later epochs are lost
        state.epoch, state.history = kept, state.history[:kept]
        try:
            writer.summary(state, "failed", " ".join(f"{type(e).__name__}: {e}".split()))
        except Exception:  # noqa: BLE001 - e.g. the disk that just filled up; the caller still hears of `e`
            pass
        raise
    finally:
        if bar is not None:
            bar.close()
    summary = writer.summary(state, status, error, executor if status == "completed" else None)
    if status == "diverged" and writer.last_good is not None:
        state.model.load_state_dict(writer.last_good)  # draw the last good epoch, not the wreck
    if state.history and not _stopping(should_stop):  # after the summary: it must exist even if plotting fails
        try:
            writer.plots(state, executor, should_stop)
            if not _stopping(should_stop):
                writer.render_animation()
        except KeyboardInterrupt:
            if not _stopping(should_stop):
                raise
    return summary


def _stopping(should_stop):
    return should_stop is not None and should_stop()


UNSCALED_LIMIT = 1e3  # unstandardised features this large make the data the likely cause of divergence


def _divergence(error, config, data):
    """The divergence message, naming the data when the data is the cause.

    It is when even the untrained model gives a non-finite loss on it (no
    learning rate can help), or when unstandardised features are so large
    that any usable learning rate would be absurdly small.
    """
    largest = float(np.max(np.abs(data.X_train))) if data.X_train.size else 0.0
    fix = "" if config.dataset.standardize else "; set dataset.standardize: true"
    if not _finite_at_start(config, data):
        why = f"the untrained model already gives a non-finite loss on it (features up to {largest:.3g}){fix}"
    elif not config.dataset.standardize and largest >= UNSCALED_LIMIT:
        why = f"its features reach {largest:.3g} unscaled{fix}"
    else:
        return str(error)
    blame = "the data is the cause, not the learning rate"
    return f"training diverged at epoch {error.epoch} ({error.cause}); {blame}: {why}"


def _finite_at_start(config, data):
    """Whether the untrained model gives a finite loss on every training sample."""
    model = new_state(config, data).model
    executor = make_executor(model, config_loss(config), config.training.backend, data.feature_count)
    try:
        with np.errstate(all="ignore"):
            losses, _ = executor.evaluate(data.X_train, data.y_train)
    except (ArithmeticError, ValueError):  # the engine's overflow and domain errors
        return False
    return bool(np.all(np.isfinite(losses)))


def _note(message):
    print(message, file=sys.stderr)
