"""The trainer: the real CLI end to end, its run directory, overrides, determinism,
a catalogue of bad configs, and the training loop's stop and divergence paths.

End-to-end runs are `python -m micronet.train` in a subprocess, each in its own
temporary directory, on tiny configs (60 samples, 3 epochs). The independent
runs start together in one module-scoped fixture, and several tests read each
run's files. Every process pays ~1 s of imports (scikit-learn), so the
catalogue of bad configs runs in-process through `main()` by default, and
through the real CLI, one subprocess per case, under the `slow` marker.
"""

import csv
import dataclasses
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

import micronet
from micronet import rundir, train
from micronet.checkpoint import load_checkpoint, load_model
from micronet.config import config_to_dict, load_config, parse_config
from micronet.data import prepare_data
from micronet.loop import Diverged, Plan, config_loss, make_executor, new_state, run_epochs
from micronet.train import _final_line, main, run

HEADER = ("epoch,train_loss,train_accuracy,train_balanced_accuracy,train_f1_macro,"
          "test_loss,test_accuracy,test_balanced_accuracy,test_f1_macro,lr,seconds")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SUMMARY_KEYS = {
    "train_loss", "train_accuracy", "test_loss", "test_accuracy", "epochs", "seconds", "n_parameters", "status"
}

TINY = """\
name: tiny
seed: 0
dataset: {name: moons, n_samples: 60, noise: 0.2}
model: {hidden: [4]}
optimizer: {name: sgd, lr: 0.1, momentum: 0.9}
training: {epochs: 3, batch_size: 16}
"""
TINY_PARAMETERS = (2 + 1) * 4 + (4 + 1) * 2  # 2 -> 4 -> 2

TINY_SINE = """\
dataset: {name: sine, n_samples: 80}
model: {hidden: [8], activation: tanh}
optimizer: {name: adam, lr: 0.02}
training: {epochs: 4, batch_size: 16}
"""
STOPPING = ["training.epochs=200", "training.validation_split=0.25", "training.early_stopping=2",
            "optimizer.lr=2.0", "optimizer.momentum=0.0"]

TINY_IRIS = """\
dataset: {name: iris}
model: {hidden: [4]}
training: {epochs: 2, batch_size: 32}
"""


def cli(args, cwd):
    """`python -m micronet.train ARGS` run in `cwd`, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "micronet.train", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def start_cli(tmp_path_factory, name, config_text, args):
    """Write `config_text` to <new tmp dir>/<name>.yaml and start the CLI on it with `args`."""
    cwd = tmp_path_factory.mktemp(name)
    (cwd / f"{name}.yaml").write_text(config_text)
    command = [sys.executable, "-m", "micronet.train", f"{name}.yaml", *args]
    popen = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return SimpleNamespace(cwd=cwd, popen=popen, started=time.time())


def finish(run):
    """Wait for a started run; add returncode, stdout, stderr and the finishing time."""
    run.stdout, run.stderr = run.popen.communicate(timeout=300)
    run.returncode, run.finished = run.popen.returncode, time.time()
    return run


def succeeded(run, out="run"):
    """The run, with `dir` its run directory, after checking it exited 0."""
    assert run.returncode == 0, run.stderr
    run.dir = run.cwd / out if out else next((run.cwd / "runs").iterdir())
    return run


def read_metrics(run_dir):
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def without_seconds(rows):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def strict_json(path):
    """The file's JSON, failing on NaN/Infinity literals."""
    return json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(f"{name} literal in {path}"))


def is_png(path):
    return path.read_bytes()[:8] == PNG_SIGNATURE and path.stat().st_size > 10_000


# ----- the end-to-end runs ------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every independent CLI run of this file, started together (2 cores finish them in half the time)."""
    out = ["--out", "run", "--no-progress"]
    started = {
        "moons": start_cli(tmp_path_factory, "tiny", TINY, out),
        "eager": start_cli(tmp_path_factory, "tiny", TINY, ["training.backend=eager", *out]),
        "iris": start_cli(tmp_path_factory, "iris", TINY_IRIS, out),
        # no --out, and overrides on both sides of an option
        "overridden": start_cli(
            tmp_path_factory,
            "tiny",
            TINY,
            ["model.hidden=[8]", "optimizer.lr=1e-3", "--no-progress", "optimizer.name=adam",
             "optimizer.momentum=null", "training.epochs=2", "dataset.noise=0.15"],
        ),
        "evil": start_cli(tmp_path_factory, "evil", 'name: !!python/object/apply:os.system ["touch pwned"]\n', out),
        "help": start_cli(tmp_path_factory, "help", TINY, ["--help"]),
        "diverged": start_cli(tmp_path_factory, "tiny", TINY, ["optimizer.lr=1e30", *out]),
        "sine": start_cli(tmp_path_factory, "sine", TINY_SINE, out),
        "stopping": start_cli(tmp_path_factory, "tiny", TINY, [*STOPPING, *out]),
    }
    return {key: finish(run) for key, run in started.items()}


