"""cnnops.conv_transpose2d against torch.nn.functional.conv_transpose2d: output, grad
input, grad weight, grad bias (float64 reference) and output memory format."""
import itertools

import pytest
import torch
import torch.nn.functional as F

import cnnops
from conftest import (
    assert_close,
    check_against_torch,
    check_low_precision,
    device_params,
    dtype_params,
    low_precision_conv_inputs,
    low_precision_params,
    make,
    memory_format_of,
    reference,
)

pytestmark = [pytest.mark.conv2d, pytest.mark.parametrize("device", device_params())]


def run(device, dtype, x_shape, w_shape, bias=True, x_cl=False, w_cl=False, **kwargs):
    groups = kwargs.get("groups", 1)
    x = make(x_shape, dtype, device, channels_last=x_cl)
    w = make(w_shape, dtype, device, channels_last=w_cl)
    b = make((w_shape[1] * groups,), dtype, device) if bias else None
    return check_against_torch(cnnops.conv_transpose2d, F.conv_transpose2d, (x, w, b), kwargs, dtype)


def _pair(v):
    return (v, v) if isinstance(v, int) else v


def _valid_grid():
    """(stride, padding, output_padding, dilation) with output_padding < max(stride, dilation)."""
    out = []
    for s, p, op, d in itertools.product([1, 2, 3, (2, 1)], [0, 1, (2, 1)], [0, 1, (1, 0), 2],
                                         [1, 2, (1, 2)]):
        if all(o < max(si, di) for o, si, di in zip(_pair(op), _pair(s), _pair(d))):
            out.append(pytest.param(s, p, op, d, id=f"s{s}-p{p}-op{op}-d{d}"))
    return out


GRID = _valid_grid()


