"""Write tests/data/loss_goldens.json: PyTorch's numbers for micronet's regression losses.

For mse, l1 and huber (several deltas) on one sample's k outputs, PyTorch's
float64 value (reduction "mean" over the k outputs, as micronet's per-sample
losses) and its gradient with respect to the outputs. Besides random cases,
hand-written ones pin the kinks: |o - t| exactly equal to delta (where huber
switches piece), o == t (where l1's slope is 0) and a single float target.
The classification losses' goldens are in nn_goldens.json
(experiments/make_nn_goldens.py).

    /work/refvenv/bin/python experiments/make_loss_goldens.py   # torch==2.13.0, CPU
"""

import json
import random
import sys
from pathlib import Path

TORCH_VERSION = "2.13.0"
OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "loss_goldens.json"
SEED = 11
DELTAS = [0.25, 0.5, 1.0, 2.0]

# (outputs, targets): every difference exactly representable, so o - t == +-delta holds in floats.
HAND = [
    ([1.25], 0.25),  # one output, a float target: d = 1.0, exactly huber's default delta
    ([-0.75], 0.25),  # d = -1.0
    ([0.75, 0.5], [0.25, 0.0]),  # d = 0.5 in both outputs: delta 0.5's switch point
    ([2.5, -1.5, 0.0], [0.5, 0.5, 0.0]),  # d = 2, -2, 0: delta 2's switch point, and l1's kink at 0
    ([0.3, 0.5], [0.3, 0.75]),  # d = 0 and d = -0.25
    ([3.0, -4.0, 0.125, 1.0], [3.0, -3.75, 0.0, -1.0]),  # d = 0, -0.25, 0.125, 2.0
]


def random_case(rng):
    k = rng.randint(1, 5)
    outputs = [round(rng.uniform(-3, 3), 4) for _ in range(k)]
    if k == 1 and rng.random() < 0.5:
        return outputs, round(rng.uniform(-3, 3), 4)  # a bare float target
    return outputs, [round(rng.uniform(-3, 3), 4) for _ in range(k)]


def evaluate(torch, outputs, targets):
    """Each loss's value and d(loss)/d(outputs) for one sample."""
    F = torch.nn.functional
    target = torch.tensor([targets] if isinstance(targets, float) else targets, dtype=torch.float64)
    losses = {"mse": F.mse_loss, "l1": F.l1_loss}
    losses.update({f"huber_{delta}": (lambda d: lambda o, t: F.huber_loss(o, t, delta=d))(delta) for delta in DELTAS})
    result = {}
    for name, fn in losses.items():
        o = torch.tensor(outputs, dtype=torch.float64, requires_grad=True)
        loss = fn(o, target)  # reduction="mean": over the k outputs
        loss.backward()
        result[name] = {"value": loss.item(), "grads": o.grad.tolist()}
    return result


def main():
    try:
        import torch
    except ImportError:
        sys.exit(f"error: this script needs torch=={TORCH_VERSION} (CPU): /work/refvenv/bin/python {__file__}")
    if torch.__version__.split("+")[0] != TORCH_VERSION:
        sys.exit(f"error: the goldens are pinned to torch=={TORCH_VERSION}, found {torch.__version__}")
    torch.set_num_threads(1)
    rng = random.Random(SEED)
    cases = HAND + [random_case(rng) for _ in range(30)]
    data = {
        "generated_by": f"experiments/make_loss_goldens.py with torch {torch.__version__}, float64",
        "deltas": DELTAS,
        "cases": [{"outputs": o, "targets": t, **evaluate(torch, o, t)} for o, t in cases],
    }
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
