"""Parallel sweeps: one config, the Cartesian product of some overrides, one run each.

    python -m micronet.sweep configs/moons.yaml optimizer.lr=0.01,0.1,1 'model.hidden=[16],[32,32]' --jobs 2

Every point is a normal run directory written by `micronet.train.run` (the
one training loop), inside one sweep directory that also gets `sweep.csv`
(one row per run) and `sweep.png` (the final test value of each of the
task's metrics, and of the loss, against the swept values: accuracy for
classification, R² and MAE for regression). Every point's config is
validated before anything is written; a run that fails or diverges is
recorded and the others carry on.

Locally, runs go through `joblib.Parallel`. `--jobs` defaults to 1: one run
after another in this process, predictable on a shared machine and easy to
debug; `--jobs -1` uses every CPU. The backend is joblib's `loky` (processes)
unless told otherwise. A loky worker that dies (kill -9, the OOM killer) costs
only its own point. `--cluster` runs the points on dask.distributed instead:

    python -m micronet.sweep configs/moons.yaml seed=0,1,2,3 --cluster tcp://scheduler:8786 --out /shared/sweep
    python -m micronet.sweep configs/moons.yaml seed=0,1,2,3 --cluster local:2

The workers write the run directories, so the sweep directory must be on
storage they all see; that is checked before any training. docs/sweep.md has
the details: starting a scheduler and workers, and what happens when one dies.
"""

import argparse
import contextlib
import csv
import io
import itertools
import json
import logging
import math
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import traceback
from collections.abc import Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import joblib
import yaml

from micronet.commands import CommandParser, program_name
from micronet.config import ConfigError, load_config
from micronet.files import write_figure, write_json_atomic, write_text_atomic
from micronet.tasks import LOSS, TASKS, find_metric
from micronet.train import UsageError, check_out, new_run_dir, resume, run, run_cli

if TYPE_CHECKING:
    import distributed

__all__ = ["Selection", "parse_sweep_args", "run_sweep", "plot_sweep", "format_table", "main"]

RUN_COLUMNS = ["seconds", "epochs"]  # after the metrics in every row
EXIT_FAILED_RUNS, EXIT_USAGE, EXIT_SIGINT = 1, 2, 130


# ----- the command-line grammar -----------------------------------------------

_CLOSING = {"[": "]", "{": "}"}


def _split_values(item, text):
    """Split `text` at commas outside brackets, braces and quotes (YAML flow values keep theirs).

    As in YAML, a quote opens a quoted string only where a value starts, so
    `bob's.csv` is plain text.
    """
    values, stack, quote, start, previous = [], [], None, 0, ","
    escaped = False
    for i, c in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif (c == "\\" and quote == '"') or (c == quote == "'" and text[i + 1 : i + 2] == "'"):
                escaped = True  # \x inside "..." and '' inside '...' do not end the string
            elif c == quote:
                quote = None
        elif c in "'\"" and previous in ",[{:":
            quote = c
        elif c in _CLOSING:
            stack.append(_CLOSING[c])
        elif c in _CLOSING.values():
            if not stack or stack.pop() != c:
                raise UsageError(f"malformed sweep item {item!r}: unbalanced {c!r}")
        elif c == "," and not stack:
            values.append(text[start:i])
            start = i + 1
        if not c.isspace():
            previous = c
    if quote or stack:
        missing = quote if quote else stack[-1]
        raise UsageError(f"malformed sweep item {item!r}: missing a closing {missing!r}")
    values.append(text[start:])
    values = [v.strip() for v in values]
    if "" in values:
        raise UsageError(f"malformed sweep item {item!r}: an empty value (a stray comma?)")
    return values


def _parse_items(args):
    """[(key, [value text, ...]), ...] in command-line order."""
    if isinstance(args, str):
        raise UsageError(f"sweep arguments must be a list of KEY=V1,V2,... strings, got the string {args!r}")
    items: list[tuple[str, list[str]]] = []
    for item in args:
        if not isinstance(item, str) or "=" not in item:
            raise UsageError(f"malformed sweep item {item!r}: expected KEY=V1,V2,... (or KEY=VALUE to fix one)")
        key, text = (part.strip() for part in item.split("=", 1))
        if not key:
            raise UsageError(f"malformed sweep item {item!r}: no key before '='")
        if key in (k for k, _ in items):
            raise UsageError(f"{key} is given twice; list all its values in one item: {key}=V1,V2,...")
        values = _split_values(item, text)
        repeated = next((v for i, v in enumerate(values) if v in values[:i]), None)
        if repeated is not None:
            raise UsageError(f"{key} lists {repeated!r} twice")
        items.append((key, values))
    if not any(len(values) > 1 for _, values in items):
        raise UsageError(
            "nothing to sweep: give at least one KEY=V1,V2,... with two or more values "
            "(KEY=VALUE with one value is a fixed override)"
        )
    return items


