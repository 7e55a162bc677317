"""micronet: a scalar autograd engine, neural-net modules and a config-driven trainer."""

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from micronet.engine import DISPLAY, Value, dot, dots, log_softmax_at, make_node
from micronet.losses import cross_entropy, hinge_loss, log_softmax, mse_loss, multiclass_hinge_loss, softmax
from micronet.nn import MLP, Layer, Module, Neuron
from micronet.optim import SGD, Adam

__all__ = [
    "Value", "dot", "dots", "log_softmax_at", "make_node",
    "cross_entropy", "hinge_loss", "log_softmax", "mse_loss", "multiclass_hinge_loss", "softmax",
    "MLP", "Layer", "Module", "Neuron",
    "SGD", "Adam",
]
__version__ = "0.1.0"

# The training loop, checkpoints and predictions need NumPy; load them on first
# use so `import micronet` (and the engine alone) stays light. The type checker
# and IDEs see them through the imports below, which never run (the `as` form
# re-exports a name).
if TYPE_CHECKING:
    from micronet.checkpoint import load_state as load_state
    from micronet.checkpoint import save as save
    from micronet.loop import EarlyStopping as EarlyStopping
    from micronet.loop import History as History
    from micronet.loop import fit as fit
    from micronet.predict import Predictor as Predictor
    from micronet.predict import load as load
    from micronet.predict import predict_proba as predict_proba

    # Both the submodule and, called, the function (see micronet/predict.py): declared as neither,
    # so user code type-checks with either use, as before.
    predict: Any

_LAZY = {
    "fit": "micronet.loop",
    "History": "micronet.loop",
    "EarlyStopping": "micronet.loop",
    "save": "micronet.checkpoint",
    "load_state": "micronet.checkpoint",
    "load": "micronet.predict",
    "predict_proba": "micronet.predict",
    "Predictor": "micronet.predict",
}
__all__ += [*_LAZY, "predict"]  # `__getattr__` below provides them


def __getattr__(name: str) -> Any:
    if name == "predict":  # the submodule itself, callable as predict(model, X) (see micronet/predict.py)
        return importlib.import_module("micronet.predict")
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'micronet' has no attribute {name!r}")


def _notebook_drawing(kind: str) -> Callable[[Value], str | None]:
    """A Value's notebook display of `kind`, drawn by micronet.graph (loaded when a notebook first asks)."""
    def draw(value: Value) -> str | None:
        from micronet import graph

        return graph.repr_svg(value) if kind == "svg" else graph.repr_html(value)

    return draw


DISPLAY.update(svg=_notebook_drawing("svg"), html=_notebook_drawing("html"))
