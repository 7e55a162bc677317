"""Graph export: the DOT text for shapes that break naive walkers, escaping, rendering and the CLI."""

import math
import os
import re
import shutil
import subprocess
import sys

import pytest

from micronet import MLP, Value, graph, make_node, mse_loss
from micronet.graph import GraphvizError, GraphvizNotFoundError, collect_nodes, lecture_neuron, render, to_dot

needs_graphviz = pytest.mark.skipif(shutil.which("dot") is None, reason="the Graphviz 'dot' program is not on PATH")


def parts(text):
    """(value node lines, op node lines, edges) of a to_dot() text."""
    lines = [line.strip() for line in text.splitlines()]
    values = [line for line in lines if re.match(r"v\d+ \[", line)]
    ops = [line for line in lines if re.match(r"op\d+ \[", line)]
    edges = [line.rstrip(";") for line in lines if "->" in line]
    return values, ops, edges


def shape(value):
    values, ops, edges = parts(to_dot(value))
    return len(values), len(ops), len(edges)


# ----- structure ----------------------------------------------------------------


def test_a_leaf_is_one_record_and_nothing_else():
    text = to_dot(Value(2.5, label="x"))
    assert text.startswith("digraph micronet {\n") and text.endswith("}\n")
    values, ops, edges = parts(text)
    assert values == ['v0 [shape=record, label="{ x | data 2.5000 | grad 0.0000 }", tooltip="data=2.5 grad=0.0"];']
    assert ops == [] and edges == []


def test_square_draws_x_once_with_two_edges_into_its_op():
    x = Value(3.0, label="x")
    y = x * x
    y.backward()
    text = to_dot(y)
    assert parts(text)[2] == ["v0 -> op1", "v0 -> op1", "op1 -> v1"]
    assert 'label="*"' in text and "{ x | data 3.0000 | grad 6.0000 }" in text


def test_diamond_draws_the_shared_node_once():
    a = Value(0.5, label="a")
    d = a.tanh() + a.exp()
    assert shape(d) == (4, 3, 7)  # a, tanh a, exp a, d; an op per interior node; 2 + 2 + 3 edges
    assert parts(to_dot(d))[2] == [
        "v0 -> op1", "op1 -> v1", "v0 -> op2", "op2 -> v2", "v1 -> op3", "v2 -> op3", "op3 -> v3",
    ]


def test_doubling_twice_has_linear_size():
    a = Value(1.0)
    b = a + a
    c = b + b
    assert shape(c) == (3, 2, 6)


def test_number_operands_show_as_constant_leaves():
    x = Value(1.5, label="x")
    values, ops, edges = parts(to_dot(x * 2))
    assert len(values) == 3 and "data 2.0000" in values[1]
    assert edges == ["v0 -> op2", "v1 -> op2", "op2 -> v2"]  # operand order: x, then the constant


def test_lecture_neuron_from_binary_ops_shows_every_step():
    o = lecture_neuron()
    o.backward()
    text = to_dot(o)
    assert shape(o) == (10, 5, 14)  # 5 leaves and 5 results; 4 binary ops (3 edges) and tanh (2)
    for label, data, grad in [
        ("x1", "2.0000", "-1.5000"), ("w1", "-3.0000", "1.0000"), ("x2", "0.0000", "0.5000"),
        ("w2", "1.0000", "0.0000"), ("b", "6.8814", "0.5000"), ("x1*w1", "-6.0000", "0.5000"),
        ("x2*w2", "0.0000", "0.5000"), ("x1*w1 + x2*w2", "-6.0000", "0.5000"),
        ("n", "0.8814", "0.5000"), ("o", "0.7071", "1.0000"),
    ]:
        assert f"{{ {label} | data {data} | grad {grad} }}" in text
    ops = [re.search(r'label="(.*)"', line).group(1) for line in parts(text)[1]]
    assert ops == ["*", "*", "+", "+", "tanh"]


def test_fused_neuron_is_one_dot_node_with_the_same_gradients():
    o = lecture_neuron(fused=True)
    o.backward()
    text = to_dot(o)
    assert shape(o) == (7, 2, 8)
    # dot's children are (*weights, *inputs, bias): w1 w2 x1 x2 b.
    assert parts(text)[2][:6] == ["v2 -> op5", "v3 -> op5", "v0 -> op5", "v1 -> op5", "v4 -> op5", "op5 -> v5"]
    assert "{ x1 | data 2.0000 | grad -1.5000 }" in text and "{ b | data 6.8814 | grad 0.5000 }" in text
    assert 'label="dot"' in text and 'label="tanh"' in text


def test_tooltip_keeps_every_digit():
    o = lecture_neuron()
    o.backward()
    assert f'tooltip="data={o.data!r} grad=1.0"' in to_dot(o)