@pytest.mark.parametrize("stride,padding,output_padding,dilation", GRID)
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_grid_float64(device, stride, padding, output_padding, dilation, groups, bias):
    y = run(device, torch.float64, (2, 4, 5, 6), (4, 6 // groups, 3, 2), bias, stride=stride,
            padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)
    (sh, sw), (ph, pw), (oh, ow), (dh, dw) = map(_pair, (stride, padding, output_padding, dilation))
    assert y.shape[2:] == ((5 - 1) * sh - 2 * ph + dh * 2 + oh + 1, (6 - 1) * sw - 2 * pw + dw + ow + 1)


@pytest.mark.parametrize("stride,padding,output_padding,dilation",
                         [(1, 0, 0, 1), (2, 1, 1, 1), ((2, 3), (1, 0), (0, 2), 1), (1, 1, 1, 2),
                          (3, 2, 2, 2)])
@pytest.mark.parametrize("groups", [1, 2])
def test_grid_float32(device, stride, padding, output_padding, dilation, groups):
    run(device, torch.float32, (2, 4, 5, 6), (4, 6 // groups, 3, 3), True, stride=stride,
        padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)


@pytest.mark.parametrize("dtype", dtype_params())
@pytest.mark.parametrize("stride,padding,output_padding,dilation",
                         [(1, 0, 0, 1), (2, 1, 1, 1), (1, 2, 1, 2), ((3, 2), (1, 0), (2, 1), 1)])
def test_across_isas(device, cpu_isa, dtype, stride, padding, output_padding, dilation):
    """Shapes that are not multiples of any micro-kernel tile, on every ISA."""
    run(device, dtype, (2, 19, 7, 6), (19, 31, 3, 3), True, stride=stride, padding=padding,
        output_padding=output_padding, dilation=dilation)


@pytest.mark.parametrize("dtype", dtype_params())
@pytest.mark.parametrize("groups,cout", [(2, 6), (4, 4), (4, 8)], ids=["g2", "depthwise", "depthwise-x2"])
def test_grouped_across_isas(device, cpu_isa, dtype, groups, cout):
    run(device, dtype, (2, 4, 6, 5), (4, cout // groups, 3, 3), True, stride=2, padding=1,
        output_padding=1, groups=groups)


# ----------------------------------------------------------------------------- shapes

@pytest.mark.parametrize("kernel", [(1, 1), (1, 3), (3, 1), (5, 3), (2, 4), (4, 4)])
@pytest.mark.parametrize("dtype", dtype_params())
def test_kernel_shapes(device, kernel, dtype):
    run(device, dtype, (2, 5, 6, 4), (5, 3, *kernel), True, stride=(2, 1), padding=(0, 0))
    run(device, dtype, (2, 5, 6, 4), (5, 3, *kernel), True, stride=2, output_padding=1)


@pytest.mark.parametrize("x_shape", [(1, 1, 1, 1), (2, 3, 1, 7), (1, 2, 9, 1)])
def test_degenerate_sizes(device, x_shape):
    C = x_shape[1]
    run(device, torch.float64, x_shape, (C, 2, 1, 1), True)
    run(device, torch.float64, x_shape, (C, 2, 3, 2), True, stride=3, output_padding=(2, 1))


def test_padding_crops_to_single_pixel(device):
    y = run(device, torch.float64, (2, 3, 1, 2), (3, 2, 3, 3), True, padding=1)
    assert y.shape == (2, 2, 1, 2)


@pytest.mark.parametrize("dtype", dtype_params())
def test_larger_problem(device, dtype):
    run(device, dtype, (3, 40, 8, 7), (40, 50, 4, 4), True, stride=2, padding=1)


@pytest.mark.parametrize("dtype", dtype_params())
@pytest.mark.parametrize("kwargs", [{}, {"stride": 2, "padding": 1, "output_padding": 1},
                                    {"groups": 2, "dilation": 2}], ids=["plain", "strided", "grouped"])
def test_unbatched(device, dtype, kwargs):
    y = run(device, dtype, (4, 5, 6), (4, 3, 3, 3), True, **kwargs)
    assert y.dim() == 3


# ----------------------------------------------------------------------------- layouts

@pytest.mark.parametrize("dtype", dtype_params())
@pytest.mark.parametrize("x_cl", [False, True], ids=["x-nchw", "x-nhwc"])
@pytest.mark.parametrize("w_cl", [False, True], ids=["w-nchw", "w-nhwc"])
@pytest.mark.parametrize("groups", [1, 3])
def test_channels_last(device, dtype, x_cl, w_cl, groups):
    y = run(device, dtype, (2, 6, 5, 4), (6, 9 // groups, 3, 2), True, x_cl, w_cl, stride=(2, 1),
            padding=1, output_padding=(1, 0), groups=groups)
    # torch's (and so our) float64 CUDA convolutions run outside cuDNN: always contiguous.
    cl = (x_cl or w_cl) and not (device == "cuda" and dtype == torch.float64)
    assert y.is_contiguous(memory_format=torch.channels_last if cl else torch.contiguous_format)


def test_channels_last_across_isas(device, cpu_isa):
    run(device, torch.float32, (2, 12, 5, 6), (12, 20, 3, 3), True, True, True, stride=2, padding=1)


@pytest.mark.parametrize("dtype", dtype_params())
@pytest.mark.parametrize("view", ["w-sliced", "permuted", "channel-sliced", "expanded"])
def test_non_contiguous(device, dtype, view):
    views = {
        "w-sliced": lambda: torch.randn(2, 4, 5, 12, dtype=dtype, device=device)[..., ::2],
        "permuted": lambda: torch.randn(6, 2, 4, 5, dtype=dtype, device=device).permute(1, 2, 3, 0),
        "channel-sliced": lambda: torch.randn(2, 8, 5, 6, dtype=dtype, device=device)[:, ::2],
        "expanded": lambda: torch.randn(1, 4, 5, 6, dtype=dtype, device=device).expand(2, 4, 5, 6),
    }
    x = views[view]().detach().requires_grad_()
    assert x.shape == (2, 4, 5, 6) and not x.is_contiguous()
    w = torch.randn(3, 4, 6, 3, dtype=dtype, device=device).permute(1, 0, 3, 2)[..., ::2]
    w = w.detach().requires_grad_()
    assert w.shape == (4, 3, 3, 3) and not w.is_contiguous()
    b = torch.randn(6, dtype=dtype, device=device)[::2].detach().requires_grad_()
    check_against_torch(cnnops.conv_transpose2d, F.conv_transpose2d, (x, w, b),
                        {"stride": 2, "padding": 1, "output_padding": 1})
    check_against_torch(cnnops.conv_transpose2d, F.conv_transpose2d, (x, w, b), {"stride": 2},
                        grad_output_transform=lambda g: torch.cat([g, g], -1)[..., 1::2])


@pytest.mark.parametrize("x_cl", [False, True])
@pytest.mark.parametrize("dtype", dtype_params())
def test_output_memory_format_matches_torch(device, x_cl, dtype):
    x = torch.randn(2, 4, 6, 5, dtype=dtype, device=device)
    w = torch.randn(4, 6, 3, 3, dtype=dtype, device=device)
    if x_cl:
        x = x.to(memory_format=torch.channels_last)
    y, t = cnnops.conv_transpose2d(x, w, stride=2), F.conv_transpose2d(x, w, stride=2)
    assert memory_format_of(y) == memory_format_of(t)
    assert y.stride() == t.stride()


@pytest.mark.parametrize("need", ["x", "w", "b", "xw"])
def test_partial_requires_grad(device, need):
    x = make((2, 4, 5, 6), torch.float64, device, requires_grad="x" in need)
    w = make((4, 5, 3, 3), torch.float64, device, requires_grad="w" in need)
    b = make((5,), torch.float64, device, requires_grad="b" in need)
    check_against_torch(cnnops.conv_transpose2d, F.conv_transpose2d, (x, w, b),
                        {"stride": 2, "padding": 1, "output_padding": 1})


def test_expanded_grad_output_from_sum(device):
    x = make((2, 4, 5, 6), torch.float64, device)
    w = make((4, 3, 3, 3), torch.float64, device)
    b = make((3,), torch.float64, device)
    y = cnnops.conv_transpose2d(x, w, b, stride=2)
    y.sum().backward()
    _, (gx, gw, gb) = reference(F.conv_transpose2d, x, w, b, stride=2,
                                grad_output=torch.ones(y.shape, dtype=torch.float64))
    assert_close(x.grad, gx, what="grad input")
    assert_close(w.grad, gw, what="grad weight")
    assert_close(b.grad, gb, what="grad bias")


# ----------------------------------------------------------------------------- empty batch

@pytest.mark.parametrize("dtype", dtype_params())
@pytest.mark.parametrize("x_cl", [False, True])
@pytest.mark.parametrize("kwargs", [{}, {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2}],
                         ids=["plain", "strided-grouped"])
def test_empty_batch(device, dtype, x_cl, kwargs):
    groups = kwargs.get("groups", 1)
    x = make((0, 4, 5, 6), dtype, device, channels_last=x_cl)
    w = make((4, 6 // groups, 3, 3), dtype, device)
    b = make((6,), dtype, device)
    y = cnnops.conv_transpose2d(x, w, b, **kwargs)
    t = F.conv_transpose2d(x.detach(), w.detach(), b.detach(), **kwargs)
    assert y.shape == t.shape and y.shape[0] == 0 and y.dtype == dtype
    y.sum().backward()
    assert x.grad.shape == x.shape
    assert torch.equal(w.grad, torch.zeros_like(w))
    assert torch.equal(b.grad, torch.zeros_like(b))


# ----------------------------------------------------------------------------- threads

@pytest.mark.parametrize("dtype", dtype_params())
def test_independent_of_thread_count(device, dtype, restore_threads):
    x = make((3, 16, 6, 5), dtype, device)
    w = make((16, 12, 3, 3), dtype, device)
    b = make((12,), dtype, device)
    results = []
    g = None
    for threads in (1, 2):
        torch.set_num_threads(threads)
        y = cnnops.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)
        if g is None:
            g = torch.randn(y.shape, dtype=dtype, device=device)
        results.append((y, *torch.autograd.grad(y, (x, w, b), g)))
    torch.set_num_threads(restore_threads)
    ref = reference(F.conv_transpose2d, x, w, b, stride=2, padding=1, output_padding=1, grad_output=g)
    rtol, atol = (1e-12, 1e-12) if dtype == torch.float64 else (1e-5, 1e-5)
    for one, two, r in zip(*results, [ref[0], *ref[1]]):
        torch.testing.assert_close(one, two, rtol=rtol, atol=atol * max(1.0, r.abs().max().item()))
        assert_close(one, r, dtype)


# ----------------------------------------------------------------------------- nn output_size

@pytest.mark.parametrize("stride,output_size", [(2, (9, 11)), (2, (10, 12)), (3, (13, 17)),
                                                ((2, 3), (10, 16)), (1, None)])
@pytest.mark.parametrize("unbatched", [False, True])
def test_nn_output_size(device, stride, output_size, unbatched):
    kwargs = dict(in_channels=4, out_channels=6, kernel_size=3, stride=stride, padding=1,
                  dtype=torch.float64, device=device)
    torch.manual_seed(1)
    ours = cnnops.nn.ConvTranspose2d(**kwargs)
    torch.manual_seed(1)
    theirs = torch.nn.ConvTranspose2d(**kwargs)
    shape = (4, 5, 6) if unbatched else (2, 4, 5, 6)
    x = torch.randn(shape, dtype=torch.float64, device=device)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    size_arg = output_size
    if output_size is not None and not unbatched:
        size_arg = [2, 6, *output_size]  # torch also accepts the full size
    ya, yb = ours(xa, output_size=size_arg), theirs(xb, output_size=size_arg)
    if output_size is not None:
        assert tuple(ya.shape[-2:]) == output_size
    assert_close(ya, yb.detach())
    g = torch.randn_like(yb)
    ya.backward(g)
    yb.backward(g)
    assert_close(xa.grad, xb.grad)
    assert_close(ours.weight.grad, theirs.weight.grad)
    assert_close(ours.bias.grad, theirs.bias.grad)


def test_nn_output_size_out_of_range_refused(device):
    m = cnnops.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, dtype=torch.float64, device=device)
    t = torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, dtype=torch.float64, device=device)
    x = torch.randn(2, 4, 5, 6, dtype=torch.float64, device=device)
    for size in [(11, 11), (8, 11), (9, 12 + 1)]:
        with pytest.raises((ValueError, RuntimeError)):
            t(x, output_size=size)
        with pytest.raises((ValueError, RuntimeError)):
            m(x, output_size=size)


# ----------------------------------------------------------------------------- float16 / bfloat16 (CUDA)

@pytest.mark.parametrize("dtype", low_precision_params())
@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("x_shape,w_shape,kwargs", [
    ((2, 32, 9, 8), (32, 16, 4, 4), dict(stride=2, padding=1)),
    ((3, 16, 7, 7), (16, 24, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ((2, 24, 6, 5), (24, 8, 3, 3), dict(groups=2, dilation=2)),
], ids=["4x4s2", "3x3s2-outpad", "grouped-dilated"])
def test_low_precision_cuda(device, dtype, layout, x_shape, w_shape, kwargs):
    x, w = low_precision_conv_inputs(device, dtype, layout, x_shape, w_shape)
    b = make((w_shape[1] * kwargs.get("groups", 1),), dtype, device)
    check_low_precision(cnnops.conv_transpose2d, F.conv_transpose2d, (x, w, b), kwargs)
