"""Benchmark harness for issues 5 and 14: micronet against micrograd, NumPy and PyTorch.

Times the same work in every engine, side by side in one process, so the
ratios the issues set as targets are measured rather than remembered:

  (a) micrograd's demo step: make_moons(100), MLP 2-16-16-1, mean hinge + 1e-4 L2,
      full batch, SGD with lr 1.0 - 0.9*k/100 (one step = forward, backward, update)
  (b) a digits step: 64-32-10 relu MLP, cross-entropy, batch 64, SGD lr 0.1
  (c) inference of the moons model over a 200x200 grid (40,000 points)
  (d) scale: one epoch of make_classification(100,000 x 20), MLP 20-64-64-2 relu,
      cross-entropy, batches of 256, SGD lr 0.05 with momentum 0.9

plus peak memory of one step of (a), how its time grows with samples and
width, and how an epoch of (d) grows from 10^3 to 10^5 samples (time and
memory). micronet's compiled engine trains through `training_session`, the
parameters in arrays, as the trainer runs it. Before timing, every engine's
gradient from identical parameters is checked against micronet's eager
engine: without that, the numbers would not be comparing the same
computation.

Run (from the repository root, in an environment with micronet installed):

    python experiments/bench.py                      # everything, about 5 minutes
    python experiments/bench.py --quick              # a smoke run in seconds
    python experiments/bench.py --workloads a --engines micronet-eager,numpy
    python experiments/bench.py --json results.json  # table on stdout, numbers in the file

micrograd and PyTorch are optional; engines that are not installed are skipped
with a note. To include them (pinned: the numbers are for these versions):

    pip install micrograd==0.1.0
    pip install torch==2.13.0
"""

import argparse
import dataclasses
import difflib
import gc
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits, make_classification, make_moons
from threadpoolctl import threadpool_limits  # installed with scikit-learn

import micronet
from micronet import MLP, SGD, Value
from micronet.compile import compile_model
from micronet.losses import cross_entropy

ENGINES = ["micrograd", "micrograd-nogc", "micronet-eager", "micronet-compiled", "numpy", "torch"]
WORKLOADS = ["a", "b", "c", "d"]
NEEDS = {"micrograd": "micrograd", "micrograd-nogc": "micrograd", "torch": "torch"}  # engine -> module
INSTALL = {"micrograd": "pip install micrograd==0.1.0", "torch": "pip install torch==2.13.0"}
SLOW = {"micrograd", "micrograd-nogc"}  # engines that get config.slow_repeats

L2 = 1e-4  # micrograd demo's alpha: loss += L2 * sum(p * p)
MOONS_LAYERS = (2, 16, 16, 1)
DIGITS_LAYERS = (64, 32, 10)
DIGITS_LR = 0.1
BATCH = 64
SCALE_LAYERS = (20, 64, 64, 2)
SCALE_BATCH = 256
SCALE_LR, SCALE_MOMENTUM = 0.05, 0.9
REL_LIMIT = 1e-10  # NumPy, PyTorch and micrograd gradients against micronet eager


@dataclass(frozen=True)
class BenchConfig:
    """What to run and how often; the defaults take about 1.5 minutes on 2 idle cores."""

    workloads: tuple = tuple(WORKLOADS)  # which of (a), (b), (c) to time
    engines: tuple = tuple(ENGINES)  # which engines to time (missing packages are skipped)
    repeats: int = 15  # timed repeats per engine
    slow_repeats: int = 3  # timed repeats for micrograd and for eager over the grid (seconds a call)
    warmup: int = 1  # untimed calls per engine before timing
    grid_size: int = 200  # (c) evaluates grid_size**2 points
    micrograd_grid_points: int = 400  # micrograd's (c) runs on this many points, extrapolated
    memory_samples: tuple = (100, 800)  # moons sizes at which one step's peak memory is traced
    growth_samples: tuple = (100, 200, 400, 800)  # moons sizes for the growth table (width 16)
    growth_widths: tuple = (16, 32, 64)  # hidden widths for the growth table (100 samples)
    growth_repeats: int = 5  # timed repeats per growth point (micrograd: 1, no warm-up)
    micrograd_gc_max_samples: int = 400  # micrograd with its collector takes 3.4 s a step at 400
    micrograd_gc_max_width: int = 32  # samples and 3.3 s at width 32, so its growth stops there
    # (micrograd-nogc runs every point)
    scale_samples: int = 100_000  # (d): samples in the epoch that is timed
    scale_repeats: int = 5  # (d): timed epochs per engine
    scale_growth: tuple = (1_000, 10_000, 100_000)  # (d): epoch sizes for its growth table
    # Threads for PyTorch and for NumPy's BLAS. Their thread pools stall
    # whenever the 2 cores are shared: under load a step of (a) in PyTorch took
    # 20-78 ms with 2 threads against 1.4 ms with one, and a (40000, 16) @ (16, 16)
    # product 24 ms against 0.8 ms. These arrays are too small to split, and
    # the scalar engines run on one core anyway.
    threads: int = 1
    # "users": the collector as users run it (issue 5's method): garbage is
    # collected between timed steps, and every collection during a step walks
    # whatever the process holds, as in a notebook. "frozen": everything alive
    # before timing is frozen out of the collector (gc.freeze), micrograd's
    # best case: its step then no longer depends on what else is imported.
    gc: str = "users"


QUICK = dict(
    repeats=2, slow_repeats=1, grid_size=40, micrograd_grid_points=40, memory_samples=(100,),
    growth_samples=(100, 200), growth_widths=(16, 32), growth_repeats=1,
    micrograd_gc_max_samples=100, micrograd_gc_max_width=16,
    scale_samples=2_000, scale_repeats=1, scale_growth=(500, 2_000),
)


# ----- data and parameters ------------------------------------------------------


def moons(n_samples):
    """micrograd's demo data: two moons with labels -1/+1."""
    X, y = make_moons(n_samples, noise=0.1, random_state=1)
    return X, y * 2 - 1


def digits_batches():
    """Standardised 8x8 digits in fixed batches of 64 (a constant pixel keeps scale 1)."""
    digits = load_digits()
    std = digits.data.std(axis=0)
    X = (digits.data - digits.data.mean(axis=0)) / np.where(std > 0, std, 1.0)
    order = np.random.default_rng(0).permutation(len(X))
    return [(X[order[i : i + BATCH]], digits.target[order[i : i + BATCH]]) for i in range(0, len(X) - BATCH + 1, BATCH)]


def grid_points(X, size):
    """size*size points covering the data with a margin of 1, as micrograd's boundary plot."""
    xs = np.linspace(X[:, 0].min() - 1, X[:, 0].max() + 1, size)
    ys = np.linspace(X[:, 1].min() - 1, X[:, 1].max() + 1, size)
    gx, gy = np.meshgrid(xs, ys)
    return np.column_stack([gx.ravel(), gy.ravel()])


