"""gradcheck and gradgradcheck (float64, tiny sizes) of the public functions and of each
registered op: the backward formulas are the cnnops ops themselves, so double backward
must be right too."""
import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

import cnnops
from conftest import device_params

ops = torch.ops.cnnops
pytestmark = [pytest.mark.conv2d, pytest.mark.parametrize("device", device_params())]


@pytest.fixture(autouse=True)
def _one_thread():
    """gradcheck makes thousands of tiny calls: on a loaded 2-core machine, waking a second
    OpenMP thread for each can cost a scheduler slice (torch's own ops too), so run these
    single-threaded; the thread-count tests live in test_conv2d / test_conv_transpose2d."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def leaf(*shape, device="cpu", channels_last=False):
    x = torch.randn(*shape, dtype=torch.float64, device=device)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    return x.requires_grad_()


def both(fn, inputs):
    assert gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)
    assert gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


CONV2D_CONFIGS = [
    pytest.param(dict(), id="plain"),
    pytest.param(dict(stride=2), id="stride2"),
    pytest.param(dict(stride=(2, 1), padding=(1, 2)), id="stride-padding"),
    pytest.param(dict(dilation=2, padding=1), id="dilation"),
    pytest.param(dict(groups=2, padding=1), id="groups"),
    pytest.param(dict(groups=4, stride=2), id="depthwise"),
    pytest.param(dict(padding="same", dilation=(1, 2)), id="same"),
    pytest.param(dict(padding="same", stride=2), id="same-strided"),
]


@pytest.mark.parametrize("kwargs", CONV2D_CONFIGS)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_conv2d(device, kwargs, bias):
    g = kwargs.get("groups", 1)
    k = 2 if g == 1 else 4
    x = leaf(2, 4, 5, 4, device=device)
    w = leaf(k, 4 // g, 3, 2, device=device)
    b = leaf(k, device=device) if bias else None
    inputs = (x, w, b) if bias else (x, w)
    both(lambda *a: cnnops.conv2d(*a, **kwargs) if bias else cnnops.conv2d(*a, None, **kwargs),
         inputs)


def test_conv2d_unbatched_channels_last(device):
    x = leaf(1, 3, 5, 5, device=device, channels_last=True)
    w = leaf(2, 3, 3, 3, device=device, channels_last=True)
    both(lambda x, w: cnnops.conv2d(x, w, stride=2, padding=1), (x, w))
    both(lambda x, w: cnnops.conv2d(x[0], w, padding=1), (x, w))


CONV_TRANSPOSE2D_CONFIGS = [
    pytest.param(dict(), id="plain"),
    pytest.param(dict(stride=2, output_padding=1), id="stride2-output-padding"),
    pytest.param(dict(stride=(2, 3), padding=(1, 0), output_padding=(0, 2)), id="stride-padding"),
    pytest.param(dict(dilation=2, padding=1), id="dilation"),
    pytest.param(dict(groups=2, stride=2), id="groups"),
    pytest.param(dict(groups=4, padding=1), id="depthwise"),
]


@pytest.mark.parametrize("kwargs", CONV_TRANSPOSE2D_CONFIGS)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_conv_transpose2d(device, kwargs, bias):
    g = kwargs.get("groups", 1)
    x = leaf(2, 4, 4, 3, device=device)
    w = leaf(4, (2 if g == 1 else 4) // g, 3, 2, device=device)
    b = leaf(w.shape[1] * g, device=device) if bias else None
    inputs = (x, w, b) if bias else (x, w)
    both(lambda *a: (cnnops.conv_transpose2d(*a, **kwargs) if bias
                     else cnnops.conv_transpose2d(*a, None, **kwargs)), inputs)


# ----------------------------------------------------------------------------- the ops directly

@pytest.mark.parametrize("stride,padding,dilation,groups", [
    ([1, 1], [0, 0, 0, 0], [1, 1], 1),
    ([2, 1], [1, 0, 2, 1], [1, 2], 2),
    ([1, 2], [0, -1, 1, -1], [1, 1], 1),  # negative end padding crops trailing rows/cols
    ([2, 2], [2, 1, 0, 0], [2, 1], 4),
])
def test_fprop_op(device, stride, padding, dilation, groups):
    x = leaf(2, 4, 6, 5, device=device)
    w = leaf(4, 4 // groups, 2, 3, device=device)
    b = leaf(4, device=device)
    both(lambda x, w, b: ops.conv2d_fprop(x, w, b, stride, padding, dilation, groups), (x, w, b))
    both(lambda x, w: ops.conv2d_fprop(x, w, None, stride, padding, dilation, groups), (x, w))


@pytest.mark.parametrize("input_size,stride,padding,dilation,groups", [
    ([6, 5], [1, 1], [0, 0], [1, 1], 1),
    ([7, 6], [2, 2], [1, 1], [1, 1], 2),  # input_size larger than the smallest one (output_padding)
    ([5, 5], [1, 2], [0, 1], [2, 1], 4),
])
def test_dgrad_op(device, input_size, stride, padding, dilation, groups):
    w = leaf(4, 4 // groups, 2, 3, device=device)
    kh, kw = w.shape[2:]
    P = (input_size[0] + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    Q = (input_size[1] + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    dy = leaf(2, 4, P, Q, device=device)
    b = leaf(4, device=device)
    both(lambda dy, w, b: ops.conv2d_dgrad(dy, w, b, input_size, stride, padding, dilation, groups),
         (dy, w, b))
    both(lambda dy, w: ops.conv2d_dgrad(dy, w, None, input_size, stride, padding, dilation, groups),
         (dy, w))


@pytest.mark.parametrize("kernel_size,stride,padding,dilation,groups", [
    ([3, 3], [1, 1], [0, 0], [1, 1], 1),
    ([2, 3], [2, 1], [1, 1], [1, 2], 2),
    ([3, 1], [2, 2], [0, 1], [1, 1], 4),
])
def test_wgrad_op(device, kernel_size, stride, padding, dilation, groups):
    x = leaf(2, 4, 6, 5, device=device)
    P = (6 + 2 * padding[0] - dilation[0] * (kernel_size[0] - 1) - 1) // stride[0] + 1
    Q = (5 + 2 * padding[1] - dilation[1] * (kernel_size[1] - 1) - 1) // stride[1] + 1
    dy = leaf(2, 4, P, Q, device=device)
    both(lambda dy, x: ops.conv2d_wgrad(dy, x, kernel_size, stride, padding, dilation, groups),
         (dy, x))


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 1, 1), (0, 3, 2, 2)])
def test_bias_grad_op(device, shape):
    dy = leaf(*shape, device=device)
    both(ops.conv2d_bias_grad, (dy,))


def test_bias_grad_op_non_contiguous(device):
    dy = torch.randn(2, 6, 4, 5, dtype=torch.float64, device=device)[:, ::2].detach().requires_grad_()
    both(ops.conv2d_bias_grad, (dy,))
    torch.testing.assert_close(ops.conv2d_bias_grad(dy), dy.sum((0, 2, 3)), rtol=1e-12, atol=1e-12)
