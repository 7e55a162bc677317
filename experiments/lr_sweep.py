"""How does the final test accuracy on two moons depend on the learning rate?

Seven log-spaced learning rates from 0.003 to 1.0 on configs/moons.yaml (SGD
with momentum 0.9, 100 epochs), run two at a time through the sweep library.
Prints the table and where sweep.png and every run directory are.

    python experiments/lr_sweep.py [--out DIR] [--jobs N]

The default output, experiments/out/lr_sweep, is replaced on each run.
"""

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from micronet.sweep import format_table, run_sweep

ROOT = Path(__file__).resolve().parent.parent
LEARNING_RATES = [f"{lr:.2g}" for lr in np.geomspace(0.003, 1.0, 7)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "experiments" / "out" / "lr_sweep")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)

    if (args.out / "sweep.csv").is_file():  # this script's previous output: sweeps never overwrite
        shutil.rmtree(args.out)
    started = time.perf_counter()
    rows = run_sweep(
        ROOT / "configs" / "moons.yaml", [f"optimizer.lr={','.join(LEARNING_RATES)}"], out_dir=args.out, jobs=args.jobs
    )
    print(format_table(rows, ["optimizer.lr"]))
    completed = [row for row in rows if row["status"] == "completed"]
    if completed:
        best = max(completed, key=lambda row: (row["test_accuracy"], -row["test_loss"]))
        print(f"best: optimizer.lr={best['optimizer.lr']} (test accuracy {best['test_accuracy']:.3f})")
    print(f"plot: {args.out / 'sweep.png'}\nruns: {args.out}\ntotal time {time.perf_counter() - started:.1f} s")
    return 0 if len(completed) == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
