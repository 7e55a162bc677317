"""Write tests/data/contributing/: the goldens CONTRIBUTING.md's recipes regenerate.

The guide's loss and optimizer recipes patch experiments/make_loss_goldens.py
and experiments/make_optim_goldens.py and regenerate their data with PyTorch.
This script does the same in a temporary copy of the repository that follows
the whole guide, and keeps the files those patched scripts write, so that
tests/test_contributing.py can run the recipes' golden tests without torch.

    python experiments/make_contributing_goldens.py --torch-python PATH [--check]

Run it with the project's environment (it reuses tests/test_contributing.py);
the golden scripts themselves run under --torch-python (default
$MICRONET_TORCH_PYTHON), a Python with torch==2.13.0 (CPU: `pip install
torch==2.13.0` in a separate venv). `--check` writes nothing and exits 1 if
the committed files differ from what the patched scripts write.
"""

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_guide_tests():
    spec = importlib.util.spec_from_file_location("test_contributing", ROOT / "tests" / "test_contributing.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def has_torch(python, version):
    """Whether `python` runs and imports exactly torch `version`."""
    probe = subprocess.run([python, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True)
    return probe.returncode == 0 and probe.stdout.strip().split("+")[0] == version


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-python", default=os.environ.get("MICRONET_TORCH_PYTHON"),
                        help="a Python with torch==2.13.0 (default: $MICRONET_TORCH_PYTHON)")
    parser.add_argument("--check", action="store_true", help="compare with the committed files; write nothing")
    args = parser.parse_args(argv)
    guide = load_guide_tests()
    if not args.torch_python or not has_torch(args.torch_python, guide.TORCH_VERSION):
        sys.exit(f"error: pass --torch-python, a Python with torch=={guide.TORCH_VERSION}")
    with tempfile.TemporaryDirectory() as tmp:
        written = guide.regenerate_guide_goldens(Path(tmp) / "repo", args.torch_python)
    if args.check:
        stale = sorted(n for n, text in written.items() if not (guide.GUIDE_GOLDENS / n).is_file()
                       or (guide.GUIDE_GOLDENS / n).read_text() != text)
        extra = sorted(p.name for p in guide.GUIDE_GOLDENS.glob("*.json") if p.name not in written)
        print("the committed guide goldens match" if not stale + extra else f"differ: {', '.join(stale + extra)}")
        return 1 if stale + extra else 0
    guide.GUIDE_GOLDENS.mkdir(parents=True, exist_ok=True)
    for old in guide.GUIDE_GOLDENS.glob("*.json"):
        if old.name not in written:
            old.unlink()
    for name, text in written.items():
        (guide.GUIDE_GOLDENS / name).write_text(text)
        print(f"wrote {guide.GUIDE_GOLDENS / name}")


if __name__ == "__main__":
    sys.exit(main())
