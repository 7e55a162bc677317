"""Record micrograd 0.1.0's own numbers for its demo and for the lecture's training loop.

Writes tests/data/micrograd_goldens.json, which tests/test_micrograd.py checks
micronet.micrograd against to 1e-12. Runs real micrograd, so it needs a Python
with micrograd 0.1.0 and scikit-learn installed (not micronet):

    python3 -m venv /work/wt/refvenv
    /work/wt/refvenv/bin/pip install micrograd==0.1.0 scikit-learn numpy
    /work/wt/refvenv/bin/python experiments/make_micrograd_goldens.py

The demo: random.seed(1337) and np.random.seed(1337), two moons (100 points,
noise 0.1, labels -1/+1), micrograd's MLP(2, [16, 16, 1]), the mean hinge loss
max(0, 1 - y*score) plus 1e-4 times the sum of squared parameters, and 100 steps
of full-batch SGD with the learning rate 1 - 0.9*k/100 at step k.

The lecture: random.seed(1337), an MLP(3, [4, 4, 1]) with tanh on every
layer and every bias drawn from U(-1, 1), as the lecture builds it, on its four
samples and targets, the summed squared error, 20 steps of SGD at 0.1.
micrograd 0.1.0's Value has no tanh, so it is added here the lecture's way:
a node made with _children and a _backward closure (math.tanh for the value).
"""

import argparse
import importlib.metadata
import json
import math
import platform
import random
import sys
from pathlib import Path

import numpy as np
import sklearn
from micrograd.engine import Value
from micrograd.nn import MLP
from sklearn.datasets import make_moons

OUT = Path(__file__).parents[1] / "tests" / "data" / "micrograd_goldens.json"
LECTURE_XS = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
LECTURE_YS = [1.0, -1.0, -1.0, 1.0]


def demo(steps=100):
    np.random.seed(1337)
    random.seed(1337)
    X, y = make_moons(n_samples=100, noise=0.1)
    y = y * 2 - 1
    model = MLP(2, [16, 16, 1])
    initial = [p.data for p in model.parameters()]
    losses, accuracies = [], []
    for k in range(steps):
        scores = [model([Value(a), Value(b)]) for a, b in X]
        hinge = [(1 + -int(t) * s).relu() for t, s in zip(y, scores)]
        total = sum(hinge) * (1.0 / len(hinge)) + 1e-4 * sum(p * p for p in model.parameters())
        accuracies.append(sum((t > 0) == (s.data > 0) for t, s in zip(y, scores)) / len(y))
        model.zero_grad()
        total.backward()
        rate = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= rate * p.grad
        losses.append(total.data)
    return {
        "X": X.tolist(), "y": y.tolist(), "initial_parameters": initial, "loss": losses,
        "accuracy": [float(a) for a in accuracies], "final_parameters": [p.data for p in model.parameters()],
    }


def tanh(v):
    """tanh as a custom op on micrograd's Value, the way the lecture adds one."""
    t = math.tanh(v.data)
    out = Value(t, (v,), "tanh")

    def _backward():
        v.grad += (1 - t * t) * out.grad

    out._backward = _backward
    return out


class TanhNeuron:
    def __init__(self, nin):
        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(random.uniform(-1, 1))

    def __call__(self, x):
        return tanh(sum((w * xi for w, xi in zip(self.w, x)), self.b))

    def parameters(self):
        return [*self.w, self.b]


def lecture(steps=20, lr=0.1):
    random.seed(1337)
    sizes = [3, 4, 4, 1]
    layers = [[TanhNeuron(sizes[i]) for _ in range(sizes[i + 1])] for i in range(3)]
    parameters = [p for layer in layers for n in layer for p in n.parameters()]

    def net(x):
        for layer in layers:
            x = [n(x) for n in layer]
        return x[0]

    initial = [p.data for p in parameters]
    losses = []
    for _ in range(steps):
        predictions = [net(x) for x in LECTURE_XS]
        loss = sum((p - t) ** 2 for t, p in zip(LECTURE_YS, predictions))
        for p in parameters:
            p.grad = 0.0
        loss.backward()
        for p in parameters:
            p.data += -lr * p.grad
        losses.append(loss.data)
    return {
        "initial_parameters": initial, "loss": losses,
        "predictions": [net(x).data for x in LECTURE_XS], "final_parameters": [p.data for p in parameters],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    goldens = {
        "made_by": (f"experiments/make_micrograd_goldens.py: micrograd {importlib.metadata.version('micrograd')}, "
                    f"scikit-learn {sklearn.__version__}, NumPy {np.__version__}, "
                    f"Python {platform.python_version()}"),
        "demo": demo(),
        "lecture": lecture(),
    }
    args.out.write_text(json.dumps(goldens, indent=1) + "\n")
    d, le = goldens["demo"], goldens["lecture"]
    print(f"demo: loss {d['loss'][0]:.6f} -> {d['loss'][-1]:.6f}, accuracy {d['accuracy'][-1]:.0%}")
    print(f"lecture: loss {le['loss'][0]:.6f} -> {le['loss'][-1]:.6f}; predictions {le['predictions']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