def parse_sweep_args(args: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """(swept keys, one override list per run) for `key=v1,v2,...` items.

    An item with one value is a fixed override in every run. The runs are the
    Cartesian product in command-line order, the last item varying fastest;
    each override list keeps the items' order, so a later item wins as in
    `micronet.train`.
    """
    items = _parse_items(args)
    keys = [key for key, values in items if len(values) > 1]
    choices = [[f"{key}={value}" for value in values] for key, values in items]
    return keys, [list(point) for point in itertools.product(*choices)]


def _swept_values(keys, overrides):
    assigned = dict(item.split("=", 1) for item in overrides)
    return {key: assigned[key] for key in keys}


def _run_name(index, width, values):
    """`003-optimizer.lr=0.05`: unique by its index, readable, safe as a file name."""
    parts = []
    for key, text in values.items():
        text = re.sub(r"[\s\[\]{}()'\"]+", "", text)  # brackets and quotes add nothing to a name
        parts.append(f"{key}={re.sub(r'[^A-Za-z0-9._,+-]+', '-', text, flags=re.ASCII) or '_'}")
    return f"{index:0{width}d}-{'_'.join(parts)}"[:120]


# ----- planning -------------------------------------------------------------------


class _Point(NamedTuple):
    index: int  # type: ignore[assignment]  # the run's number; tuple.index is never called on a point
    values: dict  # {swept key: value text}
    config: object  # the validated RunConfig
    dir: Path  # its run directory


@dataclass
class _Plan:
    """A validated sweep whose directory exists: everything but the training."""

    keys: list
    points: list  # [_Point]
    dir: Path
    name: str


def _check_points(config_path, sweep_args):
    """(swept keys, [(overrides, RunConfig)]): every point's config validated, nothing written."""
    keys, runs = parse_sweep_args(sweep_args)
    configs = []
    for index, overrides in enumerate(runs):
        try:
            configs.append(load_config(config_path, overrides))
        except ConfigError as e:
            raise _config_error(config_path, keys, overrides, index, e) from None
    return keys, list(zip(runs, configs))


def _make_plan(keys, runs, out_dir, continuing=False):
    """Create the sweep directory (the last step before training) and name every point's run directory.

    `continuing`: the sweep directory `out_dir` exists from an interrupted run of this sweep.
    """
    if continuing:
        sweep_dir = Path(out_dir)
    else:
        sweep_dir = new_run_dir(f"sweep-{runs[0][1].name}", out_dir)  # an unusable path is a UsageError naming it
    width = max(3, len(str(len(runs) - 1)))
    points = []
    for index, (overrides, config) in enumerate(runs):
        values = _swept_values(keys, overrides)
        points.append(_Point(index, values, config, sweep_dir / _run_name(index, width, values)))
    return _Plan(keys, points, sweep_dir, runs[0][1].name)


def _config_error(config_path, keys, overrides, index, error):
    """Name the run, unless the file or a fixed override fails on its own (then no run is to blame)."""
    fixed = [item for item in overrides if item.split("=", 1)[0] not in keys]
    try:
        load_config(config_path, fixed)
    except ConfigError as without_sweep:
        if str(without_sweep) == str(error):
            return error
    swept = " ".join(f"{k}={v}" for k, v in _swept_values(keys, overrides).items())
    return ConfigError(f"run {index} ({swept}): {error}")


@contextlib.contextmanager
def _prepared(config_path, sweep_args, out_dir, jobs, backend, cluster, continuing=False):
    """Check everything, reach the cluster, and only then create the sweep directory.

    Yields (plan, results, client): `results` yields (index, summary) as
    points finish; `client` is the dask client, or None for a local sweep.
    """
    keys, runs = _check_points(config_path, sweep_args)
    if continuing:
        _check_continuing(out_dir, keys, runs)
    if cluster is None:
        pool = _local_pool(jobs, backend, len(runs))
        plan = _make_plan(keys, runs, out_dir, continuing)
        yield plan, _run_local(plan, pool), None
        return
    if jobs != 1 or backend is not None:
        raise UsageError("--jobs and --backend are for local sweeps; a cluster runs one point per worker thread")
    if out_dir is not None and not continuing:
        check_out(out_dir)  # a local mistake first, before the wait for a cluster
    with _dask_client(cluster) as client:
        existed = out_dir is not None and Path(out_dir).exists()
        plan = _make_plan(keys, runs, out_dir, continuing)
        try:
            _check_shared(client, plan.dir)
        except UsageError:
            if not existed:
                plan.dir.rmdir()  # empty again: the probe files are gone
            raise
        yield plan, _run_on_cluster(plan, client), client


def _check_continuing(out_dir, keys, runs):
    """--resume: the sweep directory exists, and each run directory in it is one of this sweep's points."""
    if out_dir is None:
        raise UsageError("--resume continues the sweep in --out DIR; give the sweep directory with --out")
    sweep_dir = Path(out_dir)
    if not sweep_dir.is_dir() or sweep_dir.is_symlink():
        raise UsageError(f"--resume: --out {str(out_dir)!r} is not the directory of an interrupted sweep")
    points = _make_plan(keys, runs, sweep_dir, continuing=True).points
    planned = {point.dir.name for point in points}
    strangers = sorted(entry.name for entry in sweep_dir.iterdir() if entry.is_dir() and entry.name not in planned)
    if strangers:
        raise UsageError(f"--resume: {str(out_dir)!r} holds run directories this sweep does not make "
                         f"({', '.join(strangers[:3])}); give the same config and values as the interrupted sweep")
    for point in points:
        if (point.dir / "config.yaml").is_file() and load_config(point.dir / "config.yaml") != point.config:
            raise UsageError(f"--resume: {str(point.dir / 'config.yaml')!r} is not this sweep's point {point.index}; "
                             "give the same config and values as the interrupted sweep")


# ----- one point ------------------------------------------------------------------


def _run_point(index, config, run_dir):
    """Train one point into `run_dir`; an error becomes its summary, so it cannot stop the sweep.

    At module level so loky and dask can pickle it by reference. It installs
    no signal handlers and draws no progress bar: it may run in a worker. A
    run directory that already exists is a try that was interrupted (Ctrl-C,
    or a worker process that died): with its checkpoint it continues through
    the trainer's exact resume (a completed one is kept as it is), without
    one it starts again from nothing. Either way the result is the run that
    was never stopped.
    """
    run_dir = Path(run_dir)
    resumable = all((run_dir / name).is_file() for name in ("config.yaml", "metrics.csv", "model.json"))
    if run_dir.exists() and not resumable:
        shutil.rmtree(run_dir)
    run_dir.mkdir(exist_ok=True)
    try:
        return index, (resume(run_dir) if resumable else run(config, run_dir))
    except Exception as e:  # noqa: BLE001 - any failure is this run's result, not the sweep's
        error = " ".join(f"{type(e).__name__}: {e}".split())
        write_text_atomic(run_dir / "traceback.txt", traceback.format_exc())
        return index, _record_failure(run_dir, error)


def _record_failure(run_dir, error):
    """Mark the run failed in its summary.json, keeping what the run itself wrote there."""
    run_dir.mkdir(exist_ok=True)
    summary = {**_read_json(run_dir / "summary.json"), "status": "failed", "error": error}
    write_json_atomic(run_dir / "summary.json", summary)
    return summary


def _read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


# ----- running locally: joblib ----------------------------------------------------


def _local_pool(jobs, backend, n_points):
    """A maker of fresh `joblib.Parallel` pools, checked now so a bad jobs or backend writes nothing."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs == 0:
        raise UsageError(f"jobs must be a nonzero int (workers; -1 = one per CPU), got {jobs!r}")

    def pool():
        n_jobs = min(jobs, n_points) if jobs > 0 else jobs
        return joblib.Parallel(n_jobs=n_jobs, backend=backend, return_as="generator_unordered")

    try:
        pool()
    except ValueError as e:
        raise UsageError(
            f"backend {backend!r} is not available ({e}); to run on a dask cluster use --cluster"
        ) from None
    return pool


def _run_local(plan, pool):
    """Yield (index, summary) as points finish in joblib's pool, surviving a worker process that dies.

    When a loky worker dies (kill -9, the OOM killer) every point then in
    flight fails with it, and loky cannot say whose process it was. So each of
    those points runs once more, alone in a fresh pool: if its process dies
    there too it is recorded as failed. Points not yet started carry on.
    """
    batches = [(plan.points, False)]  # (points, is a lone retry)
    while batches:
        batch, retry = batches.pop(0)
        finished = set()
        try:
            tasks = (joblib.delayed(_run_point)(p.index, p.config, str(p.dir.resolve())) for p in batch)
            for index, summary in pool()(tasks):  # absolute paths above: workers' cwd may differ
                finished.add(index)
                yield index, summary
        except BrokenProcessPool as e:
            if retry:
                yield batch[0].index, _record_failure(batch[0].dir, _loky_death(e))
                continue
            unfinished = [p for p in batch if p.index not in finished]
            started = [p for p in unfinished if p.dir.exists()] or unfinished  # none started: any may be to blame
            waiting = [p for p in unfinished if p not in started]
            batches[:0] = [([p], True) for p in started] + ([(waiting, False)] if waiting else [])


def _loky_death(error):
    codes = re.search(r"exit codes of the workers are \{(.+?)\}", str(error))
    how = f" (exit code {codes[1]})" if codes else ""
    return f"{type(error).__name__}: the worker process running this point died, and again when it ran alone{how}"


# ----- running on a dask cluster --------------------------------------------------

CONNECT_TIMEOUT = 10  # seconds to reach a dask scheduler, and for it to have a worker


@contextlib.contextmanager
def _dask_client(cluster):
    """A `distributed.Client` with a worker, for "local:N", a scheduler address, or a Client (used, left open)."""
    try:
        import distributed
    except ImportError:
        raise UsageError("--cluster needs dask.distributed: pip install 'micronet-nn[cluster]'") from None
    with contextlib.ExitStack() as stack:
        if isinstance(cluster, distributed.Client):
            client = cluster
        elif not isinstance(cluster, str) or not cluster.strip():
            raise UsageError(
                f"cluster must be local:N, a dask scheduler address or a distributed.Client, got {cluster!r}"
            )
        else:
            address = cluster
            if cluster == "local" or cluster.startswith("local:"):  # not localhost:8786
                address = stack.enter_context(_local_cluster(cluster)).scheduler_address
            else:
                _check_scheduler(cluster)
            try:
                client = stack.enter_context(distributed.Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False))
            except (OSError, ValueError, TypeError) as e:  # unreachable, or not an address
                raise UsageError(f"no dask scheduler at {cluster!r}: {' '.join(str(e).split())}") from None
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        except TimeoutError:
            where = client.scheduler.address  # type: ignore[union-attr]  # a client has a scheduler
            raise UsageError(f"the dask scheduler at {where} has no workers (waited {CONNECT_TIMEOUT} s)") from None
        yield client


_SCHEMES = ("tcp://",)  # what --cluster can reach; tls needs certificates, ucx and inproc are not for a CLI


def _check_scheduler(address):
    """Refuse, within CONNECT_TIMEOUT, an address that is not a dask scheduler, before dask tries it.

    dask's client waits forever on a server that accepts and never answers
    (or answers HTTP), and reads an SSH greeting as a frame count of
    exabytes. A dask scheduler speaks first: its handshake is a small
    little-endian count of frames, so the first 8 bytes tell.
    """
    scheme, sep, rest = address.partition("://")
    if sep and f"{scheme}://" not in _SCHEMES:
        raise UsageError(f"no dask scheduler at {address!r}: unknown address scheme {scheme}:// for micronet-sweep, "
                         "which reaches a scheduler at tcp://HOST:PORT (or starts one with local:N); for TLS or UCX, "
                         "pass a distributed.Client of your own to run_sweep(cluster=...)")
    host, _, port = (rest if sep else address).rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise UsageError(f"no dask scheduler at {address!r}: not an address; expected tcp://HOST:PORT or local:N")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT) as probe:
            probe.settimeout(CONNECT_TIMEOUT)
            first = b""
            while len(first) < 8:
                got = probe.recv(8 - len(first))
                if not got:
                    break
                first += got
    except TimeoutError:
        raise UsageError(f"no dask scheduler at {address!r}: it accepted the connection but sent nothing in "
                         f"{CONNECT_TIMEOUT} s (a dask scheduler greets at once)") from None
    except OSError:  # nothing listens, or no route: dask's client says so in its own words (and retries)
        return
    if len(first) < 8 or int.from_bytes(first, "little") > 1000:
        raise UsageError(f"no dask scheduler at {address!r}: it answered {first[:16]!r}, which is not dask's "
                         "handshake")


def _local_cluster(spec):
    """A LocalCluster of N one-thread worker processes on loopback, for `local:N`.

    A point whose worker dies is retried once (allowed-failures 1), as the
    docs ask of a scheduler started by hand; the logs of dying workers are
    silenced because the sweep reports each point's fate itself.
    """
    import dask
    from distributed import LocalCluster

    match = re.fullmatch(r"local:([1-9][0-9]*)", spec)
    if match is None:
        raise UsageError(f"--cluster local:N takes a number of worker processes N >= 1, got {spec!r}")
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        return LocalCluster(
            n_workers=int(match[1]), threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address="127.0.0.1:0", silence_logs=logging.CRITICAL, preload=["micronet.sweep"],
        )  # fmt: skip


def dask_setup(worker: object) -> None:
    """Run by dask in each worker of a `local:N` cluster (its preload): leave Ctrl-C to the sweep.

    The workers share the terminal's process group, so Ctrl-C reaches them
    too; the sweep cancels the points itself, and closing the cluster stops them.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _check_shared(client, directory):
    """Each worker reads a file written here and writes one back: workers write the run directories."""
    token = secrets.token_hex(8)
    (directory / f".probe-{token}").write_text(token)
    try:
        problem = _probe(client, directory, token)
    finally:
        for path in directory.glob(f".probe-{token}*"):
            path.unlink(missing_ok=True)
    if problem is not None:
        raise UsageError(problem)


def _probe(client, directory, token):
    """What keeps the workers from sharing `directory` with this process, or None."""
    try:
        answers = client.run(_probe_worker, str(directory.resolve()), token)
    except Exception as e:  # noqa: BLE001 - most likely micronet is missing on a worker
        reason = " ".join(f"{type(e).__name__}: {e}".split())
        return f"the dask workers cannot run micronet ({reason}); install it there"
    for worker, (name, problem) in sorted(answers.items()):
        if problem is None and not _holds(directory / name, token):
            problem = "wrote a probe file that cannot be read back here"
        if problem is not None:
            return (
                f"the sweep directory {str(directory)!r} is not shared with the dask workers: worker {worker} "
                f"{problem}; put --out on storage that every worker mounts at the same path"
            )
    return None


def _holds(path, text):
    try:
        return path.read_text() == text
    except OSError:
        return False


def _probe_worker(directory, token):
    """On a worker: read the client's probe file and write one of our own; (file name, None) or (None, problem)."""
    try:
        text = (Path(directory) / f".probe-{token}").read_text()
        mine = Path(directory) / f".probe-{token}-{socket.gethostname()}-{os.getpid()}"
        mine.write_text(text)
        return mine.name, None
    except OSError as e:
        return None, f"cannot use it ({type(e).__name__}: {e.strerror or e})"


def _run_on_cluster(plan, client):
    """Yield (index, summary) as points finish on the dask cluster; stopping early cancels the rest.

    No more points are handed out than the cluster has worker threads, so a
    worker that dies takes only the points it was running. The scheduler runs
    those again on another worker up to its `allowed-failures` times, then the
    point is recorded as failed with dask's KilledWorker.
    """
    from distributed import as_completed

    running: dict = {}
    waiting, finished = list(plan.points), as_completed(loop=client.loop)
    token = secrets.token_hex(8)  # task keys are unique on a shared scheduler, and name the point

    def hand_out():
        slots = max(0, max(1, sum(client.nthreads().values())) - len(running))
        for point in waiting[:slots]:
            key = f"micronet-sweep-{point.index}-{token}"
            future = client.submit(_run_point, point.index, point.config, str(point.dir.resolve()), key=key)
            running[future] = point
            finished.add(future)
        del waiting[:slots]

    try:
        hand_out()
        for future in finished:
            point = running.pop(future)
            try:
                index, summary = future.result()
            except Exception as e:  # noqa: BLE001 - a dead worker, or one that cannot load the point
                index, summary = point.index, _record_failure(point.dir, _dask_failure(e))
            hand_out()
            yield index, summary
    finally:  # Ctrl-C, or the caller stopped: points not yet finished are dropped
        client.cancel(list(running))


def _dask_failure(error):
    """Why a point has no summary of its own: its worker died, or could not run it."""
    if type(error).__name__ == "KilledWorker":
        return (
            f"KilledWorker: the worker running this point died on each of its {error.allowed_failures + 1} "
            f"tries (the last was {error.last_worker.address})"
        )
    return " ".join(f"{type(error).__name__}: {error}".split())


# ----- the sweep ------------------------------------------------------------------


def _metric_names(tasks):
    """The loss and every metric of these tasks, in metrics.csv's order."""
    names = [LOSS.name]
    for task in dict.fromkeys(tasks):
        names += [m.name for m in TASKS[task].metrics if m.name not in names]
    return names


def _metric_columns(tasks, validating=False):
    """sweep.csv's metric columns: the final train (validation) and test values of the loss and each metric."""
    splits = ("train", "val", "test") if validating else ("train", "test")
    names = _metric_names(tasks)
    return [f"{split}_{name}" for split in splits for name in names]


@dataclass(frozen=True)
class Selection:
    """How a sweep ranks its points: by one split's final value of one metric, best first."""

    column: str  # a sweep.csv column: val_loss, val_r2, test_accuracy, ...
    better: str  # "min" or "max", from the task spec
    validating: bool  # whether the points hold out a validation split (else the test split ranks them)

    def rank(self, rows: Sequence[Mapping]) -> list[Mapping]:
        """The completed rows that have the value, best first (ties keep the point order)."""
        scored = [r for r in rows if r.get("status") == "completed" and r.get(self.column) is not None]
        return sorted(scored, key=lambda r: r[self.column] if self.better == "min" else -r[self.column])


def _selection(configs, select):
    """The `Selection` for `--select` (None: val_loss when validating, else test_loss), checked against the tasks."""
    validating = any(config.training.validation_split > 0 for config in configs)
    names = _metric_names(config.task for config in configs)
    choices = [f"{split}_{name}" for split in (("val", "test") if validating else ("test",)) for name in names]
    if select is None:
        select = "val_loss" if validating else "test_loss"
    if select not in choices:
        hint = "" if validating or not select.startswith("val_") else " (val_ needs training.validation_split > 0)"
        raise UsageError(f"--select must be one of {', '.join(choices)}; got {select!r}{hint}")
    metric = find_metric(select)
    assert metric is not None  # every choice is a task's metric
    return Selection(select, metric.better, validating)


def _execute(plan, results, progress=False, selection=None):
    """Collect every point's summary, then write sweep.csv and sweep.png; return the rows in point order."""
    summaries = {}
    validating = selection.validating if selection is not None else False
    columns = _metric_columns((point.config.task for point in plan.points), validating) + RUN_COLUMNS
    try:
        with contextlib.closing(results):  # a generator stopped by Ctrl-C cancels what it started
            for index, summary in _progress_bar(results, progress, len(plan.points)):
                summaries[index] = summary
    finally:  # on Ctrl-C too: sweep.csv records what finished
        rows = [_row(point, summaries.get(point.index), columns) for point in plan.points]
        _write_csv_atomic(plan.dir / "sweep.csv", list(rows[0]), rows)
    plot_sweep(rows, plan.keys, plan.dir / "sweep.png", title=f"{plan.name}: {len(rows)} runs", selection=selection)
    return rows


def _progress_bar(results, enabled, total):
    if not enabled:
        return results
    from tqdm import tqdm

    return tqdm(results, total=total, unit="run", file=sys.stderr, leave=False, dynamic_ncols=True)


def _row(point, summary, columns):
    if summary is None:  # the sweep stopped first
        summary = {"status": "interrupted" if point.dir.exists() else "not run"}
    return {
        "index": point.index,
        "run_dir": str(point.dir),
        **point.values,
        "status": summary["status"],
        "error": summary.get("error"),
        **{column: summary.get(column) for column in columns},
    }


def _write_csv_atomic(path, header, rows):
    """sweep.csv, written so readers see the old file or the new one, never half."""
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else repr(v) if isinstance(v, float) else v for v in row.values()])
    write_text_atomic(path, text.getvalue())