def initial_params(layers, seed=0):
    """The parameters every engine starts from: micronet's init, in its order.

    Identical values rather than merely the same distribution, so gradients
    can be compared and every engine's relus are active on the same inputs.
    """
    return [p.data for p in MLP(layers[0], list(layers[1:]), seed=seed).parameters()]


def micronet_model(layers, params):
    """A micronet MLP (relu hidden layers, linear output) holding `params`."""
    model = MLP(layers[0], list(layers[1:]))
    for p, value in zip(model.parameters(), params):
        p.data = value
    return model


def layer_blocks(layers, params):
    """(W of shape (n_in, n_out), b) per layer from micronet's order: neuron by neuron, weights then bias."""
    blocks, start = [], 0
    for n_in, n_out in zip(layers, layers[1:]):
        block = np.array(params[start : start + n_out * (n_in + 1)]).reshape(n_out, n_in + 1)
        blocks.append((block[:, :n_in].T.copy(), block[:, n_in].copy()))
        start += n_out * (n_in + 1)
    return blocks


def flatten_blocks(blocks):
    """The inverse of layer_blocks: a flat vector in micronet's parameter order."""
    return np.concatenate([np.column_stack([W.T, b]).ravel() for W, b in blocks])


def demo_lr(k):
    """micrograd demo's schedule; k wraps at 100 so long runs never reach lr <= 0."""
    return 1.0 - 0.9 * (k % 100) / 100


# ----- the shared pieces of each engine ---------------------------------------------


def hinge_objective(model, rows, labels, l2=L2):
    """micrograd demo's loss written out with micronet Values: mean hinge + l2 * sum(p*p)."""
    inputs = [list(map(Value, row)) for row in rows]
    scores = [model(x)[0] for x in inputs]
    losses = [(1 + -label * score).relu() for label, score in zip(labels, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    if not l2:
        return data_loss
    return data_loss + l2 * sum(p * p for p in model.parameters())


def hinge(out, target):
    """The per-example hinge loss for compile_model: max(0, 1 - y * score)."""
    return (1 + -target * out[0]).relu()


def grads_of(params):
    """The .grad of each Value, as an array."""
    return np.array([p.grad for p in params])


def numpy_forward(blocks, X):
    """Activations of every layer, input first: relu hidden layers, a linear output."""
    acts = [X]
    for i, (W, b) in enumerate(blocks):
        Z = acts[-1] @ W + b
        acts.append(np.maximum(Z, 0.0) if i < len(blocks) - 1 else Z)
    return acts


def numpy_backward(blocks, acts, d_out):
    """(dW, db) per layer from d(loss)/d(output); relu passes gradient where its output > 0."""
    grads, d = [], d_out
    for i in range(len(blocks) - 1, -1, -1):
        grads.append((acts[i].T @ d, d.sum(axis=0)))
        if i > 0:
            d = (d @ blocks[i][0].T) * (acts[i] > 0.0)
    return grads[::-1]


def numpy_update(blocks, grads, lr):
    """Plain SGD in place."""
    for (W, b), (dW, db) in zip(blocks, grads):
        W -= lr * dW
        b -= lr * db


def torch_mlp(layers, params):
    """nn.Sequential of float64 Linear + ReLU layers holding `params`."""
    import torch

    modules = []
    for i, (W, b) in enumerate(layer_blocks(layers, params)):
        linear = torch.nn.Linear(*W.shape, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W.T))
            linear.bias.copy_(torch.from_numpy(b))
        modules.append(linear)
        if i < len(layers) - 2:
            modules.append(torch.nn.ReLU())
    return torch.nn.Sequential(*modules)


def torch_grads(model):
    """The model's gradients as one flat vector in micronet's parameter order."""
    import torch

    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    return flatten_blocks([(m.weight.grad.numpy().T, m.bias.grad.numpy()) for m in linears])


def set_torch_lr(optimizer, lr):
    """What a torch LR scheduler does, without one: the demo's schedule is a formula."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def micrograd_mlp(layers, params):
    """micrograd's own MLP, its parameters overwritten with `params` (same order as micronet's)."""
    from micrograd.nn import MLP as MicrogradMLP

    # micrograd's topological sort is recursive, and at 800 samples the chain
    # sum(losses) alone is 800 nodes deep: more than Python's default limit.
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))
    model = MicrogradMLP(layers[0], list(layers[1:]))
    for p, value in zip(model.parameters(), params):
        p.data = value
    return model


# ----- (a) micrograd's demo step: one function per engine ---------------------------
# Each returns (step(k), gradient()): step does one full training step with the
# learning rate of step k; gradient() returns d(objective)/d(params) at the
# current parameters, in micronet's order, without changing them.


def moons_micrograd(layers, params, X, y):
    """The demo notebook's loss(), zero_grad, backward and update loop, as it writes them.

    As in the notebook, inputs are numpy rows and labels numpy ints; the
    accuracy it also computes is left out (not part of a training step).
    """
    from micrograd.engine import Value as MicrogradValue

    model = micrograd_mlp(layers, params)

    def backward():
        inputs = [list(map(MicrogradValue, xrow)) for xrow in X]
        scores = list(map(model, inputs))
        losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        reg_loss = L2 * sum(p * p for p in model.parameters())
        total_loss = data_loss + reg_loss
        model.zero_grad()
        total_loss.backward()

    def step(k):
        backward()
        learning_rate = demo_lr(k)
        for p in model.parameters():
            p.data -= learning_rate * p.grad

    def gradient():
        backward()
        return grads_of(model.parameters())

    return step, gradient


def moons_eager(layers, params, X, y):
    """micronet's public API: MLP, the demo's loss with Values, backward, SGD."""
    model = micronet_model(layers, params)
    optimizer = SGD(model.parameters(), lr=1.0, momentum=0.0)
    rows, labels = X.tolist(), y.tolist()

    def backward():
        optimizer.zero_grad()
        hinge_objective(model, rows, labels).backward()

    def step(k):
        backward()
        optimizer.lr = demo_lr(k)
        optimizer.step()

    def gradient():
        backward()
        return grads_of(optimizer.params)

    return step, gradient


def moons_compiled(layers, params, X, y):
    """compile_model on the hinge loss, trained in a session; the L2 term becomes SGD weight decay.

    d/dp (1e-4 * p^2) = 2e-4 * p, exactly what weight_decay=2e-4 adds to the
    gradient, so the objective is the same; only the rounding order differs.
    """
    model = micronet_model(layers, params)
    compiled = compile_model(model, layers[0], loss=hinge)
    optimizer = SGD(model.parameters(), lr=1.0, momentum=0.0, weight_decay=2 * L2)
    session = compiled.training_session(optimizer)

    def step(k):
        optimizer.lr = demo_lr(k)
        session.step(X, y)

    return step, lambda: session_gradient(compiled, session, X, y)


def session_gradient(compiled, session, X, y):
    """The gradient the session's optimizer applies (loss gradient + weight decay), parameters unchanged."""
    grads = np.zeros_like(session.p)
    compiled.mean_loss_and_grad(X, y, session.p, grads)
    return grads + session.optimizer.weight_decay * session.p


