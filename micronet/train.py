"""The command line that turns a YAML file into a run.

    micronet-train moons [KEY=VALUE ...] [--out DIR]        (or python -m micronet.train ...)

`run` (micronet.runner, re-exported here) trains a config into a run
directory; `main` is the only function that touches argv, signals and the
terminal.
"""

import signal
import sys

if __name__ == "__main__":
    # `python -m micronet.train`: Ctrl-C while the imports below load (NumPy
    # and friends) is one line and exit 130, not a traceback. Nothing has
    # been written yet; main() installs the real handlers.
    from micronet.commands import starting

    starting()

import argparse
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from micronet import files
from micronet.budget import config_problem
from micronet.checkpoint import load_checkpoint
from micronet.commands import CommandParser, program_name
from micronet.config import (
    ConfigError,
    apply_overrides,
    config_reference,
    config_yaml,
    find_config,
    load_config,
    parse_config,
    shipped_configs,
)
from micronet.data import DataError
from micronet.rundir import (
    RunWriter,
    UsageError,
    check_fingerprint,
    check_out,
    lock_run_dir,
    new_run_dir,
    read_history,
    start_run_dir,
)
from micronet.runner import load_run_data, run
from micronet.state import new_state
from micronet.tasks import LOSS, TASKS

__all__ = ["run", "resume", "run_cli", "main", "load_run_data", "UsageError", "new_run_dir", "check_out"]

EXIT_FAILED, EXIT_USAGE, EXIT_DIVERGED, EXIT_SIGINT, EXIT_SIGTERM = 1, 2, 3, 130, 143


# ----- the command line -------------------------------------------------------


EXAMPLES = """examples:
  %(prog)s moons                          # the shipped moons config (all of them: --list-configs)
  %(prog)s moons optimizer.lr=0.05 --out runs/try
  %(prog)s my.yaml seed=3                 # a config file of your own, with an override
  %(prog)s dataset.name=iris              # the defaults plus overrides, no file
  %(prog)s --show-config moons > my.yaml  # start your own config from a shipped one
  %(prog)s --resume runs/try              # continue an interrupted run

Every config key, with its type, default and allowed values: %(prog)s --help-config
"""


def _arguments(argv, prog="micronet-train"):
    parser = CommandParser(
        prog=prog,
        usage_error=UsageError,
        description="Train a model from a YAML config: metrics, plots and a checkpoint in a run directory.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", nargs="?", metavar="CONFIG",
                        help="a YAML file, or the name of a shipped config (moons, iris, sine, ...); a path that "
                             "exists wins over a name. Without it, the defaults.")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="override a config value: optimizer.lr=0.05")
    parser.add_argument("--out", metavar="DIR", help="run directory (default: runs/<name>-<YYYYmmdd-HHMMSS>)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    parser.add_argument("--animate", action="store_true",
                        help="also write training.gif (same as training.animate=true)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--print-config", "--dry-run", action="store_true", dest="print_config",
                        help="print the fully resolved config (defaults and overrides applied, validated) and exit "
                             "without training or writing anything")
    parser.add_argument("--list-configs", action="store_true", help="list the shipped configs and exit")
    parser.add_argument("--show-config", metavar="NAME", help="print a shipped config file, comments and all, and exit")
    parser.add_argument("--help-config", action="store_true", help="print the config reference (every key) and exit")
    parser.add_version()
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    args = parser.parse_intermixed_args(argv)  # overrides may come after options
    if args.config is not None and "=" in args.config and not Path(args.config).exists():
        args.overrides, args.config = [args.config, *args.overrides], None  # overrides alone: the defaults plus them
    if args.animate:
        args.overrides.append("training.animate=true")
    informational = args.list_configs or args.show_config is not None or args.help_config
    if args.out == "":
        parser.error("--out '' is an empty path; give a directory name, or leave out --out for runs/<name>-<time>")
    if args.resume and (args.config or args.overrides or args.out):
        parser.error("--resume RUN_DIR takes no config, overrides or --out: the run directory has them")
    if not (args.resume or args.config or args.overrides or informational):
        parser.error("give a config (a YAML file or a shipped name such as moons), KEY=VALUE overrides, or --resume")
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


def resume(run_dir: str | os.PathLike[str], *, should_stop: Callable[[], bool] | None = None) -> dict:
    """Continue the run in `run_dir` from its checkpoint, exactly (the library form of --resume); its summary.

    A run that already completed is left as it is and its summary returned
    (its summary and plots are written first if a kill cut them short).
    Damaged or mismatched run files raise ValueError, as --resume reports them.
    """
    run_dir = Path(run_dir)
    _require_run_dir(run_dir)
    with lock_run_dir(run_dir):
        files.remove_stale_temporaries(run_dir)
        config, state, data = _load_resume(run_dir)
        if (state.epoch >= config.training.epochs or state.stopped_early) and _summary_status(run_dir) == "completed":
            summary: dict = json.loads(files.read_regular_bytes(run_dir / "summary.json"))
            if all(_regular(run_dir / name) for name in RunWriter(run_dir, config, data, resumed=True).plot_names()):
                return summary
        return run(config, run_dir, data=data, state=state, resumed=True, should_stop=should_stop)


