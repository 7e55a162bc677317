"""The training loop, and the command line that turns a YAML file into a run.

    python -m micronet.train configs/moons.yaml [KEY=VALUE ...] [--out DIR]

`fit` is the one training loop (the CLI, the sweep and the scikit-learn
estimator all use it): it takes a validated config, prepared data and a
`TrainState`, and reports each finished epoch to a callback. `run` trains a
config into a run directory (micronet.rundir writes the files); `main` is
the only function that touches argv and the terminal.
"""

import argparse
import contextlib
import math
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from micronet.checkpoint import load_checkpoint
from micronet.config import ConfigError, load_config
from micronet.data import DataError, batches, prepare_data
from micronet.losses import LOSSES
from micronet.nn import MLP
from micronet.optim import OPTIMIZERS, SCHEDULES
from micronet.rundir import RunWriter, UsageError, new_run_dir, read_history

__all__ = [
    "TrainState",
    "Diverged",
    "EagerExecutor",
    "make_executor",
    "new_state",
    "fit",
    "run",
    "run_cli",
    "main",
    "RunWriter",  # re-exported from micronet.rundir
    "UsageError",
    "new_run_dir",
]

EXIT_USAGE, EXIT_DIVERGED, EXIT_SIGINT, EXIT_SIGTERM = 2, 3, 130, 143


class Diverged(ArithmeticError):
    """Training produced a non-finite loss, gradient or parameter."""

    def __init__(self, epoch, cause):
        super().__init__(f"training diverged at epoch {epoch} ({cause}); try a smaller optimizer.lr")
        self.epoch = epoch


# ----- executors: how a batch turns into a loss and gradients -----------------


class EagerExecutor:
    """Builds a Value graph per sample: slow, but runs any model."""

    name = "eager"

    def __init__(self, model, loss):
        self.model = model
        self.loss = loss

    def loss_and_grad(self, X, y):
        """Mean loss over the batch; its gradient is added into every parameter's grad."""
        losses = [self.loss(self.model(x), t) for x, t in zip(X.tolist(), y.tolist())]
        total = sum(losses) * (1.0 / len(losses))
        total.backward()
        return total.data

    def evaluate(self, X, y):
        """(per-sample losses, logits) without keeping any graph."""
        logits, losses = [], []
        for x, t in zip(X.tolist(), y.tolist()):
            out = self.model(x)
            logits.append([v.data for v in out])
            losses.append(self.loss(out, t).data)
        return np.array(losses), np.array(logits).reshape(len(logits), -1)

    def logits(self, X):
        return np.array([[v.data for v in self.model(x)] for x in X.tolist()]).reshape(len(X), -1)


def make_executor(model, loss, backend, n_features, warn=print):
    """The compiled executor when asked for and possible, else eager (saying why)."""
    if backend == "compiled":
        from micronet.compile import CompileError, compile_model

        try:
            return compile_model(model, n_features, loss)
        except CompileError as e:
            warn(f"note: using the eager backend: {e}")
    return EagerExecutor(model, loss)


# ----- training state and the loop --------------------------------------------


@dataclass
class TrainState:
    """Everything that changes while training, and all that resume needs."""

    model: MLP
    optimizer: object
    schedule: object
    shuffle_rng: random.Random
    epoch: int = 0  # completed epochs
    history: list = field(default_factory=list)  # one metrics dict per completed epoch

    def to_dict(self):
        """The resume part of a checkpoint: plain JSON data."""
        return {
            "epoch": self.epoch,
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "shuffle_rng": _rng_to_json(self.shuffle_rng.getstate()),
        }

    def load_dict(self, data):
        """Restore `to_dict()` output; raise ValueError if it does not fit."""
        try:
            self.optimizer.load_state_dict(data["optimizer"])
            self.schedule.load_state_dict(data["schedule"])
            self.shuffle_rng.setstate(_rng_from_json(data["shuffle_rng"]))
            epoch = data["epoch"]
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise ValueError(f"the checkpoint's training state is damaged: {e}") from None
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"the checkpoint's epoch must be an int >= 0, got {epoch!r}")
        self.epoch = epoch


def _rng_to_json(state):
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _rng_from_json(data):
    version, internal, gauss = data
    return (version, tuple(internal), gauss)


def _sub_rng(seed, purpose):
    """An independent stream per purpose, all from the one run seed (str seeds hash stably)."""
    return random.Random(f"micronet:{seed}:{purpose}")


def new_state(config, data):
    """A fresh model, optimizer and schedule for `config` and the data's shape."""
    model = MLP(
        data.feature_count,
        [*config.model.hidden, data.n_classes],
        activation=config.model.activation,
        seed=_sub_rng(config.seed, "init"),
    )
    opt = config.optimizer
    optimizer = OPTIMIZERS[opt.name](model.parameters(), **opt.params())
    params = dict(opt.schedule.params())
    run_length = config.training.epochs
    if opt.schedule.interval == "step":
        run_length *= len(batches(len(data.y_train), config.training.batch_size, random.Random(0), shuffle=False))
    for key in ("T_max", "total_iters"):
        if key in params and params[key] is None:
            params[key] = run_length
    schedule = SCHEDULES[opt.schedule.name](optimizer, **params)
    return TrainState(model, optimizer, schedule, _sub_rng(config.seed, "shuffle"))


