"""The command line that turns a YAML file into a run.

    python -m micronet.train configs/moons.yaml [KEY=VALUE ...] [--out DIR]

`run` trains a config into a run directory (micronet.loop runs the epochs,
micronet.rundir writes the files); `main` is the only function that touches
argv, signals and the terminal.
"""

import argparse
import signal
import sys
from pathlib import Path

from micronet.checkpoint import load_checkpoint
from micronet.config import ConfigError, load_config
from micronet.data import DataError, prepare_data
from micronet.loop import Diverged, Plan, ProgressBar, config_loss, make_executor, new_state, run_epochs
from micronet.rundir import RunWriter, UsageError, new_run_dir, read_history

__all__ = ["run", "run_cli", "main", "load_run_data", "UsageError", "new_run_dir"]

EXIT_USAGE, EXIT_DIVERGED, EXIT_SIGINT, EXIT_SIGTERM = 2, 3, 130, 143


def load_run_data(config):
    """The prepared data a config trains on."""
    return prepare_data(config.dataset, config.seed, config.task, config.training.validation_split)


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


def run(config, run_dir, *, data=None, state=None, resumed=False, progress=False, should_stop=None, warn=None):
    """Train `config` into the existing directory `run_dir`; return the summary dict.

    The library form of the CLI (the sweep runs it once per point): every
    file of the run directory is written here. `data` and `state` default to
    a fresh start; `summary["status"]` is completed, interrupted or diverged
    (then `summary["error"]` says why). `warn` receives notes such as a
    fallback to the eager backend.
    """
    data = load_run_data(config) if data is None else data
    state = new_state(config, data) if state is None else state
    writer = RunWriter(run_dir, config, data, resumed=resumed)
    if resumed:
        writer.restart_metrics(state.history)
    executor = make_executor(state.model, config_loss(config), config.training.backend, data.feature_count, warn or _note)
    bar = ProgressBar(config.training.epochs, state.epoch, notebook=False) if progress else None
    error = None
    try:
        status = run_epochs(
            Plan.from_config(config), data, state, executor,
            on_epoch=writer.on_epoch, should_stop=should_stop, callbacks=[bar] if bar else [],
        )
        if status == "completed":
            state.finish()
            writer.save_checkpoint(state)  # the final weights (the best epoch's, with restore_best)
    except Diverged as e:
        status, error = "diverged", str(e)
    finally:
        if bar is not None:
            bar.close()
    summary = writer.summary(state, status, error)
    if status == "diverged" and writer.last_good is not None:
        state.model.load_state_dict(writer.last_good)  # draw the last good epoch, not the wreck
    if state.history:  # after the summary: it must exist even if plotting fails
        writer.plots(state, executor)
    return summary


def _run(args):
    if args.resume:
        run_dir = Path(args.resume)
        config, state, data = _load_resume(run_dir)
        if state.epoch >= config.training.epochs or state.stopped_early:
            done = f"stopped early after {state.epoch}" if state.stopped_early else f"completed all {state.epoch}"
            print(f"run {run_dir} already {done} epochs; nothing to do")
            return 0
    else:
        config = load_config(args.config, args.overrides)
        data = load_run_data(config)
        state = new_state(config, data)
        run_dir = new_run_dir(config.name, args.out)
    stop = _StopFlag()
    stop.install()
    progress = not args.no_progress and sys.stderr.isatty()
    summary = run(
        config, run_dir, data=data, state=state, resumed=bool(args.resume), progress=progress, should_stop=stop
    )
    if summary["status"] == "diverged":
        kept = f"epochs 1-{state.epoch} and their checkpoint are kept in" if state.epoch else "no epoch completed; see"
        print(f"error: {summary['error']}; {kept} {run_dir}", file=sys.stderr)
        return EXIT_DIVERGED
    if summary["status"] == "interrupted":
        print(
            f"interrupted after {state.epoch} of {config.training.epochs} epochs; run directory {run_dir}\n"
            f"resume with: python -m micronet.train --resume {run_dir}",
            file=sys.stderr,
        )
        return EXIT_SIGTERM if stop.signal == signal.SIGTERM else EXIT_SIGINT
    print(_final_line(summary, config.task, run_dir))
    return 0


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


def _load_resume(run_dir):
    """Config, training state and data of an existing run directory."""
    if not run_dir.is_dir() or not (run_dir / "config.yaml").is_file() or not (run_dir / "metrics.csv").is_file():
        raise UsageError(f"{str(run_dir)!r} is not a run directory (it needs config.yaml and metrics.csv)")
    config = load_config(run_dir / "config.yaml")
    data = load_run_data(config)
    state = new_state(config, data)
    checkpoint_path = run_dir / "model.json"
    if checkpoint_path.exists():  # else: interrupted before the first epoch ended
        checkpoint = load_checkpoint(checkpoint_path)
        if checkpoint.training is None:
            raise ValueError(f"{checkpoint_path} has no training state to resume from")
        try:
            state.model.load_state_dict(checkpoint.model.state_dict())
        except (KeyError, ValueError) as e:
            raise ValueError(f"{checkpoint_path} does not match {run_dir / 'config.yaml'}: {e}") from None
        state.load_dict(checkpoint.training)
    state.history = read_history(run_dir / "metrics.csv", state.epoch, RunWriter.columns(config, data))
    return config, state, data


def _note(message):
    print(message, file=sys.stderr)


def run_cli(body, argv, usage_errors):
    """Run a command-line `body(argv)` the way every micronet command ends.

    `usage_errors` (and KeyboardInterrupt) become one `error:` line and exit
    status 2 (130); anything else one line naming the exception and exit 1.
    `--debug` in argv re-raises instead, for the traceback.
    """
    debug = "--debug" in argv
    try:
        return body(argv)
    except usage_errors as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # Ctrl-C before a command took over the signal
        print("interrupted", file=sys.stderr)
        return EXIT_SIGINT
    except Exception as e:  # noqa: BLE001 - the last line of defence: one line, no traceback
        if debug:
            raise
        print(f"error: unexpected {type(e).__name__}: {e} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1


def main(argv=None):
    """Entry point of `python -m micronet.train`; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    # ValueError: besides config and data mistakes, damaged run files on --resume.
    return run_cli(lambda args: _run(_arguments(args)), argv, (UsageError, ConfigError, DataError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
