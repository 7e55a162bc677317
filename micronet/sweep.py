"""Parallel sweeps: one config, the Cartesian product of some overrides, one run each.

    python -m micronet.sweep configs/moons.yaml optimizer.lr=0.01,0.1,1 'model.hidden=[16],[32,32]' --jobs 2

Every point is a normal run directory written by `micronet.train.run` (the
one training loop), inside one sweep directory that also gets `sweep.csv`
(one row per run) and `sweep.png` (final test accuracy and loss against the
swept values). Every point's config is validated before anything is written;
a run that fails or diverges is recorded and the others carry on.

Runs go through `joblib.Parallel`. `--jobs` defaults to 1: one run after
another in this process, predictable on a shared machine and easy to debug;
`--jobs -1` uses every CPU. The backend is joblib's `loky` (processes) unless
told otherwise (`--backend threading`, or a registered one). To take a sweep to a dask cluster, call the library inside
joblib's context manager, with micronet installed on the workers and the
output directory on a filesystem they all see:

    from dask.distributed import Client
    import joblib
    from micronet.sweep import run_sweep

    client = Client("tcp://scheduler:8786")
    with joblib.parallel_config(backend="dask"):
        rows = run_sweep("configs/moons.yaml", ["optimizer.lr=0.01,0.1,1"], out_dir="/shared/sweep", jobs=-1)

`jobs=-1` hands every point to the cluster at once; `jobs=1` would run them
one by one in this process whatever the backend. Ray works the same way after
`ray.util.joblib.register_ray()` and `backend="ray"`.
"""

import argparse
import csv
import io
import itertools
import json
import math
import os
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import joblib
import yaml

from micronet.checkpoint import write_json_atomic, write_text_atomic
from micronet.config import ConfigError, load_config
from micronet.train import UsageError, new_run_dir, run, run_cli

__all__ = ["parse_sweep_args", "run_sweep", "plot_sweep", "format_table", "main"]

METRICS = ["train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds", "epochs"]
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
    items = []
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


def parse_sweep_args(args):
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


# ----- planning and running -----------------------------------------------------


@dataclass
class _Plan:
    """A validated sweep whose directory exists: everything but the training."""

    keys: list
    points: list  # [(index, {key: value text}, RunConfig, run directory)]
    parallel: joblib.Parallel
    dir: Path
    name: str


def _plan(config_path, sweep_args, out_dir, jobs, backend):
    """Check every point's config, the jobs and the backend; only then create the sweep directory."""
    keys, runs = parse_sweep_args(sweep_args)
    configs = []
    for index, overrides in enumerate(runs):
        try:
            configs.append(load_config(config_path, overrides))
        except ConfigError as e:
            raise _config_error(config_path, keys, overrides, index, e) from None
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs == 0:
        raise UsageError(f"jobs must be a nonzero int (workers; -1 = one per CPU), got {jobs!r}")
    try:
        parallel = joblib.Parallel(
            n_jobs=min(jobs, len(runs)) if jobs > 0 else jobs, backend=backend, return_as="generator_unordered"
        )
    except ValueError as e:
        raise UsageError(
            f"backend {backend!r} is not available ({e}); dask and ray are used from Python, see docs/sweep.md"
        ) from None
    name = configs[0].name
    sweep_dir = new_run_dir(f"sweep-{name}", out_dir)  # an unusable path is a UsageError naming it
    width = max(3, len(str(len(runs) - 1)))
    points = []
    for index, (overrides, config) in enumerate(zip(runs, configs)):
        values = _swept_values(keys, overrides)
        points.append((index, values, config, sweep_dir / _run_name(index, width, values)))
    return _Plan(keys, points, parallel, sweep_dir, name)


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


