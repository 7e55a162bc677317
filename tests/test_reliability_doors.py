"""Issue 25, line by line: load, predict, the cluster sweep, the playground and the trainer's
edges hold as the trainer's main door does.

docs/reliability.md states each guarantee and names the tests here that prove
it (`D::`). Real processes run where the promise is about one (signals, a
FIFO, a slow client); the rest goes through the library.
"""

import json
import logging
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from micronet import budget, checkpoint
from micronet.checkpoint import load_checkpoint, load_model, save_model
from micronet.nn import MLP, mlp_layout
from micronet.train import main as train_main

ROOT = Path(__file__).resolve().parent.parent
TINY = {
    "name": "tiny",
    "seed": 7,
    "dataset": {"name": "moons", "n_samples": 60, "noise": 0.2},
    "model": {"hidden": [5], "activation": "tanh"},
    "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
    "training": {"epochs": 3, "batch_size": 8, "checkpoint_seconds": 0},
}


# ----- load, load_state and checkpoints ---------------------------------------------


@pytest.fixture
def saved(tmp_path):
    """A model.json with preprocessing, feature names and a training record: (path, its text)."""
    model = MLP(2, [4, 3], "tanh", seed=1)
    path = save_model(model, tmp_path / "model.json", classes=["a", "b", "c"], mean=[0.5, -1.0], scale=[2.0, 0.25],
                      feature_names=["x  \\ \"quoted\"" + " " * 40 + "spaced", "y"],
                      training={"epoch": 2, "note": "tab\there", "state": [0.1] * 50})
    return path, path.read_text()


def test_mlp_layout_is_the_state_dict_of_the_mlp_it_describes():
    model = MLP(3, [4, 1, 2], "relu", seed=0)
    state = model.state_dict()
    layout = list(mlp_layout(3, [4, 1, 2]))
    assert [name for name, _ in layout] == list(state)
    assert [size for _, size in layout] == [len(v) if isinstance(v, list) else None for v in state.values()]


