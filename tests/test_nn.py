"""Modules: parameter contract, seeded init, state dicts, and PyTorch's gradients."""

import json
import math
import pickle
import random
import statistics
from pathlib import Path

import numpy as np
import pytest

from micronet.engine import Value
from micronet.losses import cross_entropy
from micronet.nn import ACTIVATIONS, MLP, Layer, Module, Neuron

GOLDENS = json.loads((Path(__file__).parent / "data" / "nn_goldens.json").read_text())["mlp"]


def test_mlp_2_16_16_2_has_354_parameters():
    assert len(MLP(2, [16, 16, 2], seed=0).parameters()) == 354


def test_parameter_order_is_layer_neuron_weights_then_bias():
    model = MLP(2, [3, 2], seed=0)
    expected = []
    for layer in model.layers:
        for neuron in layer.neurons:
            expected += [*neuron.w, neuron.b]
    assert model.parameters() == expected
    names = [name for name, _ in model.named_parameters()]
    assert names[:3] == ["layers.0.neurons.0.w.0", "layers.0.neurons.0.w.1", "layers.0.neurons.0.b"]
    assert names[-1] == "layers.1.neurons.1.b" and len(names) == len(set(names)) == 17


def test_calls_always_return_a_list():
    assert len(Neuron(3, seed=0)([1.0, 2.0, 3.0])) == 1
    out = MLP(2, [16, 1, 1], seed=0)([0.5, -0.5])  # micrograd breaks on a width-1 hidden layer
    assert isinstance(out, list) and len(out) == 1 and isinstance(out[0], Value)


OUTPUT_HINT = r": micronet models return a list of Values, one per output; take out\[0\] for a single output"
MICROGRAD_HABITS = [  # (what micrograd code does with model(x), what the error says it did)
    (lambda out, y: 1 + out, r"^int \+ a model's output \(a list of 1 Value\)"),
    (lambda out, y: out - 1.0, r"^a model's output \(a list of 1 Value\) - float"),
    (lambda out, y: (out - y) ** 2, r"- Value"),
    (lambda out, y: -y * out, r"^Value \* a model's output"),
    (lambda out, y: np.int64(-1) * out, r"^int64 \* a model's output"),  # NumPy would empty the list
    (lambda out, y: 2 * out, r"^int \* a model's output"),  # a list would repeat
    (lambda out, y: out * np.float64(0.5), r"\* float64"),
    (lambda out, y: np.array([1.0]) / out, r"^ndarray / a model's output"),
    (lambda out, y: sum([out, out]), r"^int \+ a model's output"),
    (lambda out, y: out ** 2, r"\*\* int"),
    (lambda out, y: 2 ** out, r"^int \*\* a model's output"),
    (lambda out, y: out / 2, r"/ int"),
    (lambda out, y: -out, r"^-a model's output"),
    (lambda out, y: abs(out), r"^abs\(a model's output"),
    (lambda out, y: float(out), r"^float\(a model's output"),
]


@pytest.mark.parametrize("habit, given", MICROGRAD_HABITS)
def test_arithmetic_on_a_models_output_list_says_to_take_an_element(habit, given):
    out = MLP(2, [3, 1], seed=0)([0.5, -0.5])
    with pytest.raises(TypeError, match=given + ".*" + OUTPUT_HINT):
        habit(out, Value(1.0))
    assert len(out) == 1 and isinstance(out[0], Value)  # nothing was changed on the way


def test_value_attributes_on_a_models_output_list_say_to_take_an_element():
    out = Layer(2, 2, seed=0)([0.5, -0.5])
    for name in ("data", "grad", "backward", "relu"):
        with pytest.raises(AttributeError, match=rf"^a model's output \(a list of 2 Values\) has no .{name}{OUTPUT_HINT}"):
            getattr(out, name)
    assert not hasattr(out, "label_") and not hasattr(out, "_repr_svg_")  # other names: a plain AttributeError
    with pytest.raises(TypeError, match=r"a list of 2 Values\) \+= int"):
        out += 1


