"""Refusals of the conv2d family (conv2d, conv_transpose2d, nn.Conv2d and the conv2d_* ops):
every bad argument raises ValueError/TypeError/RuntimeError with a message that names the
argument (and, where it has one, the value received); the registered ops check their own
arguments, and their fake kernels raise the same errors. The depthwise and max_pool2d
refusals are in test_depthwise.py and test_max_pool2d.py."""
import re

import pytest
import torch
import torch.nn.functional as F
from torch._subclasses.fake_tensor import FakeTensorMode

import cnnops
from conftest import device_params

ops = torch.ops.cnnops
D = torch.float64
pytestmark = pytest.mark.conv2d


def t(*shape, dtype=D, device="cpu"):
    return torch.randn(*shape, dtype=dtype, device=device)


# Each case: (id, call(F-like module, device), exception types, regex the message must match,
# whether torch.nn.functional refuses it too: True, or the one device where it does).
CONV2D_CASES = [
    ("input-rank-2", lambda m, d: m.conv2d(t(6, 6, device=d), t(6, 4, 3, 3, device=d)),
     ValueError, r"input.*2-D", True),
    ("input-rank-5", lambda m, d: m.conv2d(t(1, 2, 4, 6, 6, device=d), t(6, 4, 3, 3, device=d)),
     ValueError, r"input.*5-D", True),
    ("weight-rank-3", lambda m, d: m.conv2d(t(2, 4, 6, 6, device=d), t(6, 4, 3, device=d)),
     ValueError, r"weight.*4-D.*3-D", True),
    ("channels", lambda m, d: m.conv2d(t(2, 4, 6, 6, device=d), t(6, 3, 3, 3, device=d)),
     ValueError, r"input.*weight\.size\(1\) \* groups = 3 \* 1 = 3 channels, got 4", True),
    ("channels-groups", lambda m, d: m.conv2d(t(2, 4, 6, 6, device=d), t(6, 4, 3, 3, device=d), groups=2),
     ValueError, r"groups.*8 channels, got 4", True),
    ("out-channels-groups", lambda m, d: m.conv2d(t(2, 4, 6, 6, device=d), t(5, 2, 3, 3, device=d), groups=2),
     ValueError, r"weight\.size\(0\) = 5.*divisible by groups = 2", True),
    ("stride-0", lambda m, d: m.conv2d(t(2, 4, 6, 6, device=d), t(6, 4, 3, 3, device=d), stride=0),
     ValueError, r"stride.*positive.*\[0, 0\]", True),
    ("stride-negative", lambda m, d: m.conv2d(t(2, 4, 6, 6, device=d), t(6, 4, 3, 3, device=d), stride=(1, -2)),
     ValueError, r"stride.*positive.*\[1, -2\]", True),
    ("stride-3-tuple", lambda m, d: m.conv2d(t(2, 4, 6, 6, device=d), t(6, 4, 3, 3, device=d), stride=(1, 1, 1)),
     ValueError, r"stride.*\(1, 1, 1\)", True),
    ("stride-float", lambda m, d: m.conv2d(t(2, 4, 6, 6, device=d), t(6, 4, 3, 3, device=d), stride=1.5),
     ValueError, r"stride.*1\.5", True),
    ("dilation-0", lambda m, d: m.conv2d(t(2, 4, 6, 6, device=d), t(6, 4, 3, 3, device=d), dilation=(0, 1)),
     ValueError, r"dilation.*positive.*\[0, 1\]", True),
    ("groups-0", lambda m, d: m.conv2d(t(2, 4, 6, 6, device=d), t(6, 4, 3, 3, device=d), groups=0),
     ValueError, r"groups.*positive.*0", True),
    ("groups-negative", lambda m, d: m.conv2d(t(2, 4, 6, 6, device=d), t(6, 4, 3, 3, device=d), groups=-2),
     ValueError, r"groups.*positive.*-2", True),
    ("padding-negative", lambda m, d: m.conv2d(t(2, 4, 6, 6, device=d), t(6, 4, 3, 3, device=d), padding=-1),
     ValueError, r"padding.*non-negative.*-1", True),
    ("padding-negative-w", lambda m, d: m.conv2d(t(2, 4, 6, 6, device=d), t(6, 4, 3, 3, device=d), padding=(1, -1)),
     ValueError, r"padding.*non-negative.*\(1, -1\)", True),
    ("padding-string", lambda m, d: m.conv2d(t(2, 4, 6, 6, device=d), t(6, 4, 3, 3, device=d), padding="full"),
     ValueError, r"padding.*'full'", True),
    ("kernel-too-large", lambda m, d: m.conv2d(t(2, 4, 6, 6, device=d), t(6, 4, 7, 3, device=d)),
     ValueError, r"kernel \(7 x 3\).*larger than the padded input \(6 x 6\)", True),
    ("dilated-kernel-too-large", lambda m, d: m.conv2d(t(2, 4, 6, 6, device=d), t(6, 4, 3, 3, device=d),
                                                        padding=(0, 1), dilation=3),
     ValueError, r"dilated kernel \(7 x 7\).*padded input \(6 x 8\)", True),
    ("weight-dtype", lambda m, d: m.conv2d(t(2, 4, 6, 6, device=d), t(6, 4, 3, 3, dtype=torch.float32, device=d)),
     TypeError, r"weight.*same dtype as input \(Double\), got Float", True),
    ("bias-dtype", lambda m, d: m.conv2d(t(2, 4, 6, 6, device=d), t(6, 4, 3, 3, device=d),
                                         t(6, dtype=torch.float32, device=d)),
     TypeError, r"bias.*same dtype.*got Float", True),
    ("bias-shape", lambda m, d: m.conv2d(t(2, 4, 6, 6, device=d), t(6, 4, 3, 3, device=d), t(5, device=d)),
     ValueError, r"bias.*6 elements, got shape \[5\]", True),
    ("bias-rank", lambda m, d: m.conv2d(t(2, 4, 6, 6, device=d), t(6, 4, 3, 3, device=d), t(1, 6, device=d)),
     ValueError, r"bias.*1-D.*\[1, 6\]", True),
    ("zero-height", lambda m, d: m.conv2d(t(2, 4, 0, 6, device=d), t(6, 4, 3, 3, device=d), padding=1),
     ValueError, r"input.*non-zero.*\[2, 4, 0, 6\]", True),
    ("non-tensor-input", lambda m, d: m.conv2d([[[1.0]]], t(6, 4, 3, 3, device=d)),
     TypeError, r"input.*Tensor.*list", True),
    ("non-tensor-weight", lambda m, d: m.conv2d(t(2, 4, 6, 6, device=d), [[1.0]]),
     TypeError, r"weight.*Tensor.*list", True),
]

