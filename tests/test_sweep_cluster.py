"""Sweeps on a real dask.distributed cluster: a scheduler and two worker processes on 127.0.0.1.

Every test here is bounded: an alarm fails any test (or the cluster's start)
that runs past TIME_LIMIT seconds, and subprocesses have their own timeouts.
"""

import csv
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from micronet import sweep
from micronet.sweep import main, run_sweep
from micronet.train import UsageError

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

pytestmark = pytest.mark.slow

TIME_LIMIT = 120
TINY = """\
name: tiny
dataset: {name: moons, n_samples: 60}
model: {hidden: [4]}
training: {epochs: 3, backend: compiled}
"""
ITEMS = ["seed=0,1", "optimizer.lr=0.05,0.5"]  # four points
RESUME_HINT = "(continue the sweep: the same command with --resume --out sweep)"
SLOW = TINY.replace("epochs: 3", "epochs: 400").replace("n_samples: 60", "n_samples: 200")


@pytest.fixture(autouse=True, scope="module")
def time_limit():
    """SIGALRM fails whatever runs past TIME_LIMIT: these tests must never hang CI."""

    def expire(signum, frame):
        raise TimeoutError(f"a cluster test ran past {TIME_LIMIT} s")

    previous = signal.signal(signal.SIGALRM, expire)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(autouse=True)
def alarm(time_limit):
    signal.alarm(TIME_LIMIT)
    yield
    signal.alarm(0)


@pytest.fixture(scope="module")
def client(time_limit):
    """Two one-thread worker processes, each point retried once if its worker dies, as docs/sweep.md advises."""
    signal.alarm(TIME_LIMIT)
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
        )
    with cluster, distributed.Client(cluster, set_as_default=False) as client:
        signal.alarm(0)
        yield client


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def local(config, tmp_path_factory):
    """The same sweep run locally, one point after another: {config.yaml: model.json} of each run."""
    out = tmp_path_factory.mktemp("local") / "sweep"
    run_sweep(config, ITEMS, out_dir=out)
    return runs(out)


def runs(sweep_dir):
    """{config.yaml text: model.json bytes} for every completed run of a sweep."""
    return {
        (d / "config.yaml").read_text(): (d / "model.json").read_bytes()
        for d in sweep_dir.iterdir()
        if (d / "model.json").exists()
    }


def point_files(sweep_dir):
    return sorted(p.name for p in sweep_dir.iterdir())


SWEEP_FILES = [
    "000-seed=0_optimizer.lr=0.05", "001-seed=0_optimizer.lr=0.5", "002-seed=1_optimizer.lr=0.05",
    "003-seed=1_optimizer.lr=0.5", "sweep.csv", "sweep.png",
]  # fmt: skip


def test_the_cli_on_a_scheduler_address_matches_a_local_sweep(client, config, local, tmp_path):
    address = client.scheduler.address
    command = [sys.executable, "-m", "micronet.sweep", str(config), *ITEMS, "--cluster", address, "--out", "on-dask"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=TIME_LIMIT - 10)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert re.match(r"dask dashboard: http://127\.0\.0\.1:\d+/status\n", result.stdout)
    assert "sweep directory: on-dask" in result.stdout
    assert point_files(tmp_path / "on-dask") == SWEEP_FILES  # no probe files left behind
    assert runs(tmp_path / "on-dask") == local  # byte for byte, configs and models


def test_run_sweep_with_a_client_matches_a_local_sweep_and_leaves_the_client_open(client, config, local, tmp_path):
    rows = run_sweep(config, ITEMS, out_dir=tmp_path / "sweep", cluster=client)
    assert [r["status"] for r in rows] == ["completed"] * 4
    assert [(r["seed"], r["optimizer.lr"]) for r in rows] == [("0", "0.05"), ("0", "0.5"), ("1", "0.05"), ("1", "0.5")]
    assert point_files(tmp_path / "sweep") == SWEEP_FILES
    assert runs(tmp_path / "sweep") == local
    assert client.submit(sum, [1, 2]).result() == 3


def test_local_n_starts_a_cluster_of_its_own(config, local, tmp_path):
    command = [sys.executable, "-m", "micronet.sweep", str(config), "seed=1", "optimizer.lr=0.05,0.5"]
    command += ["--cluster", "local:2", "--out", "own"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=TIME_LIMIT - 10)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "dask dashboard: http://127.0.0.1:" in result.stdout
    own = runs(tmp_path / "own")
    assert len(own) == 2 and own.items() <= local.items()


