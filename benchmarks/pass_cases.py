"""Single passes of conv2d's backward, timed on their own: dgrad (grad_input) and wgrad
(grad_weight) of a ConvCase. cnnops runs torch.ops.cnnops.conv2d_dgrad / conv2d_wgrad;
torch runs aten.convolution_backward with only that output requested, which is what its
autograd runs. The row's mode is "fwd": one call of the pass.
"""
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from . import flops
from .flops import ConvProblem
from .layouts import LAYOUTS

if TYPE_CHECKING:
    from .cases import ConvCase


@dataclass(frozen=True)
class ConvPassCase:
    name: str
    conv: "ConvCase"  # benchmarks.cases
    kind: str                # "dgrad" or "wgrad"
    modes = ("fwd",)

    @property
    def op(self):
        return f"conv2d_{self.kind}"

    def make_inputs(self, device, dtype, layout, seed=0):
        x, w = self.conv.make_inputs(device, dtype, layout, seed)
        p = self.problem()
        gen = torch.Generator().manual_seed(seed + 1)
        dy = torch.randn((p.N, p.K, p.P, p.Q), generator=gen).to(device=device, dtype=dtype,
                                                    memory_format=LAYOUTS[layout])
        return dy, x, w

    def call(self, lib, dy, x, w):
        c = self.conv
        stride, pad, dil = [c.stride] * 2, [c.padding] * 2, [c.dilation] * 2
        if lib.__name__ == "cnnops":
            ops = torch.ops.cnnops
            if self.kind == "dgrad":
                return ops.conv2d_dgrad(dy, w, None, x.shape[2:], stride, pad, dil, c.groups)
            return ops.conv2d_wgrad(dy, x, w.shape[2:], stride, pad, dil, c.groups)
        mask = [self.kind == "dgrad", self.kind == "wgrad", False]
        grads = torch.ops.aten.convolution_backward(dy, x, w, None, stride, pad, dil, False,
                                                    [0, 0], c.groups, mask)
        return grads[0] if self.kind == "dgrad" else grads[1]

    def problem(self) -> ConvProblem:
        return self.conv.problem()

    def flop(self, mode):
        """One pass: the GEMM volume of one fprop."""
        return flops.flop(self.problem(), "fwd")

    def bytes_moved(self, mode, elem_size):
        """One pass reads two of x, w, dy and writes the third: fprop's traffic."""
        return flops.bytes_moved(self.problem(), "fwd", elem_size)

    def describe(self):
        return dict(conv=self.conv.describe(), kind=self.kind)


def passes_of(case):
    """The dgrad and wgrad rows of a conv2d case."""
    return [ConvPassCase(f"{case.name}_{kind}", case, kind) for kind in ("dgrad", "wgrad")]
