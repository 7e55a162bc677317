"""Issue 15 with real processes and real signals: two trainers on one run directory,
Ctrl-C during imports, SIGKILL then --resume, a full disk, the issue's own commands,
and YAML bombs that must not hang.

Each fixture starts its independent processes together and waits for them
once, so the module costs a few seconds of wall time on two cores.
"""

import json
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from micronet.checkpoint import load_checkpoint, load_model
from micronet.config import parse_config
from micronet.data import prepare_data
from micronet.loop import new_state
from micronet.rundir import LOCK_NAME
from micronet.train import main, run

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent

# Far more epochs than will ever run: the process is always mid-training when signalled.
LONG = {
    "name": "long",
    "seed": 5,
    "dataset": {"name": "moons", "n_samples": 80, "noise": 0.2},
    "model": {"hidden": [6]},
    "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
    "training": {"epochs": 100000, "batch_size": 10, "backend": "eager"},
}
TINY = {
    "name": "tiny",
    "seed": 7,
    "dataset": {"name": "moons", "n_samples": 60, "noise": 0.2},
    "model": {"hidden": [5], "activation": "tanh"},
    "training": {"epochs": 200, "batch_size": "full"},
}


@pytest.fixture(autouse=True)
def restore_signal_handlers():
    """main() installs SIGINT/SIGTERM handlers; give pytest its own back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


def cli(args, cwd, **popen):
    command = [sys.executable, "-m", "micronet.train", *args]
    return subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def one_error_line(stderr):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def rows(run_dir):
    """Data rows of metrics.csv that are fully written."""
    try:
        return max((run_dir / "metrics.csv").read_text().count("\n") - 1, 0)
    except FileNotFoundError:
        return 0


def wait_for(condition, what, timeout=120):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def finish(process, timeout=120):
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        pytest.fail(f"the process did not end in {timeout} s: {stderr}")
    return SimpleNamespace(returncode=process.returncode, stdout=stdout, stderr=stderr, pid=process.pid)


def epochs_in_metrics(run_dir):
    lines = (run_dir / "metrics.csv").read_text().splitlines()[1:]
    return [int(line.split(",")[0]) for line in lines]


def assert_consistent(run_dir):
    """metrics.csv rows 1..E once each, and the checkpoint and summary agree on E."""
    epochs = json.loads((run_dir / "summary.json").read_text())["epochs"]
    assert epochs_in_metrics(run_dir) == list(range(1, epochs + 1))
    assert load_checkpoint(run_dir / "model.json").training["epoch"] == epochs
    return epochs


# ----- one run directory, one writer ---------------------------------------------


@pytest.fixture(scope="module")
def contested(tmp_path_factory):
    """Two trainers started together on one --out, and two --resume of one run, all four at once."""
    cwd = tmp_path_factory.mktemp("contested")
    (cwd / "long.yaml").write_text(yaml.safe_dump(LONG))
    config = parse_config(LONG)
    data = prepare_data(config.dataset, config.seed)
    state = new_state(config, data)
    (cwd / "stopped").mkdir()
    with pytest.MonkeyPatch.context() as patch:  # a run stopped after epoch 1, to resume twice
        patch.setattr("micronet.rundir.RunWriter.plots", lambda *a, **k: None)
        run(config, cwd / "stopped", data=data, state=state, should_stop=lambda: state.epoch >= 1)
    pairs = {
        "out": [cli(["long.yaml", "--out", "same", "--no-progress"], cwd) for _ in range(2)],
        "resume": [cli(["--resume", "stopped", "--no-progress"], cwd) for _ in range(2)],
    }
    results = {}
    for name, pair in pairs.items():
        wait_for(lambda: any(p.poll() is not None for p in pair), f"one of the two {name} runs to give up", 60)  # noqa: B023 - called at once
        loser = next(p for p in pair if p.poll() is not None)
        winner = next(p for p in pair if p is not loser)
        results[name] = SimpleNamespace(loser=finish(loser), winner=winner)
    for name, result in results.items():
        run_dir = cwd / ("same" if name == "out" else "stopped")
        wait_for(lambda: rows(run_dir) >= 2, f"the {name} winner's second epoch")  # noqa: B023 - called at once
        result.still_running = result.winner.poll() is None
        result.winner.send_signal(signal.SIGINT)
        result.winner = finish(result.winner)
        result.dir = run_dir
    return results


@pytest.mark.parametrize("pair", ["out", "resume"])
def test_of_two_trainers_on_one_run_directory_the_second_exits_2_naming_the_first(contested, pair):
    result = contested[pair]
    assert result.still_running, "the winner kept training while the loser was refused"
    assert result.loser.returncode == 2, result.loser.stderr
    line = one_error_line(result.loser.stderr)
    assert f"is in use by process {result.winner.pid}" in line and str(result.dir.name) in line
    assert result.loser.stdout == ""


@pytest.mark.parametrize("pair", ["out", "resume"])
def test_the_run_directory_of_two_contested_runs_is_one_consistent_run(contested, pair):
    result = contested[pair]
    assert result.winner.returncode == 130, result.winner.stderr
    assert assert_consistent(result.dir) >= 2
    assert (result.dir / LOCK_NAME).read_text() == ""  # released: no holder recorded


# ----- Ctrl-C during imports; SIGKILL then resume ----------------------------------


CTRL_C_DURING_IMPORTS = """
import os, runpy, signal, sys

