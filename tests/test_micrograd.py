"""micronet.micrograd: micrograd 0.1.0's API on micronet's engine, with micrograd's numbers.

The oracles: central differences for custom ops; micrograd 0.1.0's own
numbers for its demo and the lecture's loop (tests/data/micrograd_goldens.json,
made by experiments/make_micrograd_goldens.py with real micrograd); and
micrograd's own test file, fetched from its sdist on PyPI at test time.
"""

import copy
import importlib.util
import json
import math
import random
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import micronet
from micronet import engine
from micronet.compile import CompileError, compile_model
from micronet.gradcheck import gradcheck
from micronet.micrograd import MLP, Layer, Module, Neuron, Value

ROOT = Path(__file__).parents[1]
GOLDENS = json.loads((ROOT / "tests" / "data" / "micrograd_goldens.json").read_text())
TOLERANCE = 1e-12


def load_experiment(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tanh_op(x):
    """tanh written as the lecture writes an op: children, an op name, and a _backward closure."""
    t = math.tanh(x.data)
    out = Value(t, (x,), "tanh")

    def _backward():
        x.grad += (1 - t * t) * out.grad

    out._backward = _backward
    return out


def mul_op(a, b):
    out = Value(a.data * b.data, (a, b), "*")

    def _backward():
        a.grad += b.data * out.grad
        b.grad += a.data * out.grad

    out._backward = _backward
    return out


# ----- Value: micrograd's constructor and attributes -----------------------------------------


def test_value_takes_micrograds_constructor_and_keeps_its_attributes():
    a, b = Value(2.0), Value(-3.0, label="b")
    c = Value(-1.0, (a, b), "+")
    assert (c.data, c.grad, c._op, c._prev, c.label) == (-1.0, 0.0, "+", (a, b), "")
    assert (a._prev, a._op, b.label) == ((), "", "b")
    assert isinstance(c, engine.Value) and isinstance(c, Value)


def test_every_op_returns_a_micrograd_value_whatever_the_other_operand():
    x, plain = Value(0.5), micronet.Value(2.0)
    results = [x + 1, 1 + x, x - 1, 1 - x, x * 2, 2 * x, x / 2, 2 / x, x**2, 2**x, -x, abs(x), x.abs(),
               x + plain, plain + x, plain - x, plain * x, plain / x, plain**x, x.relu(), x.tanh(), x.exp(),
               x.log(), x.sigmoid(), x.sin(), x.cos()]
    assert all(type(r) is Value for r in results)
    assert [r.data for r in results[:10]] == [1.5, 1.5, -0.5, 0.5, 1.0, 1.0, 0.25, 4.0, 0.25, 2**0.5]


def test_every_public_op_of_the_engine_is_wrapped():
    # An op added to micronet's Value is covered without an edit here (found by name).
    ops = {name for name, attribute in vars(engine.Value).items()
           if callable(attribute) and not name.startswith("_") and name != "backward"}
    assert ops and all(vars(Value)[name].__wrapped__ is vars(engine.Value)[name] for name in ops)


def test_methods_added_to_the_class_or_a_subclass_apply_to_results():
    class Traced(Value):  # a subclass with a __dict__: results are rebuilt as its instances
        def cube(self):
            return self * self * self

    t = Traced(2.0)
    y = (t + 1).cube()
    y.backward()
    assert type(y) is Traced and y.data == 27.0 and t.grad == 27.0  # d(t+1)^3/dt = 3 (t+1)^2

    class Slotted(Value):
        __slots__ = ()

    s = Slotted(3.0)
    assert type(s * s) is Slotted


def test_micrograds_values_and_micronets_mix_in_one_graph():
    old, new = micronet.Value(1.5), Value(-2.0)
    loss = micronet.hinge_loss(old * new, 1) + micronet.mse_loss([new], [0.5])
    loss.backward()
    # hinge: max(0, 1 - old*new) = 4, slope -new = 2 for old and -old = -1.5 for new; mse: 2*(new - 0.5)
    assert (loss.data, old.grad, new.grad) == (4.0 + 6.25, 2.0, -1.5 - 5.0)


# ----- custom ops through _backward -----------------------------------------------------------


def test_a_custom_op_matches_central_differences_inside_a_graph_of_built_in_ops():
    f = lambda a, b: tanh_op(mul_op(a, b) + a) * b + tanh_op(a * a)  # noqa: E731
    assert gradcheck(f, [0.3, -0.7], atol=1e-8, rtol=1e-6)
    assert gradcheck(f, [-1.1, 0.4], atol=1e-8, rtol=1e-6)


def test_a_custom_op_used_twice_and_reached_by_two_paths_accumulates():
    a = Value(0.4)
    t = tanh_op(a)
    y = mul_op(t, t) + t  # t reaches y directly and twice through the product
    y.backward()
    slope = 1 - math.tanh(0.4) ** 2
    assert a.grad == pytest.approx((2 * math.tanh(0.4) + 1) * slope, rel=1e-15)


def test_a_closure_is_run_as_written_so_the_lectures_assignment_bug_shows():
    # The lecture's bug: `=` instead of `+=` loses a gradient when a node is used twice.
    def add_with_the_bug(u, v):
        out = Value(u.data + v.data, (u, v), "+")

        def _backward():
            u.grad = 1.0 * out.grad
            v.grad = 1.0 * out.grad

        out._backward = _backward
        return out

    a = Value(3.0)
    add_with_the_bug(a, a).backward()
    assert a.grad == 1.0  # micrograd gives 1.0 too; the right answer is 2.0


def test_children_without_a_backward_function_pass_no_gradient():
    a = Value(2.0)
    out = Value(5.0, (a,), "mystery")
    (out * 3).backward()
    assert out.grad == 3.0 and a.grad == 0.0  # micrograd's default _backward does nothing


def test_backward_of_a_built_in_op_steps_one_node_as_in_the_lecture():
    a, b = Value(2.0), Value(-3.0)
    c = a * b
    d = c + a
    d.grad = 1.0
    d._backward()  # by hand, newest node first, as the lecture does before writing backward()
    c._backward()
    assert (a.grad, b.grad, c.grad) == (-3.0 + 1.0, 2.0, 1.0)
    a._backward()  # a leaf: nothing happens
    assert a.grad == -2.0


def test_assigning_backward_replaces_a_built_in_ops_rule():
    a = Value(3.0)
    y = a * 2
    y._backward = lambda: setattr(a, "grad", a.grad + 100.0 * y.grad)
    y.backward()
    assert a.grad == 100.0


def test_backward_twice_adds_twice_to_leaves_as_in_pytorch():
    a = Value(1.5)
    y = tanh_op(a * a)
    y.backward()
    once = a.grad
    y.backward()
    assert a.grad == 2 * once  # micrograd itself would give 3x here: it never resets interior grads


@pytest.mark.parametrize("make, message", [
    (lambda: Value(1.0, [1.0]), r"Value _children must be Values, got float: 1.0"),
    (lambda: Value(1.0, (), 3), r"Value _op must be a str, got int: 3"),
    (lambda: Value("1.0"), r"Value data must be a real number \(int or float\), got str: '1.0'"),
])
def test_construction_mistakes_are_named(make, message):
    with pytest.raises(TypeError, match=message):
        make()


def test_a_backward_that_is_not_a_function_is_refused():
    out = Value(1.0, (Value(2.0),), "f")
    with pytest.raises(TypeError, match=r"Value._backward must be a function of no arguments, got float"):
        out._backward = 1.0


def test_the_compiler_and_deepcopy_refuse_ops_with_python_backward_functions():
    class Squash(Module):
        def __init__(self):
            self.w = Value(0.5)

        def __call__(self, x):
            return [tanh_op(self.w * x[0])]

    with pytest.raises(CompileError, match=r"op 'tanh' was written micrograd's way \(a _backward function\); "
                                           r"it runs on the eager engine only"):
        compile_model(Squash(), 1)
    with pytest.raises(TypeError, match=r"cannot deepcopy a graph with an op written micrograd's way \(op 'tanh'\)"):
        copy.deepcopy(tanh_op(Value(1.0)))


def test_a_compat_model_without_custom_ops_compiles_to_the_same_numbers():
    random.seed(0)
    model = MLP(2, [4, 1])
    compiled = compile_model(model, 2)
    for row in ([0.3, -1.2], [2.0, 0.5]):
        assert compiled.logits([row])[0, 0] == pytest.approx(model(row).data, rel=1e-13)


# ----- Module, Neuron, Layer, MLP ------------------------------------------------------------


def test_weights_are_micrograds_draws_from_the_global_random_module():
    random.seed(7)
    expected = [random.uniform(-1, 1) for _ in range(3)]
    random.seed(7)
    neuron = Neuron(3)
    assert [w.data for w in neuron.w] == expected and neuron.b.data == 0.0
    random.seed(1337)
    model = MLP(2, [16, 16, 1])
    assert [p.data for p in model.parameters()] == GOLDENS["demo"]["initial_parameters"]  # exactly


def test_mlp_returns_a_value_for_one_output_and_a_list_for_several():
    random.seed(1)
    one, two = MLP(3, [4, 1]), MLP(3, [4, 2])
    assert type(one([1.0, 2.0, 3.0])) is Value
    out = two([1.0, 2.0, 3.0])
    assert type(out) is list and len(out) == 2 and all(type(v) is Value for v in out)
    assert type(Layer(3, 1)([Value(1.0), 2.0, 3.0])) is Value


def test_hidden_layers_are_relu_and_the_last_is_linear_as_in_micrograd():
    random.seed(2)
    model = MLP(2, [3, 1])
    assert [n.nonlin for layer in model.layers for n in layer.neurons] == [True, True, True, False]
    assert repr(model) == "MLP of [Layer of [ReLUNeuron(2), ReLUNeuron(2), ReLUNeuron(2)], Layer of [LinearNeuron(3)]]"
    for p in model.parameters():
        p.data = -1.0  # every hidden pre-activation is negative: relu gives 0, the output is the bias
    assert model([1.0, 1.0]).data == -1.0
    relu, linear = Neuron(2), Neuron(2, nonlin=False)
    relu.w = linear.w = [Value(-1.0), Value(-1.0)]
    assert (relu([1.0, 1.0]).data, linear([1.0, 1.0]).data) == (0.0, -2.0)


def test_a_layer_computes_what_calling_each_neuron_computes():
    # Layer calls its neurons in one fused call; a replaced Neuron.__call__ must still be honoured.
    random.seed(3)
    layer = Layer(3, 4)
    x = [Value(0.5), Value(-1.0), Value(2.0)]
    together = layer(x)
    one_by_one = [n(x) for n in layer.neurons]
    assert [v.data for v in together] == [v.data for v in one_by_one]
    sum(together).backward()
    grads = [v.grad for v in x]
    for v in x:
        v.grad = 0.0
    sum(one_by_one).backward()
    assert [v.grad for v in x] == grads

    layer.neurons[1].nonlin = False  # mixed neurons: each called in turn
    assert layer(x)[1].data == layer.neurons[1](x).data


def test_a_replaced_neuron_call_is_used_by_layers(monkeypatch):
    monkeypatch.setattr(Neuron, "__call__", lambda self, x: Value(42.0))
    random.seed(4)
    assert [v.data for v in Layer(2, 2)([1.0, 2.0])] == [42.0, 42.0]


def test_parameters_zero_grad_and_the_state_dict_move_weights_to_micronets_mlp():
    random.seed(5)
    model = MLP(2, [16, 16, 1])
    assert len(model.parameters()) == 337  # the demo prints "number of parameters 337"
    model([1.0, -1.0]).backward()
    assert any(p.grad for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0 for p in model.parameters())
    main = micronet.MLP(2, [16, 16, 1])  # relu hidden layers, linear output: micrograd's shape
    main.load_state_dict(model.state_dict())
    assert main([0.3, -0.2])[0].data == model([0.3, -0.2]).data


@pytest.mark.parametrize("make, error, message", [
    (lambda: Neuron(0), ValueError, r"nin must be an int >= 1, got 0"),
    (lambda: Layer(2, 2.0), ValueError, r"nout must be an int >= 1, got 2.0"),
    (lambda: MLP(2, []), ValueError, r"MLP nouts must list at least one layer size, got \[\]"),
    (lambda: Neuron(2, activation="tanh"), TypeError, r"unexpected keyword argument 'activation'"),
    (lambda: Neuron(2)([1.0, 2.0, 3.0]), ValueError, r"ReLUNeuron\(2\) expects 2 inputs, got 3"),
    (lambda: MLP(2, [3, 1])([1.0]), ValueError, r"ReLUNeuron\(2\) expects 2 inputs, got 1"),
    (lambda: Neuron(2)(5.0), TypeError, r"Neuron expects a list of 2 numbers or Values, got float"),
])
def test_module_mistakes_are_named(make, error, message):
    with pytest.raises(error, match=message):
        make()


# ----- micrograd's numbers -------------------------------------------------------------------


def test_the_demos_first_steps_are_micrograds():
    demo = load_experiment("micrograd_compat_demo")
    model, X, y, losses, accuracies = demo.run(steps=3, log=lambda *args: None)
    assert X.tolist() == GOLDENS["demo"]["X"] and y.tolist() == GOLDENS["demo"]["y"]
    for got, expected in zip(losses, GOLDENS["demo"]["loss"]):
        assert abs(got - expected) <= TOLERANCE
    assert accuracies == GOLDENS["demo"]["accuracy"][:3]


@pytest.mark.slow
def test_the_demo_reproduces_micrograds_100_steps():
    demo = load_experiment("micrograd_compat_demo")
    model, X, y, losses, accuracies = demo.run(log=lambda *args: None)
    golden = GOLDENS["demo"]
    assert len(losses) == 100 and max(abs(a - b) for a, b in zip(losses, golden["loss"])) <= TOLERANCE
    assert accuracies == golden["accuracy"] and accuracies[-1] == 1.0
    assert round(losses[-1], 6) == 0.010978  # micrograd's published result
    params = [p.data for p in model.parameters()]
    assert max(abs(a - b) for a, b in zip(params, golden["final_parameters"])) <= TOLERANCE


@pytest.mark.slow
def test_the_demo_script_runs_and_draws_the_boundary(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "experiments" / "micrograd_compat_demo.py"), "--quiet",
                           "--steps", "2", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"after 2 steps: loss {GOLDENS['demo']['loss'][1]:.6f}, accuracy 81%" in done.stdout and (tmp_path / "micrograd_compat_demo_boundary.png").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("custom_op", [False, True])
def test_the_lectures_loop_reproduces_micrograds_20_steps(custom_op):
    lecture = load_experiment("micrograd_compat_lecture")
    n, losses = lecture.run(custom_op=custom_op, log=lambda *args: None)
    golden = GOLDENS["lecture"]
    assert [p.data for p in n.parameters()] != golden["initial_parameters"]  # it trained
    assert max(abs(a - b) for a, b in zip(losses, golden["loss"])) <= TOLERANCE
    assert round(losses[0], 3) == 6.005 and round(losses[-1], 4) == 0.0178
    predictions = [n(x).data for x in lecture.XS]
    assert max(abs(a - b) for a, b in zip(predictions, golden["predictions"])) <= TOLERANCE
    params = [p.data for p in n.parameters()]
    assert max(abs(a - b) for a, b in zip(params, golden["final_parameters"])) <= TOLERANCE


def test_the_goldens_say_what_made_them():
    assert GOLDENS["made_by"].startswith("experiments/make_micrograd_goldens.py: micrograd 0.1.0")
    assert (ROOT / "experiments" / "make_micrograd_goldens.py").is_file()


@pytest.mark.slow
def test_the_timing_script_checks_the_engines_agree_before_it_reports():
    # Timing micrograd itself needs it installed; the project's venv has neither it nor a need to time it.
    engines = ["compat", "main", "compat-chain", "compat-closures"]
    done = subprocess.run([sys.executable, str(ROOT / "experiments" / "micrograd_timing.py"), "--engines",
                           ",".join(engines), "--steps", "2", "--repeat", "1"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line.startswith(("compat", "main"))}
    loss = f"{GOLDENS['demo']['loss'][1]:.6f}"
    assert set(rows) == set(engines) and {row[4] for row in rows.values()} == {loss} and rows["compat"][6] == "1.00x"
    gap = re.search(r"largest difference between the engines' losses, over all steps: (\S+)$", done.stdout, re.M)
    assert float(gap.group(1)) <= TOLERANCE


# ----- micrograd's own tests -----------------------------------------------------------------

SDIST = "micrograd==0.1.0 --hash=sha256:81797b796bef809fb1ac3fd83a7e01e007aecb8d056fba07c0e24931e043845d"
IMPORT = "from micrograd.engine import Value"


@pytest.mark.slow
def test_micrograds_own_tests_pass_against_the_compatible_value(tmp_path):
    """micrograd 0.1.0's test/test_engine.py (it compares with PyTorch), fetched from its sdist, import line changed."""
    (tmp_path / "requirements.txt").write_text(SDIST + "\n")
    download = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-r", "requirements.txt",
         "-d", "sdist"], cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert download.returncode == 0, f"could not fetch micrograd's sdist from PyPI:\n{download.stderr[-2000:]}"
    with tarfile.open(tmp_path / "sdist" / "micrograd-0.1.0.tar.gz") as sdist:
        source = sdist.extractfile("micrograd-0.1.0/test/test_engine.py").read().decode()
    assert source.count(IMPORT) == 1
    (tmp_path / "test_upstream.py").write_text(source.replace(IMPORT, "from micronet.micrograd.engine import Value"))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_upstream.py"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"^2 passed", run.stdout, flags=re.M), run.stdout


# ----- the guide ------------------------------------------------------------------------------

GUIDE = ROOT / "docs" / "from-micrograd.md"


@pytest.mark.slow
def test_the_guides_examples_run_in_order_and_give_micrograds_numbers(capsys):
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.S)
    assert len(blocks) == 6
    namespace = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"from-micrograd.md block {i}", "exec"), namespace)  # our own guide
        if "make_moons" in block:
            assert abs(namespace["loss"].data - GOLDENS["demo"]["loss"][-1]) <= TOLERANCE
            assert namespace["accuracy"] == 1.0
    assert type(namespace["score"]) is Value and len(namespace["model"].parameters()) == 337
    assert namespace["a"].grad == pytest.approx(2 * (1 - math.tanh(1.0) ** 2) + 1, rel=1e-15)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("MLP of [Layer of [ReLUNeuron(2)") and printed[1] == "number of parameters 337"
    steps = [line.split() for line in printed if re.fullmatch(r"\d+ \S+", line)]
    assert [int(k) for k, _ in steps] == list(range(20))
    assert max(abs(float(loss) - golden) for (_, loss), golden in zip(steps, GOLDENS["lecture"]["loss"])) <= TOLERANCE


def test_the_guides_backward_twice_numbers():
    for value in (micronet.Value, Value):
        a = value(3.0)
        y = (a * a) * 2
        y.backward()
        assert a.grad == 12.0
        y.backward()
        assert a.grad == 24.0  # micrograd 0.1.0 gives 36.0 (the guide says so)
    text = " ".join(GUIDE.read_text().split())
    assert "goes 12, then 36" in text and "12, then 24" in text


def test_the_readme_links_the_guide_near_the_top():
    top = (ROOT / "README.md").read_text().split("## ", 1)[0]
    assert "(docs/from-micrograd.md)" in top