# CPU-only refusals torch does not share: cnnops' CPU kernels are float32/float64 only.
CPU_DTYPE_CASES = [
    ("int64", lambda m, d: m.conv2d(t(2, 4, 6, 6, device=d).long(), t(6, 4, 3, 3, device=d).long()),
     TypeError, r"input.*float32 or float64.*got Long", False),
    ("int32", lambda m, d: m.conv2d(t(2, 4, 6, 6, device=d).int(), t(6, 4, 3, 3, device=d).int()),
     TypeError, r"input.*float32 or float64.*got Int", False),
    ("float16", lambda m, d: m.conv2d(t(2, 4, 6, 6, device=d).half(), t(6, 4, 3, 3, device=d).half()),
     TypeError, r"input.*float32 or float64 on the CPU.*got Half", False),
    ("bfloat16", lambda m, d: m.conv2d(t(2, 4, 6, 6, device=d).bfloat16(), t(6, 4, 3, 3, device=d).bfloat16()),
     TypeError, r"input.*float32 or float64 on the CPU.*got BFloat16", False),
    ("T-int64", lambda m, d: m.conv_transpose2d(t(2, 4, 6, 6, device=d).long(), t(4, 6, 3, 3, device=d).long()),
     TypeError, r"input.*float32 or float64.*got Long", False),
    ("T-float16", lambda m, d: m.conv_transpose2d(t(2, 4, 6, 6, device=d).half(), t(4, 6, 3, 3, device=d).half()),
     TypeError, r"input.*float32 or float64 on the CPU.*got Half", False),
]