def moons_numpy(layers, params, X, y):
    """The same network and objective by hand in float64 arrays: the practical floor."""
    blocks = layer_blocks(layers, params)
    y = y.astype(float)

    def backward():
        acts = numpy_forward(blocks, X)
        margin = 1.0 - y * acts[-1][:, 0]
        d_score = np.where(margin > 0.0, -y, 0.0) / len(y)  # hinge: slope -y where active
        grads = numpy_backward(blocks, acts, d_score[:, None])
        return [(dW + 2 * L2 * W, db + 2 * L2 * b) for (dW, db), (W, b) in zip(grads, blocks)]

    def step(k):
        numpy_update(blocks, backward(), demo_lr(k))

    return step, lambda: flatten_blocks(backward())


def moons_torch(layers, params, X, y):
    """PyTorch CPU float64: nn.Sequential, the same objective, torch.optim.SGD."""
    import torch

    model = torch_mlp(layers, params)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y.astype(float))

    def backward():
        optimizer.zero_grad()
        score = model(X_t)[:, 0]
        loss = torch.relu(1 - y_t * score).mean() + L2 * sum((p * p).sum() for p in model.parameters())
        loss.backward()

    def step(k):
        backward()
        set_torch_lr(optimizer, demo_lr(k))
        optimizer.step()

    def gradient():
        backward()
        return torch_grads(model)

    return step, gradient


MOONS = {
    "micrograd": moons_micrograd,
    "micrograd-nogc": moons_micrograd,  # the same code, timed with the collector off
    "micronet-eager": moons_eager,
    "micronet-compiled": moons_compiled,
    "numpy": moons_numpy,
    "torch": moons_torch,
}


# ----- (b) digits step ---------------------------------------------------------------
# micrograd 0.1.0's Value has no exp or log, so it cannot express softmax
# cross-entropy: it is skipped here with a note.


def digits_eager(layers, params, batches):
    """micronet eager: cross_entropy per example, mean, backward, SGD (inputs as plain floats)."""
    model = micronet_model(layers, params)
    optimizer = SGD(model.parameters(), lr=DIGITS_LR, momentum=0.0)
    lists = [(Xb.tolist(), yb.tolist()) for Xb, yb in batches]

    def backward(k):
        optimizer.zero_grad()
        rows, targets = lists[k % len(lists)]
        losses = [cross_entropy(model(row), t) for row, t in zip(rows, targets)]
        (sum(losses) * (1.0 / len(losses))).backward()

    def step(k):
        backward(k)
        optimizer.step()

    def gradient():
        backward(0)
        return grads_of(optimizer.params)

    return step, gradient


def digits_compiled(layers, params, batches):
    """compile_model with micronet's cross_entropy, trained in a session; the batch goes in as arrays."""
    model = micronet_model(layers, params)
    compiled = compile_model(model, layers[0], loss=cross_entropy)
    session = compiled.training_session(SGD(model.parameters(), lr=DIGITS_LR, momentum=0.0))

    def step(k):
        session.step(*batches[k % len(batches)])

    return step, lambda: session_gradient(compiled, session, *batches[0])


def digits_numpy(layers, params, batches):
    """By hand: max-shifted softmax, whose cross-entropy gradient is softmax - one_hot."""
    blocks = layer_blocks(layers, params)

    def backward(k):
        Xb, yb = batches[k % len(batches)]
        acts = numpy_forward(blocks, Xb)
        logits = acts[-1]
        shifted = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        probs /= probs.sum(axis=1, keepdims=True)
        probs[np.arange(len(yb)), yb] -= 1.0  # d(cross-entropy)/d(logits) = softmax - one_hot
        return numpy_backward(blocks, acts, probs / len(yb))

    def step(k):
        numpy_update(blocks, backward(k), DIGITS_LR)

    return step, lambda: flatten_blocks(backward(0))


def digits_torch(layers, params, batches):
    """nn.Sequential, F.cross_entropy (mean over the batch), torch.optim.SGD."""
    import torch

    model = torch_mlp(layers, params)
    optimizer = torch.optim.SGD(model.parameters(), lr=DIGITS_LR)
    tensors = [(torch.from_numpy(Xb), torch.from_numpy(yb)) for Xb, yb in batches]

    def backward(k):
        optimizer.zero_grad()
        Xb, yb = tensors[k % len(tensors)]
        torch.nn.functional.cross_entropy(model(Xb), yb).backward()

    def step(k):
        backward(k)
        optimizer.step()

    def gradient():
        backward(0)
        return torch_grads(model)

    return step, gradient


DIGITS = {
    "micronet-eager": digits_eager,
    "micronet-compiled": digits_compiled,
    "numpy": digits_numpy,
    "torch": digits_torch,
}
DIGITS_NOTE = "micrograd 0.1.0's Value has no exp or log, so softmax cross-entropy cannot be built from its ops"


# ----- (c) inference over a grid: one function per engine ---------------------------
# Each returns predict(): the model's score at every point, forward only.


def grid_micrograd(layers, params, points):
    """As the demo's decision-boundary code: Values from numpy rows, model, .data."""
    from micrograd.engine import Value as MicrogradValue

    model = micrograd_mlp(layers, params)
    return lambda: np.array([model(list(map(MicrogradValue, row))).data for row in points])


def grid_eager(layers, params, points):
    """One graph per point, as the demo does it; each is freed once its score is read."""
    model = micronet_model(layers, params)
    rows = points.tolist()
    return lambda: np.array([model(list(map(Value, row)))[0].data for row in rows])


def grid_compiled(layers, params, points):
    """CompiledModel.logits: the whole grid as arrays, in chunks."""
    compiled = compile_model(micronet_model(layers, params), layers[0])
    return lambda: compiled.logits(points)[:, 0]


def grid_numpy(layers, params, points):
    """numpy_forward over all points at once."""
    blocks = layer_blocks(layers, params)
    return lambda: numpy_forward(blocks, points)[-1][:, 0]


def grid_torch(layers, params, points):
    """The torch model under no_grad over all points at once."""
    import torch

    model = torch_mlp(layers, params)
    points_t = torch.from_numpy(points)

    def predict():
        with torch.no_grad():
            return model(points_t)[:, 0].numpy()

    return predict


