"""Shared test helpers: import path, family markers, devices, CPU ISA, thread and
output-store fixtures, the float64 torch reference and the comparison tolerances, and the
hypothesis profile.

Tests are grouped by op family: test_<family>*.py holds a family's own tests (conv2d,
depthwise, max_pool2d, avg_pool2d), and files that check one family under another name (autograd,
opcheck/compile, errors, hypothesis, nn, conv_transpose2d, separable) carry the family's
marker, so `pytest -k conv2d` (or `-m conv2d`) selects all of a family's tests.
"""
import math
import os
import pathlib
import sys

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import cnnops  # noqa: E402

FAMILIES = {
    "conv2d": "the conv2d family: conv2d_fprop/dgrad/wgrad/bias_grad (conv2d, conv_transpose2d)",
    "depthwise": "the depthwise family: depthwise_fprop/dgrad/wgrad/backward",
    "max_pool2d": "the max_pool2d family: max_pool2d_fwd/values/bwd",
    "avg_pool2d": "the avg_pool2d family: avg_pool2d_fwd/bwd, adaptive_avg_pool2d_fwd/bwd",
}


def pytest_configure(config):
    for name, what in FAMILIES.items():
        config.addinivalue_line("markers", f"{name}: {what}")

try:
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "cnnops",
        deadline=None,
        max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "40")),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        print_blob=True,
    )
    # CI draws a fixed set of examples (reproducible runs); local runs explore new ones.
    settings.register_profile("ci", parent=settings.get_profile("cnnops"), derandomize=True)
    default_profile = "ci" if os.environ.get("CI") == "true" else "cnnops"
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", default_profile))
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    pass

# ----------------------------------------------------------------------------- devices

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
if torch.cuda.is_available():
    # The float32 tolerances below are for true float32 arithmetic; cnnops follows
    # cudnn.allow_tf32 on CUDA, and TF32 accuracy is a separate test's business.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def device_params():
    """pytest params over the devices this machine has ('cuda' only with a GPU)."""
    return [pytest.param(d, id=d) for d in DEVICES]


def dtype_params():
    return [pytest.param(torch.float64, id="f64"), pytest.param(torch.float32, id="f32")]


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(params=[True, False], ids=["direct", "im2col"])
def direct_paths(request):
    """Every conv test once with the direct (packing-free) CPU paths allowed, once with the
    im2col paths forced (cnnops._C.set_direct_paths)."""
    cnnops._C.set_direct_paths(request.param)
    try:
        yield request.param
    finally:
        cnnops._C.set_direct_paths(True)


def supported_isas():
    return [s for s in cnnops.build_info()["cpu_isas"].split(",") if s]


@pytest.fixture(params=supported_isas())
def cpu_isa(request):
    """Runs the test once per micro-kernel ISA this CPU supports; restores 'auto'."""
    cnnops.set_cpu_isa(request.param)
    try:
        assert cnnops.build_info()["cpu_isa"] == request.param
        yield request.param
    finally:
        cnnops.set_cpu_isa("auto")


@pytest.fixture
def restore_threads():
    n = torch.get_num_threads()
    yield n
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


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


# ----------------------------------------------------------------------------- tolerances

def tolerances(dtype):
    """(rtol, atol) relative to the magnitude of the reference."""
    if dtype == torch.float64:
        return 1e-10, 1e-10
    return 1e-4, 1e-4


def assert_close(actual, expected, dtype=None, what=""):
    """actual (any float dtype) against a float64 reference; atol scales with max |expected|."""
    dtype = dtype or actual.dtype
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert actual.dtype == dtype, f"{what}: dtype {actual.dtype} != {dtype}"
    rtol, atol = tolerances(dtype)
    scale = max(1.0, expected.abs().max().item()) if expected.numel() else 1.0
    torch.testing.assert_close(actual.detach().double().cpu(), expected.detach().double().cpu(),
                               rtol=rtol, atol=atol * scale, msg=lambda m: f"{what}: {m}")


