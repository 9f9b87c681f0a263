"""Correctness of each row: cnnops' outputs (and gradients) against torch's.

Errors are max |a - b| and that divided by max |ref| (an error relative to the
tensor's scale, not per element, so values near zero do not dominate). float32 and
float64 are checked against torch in the same dtype. float16 and bfloat16 are checked
against torch in float32 on the upcast inputs, and pass when cnnops' error is at most
twice torch's own error at that precision (flash-attention's rule), with a small floor.
Whole models in float32 get the same kind of check against torch in float64, with a
floor of 1e-5 on the output and 1e-2 on the input gradient: one float32 rounding that
moves a pre-activation across zero flips a ReLU mask, and the gradient of every input
behind that unit then differs by O(|dy|) (seen: one flip in 590k activations of
segmentation_fcn moved 892 input-gradient elements by up to 3e-3 of the maximum).
Wrong gradients are off by O(1).
"""
import torch

TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-10}
HALF_TYPES = (torch.float16, torch.bfloat16)
HALF_FLOOR = 1e-3
DEEP_FLOOR = 1e-5
DEEP_GRAD_FLOOR = 1e-2


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
    return reference_check(cnnops_out, torch_out, ref_out, names, HALF_FLOOR,
                           "torch float32 on upcast inputs")


def deep_check(cnnops_out, torch_out, ref_out, names):
    """The row's check for whole models in float32: both against torch in float64, the
    output and the gradients each by the rule of reference_check with their own floor."""
    parts = [reference_check(cnnops_out[i:i + 1], torch_out[i:i + 1], ref_out[i:i + 1],
                             names[i:i + 1], DEEP_FLOOR if i == 0 else DEEP_GRAD_FLOOR,
                             "torch float64 on upcast inputs and parameters")
             for i in range(len(names))]
    worst_part = max(parts, key=lambda c: c["max_rel_err"] / c["tolerance"])
    return dict(worst_part, passed=all(c["passed"] for c in parts),
                output_format_match=parts[0]["output_format_match"],
                per_tensor={k: v for c in parts for k, v in c["per_tensor"].items()})


def reference_check(cnnops_out, torch_out, ref_out, names, floor, reference):
    """Passes when cnnops' error against the more precise reference is at most twice
    torch's own (or the floor)."""
    ours = errors(cnnops_out, ref_out, names)
    theirs = errors(torch_out, ref_out, names)
    abs_err, rel_err = worst(ours)
    _, torch_rel = worst(theirs)
    tol = max(2 * torch_rel, floor)
    return dict(reference=reference, max_abs_err=abs_err,
                max_rel_err=rel_err, torch_max_rel_err=torch_rel, tolerance=tol,
                passed=rel_err <= tol, per_tensor=ours,
                output_format_match=_same_format(cnnops_out[0], torch_out[0]))


def _same_format(a, b):
    return a.is_contiguous() == b.is_contiguous() and (
        a.is_contiguous(memory_format=torch.channels_last)
        == b.is_contiguous(memory_format=torch.channels_last))