def _config(args):
    """The validated config: a file (or shipped name) with overrides, or the defaults with overrides."""
    if args.config is not None:
        return load_config(args.config, args.overrides)
    config = parse_config(apply_overrides({}, args.overrides))
    problem = config_problem(config)
    if problem is not None:
        raise ConfigError(problem)
    return config


def _inform(args):
    """--list-configs, --show-config, --help-config and --print-config: print, write nothing, exit 0."""
    if args.list_configs:
        shipped = shipped_configs()
        width = max(map(len, shipped), default=0)
        for name, path in shipped.items():
            print(f"{name:<{width}}  {_description(path)}")
    elif args.show_config is not None:
        path = find_config(args.show_config)
        if not path.is_file():
            raise ConfigError(f"--show-config {args.show_config!r} is not a config file")
        print(path.read_text(encoding="utf-8"), end="")
    elif args.help_config:
        print(config_reference(), end="")
    else:
        print(config_yaml(_config(args)), end="")
    return 0


def _description(path):
    """A config file's first comment line, which says what it trains."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def _run(args):
    if args.list_configs or args.show_config is not None or args.help_config or args.print_config:
        return _inform(args)
    # From here on Ctrl-C only sets a flag. A KeyboardInterrupt raised inside an import (scikit-learn
    # loads with the data) can be swallowed by the import machinery, or make Python die by SIGINT
    # after the error line was printed; a flag is read at the points below and never lost.
    stop = _StopFlag()
    stop.install()
    if args.resume:
        run_dir = Path(args.resume)
        _require_run_dir(run_dir)
        with lock_run_dir(run_dir):
            files.remove_stale_temporaries(run_dir)  # left by a process killed mid-write
            config, state, data = _load_resume(run_dir)
            if stop():
                return _interrupted_before_training(stop, "nothing was changed")
            if state.epoch >= config.training.epochs or state.stopped_early:
                return _finish_completed(config, state, data, run_dir, stop)
            return _train(config, state, data, run_dir, stop, resumed=True, progress=_progress(args))
    config = _config(args)
    data = load_run_data(config)
    state = new_state(config, data)
    if stop():
        return _interrupted_before_training(stop, "nothing was written")
    run_dir, lock = start_run_dir(config.name, args.out)
    with lock:
        return _train(config, state, data, run_dir, stop, resumed=False, progress=_progress(args))


def _interrupted_before_training(stop, what):
    print(f"interrupted while starting; {what}", file=sys.stderr)
    return stop.exit_status()


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
    headline = TASKS[task].headline_metric
    parts = []
    for split in ("train", "val", "test"):
        if summary.get(f"{split}_loss") is not None:
            loss, score = summary[f"{split}_loss"], summary[f"{split}_{headline.name}"]
            parts.append(f"{split} {LOSS.short} {LOSS.show(loss)} {headline.short} {headline.show(score)}")
    if summary.get("stopped_early"):
        parts.append(f"stopped early at epoch {summary['epochs']}, best epoch {summary['best_epoch']}")
    collapsed = summary.get("collapsed")
    if collapsed:
        parts.append(f"warning: the model predicts class {collapsed['predicted_class']} for every test sample "
                     f"(balanced accuracy {collapsed['balanced_accuracy']:.3f}); {collapsed['advice']}")
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


def _one_line(text):
    return " ".join(str(text).split())


def run_cli(body: Callable[[list[str]], int], argv: list[str],
            usage_errors: type[Exception] | tuple[type[Exception], ...]) -> int:
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
        print(f"{getattr(e, 'usage', '')}error: {_one_line(e)}", file=sys.stderr)  # argparse's usage line first
        return EXIT_USAGE
    except KeyboardInterrupt:  # Ctrl-C before a command took over the signal
        print("interrupted", file=sys.stderr)
        return EXIT_SIGINT
    except Exception as e:  # the last line of defence: one line, no traceback
        if debug:
            raise
        what = f"{type(e).__name__}: {_one_line(e)}" if _one_line(e) else type(e).__name__
        print(f"error: unexpected {what} (rerun with --debug for the traceback)", file=sys.stderr)
        return EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    """Entry point of `micronet-train` and `python -m micronet.train`; returns the exit status."""
    prog = program_name("train", sys.argv[0] if sys.argv else "")
    argv = sys.argv[1:] if argv is None else argv
    # ValueError: besides config and data mistakes, damaged run files on --resume.
    return run_cli(lambda args: _run(_arguments(args, prog)), argv, (UsageError, ConfigError, DataError, ValueError))


if __name__ == "__main__":
    from micronet.commands import started

    started()
    sys.exit(main())