CONV_TRANSPOSE2D_CASES = [
    ("T-input-rank", lambda m, d: m.conv_transpose2d(t(6, 6, device=d), t(4, 6, 3, 3, device=d)),
     ValueError, r"input.*2-D", True),
    ("T-weight-rank", lambda m, d: m.conv_transpose2d(t(2, 4, 6, 6, device=d), t(4, 6, 3, device=d)),
     ValueError, r"weight.*4-D", True),
    ("T-channels", lambda m, d: m.conv_transpose2d(t(2, 4, 6, 6, device=d), t(3, 6, 3, 3, device=d)),
     ValueError, r"input.*weight\.size\(0\) = 3 channels, got 4", True),
    ("T-groups-divisible", lambda m, d: m.conv_transpose2d(t(2, 4, 6, 6, device=d), t(4, 6, 3, 3, device=d),
                                                          groups=3),
     ValueError, r"divisible by groups = 3", True),
    ("T-groups-0", lambda m, d: m.conv_transpose2d(t(2, 4, 6, 6, device=d), t(4, 6, 3, 3, device=d), groups=0),
     ValueError, r"groups.*positive.*0", True),
    ("T-stride-0", lambda m, d: m.conv_transpose2d(t(2, 4, 6, 6, device=d), t(4, 6, 3, 3, device=d), stride=0),
     ValueError, r"stride.*positive", True),
    ("T-dilation-0", lambda m, d: m.conv_transpose2d(t(2, 4, 6, 6, device=d), t(4, 6, 3, 3, device=d),
                                                    dilation=0),
     ValueError, r"dilation.*positive", True),
    ("T-padding-negative", lambda m, d: m.conv_transpose2d(t(2, 4, 6, 6, device=d), t(4, 6, 3, 3, device=d),
                                                          padding=(0, -1)),
     ValueError, r"padding.*non-negative.*-1", True),
    ("T-padding-string", lambda m, d: m.conv_transpose2d(t(2, 4, 6, 6, device=d), t(4, 6, 3, 3, device=d),
                                                        padding="same"),
     ValueError, r"padding.*'same'", True),
    ("T-output-padding-stride", lambda m, d: m.conv_transpose2d(t(2, 4, 6, 6, device=d),
                                                               t(4, 6, 3, 3, device=d), stride=2,
                                                               output_padding=2),
     ValueError, r"output_padding.*\[2, 2\].*smaller than.*stride \[2, 2\].*dilation \[1, 1\]", True),
    ("T-output-padding-stride1", lambda m, d: m.conv_transpose2d(t(2, 4, 6, 6, device=d),
                                                                t(4, 6, 3, 3, device=d), output_padding=(0, 1)),
     ValueError, r"output_padding.*\[0, 1\]", True),
    ("T-output-padding-dilation", lambda m, d: m.conv_transpose2d(t(2, 4, 6, 6, device=d),
                                                                 t(4, 6, 3, 3, device=d), stride=(1, 2),
                                                                 dilation=2, output_padding=(2, 1)),
     ValueError, r"output_padding.*\[2, 1\].*dilation \[2, 2\]", True),
    ("T-output-padding-negative", lambda m, d: m.conv_transpose2d(t(2, 4, 6, 6, device=d),
                                                                 t(4, 6, 3, 3, device=d), stride=2,
                                                                 output_padding=-1),
     ValueError, r"output_padding.*non-negative", True),
    ("T-output-size", lambda m, d: m.conv_transpose2d(t(2, 4, 6, 6, device=d), t(4, 6, 3, 3, device=d),
                                                     padding=4),
     ValueError, r"output size would be 0.*padding \[4, 4\]", "cpu"),  # torch's CUDA path returns an empty tensor
    ("T-weight-dtype", lambda m, d: m.conv_transpose2d(t(2, 4, 6, 6, device=d),
                                                      t(4, 6, 3, 3, dtype=torch.float32, device=d)),
     TypeError, r"weight.*same dtype as input \(Double\), got Float", True),
    ("T-bias-shape", lambda m, d: m.conv_transpose2d(t(2, 4, 6, 6, device=d), t(4, 6, 3, 3, device=d),
                                                    t(4, device=d)),
     ValueError, r"bias.*6 elements, got shape \[4\]", True),
    ("T-zero-width", lambda m, d: m.conv_transpose2d(t(2, 4, 6, 0, device=d), t(4, 6, 3, 3, device=d)),
     ValueError, r"input.*non-zero.*\[2, 4, 6, 0\]", True),
    ("T-non-tensor-input", lambda m, d: m.conv_transpose2d([[[1.0]]], t(4, 6, 3, 3, device=d)),
     TypeError, r"input.*Tensor.*list", True),
    ("T-non-tensor-weight", lambda m, d: m.conv_transpose2d(t(2, 4, 6, 6, device=d), [[1.0]]),
     TypeError, r"weight.*Tensor.*list", True),
]