def assert_matches_with_grads(ours, theirs, x, w):
    """ours(x, w), float64, and its gradients for x and w against theirs on the same values."""
    xc, wc = x.clone().requires_grad_(), w.clone().requires_grad_()
    xt, wt = x.clone().requires_grad_(), w.clone().requires_grad_()
    got, want = ours(xc, wc), theirs(xt, wt)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    dy = torch.randn_like(want)
    for g, t in zip(torch.autograd.grad(got, (xc, wc), dy), torch.autograd.grad(want, (xt, wt), dy)):
        torch.testing.assert_close(g, t, rtol=1e-10, atol=1e-10)


def memory_format_of(t):
    return t.is_contiguous(), t.is_contiguous(memory_format=torch.channels_last)


def ambiguous_layout(t):
    """Both NCHW- and NHWC-contiguous with more than one element (e.g. H = W = 1)."""
    t4 = t.unsqueeze(0) if t.dim() == 3 else t
    return t4.dim() == 4 and t4.numel() > 1 and all(memory_format_of(t4))


# ----------------------------------------------------------------------------- reference

def reference(fn, *tensors, grad_output=None, **kwargs):
    """torch's result in float64 on the CPU: fn(*tensors as float64, **kwargs).

    Tensors that require grad are differentiated; with grad_output given, returns
    (output, [grads of the tensors that require grad, None for the rest]).
    """
    leaves = []
    for t in tensors:
        if isinstance(t, torch.Tensor):
            # plain contiguous copies: torch's own strided/channels_last CPU paths are what
            # we test against, not what we trust (e.g. its weight grad is wrong for an input
            # of strides (4, 1, 8, 4) with a channels_last weight and groups=2)
            d = t.detach().to("cpu", torch.float64).contiguous().requires_grad_(t.requires_grad)
            leaves.append(d)
        else:
            leaves.append(t)
    out = fn(*leaves, **kwargs)
    if grad_output is None:
        return out.detach()
    diff = [t for t in leaves if isinstance(t, torch.Tensor) and t.requires_grad]
    grads = torch.autograd.grad(out, diff, grad_output.detach().to("cpu", torch.float64),
                                allow_unused=True) if diff else []
    it = iter(grads)
    return out.detach(), [next(it) if isinstance(t, torch.Tensor) and t.requires_grad else None
                          for t in leaves]


def check_against_torch(ours, theirs, tensors, kwargs=None, dtype=None, check_format=True,
                        grad_output_transform=None):
    """Runs ours(*tensors, **kwargs) forward and backward and compares output, every
    gradient and (optionally) the output memory format with theirs in float64.

    `tensors` are leaves (requires_grad set where gradients are wanted), any layout.
    Returns our output.
    """
    kwargs = kwargs or {}
    out = ours(*tensors, **kwargs)
    expected_fwd = theirs(*[t.detach() if isinstance(t, torch.Tensor) else t for t in tensors],
                          **kwargs)
    dtype = dtype or next(t for t in tensors if isinstance(t, torch.Tensor)).dtype
    g = torch.randn(out.shape, dtype=torch.float64)
    if grad_output_transform is not None:
        g = grad_output_transform(g)
    ref_out, ref_grads = reference(theirs, *tensors, grad_output=g, **kwargs)
    assert_close(out, ref_out, dtype, "output")
    # Not compared: empty outputs (see test_empty_batch_memory_format) and inputs whose layout
    # is ambiguous (both NCHW- and NHWC-contiguous, e.g. H = W = 1), for which torch's choice
    # depends on its backend (dtype, depthwise or not).
    ambiguous = any(ambiguous_layout(t) for t in tensors if isinstance(t, torch.Tensor))
    if check_format and out.numel() > 0 and not ambiguous:
        assert memory_format_of(out) == memory_format_of(expected_fwd), (
            f"output memory format {out.stride()} differs from torch's {expected_fwd.stride()}")
    diff = [t for t in tensors if isinstance(t, torch.Tensor) and t.requires_grad]
    if diff:
        grads = torch.autograd.grad(out, diff, g.to(out.device, out.dtype), allow_unused=True)
        it = iter(grads)
        names = ["input", "weight", "bias"]
        for i, t in enumerate(tensors):
            if isinstance(t, torch.Tensor) and t.requires_grad:
                mine = next(it)
                assert mine is not None, f"no gradient for argument {i}"
                assert_close(mine, ref_grads[i], dtype, f"grad {names[i] if i < 3 else i}")
    return out


