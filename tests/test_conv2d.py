"""cnnops.conv2d against torch.nn.functional.conv2d: output, grad input, grad weight,
grad bias (float64 reference) and output memory format."""
import math

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

pytestmark = [
    pytest.mark.parametrize("device", device_params()),
    pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel"),
]


def run(device, dtype, x_shape, w_shape, bias=True, x_cl=False, w_cl=False, **kwargs):
    x = make(x_shape, dtype, device, channels_last=x_cl)
    w = make(w_shape, dtype, device, channels_last=w_cl)
    b = make((w_shape[0],), dtype, device) if bias else None
    return check_against_torch(cnnops.conv2d, F.conv2d, (x, w, b), kwargs, dtype)


# ----------------------------------------------------------------------------- the main grid

@pytest.mark.parametrize("stride", [1, 2, 3, (1, 2), (3, 1)])
@pytest.mark.parametrize("padding", [0, 1, 2, (1, 0), (0, 2), "valid"])
@pytest.mark.parametrize("dilation", [1, 2, (2, 1)])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_grid_float64(device, stride, padding, dilation, groups, bias):
    run(device, torch.float64, (2, 4, 8, 7), (6, 4 // groups, 3, 2), bias,
        stride=stride, padding=padding, dilation=dilation, groups=groups)


@pytest.mark.parametrize("stride", [1, 2, (1, 3)])
@pytest.mark.parametrize("padding", [0, 1, (2, 1)])
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("groups", [1, 2])
def test_grid_float32(device, stride, padding, dilation, groups):
    run(device, torch.float32, (2, 4, 8, 7), (6, 4 // groups, 3, 3), True,
        stride=stride, padding=padding, dilation=dilation, groups=groups)


@pytest.mark.parametrize("dtype", dtype_params())
@pytest.mark.parametrize("stride,padding,dilation", [(1, 1, 1), (2, 1, 1), (1, 2, 2), ((2, 1), (0, 1), (1, 2))])
def test_across_isas(device, cpu_isa, dtype, stride, padding, dilation):
    """Shapes that are not multiples of any micro-kernel tile, on every ISA."""
    run(device, dtype, (2, 17, 11, 10), (33, 17, 3, 3), True,
        stride=stride, padding=padding, dilation=dilation)


@pytest.mark.parametrize("dtype", dtype_params())
@pytest.mark.parametrize("groups,k", [(2, 6), (4, 4), (4, 8)], ids=["g2", "depthwise", "depthwise-x2"])
def test_grouped_across_isas(device, cpu_isa, dtype, groups, k):
    run(device, dtype, (2, 4, 9, 8), (k, 4 // groups, 3, 3), True, padding=1, groups=groups)


# ----------------------------------------------------------------------------- padding='same'

@pytest.mark.parametrize("kernel", [1, 2, 3, 4, (3, 2), (1, 5)])
@pytest.mark.parametrize("dilation", [1, 2, (1, 2)])
def test_same_stride1_matches_torch(device, kernel, dilation):
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    y = run(device, torch.float64, (2, 3, 9, 8), (4, 3, kh, kw), True, padding="same",
            dilation=dilation)
    assert y.shape[2:] == (9, 8)


def tf_same_padding(size, kernel, stride, dilation):
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


@pytest.mark.parametrize("size", [(9, 8), (7, 7), (10, 5)])
@pytest.mark.parametrize("kernel", [1, 2, 3, 4, (3, 2)])
@pytest.mark.parametrize("stride", [2, 3, (2, 1), (1, 3)])
@pytest.mark.parametrize("dilation", [1, 2])
def test_same_strided_tensorflow_semantics(device, size, kernel, stride, dilation):
    """padding='same' with stride > 1: output ceil(H / stride), the odd pixel at the end."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    H, W = size
    x = make((2, 3, H, W), torch.float64, device)
    w = make((4, 3, kh, kw), torch.float64, device)
    b = make((4,), torch.float64, device)
    top, bottom = tf_same_padding(H, kh, sh, dilation)
    left, right = tf_same_padding(W, kw, sw, dilation)

    def padded_torch(x, w, b):
        return F.conv2d(F.pad(x, (left, right, top, bottom)), w, b, stride, 0, dilation)

    def ours(x, w, b):
        return cnnops.conv2d(x, w, b, stride, "same", dilation)

    y = check_against_torch(ours, padded_torch, (x, w, b))
    assert y.shape == (2, 4, math.ceil(H / sh), math.ceil(W / sw))


def test_same_strided_float32_channels_last(device):
    x = make((2, 3, 9, 9), torch.float32, device, channels_last=True)
    w = make((5, 3, 3, 4), torch.float32, device)
    top, bottom = tf_same_padding(9, 3, 2, 1)
    left, right = tf_same_padding(9, 4, 2, 1)
    assert (top, bottom, left, right) == (1, 1, 1, 2)
    check_against_torch(
        lambda x, w: cnnops.conv2d(x, w, stride=2, padding="same"),
        lambda x, w: F.conv2d(F.pad(x, (left, right, top, bottom)), w, stride=2), (x, w))


def test_same_strided_unbatched(device):
    x = make((3, 7, 6), torch.float64, device)
    w = make((4, 3, 3, 3), torch.float64, device)
    y = check_against_torch(lambda x, w: cnnops.conv2d(x, w, stride=2, padding="same"),
                            lambda x, w: F.conv2d(F.pad(x, (0, 1, 1, 1)), w, stride=2), (x, w))
    assert y.shape == (4, 4, 3)


# ----------------------------------------------------------------------------- shapes

@pytest.mark.parametrize("kernel", [(1, 1), (1, 3), (3, 1), (5, 3), (3, 5), (7, 1), (2, 4)])
@pytest.mark.parametrize("dtype", dtype_params())
def test_kernel_shapes(device, kernel, dtype):
    run(device, dtype, (2, 5, 9, 11), (7, 5, *kernel), True, padding=(1, 0), stride=(1, 2))


@pytest.mark.parametrize("x_shape", [(1, 1, 1, 1), (3, 2, 1, 9), (1, 3, 13, 2), (2, 3, 5, 16)])
def test_degenerate_sizes(device, x_shape):
    """Single pixels, a single channel, very flat inputs; kernel equal to the input."""
    C, H, W = x_shape[1:]
    run(device, torch.float64, x_shape, (4, C, H, W), True)
    run(device, torch.float64, x_shape, (4, C, 1, 1), True, stride=2)


def test_kernel_equals_padded_input(device):
    y = run(device, torch.float64, (2, 3, 4, 5), (2, 3, 6, 7), True, padding=1)
    assert y.shape == (2, 2, 1, 1)


@pytest.mark.parametrize("dtype", dtype_params())
def test_larger_problem(device, dtype):
    """Enough work to cross cache blocks and threads."""
    run(device, dtype, (3, 40, 15, 13), (70, 40, 3, 3), True, padding=1)


@pytest.mark.parametrize("dtype", dtype_params())
@pytest.mark.parametrize("kwargs", [{}, {"stride": 2, "padding": 1}, {"padding": "same", "groups": 2}],
                         ids=["plain", "strided", "same-grouped"])
def test_unbatched(device, dtype, kwargs):
    groups = kwargs.get("groups", 1)
    y = run(device, dtype, (4, 8, 7), (6, 4 // groups, 3, 3), True, **kwargs)
    assert y.dim() == 3


# ----------------------------------------------------------------------------- layouts

@pytest.mark.parametrize("dtype", dtype_params())
@pytest.mark.parametrize("x_cl", [False, True], ids=["x-nchw", "x-nhwc"])
@pytest.mark.parametrize("w_cl", [False, True], ids=["w-nchw", "w-nhwc"])
@pytest.mark.parametrize("groups", [1, 3])
def test_channels_last(device, dtype, x_cl, w_cl, groups):
    y = run(device, dtype, (2, 6, 7, 9), (9, 6 // groups, 3, 2), True, x_cl, w_cl,
            stride=(2, 1), padding=1, groups=groups)
    # torch's (and so our) float64 CUDA convolutions run outside cuDNN: always contiguous.
    cl = (x_cl or w_cl) and not (device == "cuda" and dtype == torch.float64)
    assert y.is_contiguous(memory_format=torch.channels_last if cl else torch.contiguous_format)


def test_channels_last_across_isas(device, cpu_isa):
    run(device, torch.float32, (2, 12, 7, 9), (20, 12, 3, 3), True, True, True, padding=1)


def _views(device, dtype):
    """Non-contiguous leaves of shape (2, 4, 7, 6) with requires_grad."""
    base = torch.randn(2, 4, 7, 12, dtype=dtype, device=device)
    yield "w-sliced", base[..., ::2]
    yield "permuted", torch.randn(2, 4, 6, 7, dtype=dtype, device=device).transpose(2, 3)
    yield "batch-last", torch.randn(4, 7, 6, 2, dtype=dtype, device=device).permute(3, 0, 1, 2)
    yield "channel-sliced", torch.randn(2, 8, 7, 6, dtype=dtype, device=device)[:, 1::2]
    yield "offset", torch.randn(3, 5, 9, 8, dtype=dtype, device=device)[1:, 1:, 2:, 1:7]
    yield "expanded", torch.randn(1, 4, 7, 6, dtype=dtype, device=device).expand(2, 4, 7, 6)


@pytest.mark.parametrize("dtype", dtype_params())
@pytest.mark.parametrize("view", ["w-sliced", "permuted", "batch-last", "channel-sliced", "offset",
                                  "expanded"])
def test_non_contiguous_input(device, dtype, view):
    x = dict(_views(device, dtype))[view].detach().requires_grad_()
    assert x.shape == (2, 4, 7, 6) and not x.is_contiguous()
    w = make((5, 4, 3, 3), dtype, device)
    b = make((5,), dtype, device)
    check_against_torch(cnnops.conv2d, F.conv2d, (x, w, b), {"stride": (2, 1), "padding": 1})


@pytest.mark.parametrize("dtype", dtype_params())
def test_non_contiguous_weight_and_bias(device, dtype):
    x = make((2, 4, 7, 6), dtype, device)
    w = torch.randn(3, 5, 8, 4, dtype=dtype, device=device).permute(1, 3, 0, 2)[..., ::3].detach()
    w.requires_grad_()
    assert w.shape == (5, 4, 3, 3) and not w.is_contiguous()
    b = torch.randn(10, dtype=dtype, device=device)[::2].detach().requires_grad_()
    check_against_torch(cnnops.conv2d, F.conv2d, (x, w, b), {"padding": 1})


@pytest.mark.parametrize("dtype", dtype_params())
def test_non_contiguous_grad_output(device, dtype):
    x = make((2, 4, 7, 6), dtype, device)
    w = make((5, 4, 3, 3), dtype, device)
    b = make((5,), dtype, device)
    check_against_torch(cnnops.conv2d, F.conv2d, (x, w, b), {"padding": 1},
                        grad_output_transform=lambda g: torch.cat([g, g], -1)[..., ::2])
    check_against_torch(cnnops.conv2d, F.conv2d, (x, w, b), {"padding": 1},
                        grad_output_transform=lambda g: g.transpose(0, 1).contiguous().transpose(0, 1))


def test_expanded_grad_output_from_sum(device):
    """y.sum().backward() hands the backward a grad with all-zero strides."""
    x = make((2, 4, 7, 6), torch.float64, device)
    w = make((5, 4, 3, 3), torch.float64, device)
    b = make((5,), torch.float64, device)
    cnnops.conv2d(x, w, b, padding=1).sum().backward()
    ref_out, (gx, gw, gb) = reference(F.conv2d, x, w, b, padding=1,
                                      grad_output=torch.ones(2, 5, 7, 6, dtype=torch.float64))
    assert_close(x.grad, gx, what="grad input")
    assert_close(w.grad, gw, what="grad weight")
    assert_close(b.grad, gb, what="grad bias")


@pytest.mark.parametrize("x_cl", [False, True])
@pytest.mark.parametrize("dtype", dtype_params())
def test_output_memory_format_matches_torch(device, x_cl, dtype):
    x = torch.randn(2, 4, 6, 5, dtype=dtype, device=device)
    w = torch.randn(6, 4, 3, 3, dtype=dtype, device=device)
    if x_cl:
        x = x.to(memory_format=torch.channels_last)
    y, t = cnnops.conv2d(x, w, padding=1), F.conv2d(x, w, padding=1)
    assert memory_format_of(y) == memory_format_of(t)
    assert y.stride() == t.stride()


# ----------------------------------------------------------------------------- which grads

@pytest.mark.parametrize("need", ["x", "w", "b", "xw", "wb"])
def test_partial_requires_grad(device, need):
    x = make((2, 4, 7, 6), torch.float64, device, requires_grad="x" in need)
    w = make((5, 4, 3, 3), torch.float64, device, requires_grad="w" in need)
    b = make((5,), torch.float64, device, requires_grad="b" in need)
    check_against_torch(cnnops.conv2d, F.conv2d, (x, w, b), {"stride": 2, "padding": 1})


# ----------------------------------------------------------------------------- empty batch

@pytest.mark.parametrize("dtype", dtype_params())
@pytest.mark.parametrize("x_cl", [False, True])
@pytest.mark.parametrize("kwargs", [{}, {"stride": 2, "padding": 1, "groups": 2}, {"padding": "same"}],
                         ids=["plain", "strided-grouped", "same"])
def test_empty_batch(device, dtype, x_cl, kwargs):
    groups = kwargs.get("groups", 1)
    x = make((0, 4, 7, 6), dtype, device, channels_last=x_cl)
    w = make((6, 4 // groups, 3, 3), dtype, device)
    b = make((6,), dtype, device)
    y = cnnops.conv2d(x, w, b, **kwargs)
    t = F.conv2d(x.detach(), w.detach(), b.detach(), **kwargs)
    assert y.shape == t.shape and y.shape[0] == 0 and y.dtype == dtype
    y.sum().backward()
    assert x.grad.shape == x.shape
    # no samples: the weight and bias gradients are exactly zero, as torch's
    assert torch.equal(w.grad, torch.zeros_like(w))
    assert torch.equal(b.grad, torch.zeros_like(b))


def test_empty_batch_memory_format(device):
    x = torch.randn(0, 4, 6, 5, device=device)
    w = torch.randn(6, 4, 3, 3, device=device).to(memory_format=torch.channels_last)
    assert cnnops.conv2d(x, w).stride() == F.conv2d(x, w).stride()


# ----------------------------------------------------------------------------- threads

@pytest.mark.parametrize("dtype", dtype_params())
def test_independent_of_thread_count(device, dtype, restore_threads):
    x = make((3, 16, 12, 11), dtype, device)
    w = make((24, 16, 3, 3), dtype, device)
    b = make((24,), dtype, device)
    g = torch.randn(3, 24, 6, 6, dtype=dtype, device=device)
    results = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        y = cnnops.conv2d(x, w, b, stride=2, padding=1)
        results.append((y, *torch.autograd.grad(y, (x, w, b), g)))
    torch.set_num_threads(restore_threads)
    ref = reference(F.conv2d, x, w, b, stride=2, padding=1, grad_output=g)
    refs = [ref[0], *ref[1]]
    rtol, atol = (1e-12, 1e-12) if dtype == torch.float64 else (1e-5, 1e-5)
    for one, two, r in zip(*results, refs):
        scale = max(1.0, r.abs().max().item())
        torch.testing.assert_close(one, two, rtol=rtol, atol=atol * scale)
        assert_close(one, r, dtype)


# ----------------------------------------------------------------------------- float16 / bfloat16 (CUDA)

@pytest.mark.parametrize("dtype", low_precision_params())
@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("x_shape,w_shape,kwargs", [
    ((4, 16, 14, 13), (24, 16, 3, 3), dict(padding=1)),
    ((2, 32, 15, 15), (48, 16, 3, 3), dict(stride=2, padding=1, groups=2)),
    ((3, 40, 9, 10), (72, 40, 1, 1), {}),
    ((2, 8, 17, 16), (16, 8, 3, 2), dict(padding=(2, 1), dilation=2)),
    ((2, 3, 30, 30), (16, 3, 7, 7), dict(stride=2, padding=3)),
], ids=["3x3", "strided-grouped", "1x1", "dilated", "stem"])
def test_low_precision_cuda(device, dtype, layout, x_shape, w_shape, kwargs):
    x, w = low_precision_conv_inputs(device, dtype, layout, x_shape, w_shape)
    b = make((w_shape[0],), dtype, device)
    check_low_precision(cnnops.conv2d, F.conv2d, (x, w, b), kwargs)
