"""Recognising the activations that conv2d_fused can apply in its output stage.

An activation is met as a module (nn.ReLU, nn.GELU, nn.Hardtanh(0, 6), ...), a function
(F.relu, torch.relu_, F.gelu(approximate='tanh'), ...) or a method (x.relu()); each
recognised form maps to one of cnnops.functional.ACTIVATIONS. APPLY holds the same
activations as torch functions, for the rare call that cannot use the fused kernel.
"""
import operator

import torch
import torch.nn.functional as F
from torch import nn
from torch.fx import Node

_MODULES = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.SiLU: "silu", nn.Hardswish: "hardswish",
            nn.Hardsigmoid: "hardsigmoid"}

# function -> (its parameter names, as fx records them positionally or by keyword)
_FUNCTIONS = {
    F.relu: ("input", "inplace"),
    torch.relu: ("input",),
    torch.relu_: ("input",),  # also F.relu_
    F.relu6: ("input", "inplace"),
    F.silu: ("input", "inplace"),
    F.hardswish: ("input", "inplace"),
    F.hardsigmoid: ("input", "inplace"),
    F.gelu: ("input", "approximate"),
    F.hardtanh: ("input", "min_val", "max_val", "inplace"),
}
_DEFAULTS = {"inplace": False, "approximate": "none", "min_val": -1.0, "max_val": 1.0}

APPLY = {"relu": torch.relu, "relu6": F.relu6, "silu": F.silu, "hardswish": F.hardswish,
         "hardsigmoid": F.hardsigmoid, "gelu": F.gelu,
         "gelu_tanh": lambda t: F.gelu(t, approximate="tanh")}


def _kind(name, approximate="none", min_val=0.0, max_val=6.0):
    """The ACTIVATIONS name of a recognised activation, or None (e.g. Hardtanh(-1, 1))."""
    if name == "gelu":
        return {"none": "gelu", "tanh": "gelu_tanh"}.get(approximate)
    if name == "hardtanh":
        return "relu6" if (min_val, max_val) == (0, 6) else None
    return name


def module_kind(module):
    """The activation an (exactly typed) torch.nn module applies, or None."""
    kind = type(module)
    if kind in _MODULES:
        return _MODULES[kind]
    if kind is nn.GELU:
        return _kind("gelu", approximate=module.approximate)
    if kind is nn.Hardtanh:
        return _kind("hardtanh", min_val=module.min_val, max_val=module.max_val)
    return None


def _bind(node, names):
    """node's arguments by parameter name (defaults filled in), or None when they do not
    fit `names`."""
    if len(node.args) > len(names) or any(k not in names for k in node.kwargs):
        return None
    bound = dict(zip(names, node.args), **node.kwargs)
    if "input" not in bound:
        return None
    return {name: bound.get(name, _DEFAULTS.get(name)) for name in names}


def _function_kind(node):
    names = _FUNCTIONS[node.target]
    bound = _bind(node, names)
    # Only constant settings: a flag computed in the graph cannot be decided here.
    if bound is None or any(isinstance(v, Node) for k, v in bound.items() if k != "input"):
        return None, None
    name = node.target.__name__.rstrip("_")
    return bound["input"], _kind(name, bound.get("approximate", "none"),
                                 bound.get("min_val", 0.0), bound.get("max_val", 6.0))


def node_kind(node, modules):
    """(the value node activates, its ACTIVATIONS name) for an activation node with a single
    tensor input, else (None, None). A module in train mode is not an activation to fuse
    (the caller reports it)."""
    if node.op == "call_module":
        module = modules.get(node.target)
        kind = module_kind(module)
        if kind is None or len(node.args) != 1 or node.kwargs:
            return None, None
        return node.args[0], kind
    if node.op == "call_function" and node.target in _FUNCTIONS:
        return _function_kind(node)
    if node.op == "call_method" and node.target in ("relu", "relu_"):
        if len(node.args) == 1 and not node.kwargs:
            return node.args[0], "relu"
    return None, None


# ----------------------------------------------------------------------------- residual adds

_ADD_FUNCTIONS = (operator.add, operator.iadd, torch.add)


def residual_add(node):
    """(lhs, rhs, in_place) for an addition of two graph values without alpha (a + b,
    a += b, torch.add(a, b), a.add(b), a.add_(b)), else None."""
    if len(node.args) != 2 or node.kwargs:  # alpha= and out= are refused here
        return None
    is_add = ((node.op == "call_function" and node.target in _ADD_FUNCTIONS)
              or (node.op == "call_method" and node.target in ("add", "add_")))
    lhs, rhs = node.args
    if not is_add or not isinstance(lhs, Node) or not isinstance(rhs, Node):
        return None
    return lhs, rhs, node.target in (operator.iadd, "add_")


def is_in_place(node, modules):
    """Whether a node may write to one of its inputs (so work cannot move across it)."""
    if node.op == "call_module":
        return bool(getattr(modules.get(node.target), "inplace", False))
    if node.op == "call_function":
        name = getattr(node.target, "__name__", "")
        return (node.kwargs.get("inplace") is True or "out" in node.kwargs
                or name.endswith("_") and not name.startswith("_")
                or node.target in (operator.setitem, operator.iadd, operator.isub, operator.imul,
                                   operator.itruediv))
    if node.op == "call_method":
        return node.target.endswith("_") and not node.target.startswith("_")
    return False