def test_a_point_with_a_bad_dataset_path_fails_and_the_others_complete(client, tmp_path):
    rows = "\n".join(f"{x},{x * x % 7},{'ab'[x % 2]}" for x in range(40))
    (tmp_path / "good.csv").write_text(f"x1,x2,label\n{rows}\n")
    (tmp_path / "csv.yaml").write_text(
        "name: csvs\ndataset: {name: csv, target: label}\nmodel: {hidden: [4]}\ntraining: {epochs: 2}\n"
    )
    shutil.copy(tmp_path / "good.csv", tmp_path / "also_good.csv")
    paths = ",".join(str(tmp_path / name) for name in ("good.csv", "missing.csv", "also_good.csv"))
    out = tmp_path / "sweep"
    rows = run_sweep(tmp_path / "csv.yaml", [f"dataset.path={paths}"], out_dir=out, cluster=client)
    assert [r["status"] for r in rows] == ["completed", "failed", "completed"]
    assert rows[1]["error"].startswith("DataError: ") and "missing.csv" in rows[1]["error"]
    assert "Traceback" in (out / os.path.basename(rows[1]["run_dir"]) / "traceback.txt").read_text()
    assert (out / "sweep.csv").is_file() and (out / "sweep.png").is_file()


def worker_pid(client, address):
    """The PID of a worker process, or None if it is gone already (the scheduler may not know yet)."""
    try:
        return client.run(os.getpid, workers=[address])[address]
    except (OSError, KeyError):  # CommClosedError is an OSError
        return None


def test_a_worker_killed_mid_sweep_costs_nothing_but_a_retry(client, config, local, tmp_path):
    """kill -9 of the worker process running a point: dask runs that point again on another worker."""
    killed = []

    def kill_a_busy_worker():
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            for address, keys in client.processing().items():
                points = [key for key in keys if str(key).startswith("micronet-sweep-")]
                pid = worker_pid(client, address) if points else None
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(int(str(points[0]).split("-")[2]))
                    break
            time.sleep(0.02)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    try:
        rows = run_sweep(config, ITEMS, out_dir=tmp_path / "sweep", cluster=client)
    finally:
        killer.join()
    assert len(killed) == 1
    assert all(r["status"] in ("completed", "failed") for r in rows)
    assert rows[killed[0]]["status"] == "completed"  # retried once, from scratch
    assert runs(tmp_path / "sweep") == local
    assert (tmp_path / "sweep" / "sweep.csv").is_file() and (tmp_path / "sweep" / "sweep.png").is_file()
    client.wait_for_workers(2, timeout=30)  # the nanny restarts the killed worker for the next tests


