"""Time micrograd's demo three ways: micrograd 0.1.0, micronet.micrograd, and micronet's main API.

The work is the demo notebook's: random.seed(1337) and np.random.seed(1337),
100 moons, MLP(2, [16, 16, 1]), mean hinge loss + 1e-4 L2, full-batch SGD
with the learning rate 1 - 0.9*k/100, 100 steps. All three start from
micrograd's initial weights (the main API copies them in with
load_state_dict), so they compute the same numbers, and the script checks
that they do before it reports a time:

- micrograd: micrograd 0.1.0 itself, if it is installed (pip install micrograd==0.1.0),
  with Python's garbage collector on, as the notebook runs it ("micrograd-nogc": off);
- compat: the notebook's code unchanged but for its imports, on micronet.micrograd;
- main: the same loop on micronet's own API (model(x)[0], hinge_loss, number inputs);
- compat-chain and compat-closures: what custom ops cost. Both build micrograd's own
  graph (each neuron a chain of binary + and * nodes, then relu) on micronet.micrograd:
  the first with micronet's built-in ops, the second with +, * and relu rewritten as
  custom ops, each with a _backward closure, as micrograd's engine writes them.

Each is timed as CPU time of this process (the machine may be shared; the
wall time is printed beside it). The engines take turns, --repeat rounds of
them (micrograd, minutes a run, only in the first), and each one's fastest
run is shown. Run from the repository root:

    python experiments/micrograd_timing.py                  # all that are installed
    python experiments/micrograd_timing.py --engines compat,main --repeat 3
"""

import argparse
import gc
import importlib.util
import random
import sys
import time

import numpy as np
from sklearn.datasets import make_moons

import micronet
import micronet.micrograd

ENGINES = ["micrograd", "micrograd-nogc", "compat", "main", "compat-chain", "compat-closures"]


