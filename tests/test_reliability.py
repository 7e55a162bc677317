"""Issue 7, line by line: interrupts lose nothing, checkpoints are atomic, resume is
exact, divergence is caught, and damaged or hostile files are refused.

docs/reliability.md states each guarantee and names the tests here that prove
it. Real signals and the real CLI run in subprocesses (module-scoped fixtures,
`slow`); everything that can be driven deterministically goes through the
library: `run(..., should_stop=...)` stops a run at an exact batch, and
`main(["--resume", DIR])` continues it in-process. Random inputs live in
tests/test_fuzz.py.
"""

import ast
import copy
import csv
import itertools
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from micronet.checkpoint import load_checkpoint, load_model, save_model
from micronet.config import config_to_dict, parse_config
from micronet.data import DataError, PreparedData, Standardizer, load_dataset, prepare_data
from micronet.loop import Diverged, EagerExecutor, Plan, config_loss, make_executor, new_state, run_epochs
from micronet.losses import LOSSES
from micronet.nn import MLP
from micronet.rundir import LOCK_NAME, RunWriter
from micronet.train import main, run, run_cli

PACKAGE = Path(__file__).resolve().parent.parent / "micronet"

# 60 moons -> 45 training samples -> 6 batches of 8 per epoch.
TINY = {
    "name": "tiny",
    "seed": 7,
    "dataset": {"name": "moons", "n_samples": 60, "noise": 0.2},
    "model": {"hidden": [5], "activation": "tanh"},
    "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "schedule": {"name": "cosine"}},
    # checkpoint_seconds 0: a checkpoint after every epoch, which most tests here are about
    "training": {"epochs": 4, "batch_size": 8, "shuffle": True, "backend": "compiled", "checkpoint_seconds": 0},
}
BATCHES_PER_EPOCH = 6

# Optimizers with state that resume must carry, each with a schedule that moves.
OPTIMIZERS = {
    "sgd-momentum-cosine": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "schedule": {"name": "cosine"}},
    "sgd-nesterov-step-per-batch": {
        "name": "sgd", "lr": 0.2, "momentum": 0.8, "nesterov": True, "weight_decay": 1e-3,
        "schedule": {"name": "step", "step_size": 5, "gamma": 0.5, "interval": "step"},
    },
    "adam-exponential": {"name": "adam", "lr": 0.03, "schedule": {"name": "exponential", "gamma": 0.7}},
    "adam-cosine-per-batch": {"name": "adam", "lr": 0.05, "schedule": {"name": "cosine", "interval": "step"}},
}

