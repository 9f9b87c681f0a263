"""cnnops.separable_conv2d and cnnops.nn.SeparableConv2d: depthwise then 1x1 pointwise
(Keras SeparableConv2D), against torch's two grouped convolutions in float64."""
import math

import pytest
import torch
import torch.nn.functional as F

import cnnops
from conftest import (
    check_against_torch,
    check_low_precision,
    device_params,
    low_precision_params,
    make,
)

CL = torch.channels_last
pytestmark = [pytest.mark.depthwise, pytest.mark.conv2d]  # depthwise_fprop, then conv2d_fprop


def torch_separable(x, dw, pw, b=None, stride=1, padding=0, dilation=1):
    y = F.conv2d(x, dw, None, stride, padding, dilation, groups=x.shape[-3])
    return F.conv2d(y, pw, b)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("M", [1, 2])
@pytest.mark.parametrize("stride,padding,dilation", [(1, 1, 1), (2, 0, 1), (1, "same", 2), ((2, 1), (1, 2), 1)])
@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("device", device_params())
def test_matches_torch(device, dtype, M, stride, padding, dilation, layout, bias):
    C, K = 3, 5
    x = make((2, C, 9, 8), dtype, device, channels_last=layout == "cl")
    dw, pw = make((C * M, 1, 3, 3), dtype, device), make((K, C * M, 1, 1), dtype, device)
    b = make((K,), dtype, device) if bias else None
    check_against_torch(cnnops.separable_conv2d, torch_separable, (x, dw, pw, b),
                        dict(stride=stride, padding=padding, dilation=dilation), dtype)


def test_unbatched_batch_zero_and_strided_same():
    x = make((3, 9, 8))
    dw, pw = make((3, 1, 3, 3)), make((4, 3, 1, 1))
    check_against_torch(cnnops.separable_conv2d, torch_separable, (x, dw, pw), dict(padding=1))
    y = cnnops.separable_conv2d(torch.randn(0, 3, 9, 8, dtype=torch.float64), dw, pw, padding="same", stride=2)
    assert y.shape == (0, 4, 5, 4)
    y = cnnops.separable_conv2d(x.unsqueeze(0), dw, pw, padding="same", stride=2)
    ref = torch_separable(F.pad(x.unsqueeze(0), [0, 1, 1, 1]), dw, pw, stride=2)
    torch.testing.assert_close(y, ref)


def test_errors():
    x = torch.randn(1, 3, 8, 8)
    with pytest.raises(ValueError, match="pointwise_weight"):
        cnnops.separable_conv2d(x, torch.randn(3, 1, 3, 3), torch.randn(4, 3, 3, 3))
    with pytest.raises(ValueError, match="weight"):
        cnnops.separable_conv2d(x, torch.randn(4, 1, 3, 3), torch.randn(4, 4, 1, 1))
    with pytest.raises(ValueError, match="channels"):
        cnnops.separable_conv2d(x, torch.randn(6, 1, 3, 3), torch.randn(4, 3, 1, 1))


def test_module_parameters_and_init():
    torch.manual_seed(0)
    m = cnnops.nn.SeparableConv2d(4, 6, 3, stride=2, padding="same", depth_multiplier=2)
    assert [n for n, _ in m.named_parameters()] == ["depthwise_weight", "pointwise_weight", "bias"]
    assert m.depthwise_weight.shape == (8, 1, 3, 3) and m.pointwise_weight.shape == (6, 8, 1, 1)
    # kaiming_uniform(a=sqrt(5)) bound = 1/sqrt(fan_in), as torch.nn.Conv2d
    assert m.depthwise_weight.abs().max() <= 1 / math.sqrt(9)
    assert m.pointwise_weight.abs().max() <= 1 / math.sqrt(8)
    assert m.bias.abs().max() <= 1 / math.sqrt(8)
    assert m(torch.randn(2, 4, 9, 9)).shape == (2, 6, 5, 5)
    assert cnnops.nn.SeparableConv2d(4, 6, 3, bias=False).bias is None


def test_gradcheck_gradgradcheck_and_compile():
    x = make((1, 2, 6, 5))
    dw, pw, b = make((4, 1, 3, 3)), make((3, 4, 1, 1)), make((3,))
    fn = lambda *t: cnnops.separable_conv2d(*t, padding=1, stride=(1, 2))  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, dw, pw, b))
    assert torch.autograd.gradgradcheck(fn, (x, dw, pw, b))
    net = torch.nn.Sequential(cnnops.nn.SeparableConv2d(2, 3, 3, padding="same"), torch.nn.ReLU())
    torch._dynamo.reset()
    xc = torch.randn(2, 2, 7, 7)
    torch.testing.assert_close(torch.compile(net, fullgraph=True, backend="aot_eager")(xc), net(xc))


@pytest.mark.parametrize("dtype", low_precision_params())
@pytest.mark.parametrize("layout", ["nchw", "cl"])
def test_low_precision_cuda(dtype, layout):
    x = make((2, 32, 13, 12), dtype, "cuda", channels_last=layout == "cl")
    dw, pw, b = make((64, 1, 3, 3), dtype, "cuda"), make((48, 64, 1, 1), dtype, "cuda"), make((48,), dtype, "cuda")
    check_low_precision(cnnops.separable_conv2d, torch_separable, (x, dw, pw, b), dict(padding=1))
