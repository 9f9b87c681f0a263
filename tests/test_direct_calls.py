"""The short way to the ops (cnnops/_ops/direct.py, csrc/torch/direct_calls.cpp): the
functional API calls the hot ops through the dispatcher's typed handles instead of
torch.ops' schema parsing. It must be the same op with the same result, and everything
that acts on a torch.ops call must still act: __torch_function__ of tensor subclasses and
torch function modes (the call then goes through torch.ops), dispatch modes, autograd,
the profiler's record of the op."""
import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

import cnnops
from cnnops._ops import direct
from conftest import OpNames

pytestmark = [pytest.mark.conv2d, pytest.mark.max_pool2d]
ops = torch.ops.cnnops

# (name, function of (x, w, b), the op it reaches)
CALLS = [
    ("conv2d", lambda x, w, b: cnnops.conv2d(x, w, b, padding=1), "cnnops.conv2d_fprop"),
    ("conv_transpose2d", lambda x, w, b: cnnops.conv_transpose2d(x, w, b, padding=1),
     "cnnops.conv2d_dgrad"),
    ("depthwise", lambda x, w, b: cnnops.conv2d(x, w[:, :1], b, padding=1, groups=8),
     "cnnops.depthwise_fprop"),
    ("max_pool2d", lambda x, w, b: cnnops.max_pool2d(x, 2, 2), "cnnops.max_pool2d_values"),
    ("max_pool2d_indices", lambda x, w, b: cnnops.max_pool2d(x, 2, 2, return_indices=True)[0],
     "cnnops.max_pool2d_fwd"),
    ("conv2d_fused", lambda x, w, b: cnnops.functional.conv2d_fused(x, w, b, padding=1,
                                                                    activation="relu"),
     "cnnops.conv2d_fprop_fused"),
    ("depthwise_fused", lambda x, w, b: cnnops.functional.conv2d_fused(
        x, w[:, :1], b, padding=1, groups=8, residual=x, post_activation="relu6"),
     "cnnops.depthwise_fprop_fused"),
]
REFERENCE = {
    "conv2d": lambda x, w, b: F.conv2d(x, w, b, padding=1),
    "conv_transpose2d": lambda x, w, b: F.conv_transpose2d(x, w, b, padding=1),
    "depthwise": lambda x, w, b: F.conv2d(x, w[:, :1], b, padding=1, groups=8),
    "max_pool2d": lambda x, w, b: F.max_pool2d(x, 2, 2),
    "max_pool2d_indices": lambda x, w, b: F.max_pool2d(x, 2, 2),
    "conv2d_fused": lambda x, w, b: F.relu(F.conv2d(x, w, b, padding=1)),
    "depthwise_fused": lambda x, w, b: F.relu6(F.conv2d(x, w[:, :1], b, padding=1, groups=8) + x),
}


def _args(dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    return (torch.randn(2, 8, 7, 9, dtype=dtype, generator=g),
            torch.randn(8, 8, 3, 3, dtype=dtype, generator=g),
            torch.randn(8, dtype=dtype, generator=g))



class Seen(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.seen.append(str(getattr(func, "overloadpacket", func)))
        return func(*args, **(kwargs or {}))


class Tagged(torch.Tensor):
    """A subclass whose __torch_function__ counts the calls it sees."""
    calls = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        cls.calls.append(str(getattr(func, "overloadpacket", func)))
        with torch._C.DisableTorchFunctionSubclass():
            return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name,call,op", CALLS, ids=[c[0] for c in CALLS])
def test_direct_call_is_the_op(name, call, op):
    x, w, b = _args()
    assert direct.usable(x, w, b)
    with torch.no_grad():
        torch.testing.assert_close(call(x, w, b), REFERENCE[name](x, w, b), rtol=1e-10, atol=1e-10)
        with OpNames() as rec:  # dispatch modes see the op
            call(x, w, b)
    assert op in rec.seen
    with torch.no_grad(), torch.profiler.profile() as prof:  # and so does the profiler
        call(x, w, b)
    assert op.replace(".", "::") in {e.key for e in prof.key_averages()}


@pytest.mark.parametrize("name,call,op", CALLS, ids=[c[0] for c in CALLS])
def test_overrides_still_see_the_call(name, call, op):
    x, w, b = _args()
    with torch.no_grad():
        with Seen() as mode:  # a torch function mode: the call goes through torch.ops
            y = call(x, w, b)
        assert op in mode.seen
        Tagged.calls = []
        t = x.as_subclass(Tagged)
        assert not direct.usable(t, w, b)
        torch.testing.assert_close(call(t, w, b).as_subclass(torch.Tensor), y)
        assert op in Tagged.calls


def test_parameters_take_the_short_way():
    x, w, b = _args()
    assert direct.usable(x, torch.nn.Parameter(w), torch.nn.Parameter(b))
    assert not direct.usable(x.as_subclass(Tagged))


@pytest.mark.parametrize("name,call,op", CALLS[:2], ids=[c[0] for c in CALLS[:2]])
def test_autograd_through_the_short_way(name, call, op):
    x, w, b = (t.requires_grad_() for t in _args())
    torch.autograd.gradcheck(lambda x, w, b: call(x, w, b), (x, w, b))


def test_max_pool2d_values_op_is_differentiable():
    """The values-only op, called with an input that needs a gradient, gets max_pool2d_fwd's
    values and their gradient (it had no autograd kernel: its backward raised)."""
    x = torch.randn(2, 3, 7, 8, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(
        lambda x: ops.max_pool2d_values(x, [3, 2], [2, 2], [1, 1, 0, 0], [1, 1], True), (x,))
    with torch.no_grad():
        y = ops.max_pool2d_values(x, [3, 3], [2, 2], [1, 1, 1, 1], [1, 1], False)
    assert not y.requires_grad


def test_compiled_calls_trace_the_ops():
    x, w, b = _args(torch.float32)
    f = torch.compile(lambda x, w, b: cnnops.max_pool2d(cnnops.conv2d(x, w, b, padding=1), 2),
                      fullgraph=True, backend="eager")
    with torch.no_grad():
        torch.testing.assert_close(f(x, w, b), F.max_pool2d(F.conv2d(x, w, b, padding=1), 2))
