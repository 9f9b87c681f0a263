"""cnnops.avg_pool2d and cnnops.adaptive_avg_pool2d against torch.nn.functional: values and
gradients in float64 and float32 over many argument combinations, layouts, unbatched and
empty inputs, Keras 'same' padding, refusals, torch's own OpInfo samples, opcheck,
torch.compile, gradcheck/gradgradcheck, modules and fuzzing. (Every CPU path under every
ISA: test_avg_pool2d_cpu_paths.py.)"""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, note
from hypothesis import strategies as st

import cnnops
from conftest import (
    OpNames,
    check_against_torch,
    check_low_precision,
    device_params,
    dtype_params,
    low_precision_params,
    make,
)

ops = torch.ops.cnnops
CL = torch.channels_last
pytestmark = pytest.mark.avg_pool2d


def layout_input(shape, layout, dtype=torch.float64, device="cpu"):
    """A leaf of `shape` in layout nchw, cl (channels_last) or sliced (every other channel
    and column of a larger tensor: no unit stride)."""
    if layout == "sliced":
        n, c, h, w = shape
        x = torch.randn(n, 2 * c, h, 2 * w, dtype=dtype, device=device)[:, ::2, :, ::2]
        return x.requires_grad_()
    return make(shape, dtype, device, channels_last=layout == "cl")


def avg(**kw):
    return lambda x: cnnops.avg_pool2d(x, **kw)


def torch_avg(**kw):
    return lambda x: F.avg_pool2d(x, **kw)


# ----------------------------------------------------------------------------- avg_pool2d

AVG_CONFIGS = [  # kernel_size, stride, padding, divisor_override
    (3, 1, 1, None), (2, None, 0, None), (3, 2, 1, None), ((3, 2), (2, 1), (1, 0), None),
    (4, 3, 2, None), (1, 2, 0, None), (5, 1, 2, None), ((2, 4), 3, (1, 2), None),
    (3, 2, 1, 5), (2, (1, 3), 1, -2), (11, 11, 0, None),
]


@pytest.mark.parametrize("dtype", dtype_params())
@pytest.mark.parametrize("kernel,stride,padding,divisor", AVG_CONFIGS)
@pytest.mark.parametrize("ceil_mode", [False, True], ids=["floor", "ceil"])
@pytest.mark.parametrize("count_include_pad", [True, False], ids=["count-pad", "no-pad"])
@pytest.mark.parametrize("layout", ["nchw", "cl", "sliced"])
@pytest.mark.parametrize("device", device_params())
def test_matches_torch(device, dtype, kernel, stride, padding, divisor, ceil_mode, count_include_pad,
                       layout):
    x = layout_input((2, 19, 11, 12), layout, dtype, device)
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
              count_include_pad=count_include_pad, divisor_override=divisor)
    check_against_torch(avg(**kw), torch_avg(**kw), [x])


@pytest.mark.parametrize("size,kernel,stride,padding,expected", [
    (5, 3, 3, 1, 2),   # the third window would start at 5 = H + padding: dropped
    (6, 2, 2, 1, 4),   # the last window starts at 5 (inside the input): kept, one cell
    (7, 4, 3, 2, 3),   # the fourth would start at 7 in the end padding: dropped
])
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_ceil_mode_window_that_starts_in_padding(size, kernel, stride, padding, expected,
                                                 count_include_pad):
    x = make((1, 3, size, size + 1))
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=True,
              count_include_pad=count_include_pad)
    y = check_against_torch(avg(**kw), torch_avg(**kw), [x])
    assert y.shape[2] == expected


@pytest.mark.parametrize("device", device_params())
def test_unbatched_and_empty_batch(device):
    x = make((3, 9, 8), device=device)
    y = check_against_torch(avg(kernel_size=3, stride=2, padding=1), torch_avg(kernel_size=3, stride=2, padding=1), [x])
    assert y.shape == (3, 5, 4)
    x0 = make((0, 3, 9, 8), device=device)
    y0 = cnnops.avg_pool2d(x0, 3, 2, 1)
    assert y0.shape == F.avg_pool2d(x0.detach(), 3, 2, 1).shape == (0, 3, 5, 4)
    y0.sum().backward()
    assert x0.grad.shape == x0.shape


