"""torch's own OpInfo samples (torch.testing._internal's op_db) through the cnnops functions.

The op_db entries whose function cnnops provides: nn.functional.conv2d (its samples
include padding 'same' and 'valid', groups, depthwise filters and unbatched inputs),
nn.functional.conv_transpose2d, nn.functional.max_pool2d (return_indices True and False:
op_db has no separate with_indices entry; NCHW and channels_last) and
max_pool2d_with_indices_backward (max_pool2d's input gradient for a grad_output of ones).
Every sample, and its noncontiguous() copy, runs through cnnops and through torch with the
same args and kwargs: outputs, indices and the gradients of every differentiable input
(input, weight, bias; random grad_output) must match, at torch.testing.assert_close's
default tolerances per dtype (for float32 the absolute part scaled by the result's
magnitude: the sums run in another order than torch's), and outputs and gradients come in
torch's memory format. The samples also run without requires_grad (the inference paths,
e.g. max_pool2d_values). A sample torch refuses must be refused by cnnops too, and so must
each of op_db's error_inputs.
On CUDA the same runs, plus float16/bfloat16: output and gradients within twice torch's
own error against torch in float64 from the same rounded inputs, indices exact.
"""
import math

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("expecttest")  # op_db's module imports it

from torch.testing._internal.common_methods_invocations import op_db  # noqa: E402

import cnnops  # noqa: E402
from conftest import _relative_error, ambiguous_layout, memory_format_of  # noqa: E402


def _max_pool2d_grad(input, **kwargs):
    """max_pool2d_with_indices_backward's OpInfo function, on cnnops: the input gradient of
    max_pool2d for a grad_output of ones."""
    out = cnnops.max_pool2d(input, **kwargs)
    out = out[0] if isinstance(out, tuple) else out
    return torch.autograd.grad(out, input, torch.ones_like(out))[0]


# op_db name -> (cnnops function, family markers, whether its gradients are compared: the
# backward entry's value is a gradient already). A conv2d with groups == in_channels and a
# (C*M, 1, R, S) filter runs on the depthwise kernels.
OURS = {
    "nn.functional.conv2d": (cnnops.conv2d, ("conv2d", "depthwise"), True),
    "nn.functional.conv_transpose2d": (cnnops.conv_transpose2d, ("conv2d",), True),
    "nn.functional.max_pool2d": (cnnops.max_pool2d, ("max_pool2d",), True),
    "max_pool2d_with_indices_backward": (_max_pool2d_grad, ("max_pool2d",), False),
}
# Which cnnops function an op_db entry calls is decided by its name above, but an entry is
# only ours if it still calls the torch function of that name (op_db could be reorganised).
TORCH_FN = {
    "nn.functional.conv2d": (F.conv2d, torch.conv2d),
    "nn.functional.conv_transpose2d": (F.conv_transpose2d, torch.conv_transpose2d),
    "nn.functional.max_pool2d": (F.max_pool2d,),
    "max_pool2d_with_indices_backward": None,  # a wrapper function in op_db's module
}
OPS = [op for op in op_db if op.name in OURS]
CPU_DTYPES = (torch.float64, torch.float32)
CUDA_DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)
HALF = (torch.float16, torch.bfloat16)


def _name(op):
    return op.name + (f".{op.variant_test_name}" if op.variant_test_name else "")


def _marks(op):
    return [getattr(pytest.mark, m) for m in OURS[op.name][1]]


def _op_params(device, dtypes):
    """(op, dtype, requires_grad) for every entry and dtype op_db gives samples for; without
    requires_grad only for the entries that are not gradients themselves."""
    params = []
    for op in OPS:
        for dtype in dtypes:
            if dtype not in op.supported_dtypes(device):
                continue
            for requires_grad in (True, False) if OURS[op.name][2] else (True,):
                params.append(pytest.param(
                    op, dtype, requires_grad, marks=_marks(op),
                    id=f"{_name(op)}-{str(dtype)[6:]}-{'grad' if requires_grad else 'nograd'}"))
    return params


def _op_only_params():
    return [pytest.param(op, id=_name(op), marks=_marks(op))
            for op in OPS if op.error_inputs_func is not None]


needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.conv2d
@pytest.mark.max_pool2d
def test_op_db_has_our_entries():
    """op_db still has the four entries, the three forward ones calling the functions cnnops
    replaces."""
    assert {op.name for op in OPS} == set(OURS)
    for op in OPS:
        if TORCH_FN[op.name] is not None:
            assert any(op.op is f for f in TORCH_FN[op.name]), (op.name, op.op)


# ----------------------------------------------------------------------------- helpers

def _leaf(t, dtype=None, device=None):
    """A fresh leaf copy of t with t's strides (also non-dense ones, which clone() and to()
    would make contiguous), requiring grad as t does."""
    if not isinstance(t, torch.Tensor):
        return t
    c = torch.empty_strided(t.shape, t.stride(), dtype=dtype or t.dtype, device=device or t.device)
    c.copy_(t.detach())
    return c.requires_grad_(t.requires_grad and c.is_floating_point())


