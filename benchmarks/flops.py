"""FLOP and byte counts, from the implicit-GEMM view of a convolution.

Every case is described as a conv2d problem (N C H W -> N K P Q with a K x C/g x R x S
filter). A transposed convolution is the dgrad of the conv2d whose output is its input,
so it is described by that conv2d and costs the same as it.
"""
from dataclasses import dataclass

from cnnops import _shape

MODES = ("fwd", "fwd+bwd")


@dataclass(frozen=True)
class ConvProblem:
    N: int
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    P: int
    Q: int
    groups: int = 1

    @property
    def input_elems(self):
        return self.N * self.C * self.H * self.W

    @property
    def weight_elems(self):
        return self.K * (self.C // self.groups) * self.R * self.S

    @property
    def output_elems(self):
        return self.N * self.K * self.P * self.Q


def conv_out_size(size, kernel, stride=1, padding=0, dilation=1):
    """Output size with symmetric padding (cnnops/_shape.py holds the formula)."""
    return _shape.conv_out_size(size, kernel, padding, padding, stride, dilation)


def conv_transpose_out_size(size, kernel, stride=1, padding=0, output_padding=0, dilation=1):
    return _shape.conv_transpose_out_size(size, kernel, padding, output_padding, stride, dilation)


def fprop_flop(p: ConvProblem) -> int:
    """2 * N*K*P*Q * (C/g)*R*S: one multiply and one add per GEMM term."""
    return 2 * p.N * p.K * p.P * p.Q * (p.C // p.groups) * p.R * p.S


def flop(p: ConvProblem, mode: str, input_needs_grad: bool = True) -> int:
    """fwd: one fprop. fwd+bwd: fprop + wgrad, + dgrad when the input needs grad; each
    of the three is the same GEMM volume."""
    if mode == "fwd":
        return fprop_flop(p)
    if mode == "fwd+bwd":
        return (3 if input_needs_grad else 2) * fprop_flop(p)
    raise ValueError(f"unknown mode {mode!r}, expected one of {MODES}")


def bytes_moved(p: ConvProblem, mode: str, elem_size: int, input_needs_grad: bool = True) -> int:
    """Compulsory memory traffic: each kernel reads its two operands and writes its result
    once (fprop: x, w -> y; dgrad: dy, w -> dx; wgrad: dy, x -> dw)."""
    x, w, y = p.input_elems, p.weight_elems, p.output_elems
    if mode == "fwd":
        elems = x + w + y
    elif mode == "fwd+bwd":
        elems = (x + w + y) + (y + x + w)          # fprop + wgrad
        if input_needs_grad:
            elems += y + w + x                     # dgrad
    else:
        raise ValueError(f"unknown mode {mode!r}, expected one of {MODES}")
    return elems * elem_size
