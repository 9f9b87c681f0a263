"""Every CPU code path of the avg_pool2d family (avg_pool2d_fwd/bwd,
adaptive_avg_pool2d_fwd/bwd) against torch, under every ISA this CPU supports
(cnnops.set_cpu_isa): the planes path (stencil at stride 1 and by stride phases, general
adaptive windows, strided inputs and grad_outputs), the channels_last path (column sums or
direct windows, packed or not), the global pool (NCHW plane sums, channels_last blocks of
channels), with channel counts and widths that leave partial registers, and the
backward's plain and streamed stores.
"""
import pytest
import torch
import torch.nn.functional as F

import cnnops
from conftest import assert_close, reference, supported_isas

ops = torch.ops.cnnops
pytestmark = pytest.mark.avg_pool2d


def under_isa(isa, fn, x, g):
    """fn(x) and its gradient for g, computed with the CPU ISA forced to `isa`."""
    x = x.detach().requires_grad_()
    cnnops.set_cpu_isa(isa)
    try:
        y = fn(x)
        (dx,) = torch.autograd.grad(y, x, g)
    finally:
        cnnops.set_cpu_isa("auto")
    return y, dx


def check(isa, ours, theirs, x):
    g = torch.randn(theirs(x.detach()).shape, dtype=torch.float64)
    y, dx = under_isa(isa, ours, x, g.to(x.dtype))
    ref_y, (ref_dx,) = reference(theirs, x.detach().requires_grad_(), grad_output=g)
    assert_close(y, ref_y, x.dtype, "output")
    assert_close(dx, ref_dx, x.dtype, "grad input")
    return y, dx


def sliced(shape, dtype, channels_last=False):
    """Every other column of a wider tensor: no unit stride along W."""
    n, c, h, w = shape
    x = torch.randn(n, c, h, 2 * w, dtype=dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    return x[..., ::2]


PLANE_CASES = [  # (id, call through F or cnnops)
    ("stencil-s1", lambda m, t: m.avg_pool2d(t, 3, 1, 1)),
    ("stencil-s1-wide-pad", lambda m, t: m.avg_pool2d(t, (3, 5), 1, (1, 2), count_include_pad=False)),
    ("phases-s2", lambda m, t: m.avg_pool2d(t, 3, 2, 1, ceil_mode=True)),
    ("phases-k2s3", lambda m, t: m.avg_pool2d(t, 2, 3, 1, ceil_mode=True)),  # columns in no window
    ("phases-k4s3-divisor", lambda m, t: m.avg_pool2d(t, 4, 3, 2, divisor_override=7)),
    ("adaptive-general", lambda m, t: m.adaptive_avg_pool2d(t, (5, 7))),
    ("adaptive-larger", lambda m, t: m.adaptive_avg_pool2d(t, (14, 40))),
    ("adaptive-regular", lambda m, t: m.adaptive_avg_pool2d(t, (3, 25))),
]


@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("layout", ["nchw", "sliced"])
@pytest.mark.parametrize("call", [pytest.param(c, id=i) for i, c in PLANE_CASES])
def test_planes_every_isa(isa, dtype, layout, call):
    # W = 75: rows of full registers and a masked last one under every width
    x = torch.randn(2, 3, 9, 75, dtype=dtype) if layout == "nchw" else sliced((2, 3, 9, 75), dtype)
    check(isa, lambda t: call(cnnops, t), lambda t: call(F, t), x)


CL_CASES = [
    ("column-sums-3x3", lambda m, t: m.avg_pool2d(t, 3, 1, 1)),
    ("column-sums-ceil", lambda m, t: m.avg_pool2d(t, 3, 2, 1, ceil_mode=True, count_include_pad=False)),
    ("direct-2x2", lambda m, t: m.avg_pool2d(t, 2)),
    ("direct-1x1-s2", lambda m, t: m.avg_pool2d(t, 1, 2)),
    ("adaptive", lambda m, t: m.adaptive_avg_pool2d(t, (4, 5))),
    ("adaptive-larger", lambda m, t: m.adaptive_avg_pool2d(t, (12, 11))),
]


@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("C", [7, 37, 130])
@pytest.mark.parametrize("packed", [True, False], ids=["packed", "sliced"])
@pytest.mark.parametrize("call", [pytest.param(c, id=i) for i, c in CL_CASES])
def test_channels_last_every_isa(isa, dtype, C, packed, call, output_stores):
    shape = (2, C, 9, 10)
    x = torch.randn(shape, dtype=dtype).to(memory_format=torch.channels_last) if packed else \
        sliced(shape, dtype, channels_last=True)
    y, dx = check(isa, lambda t: call(cnnops, t), lambda t: call(F, t), x)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert dx.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", [(2, 2048, 7, 7), (2, 300, 10, 10), (3, 37, 1, 3), (2, 5, 9, 13)], ids=str)
@pytest.mark.parametrize("layout", ["nchw", "cl"])
def test_global_pool_every_isa(isa, dtype, shape, layout, output_stores):
    # NCHW: planes of 49, 100, 3 and 117 (full registers, a masked tail, a tail alone);
    # channels_last: 2048 channels (blocks of 256, eight registers at a time), 300 (a
    # partial block), 37 and 5 (partial registers only)
    x = torch.randn(shape, dtype=dtype)
    if layout == "cl":
        x = x.to(memory_format=torch.channels_last)
    check(isa, lambda t: cnnops.adaptive_avg_pool2d(t, 1), lambda t: F.adaptive_avg_pool2d(t, 1), x)
    check(isa, lambda t: cnnops.avg_pool2d(t, shape[2:], divisor_override=5),
          lambda t: F.avg_pool2d(t, shape[2:], divisor_override=5), x)


@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("dy_layout", ["nchw", "cl", "sliced"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["dx-nchw", "dx-cl"])
@pytest.mark.parametrize("case", ["3x3s2", "adaptive", "global"])
def test_backward_ops_any_grad_output_layout(isa, dy_layout, channels_last, case):
    """The backward ops called directly with a grad_output of any layout, grad_input in
    either: the planes path copies strided rows in and merges phases out."""
    x = torch.randn(2, 6, 9, 11, dtype=torch.float64, requires_grad=True)
    if case == "3x3s2":
        args = ([3, 3], [2, 2], [1, 1, 1, 1], True, False, None)
        y = F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)
    else:
        out = [4, 5] if case == "adaptive" else [1, 1]
        y = F.adaptive_avg_pool2d(x, out)
    dy = torch.randn(y.shape, dtype=torch.float64)
    if dy_layout == "cl":
        dy = dy.to(memory_format=torch.channels_last)
    if dy_layout == "sliced":
        dy = torch.cat([dy, dy], 3)[..., ::2]
    (want,) = torch.autograd.grad(y, x, dy)
    cnnops.set_cpu_isa(isa)
    try:
        if case == "3x3s2":
            got = ops.avg_pool2d_bwd(dy, [9, 11], *args, channels_last)
        else:
            got = ops.adaptive_avg_pool2d_bwd(dy, [9, 11], channels_last)
    finally:
        cnnops.set_cpu_isa("auto")
    assert got.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
