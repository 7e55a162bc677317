"""Sweeps: the argument grammar, the product, run directories, sweep.csv, sweep.png, failures and exit codes."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import matplotlib.image
import pytest

from micronet import sweep
from micronet.config import ConfigError
from micronet.sweep import _as_number, _run_name, format_table, main, parse_sweep_args, run_sweep
from micronet.train import UsageError

TINY = """\
name: tiny
dataset: {name: moons, n_samples: 60}
model: {hidden: [4]}
training: {epochs: 3, backend: compiled}
"""
RUN_FILES = {"config.yaml", "metrics.csv", "summary.json", "model.json", "loss.png", "decision_boundary.png",
             "confusion_matrix.png"}
CSV_COLUMNS = ["index", "run_dir", "status", "error", "train_loss", "train_accuracy", "train_balanced_accuracy",
               "train_f1_macro", "test_loss", "test_accuracy", "test_balanced_accuracy", "test_f1_macro"]


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ----- the argument grammar -----------------------------------------------------------


@pytest.mark.parametrize(
    "item, values",
    [
        ("optimizer.lr=0.01,0.1", ["0.01", "0.1"]),
        ("optimizer.lr= 0.01 , 0.1 ", ["0.01", "0.1"]),
        ("model.hidden=[16],[32,32]", ["[16]", "[32,32]"]),
        ("model.hidden=[],[[8]]", ["[]", "[[8]]"]),
        (
            "optimizer.schedule={name: step, step_size: 10},{name: constant}",
            ["{name: step, step_size: 10}", "{name: constant}"],
        ),
        ("dataset.path='a,b.csv',\"c,d.csv\"", ["'a,b.csv'", '"c,d.csv"']),
        ('dataset.path="x\\",y",z', ['"x\\",y"', "z"]),
        ("dataset.path='it''s,here',z", ["'it''s,here'", "z"]),
        ("dataset.path=bob's.csv,a.csv", ["bob's.csv", "a.csv"]),
        ('dataset.path=[" a,b", \'c,d\'],e', ['[" a,b", \'c,d\']', "e"]),
        ("optimizer.schedule={name: 'a,b'},{name: step}", ["{name: 'a,b'}", "{name: step}"]),
    ],
)
def test_commas_split_values_only_at_the_top_level(item, values):
    key = item.split("=", 1)[0]
    keys, runs = parse_sweep_args([item])
    assert keys == [key]
    assert runs == [[f"{key}={v}"] for v in values]


def test_one_value_is_a_fixed_override_in_every_run():
    keys, runs = parse_sweep_args(["seed=3", "optimizer.lr=0.1,0.2", "model.hidden=[8,8]"])
    assert keys == ["optimizer.lr"]
    assert runs == [
        ["seed=3", "optimizer.lr=0.1", "model.hidden=[8,8]"],
        ["seed=3", "optimizer.lr=0.2", "model.hidden=[8,8]"],
    ]


def test_runs_are_the_product_with_the_last_item_varying_fastest():
    keys, runs = parse_sweep_args(["seed=1,2", "optimizer.lr=0.1,0.2,0.3"])
    assert keys == ["seed", "optimizer.lr"]
    assert [" ".join(r) for r in runs] == [
        f"seed={s} optimizer.lr={lr}" for s in ("1", "2") for lr in ("0.1", "0.2", "0.3")
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (["optimizer.lr"], "malformed sweep item 'optimizer.lr': expected KEY=V1,V2"),
        (["=0.1,0.2"], "no key before '='"),
        (["optimizer.lr=0.1,,0.2"], "an empty value"),
        (["optimizer.lr=0.1,0.2,"], "an empty value"),
        (["optimizer.lr="], "an empty value"),
        (["model.hidden=[16,[32],[8]"], r"missing a closing '\]'"),
        (["model.hidden=[16]],[8]"], r"unbalanced '\]'"),
        (["model.hidden=[16},[8]"], r"unbalanced '}'"),
        (["dataset.path='a,b"], "missing a closing \"'\""),
        (["seed=1,2", "seed=3"], "seed is given twice"),
        (["seed=1,2,1"], "seed lists '1' twice"),
        (["seed=1", "optimizer.lr=0.1"], "nothing to sweep"),
        ([], "nothing to sweep"),
        ("seed=1,2", "got the string"),
    ],
)
def test_malformed_sweep_items_are_refused(args, message):
    with pytest.raises(UsageError, match=message):
        parse_sweep_args(args)


@pytest.mark.parametrize(
    "index, values, name",
    [
        (3, {"optimizer.lr": "0.05"}, "003-optimizer.lr=0.05"),
        (12, {"seed": "1", "model.hidden": "[32, 32]"}, "012-seed=1_model.hidden=32,32"),
        (0, {"optimizer.schedule": "{name: step, step_size: 10}"}, "000-optimizer.schedule=name-step,step_size-10"),
        (1, {"dataset.path": "data/my file.csv"}, "001-dataset.path=data-myfile.csv"),
        (2, {"model.hidden": "[]"}, "002-model.hidden=_"),
    ],
)
def test_run_directory_names_are_readable_and_safe(index, values, name):
    assert _run_name(index, 3, values) == name
    assert re.fullmatch(r"[A-Za-z0-9._,+=-]+", name)


def test_numbers_are_recognised_for_the_plot_axis():
    assert [_as_number(t) for t in ("1e-3", "0.1", "3", "-2")] == [0.001, 0.1, 3.0, -2.0]
    assert [_as_number(t) for t in ("[16]", "true", "relu", "{name: step}", ".nan")] == [None] * 5


# ----- running a sweep ----------------------------------------------------------------


def test_sweep_writes_a_run_directory_per_point_and_one_csv_row_per_run(config, tmp_path):
    out = tmp_path / "sweep"
    rows = run_sweep(config, ["optimizer.lr=0.05,0.5", "model.hidden=[4],[8,8]", "seed=2"], out_dir=out)

    names = ["000-optimizer.lr=0.05_model.hidden=4", "001-optimizer.lr=0.05_model.hidden=8,8",
             "002-optimizer.lr=0.5_model.hidden=4", "003-optimizer.lr=0.5_model.hidden=8,8"]  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == [*names, "sweep.csv", "sweep.png"]
    for name in names:
        assert RUN_FILES <= {p.name for p in (out / name).iterdir()}
    resolved = (out / names[3] / "config.yaml").read_text()
    assert "lr: 0.5" in resolved and "hidden: [8, 8]" in resolved and "seed: 2" in resolved

    table = read_csv(out / "sweep.csv")
    assert list(table[0]) == [*CSV_COLUMNS[:2], "optimizer.lr", "model.hidden", *CSV_COLUMNS[2:], "seconds", "epochs"]
    assert [(r["index"], r["optimizer.lr"], r["model.hidden"]) for r in table] == [
        ("0", "0.05", "[4]"), ("1", "0.05", "[8,8]"), ("2", "0.5", "[4]"), ("3", "0.5", "[8,8]")
    ]  # fmt: skip
    for row, csv_row, name in zip(rows, table, names):
        summary = json.loads((out / name / "summary.json").read_text())
        assert csv_row["run_dir"] == str(out / name) == row["run_dir"]
        assert csv_row["status"] == row["status"] == summary["status"] == "completed"
        assert csv_row["error"] == ""
        assert csv_row["epochs"] == "3"
        assert float(csv_row["test_accuracy"]) == row["test_accuracy"] == summary["test_accuracy"]
        assert float(csv_row["test_loss"]) == row["test_loss"] == summary["test_loss"]

    # sweep.png: a real picture, two rows of two panels (one row per swept key)
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(out / "sweep.png")
    assert pixels.shape[0] > 600 and pixels.shape[1] > 800
    assert pixels[..., :3].std() > 0.05  # not a blank canvas


def test_a_regression_sweep_reports_r2_and_mae_in_its_csv_table_and_panels(tmp_path, monkeypatch, capsys):
    """`micronet-sweep sine optimizer.lr=0.01,0.1`: the columns and panels come from the regression task's metrics."""
    import matplotlib.figure

    drawn = []

    class RecordedFigure(matplotlib.figure.Figure):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            drawn.append(self)

    monkeypatch.setattr(matplotlib.figure, "Figure", RecordedFigure)
    out = tmp_path / "sweep"
    quick = ["training.epochs=3", "dataset.n_samples=60", "model.hidden=[4]", "optimizer.schedule=constant"]
    assert main(["sine", "optimizer.lr=0.01,0.1", *quick, "--out", str(out), "--no-progress"]) == 0

    table = read_csv(out / "sweep.csv")
    assert list(table[0]) == ["index", "run_dir", "optimizer.lr", "status", "error", "train_loss", "train_mae",
                              "train_r2", "test_loss", "test_mae", "test_r2", "seconds", "epochs"]
    for row in table:
        summary = json.loads((Path(row["run_dir"]) / "summary.json").read_text())
        assert float(row["test_r2"]) == summary["test_r2"] and float(row["test_mae"]) == summary["test_mae"]
    header = capsys.readouterr().out.splitlines()[0].split()
    assert header == "# optimizer.lr status train loss test loss test r2 test mae seconds".split()

    (figure,) = drawn
    panels = figure.axes
    assert [ax.get_title() for ax in panels] == [f"test {m} vs optimizer.lr" for m in ("R²", "MAE", "loss")]
    for ax, column in zip(panels, ("test_r2", "test_mae", "test_loss")):
        line, star = ax.get_lines()  # the runs, and the best one by test_loss (no validation here)
        assert star.get_label() == "best by test_loss"
        assert list(line.get_xdata()) == [0.01, 0.1]
        assert list(line.get_ydata()) == [float(row[column]) for row in table]  # no empty panel
    assert matplotlib.image.imread(out / "sweep.png").shape[1] >= 1600  # three panels side by side


