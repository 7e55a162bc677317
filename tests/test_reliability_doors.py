"""Issue 25, line by line: load, predict, the cluster sweep, the playground and the trainer's
edges hold as the trainer's main door does.

docs/reliability.md states each guarantee and names the tests here that prove
it (`D::`). Real processes run where the promise is about one (signals, a
FIFO, a slow client); the rest goes through the library.
"""

import json
import os
import signal
import stat
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

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