def test_a_checkpoint_padded_with_whitespace_is_read_in_bounded_memory(saved):
    path, text = saved
    padding = " " * (64 * 2**20)
    body = text.replace(": [", ":" + "\n" * 5000 + " [", 3)  # long runs between tokens, too
    path.write_text(padding + body + padding)
    tracemalloc.start()
    try:
        loaded = load_checkpoint(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20  # a chunk or two, not the 128 MB of spaces
    original = json.loads(text)
    assert loaded.feature_names == original["feature_names"]  # spaces inside strings are kept
    assert loaded.training == original["training"]
    assert loaded.model.state_dict() == original["parameters"]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_squeezing_whitespace_keeps_every_string_across_chunk_boundaries(saved, monkeypatch, chunk):
    path, text = saved
    data = json.loads(text)
    data["training"]["strings"] = ["\\", "\\\\", '\\"', '"' + " " * 20 + '"', " " * 33, "é" + " " * 17 + "\u2028"]
    path.write_text(json.dumps(data, indent=17))  # indentation runs longer than the squeezed length
    monkeypatch.setattr(checkpoint, "_CHUNK", chunk)
    assert load_checkpoint(path).training == data["training"]


def test_a_checkpoint_beyond_the_size_cap_is_refused_while_reading(saved, monkeypatch):
    path, text = saved
    monkeypatch.setattr(checkpoint, "MAX_CONTENT_BYTES", len(text) // 2)
    with pytest.raises(ValueError, match=r"model.json is not a valid model file: it holds over [0-9,]+ bytes of "
                                         r"JSON, more than a model within micronet's budget of 10,000,000"):
        load_model(path)
    monkeypatch.setattr(checkpoint, "MAX_FILE_BYTES", 100)
    with pytest.raises(ValueError, match=r"is [0-9,]+ bytes, over the limit of 100"):
        load_model(path)


def test_a_checkpoint_too_big_for_the_memory_available_is_refused_before_parsing(saved, monkeypatch):
    path, _ = saved
    monkeypatch.setattr(budget, "available_memory", lambda: 10_000)
    monkeypatch.setattr(json, "loads", lambda *a, **k: pytest.fail("parsed"))
    with pytest.raises(ValueError, match=r"reading [0-9,]+ bytes of JSON needs about .* of memory, over 50% of the "
                                         r"9.8 KB available"):
        load_model(path)


def _never_built(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("an MLP was built")

    monkeypatch.setattr(checkpoint, "MLP", refuse)


def _forged(path, nin, nouts, rename=None):
    """A self-consistent model.json for MLP(nin, nouts) (names renamed by `rename`), written without building it."""
    params = {(rename or str)(name): 0.5 if size is None else [0.25] * size for name, size in mlp_layout(nin, nouts)}
    record = {"format": "micronet-model", "version": 2, "task": "classification",
              "architecture": {"type": "MLP", "nin": nin, "nouts": nouts, "activation": "relu"},
              "parameters": params, "classes": None, "preprocessing": None, "target_preprocessing": None,
              "feature_names": None, "training": None}
    path.write_text(json.dumps(record))
    return path


def test_a_model_over_the_parameter_budget_is_refused_before_building(tmp_path, monkeypatch):
    path = _forged(tmp_path / "model.json", 3, [20, 2])  # 122 parameters
    monkeypatch.setattr(budget, "MAX_PARAMETERS", 121)
    _never_built(monkeypatch)
    with pytest.raises(ValueError, match=r"the architecture \(nin 3, 2 layers\) has 122 parameters, over "
                                         r"micronet's budget of 121"):
        load_model(path)
    with pytest.raises(ValueError, match=r"has 122 parameters, over micronet's budget of 121"):
        checkpoint.load_state(MLP(3, [20, 2], seed=0), path)


def test_a_model_over_the_memory_budget_is_refused_before_building(tmp_path, monkeypatch):
    path = _forged(tmp_path / "model.json", 3, [20, 2])
    monkeypatch.setattr(budget, "available_memory", lambda: 60_000)  # the text fits; 122 * 400 bytes do not
    _never_built(monkeypatch)
    with pytest.raises(ValueError, match=r"building 122 parameters needs about 47.7 KB of memory, over 50% of the "
                                         r"58.6 KB available"):
        load_model(path)


@pytest.mark.parametrize("rename, message", [
    (lambda n: n.replace("layers.1.neurons.0.w", "layers.1.neurons.9.w"), r"no entry 'layers.1.neurons.0.w'"),
    (lambda n: n.replace("neurons", "units"), r"no entry 'layers.0.neurons.0.w'"),
    (lambda n: n.replace("layers.1.", "layers.01."), r"no entry 'layers.1.neurons.0.w'"),
])
def test_parameter_names_are_checked_against_the_architecture_before_building(tmp_path, monkeypatch, rename,
                                                                               message):
    path = _forged(tmp_path / "model.json", 3, [4, 2], rename)
    _never_built(monkeypatch)
    with pytest.raises(ValueError, match=rf"parameters do not match the architecture: {message}"):
        load_model(path)


def test_parameter_shapes_and_extra_entries_are_checked_before_building(tmp_path, monkeypatch):
    path = _forged(tmp_path / "model.json", 3, [4, 2])
    data = json.loads(path.read_text())
    _never_built(monkeypatch)
    w, b = data["parameters"]["layers.0.neurons.0.w"], data["parameters"]["layers.0.neurons.0.b"]
    data["parameters"]["layers.0.neurons.0.w"], data["parameters"]["layers.0.neurons.0.b"] = w[:-1], [b, 0.0]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"'layers.0.neurons.0.w' must be a list of 3 numbers, got a list of 2"):
        load_model(path)
    data["parameters"]["layers.0.neurons.0.w"], data["parameters"]["layers.0.neurons.0.b"] = w, b
    data["parameters"]["layers.7.extra"] = []  # adds no parameter, so the count agrees
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"parameters do not match the architecture: unexpected entry 'layers.7.extra'"):
        load_model(path)


def test_a_version_1_file_claiming_regression_is_refused(saved):
    path, text = saved
    data = json.loads(text)
    version_1 = {key: data[key] for key in ("format", "architecture", "parameters", "classes", "preprocessing")}
    version_1["version"] = 1
    path.write_text(json.dumps(version_1))
    assert load_checkpoint(path).task == "classification"  # version 1 as written: a classifier
    path.write_text(json.dumps({**version_1, "task": "regression", "classes": None}))
    with pytest.raises(ValueError, match=r"version 1 files hold classifiers only, but this one says task "
                                         r"'regression'"):
        load_checkpoint(path)


# ----- the trainer ------------------------------------------------------------------


def _train(args, cwd, **kwargs):
    return subprocess.run([sys.executable, "-m", "micronet.train", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, **kwargs)


def test_ctrl_c_while_the_data_loads_is_noted_and_ends_the_start(tmp_path, monkeypatch, capsys):
    """While imports run inside the data loading, Ctrl-C only sets a flag: nothing can swallow it."""
    from micronet import train

    real = train.load_run_data

    def interrupted(config):
        os.kill(os.getpid(), signal.SIGINT)  # the handler runs at once: a flag, not a KeyboardInterrupt
        return real(config)

    monkeypatch.setattr(train, "load_run_data", interrupted)
    previous = signal.getsignal(signal.SIGINT)
    try:
        status = train_main(["moons", "training.epochs=1", "--out", str(tmp_path / "run"), "--no-progress"])
    finally:
        signal.signal(signal.SIGINT, previous)
    assert status == 130
    assert capsys.readouterr().err == "interrupted while starting; nothing was written\n"
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_ctrl_c_at_any_moment_of_the_start_exits_130(tmp_path):
    """Never death by SIGINT (-2) after the error line, nor a swallowed interrupt and exit 0.

    The delays start once Python itself has started and imported the package (measured here, as the
    machine's load changes it): before that no handler of micronet's can exist yet.
    """
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import micronet.commands"], check=True)
    python_start = time.perf_counter() - started
    statuses = []
    for i, delay in enumerate([0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7, 1.0]):
        delay += python_start
        process = subprocess.Popen([sys.executable, "-m", "micronet.train", str(ROOT / "configs" / "moons.yaml"),
                                    "--out", f"run{i}", "--no-progress"], cwd=tmp_path, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
        statuses.append((delay, process.returncode, err.strip().splitlines()[-1:]))
    assert all(status == 130 for _, status, _ in statuses), statuses
    assert all(last and last[0].startswith(("interrupted", "resume with")) for _, _, last in statuses), statuses


@pytest.mark.slow
def test_out_empty_is_refused_naming_it(tmp_path):
    result = _train(["moons", "training.epochs=1", "--out", ""], tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "error: --out '' is an empty path; give a directory name, or leave out --out for runs/<name>-<time>")
    assert list(tmp_path.iterdir()) == []


def test_out_at_a_symlink_is_refused_and_its_target_untouched(tmp_path, capsys):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    (tmp_path / "dangling").symlink_to(tmp_path / "missing")
    for name in ("link", "dangling"):
        assert train_main(["moons", "training.epochs=1", "--out", str(tmp_path / name), "--no-progress"]) == 2
        assert f"--out '{tmp_path / name}' is a symbolic link" in capsys.readouterr().err
        assert (tmp_path / name).is_symlink()
    assert list(target.iterdir()) == [] and not (tmp_path / "missing").exists()


def test_out_at_a_special_file_is_refused_and_never_replaced(tmp_path, capsys):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for out in (fifo, Path("/dev/null")):
        assert train_main(["moons", "training.epochs=1", "--out", str(out), "--no-progress"]) == 2
        assert capsys.readouterr().err == f"error: --out '{out}' is a special file (FIFO, socket or device), " \
                                          "not a directory\n"
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and stat.S_ISCHR(os.lstat("/dev/null").st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo"]


# ----- micronet-predict ----------------------------------------------------------------


@pytest.fixture(scope="module")
def moons_run(tmp_path_factory):
    """A trained moons run (feature names unknown: two columns under any names)."""
    run_dir = tmp_path_factory.mktemp("predict") / "run"
    assert train_main(["moons", "training.epochs=2", "--out", str(run_dir), "--no-progress"]) == 0
    return run_dir


@pytest.fixture(scope="module")
def numeric_header_run(tmp_path_factory):
    """A run trained on a CSV whose header is `1,2,3` (label column `3`)."""
    folder = tmp_path_factory.mktemp("numeric")
    rng = np.random.default_rng(0)
    rows = [f"{a!r},{b!r},{int(a + b > 0)}" for a, b in rng.standard_normal((40, 2)).tolist()]
    (folder / "data.csv").write_text("1,2,3\n" + "\n".join(rows) + "\n")
    assert train_main(["dataset.name=csv", f"dataset.path={folder / 'data.csv'}", "dataset.target='3'",
                       "training.epochs=1", "--out", str(folder / "run"), "--no-progress"]) == 0
    return folder


def predict_cli(run_dir, csv_path, *more):
    from micronet.predict import main as predict_main

    return predict_main([str(run_dir), str(csv_path), *more])


@pytest.mark.parametrize("cell", ["5_1", "١٢", "１２", "0x1A", "1 000", "+-1", "1e5e3"])
def test_predict_refuses_a_cell_the_trainer_refuses(tmp_path, moons_run, capsys, cell):
    (tmp_path / "x.csv").write_text(f"x0,x1\n0.5,1\n0.25,{cell}\n")
    assert predict_cli(moons_run, tmp_path / "x.csv") == 2
    out, err = capsys.readouterr()
    assert err == f"error: {tmp_path / 'x.csv'}: column 'x1' at line 3 is not a number: {cell!r}\n"
    assert out == ""  # nothing of the good first row either


def test_predict_refuses_a_duplicated_feature_column(tmp_path, numeric_header_run, moons_run, capsys):
    (tmp_path / "x.csv").write_text("x0,x0\n0.5,1\n")
    assert predict_cli(moons_run, tmp_path / "x.csv") == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'x.csv'} has duplicate column names: x0; each column " \
                                      "needs its own name\n"
    (tmp_path / "y.csv").write_text("2,1,1\n0.5,1,7\n")  # named columns: the first '1' was used silently
    assert predict_cli(numeric_header_run / "run", tmp_path / "y.csv") == 2
    assert "has duplicate column names: 1" in capsys.readouterr().err


def test_predict_reads_regular_files_only_and_at_once(tmp_path, moons_run, capsys, deadline):
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero"), tmp_path):
        assert predict_cli(moons_run, path) == 2
        assert "not a regular file" in capsys.readouterr().err


def test_a_numeric_header_that_names_the_run_s_features_is_a_header(numeric_header_run, capsys):
    data = numeric_header_run / "data.csv"
    assert predict_cli(numeric_header_run / "run", data) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "prediction,proba_0,proba_1" and len(out) == 41


def test_a_numeric_first_row_is_data_unless_it_names_the_features(tmp_path, numeric_header_run, moons_run, capsys):
    (tmp_path / "pandas.csv").write_text("0,1\n0.5,1\n-1,0.25\n")  # pandas' header for an unnamed array
    assert predict_cli(moons_run, tmp_path / "pandas.csv") == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    (tmp_path / "data.csv").write_text("0.5,1\n-1,0.25\n")  # no header at all
    assert predict_cli(moons_run, tmp_path / "data.csv") == 2
    assert "the first row looks like data; add a header row" in capsys.readouterr().err
    (tmp_path / "other.csv").write_text("1,5\n0.5,1\n")  # numbers that are not the run's feature names
    assert predict_cli(numeric_header_run / "run", tmp_path / "other.csv") == 2
    assert "the first row looks like data; add a header row" in capsys.readouterr().err


def test_a_prediction_that_is_not_finite_is_an_error_naming_the_line(tmp_path, moons_run, capsys):
    (tmp_path / "x.csv").write_text("x0,x1\n0.5,1\n\n1e308,-1e308\n")
    assert predict_cli(moons_run, tmp_path / "x.csv", "--out", str(tmp_path / "p.csv")) == 2
    out, err = capsys.readouterr()
    assert err.startswith(f"error: {tmp_path / 'x.csv'}: line 4 gives a prediction that is not finite (")
    assert err.endswith("the features are too large for this model (its arithmetic leaves the float range)\n")
    assert out == "" and not (tmp_path / "p.csv").exists()


def test_the_library_raises_rather_than_return_nan(moons_run):
    import micronet

    predictor = micronet.load(moons_run)
    huge = np.array([[0.5, 1.0], [1e308, -1e308]])
    for method in (predictor.predict, predictor.predict_proba, predictor.decision_function,
                   lambda X: micronet.predict(predictor.model, X), lambda X: micronet.predict_proba(predictor.model, X)):
        with pytest.raises(ValueError, match=r"the model's outputs for row 1 of X are not finite \(.*\): the features "
                                             r"are too large for this model"):
            method(huge)
    assert np.isfinite(predictor.predict_proba(huge[:1])).all()


def test_predictions_are_streamed_in_chunks_and_equal_the_whole_batch(tmp_path, moons_run, monkeypatch, capsys):
    from micronet import predict

    rng = np.random.default_rng(3)
    X = rng.standard_normal((1000, 2))
    lines = ["x1,x0"] + [f" {b!r} ,{a!r}" if i % 7 == 0 else f"{b!r},{a!r}" for i, (a, b) in enumerate(X.tolist())]
    lines.insert(500, "")  # a blank line mid-file
    (tmp_path / "x.csv").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(predict, "CHUNK_ROWS", 64)
    chunks = list(predict.feature_chunks(tmp_path / "x.csv", None, 2))
    assert [start for start, _ in chunks][:3] == [0, 64, 128] and len(chunks) == 16
    assert np.array_equal(np.vstack([c for _, c in chunks]), X[:, ::-1])
    assert predict_cli(moons_run, tmp_path / "x.csv", "--out", str(tmp_path / "p.csv")) == 0
    whole = predict.predictions_csv(predict.load(moons_run), X[:, ::-1])
    assert (tmp_path / "p.csv").read_text() == whole
    (tmp_path / "bad.csv").write_text("\n".join(lines[:900] + ["1,2,3"] + lines[900:]) + "\n")
    assert predict_cli(moons_run, tmp_path / "bad.csv") == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'bad.csv'}: line 901 has 3 fields, the header has 2\n"


@pytest.mark.slow
def test_predicting_a_big_csv_keeps_memory_flat(tmp_path, moons_run):
    """200,000 rows: the peak stays near the interpreter's own size, not the file's."""
    rng = np.random.default_rng(0)
    with open(tmp_path / "big.csv", "w") as f:
        f.write("x0,x1\n")
        np.savetxt(f, rng.standard_normal((200_000, 2)), fmt="%.17g", delimiter=",")
    # VmHWM, the peak of this process's own memory (ru_maxrss would carry over pytest's from before exec)
    script = ("import sys\nfrom micronet.predict import main\nstatus = main(sys.argv[1:])\n"
              "print(next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')))\n"
              "sys.exit(status)\n")
    small = subprocess.run([sys.executable, "-c", script, str(moons_run), str(tmp_path / "big.csv"), "--out",
                            str(tmp_path / "p.csv")], capture_output=True, text=True, timeout=300)
    assert small.returncode == 0, small.stderr
    assert int(small.stdout) < 100 * 1024  # KB; holding every cell as a string took over 100 MB here
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 200_001


# ----- the playground under load ---------------------------------------------------------

PLAYGROUND_SMALL = {"seed": 3, "dataset": {"name": "moons", "n_samples": 120, "noise": 0.1, "test_size": 0.25},
                    "model": {"hidden": [6], "activation": "relu"}, "loss": "cross_entropy",
                    "optimizer": {"name": "sgd", "lr": 0.1}, "training": {"batch_size": 16}}
ORIGIN = {"Origin": "http://testserver"}


@pytest.fixture
def playground():
    pytest.importorskip("starlette")
    pytest.importorskip("httpx")
    from starlette.testclient import TestClient

    from micronet.playground.server import create_app

    with TestClient(create_app(["testserver"])) as client:
        yield client


def test_exporting_a_session_that_diverged_at_epoch_0_says_to_reset_or_change_the_setup(playground):
    setup = {**PLAYGROUND_SMALL, "optimizer": {"name": "sgd", "lr": 1e300}}
    sid = playground.post("/api/sessions", json=setup, headers=ORIGIN).json()["session"]
    assert playground.post(f"/api/sessions/{sid}/step", headers=ORIGIN).json()["status"] == "diverged"
    r = playground.get(f"/api/sessions/{sid}/export")
    assert r.status_code == 409
    assert r.json()["error"].startswith("nothing to export: the session diverged before finishing an epoch "
                                        "(training diverged at epoch 1")
    assert r.json()["error"].endswith("reset it, or change the setup (a smaller learning rate) and train again")
    assert "play or step" not in r.json()["error"]


def test_a_binary_websocket_frame_is_one_log_line(playground, caplog):
    from starlette.websockets import WebSocketDisconnect

    sid = playground.post("/api/sessions", json=PLAYGROUND_SMALL, headers=ORIGIN).json()["session"]
    with playground.websocket_connect(f"/api/sessions/{sid}/live", headers=ORIGIN) as ws:
        assert ws.receive_json()["type"] == "frame"
        ws.send_bytes(b"drawn")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1003
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in lines] == ["closed a websocket that sent a binary frame; the page sends text"]
    assert all(r.exc_info is None for r in caplog.records)
    assert playground.get(f"/api/sessions/{sid}").status_code == 200  # the session lives on


def test_server_logs_are_one_line_per_kind_every_ten_seconds():
    from micronet.playground.server import _RateLimited

    clock = SimpleNamespace(now=0.0)
    limiter = _RateLimited(lambda: clock.now)
    records = []
    for i in range(1000):
        clock.now = i * 0.05  # 1000 failed accept()s in 50 s, each with its traceback
        try:
            raise OSError(24, "Too many open files")
        except OSError:
            record = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "socket.accept() out of system resource",
                                       None, sys.exc_info())
        if limiter.filter(record):
            records.append(record)
    assert len(records) == 5  # at 0, 10, 20, 30 and 40 s
    assert records[0].getMessage() == ("socket.accept() out of system resource: OSError: [Errno 24] Too many open "
                                       "files")
    assert records[1].getMessage().endswith("(and 199 more like it)")
    assert all(r.exc_info is None and r.exc_text is None for r in records)