GRID = {
    "micrograd": grid_micrograd,
    "micrograd-nogc": grid_micrograd,
    "micronet-eager": grid_eager,
    "micronet-compiled": grid_compiled,
    "numpy": grid_numpy,
    "torch": grid_torch,
}


# ----- (d) scale: one epoch of minibatches over 100,000 samples ------------------------
# Each returns (epoch(k), gradient()): epoch trains one epoch in the batches
# of scale_batches(n, k), the same shuffled order for every engine;
# gradient() is d(mean cross-entropy)/d(params) on the first 256 rows.


def scale_data(n):
    """make_classification's first n of 100,000 samples (20 features, 2 classes), fixed seed."""
    X, y = make_classification(100_000, 20, n_informative=10, random_state=0)
    return X[:n], y[:n]


def scale_batches(n, k):
    """Epoch k's minibatches: a seeded shuffle of range(n) in slices of SCALE_BATCH."""
    order = np.random.default_rng(k).permutation(n)
    return [order[i : i + SCALE_BATCH] for i in range(0, n, SCALE_BATCH)]


def scale_eager(layers, params, X, y):
    """Gradient only (an epoch on Values takes minutes): cross_entropy per row of the first batch."""
    model = micronet_model(layers, params)
    rows, targets = X[:SCALE_BATCH].tolist(), y[:SCALE_BATCH].tolist()

    def gradient():
        losses = [cross_entropy(model(row), t) for row, t in zip(rows, targets)]
        (sum(losses) * (1.0 / len(losses))).backward()
        return grads_of(model.parameters())

    return None, gradient


def scale_compiled(layers, params, X, y):
    """compile_model with cross_entropy; SGD with momentum in a training session."""
    model = micronet_model(layers, params)
    compiled = compile_model(model, layers[0], loss=cross_entropy)
    session = compiled.training_session(SGD(model.parameters(), lr=SCALE_LR, momentum=SCALE_MOMENTUM))

    def epoch(k):
        for batch in scale_batches(len(y), k):
            session.step(X[batch], y[batch])

    return epoch, lambda: session_gradient(compiled, session, X[:SCALE_BATCH], y[:SCALE_BATCH])


def scale_numpy(layers, params, X, y):
    """By hand: softmax cross-entropy, backward, SGD with PyTorch's momentum rule."""
    blocks = layer_blocks(layers, params)
    velocity = [(np.zeros_like(W), np.zeros_like(b)) for W, b in blocks]

    def backward(Xb, yb):
        acts = numpy_forward(blocks, Xb)
        logits = acts[-1]
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        probs[np.arange(len(yb)), yb] -= 1.0
        return numpy_backward(blocks, acts, probs / len(yb))

    def epoch(k):
        for batch in scale_batches(len(y), k):
            for (W, b), (vW, vb), (dW, db) in zip(blocks, velocity, backward(X[batch], y[batch])):
                vW *= SCALE_MOMENTUM  # buf = momentum * buf + g (buf starts at 0: the first step is g)
                vW += dW
                vb *= SCALE_MOMENTUM
                vb += db
                W -= SCALE_LR * vW
                b -= SCALE_LR * vb

    return epoch, lambda: flatten_blocks(backward(X[:SCALE_BATCH], y[:SCALE_BATCH]))


def scale_torch(layers, params, X, y):
    """nn.Sequential, F.cross_entropy, torch.optim.SGD with momentum."""
    import torch

    model = torch_mlp(layers, params)
    optimizer = torch.optim.SGD(model.parameters(), lr=SCALE_LR, momentum=SCALE_MOMENTUM)
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)

    def backward(index):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(X_t[index]), y_t[index]).backward()

    def epoch(k):
        for batch in scale_batches(len(y), k):
            backward(torch.from_numpy(batch))
            optimizer.step()

    def gradient():
        backward(torch.arange(SCALE_BATCH))
        return torch_grads(model)

    return epoch, gradient


SCALE = {
    "micronet-eager": scale_eager,
    "micronet-compiled": scale_compiled,
    "numpy": scale_numpy,
    "torch": scale_torch,
}
SCALE_NOTE = ("an epoch on Values takes minutes (micrograd's and micronet eager's): "
              "their gradients are checked, not timed")


# ----- timing -------------------------------------------------------------------------


GC_MODE = {"mode": "users"}  # set from BenchConfig.gc by run_benchmark


def time_call(fn, k, collect_during=True, rewarm=False):
    """(CPU seconds, wall seconds) of fn(k).

    Garbage is collected first, off the clock, so each call pays only for the
    garbage it makes; the collector stays on during the call unless told.
    CPU time is the headline: on a machine shared with other jobs, wall time
    also counts the time the process waits for a core (every engine here runs
    on one thread, so CPU time is the work done).
    """
    gc.collect()
    if rewarm:  # after the collection, which evicts the caches a fast call depends on
        without_gc(fn, k)
    if not collect_during:
        gc.disable()
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        fn(k)
        return time.process_time() - cpu, time.perf_counter() - wall
    finally:
        gc.enable()


def without_gc(fn, *args):
    """Untimed work (warm-up, checks) with the collector off: micrograd's would take seconds."""
    gc.disable()
    try:
        return fn(*args)
    finally:
        gc.enable()


@dataclass
class Unit:
    """One engine's timed call fn(k) (k counts calls, for the learning-rate schedule)."""

    fn: object
    repeats: int
    collect_during: bool = True  # False for micrograd-nogc: the collector is off during the call
    warmup: int = 1  # untimed calls first


def time_interleaved(units):
    """{name: [(cpu, wall) seconds, ...]} for {name: Unit}.

    The engines take turns (A B C A B C ...), so slow drifts of the machine
    spread over all of them alike; an engine with fewer repeats drops out of
    the later rounds. Warm-up calls are not timed.

    Taking turns leaves each engine the caches of the one before it: a 53 us
    NumPy step took 105 us right after a PyTorch step. So a call whose
    warm-up took under 10 ms gets one more untimed call just before each
    timed one and is measured warm, as in a training loop; calls of 19 ms
    and more (eager, micrograd) hardly notice, and doubling them would
    double the run.
    """
    rewarm = {}
    for name, unit in units.items():
        start = time.process_time()
        for k in range(unit.warmup):
            without_gc(unit.fn, k)
        rewarm[name] = unit.warmup > 0 and time.process_time() - start < 0.01 * unit.warmup
    # With --gc frozen, freeze everything alive now (modules, including the
    # 117,000 objects that setting up PyTorch imports, models and data) out of
    # the collector, so a collection walks only what the timed calls make:
    # micrograd's best case (its own full collections otherwise walk whatever
    # the harness has imported: its step took 0.74 s with NumPy and
    # scikit-learn loaded, 0.86 s with matplotlib as in its notebook, 1.12 s
    # with torch, 0.60 s frozen). Either way fast calls are re-warmed after
    # the collection that precedes them.
    if GC_MODE["mode"] == "frozen":
        gc.collect()
        gc.freeze()
    times = {name: [] for name in units}
    for r in range(max((unit.repeats for unit in units.values()), default=0)):
        for name, unit in units.items():
            if r < unit.repeats:
                k = unit.warmup + r
                times[name].append(time_call(unit.fn, k, unit.collect_during, rewarm[name]))
    return times