def test_a_point_whose_worker_dies_on_each_try_is_failed_with_the_reason(client, tmp_path):
    slow = tmp_path / "slow.yaml"
    slow.write_text(SLOW)
    victims = []

    def kill_seed_one_twice():  # seed 1's worker dies on both of its tries
        deadline = time.monotonic() + 90
        while len(victims) < 2 and time.monotonic() < deadline:
            for address, keys in client.processing().items():
                if any(str(key).startswith("micronet-sweep-1-") for key in keys):
                    pid = worker_pid(client, address)
                    if pid is not None and pid not in victims:
                        os.kill(pid, signal.SIGKILL)
                        victims.append(pid)
            time.sleep(0.02)

    killer = threading.Thread(target=kill_seed_one_twice)
    killer.start()
    try:
        rows = run_sweep(slow, ["seed=0,1"], out_dir=tmp_path / "sweep", cluster=client)
    finally:
        killer.join()
    assert len(victims) == 2
    assert [r["status"] for r in rows] == ["completed", "failed"]
    assert re.fullmatch(
        r"KilledWorker: the worker running this point died on each of its 2 tries \(the last was tcp://127\.0\.0\.1:\d+\)",
        rows[1]["error"],
    )
    assert (tmp_path / "sweep" / "sweep.png").is_file()
    client.wait_for_workers(2, timeout=30)


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_scheduler_that_does_not_answer_is_one_error_line(config, tmp_path, monkeypatch, capsys):
    """Nothing listens on the port: after CONNECT_TIMEOUT (10 s; 2 s here) one line, exit 2, nothing written."""
    monkeypatch.setattr(sweep, "CONNECT_TIMEOUT", 2)
    monkeypatch.chdir(tmp_path)
    address = f"tcp://127.0.0.1:{closed_port()}"
    assert main([str(config), *ITEMS, "--cluster", address]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(rf"error: no dask scheduler at '{address}': Timed out trying to connect to .* after 2 s\n", err)
    assert list(tmp_path.iterdir()) == []


def test_a_scheduler_without_workers_is_one_error_line(config, tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "CONNECT_TIMEOUT", 2)
    with distributed.LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=None) as empty:
        with pytest.raises(UsageError, match=r"^the dask scheduler at tcp://127.0.0.1:\d+ has no workers \(waited 2 s\)$"):
            run_sweep(config, ITEMS, out_dir=tmp_path / "sweep", cluster=empty.scheduler_address)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--cluster", "local:0"], r"--cluster local:N takes a number of worker processes N >= 1, got 'local:0'"),
        (["--cluster", "local"], r"--cluster local:N takes a number of worker processes N >= 1, got 'local'"),
        (["--cluster", "local:two"], r"--cluster local:N takes a number of worker processes N >= 1, got 'local:two'"),
        (["--cluster", "nonsense"], r"no dask scheduler at 'nonsense': .*"),
        (["--cluster", "ftp://127.0.0.1:1"], r"no dask scheduler at 'ftp://127.0.0.1:1': unknown address scheme"),
        (["--cluster", "local:2", "--jobs", "2"], r"--jobs is for local sweeps"),
        (["--cluster", "local:2", "--backend", "threading"], r"--jobs and --backend are for local sweeps"),
    ],
)
def test_bad_cluster_options_exit_2_with_one_line(config, tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main([str(config), *ITEMS, *args]) == 2
    err = capsys.readouterr().err
    assert re.match(f"error: {message}", err) and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def unshare_works():
    try:
        return subprocess.run(["unshare", "-m", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not shutil.which("unshare") or not unshare_works(), reason="needs unshare -m (root on Linux)")
def test_a_sweep_directory_the_workers_cannot_see_is_refused(config, tmp_path):
    """A worker in its own mount namespace sees an empty tmpfs where the sweep directory should be."""
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    with distributed.LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=None) as cluster:
        mount_then_run = 'mount -t tmpfs tmpfs "$0" && exec "$@"'
        worker = [sys.executable, "-m", "distributed.cli.dask_worker", cluster.scheduler_address, "--nthreads", "1"]
        process = subprocess.Popen(["unshare", "-m", "sh", "-c", mount_then_run, str(hidden), *worker],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            with distributed.Client(cluster, set_as_default=False) as client:
                client.wait_for_workers(1, timeout=60)
                with pytest.raises(UsageError, match=r"is not shared with the dask workers: worker tcp://127.0.0.1:\d+ "
                                   r"cannot use it \(FileNotFoundError: No such file or directory\); put --out on storage"):  # fmt: skip
                    run_sweep(config, ITEMS, out_dir=hidden / "sweep", cluster=client)
        finally:
            process.terminate()
            process.wait(timeout=30)
    assert list(hidden.iterdir()) == []  # the sweep directory was removed again


def test_ctrl_c_cancels_the_points_left_and_keeps_the_finished_ones(client, tmp_path):
    slow = tmp_path / "slow.yaml"
    slow.write_text(SLOW.replace("epochs: 400", "epochs: 150"))
    command = [sys.executable, "-m", "micronet.sweep", str(slow), "seed=0,1,2,3,4,5"]
    command += ["--cluster", client.scheduler.address, "--out", "sweep"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob("sweep/*/confusion_matrix.png")) and time.monotonic() < deadline:  # the last plot
            time.sleep(0.05)
        time.sleep(0.5)  # the first finished point reaches the sweep
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert err == f"interrupted; sweep.csv and the runs are in sweep {RESUME_HINT}\n"
    with open(tmp_path / "sweep" / "sweep.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    statuses = {row["status"] for row in rows}
    assert "completed" in statuses and "not run" in statuses and statuses <= {"completed", "interrupted", "not run"}
    for row in rows:
        if row["status"] == "completed":  # finished runs stay, whole
            assert (tmp_path / row["run_dir"] / "model.json").is_file()
            assert (tmp_path / row["run_dir"] / "decision_boundary.png").is_file()