def run_sweep(
    config_path: str | os.PathLike,
    sweep_args: list[str],
    out_dir: str | os.PathLike | None = None,
    jobs: int = 1,
    backend: str | None = None,
    progress: bool = False,
    cluster: "str | distributed.Client | None" = None,  # distributed is optional: imported for type checkers only
    resume: bool = False,
    select: str | None = None,
) -> list[dict]:
    """Train every point of the sweep and return one row per run (the rows of sweep.csv).

    `sweep_args` are the CLI's items (`["optimizer.lr=0.01,0.1", "seed=3"]`).
    `out_dir` must not be a file or a non-empty directory; None means
    `runs/sweep-<name>-<YYYYmmdd-HHMMSS>`. `jobs` and `backend` go to
    `joblib.Parallel` (backend None: loky, or the one set by
    `joblib.parallel_config`). `cluster` runs the points on dask instead:
    "local:N" (a LocalCluster of N processes for this call), a scheduler
    address such as "tcp://host:8786", or a `distributed.Client` (left open).
    `select` names the column that ranks the points in sweep.png (`val_loss`
    by default when the points validate, else `test_loss`).
    Raises ConfigError or UsageError before anything is written; a failed run
    is a row whose status is not completed. `resume=True` continues the
    interrupted sweep in `out_dir` (the same config and values): completed
    points are kept, interrupted ones resume exactly from their checkpoints.
    """
    selection = _selection([config for _, config in _check_points(config_path, sweep_args)[1]], select)
    with _prepared(config_path, sweep_args, out_dir, jobs, backend, cluster, resume) as (plan, results, _):
        return _execute(plan, results, progress, selection)