# Where a run is stopped: keyword arguments of stopped_run, and the epochs then complete.
STOPS = {
    "before-any-batch": ({"batches": 0}, 0),
    "after-epoch-1": ({"epochs": 1}, 1),
    "mid-epoch-2": ({"batches": BATCHES_PER_EPOCH + BATCHES_PER_EPOCH // 2}, 1),
    "after-epoch-3-of-4": ({"epochs": 3}, 3),
}


def config_with(**sections):
    """TINY with whole top-level sections replaced, validated.

    Unless the training section says otherwise, checkpoint_seconds is 0: a
    checkpoint after every epoch, which most tests here are about. The
    time-based policy has tests of its own below.
    """
    mapping = {**copy.deepcopy(TINY), **sections}
    mapping["training"] = {"checkpoint_seconds": 0, **(mapping.get("training") or {})}
    return parse_config(mapping)


def stopped_run(config, run_dir, *, epochs=None, batches=None):
    """`run` stopped the way a signal stops it: by `should_stop`, polled before each batch.

    Stops once `epochs` epochs are complete, or once `batches` batches have
    run; with neither it runs to the end. Returns the summary.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    data = prepare_data(config.dataset, config.seed)
    state = new_state(config, data)
    polls = itertools.count()  # the n-th poll comes after n batches

    def should_stop():
        n = next(polls)
        return (epochs is not None and state.epoch >= epochs) or (batches is not None and n >= batches)

    return run(config, run_dir, data=data, state=state, should_stop=should_stop)


def resume(run_dir):
    return main(["--resume", str(run_dir), "--no-progress"])


def read_metrics(run_dir, drop=("seconds",)):
    """metrics.csv as dicts of the raw strings, without the timing column."""
    with open(run_dir / "metrics.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(f)]


def epochs_in_metrics(run_dir):
    return [int(row["epoch"]) for row in read_metrics(run_dir)]


def strict_json(path):
    """The file's JSON; a NaN or Infinity literal fails the test."""

    def refuse(name):
        raise AssertionError(f"{path.name} contains the non-JSON literal {name}")

    return json.loads(Path(path).read_text(), parse_constant=refuse)


def temporary_files(directory):
    """Hidden or .tmp files, except the run directory's lock file (which stays, and is not temporary)."""
    return sorted(
        p.name for p in Path(directory).iterdir()
        if (p.name.startswith(".") or p.name.endswith(".tmp")) and p.name != LOCK_NAME
    )


def snapshot(directory):
    """Every file's bytes and modification time, to prove nothing was touched (the lock file aside)."""
    return {
        p.name: (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(Path(directory).iterdir()) if p.is_file() and p.name != LOCK_NAME
    }


def one_error_line(stderr):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def cli(args, cwd, **popen):
    command = [sys.executable, "-m", "micronet.train", *args]
    return subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


@pytest.fixture(autouse=True)
def restore_signal_handlers():
    """main() installs SIGINT/SIGTERM handlers; give pytest its own back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


@pytest.fixture
def no_plots(monkeypatch):
    """Skip the PNGs (a few tenths of a second per run); no guarantee here concerns them."""
    monkeypatch.setattr(RunWriter, "plots", lambda self, state, executor, should_stop=None: None)
    monkeypatch.setattr(RunWriter, "plot_names", lambda self: [])


# ----- interrupts: real signals to the real CLI ------------------------------------

SIGNAL_CONFIG = {
    "name": "signalled",
    "seed": 5,
    "dataset": {"name": "moons", "n_samples": 80, "noise": 0.2},
    "model": {"hidden": [6]},
    "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
    # Far more epochs than will ever run: the signal always lands mid-training.
    "training": {"epochs": 100000, "batch_size": 10, "backend": "eager"},
}


def completed_rows(path):
    """Data rows of metrics.csv that are fully written (end with a newline)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return 0
    return max(text.count("\n") - 1, 0)


@pytest.fixture(scope="module", params=[signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def signalled(request, tmp_path_factory):
    """The CLI on a long run, sent a signal once metrics.csv has two epochs."""
    cwd = tmp_path_factory.mktemp(request.param.name)
    (cwd / "long.yaml").write_text(yaml.safe_dump(SIGNAL_CONFIG))
    run_dir = cwd / "run"
    process = cli(["long.yaml", "--out", str(run_dir), "--no-progress"], cwd)
    deadline = time.monotonic() + 120
    while completed_rows(run_dir / "metrics.csv") < 2:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the run ended or stalled before its second epoch: {process.communicate()[1]}")
        time.sleep(0.01)
    rows_at_signal = completed_rows(run_dir / "metrics.csv")
    process.send_signal(request.param)
    stdout, stderr = process.communicate(timeout=120)
    return SimpleNamespace(
        signal=request.param, cwd=cwd, dir=run_dir, returncode=process.returncode,
        stdout=stdout, stderr=stderr, rows_at_signal=rows_at_signal,
    )


@pytest.mark.slow
def test_a_signal_exits_130_or_143_and_says_how_to_resume(signalled):
    expected = {signal.SIGINT: 130, signal.SIGTERM: 143}[signalled.signal]
    assert signalled.returncode == expected, signalled.stderr
    assert "Traceback" not in signalled.stderr
    epochs = strict_json(signalled.dir / "summary.json")["epochs"]
    assert str(signalled.dir) in signalled.stderr
    words = signalled.stderr.replace(str(signalled.dir), "DIR").split()
    assert str(epochs) in words, "the message says how far the run got"
    assert f"--resume {signalled.dir}" in signalled.stderr


@pytest.mark.slow
def test_a_signal_keeps_every_completed_epoch_and_their_checkpoint(signalled):
    summary = strict_json(signalled.dir / "summary.json")
    assert summary["status"] == "interrupted"
    completed = summary["epochs"]
    assert epochs_in_metrics(signalled.dir) == list(range(1, completed + 1))
    # It stopped at once: at most the epoch in progress when the signal came was finished.
    assert signalled.rows_at_signal <= completed <= signalled.rows_at_signal + 1
    saved = load_checkpoint(signalled.dir / "model.json")
    assert saved.training["epoch"] == completed


@pytest.mark.slow
def test_a_signal_leaves_the_checkpoint_of_the_last_completed_epoch(signalled, tmp_path, no_plots):
    """Byte for byte the model.json of the same run stopped after that epoch by the library."""
    completed = strict_json(signalled.dir / "summary.json")["epochs"]
    stopped_run(parse_config(SIGNAL_CONFIG), tmp_path / "ref", epochs=completed)
    assert (signalled.dir / "model.json").read_bytes() == (tmp_path / "ref" / "model.json").read_bytes()


@pytest.mark.slow
def test_a_signal_leaves_no_temporary_files_and_only_strict_json(signalled):
    assert temporary_files(signalled.dir) == []
    for path in signalled.dir.glob("*.json"):
        strict_json(path)


def test_a_stop_request_ends_training_before_the_next_batch():
    config = config_with()
    data = prepare_data(config.dataset, config.seed)
    state = new_state(config, data)
    executor = make_executor(state.model, config_loss(config), "compiled", data.feature_count)
    polls = itertools.count()
    status = run_epochs(Plan.from_config(config), data, state, executor, should_stop=lambda: next(polls) >= 8)
    assert status == "interrupted"
    assert state.optimizer.state_dict()["step"] == 8  # no batch ran after the request
    assert state.epoch == 1 and len(state.history) == 1


def test_an_interrupted_run_writes_an_interrupted_summary(tmp_path, no_plots):
    summary = stopped_run(config_with(), tmp_path / "run", epochs=2)
    assert summary["status"] == "interrupted" and summary["epochs"] == 2
    assert strict_json(tmp_path / "run" / "summary.json") == json.loads(json.dumps(summary))
    assert temporary_files(tmp_path / "run") == []


# ----- atomic checkpoints ------------------------------------------------------------


def _fail(*args, **kwargs):
    raise OSError("simulated crash")


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


CRASHES = {
    "serialising": ("micronet.files.json.dumps", _fail, OSError),
    "flushing-to-disk": ("micronet.files.os.fsync", _fail, OSError),
    "ctrl-c-while-flushing": ("micronet.files.os.fsync", _interrupt, KeyboardInterrupt),
    "renaming-over-the-old-file": ("micronet.files.os.replace", _fail, OSError),
}


@pytest.mark.parametrize("where", CRASHES)
def test_a_crash_mid_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch, where):
    path = tmp_path / "model.json"
    save_model(MLP(2, [3, 2], seed=1), path, training={"epoch": 1})
    before = path.read_bytes()
    target, crash, error = CRASHES[where]
    monkeypatch.setattr(target, crash)
    with pytest.raises(error):
        save_model(MLP(2, [3, 2], seed=2), path, training={"epoch": 2})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]
    assert load_checkpoint(path).training == {"epoch": 1}


def crash_on_checkpoint(monkeypatch, epoch):
    """Make writing the checkpoint of `epoch` fail, as a crash there would.

    A run writes model.json once before its first epoch (epoch 0), then after each.
    """
    replace = os.replace
    calls = itertools.count(0)

    def failing_replace(src, dst):
        if Path(dst).name == "model.json" and next(calls) == epoch:
            raise OSError("simulated crash while writing model.json")
        return replace(src, dst)

    monkeypatch.setattr("micronet.files.os.replace", failing_replace)


def test_a_crash_while_checkpointing_epoch_3_keeps_the_checkpoint_of_epoch_2(tmp_path, monkeypatch, no_plots):
    config = config_with()
    crash_on_checkpoint(monkeypatch, 3)
    with pytest.raises(OSError, match="simulated crash"):
        stopped_run(config, tmp_path / "crashed")
    monkeypatch.undo()
    stopped_run(config, tmp_path / "ref", epochs=2)
    assert (tmp_path / "crashed" / "model.json").read_bytes() == (tmp_path / "ref" / "model.json").read_bytes()
    assert temporary_files(tmp_path / "crashed") == []


def test_resume_after_a_crash_while_checkpointing_is_exact(tmp_path, monkeypatch, capsys, no_plots):
    config = config_with()
    crash_on_checkpoint(monkeypatch, 3)
    with pytest.raises(OSError):
        stopped_run(config, tmp_path / "crashed")
    monkeypatch.undo()
    assert resume(tmp_path / "crashed") == 0
    stopped_run(config, tmp_path / "full")
    assert (tmp_path / "crashed" / "model.json").read_bytes() == (tmp_path / "full" / "model.json").read_bytes()
    assert epochs_in_metrics(tmp_path / "crashed") == [1, 2, 3, 4]


# ----- the time-based checkpoint policy ------------------------------------------------------


def count_checkpoint_writes(monkeypatch):
    """A list that grows by the epoch of each model.json written."""
    written, replace = [], os.replace

    def counting_replace(src, dst):
        if Path(dst).name == "model.json":
            written.append(json.loads(Path(src).read_text())["training"]["epoch"])
        return replace(src, dst)

    monkeypatch.setattr("micronet.files.os.replace", counting_replace)
    return written


def lazy(config_seconds=3600):
    return config_with(training={**TINY["training"], "checkpoint_seconds": config_seconds})


def test_between_checkpoints_only_the_start_and_the_end_are_written(tmp_path, monkeypatch, no_plots):
    written = count_checkpoint_writes(monkeypatch)
    stopped_run(lazy(), tmp_path / "run")
    assert written == [0, 4]  # before the first epoch, and the final weights


def test_checkpoints_follow_the_clock(tmp_path, monkeypatch, no_plots):
    written = count_checkpoint_writes(monkeypatch)
    clock = itertools.count(step=0.6)  # 0.6 s per look at the clock: a checkpoint every other epoch
    monkeypatch.setattr("micronet.rundir.time.monotonic", lambda: next(clock))
    stopped_run(lazy(1.0), tmp_path / "run")
    assert written == [0, 2, 4, 4]


def test_an_interrupt_between_checkpoints_writes_the_last_finished_epoch(tmp_path, monkeypatch, no_plots):
    written = count_checkpoint_writes(monkeypatch)
    stopped_run(lazy(), tmp_path / "lazy", batches=2 * BATCHES_PER_EPOCH + 3)  # stopped mid epoch 3
    stopped_run(config_with(), tmp_path / "eager", epochs=2)
    assert written[:2] == [0, 2]
    assert (tmp_path / "lazy" / "model.json").read_bytes().replace(b'"checkpoint_seconds": 3600', b"") == \
        (tmp_path / "eager" / "model.json").read_bytes().replace(b'"checkpoint_seconds": 0', b"")


def test_after_a_crash_between_checkpoints_resume_derives_the_lost_epochs_again(tmp_path, monkeypatch, capsys,
                                                                               no_plots):
    """Killed (no flush) after epoch 3 with only the start on disk: resume replays epochs 1-3 exactly."""
    from micronet.rundir import RunWriter

    monkeypatch.setattr(RunWriter, "flush", lambda self: None)  # a SIGKILL writes nothing more
    original = RunWriter.on_epoch

    def die_after_epoch_3(self, state, row):
        original(self, state, row)
        if state.epoch == 3:
            raise SystemExit("killed")  # not an Exception: nothing is tidied up

    monkeypatch.setattr(RunWriter, "on_epoch", die_after_epoch_3)
    with pytest.raises(SystemExit):
        stopped_run(lazy(), tmp_path / "crashed")
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "crashed" / "model.json").training["epoch"] == 0
    assert epochs_in_metrics(tmp_path / "crashed") == [1, 2, 3]  # rows past the checkpoint
    assert resume(tmp_path / "crashed") == 0
    stopped_run(lazy(), tmp_path / "whole")
    assert read_metrics(tmp_path / "crashed") == read_metrics(tmp_path / "whole")
    assert (tmp_path / "crashed" / "model.json").read_bytes() == (tmp_path / "whole" / "model.json").read_bytes()


def test_resume_drops_a_half_written_metrics_row_beyond_the_checkpoint(tmp_path, no_plots):
    """A crash while appending epoch 3's row, before its checkpoint: the row is dropped, the run continues."""
    config = config_with()
    stopped_run(config, tmp_path / "crashed", epochs=2)
    with open(tmp_path / "crashed" / "metrics.csv", "a") as f:
        f.write("3,0.41")
    assert resume(tmp_path / "crashed") == 0
    stopped_run(config, tmp_path / "full")
    assert (tmp_path / "crashed" / "model.json").read_bytes() == (tmp_path / "full" / "model.json").read_bytes()
    assert epochs_in_metrics(tmp_path / "crashed") == [1, 2, 3, 4]


@pytest.mark.parametrize("optimizer", ["sgd-momentum-cosine", "adam-exponential"])
def test_the_checkpoint_holds_everything_resume_needs(tmp_path, no_plots, optimizer):
    """Model, optimizer state, schedule position, epoch and shuffle RNG, equal to the live state."""
    config = config_with(optimizer=OPTIMIZERS[optimizer])
    data = prepare_data(config.dataset, config.seed)
    state = new_state(config, data)
    live = []  # what the loop held at the end of each epoch
    executor = make_executor(state.model, config_loss(config), "compiled", data.feature_count)
    run_epochs(Plan.from_config(config), data, state, executor,
        on_epoch=lambda s, row: live.append(json.loads(json.dumps([s.to_dict(), s.model.state_dict()]))))

    stopped_run(config, tmp_path / "run", epochs=2)
    saved = strict_json(tmp_path / "run" / "model.json")
    training, parameters = live[1]
    assert saved["training"].pop("fingerprint")["config"] == json.loads(json.dumps(config_to_dict(config)))
    assert saved["training"] == training and saved["parameters"] == parameters

    n_parameters = len(state.model.parameters())
    opt = saved["training"]["optimizer"]
    assert opt["step"] == 2 * BATCHES_PER_EPOCH
    if opt["optimizer"] == "sgd":
        assert len(opt["momentum_buffer"]) == n_parameters and any(opt["momentum_buffer"])
    else:
        assert len(opt["exp_avg"]) == len(opt["exp_avg_sq"]) == n_parameters and any(opt["exp_avg_sq"])
    assert saved["training"]["schedule"]["t"] == 2
    assert saved["training"]["epoch"] == 2
    rng_version, rng_internal, _ = saved["training"]["shuffle_rng"]
    assert rng_version == 3 and len(rng_internal) == 625  # Mersenne Twister: the whole state

    fresh = new_state(config, data)
    fresh.load_dict(saved["training"])
    assert json.loads(json.dumps(fresh.to_dict())) == training


# ----- resume is exact ---------------------------------------------------------------


@pytest.mark.parametrize("stop", STOPS)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_resume_after_an_interrupt_gives_the_uninterrupted_run_byte_for_byte(
    tmp_path, capsys, no_plots, optimizer, stop
):
    config = config_with(optimizer=OPTIMIZERS[optimizer])
    stop_at, completed = STOPS[stop]
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    stopped_run(config, full)
    summary = stopped_run(config, resumed, **stop_at)
    assert (summary["status"], summary["epochs"]) == ("interrupted", completed)
    assert epochs_in_metrics(resumed) == list(range(1, completed + 1))

    assert resume(resumed) == 0
    assert (resumed / "model.json").read_bytes() == (full / "model.json").read_bytes()
    assert read_metrics(resumed) == read_metrics(full)
    assert strict_json(resumed / "summary.json")["status"] == "completed"
    assert temporary_files(resumed) == []


def test_resume_is_exact_twice_over(tmp_path, capsys, monkeypatch):
    """Interrupted, resumed, interrupted again by a real SIGINT, resumed: still the same run (plots on)."""
    config = config_with(optimizer=OPTIMIZERS["adam-cosine-per-batch"])
    full, twice = tmp_path / "full", tmp_path / "twice"
    stopped_run(config, full)
    stopped_run(config, twice, epochs=1)
    # The second leg runs through main(): a real SIGINT at its 9th batch goes
    # through the handler main() installs.
    polls = itertools.count()

    def fit_then_signal(*args, should_stop, **kwargs):
        def stop():
            if next(polls) == 9:
                signal.raise_signal(signal.SIGINT)
            return should_stop()

        return run_epochs(*args, should_stop=stop, **kwargs)

    monkeypatch.setattr("micronet.runner.run_epochs", fit_then_signal)
    assert resume(twice) == 130
    monkeypatch.undo()
    assert strict_json(twice / "summary.json")["status"] == "interrupted"
    assert resume(twice) == 0
    assert (twice / "model.json").read_bytes() == (full / "model.json").read_bytes()
    assert read_metrics(twice) == read_metrics(full)
    assert (twice / "loss.png").is_file() and (twice / "decision_boundary.png").is_file()


@pytest.mark.parametrize("stop", ["after-epoch-1", "mid-epoch-2"])
def test_resume_is_exact_with_the_eager_backend(tmp_path, capsys, no_plots, stop):
    config = config_with(
        dataset={"name": "moons", "n_samples": 40, "noise": 0.2},
        model={"hidden": [3]},
        optimizer=OPTIMIZERS["sgd-nesterov-step-per-batch"],
        training={"epochs": 3, "batch_size": 8, "shuffle": True, "backend": "eager"},
    )
    stop_at = {"after-epoch-1": {"epochs": 1}, "mid-epoch-2": {"batches": 6}}[stop]  # 30 samples: 4 batches
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    stopped_run(config, full)
    stopped_run(config, resumed, **stop_at)
    assert resume(resumed) == 0
    assert (resumed / "model.json").read_bytes() == (full / "model.json").read_bytes()
    assert read_metrics(resumed) == read_metrics(full)


def test_resuming_a_completed_run_says_so_and_changes_nothing(tmp_path, capsys, no_plots):
    stopped_run(config_with(), tmp_path / "done")
    before = snapshot(tmp_path / "done")
    assert resume(tmp_path / "done") == 0
    out = capsys.readouterr()
    assert re.search(r"already completed all 4 epochs", out.out), out
    assert out.err == ""
    assert snapshot(tmp_path / "done") == before


NOT_RUNS = {
    "missing": lambda root: root / "nowhere",
    "empty-directory": lambda root: root,
    "a-file": lambda root: (root / "notes.txt", (root / "notes.txt").write_text("hello\n"))[0],
    "a-directory-of-other-files": lambda root: (root, (root / "data.csv").write_text("x,y\n1,0\n"))[0],
}


@pytest.mark.parametrize("case", NOT_RUNS)
def test_resuming_something_that_is_not_a_run_exits_2_in_one_line(tmp_path, capsys, case):
    target = NOT_RUNS[case](tmp_path)
    before = snapshot(tmp_path)
    assert resume(target) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(target) in line and "not a run directory" in line
    assert snapshot(tmp_path) == before


def test_resuming_a_directory_with_only_a_config_file_exits_2(tmp_path, capsys):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({**TINY, "training": {"epochs": 1}}))
    assert resume(tmp_path) == 2
    one_error_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]


