"""micrograd's demo notebook on micronet, through micronet.micrograd: only the imports change.

The notebook's recipe: seed Python's and NumPy's generators with 1337, make
two moons (100 points, labels -1/+1), build micrograd's MLP(2, [16, 16, 1]),
and take 100 full-batch SGD steps on the mean max-margin (hinge) loss plus
1e-4 times the squared parameters, the learning rate falling from 1.0 by
0.009 a step. micrograd ends at loss 0.010978 and 100% accuracy, and so does
this, to 1e-12 (tests/test_micrograd.py checks every step against
tests/data/micrograd_goldens.json). The last cell of the notebook, the
decision boundary on a 0.25 grid, is written to a PNG.

    python experiments/micrograd_compat_demo.py [--steps N] [--out DIR] [--quiet]
"""

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import make_moons

from micronet.micrograd import MLP, Value  # was: from micrograd.engine import Value; from micrograd.nn import MLP


def moons():
    """The notebook's data: 100 moons with noise 0.1 from NumPy's global generator, labels -1/+1."""
    X, y = make_moons(n_samples=100, noise=0.1)
    return X, y * 2 - 1


def total_loss(model, X, y):
    """The notebook's loss: mean hinge loss plus L2 (alpha 1e-4), and the accuracy."""
    inputs = [list(map(Value, row)) for row in X]
    scores = list(map(model, inputs))
    margins = [(1 + -label * score).relu() for label, score in zip(y, scores)]
    data_loss = sum(margins) * (1.0 / len(margins))
    reg_loss = 1e-4 * sum(p * p for p in model.parameters())
    right = [(label > 0) == (score.data > 0) for label, score in zip(y, scores)]
    return data_loss + reg_loss, sum(right) / len(right)


def run(steps=100, log=print):
    """Seed, build, train; returns (model, X, y, losses, accuracies), one loss per step as printed."""
    np.random.seed(1337)
    random.seed(1337)
    X, y = moons()
    model = MLP(2, [16, 16, 1])  # 2-layer neural network
    log(model)
    log(f"number of parameters {len(model.parameters())}")
    losses, accuracies = [], []
    for k in range(steps):
        loss, accuracy = total_loss(model, X, y)
        model.zero_grad()
        loss.backward()
        learning_rate = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        losses.append(loss.data)
        accuracies.append(accuracy)
        log(f"step {k} loss {loss.data}, accuracy {accuracy * 100}%")
    return model, X, y, losses, accuracies


def plot_boundary(model, X, y, path):
    """The notebook's last cell: the sign of the score on a 0.25 grid, with the points on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = 0.25
    x_min, x_max = X[:, 0].min() - 1, X[:, 0].max() + 1
    y_min, y_max = X[:, 1].min() - 1, X[:, 1].max() + 1
    xx, yy = np.meshgrid(np.arange(x_min, x_max, h), np.arange(y_min, y_max, h))
    grid = np.c_[xx.ravel(), yy.ravel()]
    Z = np.array([model(list(map(Value, row))).data > 0 for row in grid]).reshape(xx.shape)
    figure, ax = plt.subplots()
    ax.contourf(xx, yy, Z, cmap=plt.cm.Spectral, alpha=0.8)
    ax.scatter(X[:, 0], X[:, 1], c=y, s=40, cmap=plt.cm.Spectral)
    ax.set_xlim(xx.min(), xx.max())
    ax.set_ylim(yy.min(), yy.max())
    figure.savefig(path)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--out", default="experiments/out", help="directory for the decision boundary PNG")
    parser.add_argument("--quiet", action="store_true", help="print the last step only")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    model, X, y, losses, accuracies = run(args.steps, log=(lambda *a: None) if args.quiet else print)
    seconds = time.perf_counter() - started
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    png = out / "micrograd_compat_demo_boundary.png"
    plot_boundary(model, X, y, png)
    print(f"after {args.steps} steps: loss {losses[-1]:.6f}, accuracy {accuracies[-1]:.0%} ({seconds:.2f} s); "
          f"boundary saved to {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
