"""Whole-command timings: the moons run against its import floor, the GIF's extra cost, --help.

    python experiments/end_to_end.py [--repeats 5]

Each command runs in a fresh process, as a user runs it, and the commands
take turns within each repeat so that a busy moment hurts them all alike.
Reported: the median wall time of each, and the ratios the issues set as
targets:

- `python -m micronet.train configs/moons.yaml --no-progress` against
  `python -c "import numpy, sklearn.datasets, matplotlib.figure"`, the
  imports no moons run can avoid (issue 12: at most 1.4x);
- the same run with `--animate` (writes training.gif) against without
  (issue 13: at most 2 s more);
- `micronet-train --help`, which must not load the heavy libraries.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MOONS = str(ROOT / "configs" / "moons.yaml")


def commands(scratch: Path) -> dict[str, list[str]]:
    python = sys.executable
    return {
        "import floor": [python, "-c", "import numpy, sklearn.datasets, matplotlib.figure"],
        "moons run": [python, "-m", "micronet.train", MOONS, "--no-progress", "--out", str(scratch / "run")],
        "moons run --animate": [python, "-m", "micronet.train", MOONS, "--no-progress", "--animate",
                                "--out", str(scratch / "gif")],
        "--help": [python, "-m", "micronet.train", "--help"],
    }


def wall_time(command: list[str], scratch: Path) -> float:
    for old in ("run", "gif"):
        if (scratch / old).exists():
            subprocess.run(["rm", "-rf", str(scratch / old)], check=True)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=scratch)
    return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command (default 5)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        todo = commands(scratch)
        for command in todo.values():  # warm the file cache and the .pyc files once
            wall_time(command, scratch)
        times = {name: [] for name in todo}
        for _ in range(args.repeats):
            for name, command in todo.items():
                times[name].append(wall_time(command, scratch))
    median = {name: statistics.median(values) for name, values in times.items()}
    for name, value in median.items():
        spread = f"{min(times[name]):.2f}-{max(times[name]):.2f}"
        print(f"{name:<22} {value:6.2f} s  (median of {args.repeats}; {spread} s)")
    ratio = median["moons run"] / median["import floor"]
    extra = median["moons run --animate"] - median["moons run"]
    print(f"moons run / import floor: {ratio:.2f}x (issue 12 target: <= 1.4x)")
    print(f"--animate costs {extra:+.2f} s (issue 13 target: <= 2 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
