"""The registered ops torch.ops.cnnops.*: fake kernels and autograd formulas, one module
per op family.

The ops themselves are defined and implemented in C++ (csrc/torch). Each family module
holds, for its ops, the fake (meta) kernels, for torch.compile and FakeTensor tracing,
and the autograd formulas, and lists them in FAKE_KERNELS and AUTOGRAD:

    conv2d      conv2d_fprop, conv2d_dgrad, conv2d_wgrad, conv2d_bias_grad
                (fprop's and dgrad's autograd kernels are C++: csrc/torch/conv2d_autograd.cpp)
    max_pool2d  max_pool2d_fwd, max_pool2d_values, max_pool2d_bwd
                (max_pool2d_fwd's autograd kernel is C++: csrc/torch/max_pool2d_autograd.cpp)
    depthwise   depthwise_fprop, depthwise_dgrad, depthwise_wgrad, depthwise_backward
                (depthwise_fprop's autograd kernel is C++: csrc/torch/depthwise_autograd.cpp)
    avg_pool2d  avg_pool2d_fwd, avg_pool2d_bwd, adaptive_avg_pool2d_fwd, adaptive_avg_pool2d_bwd
                (the forwards' autograd kernels are C++: csrc/torch/avg_pool2d_autograd.cpp)
    fused       conv2d_fprop_fused, depthwise_fprop_fused (inference only: no derivative)

Every backward is written with cnnops ops, so double backward comes for free. Shared
helpers (output memory format, the padding a backward needs) are in _common; output sizes
and 'same' padding in cnnops/_shape.py.

This package registers them all on import. It has to be this module that calls
torch.library.register_fake: the C++ TORCH_LIBRARY(cnnops) block names it
(m.set_python_module("cnnops._ops")), so that torch can import it to find the fake
kernels, and torch checks that the caller is that module.
"""
import torch

from . import avg_pool2d, conv2d, depthwise, fused, max_pool2d
from ._common import ops

FAMILIES = (conv2d, max_pool2d, depthwise, avg_pool2d, fused)


def _register(family):
    for qualname, fake in family.FAKE_KERNELS.items():
        torch.library.register_fake(qualname, fake)
    for qualname, (backward, setup_context) in family.AUTOGRAD.items():
        torch.library.register_autograd(qualname, backward, setup_context=setup_context)


for _family in FAMILIES:
    _register(_family)

__all__ = ["ops"]