def summarise(times, scale=1.0):
    """Median, min and max CPU seconds over the repeats (and the wall-clock median)."""
    cpu = [c * scale for c, _ in times]
    wall = [w * scale for _, w in times]
    return {
        "median": statistics.median(cpu), "min": min(cpu), "max": max(cpu), "repeats": len(cpu),
        "wall_median": statistics.median(wall), "cpu_times": cpu, "wall_times": wall,
    }


def peak_memory(step, k=0):
    """Peak bytes Python allocates during one step (tracemalloc; collector off, so it is deterministic)."""
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        step(k)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        gc.enable()


def fitted_exponent(sizes, seconds):
    """Slope of log(time) against log(size) by least squares: 1 is linear growth."""
    points = [(s, t) for s, t in zip(sizes, seconds) if t is not None]
    if len(points) < 2:
        return None
    x, t = np.log([p[0] for p in points]), np.log([p[1] for p in points])
    return float(np.polyfit(x, t, 1)[0])


def repeats_for(name, config):
    """micrograd's steps take seconds: it gets fewer repeats."""
    return config.slow_repeats if name in SLOW else config.repeats


# ----- correctness checks --------------------------------------------------------------


def relative_difference(got, expected):
    """Largest |got - expected| / |expected| over the entries (0 where both are equal)."""
    got, expected = np.asarray(got, float), np.asarray(expected, float)
    diff = np.abs(got - expected)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(diff == 0.0, 0.0, diff / np.abs(expected))
    return float(np.nan_to_num(rel, nan=np.inf).max()) if rel.size else 0.0


def check_close(workload, what, got, expected):
    """A check record: `got` within REL_LIMIT of `expected`, entry by entry."""
    rel = relative_difference(got, expected)
    ok = rel <= REL_LIMIT
    detail = f"max relative difference {rel:.1e} (limit {REL_LIMIT:.0e})"
    return {"workload": workload, "what": what, "ok": ok, "detail": detail, "value": rel}


def compare_to_eager(workload, results, skip=(), reference="micronet-eager"):
    """Every engine's result (but those in `skip`) against micronet eager's, to 1e-10 relative."""
    if reference not in results:
        return []
    return [
        check_close(workload, f"{name} vs {reference}", result, results[reference])
        for name, result in results.items()
        if name != reference and name not in skip
    ]


# ----- the benchmarks --------------------------------------------------------------------


def bench_training(workload, title, factories, args, config, engines, progress):
    """Check gradients from identical parameters, then time interleaved steps."""
    runners = {name: factories[name](*args) for name in engines if name in factories}
    progress(f"({workload}) checking gradients")
    gradients = {name: without_gc(gradient) for name, (_, gradient) in runners.items() if name != "micrograd-nogc"}
    checks = compare_to_eager(workload, gradients)
    progress(f"({workload}) timing {', '.join(runners)}")
    units = {
        name: Unit(step, repeats_for(name, config), name != "micrograd-nogc", config.warmup)
        for name, (step, _) in runners.items()
    }
    times = time_interleaved(units)
    summaries = {n: summarise(t) for n, t in times.items()}
    return {"title": title, "unit": "training step", "engines": summaries, "checks": checks, "notes": {}}


def bench_moons(config, engines, progress):
    """(a): the step issue 5's targets are stated on."""
    X, y = moons(100)
    params = initial_params(MOONS_LAYERS)
    title = "(a) micrograd demo step: moons 100, MLP 2-16-16-1, mean hinge + 1e-4 L2, full batch, SGD"
    result = bench_training("a", title, MOONS, (MOONS_LAYERS, params, X, y), config, engines, progress)
    if "micronet-compiled" in engines:
        result["notes"]["micronet-compiled"] = ("the L2 term is SGD weight_decay=2e-4: "
                                                "the same gradient 2e-4*p, added in another order")
    return result


def bench_digits(config, engines, progress):
    """(b): a wider model and a softmax loss, in minibatches."""
    batches = digits_batches()
    params = initial_params(DIGITS_LAYERS)
    title = "(b) digits step: MLP 64-32-10 relu, cross-entropy, batch 64, SGD lr 0.1"
    result = bench_training("b", title, DIGITS, (DIGITS_LAYERS, params, batches), config, engines, progress)
    if SLOW & set(engines):
        result["notes"]["micrograd"] = DIGITS_NOTE
    return result


