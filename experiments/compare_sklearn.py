"""Is each shipped config at least as good as scikit-learn's MLPClassifier (or MLPRegressor)?

    python experiments/compare_sklearn.py [--configs moons iris sine ...] [--seeds N] [--json]

For every config, micronet trains exactly as `python -m micronet.train` would
(the library's `load_config`, `prepare_data`, `new_state`, `make_executor`,
`run_epochs`, with no run directory), and `MLPClassifier` trains on the very
same `prepare_data` output: the same split and the same standardisation.
Regression configs are scored by test R² against `MLPRegressor`, which also
gets the same standardised targets (R² is the same in original units).

The scikit-learn side gets the setup a practitioner would reach for first, so
the comparison is against a sensible baseline, not a strawman:

- the same hidden sizes and activation (`sigmoid` is its `logistic`);
- its default solver, adam (lr 1e-3, batches of min(200, n), alpha=1e-4):
  the defaults are what most users run, so they are the bar to clear;
- `max_iter=2000` instead of 200, so it stops on its own convergence test
  (`tol`, `n_iter_no_change`) rather than on the iteration cap. If it still
  hits the cap, its ConvergenceWarning is caught and shown in the `sk conv`
  column (and `converged` in --json), never silently dropped;
- `random_state` = the config's seed, so each seed is one reproducible draw.

What still differs is the recipe, which is the point of the comparison: its
initialisation is Glorot-uniform for every activation (micronet uses He for
relu), and it has its own lr, batch size, L2 penalty and stopping rule.

Times are training only (`time.perf_counter`): for micronet building the
model, compiling it and the loop (whose per-epoch train/test evaluation is part
of the loop the CLI runs); for scikit-learn the constructor and `.fit`.
Loading data, plots and checkpoints are excluded on both sides.

`--seeds N` repeats every config with `seed=0..N-1` (data, split and both
initialisations change) and reports the means, so a config must win on
average, not by the luck of one seed. Exit status 1 when any micronet
score (the mean, with --seeds) is below scikit-learn's;
2 for a config that cannot be loaded.
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor

from micronet.config import ConfigError, load_config
from micronet.data import DataError
from micronet.loop import Plan, config_loss, make_executor, new_state, run_epochs
from micronet.train import load_run_data

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
SHIPPED = ["moons", "circles", "blobs", "iris", "wine", "breast_cancer", "digits", "sine", "friedman1", "diabetes"]
SKLEARN_ACTIVATION = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic"}
SKLEARN_MAX_ITER = 2000


def score_name(config) -> str:
    """What a config is judged by: test accuracy, or test R² for regression."""
    return "accuracy" if config.task == "classification" else "r2"


def train_micronet(config, data) -> dict:
    """The test score and training seconds of one CLI-equivalent run (the model as saved)."""
    started = time.perf_counter()
    state = new_state(config, data)
    executor = make_executor(state.model, config_loss(config), config.training.backend, data.feature_count)
    run_epochs(Plan.from_config(config), data, state, executor)
    state.finish()
    seconds = time.perf_counter() - started
    return {"score": state.final_row()[f"test_{score_name(config)}"], "seconds": seconds, "epochs": state.epoch}


def train_sklearn(config, data) -> dict:
    """The test score, training seconds and convergence of MLPClassifier/MLPRegressor on the same split."""
    estimator = MLPClassifier if config.task == "classification" else MLPRegressor
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        started = time.perf_counter()
        model = estimator(
            hidden_layer_sizes=tuple(config.model.hidden),
            activation=SKLEARN_ACTIVATION[config.model.activation],
            max_iter=SKLEARN_MAX_ITER,
            random_state=config.seed,
        )
        model.fit(data.X_train, data.y_train)
        seconds = time.perf_counter() - started
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    score = float(model.score(data.X_test, data.y_test))  # accuracy, or R²
    return {"score": score, "seconds": seconds, "converged": converged, "iterations": model.n_iter_}


def compare(config_path: Path, seeds: list[int] | None) -> dict:
    """Both models on one config, for its own seed (None) or each of `seeds`; means included."""
    overrides = [[]] if seeds is None else [[f"seed={s}"] for s in seeds]
    runs = []
    for override in overrides:
        config = load_config(config_path, override)
        data = load_run_data(config)
        micronet, sklearn = train_micronet(config, data), train_sklearn(config, data)
        runs.append({"seed": config.seed, "micronet": micronet, "sklearn": sklearn})
    return {
        "dataset": config.name,
        "score": score_name(config),
        "micronet_score": _mean(runs, "micronet", "score"),
        "sklearn_score": _mean(runs, "sklearn", "score"),
        "micronet_seconds": _mean(runs, "micronet", "seconds"),
        "sklearn_seconds": _mean(runs, "sklearn", "seconds"),
        "sklearn_converged": all(r["sklearn"]["converged"] for r in runs),
        "runs": runs,
    }


def _mean(runs, side, key):
    return float(np.mean([run[side][key] for run in runs]))


def loses(row: dict) -> bool:
    """micronet below scikit-learn; the tolerance only absorbs float noise in the means."""
    return row["micronet_score"] < row["sklearn_score"] - 1e-9


def format_table(rows: list[dict], seeds: list[int] | None) -> str:
    """A plain-text table, one line per config, with the verdict."""
    header = (f"{'dataset':<14} {'score':>8} {'micronet':>9} {'sklearn':>8} {'mn s':>7} {'sk s':>7} {'sk conv':>8}"
              "  result")
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['dataset']:<14} {r['score']:>8} {r['micronet_score']:>9.4f} {r['sklearn_score']:>8.4f} "
            f"{r['micronet_seconds']:>7.2f} {r['sklearn_seconds']:>7.2f} "
            f"{'yes' if r['sklearn_converged'] else 'NO':>8}  "
            f"{'LOSES' if loses(r) else 'ok'}"
        )
    what = "config seed" if seeds is None else f"mean over seeds {seeds[0]}..{seeds[-1]}"
    lines.append(f"test accuracy (classification) or R² (regression) and training seconds; {what}")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Parse options, run the comparison, print it; 1 if micronet loses anywhere."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=SHIPPED, metavar="NAME",
                        help="config names in configs/ or paths to YAML files (default: all shipped)")
    parser.add_argument("--seeds", type=int, metavar="N", help="run seeds 0..N-1 and report means")
    parser.add_argument("--json", action="store_true", help="print machine-readable results")
    args = parser.parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    seeds = None if args.seeds is None else list(range(args.seeds))
    paths = [Path(c) if c.endswith((".yaml", ".yml")) else CONFIG_DIR / f"{c}.yaml" for c in args.configs]
    try:
        rows = [compare(path, seeds) for path in paths]
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(rows, indent=2) if args.json else format_table(rows, seeds))
    return 1 if any(loses(r) for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
