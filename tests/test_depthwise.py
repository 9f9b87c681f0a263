"""Depthwise convolution: cnnops.depthwise_conv2d and cnnops.conv2d(groups=C), which routes
to the depthwise kernels, against torch.nn.functional.conv2d (float64 reference); opcheck,
torch.compile, gradcheck/gradgradcheck, errors and hypothesis fuzzing."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, note
from hypothesis import strategies as st

import cnnops
from conftest import (
    check_against_torch,
    check_low_precision,
    device_params,
    low_precision_params,
    make,
)

ops = torch.ops.cnnops
CL = torch.channels_last


def torch_dw(x, w, b=None, **kw):
    return F.conv2d(x, w, b, groups=x.shape[-3], **kw)


def run(dtype, x_shape, M, kernel=(3, 3), bias=True, x_cl=False, w_cl=False, via_conv2d=False,
        sliced=False, device="cpu", **kw):
    C = x_shape[-3]
    x = make(x_shape, dtype, device, channels_last=x_cl)
    if sliced:
        x = torch.randn(*x_shape[:-1], 2 * x_shape[-1], dtype=dtype, device=device)[..., ::2].requires_grad_()
    w = make((C * M, 1, *kernel), dtype, device, channels_last=w_cl)
    b = make((C * M,), dtype, device) if bias else None
    if via_conv2d:
        ours = lambda x, w, b, **k: cnnops.conv2d(x, w, b, groups=C, **k)  # noqa: E731
    else:
        ours = cnnops.depthwise_conv2d
    return check_against_torch(ours, torch_dw, (x, w, b), kw, dtype)


@pytest.mark.parametrize("M", [1, 2, 3])
@pytest.mark.parametrize("stride", [1, 2, (1, 3)])
@pytest.mark.parametrize("padding", [0, 1, (2, 0), "same"])
@pytest.mark.parametrize("dilation", [1, (2, 1)])
@pytest.mark.parametrize("layout", ["nchw", "cl", "sliced"])
@pytest.mark.parametrize("device", device_params())
def test_grid_float64(device, M, stride, padding, dilation, layout):
    if padding == "same" and stride != 1:
        pytest.skip("torch has no strided 'same'")
    run(torch.float64, (2, 4, 9, 8), M, (3, 2), bias=M != 2, x_cl=layout == "cl",
        sliced=layout == "sliced", device=device, stride=stride, padding=padding, dilation=dilation)


@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("shape,M", [((2, 16, 12, 11), 1), ((2, 40, 7, 7), 1), ((1, 5, 9, 9), 4)])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("device", device_params())
def test_float32_via_conv2d(device, layout, shape, M, stride):
    run(torch.float32, shape, M, x_cl=layout == "cl", w_cl=layout == "cl", via_conv2d=True,
        device=device, stride=stride, padding=1)


def test_conv2d_dispatches_to_depthwise():
    from conftest import OpNames

    x, w = torch.randn(1, 4, 5, 5), torch.randn(8, 1, 3, 3)
    with OpNames() as rec:
        cnnops.conv2d(x, w, groups=4)
    assert rec.seen == ["cnnops.depthwise_fprop"]


@pytest.mark.parametrize("device", device_params())
def test_unbatched_and_batch_zero(device):
    run(torch.float64, (3, 7, 6), 2, device=device, padding=1)
    x = torch.randn(0, 3, 7, 6, device=device, requires_grad=True)
    w = torch.randn(6, 1, 3, 3, device=device, requires_grad=True)
    y = cnnops.depthwise_conv2d(x, w, padding=1)
    assert y.shape == (0, 6, 7, 6)
    y.sum().backward()
    assert torch.equal(w.grad, torch.zeros_like(w))


def test_strided_same_keras():
    x = make((2, 3, 9, 8))
    w = make((3, 1, 3, 3))
    y = cnnops.depthwise_conv2d(x, w, padding="same", stride=2)
    ref = torch_dw(F.pad(x, [0, 1, 1, 1]), w, stride=2)  # W=8: total 1 (end); H=9: total 2
    torch.testing.assert_close(y, ref)


@pytest.mark.parametrize("fn,args,exc,match", [
    ("dw", ((2, 4, 8, 8), (4, 2, 3, 3)), ValueError, "weight"),
    ("dw", ((2, 4, 8, 8), (6, 1, 3, 3)), ValueError, "weight"),
    ("dw", ((2, 4, 2, 2), (4, 1, 3, 3)), ValueError, "kernel"),
    ("dw", ((2, 0, 8, 8), (4, 1, 3, 3)), ValueError, "input"),
    ("dw", ((8, 8), (4, 1, 3, 3)), ValueError, "input"),
])
def test_errors(fn, args, exc, match):
    x, w = torch.randn(*args[0]), torch.randn(*args[1])
    with pytest.raises(exc, match=match):
        cnnops.depthwise_conv2d(x, w)
    with pytest.raises(TypeError, match="weight"):
        cnnops.depthwise_conv2d(torch.randn(1, 2, 5, 5), torch.randn(2, 1, 3, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="bias"):
        cnnops.depthwise_conv2d(torch.randn(1, 2, 5, 5), torch.randn(2, 1, 3, 3), torch.randn(3))
    with pytest.raises(ValueError, match="stride"):
        cnnops.depthwise_conv2d(torch.randn(1, 2, 5, 5), torch.randn(2, 1, 3, 3), stride=0)


# ----------------------------------------------------------------------------- citizenship

def opcheck(op, args):
    result = torch.library.opcheck(op, args)
    failed = {k: v for k, v in result.items() if v != "SUCCESS"}
    assert not failed, failed


def leaf(*shape, cl=False, device="cpu"):
    t = torch.randn(*shape, dtype=torch.float64, device=device)
    return (t.to(memory_format=CL) if cl else t).requires_grad_()


@pytest.mark.parametrize("case", ["plain", "cl", "strided-cropped", "multiplier"])
@pytest.mark.parametrize("device", device_params())
def test_opcheck(device, case):
    cl = case == "cl"
    C, M = 3, 2 if case == "multiplier" else 1
    x, w, b = leaf(2, C, 7, 6, cl=cl, device=device), leaf(C * M, 1, 3, 2, cl=cl, device=device), leaf(C * M, device=device)
    stride, pad, dil = [1, 1], [1, 1, 0, 1], [1, 1]
    if case == "strided-cropped":
        stride, pad, dil = [2, 1], [1, -1, 0, -1], [1, 2]
    opcheck(ops.depthwise_fprop.default, (x, w, b, stride, pad, dil))
    y = ops.depthwise_fprop(x.detach(), w.detach(), None, stride, pad, dil)
    dy = leaf(*y.shape, cl=cl, device=device)
    opcheck(ops.depthwise_dgrad.default, (dy, w, C, [7, 6], stride, [pad[0], pad[2]], dil))
    opcheck(ops.depthwise_wgrad.default, (dy, x, [3, 2], stride, [pad[0], pad[2]], dil))
    opcheck(ops.depthwise_backward.default, (dy, x, w, stride, [pad[0], pad[2]], dil))


@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("M", [1, 2])
@pytest.mark.parametrize("conf", ["strided", "same"])
@pytest.mark.parametrize("device", device_params())
def test_gradcheck_gradgradcheck(device, layout, M, conf):
    # "same": stride 1 with dy the size of x, where depthwise_backward runs its fused kernels
    cl = layout == "cl"
    x, w, b = leaf(2, 3, 6, 5, cl=cl, device=device), leaf(3 * M, 1, 3, 2, cl=cl, device=device), leaf(3 * M, device=device)
    kw = dict(stride=(2, 1), padding=1, dilation=(1, 2)) if conf == "strided" else dict(padding="same")
    fn = lambda x, w, b: cnnops.depthwise_conv2d(x, w, b, **kw)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, w, b))
    assert torch.autograd.gradgradcheck(fn, (x, w, b))


def same_bits(a, b):
    ints = {torch.float32: torch.int32, torch.float64: torch.int64}[a.dtype]
    return a.shape == b.shape and a.stride() == b.stride() and torch.equal(a.view(ints), b.view(ints))


@pytest.mark.parametrize("layout", ["nchw", "cl", "sliced"])
@pytest.mark.parametrize("C,M", [(37, 1), (130, 1), (5, 2)])
@pytest.mark.parametrize("conf", [
    dict(stride=[1, 1], padding=[1, 1], dilation=[1, 1]),   # fused (dy the size of x)
    dict(stride=[1, 1], padding=[2, 1], dilation=[2, 1]),   # fused, dilated
    dict(stride=[1, 1], padding=[0, 0], dilation=[1, 1]),   # dy smaller: dgrad then wgrad
    dict(stride=[2, 1], padding=[1, 1], dilation=[1, 1]),   # strided: dgrad then wgrad
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_backward_matches_separate_passes(layout, C, M, conf, dtype):
    """depthwise_backward (one pass over dy where it can) gives the bits of depthwise_dgrad
    and depthwise_wgrad; 3 images of 9 rows make more dy rows than the weight gradient's
    16 fixed chunks."""
    x = torch.randn(3, C, 9, 11, dtype=dtype)
    if layout == "cl":
        x = x.to(memory_format=CL)
    if layout == "sliced":
        x = torch.randn(3, C, 9, 22, dtype=dtype)[..., ::2]
    w = torch.randn(C * M, 1, 3, 3, dtype=dtype)
    pad4 = [conf["padding"][0]] * 2 + [conf["padding"][1]] * 2
    y = ops.depthwise_fprop(x, w, None, conf["stride"], pad4, conf["dilation"])
    dy = torch.randn(y.shape, dtype=dtype).to(memory_format=CL if layout == "cl" else torch.contiguous_format)
    args = (conf["stride"], conf["padding"], conf["dilation"])
    dx, dw = ops.depthwise_backward(dy, x, w, *args)
    assert same_bits(dx, ops.depthwise_dgrad(dy, w, C, list(x.shape[2:]), *args))
    assert same_bits(dw, ops.depthwise_wgrad(dy, x, [3, 3], *args))
    xt, wt = x.double().requires_grad_(), w.double().requires_grad_()
    ref = torch.autograd.grad(F.conv2d(xt, wt, None, conf["stride"], conf["padding"], conf["dilation"], C),
                              (xt, wt), dy.double())
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(dx.double(), ref[0], **tol)
    torch.testing.assert_close(dw.double(), ref[1], **tol)


@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("wanted", ["input", "weight"])
@pytest.mark.parametrize("device", device_params())
def test_one_gradient_alone(device, layout, wanted):
    """With only one input needing a gradient the backward runs that pass alone."""
    x = make((2, 6, 8, 7), torch.float64, device, channels_last=layout == "cl")
    w = make((6, 1, 3, 3), torch.float64, device)
    (x if wanted == "weight" else w).requires_grad_(False)
    target = x if wanted == "input" else w
    (got,) = torch.autograd.grad(cnnops.depthwise_conv2d(x, w, padding=1).sum(), target)
    (want,) = torch.autograd.grad(torch_dw(x, w, padding=1).sum(), target)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("needs", ["bias", "input+bias", "weight+bias"])
@pytest.mark.parametrize("device", device_params())
def test_bias_gradient_with_any_other(device, needs):
    """The bias gradient alone or with one other: the C++ autograd kernel
    (csrc/torch/depthwise_autograd.cpp) counts only the tensors present."""
    x = make((2, 6, 8, 7), torch.float64, device, channels_last=True)
    w = make((12, 1, 3, 3), torch.float64, device)
    b = torch.randn(12, dtype=torch.float64, device=device, requires_grad=True)
    x.requires_grad_("input" in needs)
    w.requires_grad_("weight" in needs)
    targets = [t for t in (x, w, b) if t.requires_grad]
    got = torch.autograd.grad(cnnops.depthwise_conv2d(x, w, b, padding=1).square().sum(), targets)
    want = torch.autograd.grad(torch_dw(x, w, b, padding=1).square().sum(), targets)
    for g, e in zip(got, want):
        torch.testing.assert_close(g, e)


@pytest.mark.parametrize("device", device_params())
def test_compile_fullgraph(device):
    net = torch.nn.Sequential(cnnops.nn.DepthwiseConv2d(4, 3, padding=1, depth_multiplier=2),
                              torch.nn.ReLU(), cnnops.nn.Conv2d(8, 8, 3, groups=8, stride=2)).to(device)
    x = torch.randn(2, 4, 10, 9, device=device, requires_grad=True)
    torch._dynamo.reset()
    compiled = torch.compile(net, fullgraph=True, backend="aot_eager")
    y, yc = net(x), compiled(x)
    torch.testing.assert_close(yc, y)
    g = torch.autograd.grad(y.sum(), [x, *net.parameters()])
    gc = torch.autograd.grad(yc.sum(), [x, *net.parameters()])
    for a, e in zip(gc, g):
        torch.testing.assert_close(a, e)


def test_module():
    m = cnnops.nn.DepthwiseConv2d(4, 3, stride=2, padding="same", depth_multiplier=2)
    assert m.weight.shape == (8, 1, 3, 3) and m.bias.shape == (8,)
    assert m(torch.randn(1, 4, 9, 9)).shape == (1, 8, 5, 5)


# ----------------------------------------------------------------------------- fuzzing

@st.composite
def configs(draw):
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    size = [max(1, d[a] * (k[a] - 1) + 1 - 2 * p[a]) + draw(st.integers(0, 5)) for a in range(2)]
    return dict(N=draw(st.sampled_from([0, 1, 2])), C=draw(st.integers(1, 5)),
                M=draw(st.integers(1, 3)), size=size, k=k,
                kw=dict(stride=s, padding=p, dilation=d),
                layout=draw(st.sampled_from(["nchw", "cl", "sliced"])), bias=draw(st.booleans()))


@given(cfg=configs())
def test_fuzz_matches_torch(cfg):
    note(cfg)
    run(torch.float64, (cfg["N"], cfg["C"], *cfg["size"]), cfg["M"], cfg["k"], cfg["bias"],
        x_cl=cfg["layout"] == "cl", sliced=cfg["layout"] == "sliced", **cfg["kw"])


@given(C=st.integers(1, 3), K=st.integers(0, 7), wc=st.integers(0, 2), k=st.integers(0, 4),
       s=st.integers(-1, 2), p=st.integers(-1, 2), h=st.integers(1, 5))
def test_fuzz_errors_like_torch(C, K, wc, k, s, p, h):
    x, w = torch.randn(1, C, h, 5), torch.randn(K, wc, k, k)
    kw = dict(stride=s, padding=p)
    try:
        expected = F.conv2d(x, w, groups=C, **kw)
    except RuntimeError:
        with pytest.raises((ValueError, RuntimeError, TypeError)):
            cnnops.depthwise_conv2d(x, w, **kw)
        return
    torch.testing.assert_close(cnnops.depthwise_conv2d(x, w, **kw), expected)


@pytest.mark.parametrize("make_args,match", [
    (lambda x, w, dy: (dy[:1], x, w), "batch size"),
    (lambda x, w, dy: (dy, x, w[:, :, :, :, None]), "weight"),
    (lambda x, w, dy: (dy, x, w[:5]), "weight"),
    (lambda x, w, dy: (dy.float(), x, w), "dtype|grad_output"),
    (lambda x, w, dy: (dy, x[0], w), "input"),
])
def test_backward_op_errors(make_args, match):
    """Bad arguments to depthwise_backward raise a ValueError/TypeError naming the argument,
    from the op and from its fake kernel alike."""
    x, w = torch.randn(2, 6, 7, 7, dtype=torch.float64), torch.randn(6, 1, 3, 3, dtype=torch.float64)
    dy = torch.randn(2, 6, 7, 7, dtype=torch.float64)
    args = make_args(x, w, dy) + ([1, 1], [1, 1], [1, 1])
    with pytest.raises((ValueError, TypeError), match=match):
        ops.depthwise_backward(*args)
    from torch._subclasses.fake_tensor import FakeTensorMode
    with FakeTensorMode() as mode, pytest.raises((ValueError, TypeError), match=match):
        fake = [mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args]
        ops.depthwise_backward(*fake)


# ----------------------------------------------------------------------------- float16 / bfloat16 (CUDA)

@pytest.mark.parametrize("dtype", low_precision_params())
@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("x_shape,M,kernel,kwargs", [
    ((2, 32, 14, 13), 1, (3, 3), dict(padding=1)),
    ((2, 24, 15, 16), 2, (5, 5), dict(stride=2, padding=2)),
    ((3, 20, 9, 10), 1, (3, 2), dict(padding=(2, 1), dilation=(2, 1))),
], ids=["3x3", "5x5s2-M2", "dilated"])
def test_low_precision_cuda(dtype, layout, x_shape, M, kernel, kwargs):
    cl = layout == "cl"
    C = x_shape[1]
    x = make(x_shape, dtype, "cuda", channels_last=cl)
    w, b = make((C * M, 1, *kernel), dtype, "cuda"), make((C * M,), dtype, "cuda")
    check_low_precision(cnnops.depthwise_conv2d, torch_dw, (x, w, b), kwargs)
