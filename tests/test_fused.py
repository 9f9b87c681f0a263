"""The inference ops conv2d_fprop_fused and depthwise_fprop_fused (cnnops.functional.
conv2d_fused): every CPU path of both kernels with its output stage (activation, residual
add, activation) against torch in float64, on every ISA; the residual in any layout;
errors; the frozen-filter cache; opcheck and torch.compile.

Each conv path applies the stage on its own blocks (see csrc/cpu/util/epilogue.h), so the
shapes below pin each path (direct on and off, few pixels with a large filter, 1x1 read
in place, the strided stem, groups) with partial tiles, and each depthwise path (channels-
last 3x3, channels-last rows, flat planes, masked small planes, strided planes).
"""
import itertools

import pytest
import torch
import torch.nn.functional as F

import cnnops
from cnnops.functional import conv2d_fused
from conftest import supported_isas

pytestmark = [pytest.mark.conv2d, pytest.mark.depthwise]
ops = torch.ops.cnnops

ACTS = {
    None: lambda t: t,
    "relu": F.relu,
    "relu6": F.relu6,
    "silu": F.silu,
    "hardswish": F.hardswish,
    "hardsigmoid": F.hardsigmoid,
    "gelu": F.gelu,
    "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
}


def reference(x, w, b, stride, padding, dilation, groups, act, residual, post):
    y = ACTS[act](F.conv2d(x, w, b, stride, padding, dilation, groups))
    if residual is not None:
        y = y + residual
    return ACTS[post](y)


def make(shape, layout, g, dtype=torch.float64):
    t = torch.randn(*shape, dtype=dtype, generator=g)
    if layout == "channels_last":
        return t.contiguous(memory_format=torch.channels_last)
    if layout == "strided":  # every other column of a wider tensor
        wide = torch.randn(*shape[:3], 2 * shape[3], dtype=dtype, generator=g)
        return wide[..., ::2]
    return t


# (N, C, H, W, K, R, S, stride, padding, dilation, groups): one per conv path
CONV_CASES = [
    (2, 16, 13, 17, 20, 3, 3, 1, 1, 1, 1),   # 3x3 partial tiles (direct / im2col)
    (2, 3, 23, 21, 8, 7, 7, 2, 3, 1, 1),     # the strided stem
    (2, 24, 11, 11, 30, 1, 1, 1, 0, 1, 1),   # 1x1 read in place
    (2, 20, 9, 11, 12, 1, 1, 1, 0, 1, 1),    # 1x1, few output channels: the narrow tile
    (2, 16, 9, 55, 20, 1, 1, 2, 0, 1, 1),    # strided 1x1, Q = 28: channels_last read in place
    (1, 12, 9, 30, 16, 3, 2, 1, 2, 2, 2),    # dilated, grouped
    (1, 64, 4, 5, 40, 3, 3, 1, 1, 1, 1),     # few pixels, filter >= 16384: read in place
    (2, 300, 3, 3, 20, 1, 1, 1, 0, 1, 1),    # reduction over 256: several blocks
]


def _cid(c):
    return "N{}C{}H{}W{}K{}R{}S{}s{}p{}d{}g{}".format(*c)