class CtrlCWhileImporting:
    def find_spec(self, name, path=None, target=None):
        if name == "micronet.config":  # imported by micronet.train, after NumPy starts loading
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, CtrlCWhileImporting())
sys.argv = ["micronet.train", *sys.argv[1:]]
runpy.run_module("micronet.train", run_name="__main__", alter_sys=True)
"""


def test_ctrl_c_during_imports_exits_130_in_one_line(tmp_path):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    process = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_DURING_IMPORTS, "tiny.yaml", "--out", "run"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    result = finish(process)
    assert result.returncode == 130, result.stderr
    assert result.stderr == "interrupted while starting; nothing was written\n"
    assert not (tmp_path / "run").exists()


def test_after_sigkill_resume_removes_stale_temporaries_and_continues(tmp_path):
    """The killed process's lock is gone with it; what it left half-written is cleared."""
    (tmp_path / "long.yaml").write_text(yaml.safe_dump(LONG))
    run_dir = tmp_path / "run"
    first = cli(["long.yaml", "--out", "run", "--no-progress"], tmp_path)
    wait_for(lambda: rows(run_dir) >= 2, "two epochs")
    first.kill()
    finish(first)
    killed_at = load_checkpoint(run_dir / "model.json").training["epoch"]
    written = rows(run_dir)  # rows past the checkpoint are derived again on resume
    stale = run_dir / f".model.json.{first.pid}.0123abcd.tmp"
    stale.write_text('{"format": "micronet-mo')  # what a kill during a checkpoint write leaves
    second = cli(["--resume", "run", "--no-progress"], tmp_path)
    wait_for(lambda: rows(run_dir) >= written + 2, "the resumed run's epochs")
    second.send_signal(signal.SIGINT)
    result = finish(second)
    assert result.returncode == 130, result.stderr
    assert not stale.exists()
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith(".")) == [LOCK_NAME]
    assert assert_consistent(run_dir) >= killed_at + 2


# ----- one-shot commands, started together -------------------------------------------


def _limit_file_size(limit):
    def preexec():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # Python ignores SIGXFSZ: writes get EFBIG

    return preexec


def _bounded_memory():
    resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))


