"""Every CPU code path of the conv2d family (conv2d_fprop, conv2d_dgrad, conv2d_wgrad;
conv_transpose2d) against torch in float64.

The kernels pick a path from the layout and the problem (direct packing-free
paths, im2col panels, stride phases, GEMM + col2im for few channels, wgrad on
channels-last copies of NCHW inputs) and an ISA at run time. These tests pin
each path explicitly, with cnnops._C.set_direct_paths and cnnops.set_cpu_isa,
on shapes chosen to exercise partial tiles and padding on every side. The
depthwise and max_pool2d paths are in test_depthwise_cpu_paths.py and
test_max_pool2d_cpu_paths.py.
"""
import itertools

import pytest
import torch
import torch.nn.functional as F

import cnnops
from conftest import assert_matches_with_grads, supported_isas

ops = torch.ops.cnnops

# (N, C, H, W, K, R, S, stride, padding, dilation, groups)
CONFIGS = [
    (2, 16, 13, 17, 20, 3, 3, 1, 1, 1, 1),    # 3x3, partial tiles on both sides
    (2, 16, 13, 17, 20, 3, 3, 2, 1, 1, 1),    # strided: stride phases in dgrad
    (1, 12, 9, 30, 16, 3, 2, 1, 2, 2, 2),     # dilated, grouped, asymmetric kernel
    (2, 3, 23, 21, 8, 7, 7, 2, 3, 1, 1),      # stem-like: 3 channels, col2im dgrad
    (2, 24, 11, 11, 30, 1, 1, 1, 0, 1, 1),    # plain 1x1 GEMM
    (2, 20, 9, 11, 12, 1, 1, 1, 0, 1, 1),     # 1x1, few output channels: the narrow tile
    (2, 16, 9, 55, 20, 1, 1, 2, 0, 1, 1),     # strided 1x1, Q = 28: channels_last read in place
    (1, 8, 11, 57, 12, 3, 3, 2, 0, 1, 1),     # 3x3 'valid', stride 2, Q = 28: the same
    (3, 8, 6, 5, 10, 3, 3, 3, 2, 1, 2),       # tiny spatial, stride 3, padding 2
    (2, 8, 24, 23, 12, 3, 3, 1, 1, 1, 1),     # >= 1024 output pixels: NCHW wgrad transposes x
    (2, 8, 64, 63, 12, 1, 1, 2, 0, 1, 1),     # ...a strided 1x1: only the pixels it reads
    (2, 16, 11, 10, 20, 3, 3, 1, 1, 1, 1),    # rows of 10: a shorter tile (10 rows on AVX-512, 5 on AVX2)
    (2, 16, 10, 9, 12, 3, 3, 1, 1, 1, 1),     # rows of 9, few output channels: the narrow tile
    (1, 8, 15, 47, 24, 1, 1, 2, 0, 1, 1),     # strided 1x1, Q = 24: a 12-row tile read in place
    (1, 512, 4, 16, 40, 3, 3, 1, 1, 1, 1),    # a deep filter panel (> 512 KiB): panels outermost
]
ISA_CONFIGS = CONFIGS[:4] + CONFIGS[-4:]


def _id(cfg):
    return "N{}C{}H{}W{}K{}R{}S{}s{}p{}d{}g{}".format(*cfg)


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
def test_isas_agree_with_torch(isa, dtype, output_stores):
    # output_stores: also with every output that can be streamed streamed (the NCHW
    # rows of the strided direct path, by transposing stores).
    cnnops.set_cpu_isa(isa)
    try:
        for cfg, cl in itertools.product(ISA_CONFIGS, [False, True]):
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


def _fprop_on_isa_matches(isa, dtype, x, w, b, stride, padding, rtol32):
    """conv2d_fprop of float64 x, w, b cast to dtype, on `isa`, against F.conv2d in
    float64; the output NCHW-contiguous, as the input."""
    ref = F.conv2d(x, w, b, stride, padding)
    cnnops.set_cpu_isa(isa)
    try:
        got = ops.conv2d_fprop(x.to(dtype), w.to(dtype), b.to(dtype), [stride] * 2, [padding] * 4, [1, 1], 1)
    finally:
        cnnops.set_cpu_isa("auto")
    assert got.is_contiguous()
    tol = dict(rtol=rtol32, atol=rtol32) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got.double(), ref, **tol)


