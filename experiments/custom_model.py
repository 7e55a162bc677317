"""A model that is not an MLP, trained in one call with `micronet.fit`.

A small residual network on concentric circles: an input layer, two
residual blocks (h + tanh(W h + b)) and a linear head, all built from
micronet Layers and Values. `micronet.fit` trains it with the loop behind
the CLI, a validation split and early stopping; the compiled executor runs
it (the skip connections node by node, the layers as array operations), and
the script first checks that its gradients are the eager engine's.

    python experiments/custom_model.py
"""

import random
import sys
import time

import numpy as np
from sklearn.datasets import make_circles
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import micronet
from micronet.compile import compile_model
from micronet.loop import EagerExecutor
from micronet.losses import cross_entropy
from micronet.nn import Layer, Module


class ResidualNet(Module):
    """x -> relu(W0 x) -> [h + tanh(W h)] x blocks -> logits."""

    def __init__(self, nin, width, n_classes, blocks=2, seed=0):
        rng = random.Random(seed)
        self.stem = Layer(nin, width, activation="relu", seed=rng)
        self.blocks = [Layer(width, width, activation="tanh", seed=rng) for _ in range(blocks)]
        self.head = Layer(width, n_classes, activation="linear", seed=rng)

    def __call__(self, x):
        h = self.stem(x)
        for block in self.blocks:
            h = [a + b for a, b in zip(h, block(h))]  # the skip connection
        return self.head(h)


def gradients(model, executor, X, y):
    model.zero_grad()
    executor.loss_and_grad(X, y)
    grads = [p.grad for p in model.parameters()]
    model.zero_grad()
    return grads


def main():
    X, y = make_circles(400, noise=0.08, factor=0.5, random_state=0)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    model = ResidualNet(2, 12, 2, seed=0)
    print(model)

    compiled = gradients(model, compile_model(model, 2, cross_entropy), X_train[:32], y_train[:32])
    eager = gradients(model, EagerExecutor(model, cross_entropy), X_train[:32], y_train[:32])
    worst = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(compiled, eager))
    print(f"compiled vs eager gradients on one batch: max relative difference {worst:.1e}")

    def report(epoch, logs):
        if epoch % 10 == 0:
            print(f"epoch {epoch:3d}  loss {logs['loss']:.4f}  validation accuracy {logs['val_accuracy']:.3f}")

    started = time.perf_counter()
    history = micronet.fit(model, X_train, y_train, epochs=100, lr=0.05, momentum=0.9, schedule="cosine",
                           validation_split=0.2, early_stopping=10, callbacks=[report], seed=0, progress=False)
    accuracy = float(np.mean(micronet.predict(model, X_test) == y_test))
    print(f"{history}\ntest accuracy {accuracy:.3f} in {time.perf_counter() - started:.1f} s")
    return 0 if accuracy >= 0.9 and worst < 1e-12 else 1


if __name__ == "__main__":
    sys.exit(main())