@pytest.mark.parametrize(
    "x, shown",
    [(0.0, "0.0000"), (-2.5, "-2.5000"), (1e-9, "1.0000e-09"), (-3e12, "-3.0000e+12"),
     (math.inf, "inf"), (math.nan, "nan")],
)
def test_numbers_are_compact_but_never_hide_their_size(x, shown):
    assert f"data {shown} |" in to_dot(Value(x))


def test_same_graph_built_twice_gives_the_same_text():
    # Node ids count from 0 for each drawing, not from the global creation counter.
    assert to_dot(lecture_neuron()) == to_dot(lecture_neuron())

    def loss():
        model = MLP(2, [3, 1], seed=0)
        return mse_loss(model([0.5, -1.0]), [1.0])

    first, second = loss(), loss()
    first.backward()
    second.backward()
    assert to_dot(first) == to_dot(second)


def test_collect_nodes_lists_each_value_once_oldest_first():
    a = Value(1.0)
    b = a * a
    c = b + a
    assert collect_nodes(c) == [a, b, c]


# ----- escaping -------------------------------------------------------------------


def test_record_labels_escape_dot_and_record_syntax():
    v = Value(1.0, label='say "hi" \\ {x} | <p>\nnext')
    record = parts(to_dot(v))[0][0]
    assert 'label="{ say \\"hi\\" \\\\ \\{x\\} \\| \\<p\\>\\nnext | data 1.0000 | grad 0.0000 }"' in record


def test_op_names_are_escaped_for_a_quoted_string():
    x = Value(1.0)
    y = make_node(2.0, (x,), (1.0,), 'my"op\\')
    assert 'label="my\\"op\\\\"' in parts(to_dot(y))[1][0]


# ----- arguments ---------------------------------------------------------------


@pytest.mark.parametrize("rankdir", ["TB", "LR", "BT", "RL"])
def test_every_graphviz_rankdir_is_accepted(rankdir):
    assert f"  rankdir={rankdir};\n" in to_dot(Value(1.0), rankdir=rankdir)


@pytest.mark.parametrize("rankdir", ["UP", "lr", "", None])
def test_other_rankdirs_are_rejected_by_name(rankdir):
    with pytest.raises(ValueError, match=re.escape(f"rankdir must be one of TB, LR, BT, RL, got {rankdir!r}")):
        to_dot(Value(1.0), rankdir=rankdir)


def test_to_dot_wants_a_value():
    with pytest.raises(TypeError, match="expected a Value, got float: 1.0"):
        to_dot(1.0)


def test_deep_chain_draws_without_recursion():
    x, one = Value(0.0), Value(1.0)
    for _ in range(100_000):
        x = x + one
    values, ops, edges = parts(to_dot(x))
    assert (len(values), len(ops), len(edges)) == (100_002, 100_000, 300_000)


# ----- render ------------------------------------------------------------------


def test_render_without_graphviz_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(graph.shutil, "which", lambda name: None)
    with pytest.raises(GraphvizNotFoundError, match="not on PATH") as caught:
        render(lecture_neuron(), tmp_path / "neuron.svg")
    for hint in ["apt install graphviz", "brew install graphviz", "conda install graphviz", "to_dot()", ".dot"]:
        assert hint in str(caught.value)
    assert isinstance(caught.value, RuntimeError)
    assert list(tmp_path.iterdir()) == []


def test_render_dot_text_needs_no_graphviz(tmp_path, monkeypatch):
    monkeypatch.setattr(graph.shutil, "which", lambda name: None)
    o = lecture_neuron()
    written = render(o, tmp_path / "neuron.dot", rankdir="TB")
    assert written == tmp_path / "neuron.dot"
    assert written.read_text(encoding="utf-8") == to_dot(o, rankdir="TB")
    assert [p.name for p in tmp_path.iterdir()] == ["neuron.dot"]


@pytest.mark.parametrize("name", ["graph.txt", "graph.jpg", "graph"])
def test_render_rejects_other_suffixes_listing_the_choices(tmp_path, name):
    with pytest.raises(ValueError, match=r"the suffix must be one of \.svg, \.png, \.pdf, \.dot, got '[.a-z]*'"):
        render(Value(1.0), tmp_path / name)


def test_render_into_a_missing_directory_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        render(Value(1.0), tmp_path / "no" / "such" / "g.dot")


