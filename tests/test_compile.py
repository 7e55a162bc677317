"""The compiled batch executor: the eager engine's numbers, for a whole batch at a time."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from micronet.compile import CompileError, compile_model
from micronet.config import HIDDEN_ACTIVATIONS
from micronet.engine import Value, dot, log_softmax_at
from micronet.loop import EagerExecutor, fit
from micronet.losses import LOSSES, cross_entropy, get_loss, huber_loss, l1_loss, mse_loss
from micronet.nn import MLP, Layer, Module, Neuron
from micronet.optim import SGD


def assert_close(got, expected, rel=1e-12):
    """Entry by entry within rel of the largest |expected| (relative to the array's scale)."""
    got, expected = np.asarray(got, float), np.asarray(expected, float)
    assert got.shape == expected.shape
    scale = np.abs(expected).max(initial=0.0)
    np.testing.assert_allclose(got, expected, rtol=rel, atol=rel * scale)


def grads_after(executor, model, X, y):
    model.zero_grad()
    loss = executor.loss_and_grad(X, y)
    return loss, [p.grad for p in model.parameters()]


@settings(max_examples=25, deadline=None)
@given(
    hidden=st.lists(st.integers(1, 6), min_size=0, max_size=3),
    n_in=st.integers(1, 4),
    n_out=st.integers(2, 4),
    activation=st.sampled_from(HIDDEN_ACTIVATIONS),  # every registered one
    loss=st.sampled_from(sorted(LOSSES)),
    batch=st.integers(1, 9),
    seed=st.integers(0, 10_000),
)
def test_random_mlps_give_eager_numbers(hidden, n_in, n_out, activation, loss, batch, seed):
    """Outputs, per-sample losses, the mean loss and its gradients agree with eager to 1e-12 relative."""
    rng = np.random.default_rng(seed)
    model = MLP(n_in, [*hidden, n_out], activation=activation, seed=seed)
    X = rng.standard_normal((batch, n_in)) * 2
    y = rng.integers(0, n_out, batch)
    eager = EagerExecutor(model, LOSSES[loss])
    compiled = compile_model(model, n_in, LOSSES[loss])
    (eager_losses, eager_logits), (compiled_losses, compiled_logits) = eager.evaluate(X, y), compiled.evaluate(X, y)
    assert_close(compiled_logits, eager_logits)
    assert_close(compiled_losses, eager_losses)
    for rows in (slice(0, 1), slice(None)):
        eager_loss, eager_grads = grads_after(eager, model, X[rows], y[rows])
        compiled_loss, compiled_grads = grads_after(compiled, model, X[rows], y[rows])
        assert compiled_loss == pytest.approx(eager_loss, rel=1e-12, abs=1e-300)
        assert_close(compiled_grads, eager_grads)


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
        assert_close(logits[i], [v.data for v in model(grid[i].tolist())])


def test_layers_are_grouped_into_array_steps():
    compiled = compile_model(MLP(4, [16, 16, 3], seed=0), 4)
    kinds = [type(step).__name__ for step in compiled.program.steps]
    assert kinds == ["Affine", "Map", "Affine", "Map", "Affine"]


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


class SharedBlocks(Module):
    """One hidden block read by three steps (one reads a column twice), and one layer used twice (tied weights)."""

    def __init__(self):
        self.trunk = Layer(3, 4, activation="tanh", seed=0)
        self.tied = Layer(4, 4, activation="tanh", seed=1)
        self.head = Layer(4, 2, activation="linear", seed=2)
        self.aux = Layer(4, 2, activation="linear", seed=3)
        self.pick = Layer(3, 2, activation="linear", seed=4)

    def __call__(self, x):
        h = self.trunk(x)
        deep = self.tied(self.tied(h))  # the same weights at two depths
        waves = self.aux([v.sin() for v in h])  # tied and sin read all of h
        picked = self.pick([h[2], h[0], h[0]])  # some columns of h, one of them twice
        return [a + b + c for a, b, c in zip(self.head(deep), waves, picked)]


def test_a_block_read_twice_and_a_layer_used_twice_sum_their_gradients_as_eager():
    model = SharedBlocks()
    X = np.random.default_rng(6).standard_normal((7, 3))
    y = np.array([0, 1, 1, 0, 1, 0, 0])
    compiled = compile_model(model, 3, cross_entropy)
    assert [type(step).__name__ for step in compiled.program.steps].count("Affine") == 6  # trunk, tied twice, head, aux, pick
    eager_loss, eager_grads = grads_after(EagerExecutor(model, cross_entropy), model, X, y)
    compiled_loss, compiled_grads = grads_after(compiled, model, X, y)
    assert compiled_loss == pytest.approx(eager_loss, rel=1e-12)
    assert_close(compiled_grads, eager_grads)  # eager backward adds both uses' gradients into the tied weights
    session = compiled.training_session(SGD(model.parameters(), lr=0.1))  # writes the gradient vector directly
    session.step(X, y)
    assert_close(session.g, eager_grads)


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


class NanGate(Module):
    """relu of a NaN input, and hinge terms that are NaN, whose slopes reach finite gradients."""

    def __init__(self):
        self.b0, self.b1, self.b2 = Value(0.5), Value(-0.25), Value(2.0)

    def __call__(self, x):
        return [(x[0] + self.b0).relu(), x[1] * self.b1, (x[1] + self.b2).relu()]


def test_relu_and_hinge_slopes_at_nan_are_eagers():
    # A NaN logit makes hinge terms NaN: eager's relu passes NaN with slope 1, so d/d(logit) stays finite
    # (1/K) and, through the model's own relu at NaN (slope 1 again), reaches b0. A slope of 0 at NaN in
    # either batch kernel would give b0 and b1 other gradients.
    X = np.array([[np.nan, 1.0], [0.25, 4.0], [np.nan, -3.0]])
    y = np.array([1, 0, 2])
    hinge = get_loss("hinge", "classification")
    model = NanGate()
    eager_loss, eager_grads = grads_after(EagerExecutor(model, hinge), model, X, y)
    compiled_loss, compiled_grads = grads_after(compile_model(model, 2, hinge), model, X, y)
    assert np.isnan(eager_loss) and np.isnan(compiled_loss)
    assert eager_grads == pytest.approx([1 / 9, -5 / 9, 2 / 9], rel=1e-12)  # worked out with both slopes 1
    assert_close(compiled_grads, eager_grads)


class Tied(Module):
    """One layer applied twice (tied weights), then a head."""

    def __init__(self):
        self.shared = Layer(2, 2, activation="tanh", seed=5)
        self.head = Layer(2, 2, activation="linear", seed=6)

    def __call__(self, x):
        return self.head(self.shared(self.shared(x)))


class Untied(Module):
    """Tied's function with the second use of its layer as a separate copy."""

    def __init__(self, tied):
        self.first, self.second, self.head = Layer(2, 2, "tanh"), Layer(2, 2, "tanh"), Layer(2, 2, "linear")
        for part, weights in ((self.first, tied.shared), (self.second, tied.shared), (self.head, tied.head)):
            part.load_state_dict(weights.state_dict())

    def __call__(self, x):
        return self.head(self.second(self.first(x)))


def test_a_layer_used_twice_gets_the_sum_of_both_uses_gradients():
    tied = Tied()
    X = np.random.default_rng(5).standard_normal((7, 2))
    y = np.array([0, 1, 1, 0, 1, 0, 0])
    _, eager_grads = grads_after(EagerExecutor(tied, cross_entropy), tied, X, y)
    _, compiled_grads = grads_after(compile_model(tied, 2, cross_entropy), tied, X, y)
    assert_close(compiled_grads, eager_grads)
    # The oracle: the same function with the layer's two uses untied, their gradients added.
    untied = Untied(tied)
    _, parts = grads_after(EagerExecutor(untied, cross_entropy), untied, X, y)
    summed = [a + b for a, b in zip(parts[:6], parts[6:12])] + parts[12:]
    assert_close(compiled_grads, summed)


def test_training_a_tied_layer_compiled_is_training_it_eagerly():
    X = np.random.default_rng(6).standard_normal((40, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    runs = []
    for backend in ("eager", "compiled"):
        model = Tied()
        fit(model, X, y, epochs=3, batch_size=8, lr=0.1, momentum=0.9, backend=backend, progress=False)
        runs.append([p.data for p in model.parameters()])
    assert_close(runs[1], runs[0])


# ----- losses over a batch ---------------------------------------------------------------

REGRESSION = [
    get_loss("mse", "regression"),
    get_loss("l1", "regression"),
    get_loss("huber", "regression"),
    get_loss("huber", "regression", delta=0.3),
    mse_loss, l1_loss, huber_loss,  # the plain functions are recognised too
]


def agree_with_eager(model, n_in, loss, X, y):
    eager, compiled = EagerExecutor(model, loss), compile_model(model, n_in, loss)
    (eager_losses, eager_logits), (compiled_losses, compiled_logits) = eager.evaluate(X, y), compiled.evaluate(X, y)
    assert_close(compiled_logits, eager_logits)
    assert_close(compiled_losses, eager_losses)
    eager_loss, eager_grads = grads_after(eager, model, X, y)
    compiled_loss, compiled_grads = grads_after(compiled, model, X, y)
    assert compiled_loss == pytest.approx(eager_loss, rel=1e-12)
    assert_close(compiled_grads, eager_grads)
    return compiled


@pytest.mark.parametrize("loss", REGRESSION, ids=repr)
@pytest.mark.parametrize("k, y_shape", [(1, (7,)), (1, (7, 1)), (3, (7, 3))])
def test_regression_losses_take_float_targets_of_shape_n_or_n_k(loss, k, y_shape):
    rng = np.random.default_rng(k)
    X, y = rng.standard_normal((7, 3)), rng.standard_normal(y_shape) * 2
    compiled = agree_with_eager(MLP(3, [5, k], activation="tanh", seed=1), 3, loss, X, y)
    assert not isinstance(compiled._loss, type(compiled)) and callable(compiled._loss)


def test_regression_kernels_at_the_kinks_give_pytorchs_slopes():
    """Outputs are exactly 0 (zero weights), so d = -y hits huber's +-delta and l1's 0 exactly."""
    model = MLP(1, [2], activation="linear", seed=0)
    for p in model.parameters():
        p.data = 0.0
    X = np.zeros((4, 1))
    y = np.array([[0.5, -0.5], [0.0, 2.0], [-2.0, 0.25], [1.0, -1.0]])
    for loss in (get_loss("huber", "regression", delta=0.5), get_loss("huber", "regression", delta=2.0),
                 get_loss("l1", "regression"), get_loss("huber", "regression")):
        agree_with_eager(model, 1, loss, X, y)


@pytest.mark.parametrize("loss", [get_loss("cross_entropy"), get_loss("hinge"), get_loss("hinge", margin=0.5), get_loss("mse")], ids=repr)
def test_classification_losses_by_name_run_as_kernels(loss):
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((9, 4)), rng.integers(0, 3, 9)
    agree_with_eager(MLP(4, [6, 3], seed=2), 4, loss, X, y)


def test_a_custom_loss_on_continuous_targets_runs_row_by_row():
    def log_cosh(outputs, target):  # a loss the executor does not know
        d = outputs[0] - target
        return ((d.exp() + (-d).exp()) * 0.5).log()

    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((50, 2)), rng.standard_normal(50)  # 50 distinct targets: no tracing
    agree_with_eager(MLP(2, [4, 1], seed=0), 2, log_cosh, X, y)


def test_a_custom_classification_loss_is_traced_once_per_target():
    def hinge(outputs, target):
        return (1 + -target * outputs[0]).relu()

    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((12, 2)), rng.choice([-1, 1], 12)
    compiled = agree_with_eager(MLP(2, [4, 1], seed=0), 2, hinge, X, y)
    assert sorted(compiled._loss.programs) == [-1, 1]


def test_a_custom_loss_traced_per_class_merges_or_runs_per_class_with_eager_numbers():
    def nll(outputs, target):  # reads the target's logit: the traces merge into one program
        return -log_softmax_at(outputs, target)

    def mixed(outputs, target):  # a different function for class 0: one program per class
        z = outputs[target] * 0.5
        return -log_softmax_at(outputs, target) + (z.exp() if target == 0 else z.sin())

    rng = np.random.default_rng(8)
    X, y = rng.standard_normal((15, 3)), np.array([2, 0, 1] * 5)
    for loss, merges in ((nll, True), (mixed, False)):
        compiled = agree_with_eager(MLP(3, [4, 3], seed=5), 3, loss, X, y)
        assert sorted(compiled._loss.programs) == [0, 1, 2]
        assert (compiled._loss.merged[0] is not None) == merges


def test_batch_targets_are_checked_like_eager():
    model = MLP(2, [3, 2], seed=0)
    X = np.zeros((2, 2))
    with pytest.raises(ValueError, match="mse_loss needs as many targets as outputs, got 3 and 2"):
        compile_model(model, 2, get_loss("mse", "regression")).evaluate(X, np.zeros((2, 3)))
    with pytest.raises(IndexError, match="target 2 is out of range for 2 classes"):
        compile_model(model, 2, cross_entropy).evaluate(X, np.array([0, 2]))
    with pytest.raises(TypeError, match="targets must be integer class indices"):
        compile_model(model, 2, cross_entropy).evaluate(X, np.array([0.5, 1.0]))


# ----- training sessions: parameters in arrays ----------------------------------------------

import copy  # noqa: E402
from pathlib import Path  # noqa: E402

from micronet.compile import TrainingSession  # noqa: E402
from micronet.optim import Adam, CosineSchedule  # noqa: E402

OPTIMIZERS = {
    "sgd": lambda params: SGD(params, lr=0.1),
    "sgd_momentum_wd": lambda params: SGD(params, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "sgd_nesterov": lambda params: SGD(params, lr=0.05, momentum=0.8, nesterov=True),
    "adam": lambda params: Adam(params, lr=0.01),
    "adam_low_beta1_wd": lambda params: Adam(params, lr=0.02, betas=(0.3, 0.99), weight_decay=1e-2),
}


def moons_like(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    return X, (X[:, 0] * X[:, 1] > 0).astype(int)


def batches_of(X, y, size=8):
    return [(X[i : i + size], y[i : i + size]) for i in range(0, len(y), size)]


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("make_model", [lambda: MLP(2, [5, 4, 2], seed=3), Residual], ids=["mlp", "residual"])
def test_session_trajectory_is_the_scalar_optimizers_bit_for_bit(name, make_model):
    """loss_and_grad + optimizer.step on Values against session.step on arrays, a schedule changing lr."""
    X, y = moons_like()
    reference, trained = make_model(), make_model()
    ref_opt, opt = OPTIMIZERS[name](reference.parameters()), OPTIMIZERS[name](trained.parameters())
    ref_schedule, schedule = CosineSchedule(ref_opt, T_max=7), CosineSchedule(opt, T_max=7)
    ref_compiled = compile_model(reference, 2, cross_entropy)
    session = compile_model(trained, 2, cross_entropy).training_session(opt)
    for Xb, yb in batches_of(X, y) * 2:
        ref_opt.zero_grad()
        ref_loss = ref_compiled.loss_and_grad(Xb, yb)
        ref_opt.step()
        ref_schedule.step()
        assert session.step(Xb, yb) == ref_loss
        schedule.step()
    session.sync()
    assert [p.data for p in trained.parameters()] == [p.data for p in reference.parameters()]
    assert [p.grad for p in trained.parameters()] == [p.grad for p in reference.parameters()]
    assert opt.state_dict() == ref_opt.state_dict()


def test_values_are_current_only_after_sync_but_evaluate_always_is():
    X, y = moons_like()
    model = MLP(2, [6, 2], seed=1)
    before = [p.data for p in model.parameters()]
    compiled = compile_model(model, 2, cross_entropy)
    opt = SGD(model.parameters(), lr=0.2, momentum=0.9)
    session = compiled.training_session(opt)
    session.step(X, y)
    session.step(X, y)
    assert [p.data for p in model.parameters()] == before  # not synced yet
    assert opt.momentum_buffer is None and opt.step_count == 0
    live_losses, live_logits = compiled.evaluate(X, y)  # the arrays' parameters, no sync needed
    synced_copy = copy.deepcopy(model)
    for p, x in zip(synced_copy.parameters(), session.p.tolist()):
        p.data = x
    expected_losses, expected_logits = compile_model(synced_copy, 2, cross_entropy).evaluate(X, y)
    assert np.array_equal(live_logits, expected_logits) and np.array_equal(live_losses, expected_losses)
    session.sync()
    assert [p.data for p in model.parameters()] == session.p.tolist()
    assert [p.grad for p in model.parameters()] == session.g.tolist()
    assert opt.step_count == 2 and opt.momentum_buffer == opt.state_dict()["momentum_buffer"] != None  # noqa: E711
    assert np.array_equal(compiled.logits(X), live_logits)


def test_after_sync_the_values_are_the_truth_again():
    """Restoring weights or loading a state between steps needs no reload: the next step reads them."""
    X, y = moons_like()
    model = MLP(2, [6, 2], seed=1)
    start = model.state_dict()
    opt = Adam(model.parameters(), lr=0.05)
    opt_start = opt.state_dict()
    compiled = compile_model(model, 2, cross_entropy)
    session = compiled.training_session(opt)
    first = session.step(X, y)
    session.step(X, y)
    session.sync()
    model.load_state_dict(start)  # restore the first weights and the optimizer's first state
    opt.load_state_dict(opt_start)
    assert np.array_equal(compiled.logits(X), compile_model(MLP(2, [6, 2], seed=1), 2).logits(X))
    assert session.step(X, y) == first  # the same step as the very first


def test_reload_discards_unsynced_steps():
    X, y = moons_like()
    model = MLP(2, [3, 2], seed=0)
    session = compile_model(model, 2, cross_entropy).training_session(SGD(model.parameters(), lr=0.5))
    start = session.p.copy()
    session.step(X, y)
    assert not np.array_equal(session.p, start)
    session.reload()
    assert np.array_equal(session.p, start)


def test_lr_is_read_from_the_optimizer_at_every_step():
    X, y = moons_like()
    model = MLP(2, [3, 2], seed=0)
    opt = SGD(model.parameters(), lr=0.5)
    session = compile_model(model, 2, cross_entropy).training_session(opt)
    start = session.p.copy()
    opt.lr = 0.0
    session.step(X, y)
    assert np.array_equal(session.p, start)


def test_non_finite_loss_or_gradient_stops_before_the_update():
    X, y = moons_like()
    X[3, 0] = np.nan
    model = MLP(2, [3, 2], seed=0)
    session = compile_model(model, 2, cross_entropy).training_session(SGD(model.parameters(), lr=0.5))
    start = session.p.copy()
    with pytest.raises(FloatingPointError, match="^loss=nan$"):
        session.step(X, y)
    assert np.array_equal(session.p, start)

    class RootOfZero(Module):  # a finite loss whose gradient is not: d sqrt(w * 0)/dw = 0 * inf
        def __init__(self):
            self.w = Value(1.0)

        def __call__(self, x):
            return [(self.w * x[0]) ** 0.5, x[1]]

    model = RootOfZero()
    session = compile_model(model, 2, cross_entropy, examples=[[1.0, 0.0], [2.0, 1.0]]).training_session(
        SGD(model.parameters(), lr=0.5))
    with pytest.raises(FloatingPointError, match=r"^a gradient became nan$"):
        session.step(np.array([[0.0, 1.0]]), np.array([0]))
    assert session.p.tolist() == [1.0]


def test_a_parameter_that_overflows_is_reported_after_the_update():
    X, y = moons_like()
    model = MLP(2, [3, 2], seed=0)
    session = compile_model(model, 2, cross_entropy).training_session(SGD(model.parameters(), lr=1e308))
    with pytest.raises(FloatingPointError, match=r"^a parameter became -?inf$"):
        session.step(X * 1e6, y)  # finite loss and gradients, but lr * gradient > 1.8e308
    assert not np.isfinite(session.p).all()


def test_close_syncs_and_detaches():
    X, y = moons_like()
    model = MLP(2, [3, 2], seed=0)
    compiled = compile_model(model, 2, cross_entropy)
    with compiled.training_session(SGD(model.parameters(), lr=0.5)) as session:
        session.step(X, y)
    assert compiled.session is None and [p.data for p in model.parameters()] == session.p.tolist()


def test_sessions_are_refused_clearly():
    model = MLP(2, [3, 2], seed=0)
    compiled = compile_model(model, 2, cross_entropy)
    with pytest.raises(ValueError, match="must hold the compiled model's parameters"):
        compiled.training_session(SGD(MLP(2, [3, 2], seed=0).parameters(), lr=0.1))
    with pytest.raises(ValueError, match="must hold the compiled model's parameters"):
        compiled.training_session(SGD(model.parameters()[::-1], lr=0.1))

    class Clipped(SGD):
        pass

    with pytest.raises(CompileError, match="no array twin for Clipped"):
        compiled.training_session(Clipped(model.parameters(), lr=0.1))
    with pytest.raises(ValueError, match="compiled without a loss"):
        compile_model(model, 2).training_session(SGD(model.parameters(), lr=0.1))
    assert isinstance(compiled.training_session(SGD(model.parameters(), lr=0.1)), TrainingSession)


# ----- every shipped config: the compiled numbers are eager's to 1e-12 -------------------------

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_agrees_with_eager_to_1e_12(path):
    """At the initial weights and after 30 compiled training steps: outputs, losses and gradients on 64 rows."""
    from micronet.config import load_config
    from micronet.loop import config_loss, new_state
    from micronet.train import load_run_data

    config = load_config(path)
    data = load_run_data(config)
    state = new_state(config, data)
    loss = config_loss(config)
    compiled = compile_model(state.model, data.feature_count, loss)
    X, y = data.X_train[:64], data.y_train[:64]
    session = compiled.training_session(state.optimizer)
    for checkpoint in range(2):
        agree_with_eager(state.model, data.feature_count, loss, X, y)
        rng = np.random.default_rng(checkpoint)
        for _ in range(30):
            rows = rng.choice(len(data.y_train), size=min(32, len(data.y_train)), replace=False)
            session.step(data.X_train[rows], data.y_train[rows])
        session.sync()