# ----- the plot and the table ---------------------------------------------------

_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _as_number(text):
    """The value as a float if it is a plain number (YAML reads `1e-3` as a string), else None."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _axis(ax, key, texts):
    """Place the key's values on the x axis; return {value text: x}."""
    numbers = [_as_number(t) for t in texts]
    if None in numbers:  # lists, mappings, names: one category per value, in the order given
        labels = [t if len(t) <= 24 else "..." + t[-21:] for t in texts]  # a path's end tells paths apart
        ax.set_xticks(range(len(texts)), labels, rotation=30 if max(map(len, labels)) > 6 else 0, ha="right")
        return {t: i for i, t in enumerate(texts)}
    if min(numbers) > 0 and max(numbers) / min(numbers) > 20:
        ax.set_xscale("log")
    return dict(zip(texts, numbers))


def _reported(rows):
    """The metrics the rows hold a test column for, as the task specs show them: headline first, the loss last."""
    columns = set().union(*(row.keys() for row in rows)) if rows else set()
    shown = [m for task in TASKS.values() for m in task.shown if f"test_{m.name}" in columns]
    return [*dict((m.name, m) for m in shown).values(), LOSS]


def plot_sweep(rows: Sequence[Mapping], keys: Sequence[str], path: str | os.PathLike[str],
               title: str | None = None, selection: Selection | None = None) -> None:
    """The final value of each of the task's metrics and of the loss against each swept key.

    One row of panels per key: accuracy and loss for classification, R², MAE
    and loss for regression (the task specs' metrics, headline first), on
    the validation split when `selection` ranks by it, else the test split.
    Runs that share the other keys' values form one line; the best point by
    `selection` is a star. A run that did not complete is a red cross on the
    bottom edge at its value. Drawn on a bare `Figure` (no pyplot state), so
    it is safe in threads.
    """
    from matplotlib.figure import Figure

    metrics = _reported(rows)
    split = "val" if selection is not None and selection.column.startswith("val_") else "test"
    ranked = selection.rank(rows) if selection is not None else []
    best = ranked[0] if ranked else None
    shown = {"val": "validation", "test": "test"}[split]
    fig = Figure(figsize=(5.5 * len(metrics), 3.8 * len(keys)), layout="constrained")
    axes = fig.subplots(len(keys), len(metrics), squeeze=False)
    for panels, key in zip(axes, keys):
        texts = list(dict.fromkeys(row[key] for row in rows))
        others = [k for k in keys if k != key]
        series: dict = {}
        for row in rows:
            series.setdefault(", ".join(f"{k}={row[k]}" for k in others) or "completed runs", []).append(row)
        for metric, ax in zip(metrics, panels):
            column = f"{split}_{metric.name}"
            x_of = _axis(ax, key, texts)
            for label, members in series.items():
                done = sorted((x_of[r[key]], r[column]) for r in members
                              if r["status"] == "completed" and r.get(column) is not None)
                if done:
                    ax.plot(*zip(*done), "o-", label=label)
            failed = sorted({x_of[r[key]] for r in rows if r["status"] != "completed"})
            if failed:  # along the bottom edge: such a run has no final metric to show
                ax.plot(
                    failed, [0.03] * len(failed), "x", color="red", ms=9, mew=2,
                    transform=ax.get_xaxis_transform(), label="a run here did not complete",
                )
            if best is not None and best.get(column) is not None:
                ax.plot([x_of[best[key]]], [best[column]], "*", color="gold", ms=16, mec="black", zorder=5,
                        label=f"best by {selection.column}")  # type: ignore[union-attr]  # best implies selection
            ax.set(xlabel=key, ylabel=f"{shown} {metric.label}", title=f"{shown} {metric.label} vs {key}")
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize="small")
            if metric.limits is not None:
                lo, hi = metric.limits
                ax.set_ylim(lo - 0.02 * (hi - lo), hi + 0.02 * (hi - lo))
            values = [r[column] for r in rows if r["status"] == "completed" and r.get(column) is not None]
            if metric.better == "min" and values and min(values) > 0 and max(values) / min(values) > 100:
                ax.set_yscale("log")  # an error that spans decades: the loss or the MAE of diverse runs
    if title:
        fig.suptitle(title)
    write_figure(fig, path, dpi=100)  # atomically, never through a symlink


