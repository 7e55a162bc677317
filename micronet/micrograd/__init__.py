"""micrograd's API on micronet's engine: bring micrograd code over by changing its imports.

`from micrograd.engine import Value` becomes `from micronet.micrograd.engine import Value`
(or `from micronet.micrograd import Value`), and likewise for `micrograd.nn`. What then runs
is micrograd 0.1.0's public API, with its numbers: `Value(data, _children, _op)`, custom ops
through `out._backward = fn`, `Neuron(nin, nonlin=True)`, and an `MLP` that returns a single
Value for one output and draws its weights from Python's `random` module as micrograd does,
so `random.seed(1337)` reproduces micrograd's demo. These Values are micronet Values and
these modules micronet Modules, so the two APIs mix; docs/from-micrograd.md says what
differs and how to move to micronet's own API.
"""

from micronet.micrograd.engine import Value
from micronet.micrograd.nn import MLP, Layer, Module, Neuron

__all__ = ["Value", "Module", "Neuron", "Layer", "MLP"]
