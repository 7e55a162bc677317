"""The command line that turns a YAML file into a run.

    python -m micronet.train configs/moons.yaml [KEY=VALUE ...] [--out DIR]

`run` trains a config into a run directory (micronet.loop runs the epochs,
micronet.rundir writes the files); `main` is the only function that touches
argv, signals and the terminal.
"""

import os
import signal
import sys

if __name__ == "__main__":
    # `python -m micronet.train`: Ctrl-C while the imports below load (about a
    # second: NumPy, scikit-learn) is one line and exit 130, not a traceback.
    # Nothing has been written yet; main() installs the real handlers.
    def _interrupted_while_starting(signum, frame):
        os.write(2, b"interrupted while starting; nothing was written\n")
        os._exit(128 + signum)

    signal.signal(signal.SIGINT, _interrupted_while_starting)

import argparse
import json
import warnings
from pathlib import Path

import numpy as np

from micronet import files
from micronet.budget import check_data
from micronet.checkpoint import load_checkpoint
from micronet.config import ConfigError, load_config
from micronet.data import DataError, prepare_data
from micronet.loop import (
    Diverged, EagerExecutor, Plan, ProgressBar, config_loss, make_executor, new_state, run_epochs,
)
from micronet.rundir import (
    RunWriter, UsageError, check_fingerprint, lock_run_dir, new_run_dir, read_history, start_run_dir,
)

__all__ = ["run", "run_cli", "main", "load_run_data", "UsageError", "new_run_dir"]

EXIT_FAILED, EXIT_USAGE, EXIT_DIVERGED, EXIT_SIGINT, EXIT_SIGTERM = 1, 2, 3, 130, 143


def load_run_data(config):
    """The prepared data a config trains on, checked against micronet.budget before a model is built."""
    data = prepare_data(config.dataset, config.seed, config.task, config.training.validation_split)
    check_data(config, len(data.y_train) + len(data.y_val) + len(data.y_test), data.feature_count, data.n_outputs)
    return data


# ----- the command line -------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, then exit 2, like every other usage error
        raise UsageError(f"{message} (see --help)")


def _arguments(argv):
    parser = _Parser(
        prog="python -m micronet.train",
        description="Train a model from a YAML config: metrics, plots and a checkpoint in a run directory.",
        epilog="Every config key is described in docs/config.md; the shipped configs/*.yaml are commented examples.",
    )
    parser.add_argument("config", nargs="?", help="YAML run config, e.g. configs/moons.yaml")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="override a config value: optimizer.lr=0.05")
    parser.add_argument("--out", metavar="DIR", help="run directory (default: runs/<name>-<YYYYmmdd-HHMMSS>)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last completed epoch")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    args = parser.parse_intermixed_args(argv)  # overrides may come after options
    if args.resume and (args.config or args.overrides or args.out):
        raise UsageError("--resume RUN_DIR takes no config, overrides or --out: the run directory has them")
    if not args.resume and not args.config:
        raise UsageError("a config file is required, e.g. python -m micronet.train configs/moons.yaml")
    return args


class _StopFlag:
    """SIGINT/SIGTERM set a flag the loop polls, so a stop never lands mid-write."""

    def __init__(self):
        self.signal = None

    def __call__(self):
        return self.signal is not None

    def install(self):
        def handler(signum, frame):
            self.signal = signum

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    def exit_status(self):
        return EXIT_SIGTERM if self.signal == signal.SIGTERM else EXIT_SIGINT