def _cell(value, digits):
    if value is None:
        return "-" if digits else ""
    return f"{float(value):.{digits}f}" if digits else str(value)


def format_table(rows: Sequence[Mapping], keys: Sequence[str], selection: Selection | None = None) -> str:
    """A compact text table of the runs: index, swept values, status, final metrics, errors.

    With a `selection`, the runs are ranked by it, best first (runs without
    its value last, in point order), and a validation column it names is shown.
    """
    columns = [("#", "index", 0), *((k, k, 0) for k in keys), ("status", "status", 0)]
    columns += [("train loss", "train_loss", LOSS.digits)]
    if selection is not None:
        ranked = selection.rank(rows)
        rows = [*ranked, *(r for r in rows if not any(r is s for s in ranked))]
        if selection.column.startswith("val_"):
            metric = find_metric(selection.column)
            assert metric is not None  # a Selection names a task's metric
            columns += [(f"val {metric.short}", selection.column, metric.digits)]
    columns += [("test loss", "test_loss", LOSS.digits)]
    columns += [(f"test {m.short}", f"test_{m.name}", m.digits) for m in _reported(rows)[:-1]]  # the loss is in
    columns += [("seconds", "seconds", 1)]
    if any(row["error"] for row in rows):
        columns.append(("error", "error", 0))
    cells = [[title for title, _, _ in columns]]
    for row in rows:
        line = [_cell(row[field], digits) for _, field, digits in columns]
        if row["error"] and len(line[-1]) > 70:
            line[-1] = line[-1][:67] + "..."
        cells.append(line)
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    numeric = [digits > 0 or field == "index" for _, field, digits in columns]
    return "\n".join(
        "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(line, widths, numeric)).rstrip()
        for line in cells
    )


