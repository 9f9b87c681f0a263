"""The benchmark cases: shapes from real networks, each run through cnnops and torch.

A case knows its inputs, how to call the op through a library (cnnops or
torch.nn.functional, which share names and signatures), and its conv2d problem for
FLOP counting. Adding a case is adding an entry to DEFAULT_CASES; adding an op kind is
adding a small class with the same four methods (make_inputs, call, problem, describe).
"""
import math
from dataclasses import asdict, dataclass

import torch

from .flops import ConvProblem, conv_out_size, conv_transpose_out_size
from .layouts import LAYOUTS
from .model_cases import ModelCase
from .pass_cases import passes_of


@dataclass(frozen=True)
class ConvCase:
    name: str
    op: str                  # "conv2d" or "conv_transpose2d": same name in cnnops and F
    input_shape: tuple       # N, C, H, W
    weight_shape: tuple      # conv2d: K, C/g, R, S; conv_transpose2d: C, K/g, R, S
    stride: int = 1
    padding: int = 0
    output_padding: int = 0  # conv_transpose2d only
    dilation: int = 1
    groups: int = 1

    @property
    def memory_bound(self):
        """Depthwise convolution: one multiply-add per weight tap and element."""
        return self.op == "conv2d" and self.groups > 1 and self.weight_shape[1] == 1

    def kwargs(self):
        kw = dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                  groups=self.groups)
        if self.op == "conv_transpose2d":
            kw["output_padding"] = self.output_padding
        return kw

    def call(self, lib, x, w):
        return getattr(lib, self.op)(x, w, **self.kwargs())

    def make_inputs(self, device, dtype, layout, seed=0):
        """x in the requested memory format; w scaled by 1/sqrt(fan-in), as in training,
        so half-precision outputs stay in range."""
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(self.input_shape, generator=gen)
        w = torch.randn(self.weight_shape, generator=gen) / math.sqrt(self._fan_in())
        fmt = LAYOUTS[layout]
        return (x.to(device=device, dtype=dtype, memory_format=fmt),
                w.to(device=device, dtype=dtype, memory_format=fmt))

    def _fan_in(self):
        a, b, r, s = self.weight_shape
        return (b if self.op == "conv2d" else a // self.groups) * r * s

    def problem(self) -> ConvProblem:
        """The conv2d problem; for conv_transpose2d, the conv2d whose dgrad it is."""
        N, Ci, H, W = self.input_shape
        a, b, R, S = self.weight_shape
        if self.op == "conv2d":
            P = conv_out_size(H, R, self.stride, self.padding, self.dilation)
            Q = conv_out_size(W, S, self.stride, self.padding, self.dilation)
            return ConvProblem(N, Ci, H, W, a, R, S, P, Q, self.groups)
        Ho = conv_transpose_out_size(H, R, self.stride, self.padding, self.output_padding,
                                     self.dilation)
        Wo = conv_transpose_out_size(W, S, self.stride, self.padding, self.output_padding,
                                     self.dilation)
        return ConvProblem(N, b * self.groups, Ho, Wo, a, R, S, H, W, self.groups)

    def describe(self):
        return asdict(self)


@dataclass(frozen=True)
class MaxPoolCase:
    """max_pool2d (memory-bound): FLOPs count one compare per window tap. Bytes are the
    least traffic the call needs: fwd reads x and writes y (no indices: an inference call
    needs none); fwd+bwd also writes the int64 indices, then reads dy and the indices and
    writes dx."""
    name: str
    input_shape: tuple
    kernel_size: int = 3
    stride: int = 2
    padding: int = 1
    op: str = "max_pool2d"
    grad_names = ("grad_input",)
    memory_bound = True

    def call(self, lib, x):
        return lib.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def make_inputs(self, device, dtype, layout, seed=0):
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(self.input_shape, generator=gen)
        return (x.to(device=device, dtype=dtype, memory_format=LAYOUTS[layout]),)

    def problem(self) -> ConvProblem:
        N, C, H, W = self.input_shape
        P = conv_out_size(H, self.kernel_size, self.stride, self.padding)
        Q = conv_out_size(W, self.kernel_size, self.stride, self.padding)
        return ConvProblem(N, C, H, W, C, self.kernel_size, self.kernel_size, P, Q, C)

    def flop(self, mode):
        p = self.problem()
        return p.output_elems * p.R * p.S * (1 if mode == "fwd" else 2)

    def bytes_moved(self, mode, elem_size):
        p = self.problem()
        if mode == "fwd":
            return (p.input_elems + p.output_elems) * elem_size
        with_indices = p.input_elems * elem_size + p.output_elems * (elem_size + 8)
        return 2 * with_indices

    def describe(self):
        return asdict(self)


@dataclass(frozen=True)
class AvgPoolCase:
    """avg_pool2d (memory-bound): FLOPs count one add per window tap (fwd; the backward
    as many again). Bytes: fwd reads x and writes y; fwd+bwd then reads dy and writes dx."""
    name: str
    input_shape: tuple
    kernel_size: int = 3
    stride: int = 1
    padding: int = 1
    op: str = "avg_pool2d"
    grad_names = ("grad_input",)
    memory_bound = True
    # The float32 reference of half-precision rows runs in NCHW: torch 2.11's CUDA
    # channels_last backward ignores the padding (pytorch/pytorch#188344, fixed in
    # #188345), and its gradients then differ from NCHW's and the CPU's by O(1).
    nchw_reference = True

    def call(self, lib, x):
        return lib.avg_pool2d(x, self.kernel_size, self.stride, self.padding)

    def make_inputs(self, device, dtype, layout, seed=0):
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(self.input_shape, generator=gen)
        return (x.to(device=device, dtype=dtype, memory_format=LAYOUTS[layout]),)

    def problem(self) -> ConvProblem:
        N, C, H, W = self.input_shape
        P = conv_out_size(H, self.kernel_size, self.stride, self.padding)
        Q = conv_out_size(W, self.kernel_size, self.stride, self.padding)
        return ConvProblem(N, C, H, W, C, self.kernel_size, self.kernel_size, P, Q, C)

    def flop(self, mode):
        p = self.problem()
        return p.output_elems * p.R * p.S * (1 if mode == "fwd" else 2)

    def bytes_moved(self, mode, elem_size):
        p = self.problem()
        return (p.input_elems + p.output_elems) * elem_size * (1 if mode == "fwd" else 2)

    def describe(self):
        return asdict(self)


@dataclass(frozen=True)
class AdaptiveAvgPoolCase(AvgPoolCase):
    """adaptive_avg_pool2d; output_size 1 is the global average pool of a classifier head.
    FLOPs: one add per input element (the windows of these cases tile the input)."""
    output_size: int = 1
    op: str = "adaptive_avg_pool2d"

    def call(self, lib, x):
        return lib.adaptive_avg_pool2d(x, self.output_size)

    def problem(self) -> ConvProblem:
        N, C, H, W = self.input_shape
        o = self.output_size
        return ConvProblem(N, C, H, W, C, -(-H // o), -(-W // o), o, o, C)

    def flop(self, mode):
        return self.problem().input_elems * (1 if mode == "fwd" else 2)


@dataclass(frozen=True)
class SeparableCase:
    """separable_conv2d (Keras SeparableConv2D): depthwise R x S then 1x1 pointwise; torch's
    side is the same two convolutions through torch.nn.functional.conv2d."""
    name: str
    input_shape: tuple       # N, C, H, W
    out_channels: int
    kernel_size: int = 3
    padding: int = 1
    op: str = "separable_conv2d"
    grad_names = ("grad_input", "grad_depthwise_weight", "grad_pointwise_weight")

    def call(self, lib, x, dw, pw):
        if lib.__name__ == "cnnops":
            return lib.separable_conv2d(x, dw, pw, padding=self.padding)
        y = lib.conv2d(x, dw, padding=self.padding, groups=x.shape[1])
        return lib.conv2d(y, pw)

    def make_inputs(self, device, dtype, layout, seed=0):
        gen = torch.Generator().manual_seed(seed)
        C, k = self.input_shape[1], self.kernel_size
        x = torch.randn(self.input_shape, generator=gen)
        dw = torch.randn((C, 1, k, k), generator=gen) / k
        pw = torch.randn((self.out_channels, C, 1, 1), generator=gen) / math.sqrt(C)
        fmt = LAYOUTS[layout]
        return tuple(t.to(device=device, dtype=dtype, memory_format=fmt) for t in (x, dw, pw))

    def _parts(self):
        N, C, H, W = self.input_shape
        P = conv_out_size(H, self.kernel_size, 1, self.padding)
        Q = conv_out_size(W, self.kernel_size, 1, self.padding)
        k = self.kernel_size
        return (ConvProblem(N, C, H, W, C, k, k, P, Q, C),
                ConvProblem(N, C, P, Q, self.out_channels, 1, 1, P, Q, 1))

    def problem(self) -> ConvProblem:
        return self._parts()[0]

    def flop(self, mode):
        from .flops import flop
        return sum(flop(p, mode) for p in self._parts())

    def bytes_moved(self, mode, elem_size):
        from .flops import bytes_moved
        return sum(bytes_moved(p, mode, elem_size) for p in self._parts())

    def describe(self):
        return asdict(self)


DEFAULT_CASES = [
    ConvCase("conv3x3_c64_56", "conv2d", (8, 64, 56, 56), (64, 64, 3, 3), padding=1),
    ConvCase("conv3x3_c256_14", "conv2d", (8, 256, 14, 14), (256, 256, 3, 3), padding=1),
    ConvCase("conv1x1_c256k64_56", "conv2d", (8, 256, 56, 56), (64, 256, 1, 1)),
    ConvCase("stem7x7s2_c3k64_224", "conv2d", (8, 3, 224, 224), (64, 3, 7, 7),
             stride=2, padding=3),
    ConvCase("convT3x3s2_c256k128_25", "conv_transpose2d", (8, 256, 25, 25), (256, 128, 3, 3),
             stride=2, padding=1, output_padding=1),
    MaxPoolCase("maxpool3x3s2_c64_112", (10, 64, 112, 112)),
    # average pooling: a 3x3 stride-1 pool (Inception branches), a 2x2 stride-2 pool
    # (DenseNet transitions) and the global pools of ResNet-50 (2048 x 7 x 7) and
    # Xception (2048 x 10 x 10)
    AvgPoolCase("avgpool3x3s1p1_c64_56", (8, 64, 56, 56)),
    AvgPoolCase("avgpool2x2s2_c128_56", (8, 128, 56, 56), kernel_size=2, stride=2, padding=0),
    AdaptiveAvgPoolCase("gap_c2048_7", (32, 2048, 7, 7)),
    AdaptiveAvgPoolCase("gap_c2048_10", (16, 2048, 10, 10)),
    ConvCase("dw3x3_c128_56", "conv2d", (8, 128, 56, 56), (128, 1, 3, 3), padding=1, groups=128),
    ConvCase("dw3x3_c728_19", "conv2d", (8, 728, 19, 19), (728, 1, 3, 3), padding=1, groups=728),
    SeparableCase("sep3x3_c728_19", (8, 728, 19, 19), 728),
]


# The fixed cost per call (issue 21): each op on a tiny input, batch 1 and 8 channels of
# 8 x 8, where the kernels' work is negligible and the time is the call's overhead
# (argument handling, dispatch, autograd), cnnops against torch.
FIXED_COST_CASES = [
    ConvCase("fixedcost_conv2d", "conv2d", (1, 8, 8, 8), (8, 8, 3, 3), padding=1),
    ConvCase("fixedcost_conv_transpose2d", "conv_transpose2d", (1, 8, 8, 8), (8, 8, 3, 3),
             padding=1),
    MaxPoolCase("fixedcost_max_pool2d", (1, 8, 8, 8), kernel_size=2, stride=2, padding=0),
    ConvCase("fixedcost_depthwise", "conv2d", (1, 8, 8, 8), (8, 1, 3, 3), padding=1, groups=8),
]


def _with_passes_and_models(cases, pass_names, model_rows):
    """cases, then the dgrad/wgrad passes alone of the named conv cases, then whole models
    (ModelCase arguments), then the fixed-cost cases."""
    by_name = {c.name: c for c in cases}
    return (cases + [p for name in pass_names for p in passes_of(by_name[name])]
            + [ModelCase(*args, **kw) for args, kw in model_rows] + FIXED_COST_CASES)


# The passes of two conv layers and whole models at sizes that keep the default CPU run
# under 5 minutes.
DEFAULT_CASES = _with_passes_and_models(DEFAULT_CASES, ("conv3x3_c64_56", "conv1x1_c256k64_56"), [
    (("resnet50_b1_128", "resnet50", (1, 3, 128, 128)), {}),
    (("xception_b1_160", "xception", (1, 3, 160, 160)), {}),
    (("segmentation_fcn_b2_96", "segmentation_fcn", (2, 3, 96, 96)), dict(num_classes=3)),
])


def _resnet50_convs(batch=32):
    """The distinct conv layers of torchvision's ResNet-50 at 224x224 (stride on the 3x3,
    as in v1.5): the stem, then per stage the 1x1 reduce, the strided and plain 3x3, the
    1x1 expand, the 1x1 reduce of later blocks and the strided 1x1 downsample."""
    cases = [ConvCase("r50_stem7x7s2", "conv2d", (batch, 3, 224, 224), (64, 3, 7, 7),
                      stride=2, padding=3)]
    stages = [(64, 56, 64, 1), (128, 56, 256, 2), (256, 28, 512, 2), (512, 14, 1024, 2)]
    for width, size, cin, stride in stages:
        out = size // stride
        cases += [
            ConvCase(f"r50_{width}_reduce1x1", "conv2d", (batch, cin, size, size), (width, cin, 1, 1)),
            ConvCase(f"r50_{width}_3x3s{stride}", "conv2d", (batch, width, size, size),
                     (width, width, 3, 3), stride=stride, padding=1),
            ConvCase(f"r50_{width}_expand1x1", "conv2d", (batch, width, out, out), (4 * width, width, 1, 1)),
        ]
        if stride > 1:  # (stage 1's downsample has the expand's shape)
            cases += [
                ConvCase(f"r50_{width}_downsample1x1s{stride}", "conv2d", (batch, cin, size, size),
                         (4 * width, cin, 1, 1), stride=stride),
                ConvCase(f"r50_{width}_3x3", "conv2d", (batch, width, out, out), (width, width, 3, 3),
                         padding=1),
                ConvCase(f"r50_{width}_reduce1x1_inner", "conv2d", (batch, 4 * width, out, out),
                         (width, 4 * width, 1, 1)),
            ]
    return cases


# The GPU suite (issues 4 and 5): ResNet-50's conv layers at batch 32 and a 4x4/2
# transposed conv, then the memory-bound ops at batch 32.
CUDA_CASES = _resnet50_convs() + [
    ConvCase("convT4x4s2_c256k128_28", "conv_transpose2d", (32, 256, 28, 28), (256, 128, 4, 4),
             stride=2, padding=1),
    MaxPoolCase("maxpool3x3s2_c64_112_b32", (32, 64, 112, 112)),
    AvgPoolCase("avgpool3x3s1p1_c64_56_b32", (32, 64, 56, 56)),
    AvgPoolCase("avgpool2x2s2_c128_56_b32", (32, 128, 56, 56), kernel_size=2, stride=2, padding=0),
    AdaptiveAvgPoolCase("gap_c2048_7_b128", (128, 2048, 7, 7)),
    AdaptiveAvgPoolCase("gap_c2048_10_b64", (64, 2048, 10, 10)),
    ConvCase("dw3x3_c144_56_b32", "conv2d", (32, 144, 56, 56), (144, 1, 3, 3), padding=1, groups=144),
    ConvCase("dw3x3_c728_19_b32", "conv2d", (32, 728, 19, 19), (728, 1, 3, 3), padding=1, groups=728),
    ConvCase("dw5x5_c240_28_b32", "conv2d", (32, 240, 28, 28), (240, 1, 5, 5), padding=2, groups=240),
    SeparableCase("sep3x3_c728_19_b32", (32, 728, 19, 19), 728),
]


CUDA_CASES = _with_passes_and_models(CUDA_CASES, ("r50_64_3x3s1", "r50_256_reduce1x1"), [
    (("resnet50_b32_224", "resnet50", (32, 3, 224, 224)), {}),
    (("xception_b16_299", "xception", (16, 3, 299, 299)), {}),
    (("segmentation_fcn_b16_256", "segmentation_fcn", (16, 3, 256, 256)), dict(num_classes=3)),
])


def cases_for(device, layers=None, inference=None):
    """The default case list of a device; with layers (default: on the CPU only), then the
    per-layer rows of resnet50 and xception at their model rows' input sizes
    (layer_cases.py; found by running the models' shapes once, about a second); with
    inference (default: on the CPU only), then the whole-classifier inference rows
    (inference_cases.py: torch eager, torch.compile and cnnops.optimize_for_inference)."""
    cases = CUDA_CASES if device == "cuda" else DEFAULT_CASES
    if layers is None:
        layers = device != "cuda"
    if inference is None:
        inference = device != "cuda"
    if layers:
        from .layer_cases import suite_layer_cases  # it builds on ConvCase
        cases = cases + suite_layer_cases([c for c in cases if isinstance(c, ModelCase)])
    if inference:
        from .inference_cases import INFERENCE_CASES  # it imports the runner
        cases = cases + INFERENCE_CASES
    return cases


def select(cases, substring=None):
    """The cases whose name contains substring (all when it is None or empty)."""
    return [c for c in cases if not substring or substring in c.name]