def bench_grid(config, engines, progress):
    """(c): forward passes over the grid; micrograd runs on a strided subsample, extrapolated."""
    X, _ = moons(100)
    params = initial_params(MOONS_LAYERS)
    points = grid_points(X, config.grid_size)
    stride = max(1, len(points) // config.micrograd_grid_points)
    sample = points[::stride]
    scale = len(points) / len(sample)
    predicts = {}
    for name in engines:
        on = sample if name in SLOW else points
        predicts[name] = GRID[name](MOONS_LAYERS, params, on)
    progress("(c) checking outputs")
    # The check compares every engine on the subsample micrograd sees.
    outputs = {
        name: without_gc(GRID[name](MOONS_LAYERS, params, sample)) for name in engines if name != "micrograd-nogc"
    }
    checks = compare_to_eager("c", outputs)
    progress(f"(c) timing {', '.join(predicts)}")
    slow = SLOW | {"micronet-eager"}  # eager takes seconds for 40,000 points
    units = {
        name: Unit(lambda k, p=predict: p(), config.slow_repeats if name in slow else config.repeats,
                   name != "micrograd-nogc", config.warmup)
        for name, predict in predicts.items()
    }
    times = time_interleaved(units)
    title = (f"(c) inference: moons model over a {config.grid_size}x{config.grid_size} grid "
             f"({len(points):,} points), forward only")
    result = {"title": title, "unit": f"pass over {len(points):,} points", "engines": {}, "checks": checks, "notes": {}}
    for name, t in times.items():
        result["engines"][name] = summarise(t, scale if name in SLOW else 1.0)
        if name in SLOW:
            result["engines"][name]["extrapolated_from_points"] = len(sample)
            result["notes"][name] = f"timed on {len(sample)} of {len(points):,} points, multiplied by {scale:g}"
    return result


def bench_memory(config, engines, progress):
    """Peak traced memory of one step of (a) at each size, after a warm-up step."""
    memory = {}
    for n in config.memory_samples:
        progress(f"memory: {n} samples")
        X, y = moons(n)
        params = initial_params(MOONS_LAYERS)
        memory[n] = {}
        for name in engines:
            if name == "micrograd-nogc":
                continue  # the same allocations as micrograd
            if name == "torch":
                memory[n][name] = None  # tensors live outside Python's allocator: tracemalloc cannot see them
                continue
            step, _ = MOONS[name](MOONS_LAYERS, params, X, y)
            without_gc(step, 0)
            memory[n][name] = peak_memory(step, 1)
            del step
    return memory


def bench_growth(config, engines, progress):
    """Median step time of (a) as samples grow (width 16) and as width grows (100 samples)."""
    points = sorted({(n, 16) for n in config.growth_samples} | {(100, w) for w in config.growth_widths})
    medians = {}
    for n, width in points:
        progress(f"growth: {n} samples, width {width}")
        X, y = moons(n)
        layers = (2, width, width, 1)
        params = initial_params(layers)
        units = {}
        for name in engines:
            if name == "micrograd" and (n > config.micrograd_gc_max_samples or width > config.micrograd_gc_max_width):
                continue
            step, _ = MOONS[name](layers, params, X, y)
            if name in SLOW:  # one cold call: micrograd's steps take seconds here
                units[name] = Unit(step, 1, name != "micrograd-nogc", warmup=0)
            else:
                units[name] = Unit(step, config.growth_repeats, warmup=config.warmup)
        for name, times in time_interleaved(units).items():
            medians[(name, n, width)] = statistics.median(cpu for cpu, _ in times)
        del units
    growth = {}
    axes = (("samples", config.growth_samples, lambda s: (s, 16)), ("width", config.growth_widths, lambda s: (100, s)))
    for axis, sizes, key in axes:
        table = {}
        for name in engines:
            seconds = [medians.get((name, *key(s))) for s in sizes]
            table[name] = {"seconds": seconds, "exponent": fitted_exponent(sizes, seconds)}
        fixed = "width 16" if axis == "samples" else "100 samples"
        growth[axis] = {"sizes": list(sizes), "fixed": fixed, "engines": table}
    return growth


def bench_scale(config, engines, progress):
    """(d): one epoch over scale_samples rows; eager's gradient is checked but not timed."""
    X, y = scale_data(config.scale_samples)
    params = initial_params(SCALE_LAYERS)
    runners = {name: SCALE[name](SCALE_LAYERS, params, X, y) for name in engines if name in SCALE}
    progress("(d) checking gradients")
    checks = compare_to_eager("d", {name: without_gc(gradient) for name, (_, gradient) in runners.items()})
    timed = {name: epoch for name, (epoch, _) in runners.items() if epoch is not None}
    progress(f"(d) timing {', '.join(timed)}")
    times = time_interleaved({name: Unit(epoch, config.scale_repeats, warmup=config.warmup)
                              for name, epoch in timed.items()})
    title = (f"(d) scale: one epoch of make_classification({len(y):,} x 20), MLP 20-64-64-2 relu, cross-entropy, "
             f"batch {SCALE_BATCH}, SGD lr {SCALE_LR} momentum {SCALE_MOMENTUM}")
    notes = {"micronet-eager": SCALE_NOTE} if SLOW & set(engines) or "micronet-eager" in engines else {}
    summaries = {n: summarise(t) for n, t in times.items()}
    return {"title": title, "unit": "epoch", "engines": summaries, "checks": checks, "notes": notes}


def bench_scale_growth(config, engines, progress):
    """Epoch time and peak traced memory of (d) at each size in scale_growth."""
    params = initial_params(SCALE_LAYERS)
    names = [name for name in engines if name in SCALE and name != "micronet-eager"]
    seconds, peaks = {name: [] for name in names}, {name: [] for name in names}
    for n in config.scale_growth:
        progress(f"(d) growth: {n:,} samples")
        X, y = scale_data(n)
        epochs = {name: SCALE[name](SCALE_LAYERS, params, X, y)[0] for name in names}
        repeats = config.scale_repeats if n >= config.scale_samples else max(config.scale_repeats, 5)
        units = {name: Unit(e, repeats, warmup=config.warmup) for name, e in epochs.items()}
        for name, times in time_interleaved(units).items():
            seconds[name].append(statistics.median(cpu for cpu, _ in times))
        for name in names:  # PyTorch's tensors live outside Python's allocator: tracemalloc cannot see them
            peaks[name].append(None if name == "torch" else peak_memory(SCALE[name](SCALE_LAYERS, params, X, y)[0]))
    sizes = list(config.scale_growth)
    table = {
        name: {"seconds": seconds[name], "exponent": fitted_exponent(sizes, seconds[name]), "peak_bytes": peaks[name]}
        for name in names
    }
    return {"sizes": sizes, "data_bytes": [n * 20 * 8 for n in sizes], "engines": table}


# Ratios shown for every workload: (numerator, denominator).
RATIOS = [
    ("micrograd", "micronet-eager"),
    ("micrograd-nogc", "micronet-eager"),
    ("micronet-compiled", "torch"),
    ("micronet-compiled", "numpy"),
    ("micronet-eager", "micronet-compiled"),
]
# The targets issues 5 and 14 set, per workload: (numerator, denominator) -> (">=" or "<=", ratio, what is asked).
TARGETS = {
    "a": {
        ("micrograd", "micronet-eager"): (">=", 100.0, "issue 14: eager at least 100x faster than micrograd"),
        ("micrograd-nogc", "micronet-eager"): (">=", 10.0,
                                               "issue 14: eager at least 10x faster than micrograd, collector off"),
        ("micronet-compiled", "torch"): ("<=", 1.0, "issue 5: compiled no slower than PyTorch"),
        ("micronet-compiled", "numpy"): ("<=", 2.0, "issue 14: compiled within 2x of hand-written NumPy"),
    },
    "b": {
        ("micronet-compiled", "torch"): ("<=", 1.0, "issue 14: compiled no slower than PyTorch"),
        ("micronet-compiled", "numpy"): ("<=", 4.0, "issue 14: compiled within 4x of hand-written NumPy"),
    },
    "c": {
        ("micronet-compiled", "numpy"): ("<=", 1.5, "issue 14: compiled within 1.5x of hand-written NumPy"),
    },
}


def ratios(engines, workload=None):
    """Ratios of medians within this run, with the issues' targets for `workload` where it has them."""
    found = []
    for numerator, denominator in RATIOS:
        if numerator in engines and denominator in engines:
            value = engines[numerator]["median"] / engines[denominator]["median"]
            op, bound, goal = TARGETS.get(workload, {}).get((numerator, denominator), (None, None, ""))
            target = None if op is None else (op, bound)
            met = None if op is None else value >= bound if op == ">=" else value <= bound
            found.append({"numerator": numerator, "denominator": denominator, "ratio": value, "target": target,
                          "goal": goal, "met": met})
    return found


def available_engines(engines, is_installed):
    """(engines to run, {engine: reason it is skipped}) given a predicate on module names."""
    run, skipped = [], {}
    for name in engines:
        module = NEEDS.get(name)
        if module and not is_installed(module):
            skipped[name] = f"{module} is not installed ({INSTALL[module]})"
        else:
            run.append(name)
    return run, skipped


def is_installed(module):
    """Whether `module` imports (an optional engine may be missing or broken)."""
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def machine_info():
    """Versions and machine facts that the numbers depend on."""
    def version(dist):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    info = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "scikit-learn": version("scikit-learn"),
        "micronet": micronet.__version__,
        "micrograd": version("micrograd"),
        "torch": version("torch"),
        "load_average_at_start": os.getloadavg()[0],  # other jobs on the machine inflate and scatter times
    }
    return info


