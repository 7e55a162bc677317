"""Regenerate docs/sine_fit.png: the fit.png of `micronet-train sine`, as the README shows it.

    python experiments/make_sine_fit.py
"""

import shutil
import sys
import tempfile
from pathlib import Path

from micronet.config import load_config
from micronet.train import run

DOCS = Path(__file__).resolve().parents[1] / "docs"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        summary = run(load_config("sine"), Path(tmp))
        shutil.copyfile(Path(tmp) / "fit.png", DOCS / "sine_fit.png")
    print(f"wrote {DOCS / 'sine_fit.png'}: test R² {summary['test_r2']:.3f}")
    return 0 if summary["status"] == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