def _params(cases):
    return [pytest.param(*c[1:], id=c[0]) for c in cases]


@pytest.mark.parametrize("device", device_params())
@pytest.mark.parametrize("call,exc,pattern,torch_refuses",
                         _params(CONV2D_CASES + CONV_TRANSPOSE2D_CASES))
def test_functional_refusals(device, call, exc, pattern, torch_refuses):
    with pytest.raises(exc, match=pattern):
        call(cnnops, device)
    if torch_refuses is True or torch_refuses == device:
        with pytest.raises((ValueError, TypeError, RuntimeError)):
            call(F, device)


@pytest.mark.parametrize("call,exc,pattern,torch_refuses", _params(CPU_DTYPE_CASES))
def test_cpu_dtype_refusals(call, exc, pattern, torch_refuses):
    with pytest.raises(exc, match=pattern):
        call(cnnops, "cpu")


def test_messages_name_the_public_function():
    """Python-level refusals say which public function refused."""
    with pytest.raises(ValueError, match=r"^cnnops\.conv2d: "):
        cnnops.conv2d(t(2, 4, 6, 6), t(6, 4, 3, 3), stride=(1, 2, 3))
    with pytest.raises(ValueError, match=r"^cnnops\.conv_transpose2d: "):
        cnnops.conv_transpose2d(t(2, 4, 6, 6), t(4, 6, 3, 3), stride=2, output_padding=3)


def test_same_padding_with_stride_is_an_extension():
    """torch refuses padding='same' with stride > 1; cnnops accepts it (TF semantics)."""
    x, w = t(2, 4, 6, 6), t(6, 4, 3, 3)
    with pytest.raises(RuntimeError, match="same"):
        F.conv2d(x, w, stride=2, padding="same")
    assert cnnops.conv2d(x, w, stride=2, padding="same").shape == (2, 6, 3, 3)


def test_nn_refusals():
    with pytest.raises(ValueError, match="padding_mode"):
        cnnops.nn.Conv2d(4, 6, 3, stride=2, padding="same", padding_mode="reflect")
    with pytest.raises(ValueError, match="zeros"):
        cnnops.nn.ConvTranspose2d(4, 6, 3, padding_mode="reflect")(t(1, 4, 5, 5).float())
    with pytest.raises(ValueError, match="groups"):  # torch.nn's own constructor check
        cnnops.nn.Conv2d(4, 6, 3, groups=3)
    with pytest.raises((ValueError, RuntimeError), match="padding"):
        cnnops.nn.Conv2d(4, 6, 3, padding="full")


# ----------------------------------------------------------------------------- the ops directly

def _x():
    return t(2, 4, 6, 6)


def _w():
    return t(6, 4, 3, 3)


def _dy():
    return t(2, 6, 4, 4)


S, P4, P2, DIL = [1, 1], [0, 0, 0, 0], [0, 0], [1, 1]