BENCHES = {"a": bench_moons, "b": bench_digits, "c": bench_grid, "d": bench_scale}  # workload -> its benchmark


def run_benchmark(config, progress=lambda message: None):
    """All selected workloads, memory and growth as one JSON-ready dict."""
    started = time.perf_counter()
    engines, skipped = available_engines(config.engines, is_installed)
    results = {
        "machine": machine_info(),
        "config": dataclasses.asdict(config),
        "skipped": skipped,
        "workloads": {},
    }
    GC_MODE["mode"] = config.gc
    results["machine"]["gc"] = config.gc
    results["machine"]["objects_tracked_at_start"] = len(gc.get_objects())
    torch_threads = None
    if "torch" in engines:
        import torch

        torch_threads = torch.get_num_threads()
        torch.set_num_threads(config.threads)
    try:  # time_interleaved freezes long-lived objects out of the collector; release them after
        with threadpool_limits(config.threads):  # NumPy's BLAS (and any OpenMP pool)
            for workload in config.workloads:
                result = BENCHES[workload](config, engines, progress)
                result["ratios"] = ratios(result["engines"], workload)
                results["workloads"][workload] = result
            if "a" in config.workloads:
                results["memory"] = bench_memory(config, engines, progress)
                results["growth"] = bench_growth(config, engines, progress)
            if "d" in config.workloads:
                results["scale_growth"] = bench_scale_growth(config, engines, progress)
    finally:
        gc.unfreeze()
        if torch_threads:
            torch.set_num_threads(torch_threads)
    results["checks"] = [c for w in results["workloads"].values() for c in w.pop("checks")]
    results["machine"]["load_average_at_end"] = os.getloadavg()[0]
    results["total_seconds"] = time.perf_counter() - started
    return results


# ----- the report --------------------------------------------------------------------------


def format_seconds(s):
    """Seconds with a unit that keeps three or four digits."""
    if s is None:
        return "-"
    if s >= 1.0:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.0f} us"


def format_ratio(r):
    """A ratio with as many decimals as it needs."""
    return f"{r:,.0f}x" if r >= 100 else f"{r:.1f}x" if r >= 10 else f"{r:.2f}x"