def _call(fn, sample, dtype=None, device=None):
    """fn on fresh leaf copies of the sample's tensors: (result or exception, leaves)."""
    args = [_leaf(sample.input, dtype, device)] + [_leaf(a, dtype, device) for a in sample.args]
    kwargs = {k: _leaf(v, dtype, device) for k, v in sample.kwargs.items()}
    try:
        return fn(*args, **kwargs), args
    except Exception as e:  # noqa: BLE001 - any refusal counts as one
        return e, args


def _split(result):
    """(values, indices or None)."""
    if isinstance(result, tuple):
        return result[0], result[1]
    return result, None


def _grads(values, leaves, grad_output):
    diff = [t for t in leaves if isinstance(t, torch.Tensor) and t.requires_grad]
    if not diff or not values.requires_grad:
        return []
    return list(torch.autograd.grad(values, diff, grad_output, allow_unused=True))


def _describe(i, sample, variant):
    shapes = [tuple(t.shape) if isinstance(t, torch.Tensor) else t for t in (sample.input, *sample.args)]
    strides = tuple(sample.input.stride())
    return f"sample {i} ({variant}): {shapes} input strides {strides} {sample.kwargs}"


def _tolerances(dtype):
    """assert_close's defaults for float64; float32 sums of up to C*R*S products of values
    up to 9 (make_tensor's range) in another order than torch's: its defaults, with the
    absolute part scaled by the reference's magnitude."""
    if dtype == torch.float32:
        return 1.3e-6, 1e-5
    return 1e-7, 1e-7


def _assert_close(actual, expected, what):
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != torch's {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != torch's {tuple(expected.shape)}"
    rtol, atol = _tolerances(expected.dtype)
    scale = max(1.0, expected.detach().abs().max().item()) if expected.numel() else 1.0
    torch.testing.assert_close(actual.detach(), expected.detach(), rtol=rtol, atol=atol * scale,
                               equal_nan=True, msg=lambda m: f"{what}: {m}")


def _assert_same_format(actual, expected, leaves, what):
    """actual in torch's memory format (NCHW, channels_last or neither), unless some input's
    layout is ambiguous (both, e.g. H = W = 1): torch's choice then depends on its backend."""
    if actual.numel() <= 1 or any(ambiguous_layout(t) for t in leaves
                                  if isinstance(t, torch.Tensor) and t.dim() >= 3):
        return
    assert memory_format_of(actual) == memory_format_of(expected), (
        f"{what}: strides {actual.stride()} in another memory format than torch's {expected.stride()}")


def _compare_sample(op, sample, dtype):
    """cnnops and torch on one sample, same args and kwargs, same dtype and device."""
    ours_fn = OURS[op.name][0]
    theirs, t_leaves = _call(op, sample)
    ours, o_leaves = _call(ours_fn, sample)
    if isinstance(theirs, Exception):
        assert isinstance(ours, Exception), f"torch refuses ({theirs!r}) but cnnops accepts"
        return "refused"
    if isinstance(ours, Exception):
        raise AssertionError(f"cnnops refuses ({ours!r}) but torch accepts") from ours
    (y, ind), (ty, tind) = _split(ours), _split(theirs)
    _assert_close(y, ty, "output")
    assert (ind is None) == (tind is None), "indices returned by only one of the two"
    if ind is not None:
        assert ind.dtype == tind.dtype and torch.equal(ind, tind), f"indices differ:\n{ind}\n{tind}"
    _assert_same_format(y, ty, t_leaves, "output")
    if not OURS[op.name][2]:
        return "ok"
    g = torch.randn(ty.shape, dtype=ty.dtype, device=ty.device)
    t_grads, o_grads = _grads(ty, t_leaves, g), _grads(y, o_leaves, g)
    assert len(o_grads) == len(t_grads), "a differentiable input has a gradient only in torch"
    names = iter(["input", "weight", "bias"])
    for a, b in zip(o_grads, t_grads):
        what = f"grad {next(names)}"
        assert (a is None) == (b is None), f"{what}: None in only one of the two"
        if a is not None:
            _assert_close(a, b, what)
            _assert_same_format(a, b, t_leaves, what)
    return "ok"


