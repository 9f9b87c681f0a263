"""Every CPU code path of the convolution family against torch in float64.

The kernels pick a path from the layout and the problem (direct packing-free
paths, im2col panels, stride phases, GEMM + col2im for few channels, wgrad on
channels-last copies of NCHW inputs) and an ISA at run time. These tests pin
each path explicitly, with cnnops._C.set_direct_paths and cnnops.set_cpu_isa,
on shapes chosen to exercise partial tiles and padding on every side.
"""
import itertools
import shutil
import subprocess

import pytest
import torch
import torch.nn.functional as F

import cnnops
from conftest import supported_isas

ops = torch.ops.cnnops

# (N, C, H, W, K, R, S, stride, padding, dilation, groups)
CONFIGS = [
    (2, 16, 13, 17, 20, 3, 3, 1, 1, 1, 1),    # 3x3, partial tiles on both sides
    (2, 16, 13, 17, 20, 3, 3, 2, 1, 1, 1),    # strided: stride phases in dgrad
    (1, 12, 9, 30, 16, 3, 2, 1, 2, 2, 2),     # dilated, grouped, asymmetric kernel
    (2, 3, 23, 21, 8, 7, 7, 2, 3, 1, 1),      # stem-like: 3 channels, col2im dgrad
    (2, 24, 11, 11, 30, 1, 1, 1, 0, 1, 1),    # plain 1x1 GEMM
    (3, 8, 6, 5, 10, 3, 3, 3, 2, 1, 2),       # tiny spatial, stride 3, padding 2
]


def _id(cfg):
    return "N{}C{}H{}W{}K{}R{}S{}s{}p{}d{}g{}".format(*cfg)


@pytest.fixture(params=[True, False], ids=["direct", "im2col"])
def direct_paths(request):
    cnnops._C.set_direct_paths(request.param)
    try:
        yield request.param
    finally:
        cnnops._C.set_direct_paths(True)