def _merge_bomb(levels=12):
    """Each level merges (`<<`) nine aliases of the one below: 9**levels keys for PyYAML < 6.0.4."""
    lines = ["  a0: &a0 {k0: 0, k1: 1}"]
    lines += [f"  a{i}: &a{i} {{<<: [{', '.join([f'*a{i - 1}'] * 9)}]}}" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


MERGE_BOMBS = {
    "merge-bomb-in-model": "model:\n" + _merge_bomb(),
    "merge-bomb-in-dataset": "dataset:\n" + _merge_bomb(),
    "merge-bomb-merged-at-the-top": "model:\n" + _merge_bomb() + "<<: *a12\n",
}


@pytest.fixture(scope="module")
def commands(tmp_path_factory):
    """The issue's commands and a full disk, each in its own process, all running at once."""
    cwd = tmp_path_factory.mktemp("commands")
    moons = str(ROOT / "configs" / "moons.yaml")
    (cwd / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    # The disk fills up once metrics.csv outgrows a checkpoint by 1500 bytes (around epoch 90 of 200).
    config = parse_config(TINY)
    (cwd / "probe").mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("micronet.rundir.RunWriter.plots", lambda *a, **k: None)
        data = prepare_data(config.dataset, config.seed)
        state = new_state(config, data)
        run(config, cwd / "probe", data=data, state=state, should_stop=lambda: state.epoch >= 1)
    limit = (cwd / "probe" / "model.json").stat().st_size + 1500
    for name, text in MERGE_BOMBS.items():
        (cwd / f"{name}.yaml").write_text(text)
    started = {
        "noise-1e300": cli([moons, "dataset.noise=1e300", "--out", "noise-1e300", "--no-progress"], cwd),
        "noise-1e308": cli([moons, "dataset.noise=1e308", "--out", "noise-1e308", "--no-progress"], cwd),
        "noise-1e300-unscaled": cli(
            [moons, "dataset.noise=1e300", "dataset.standardize=false", "--out", "unscaled", "--no-progress"], cwd),
        "disk-full": cli(["tiny.yaml", "--out", "full", "--no-progress"], cwd, preexec_fn=_limit_file_size(limit)),
        **{name: cli([f"{name}.yaml", "--out", name, "--no-progress"], cwd, preexec_fn=_bounded_memory)
           for name in MERGE_BOMBS},
    }
    results = {name: finish(process, timeout=120) for name, process in started.items()}
    return SimpleNamespace(cwd=cwd, **{name.replace("-", "_"): result for name, result in results.items()},
                           bombs={name: results[name] for name in MERGE_BOMBS})


def test_huge_but_finite_noise_trains_to_a_loadable_checkpoint_without_warnings(commands):
    result = commands.noise_1e300
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no NumPy warning
    load_model(commands.cwd / "noise-1e300" / "model.json")


def test_noise_beyond_the_float_range_is_one_error_line_naming_the_data(commands):
    result = commands.noise_1e308
    assert result.returncode == 2, result.stderr
    line = one_error_line(result.stderr)
    assert "dataset 'moons'" in line and "not finite" in line
    assert not (commands.cwd / "noise-1e308").exists()


def test_unscaled_huge_features_diverge_in_one_line_that_names_the_data(commands):
    result = commands.noise_1e300_unscaled
    assert result.returncode == 3, result.stderr
    line = one_error_line(result.stderr)  # no NumPy RuntimeWarning before it
    assert "the data is the cause" in line and "optimizer.lr" not in line


def test_a_full_disk_is_one_line_exit_1_a_failed_summary_and_the_last_checkpoint(commands):
    result, run_dir = commands.disk_full, commands.cwd / "full"
    assert result.returncode == 1, result.stderr
    line = one_error_line(result.stderr)
    match = re.search(r"File too large.*; epochs 1-(\d+) and their checkpoint are kept in full$", line)
    assert match, line
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "File too large" in summary["error"]
    kept = load_checkpoint(run_dir / "model.json").training["epoch"]
    assert kept == summary["epochs"] == int(match[1]) and 10 < kept < TINY["training"]["epochs"]
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]


def test_a_run_stopped_by_a_full_disk_resumes_to_the_end(commands, tmp_path, capsys):
    """Once there is room again (this process has no file-size limit)."""
    run_dir = commands.cwd / "full"
    assert main(["--resume", str(run_dir), "--no-progress"]) == 0
    assert epochs_in_metrics(run_dir) == list(range(1, TINY["training"]["epochs"] + 1))


@pytest.mark.parametrize("name", MERGE_BOMBS)
def test_a_yaml_merge_key_bomb_is_refused_in_one_line_without_hanging(commands, name):
    result = commands.bombs[name]
    assert result.returncode == 2, result.stderr
    assert len(one_error_line(result.stderr)) < 1000
    assert not (commands.cwd / name).exists()
    assert len(MERGE_BOMBS[name]) < 2000  # a small file: 9**12 keys for a PyYAML that expands merges