@pytest.fixture
def guarded_server():
    """A real uvicorn serving the playground through guarded_protocol (cap 8, 4 s for a request head)."""
    pytest.importorskip("uvicorn")
    import threading

    import uvicorn

    from micronet.playground.server import create_app, guarded_protocol

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    config = uvicorn.Config(create_app(), log_level="warning", lifespan="on",
                            http=guarded_protocol(max_connections=8, header_timeout=4.0))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    yield sock.getsockname()[1]
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def _page(port, timeout=5.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
        c.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := c.recv(65536):
            data += chunk
    return data


def test_a_connection_that_sends_no_whole_request_head_is_closed(guarded_server):
    with socket.create_connection(("127.0.0.1", guarded_server), timeout=10) as slow:
        slow.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and then nothing
        started = time.monotonic()
        assert slow.recv(100) == b""  # closed by the server, not by the 10 s timeout here
        assert 3.5 < time.monotonic() - started < 9.5


def test_idle_connections_over_the_cap_make_room_for_a_good_client(guarded_server):
    idle = []
    try:
        for _ in range(20):  # more than the cap of 8, each sending half a request head
            c = socket.create_connection(("127.0.0.1", guarded_server), timeout=10)
            c.sendall(b"GET / HTTP/1.1\r\n")
            idle.append(c)
        for _ in range(3):
            assert _page(guarded_server).startswith(b"HTTP/1.1 200 OK")
        closed = []
        for c in idle[:12]:  # the 12 oldest were closed to make room (before their 4 s were up)
            c.settimeout(0.5)
            try:
                closed.append(c.recv(10) == b"")
            except ConnectionResetError:  # closed before the server read what it sent
                closed.append(True)
            except TimeoutError:
                closed.append(False)
        assert all(closed), closed
    finally:
        for c in idle:
            c.close()


SLOW_HEADER_ATTACK = """
import resource, socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
held, good, failed = [], 0, 0
deadline = time.monotonic() + 20
for round in range(6):  # bounded: six rounds of opening n idle connections, then asking for the page
    for _ in range(n):
        try:
            c = socket.create_connection(("127.0.0.1", port), timeout=2)
            c.sendall(b"GET / HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n")
            held.append(c)
        except OSError:
            pass
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"GET / HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nConnection: close\\r\\n\\r\\n")
            good += c.recv(15).startswith(b"HTTP/1.1 200")
    except OSError:
        failed += 1
    if time.monotonic() > deadline:
        break
print(good, failed)
"""


@pytest.mark.slow
def test_the_page_stays_available_during_a_slow_header_attack_with_a_low_fd_limit(tmp_path):
    """The server at 256 file descriptors; 6 x 150 idle connections from loopback; the page still answers."""
    pytest.importorskip("uvicorn")
    server = subprocess.Popen(
        [sys.executable, "-c", "import resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256)); "
         "from micronet.playground.cli import main; sys.exit(main(sys.argv[1:]))", "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        port = int(line.rsplit(":", 1)[1].split("/")[0])
        attack = subprocess.run([sys.executable, "-c", SLOW_HEADER_ATTACK, str(port), "150"], capture_output=True,
                                text=True, timeout=120)
        good, failed = map(int, attack.stdout.split())
        assert good >= 5 and failed == 0, attack.stdout
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=30)
    assert len(err.splitlines()) < 20, err  # rate-limited: no flood of "Too many open files"
    assert "Traceback" not in err


@pytest.mark.slow
def test_ctrl_c_stops_the_playground_in_one_line():
    pytest.importorskip("uvicorn")
    server = subprocess.Popen([sys.executable, "-c", "import sys; from micronet.commands import playground; "
                               "sys.exit(playground())", "--port", "0", "--no-browser"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert server.stdout.readline().startswith("micronet playground: http://127.0.0.1:")
    time.sleep(0.5)
    server.send_signal(signal.SIGINT)
    _, err = server.communicate(timeout=30)
    assert err == "micronet playground stopped\n"
    assert server.returncode == 130


# ----- sweeps on a cluster ---------------------------------------------------------------


@pytest.fixture
def not_dask():
    """Loopback servers that are not dask schedulers: {kind: tcp address}; each serves a bounded number of clients."""
    import http.server
    import threading

    servers, threads = {}, []
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts (the kernel does) and never answers
    servers["silent"] = silent
    web = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threads.append(threading.Thread(target=web.handle_request, daemon=True))
    greeter = socket.socket()
    greeter.bind(("127.0.0.1", 0))
    greeter.listen(8)

    def greet():
        greeter.settimeout(30)
        try:
            conn, _ = greeter.accept()
        except OSError:
            return
        with conn:
            conn.sendall(b"SSH-2.0-OpenSSH_9.6p1 Debian\r\n")
            time.sleep(1)

    threads.append(threading.Thread(target=greet, daemon=True))
    for thread in threads:
        thread.start()
    addresses = {"silent": silent.getsockname(), "http.server": web.server_address, "ssh-like": greeter.getsockname()}
    yield {kind: f"tcp://{host}:{port}" for kind, (host, port) in addresses.items()}
    silent.close()
    web.server_close()
    greeter.close()


@pytest.mark.parametrize("kind, message", [
    ("silent", r"it accepted the connection but sent nothing in 2 s \(a dask scheduler greets at once\)"),
    ("http.server", r"it accepted the connection but sent nothing in 2 s"),
    ("ssh-like", r"it answered b'SSH-2.0-', which is not dask's handshake"),
])
def test_a_server_that_is_not_a_dask_scheduler_is_one_error_line_in_time(tmp_path, monkeypatch, capsys, not_dask,
                                                                          kind, message):
    from micronet import sweep

    pytest.importorskip("distributed")
    monkeypatch.setattr(sweep, "CONNECT_TIMEOUT", 2)
    monkeypatch.chdir(tmp_path)
    started = time.monotonic()
    assert sweep.main(["moons", "seed=0,1", "--cluster", not_dask[kind], "--out", "s"]) == 2
    assert time.monotonic() - started < 30  # the documented timeout, not a hang
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: no dask scheduler at '{not_dask[kind]}': ")
    assert re.search(message, err), err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("address", ["http://127.0.0.1:1", "tls://127.0.0.1:1", "ucx://127.0.0.1:1", "inproc://x/1/2"])
def test_other_address_schemes_are_one_line_without_a_client_del_traceback(tmp_path, address):
    pytest.importorskip("distributed")
    result = subprocess.run([sys.executable, "-m", "micronet.sweep", "moons", "seed=0,1", "--cluster", address],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    scheme = address.split("://")[0]
    assert result.stderr == (f"error: no dask scheduler at '{address}': unknown address scheme {scheme}:// for "
                             "micronet-sweep, which reaches a scheduler at tcp://HOST:PORT (or starts one with "
                             "local:N); for TLS or UCX, pass a distributed.Client of your own to "
                             "run_sweep(cluster=...)\n")
    assert list(tmp_path.iterdir()) == []


def test_a_bad_out_is_refused_before_connecting_to_the_cluster(tmp_path, monkeypatch, capsys, not_dask):
    from micronet import sweep

    pytest.importorskip("distributed")
    monkeypatch.setattr(sweep, "_check_scheduler", lambda address: pytest.fail("connected first"))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    (tmp_path / "file").write_text("x")
    for out, problem in [("full", "is not empty"), ("file", "is an existing file, not a directory"),
                         ("", "is an empty path")]:
        assert sweep.main(["moons", "seed=0,1", "--cluster", not_dask["silent"], "--out",
                           str(tmp_path / out) if out else ""]) == 2
        assert problem in capsys.readouterr().err


def _results(sweep_dir):
    """{run directory name: (model.json bytes, metrics.csv without its timing column)} of a sweep."""
    out = {}
    for run_dir in sorted(p for p in sweep_dir.iterdir() if p.is_dir()):
        rows = [line.split(",") for line in (run_dir / "metrics.csv").read_text().splitlines()]
        keep = [i for i, name in enumerate(rows[0]) if name != "seconds"]
        out[run_dir.name] = ((run_dir / "model.json").read_bytes(), [[row[i] for i in keep] for row in rows])
    return out


def test_an_interrupted_sweep_continues_to_the_uninterrupted_result(tmp_path, monkeypatch):
    """Completed points are kept, an interrupted one resumes exactly, unstarted ones run: byte-identical."""
    from micronet import sweep
    from micronet.config import load_config
    from micronet.train import run

    monkeypatch.setattr("micronet.rundir.RunWriter.plots", lambda self, state, executor, should_stop=None: None)
    monkeypatch.setattr("micronet.rundir.RunWriter.plot_names", lambda self: [])  # no plots: none missing
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    items = ["seed=0,1,2", "optimizer.lr=0.05"]
    sweep.run_sweep(config, items, out_dir=tmp_path / "whole")
    sweep.run_sweep(config, items, out_dir=tmp_path / "cut")
    points = sorted(p for p in (tmp_path / "cut").iterdir() if p.is_dir())
    kept = (points[0] / "model.json").stat().st_mtime_ns
    # point 1 interrupted in its second epoch, point 2 stopped before its first checkpoint
    calls = iter(range(10**6))
    for point, batches in ((points[1], 9), (points[2], None)):
        point_config = load_config(point / "config.yaml")
        for child in point.iterdir():
            child.unlink()
        if batches is None:
            (point / "config.yaml").write_text((tmp_path / "whole" / point.name / "config.yaml").read_text())
        else:
            limit = next(calls) + batches
            assert run(point_config, point, should_stop=lambda limit=limit: next(calls) >= limit)["status"] == \
                "interrupted"
    with pytest.raises(Exception, match="not empty"):
        sweep.run_sweep(config, items, out_dir=tmp_path / "cut")  # without --resume: refused, nothing changed
    rows = sweep.run_sweep(config, items, out_dir=tmp_path / "cut", resume=True)
    assert [row["status"] for row in rows] == ["completed"] * 3
    assert _results(tmp_path / "cut") == _results(tmp_path / "whole")
    assert (points[0] / "model.json").stat().st_mtime_ns == kept  # the finished point was not trained again


def test_resume_refuses_a_sweep_directory_of_another_sweep(tmp_path, monkeypatch, capsys):
    from micronet import sweep

    monkeypatch.setattr("micronet.rundir.RunWriter.plots", lambda self, state, executor, should_stop=None: None)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    sweep.run_sweep(config, ["seed=0,1"], out_dir=tmp_path / "s")
    assert sweep.main([str(config), "seed=0,5", "--out", str(tmp_path / "s"), "--resume"]) == 2
    assert "holds run directories this sweep does not make (001-seed=1)" in capsys.readouterr().err
    assert sweep.main([str(config), "seed=0,1", "training.epochs=4", "--out", str(tmp_path / "s"), "--resume"]) == 2
    assert "is not this sweep's point 0" in capsys.readouterr().err
    assert sweep.main([str(config), "seed=0,1", "--resume"]) == 2
    assert "--resume continues the sweep in --out DIR" in capsys.readouterr().err