def test_a_models_output_is_still_a_list_for_list_operations():
    out = Neuron(2, seed=0)([0.5, -0.5])
    v = Value(2.0)
    assert isinstance(out, list) and out + [v] == [out[0], v] and out == [out[0]]
    out += [v]
    assert out == [out[0], v] and sum(out).data == out[0].data + 2.0
    assert [x.data for x in pickle.loads(pickle.dumps(out))] == [x.data for x in out]
    assert np.array([x.data for x in out]).shape == (2,) and np.asarray(out, dtype=object).shape == (2,)


@pytest.mark.parametrize("make, name", [
    (lambda: Neuron(3, nonlin=False), "Neuron"),
    (lambda: Layer(3, 2, nonlin=True), "Layer"),
])
def test_micrograds_nonlin_keyword_gets_micronets_spelling(make, name):
    with pytest.raises(TypeError, match=rf"^{name} takes activation=, not micrograd's nonlin= \(got nonlin=\w+\): "
                                        rf"nonlin=True is activation='relu', nonlin=False is activation='linear'; "
                                        rf"micronet.micrograd.{name} takes nonlin= as micrograd does$"):
        make()


@pytest.mark.parametrize("module", [Neuron(3, seed=0), Layer(3, 2, seed=0), MLP(3, [4, 2], seed=0)])
def test_wrong_input_length_names_expected_and_actual(module):
    with pytest.raises(ValueError, match="expects 3 inputs, got 2"):
        module([1.0, 2.0])


def test_inputs_may_be_floats_or_values_with_identical_results():
    model = MLP(3, [4, 2], activation="tanh", seed=1)
    xs = [0.3, -1.0, 2.0]
    assert [v.data for v in model(xs)] == [v.data for v in model([Value(x) for x in xs])]


def test_same_seed_same_parameters_different_seed_different():
    data = lambda seed: [p.data for p in MLP(4, [8, 3], seed=seed).parameters()]  # noqa: E731
    assert data(5) == data(5) and data(5) != data(6)


def test_initialisation_never_touches_global_random_state():
    random.seed(123)
    before = random.getstate()
    MLP(4, [8, 3], seed=None)
    MLP(4, [8, 3], seed=7)
    assert random.getstate() == before


def test_weights_scale_with_fan_in_and_biases_start_at_zero():
    relu = Layer(400, 50, activation="relu", seed=0)
    tanh = Layer(400, 50, activation="tanh", seed=0)
    w_relu = [w.data for n in relu.neurons for w in n.w]
    w_tanh = [w.data for n in tanh.neurons for w in n.w]
    assert max(map(abs, w_relu)) <= math.sqrt(6 / 400)  # He: variance 2 / fan_in
    assert statistics.pvariance(w_relu) == pytest.approx(2 / 400, rel=0.05)
    assert max(map(abs, w_tanh)) <= math.sqrt(6 / 450)  # Glorot: variance 2 / (fan_in + fan_out)
    assert statistics.pvariance(w_tanh) == pytest.approx(2 / 450, rel=0.05)
    assert all(n.b.data == 0.0 for n in relu.neurons)


def test_hidden_layers_use_the_activation_and_the_last_is_linear():
    model = MLP(2, [3, 3, 2], activation="sigmoid", seed=0)
    assert [layer.activation for layer in model.layers] == ["sigmoid", "sigmoid", "linear"]
    assert list(ACTIVATIONS)[:4] == ["relu", "tanh", "sigmoid", "linear"]  # the registry's, in its order
    with pytest.raises(ValueError, match=f"activation must be one of {', '.join(ACTIVATIONS)}, got 'gelu'"):
        MLP(2, [3], activation="gelu")


