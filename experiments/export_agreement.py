"""Do the exported models compute what micronet computes?

Trains each shipped config (with its own epochs, or --epochs), exports the
run with micronet.export.to_onnx in float64 and in float32 and runs both in
onnxruntime on the run's test split, in raw units, against
`micronet.load(run).predict_proba` (classification) or `.predict`
(regression). Then moves the model to PyTorch with to_torch and compares
the outputs and the gradients of the summed loss (cross-entropy or squared
error) with micronet's eager engine, and checks that
from_torch(to_torch(model)) gives back every weight bit for bit.

    python experiments/export_agreement.py [--configs moons,iris] [--epochs 2]

Needs the onnx and torch extras: pip install -e '.[onnx,torch]'. Exits 1
when float64 ONNX or torch differs by more than 1e-12, or float32 by more
than 1e-6 (relative to the outputs' size, for regression values).
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch

import micronet
from micronet.config import load_config, shipped_configs
from micronet.data import prepare_data
from micronet.export import from_torch, to_onnx, to_torch
from micronet.losses import cross_entropy, mse_loss
from micronet.train import run


def onnx_outputs(path, X, dtype):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"X": X.astype(dtype)})[0].astype(np.float64)


def torch_agreement(model, X, y, task):
    """(max |output diff|, max |gradient diff|, round trip identical) between the MLP and to_torch(model)."""
    sequential = to_torch(model)
    model.zero_grad()
    eager = []
    for row, target in zip(X.tolist(), y.tolist()):
        out = model(row)
        loss = cross_entropy(out, target) if task == "classification" else mse_loss(out, [target])
        loss.backward()
        eager.append([v.data for v in out])
    logits = sequential(torch.tensor(X))
    if task == "classification":
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor(y), reduction="sum")
    else:
        loss = ((logits[:, 0] - torch.tensor(y)) ** 2).sum()
    loss.backward()
    grads = []
    for linear in (m for m in sequential if isinstance(m, torch.nn.Linear)):
        for w_row, b in zip(linear.weight.grad.tolist(), linear.bias.grad.tolist()):
            grads += [*w_row, b]
    outputs = float(np.abs(logits.detach().numpy() - np.array(eager)).max())
    gradients = float(np.abs(np.array(grads) - np.array([p.grad for p in model.parameters()])).max())
    return outputs, gradients, from_torch(sequential).state_dict() == model.state_dict()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=",".join(sorted(shipped_configs())), help="comma-separated names")
    parser.add_argument("--epochs", type=int, help="train this many epochs instead of each config's own")
    args = parser.parse_args(argv)
    print(f"{'config':<15}{'task':<16}{'rows':>5}{'onnx f64':>10}{'onnx f32':>10}{'torch out':>11}"
          f"{'torch grad':>12}{'round trip':>12}{'train s':>9}")
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs.split(","):
            config = load_config(name, [] if args.epochs is None else [f"training.epochs={args.epochs}"])
            run_dir = Path(tmp) / name
            run_dir.mkdir()
            started = time.perf_counter()
            run(config, run_dir)
            seconds = time.perf_counter() - started
            data = prepare_data(config.dataset, config.seed, config.task)  # the run's own split and scaling
            raw = data.X_test if data.scaler is None else data.scaler.inverse_transform(data.X_test)
            predictor = micronet.load(run_dir)
            if predictor.task == "classification":
                expected, scale = predictor.predict_proba(raw), 1.0
            else:
                expected = predictor.predict(raw).reshape(len(raw), -1)
                scale = float(np.abs(expected).max())
            diffs = []
            for dtype in (np.float64, np.float32):
                path = to_onnx(run_dir, Path(tmp) / f"{name}.onnx", dtype=np.dtype(dtype).name)
                diffs.append(float(np.abs(onnx_outputs(path, raw, dtype) - expected).max()))
            y = data.y_test if config.task == "classification" else data.y_test.reshape(len(raw), -1)[:, 0]
            outputs, gradients, identical = torch_agreement(predictor.model, data.X_test, y, config.task)
            failed |= diffs[0] > 1e-12 * scale or diffs[1] > 1e-6 * scale or max(outputs, gradients) > 1e-12
            failed |= not identical
            print(f"{name:<15}{config.task:<16}{len(raw):>5}{diffs[0]:>10.1e}{diffs[1]:>10.1e}{outputs:>11.1e}"
                  f"{gradients:>12.1e}{'identical' if identical else 'DIFFERS':>12}{seconds:>9.1f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
