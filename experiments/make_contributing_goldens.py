"""Write tests/data/contributing/: the goldens CONTRIBUTING.md's recipes regenerate.

The guide's loss and optimizer recipes patch experiments/make_loss_goldens.py
and experiments/make_optim_goldens.py and regenerate their data with PyTorch.
This script does the same in a temporary copy of the repository that follows
the whole guide, and keeps the files those patched scripts write, so that
tests/test_contributing.py can run the recipes' golden tests without torch.

    python experiments/make_contributing_goldens.py [--torch-python PATH]

Run it with the project's environment (it reuses tests/test_contributing.py);
the golden scripts themselves run under --torch-python, a Python with
torch==2.13.0 (CPU): by default $MICRONET_TORCH_PYTHON, else /work/refvenv/bin/python.
"""

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_guide_tests():
    spec = importlib.util.spec_from_file_location("test_contributing", ROOT / "tests" / "test_contributing.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-python", help="a Python with torch==2.13.0")
    args = parser.parse_args(argv)
    guide = load_guide_tests()
    python = args.torch_python or guide.torch_python()
    if python is None:
        sys.exit(f"error: no Python with torch=={guide.TORCH_VERSION} found; pass --torch-python")
    with tempfile.TemporaryDirectory() as tmp:
        written = guide.regenerate_guide_goldens(Path(tmp) / "repo", python)
    guide.GUIDE_GOLDENS.mkdir(parents=True, exist_ok=True)
    for old in guide.GUIDE_GOLDENS.glob("*.json"):
        if old.name not in written:
            old.unlink()
    for name, text in written.items():
        (guide.GUIDE_GOLDENS / name).write_text(text)
        print(f"wrote {guide.GUIDE_GOLDENS / name}")


if __name__ == "__main__":
    main()