def keras_same_reference(x, kernel, stride, divisor=None):
    """TensorFlow/Keras AveragePooling2D(padding='same') from torch ops: the window sums
    over the zero-padded input (output ceil(size / stride), the odd pixel at the end)
    divided by the number of input cells in each window (or by `divisor`)."""
    pads = []
    for a in (1, 0):
        size = x.shape[2 + a]
        out = -(-size // stride[a])
        total = max((out - 1) * stride[a] + kernel[a] - size, 0)
        pads += [total // 2, total - total // 2]
    sums = F.avg_pool2d(F.pad(x, pads), kernel, stride, divisor_override=1)
    if divisor is not None:
        return sums / divisor
    ones = torch.ones((1, 1) + tuple(x.shape[2:]), dtype=x.dtype, device=x.device)
    return sums / F.avg_pool2d(F.pad(ones, pads), kernel, stride, divisor_override=1)


@pytest.mark.parametrize("size", [(9, 8), (7, 7), (10, 5)])
@pytest.mark.parametrize("kernel,stride", [(3, 2), (2, 2), (3, 1), (2, 3), ((3, 2), (2, 1)), (4, 1)])
@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("device", device_params())
def test_same_padding_is_keras(device, size, kernel, stride, layout):
    """Keras semantics for any stride: output ceil(H / stride), the odd padding pixel at the
    bottom/right, and padded cells not counted in the divisor (even with count_include_pad,
    the default); values and gradients against the reference built from torch ops."""
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    s = (stride, stride) if isinstance(stride, int) else stride
    x = layout_input((2, 5, *size), layout, device=device)
    ours = avg(kernel_size=kernel, stride=stride, padding="same")
    y = check_against_torch(ours, lambda t: keras_same_reference(t, k, s), [x])
    assert y.shape[2:] == tuple(-(-n // t) for n, t in zip(size, s))
    if s == (1, 1) and k[0] % 2 == 1 and k[1] % 2 == 1:  # symmetric padding: torch's no-pad average
        ref = F.avg_pool2d(x.detach(), k, 1, (k[0] // 2, k[1] // 2), count_include_pad=False)
        torch.testing.assert_close(y.detach(), ref, rtol=1e-12, atol=1e-12)


def test_same_padding_with_divisor_override_and_valid():
    x = make((1, 2, 7, 6))
    check_against_torch(avg(kernel_size=3, stride=2, padding="same", divisor_override=3),
                        lambda t: keras_same_reference(t, (3, 3), (2, 2), divisor=3), [x])
    check_against_torch(avg(kernel_size=3, stride=2, padding="valid"),
                        torch_avg(kernel_size=3, stride=2), [x])


# ----------------------------------------------------------------------------- adaptive_avg_pool2d

ADAPTIVE_SIZES = [1, (1, 1), 3, (5, 7), (None, 4), (4, None), (None, None), (13, 20), (11, 12),
                  (2, 1), (7, 5), (6, 12), (3, 9)]


@pytest.mark.parametrize("dtype", dtype_params())
@pytest.mark.parametrize("output_size", ADAPTIVE_SIZES, ids=str)
@pytest.mark.parametrize("layout", ["nchw", "cl", "sliced"])
@pytest.mark.parametrize("device", device_params())
def test_adaptive_matches_torch(device, dtype, output_size, layout):
    # 11 x 12 input: output sizes that divide it (regular windows: 3 along W, 6, 12),
    # that do not (5, 7: windows of two sizes that overlap), larger than it (13 x 20:
    # inputs in two windows) and equal to it
    x = layout_input((2, 19, 11, 12), layout, dtype, device)
    check_against_torch(lambda t: cnnops.adaptive_avg_pool2d(t, output_size),
                        lambda t: F.adaptive_avg_pool2d(t, output_size), [x])


@pytest.mark.parametrize("device", device_params())
def test_adaptive_unbatched_empty_and_zero_sizes(device):
    x = make((3, 9, 8), device=device)
    y = check_against_torch(lambda t: cnnops.adaptive_avg_pool2d(t, (4, None)),
                            lambda t: F.adaptive_avg_pool2d(t, (4, None)), [x])
    assert y.shape == (3, 4, 8)
    # torch accepts an empty batch, zero channels and a zero output size: empty results,
    # zero gradients
    for shape, out in (((0, 3, 9, 8), 2), ((2, 0, 9, 8), 2), ((2, 3, 9, 8), (0, 3)), ((2, 3, 9, 8), 0)):
        x = make(shape, device=device)
        y = cnnops.adaptive_avg_pool2d(x, out)
        assert y.shape == F.adaptive_avg_pool2d(x.detach(), out).shape
        (g,) = torch.autograd.grad(y.sum(), x)
        assert g.shape == x.shape and not g.any()


@pytest.mark.parametrize("dtype", dtype_params())
@pytest.mark.parametrize("shape", [(4, 2048, 7, 7), (2, 728, 10, 10), (3, 37, 5, 9), (2, 130, 1, 1),
                                   (2, 3, 19, 23), (1, 1, 6, 6)], ids=str)
@pytest.mark.parametrize("layout", ["nchw", "cl", "sliced"])
@pytest.mark.parametrize("device", device_params())
def test_global_pool(device, dtype, shape, layout):
    """One window over the whole plane (its own kernels): adaptive 1x1 (ResNet-50's layer4,
    Xception's exit) and avg_pool2d with the kernel as large as the input."""
    x = layout_input(shape, layout, dtype, device)
    check_against_torch(lambda t: cnnops.adaptive_avg_pool2d(t, 1),
                        lambda t: F.adaptive_avg_pool2d(t, 1), [x])
    kw = dict(kernel_size=shape[2:])
    check_against_torch(avg(**kw), torch_avg(**kw), [x])


@pytest.mark.parametrize("layout", ["nchw", "cl"])
def test_grad_input_takes_the_input_layout(layout):
    x = make((2, 6, 7, 7), channels_last=layout == "cl")
    for y in (cnnops.avg_pool2d(x, 3, 2, 1), cnnops.adaptive_avg_pool2d(x, 1),
              cnnops.adaptive_avg_pool2d(x, 3)):
        # grad_output of a different layout (flatten's view, as under a Linear head)
        (g,) = torch.autograd.grad(y, x, torch.randn(y.shape, dtype=y.dtype).contiguous())
        assert g.is_contiguous(memory_format=CL if layout == "cl" else torch.contiguous_format)


def test_results_do_not_depend_on_the_thread_count(restore_threads):
    cases = [(make((4, 40, 30, 30)), lambda t: cnnops.avg_pool2d(t, 3, 1, 1)),
             (make((4, 40, 30, 30), channels_last=True), lambda t: cnnops.avg_pool2d(t, 3, 2, 1, True, False)),
             (make((8, 300, 7, 7)), lambda t: cnnops.adaptive_avg_pool2d(t, 1)),
             (make((8, 300, 7, 7), channels_last=True), lambda t: cnnops.adaptive_avg_pool2d(t, (3, 4)))]
    for x, fn in cases:
        results = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            y = fn(x)
            (g,) = torch.autograd.grad(y, x, torch.ones_like(y))
            results.append((y.detach(), g))
        for y, g in results[1:]:
            assert torch.equal(y, results[0][0]) and torch.equal(g, results[0][1])


# ----------------------------------------------------------------------------- torch's OpInfo samples

def _op_info(name):
    pytest.importorskip("expecttest")  # op_db imports it (not installed on every machine)
    from torch.testing._internal.common_methods_invocations import op_db
    return next(op for op in op_db if op.name == name)


@pytest.mark.parametrize("dtype", dtype_params())
@pytest.mark.parametrize("name,ours", [("nn.functional.avg_pool2d", cnnops.avg_pool2d),
                                       ("nn.functional.adaptive_avg_pool2d", cnnops.adaptive_avg_pool2d)])
def test_torch_opinfo_samples(name, ours, dtype):
    """Every sample torch's own OpInfo tests draw for the op: values and gradients."""
    op = _op_info(name)
    samples = list(op.sample_inputs("cpu", dtype, requires_grad=True))
    assert samples
    for sample in samples:
        x = sample.input
        y = ours(x, *sample.args, **sample.kwargs)
        ref = op.op(x, *sample.args, **sample.kwargs)
        tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(y, ref, **tol, msg=lambda m, s=sample: f"{s}: {m}")
        g = torch.randn_like(ref)
        (gy,) = torch.autograd.grad(y, x, g)
        (gr,) = torch.autograd.grad(ref, x, g)
        torch.testing.assert_close(gy, gr, **tol, msg=lambda m, s=sample: f"grad {s}: {m}")


# ----------------------------------------------------------------------------- refusals

def _t(*shape, dtype=torch.float64):
    return torch.randn(*shape, dtype=dtype)


# (id, call(F-like module), regex our message matches); torch refuses each call too
AVG_REFUSALS = [
    ("kernel-0", lambda m: m.avg_pool2d(_t(1, 2, 6, 6), 0), r"avg_pool2d: expected (kernel_size|stride) to be positive, got \[0, 0\]"),
    ("kernel-3-tuple", lambda m: m.avg_pool2d(_t(1, 2, 6, 6), (1, 2, 3)), r"avg_pool2d: expected kernel_size .*\(1, 2, 3\)"),
    ("stride-0", lambda m: m.avg_pool2d(_t(1, 2, 6, 6), 2, 0), r"avg_pool2d: expected stride to be positive, got \[0, 0\]"),
    ("stride-3-tuple", lambda m: m.avg_pool2d(_t(1, 2, 6, 6), 2, (1, 2, 3)), r"avg_pool2d: expected stride .*\(1, 2, 3\)"),
    ("padding-negative", lambda m: m.avg_pool2d(_t(1, 2, 6, 6), 3, padding=-1), r"avg_pool2d: expected padding to be non-negative, got -1"),
    ("padding-over-half", lambda m: m.avg_pool2d(_t(1, 2, 6, 6), 3, padding=(0, 2)), r"avg_pool2d: expected padding to be at most half the kernel size, got padding=\(0, 2\)"),
    ("padding-string", lambda m: m.avg_pool2d(_t(1, 2, 6, 6), 3, padding="full"), r"avg_pool2d: invalid padding string 'full'"),
    ("divisor-0", lambda m: m.avg_pool2d(_t(1, 2, 6, 6), 2, divisor_override=0), r"avg_pool2d: expected divisor_override to be a non-zero int or None, got 0"),
    ("output-too-small", lambda m: m.avg_pool2d(_t(1, 2, 6, 6), 7), r"avg_pool2d_fwd: the output size would be 0 x 0 for an input of 6 x 6.*expected a positive output size"),
    ("zero-channels", lambda m: m.avg_pool2d(_t(1, 0, 6, 6), 2), r"avg_pool2d_fwd: expected input to have non-zero channel and spatial sizes.*\[1, 0, 6, 6\]"),
    ("rank-5", lambda m: m.avg_pool2d(_t(1, 1, 2, 6, 6), 2), r"avg_pool2d: expected input to be 3-D .* or 4-D .*got a 5-D tensor"),
    ("int-input", lambda m: m.avg_pool2d(_t(1, 2, 6, 6).int(), 2), r"avg_pool2d_fwd: expected input to be float32 or float64 on the CPU, got Int"),
    ("kernel-float", lambda m: m.avg_pool2d(_t(1, 2, 6, 6), 2.5), r"avg_pool2d: expected kernel_size to be an int or a tuple of 2 ints, got 2.5"),
    ("adaptive-negative", lambda m: m.adaptive_avg_pool2d(_t(1, 2, 6, 6), -1), r"adaptive_avg_pool2d: expected output_size to be non-negative, got -1"),
    ("adaptive-3-tuple", lambda m: m.adaptive_avg_pool2d(_t(1, 2, 6, 6), (1, 2, 3)), r"adaptive_avg_pool2d: expected output_size .*\(1, 2, 3\)"),
    ("adaptive-empty-height", lambda m: m.adaptive_avg_pool2d(_t(1, 2, 0, 6), 2), r"adaptive_avg_pool2d_fwd: expected input to have non-zero spatial sizes.*\[1, 2, 0, 6\]"),
    ("adaptive-rank-2", lambda m: m.adaptive_avg_pool2d(_t(6, 6), 2), r"adaptive_avg_pool2d: expected input to be 3-D .*got a 2-D tensor"),
    ("adaptive-long-input", lambda m: m.adaptive_avg_pool2d(_t(1, 2, 6, 6).long(), 2), r"adaptive_avg_pool2d_fwd: expected input to be float32 or float64 on the CPU, got Long"),
    ("adaptive-float-size", lambda m: m.adaptive_avg_pool2d(_t(1, 2, 6, 6), 2.0), r"adaptive_avg_pool2d: expected output_size to be an int .*got 2.0"),
]


@pytest.mark.parametrize("call,match", [pytest.param(c, m, id=i) for i, c, m in AVG_REFUSALS])
def test_refusals_like_torch(call, match):
    with pytest.raises((ValueError, RuntimeError, TypeError, IndexError, NotImplementedError)):
        call(F)
    with pytest.raises((ValueError, TypeError), match=match):
        call(cnnops)


@pytest.mark.parametrize("call,match", [
    (lambda: ops.avg_pool2d_fwd(_t(1, 2, 6, 6), [3, 3], [1, 1], [1, 2, 1, 1], False, True, None), r"padding to be at most half the kernel size \(3 x 3\), got \[1, 2, 1, 1\]"),
    (lambda: ops.avg_pool2d_fwd(_t(1, 2, 6, 6), [3, 3], [1, 1], [1, 1], False, True, None), r"padding to have 4 elements, got \[1, 1\]"),
    (lambda: ops.avg_pool2d_fwd(_t(2, 6, 6), [3, 3], [1, 1], [1, 1, 1, 1], False, True, None), r"input to be 4-D \(N, C, H, W\), got a 3-D"),
    (lambda: ops.avg_pool2d_fwd(_t(1, 2, 6, 6), [3, 3], [1, 1], [1, 1, 1, 1], False, True, 0), r"divisor_override to be a non-zero int or None, got 0"),
    (lambda: ops.avg_pool2d_bwd(_t(1, 2, 5, 6), [6, 6], [3, 3], [1, 1], [1, 1, 1, 1], False, True, None, False), r"grad_output of spatial size 6 x 6 .*input_size \[6, 6\].*got shape \[1, 2, 5, 6\]"),
    (lambda: ops.avg_pool2d_bwd(_t(1, 2, 6, 6), [0, 6], [3, 3], [1, 1], [1, 1, 1, 1], False, True, None, False), r"input_size to be positive \(H, W\), got \[0, 6\]"),
    (lambda: ops.adaptive_avg_pool2d_fwd(_t(1, 2, 6, 6), [2, -1]), r"output_size to be non-negative, got \[2, -1\]"),
    (lambda: ops.adaptive_avg_pool2d_bwd(_t(1, 2, 2, 2).half(), [6, 6], False), r"grad_output to be float32 or float64 on the CPU, got Half"),
])
def test_op_refusals_and_their_fake_kernels(call, match):
    """The registered ops check their own arguments, and their fake kernels (torch.compile,
    FakeTensor tracing) raise the same errors."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    with pytest.raises((ValueError, TypeError), match=match):
        call()
    with FakeTensorMode(), pytest.raises((ValueError, TypeError), match=match):
        call()


# ----------------------------------------------------------------------------- citizenship

def opcheck(op, args):
    result = torch.library.opcheck(op, args)
    failed = {k: v for k, v in result.items() if v != "SUCCESS"}
    assert not failed, failed


@pytest.mark.parametrize("case", ["plain", "cl", "same-ceil", "sliced", "divisor", "empty-batch"])
@pytest.mark.parametrize("device", device_params())
def test_opcheck(device, case):
    x = torch.randn(0 if case == "empty-batch" else 2, 3, 9, 8, dtype=torch.float64, device=device)
    conf = ([3, 3], [2, 2], [1, 1, 1, 1], False, True, None)
    if case == "cl":
        x = x.to(memory_format=CL)
    if case == "same-ceil":
        conf = ([3, 2], [2, 3], [1, 1, 0, 1], True, False, None)
    if case == "divisor":
        conf = ([2, 3], [1, 2], [1, 1, 0, 0], True, True, 4)
    if case == "sliced":
        x = torch.randn(2, 3, 9, 16, dtype=torch.float64, device=device)[..., ::2]
    x.requires_grad_()
    opcheck(ops.avg_pool2d_fwd.default, (x, *conf))
    y = ops.avg_pool2d_fwd(x.detach(), *conf)
    dy = torch.randn_like(y).requires_grad_()
    opcheck(ops.avg_pool2d_bwd.default, (dy, list(x.shape[2:]), *conf, case == "cl"))
    for out in ([1, 1], [4, 3], [12, 5]):
        opcheck(ops.adaptive_avg_pool2d_fwd.default, (x, out))
        dy = torch.randn(x.shape[0], 3, *out, dtype=x.dtype, device=device).requires_grad_()
        opcheck(ops.adaptive_avg_pool2d_bwd.default, (dy, list(x.shape[2:]), case == "cl"))


@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("fn", [
    lambda t: cnnops.avg_pool2d(t, 3, 2, 1, ceil_mode=True, count_include_pad=False),
    lambda t: cnnops.avg_pool2d(t, (2, 3), (1, 2), (1, 0), divisor_override=4),
    lambda t: cnnops.avg_pool2d(t, 3, 2, padding="same"),
    lambda t: cnnops.adaptive_avg_pool2d(t, (4, 5)),
    lambda t: cnnops.adaptive_avg_pool2d(t, 1),
], ids=["ceil-nopad", "divisor", "same", "adaptive", "global"])
@pytest.mark.parametrize("device", device_params())
def test_gradcheck_gradgradcheck(device, layout, fn):
    x = make((2, 3, 7, 6), device=device, channels_last=layout == "cl")
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


class Net(torch.nn.Module):
    def __init__(self, nn):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)
        self.same = nn.AvgPool2d(2, padding="same") if nn is cnnops.nn else None
        self.gap = nn.AdaptiveAvgPool2d((2, None))

    def forward(self, x):
        x = self.pool(torch.relu(self.conv(x)))
        if self.same is not None:
            x = self.same(x)
        return self.gap(x)


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
@pytest.mark.parametrize("device", device_params())
def test_compile_fullgraph(device, dynamic):
    torch.manual_seed(0)
    net = Net(cnnops.nn).to(device)
    torch._dynamo.reset()
    seen = []

    def backend(gm, example_inputs):
        seen.extend(str(n.target) for n in gm.graph.nodes if n.op == "call_function")
        return gm

    compiled = torch.compile(net, fullgraph=True, dynamic=dynamic, backend=backend)
    for shape in ([(2, 3, 12, 11), (3, 3, 14, 9)] if dynamic else [(2, 3, 12, 11)]):
        x = torch.randn(shape, device=device, requires_grad=True)
        y, yc = net(x), compiled(x)
        torch.testing.assert_close(yc, y)
        (g,) = torch.autograd.grad(y.sum(), x)
        (gc,) = torch.autograd.grad(yc.sum(), x)
        torch.testing.assert_close(gc, g)
    assert any("cnnops.avg_pool2d_fwd" in s for s in seen), seen
    assert any("cnnops.adaptive_avg_pool2d_fwd" in s for s in seen), seen


def test_compile_inductor_backward():
    torch._dynamo.reset()
    net = Net(cnnops.nn)
    compiled = torch.compile(net, fullgraph=True)
    x = torch.randn(2, 3, 12, 11, requires_grad=True)
    torch.testing.assert_close(compiled(x), net(x))
    (g,) = torch.autograd.grad(compiled(x).sum(), x)
    (ge,) = torch.autograd.grad(net(x).sum(), x)
    torch.testing.assert_close(g, ge)



def test_every_flop_in_cnnops_ops():
    x = make((2, 3, 8, 8))
    with OpNames() as rec:
        y = cnnops.avg_pool2d(x, 3, 1, 1) + cnnops.adaptive_avg_pool2d(x, 8)
        torch.autograd.grad(y.sum(), x)
    pools = [s for s in rec.seen if "pool" in s]
    assert pools and all(s.startswith("cnnops.") for s in pools), rec.seen
    assert "cnnops.avg_pool2d_bwd" in rec.seen and "cnnops.adaptive_avg_pool2d_bwd" in rec.seen


# ----------------------------------------------------------------------------- modules

@pytest.mark.parametrize("cls,args,kwargs", [
    ("AvgPool2d", (3,), dict(stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    ("AvgPool2d", ((2, 3),), dict(divisor_override=2)),
    ("AdaptiveAvgPool2d", ((5, None),), {}),
    ("AdaptiveAvgPool2d", (1,), {}),
])
def test_modules_match_torch(cls, args, kwargs):
    ours, theirs = getattr(cnnops.nn, cls)(*args, **kwargs), getattr(torch.nn, cls)(*args, **kwargs)
    assert isinstance(ours, type(theirs)) and repr(ours) == repr(theirs)
    assert vars(ours) == vars(theirs)
    x = make((2, 4, 9, 10))
    check_against_torch(ours, theirs, [x])
    check_against_torch(ours, theirs, [make((4, 9, 10))])


def test_same_module_to_torch_and_back():
    model = torch.nn.Sequential(cnnops.nn.AvgPool2d(3, 2, padding="same"), cnnops.nn.AdaptiveAvgPool2d(2))
    twin = cnnops.to_torch(model)
    assert type(twin[1]) is torch.nn.AdaptiveAvgPool2d and type(twin[0]).__name__ == "SameAvgPool2d"
    x = make((2, 3, 9, 8))
    check_against_torch(model, twin, [x])


# ----------------------------------------------------------------------------- fuzzing

@st.composite
def avg_configs(draw):
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    size = [draw(st.integers(max(1, k[a] - 2 * p[a]), 9)) for a in range(2)]
    return dict(N=draw(st.sampled_from([0, 1, 2])), C=draw(st.integers(1, 20)), size=size,
                kw=dict(kernel_size=k, stride=s, padding=p, ceil_mode=draw(st.booleans()),
                        count_include_pad=draw(st.booleans()),
                        divisor_override=draw(st.sampled_from([None, None, 1, 3, -2]))),
                out=(draw(st.integers(1, 12)), draw(st.one_of(st.none(), st.integers(1, 12)))),
                layout=draw(st.sampled_from(["nchw", "cl", "sliced"])))


@given(cfg=avg_configs())
def test_fuzz_matches_torch(cfg):
    note(cfg)
    x = layout_input((cfg["N"], cfg["C"], *cfg["size"]), cfg["layout"])
    kw = cfg["kw"]
    try:
        F.avg_pool2d(x.detach(), **kw)
    except RuntimeError:
        with pytest.raises((ValueError, RuntimeError)):
            cnnops.avg_pool2d(x, **kw)
        return
    check_against_torch(avg(**kw), torch_avg(**kw), [x], check_format=x.numel() > 0)
    check_against_torch(lambda t: cnnops.adaptive_avg_pool2d(t, cfg["out"]),
                        lambda t: F.adaptive_avg_pool2d(t, cfg["out"]), [x])


# ----------------------------------------------------------------------------- float16 / bfloat16 (CUDA)

@pytest.mark.parametrize("dtype", low_precision_params())
@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("fn,ref", [
    (lambda t: cnnops.avg_pool2d(t, 3, 2, 1, ceil_mode=True), lambda t: F.avg_pool2d(t, 3, 2, 1, ceil_mode=True)),
    (lambda t: cnnops.avg_pool2d(t, 2, count_include_pad=False), lambda t: F.avg_pool2d(t, 2, count_include_pad=False)),
    (lambda t: cnnops.adaptive_avg_pool2d(t, (5, 3)), lambda t: F.adaptive_avg_pool2d(t, (5, 3))),
    (lambda t: cnnops.adaptive_avg_pool2d(t, 1), lambda t: F.adaptive_avg_pool2d(t, 1)),
], ids=["ceil", "2x2", "adaptive", "global"])
def test_low_precision_cuda(dtype, layout, fn, ref):
    """float16/bfloat16 sum in float: within twice torch's own error."""
    x = make((2, 24, 13, 12), dtype, "cuda", channels_last=layout == "cl")
    check_low_precision(fn, ref, [x])