def _edit_json(name, edit):
    def damage(run_dir):
        data = json.loads((run_dir / name).read_text())
        edit(data)
        (run_dir / name).write_text(json.dumps(data))

    return damage


def _rewrite(name, change):
    return lambda run_dir: (run_dir / name).write_text(change((run_dir / name).read_text()))


def _bias_as(literal):
    """The checkpoint's text with the first bias written as `literal`."""
    return lambda text: re.sub(r'("layers\.0\.neurons\.0\.b": )[^,\n]+', rf"\g<1>{literal}", text)


def _set_first_weight_to(literal):
    return _rewrite("model.json", _bias_as(literal))


def _drop_last_metrics_row(text):
    return "".join(text.splitlines(keepends=True)[:-1])


# (damage, the file the message must name); the run has 2 of 4 epochs done.
DAMAGED_RUNS = {
    "model-json-truncated": (_rewrite("model.json", lambda t: t[: len(t) // 2]), "model.json"),
    "model-json-not-json": (_rewrite("model.json", lambda t: "this is not JSON\n"), "model.json"),
    "model-json-empty": (_rewrite("model.json", lambda t: ""), "model.json"),
    "model-json-null-weight": (_set_first_weight_to("null"), "model.json"),
    "model-json-huge-weight": (_set_first_weight_to("1e999"), "model.json"),
    "model-json-nan-weight": pytest.param(
        _set_first_weight_to("NaN"), "model.json",
    ),
    "model-json-wrong-version": (_edit_json("model.json", lambda d: d.update(version=99)), "model.json"),
    "model-json-no-training-state": (_edit_json("model.json", lambda d: d.update(training=None)), "model.json"),
    "model-json-momentum-buffer-too-short": (
        _edit_json("model.json", lambda d: d["training"]["optimizer"]["momentum_buffer"].pop()), "checkpoint"),
    "model-json-negative-epoch": (_edit_json("model.json", lambda d: d["training"].update(epoch=-1)), "checkpoint"),
    "model-json-rng-state-garbage": (
        _edit_json("model.json", lambda d: d["training"].update(shuffle_rng=[3, [1, 2], None])), "checkpoint"),
    "model-json-rng-state-negative": pytest.param(
        _edit_json("model.json", lambda d: d["training"]["shuffle_rng"][1].__setitem__(0, -1)), "checkpoint",
    ),
    "model-json-momentum-buffer-huge-int": pytest.param(
        _edit_json("model.json", lambda d: d["training"]["optimizer"]["momentum_buffer"].__setitem__(0, 10**400)),
        "checkpoint",
    ),
    "model-json-another-architecture": (
        lambda run_dir: save_model(MLP(2, [7, 2], seed=0), run_dir / "model.json", training={}), "model.json"),
    "metrics-csv-row-missing": (_rewrite("metrics.csv", _drop_last_metrics_row), "metrics.csv"),
    "metrics-csv-missing": pytest.param(
        lambda run_dir: (run_dir / "metrics.csv").unlink(), "metrics.csv",
    ),
    "metrics-csv-row-of-a-kept-epoch-cut": (
        _rewrite("metrics.csv", lambda t: t.replace(t.splitlines()[1], "1,0.41")), "metrics.csv",
    ),
    "config-yaml-malformed": (_rewrite("config.yaml", lambda t: t + "optimizer: [\n"), "config.yaml"),
    "config-yaml-other-model": (
        _rewrite("config.yaml", lambda t: t.replace("hidden: [5]", "hidden: [9]")), "config.yaml"),
}


@pytest.mark.parametrize("damage, names", DAMAGED_RUNS.values(), ids=DAMAGED_RUNS.keys())
def test_resuming_a_damaged_run_exits_2_naming_the_problem(tmp_path, capsys, no_plots, damage, names):
    run_dir = tmp_path / "run"
    stopped_run(config_with(), run_dir, epochs=2)
    damage(run_dir)
    before = snapshot(run_dir)
    capsys.readouterr()
    assert resume(run_dir) == 2
    line = one_error_line(capsys.readouterr().err)
    assert names in line
    assert snapshot(run_dir) == before


# ----- divergence --------------------------------------------------------------------

DIVERGED = re.compile(r"^error: training diverged at epoch (\d+) \((.+?)\).*try a smaller optimizer\.lr")


@pytest.fixture(scope="module")
def huge_lr(tmp_path_factory):
    """The CLI with optimizer.lr=1e30 (and relu: tanh would saturate and stay finite)."""
    cwd = tmp_path_factory.mktemp("huge-lr")
    (cwd / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    process = cli(["tiny.yaml", "optimizer.lr=1e30", "model.activation=relu", "--out", "run", "--no-progress"], cwd)
    stdout, stderr = process.communicate(timeout=120)
    return SimpleNamespace(dir=cwd / "run", returncode=process.returncode, stdout=stdout, stderr=stderr)


# The learning rate jumps from 0.1 to 1e149 after epoch 1: epoch 1 is fine, epoch 2
# overflows the relu network. (Two epochs only: the lr itself stays below 1e308.)
EXPLODING = {
    **TINY,
    "model": {"hidden": [5], "activation": "relu"},
    "optimizer": {**TINY["optimizer"], "schedule": {"name": "exponential", "gamma": 1e150}},
    "training": {**TINY["training"], "epochs": 2},
}


@pytest.fixture(scope="module")
def exploding(tmp_path_factory):
    """The CLI on a schedule that diverges after one good epoch."""
    cwd = tmp_path_factory.mktemp("exploding")
    (cwd / "exploding.yaml").write_text(yaml.safe_dump(EXPLODING))
    process = cli(["exploding.yaml", "--out", "run", "--no-progress"], cwd)
    stdout, stderr = process.communicate(timeout=120)
    return SimpleNamespace(dir=cwd / "run", returncode=process.returncode, stdout=stdout, stderr=stderr)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["huge_lr", "exploding"])
def test_divergence_exits_3_with_one_line_naming_the_cause(request, which):
    result = request.getfixturevalue(which)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    match = DIVERGED.search(result.stderr.strip().splitlines()[-1])
    assert match, result.stderr
    assert re.search(r"loss|gradient|parameter|Error", match[2]), "the cause is named"
    summary = strict_json(result.dir / "summary.json")
    assert summary["status"] == "diverged"
    assert summary["error"].startswith(f"training diverged at epoch {match[1]} ")
    assert summary["epochs"] == int(match[1]) - 1


@pytest.mark.slow
@pytest.mark.parametrize("which", ["huge_lr", "exploding"])
def test_a_diverged_run_writes_only_strict_json_and_no_temporary_files(request, which):
    result = request.getfixturevalue(which)
    names = [p.name for p in result.dir.glob("*.json")]
    assert "summary.json" in names
    for path in result.dir.glob("*.json"):
        strict_json(path)
    assert temporary_files(result.dir) == []


@pytest.mark.slow
def test_divergence_keeps_the_completed_epochs_and_the_last_good_checkpoint(exploding, tmp_path, no_plots):
    diverged_at = int(DIVERGED.search(exploding.stderr.strip().splitlines()[-1])[1])
    good = diverged_at - 1
    assert good >= 1, "the setting must diverge after at least one completed epoch"
    assert epochs_in_metrics(exploding.dir) == list(range(1, good + 1))
    saved = load_checkpoint(exploding.dir / "model.json")
    assert saved.training["epoch"] == good
    assert all(math.isfinite(p.data) for p in saved.model.parameters())
    # ...and it is the very checkpoint that epoch wrote.
    stopped_run(parse_config(EXPLODING), tmp_path / "ref", epochs=good)
    assert (exploding.dir / "model.json").read_bytes() == (tmp_path / "ref" / "model.json").read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("which", ["huge_lr", "exploding"])
def test_a_diverged_run_prints_nothing_but_the_error_line(request, which):
    """No NumPy warnings either: the plots show the last good epoch, not the diverged weights."""
    one_error_line(request.getfixturevalue(which).stderr)


def test_an_epoch_whose_evaluated_loss_is_not_finite_is_not_recorded_as_completed(tmp_path, no_plots):
    config = config_with(model={"hidden": [5], "activation": "relu"}, optimizer={"name": "sgd", "lr": 1e30})
    summary = stopped_run(config, tmp_path / "run")
    assert summary["status"] == "diverged"
    for row in read_metrics(tmp_path / "run"):
        assert math.isfinite(float(row["train_loss"])) and math.isfinite(float(row["test_loss"])), row
    if (tmp_path / "run" / "model.json").exists():
        model = load_model(tmp_path / "run" / "model.json")
        assert all(math.isfinite(v.data) for v in model([0.5, -0.5]))


def test_a_learning_rate_schedule_that_overflows_is_reported_as_diverged(tmp_path, no_plots):
    # tanh keeps the network finite however large the weights: only the lr overflows.
    config = config_with(optimizer={**TINY["optimizer"], "schedule": {"name": "exponential", "gamma": 1e100}},
                         training={**TINY["training"], "epochs": 10})
    summary = stopped_run(config, tmp_path / "run")
    assert summary["status"] == "diverged"
    assert strict_json(tmp_path / "run" / "summary.json")["status"] == "diverged"


def two_points():
    """Two samples whose logits are huge (+-1e6 times the weights): exp of them overflows."""
    X = np.array([[1e6, -1e6], [-1e6, 1e6]])
    y = np.array([0, 1])
    return PreparedData(X, y, X, y, [0, 1], 2, None)


def sum_of_exp(logits, target):
    """An unnormalised softmax 'loss', the kind a user might write: exp of raw logits."""
    return sum(z.exp() for z in logits)


def test_engine_overflow_inside_a_training_step_is_reported_as_diverged():
    config = config_with(model={"hidden": []}, training={"epochs": 2, "batch_size": "full", "backend": "eager"})
    data = two_points()
    state = new_state(config, data)
    with pytest.raises(Diverged, match=r"training diverged at epoch 1 \(OverflowError: exp\(.*try a smaller"):
        run_epochs(Plan.from_config(config), data, state, EagerExecutor(state.model, sum_of_exp))
    assert state.epoch == 0


def test_engine_overflow_in_a_run_gives_a_diverged_summary(tmp_path, monkeypatch, no_plots):
    monkeypatch.setitem(LOSSES, "cross_entropy", sum_of_exp)
    config = config_with(model={"hidden": []}, training={"epochs": 2, "batch_size": "full", "backend": "eager"})
    summary = run(config, tmp_path, data=two_points())
    assert summary["status"] == "diverged" and "OverflowError" in summary["error"]
    assert strict_json(tmp_path / "summary.json")["status"] == "diverged"


def test_engine_overflow_while_evaluating_an_epoch_is_reported_as_diverged():
    # exp(z**2): one step with lr=100 overshoots z from about 1 to about -500, and
    # evaluating the epoch's loss then computes exp(250000).
    config = config_with(model={"hidden": []}, optimizer={"name": "sgd", "lr": 100.0, "momentum": 0.0},
                         training={"epochs": 2, "batch_size": "full", "backend": "eager"})
    X, y = np.array([[1.0]]), np.array([0])
    data = PreparedData(X, y, X, y, [0, 1], 1, None)
    state = new_state(config, data)
    with pytest.raises(Diverged, match="epoch 1"):
        run_epochs(Plan.from_config(config), data, state, EagerExecutor(state.model, lambda logits, target: (logits[0] * logits[0]).exp()))


def test_non_finite_summary_values_are_written_as_null(tmp_path):
    config = config_with()
    data = prepare_data(config.dataset, config.seed)
    state = new_state(config, data)
    state.epoch = 1
    state.history = [{"train_loss": math.nan, "train_accuracy": 0.5, "test_loss": math.inf,
                      "test_accuracy": 0.5, "seconds": 0.1}]
    RunWriter(tmp_path, config, data).summary(state, "diverged", "training diverged at epoch 2 (loss=nan)")
    summary = strict_json(tmp_path / "summary.json")
    assert summary["train_loss"] is None and summary["test_loss"] is None


# ----- damaged or hostile checkpoints --------------------------------------------------


@pytest.fixture(scope="module")
def real_checkpoint(tmp_path_factory):
    """The model.json of a real 2-epoch run (with preprocessing and training state)."""
    run_dir = tmp_path_factory.mktemp("real") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RunWriter, "plots", lambda self, state, executor, should_stop=None: None)
        stopped_run(config_with(training={**TINY["training"], "epochs": 2}), run_dir)
    return (run_dir / "model.json").read_text()


def refused(tmp_path, text, match):
    path = tmp_path / "model.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ValueError, match=match) as info:
        load_model(path)
    return str(info.value)


def _without(*keys):
    def edit(d):
        node = d
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return edit


def _setting(*keys, to):
    def edit(d):
        node = d
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = copy.deepcopy(to)

    return edit


def _move_a_weight(d):
    """Same number of parameters, wrong shapes: neuron 0 loses a weight to neuron 1."""
    p = d["parameters"]
    p["layers.0.neurons.1.w"].append(p["layers.0.neurons.0.w"].pop())


W = ("parameters", "layers.0.neurons.0.w")
B = ("parameters", "layers.0.neurons.0.b")
# (edit of the checkpoint's JSON data, what the message must say)
DAMAGED_CHECKPOINTS = {
    "not-an-object": (lambda d: [d], "expected a JSON object, got list"),
    "wrong-format": (_setting("format", to="pytorch-model"), "format is 'pytorch-model'"),
    "wrong-version": (_setting("version", to=99), "version 99 is not supported"),
    "version-as-text": (_setting("version", to="1"), "version '1' is not supported"),
    **{f"missing-{key}": (_without(key), f"missing field '{key}'|{key}")
       for key in ("format", "version", "architecture", "parameters", "classes", "preprocessing")},
    **{f"missing-architecture-{key}": (_without("architecture", key), "architecture")
       for key in ("type", "nin", "nouts", "activation")},
    "architecture-type": (_setting("architecture", "type", to="CNN"), "type 'MLP'"),
    "nin-zero": (_setting("architecture", "nin", to=0), r"architecture.nin must be an int >= 1, got 0"),
    "nin-float": (_setting("architecture", "nin", to=2.0), r"architecture.nin must be an int >= 1, got 2.0"),
    "nin-bool": (_setting("architecture", "nin", to=True), r"architecture.nin must be an int >= 1, got True"),
    "nouts-empty": (_setting("architecture", "nouts", to=[]), r"architecture.nouts must be a non-empty list"),
    "nouts-text": (_setting("architecture", "nouts", to=[5, "2"]), r"architecture.nouts must be"),
    "activation-unknown": (
        _setting("architecture", "activation", to="os.system"), r"architecture.activation must be one of"),
    "parameter-missing": (_without(*B), r"the architecture has 27 parameters, the file stores 26"),
    "parameter-extra": (_setting("parameters", "extra", to=1.0), r"has 27 parameters, the file stores 28"),
    "parameter-renamed": (lambda d: d["parameters"].update({"x": d["parameters"].pop("layers.0.neurons.0.b")}),
                          r"parameters do not match the architecture: .*layers.0.neurons.0.b"),
    "weight-list-wrong-length": (_move_a_weight, r"must be a list of 2 numbers, got a list of 1"),
    "weight-list-where-a-number-belongs": (_setting(*B, to=[1.0]), r"must be a number, got list"),
    "parameters-not-an-object": (_setting("parameters", to=[1.0] * 27), r"the file stores None"),
    "weight-null": (_setting(*W, to=[None, 1.0]), r"must be a number, got NoneType"),
    "weight-text": (_setting(*B, to="0.5"), r"must be a number, got str"),
    "weight-bool": (_setting(*B, to=True), r"must be a number, got bool"),
    "weight-nested": (_setting(*W, to=[[1.0], 1.0]), r"must be a number, got list"),
    "classes-wrong-length": (_setting("classes", to=[0]), r"classes must be a list of 2 labels"),
    "classes-not-a-list": (_setting("classes", to="01"), r"classes must be a list of 2 labels"),
    "preprocessing-wrong-length": (
        _setting("preprocessing", "mean", to=[0.0]), r"preprocessing.mean must be a list of 2 finite"),
    "preprocessing-zero-scale": (
        _setting("preprocessing", "scale", to=[1.0, 0.0]), r"preprocessing.scale must be positive"),
    "preprocessing-extra-key": (_setting("preprocessing", "eval", to="1"), r"preprocessing must be null or an object"),
    "training-not-an-object": (_setting("training", to=[1]), r"training must be null or an object"),
}


@pytest.mark.parametrize("edit, message", DAMAGED_CHECKPOINTS.values(), ids=DAMAGED_CHECKPOINTS.keys())
def test_load_model_refuses_a_damaged_checkpoint_naming_the_problem(tmp_path, real_checkpoint, edit, message):
    data = json.loads(real_checkpoint)
    edited = edit(data)
    text = json.dumps(data if edited is None else edited)
    assert str(tmp_path / "model.json") in refused(tmp_path, text, message)


# text of the real checkpoint -> (damaged text or bytes, what the message must say)
NOT_STRICT_JSON = {
    "empty": (lambda text: "", r"invalid JSON"),
    "garbage": (lambda text: "definitely not json", r"invalid JSON"),
    "not-utf8": (lambda text: b'{"format": "\xff"}', r"invalid JSON"),
    "trailing-garbage": (lambda text: text + "}", r"invalid JSON"),
    "nan-literal": (_bias_as("NaN"), r"non-finite number NaN"),
    "infinity-literal": (_bias_as("Infinity"), r"non-finite number Infinity"),
    "minus-infinity-literal": (_bias_as("-Infinity"), r"non-finite number -Infinity"),
    "overflowing-number": (_bias_as("1e999"), r"must be finite, got inf"),
}


@pytest.mark.parametrize("damage, message", NOT_STRICT_JSON.values(), ids=NOT_STRICT_JSON.keys())
def test_load_model_refuses_text_that_is_not_strict_json(tmp_path, real_checkpoint, damage, message):
    refused(tmp_path, damage(real_checkpoint), message)


def test_load_model_refuses_every_truncation_of_a_real_checkpoint(tmp_path, real_checkpoint):
    path = tmp_path / "model.json"
    body = real_checkpoint.rstrip()
    cuts = sorted({*range(0, len(body), max(1, len(body) // 150)), *range(len(body) - 30, len(body))})
    for cut in cuts:
        path.write_text(body[:cut])
        with pytest.raises(ValueError, match="invalid JSON"):
            load_model(path)
    path.write_text(body)
    load_model(path)  # the whole text, without its final newline, is still a model


def test_a_forged_huge_architecture_is_refused_without_allocating(tmp_path, real_checkpoint):
    data = json.loads(real_checkpoint)
    data["architecture"].update(nin=10**12, nouts=[10**9, 10**9, 2])
    tracemalloc.start()
    started = time.perf_counter()
    try:
        refused(tmp_path, json.dumps(data), r"has [0-9,]+ parameters, over micronet.s budget of 10,000,000")
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0 and peak < 20 * 2**20


@pytest.mark.parametrize("where", [B, ("preprocessing", "mean")])
def test_load_model_refuses_an_integer_beyond_float_range_with_value_error(tmp_path, real_checkpoint, where):
    data = json.loads(real_checkpoint)
    _setting(*where, to=10**400 if where == B else [10**400, 0.0])(data)
    refused(tmp_path, json.dumps(data), r"finite")


@pytest.mark.parametrize("activation", [["relu"], {"name": "relu"}])
def test_load_model_refuses_an_unhashable_activation_with_value_error(tmp_path, real_checkpoint, activation):
    data = json.loads(real_checkpoint)
    data["architecture"]["activation"] = activation
    refused(tmp_path, json.dumps(data), r"architecture.activation must be one of")


@pytest.mark.parametrize("opener", ["[", '{"a": '])
def test_load_model_refuses_deeply_nested_json_with_value_error(tmp_path, opener):
    refused(tmp_path, opener * 100_000, r"model.json")


# ----- nothing is ever executed ------------------------------------------------------


CODE_LIKE = [
    "__import__('os').system('touch {marker}')",
    "!!python/object/apply:os.system ['touch {marker}']",
    "$(touch {marker})",
    "`touch {marker}`",
]


def test_a_checkpoint_with_strings_that_look_like_code_runs_nothing(tmp_path, real_checkpoint):
    marker = tmp_path / "marker"
    code = [c.format(marker=marker) for c in CODE_LIKE]
    data = json.loads(real_checkpoint)
    data["classes"] = code[:2]
    data["__reduce__"] = ["os.system", [code[0]]]  # pickle's hook
    data["py/object"] = "os.system"  # jsonpickle's
    data["training"]["note"] = code
    path = tmp_path / "model.json"
    path.write_text(json.dumps(data))
    loaded = load_checkpoint(path)
    assert loaded.classes == code[:2]  # labels are data, kept as given
    loaded.model([0.0, 0.0])
    data["architecture"]["activation"] = code[0]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="architecture.activation must be one of"):
        load_model(path)
    assert not marker.exists()


def test_a_run_whose_config_yaml_holds_a_python_tag_is_refused_and_runs_nothing(tmp_path, capsys, no_plots):
    run_dir = tmp_path / "run"
    stopped_run(config_with(), run_dir, epochs=1)
    marker = tmp_path / "marker"
    (run_dir / "config.yaml").write_text(f"seed: !!python/object/apply:os.system ['touch {marker}']\n")
    before = snapshot(run_dir)
    assert resume(run_dir) == 2
    assert "is not allowed" in one_error_line(capsys.readouterr().err)
    assert not marker.exists()
    assert snapshot(run_dir) == before


def test_a_config_with_a_python_tag_runs_nothing_and_writes_nothing(tmp_path, capsys):
    marker = tmp_path / "marker"
    (tmp_path / "evil.yaml").write_text(f"seed: 1\nname: !!python/object/apply:os.system ['touch {marker}']\n")
    assert main([str(tmp_path / "evil.yaml"), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "is not allowed" in one_error_line(capsys.readouterr().err)
    assert not marker.exists() and not (tmp_path / "run").exists()


def _alias_bomb(levels=9):
    """A YAML list that aliases itself into 9**levels strings ("billion laughs")."""
    nested = ['&l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    nested += [f"&l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels + 1)]
    return "[" + ", ".join(nested) + "]"


@pytest.mark.parametrize(
    "text",
    [f"name: {_alias_bomb()}\n", f"model: {{hidden: {_alias_bomb()}}}\n", f"seed: {_alias_bomb()}\n",
     "model: {hidden: &loop [*loop]}\n"],
    ids=["bomb-as-name", "bomb-as-hidden", "bomb-as-seed", "self-referencing-list"],
)
def test_a_yaml_alias_bomb_is_refused_quickly_in_one_line(tmp_path, capsys, text):
    (tmp_path / "bomb.yaml").write_text(text)
    started = time.perf_counter()
    assert main([str(tmp_path / "bomb.yaml"), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert time.perf_counter() - started < 1.0
    assert len(one_error_line(capsys.readouterr().err)) < 1000  # the value is shown cut short, not expanded
    assert not (tmp_path / "run").exists()


UNSAFE_IMPORTS = {"pickle", "marshal", "shelve", "dill", "cloudpickle", "joblib"}
FILE_READERS = ["checkpoint.py", "config.py", "train.py", "data.py", "files.py", "rundir.py", "budget.py"]


@pytest.mark.parametrize("module", FILE_READERS)
def test_modules_that_read_user_files_cannot_unpickle_or_evaluate(module):
    tree = ast.parse((PACKAGE / module).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not {a.name.split(".")[0] for a in node.names} & UNSAFE_IMPORTS, ast.dump(node)
        if isinstance(node, ast.ImportFrom):
            assert (node.module or "").split(".")[0] not in UNSAFE_IMPORTS, ast.dump(node)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in {"eval", "exec", "__import__"}, ast.dump(node)
        if isinstance(node, ast.Attribute):
            assert node.attr not in {"unsafe_load", "full_load", "UnsafeLoader", "FullLoader", "Loader"}, ast.dump(node)


# ----- config errors: exit 2, nothing written ------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["optimizer.lr=-1"], r"optimizer.lr must be a finite number > 0, got -1"),
        (["training.epochs=0"], r"training.epochs must be an int >= 1, got 0"),
        (["optimizer.lrr=0.1"], r"unknown key 'optimizer.lrr'"),
        (["model.hidden=[4,"], r"malformed YAML"),
    ],
)
def test_a_config_error_exits_2_in_one_line_and_writes_nothing(tmp_path, capsys, overrides, message):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    before = snapshot(tmp_path)
    assert main([str(tmp_path / "tiny.yaml"), *overrides, "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert re.search(message, one_error_line(capsys.readouterr().err))
    assert snapshot(tmp_path) == before


# ===== Round two (issue 15): what hostile testing broke ======================================
#
# Real processes (locks, Ctrl-C during imports, SIGKILL, a full disk) are in
# tests/test_processes.py; the writer in tests/test_files.py; the resource
# budgets in tests/test_budget.py.


def write_config(directory, mapping, name="c.yaml"):
    path = Path(directory) / name
    path.write_text(yaml.safe_dump(mapping))
    return str(path)


RELU = {**TINY, "model": {"hidden": [5], "activation": "relu"}}


# ----- checkpoints are verified before they are written --------------------------------


# Each is refused with a message naming the bad part, either by save's own argument
# checks or by the load-back check of the finished file.
BROKEN_CHECKPOINTS = {
    "infinite-scale": ({"mean": [0.0, 0.0], "scale": [math.inf, 1.0]}, r"scale must be finite and > 0, got scale\[0\] = inf"),
    "nan-mean": ({"mean": [math.nan, 0.0], "scale": [1.0, 1.0]}, r"mean must be finite, got mean\[0\] = nan"),
    "zero-scale": ({"mean": [0.0, 0.0], "scale": [0.0, 1.0]}, r"scale must be finite and > 0, got scale\[0\] = 0.0"),
    "nan-weight": ({"mean": None, "scale": None}, "not writing a checkpoint that would not load back: .*must be a number"),
}


@pytest.mark.parametrize("case", BROKEN_CHECKPOINTS)
def test_a_checkpoint_that_load_model_would_refuse_is_never_written(tmp_path, case):
    path = tmp_path / "model.json"
    save_model(MLP(2, [3, 2], seed=1), path, mean=[0.0, 0.0], scale=[1.0, 1.0])
    before = path.read_bytes()
    scaling, problem = BROKEN_CHECKPOINTS[case]
    model = MLP(2, [3, 2], seed=2)
    if case == "nan-weight":
        model.parameters()[0].data = math.nan
    with pytest.raises(ValueError, match=problem):
        save_model(model, path, **scaling)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]


def test_a_run_whose_checkpoint_would_not_load_fails_before_training(tmp_path):
    """An input scaling that is not finite stops the run at its first checkpoint, with a failed summary."""
    config = config_with()
    data = prepare_data(config.dataset, config.seed)
    data.scaler.scale_ = np.array([math.inf, 1.0])
    with pytest.raises(ValueError, match=r"scale must be finite and > 0, got scale\[0\] = inf"):
        run(config, tmp_path, data=data)
    summary = strict_json(tmp_path / "summary.json")
    assert summary["status"] == "failed" and "scale[0] = inf" in summary["error"]
    assert not (tmp_path / "model.json").exists()


# ----- the standardiser and the data behind huge features (lead's fix, pinned) ----------


SPREADS = {
    "tiny-values-whose-squares-underflow": [0.0, 1e-200, 0.0, 1e-200],
    "subnormal-values": [0.0, 1e-310, 0.0, 1e-310],
    "values-whose-spread-overflows": [1.7e308, -1.7e308, 1.7e308, 1e308],
    "huge-values": [1e300, -1e300, 5e299, 0.0],
}


@pytest.mark.parametrize("column", SPREADS.values(), ids=SPREADS.keys())
def test_the_standardiser_handles_features_whose_spread_overflows_or_underflows(column):
    X = np.array(column)[:, None]
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # not even a warning
        scaler = Standardizer().fit(X)
        Z = scaler.transform(X)
        back = scaler.inverse_transform(Z)
    assert np.isfinite(scaler.mean_).all() and np.isfinite(scaler.scale_).all() and (scaler.scale_ > 0).all()
    assert np.isfinite(Z).all()
    assert abs(Z.mean()) < 1e-9 and abs(Z.std() - 1.0) < 1e-9
    np.testing.assert_allclose(back, X, rtol=1e-12)


@pytest.mark.parametrize("column", SPREADS.values(), ids=SPREADS.keys())
def test_a_csv_with_extreme_features_trains_to_a_loadable_checkpoint(tmp_path, no_plots, column):
    rows = [f"{x!r},{i % 2}" for i, x in enumerate(column * 10)]
    (tmp_path / "data.csv").write_text("x,label\n" + "\n".join(rows) + "\n")
    config = parse_config({**TINY, "dataset": {"name": "csv", "path": str(tmp_path / "data.csv"), "target": "label"},
                           "training": {"epochs": 2}})
    (tmp_path / "run").mkdir()
    assert run(config, tmp_path / "run")["status"] == "completed"
    checkpoint = load_checkpoint(tmp_path / "run" / "model.json")
    assert all(math.isfinite(v) and v > 0 for v in checkpoint.scale)


def test_a_generator_asked_for_values_beyond_the_float_range_names_the_data(tmp_path, capsys):
    config = write_config(tmp_path, {**TINY, "dataset": {**TINY["dataset"], "noise": 1e308}})
    assert main([config, "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "dataset 'moons'" in line and "not finite" in line and "data" in line
    assert not (tmp_path / "run").exists()


# ----- divergence caused by the data says so -------------------------------------------


def test_divergence_on_unscaled_huge_features_blames_the_data_not_the_learning_rate(tmp_path, capsys, no_plots):
    dataset = {**TINY["dataset"], "noise": 1e200, "standardize": False}
    config = write_config(tmp_path, {**RELU, "dataset": dataset})
    assert main([config, "--out", str(tmp_path / "run"), "--no-progress"]) == 3
    line = one_error_line(capsys.readouterr().err)
    assert "the data is the cause, not the learning rate" in line and "set dataset.standardize: true" in line
    assert "optimizer.lr" not in line
    assert "the data is the cause" in strict_json(tmp_path / "run" / "summary.json")["error"]


def test_divergence_when_the_untrained_model_overflows_on_the_data_blames_the_data(tmp_path, no_plots):
    """Features near the float limit overflow the first layer before any update: no lr could help."""
    X = np.array([[1e308, -1e308], [-1e308, 1e308], [1e308, 1e308], [-1e308, -1e308]])
    y = np.array([0, 1, 0, 1])
    data = PreparedData(X, y, X, y, [0, 1], 2, None)
    config = parse_config({**RELU, "dataset": {**TINY["dataset"], "standardize": False}})
    summary = run(config, tmp_path, data=data)
    assert summary["status"] == "diverged"
    assert "the untrained model already gives a non-finite loss" in summary["error"]


def test_divergence_from_a_huge_learning_rate_still_suggests_a_smaller_one(tmp_path, no_plots):
    summary = run(parse_config({**RELU, "optimizer": {"name": "sgd", "lr": 1e30}}), tmp_path)
    assert summary["status"] == "diverged" and summary["error"].endswith("try a smaller optimizer.lr")


# ----- resume refuses a config or data file that no longer matches ----------------------


def _edit_config(edit):
    def change(run_dir):
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        edit(config)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    return change


# (edit of the resolved config.yaml, the key the message must name)
CONFIG_EDITS = {
    "activation": (lambda c: c["model"].update(activation="relu"), "model.activation"),
    "loss": (lambda c: c.update(loss="mse"), "loss"),
    "seed": (lambda c: c.update(seed=8), "seed"),
    "dataset-option": (lambda c: c["dataset"].update(noise=0.3), "dataset.noise"),
    "test-size": (lambda c: c["dataset"].update(test_size=0.3), "dataset.test_size"),
    "batch-size": (lambda c: c["training"].update(batch_size=16), "training.batch_size"),
    "standardize": (lambda c: c["dataset"].update(standardize=False), "dataset.standardize"),
    "lr": (lambda c: c["optimizer"].update(lr=0.2), "optimizer.lr"),
    "momentum": (lambda c: c["optimizer"].update(momentum=0.5), "optimizer.momentum"),
    "epochs": (lambda c: c["training"].update(epochs=6), "training.epochs"),
    "schedule": (lambda c: c["optimizer"].update(schedule="constant"), "optimizer.schedule.name"),
    "name": (lambda c: c.update(name="renamed"), "name"),
}


@pytest.mark.parametrize("edit, key", CONFIG_EDITS.values(), ids=CONFIG_EDITS.keys())
def test_resume_refuses_a_config_yaml_that_contradicts_the_checkpoint_naming_the_key(
    tmp_path, capsys, no_plots, edit, key
):
    run_dir = tmp_path / "run"
    stopped_run(config_with(), run_dir, epochs=1)
    _edit_config(edit)(run_dir)
    before = snapshot(run_dir)
    assert resume(run_dir) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f": {key} is " in line and "config.yaml" in line and "model.json" in line
    assert snapshot(run_dir) == before


def test_a_config_yaml_rewritten_with_the_same_settings_still_resumes(tmp_path, capsys, no_plots):
    run_dir = tmp_path / "run"
    stopped_run(config_with(), run_dir, epochs=1)
    text = (run_dir / "config.yaml").read_text().replace("lr: 0.1", "lr: 1.0e-1")
    (run_dir / "config.yaml").write_text("# my notes\n" + text)
    assert resume(run_dir) == 0


def test_resume_refuses_a_csv_data_file_that_changed(tmp_path, capsys, no_plots):
    data = tmp_path / "data.csv"
    data.write_text("a,b,label\n" + "".join(f"{i % 7}.5,{i % 3}.25,{'xy'[i % 2]}\n" for i in range(40)))
    run_dir = tmp_path / "run"
    config = parse_config({**TINY, "dataset": {"name": "csv", "path": str(data), "target": "label"}})
    stopped_run(config, run_dir, epochs=1)
    data.write_text(data.read_text().replace("1.5,", "1.75,", 1))
    before = snapshot(run_dir)
    assert resume(run_dir) == 2
    assert "the data file changed" in one_error_line(capsys.readouterr().err)
    assert snapshot(run_dir) == before


def test_resume_refuses_a_run_whose_checkpoint_was_deleted(tmp_path, capsys, no_plots):
    run_dir = tmp_path / "run"
    stopped_run(config_with(), run_dir, epochs=2)
    (run_dir / "model.json").unlink()
    before = snapshot(run_dir)
    assert resume(run_dir) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "model.json is missing" in line and "metrics.csv" in line
    assert snapshot(run_dir) == before


def test_resume_refuses_a_checkpoint_that_does_not_record_its_config(tmp_path, capsys, no_plots):
    run_dir = tmp_path / "run"
    stopped_run(config_with(), run_dir, epochs=1)
    _edit_json("model.json", lambda d: d["training"].pop("fingerprint"))(run_dir)
    assert resume(run_dir) == 2
    assert "does not record the config it was trained with" in one_error_line(capsys.readouterr().err)


def test_a_run_directory_has_its_checkpoint_before_the_first_epoch(tmp_path, no_plots):
    """So that a missing model.json always means a deleted one (see the test above)."""
    summary = stopped_run(config_with(), tmp_path / "run", batches=0)
    assert summary["epochs"] == 0
    saved = load_checkpoint(tmp_path / "run" / "model.json")
    assert saved.training["epoch"] == 0 and saved.training["fingerprint"]["config"]["name"] == "tiny"


# ----- resume never writes through a symlink -------------------------------------------


RUN_FILES = ["metrics.csv", "model.json", "summary.json", "loss.png", "decision_boundary.png"]


def test_resume_replaces_symlinked_run_files_and_never_writes_through_them(tmp_path, capsys):
    """A run directory received from someone else, its files pointing outside it (at ~/.bashrc, say)."""
    config = config_with()
    run_dir, outside = tmp_path / "run", tmp_path / "outside"
    stopped_run(config, run_dir, epochs=2)
    outside.mkdir()
    for name in RUN_FILES:  # an interrupted run has no plots yet: link those to files of someone else's
        (outside / name).write_bytes((run_dir / name).read_bytes() if (run_dir / name).exists() else b"precious")
        (run_dir / name).unlink(missing_ok=True)
        (run_dir / name).symlink_to(outside / name)
    before = {name: (outside / name).read_bytes() for name in RUN_FILES}
    assert resume(run_dir) == 0
    assert {name: (outside / name).read_bytes() for name in RUN_FILES} == before
    assert not any((run_dir / name).is_symlink() for name in RUN_FILES)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RunWriter, "plots", lambda self, state, executor, should_stop=None: None)
        stopped_run(config, tmp_path / "full")
    assert (run_dir / "model.json").read_bytes() == (tmp_path / "full" / "model.json").read_bytes()


def test_a_lock_file_that_is_a_symlink_is_refused_and_not_written(tmp_path, capsys, no_plots):
    run_dir = tmp_path / "run"
    stopped_run(config_with(), run_dir, epochs=1)
    victim = tmp_path / "bashrc"
    victim.write_text("precious\n")
    (run_dir / LOCK_NAME).symlink_to(victim)
    assert resume(run_dir) == 2
    assert "is a symlink" in one_error_line(capsys.readouterr().err)
    assert victim.read_text() == "precious\n"


# ----- after a kill: stale temporaries, missing plots, missing summary ---------------------


def test_resume_removes_the_temporary_files_a_killed_writer_left(tmp_path, capsys, no_plots):
    run_dir = tmp_path / "run"
    stopped_run(config_with(), run_dir, epochs=2)
    (run_dir / ".model.json.4242.0123abcd.tmp").write_text('{"format": "micronet-mo')
    (run_dir / ".summary.json.4242.89abcdef.tmp").write_text("")
    assert resume(run_dir) == 0
    assert temporary_files(run_dir) == []


def test_resuming_a_completed_run_without_its_plots_draws_them(tmp_path, capsys):
    """Killed after its summary but before its plots: --resume draws them and changes nothing else."""
    run_dir = tmp_path / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RunWriter, "plots", lambda self, state, executor, should_stop=None: None)
        stopped_run(config_with(), run_dir)
    model_before = (run_dir / "model.json").read_bytes()
    assert resume(run_dir) == 0
    assert (run_dir / "loss.png").is_file() and (run_dir / "decision_boundary.png").is_file()
    assert (run_dir / "model.json").read_bytes() == model_before
    assert "summary and plots are now written" in capsys.readouterr().out


def test_resuming_a_run_killed_before_its_summary_writes_it(tmp_path, capsys, no_plots):
    run_dir = tmp_path / "run"
    stopped_run(config_with(), run_dir)
    expected = strict_json(run_dir / "summary.json")
    (run_dir / "summary.json").unlink()
    assert resume(run_dir) == 0
    assert strict_json(run_dir / "summary.json") == expected


# ----- signals at any moment (real signals, through the handlers main() installs) -------


def test_ctrl_c_while_drawing_the_plots_is_reported_not_swallowed(tmp_path, capsys, monkeypatch):
    from micronet import plot

    draw = plot.plot_history

    def draw_then_ctrl_c(*args, **kwargs):
        draw(*args, **kwargs)
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(plot, "plot_history", draw_then_ctrl_c)
    run_dir = tmp_path / "run"
    assert main([write_config(tmp_path, TINY), "--out", str(run_dir), "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert "not all plots were drawn" in err and f"--resume {run_dir}" in err
    assert strict_json(run_dir / "summary.json")["status"] == "completed"
    assert (run_dir / "loss.png").is_file() and not (run_dir / "decision_boundary.png").exists()
    monkeypatch.undo()
    assert resume(run_dir) == 0
    assert (run_dir / "decision_boundary.png").is_file()


def test_ctrl_c_during_a_long_eager_batch_stops_within_one_sample(tmp_path, capsys, monkeypatch):
    """One full batch of 45 samples per epoch; Ctrl-C at sample 20 of epoch 2's batch."""
    config = {**TINY, "training": {"epochs": 4, "batch_size": "full", "backend": "eager"}}
    per_epoch = 45 + 45 + 15  # the batch, then evaluating the train and test splits
    signal_at = per_epoch + 20
    calls = itertools.count(1)

    def loss_that_counts(config):
        loss = config_loss(config)

        def counted(outputs, target):
            if next(calls) == signal_at:
                signal.raise_signal(signal.SIGINT)
            return loss(outputs, target)

        return counted

    monkeypatch.setattr("micronet.runner.config_loss", loss_that_counts)
    run_dir = tmp_path / "run"
    assert main([write_config(tmp_path, config), "--out", str(run_dir), "--no-progress"]) == 130
    assert next(calls) == signal_at + 1  # no sample after the one the signal came in
    assert strict_json(run_dir / "summary.json")["status"] == "interrupted"
    assert epochs_in_metrics(run_dir) == [1]
    monkeypatch.undo()
    assert resume(run_dir) == 0
    stopped_run(parse_config(config), tmp_path / "full")
    assert (run_dir / "model.json").read_bytes() == (tmp_path / "full" / "model.json").read_bytes()


# ----- unexpected errors: one line, a failed summary, the last checkpoint kept ----------


def test_a_full_disk_mid_run_is_one_line_exit_1_keeping_the_last_checkpoint(tmp_path, capsys, monkeypatch, no_plots):
    replace = os.replace
    checkpoints = itertools.count(0)

    def disk_full_at_epoch_3(src, dst):
        if Path(dst).name == "model.json" and next(checkpoints) == 3:
            raise OSError(28, "No space left on device")
        return replace(src, dst)

    monkeypatch.setattr("micronet.files.os.replace", disk_full_at_epoch_3)
    run_dir = tmp_path / "run"
    assert main([write_config(tmp_path, TINY), "--out", str(run_dir), "--no-progress"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "No space left on device" in line and f"epochs 1-2 and their checkpoint are kept in {run_dir}" in line
    summary = strict_json(run_dir / "summary.json")
    assert summary["status"] == "failed" and "No space left on device" in summary["error"]
    assert load_checkpoint(run_dir / "model.json").training["epoch"] == 2
    assert temporary_files(run_dir) == []
    monkeypatch.undo()
    assert resume(run_dir) == 0  # and the run can be finished once there is room


def test_a_full_disk_when_resuming_keeps_the_checkpoint_it_resumed_from(tmp_path, capsys, monkeypatch, no_plots):
    run_dir = tmp_path / "run"
    stopped_run(config_with(), run_dir, epochs=2)
    replace = os.replace

    def no_room_for_metrics(src, dst):
        if Path(dst).name == "metrics.csv":
            raise OSError(28, "No space left on device")
        return replace(src, dst)

    monkeypatch.setattr("micronet.files.os.replace", no_room_for_metrics)
    assert resume(run_dir) == 1
    assert f"epochs 1-2 and their checkpoint are kept in {run_dir}" in one_error_line(capsys.readouterr().err)
    summary = strict_json(run_dir / "summary.json")
    assert (summary["status"], summary["epochs"]) == ("failed", 2)
    assert load_checkpoint(run_dir / "model.json").training["epoch"] == 2


@pytest.mark.parametrize("error", [RuntimeError("first line\n  second line\n"), MemoryError()])
def test_an_unexpected_error_is_one_line_and_exit_1(capsys, error):
    def body(argv):
        raise error

    assert run_cli(body, [], ()) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: unexpected {type(error).__name__}") and "--debug" in line


# ----- regular files only, and a size limit on configs ------------------------------------


def _fifo(directory):
    path = Path(directory) / "fifo"
    os.mkfifo(path)
    return str(path)


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_a_config_that_is_not_a_regular_file_is_refused_at_once(tmp_path, capsys, deadline, special):
    path = _fifo(tmp_path) if special == "fifo" else special
    assert main([path, "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "not a regular file" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_a_csv_data_file_that_is_not_a_regular_file_is_refused_at_once(tmp_path, capsys, deadline, special):
    path = _fifo(tmp_path) if special == "fifo" else special
    config = write_config(tmp_path, {**TINY, "dataset": {"name": "csv", "path": path, "target": "label"}})
    assert main([config, "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "dataset.path" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_a_checkpoint_that_is_not_a_regular_file_is_refused_at_once(tmp_path, capsys, deadline, no_plots, special):
    run_dir = tmp_path / "run"
    stopped_run(config_with(), run_dir, epochs=1)
    (run_dir / "model.json").unlink()
    if special == "fifo":
        os.mkfifo(run_dir / "model.json")
    else:
        (run_dir / "model.json").symlink_to(special)
    assert resume(run_dir) == 2
    assert "not a regular file" in one_error_line(capsys.readouterr().err)
    with pytest.raises(ValueError, match="not a regular file"):
        load_model(run_dir / "model.json")


def test_a_config_over_1_mb_is_refused_before_it_is_parsed(tmp_path, capsys, monkeypatch):
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(TINY) + "#" * (2**20))
    monkeypatch.setattr(yaml, "compose", lambda *a, **k: pytest.fail("the file was parsed"))
    assert main([str(path), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "over the limit of 1,048,576" in one_error_line(capsys.readouterr().err)


# ----- CSV numbers and labels, and the estimator (lead's fixes, pinned) --------------------


@pytest.mark.parametrize("cell", ["5_1", "0x1A", "1e5e3", "1.2.3", "١٢", "１２", "+-1", "1 000"])
def test_a_csv_feature_that_is_not_a_plain_decimal_number_is_refused(tmp_path, cell):
    (tmp_path / "data.csv").write_text(f"x,label\n1.5,a\n{cell},b\n2.5,a\n3.5,b\n")
    with pytest.raises(DataError, match=rf"column 'x' at line 3 is not a number: '{re.escape(cell)}'"):
        load_dataset("csv", {"path": str(tmp_path / "data.csv"), "target": "label"})


def test_csv_labels_that_are_the_same_number_are_one_class(tmp_path):
    """The documented numeric-label rule: `1` and `1.0` are the number one, `01` too; text stays text."""
    (tmp_path / "data.csv").write_text("x,label\n" + "".join(f"{i}.5,{v}\n" for i, v in
                                                              enumerate(["1", "1.0", "01", "2", "2.0", "2"])))
    _, y, classes = load_dataset("csv", {"path": str(tmp_path / "data.csv"), "target": "label"})
    assert classes == [1.0, 2.0] and y.tolist() == [0, 0, 0, 1, 1, 1]
    (tmp_path / "text.csv").write_text("x,label\n1.5,1\n2.5,1a\n3.5,1\n4.5,1a\n")
    _, _, classes = load_dataset("csv", {"path": str(tmp_path / "text.csv"), "target": "label"})
    assert classes == ["1", "1a"]


def test_an_estimator_whose_fit_diverged_is_not_fitted():
    from sklearn.exceptions import NotFittedError

    from micronet.sklearn import MicronetClassifier

    X, y = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [1.0, 1.0]] * 5), np.array([0, 1, 0, 1] * 5)
    diverging = dict(hidden=(4,), activation="relu", lr=1e200, epochs=5, random_state=0)
    clf = MicronetClassifier(**{**diverging, "lr": 0.1}).fit(X, y)  # fitted once, then refitted badly
    clf.set_params(lr=1e200)
    with pytest.raises(Diverged):
        clf.fit(X, y)
    with pytest.raises(NotFittedError):
        clf.predict(X)
    fresh = MicronetClassifier(**diverging)
    with pytest.raises(Diverged):
        fresh.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(NotFittedError):
        fresh.predict_proba(X)


def test_an_estimator_hidden_that_is_not_a_list_is_named():
    from micronet.sklearn import MicronetClassifier

    X, y = np.array([[0.0, 1.0], [1.0, 0.0]] * 5), np.array([0, 1] * 5)
    with pytest.raises(ValueError, match=r"hidden must be a list of ints >= 1 \(layer widths; \[\] for a linear model\), got 5"):
        MicronetClassifier(hidden=5).fit(X, y)


# ----- YAML merge-key bombs: tests/test_processes.py (a subprocess, so an old PyYAML cannot hang the suite)


def test_the_pyyaml_bound_is_one_that_refuses_merge_key_bombs():
    from importlib.metadata import version

    pyproject = (PACKAGE.parent / "pyproject.toml").read_text()
    assert '"PyYAML>=6.0.4"' in pyproject
    assert tuple(int(p) for p in version("PyYAML").split(".")[:3]) >= (6, 0, 4)


def test_every_test_docs_reliability_md_names_exists():
    """The guarantees page cites tests by file letter and name; a renamed test must not leave it stale."""
    letters = {"R": "test_reliability.py", "P": "test_processes.py", "W": "test_files.py", "B": "test_budget.py",
               "F": "test_fuzz.py", "C": "test_config.py", "D": "test_reliability_doors.py"}
    text = (PACKAGE.parent / "docs" / "reliability.md").read_text()
    cited = re.findall(r"`([A-Z])::(test_\w+)`", text)
    assert len(cited) > 50
    for letter, name in cited:
        source = (PACKAGE.parent / "tests" / letters[letter]).read_text()
        assert re.search(rf"^def {name}\(", source, re.MULTILINE), f"{letter}::{name} is not in {letters[letter]}"