def test_pre_activation_is_one_node_with_the_same_gradient_as_a_chain():
    neuron = Neuron(3, activation="tanh", seed=2)
    xs = [Value(0.5), Value(-1.5), Value(2.0)]
    (out,) = neuron(xs)
    assert out._prev[0]._op == "dot" and len(out._prev) == 1
    out.backward()
    fused = [v.grad for v in [*neuron.parameters(), *xs]]
    neuron.zero_grad()
    for x in xs:
        x.grad = 0.0
    chain = neuron.b
    for w, x in zip(neuron.w, xs):
        chain = chain + w * x
    chain.tanh().backward()
    assert [v.grad for v in [*neuron.parameters(), *xs]] == pytest.approx(fused, rel=1e-15)


def test_zero_grad_clears_every_parameter():
    model = MLP(2, [3, 2], seed=0)
    sum(model([1.0, 2.0])).backward()
    assert any(p.grad != 0.0 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0.0 for p in model.parameters())


def test_state_dict_is_plain_json_and_round_trips():
    model = MLP(3, [4, 2], seed=0)
    state = json.loads(json.dumps(model.state_dict()))
    assert state["layers.0.neurons.0.w"] == [w.data for w in model.layers[0].neurons[0].w]
    other = MLP(3, [4, 2], seed=99)
    other.load_state_dict(state)
    assert [p.data for p in other.parameters()] == [p.data for p in model.parameters()]


@pytest.mark.parametrize(
    "edit, error, message",
    [
        (lambda s: s.pop("layers.1.neurons.0.b"), KeyError, "missing 'layers.1.neurons.0.b'"),
        (lambda s: s.update(extra=1.0), KeyError, "unexpected entry 'extra'"),
        (lambda s: s.update({"layers.0.neurons.1.w": [1.0, 2.0]}), ValueError, r"'layers.0.neurons.1.w'\] must be a list of 3 numbers, got a list of 2"),
        (lambda s: s.update({"layers.0.neurons.1.b": [1.0]}), ValueError, r"'layers.0.neurons.1.b'\] must be a number, got list"),
        (lambda s: s.update({"layers.0.neurons.1.b": "1"}), ValueError, "must be a number, got str"),
        (lambda s: s.update({"layers.0.neurons.1.b": float("nan")}), ValueError, "must be finite, got nan"),
        (lambda s: s.update({"layers.1.neurons.1.w": [0.0, 1.0, 2.0, float("inf")]}), ValueError, r"'layers.1.neurons.1.w.3'\] must be finite"),
    ],
)
def test_load_state_dict_mismatch_names_the_entry_and_changes_nothing(edit, error, message):
    model = MLP(3, [4, 2], seed=0)
    before = [p.data for p in model.parameters()]
    state = MLP(3, [4, 2], seed=1).state_dict()
    edit(state)
    with pytest.raises(error, match=message):
        model.load_state_dict(state)
    assert [p.data for p in model.parameters()] == before


def test_custom_module_finds_values_modules_and_lists_in_attribute_order():
    class TwoHeads(Module):
        def __init__(self):
            self.trunk = Layer(2, 3, seed=0)
            self.heads = [Neuron(3, "linear", seed=1), Neuron(3, "linear", seed=2)]
            self.scale = Value(1.0)
            self.shared = self.scale  # the same Value twice is one parameter

    model = TwoHeads()
    names = [n for n, _ in model.named_parameters()]
    assert names[0] == "trunk.neurons.0.w.0" and names[-1] == "scale"
    assert "heads.1.b" in names and len(model.parameters()) == 9 + 4 + 4 + 1


# ----- Modules and Values in containers ------------------------------------------------------


class Blocks(Module):
    """Layers in a dict whose insertion order is not the keys' sorted order, then a head."""

    def __init__(self):
        self.blocks = {"z": Layer(2, 3, seed=0), "a": Layer(3, 3, seed=1)}
        self.head = Layer(3, 2, activation="linear", seed=2)

    def __call__(self, x):
        return self.head(self.blocks["a"](self.blocks["z"](x)))