OP_CASES = [
    # conv2d_fprop(input, weight, bias?, stride[2], padding[4], dilation[2], groups)
    ("fprop-input-rank", lambda: ops.conv2d_fprop(_x()[0], _w(), None, S, P4, DIL, 1),
     ValueError, r"conv2d_fprop: expected input to be 4-D.*3-D"),
    ("fprop-weight-rank", lambda: ops.conv2d_fprop(_x(), _w()[0], None, S, P4, DIL, 1),
     ValueError, r"conv2d_fprop: expected weight to be 4-D"),
    ("fprop-weight-empty", lambda: ops.conv2d_fprop(_x(), t(0, 4, 3, 3), None, S, P4, DIL, 1),
     ValueError, r"conv2d_fprop: expected weight to have non-zero sizes, got shape \[0, 4, 3, 3\]"),
    ("fprop-int", lambda: ops.conv2d_fprop(_x().long(), _w().long(), None, S, P4, DIL, 1),
     TypeError, r"conv2d_fprop: expected input to be float32 or float64 on the CPU, got Long"),
    ("fprop-half", lambda: ops.conv2d_fprop(_x().half(), _w().half(), None, S, P4, DIL, 1),
     TypeError, r"conv2d_fprop: expected input to be float32 or float64 on the CPU, got Half"),
    ("fprop-weight-dtype", lambda: ops.conv2d_fprop(_x(), _w().float(), None, S, P4, DIL, 1),
     TypeError, r"conv2d_fprop: expected weight to have the same dtype as input \(Double\), got Float"),
    ("fprop-stride", lambda: ops.conv2d_fprop(_x(), _w(), None, [1, 0], P4, DIL, 1),
     ValueError, r"conv2d_fprop: expected stride to be positive, got \[1, 0\]"),
    ("fprop-stride-len", lambda: ops.conv2d_fprop(_x(), _w(), None, [1, 1, 1], P4, DIL, 1),
     ValueError, r"conv2d_fprop: expected stride to have 2 elements, got \[1, 1, 1\]"),
    ("fprop-dilation", lambda: ops.conv2d_fprop(_x(), _w(), None, S, P4, [-1, 1], 1),
     ValueError, r"conv2d_fprop: expected dilation to be positive, got \[-1, 1\]"),
    ("fprop-groups", lambda: ops.conv2d_fprop(_x(), _w(), None, S, P4, DIL, 0),
     ValueError, r"conv2d_fprop: expected groups to be positive, got 0"),
    ("fprop-padding-len", lambda: ops.conv2d_fprop(_x(), _w(), None, S, [0, 0, 0], DIL, 1),
     ValueError, r"conv2d_fprop: expected padding to have 4 elements \(top, bottom, left, right\), got \[0, 0, 0\]"),
    ("fprop-padding-negative", lambda: ops.conv2d_fprop(_x(), _w(), None, S, [0, 0, -1, 0], DIL, 1),
     ValueError, r"conv2d_fprop: expected the top and left padding to be non-negative, got \[0, 0, -1, 0\]"),
    ("fprop-crop-too-much", lambda: ops.conv2d_fprop(_x(), _w(), None, S, [0, -4, 0, 0], DIL, 1),
     ValueError, r"conv2d_fprop: the dilated kernel \(3 x 3\) is larger than the padded input \(2 x 6\)"),
    ("fprop-channels", lambda: ops.conv2d_fprop(_x(), _w(), None, S, P4, DIL, 2),
     ValueError, r"conv2d_fprop: expected input to have weight.size\(1\) \* groups = 4 \* 2 = 8 channels"),
    ("fprop-out-channels", lambda: ops.conv2d_fprop(_x(), t(5, 1, 3, 3), None, S, P4, DIL, 4),
     ValueError, r"conv2d_fprop: expected out_channels \(weight.size\(0\) = 5\) to be divisible by groups = 4"),
    ("fprop-bias-shape", lambda: ops.conv2d_fprop(_x(), _w(), t(2), S, P4, DIL, 1),
     ValueError, r"conv2d_fprop: expected bias to be 1-D with 6 elements, got shape \[2\]"),
    ("fprop-bias-dtype", lambda: ops.conv2d_fprop(_x(), _w(), t(6).float(), S, P4, DIL, 1),
     TypeError, r"conv2d_fprop: expected bias to have the same dtype as input \(Double\), got Float"),
    ("fprop-zero-spatial", lambda: ops.conv2d_fprop(t(2, 4, 6, 0), _w(), None, S, [0, 0, 2, 2], DIL, 1),
     ValueError, r"conv2d_fprop: expected input to have non-zero channel and spatial sizes"),
    ("fprop-output-too-large", lambda: ops.conv2d_fprop(_x(), _w(), None, S, [0, 2**40, 0, 2**40], DIL, 1),
     ValueError, r"conv2d_fprop: output of shape .* has too many elements"),
    # conv2d_dgrad(grad_output, weight, bias?, input_size[2], stride, padding[2], dilation, groups)
    ("dgrad-rank", lambda: ops.conv2d_dgrad(_dy()[0], _w(), None, [6, 6], S, P2, DIL, 1),
     ValueError, r"conv2d_dgrad: expected grad_output to be 4-D"),
    ("dgrad-input-size", lambda: ops.conv2d_dgrad(_dy(), _w(), None, [6, 0], S, P2, DIL, 1),
     ValueError, r"conv2d_dgrad: expected input_size to be positive \(H, W\), got \[6, 0\]"),
    ("dgrad-input-size-len", lambda: ops.conv2d_dgrad(_dy(), _w(), None, [6], S, P2, DIL, 1),
     ValueError, r"conv2d_dgrad: expected input_size to have 2 elements, got \[6\]"),
    ("dgrad-padding", lambda: ops.conv2d_dgrad(_dy(), _w(), None, [6, 6], S, [-1, 0], DIL, 1),
     ValueError, r"conv2d_dgrad: expected padding to be non-negative \(top, left\), got \[-1, 0\]"),
    ("dgrad-stride", lambda: ops.conv2d_dgrad(_dy(), _w(), None, [6, 6], [0, 1], P2, DIL, 1),
     ValueError, r"conv2d_dgrad: expected stride to be positive"),
    ("dgrad-dilation", lambda: ops.conv2d_dgrad(_dy(), _w(), None, [6, 6], S, P2, [1, 0], 1),
     ValueError, r"conv2d_dgrad: expected dilation to be positive"),
    ("dgrad-groups", lambda: ops.conv2d_dgrad(_dy(), _w(), None, [6, 6], S, P2, DIL, -1),
     ValueError, r"conv2d_dgrad: expected groups to be positive, got -1"),
    ("dgrad-channels", lambda: ops.conv2d_dgrad(_dy()[:, :5], _w(), None, [6, 6], S, P2, DIL, 1),
     ValueError, r"conv2d_dgrad: expected grad_output to have weight.size\(0\) = 6 channels, got 5"),
    ("dgrad-groups-divisible", lambda: ops.conv2d_dgrad(_dy(), _w(), None, [6, 6], S, P2, DIL, 4),
     ValueError, r"conv2d_dgrad: expected weight.size\(0\) = 6 to be divisible by groups = 4"),
    ("dgrad-half", lambda: ops.conv2d_dgrad(_dy().half(), _w().half(), None, [6, 6], S, P2, DIL, 1),
     TypeError, r"conv2d_dgrad: expected grad_output to be float32 or float64 on the CPU, got Half"),
    ("dgrad-weight-dtype", lambda: ops.conv2d_dgrad(_dy(), _w().float(), None, [6, 6], S, P2, DIL, 1),
     TypeError, r"conv2d_dgrad: expected weight to have the same dtype as grad_output"),
    ("dgrad-bias", lambda: ops.conv2d_dgrad(_dy(), _w(), t(6), [6, 6], S, P2, DIL, 1),
     ValueError, r"conv2d_dgrad: expected bias to be 1-D with 4 elements, got shape \[6\]"),
    ("dgrad-zero-spatial", lambda: ops.conv2d_dgrad(t(2, 6, 0, 4), _w(), None, [6, 6], S, P2, DIL, 1),
     ValueError, r"conv2d_dgrad: expected grad_output to have non-zero channel and spatial sizes"),
    ("dgrad-output-too-large", lambda: ops.conv2d_dgrad(_dy(), _w(), None, [2**40, 2**40], S, P2, DIL, 1),
     ValueError, r"conv2d_dgrad: output of shape .* has too many elements"),
    # conv2d_wgrad(grad_output, input, kernel_size[2], stride, padding[2], dilation, groups)
    ("wgrad-rank", lambda: ops.conv2d_wgrad(_dy(), _x()[0], [3, 3], S, P2, DIL, 1),
     ValueError, r"conv2d_wgrad: expected input to be 4-D"),
    ("wgrad-dy-rank", lambda: ops.conv2d_wgrad(_dy()[0], _x(), [3, 3], S, P2, DIL, 1),
     ValueError, r"conv2d_wgrad: expected grad_output to be 4-D"),
    ("wgrad-kernel-size", lambda: ops.conv2d_wgrad(_dy(), _x(), [0, 3], S, P2, DIL, 1),
     ValueError, r"conv2d_wgrad: expected kernel_size to be positive, got \[0, 3\]"),
    ("wgrad-batch", lambda: ops.conv2d_wgrad(_dy()[:1], _x(), [3, 3], S, P2, DIL, 1),
     ValueError, r"conv2d_wgrad: expected grad_output and input to have the same batch size, got 1 and 2"),
    ("wgrad-groups", lambda: ops.conv2d_wgrad(_dy(), _x(), [3, 3], S, P2, DIL, 4),
     ValueError, r"conv2d_wgrad: expected input channels \(4\) and grad_output channels \(6\) to be divisible"),
    ("wgrad-stride", lambda: ops.conv2d_wgrad(_dy(), _x(), [3, 3], [1, -1], P2, DIL, 1),
     ValueError, r"conv2d_wgrad: expected stride to be positive"),
    ("wgrad-padding", lambda: ops.conv2d_wgrad(_dy(), _x(), [3, 3], S, [0, -2], DIL, 1),
     ValueError, r"conv2d_wgrad: expected padding to be non-negative"),
    ("wgrad-dtype", lambda: ops.conv2d_wgrad(_dy().float(), _x(), [3, 3], S, P2, DIL, 1),
     TypeError, r"conv2d_wgrad: expected grad_output to have the same dtype as input \(Double\), got Float"),
    ("wgrad-int", lambda: ops.conv2d_wgrad(_dy().int(), _x().int(), [3, 3], S, P2, DIL, 1),
     TypeError, r"conv2d_wgrad: expected input to be float32 or float64 on the CPU, got Int"),
    ("wgrad-zero-spatial", lambda: ops.conv2d_wgrad(_dy(), t(2, 4, 0, 6), [3, 3], S, P2, DIL, 1),
     ValueError, r"conv2d_wgrad: expected input to have non-zero channel and spatial sizes"),
    # conv2d_bias_grad(grad_output)
    ("bias-grad-rank", lambda: ops.conv2d_bias_grad(t(2, 6)),
     ValueError, r"conv2d_bias_grad: expected grad_output to be 4-D \(N, K, P, Q\), got a 2-D tensor"),
    ("bias-grad-int", lambda: ops.conv2d_bias_grad(_dy().long()),
     TypeError, r"conv2d_bias_grad: expected grad_output to be float32 or float64 on the CPU, got Long"),
]


