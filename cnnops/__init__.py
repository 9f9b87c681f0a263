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

__version__ = "0.1.0"


def build_info():
    """What this build contains: CPU ISA paths (and the one in use), CUDA and its archs."""
    return dict(_C.build_info())


def set_cpu_isa(name):
    """Force the CPU micro-kernel ISA: 'auto', 'avx512', 'avx2' or 'generic'."""
    _C.set_cpu_isa(name)


__all__ = ["conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
           "depthwise_conv2d", "separable_conv2d",
           "convert", "to_torch", "SamePad2d", "nn", "build_info", "set_cpu_isa"]