@pytest.mark.skipif(os.name == "nt", reason="the stand-in dot program is a shell script")
def test_failed_render_raises_dots_stderr_and_keeps_the_old_file(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "dot"
    fake.parent.mkdir()
    # Writes half a picture to its -o argument, then fails as dot does on a bad graph.
    fake.write_text('#!/bin/sh\necho "<svg half" > "$3"\necho "Error: syntax error in line 3" >&2\nexit 1\n')
    fake.chmod(0o755)
    monkeypatch.setattr(graph.shutil, "which", lambda name: str(fake))
    target = tmp_path / "neuron.svg"
    target.write_text("old picture")
    with pytest.raises(GraphvizError, match="exit status 1: Error: syntax error in line 3"):
        render(lecture_neuron(), target)
    assert target.read_text() == "old picture"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "neuron.svg"]


@needs_graphviz
@pytest.mark.parametrize("suffix, magic", [(".svg", b"<?xml"), (".png", b"\x89PNG"), (".pdf", b"%PDF")])
def test_render_with_graphviz_writes_the_picture(tmp_path, suffix, magic):
    o = lecture_neuron()
    o.backward()
    path = render(o, tmp_path / f"neuron{suffix}")
    content = path.read_bytes()
    assert content.startswith(magic)
    if suffix == ".svg":
        assert b"<svg" in content and b"grad &#45;1.5000" in content
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


# ----- command line ------------------------------------------------------------


def run_cli(args, cwd, graphviz=False):
    """`python -m micronet.graph` in a subprocess, with or without Graphviz on PATH."""
    env = dict(os.environ)
    if not graphviz:
        empty = cwd / "empty-path"
        empty.mkdir(exist_ok=True)
        env["PATH"] = str(empty)  # no dot program to find
    return subprocess.run([sys.executable, "-m", "micronet.graph", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_cli_without_graphviz_writes_dot_text_and_says_how_to_render(tmp_path):
    done = run_cli([], tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "neuron.dot").read_text(encoding="utf-8")
    assert "{ x1 | data 2.0000 | grad -1.5000 }" in text and "{ o | data 0.7071 | grad 1.0000 }" in text
    assert text.count("->") == 14
    assert "wrote neuron.dot" in done.stdout and "apt install graphviz" in done.stdout
    assert "dot -Tsvg neuron.dot -o neuron.svg" in done.stdout
    assert not (tmp_path / "neuron.svg").exists()


def test_cli_fused_form_and_rankdir(tmp_path):
    done = run_cli(["--fused", "--rankdir", "TB", "--out", "fused.dot"], tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "fused.dot").read_text(encoding="utf-8")
    assert "rankdir=TB;" in text and 'label="dot"' in text and text.count("->") == 8
    assert done.stdout.strip() == "wrote fused.dot"


@pytest.mark.parametrize(
    "args, message",
    [(["--rankdir", "UP"], "error: rankdir must be one of TB, LR, BT, RL, got 'UP'"),
     (["--out", "neuron.gif"], "error: cannot render to 'neuron.gif': the suffix must be one of"),
     (["--bogus"], "error: unrecognized arguments: --bogus")],
)
def test_cli_errors_are_one_line_with_status_2(tmp_path, args, message):
    done = run_cli(args, tmp_path)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if not line.startswith(("usage: ", " "))]
    assert done.stderr.startswith("usage: ") == (message == "error: unrecognized arguments: --bogus")
    assert len(lines) == 1 and lines[0].startswith(message)
    assert not (tmp_path / "neuron.dot").exists()


def test_cli_help(tmp_path):
    done = run_cli(["--help"], tmp_path)
    assert done.returncode == 0 and "--rankdir" in done.stdout and "--fused" in done.stdout


@needs_graphviz
def test_cli_with_graphviz_writes_svg(tmp_path, capsys):
    assert graph.main(["--out", str(tmp_path / "neuron.svg")]) == 0
    assert (tmp_path / "neuron.svg").read_bytes().startswith(b"<?xml")
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'neuron.svg'}"


# ----- notebook display: Value and Module ------------------------------------------


@pytest.fixture
def no_graphviz(monkeypatch):
    monkeypatch.setattr(graph.shutil, "which", lambda name: None)
    graph._svg.cache_clear()


@pytest.fixture
def fake_dot(tmp_path, monkeypatch):
    """A stand-in `dot -Tsvg` that prints an XML prolog and a tiny SVG, and logs each call."""
    fake = tmp_path / "bin" / "dot"
    fake.parent.mkdir()
    log = tmp_path / "calls"
    fake.write_text(f'#!/bin/sh\ncat > /dev/null\necho call >> "{log}"\n'
                    "echo '<?xml version=\"1.0\"?>'\necho '<svg>drawn</svg>'\n")
    fake.chmod(0o755)
    monkeypatch.setattr(graph.shutil, "which", lambda name: str(fake))
    graph._svg.cache_clear()
    return log