class ClosureValue(micronet.micrograd.Value):
    """micronet.micrograd's Value with +, * and relu written as custom ops, micrograd's way."""

    __slots__ = ()

    def __add__(self, other):
        other = other if isinstance(other, micronet.Value) else ClosureValue(other)
        out = ClosureValue(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, micronet.Value) else ClosureValue(other)
        out = ClosureValue(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def relu(self):
        out = ClosureValue(0.0 if self.data < 0 else self.data, (self,), "relu")

        def _backward():
            self.grad += (out.data > 0) * out.grad

        out._backward = _backward
        return out

    __radd__ = __add__
    __rmul__ = __mul__


def chain_mlp(Value):
    """micrograd's MLP class, its neurons built from Value's + and * (no fused dot node)."""

    class Neuron(micronet.micrograd.Module):
        def __init__(self, nin, nonlin=True):
            self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
            self.b = Value(0)
            self.nonlin = nonlin

        def __call__(self, x):
            act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
            return act.relu() if self.nonlin else act

    class MLP(micronet.micrograd.Module):
        def __init__(self, nin, nouts):
            sizes = [nin, *nouts]
            self.layers = [[Neuron(sizes[i], nonlin=i != len(nouts) - 1) for _ in range(sizes[i + 1])]
                           for i in range(len(nouts))]

        def __call__(self, x):
            for layer in self.layers:
                x = [n(x) for n in layer]
            return x[0] if len(x) == 1 else x

    return MLP


def notebook(Value, MLP, steps):
    """The demo notebook's cells with the given Value and MLP: the loss after each step, the last accuracy."""
    np.random.seed(1337)
    random.seed(1337)
    X, y = make_moons(n_samples=100, noise=0.1)
    y = y * 2 - 1
    model = MLP(2, [16, 16, 1])
    losses = []
    for k in range(steps):
        inputs = [list(map(Value, row)) for row in X]
        scores = list(map(model, inputs))
        margins = [(1 + -label * score).relu() for label, score in zip(y, scores)]
        loss = sum(margins) * (1.0 / len(margins)) + 1e-4 * sum(p * p for p in model.parameters())
        accuracy = sum((label > 0) == (score.data > 0) for label, score in zip(y, scores)) / len(y)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= (1.0 - 0.9 * k / 100) * p.grad
        losses.append(loss.data)
    return losses, accuracy


def main_api(steps):
    """The same demo on micronet's own API, from micrograd's initial weights."""
    np.random.seed(1337)
    random.seed(1337)
    X, y = make_moons(n_samples=100, noise=0.1)
    inputs, labels = X.tolist(), (y * 2 - 1).tolist()
    model = micronet.MLP(2, [16, 16, 1])
    model.load_state_dict(micronet.micrograd.MLP(2, [16, 16, 1]).state_dict())  # micrograd's draws
    losses = []
    for k in range(steps):
        scores = [model(x)[0] for x in inputs]
        data_loss = sum(micronet.hinge_loss(s, t) for s, t in zip(scores, labels)) * (1.0 / len(scores))
        loss = data_loss + 1e-4 * sum(p * p for p in model.parameters())
        accuracy = sum((t > 0) == (s.data > 0) for s, t in zip(scores, labels)) / len(labels)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= (1.0 - 0.9 * k / 100) * p.grad
        losses.append(loss.data)
    return losses, accuracy


def runner(engine):
    if engine.startswith("micrograd"):
        from micrograd.engine import Value
        from micrograd.nn import MLP

        return lambda steps: notebook(Value, MLP, steps)
    if engine == "compat":
        return lambda steps: notebook(micronet.micrograd.Value, micronet.micrograd.MLP, steps)
    if engine == "compat-chain":
        return lambda steps: notebook(micronet.micrograd.Value, chain_mlp(micronet.micrograd.Value), steps)
    if engine == "compat-closures":
        return lambda steps: notebook(ClosureValue, chain_mlp(ClosureValue), steps)
    return main_api


def timed(engine, steps):
    run = runner(engine)
    collecting = gc.isenabled()
    if engine == "micrograd-nogc":
        gc.disable()
    try:
        gc.collect()
        cpu, wall = time.process_time(), time.perf_counter()
        losses, accuracy = run(steps)
        return time.process_time() - cpu, time.perf_counter() - wall, losses, accuracy
    finally:
        if collecting:
            gc.enable()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated, of {', '.join(ENGINES)}")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine (micrograd's: 1); the fastest is shown")
    args = parser.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown:
        parser.error(f"unknown engine(s) {', '.join(unknown)}; choose from {', '.join(ENGINES)}")
    if any(e.startswith("micrograd") for e in engines) and importlib.util.find_spec("micrograd") is None:
        print("micrograd is not installed (pip install micrograd==0.1.0): timing without it")
        engines = [e for e in engines if not e.startswith("micrograd")]
    print(f"micrograd's demo, {args.steps} steps; Python {sys.version.split()[0]}, micronet {micronet.__version__}")
    print(f"{'engine':<16}{'CPU s':>9}{'wall s':>9}{'ms/step':>9}{'final loss':>12}{'accuracy':>10}{'vs compat':>11}")
    results = {}
    for round_ in range(args.repeat):  # the engines take turns, so a busy spell on the machine hits them alike
        for engine in engines:
            if round_ and engine.startswith("micrograd"):
                continue  # minutes a run: once is enough
            run = timed(engine, args.steps)
            if engine not in results or run[0] < results[engine][0]:
                results[engine] = run
    reference = results.get("compat") or next(iter(results.values()))
    worst = 0.0
    for engine, (cpu, wall, losses, accuracy) in results.items():
        gap = max(abs(a - b) for a, b in zip(losses, reference[2]))
        worst = max(worst, gap)
        ratio = f"{cpu / results['compat'][0]:.2f}x" if "compat" in results else "-"
        print(f"{engine:<16}{cpu:>9.2f}{wall:>9.2f}{1000 * cpu / args.steps:>9.1f}{losses[-1]:>12.6f}"
              f"{accuracy:>10.0%}{ratio:>11}")
    print(f"largest difference between the engines' losses, over all steps: {worst:.1e}")
    return 0 if worst <= 1e-12 else 1


if __name__ == "__main__":
    sys.exit(main())
