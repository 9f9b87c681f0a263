"""Winograd's F(2x2, 3x3) CPU paths (csrc/cpu/conv2d/correlation_winograd.cpp,
conv2d_wgrad_winograd.cpp) against float64 references: conv2d forwards (stride 1, and
stride 2 by its phases), their input and filter gradients, conv_transpose2d at stride 1 and 2, on every ISA, both dtypes, both layouts, odd output sizes (tiles cut by the
edge), padding 0..2, channel counts off the vector width, fused bias, residual and ReLU.

Shapes here have at least 16 input and output channels and 16 output tiles, where the
path applies; each test also checks that it ran (its float32 bits differ from the
direct GEMMs', cnnops._C.set_winograd(False)), so a test cannot pass on another path.
"""
import pytest
import torch
import torch.nn.functional as F

import cnnops

pytestmark = pytest.mark.conv2d


def _close(got, want, dtype):
    # float32: Winograd's transforms add at most a few roundings to each sum; the
    # tolerance is the direct paths' (relative to the largest output).
    if dtype == torch.float64:
        torch.testing.assert_close(got.double(), want, rtol=1e-10, atol=1e-10 * want.abs().max().item())
    else:
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-5 * want.abs().max().item())


def _without_winograd(fn):
    cnnops._C.set_winograd(False)
    try:
        return fn()
    finally:
        cnnops._C.set_winograd(True)


def _ran_winograd(fn):
    """fn()'s float32 result differs from the direct GEMMs' (the path ran)."""
    return not torch.equal(fn(), _without_winograd(fn))


def _layout(t, layout):
    return t.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else t.contiguous()