def test_without_graphviz_a_value_shows_as_a_table_of_its_nodes(no_graphviz):
    o = lecture_neuron()
    o.backward()
    assert o._repr_svg_() is None
    table = o._repr_html_()
    assert table.startswith('<table class="micronet-value">') and "Value graph: 10 values" in table
    rows = re.findall(r"<tr><td>(v\d+)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>"
                      r"<td>([^<]*)</td></tr>", table)
    assert rows[0] == ("v0", "x1", "leaf", "2.0000", "-1.5000", "")
    assert rows[-1] == ("v9", "o", "tanh", "0.7071", "1.0000", "v8")  # the output, made from n
    assert rows[-2][1:3] == ("n", "+") and rows[-2][5] == "v7, v4"  # x1*w1 + x2*w2, then b


@pytest.mark.skipif(os.name == "nt", reason="the stand-in dot program is a shell script")
def test_with_graphviz_a_value_shows_as_svg_drawn_once(fake_dot):
    o = lecture_neuron()
    assert o._repr_html_() is None  # the SVG is the picture; no second one
    assert o._repr_svg_() == "<svg>drawn</svg>\n"  # without the XML prolog, as Jupyter embeds it
    assert fake_dot.read_text() == "call\n"  # HTML then SVG of the same graph: dot ran once


@pytest.mark.skipif(os.name == "nt", reason="the stand-in dot program is a shell script")
def test_a_failing_dot_falls_back_to_the_table(tmp_path, monkeypatch):
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\necho broken >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(graph.shutil, "which", lambda name: str(fake))
    graph._svg.cache_clear()
    o = lecture_neuron()
    assert o._repr_svg_() is None
    assert "Value graph: 10 values" in o._repr_html_()


@pytest.mark.skipif(os.name == "nt", reason="the stand-in dot program is a shell script")
def test_a_huge_graph_is_listed_not_drawn_and_costs_a_bounded_walk(fake_dot, monkeypatch):
    x = Value(0.0)
    for _ in range(200_000):
        x = x + 1.0
    monkeypatch.setattr(graph, "to_dot", lambda *a: pytest.fail("the whole graph was walked"))
    assert x._repr_svg_() is None
    table = x._repr_html_()
    assert "more than 30 values; the 30 nearest the output" in table
    assert table.count("<tr><td>") == 30
    assert not fake_dot.exists()  # dot never ran


def test_value_table_escapes_labels(no_graphviz):
    v = Value(1.0, label="<b>&</b>")
    assert "&lt;b&gt;&amp;&lt;/b&gt;" in v._repr_html_() and "<b>" not in v._repr_html_()


def test_mlp_repr_and_html_list_layers_and_parameter_counts():
    model = MLP(2, [16, 2], seed=0)
    assert repr(model) == "MLP(2 -> 16 -> 2, activation='relu', parameters=82)"
    table = model._repr_html_()
    assert "<caption>MLP(2 -&gt; 16 -&gt; 2, activation=&#x27;relu&#x27;, parameters=82)</caption>" in table
    cells = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td[^>]*>([^<]*)</td></tr>", table)
    assert cells == [("layers.0", "Layer(2 -&gt; 16, activation=&#x27;relu&#x27;)", "48"),
                     ("layers.1", "Layer(16 -&gt; 2, activation=&#x27;linear&#x27;)", "34")]


def test_a_custom_module_repr_lists_its_parts_as_pytorch_does():
    from micronet import Layer, Module

    class Block(Module):
        def __init__(self):
            self.inner = Layer(3, 3, seed=0)
            self.gate = Value(0.5)

    class Net(Module):
        def __init__(self):
            self.blocks = [Block(), Block()]
            self.head = Layer(3, 2, activation="linear", seed=1)
            self.bias = [Value(0.0), Value(0.0)]
            self.name = "not a parameter"

    assert repr(Net()) == "\n".join([
        "Net(",
        "  (blocks.0): Block(",
        "    (inner): Layer(3 -> 3, activation='relu')",
        "    (gate): scalar parameter (data=0.5)",
        "    parameters=13",
        "  )",
        "  (blocks.1): Block(",
        "    (inner): Layer(3 -> 3, activation='relu')",
        "    (gate): scalar parameter (data=0.5)",
        "    parameters=13",
        "  )",
        "  (head): Layer(3 -> 2, activation='linear')",
        "  (bias): 2 scalar parameters",
        "  parameters=36",
        ")",
    ])
    cells = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td[^>]*>([^<]*)</td></tr>", Net()._repr_html_())
    assert cells[:2] == [("blocks.0", "Block", "13"), ("blocks.1", "Block", "13")]
    assert "<caption>Net: 36 parameters</caption>" in Net()._repr_html_()
    assert repr(Module()) == "Module(parameters=0)"
