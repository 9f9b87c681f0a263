"""cnnops: hand-written CPU and CUDA kernels for convolutional networks, as
drop-in PyTorch ops with full autograd."""
import torch  # noqa: F401  (loads libc10 and friends that _C links against)

from . import (
    _C,
    _ops,  # noqa: F401  (fake kernels and autograd for torch.ops.cnnops.*)
    nn,
)
from ._to_torch import SamePad2d, to_torch
from .convert import convert
from .functional import (
    adaptive_avg_pool2d,
    avg_pool2d,
    conv2d,
    conv_transpose2d,
    depthwise_conv2d,
    max_pool2d,
    separable_conv2d,
)
from .inference import optimize_for_inference

__version__ = "0.1.0"


def build_info():
    """What this build contains: CPU ISA paths (and the one in use), CUDA and its archs."""
    return dict(_C.build_info())


def set_cpu_isa(name):
    """Force the CPU micro-kernel ISA: 'auto', 'avx512', 'avx2' or 'generic'."""
    _C.set_cpu_isa(name)


def weight_cache_info():
    """The CPU packed-filter cache: filters held, packed forms, bytes, limit, hits, misses.

    conv2d and conv_transpose2d pack a CPU filter into the micro-kernel's panels once and
    reuse it while the tensor is unchanged (same storage, shape, strides and bytes: each
    call hashes the filter, so every write is seen), so inference packs once and training
    once per optimizer step."""
    return dict(_C.filter_cache_info())


def set_weight_cache_limit(nbytes):
    """Most bytes of packed filters kept across calls (default 256 MiB; 0 turns it off)."""
    _C.set_filter_cache_limit(int(nbytes))


def clear_weight_cache():
    """Drop every packed filter (to free the memory; results never need it)."""
    _C.clear_filter_cache()


__all__ = ["conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
           "depthwise_conv2d", "separable_conv2d", "optimize_for_inference",
           "convert", "to_torch", "SamePad2d", "nn", "build_info", "set_cpu_isa",
           "weight_cache_info", "set_weight_cache_limit", "clear_weight_cache"]