@pytest.mark.parametrize("layout", ["nchw", "channels_last", "strided"])
@pytest.mark.parametrize("case", CONV_CASES, ids=_cid)
def test_conv_paths(case, layout, direct_paths):
    N, C, H, W, K, R, S, stride, padding, dilation, groups = case
    g = torch.Generator().manual_seed(hash(case) % 2**31)
    x = make((N, C, H, W), layout, g)
    w = make((K, C // groups, R, S), "channels_last" if layout == "channels_last" else "nchw", g)
    b = torch.randn(K, dtype=torch.float64, generator=g)
    plain = F.conv2d(x, w, b, stride, padding, dilation, groups)
    for act, post, res_layout in [("relu", None, None), (None, "relu", "nchw"),
                                  ("silu", "relu6", "channels_last"), ("gelu", "hardswish", "strided")]:
        r = None if res_layout is None else make(tuple(plain.shape), res_layout, g)
        got = conv2d_fused(x, w, b, stride, padding, dilation, groups, act, r, post)
        want = reference(x, w, b, stride, padding, dilation, groups, act, r, post)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
        assert got.is_contiguous(memory_format=torch.channels_last) == \
            plain.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_conv_isas_dtypes(isa, dtype, layout):
    cnnops.set_cpu_isa(isa)
    try:
        for case in CONV_CASES:
            N, C, H, W, K, R, S, stride, padding, dilation, groups = case
            g = torch.Generator().manual_seed(7)
            x = make((N, C, H, W), layout, g, dtype)
            w = make((K, C // groups, R, S), layout, g, dtype)
            b = torch.randn(K, dtype=dtype, generator=g)
            r = torch.randn_like(F.conv2d(x, w, b, stride, padding, dilation, groups))
            got = conv2d_fused(x, w, b, stride, padding, dilation, groups, "relu", r, "relu")
            want = reference(x.double(), w.double(), b.double(), stride, padding, dilation, groups,
                             "relu", r.double(), "relu")
            tol = 1e-4 if dtype == torch.float32 else 1e-10
            torch.testing.assert_close(got.double(), want, rtol=tol, atol=tol)
    finally:
        cnnops.set_cpu_isa("auto")


@pytest.mark.parametrize("act,post", list(itertools.product(ACTS, ACTS)),
                         ids=lambda a: str(a))
def test_every_activation_pair(act, post):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 8, 7, 9, dtype=torch.float64, generator=g) * 3  # both sides of every kink
    w = torch.randn(12, 8, 3, 3, dtype=torch.float64, generator=g) / 4
    r = torch.randn(2, 12, 7, 9, dtype=torch.float64, generator=g) * 3
    for residual in (None, r):
        got = conv2d_fused(x, w, None, 1, 1, activation=act, residual=residual,
                           post_activation=post)
        torch.testing.assert_close(got, reference(x, w, None, 1, 1, 1, 1, act, residual, post),
                                   rtol=1e-10, atol=1e-10)


def test_nan_passes_through_relu_like_torch():
    x = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    x[0, 0, 1, 1] = float("nan")
    w = torch.ones(1, 1, 1, 1, dtype=torch.float64)
    for act in ("relu", "relu6"):
        got = conv2d_fused(x, w, activation=act)
        torch.testing.assert_close(got, ACTS[act](x), equal_nan=True)


# Shapes with full tiles (14 pixels by 32 float channels on AVX-512, 6 by 16 on AVX2):
# a stage of ReLU / ReLU6 and a residual with contiguous channels is applied in registers
# as each full tile is stored (microkernel.h, TileStage), the partial tiles and the other
# stages after the store, each set of tiles on its own path.
STAGED_CASES = [
    (2, 40, 14, 15, 72, 1, 1, 1, 0, 1, 1),   # 1x1 over flat pixels: tiles cross rows and images
    (1, 24, 9, 28, 70, 3, 3, 1, 1, 1, 1),    # 3x3 channels-last direct, rows of 28 pixels
    (1, 300, 5, 28, 40, 1, 1, 1, 0, 1, 1),   # 1x1, two reduction blocks: staged on the last
]


def _residual(shape, kind, g, dtype):
    N, K, P, Q = shape
    if kind == "channels_last":
        return make(shape, kind, g, dtype)
    if kind == "pixel_gaps":  # channels contiguous, pixels 2K apart
        return torch.randn(N, P, Q, 2 * K, dtype=dtype, generator=g)[..., :K].permute(0, 3, 1, 2)
    if kind == "row_gaps":  # channels contiguous, every other row: pixels not at one step
        t = torch.randn(N, 2 * P, Q, K, dtype=dtype, generator=g).permute(0, 3, 1, 2)
        return t[:, :, ::2]
    return make(shape, kind, g, dtype)


@pytest.mark.parametrize("stream", [False, True], ids=["stored", "streamed"])
@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", STAGED_CASES, ids=_cid)
def test_stage_in_registers(case, dtype, isa, stream):
    """streamed: every output written with non-temporal stores (large outputs are)."""
    N, C, H, W, K, R, S, stride, padding, dilation, groups = case
    g = torch.Generator().manual_seed(11)
    x = make((N, C, H, W), "channels_last", g, dtype)
    x[0, 3, 2, 5] = float("nan")  # NaN passes through ReLU and ReLU6, as in torch
    w = make((K, C, R, S), "channels_last", g, dtype)
    b = torch.randn(K, dtype=dtype, generator=g)
    shape = (N, K) + tuple(F.conv2d(x, w, b, stride, padding, dilation, groups).shape[2:])
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    cnnops.set_cpu_isa(isa)
    cnnops._C.set_stream_min_bytes(0 if stream else -1)
    try:
        for act, post, kind in [(None, None, None), ("relu", "relu", "channels_last"), ("relu6", None, None),
                                (None, "relu6", "pixel_gaps"), ("relu", None, "row_gaps"),
                                (None, None, "channels_last"), ("relu", "relu", "nchw"),
                                ("silu", "relu", "channels_last")]:
            r = None if kind is None else _residual(shape, kind, g, dtype)
            got = conv2d_fused(x, w, b, stride, padding, dilation, groups, act, r, post)
            want = reference(x.double(), w.double(), b.double(), stride, padding, dilation, groups,
                             act, None if r is None else r.double(), post)
            torch.testing.assert_close(got.double(), want, rtol=tol, atol=tol, equal_nan=True)
            assert got.isnan().any()
    finally:
        cnnops.set_cpu_isa("auto")
        cnnops._C.set_stream_min_bytes(-1)


# (N, C, H, W, M, R, S, stride, padding, dilation): one per depthwise path
DW_CASES = [
    (2, 19, 12, 13, 1, 3, 3, 1, 1, 1),   # channels_last: 3x3 spans; NCHW: flat planes
    (2, 19, 12, 13, 2, 3, 3, 1, 1, 1),   # multiplier 2: channels-last rows
    (2, 18, 13, 11, 1, 5, 5, 2, 2, 1),   # strided planes / rows
    (1, 8, 6, 7, 1, 3, 3, 1, 1, 1),      # small same-size planes: masked
    (2, 8, 9, 10, 1, 3, 3, 1, 2, 2),     # dilated
]


@pytest.mark.parametrize("layout", ["nchw", "channels_last", "strided"])
@pytest.mark.parametrize("case", DW_CASES, ids=lambda c: "N{}C{}H{}W{}M{}R{}S{}s{}p{}d{}".format(*c))
def test_depthwise_paths(case, layout):
    N, C, H, W, M, R, S, stride, padding, dilation = case
    g = torch.Generator().manual_seed(hash(case) % 2**31)
    x = make((N, C, H, W), layout, g)
    w = torch.randn(C * M, 1, R, S, dtype=torch.float64, generator=g)
    b = torch.randn(C * M, dtype=torch.float64, generator=g)
    plain = F.conv2d(x, w, b, stride, padding, dilation, C)
    for act, post, res_layout in [("relu6", None, None), (None, "relu", "channels_last"),
                                  ("hardswish", "silu", "nchw")]:
        r = None if res_layout is None else make(tuple(plain.shape), res_layout, g)
        got = conv2d_fused(x, w, b, stride, padding, dilation, C, act, r, post)
        want = reference(x, w, b, stride, padding, dilation, C, act, r, post)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_depthwise_isas_dtypes(isa, dtype):
    cnnops.set_cpu_isa(isa)
    try:
        for case, layout in itertools.product(DW_CASES, ["nchw", "channels_last"]):
            N, C, H, W, M, R, S, stride, padding, dilation = case
            g = torch.Generator().manual_seed(11)
            x = make((N, C, H, W), layout, g, dtype)
            w = torch.randn(C * M, 1, R, S, dtype=dtype, generator=g)
            b = torch.randn(C * M, dtype=dtype, generator=g)
            r = torch.randn_like(F.conv2d(x, w, b, stride, padding, dilation, C))
            got = conv2d_fused(x, w, b, stride, padding, dilation, C, "relu6", r, "relu")
            want = reference(x.double(), w.double(), b.double(), stride, padding, dilation, C,
                             "relu6", r.double(), "relu")
            tol = 1e-4 if dtype == torch.float32 else 1e-10
            torch.testing.assert_close(got.double(), want, rtol=tol, atol=tol)
    finally:
        cnnops.set_cpu_isa("auto")


def test_same_padding_unbatched_and_empty_batch():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(6, 11, 10, dtype=torch.float64, generator=g)
    w = torch.randn(4, 6, 3, 3, dtype=torch.float64, generator=g)
    ref = cnnops.conv2d(x, w, None, 2, "same")
    r = torch.randn_like(ref)
    torch.testing.assert_close(conv2d_fused(x, w, None, 2, "same", activation="relu", residual=r),
                               F.relu(ref) + r)
    empty = torch.empty(0, 6, 11, 10, dtype=torch.float64)
    assert conv2d_fused(empty, w, None, 1, 1, activation="relu").shape == (0, 4, 11, 10)


def test_errors_name_the_argument():
    x, w = torch.randn(1, 4, 8, 8), torch.randn(6, 4, 3, 3)
    with pytest.raises(ValueError, match="activation"):
        conv2d_fused(x, w, activation="tanh")
    with pytest.raises(ValueError, match="post_activation"):
        ops.conv2d_fprop_fused(x, w, None, [1, 1], [1, 1, 1, 1], [1, 1], 1, "none", None, "elu")
    with pytest.raises(ValueError, match="residual.*shape"):
        conv2d_fused(x, w, padding=1, residual=torch.randn(1, 6, 8, 7))
    with pytest.raises((ValueError, TypeError), match="residual"):
        conv2d_fused(x, w, padding=1, residual=torch.randn(1, 6, 8, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match="input requires grad"):
        conv2d_fused(x.requires_grad_(), w, padding=1)
    with pytest.raises(ValueError, match="residual requires grad"):
        conv2d_fused(torch.randn(1, 4, 8, 8), w, padding=1,
                     residual=torch.randn(1, 6, 8, 8, requires_grad=True))
    with torch.no_grad():  # no graph: fine
        conv2d_fused(x, w, padding=1)


def test_frozen_filter_sees_in_place_updates():
    g = torch.Generator().manual_seed(9)
    x = torch.randn(1, 64, 6, 6, generator=g)
    w = torch.randn(128, 64, 3, 3, generator=g)
    assert cnnops._C.freeze_filter(w)
    assert not cnnops._C.freeze_filter(torch.randn(4, 4, 1, 1))  # too small to cache
    for _ in range(2):
        torch.testing.assert_close(conv2d_fused(x, w, padding=1, activation="relu"),
                                   F.relu(F.conv2d(x, w, padding=1)), rtol=1e-4, atol=1e-4)
    w.mul_(-1)  # bumps the version counter: the frozen hash is no longer trusted
    torch.testing.assert_close(conv2d_fused(x, w, padding=1, activation="relu"),
                               F.relu(F.conv2d(x, w, padding=1)), rtol=1e-4, atol=1e-4)


def _opcheck_samples():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 8, 9, 9, generator=g)
    cl = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(12, 8, 3, 3, generator=g)
    dw = torch.randn(8, 1, 3, 3, generator=g)
    r = torch.randn(2, 12, 9, 9, generator=g)
    rd = torch.randn(2, 8, 9, 9, generator=g)
    return [
        (ops.conv2d_fprop_fused, (x, w, None, [1, 1], [1, 1, 1, 1], [1, 1], 1, "relu", r, "relu")),
        (ops.conv2d_fprop_fused, (cl, w, torch.randn(12), [1, 1], [1, 1, 1, 1], [1, 1], 1, "silu",
                                  None, "none")),
        (ops.depthwise_fprop_fused, (x, dw, None, [1, 1], [1, 1, 1, 1], [1, 1], "relu6", rd,
                                     "none")),
        (ops.depthwise_fprop_fused, (cl, dw, torch.randn(8), [2, 2], [1, 1, 1, 1], [1, 1],
                                     "hardswish", None, "relu")),
    ]


@pytest.mark.parametrize("sample", range(4))
def test_opcheck(sample):
    op, args = _opcheck_samples()[sample]
    torch.library.opcheck(op, args)


def test_compile_fullgraph():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 8, 9, 9, generator=g)
    w = torch.randn(12, 8, 3, 3, generator=g)
    dw = torch.randn(12, 1, 3, 3, generator=g)

    def f(x, r):
        y = conv2d_fused(x, w, None, 1, 1, activation="relu")
        return conv2d_fused(y, dw, None, 1, 1, 1, 12, "relu6", r, "relu")

    r = torch.randn(2, 12, 9, 9, generator=g)
    with torch.no_grad():
        got = torch.compile(f, fullgraph=True, backend="aot_eager")(x, r)
    y = F.relu(F.conv2d(x, w, None, 1, 1))
    torch.testing.assert_close(got, F.relu(F.relu6(F.conv2d(y, dw, None, 1, 1, 1, 12)) + r))


@pytest.mark.parametrize("act", [a for a in ACTS if a is not None])
def test_float32_activations_match_torch(act):
    # float32 takes its own exp (csrc/common/activation.h); check it across the range,
    # at the extremes and on non-finite values against torch's float32 activation.
    v = torch.cat([torch.linspace(-100, 100, 20001), torch.tensor(
        [-1e30, -88.5, -87.2, 87.5, 88.9, 1e30, float("inf"), -float("inf"), float("nan"), 0.0, -0.0])])
    x = v.reshape(1, 1, 1, -1)
    w = torch.ones(1, 1, 1, 1)
    got = conv2d_fused(x, w, activation=act)
    want = ACTS[act](x)
    finite = torch.isfinite(x)
    torch.testing.assert_close(got[finite], want[finite], rtol=2e-6, atol=1e-6)
    if act in ("relu", "relu6", "hardswish", "hardsigmoid"):  # exact at ±inf, NaN kept
        torch.testing.assert_close(got, want, equal_nan=True)
    assert torch.isnan(got[torch.isnan(x)]).all()


@pytest.mark.parametrize("isa", supported_isas())
@pytest.mark.parametrize("layout", ["nchw", "channels_last", "strided"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("N,H,W", [
    (2, 5, 7),    # 70 pixels: 5 main tiles on AVX-512, 14 short tiles of 5 on AVX2
    (1, 7, 7),    # 49: short tiles of 10 rows (AVX-512) or 5 (AVX2), the last one partial
    (1, 10, 10),  # 100: 10 short tiles of 10 on AVX-512
])
def test_frozen_few_pixels_every_isa(isa, layout, dtype, N, H, W):
    # A frozen filter with few output pixels takes the packed few-pixel path (all
    # pixels' im2col packed once, tasks over output-channel panels): partial tiles,
    # partial panels, three reduction blocks, the stage on top; the tile height that
    # leaves fewest rows empty (a short tile reads a row-major pack).
    cnnops.set_cpu_isa(isa)
    try:
        g = torch.Generator().manual_seed(21)
        x = make((N, 64, H, W), layout, g, dtype)
        w = make((40, 64, 3, 3), "channels_last" if layout == "channels_last" else "nchw", g, dtype)
        b = torch.randn(40, dtype=dtype, generator=g)
        assert cnnops._C.freeze_filter(w)
        r = torch.randn(N, 40, H, W, dtype=dtype, generator=g)
        want = reference(x.double(), w.double(), b.double(), 1, 1, 1, 1, "relu", r.double(), "silu")
        for _ in range(2):  # packs, then reuses the packed form
            got = conv2d_fused(x, w, b, 1, 1, 1, 1, "relu", r, "silu")
            tol = 1e-4 if dtype == torch.float32 else 1e-10
            torch.testing.assert_close(got.double(), want, rtol=tol, atol=tol)
    finally:
        cnnops.set_cpu_isa("auto")


# ----------------------------------------------------------------------------- CUDA
# On CUDA the stage is one pass after the convolution kernel (csrc/cuda/epilogue): every
# dtype, both layouts, a residual in the other layout, conv and depthwise, against float64.

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16, torch.float16],
                         ids=lambda d: str(d).split(".")[-1])
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_cuda_stage(layout, dtype):
    dw_as_conv = [(N, C, H, W, C * M, R, S, st, p, d, C) for N, C, H, W, M, R, S, st, p, d in DW_CASES]
    for case in CONV_CASES + dw_as_conv:
        N, C, H, W, K, R, S, stride, padding, dilation, groups = case
        g = torch.Generator().manual_seed(13)
        x = make((N, C, H, W), layout, g)
        w = make((K, C // groups, R, S), layout, g)
        b = torch.randn(K, dtype=torch.float64, generator=g)
        shape = F.conv2d(x, w, b, stride, padding, dilation, groups).shape
        other = "nchw" if layout == "channels_last" else "channels_last"
        for act, post, r in [("relu", None, None), ("silu", "relu6", make(shape, other, g)),
                             ("hardswish", "gelu", make(shape, layout, g))]:
            want = reference(x, w, b, stride, padding, dilation, groups, act, r, post)
            dev = [None if t is None else t.to("cuda", dtype) for t in (x, w, b, r)]
            got = conv2d_fused(dev[0], dev[1], dev[2], stride, padding, dilation, groups, act,
                               dev[3], post)
            assert got.dtype == dtype and got.shape == want.shape
            err = (got.double().cpu() - want).abs().max().item()
            if dtype == torch.float64:
                bound = 1e-10
            elif dtype == torch.float32:
                bound = 1e-4 * max(1.0, want.abs().max().item())
            else:  # at most 2x torch's own error in this dtype (plus one rounding of the stage)
                mine = reference(*dev[:3], stride, padding, dilation, groups, act, dev[3], post)
                bound = 2 * (mine.double().cpu() - want).abs().max().item() + \
                    2 * torch.finfo(dtype).eps * want.abs().max().item()
            assert err <= bound, f"{_cid(case)} {act}/{post}: error {err:.3e} > {bound:.3e}"