@pytest.fixture(scope="module")
def moons(runs):
    return succeeded(runs["moons"])


def test_run_exits_0_with_one_final_line_naming_the_run_directory(moons):
    assert moons.stderr == ""
    lines = moons.stdout.splitlines()
    assert len(lines) == 1
    summary = strict_json(moons.dir / "summary.json")
    expected = (
        f"train loss {summary['train_loss']:.4f} acc {summary['train_accuracy']:.3f} | "
        f"test loss {summary['test_loss']:.4f} acc {summary['test_accuracy']:.3f} | "
    )
    assert lines[0].startswith(expected)
    assert re.search(r"\| \d+\.\ds \| run$", lines[0]), lines[0]


def test_run_directory_holds_exactly_the_documented_files(moons):
    names = {p.name for p in moons.dir.iterdir()}
    assert names == {".lock", "config.yaml", "metrics.csv", "summary.json", "loss.png", "decision_boundary.png",
                     "confusion_matrix.png", "model.json"}
    assert is_png(moons.dir / "loss.png")
    assert is_png(moons.dir / "decision_boundary.png") and is_png(moons.dir / "confusion_matrix.png")


def test_metrics_csv_has_the_header_and_one_row_per_epoch(moons):
    lines = (moons.dir / "metrics.csv").read_text().splitlines()
    assert lines[0] == HEADER
    rows = read_metrics(moons.dir)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    for row in rows:
        assert 0 < float(row["train_loss"]) < 10 and 0 < float(row["test_loss"]) < 10
        assert 0 <= float(row["train_accuracy"]) <= 1 and 0 <= float(row["test_accuracy"]) <= 1
        assert float(row["lr"]) == 0.1
        assert float(row["seconds"]) >= 0