def evaluate(executor, X, y):
    """(mean loss per sample, accuracy) of the current model on (X, y)."""
    losses, logits = executor.evaluate(X, y)
    return float(np.mean(losses)), float(np.mean(logits.argmax(axis=1) == y))


def fit(config, data, state, executor, on_epoch=None, should_stop=None):
    """Train from `state.epoch` to `config.training.epochs`; return "completed" or "interrupted".

    After every epoch the metrics row is appended to `state.history` and
    passed to `on_epoch(state, row)`. `should_stop()` is polled before each
    batch, so a stop request ends the run within one batch. Raises
    `Diverged` at the first non-finite loss, gradient or parameter.
    """
    training = config.training
    step_schedule = config.optimizer.schedule.interval == "step"
    params = state.model.parameters()
    n = len(data.y_train)
    for epoch in range(state.epoch + 1, training.epochs + 1):
        started = time.perf_counter()
        lr = state.optimizer.lr
        for batch in batches(n, training.batch_size, state.shuffle_rng, training.shuffle):
            if should_stop is not None and should_stop():
                return "interrupted"
            with _as_divergence(epoch):
                state.optimizer.zero_grad()
                loss = executor.loss_and_grad(data.X_train[batch], data.y_train[batch])
                _check_finite(epoch, "loss", loss, params, "grad")
                state.optimizer.step()
                _check_finite(epoch, "parameter", None, params, "data")
                if step_schedule:
                    state.schedule.step()
        with _as_divergence(epoch):
            if not step_schedule:
                state.schedule.step()
            train_loss, train_accuracy = evaluate(executor, data.X_train, data.y_train)
            has_test = len(data.y_test) > 0  # the scikit-learn estimator trains without a test split
            test_loss, test_accuracy = evaluate(executor, data.X_test, data.y_test) if has_test else (math.nan, math.nan)
        for name, value in (("train loss", train_loss), ("test loss", test_loss)):
            if not math.isfinite(value) and not (name == "test loss" and not has_test):
                raise Diverged(epoch, f"{name}={value}")
        state.epoch = epoch
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_accuracy": train_accuracy,
            "test_loss": test_loss,
            "test_accuracy": test_accuracy,
            "lr": lr,
            "seconds": time.perf_counter() - started,
        }
        state.history.append(row)
        if on_epoch is not None:
            on_epoch(state, row)
    return "completed"


@contextlib.contextmanager
def _as_divergence(epoch):
    """Arithmetic that blew up inside a step (the engine's overflow and domain
    errors, a schedule's lr overflowing) ends the run as diverged."""
    try:
        yield
    except (OverflowError, ZeroDivisionError, ValueError) as e:
        raise Diverged(epoch, f"{type(e).__name__}: {e}") from None


def _check_finite(epoch, what, loss, params, attribute):
    if loss is not None and not math.isfinite(loss):
        raise Diverged(epoch, f"loss={loss}")
    for p in params:
        value = getattr(p, attribute)
        if not math.isfinite(value):
            raise Diverged(epoch, f"a {what if attribute == 'data' else 'gradient'} became {value}")


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


def _progress_bar(enabled, total, initial):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="epoch", file=sys.stderr, leave=False, dynamic_ncols=True)


def run(config, run_dir, *, data=None, state=None, resumed=False, progress=False, should_stop=None, warn=None):
    """Train `config` into the existing directory `run_dir`; return the summary dict.

    The library form of the CLI (the sweep runs it once per point): every
    file of the run directory is written here. `data` and `state` default to
    a fresh start; `summary["status"]` is completed, interrupted or diverged
    (then `summary["error"]` says why). `warn` receives notes such as a
    fallback to the eager backend.
    """
    data = prepare_data(config.dataset, config.seed) if data is None else data
    state = new_state(config, data) if state is None else state
    writer = RunWriter(run_dir, config, data, resumed=resumed)
    if resumed:
        writer.restart_metrics(state.history)
    executor = make_executor(state.model, LOSSES[config.loss], config.training.backend, data.feature_count, warn or _note)
    bar = _progress_bar(progress, config.training.epochs, state.epoch)

    def on_epoch(state, row):
        writer.on_epoch(state, row)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{row['train_loss']:.4f}", acc=f"{row['test_accuracy']:.3f}")

    error = None
    try:
        status = fit(config, data, state, executor, on_epoch=on_epoch, should_stop=should_stop)
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
        if state.epoch >= config.training.epochs:
            print(f"run {run_dir} already completed all {config.training.epochs} epochs; nothing to do")
            return 0
    else:
        config = load_config(args.config, args.overrides)
        data = prepare_data(config.dataset, config.seed)
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
    print(
        f"train loss {summary['train_loss']:.4f} acc {summary['train_accuracy']:.3f} | "
        f"test loss {summary['test_loss']:.4f} acc {summary['test_accuracy']:.3f} | "
        f"{summary['seconds']:.1f}s | {run_dir}"
    )
    return 0


def _load_resume(run_dir):
    """Config, training state and data of an existing run directory."""
    if not run_dir.is_dir() or not (run_dir / "config.yaml").is_file() or not (run_dir / "metrics.csv").is_file():
        raise UsageError(f"{str(run_dir)!r} is not a run directory (it needs config.yaml and metrics.csv)")
    config = load_config(run_dir / "config.yaml")
    data = prepare_data(config.dataset, config.seed)
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
    state.history = read_history(run_dir / "metrics.csv", state.epoch)
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