def _run_samples(op, device, dtype, requires_grad, check):
    """check(op, sample, dtype) on every sample and on its noncontiguous() copy; all
    failures reported together. Returns {outcome: count}.

    On one CPU thread: the samples are tiny, and on a loaded machine waking ATen's other
    threads for each of a few thousand calls (torch's and ours) costs more than the math
    by a factor of a hundred; results do not depend on the thread count (docs/design.md).
    """
    torch.set_num_threads(1)
    failures, outcomes = [], {}
    for i, sample in enumerate(op.sample_inputs(device, dtype, requires_grad=requires_grad)):
        for variant, s in (("as given", sample), ("noncontiguous", sample.noncontiguous())):
            try:
                outcome = check(op, s, dtype)
            except AssertionError as e:
                failures.append(f"{_describe(i, s, variant)}: {e}")
                continue
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    n = len(failures) + sum(outcomes.values())
    assert n > 0, f"{op.name} gave no sample for {dtype}"
    assert not failures, f"{len(failures)} of {n} samples differ:\n" + "\n".join(failures[:20])
    return outcomes


def _check_errors(op, device):
    """Each of op_db's error_inputs (arguments torch refuses) is refused by cnnops too."""
    ours_fn = OURS[op.name][0]
    n = 0
    for err in op.error_inputs(device):
        s = err.sample_input
        theirs, _ = _call(op, s)
        assert isinstance(theirs, Exception), f"torch accepts its own error input {s}"
        ours, _ = _call(ours_fn, s)
        assert isinstance(ours, Exception), (
            f"torch refuses {s.input.shape} {s.args} {s.kwargs} ({theirs!r}); cnnops accepts it")
        n += 1
    assert n > 0


# ----------------------------------------------------------------------------- CPU

@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("op,dtype,requires_grad", _op_params("cpu", CPU_DTYPES))
def test_opinfo_samples_cpu(op, dtype, requires_grad, restore_threads):
    _run_samples(op, "cpu", dtype, requires_grad, _compare_sample)


@pytest.mark.parametrize("op", _op_only_params())
def test_opinfo_error_inputs_cpu(op):
    _check_errors(op, "cpu")


# ----------------------------------------------------------------------------- CUDA

def _compare_sample_half(op, sample, dtype):
    """float16/bfloat16: cnnops' output and gradients within 2x torch's own error, both
    against torch in float64 on the CPU from the same (already rounded) inputs; indices
    exact."""
    ours_fn = OURS[op.name][0]
    theirs, t_leaves = _call(op, sample)
    ours, o_leaves = _call(ours_fn, sample)
    ref, r_leaves = _call(op, sample, torch.float64, "cpu")
    if isinstance(theirs, Exception):
        assert isinstance(ours, Exception), f"torch refuses ({theirs!r}) but cnnops accepts"
        return "refused"
    if isinstance(ours, Exception):
        raise AssertionError(f"cnnops refuses ({ours!r}) but torch accepts") from ours
    (y, ind), (ty, tind), (ry, _) = _split(ours), _split(theirs), _split(ref)
    assert y.dtype == dtype and y.shape == ty.shape, (y.dtype, y.shape, ty.shape)
    if ind is not None:
        assert torch.equal(ind, tind), f"indices differ:\n{ind}\n{tind}"
    pairs = [("output", y, ty, ry)]
    if not OURS[op.name][2]:
        return _check_errors_ratio(pairs, dtype)
    gd = torch.randn(ty.shape, dtype=torch.float64).to(ty.device, dtype)
    o_grads, t_grads = _grads(y, o_leaves, gd), _grads(ty, t_leaves, gd)
    r_grads = _grads(ry, r_leaves, gd.to("cpu", torch.float64))
    names = iter(["input", "weight", "bias"])
    for a, b, r in zip(o_grads, t_grads, r_grads):
        pairs.append((f"grad {next(names)}", a, b, r))
    assert len(o_grads) == len(t_grads) == len(r_grads)
    return _check_errors_ratio(pairs, dtype)


def _check_errors_ratio(pairs, dtype):
    """Each (what, ours, torch's, float64 reference): our relative error at most twice
    torch's (plus 1e-6, for the exact cases)."""
    for what, a, b, r in pairs:
        if r is None or r.numel() == 0:
            continue
        assert a is not None and a.dtype == dtype and a.shape == r.shape, (what, a)
        e_ours, e_torch = _relative_error(a, r), _relative_error(b, r)
        assert math.isfinite(e_ours) and e_ours <= 2 * e_torch + 1e-6, (
            f"{what}: cnnops' {dtype} error {e_ours:.3e} is over 2x torch's {e_torch:.3e}")
    return "ok"


def _compare_cuda(op, sample, dtype):
    return (_compare_sample_half if dtype in HALF else _compare_sample)(op, sample, dtype)


@needs_gpu
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("op,dtype,requires_grad", _op_params("cuda", CUDA_DTYPES))
def test_opinfo_samples_cuda(op, dtype, requires_grad, restore_threads):
    # conftest turns TF32 off: float32 is compared as true float32 arithmetic
    _run_samples(op, "cuda", dtype, requires_grad, _compare_cuda)


@needs_gpu
@pytest.mark.parametrize("op", _op_only_params())
def test_opinfo_error_inputs_cuda(op):
    _check_errors(op, "cuda")