@pytest.mark.parametrize("layout", ["nchw", "channels_last", "strided"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=_id)
def test_all_three_kernels_match_torch(cfg, layout, direct_paths):
    N, C, H, W, K, R, S, stride, padding, dilation, groups = cfg
    g = torch.Generator().manual_seed(hash(cfg) % 2**31)
    x = torch.randn(N, C, H, W, dtype=torch.float64, generator=g)
    w = torch.randn(K, C // groups, R, S, dtype=torch.float64, generator=g)
    b = torch.randn(K, dtype=torch.float64, generator=g)
    if layout == "channels_last":
        x = x.to(memory_format=torch.channels_last)
        w = w.to(memory_format=torch.channels_last)
    elif layout == "strided":
        x = torch.randn(N, C, H, 2 * W, dtype=torch.float64, generator=g)[..., ::2]
    ref = F.conv2d(x, w, b, stride, padding, dilation, groups)
    dy = torch.randn(ref.shape, dtype=torch.float64, generator=g)
    if layout == "channels_last":
        dy = dy.to(memory_format=torch.channels_last)
    st, pd, dl = [stride] * 2, [padding] * 2, [dilation] * 2

    y = ops.conv2d_fprop(x, w, b, st, [padding] * 4, dl, groups)
    torch.testing.assert_close(y, ref, rtol=1e-10, atol=1e-10)

    xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
    F.conv2d(xr, wr, None, stride, padding, dilation, groups).backward(dy)
    dx = ops.conv2d_dgrad(dy, w, None, [H, W], st, pd, dl, groups)
    dw = ops.conv2d_wgrad(dy, x, [R, S], st, pd, dl, groups)
    torch.testing.assert_close(dx, xr.grad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(dw, wr.grad, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_isas_agree_with_torch(isa, dtype):
    cnnops.set_cpu_isa(isa)
    try:
        for cfg, cl in itertools.product(CONFIGS[:4], [False, True]):
            N, C, H, W, K, R, S, stride, padding, dilation, groups = cfg
            x = torch.randn(N, C, H, W, dtype=dtype)
            w = torch.randn(K, C // groups, R, S, dtype=dtype)
            if cl:
                x = x.to(memory_format=torch.channels_last)
            xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
            xc, wc = x.clone().requires_grad_(), w.clone().requires_grad_()
            ref = F.conv2d(xr, wr, None, stride, padding, dilation, groups)
            out = cnnops.conv2d(xc, wc, None, stride, padding, dilation, groups)
            dy = torch.randn_like(ref)
            ref.backward(dy)
            out.backward(dy)
            tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
            for got, want in [(out, ref), (xc.grad, xr.grad), (wc.grad, wr.grad)]:
                scale = want.abs().max().item() + 1.0
                torch.testing.assert_close(got / scale, want / scale, **tol)
    finally:
        cnnops.set_cpu_isa("auto")


def test_conv_transpose_stride_phases_without_taps():
    # stride 3 > kernel 2: some output phases receive no tap and must be the bias.
    x = torch.randn(2, 4, 5, 6, dtype=torch.float64)
    w = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    b = torch.randn(3, dtype=torch.float64)
    for direct in (True, False):
        cnnops._C.set_direct_paths(direct)
        try:
            got = cnnops.conv_transpose2d(x, w, b, stride=3, output_padding=2)
        finally:
            cnnops._C.set_direct_paths(True)
        torch.testing.assert_close(got, F.conv_transpose2d(x, w, b, stride=3, output_padding=2))


def test_wgrad_does_not_depend_on_thread_count():
    x = torch.randn(4, 16, 40, 40, dtype=torch.float32)
    dy = torch.randn(4, 8, 40, 40, dtype=torch.float32)
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2):
            torch.set_num_threads(n)
            results.append(ops.conv2d_wgrad(dy, x, [3, 3], [1, 1], [1, 1], [1, 1], 1))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(results[0], results[1])


@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("channels", [5, 20, 37, 128])
@pytest.mark.parametrize("cl", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("stride,padding,dilation", [(1, 1, 1), (2, 1, 1), (1, 0, 1), (1, 3, 2)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_depthwise_vector_kernels_every_isa(isa, channels, cl, stride, padding, dilation, dtype):
    # The depthwise kernels' inner loops are the ISA-dispatched vector kernels
    # (taps_madd, stencil_row, stencil_row_dot, taps_scale, taps_dot, copy_rows);
    # channel counts cover their register blocks and scalar tails, the width
    # (15) the stencils' 8-pixel blocks of 3-tap rows (forward, and dgrad's
    # flipped rows), their 4-pixel blocks, remainders and border pixels.
    x = torch.randn(2, channels, 9, 15, dtype=dtype)
    w = torch.randn(channels, 1, 3, 3, dtype=dtype)
    b = torch.randn(channels, dtype=dtype)
    if cl:
        x = x.to(memory_format=torch.channels_last)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-4)
    cnnops.set_cpu_isa(isa)
    try:
        for bias in (None, b):
            xc, wc = x.clone().requires_grad_(), w.clone().requires_grad_()
            xt, wt = x.double().requires_grad_(), w.double().requires_grad_()
            got = cnnops.depthwise_conv2d(xc, wc, bias, stride, padding, dilation)
            want = F.conv2d(xt, wt, None if bias is None else bias.double(), stride, padding,
                            dilation, channels)
            torch.testing.assert_close(got.double(), want, **tol)
            dy = torch.randn_like(want)
            got_grads = torch.autograd.grad(got, (xc, wc), dy.to(dtype))
            want_grads = torch.autograd.grad(want, (xt, wt), dy)
            for g, t in zip(got_grads, want_grads):
                torch.testing.assert_close(g.double(), t, **tol)
    finally:
        cnnops.set_cpu_isa("auto")


def same_bits(a, b):
    ints = {torch.float32: torch.int32, torch.float64: torch.int64}[a.dtype]
    return a.shape == b.shape and torch.equal(a.view(ints), b.view(ints))


@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("cl", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("kernel,stride,padding", [(3, 2, 1), (2, 1, 0), (3, 1, 1)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_max_pool2d_vector_kernels_every_isa(isa, cl, kernel, stride, padding, dtype):
    # max_taps (blocks of two registers and a padded partial block), split_row,
    # merge_row, gather_grad and in_range under every ISA; 37 channels and
    # widths give partial blocks; NaN, -inf and ties exercise torch's rule.
    x = torch.randn(2, 37, 11, 75, dtype=dtype)
    x[0, 0, 0, :5] = float("nan")
    x[1, 2, :, :] = float("-inf")
    x[1, 3] = 1.0
    if cl:
        x = x.to(memory_format=torch.channels_last)
    cnnops.set_cpu_isa(isa)
    try:
        xc, xt = x.clone().requires_grad_(), x.clone().requires_grad_()
        y, i = cnnops.max_pool2d(xc, kernel, stride, padding, return_indices=True)
        ty, ti = F.max_pool2d(xt, kernel, stride, padding, return_indices=True)
        assert torch.equal(i, ti)
        torch.testing.assert_close(y, ty, rtol=0, atol=0, equal_nan=True)
        # max_values (no indices: blocks of four registers), the same bits, NaNs included
        yv = cnnops.max_pool2d(x, kernel, stride, padding)
        assert same_bits(yv, ty)
        dy = torch.randn_like(ty)
        (g,), (tg,) = torch.autograd.grad(y, (xc,), dy), torch.autograd.grad(ty, (xt,), dy)
        torch.testing.assert_close(g, tg, rtol=0, atol=0)
    finally:
        cnnops.set_cpu_isa("auto")


def assert_matches_with_grads(ours, theirs, x, w):
    """ours(x, w), float64, and its gradients for x and w against theirs on the same values."""
    xc, wc = x.clone().requires_grad_(), w.clone().requires_grad_()
    xt, wt = x.clone().requires_grad_(), w.clone().requires_grad_()
    got, want = ours(xc, wc), theirs(xt, wt)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    dy = torch.randn_like(want)
    for g, t in zip(torch.autograd.grad(got, (xc, wc), dy), torch.autograd.grad(want, (xt, wt), dy)):
        torch.testing.assert_close(g, t, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("kernel", [2, 5, 7])
@pytest.mark.parametrize("cl", [False, True], ids=["nchw", "channels_last"])
def test_depthwise_tap_chunks_every_isa(isa, kernel, cl):
    # taps_dot / stencil_row_dot run the taps in compile-time chunks of 9, 4 and 1:
    # 4, 25 and 49 taps cover every chunk size and their mixes.
    x = torch.randn(2, 19, 13, 16, dtype=torch.float64)
    w = torch.randn(19, 1, kernel, kernel, dtype=torch.float64)
    if cl:
        x = x.to(memory_format=torch.channels_last)
    cnnops.set_cpu_isa(isa)
    try:
        assert_matches_with_grads(lambda x, w: cnnops.depthwise_conv2d(x, w, None, 1, kernel // 2),
                                  lambda x, w: F.conv2d(x, w, None, 1, kernel // 2, 1, 19), x, w)
    finally:
        cnnops.set_cpu_isa("auto")


@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("H,W", [(1, 1), (3, 5), (7, 17), (19, 19), (64, 64), (65, 64)])
@pytest.mark.parametrize("M,kernel,dilation", [(1, 3, 1), (2, 3, 1), (1, 2, 1), (1, (3, 5), (2, 1))])
def test_depthwise_masked_planes_every_isa(isa, H, W, M, kernel, dilation):
    # NCHW, stride 1, output the input's size: planes up to 4096 lanes are read
    # in place under lane masks (masked_taps_scale / masked_taps_dot); 65 x 64 is
    # past that and takes the padded copies. The sizes put several rows in one
    # register (W < lanes), rows across registers, and a partial last register;
    # the kernels cover the multiplier's M dy planes in dgrad and 'same' padding
    # that is asymmetric (even kernel) or dilated. The fused backward must give
    # the separate passes' bits.
    C = 3
    x = torch.randn(2, C, H, W, dtype=torch.float64)
    w = torch.randn(C * M, 1, *((kernel, kernel) if isinstance(kernel, int) else kernel),
                    dtype=torch.float64)
    cnnops.set_cpu_isa(isa)
    try:
        assert_matches_with_grads(
            lambda x, w: cnnops.depthwise_conv2d(x, w, None, 1, "same", dilation),
            lambda x, w: F.conv2d(x, w, None, 1, "same", dilation, C), x, w)
        dil = [dilation] * 2 if isinstance(dilation, int) else list(dilation)
        y = cnnops.depthwise_conv2d(x, w, None, 1, "same", dilation)
        dy = torch.randn_like(y)
        R, S = w.shape[2:]
        top = ((R - 1) * dil[0]) // 2
        left = ((S - 1) * dil[1]) // 2
        if (R - 1) * dil[0] % 2 == 0 and (S - 1) * dil[1] % 2 == 0:  # symmetric: the ops take it
            args = ([1, 1], [top, left], dil)
            dx, dw = ops.depthwise_backward(dy, x, w, *args)
            assert torch.equal(dx, ops.depthwise_dgrad(dy, w, C, [H, W], *args))
            assert torch.equal(dw, ops.depthwise_wgrad(dy, x, [R, S], *args))
    finally:
        cnnops.set_cpu_isa("auto")


@pytest.fixture(params=["plain", "streamed"])
def output_stores(request):
    """Runs the test with plain stores only, then with every output that can be
    streamed (non-temporal stores, stream_stores.h) streamed; restores the
    automatic threshold."""
    cnnops._C.set_stream_min_bytes(0 if request.param == "streamed" else 2**62)
    try:
        yield request.param
    finally:
        cnnops._C.set_stream_min_bytes(-1)


@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("H,W", [(1, 1), (2, 2), (4, 3), (3, 11), (5, 14), (2, 19)])
@pytest.mark.parametrize("C", [3, 20, 24, 130])
def test_depthwise_cl3x3_spans_every_isa(isa, H, W, C, output_stores):
    # channels_last 3x3, stride 1, padding 1, multiplier 1: the row's interior
    # as one span walked down the rows (span3x3_fprop / span3x3_backward), blocks of 8, 4,
    # 2, 1 pixels for the span's tail (11 = 1 + 8 + 1 + 1, 14 = 1 + 8 + 4 + 1),
    # the border columns per pixel, rows in the padding at the top and bottom.
    # C = 20 and 24 leave a partial last register (masked) on some ISAs and
    # dtypes, 130 several registers and a partial one. x is a column slice, so
    # its rows are longer than y's. The fused backward must give the separate
    # passes' bits. With output_stores == "streamed", y and dx go out with
    # non-temporal stores wherever a register is aligned (every pixel for
    # C = 24 float64, some pixels for C = 20 or 130).
    g = torch.Generator().manual_seed(H * 100 + W + C)
    base = torch.randn(2, C, H, W + 3, generator=g, dtype=torch.float64)
    x = base.to(memory_format=torch.channels_last)[:, :, :, 2:2 + W]
    w = torch.randn(C, 1, 3, 3, generator=g, dtype=torch.float64)
    b = torch.randn(C, generator=g, dtype=torch.float64)
    cnnops.set_cpu_isa(isa)
    try:
        assert_matches_with_grads(lambda x, w: cnnops.depthwise_conv2d(x, w, b, 1, 1),
                                  lambda x, w: F.conv2d(x, w, b, 1, 1, 1, C), x, w)
        dy = torch.randn(2, C, H, W, generator=g, dtype=torch.float64).to(memory_format=torch.channels_last)
        args = ([1, 1], [1, 1], [1, 1])
        dx, dw = ops.depthwise_backward(dy, x, w, *args)
        assert torch.equal(dx, ops.depthwise_dgrad(dy, w, C, [H, W], *args))
        assert torch.equal(dw, ops.depthwise_wgrad(dy, x, [3, 3], *args))
        for dtype in (torch.float32,):  # the float registers hold twice the lanes
            xf, wf, dyf = x.to(dtype), w.to(dtype), dy.to(dtype)
            torch.testing.assert_close(ops.depthwise_fprop(xf, wf, b.to(dtype), [1, 1], [1, 1, 1, 1], [1, 1]),
                                       F.conv2d(x, w, b, 1, 1, 1, C).to(dtype), rtol=1e-4, atol=1e-4)
            dxf, dwf = ops.depthwise_backward(dyf, xf, wf, *args)
            want = torch.ops.aten.convolution_backward(dy, x, w, None, [1, 1], [1, 1], [1, 1], False,
                                                       [0, 0], C, [True, True, False])
            torch.testing.assert_close(dxf, want[0].to(dtype), rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(dwf, want[1].to(dtype), rtol=1e-4, atol=1e-3)
            assert torch.equal(dwf, ops.depthwise_wgrad(dyf, xf, [3, 3], *args))
    finally:
        cnnops.set_cpu_isa("auto")


@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("N,C,H,W,dtype", [
    (2, 130, 40, 12, torch.float64),   # 10 bands of 4 rows (for 32 units), one span
    (3, 24, 23, 9, torch.float32),     # 5 bands of 4-5 rows, one span of 7 columns
    (1, 1100, 5, 30, torch.float64),   # 8800-byte pixels: 4 spans of 7 columns, 1 band
    (2, 1100, 20, 30, torch.float32),  # 2 spans of 14 columns, 5 bands of 4 rows
    (1, 8, 70, 6, torch.float32),      # 4 bands of 17-18 rows (about 16), one span
    (1, 600, 6, 19, torch.float32),    # 2400-byte pixels (blocks, not pairs): 17 = 8 + 9 columns
    (2, 260, 7, 11, torch.float64),    # 2080-byte pixels: one block of 9 columns
])
def test_depthwise_cl3x3_bands_and_spans_every_isa(isa, N, C, H, W, dtype):
    # The work units split an image into bands of about 16 rows (down to 4
    # where that leaves under 32 units) and spans of at most 64 KiB of pixels
    # (depthwise_cl3x3.cpp). y, dx and dw match torch across band and span
    # edges; the fused backward gives the separate passes' bits; and the bits
    # do not depend on the number of threads, nor on whether a thread that
    # finishes early takes the other's units (balanced_for.h).
    g = torch.Generator().manual_seed(N + C + H + W)
    x = torch.randn(N, C, H, W, generator=g, dtype=torch.float64)
    w = torch.randn(C, 1, 3, 3, generator=g, dtype=torch.float64)
    dy = torch.randn(N, C, H, W, generator=g, dtype=torch.float64)
    want_y = F.conv2d(x, w, None, 1, 1, 1, C)
    want_dx, want_dw, _ = torch.ops.aten.convolution_backward(
        dy, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], C, [True, True, False])
    x, w, dy = (t.to(dtype) for t in (x, w, dy))
    x = x.to(memory_format=torch.channels_last)
    dy = dy.to(memory_format=torch.channels_last)
    args = ([1, 1], [1, 1], [1, 1])
    tol = dict(rtol=1e-4, atol=1e-3) if dtype == torch.float32 else {}
    threads = torch.get_num_threads()
    results = []
    cnnops.set_cpu_isa(isa)
    try:
        for n_threads, balanced in ((1, True), (2, True), (2, False)):
            torch.set_num_threads(n_threads)
            cnnops._C.set_balanced_for(balanced)
            y = ops.depthwise_fprop(x, w, None, [1, 1], [1, 1, 1, 1], [1, 1])
            dx, dw = ops.depthwise_backward(dy, x, w, *args)
            assert torch.equal(dx, ops.depthwise_dgrad(dy, w, C, [H, W], *args))
            assert torch.equal(dw, ops.depthwise_wgrad(dy, x, [3, 3], *args))
            results.append((y, dx, dw))
    finally:
        torch.set_num_threads(threads)
        cnnops._C.set_balanced_for(True)
        cnnops.set_cpu_isa("auto")
    for one, two, fixed_shares in zip(*results):
        assert torch.equal(one, two) and torch.equal(one, fixed_shares)
    y, dx, dw = results[0]
    torch.testing.assert_close(y, want_y.to(dtype), **tol)
    torch.testing.assert_close(dx, want_dx.to(dtype), **tol)
    torch.testing.assert_close(dw, want_dw.to(dtype), **tol)


@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("C,kernel,stride,padding,dilation",
                         [(64, 3, 2, 1, 1), (20, 3, 2, 1, 1), (130, 2, 1, 0, 1), (7, 5, 1, 2, 1),
                          (33, 3, 1, 1, 2), (16, (4, 2), (1, 3), (2, 1), 1)])
def test_max_pool2d_channels_last_backward_every_isa(isa, dtype, C, kernel, stride, padding,
                                                     dilation, output_stores):
    # The channels_last backward gathers each input pixel's windows in one
    # call (gather_pixel: blocks of four registers of channels, a partial last
    # block for C = 7, 20, 33, 130) and stores the pixel plainly or streamed.
    # Kernel 5 stride 1 gives 25 windows per pixel; ties (x rounded) make
    # several windows name the same pixel, so the summation order shows.
    g = torch.Generator().manual_seed(C)
    x = torch.randn(2, C, 13, 12, generator=g, dtype=dtype).mul(2).round()
    x = x.to(memory_format=torch.channels_last).requires_grad_(True)
    xt = x.detach().clone().requires_grad_(True)
    cnnops.set_cpu_isa(isa)
    try:
        y, i = cnnops.max_pool2d(x, kernel, stride, padding, dilation, return_indices=True)
        yt, it = F.max_pool2d(xt, kernel, stride, padding, dilation, return_indices=True)
        dy = torch.randn(yt.shape, generator=g, dtype=dtype).to(memory_format=torch.channels_last)
        y.backward(dy)
        yt.backward(dy)
    finally:
        cnnops.set_cpu_isa("auto")
    assert torch.equal(y, yt) and torch.equal(i, it)
    assert x.grad.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x.grad, xt.grad)


@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("C,W", [(16, 19), (24, 14), (20, 11)])
def test_depthwise_cl3x3_streamed_outputs_same_bits(isa, dtype, C, W):
    # Streaming changes how y and dx are stored, never their values: the same
    # bits as plain stores, threshold or not; and the automatic threshold is
    # the L2 per core times the threads (positive).
    g = torch.Generator().manual_seed(C + W)
    x = torch.randn(3, C, 6, W, generator=g, dtype=dtype).to(memory_format=torch.channels_last)
    w = torch.randn(C, 1, 3, 3, generator=g, dtype=dtype)
    dy = torch.randn(3, C, 6, W, generator=g, dtype=dtype).to(memory_format=torch.channels_last)
    args = ([1, 1], [1, 1], [1, 1])
    outputs = {}
    cnnops.set_cpu_isa(isa)
    try:
        for threshold in (2**62, 0):
            cnnops._C.set_stream_min_bytes(threshold)
            outputs[threshold] = (ops.depthwise_fprop(x, w, None, [1, 1], [1, 1, 1, 1], [1, 1]),
                                  *ops.depthwise_backward(dy, x, w, *args),
                                  ops.depthwise_dgrad(dy, w, C, [6, W], *args))
    finally:
        cnnops._C.set_stream_min_bytes(-1)
        cnnops.set_cpu_isa("auto")
    for plain, streamed in zip(outputs[2**62], outputs[0]):
        assert torch.equal(plain, streamed)
    torch.testing.assert_close(outputs[0][0], F.conv2d(x, w, None, 1, 1, 1, C))
    assert cnnops.build_info()["cpu_stream_min_bytes"] > 0


@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("channels,groups,stride,padding,dilation",
                         [(64, 1, 1, 1, 1), (64, 2, 2, 1, 1), (32, 1, 1, 2, 2), (96, 3, 1, 0, 1)])
def test_wgrad_direct_channels_last_rows_every_isa(isa, dtype, channels, groups, stride, padding,
                                                   dilation):
    # channels_last wgrad reads x in place when the channels per group are a multiple of
    # the micro-kernel's NR (8, 16 or 32 by ISA and dtype); padding pixels read a zero row.
    x = torch.randn(3, channels, 11, 13, dtype=dtype).to(memory_format=torch.channels_last)
    w = torch.randn(42, channels // groups, 3, 3, dtype=dtype)
    y = F.conv2d(x, w, None, stride, padding, dilation, groups)
    dy = torch.randn_like(y)
    want = torch.ops.aten.convolution_backward(dy.double(), x.double(), w.double(), None,
                                               [stride] * 2, [padding] * 2, [dilation] * 2, False,
                                               [0, 0], groups, [False, True, False])[1]
    cnnops.set_cpu_isa(isa)
    try:
        got = torch.ops.cnnops.conv2d_wgrad(dy, x, [3, 3], [stride] * 2, [padding] * 2,
                                            [dilation] * 2, groups)
    finally:
        cnnops.set_cpu_isa("auto")
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(got.double(), want, **tol)


@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("cl", [False, True], ids=["nchw", "channels_last"])
def test_few_pixels_split_over_output_channel_panels(isa, cl):
    # Deep layers at batch 1 (here 3x3 pixels) have one pixel block: the channels path
    # then splits the output-channel panels across tasks (80 channels: 3, 5 or 10 panels).
    x = torch.randn(1, 24, 3, 3, dtype=torch.float64)
    w = torch.randn(80, 24, 3, 3, dtype=torch.float64)
    b = torch.randn(80, dtype=torch.float64)
    if cl:
        x = x.to(memory_format=torch.channels_last)
    cnnops.set_cpu_isa(isa)
    try:
        assert_matches_with_grads(lambda x, w: cnnops.conv2d(x, w, b, padding=1),
                                  lambda x, w: F.conv2d(x, w, b, padding=1), x, w)
    finally:
        cnnops.set_cpu_isa("auto")


@pytest.mark.skipif(shutil.which("nm") is None, reason="needs binutils' nm")
def test_vector_kernel_helpers_stay_in_their_isa_unit():
    # Each family's SIMD templates (csrc/cpu/*/..._simd.h, microkernel_template.h,
    # depthwise_span3x3.h, isa/fma_probe.h) are compiled once per ISA unit, in namespace
    # cnnops::cpu::simd (see csrc/cpu/isa/isa.h). A helper there that is a template on T
    # alone (not on the unit's traits V) becomes one weak symbol shared by all units; the
    # linker may keep the AVX-512 unit's copy and run it on any CPU.
    out = subprocess.run(["nm", "-C", cnnops._C.__file__], capture_output=True, text=True,
                         check=True).stdout
    simd = [line for line in out.splitlines() if "cnnops::cpu::simd::" in line]
    # The namespace is where the kernels are: without local instances of them the
    # check below would pass vacuously (e.g. after a rename).
    for kernel in ("microkernel<", "stencil_row<", "span3x3_fprop<", "max_taps<", "fma_probe<"):
        assert any(f"cnnops::cpu::simd::{kernel}" in line for line in simd), kernel
    shared = [line for line in simd if line.split(" ", 2)[1:2] in (["W"], ["V"])]
    assert not shared, shared