def run(config, run_dir, *, data=None, state=None, resumed=False, progress=False, should_stop=None, warn=None):
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
    executor = make_executor(state.model, config_loss(config), config.training.backend, data.feature_count, warn or _note)
    if isinstance(executor, EagerExecutor):
        executor.should_stop = should_stop
    bar = ProgressBar(config.training.epochs, state.epoch, notebook=False) if progress else None
    error = None
    try:
        if resumed:
            writer.restart_metrics(state.history)
        else:
            writer.save_checkpoint(state)  # from the start, model.json records the run (see _load_resume)
        status = run_epochs(
            Plan.from_config(config), data, state, executor,
            on_epoch=writer.on_epoch, should_stop=should_stop, callbacks=[bar] if bar else [],
        )
        if status == "completed":
            state.finish()
            writer.save_checkpoint(state)  # the final weights (the best epoch's, with restore_best)
    except Diverged as e:
        status, error = "diverged", _divergence(e, config, data)
    except KeyboardInterrupt:
        if not _stopping(should_stop):
            raise
        status = "interrupted"  # the eager executor gave up a batch part-way
    except Exception as e:
        kept = on_disk if writer.saved_epoch is None else writer.saved_epoch  # later epochs are lost
        state.epoch, state.history = kept, state.history[:kept]
        try:
            writer.summary(state, "failed", _one_line(f"{type(e).__name__}: {e}"))
        except Exception:  # noqa: BLE001 - e.g. the disk that just filled up; the caller still hears of `e`
            pass
        raise
    finally:
        if bar is not None:
            bar.close()
    summary = writer.summary(state, status, error)
    if status == "diverged" and writer.last_good is not None:
        state.model.load_state_dict(writer.last_good)  # draw the last good epoch, not the wreck
    if state.history and not _stopping(should_stop):  # after the summary: it must exist even if plotting fails
        try:
            writer.plots(state, executor, should_stop)
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


def _run(args):
    stop = _StopFlag()
    if args.resume:
        run_dir = Path(args.resume)
        _require_run_dir(run_dir)
        with lock_run_dir(run_dir):
            files.remove_stale_temporaries(run_dir)  # left by a process killed mid-write
            config, state, data = _load_resume(run_dir)
            if state.epoch >= config.training.epochs or state.stopped_early:
                return _finish_completed(config, state, data, run_dir, stop)
            stop.install()
            return _train(config, state, data, run_dir, stop, resumed=True, progress=_progress(args))
    config = load_config(args.config, args.overrides)
    data = load_run_data(config)
    state = new_state(config, data)
    run_dir, lock = start_run_dir(config.name, args.out)
    with lock:
        stop.install()
        return _train(config, state, data, run_dir, stop, resumed=False, progress=_progress(args))


def _progress(args):
    return not args.no_progress and sys.stderr.isatty()


def _train(config, state, data, run_dir, stop, resumed, progress):
    """Run, then say how it ended: the exit status."""
    try:
        summary = run(
            config, run_dir, data=data, state=state, resumed=resumed, progress=progress, should_stop=stop
        )
    except OSError as e:  # a full disk, a directory made read-only: one line, and what is kept
        print(f"error: {_one_line(f'{type(e).__name__}: {e}')}; {_kept(state, run_dir)}", file=sys.stderr)
        return EXIT_FAILED
    if summary["status"] == "diverged":
        print(f"error: {summary['error']}; {_kept(state, run_dir)}", file=sys.stderr)
        return EXIT_DIVERGED
    if summary["status"] == "interrupted":
        print(
            f"interrupted after {state.epoch} of {config.training.epochs} epochs; run directory {run_dir}\n"
            f"resume with: python -m micronet.train --resume {run_dir}",
            file=sys.stderr,
        )
        return stop.exit_status()
    if stop():
        print(
            f"interrupted at the end of the run: training completed ({state.epoch} epochs) and its checkpoint, "
            f"metrics and summary are in {run_dir}, but not all plots were drawn\n"
            f"draw them with: python -m micronet.train --resume {run_dir}",
            file=sys.stderr,
        )
        return stop.exit_status()
    print(_final_line(summary, config.task, run_dir))
    return 0


def _kept(state, run_dir):
    if state.epoch:
        return f"epochs 1-{state.epoch} and their checkpoint are kept in {run_dir}"
    return f"no epoch completed; see {run_dir}"


def _finish_completed(config, state, data, run_dir, stop):
    """--resume of a run with no epoch left: nothing to do, unless a kill cut its ending short.

    A run killed after its last checkpoint may lack its summary or plots;
    running it again trains no epoch and writes just those.
    """
    done = f"stopped early after {state.epoch}" if state.stopped_early else f"completed all {state.epoch}"
    writer = RunWriter(run_dir, config, data, resumed=True)
    missing = [name for name in writer.plot_names() if not _regular(run_dir / name)]
    if _summary_status(run_dir) == "completed" and not missing:
        print(f"run {run_dir} already {done} epochs; nothing to do")
        return 0
    stop.install()
    status = _train(config, state, data, run_dir, stop, resumed=True, progress=False)
    if status == 0:
        print(f"(run {run_dir} had {done} epochs; its summary and plots are now written)")
    return status