def format_bytes(n):
    """Bytes as kB or MB (None: not measurable)."""
    if n is None:
        return "n/a"
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def format_report(results):
    """The human-readable tables: checks, then one table per workload, memory, growth."""
    m = results["machine"]
    versions = ", ".join(f"{k} {m[k]}" for k in ("numpy", "torch", "micrograd") if m.get(k))
    lines = [f"micronet {m['micronet']} benchmark: Python {m['python']}, {versions}, {m['cpu_count']} CPUs"]
    if m.get("git"):
        lines[0] += f", commit {m['git']}"
    load = max(m["load_average_at_start"], m["load_average_at_end"])
    lines.append(f"load average {m['load_average_at_start']:.1f} at start, {m['load_average_at_end']:.1f} at end; "
                 f"{results['config']['threads']} thread(s) for PyTorch and BLAS")
    gc_line = {"users": "as users run it (collected between steps, on during them)",
               "frozen": "frozen: objects alive before timing are out of its reach (micrograd's best case)"}
    lines.append(f"garbage collector {gc_line[m['gc']]}; {m['objects_tracked_at_start']:,} objects tracked at start")
    if load > 0.5 * m["cpu_count"]:
        lines.append("warning: other jobs were running: wall times are inflated; "
                     "CPU times are steadier but caches are shared")
    for name, reason in results["skipped"].items():
        lines.append(f"skipped {name}: {reason}")
    lines += ["", "correctness (one gradient from identical parameters; what makes the numbers comparable)"]
    if not results["checks"]:
        lines.append("  none: every check compares against micronet-eager, which is not in this run")
    for c in results["checks"]:
        lines.append(f"{'OK  ' if c['ok'] else 'FAIL'}  ({c['workload']}) {c['what']}: {c['detail']}")
    for result in results["workloads"].values():
        engines = result["engines"]
        numpy = engines.get("numpy")
        lines += ["", result["title"], f"  CPU time per {result['unit']}: median and range over the repeats, "
                                       "engines interleaved; wall-clock median"]
        lines.append(f"  {'engine':<19}{'repeats':>8}{'median':>12}{'min':>12}{'max':>12}{'/ numpy':>10}{'wall':>12}")
        for name, s in engines.items():
            mark = "*" if "extrapolated_from_points" in s else " "
            versus = format_ratio(s["median"] / numpy["median"]) if numpy else "-"
            lines.append(
                f"  {name:<19}{s['repeats']:>8}{format_seconds(s['median']) + mark:>12}"
                f"{format_seconds(s['min']):>12}{format_seconds(s['max']):>12}{versus:>10}"
                f"{format_seconds(s['wall_median']):>12}"
            )
        for name, note in result["notes"].items():
            star = "(*) " if "extrapolated_from_points" in engines.get(name, {}) else ""
            lines.append(f"  {star}note: {name}: {note}")
        for r in result["ratios"]:
            text = f"  {r['numerator']} / {r['denominator']} = {format_ratio(r['ratio'])}"
            if r["target"] is not None:
                op, value = r["target"]
                text += f"   [{r['goal']} ({op} {value:g}): {'met' if r['met'] else 'NOT met'}]"
            lines.append(text)
    if "memory" in results:
        lines += ["", "peak memory of one step of (a) (tracemalloc; PyTorch's tensors are invisible to it)"]
        sizes = list(results["memory"])
        lines.append(f"  {'engine':<19}" + "".join(f"{str(n) + ' samples':>14}" for n in sizes))
        names = list(results["memory"][sizes[0]])
        for name in names:
            lines.append(f"  {name:<19}" + "".join(f"{format_bytes(results['memory'][n][name]):>14}" for n in sizes))
        for n in sizes:
            row = results["memory"][n]
            if row.get("micrograd") and row.get("micronet-eager"):
                share = row["micronet-eager"] / row["micrograd"]
                target = "   [issue 5: at most 1/5: " + ("met" if share <= 0.2 else "NOT met") + "]" if n == 800 else ""
                lines.append(f"  micronet-eager / micrograd at {n} samples = {share:.2f}{target}")
    for axis, table in results.get("growth", {}).items():
        lines += ["", f"growth of (a) in {axis} ({table['fixed']}): median CPU time per step; "
                      f"exponent = slope of log time vs log {axis}"]
        lines.append(f"  {'engine':<19}" + "".join(f"{s:>11}" for s in table["sizes"]) + f"{'exponent':>10}")
        for name, row in table["engines"].items():
            exponent = "-" if row["exponent"] is None else f"{row['exponent']:.2f}"
            times = "".join(f"{format_seconds(t):>11}" for t in row["seconds"])
            lines.append(f"  {name:<19}{times}{exponent:>10}")
        if SLOW & set(table["engines"]):
            config = results["config"]
            lines.append("  (micrograd: 1 repeat per point, no warm-up; with its collector on only up to "
                         f"{config['micrograd_gc_max_samples']} samples and width {config['micrograd_gc_max_width']})")
    if "scale_growth" in results:
        table = results["scale_growth"]
        lines += ["", "growth of (d) in samples: median CPU time per epoch and peak traced memory of one epoch "
                  "(the data set itself, allocated before, is not counted); "
                  "exponent = slope of log time vs log samples"]
        lines.append(f"  {'engine':<19}" + "".join(f"{n:>11,}" for n in table["sizes"]) + f"{'exponent':>10}"
                     + "".join(f"{'peak ' + format(n, ','):>16}" for n in table["sizes"]))
        for name, row in table["engines"].items():
            exponent = "-" if row["exponent"] is None else f"{row['exponent']:.2f}"
            times = "".join(f"{format_seconds(t):>11}" for t in row["seconds"])
            peaks = "".join(f"{format_bytes(b):>16}" for b in row["peak_bytes"])
            lines.append(f"  {name:<19}{times}{exponent:>10}{peaks}")
        compiled = table["engines"].get("micronet-compiled")
        if compiled and compiled["peak_bytes"][-1] is not None and table["sizes"][-1] >= 100_000:
            peak = compiled["peak_bytes"][-1]
            exponent = compiled["exponent"]
            verdict = "met" if peak < 100e6 else "NOT met"
            lines.append(f"  [issue 14: compiled peak memory at {table['sizes'][-1]:,} samples under 100 MB: "
                         f"{verdict} ({format_bytes(peak)}); time exponent {exponent:.2f}]")
    lines += ["", f"total {results['total_seconds']:.0f} s"]
    return "\n".join(lines)


# ----- command line ---------------------------------------------------------------------------


def parse_list(text, valid, what):
    """A comma-separated selection, each entry checked against `valid` with a suggestion."""
    chosen = [item.strip() for item in text.split(",") if item.strip()]
    for item in chosen:
        if item not in valid:
            close = difflib.get_close_matches(item, valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise argparse.ArgumentTypeError(f"unknown {what} {item!r}; choose from {', '.join(valid)}{hint}")
    if not chosen:
        raise argparse.ArgumentTypeError(f"--{what}s needs at least one of {', '.join(valid)}")
    return tuple(chosen)


def positive(name):
    """An argparse type for integers >= 1, with the option's name in the message."""
    def parse(text):
        value = int(text)
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be >= 1, got {value}")
        return value

    return parse


def git_commit(repo):
    """Short commit of the checkout (with + if micronet/ has uncommitted changes), or None."""
    try:
        head = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "micronet"], capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("+" if dirty.stdout.strip() else "")


def main(argv=None):
    """Parse options, run, print the table (and write the JSON); exit 1 if a check failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", type=lambda t: parse_list(t, WORKLOADS, "workload"), default=tuple(WORKLOADS),
                        help="comma-separated, from a,b,c,d (default: all)")
    parser.add_argument("--engines", type=lambda t: parse_list(t, ENGINES, "engine"), default=tuple(ENGINES),
                        help=f"comma-separated, from {','.join(ENGINES)} (default: all)")
    parser.add_argument("--repeats", type=positive("--repeats"),
                        help=f"timed repeats per engine (default {BenchConfig.repeats}; micrograd gets --slow-repeats)")
    parser.add_argument("--slow-repeats", type=positive("--slow-repeats"),
                        help="timed repeats for micrograd and eager over the grid "
                             f"(default {BenchConfig.slow_repeats})")
    parser.add_argument("--threads", type=positive("--threads"),
                        help=f"threads for PyTorch and BLAS (default {BenchConfig.threads})")
    parser.add_argument("--gc", choices=("users", "frozen"),
                        help="the collector as users run it (default), "
                             "or everything alive before timing frozen out of it (micrograd's best case)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run in seconds: few repeats, small grid, small growth")
    parser.add_argument("--json", nargs="?", const="-", metavar="PATH",
                        help="write every number as JSON to PATH (or stdout: the table then goes to stderr)")
    args = parser.parse_args(argv)

    overrides = dict(QUICK) if args.quick else {}
    overrides.update(workloads=args.workloads, engines=args.engines)
    if args.repeats:
        overrides["repeats"] = args.repeats
    if args.slow_repeats:
        overrides["slow_repeats"] = args.slow_repeats
    if args.threads:
        overrides["threads"] = args.threads
    if args.gc:
        overrides["gc"] = args.gc
    config = dataclasses.replace(BenchConfig(), **overrides)

    started = time.perf_counter()

    def progress(message):
        print(f"[{time.perf_counter() - started:5.0f} s] {message}", file=sys.stderr, flush=True)

    results = run_benchmark(config, progress)
    results["machine"]["git"] = git_commit(str(Path(__file__).resolve().parents[1]))
    report = format_report(results)
    if args.json == "-":
        print(report, file=sys.stderr)
        print(json.dumps(results, indent=2, default=str))
    else:
        print(report)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0 if all(c["ok"] for c in results["checks"]) else 1


if __name__ == "__main__":
    sys.exit(main())