def make(shape, dtype=torch.float64, device="cpu", requires_grad=True, channels_last=False):
    t = torch.randn(shape, dtype=dtype, device=device)
    if channels_last:
        t = t.to(memory_format=torch.channels_last)
    return t.requires_grad_(requires_grad)


# ----------------------------------------------------------------------------- half precision (CUDA)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="float16/bfloat16 run on CUDA only")


def low_precision_params():
    """float16 and bfloat16, for tests that run on CUDA only (skipped without a GPU)."""
    return [pytest.param(torch.float16, id="f16", marks=needs_cuda),
            pytest.param(torch.bfloat16, id="bf16", marks=needs_cuda)]


def _relative_error(actual, expected):
    a, e = actual.detach().double().cpu(), expected.detach().double().cpu()
    return ((a - e).norm() / e.norm().clamp_min(1e-30)).item()


def low_precision_conv_inputs(device, dtype, layout, x_shape, w_shape):
    """x and w for a float16/bfloat16 conv test, in `layout` ("nchw" or "cl"); skips
    unless device is CUDA (the test files parametrize every test over devices)."""
    if device != "cuda":
        pytest.skip("float16/bfloat16 run on CUDA only")
    cl = layout == "cl"
    return (make(x_shape, dtype, device, channels_last=cl),
            make(w_shape, dtype, device, channels_last=cl))


def check_low_precision(ours, theirs, tensors, kwargs=None, factor=2.0):
    """The half-precision rule: ours(*tensors) and every gradient, in the tensors' own
    (float16/bfloat16, CUDA) dtype, must be within `factor` times torch's own error at that
    precision. Errors are relative norms against torch in float64 on the CPU from the same
    (already rounded) inputs, so only the arithmetic is judged, not the input rounding.
    Returns {what: (our error, torch's error)}."""
    kwargs = kwargs or {}
    out = ours(*tensors, **kwargs)
    dtype = out.dtype
    assert dtype in (torch.float16, torch.bfloat16) and out.is_cuda
    torch_leaves = [t.detach().clone().requires_grad_(t.requires_grad) for t in tensors]
    torch_out = theirs(*torch_leaves, **kwargs)
    g = torch.randn(out.shape, dtype=torch.float64)
    ref_out, ref_grads = reference(theirs, *tensors, grad_output=g, **kwargs)
    errors = {"output": (_relative_error(out, ref_out), _relative_error(torch_out, ref_out))}
    diff = [i for i, t in enumerate(tensors) if t.requires_grad]
    if diff:
        gd = g.to(out.device, dtype)
        mine = torch.autograd.grad(out, [tensors[i] for i in diff], gd)
        theirs_g = torch.autograd.grad(torch_out, [torch_leaves[i] for i in diff], gd)
        for i, a, b in zip(diff, mine, theirs_g):
            assert a.dtype == dtype and a.shape == tensors[i].shape
            errors[f"grad {i}"] = (_relative_error(a, ref_grads[i]), _relative_error(b, ref_grads[i]))
    for what, (e_ours, e_torch) in errors.items():
        assert math.isfinite(e_ours) and e_ours <= factor * e_torch + 1e-6, (
            f"{what}: cnnops' {dtype} error {e_ours:.3e} is over {factor}x torch's {e_torch:.3e}")
    return errors


class OpNames(TorchDispatchMode):
    """Records the name of every op dispatched (tests that check which op a call reaches)."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.seen.append(str(func.overloadpacket))
        return func(*args, **(kwargs or {}))