# ----- the command line ---------------------------------------------------------


SWEEP_EXAMPLES = """KEY=V1,V2,... sweeps a key; commas inside [...], {...} or quotes do not split, so
model.hidden=[16],[32,32] is two values. KEY=VALUE (one value) is fixed for every run.
With --cluster, the sweep directory must be on storage every worker mounts at the
same path (checked before training); a point whose worker dies is retried once.

examples:
  %(prog)s moons optimizer.lr=0.01,0.1,1 --jobs 2
  %(prog)s moons optimizer.lr=0.01,0.1 'model.hidden=[16],[32,32]' seed=3
  %(prog)s my.yaml optimizer.lr=0.01,0.1 --cluster local:2
  %(prog)s moons optimizer.lr=0.01,0.1 --cluster tcp://scheduler:8786 --out /shared/sweeps/lr

Config keys: micronet-train --help-config.
"""


def _arguments(argv, prog="micronet-sweep"):
    parser = CommandParser(
        prog=prog,
        usage_error=UsageError,
        description=(
            "Train one config over the Cartesian product of overrides, in parallel with joblib or on a dask "
            "cluster: one run directory per point, then sweep.csv and sweep.png. Exit status 0 if every run completed, "
            "1 if any failed or diverged, 2 for a bad command line or config (nothing is written)."
        ),
        epilog=SWEEP_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", nargs="?", metavar="CONFIG",
                        help="a YAML file, or the name of a shipped config (moons, iris, sine, ...)")
    parser.add_argument("items", nargs="*", metavar="KEY=V1,V2,...", help="values to sweep: optimizer.lr=0.01,0.1")
    parser.add_argument("--jobs", type=int, metavar="N", help="runs at a time (default 1; -1: one per CPU)")
    parser.add_argument("--out", metavar="DIR", help="sweep directory (default: runs/sweep-<name>-<YYYYmmdd-HHMMSS>)")
    parser.add_argument("--backend", metavar="NAME", help="joblib backend: loky (default), threading, ...")
    parser.add_argument(
        "--cluster", metavar="ADDRESS",
        help="run on dask instead: tcp://HOST:PORT of a running scheduler, or local:N for N local worker processes",
    )  # fmt: skip
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted sweep in --out DIR: finished points are kept, interrupted "
                             "ones resume from their checkpoints (give the same config and values)")
    parser.add_argument("--select", metavar="COLUMN",
                        help="rank the runs by this final value: val_loss (default when validating), val_accuracy, "
                             "val_r2, ... or test_* without validation")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_version()
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    args = parser.parse_intermixed_args(argv)
    if not args.config:
        parser.error(f"a config is required: {prog} moons optimizer.lr=0.1,1")
    return args


