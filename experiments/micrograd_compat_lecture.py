"""The second half of the micrograd lecture on micronet: the hand-built tanh MLP and its training loop.

The lecture builds Neuron, Layer and MLP on its own Value class: every neuron
is tanh(w . x + b), with w and b drawn from U(-1, 1), and an MLP(3, [4, 4, 1])
is trained on four samples by summed squared error, 20 steps of gradient
descent at 0.1. Here those classes run on `micronet.micrograd.Value`. tanh is
micronet's own op, or (--custom-op) a custom op written the lecture's way,
with `out._backward = ...`; either way, from random.seed(1337) the loss goes
from 6.005 to 0.0178, as with micrograd (tests/test_micrograd.py checks every
step against tests/data/micrograd_goldens.json).

    python experiments/micrograd_compat_lecture.py [--custom-op] [--steps N] [--seed S]
"""

import argparse
import math
import random
import sys

from micronet.micrograd import Value

XS = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
YS = [1.0, -1.0, -1.0, 1.0]  # desired targets


def tanh_the_lectures_way(x):
    """tanh as a custom op: the value, its children, and a _backward that adds into the child's grad."""
    t = math.tanh(x.data)
    out = Value(t, (x,), "tanh")

    def _backward():
        x.grad += (1 - t**2) * out.grad

    out._backward = _backward
    return out


class Neuron:
    def __init__(self, nin, tanh=Value.tanh):
        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(random.uniform(-1, 1))
        self.tanh = tanh

    def __call__(self, x):
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)  # w . x + b
        return self.tanh(act)

    def parameters(self):
        return self.w + [self.b]


class Layer:
    def __init__(self, nin, nout, **kwargs):
        self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]

    def __call__(self, x):
        outs = [n(x) for n in self.neurons]
        return outs[0] if len(outs) == 1 else outs

    def parameters(self):
        return [p for neuron in self.neurons for p in neuron.parameters()]


class MLP:
    def __init__(self, nin, nouts, **kwargs):
        sz = [nin] + nouts
        self.layers = [Layer(sz[i], sz[i + 1], **kwargs) for i in range(len(nouts))]

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]


def run(steps=20, lr=0.1, seed=1337, custom_op=False, log=print):
    """Train the lecture's MLP(3, [4, 4, 1]); returns (model, losses), one loss per step."""
    random.seed(seed)
    n = MLP(3, [4, 4, 1], **({"tanh": tanh_the_lectures_way} if custom_op else {}))
    losses = []
    for k in range(steps):
        # forward pass
        ypred = [n(x) for x in XS]
        loss = sum((yout - ygt) ** 2 for ygt, yout in zip(YS, ypred))
        # backward pass
        for p in n.parameters():
            p.grad = 0.0
        loss.backward()
        # update
        for p in n.parameters():
            p.data += -lr * p.grad
        losses.append(loss.data)
        log(k, loss.data)
    return n, losses


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--custom-op", action="store_true", help="tanh as a custom op with _backward")
    args = parser.parse_args(argv)
    n, losses = run(args.steps, seed=args.seed, custom_op=args.custom_op)
    print("predictions:", [round(n(x).data, 6) for x in XS], "targets:", YS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
