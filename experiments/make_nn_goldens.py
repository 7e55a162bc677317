"""Write tests/data/nn_goldens.json: PyTorch's numbers for micronet's MLP and losses.

A tanh MLP 3-5-4-3 with micronet's seeded initial weights (copied into
torch.nn.Linear layers in micronet's parameter order) and a cross-entropy
loss over a small batch; plus every loss on random logits. PyTorch is not a
dependency of micronet; install the CPU build kept on this machine with

    pip install torch==2.13.0        # never a bare `pip install torch`
    python experiments/make_nn_goldens.py
"""

import json
import random
import sys
from pathlib import Path

try:
    import torch
except ImportError:
    sys.exit("this script needs PyTorch: pip install torch==2.13.0")

from micronet.nn import MLP

OUT = Path(__file__).parents[1] / "tests" / "data" / "nn_goldens.json"
torch.set_default_dtype(torch.float64)


def mlp_case(seed):
    model = MLP(3, [5, 4, 3], activation="tanh", seed=seed)
    rng = random.Random(seed)
    X = [[rng.uniform(-2, 2) for _ in range(3)] for _ in range(6)]
    y = [rng.randrange(3) for _ in range(6)]
    layers = []
    for layer in model.layers:
        lin = torch.nn.Linear(len(layer.neurons[0].w), len(layer.neurons))
        with torch.no_grad():
            lin.weight.copy_(torch.tensor([[w.data for w in n.w] for n in layer.neurons]))
            lin.bias.copy_(torch.tensor([n.b.data for n in layer.neurons]))
        layers.append(lin)
    h = torch.tensor(X)
    for i, lin in enumerate(layers):
        h = lin(h)
        if i < len(layers) - 1:
            h = torch.tanh(h)
    loss = torch.nn.functional.cross_entropy(h, torch.tensor(y))  # mean over the batch
    loss.backward()
    grads = []
    for lin in layers:  # micronet order: neuron by neuron, weights then bias
        for j in range(lin.weight.shape[0]):
            grads.extend(lin.weight.grad[j].tolist())
            grads.append(lin.bias.grad[j].item())
    params = [p.data for p in model.parameters()]
    return {"params": params, "X": X, "y": y, "logits": h.tolist(), "loss": loss.item(), "grads": grads}


def loss_case(rng):
    k = rng.randrange(2, 6)
    logits = [rng.uniform(-4, 4) for _ in range(k)]
    target = rng.randrange(k)
    score, label = rng.uniform(-2, 2), rng.choice([-1, 1])
    targets = [rng.uniform(-1, 1) for _ in range(k)]
    case = {"logits": logits, "target": target, "score": score, "label": label, "targets": targets}

    def run(name, fn, *leaves):
        xs = [torch.tensor(v, requires_grad=True) for v in leaves]
        out = fn(*xs)
        if out.dim() == 0:
            out.backward()
            case[name] = {"value": out.item(), "grads": [x.grad.tolist() for x in xs]}
        else:
            case[name] = {"value": out.tolist()}

    F = torch.nn.functional
    t = torch.tensor([target])
    run("cross_entropy", lambda x: F.cross_entropy(x[None], t), logits)
    run("log_softmax", lambda x: F.log_softmax(x, 0), logits)
    run("softmax", lambda x: F.softmax(x, 0), logits)
    run("multiclass_hinge", lambda x: F.multi_margin_loss(x[None], t), logits)
    run("mse", lambda x: F.mse_loss(x, torch.tensor(targets)), logits)
    run("hinge", lambda s: torch.relu(1 - label * s), score)
    return case


def main():
    rng = random.Random(2024)
    data = {
        "generated_by": f"experiments/make_nn_goldens.py with torch {torch.__version__}, float64",
        "mlp": [mlp_case(seed) for seed in range(3)],
        "losses": [loss_case(rng) for _ in range(20)],
    }
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