def test_a_diverging_run_is_recorded_and_the_others_complete(config, tmp_path, capsys):
    out = tmp_path / "sweep"
    status = main([str(config), "optimizer.lr=1e200,0.1", "--out", str(out)])
    assert status == 1
    captured = capsys.readouterr()
    assert "error: 1 of 2 runs did not complete: 000-optimizer.lr=1e200 (diverged)" in captured.err
    assert "Traceback" not in captured.err
    table = read_csv(out / "sweep.csv")
    assert [r["status"] for r in table] == ["diverged", "completed"]
    assert table[0]["error"].startswith("training diverged at epoch 1")
    assert "diverged" in captured.out and f"sweep directory: {out}" in captured.out
    assert json.loads((out / "000-optimizer.lr=1e200" / "summary.json").read_text())["status"] == "diverged"


def test_a_run_that_raises_is_recorded_in_the_default_directory(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = run_sweep(config, ["dataset.n_samples=3,60"])
    (sweep_dir,) = (tmp_path / "runs").iterdir()
    assert re.fullmatch(r"sweep-tiny-\d{8}-\d{6}", sweep_dir.name)
    failed, completed = rows
    assert completed["status"] == "completed" and completed["test_accuracy"] is not None
    assert failed["status"] == "failed"
    assert failed["error"].startswith("DataError: ") and "dataset.n_samples=3" in failed["error"]
    assert failed["test_loss"] is None and failed["epochs"] is None
    run_dir = sweep_dir / "000-dataset.n_samples=3"
    assert failed["run_dir"] == str(run_dir.relative_to(tmp_path))
    assert json.loads((run_dir / "summary.json").read_text()) == {"status": "failed", "error": failed["error"]}
    assert "Traceback" in (run_dir / "traceback.txt").read_text()
    assert [r["status"] for r in read_csv(sweep_dir / "sweep.csv")] == ["failed", "completed"]
    assert read_csv(sweep_dir / "sweep.csv")[0]["test_loss"] == ""


def test_parallel_jobs_give_the_same_runs_as_one_job(config, tmp_path):
    """The real CLI in a subprocess with two loky workers."""
    items = ["seed=0,1", "optimizer.lr=0.2"]
    command = [sys.executable, "-m", "micronet.sweep", str(config), *items, "--jobs", "2", "--out", "parallel"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "sweep directory: parallel" in result.stdout and "plot: parallel/sweep.png" in result.stdout
    parallel = read_csv(tmp_path / "parallel" / "sweep.csv")
    serial = run_sweep(config, items, out_dir=tmp_path / "serial", jobs=1)
    assert [r["seed"] for r in parallel] == ["0", "1"]
    assert [float(r["test_loss"]) for r in parallel] == [r["test_loss"] for r in serial]


def test_ctrl_c_keeps_a_sweep_csv_of_what_finished(config, tmp_path, monkeypatch, capsys):
    calls = []

    def fake_run(config, run_dir):  # the first run completes, Ctrl-C lands in the second
        calls.append(run_dir.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return {"status": "completed", "test_accuracy": 1.0, "epochs": 3}

    monkeypatch.setattr("micronet.sweep.run", fake_run)
    out = tmp_path / "sweep"
    assert main([str(config), "seed=0,1,2", "--out", str(out)]) == 130
    assert f"interrupted; sweep.csv and the runs are in {out}" in capsys.readouterr().err
    table = read_csv(out / "sweep.csv")
    assert [r["status"] for r in table] == ["completed", "interrupted", "not run"]
    assert [r["test_accuracy"] for r in table] == ["1.0", "", ""]


# ----- a worker process that dies (kill -9, the OOM killer) -------------------------------

REAL_RUN_POINT = sweep._run_point  # what the stand-ins below call in the loky workers


def point_whose_process_always_dies(index, config, run_dir):
    """Stands in for _run_point in loky workers: seed 1 dies by SIGKILL on every try, like a point the OOM killer takes."""
    if config.seed == 1:
        Path(run_dir).mkdir(exist_ok=True)  # as the real point does first
        os.kill(os.getpid(), signal.SIGKILL)
    return REAL_RUN_POINT(index, config, run_dir)


def point_killed_once_from_outside(index, config, run_dir):
    """Stands in for _run_point: seed 1's first try starts its run, leaves its PID in a marker file and waits to be killed."""
    marker = Path(run_dir).parents[1] / "victim.pid"
    if config.seed == 1 and not marker.exists():
        Path(run_dir).mkdir()  # as the real point does first
        marker.with_suffix(".tmp").write_text(str(os.getpid()))
        marker.with_suffix(".tmp").rename(marker)
        time.sleep(60)  # the test kills this process long before
    return REAL_RUN_POINT(index, config, run_dir)


def models(sweep_dir):
    """{run directory name: model.json bytes} of a sweep's completed runs."""
    return {d.name: (d / "model.json").read_bytes() for d in sweep_dir.iterdir() if (d / "model.json").exists()}


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory):
    """(config, models) of seed=0,1,2,3 run one after another in this process."""
    config = tmp_path_factory.mktemp("undisturbed") / "tiny.yaml"
    config.write_text(TINY)
    run_sweep(config, ["seed=0,1,2,3"], out_dir=config.parent / "sweep")
    return config, models(config.parent / "sweep")


@pytest.mark.slow
def test_a_point_whose_worker_process_dies_is_failed_and_the_others_complete(undisturbed, tmp_path, monkeypatch, capsys):
    config, serial_models = undisturbed
    monkeypatch.setattr("micronet.sweep._run_point", point_whose_process_always_dies)
    out = tmp_path / "sweep"
    assert main([str(config), "seed=0,1,2,3", "--jobs", "2", "--out", str(out)]) == 1

    assert capsys.readouterr().err == "error: 1 of 4 runs did not complete: 001-seed=1 (failed)\n"
    table = read_csv(out / "sweep.csv")
    assert [r["status"] for r in table] == ["completed", "failed", "completed", "completed"]
    died = (
        "TerminatedWorkerError: the worker process running this point died, "
        "and again when it ran alone (exit code SIGKILL(-9))"
    )
    assert table[1]["error"] == died and table[1]["test_loss"] == ""
    assert json.loads((out / "001-seed=1" / "summary.json").read_text()) == {"status": "failed", "error": died}
    # the points that shared the pool with it (run again, alone) give the undisturbed results
    assert models(out) == {name: model for name, model in serial_models.items() if name != "001-seed=1"}
    assert matplotlib.image.imread(out / "sweep.png").shape[0] > 300


@pytest.mark.slow
def test_a_point_killed_once_runs_again_and_completes(undisturbed, tmp_path, monkeypatch):
    config, serial_models = undisturbed
    monkeypatch.setattr("micronet.sweep._run_point", point_killed_once_from_outside)
    marker, killed = tmp_path / "victim.pid", []

    def kill_the_victim():  # what a user's kill -9 does, from outside the sweep
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if marker.exists():
            os.kill(int(marker.read_text()), signal.SIGKILL)
            killed.append(True)

    killer = threading.Thread(target=kill_the_victim)
    killer.start()
    try:
        rows = run_sweep(config, ["seed=0,1,2,3"], out_dir=tmp_path / "sweep", jobs=2)
    finally:
        killer.join()
    assert killed
    assert [r["status"] for r in rows] == ["completed"] * 4
    assert models(tmp_path / "sweep") == serial_models


def test_without_dask_cluster_says_what_to_install(config, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed now raises ImportError
    monkeypatch.chdir(tmp_path)
    assert main([str(config), "seed=0,1", "--cluster", "local:2"]) == 2
    assert capsys.readouterr().err == "error: --cluster needs dask.distributed: pip install 'micronet-nn[cluster]'\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]


def test_format_table_shows_every_run_and_errors():
    metrics = {"train_loss": 0.5, "test_loss": 0.25, "test_accuracy": 0.875, "seconds": 1.5}
    rows = [
        {"index": 0, "seed": "0", "status": "completed", "error": None, **metrics},
        {"index": 1, "seed": "1", "status": "failed", "error": "DataError: " + "x" * 100, **dict.fromkeys(metrics)},
    ]
    lines = format_table(rows, ["seed"]).splitlines()
    assert lines[0].split() == "# seed status train loss test loss test acc seconds error".split()
    assert lines[1].split() == ["0", "0", "completed", "0.5000", "0.2500", "0.875", "1.5"]
    assert lines[2].split()[:7] == ["1", "1", "failed", "-", "-", "-", "-"] and lines[2].endswith("xxx...")


# ----- errors before anything is written ------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["optimizer.lr=0.1,-1"],
            r"^error: run 1 \(optimizer.lr=-1\): optimizer.lr must be a finite number > 0, got -1$",
        ),
        (
            ["seed=0,1", "model.hidden=[4],[0]"],
            r"^error: run 1 \(seed=0 model.hidden=\[0\]\): model.hidden\[0\] must be an int >= 1, got 0$",
        ),
        (["optimizer.lrr=0.1,0.2"], r"^error: run 0 \(optimizer.lrr=0.1\): unknown key 'optimizer.lrr'.*mean"),
        (["optimizer.lr=0.1,0.2", "--jobs", "0"], r"^error: jobs must be a nonzero int"),
        (["optimizer.lr=0.1,0.2", "--backend", "dask"], r"^error: backend 'dask' is not available .*use --cluster$"),
        (["optimizer.lr=0.1,0.1"], r"^error: optimizer.lr lists '0.1' twice$"),
        (["seed=1,2", "optimizer.lrr=0.1"], r"^error: unknown key 'optimizer.lrr' in override"),
        (["seed=3"], r"^error: nothing to sweep"),
        (["seed=1,2", "--jobs", "two"], r"^error: argument --jobs: invalid int value: 'two'$"),
    ],
)
def test_bad_sweeps_exit_2_with_one_line_and_write_nothing(config, tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main([str(config), *args]) == 2
    captured = capsys.readouterr()
    error = [line for line in captured.err.splitlines() if not line.startswith(("usage: ", " "))]  # usage first, if any
    assert len(error) == 1 and re.match(message, error[0]), captured.err
    assert captured.out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]  # no runs/ directory


