"""Argument checks of the registered ops, mirrored from csrc/torch/checks.cpp.

The C++ ops check their arguments when they run; these run in the fake (meta)
kernels, so torch.compile and FakeTensor tracing refuse the same inputs with the
same messages. Keep the two in step.
"""
import functools

import torch

_CPU_DTYPES = (torch.float32, torch.float64)
_CUDA_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)

# c10's ScalarType names, so that these messages read exactly like the C++ ones.
_SCALAR_TYPE_NAMES = {
    torch.float32: "Float", torch.float64: "Double", torch.float16: "Half",
    torch.bfloat16: "BFloat16", torch.int64: "Long", torch.int32: "Int", torch.int16: "Short",
    torch.int8: "Char", torch.uint8: "Byte", torch.bool: "Bool",
    torch.complex64: "ComplexFloat", torch.complex128: "ComplexDouble",
}


def dtype_name(dtype):
    return _SCALAR_TYPE_NAMES.get(dtype, str(dtype))


def rank(t, dim, op, arg, layout):
    if t.dim() != dim:
        raise ValueError(f"{op}: expected {arg} to be {dim}-D ({layout}), "
                         f"got a {t.dim()}-D tensor of shape {list(t.shape)}")


def float_tensor(t, op, arg):
    if t.dtype in _CPU_DTYPES:  # float32 and float64: good on every device (the common case first)
        return
    if t.device.type == "cuda":
        if t.dtype not in _CUDA_DTYPES:
            raise TypeError(f"{op}: expected {arg} to be float32, float64, float16 or bfloat16 "
                            f"on CUDA, got {dtype_name(t.dtype)}")
    elif t.dtype not in _CPU_DTYPES:
        raise TypeError(f"{op}: expected {arg} to be float32 or float64 on the CPU, "
                        f"got {dtype_name(t.dtype)}")


def same_dtype_device(t, ref, op, arg, ref_arg):
    if t.dtype != ref.dtype:
        raise TypeError(f"{op}: expected {arg} to have the same dtype as {ref_arg} "
                        f"({dtype_name(ref.dtype)}), got {dtype_name(t.dtype)}")
    if t.device != ref.device:
        raise ValueError(f"{op}: expected {arg} to be on the same device as {ref_arg} "
                         f"({ref.device}), got {t.device}")


def int_list(v, count, minimum, op, arg, expected):
    if len(v) != count:
        raise ValueError(f"{op}: expected {arg} to have {count} elements, got {list(v)}")
    if any(x < minimum for x in v):
        raise ValueError(f"{op}: expected {arg} to be {expected}, got {list(v)}")


def hyper(op, stride, dilation, groups):
    int_list(stride, 2, 1, op, "stride", "positive")
    int_list(dilation, 2, 1, op, "dilation", "positive")
    if groups <= 0:
        raise ValueError(f"{op}: expected groups to be positive, got {groups}")


def fprop_padding(padding, op):
    """An fprop's padding: (top, bottom, left, right), the end sides may be negative (crop)."""
    if len(padding) != 4:
        raise ValueError(f"{op}: expected padding to have 4 elements (top, bottom, left, right), "
                         f"got {list(padding)}")
    if padding[0] < 0 or padding[2] < 0:
        raise ValueError(f"{op}: expected the top and left padding to be non-negative, "
                         f"got {list(padding)}")


def nonempty_feature_dims(t, op, arg):
    _, c, h, w = t.shape
    if c == 0 or h == 0 or w == 0:
        raise ValueError(f"{op}: expected {arg} to have non-zero channel and spatial sizes "
                         f"(only the batch may be empty), got shape {list(t.shape)}")


def weight(w, op, arg):
    rank(w, 4, op, arg, "out_channels, in_channels/groups, kH, kW")
    if any(s == 0 for s in w.shape):
        raise ValueError(f"{op}: expected {arg} to have non-zero sizes, got shape {list(w.shape)}")


def bias(b, channels, ref, op):
    if b is None:
        return
    if b.dim() != 1 or b.shape[0] != channels:
        raise ValueError(f"{op}: expected bias to be 1-D with {channels} elements, "
                         f"got shape {list(b.shape)}")
    same_dtype_device(b, ref, op, "bias", "input")


def max_pool_window(op, kernel_size, stride, dilation):
    int_list(kernel_size, 2, 1, op, "kernel_size", "positive")
    int_list(stride, 2, 1, op, "stride", "positive")
    int_list(dilation, 2, 1, op, "dilation", "positive")


def avg_pool_window(op, kernel_size, stride, padding, divisor_override):
    """avg_pool2d's window arguments (mirrors check_window in csrc/torch/avg_pool2d_ops.cpp)."""
    int_list(kernel_size, 2, 1, op, "kernel_size", "positive")
    int_list(stride, 2, 1, op, "stride", "positive")
    int_list(padding, 4, 0, op, "padding", "non-negative (top, bottom, left, right)")
    kh, kw = kernel_size[0] // 2, kernel_size[1] // 2
    if padding[0] > kh or padding[1] > kh or padding[2] > kw or padding[3] > kw:
        raise ValueError(f"{op}: expected padding to be at most half the kernel size "
                         f"({kernel_size[0]} x {kernel_size[1]}), got {list(padding)}")
    if divisor_override is not None and divisor_override == 0:
        raise ValueError(f"{op}: expected divisor_override to be a non-zero int or None, got 0")


def depthwise_weight(w, C, op):
    rank(w, 4, op, "weight", "in_channels * depth_multiplier, 1, kH, kW")
    if w.shape[0] == 0 or w.shape[2] == 0 or w.shape[3] == 0:
        raise ValueError(f"{op}: expected weight to have non-zero sizes, got shape {list(w.shape)}")
    if w.shape[1] != 1 or w.shape[0] % C != 0:
        raise ValueError(f"{op}: expected weight of shape ({C} * depth_multiplier, 1, kH, kW) "
                         f"for {C} channels, got shape {list(w.shape)}")


@functools.cache
def _built_with_cuda():
    from . import _C
    return bool(_C.build_info()["cuda"])


def supported_device(t, op, arg):
    """t on the CPU, or on a CUDA device when this build has the CUDA kernels (mirrors
    check_device in csrc/torch, message included)."""
    if t.device.type in ("cpu", "meta") or (t.device.type == "cuda" and _built_with_cuda()):
        return
    where = ("on the CPU or a CUDA device" if _built_with_cuda() else
             "on the CPU (this cnnops build has no CUDA kernels: torch had no CUDA when it "
             "was built)")
    raise ValueError(f"{op}: expected {arg} {where}, got {t.device}")
