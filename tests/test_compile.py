"""The compiled batch executor: the eager engine's numbers, for a whole batch at a time."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from micronet.compile import CompileError, compile_model
from micronet.engine import Value, dot
from micronet.losses import LOSSES, cross_entropy
from micronet.nn import MLP, Layer, Module, Neuron
from micronet.loop import EagerExecutor


def grads_after(executor, model, X, y):
    model.zero_grad()
    loss = executor.loss_and_grad(X, y)
    return loss, [p.grad for p in model.parameters()]


@settings(max_examples=25, deadline=None)
@given(
    hidden=st.lists(st.integers(1, 6), min_size=0, max_size=3),
    n_in=st.integers(1, 4),
    n_out=st.integers(2, 4),
    activation=st.sampled_from(["relu", "tanh", "sigmoid"]),
    loss=st.sampled_from(sorted(LOSSES)),
    batch=st.integers(1, 9),
    seed=st.integers(0, 10_000),
)
def test_random_mlps_give_eager_numbers(hidden, n_in, n_out, activation, loss, batch, seed):
    """Per-sample values bit for bit; a batch of one's gradients bit for bit; a batch's to 1e-12."""
    rng = np.random.default_rng(seed)
    model = MLP(n_in, [*hidden, n_out], activation=activation, seed=seed)
    X = rng.standard_normal((batch, n_in)) * 2
    y = rng.integers(0, n_out, batch)
    eager = EagerExecutor(model, LOSSES[loss])
    compiled = compile_model(model, n_in, LOSSES[loss])
    eager_eval, compiled_eval = eager.evaluate(X, y), compiled.evaluate(X, y)
    assert np.array_equal(eager_eval[0], compiled_eval[0]) and np.array_equal(eager_eval[1], compiled_eval[1])

    one = grads_after(eager, model, X[:1], y[:1]), grads_after(compiled, model, X[:1], y[:1])
    assert one[0] == one[1]
    eager_loss, eager_grads = grads_after(eager, model, X, y)
    compiled_loss, compiled_grads = grads_after(compiled, model, X, y)
    assert compiled_loss == eager_loss  # the per-sample losses are exact, and summed in eager's order
    assert compiled_grads == pytest.approx(eager_grads, rel=1e-12, abs=1e-300)


def test_gradients_accumulate_like_eager_backward():
    model = MLP(2, [3, 2], seed=0)
    compiled = compile_model(model, 2, cross_entropy)
    X, y = np.array([[0.5, -1.0], [1.0, 2.0]]), np.array([0, 1])
    model.zero_grad()
    compiled.loss_and_grad(X, y)
    once = [p.grad for p in model.parameters()]
    compiled.loss_and_grad(X, y)
    assert [p.grad for p in model.parameters()] == [2 * g for g in once]


def test_logits_of_a_large_grid_match_eager_in_chunks():
    model = MLP(2, [8, 3], activation="tanh", seed=3)
    grid = np.random.default_rng(0).uniform(-3, 3, (10_000, 2))
    logits = compile_model(model, 2).logits(grid)
    assert logits.shape == (10_000, 3)
    for i in (0, 4095, 4096, 9999):  # both sides of a chunk boundary
        assert logits[i].tolist() == [v.data for v in model(grid[i].tolist())]


def test_layers_are_grouped_into_array_steps():
    compiled = compile_model(MLP(4, [16, 16, 3], seed=0), 4)
    kinds = [type(step).__name__ for step in compiled.program.steps]
    assert kinds == ["_Affine", "_Map", "_Affine", "_Map", "_Affine"]


class Residual(Module):
    """A model that is not an MLP: a skip connection and a parameter used outside a dot."""

    def __init__(self):
        self.inner = Layer(2, 2, activation="tanh", seed=1)
        self.head = Neuron(2, activation="linear", seed=2)
        self.gate = Value(0.5)

    def __call__(self, x):
        h = self.inner(x)
        mixed = [hi * self.gate + xi for hi, xi in zip(h, x)]
        (out,) = self.head(mixed)
        return [out, (out * out).sin() - mixed[0] ** 2]


def test_a_custom_graph_runs_node_by_node_with_eager_numbers():
    model = Residual()
    X = np.random.default_rng(1).standard_normal((5, 2))
    y = np.array([0, 1, 1, 0, 1])
    eager_loss, eager_grads = grads_after(EagerExecutor(model, cross_entropy), model, X, y)
    compiled_loss, compiled_grads = grads_after(compile_model(model, 2, cross_entropy), model, X, y)
    assert compiled_loss == pytest.approx(eager_loss, rel=1e-12)
    assert compiled_grads == pytest.approx(eager_grads, rel=1e-12, abs=1e-15)


class DataDependent(Module):
    def __init__(self):
        self.layer = Layer(2, 2, seed=0)

    def __call__(self, x):
        h = self.layer(x)
        return h if x[0].data > 0 else [h[1], h[0] * 2]


def test_graph_that_depends_on_the_data_is_refused():
    with pytest.raises(CompileError, match="graph changes with the input values"):
        compile_model(DataDependent(), 2, examples=[[1.0, 0.0], [-1.0, 0.0]])


def test_unknown_op_is_refused_with_its_name():
    class Custom(Module):
        def __init__(self):
            self.w = Value(1.0)

        def __call__(self, x):
            from micronet.engine import make_node

            return [make_node(x[0].data * 2, (x[0], self.w), (2.0, 0.0), "double")]

    with pytest.raises(CompileError, match="op 'double' has no batch kernel"):
        compile_model(Custom(), 1)


def test_engine_domain_errors_carry_over():
    class Logger(Module):
        def __init__(self):
            self.w = Value(1.0)

        def __call__(self, x):
            return [dot([self.w], x).log(), x[0]]

    compiled = compile_model(Logger(), 1, examples=[[1.0], [2.0]])
    with pytest.raises(ValueError, match="log is defined for positive numbers only"):
        compiled.logits(np.array([[1.0], [-1.0]]))


class Quotients(Module):
    """Division and abs between Values, and a number divided by a Value."""

    def __init__(self):
        self.inner = Layer(2, 2, activation="tanh", seed=4)
        self.scale = Value(1.5)

    def __call__(self, x):
        h0, h1 = self.inner(x)
        return [h0 / (1.0 + abs(h1)) * self.scale, 2.0 / (3.0 + abs(h0 - x[0])), abs(x[1]) / self.scale]


def test_division_and_abs_have_batch_kernels_with_eager_numbers():
    model = Quotients()
    X = np.random.default_rng(2).standard_normal((6, 2))
    X[0, 1] = 0.0  # abs at its kink: slope 0 in both
    y = np.array([0, 1, 2, 0, 1, 2])
    eager_loss, eager_grads = grads_after(EagerExecutor(model, cross_entropy), model, X, y)
    compiled_loss, compiled_grads = grads_after(compile_model(model, 2, cross_entropy), model, X, y)
    assert compiled_loss == pytest.approx(eager_loss, rel=1e-12)
    assert compiled_grads == pytest.approx(eager_grads, rel=1e-12, abs=1e-15)


def test_nan_passes_through_relu_in_both_backends():
    model = MLP(2, [4, 2], seed=0)
    X = np.array([[np.nan, 1.0], [0.5, -0.5]])
    y = np.array([0, 1])
    compiled = compile_model(model, 2, cross_entropy)
    assert np.isnan(compiled.logits(X)[0]).all() and np.isfinite(compiled.logits(X)[1]).all()
    for executor in (EagerExecutor(model, cross_entropy), compiled):
        loss, grads = grads_after(executor, model, X, y)
        assert np.isnan(loss) and np.isnan(grads).any()  # the trainer's finiteness check sees it
