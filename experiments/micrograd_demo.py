"""micrograd's demo notebook, with micronet's library API and no trainer.

Two moons (100 points, labels -1/+1), an MLP 2-16-16-1, the max-margin
(hinge) loss plus 1e-4 L2, and full-batch SGD whose learning rate decays
linearly from 1.0 to 0.1 over the 100 steps (micrograd's 1.0 - 0.9*k/100).
Every step builds the Value graph eagerly, exactly as in the notebook.

    python experiments/micrograd_demo.py [--out DIR] [--steps N]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import make_moons

from micronet import MLP, SGD, hinge_loss
from micronet.compile import compile_model
from micronet.optim import LinearSchedule
from micronet.plot import plot_decision_boundary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="experiments/out", help="directory for the decision boundary PNG")
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    X, y = make_moons(n_samples=100, noise=0.1, random_state=1)
    y = y * 2 - 1  # labels -1 / +1 for the hinge loss
    inputs, labels = X.tolist(), y.tolist()
    model = MLP(2, [16, 16, 1], seed=1)
    optimizer = SGD(model.parameters(), lr=1.0, momentum=0.0)  # micrograd's plain SGD
    schedule = LinearSchedule(optimizer, start_factor=1.0, end_factor=0.1, total_iters=args.steps)
    print(f"{model}\n{'step':>4}  {'loss':>8}  {'accuracy':>8}  {'lr':>6}")

    for step in range(args.steps):
        scores = [model(x)[0] for x in inputs]
        data_loss = sum(hinge_loss(s, t) for s, t in zip(scores, labels)) * (1.0 / len(scores))
        reg_loss = 1e-4 * sum(p * p for p in model.parameters())
        loss = data_loss + reg_loss
        accuracy = sum((s.data > 0) == (t > 0) for s, t in zip(scores, labels)) / len(labels)

        optimizer.zero_grad()
        loss.backward()
        lr = optimizer.lr
        optimizer.step()
        schedule.step()
        if step % 10 == 0 or step == args.steps - 1:
            print(f"{step:>4}  {loss.data:8.5f}  {accuracy:8.1%}  {lr:6.3f}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    compiled = compile_model(model, 2)  # the 200x200 grid in one batch instead of 40,000 graphs

    def predict_proba(grid):
        p = 1.0 / (1.0 + np.exp(-compiled.logits(grid)[:, 0]))  # squash the margin into a shade
        return np.column_stack([1.0 - p, p])

    png = out / "micrograd_demo_boundary.png"
    plot_decision_boundary(predict_proba, X, (y > 0).astype(int), X[:0], y[:0], png, class_names=[-1, 1])
    print(f"final training accuracy {accuracy:.1%}; boundary saved to {png}")
    print(f"total time {time.perf_counter() - started:.2f} s")
    return 0 if accuracy == 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
