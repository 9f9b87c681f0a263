"""Correctness of each row: cnnops' outputs (and gradients) against torch's.

Errors are max |a - b| and that divided by max |ref| (an error relative to the
tensor's scale, not per element, so values near zero do not dominate). float32 and
float64 are checked against torch in the same dtype. float16 and bfloat16 are checked
against torch in float32 on the upcast inputs, and pass when cnnops' error is at most
twice torch's own error at that precision (flash-attention's rule), with a small floor.
"""
import torch

TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-10}
HALF_TYPES = (torch.float16, torch.bfloat16)
HALF_FLOOR = 1e-3


def errors(outputs, refs, names):
    """{name: {'max_abs_err', 'max_rel_err'}} for each pair of tensors."""
    result = {}
    for name, out, ref in zip(names, outputs, refs):
        diff = (out.double() - ref.double()).abs().max().item()
        scale = ref.double().abs().max().item()
        result[name] = dict(max_abs_err=diff, max_rel_err=diff / scale if scale > 0 else diff)
    return result


def worst(per_tensor):
    return (max(e["max_abs_err"] for e in per_tensor.values()),
            max(e["max_rel_err"] for e in per_tensor.values()))


def same_dtype_check(cnnops_out, torch_out, names, dtype):
    """The row's check for float32/float64: cnnops against torch in the same dtype."""
    per_tensor = errors(cnnops_out, torch_out, names)
    abs_err, rel_err = worst(per_tensor)
    tol = TOLERANCE[dtype]
    return dict(reference=f"torch {str(dtype)[6:]}", max_abs_err=abs_err, max_rel_err=rel_err,
                tolerance=tol, passed=rel_err <= tol, per_tensor=per_tensor,
                output_format_match=_same_format(cnnops_out[0], torch_out[0]))


def half_check(cnnops_out, torch_out, ref_out, names):
    """The row's check for float16/bfloat16: both against a float32 reference."""
    ours = errors(cnnops_out, ref_out, names)
    theirs = errors(torch_out, ref_out, names)
    abs_err, rel_err = worst(ours)
    _, torch_rel = worst(theirs)
    tol = max(2 * torch_rel, HALF_FLOOR)
    return dict(reference="torch float32 on upcast inputs", max_abs_err=abs_err,
                max_rel_err=rel_err, torch_max_rel_err=torch_rel, tolerance=tol,
                passed=rel_err <= tol, per_tensor=ours,
                output_format_match=_same_format(cnnops_out[0], torch_out[0]))


def _same_format(a, b):
    return a.is_contiguous() == b.is_contiguous() and (
        a.is_contiguous(memory_format=torch.channels_last)
        == b.is_contiguous(memory_format=torch.channels_last))