@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("Q", [1, 5, 14, 17, 31, 40])
def test_nchw_output_of_channels_tiles_every_isa(isa, dtype, Q):
    # Strided NCHW convolutions compute channels-on-vector tiles (pixels x channels)
    # and store each channel's pixels as one run (the ISA's gathering store): tile
    # rows below, at and above the vector width, channel tails, and bias, on every ISA.
    g = torch.Generator().manual_seed(Q)
    x = torch.randn(2, 3, 9, 2 * Q + 1, dtype=torch.float64, generator=g)
    w = torch.randn(37, 3, 3, 3, dtype=torch.float64, generator=g)
    b = torch.randn(37, dtype=torch.float64, generator=g)
    assert F.conv2d(x, w, b, 2, 1).shape[-1] == Q + 1
    _fprop_on_isa_matches(isa, dtype, x, w, b, 2, 1, 1e-5)


@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_nchw_output_accumulated_over_reduction_blocks_every_isa(isa, dtype):
    # Few pixels per image (3 x 5) with an NCHW output take channels-on-vector tiles;
    # 40 channels x 9 taps are two reduction blocks, so the second adds its tile to the
    # output through the gathering store (and a tile crossing images takes the scalar one).
    g = torch.Generator().manual_seed(7)
    x = torch.randn(3, 40, 3, 5, dtype=torch.float64, generator=g)
    w = torch.randn(37, 40, 3, 3, dtype=torch.float64, generator=g)
    b = torch.randn(37, dtype=torch.float64, generator=g)
    _fprop_on_isa_matches(isa, dtype, x, w, b, 1, 1, 1e-4)


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


def close_in_dtype(got, want, dtype, atol32):
    """got (float32 or float64) against a float64 reference, at its dtype's tolerance."""
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-4, atol=atol32)
    torch.testing.assert_close(got.double(), want, **tol)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("channels,groups,stride,padding,dilation",
                         [(64, 1, 1, 1, 1), (64, 2, 2, 1, 1), (32, 1, 1, 2, 2), (96, 3, 1, 0, 1)])