# (N, C, K, H, W, padding)
SHAPES = [
    (2, 16, 16, 13, 15, 1),   # odd output: the last tile row and column cut by the edge
    (1, 19, 33, 18, 19, 0),   # 'valid', channels off the vector width
    (3, 24, 20, 9, 10, 2),    # padding 2: whole tile rows in the padding
    (1, 70, 48, 20, 22, 1),   # more channels than one vector of every ISA, batch 1
    (1, 40, 24, 7, 7, 1),     # 16 tiles, the fewest it takes (before the few-pixel paths)
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("layout", ["channels_last", "nchw"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "N{}C{}K{}H{}W{}p{}".format(*s))
def test_forward_and_input_gradient_every_isa(cpu_isa, dtype, layout, shape):
    N, C, K, H, W, pad = shape
    x = _layout(torch.randn(N, C, H, W, dtype=torch.float64), layout)
    # The filter in the input's layout: its transform reads a channels-last
    # filter by taps and an NCHW one by channel blocks (both in blocks of 64
    # input channels, the lanes past K zero).
    w = _layout(torch.randn(K, C, 3, 3, dtype=torch.float64), layout)
    b = torch.randn(K, dtype=torch.float64)
    ref = F.conv2d(x, w, b, padding=pad)
    dy = _layout(torch.randn_like(ref), layout)
    want_dx = torch.nn.grad.conv2d_input(x.shape, w, dy, padding=pad)
    xs, ws, bs, dys = (t.to(dtype) for t in (x, w, b, dy))
    _close(cnnops.conv2d(xs, ws, bs, padding=pad), ref, dtype)
    got_dx = torch.ops.cnnops.conv2d_dgrad(dys, ws, None, [H, W], [1, 1], [pad, pad], [1, 1], 1)
    _close(got_dx, want_dx, dtype)
    if dtype == torch.float32:
        assert _ran_winograd(lambda: cnnops.conv2d(xs, ws, bs, padding=pad))
        if pad < 2:  # dgrad's padding is 2 - pad: 'full' for a 'valid' forward
            assert _ran_winograd(lambda: torch.ops.cnnops.conv2d_dgrad(dys, ws, None, [H, W], [1, 1],
                                                                     [pad, pad], [1, 1], 1))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("padding", [0, 1])
@pytest.mark.parametrize("layout", ["channels_last", "nchw"])
def test_conv_transpose_stride_1_every_isa(cpu_isa, dtype, padding, layout):
    x = _layout(torch.randn(2, 24, 11, 14, dtype=torch.float64), layout)
    w = torch.randn(24, 40, 3, 3, dtype=torch.float64)
    b = torch.randn(40, dtype=torch.float64)
    ref = F.conv_transpose2d(x, w, b, padding=padding)
    xs, ws, bs = (t.to(dtype) for t in (x, w, b))
    _close(cnnops.conv_transpose2d(xs, ws, bs, padding=padding), ref, dtype)
    if dtype == torch.float32:
        assert _ran_winograd(lambda: cnnops.conv_transpose2d(xs, ws, bs, padding=padding))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("layout", ["channels_last", "nchw"])
@pytest.mark.parametrize("act,res,post,size", [
    (None, True, "relu", 15),     # ResNet's block end
    ("relu6", True, "relu", 15),  # both clamps around the residual
    ("relu", False, None, 15),    # ResNet's 3x3 layers
    ("relu", True, None, 100),    # an output past the L2 caches: streamed stores
    ("silu", False, None, 15),    # no register form: a pass after the tiles
])
def test_fused_stage_every_isa(cpu_isa, dtype, layout, act, res, post, size):
    # The fused stage (act, residual, post) in the output transform where it has a
    # register form; otherwise after it.
    x = _layout(torch.randn(2, 32, size, size - 2, dtype=torch.float64), layout)
    w = torch.randn(48, 32, 3, 3, dtype=torch.float64)
    b = torch.randn(48, dtype=torch.float64)
    ref = F.conv2d(x, w, b, padding=1)
    rs = _layout(torch.randn_like(ref), layout) if res else None
    fns = {None: lambda t: t, "relu": torch.relu, "relu6": F.relu6, "silu": F.silu}
    want = fns[post](fns[act](ref) + (rs if res else 0))
    xs, ws, bs = (t.to(dtype) for t in (x, w, b))
    rs = rs.to(dtype) if res else None

    def fused():
        with torch.no_grad():
            return cnnops.functional.conv2d_fused(xs, ws, bs, 1, 1, activation=act, residual=rs,
                                                  post_activation=post)

    _close(fused(), want, dtype)
    if dtype == torch.float32:
        assert _ran_winograd(fused)


def test_training_gradients_match_torch():
    # conv2d's autograd at stride 1: dx through Winograd, dw and db through wgrad.
    x = torch.randn(2, 32, 12, 12, dtype=torch.float64, requires_grad=True)
    w = torch.randn(32, 32, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(32, dtype=torch.float64, requires_grad=True)
    xt, wt, bt = (t.detach().clone().requires_grad_() for t in (x, w, b))
    y, yt = cnnops.conv2d(x, w, b, padding=1), F.conv2d(xt, wt, bt, padding=1)
    dy = torch.randn_like(y)
    torch.testing.assert_close(y, yt, rtol=1e-10, atol=1e-10)
    for g, t in zip(torch.autograd.grad(y, (x, w, b), dy), torch.autograd.grad(yt, (xt, wt, bt), dy)):
        torch.testing.assert_close(g, t, rtol=1e-10, atol=1e-10)


def test_reversed_and_dilated_taps_stay_off_the_path():
    # Dilation 2 (taps two apart) is not F(2x2, 3x3), and stride 2 takes at least 64
    # channels: other paths, same values.
    x = torch.randn(2, 32, 20, 20)
    w = torch.randn(32, 32, 3, 3)
    for kw in (dict(padding=2, dilation=2), dict(padding=1, stride=2)):
        got = cnnops.conv2d(x, w, **kw)
        assert torch.equal(got, _without_winograd(lambda: cnnops.conv2d(x, w, **kw)))
        torch.testing.assert_close(got, F.conv2d(x, w, **kw), rtol=1e-4, atol=1e-4)


# (N, C, K, H, W, padding, layout) of a stride-2 3x3 forward: the sum of its four stride
# phases' F(2x2, RxS) (2x2, 2x1, 1x2 and 1x1 taps on every other pixel); at least 64
# channels and 48 tiles, through NCHW copies 128 channels and 512 tiles.
STRIDE2_SHAPES = [
    (2, 64, 64, 17, 19, 1, "channels_last"),      # odd outputs (9 x 10): tiles cut by the edge
    (1, 70, 80, 30, 30, 0, "channels_last"),      # 'valid', channels off the vector width
    (3, 64, 72, 18, 17, 2, "channels_last"),      # padding 2: phase patches in the padding
    (2, 64, 66, 20, 21, (1, 0), "channels_last"),  # padding per axis: phases start apart
    (2, 128, 128, 63, 64, 1, "nchw"),             # NCHW through channels-last copies
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", STRIDE2_SHAPES, ids=lambda s: "N{}C{}K{}H{}W{}p{}-{}".format(*s))
def test_stride_2_every_isa(cpu_isa, dtype, shape):
    N, C, K, H, W, pad, layout = shape
    x = _layout(torch.randn(N, C, H, W, dtype=torch.float64), layout)
    w = torch.randn(K, C, 3, 3, dtype=torch.float64)
    b = torch.randn(K, dtype=torch.float64)
    ref = F.conv2d(x, w, b, stride=2, padding=pad)
    xs, ws, bs = (t.to(dtype) for t in (x, w, b))
    fn = lambda: cnnops.conv2d(xs, ws, bs, stride=2, padding=pad)
    _close(fn(), ref, dtype)
    if dtype == torch.float32:
        assert _ran_winograd(fn)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_stride_2_fused_stage_and_threads(dtype):
    # ResNet's downsampling 3x3 with its ReLU, and a residual with a clamp after it, in
    # the phases' summed output transform; the same bits on 1, 2 and 3 threads.
    x = _layout(torch.randn(2, 64, 28, 30, dtype=torch.float64), "channels_last")
    w = torch.randn(80, 64, 3, 3, dtype=torch.float64)
    b = torch.randn(80, dtype=torch.float64)
    ref = F.conv2d(x, w, b, stride=2, padding=1)
    res = _layout(torch.randn_like(ref), "channels_last")
    xs, ws, bs, rs = (t.to(dtype) for t in (x, w, b, res))

    def fused():
        with torch.no_grad():
            return cnnops.functional.conv2d_fused(xs, ws, bs, 2, 1, activation="relu", residual=rs,
                                                  post_activation="relu6")

    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            results.append(fused())
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(results[0], r) for r in results[1:])
    _close(results[0], F.relu6(F.relu(ref) + res), dtype)
    if dtype == torch.float32:
        assert _ran_winograd(fused)


@pytest.mark.parametrize("layout", ["channels_last", "nchw"])
@pytest.mark.parametrize("N,C,K,H,residual", [
    (4, 32, 64, 30, False),   # blocks of tiles per task change with the thread count
    (1, 64, 100, 7, True),    # 16 tiles: few blocks, split by output channels on more threads
])
def test_results_do_not_depend_on_thread_count(layout, N, C, K, H, residual):
    # Each tile's sums do not depend on the partition.
    x = _layout(torch.randn(N, C, H, H), layout)
    w = torch.randn(K, C, 3, 3)
    b = torch.randn(K)
    res = _layout(torch.randn(N, K, H, H), layout) if residual else None
    want = F.conv2d(x.double(), w.double(), b.double(), padding=1) + (res.double() if residual else 0)
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3, 8):
            torch.set_num_threads(n)
            with torch.no_grad():
                results.append(cnnops.functional.conv2d_fused(x, w, b, padding=1, residual=res))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(results[0], r) for r in results[1:])
    _close(results[-1], want, torch.float32)
    assert _ran_winograd(lambda: cnnops.functional.conv2d_fused(x, w, b, padding=1, residual=res))


def _wgrad(x, dy, pad):
    return torch.ops.cnnops.conv2d_wgrad(dy, x, [3, 3], [1, 1], [pad, pad], [1, 1], 1)


# (N, C, K, H, W, padding) of the filter gradient (conv2d_wgrad_winograd.cpp): at least
# 64 channels each way and 64 tiles.
WGRAD_SHAPES = [
    (2, 64, 64, 13, 15, 1),   # odd output: the last tile row and column cut by the edge
    (1, 65, 79, 18, 19, 0),   # 'valid', channels off the vector width
    (3, 72, 64, 9, 10, 2),    # padding 2: tile rows in the padding
    (3, 64, 80, 40, 42, 1),   # 1260 tiles: blocks of tiles summed in turn
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("layout", ["channels_last", "nchw"])
@pytest.mark.parametrize("shape", WGRAD_SHAPES, ids=lambda s: "N{}C{}K{}H{}W{}p{}".format(*s))
def test_filter_gradient_every_isa(cpu_isa, dtype, layout, shape):
    N, C, K, H, W, pad = shape
    x = _layout(torch.randn(N, C, H, W, dtype=torch.float64), layout)
    dy = _layout(torch.randn(N, K, H + 2 * pad - 2, W + 2 * pad - 2, dtype=torch.float64), layout)
    want = torch.ops.aten.convolution_backward(dy, x, torch.empty(K, C, 3, 3, dtype=torch.float64), None,
                                               [1, 1], [pad, pad], [1, 1], False, [0, 0], 1,
                                               [False, True, False])[1]
    xs, dys = x.to(dtype), dy.to(dtype)
    _close(_wgrad(xs, dys, pad), want, dtype)
    if dtype == torch.float32:
        assert _ran_winograd(lambda: _wgrad(xs, dys, pad))


def test_filter_gradient_does_not_depend_on_thread_count():
    x = _layout(torch.randn(3, 64, 40, 42), "channels_last")
    dy = _layout(torch.randn(3, 80, 40, 42), "channels_last")
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3, 20):  # 20: more threads than positions, K's panels split in two groups
            torch.set_num_threads(n)
            results.append(_wgrad(x, dy, 1))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(results[0], r) for r in results[1:])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("layout", ["channels_last", "nchw"])