def _run_point(index, config, run_dir):
    """Train one point into `run_dir`; an error becomes its summary, so it cannot stop the sweep.

    At module level so loky and dask can pickle it by reference. It installs
    no signal handlers and draws no progress bar: it may run in a worker.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir()
    try:
        return index, run(config, run_dir)
    except Exception as e:  # noqa: BLE001 - any failure is this run's result, not the sweep's
        error = " ".join(f"{type(e).__name__}: {e}".split())
        (run_dir / "traceback.txt").write_text(traceback.format_exc())
        summary = {**_read_json(run_dir / "summary.json"), "status": "failed", "error": error}
        write_json_atomic(run_dir / "summary.json", summary)
        return index, summary


def _read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def _execute(plan, progress=False):
    """Run every point, then write sweep.csv and sweep.png; return the rows in point order."""
    tasks = (
        joblib.delayed(_run_point)(index, config, str(run_dir.resolve()))  # absolute: workers' cwd may differ
        for index, _, config, run_dir in plan.points
    )
    summaries = {}
    try:
        for index, summary in _progress_bar(plan.parallel(tasks), progress, len(plan.points)):
            summaries[index] = summary
    finally:  # on Ctrl-C too: sweep.csv records what finished
        rows = [_row(point, summaries.get(point[0])) for point in plan.points]
        _write_csv_atomic(plan.dir / "sweep.csv", list(rows[0]), rows)
    plot_sweep(rows, plan.keys, plan.dir / "sweep.png", title=f"{plan.name}: {len(rows)} runs")
    return rows


def _progress_bar(results, enabled, total):
    if not enabled:
        return results
    from tqdm import tqdm

    return tqdm(results, total=total, unit="run", file=sys.stderr, leave=False, dynamic_ncols=True)


def _row(point, summary):
    index, values, _, run_dir = point
    if summary is None:  # the sweep stopped first
        summary = {"status": "interrupted" if run_dir.exists() else "not run"}
    return {
        "index": index,
        "run_dir": str(run_dir),
        **values,
        "status": summary["status"],
        "error": summary.get("error"),
        **{metric: summary.get(metric) for metric in METRICS},
    }


def _write_csv_atomic(path, header, rows):
    """sweep.csv, written so readers see the old file or the new one, never half."""
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else repr(v) if isinstance(v, float) else v for v in row.values()])
    write_text_atomic(path, text.getvalue())


def run_sweep(config_path, sweep_args, out_dir=None, jobs=1, backend=None, progress=False):
    """Train every point of the sweep and return one row per run (the rows of sweep.csv).

    `sweep_args` are the CLI's items (`["optimizer.lr=0.01,0.1", "seed=3"]`).
    `out_dir` must not be a file or a non-empty directory; None means
    `runs/sweep-<name>-<YYYYmmdd-HHMMSS>`. `jobs` and `backend` go to
    `joblib.Parallel` (backend None: loky, or the one set by
    `joblib.parallel_config`). Raises ConfigError or UsageError before
    anything is written; a failed run is a row whose status is not completed.
    """
    return _execute(_plan(config_path, sweep_args, out_dir, jobs, backend), progress)


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
        ax.set_xticks(range(len(texts)), texts, rotation=30 if max(map(len, texts)) > 6 else 0, ha="right")
        return {t: i for i, t in enumerate(texts)}
    if min(numbers) > 0 and max(numbers) / min(numbers) > 20:
        ax.set_xscale("log")
    return dict(zip(texts, numbers))


def plot_sweep(rows, keys, path, title=None):
    """Final test accuracy and test loss against each swept key: one row of two panels per key.

    Runs that share the other keys' values form one line. A run that did not
    complete is a red cross on the bottom edge at its value. Drawn on a bare
    `Figure` (no pyplot state), so it is safe in threads.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.8 * len(keys)), layout="constrained")
    axes = fig.subplots(len(keys), 2, squeeze=False)
    for (acc_ax, loss_ax), key in zip(axes, keys):
        texts = list(dict.fromkeys(row[key] for row in rows))
        others = [k for k in keys if k != key]
        series = {}
        for row in rows:
            series.setdefault(", ".join(f"{k}={row[k]}" for k in others) or "completed runs", []).append(row)
        for metric, ax in (("test_accuracy", acc_ax), ("test_loss", loss_ax)):
            x_of = _axis(ax, key, texts)
            for label, members in series.items():
                done = sorted((x_of[r[key]], r[metric]) for r in members if r["status"] == "completed")
                if done:
                    ax.plot(*zip(*done), "o-", label=label)
            failed = sorted({x_of[r[key]] for r in rows if r["status"] != "completed"})
            if failed:  # along the bottom edge: such a run has no final metric to show
                ax.plot(
                    failed, [0.03] * len(failed), "x", color="red", ms=9, mew=2,
                    transform=ax.get_xaxis_transform(), label="a run here did not complete",
                )
            ax.set(xlabel=key, ylabel=metric.replace("_", " "), title=f"{metric.replace('_', ' ')} vs {key}")
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize="small")
        acc_ax.set_ylim(-0.02, 1.02)
        losses = [r["test_loss"] for r in rows if r["status"] == "completed" and r["test_loss"]]
        if losses and min(losses) > 0 and max(losses) / min(losses) > 100:
            loss_ax.set_yscale("log")
    if title:
        fig.suptitle(title)
    tmp = Path(path).with_name(f".{Path(path).name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, format="png", dpi=100)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _cell(value, digits):
    if value is None:
        return "-" if digits else ""
    return f"{float(value):.{digits}f}" if digits else str(value)


def format_table(rows, keys):
    """A compact text table of the runs: index, swept values, status, final metrics, errors."""
    columns = [("#", "index", 0), *((k, k, 0) for k in keys), ("status", "status", 0)]
    columns += [("train loss", "train_loss", 4), ("test loss", "test_loss", 4), ("test acc", "test_accuracy", 3)]
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


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, then exit 2, like micronet.train
        raise UsageError(f"{message} (see --help)")


def _arguments(argv):
    parser = _Parser(
        prog="python -m micronet.sweep",
        description=(
            "Train one config over the Cartesian product of overrides, in parallel with joblib: one run "
            "directory per point, then sweep.csv and sweep.png. Exit status 0 if every run completed, "
            "1 if any failed or diverged, 2 for a bad command line or config (nothing is written)."
        ),
        epilog=(
            "KEY=V1,V2,... sweeps a key; commas inside [...], {...} or quotes do not split, so "
            "model.hidden=[16],[32,32] is two values. KEY=VALUE (one value) is fixed for every run. "
            "Config keys are described in docs/config.md, sweeps and clusters in docs/sweep.md."
        ),
    )
    parser.add_argument("config", nargs="?", help="YAML run config, e.g. configs/moons.yaml")
    parser.add_argument("items", nargs="*", metavar="KEY=V1,V2,...", help="values to sweep: optimizer.lr=0.01,0.1")
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="runs at a time (default 1; -1: one per CPU)")
    parser.add_argument("--out", metavar="DIR", help="sweep directory (default: runs/sweep-<name>-<YYYYmmdd-HHMMSS>)")
    parser.add_argument("--backend", metavar="NAME", help="joblib backend: loky (default), threading, ...")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    args = parser.parse_intermixed_args(argv)
    if not args.config:
        raise UsageError("a config file is required: python -m micronet.sweep configs/moons.yaml optimizer.lr=0.1,1")
    return args


def _sweep(args):
    plan = _plan(args.config, args.items, args.out, args.jobs, args.backend)
    try:
        rows = _execute(plan, progress=sys.stderr.isatty())
    except KeyboardInterrupt:
        print(
            f"interrupted; sweep.csv and the runs are in {plan.dir} "
            "(continue one with python -m micronet.train --resume RUN_DIR)",
            file=sys.stderr,
        )
        return EXIT_SIGINT
    print(format_table(rows, plan.keys))
    print(f"sweep directory: {plan.dir}\nplot: {plan.dir / 'sweep.png'}")
    failed = [row for row in rows if row["status"] != "completed"]
    if failed:
        which = ", ".join(f"{Path(row['run_dir']).name} ({row['status']})" for row in failed)
        print(f"error: {len(failed)} of {len(rows)} runs did not complete: {which}", file=sys.stderr)
        return EXIT_FAILED_RUNS
    return 0


def main(argv=None):
    """Entry point of `python -m micronet.sweep`; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    return run_cli(lambda args: _sweep(_arguments(args)), argv, (UsageError, ConfigError))


if __name__ == "__main__":
    sys.exit(main())
