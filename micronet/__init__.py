"""micronet: a scalar autograd engine, neural-net modules and a config-driven trainer."""

from micronet.engine import Value, dot, make_node

__all__ = ["Value", "dot", "make_node"]
__version__ = "0.1.0"