def test_a_missing_config_and_unusable_out_directories_exit_2(config, tmp_path, capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ") and "error: a config is required" in err
    assert main([str(tmp_path / "nope.yaml"), "seed=1,2"]) == 2
    assert capsys.readouterr().err.startswith("error: config file not found")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    assert main([str(config), "seed=1,2", "--out", str(busy)]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert sorted(p.name for p in busy.iterdir()) == ["keep.txt"]
    assert main([str(config), "seed=1,2", "--out", str(config)]) == 2
    assert "is an existing file" in capsys.readouterr().err
    assert main([str(config), "seed=1,2", "--out", str(config / "below")]) == 2
    assert "cannot be created" in capsys.readouterr().err


def test_debug_reraises_config_errors(config, tmp_path):
    with pytest.raises(ConfigError, match="optimizer.lr must be"):
        main([str(config), "optimizer.lr=0.1,-1", "--out", str(tmp_path / "x"), "--debug"])
    assert not (tmp_path / "x").exists()


def test_help_describes_the_sweep_and_ends_with_examples(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for phrase in ("Cartesian product", "--jobs", "--backend", "--cluster", "local:N", "--out", "--help-config",
                   "model.hidden=[16],[32,32] is two values", "1 if any failed or diverged", "examples:"):  # fmt: skip
        assert phrase in text


# ----- choosing a point: by validation, named -------------------------------------------


def test_a_validating_sweep_ranks_by_val_loss_and_names_the_best_point(config, tmp_path, capsys, monkeypatch):
    import matplotlib.figure

    drawn = []

    class RecordedFigure(matplotlib.figure.Figure):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            drawn.append(self)

    monkeypatch.setattr(matplotlib.figure, "Figure", RecordedFigure)
    out = tmp_path / "sweep"
    assert main([str(config), "optimizer.lr=0.001,1", "training.validation_split=0.25", "training.epochs=10",
                 "--out", str(out), "--no-progress"]) == 0
    table = read_csv(out / "sweep.csv")
    assert {"val_loss", "val_accuracy", "val_balanced_accuracy", "val_f1_macro", "test_accuracy"} <= set(table[0])
    val = {row["optimizer.lr"]: float(row["val_loss"]) for row in table}
    summary = json.loads((Path(table[0]["run_dir"]) / "summary.json").read_text())
    assert float(table[0]["val_loss"]) == summary["val_loss"]
    best = min(val, key=val.get)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:9] == "# optimizer.lr status train loss val loss test loss".split()
    assert [line.split()[1] for line in lines[1:3]] == sorted(val, key=val.get)  # best first
    assert lines[-1].startswith(f"best: run {[r['optimizer.lr'] for r in table].index(best)} (optimizer.lr={best}) "
                                f"with val_loss {val[best]:.4f}")
    assert not any(line.startswith("note:") for line in lines)
    figure = drawn[-1]  # sweep.png is drawn last
    assert figure.axes[0].get_title() == "validation accuracy vs optimizer.lr"
    stars = [line for line in figure.axes[-1].get_lines() if line.get_label() == "best by val_loss"]
    assert len(stars) == 1 and list(stars[0].get_ydata()) == [pytest.approx(val[best])]


def test_select_takes_any_metric_with_its_direction(config, tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main([str(config), "optimizer.lr=0.001,1", "training.validation_split=0.25", "training.epochs=10",
                 "--select", "val_f1_macro", "--out", str(out), "--no-progress"]) == 0
    table = read_csv(out / "sweep.csv")
    f1 = {row["optimizer.lr"]: float(row["val_f1_macro"]) for row in table}
    best = max(f1, key=f1.get)  # higher is better for F1, from the task spec
    lines = capsys.readouterr().out.splitlines()
    assert "val f1" in lines[0] and lines[1].split()[1] == best
    best_dir = Path(next(row["run_dir"] for row in table if row["optimizer.lr"] == best)).name
    assert lines[-1].endswith(f"with val_f1_macro {f1[best]:.3f}, in {best_dir}")


def test_without_validation_the_output_says_the_test_split_ranked_the_runs(config, tmp_path, capsys):
    assert main([str(config), "optimizer.lr=0.01,0.1", "--out", str(tmp_path / "sweep"), "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].startswith("best: run ") and "with test_loss" in lines[-2]
    assert lines[-1] == ("note: the test split ranked these runs, so the best one's test score is optimistic; "
                         "to choose on held-out training data instead, add training.validation_split=0.2 "
                         "(ranked by val_loss)")


def test_a_bad_select_is_one_error_line_listing_the_choices_and_writes_nothing(config, tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main([str(config), "optimizer.lr=0.01,0.1", "training.validation_split=0.25", "--select", "val_r2",
                 "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == (
        "error: --select must be one of val_loss, val_accuracy, val_balanced_accuracy, val_f1_macro, test_loss, "
        "test_accuracy, test_balanced_accuracy, test_f1_macro; got 'val_r2'\n")
    assert not out.exists()
    assert main([str(config), "optimizer.lr=0.01,0.1", "--select", "val_loss", "--out", str(out)]) == 2
    assert capsys.readouterr().err.endswith("got 'val_loss' (val_ needs training.validation_split > 0)\n")


def test_a_regression_sweep_ranks_by_val_r2(tmp_path, capsys):
    quick = ["training.epochs=3", "dataset.n_samples=60", "model.hidden=[4]", "training.validation_split=0.25"]
    assert main(["sine", "optimizer.lr=0.01,0.1", *quick, "--select", "val_r2", "--out", str(tmp_path / "s"),
                 "--no-progress"]) == 0
    table = read_csv(tmp_path / "s" / "sweep.csv")
    r2 = {row["optimizer.lr"]: float(row["val_r2"]) for row in table}
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[1] == max(r2, key=r2.get) and "with val_r2" in lines[-1]