def test_wgrad_direct_channels_last_rows_every_isa(cpu_isa, dtype, channels, groups, stride, padding,
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
    got = torch.ops.cnnops.conv2d_wgrad(dy, x, [3, 3], [stride] * 2, [padding] * 2,
                                        [dilation] * 2, groups)
    close_in_dtype(got, want, dtype, atol32=1e-3)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("layout", ["channels_last", "nchw"])
def test_short_tiles_for_every_remainder_every_isa(cpu_isa, dtype, layout):
    # Rows of output pixels (channels-last direct path) and output channels (the
    # row panels of NCHW forwards and of wgrad) that the main tile height does not
    # divide: each remainder 1..13 (AVX-512's 14 rows; AVX2's 6 among them) ends
    # with the shortest tile that covers it, fused residual and ReLU included.
    for extra in range(1, 14):
        W, K = 14 + extra, 28 + extra
        x = torch.randn(2, 32, 3, W, dtype=dtype)
        w = torch.randn(K, 32, 3, 3, dtype=dtype)
        b = torch.randn(K, dtype=dtype)
        if layout == "channels_last":
            x = x.contiguous(memory_format=torch.channels_last)
        ref = F.conv2d(x.double(), w.double(), b.double(), 1, 1)
        res = torch.randn_like(ref).to(dtype)
        want = torch.relu(ref + res.double())
        with torch.no_grad():
            got = cnnops.functional.conv2d_fused(x, w, b, 1, 1, residual=res, post_activation="relu")
        close_in_dtype(got, want, dtype, atol32=1e-4)
        close_in_dtype(cnnops.conv2d(x, w, b, 1, 1), ref, dtype, atol32=1e-4)
        dy = torch.randn_like(ref).to(dtype)
        want_dw = torch.ops.aten.convolution_backward(dy.double(), x.double(), w.double(), None, [1, 1],
                                                      [1, 1], [1, 1], False, [0, 0], 1,
                                                      [False, True, False])[1]
        got_dw = ops.conv2d_wgrad(dy, x, [3, 3], [1, 1], [1, 1], [1, 1], 1)
        close_in_dtype(got_dw, want_dw, dtype, atol32=1e-3)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("stride,groups,W", [(2, 1, 34), (2, 2, 33), (3, 1, 23)])
def test_strided_dgrad_into_nchw_long_rows_every_isa(cpu_isa, dtype, stride, groups, W):
    # conv_transpose2d (a strided dgrad with bias) into NCHW rows of at least 64
    # pixels: the phases write a channels-last buffer, transposed into dx (the
    # ISA's transposing copy), channels not a multiple of the vector width.
    x = torch.randn(2, 20, 5, W, dtype=dtype)
    w = torch.randn(20, 18 // groups, 3, 3, dtype=dtype)
    b = torch.randn(18, dtype=dtype)
    want = F.conv_transpose2d(x.double(), w.double(), b.double(), stride, 1, stride - 1, groups)
    assert want.shape[-1] >= 64
    got = cnnops.conv_transpose2d(x, w, b, stride, 1, stride - 1, groups)
    close_in_dtype(got, want, dtype, atol32=1e-4)
    assert got.is_contiguous()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("layout", ["channels_last", "nchw"])
@pytest.mark.parametrize("K", [1, 3, 5])
@pytest.mark.parametrize("R", [1, 3])
def test_few_output_channels_every_isa(cpu_isa, dtype, layout, K, R):
    # 1-5 output channels (segmentation heads): tiles of flat pixels that cross rows
    # and images, stored a few columns at a time (offsets walked pixel by pixel); one
    # output channel from a channels-last input takes the channels-last path.
    x = torch.randn(3, 32, 7, 11, dtype=dtype)
    w = torch.randn(K, 32, R, R, dtype=dtype)
    b = torch.randn(K, dtype=dtype)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
        w = w.contiguous(memory_format=torch.channels_last)
    want = F.conv2d(x.double(), w.double(), b.double(), 1, R // 2)
    got = cnnops.conv2d(x, w, b, 1, R // 2)
    close_in_dtype(got, want, dtype, atol32=1e-4)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("layout", ["channels_last", "nchw", "nchw_x_cl_dy", "sliced_x"])
@pytest.mark.parametrize("C,K,R,stride,padding,dilation", [
    (3, 64, 3, 1, 1, 1),   # the first layer: 27 columns in two 14-row tiles
    (3, 64, 7, 2, 3, 1),   # ResNet's stem: 147 columns
    (3, 32, 3, 2, 0, 1),   # Xception's
    (5, 64, 3, 1, 2, 2),   # dilated: taps not one run of x
    (3, 40, 3, 1, 1, 1),   # output channels not a multiple of the width: the usual path
    (8, 64, 3, 1, 1, 1),   # 8 input channels: the usual path
])
def test_wgrad_few_columns_every_isa(cpu_isa, dtype, layout, C, K, R, stride, padding, dilation):
    # Fewer than 8 input channels and dy with contiguous channels: the transposed
    # GEMM with dy read in place (conv2d_wgrad_few_columns.cpp).
    x = torch.randn(2, C, 19, 23, dtype=dtype)
    if layout == "sliced_x":
        x = torch.randn(2, C, 19, 46, dtype=dtype)[..., ::2]
    w = torch.randn(K, C, R, R, dtype=dtype)
    dy = torch.randn_like(F.conv2d(x, w, None, stride, padding, dilation))
    if layout in ("channels_last", "sliced_x", "nchw_x_cl_dy"):
        dy = dy.contiguous(memory_format=torch.channels_last)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    want = torch.ops.aten.convolution_backward(dy.double(), x.double(), w.double(), None, [stride] * 2,
                                               [padding] * 2, [dilation] * 2, False, [0, 0], 1,
                                               [False, True, False])[1]
    got = torch.ops.cnnops.conv2d_wgrad(dy, x, [R, R], [stride] * 2, [padding] * 2, [dilation] * 2, 1)
    close_in_dtype(got, want, dtype, atol32=1e-3)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("view", ["contiguous", "batch_of_wider", "every_other_column", "few_pixels"])
def test_wgrad_nchw_transposed_every_isa(cpu_isa, dtype, view):
    # NCHW wgrad (3x3) first copies x and dy into channels-last buffers when it has at
    # least K / 2 output pixels: rows of unit step through the ISA's transposing copy,
    # channel counts that are not a multiple of the vector width (19, 21); other
    # strides element-wise. With fewer pixels (few_pixels: 12 for K = 40) NCHW x is
    # packed as it is.
    C, K = 19, 21
    if view == "few_pixels":
        K = 40
        x = torch.randn(1, C, 3, 4, dtype=dtype)
    elif view == "contiguous":
        x = torch.randn(3, C, 17, 23, dtype=dtype)
    elif view == "batch_of_wider":  # channel planes 2x apart, rows of unit step
        x = torch.randn(3, 2 * C, 17, 23, dtype=dtype)[:, ::2]
    else:
        x = torch.randn(3, C, 17, 46, dtype=dtype)[..., ::2]
    w = torch.randn(K, C, 3, 3, dtype=dtype)
    dy = torch.randn_like(F.conv2d(x, w, None, 1, 1))
    want = torch.ops.aten.convolution_backward(dy.double(), x.double(), w.double(), None, [1, 1], [1, 1],
                                               [1, 1], False, [0, 0], 1, [False, True, False])[1]
    got = torch.ops.cnnops.conv2d_wgrad(dy, x, [3, 3], [1, 1], [1, 1], [1, 1], 1)
    close_in_dtype(got, want, dtype, atol32=1e-3)


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


@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("layout", ["nchw", "channels_last", "cl_channel_slice", "nchw_batch_view"])
@pytest.mark.parametrize("N,C,H,W,K,groups", [
    (2, 300, 5, 7, 45, 1),   # one reduction block of 300; pixel and channel tails
    (1, 2100, 12, 12, 40, 1),  # two reduction blocks read in place (of kInPlaceKc at most)
    (1, 40, 9, 9, 66, 2),    # grouped; 81 pixels: NR and MR tails
    (3, 16, 1, 1, 20, 1),    # one pixel per image
    (2, 1024, 9, 10, 40, 1),   # rows 4 KiB apart crowd one L1 set: tiles copied first
    (1, 2048, 12, 12, 24, 2),  # ...per group
    (1, 4096, 12, 11, 20, 1),  # ...two reduction blocks
])
def test_1x1_reads_input_in_place(isa, dtype, layout, N, C, H, W, K, groups):
    # A 1x1 convolution without padding reads its input where it lies: A rows (channels_last)
    # or B rows (NCHW planes); only the last partial tile is packed. dgrad (conv_transpose2d)
    # goes through the same path with the filter's channel axes swapped.
    g = torch.Generator().manual_seed(N * 1000 + C)
    x = torch.randn(N, C, H, W, dtype=dtype, generator=g)
    if layout == "channels_last":
        x = x.to(memory_format=torch.channels_last)
    elif layout == "cl_channel_slice":  # pixel stride larger than the channel count
        x = torch.randn(N, C + 8, H, W, dtype=dtype, generator=g).to(
            memory_format=torch.channels_last)[:, 3:C + 3]
    elif layout == "nchw_batch_view":  # batch stride larger than one image
        x = torch.randn(2 * N, C, H, W, dtype=dtype, generator=g)[::2]
    w = torch.randn(K, C // groups, 1, 1, dtype=dtype, generator=g)
    b = torch.randn(K, dtype=dtype, generator=g)
    wt = torch.randn(C, K // groups if K % groups == 0 else K, 1, 1, dtype=dtype, generator=g)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=2e-4, atol=2e-4)
    cnnops.set_cpu_isa(isa)
    try:
        torch.testing.assert_close(cnnops.conv2d(x, w, b, groups=groups), F.conv2d(x, w, b, groups=groups),
                                   **tol)
        torch.testing.assert_close(cnnops.conv_transpose2d(x, wt, groups=1),
                                   F.conv_transpose2d(x, wt, groups=1), **tol)
    finally:
        cnnops.set_cpu_isa("auto")


@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("layout", ["channels_last", "cl_channel_slice", "cl_batch_view"])
@pytest.mark.parametrize("N,C,H,W,K,stride,groups", [
    (2, 512, 24, 30, 40, 2, 1),       # rows 2 pixels of 512 apart (one L1 set); MR and NR tails
    (1, 512, 9, 62, 70, (1, 2), 1),   # a column step only; 9 x 31 pixels
    (3, 1024, 12, 24, 66, (3, 2), 2), # grouped; a row step of 3
    (1, 4096, 24, 26, 16, 2, 1),      # two reduction blocks; few output channels (narrow tile)
    (2, 64, 24, 26, 20, 2, 1),        # rows 512 bytes apart: read in place by the direct path
    (2, 24, 2, 2, 20, 2, 1),          # one pixel per image
])
def test_strided_1x1_copies_its_rows(isa, dtype, layout, N, C, H, W, K, stride, groups):
    # A strided 1x1 of a channels-last input (ResNet's downsampling) reads one input pixel
    # per output pixel: where a tile's rows would crowd one L1 set, they are gathered into
    # a buffer and multiplied there, the last partial tile packed (the cached and per-call
    # filter forms alike). Over 128 output pixels each: fewer take the few-pixel paths.
    g = torch.Generator().manual_seed(N * 1000 + C)
    if layout == "cl_channel_slice":  # pixel stride larger than the channel count
        x = torch.randn(N, C + 8, H, W, dtype=dtype, generator=g).to(
            memory_format=torch.channels_last)[:, 3:C + 3]
    elif layout == "cl_batch_view":  # batch stride larger than one image
        x = torch.randn(2 * N, C, H, W, dtype=dtype, generator=g).to(memory_format=torch.channels_last)[::2]
    else:
        x = torch.randn(N, C, H, W, dtype=dtype, generator=g).to(memory_format=torch.channels_last)
    w = torch.randn(K, C // groups, 1, 1, dtype=dtype, generator=g)
    b = torch.randn(K, dtype=dtype, generator=g)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=2e-4, atol=2e-4)
    cnnops.set_cpu_isa(isa)
    try:
        torch.testing.assert_close(cnnops.conv2d(x, w, b, stride=stride, groups=groups),
                                   F.conv2d(x, w, b, stride=stride, groups=groups), **tol)
        # a weight cached across calls (inference): the same path with the packed form kept
        fused = cnnops.inference.FusedConv2d(w, b, stride=stride, groups=groups, activation="relu")
        with torch.no_grad():
            for _ in range(2):
                torch.testing.assert_close(fused(x), F.relu(F.conv2d(x, w, b, stride=stride, groups=groups)),
                                           **tol)
    finally:
        cnnops.set_cpu_isa("auto")


@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("w_layout", ["kcrs", "krsc", "strided"])
@pytest.mark.parametrize("x_layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("N,C,H,W,K,R,S,stride,padding,dilation,groups", [
    (1, 64, 4, 4, 70, 3, 3, 1, 1, 1, 1),    # 16 pixels: the narrow tile; output-channel tail
    (3, 64, 5, 3, 40, 3, 3, 1, 1, 1, 1),    # 45 pixels over 3 images: panels span images
    (2, 256, 7, 7, 130, 1, 1, 2, 0, 1, 2),  # strided grouped 1x1
    (1, 96, 9, 8, 29, 3, 2, 2, 2, 2, 1),    # dilated, padding beyond the kernel's reach
    (4, 64, 2, 2, 70, 2, 2, 1, 0, 1, 1),    # 1 pixel per image
])
@pytest.mark.parametrize("cached", [False, True], ids=["per_call", "cached"])
def test_few_pixels_read_the_filter_in_place(isa, dtype, w_layout, x_layout, N, C, H, W, K, R, S, stride,
                                             padding, dilation, groups, cached):
    # At most 128 output pixels and a filter of at least 16384 elements: a filter packed per
    # call (no cache) has its rows read where they lie (KCRS or KRSC order) against an
    # im2col of every pixel, except strided filters; a cached one takes the packed path.
    g = torch.Generator().manual_seed(C * K + R)
    x = torch.randn(N, C, H, W, dtype=dtype, generator=g)
    if x_layout == "channels_last":
        x = x.to(memory_format=torch.channels_last)
    w = torch.randn(K, C // groups, R, S, dtype=dtype, generator=g)
    if w_layout == "krsc":
        w = w.to(memory_format=torch.channels_last)
    elif w_layout == "strided":
        w = torch.randn(K, C // groups, R, 2 * S, dtype=dtype, generator=g)[..., ::2]
    b = torch.randn(K, dtype=dtype, generator=g)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=2e-4, atol=2e-4)
    cnnops.set_cpu_isa(isa)
    limit = cnnops.weight_cache_info()["limit"]
    if not cached:
        cnnops.set_weight_cache_limit(0)
    try:
        for bias in (b, None):
            got = cnnops.conv2d(x, w, bias, stride, padding, dilation, groups)
            want = F.conv2d(x.double(), w.double(), None if bias is None else bias.double(), stride,
                            padding, dilation, groups)
            torch.testing.assert_close(got.double(), want, **tol)
        # dgrad (conv_transpose2d's forward) reads the same filter with its channel axes
        # swapped: in place when each channel's taps are one run (KCRS, stride 1).
        dy = torch.randn(want.shape, dtype=dtype, generator=g)
        if x_layout == "channels_last":
            dy = dy.to(memory_format=torch.channels_last)
        got = cnnops.conv_transpose2d(dy, w, None, stride, padding, 0, groups, dilation)
        want = F.conv_transpose2d(dy.double(), w.double(), None, stride, padding, 0, groups, dilation)
        torch.testing.assert_close(got.double(), want, **tol)
    finally:
        cnnops.set_cpu_isa("auto")
        cnnops.set_weight_cache_limit(limit)


@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("N,C,H,W,K,groups,batch_view", [
    (2, 64, 24, 25, 40, 1, False),   # 600 pixels: one chunk, a masked tail
    (1, 16, 70, 65, 12, 1, False),   # 4550 pixels: two chunks of the image (of 4096 at most)
    (3, 13, 23, 23, 7, 1, True),     # edge tiles in both directions; batch stride > image
    (1, 36, 32, 17, 20, 2, False),   # grouped
    (2, 2, 16, 33, 3, 1, False),     # fewer rows than the dot tile
])
def test_nchw_1x1_wgrad_dot_products(isa, dtype, N, C, H, W, K, groups, batch_view):
    # NCHW 1x1 wgrad of images of at least 512 pixels is a grid of dot products over
    # contiguous pixel rows of dy and x, summed in a fixed order (bits independent of the
    # thread count).
    g = torch.Generator().manual_seed(C * K + N)
    x = torch.randn(2 * N if batch_view else N, C, H, W, dtype=dtype, generator=g)
    x = x[::2] if batch_view else x
    dy = torch.randn(N, K, H, W, dtype=dtype, generator=g)
    w0 = torch.zeros(K, C // groups, 1, 1, dtype=torch.float64)
    want = torch.ops.aten.convolution_backward(dy.double(), x.double(), w0, None, [1, 1], [0, 0], [1, 1],
                                               False, [0, 0], groups, [False, True, False])[1]
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-3)
    cnnops.set_cpu_isa(isa)
    threads = torch.get_num_threads()
    try:
        got = [ops.conv2d_wgrad(dy, x, [1, 1], [1, 1], [0, 0], [1, 1], groups)]
        torch.set_num_threads(1)
        got.append(ops.conv2d_wgrad(dy, x, [1, 1], [1, 1], [0, 0], [1, 1], groups))
    finally:
        torch.set_num_threads(threads)
        cnnops.set_cpu_isa("auto")
    torch.testing.assert_close(got[0].double(), want, **tol)
    assert torch.equal(got[0], got[1])


@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("N,C,H,W,K,R,stride,groups", [
    (2, 256, 8, 8, 264, 1, 1, 1),    # 1x1, 64 pixels: output-channel tail
    (1, 288, 9, 7, 256, 3, 1, 1),    # 3x3, 63 pixels
    (3, 40, 6, 5, 24, 3, 2, 2),      # 3x2 pixels, few channels: below a vector of pixels
    (2, 512, 8, 8, 512, 3, 2, 2),    # stride 2 to 4x4, grouped
    (1, 300, 11, 11, 300, 1, 1, 1),  # 121 pixels: just under the limit
])
def test_nchw_deep_layers_run_through_channels_last(isa, dtype, N, C, H, W, K, R, stride, groups):
    # NCHW input and output with few pixels per image and many channels: the
    # correlation runs on channels-last copies (fprop, and dgrad's unit-step
    # correlation), its output copied back into the NCHW tensor, a fused output
    # stage included.
    g = torch.Generator().manual_seed(N * C + K)
    x = torch.randn(N, C, H, W, dtype=dtype, generator=g)
    w = torch.randn(K, C // groups, R, R, dtype=dtype, generator=g) / (C * R * R) ** 0.5
    b = torch.randn(K, dtype=dtype, generator=g)
    pad = R // 2
    cnnops.set_cpu_isa(isa)
    try:
        if dtype == torch.float64:
            assert_matches_with_grads(lambda x, w: cnnops.conv2d(x, w, b, stride, pad, 1, groups),
                                      lambda x, w: F.conv2d(x, w, b, stride, pad, 1, groups), x, w)
        want = F.conv2d(x.double(), w.double(), b.double(), stride, pad, 1, groups)
        r = torch.randn(want.shape, dtype=dtype, generator=g)
        got = cnnops.functional.conv2d_fused(x, w, b, stride, pad, 1, groups, "relu", r, "relu6")
        tol = 1e-4 if dtype == torch.float32 else 1e-10
        torch.testing.assert_close(got.double(), (want.relu() + r.double()).clamp(0, 6), rtol=tol, atol=tol)
        assert got.is_contiguous()
    finally:
        cnnops.set_cpu_isa("auto")