def test_modules_in_a_dict_are_found_in_insertion_order():
    model = Blocks()
    assert len(model.parameters()) == 9 + 12 + 8  # every parameter: none skipped
    names = [name for name, _ in model.named_parameters()]
    assert names[:4] == ["blocks.z.neurons.0.w.0", "blocks.z.neurons.0.w.1", "blocks.z.neurons.0.b",
                         "blocks.z.neurons.1.w.0"]
    assert names.index("blocks.z.neurons.2.b") < names.index("blocks.a.neurons.0.w.0") < names.index("head.neurons.0.b")
    expected = [*model.blocks["z"].parameters(), *model.blocks["a"].parameters(), *model.head.parameters()]
    assert model.parameters() == expected
    assert [v for _, v in model.named_parameters()] == expected


class Mixed(Module):
    """A tuple of a module and a Value, and a list of dicts of modules and Values."""

    def __init__(self):
        self.pair = (Neuron(2, "linear", seed=0), Value(0.5))
        self.stages = [{"enc": Layer(2, 2, seed=1), "gate": Value(2.0)}, {"enc": Layer(2, 2, seed=2)}]

    def __call__(self, x):
        for stage in self.stages:
            x = stage["enc"](x)
        (out,) = self.pair[0](x)
        return [out * self.pair[1] * self.stages[0]["gate"]]


def test_tuples_and_nested_lists_of_dicts_are_found_in_order():
    model = Mixed()
    names = [name for name, _ in model.named_parameters()]
    assert names == [
        "pair.0.w.0", "pair.0.w.1", "pair.0.b", "pair.1",
        *(f"stages.0.enc.neurons.{i}.{p}" for i in range(2) for p in ("w.0", "w.1", "b")), "stages.0.gate",
        *(f"stages.1.enc.neurons.{i}.{p}" for i in range(2) for p in ("w.0", "w.1", "b")),
    ]
    assert list(model.state_dict()) == [
        "pair.0.w", "pair.0.b", "pair.1",
        *(f"stages.0.enc.neurons.{i}.{p}" for i in range(2) for p in ("w", "b")), "stages.0.gate",
        *(f"stages.1.enc.neurons.{i}.{p}" for i in range(2) for p in ("w", "b")),
    ]


@pytest.mark.parametrize("make", [Blocks, Mixed])
def test_state_dicts_and_checkpoints_of_container_models_round_trip(make, tmp_path):
    from micronet.checkpoint import load_state, save

    trained, fresh = make(), make()
    for i, p in enumerate(trained.parameters()):
        p.data = 0.25 * i - 3.0  # every parameter distinct from a fresh model's
    state = json.loads(json.dumps(trained.state_dict()))
    other = make()
    other.load_state_dict(state)
    assert [p.data for p in other.parameters()] == [p.data for p in trained.parameters()]
    save(trained, tmp_path / "model.json")
    load_state(fresh, tmp_path / "model.json")
    assert [p.data for p in fresh.parameters()] == [p.data for p in trained.parameters()]
    assert fresh([0.5, -1.0])[0].data == trained([0.5, -1.0])[0].data


class Tied(Module):
    """One layer reachable three ways (an attribute, a dict entry, a list item), and some of its Values again."""

    def __init__(self):
        self.layer = Layer(2, 2, seed=0)
        self.again = {"same": self.layer}
        self.uses = [self.layer, Neuron(2, "linear", seed=1)]
        self.owner = self  # a cycle back to the model is not followed
        self.bias_again, self.weights_again = self.layer.neurons[1].b, tuple(self.layer.neurons[0].w)