def _regular(path):
    return path.is_file() and not path.is_symlink()


def _summary_status(run_dir):
    try:
        return json.loads(files.read_regular_bytes(run_dir / "summary.json")).get("status")
    except (OSError, ValueError, AttributeError):
        return None


def _final_line(summary, task, run_dir):
    """One line: the saved model's scores on each split, the time and the run directory."""
    scores = ("acc", "accuracy") if task == "classification" else ("r2", "r2")
    parts = []
    for split in ("train", "val", "test"):
        if summary.get(f"{split}_loss") is not None:
            parts.append(f"{split} loss {summary[f'{split}_loss']:.4f} {scores[0]} {summary[f'{split}_{scores[1]}']:.3f}")
    if summary.get("stopped_early"):
        parts.append(f"stopped early at epoch {summary['epochs']}, best epoch {summary['best_epoch']}")
    return " | ".join([*parts, f"{summary['seconds']:.1f}s", str(run_dir)])


def _require_run_dir(run_dir):
    if not run_dir.is_dir() or not (run_dir / "config.yaml").is_file() or not (run_dir / "metrics.csv").is_file():
        raise UsageError(f"{str(run_dir)!r} is not a run directory (it needs config.yaml and metrics.csv)")


def _load_resume(run_dir):
    """Config, training state and data of an existing run directory, checked against each other."""
    config = load_config(run_dir / "config.yaml")
    checkpoint_path = run_dir / "model.json"
    if not checkpoint_path.exists():  # a run writes it before its first epoch
        raise ValueError(
            f"{checkpoint_path} is missing: the run's checkpoint was deleted, and starting again from epoch 0 "
            f"would throw away the epochs in {run_dir / 'metrics.csv'}; restore it, or start a new run"
        )
    checkpoint = load_checkpoint(checkpoint_path)
    if checkpoint.training is None:
        raise ValueError(f"{checkpoint_path} has no training state to resume from")
    check_fingerprint(checkpoint.training.get("fingerprint"), config, run_dir)
    data = load_run_data(config)
    state = new_state(config, data)
    try:
        state.model.load_state_dict(checkpoint.model.state_dict())
    except (KeyError, ValueError) as e:
        raise ValueError(f"{checkpoint_path} does not match {run_dir / 'config.yaml'}: {e}") from None
    state.load_dict(checkpoint.training)
    state.history = read_history(run_dir / "metrics.csv", state.epoch, RunWriter.columns(config, data))
    return config, state, data


def _note(message):
    print(message, file=sys.stderr)


def _one_line(text):
    return " ".join(str(text).split())


def run_cli(body, argv, usage_errors):
    """Run a command-line `body(argv)` the way every micronet command ends.

    `usage_errors` (and KeyboardInterrupt) become one `error:` line and exit
    status 2 (130); anything else one line naming the exception and exit 1.
    `--debug` in argv re-raises instead, for the traceback. NumPy's
    floating-point warnings never reach the terminal: the trainer checks
    every loss, gradient and parameter itself and says what went wrong.
    """
    debug = "--debug" in argv
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            return body(argv)
    except usage_errors as e:
        if debug:
            raise
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # Ctrl-C before a command took over the signal
        print("interrupted", file=sys.stderr)
        return EXIT_SIGINT
    except Exception as e:  # noqa: BLE001 - the last line of defence: one line, no traceback
        if debug:
            raise
        what = f"{type(e).__name__}: {_one_line(e)}" if _one_line(e) else type(e).__name__
        print(f"error: unexpected {what} (rerun with --debug for the traceback)", file=sys.stderr)
        return EXIT_FAILED


def main(argv=None):
    """Entry point of `python -m micronet.train`; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    # ValueError: besides config and data mistakes, damaged run files on --resume.
    return run_cli(lambda args: _run(_arguments(args)), argv, (UsageError, ConfigError, DataError, ValueError))


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)  # started: Ctrl-C is a KeyboardInterrupt again
    sys.exit(main())