def _verdict(rows, keys, selection):
    """The closing lines: the best point by the selection, and which split chose it."""
    ranked = selection.rank(rows)
    lines = []
    if ranked:
        best = ranked[0]
        values = " ".join(f"{k}={best[k]}" for k in keys)
        metric = find_metric(selection.column)
        shown = metric.show(best[selection.column]) if metric is not None else best[selection.column]
        lines.append(f"best: run {best['index']} ({values}) with {selection.column} {shown}, "
                     f"in {Path(best['run_dir']).name}")
    else:
        lines.append(f"best: none (no completed run has {selection.column})")
    if not selection.validating:
        lines.append("note: the test split ranked these runs, so the best one's test score is optimistic; to choose "
                     "on held-out training data instead, add training.validation_split=0.2 (ranked by val_loss)")
    return "\n".join(lines)


def _sweep(args):
    jobs = 1 if args.jobs is None else args.jobs
    if args.cluster is not None and args.jobs is not None:
        raise UsageError("--jobs is for local sweeps; a cluster runs one point per worker thread")
    selection = _selection([config for _, config in _check_points(args.config, args.items)[1]], args.select)
    with _prepared(args.config, args.items, args.out, jobs, args.backend, args.cluster,
                   args.resume) as (plan, results, client):
        if client is not None and "dashboard" in client.scheduler_info()["services"]:
            print(f"dask dashboard: {client.dashboard_link}", flush=True)
        try:
            rows = _execute(plan, results, progress=not args.no_progress and sys.stderr.isatty(), selection=selection)
        except KeyboardInterrupt:
            print(
                f"interrupted; sweep.csv and the runs are in {plan.dir} "
                f"(continue the sweep: the same command with --resume --out {plan.dir})",
                file=sys.stderr,
            )
            return EXIT_SIGINT
    print(format_table(rows, plan.keys, selection))
    print(f"sweep directory: {plan.dir}\nplot: {plan.dir / 'sweep.png'}")
    print(_verdict(rows, plan.keys, selection))
    failed = [row for row in rows if row["status"] != "completed"]
    if failed:
        which = ", ".join(f"{Path(row['run_dir']).name} ({row['status']})" for row in failed)
        print(f"error: {len(failed)} of {len(rows)} runs did not complete: {which}", file=sys.stderr)
        return EXIT_FAILED_RUNS
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `micronet-sweep` and `python -m micronet.sweep`; returns the exit status."""
    prog = program_name("sweep", sys.argv[0] if sys.argv else "")
    argv = sys.argv[1:] if argv is None else argv
    return run_cli(lambda args: _sweep(_arguments(args, prog)), argv, (UsageError, ConfigError))


if __name__ == "__main__":
    sys.exit(main())
