"""cnnops.max_pool2d against torch.nn.functional.max_pool2d: values and indices bit for bit,
gradients, NaN and tie rules, layouts, errors, 'same' padding, opcheck, torch.compile,
gradcheck/gradgradcheck and hypothesis fuzzing."""
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, note
from hypothesis import strategies as st

import cnnops
from conftest import OpNames, device_params, low_precision_params, memory_format_of

ops = torch.ops.cnnops
CL = torch.channels_last


def both(x, **kw):
    ours = cnnops.max_pool2d(x, return_indices=True, **kw)
    theirs = F.max_pool2d(x.detach(), return_indices=True, **kw)
    return ours, theirs


def has_empty_window(size, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Whether some window holds no input position (possible only with dilation). torch
    then scatters that window's gradient to an index outside it (or outside the plane);
    cnnops passes no gradient, so gradients are compared only without such windows."""
    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)

    k, d, p = pair(kernel_size), pair(dilation), pair(padding)
    s = pair(stride if stride is not None else kernel_size)
    for a in range(2):
        out = F.max_pool2d(torch.zeros(1, 1, *size), k, s, p, d, ceil_mode).shape[2 + a]
        for o in range(out):
            taps = [o * s[a] - p[a] + t * d[a] for t in range(k[a])]
            if not any(0 <= h < size[a] for h in taps):
                return True
    return False


def assert_same(x, **kw):
    """Values and indices identical to torch's, gradients equal, output layout as torch's."""
    x = x.detach().requires_grad_()
    (y, i), (ty, ti) = both(x, **kw)
    assert torch.equal(i, ti), (i, ti)
    torch.testing.assert_close(y, ty, rtol=0, atol=0, equal_nan=True)
    # without indices and gradient: the max_pool2d_values op, the same bits (NaN payloads too)
    yv = cnnops.max_pool2d(x.detach(), **kw)
    ints = {torch.float16: torch.int16, torch.bfloat16: torch.int16, torch.float32: torch.int32,
            torch.float64: torch.int64}[y.dtype]
    assert yv.shape == y.shape and torch.equal(yv.view(ints), y.detach().view(ints))
    if y.numel() > 1:
        assert memory_format_of(yv) == memory_format_of(ty)
    if y.numel() > 1:
        assert memory_format_of(y) == memory_format_of(ty)
    if has_empty_window(list(x.shape[2:]), **kw):
        return y
    g = torch.randn_like(y)
    (dx,) = torch.autograd.grad(y, x, g)
    xt = x.detach().clone().requires_grad_()
    (tdx,) = torch.autograd.grad(F.max_pool2d(xt, **kw), xt, g)
    # the CPU backward adds overlapping windows in torch's CPU order: the same bits; torch's
    # CUDA backward has its own order, so on CUDA only sums of several windows may round apart
    exact = dict(rtol=0, atol=0) if x.device.type == "cpu" else {}
    torch.testing.assert_close(dx, tdx, **exact)
    return y


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kernel,stride,padding,dilation", [
    (3, 2, 1, 1), (2, None, 0, 1), (3, 1, 1, 1), ((3, 2), (2, 1), (1, 0), 1), (3, 2, 1, 2),
    ((2, 3), 3, (1, 1), (2, 1)), (1, 1, 0, 1), (4, 3, 2, 1)])
@pytest.mark.parametrize("ceil_mode", [False, True], ids=["floor", "ceil"])
@pytest.mark.parametrize("layout", ["nchw", "cl", "sliced"])
@pytest.mark.parametrize("device", device_params())
def test_matches_torch(device, dtype, kernel, stride, padding, dilation, ceil_mode, layout):
    x = torch.randn(2, 3, 11, 10, dtype=dtype, device=device)
    if layout == "cl":
        x = x.to(memory_format=CL)
    if layout == "sliced":
        x = torch.randn(2, 6, 11, 20, dtype=dtype, device=device)[:, ::2, :, ::2]
    assert_same(x, kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
                ceil_mode=ceil_mode)


def test_ceil_mode_drops_window_starting_in_padding():
    x = torch.randn(1, 1, 6, 6)
    y = assert_same(x, kernel_size=2, stride=2, padding=1, ceil_mode=True)
    assert y.shape[2:] == (4, 4)


@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("device", device_params())
def test_nan_and_ties(device, layout):
    x = torch.zeros(1, 8, 6, 6, device=device)
    x[:, :, 1, 1] = float("nan")
    x[:, :, 2, 2] = float("nan")   # last NaN of the window wins
    x[:, :, 4, 4] = 5.0
    x[:, :, 4, 5] = 5.0            # first maximum wins
    x[:, :, 0, 4] = float("-inf")
    if layout == "cl":
        x = x.to(memory_format=CL)
    assert_same(x, kernel_size=3, stride=1, padding=1)
    assert_same(torch.full((1, 2, 4, 4), float("-inf"), device=device), kernel_size=3, stride=2, padding=1)


@pytest.mark.parametrize("device", device_params())
def test_large_channels_last(device):
    assert_same(torch.randn(2, 70, 9, 9, device=device).to(memory_format=CL), kernel_size=3, stride=2, padding=1)


@pytest.mark.parametrize("device", device_params())
def test_unbatched_and_batch_zero(device):
    x = torch.randn(3, 9, 8, dtype=torch.float64, device=device)
    (y, i), (ty, ti) = both(x, kernel_size=3, stride=2, padding=1)
    assert y.shape == ty.shape and torch.equal(y, ty) and torch.equal(i, ti)
    x0 = torch.randn(0, 3, 9, 8, device=device, requires_grad=True)
    y0, i0 = cnnops.max_pool2d(x0, 3, 2, 1, return_indices=True)
    assert y0.shape == (0, 3, 5, 4) and i0.dtype == torch.int64
    y0.sum().backward()
    assert x0.grad.shape == x0.shape


@pytest.mark.parametrize("size", [(9, 8), (7, 7), (10, 5)])
@pytest.mark.parametrize("kernel,stride", [(3, 2), (2, 2), (3, 1), (2, 3), ((3, 2), (2, 1))])
@pytest.mark.parametrize("device", device_params())
def test_same_padding(device, size, kernel, stride):
    """Keras semantics: output ceil(H / stride); the reference pads with -inf, extra at the end."""
    x = torch.randn(2, 3, *size, dtype=torch.float64, device=device)
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    s = (stride, stride) if isinstance(stride, int) else stride
    y, i = cnnops.max_pool2d(x, kernel, stride, padding="same", return_indices=True)
    pads = []
    for a in (1, 0):
        out = math.ceil(size[a] / s[a])
        total = max((out - 1) * s[a] + k[a] - size[a], 0)
        pads += [total // 2, total - total // 2]
    ref = F.max_pool2d(F.pad(x, pads, value=float("-inf")), k, s)
    assert y.shape[2:] == tuple(math.ceil(n / t) for n, t in zip(size, s))
    torch.testing.assert_close(y, ref, rtol=0, atol=0)
    assert i.min() >= 0 and i.max() < size[0] * size[1]
    torch.testing.assert_close(x.flatten(2).gather(2, i.flatten(2)).view_as(y), y, rtol=0, atol=0)


def test_module_matches_torch():
    torch_mod = torch.nn.MaxPool2d(3, 2, 1, return_indices=True, ceil_mode=True)
    ours = cnnops.nn.MaxPool2d(3, 2, 1, return_indices=True, ceil_mode=True)
    assert isinstance(ours, torch.nn.MaxPool2d) and repr(ours) == repr(torch_mod)
    x = torch.randn(2, 3, 10, 9)
    for a, b in zip(ours(x), torch_mod(x)):
        assert torch.equal(a, b)


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("kwargs,match", [
    (dict(kernel_size=3, padding=2), "padding"),
    (dict(kernel_size=0), "kernel_size"),
    (dict(kernel_size=2, stride=0), "stride"),
    (dict(kernel_size=2, dilation=0), "dilation"),
    (dict(kernel_size=9), "output size"),
    (dict(kernel_size=2, padding=-1), "padding"),
    (dict(kernel_size=2, padding="full"), "padding"),
])
def test_bad_arguments(kwargs, match):
    x = torch.randn(1, 2, 8, 8)
    with pytest.raises((ValueError, RuntimeError, TypeError)):
        F.max_pool2d(x, **kwargs)
    with pytest.raises(ValueError, match=match):
        cnnops.max_pool2d(x, **kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match="input"):
        cnnops.max_pool2d(torch.randn(1, 0, 8, 8), 2)
    with pytest.raises(ValueError, match="input"):
        cnnops.max_pool2d(torch.randn(8, 8), 2)
    with pytest.raises(TypeError, match="input"):
        cnnops.max_pool2d(torch.randn(1, 2, 8, 8).int(), 2)


@pytest.mark.parametrize("device", device_params())
def test_bwd_rejects_out_of_range_indices(device):
    dy = torch.randn(1, 2, 3, 3, device=device)
    for bad in (-1, 36):
        ind = torch.zeros(1, 2, 3, 3, dtype=torch.int64, device=device)
        ind[0, 1, 2, 2] = bad
        with pytest.raises(ValueError, match=r"index .*\[0, 36\)|\[0, 36\)"):
            ops.max_pool2d_bwd(dy, ind, [6, 6], [2, 2], [2, 2], [0, 0], [1, 1])
    with pytest.raises(TypeError, match="indices"):
        ops.max_pool2d_bwd(dy, torch.zeros(1, 2, 3, 3, dtype=torch.int32, device=device), [6, 6], [2, 2],
                           [2, 2], [0, 0], [1, 1])


# ----------------------------------------------------------------------------- citizenship

def opcheck(op, args):
    result = torch.library.opcheck(op, args)
    failed = {k: v for k, v in result.items() if v != "SUCCESS"}
    assert not failed, failed


@pytest.mark.parametrize("case", ["plain", "cl", "same-ceil", "sliced"])
@pytest.mark.parametrize("device", device_params())
def test_opcheck(device, case):
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64, device=device)
    conf = ([3, 3], [2, 2], [1, 1, 1, 1], [1, 1], False)
    if case == "cl":
        x = x.to(memory_format=CL)
    if case == "same-ceil":
        conf = ([3, 2], [2, 3], [1, 1, 0, 1], [1, 2], True)
    if case == "sliced":
        x = torch.randn(2, 3, 9, 16, dtype=torch.float64, device=device)[..., ::2]
    x.requires_grad_()
    opcheck(ops.max_pool2d_fwd.default, (x, *conf))
    opcheck(ops.max_pool2d_values.default, (x.detach(), *conf))
    y, ind = ops.max_pool2d_fwd(x.detach(), *conf)
    dy = torch.randn_like(y).requires_grad_()
    opcheck(ops.max_pool2d_bwd.default,
            (dy, ind, list(x.shape[2:]), conf[0], conf[1], [conf[2][0], conf[2][2]], conf[3]))


@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("device", device_params())
def test_gradcheck_gradgradcheck(device, layout):
    # distinct values so the arg max is stable under the finite-difference perturbation
    x = (torch.randperm(2 * 3 * 7 * 6, dtype=torch.float64, device=device) / 10).view(2, 3, 7, 6)
    if layout == "cl":
        x = x.to(memory_format=CL)
    x.requires_grad_()
    fn = lambda t: cnnops.max_pool2d(t, 3, 2, 1, dilation=(1, 2), ceil_mode=True)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("device", device_params())
def test_compile_fullgraph(device):
    net = torch.nn.Sequential(cnnops.nn.Conv2d(3, 4, 3, padding=1), cnnops.nn.MaxPool2d(3, 2, 1),
                              torch.nn.ReLU(), cnnops.nn.MaxPool2d(2, padding="same")).to(device)
    x = torch.randn(2, 3, 12, 11, device=device, requires_grad=True)
    torch._dynamo.reset()
    compiled = torch.compile(net, fullgraph=True, backend="aot_eager")
    y, yc = net(x), compiled(x)
    torch.testing.assert_close(yc, y)
    g, = torch.autograd.grad(y.sum(), x)
    gc, = torch.autograd.grad(yc.sum(), x)
    torch.testing.assert_close(gc, g)


# ----------------------------------------------------------------------------- fuzzing

@st.composite
def pool_configs(draw):
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    size = [draw(st.integers(d[a] * (k[a] - 1) + 1 - 2 * p[a] if d[a] * (k[a] - 1) + 1 - 2 * p[a] > 0 else 1, 9))
            for a in range(2)]
    return dict(N=draw(st.sampled_from([0, 1, 2])), C=draw(st.integers(1, 5)), size=size,
                kw=dict(kernel_size=k, stride=s, padding=p, dilation=d,
                        ceil_mode=draw(st.booleans())),
                layout=draw(st.sampled_from(["nchw", "cl", "sliced"])),
                dup=draw(st.booleans()))


@given(cfg=pool_configs())
def test_fuzz_matches_torch(cfg):
    note(cfg)
    shape = (cfg["N"], cfg["C"], *cfg["size"])
    x = torch.randn(shape, dtype=torch.float64)
    if cfg["dup"]:
        x = x.round()  # many ties
    if cfg["layout"] == "cl":
        x = x.to(memory_format=CL)
    if cfg["layout"] == "sliced":
        x = torch.cat([x, x], 3)[..., ::2]
    try:
        F.max_pool2d(x, **cfg["kw"])
    except RuntimeError:
        with pytest.raises((ValueError, RuntimeError)):
            cnnops.max_pool2d(x, **cfg["kw"])
        return
    if x.numel() == 0:
        y = cnnops.max_pool2d(x, **cfg["kw"])
        assert y.shape == F.max_pool2d(x, **cfg["kw"]).shape
        return
    assert_same(x, **cfg["kw"])


@given(k=st.integers(-1, 4), s=st.integers(-1, 3), p=st.integers(-1, 3), d=st.integers(-1, 2),
       h=st.integers(1, 6))
def test_fuzz_errors_like_torch(k, s, p, d, h):
    x = torch.randn(1, 2, h, 5)
    kw = dict(kernel_size=k, stride=s, padding=p, dilation=d)
    try:
        expected = F.max_pool2d(x, return_indices=True, **kw)
    except RuntimeError:
        with pytest.raises((ValueError, RuntimeError)):
            cnnops.max_pool2d(x, **kw)
        return
    y, i = cnnops.max_pool2d(x, return_indices=True, **kw)
    assert torch.equal(y, expected[0]) and torch.equal(i, expected[1])


def test_window_without_input_positions():
    # Dilation 2 skips the only row: torch returns -inf with index 1, outside the 1x1
    # plane. The backward accepts the index (the window is empty) and passes no gradient.
    x = torch.randn(1, 1, 1, 1, dtype=torch.float64, requires_grad=True)
    kw = dict(kernel_size=(2, 1), stride=1, padding=(1, 0), dilation=(2, 1))
    y, i = cnnops.max_pool2d(x, return_indices=True, **kw)
    ty, ti = F.max_pool2d(x.detach(), return_indices=True, **kw)
    assert torch.equal(i, ti) and torch.equal(y, ty) and y.item() == float("-inf")
    (dx,) = torch.autograd.grad(y, x, torch.ones_like(y))
    assert torch.equal(dx, torch.zeros_like(x))
    with pytest.raises(ValueError, match="index"):  # a non-empty window still checks its index
        torch.ops.cnnops.max_pool2d_bwd(torch.ones(1, 1, 1, 1, dtype=torch.float64),
                                        torch.tensor([[[[5]]]]), [1, 1], [1, 1], [1, 1], [0, 0], [1, 1])



@pytest.mark.parametrize("grad,return_indices,expected", [
    (False, False, "cnnops.max_pool2d_values"),
    (True, False, "cnnops.max_pool2d_fwd"),
    (False, True, "cnnops.max_pool2d_fwd"),
])
def test_indices_only_when_needed(grad, return_indices, expected):
    """Inference calls skip the indices; calls that need them (gradient, return_indices)
    get them. Under no_grad a requires_grad input needs no indices either."""
    x = torch.randn(1, 2, 6, 6, requires_grad=grad)
    with OpNames() as rec:
        out = cnnops.max_pool2d(x, 3, 2, 1, return_indices=return_indices)
    assert rec.seen == [expected]
    if grad:
        out.sum().backward()
        assert x.grad is not None
    with torch.no_grad(), OpNames() as rec:
        cnnops.max_pool2d(x, 3, 2, 1)
    assert rec.seen == ["cnnops.max_pool2d_values"]


def test_values_op_errors():
    x = torch.randn(1, 2, 6, 6)
    with pytest.raises(ValueError, match="padding"):
        ops.max_pool2d_values(x, [3, 3], [1, 1], [2, 2, 2, 2], [1, 1], False)
    with pytest.raises(ValueError, match="input"):
        ops.max_pool2d_values(x[0], [3, 3], [1, 1], [1, 1, 1, 1], [1, 1], False)
    with pytest.raises(TypeError, match="input"):
        ops.max_pool2d_values(x.long(), [3, 3], [1, 1], [1, 1, 1, 1], [1, 1], False)


# ----------------------------------------------------------------------------- float16 / bfloat16 (CUDA)

@pytest.mark.parametrize("dtype", low_precision_params())
@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("kernel,stride,padding,dilation,ceil_mode", [
    (3, 2, 1, 1, False), (2, 2, 0, 1, True), ((3, 2), (2, 1), (1, 0), (1, 2), True)])
def test_low_precision_cuda(dtype, layout, kernel, stride, padding, dilation, ceil_mode):
    """Max pooling rounds nothing: values and indices are torch's bits at every precision."""
    x = torch.randn(2, 24, 13, 12, device="cuda").to(dtype)
    assert_same(x.to(memory_format=CL) if layout == "cl" else x, kernel_size=kernel, stride=stride,
                padding=padding, dilation=dilation, ceil_mode=ceil_mode)
