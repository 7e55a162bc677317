"""Computation graphs drawn with micronet.graph: the lecture neuron, then a tiny MLP's loss.

The micrograd lecture's tanh neuron twice, once from binary ops (every step
a node) and once as micronet.nn.Neuron builds it (the weighted sum as one
`dot` node), with the gradients after backward checked against the values
worked out by hand. Then an MLP 2-4-4-1's mean squared error on XOR's four
points: too big to read as a picture, so it is summarised by node counts
and the size of its DOT text. Pictures are SVGs when Graphviz's `dot` is on
PATH, otherwise .dot text files (this says so and how to render them).

    python experiments/graph_demo.py [--out DIR] [--rankdir LR]
"""

import argparse
import sys
from collections import Counter
from pathlib import Path

from micronet import MLP, mse_loss
from micronet.graph import GraphvizNotFoundError, collect_nodes, lecture_neuron, render, to_dot

# d o / d leaf by hand: do/dn = 1 - tanh(n)^2 = 0.5 with tanh(n) = 1/sqrt(2),
# then each product passes 0.5 times its other factor.
EXPECTED_GRADS = {"x1": 0.5 * -3.0, "w1": 0.5 * 2.0, "x2": 0.5 * 1.0, "w2": 0.5 * 0.0, "b": 0.5}


def save(value, out, stem, rankdir):
    """An SVG if Graphviz is installed, else the DOT text, which any Graphviz viewer can show."""
    try:
        print(f"  wrote {render(value, out / f'{stem}.svg', rankdir)}")
    except GraphvizNotFoundError:
        path = render(value, out / f"{stem}.dot", rankdir)
        print(f"  wrote {path} (DOT text: Graphviz's dot is not on PATH; after apt/brew/conda install graphviz,"
              f" `dot -Tsvg {path} -o {path.with_suffix('.svg')}` draws it, or paste it into any Graphviz viewer)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="experiments/out", help="directory for the pictures")
    parser.add_argument("--rankdir", default="LR", help="TB, LR, BT or RL")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    ok = True
    for fused, stem in [(False, "neuron"), (True, "neuron_fused")]:
        o = lecture_neuron(fused=fused)
        o.backward()
        nodes = collect_nodes(o)
        grads = {v.label: v.grad for v in nodes if v.label in EXPECTED_GRADS}
        matches = all(abs(grads[k] - g) < 1e-12 for k, g in EXPECTED_GRADS.items())
        ok = ok and matches
        form = "fused dot" if fused else "binary ops"
        print(f"neuron ({form}): o = {o.data:.4f}, {len(nodes)} values, "
              f"grads {', '.join(f'{k}={g:+.4f}' for k, g in grads.items())} "
              f"({'match' if matches else 'DO NOT match'} the hand-worked values)")
        save(o, out, stem, args.rankdir)

    model = MLP(2, [4, 4, 1], activation="tanh", seed=0)
    X, y = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], [0.0, 1.0, 1.0, 0.0]
    loss = sum(mse_loss(model(x), [t]) for x, t in zip(X, y)) * 0.25
    loss.backward()
    nodes = collect_nodes(loss)
    ops = Counter(v._op for v in nodes if v._prev)
    edges = sum(len(v._prev) for v in nodes)
    text = to_dot(loss, args.rankdir)
    print(f"MLP 2-4-4-1 XOR loss {loss.data:.4f}: {len(nodes)} values ({len(nodes) - sum(ops.values())} leaves, "
          f"{len(model.parameters())} of them parameters), {sum(ops.values())} ops, {edges} child edges")
    print(f"  ops: {', '.join(f'{name} x{n}' for name, n in ops.most_common())}")
    print(f"  DOT text: {len(text.splitlines())} lines, {len(text.encode('utf-8')) / 1024:.1f} KiB")
    save(loss, out, "mlp_loss", args.rankdir)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