@pytest.mark.parametrize("call,exc,pattern", [pytest.param(*c[1:], id=c[0]) for c in OP_CASES])
def test_op_refusals(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def _first_line(e):
    return str(e).splitlines()[0]


FAKE_CASES = [c for c in OP_CASES if c[0] in {
    "fprop-input-rank", "fprop-weight-dtype", "fprop-int", "fprop-stride", "fprop-padding-negative",
    "fprop-crop-too-much", "fprop-channels", "fprop-out-channels", "fprop-bias-shape", "fprop-bias-dtype",
    "fprop-zero-spatial", "dgrad-input-size", "dgrad-padding", "dgrad-channels", "dgrad-half",
    "dgrad-bias", "dgrad-groups", "wgrad-kernel-size", "wgrad-batch", "wgrad-groups", "wgrad-dtype",
    "bias-grad-rank", "bias-grad-int"}]


@pytest.mark.parametrize("call,exc,pattern", [pytest.param(*c[1:], id=c[0]) for c in FAKE_CASES])
def test_fake_kernels_refuse_alike(call, exc, pattern):
    """Under FakeTensorMode the fake kernel raises the same exception with the same message."""
    with pytest.raises(exc) as real:
        call()
    torch.manual_seed(0)
    with FakeTensorMode():
        with pytest.raises(exc) as fake:
            call()
    assert type(fake.value) is type(real.value)
    assert _first_line(fake.value) == _first_line(real.value)
    assert re.search(pattern, _first_line(fake.value))


@pytest.mark.parametrize("case", ["weight-dtype", "channels", "kernel-too-large", "bias-shape",
                                  "T-channels", "T-groups-divisible", "T-output-padding-stride"])
def test_fake_functional_refusals(case):
    """The public functions refuse fake tensors just as real ones (what torch.compile traces)."""
    _, call, exc, pattern, _ = next(c for c in CONV2D_CASES + CONV_TRANSPOSE2D_CASES if c[0] == case)
    with FakeTensorMode():
        with pytest.raises(exc, match=pattern):
            call(cnnops, "cpu")


def test_fake_kernel_shapes_match_real():
    """The fake kernels compute the same output shapes and strides as the real ops."""
    cl = torch.channels_last
    calls = [
        lambda x, w, dy: ops.conv2d_fprop(x, w, None, [2, 1], [1, 0, 2, 1], [1, 2], 2),
        lambda x, w, dy: ops.conv2d_fprop(x.to(memory_format=cl), w, None, [1, 1], [0, -1, 0, 0], [1, 1], 2),
        lambda x, w, dy: ops.conv2d_dgrad(dy, w, None, [7, 5], [1, 2], [1, 0], [1, 1], 2),
        lambda x, w, dy: ops.conv2d_dgrad(dy, w.to(memory_format=cl), None, [6, 6], [1, 1], [0, 0], [1, 1], 2),
        lambda x, w, dy: ops.conv2d_wgrad(dy, x, [3, 2], [1, 1], [0, 0], [1, 1], 2),
        lambda x, w, dy: ops.conv2d_wgrad(dy.to(memory_format=cl), x, [3, 3], [1, 1], [0, 0], [1, 1], 2),
        lambda x, w, dy: ops.conv2d_bias_grad(dy),
    ]
    x, w, dy = t(2, 4, 6, 6), t(6, 2, 3, 3), t(2, 6, 4, 4)
    mode = FakeTensorMode()
    fx, fw, fdy = (mode.from_tensor(a) for a in (x, w, dy))
    for call in calls:
        real = call(x, w, dy)
        with mode:
            fake = call(fx, fw, fdy)
        assert fake.shape == real.shape and fake.dtype == real.dtype
        assert fake.stride() == real.stride()


# ----------------------------------------------------------------------------- int64 overflow

def test_huge_dilation_refused():
    with pytest.raises(ValueError, match=r"dilated kernel .* is larger than the padded input"):
        cnnops.conv2d(t(2, 4, 6, 6), t(6, 4, 3, 3), dilation=(2**62, 1))


def test_huge_padding_message():
    # H + 2 * 2**62 overflows int64: the refusal must not report a wrapped (negative) size.
    with pytest.raises(ValueError, match="does not fit in int64") as e:
        cnnops.conv2d(t(2, 4, 6, 6), t(6, 4, 3, 3), padding=(2**62, 0))
    assert not re.search(r"\(-\d", str(e.value)), str(e.value)


def test_huge_sizes_refused_not_allocated():
    """Sizes whose product overflows are refused before allocating."""
    with pytest.raises(ValueError, match="too many elements"):
        cnnops.conv2d(t(2, 4, 6, 6), t(6, 4, 3, 3), padding=2**40)
    with pytest.raises(ValueError, match="too many elements"):
        cnnops.conv_transpose2d(t(2, 4, 6, 6), t(4, 6, 3, 3), stride=2**40)
