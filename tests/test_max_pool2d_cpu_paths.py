"""Every CPU code path of the max_pool2d family (max_pool2d_fwd, max_pool2d_values,
max_pool2d_bwd) against torch, under every ISA this CPU supports (cnnops.set_cpu_isa):
the vector kernels with NaN, -inf and ties, and the channels_last backward with plain and
streamed stores.
"""
import pytest
import torch
import torch.nn.functional as F

import cnnops
from conftest import supported_isas


def same_bits(a, b):
    ints = {torch.float32: torch.int32, torch.float64: torch.int64}[a.dtype]
    return a.shape == b.shape and torch.equal(a.view(ints), b.view(ints))


@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("cl", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("kernel,stride,padding", [(3, 2, 1), (2, 1, 0), (3, 1, 1)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_max_pool2d_vector_kernels_every_isa(isa, cl, kernel, stride, padding, dtype):
    # max_taps (blocks of two registers and a padded partial block), split_row,
    # merge_row, gather_grad and in_range under every ISA; 37 channels and
    # widths give partial blocks; NaN, -inf and ties exercise torch's rule.
    x = torch.randn(2, 37, 11, 75, dtype=dtype)
    x[0, 0, 0, :5] = float("nan")
    x[1, 2, :, :] = float("-inf")
    x[1, 3] = 1.0
    if cl:
        x = x.to(memory_format=torch.channels_last)
    cnnops.set_cpu_isa(isa)
    try:
        xc, xt = x.clone().requires_grad_(), x.clone().requires_grad_()
        y, i = cnnops.max_pool2d(xc, kernel, stride, padding, return_indices=True)
        ty, ti = F.max_pool2d(xt, kernel, stride, padding, return_indices=True)
        assert torch.equal(i, ti)
        torch.testing.assert_close(y, ty, rtol=0, atol=0, equal_nan=True)
        # max_values (no indices: blocks of four registers), the same bits, NaNs included
        yv = cnnops.max_pool2d(x, kernel, stride, padding)
        assert same_bits(yv, ty)
        dy = torch.randn_like(ty)
        (g,), (tg,) = torch.autograd.grad(y, (xc,), dy), torch.autograd.grad(ty, (xt,), dy)
        torch.testing.assert_close(g, tg, rtol=0, atol=0)
    finally:
        cnnops.set_cpu_isa("auto")


@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("C,kernel,stride,padding,dilation",
                         [(64, 3, 2, 1, 1), (20, 3, 2, 1, 1), (130, 2, 1, 0, 1), (7, 5, 1, 2, 1),
                          (33, 3, 1, 1, 2), (16, (4, 2), (1, 3), (2, 1), 1)])
def test_max_pool2d_channels_last_backward_every_isa(isa, dtype, C, kernel, stride, padding,
                                                     dilation, output_stores):
    # The channels_last backward gathers each input pixel's windows in one
    # call (gather_pixel: blocks of four registers of channels, a partial last
    # block for C = 7, 20, 33, 130) and stores the pixel plainly or streamed.
    # Kernel 5 stride 1 gives 25 windows per pixel; ties (x rounded) make
    # several windows name the same pixel, so the summation order shows.
    g = torch.Generator().manual_seed(C)
    x = torch.randn(2, C, 13, 12, generator=g, dtype=dtype).mul(2).round()
    x = x.to(memory_format=torch.channels_last).requires_grad_(True)
    xt = x.detach().clone().requires_grad_(True)
    cnnops.set_cpu_isa(isa)
    try:
        y, i = cnnops.max_pool2d(x, kernel, stride, padding, dilation, return_indices=True)
        yt, it = F.max_pool2d(xt, kernel, stride, padding, dilation, return_indices=True)
        dy = torch.randn(yt.shape, generator=g, dtype=dtype).to(memory_format=torch.channels_last)
        y.backward(dy)
        yt.backward(dy)
    finally:
        cnnops.set_cpu_isa("auto")
    assert torch.equal(y, yt) and torch.equal(i, it)
    assert x.grad.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x.grad, xt.grad)


@pytest.mark.parametrize("layout", ["nchw", "strided", "channels_last"])
@pytest.mark.parametrize("kernel,stride,padding,dilation,ceil_mode",
                         [(2, 2, 0, 1, False), (3, 2, 1, 1, True), (3, 1, 1, 2, False), (2, 3, 1, 1, True),
                          (3, 3, 1, 1, True), (4, 2, 2, 1, True)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_max_pool2d_tiny_problems(layout, kernel, stride, padding, dilation, ceil_mode, dtype):
    # Problems of at most a few thousand taps, not channels_last, take one plain loop
    # (fwd_tiny; its backward bwd_tiny in every layout): torch's values and indices with
    # NaN, -inf windows, ties, padding, dilation and ceil_mode (windows cut by the
    # bottom/right edge), from contiguous, strided and channels_last inputs.
    x = torch.randn(2, 3, 9, 16 if layout == "strided" else 8, dtype=dtype)
    if layout == "strided":
        x = x[..., ::2]
    x[0, 0, 0, :3] = float("nan")
    x[0, 1, 2, 2] = float("nan")
    x[1, 2, :, :] = float("-inf")
    x[1, 0] = 1.0
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
              ceil_mode=ceil_mode)
    xc, xt = x.clone().requires_grad_(), x.clone().requires_grad_()
    y, i = cnnops.max_pool2d(xc, return_indices=True, **kw)
    ty, ti = F.max_pool2d(xt, return_indices=True, **kw)
    assert torch.equal(i, ti)
    assert same_bits(y, ty)
    with torch.no_grad():
        assert same_bits(cnnops.max_pool2d(x, **kw), ty.detach())
    dy = torch.randn_like(ty)
    y.backward(dy)
    ty.backward(dy)
    assert torch.equal(xc.grad, xt.grad)