def test_a_module_reachable_twice_gives_its_parameters_once():
    model = Tied()
    assert model.parameters() == [*model.layer.parameters(), *model.uses[1].parameters()]
    names = [name for name, _ in model.named_parameters()]
    assert len(names) == 6 + 3 and names[0] == "layer.neurons.0.w.0" and names[-1] == "uses.1.b"
    assert list(model.state_dict()) == ["layer.neurons.0.w", "layer.neurons.0.b", "layer.neurons.1.w",
                                        "layer.neurons.1.b", "uses.1.w", "uses.1.b"]
    other = Tied()
    other.load_state_dict(model.state_dict())
    assert [p.data for p in other.parameters()] == [p.data for p in model.parameters()]


def test_a_set_of_modules_is_refused_naming_the_attribute():
    class Heads(Module):
        def __init__(self):
            self.trunk = Layer(2, 2, seed=0)
            self.heads = {Neuron(2, seed=1), Neuron(2, seed=2)}
            self.tags = {"plain", "data"}  # a set without parameters is just data

    model = Heads()
    for method in (model.parameters, model.named_parameters, model.state_dict, model.zero_grad):
        with pytest.raises(TypeError, match=r"^Heads.heads holds Modules or Values in a set, which has no fixed order; "
                                            r"hold them in a list, tuple or dict$"):
            method()
    model.heads = [{"x": frozenset([Value(1.0)])}]
    with pytest.raises(TypeError, match=r"^Heads.heads.0.x holds Modules or Values in a frozenset"):
        model.parameters()


@pytest.mark.parametrize(
    "key, error, message",
    [
        (1, TypeError, r"^Keyed.blocks holds Modules or Values under the key 1 \(int\); the keys name the parameters, "
                       r"so they must be strings$"),
        ("a.b", ValueError, r"^Keyed.blocks holds Modules or Values under the key 'a.b'; the keys name the parameters, "
                            r"so they must be non-empty and without '.'$"),
        ("", ValueError, r"under the key ''"),
    ],
)
def test_a_dict_key_that_cannot_name_parameters_is_refused(key, error, message):
    class Keyed(Module):
        def __init__(self):
            self.blocks = {"fine": Layer(2, 2, seed=0), key: [Value(1.0)]}
            self.plain = {1: "data", (2, 3): None}  # keys of plain data are not names

    with pytest.raises(error, match=message):
        Keyed().parameters()


def test_reprs_are_readable():
    assert repr(MLP(2, [16, 16, 2], seed=0)) == "MLP(2 -> 16 -> 16 -> 2, activation='relu', parameters=354)"
    assert repr(Layer(3, 2, activation="tanh", seed=0)) == "Layer(3 -> 2, activation='tanh')"
    assert repr(Neuron(3, seed=0)) == "Neuron(3, activation='relu')"


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="nin must be an int >= 1, got 0"):
        Neuron(0)
    with pytest.raises(ValueError, match="nout must be an int >= 1, got 0"):
        Layer(2, 0)
    with pytest.raises(ValueError, match=r"nouts must list at least one layer size"):
        MLP(2, [])
    with pytest.raises(TypeError, match="seed must be an int, a random.Random or None, got str"):
        MLP(2, [3], seed="0")


@pytest.mark.parametrize("case", GOLDENS, ids=lambda c: f"params{len(c['params'])}-{c['params'][0]:.3f}")
def test_tanh_mlp_cross_entropy_matches_pytorch(case):
    model = MLP(3, [5, 4, 3], activation="tanh", seed=0)
    for p, x in zip(model.parameters(), case["params"], strict=True):
        p.data = x
    logits = [model(x) for x in case["X"]]
    loss = sum(cross_entropy(out, t) for out, t in zip(logits, case["y"])) * (1.0 / len(case["y"]))
    loss.backward()
    flat = [v.data for row in logits for v in row]
    assert flat == pytest.approx([x for row in case["logits"] for x in row], rel=1e-13, abs=1e-15)
    assert loss.data == pytest.approx(case["loss"], rel=1e-13)
    assert [p.grad for p in model.parameters()] == pytest.approx(case["grads"], rel=1e-11, abs=1e-15)
