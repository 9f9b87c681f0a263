"""Property tests: random valid configurations match torch (forward and every gradient,
float64); random invalid ones are refused with ValueError/TypeError/RuntimeError, as torch
refuses them, and never crash the process."""
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, note
from hypothesis import strategies as st

import cnnops
from conftest import check_against_torch

REFUSALS = (ValueError, TypeError, RuntimeError)

pytestmark = [pytest.mark.conv2d,
              pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")]


def pairs(lo, hi):
    return st.tuples(st.integers(lo, hi), st.integers(lo, hi))


def as_arg(draw, pair):
    """An int when both are equal and the draw says so, else the tuple: both spellings."""
    if pair[0] == pair[1] and draw(st.booleans()):
        return pair[0]
    return tuple(pair)


def make_input(draw, shape, dtype=torch.float64):
    """A leaf of `shape` in a drawn layout: contiguous, channels_last, sliced or permuted."""
    layout = draw(st.sampled_from(["contiguous", "channels_last", "sliced", "permuted"]))
    N, C, H, W = shape
    if layout == "channels_last":
        x = torch.randn(shape, dtype=dtype).to(memory_format=torch.channels_last)
    elif layout == "sliced":
        x = torch.randn(N, C, H, 2 * W, dtype=dtype)[..., ::2]
    elif layout == "permuted":
        x = torch.randn(N, C, W, H, dtype=dtype).transpose(2, 3)
    else:
        x = torch.randn(shape, dtype=dtype)
    note(f"input layout {layout}, strides {x.stride()}")
    return x.detach().requires_grad_()


# ----------------------------------------------------------------------------- valid conv2d

@st.composite
def conv2d_configs(draw):
    groups = draw(st.integers(1, 3))
    cg, kg = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kernel = draw(pairs(1, 4))
    stride = draw(pairs(1, 3))
    dilation = draw(pairs(1, 3))
    mode = draw(st.sampled_from(["explicit", "explicit", "valid", "same"]))
    padding = draw(pairs(0, 2)) if mode == "explicit" else (0, 0)
    size = []
    for a in range(2):
        eff = dilation[a] * (kernel[a] - 1) + 1
        lo = max(1, eff - 2 * padding[a]) if mode != "same" else 1
        size.append(draw(st.integers(lo, lo + 5)))
    N = draw(st.sampled_from([0, 1, 1, 2, 2, 3]))
    return dict(N=N, C=cg * groups, K=kg * groups, H=size[0], W=size[1], kernel=kernel,
                stride=stride, dilation=dilation, groups=groups, mode=mode, padding=padding,
                bias=draw(st.booleans()))


def tf_same(size, kernel, stride, dilation):
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


@given(cfg=conv2d_configs(), data=st.data())
def test_conv2d_valid_matches_torch(cfg, data):
    note(cfg)
    x = make_input(data.draw, (cfg["N"], cfg["C"], cfg["H"], cfg["W"]))
    w = torch.randn(cfg["K"], cfg["C"] // cfg["groups"], *cfg["kernel"], dtype=torch.float64)
    if data.draw(st.booleans()):
        w = w.to(memory_format=torch.channels_last)
    w.requires_grad_()
    b = torch.randn(cfg["K"], dtype=torch.float64, requires_grad=True) if cfg["bias"] else None
    stride, dilation = as_arg(data.draw, cfg["stride"]), as_arg(data.draw, cfg["dilation"])
    padding = {"explicit": as_arg(data.draw, cfg["padding"]), "valid": "valid", "same": "same"}[cfg["mode"]]
    unbatched = cfg["N"] == 1 and data.draw(st.booleans())

    def ours(x, w, b):
        return cnnops.conv2d(x[0] if unbatched else x, w, b, stride, padding, dilation, cfg["groups"])

    def theirs(x, w, b):
        x = x[0] if unbatched else x
        if cfg["mode"] == "same" and cfg["stride"] != (1, 1):  # torch has no strided 'same'
            t, bo = tf_same(cfg["H"], cfg["kernel"][0], cfg["stride"][0], cfg["dilation"][0])
            le, r = tf_same(cfg["W"], cfg["kernel"][1], cfg["stride"][1], cfg["dilation"][1])
            return F.conv2d(F.pad(x, (le, r, t, bo)), w, b, stride, 0, dilation, cfg["groups"])
        return F.conv2d(x, w, b, stride, padding, dilation, cfg["groups"])

    y = check_against_torch(ours, theirs, (x, w, b))
    if cfg["mode"] == "same":
        assert y.shape[-2:] == (math.ceil(cfg["H"] / cfg["stride"][0]), math.ceil(cfg["W"] / cfg["stride"][1]))


# ----------------------------------------------------------------------------- valid conv_transpose2d

@st.composite
def conv_transpose2d_configs(draw):
    groups = draw(st.integers(1, 3))
    cg, kg = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kernel = draw(pairs(1, 4))
    stride = draw(pairs(1, 3))
    dilation = draw(pairs(1, 3))
    padding, output_padding, size = [], [], []
    for a in range(2):
        H = draw(st.integers(1, 5))
        op = draw(st.integers(0, max(stride[a], dilation[a]) - 1))
        full = (H - 1) * stride[a] + dilation[a] * (kernel[a] - 1) + op + 1
        padding.append(draw(st.integers(0, min(3, (full - 1) // 2))))  # output size >= 1
        output_padding.append(op)
        size.append(H)
    N = draw(st.sampled_from([0, 1, 1, 2, 2, 3]))
    return dict(N=N, C=cg * groups, K=kg * groups, H=size[0], W=size[1], kernel=kernel,
                stride=stride, dilation=dilation, groups=groups, padding=tuple(padding),
                output_padding=tuple(output_padding), bias=draw(st.booleans()))


@given(cfg=conv_transpose2d_configs(), data=st.data())
def test_conv_transpose2d_valid_matches_torch(cfg, data):
    note(cfg)
    x = make_input(data.draw, (cfg["N"], cfg["C"], cfg["H"], cfg["W"]))
    w = torch.randn(cfg["C"], cfg["K"] // cfg["groups"], *cfg["kernel"], dtype=torch.float64)
    if data.draw(st.booleans()):
        w = w.to(memory_format=torch.channels_last)
    w.requires_grad_()
    b = torch.randn(cfg["K"], dtype=torch.float64, requires_grad=True) if cfg["bias"] else None
    kwargs = dict(stride=as_arg(data.draw, cfg["stride"]), padding=as_arg(data.draw, cfg["padding"]),
                  output_padding=as_arg(data.draw, cfg["output_padding"]), groups=cfg["groups"],
                  dilation=as_arg(data.draw, cfg["dilation"]))
    unbatched = cfg["N"] == 1 and data.draw(st.booleans())

    def ours(x, w, b, **kw):
        return cnnops.conv_transpose2d(x[0] if unbatched else x, w, b, **kw)

    def theirs(x, w, b, **kw):
        return F.conv_transpose2d(x[0] if unbatched else x, w, b, **kw)

    check_against_torch(ours, theirs, (x, w, b), kwargs)


# ----------------------------------------------------------------------------- invalid configurations

CONV2D_BREAKS = ["negative-padding", "zero-stride", "negative-stride", "zero-dilation", "bad-groups",
                 "channels-vs-groups", "channels-vs-weight", "out-channels-vs-groups", "kernel-too-large",
                 "input-rank", "weight-rank", "dtype-mismatch", "bias-dtype", "bias-shape", "integer",
                 "half", "bad-padding-string"]
CNNOPS_ONLY = {"integer", "half"}  # torch's CPU conv accepts these dtypes; cnnops' CPU kernels do not


def _refused(fn):
    try:
        fn()
    except REFUSALS as e:
        return e
    return None


@given(cfg=conv2d_configs(), brk=st.sampled_from(CONV2D_BREAKS), data=st.data())
def test_conv2d_invalid_refused(cfg, brk, data):
    note((cfg, brk))
    # N >= 1: with an empty batch torch skips some checks (e.g. it accepts mixed dtypes)
    N, C, K, H, W, g = max(cfg["N"], 1), cfg["C"], cfg["K"], cfg["H"], cfg["W"], cfg["groups"]
    kernel = list(cfg["kernel"])
    stride, dilation, padding = list(cfg["stride"]), list(cfg["dilation"]), list(cfg["padding"])
    x_shape, w_shape = [N, C, H, W], [K, C // g, *kernel]
    x_dtype = w_dtype = b_dtype = torch.float64
    b_shape = [K]
    axis = data.draw(st.integers(0, 1))
    if brk == "negative-padding":
        padding[axis] = data.draw(st.integers(-3, -1))
    elif brk == "zero-stride":
        stride[axis] = 0
    elif brk == "negative-stride":
        stride[axis] = data.draw(st.integers(-3, -1))
    elif brk == "zero-dilation":
        dilation[axis] = data.draw(st.integers(-2, 0))
    elif brk == "bad-groups":
        g = data.draw(st.integers(-2, 0))
    elif brk == "channels-vs-groups":   # C is no multiple of groups = 2
        g, w_shape[0], x_shape[1] = 2, 2 * K, 2 * w_shape[1] + 1
    elif brk == "channels-vs-weight":
        x_shape[1] = C + data.draw(st.integers(1, 3))
    elif brk == "out-channels-vs-groups":
        g, x_shape[1], w_shape[0] = 2, 2 * w_shape[1], 2 * K + 1
    elif brk == "kernel-too-large":
        size = (H, W)[axis] + 2 * padding[axis]
        w_shape[2 + axis] = size // dilation[axis] + 2
    elif brk == "input-rank":
        x_shape = data.draw(st.sampled_from([[C, H], [1, N, C, H, W], [H]]))
    elif brk == "weight-rank":
        w_shape = data.draw(st.sampled_from([w_shape[:3], [1, *w_shape], w_shape[:2]]))
    elif brk == "dtype-mismatch":
        w_dtype = torch.float32
    elif brk == "bias-dtype":
        b_dtype = torch.float32
    elif brk == "bias-shape":
        b_shape = data.draw(st.sampled_from([[K + 1], [1, K], []]))
    elif brk == "integer":
        x_dtype = w_dtype = b_dtype = data.draw(st.sampled_from([torch.int64, torch.int32]))
    elif brk == "half":
        x_dtype = w_dtype = b_dtype = data.draw(st.sampled_from([torch.float16, torch.bfloat16]))
    pad_arg = data.draw(st.sampled_from(["bad", "Same", "VALID"])) if brk == "bad-padding-string" \
        else tuple(padding)
    x = torch.randn(x_shape).to(x_dtype)
    w = torch.randn(w_shape).to(w_dtype)
    b = torch.randn(b_shape).to(b_dtype) if (cfg["bias"] or brk.startswith("bias")) else None
    args = (x, w, b, tuple(stride), pad_arg, tuple(dilation), g)
    note(f"shapes x {list(x.shape)} w {list(w.shape)}")

    ours = _refused(lambda: cnnops.conv2d(*args))
    assert ours is not None, f"cnnops accepted {brk}"
    if brk not in CNNOPS_ONLY:
        assert _refused(lambda: F.conv2d(*args)) is not None, f"torch accepted {brk}"


CONV_TRANSPOSE2D_BREAKS = ["negative-padding", "zero-stride", "zero-dilation", "bad-groups",
                           "channels-vs-weight", "channels-vs-groups", "output-padding-too-large",
                           "negative-output-padding", "output-too-small", "input-rank", "weight-rank",
                           "dtype-mismatch", "bias-shape", "integer", "half", "padding-string"]


@given(cfg=conv_transpose2d_configs(), brk=st.sampled_from(CONV_TRANSPOSE2D_BREAKS), data=st.data())
def test_conv_transpose2d_invalid_refused(cfg, brk, data):
    note((cfg, brk))
    # N >= 1: with an empty batch torch skips some checks (e.g. it accepts mixed dtypes)
    N, C, K, H, W, g = max(cfg["N"], 1), cfg["C"], cfg["K"], cfg["H"], cfg["W"], cfg["groups"]
    stride, dilation = list(cfg["stride"]), list(cfg["dilation"])
    padding, output_padding = list(cfg["padding"]), list(cfg["output_padding"])
    x_shape, w_shape = [N, C, H, W], [C, K // g, *cfg["kernel"]]
    x_dtype = w_dtype = torch.float64
    b_shape = [K]
    axis = data.draw(st.integers(0, 1))
    if brk == "negative-padding":
        padding[axis] = data.draw(st.integers(-3, -1))
    elif brk == "zero-stride":
        stride[axis] = data.draw(st.integers(-2, 0))
        output_padding = [0, 0]
    elif brk == "zero-dilation":
        dilation[axis] = data.draw(st.integers(-2, 0))
        output_padding = [0, 0]
    elif brk == "bad-groups":
        g = data.draw(st.integers(-2, 0))
    elif brk == "channels-vs-weight":
        x_shape[1] = C + data.draw(st.integers(1, 3))
    elif brk == "channels-vs-groups":   # in_channels no multiple of groups
        c = C if C > 1 else 3
        x_shape[1] = w_shape[0] = c
        g = 2 if c % 2 else c + 1
    elif brk == "output-padding-too-large":
        output_padding[axis] = max(stride[axis], dilation[axis]) + data.draw(st.integers(0, 2))
    elif brk == "negative-output-padding":
        output_padding[axis] = data.draw(st.integers(-2, -1))
    elif brk == "output-too-small":
        full = ((H, W)[axis] - 1) * stride[axis] + dilation[axis] * (cfg["kernel"][axis] - 1) \
            + output_padding[axis] + 1
        padding[axis] = full // 2 + data.draw(st.integers(1, 3))   # output size <= 0
    elif brk == "input-rank":
        x_shape = data.draw(st.sampled_from([[C, H], [1, N, C, H, W]]))
    elif brk == "weight-rank":
        w_shape = data.draw(st.sampled_from([w_shape[:3], [1, *w_shape]]))
    elif brk == "dtype-mismatch":
        w_dtype = torch.float32
    elif brk == "bias-shape":
        b_shape = data.draw(st.sampled_from([[K + 1], [1, K]]))
    elif brk == "integer":
        x_dtype = w_dtype = torch.int64
    elif brk == "half":
        x_dtype = w_dtype = data.draw(st.sampled_from([torch.float16, torch.bfloat16]))
    x = torch.randn(x_shape).to(x_dtype)
    w = torch.randn(w_shape).to(w_dtype)
    b = torch.randn(b_shape).to(x_dtype) if (cfg["bias"] or brk == "bias-shape") else None
    pad_arg = "same" if brk == "padding-string" else tuple(padding)
    args = (x, w, b, tuple(stride), pad_arg, tuple(output_padding), g, tuple(dilation))
    note(f"shapes x {list(x.shape)} w {list(w.shape)}")

    ours = _refused(lambda: cnnops.conv_transpose2d(*args))
    assert ours is not None, f"cnnops accepted {brk}"
    if brk not in CNNOPS_ONLY:
        assert _refused(lambda: F.conv_transpose2d(*args)) is not None, f"torch accepted {brk}"
