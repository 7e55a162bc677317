"""Write PyTorch's optimizer trajectories and lr schedules as golden data.

tests/test_optim.py replays every case with micronet and demands agreement
to 1e-10 relative, so this script pins the exact PyTorch version and runs
in float64 on the CPU with foreach=False (PyTorch's CPU default, the
single-tensor path whose arithmetic micronet.optim mirrors).

    /work/refvenv/bin/python experiments/make_optim_goldens.py

Trajectories: 25 steps on f(x, y) = (1 - x)^2 + 10 (y - x^2)^2 from (-1.2, 1.0)
(Rosenbrock's valley with a milder b = 10), x and y as separate scalar
tensors, like two micronet Values. Schedules: the lr after t = 0..30 calls
of scheduler.step(); invscaling is not in PyTorch and is computed from
scikit-learn's formula.
"""

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

TORCH_VERSION = "2.13.0"
COMMAND = "/work/refvenv/bin/python experiments/make_optim_goldens.py"
OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "optim_goldens.json"

START = (-1.2, 1.0)
STEPS = 25
SCHEDULE_STEPS = 30
SCHEDULE_BASE_LR = 0.1

SGD_CASES = [
    dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=wd)
    for lr in (1e-3, 5e-3)
    for momentum, nesterov in ((0.0, False), (0.9, False), (0.9, True))
    for wd in (0.0, 0.01)
]
ADAM_CASES = [
    dict(lr=lr, betas=betas, eps=eps, weight_decay=wd)
    for lr in (0.01, 0.1)
    # beta1 = 0.5 takes torch.lerp's other branch (weight >= 0.5); eps = 1e-3 makes eps matter
    for betas, eps in (((0.9, 0.999), 1e-8), ((0.5, 0.9), 1e-3))
    for wd in (0.0, 0.01)
]
SCHEDULE_CASES = [
    ("constant", {}),
    ("step", {"step_size": 7, "gamma": 0.1}),
    ("step", {"step_size": 3, "gamma": 0.5}),
    ("exponential", {"gamma": 0.9}),
    ("exponential", {"gamma": 0.97}),
    ("cosine", {"T_max": 30, "eta_min": 0.0}),
    ("cosine", {"T_max": 10, "eta_min": 0.001}),
    ("linear", {"start_factor": 1.0, "end_factor": 0.1, "total_iters": 100}),
    ("linear", {"start_factor": 0.25, "end_factor": 1.0, "total_iters": 12}),
    ("invscaling", {"power_t": 0.5}),
    ("invscaling", {"power_t": 0.25}),
]


def rosenbrock(x, y):
    """The objective; the test builds the same expression from Values."""
    return (1 - x) ** 2 + 10 * (y - x**2) ** 2


def trajectory(torch, optimizer_class, kwargs):
    """Parameters and loss before the first step and after each of STEPS steps."""
    x = torch.tensor(START[0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor(START[1], dtype=torch.float64, requires_grad=True)
    optimizer = optimizer_class([x, y], foreach=False, **kwargs)
    params, losses = [[x.item(), y.item()]], []
    for _ in range(STEPS):
        optimizer.zero_grad()
        loss = rosenbrock(x, y)
        loss.backward()
        losses.append(loss.item())
        optimizer.step()
        params.append([x.item(), y.item()])
    return {"params": params, "loss": losses}


def schedule_lrs(torch, name, kwargs):
    """optimizer.lr after t = 0..SCHEDULE_STEPS scheduler steps."""
    if name == "invscaling":  # scikit-learn: learning_rate_init / (t + 1) ** power_t
        return [SCHEDULE_BASE_LR / (t + 1) ** kwargs["power_t"] for t in range(SCHEDULE_STEPS + 1)]
    if name == "constant":
        return [SCHEDULE_BASE_LR] * (SCHEDULE_STEPS + 1)
    classes = {
        "step": torch.optim.lr_scheduler.StepLR,
        "exponential": torch.optim.lr_scheduler.ExponentialLR,
        "cosine": torch.optim.lr_scheduler.CosineAnnealingLR,
        "linear": torch.optim.lr_scheduler.LinearLR,
    }
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([p], lr=SCHEDULE_BASE_LR)
    scheduler = classes[name](optimizer, **kwargs)
    lrs = [optimizer.param_groups[0]["lr"]]
    for _ in range(SCHEDULE_STEPS):
        optimizer.step()  # no grad: a no-op that keeps the call order PyTorch expects
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    return lrs


def make_goldens(torch):
    torch.set_default_dtype(torch.float64)
    optimizers = []
    for case in SGD_CASES:
        run = trajectory(torch, torch.optim.SGD, case)
        optimizers.append({"optimizer": "sgd", "kwargs": case, **run})
    for case in ADAM_CASES:
        run = trajectory(torch, torch.optim.Adam, case)
        optimizers.append({"optimizer": "adam", "kwargs": {**case, "betas": list(case["betas"])}, **run})
    schedules = [
        {"schedule": name, "kwargs": kwargs, "base_lr": SCHEDULE_BASE_LR, "lr": schedule_lrs(torch, name, kwargs)}
        for name, kwargs in SCHEDULE_CASES
    ]
    for case in optimizers:
        if not all(math.isfinite(v) for xy in case["params"] for v in xy):
            raise RuntimeError(f"non-finite trajectory, choose a smaller lr: {case['kwargs']}")
    header = {
        "generator": "experiments/make_optim_goldens.py",
        "command": COMMAND,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "dtype": "float64",
        "device": "cpu",
        "foreach": False,
        "objective": "f(x, y) = (1 - x)**2 + 10 * (y - x**2)**2",
        "start": list(START),
        "steps": STEPS,
        "trajectory": "params[k] = [x, y] after k steps (params[0] is the start); loss[k] = f before step k+1",
        "schedule": f"lr[t] = the optimizer's lr after t scheduler steps, t = 0..{SCHEDULE_STEPS}",
    }
    return {"header": header, "optimizers": optimizers, "schedules": schedules}


def to_json(goldens):
    """JSON with one case per line: diffs of a regenerated file stay readable."""
    lines = ["{", f' "header": {json.dumps(goldens["header"], indent=1)},'.replace("\n", "\n ")]
    for key, last in (("optimizers", False), ("schedules", True)):
        cases = ",\n".join("  " + json.dumps(case) for case in goldens[key])
        lines.append(f' "{key}": [\n{cases}\n ]' + ("" if last else ","))
    lines.append("}")
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == goldens
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"output JSON (default: {OUT})")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        sys.exit(f"error: this script needs torch=={TORCH_VERSION} (CPU); run it as\n    {COMMAND}")
    if torch.__version__.split("+")[0] != TORCH_VERSION:
        sys.exit(f"error: the goldens are pinned to torch=={TORCH_VERSION}, found {torch.__version__}")
    warnings.simplefilter("error")  # any deprecation in the PyTorch calls should be seen, not skipped
    goldens = make_goldens(torch)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(to_json(goldens))
    print(f"wrote {len(goldens['optimizers'])} trajectories and {len(goldens['schedules'])} schedules to {args.out}")


if __name__ == "__main__":
    main()
