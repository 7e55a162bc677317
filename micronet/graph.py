"""Draw the computation graph below a Value, as in the micrograd lecture.

    python -m micronet.graph [--out PATH] [--rankdir LR] [--fused]

`to_dot` returns Graphviz DOT text and needs nothing installed: save it as a
.dot file and paste it into any Graphviz viewer. `render` turns it into an
SVG, PNG or PDF with the Graphviz `dot` program when that is on PATH. Each
value is a record (label, data, grad); each op is a small node of its own
between a value and its children, so edges run child -> op -> value.
"""

import argparse
import functools
import html
import os
import secrets
import shutil
import subprocess
import sys
from operator import attrgetter
from pathlib import Path

from micronet.engine import Value, dots

__all__ = ["RANKDIRS", "FORMATS", "GraphvizError", "GraphvizNotFoundError", "collect_nodes", "to_dot", "render",
           "repr_svg", "repr_html", "lecture_neuron", "main"]

# Graphviz's layout directions: top-bottom, left-right, bottom-top, right-left.
RANKDIRS = ("TB", "LR", "BT", "RL")

# Output formats by file suffix: the value is dot's -T argument, None for the
# DOT text itself (written without Graphviz).
FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": None}

INSTALL_HINT = (
    "install Graphviz (apt install graphviz, brew install graphviz or conda install graphviz), "
    "or save the to_dot() text as a .dot file and paste it into any Graphviz viewer"
)


class GraphvizError(RuntimeError):
    """The Graphviz `dot` program failed; the message carries its stderr."""


class GraphvizNotFoundError(GraphvizError):
    """Rendering needs the Graphviz `dot` program, and it is not on PATH."""


def collect_nodes(root: Value) -> list[Value]:
    """Every Value below `root` (and root) once, oldest first.

    Creation order is a topological order and the same for two identical
    builds, so the drawing is deterministic. An explicit stack, not
    recursion: a chain of a million nodes is fine.
    """
    if not isinstance(root, Value):
        raise TypeError(f"expected a Value, got {type(root).__name__}: {root!r}")
    seen = {root}
    stack = [root]
    while stack:
        for child in stack.pop()._prev:
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return sorted(seen, key=attrgetter("_seq"))