@pytest.mark.parametrize("kernel", [(2, 2), (2, 3), (3, 2), (1, 3), (3, 1)])
def test_other_filter_sizes_every_isa(cpu_isa, dtype, layout, kernel):
    # F(2x2, RxS) for 1 to 3 consecutive taps each way (not 1x1): 2x2 filters,
    # Inception's 1x3 and 3x1, forward and input gradient.
    R, S = kernel
    x = _layout(torch.randn(2, 48, 16, 18, dtype=torch.float64), layout)
    w = torch.randn(40, 48, R, S, dtype=torch.float64)  # cached: its transform made once
    b = torch.randn(40, dtype=torch.float64)
    pad = (R // 2, S // 2)
    ref = F.conv2d(x, w, b, padding=pad)
    dy = _layout(torch.randn_like(ref), layout)
    want_dx = torch.nn.grad.conv2d_input(x.shape, w, dy, padding=pad)
    xs, ws, bs, dys = (t.to(dtype) for t in (x, w, b, dy))
    _close(cnnops.conv2d(xs, ws, bs, padding=pad), ref, dtype)
    dgrad = lambda: torch.ops.cnnops.conv2d_dgrad(dys, ws, None, [16, 18], [1, 1], list(pad), [1, 1], 1)
    _close(dgrad(), want_dx, dtype)
    if dtype == torch.float32:
        assert _ran_winograd(lambda: cnnops.conv2d(xs, ws, bs, padding=pad))
        assert _ran_winograd(dgrad)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("layout", ["channels_last", "nchw", "nchw_long_rows"])
@pytest.mark.parametrize("padding,output_padding", [(1, 1), (0, 0), (1, 0)])
def test_conv_transpose_stride_2_every_isa(cpu_isa, dtype, layout, padding, output_padding):
    # A 3x3 filter at stride 2: dx's stride phases have 2x2, 2x1, 1x2 and 1x1 taps; the
    # 2x2 one takes Winograd, into a channels-last buffer for an NCHW output (an NCHW
    # dy copied channels-last once).
    size = 33 if layout == "nchw_long_rows" else 12
    x = _layout(torch.randn(2, 32, size, size - 1, dtype=torch.float64), layout)
    w = torch.randn(32, 24, 3, 3, dtype=torch.float64)
    b = torch.randn(24, dtype=torch.float64)
    ref = F.conv_transpose2d(x, w, b, stride=2, padding=padding, output_padding=output_padding)
    xs, ws, bs = (t.to(dtype) for t in (x, w, b))
    fn = lambda: cnnops.conv_transpose2d(xs, ws, bs, stride=2, padding=padding, output_padding=output_padding)
    _close(fn(), ref, dtype)
    if dtype == torch.float32:
        assert _ran_winograd(fn)
