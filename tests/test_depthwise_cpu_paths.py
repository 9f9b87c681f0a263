"""Every CPU code path of the depthwise family (depthwise_fprop, depthwise_dgrad,
depthwise_wgrad, depthwise_backward) against torch, under every ISA this CPU supports
(cnnops.set_cpu_isa): the ISA-dispatched vector kernels, the tap chunks, the masked
in-place planes (NCHW), the channels_last 3x3 spans, bands and streamed stores; the
fused backward must give the separate passes' bits.
"""
import pytest
import torch
import torch.nn.functional as F

import cnnops
from conftest import assert_matches_with_grads, supported_isas

ops = torch.ops.cnnops


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