def test_summary_json_reports_the_last_epoch_and_completed(moons):
    text = (moons.dir / "summary.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    summary = strict_json(moons.dir / "summary.json")
    assert SUMMARY_KEYS <= set(summary)
    assert summary["status"] == "completed"
    assert summary["epochs"] == 3
    assert summary["n_parameters"] == TINY_PARAMETERS
    last = read_metrics(moons.dir)[-1]
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
        assert summary[key] == float(last[key])
    total = sum(float(r["seconds"]) for r in read_metrics(moons.dir))
    assert summary["seconds"] == pytest.approx(total, rel=1e-9)


def test_config_yaml_is_fully_resolved_and_loadable(moons):
    resolved = load_config(moons.dir / "config.yaml")
    assert resolved == load_config(moons.cwd / "tiny.yaml")
    plain = yaml.safe_load((moons.dir / "config.yaml").read_text())
    assert plain == config_to_dict(resolved)  # every default written out, nothing left implicit
    assert plain["seed"] == 0
    assert plain["optimizer"]["nesterov"] is False and plain["training"]["backend"] == "compiled"


def test_model_json_reproduces_the_logged_final_accuracy(moons):
    config = load_config(moons.dir / "config.yaml")
    ckpt = load_checkpoint(moons.dir / "model.json")
    model = load_model(moons.dir / "model.json")
    assert [p.data for p in model.parameters()] == [p.data for p in ckpt.model.parameters()]
    assert len(model.parameters()) == TINY_PARAMETERS
    assert ckpt.classes == [0, 1]
    raw = prepare_data(dataclasses.replace(config.dataset, standardize=False), config.seed)  # the same split, unscaled

    def accuracy(X, y):
        X = (X - np.array(ckpt.mean)) / np.array(ckpt.scale)
        predicted = [int(np.argmax([v.data for v in model(x)])) for x in X.tolist()]
        return float(np.mean(np.array(predicted) == y))

    summary = strict_json(moons.dir / "summary.json")
    assert accuracy(raw.X_train, raw.y_train) == summary["train_accuracy"]
    assert accuracy(raw.X_test, raw.y_test) == summary["test_accuracy"]


# ----- reproducibility -------------------------------------------------------------------


@pytest.fixture(scope="module")
def rerun(moons, tmp_path_factory):
    """The resolved config.yaml of the moons run, run again from another directory."""
    cwd = tmp_path_factory.mktemp("rerun")
    proc = cli([str(moons.dir / "config.yaml"), "--out", "again", "--no-progress"], cwd)
    assert proc.returncode == 0, proc.stderr
    return SimpleNamespace(dir=cwd / "again")


def test_rerunning_config_yaml_gives_identical_metrics_apart_from_seconds(moons, rerun):
    assert without_seconds(read_metrics(rerun.dir)) == without_seconds(read_metrics(moons.dir))


def test_rerunning_config_yaml_gives_a_byte_identical_model_json(moons, rerun):
    assert (rerun.dir / "model.json").read_bytes() == (moons.dir / "model.json").read_bytes()
    assert (rerun.dir / "config.yaml").read_bytes() == (moons.dir / "config.yaml").read_bytes()


def test_eager_and_compiled_backends_give_the_same_metrics(moons, runs):
    eager = succeeded(runs["eager"])
    assert eager.stderr == ""  # no fallback note: eager was asked for
    assert load_config(eager.dir / "config.yaml").training.backend == "eager"
    eager_rows, compiled_rows = read_metrics(eager.dir), read_metrics(moons.dir)
    assert len(eager_rows) == len(compiled_rows) == 3
    for e, c in zip(eager_rows, compiled_rows):
        for key in HEADER.split(",")[:-1]:
            assert abs(float(e[key]) - float(c[key])) <= 1e-9, (key, e, c)


# ----- more than two features ------------------------------------------------------------


def test_more_than_two_features_draw_a_confusion_matrix_instead(runs):
    run_dir = succeeded(runs["iris"]).dir
    names = {p.name for p in run_dir.iterdir()}
    assert names == {".lock", "config.yaml", "metrics.csv", "summary.json", "loss.png", "confusion_matrix.png", "model.json"}
    assert is_png(run_dir / "confusion_matrix.png")
    summary = strict_json(run_dir / "summary.json")
    assert summary["status"] == "completed" and summary["epochs"] == 2
    assert summary["n_parameters"] == (4 + 1) * 4 + (4 + 1) * 3
    assert len(load_checkpoint(run_dir / "model.json").classes) == 3
    assert load_config(run_dir / "config.yaml").name == "iris"  # the default name is the file's stem


# ----- default run directory and overrides ---------------------------------------------


@pytest.fixture(scope="module")
def overridden(runs):
    return succeeded(runs["overridden"], out=None)


def test_default_run_directory_is_runs_name_timestamp(overridden):
    (run_dir,) = (overridden.cwd / "runs").iterdir()  # one run, one directory
    match = re.fullmatch(r"tiny-(\d{8}-\d{6})", run_dir.name)
    assert match, run_dir.name
    stamp = time.mktime(time.strptime(match[1], "%Y%m%d-%H%M%S"))
    assert overridden.started - 1 <= stamp <= overridden.finished + 1
    assert overridden.stdout.rstrip("\n").endswith(str(Path("runs") / run_dir.name))
    assert (run_dir / "model.json").is_file()


def test_overrides_before_and_after_options_all_reach_the_resolved_config(overridden):
    run_dir = overridden.dir
    plain = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert plain["model"]["hidden"] == [8]
    assert plain["optimizer"]["lr"] == 0.001 and isinstance(plain["optimizer"]["lr"], float)
    assert plain["optimizer"]["name"] == "adam"
    assert "momentum" not in plain["optimizer"] and "nesterov" not in plain["optimizer"]
    assert plain["optimizer"]["betas"] == [0.9, 0.999]
    assert plain["training"]["epochs"] == 2
    assert plain["dataset"]["noise"] == 0.15
    assert [float(r["lr"]) for r in read_metrics(run_dir)] == [0.001, 0.001]
    assert strict_json(run_dir / "summary.json")["n_parameters"] == (2 + 1) * 8 + (8 + 1) * 2


def testnew_run_dir_adds_a_counter_when_the_name_is_taken(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(rundir.time, "strftime", lambda fmt, *args: "20240102-030405")
    made = [train.new_run_dir("tiny", None) for _ in range(3)]
    base = "runs/tiny-20240102-030405"
    assert made == [Path(base), Path(base + "-1"), Path(base + "-2")]
    assert all(p.is_dir() for p in made)


def testnew_run_dir_uses_an_empty_out_directory_and_creates_parents(tmp_path):
    (tmp_path / "empty").mkdir()
    assert train.new_run_dir("tiny", str(tmp_path / "empty")) == tmp_path / "empty"
    assert train.new_run_dir("tiny", str(tmp_path / "a" / "b")).is_dir()


# ----- the command line itself ---------------------------------------------------------


def test_help_exits_0_and_lists_the_options_and_the_config_reference(runs):
    proc = runs["help"]
    assert proc.returncode == 0
    for text in ("CONFIG", "KEY=VALUE", "--out", "--no-progress", "--resume", "--help", "--print-config",
                 "--list-configs", "--show-config", "--help-config", "--animate", "--version", "examples:"):
        assert text in proc.stdout, text
    assert "docs/" not in proc.stdout and "configs/" not in proc.stdout  # nothing a wheel user lacks
    assert proc.stdout.rstrip().endswith("python -m micronet.train --help-config")
    assert proc.stderr == ""
    assert [p.name for p in proc.cwd.iterdir()] == ["help.yaml"]


def test_yaml_python_tag_is_refused_by_the_real_cli_and_runs_nothing(runs, tmp_path):
    evil = runs["evil"]
    payload = (evil.cwd / "evil.yaml").read_text()
    assert "os.system" in payload
    control = tmp_path / "control"
    control.mkdir()
    yaml.unsafe_load(payload.replace("touch pwned", f"touch {control / 'pwned'}"))  # the payload is live
    assert (control / "pwned").exists()
    assert_refused(evil.returncode, evil.stdout, evil.stderr, ["evil.yaml: YAML tag", "not allowed"])
    assert [p.name for p in evil.cwd.iterdir()] == ["evil.yaml"]  # no pwned, no --out directory


def test_diverged_run_exits_3_and_keeps_a_readable_summary(runs):
    run = runs["diverged"]
    assert run.returncode == 3, run.stderr
    assert "Traceback" not in run.stderr
    assert run.stderr.splitlines()[-1].startswith("error: training diverged at epoch ")
    summary = strict_json(run.cwd / "run" / "summary.json")
    assert summary["status"] == "diverged"
    assert summary["epochs"] == len(read_metrics(run.cwd / "run"))


def test_diverged_run_reports_one_line_on_stderr(runs):
    lines = runs["diverged"].stderr.splitlines()
    assert len(lines) == 1, lines


# ----- the catalogue of bad configs ------------------------------------------------------

C = "run.yaml"  # written with TINY unless a case gives its own text

# (id, text of run.yaml or None for TINY, argv, fragments the one-line message must contain)
CATALOGUE = [
    # unknown keys
    ("unknown-top-level-key", "sed: 1\n", [C], ["unknown key 'sed'", "did you mean 'seed'?"]),
    ("unknown-nested-key", "optimizer: {lrr: 0.1}\n", [C],
     ["unknown key 'optimizer.lrr'", "did you mean 'optimizer.lr'?"]),
    ("unknown-key-lists-valid-ones", "model: {zzz: 1}\n", [C],
     ["unknown key 'model.zzz'", "valid: hidden, activation"]),
    ("unknown-override-key", None, [C, "optimizer.lrr=0.1"],
     ["unknown key 'optimizer.lrr'", "did you mean 'optimizer.lr'?"]),
    ("override-into-a-scalar", None, [C, "seed.x=1"], ["seed.x=1", "'seed' is not a section"]),
    # wrong types
    ("bool-for-a-number", None, [C, "optimizer.lr=true"], ["optimizer.lr must be a finite number > 0, got True"]),
    ("float-for-an-int", None, [C, "training.epochs=2.5"], ["training.epochs must be an int >= 1, got 2.5"]),
    ("string-for-a-list", None, [C, "model.hidden=abc"], ["model.hidden must be a list of ints >= 1", "'abc'"]),
    ("number-for-a-bool", None, [C, "training.shuffle=1"], ["training.shuffle must be true or false, got 1"]),
    ("list-for-an-int", None, [C, "training.epochs=[3]"], ["training.epochs must be an int >= 1, got [3]"]),
    ("non-numeric-string-for-a-float", None, [C, "optimizer.lr=1e-3x"], ["optimizer.lr", "'1e-3x'"]),
    ("bad-list-element", None, [C, "model.hidden=[8,0]"], ["model.hidden[1] must be an int >= 1, got 0"]),
    ("bad-run-name", None, [C, "name=a/b"], ["name must be", "'a/b'"]),
    # out of range and non-finite
    ("negative-lr", None, [C, "optimizer.lr=-0.1"], ["optimizer.lr must be a finite number > 0, got -0.1"]),
    ("infinite-lr", "optimizer: {lr: .inf}\n", [C], ["optimizer.lr must be a finite number > 0, got inf"]),
    ("nan-noise", "dataset: {name: moons, noise: .nan}\n", [C],
     ["dataset.noise must be a finite number >= 0, got nan"]),
    ("momentum-of-one", None, [C, "optimizer.momentum=1.0"], ["optimizer.momentum", "in [0, 1)", "got 1.0"]),
    ("seed-too-large", None, [C, "seed=4294967296"], ["seed must be an int in [0, 4294967295], got 4294967296"]),
    ("batch-size-zero", None, [C, "training.batch_size=0"],
     ["training.batch_size must be an int >= 1 or 'full', got 0"]),
    ("epochs-zero", None, [C, "training.epochs=0"], ["training.epochs must be an int >= 1, got 0"]),
    ("test-size-one", None, [C, "dataset.test_size=1.0"],
     ["dataset.test_size must be a finite number in (0, 1), got 1.0"]),
    ("adam-betas-too-short", None, [C, "optimizer.name=adam", "optimizer.momentum=null", "optimizer.betas=[0.9]"],
     ["optimizer.betas must be a pair (beta1, beta2) of finite numbers", "[0.9]"]),
    # unknown names, listing the valid ones
    ("unknown-dataset", None, [C, "dataset.name=mons"],
     ["dataset.name must be one of moons, circles, blobs", "got 'mons'", "did you mean 'moons'?"]),
    ("unknown-activation", None, [C, "model.activation=gelu"],
     ["model.activation must be one of relu, tanh, sigmoid", "'gelu'"]),
    ("unknown-loss", None, [C, "loss=nll"], ["loss must be one of cross_entropy, hinge, mse", "'nll'"]),
    ("unknown-optimizer", None, [C, "optimizer.name=rmsprop"],
     ["optimizer.name must be one of sgd, adam", "'rmsprop'"]),
    ("unknown-schedule", None, [C, "optimizer.schedule.name=cyclic"],
     ["optimizer.schedule.name must be one of constant, step, exponential, cosine, linear, invscaling", "'cyclic'"]),
    # the shape of the file
    ("section-not-a-mapping", "training: 5\n", [C], ["training must be a mapping", "5"]),
    ("file-not-a-mapping", "- a\n- b\n", [C], ["config 'run.yaml' is a list, not a mapping"]),
    ("empty-file", "", [C], ["config 'run.yaml' is empty"]),
    ("duplicate-key", "seed: 1\nseed: 2\n", [C], ["run.yaml: duplicate key 'seed' at line 2, column 1"]),
    ("malformed-yaml-unclosed-brace", "dataset: {name: moons\n", [C],
     ["run.yaml: malformed YAML", "at line 2, column 1"]),
    ("malformed-yaml-mapping-value", "seed: 1\n  x: 2\n", [C], ["run.yaml: malformed YAML", "at line 2, column 4"]),
    ("python-tag", 'name: !!python/object/apply:os.system ["touch pwned"]\n', [C],
     ["YAML tag", "python/object/apply:os.system", "not allowed", "line 1, column 7"]),
    ("not-utf8", b"name: \xff\xfe\n", [C], ["cannot read config 'run.yaml'"]),
    # the config path
    ("missing-config", None, ["nope.yaml"], ["config file not found: 'nope.yaml'"]),
    ("directory-as-config", None, ["a_dir"], ["config path 'a_dir' is a directory"]),
    # malformed overrides
    ("override-without-equals", None, [C, "seed"], ["malformed override 'seed'", "KEY=VALUE"]),
    ("override-with-empty-key", None, [C, "=3"], ["malformed override '=3'", "dotted path"]),
    ("override-with-empty-part", None, [C, "optimizer..lr=3"], ["malformed override 'optimizer..lr=3'"]),
    ("override-with-no-value", None, [C, "seed="], ["malformed override 'seed='", "seed=null"]),
    ("override-malformed-yaml", None, [C, "model.hidden=[8"], ["override 'model.hidden=[8'", "malformed YAML"]),
    # options that do not apply
    ("dataset-option-of-another-dataset", None, [C, "dataset.centers=3"],
     ["dataset.centers does not apply to dataset 'moons'", "it takes: n_samples, noise"]),
    ("sgd-option-left-for-adam", None, [C, "optimizer.name=adam"],
     ["optimizer.momentum does not apply to optimizer 'adam'", "it takes: lr, betas, eps, weight_decay"]),
    ("schedule-option-of-another-schedule", None, [C, "optimizer.schedule.gamma=0.5"],
     ["optimizer.schedule.gamma does not apply to schedule 'constant'"]),
    ("step-schedule-without-step-size", None, [C, "optimizer.schedule.name=step"],
     ["optimizer.schedule.step_size is required for schedule 'step'"]),
    ("nesterov-without-momentum", None, [C, "optimizer.nesterov=true", "optimizer.momentum=0"],
     ["optimizer.nesterov needs optimizer.momentum > 0"]),
    # problems only the data reveals
    ("csv-file-missing", None, [C, "dataset={name: csv, path: nope.csv, target: label}"],
     ["dataset.path 'nope.csv'", "not found"]),
    ("too-few-samples-for-the-split", None, [C, "dataset.n_samples=3"], ["dataset.n_samples=3"]),
    # the command line
    ("no-config", None, [], ["give a config (a YAML file or a shipped name such as moons)"]),
    ("resume-with-a-config", None, ["--resume", "a_dir", C], ["--resume RUN_DIR takes no config"]),
    ("out-is-a-non-empty-directory", None, [C, "--out", "full"], ["--out 'full' is not empty"]),
    ("out-is-an-existing-file", None, [C, "--out", "taken.txt"], ["--out 'taken.txt' is an existing file"]),
    ("unknown-option", None, [C, "--bogus"], ["unrecognized arguments: --bogus"]),
]
CASE_IDS = [case[0] for case in CATALOGUE]


def stage(cwd, text):
    """The files a catalogue case may point at: run.yaml, an empty dir, a used --out dir, a plain file."""
    text = TINY if text is None else text
    (cwd / C).write_bytes(text if isinstance(text, bytes) else text.encode())
    (cwd / "a_dir").mkdir()
    (cwd / "full").mkdir()
    (cwd / "full" / "keep.txt").write_text("an earlier run\n")
    (cwd / "taken.txt").write_text("not a directory\n")


def snapshot(root):
    """Every path under `root` with its bytes (None for a directory)."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def assert_refused(status, stdout, stderr, fragments):
    """Exit 2, nothing on stdout, one `error:` line on stderr holding every fragment, no traceback.

    A mistake in the command line itself (rather than in the config) is
    preceded by argparse's usage line, as command-line tools do.
    """
    assert "Traceback" not in stderr, stderr
    assert status == 2, stderr
    assert stdout == ""
    lines = stderr.splitlines()
    if lines[0].startswith("usage: "):
        lines = [line for line in lines if not line.startswith((" ", "usage: "))]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"


def test_catalogue_is_large_and_ids_are_unique():
    assert len(CATALOGUE) >= 30
    assert len(set(CASE_IDS)) == len(CASE_IDS)


@pytest.mark.parametrize("with_out", [False, True], ids=["default-dir", "with-out"])
@pytest.mark.parametrize("case", CATALOGUE, ids=CASE_IDS)
def test_bad_config_is_refused_in_one_line_before_anything_is_written(case, with_out, tmp_path, monkeypatch, capfd):
    _, text, argv, fragments = case
    stage(tmp_path, text)
    monkeypatch.chdir(tmp_path)
    if with_out and "--out" not in argv:
        argv = [*argv, "--out", "out"]
    before = snapshot(tmp_path)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        status = main([*argv, "--no-progress"])
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
    out, err = capfd.readouterr()
    assert_refused(status, out, err, fragments)
    assert snapshot(tmp_path) == before  # no runs/, no --out directory, nothing in full/, no pwned
    assert not (tmp_path / "runs").exists() and not (tmp_path / "out").exists()


def test_out_below_an_existing_file_is_a_usage_error(tmp_path, monkeypatch, capfd):
    stage(tmp_path, None)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    status = main([C, "--out", "taken.txt/run", "--no-progress"])
    out, err = capfd.readouterr()
    assert snapshot(tmp_path) == before
    assert_refused(status, out, err, ["--out 'taken.txt/run'"])


@pytest.fixture(scope="module")
def catalogue_through_the_cli(tmp_path_factory):
    """Each catalogue case run by `python -m micronet.train` in its own directory, a few at a time."""

    def one(case):
        case_id, text, argv, _ = case
        cwd = tmp_path_factory.mktemp(case_id)
        stage(cwd, text)
        before = snapshot(cwd)
        proc = cli([*argv, "--no-progress"], cwd)
        return proc, before, snapshot(cwd)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return dict(zip(CASE_IDS, pool.map(one, CATALOGUE)))


@pytest.mark.slow
@pytest.mark.parametrize("case", CATALOGUE, ids=CASE_IDS)
def test_bad_config_is_refused_by_the_real_cli(case, catalogue_through_the_cli):
    proc, before, after = catalogue_through_the_cli[case[0]]
    assert_refused(proc.returncode, proc.stdout, proc.stderr, case[3])
    assert after == before


# ----- the training loop, without a subprocess -------------------------------------------


def tiny_training(**optimizer):
    """Config, data, state and compiled executor for 30 training samples in batches of 10 (3 per epoch)."""
    config = parse_config(
        {
            "dataset": {"name": "moons", "n_samples": 40},
            "model": {"hidden": [4]},
            "optimizer": {"lr": 0.1, **optimizer},
            "training": {"epochs": 5, "batch_size": 10},
        }
    )
    data = prepare_data(config.dataset, config.seed)
    assert len(data.y_train) == 30
    state = new_state(config, data)
    executor = make_executor(state.model, config_loss(config), "compiled", data.feature_count)
    return config, data, state, executor


def test_fit_without_a_stop_request_completes_every_epoch():
    config, data, state, executor = tiny_training()
    seen = []
    status = run_epochs(Plan.from_config(config), data, state, executor, on_epoch=lambda s, row: seen.append(row["epoch"]))
    assert status == "completed"
    assert seen == [1, 2, 3, 4, 5] and state.epoch == 5
    assert [row["epoch"] for row in state.history] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "calls_before_stop, completed",
    [
        (0, 0),  # asked before the first batch: nothing trains
        (3, 1),  # asked before epoch 2's first batch
        (4, 1),  # asked before epoch 2's second batch: the half epoch is not counted
        (6, 2),  # asked before epoch 3's first batch
    ],
)
def test_fit_returns_interrupted_after_the_epochs_finished_before_the_stop(calls_before_stop, completed):
    config, data, state, executor = tiny_training()
    initial = state.model.state_dict()
    calls, seen = [], []

    def should_stop():
        calls.append(None)
        return len(calls) > calls_before_stop

    def on_epoch(state, row):
        seen.append(row["epoch"])

    status = run_epochs(Plan.from_config(config), data, state, executor, on_epoch=on_epoch, should_stop=should_stop)
    assert status == "interrupted"
    assert len(calls) == calls_before_stop + 1  # polled once per batch, stopped at the first True
    assert seen == list(range(1, completed + 1))
    assert state.epoch == completed and len(state.history) == completed
    if calls_before_stop == 0:
        assert state.model.state_dict() == initial


def test_fit_raises_diverged_naming_the_epoch_for_a_huge_learning_rate():
    config, data, state, executor = tiny_training(lr=1e30)
    seen = []
    with pytest.raises(Diverged, match=r"training diverged at epoch \d+ .*optimizer\.lr") as info:
        run_epochs(Plan.from_config(config), data, state, executor, on_epoch=lambda s, row: seen.append(row["epoch"]))
    epoch = info.value.epoch
    assert epoch == 2  # seeded: epoch 1 completes, epoch 2's weights overflow
    assert f"epoch {epoch} " in str(info.value)
    assert state.epoch == epoch - 1 and seen == list(range(1, epoch))  # the epochs before it completed


def test_fit_never_records_an_epoch_with_a_non_finite_loss():
    config, data, state, executor = tiny_training(lr=1e30)
    with pytest.raises(Diverged):
        run_epochs(Plan.from_config(config), data, state, executor)
    losses = [row[key] for row in state.history for key in ("train_loss", "test_loss")]
    assert all(math.isfinite(x) for x in losses), state.history


def test_the_shipped_csv_config_trains_on_a_users_file_with_string_labels(tmp_path):
    """configs/csv_iris.yaml: a CSV with a header and a column of species names, run from the repository root."""
    root = Path(__file__).resolve().parents[1]
    result = cli(["configs/csv_iris.yaml", "training.epochs=5", "--out", str(tmp_path / "run"), "--no-progress"], root)
    assert result.returncode == 0, result.stderr
    checkpoint = load_checkpoint(tmp_path / "run" / "model.json")
    assert checkpoint.classes == ["setosa", "versicolor", "virginica"]
    assert (tmp_path / "run" / "confusion_matrix.png").stat().st_size > 10_000


# ----- regression and early stopping through the CLI ------------------------------------------


def test_a_regression_run_writes_its_metrics_plots_and_a_model_in_original_units(runs):
    run = succeeded(runs["sine"])
    assert re.match(r"train loss \S+ r2 \S+ \| test loss \S+ r2 \S+ \| ", run.stdout)
    names = {p.name for p in run.dir.iterdir()}
    assert names == {"config.yaml", "metrics.csv", "summary.json", "loss.png", "predictions.png", "fit.png", "model.json", ".lock"}
    lines = (run.dir / "metrics.csv").read_text().splitlines()
    assert lines[0] == "epoch,train_loss,train_mae,train_r2,test_loss,test_mae,test_r2,lr,seconds"
    summary = strict_json(run.dir / "summary.json")
    last = read_metrics(run.dir)[-1]
    assert summary["test_r2"] == float(last["test_r2"]) and summary["test_mae"] == float(last["test_mae"])
    assert "test_accuracy" not in summary
    # The saved model predicts in the target's units: its MAE on the test split is the logged one.
    config = load_config(run.dir / "config.yaml")
    data = prepare_data(config.dataset, config.seed, "regression")
    predictor = micronet.load(run.dir)
    X_test = data.scaler.inverse_transform(data.X_test)
    y_test = data.target_scaler.inverse_transform(data.y_test)
    assert np.mean(np.abs(predictor.predict(X_test) - y_test)) == pytest.approx(summary["test_mae"], rel=1e-9)


def test_early_stopping_through_the_cli_reports_and_saves_the_best_epoch(runs):
    run = succeeded(runs["stopping"])
    summary = strict_json(run.dir / "summary.json")
    assert summary["stopped_early"] is True and summary["epochs"] < 200
    best = summary["best_epoch"]
    rows = read_metrics(run.dir)
    assert len(rows) == summary["epochs"] == best + 2
    assert float(rows[best - 1]["val_loss"]) == min(float(r["val_loss"]) for r in rows)
    assert summary["test_accuracy"] == float(rows[best - 1]["test_accuracy"])  # the saved model's, not the last
    assert f"stopped early at epoch {summary['epochs']}, best epoch {best}" in run.stdout
    scores = ("loss", "accuracy", "balanced_accuracy", "f1_macro")
    assert list(rows[0]) == ["epoch", *(f"{split}_{name}" for split in ("train", "val", "test") for name in scores),
                             "lr", "seconds"]
    resumed = cli(["--resume", str(run.dir)], run.cwd)
    assert resumed.returncode == 0 and f"already stopped early after {summary['epochs']} epochs" in resumed.stdout


def imbalanced_csv(path, seed=0):
    """191 rows of class 0 and 9 of class 1, the features pure noise: a model can only learn the majority."""
    rng = np.random.default_rng(seed)
    labels = np.array([0] * 191 + [1] * 9)
    rng.shuffle(labels)
    X = rng.normal(size=(200, 2))
    lines = ["x0,x1,label", *(f"{a:.6f},{b:.6f},{c}" for (a, b), c in zip(X, labels))]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_collapsed_classifier_is_named_in_the_summary_and_the_final_line(tmp_path):
    csv_path = imbalanced_csv(tmp_path / "imbalanced.csv")
    config = parse_config({"dataset": {"name": "csv", "path": str(csv_path), "target": "label"},
                           "model": {"hidden": [4]}, "training": {"epochs": 20}})
    (tmp_path / "run").mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no library warning text on the way
        summary = run(config, tmp_path / "run")
    assert summary["test_accuracy"] > 0.9 and summary["test_balanced_accuracy"] == 0.5
    assert summary["collapsed"] == {"predicted_class": "0", "balanced_accuracy": 0.5,
                                    "advice": "the classes may be imbalanced: try training.class_weight: balanced"}
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["collapsed"] == summary["collapsed"]
    per_class = summary["test_per_class"]
    assert per_class["1"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0} and per_class["0"]["recall"] == 1.0
    line = _final_line(summary, "classification", tmp_path / "run")
    assert ("warning: the model predicts class 0 for every test sample (balanced accuracy 0.500); "
            "the classes may be imbalanced: try training.class_weight: balanced") in line


def test_a_classifier_that_predicts_several_classes_is_not_called_collapsed(tmp_path):
    config = parse_config({"dataset": {"name": "moons", "n_samples": 100}, "model": {"hidden": [8]},
                           "training": {"epochs": 30}})
    (tmp_path / "run").mkdir()
    summary = run(config, tmp_path / "run")
    assert "collapsed" not in summary and set(summary["test_per_class"]) == {"0", "1"}
    assert summary["test_per_class"]["1"]["f1"] > 0.5