def to_dot(value: Value, rankdir: str = "LR") -> str:
    """Graphviz DOT text for the graph below `value`: a record per value, a node per op.

    Node ids count from 0 in creation order (v0, v1, ...; op3 is the op that
    made v3), not from `_seq`, so the same graph built twice gives the same
    text. A child used twice (x*x) gets two edges into its op.
    """
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    nodes = collect_nodes(value)
    ids = {node: i for i, node in enumerate(nodes)}
    lines = [
        "digraph micronet {",
        f"  rankdir={rankdir};",
        '  node [fontname="Helvetica", fontsize=11];',
    ]
    for node, i in ids.items():
        fields = [_record_escape(node.label)] if node.label else []
        fields += [f"data {_number(node.data)}", f"grad {_number(node.grad)}"]
        # The tooltip (hover text in SVG) keeps every digit the label rounds off.
        tooltip = _quote_escape(f"data={node.data!r} grad={node.grad!r}")
        lines.append(f'  v{i} [shape=record, label="{{ {" | ".join(fields)} }}", tooltip="{tooltip}"];')
        if node._prev:
            lines.append(f'  op{i} [shape=ellipse, fontsize=10, height=0.3, label="{_quote_escape(node._op)}"];')
            lines.extend(f"  v{ids[child]} -> op{i};" for child in node._prev)
            lines.append(f"  op{i} -> v{i};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(value: Value, path: str | os.PathLike[str], rankdir: str = "LR") -> Path:
    """Write the graph below `value` to `path`, in the format its suffix names.

    .svg, .png and .pdf run Graphviz's `dot`; .dot writes the DOT text and
    needs nothing installed. The file is written to a temporary name beside
    it and renamed into place, so a failed render leaves nothing half-written.
    Returns the path written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(
            f"cannot render to {str(path)!r}: the suffix must be one of {', '.join(FORMATS)}, got {path.suffix!r}"
        )
    text = to_dot(value, rankdir)
    fmt = FORMATS[suffix]
    program = shutil.which("dot") if fmt else None
    if fmt and program is None:
        raise GraphvizNotFoundError(
            f"cannot write {str(path)!r}: the Graphviz 'dot' program is not on PATH; {INSTALL_HINT}"
        )
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {str(path)!r}: directory {str(path.parent)!r} does not exist")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        if fmt is None:
            with open(tmp, "x", encoding="utf-8") as f:
                f.write(text)
        else:
            command = [str(program), f"-T{fmt}", "-o", str(tmp)]  # program is set when fmt is
            done = subprocess.run(command, input=text.encode("utf-8"), capture_output=True)
            if done.returncode != 0:
                stderr = done.stderr.decode("utf-8", "replace").strip() or "(no message)"
                raise GraphvizError(f"dot -T{fmt} failed with exit status {done.returncode}: {stderr}")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


# ----- notebook display ----------------------------------------------------------

SVG_LIMIT = 150  # values drawn as a graph in a notebook; dot's layout of more is slow and unreadable
TABLE_ROWS = 30  # values listed when there is no drawing: the ones nearest the output


def _nearest(root: Value, limit: int) -> tuple[list[Value], bool]:
    """Up to `limit` values below `root`, nearest first (breadth first); and whether that is all of them.

    Bounded, so displaying the last value of a million-node graph costs
    nothing like walking the whole graph.
    """
    seen, order, i = {root}, [root], 0
    while i < len(order) and len(order) <= limit:
        for child in order[i]._prev:
            if child not in seen:
                seen.add(child)
                order.append(child)
        i += 1
    complete = i >= len(order)  # every reached value's children were looked at
    return order[:limit], complete and len(order) <= limit


def repr_svg(value: Value) -> str | None:
    """The graph below `value` as SVG text, for Jupyter; None without Graphviz or for a big graph.

    Never raises: a display hook that fails would hide the value itself.
    """
    try:
        _, complete = _nearest(value, SVG_LIMIT)
        if not complete or shutil.which("dot") is None:
            return None
        svg: str | None = _svg(to_dot(value))  # lru_cache hides the type
        return svg
    except Exception:  # noqa: BLE001 - display must not fail
        return None


@functools.lru_cache(maxsize=8)  # Jupyter asks for HTML, then SVG, of the same graph: run dot once
def _svg(dot_text: str) -> str | None:
    program = shutil.which("dot")
    if program is None:
        return None
    try:
        done = subprocess.run([program, "-Tsvg"], input=dot_text.encode("utf-8"), capture_output=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    text = done.stdout.decode("utf-8", "replace")
    start = text.find("<svg")
    return text[start:] if start >= 0 else None


def repr_html(value: Value) -> str | None:
    """A compact table of the values nearest `value`, for Jupyter when no SVG graph can be drawn.

    Returns None when `repr_svg` draws the graph, so a notebook shows one picture.
    """
    try:
        if repr_svg(value) is not None:
            return None
        nodes, complete = _nearest(value, TABLE_ROWS)
        nodes.sort(key=attrgetter("_seq"))
        ids = {node: f"v{i}" for i, node in enumerate(nodes)}
        rows = []
        for node in nodes:
            inputs = ", ".join(ids.get(child, "…") for child in node._prev)
            cells = [ids[node], node.label, node._op or "leaf", _number(node.data), _number(node.grad), inputs]
            rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
        count = f"{len(nodes)} values"
        if not complete:
            count = f"more than {TABLE_ROWS} values; the {TABLE_ROWS} nearest the output"
        header = "".join(f"<th>{h}</th>" for h in ("value", "label", "op", "data", "grad", "inputs"))
        return (
            f'<table class="micronet-value"><caption>Value graph: {count} (oldest first; install Graphviz to '
            f"draw it)</caption><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )
    except Exception:  # noqa: BLE001 - display must not fail
        return f"<pre>{html.escape(repr(value))}</pre>"


def lecture_neuron(fused: bool = False) -> Value:
    """The micrograd lecture's tanh neuron, o = tanh(x1*w1 + x2*w2 + b), labelled; backward not yet run.

    Built from binary ops, every step is a node; `fused=True` builds it the
    way `micronet.nn.Neuron` does, with the weighted sum as one `dot` node.
    The bias makes n = 0.8814, so o = 0.7071 and do/dn = 0.5.
    """
    x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
    w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
    b = Value(6.8813735870195432, label="b")
    if fused:
        n = dots([[w1, w2]], [x1, x2], [b])[0]
    else:
        x1w1 = x1 * w1
        x1w1.label = "x1*w1"
        x2w2 = x2 * w2
        x2w2.label = "x2*w2"
        x1w1x2w2 = x1w1 + x2w2
        x1w1x2w2.label = "x1*w1 + x2*w2"
        n = x1w1x2w2 + b
    n.label = "n"
    o = n.tanh()
    o.label = "o"
    return o


def _number(x: float) -> str:
    """Four decimals where that reads well, scientific notation where it would hide digits."""
    if x == 0.0 or 1e-4 <= abs(x) < 1e6:
        return f"{x:.4f}"
    return f"{x:.4e}"  # also nan and inf


def _quote_escape(text: object) -> str:
    """Text for a double-quoted DOT string: backslash and quote escaped, newlines as \\n."""
    text = str(text).replace("\\", "\\\\").replace('"', '\\"')
    return text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")


def _record_escape(text: object) -> str:
    """Text for one field of a record label, where { } | < > are structure."""
    text = _quote_escape(text)
    for ch in "{}|<>":
        text = text.replace(ch, "\\" + ch)
    return text


def main(argv: list[str] | None = None) -> int:
    """Entry point of `micronet-graph` and `python -m micronet.graph`: draw the lecture neuron after backward."""
    from micronet.commands import CommandParser, program_name

    parser = CommandParser(
        prog=program_name("graph", sys.argv[0] if sys.argv else ""),
        description="Draw the micrograd lecture's tanh neuron after backward: each value with its data and grad.",
        epilog=f"Without Graphviz the DOT text is written instead; to see it, {INSTALL_HINT}.\n\nexamples:\n"
        "  %(prog)s                       # neuron.svg\n"
        "  %(prog)s --fused --out n.png   # the weighted sum as one node, as micronet's Neuron builds it",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_version()
    parser.add_argument("--out", metavar="PATH",
                        help="output file, .svg/.png/.pdf/.dot (default: neuron.svg, or neuron.dot without Graphviz)")
    parser.add_argument("--rankdir", default="LR", help=f"layout direction: {', '.join(RANKDIRS)} (default: LR)")
    parser.add_argument("--fused", action="store_true",
                        help="the weighted sum as one dot node, as micronet.nn.Neuron builds it")
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
        o = lecture_neuron(fused=args.fused)
        o.backward()
        have_graphviz = shutil.which("dot") is not None
        out = Path(args.out or "neuron.svg")
        if FORMATS.get(out.suffix.lower()) and not have_graphviz:
            fallback = out.with_suffix(".dot")
            render(o, fallback, args.rankdir)
            print(f"wrote {fallback} (DOT text) instead of {out}: the Graphviz 'dot' program is not on PATH. "
                  "Install it (apt install graphviz, brew install graphviz or conda install graphviz) and run "
                  f"`dot -T{FORMATS[out.suffix.lower()]} {fallback} -o {out}`, "
                  f"or paste {fallback} into any Graphviz viewer.")
        else:
            render(o, out, args.rankdir)
            print(f"wrote {out}")
    except (ValueError, TypeError, OSError, GraphvizError) as e:
        print(f"{getattr(e, 'usage', '')}error: {e}", file=sys.stderr)  # a usage mistake: the usage line first
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
