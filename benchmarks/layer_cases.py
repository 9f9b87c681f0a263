"""Per-layer rows (family "layers"): each distinct dense convolution of a model, at the
input size of the suite's row of that model, as a conv2d row of its own, so a report
shows which layers a whole-model time is made of.

The shapes are found, not listed: the model's torch.nn twin (cnnops.to_torch, whose
separable convolutions are a depthwise and a pointwise torch.nn.Conv2d) runs one sample,
every Conv2d recording its input and filter; the groups == 1 ones (ResNet's stem, 1x1 and 3x3
convs; Xception's stem, strided 1x1 shortcuts and the pointwise halves of its separable
convs, not the depthwise halves, which the depthwise rows cover) are counted per distinct
(input, filter, stride, padding). Each becomes a LayerCase per batch size, named

    layer_<model>_b<N>_c<C>k<K>_<R>x<S>s<stride>[p<padding>]_<H>[x<W>]

(p only when the padding is not R // 2, xW only when W != H: the input size), e.g.
layer_resnet50_b16_c256k256_3x3s1_8. count is how often the layer runs in one forward
pass of the model, for time-weighted totals (layer_report.py).
"""
import functools
from dataclasses import dataclass

import torch

import cnnops
from cnnops import models

from .cases import ConvCase
from .flops import MODES, conv_out_size

# Which models get per-layer rows, at which batch sizes, and at which the backward too.
LAYER_MODELS = ("resnet50", "xception")
LAYER_BATCHES = (1, 16)
BACKWARD_BATCHES = (16,)


@dataclass(frozen=True)
class LayerCase(ConvCase):
    model: str = ""          # the cnnops.models builder
    resolution: tuple = ()   # the model's input H, W that gives this layer's input
    count: int = 1           # occurrences in one forward pass of the model
    modes: tuple = ("fwd",)
    # A row's timed repetitions: this fraction of the run's budget (5 s -> 0.3 s; --quick
    # 0.5 s -> 0.03 s), and at least 3 of them: some hundred rows must stay in ~2 minutes.
    budget_fraction = 0.06
    budget_min_reps = 3


def _square(pair, what, module):
    pair = torch.nn.modules.utils._pair(pair)
    if pair[0] != pair[1]:
        raise ValueError(f"layer_cases: {module} has a non-square {what} {pair}")
    return pair[0]


def _padding(m):
    if m.padding == "valid":
        return 0
    if m.padding == "same":  # torch accepts it with stride 1 only
        total = _square(m.dilation, "dilation", m) * (_square(m.kernel_size, "kernel", m) - 1)
        if total % 2:
            raise ValueError(f"layer_cases: {m} pads asymmetrically")
        return total // 2
    return _square(m.padding, "padding", m)


@functools.lru_cache(maxsize=None)
def dense_convs(builder, height, width):
    """((input C, H, W), weight shape, stride, padding, dilation) -> count, in order of
    first use, of the groups == 1 Conv2d layers of one forward pass of one sample.

    The twin's convolutions only record their input and return zeros of their output's
    shape (the other layers run as they are, on one small sample): a fraction of a second."""
    twin = cnnops.to_torch(models.get_model(builder)).eval()
    found = {}

    def shape_only(m):
        def forward(x):
            stride, pad = _square(m.stride, "stride", m), _padding(m)
            dil, k = _square(m.dilation, "dilation", m), m.weight.shape
            if m.groups == 1:
                key = (tuple(x.shape[1:]), tuple(k), stride, pad, dil)
                found[key] = found.get(key, 0) + 1
            p, q = (conv_out_size(size, r, stride, pad, dil) for size, r in zip(x.shape[2:], k[2:]))
            return x.new_zeros((x.shape[0], k[0], p, q))
        return forward
    for m in twin.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.forward = shape_only(m)
    with torch.no_grad():
        twin(torch.zeros(1, 3, height, width))
    return tuple(found.items())


def layer_name(model, batch, in_chw, weight_shape, stride, padding, dilation=1):
    c, h, w = in_chw
    k, _, r, s = weight_shape
    name = f"layer_{model}_b{batch}_c{c}k{k}_{r}x{s}s{stride}"
    if padding != r // 2:
        name += f"p{padding}"
    if dilation != 1:
        name += f"d{dilation}"
    return name + f"_{h}" + ("" if w == h else f"x{w}")


def layer_cases(model, resolution, batches=LAYER_BATCHES, backward_batches=BACKWARD_BATCHES):
    """The LayerCases of a model at input size resolution (H, W), per batch size in turn,
    layers in order of first use; fwd+bwd too at the batch sizes in backward_batches."""
    height, width = resolution
    cases = []
    for batch in batches:
        for (in_chw, weight, stride, padding, dilation), count in dense_convs(model, height, width):
            cases.append(LayerCase(
                layer_name(model, batch, in_chw, weight, stride, padding, dilation), "conv2d",
                (batch, *in_chw), weight, stride=stride, padding=padding, dilation=dilation,
                model=model, resolution=(height, width), count=count,
                modes=MODES if batch in backward_batches else ("fwd",)))
    return cases


def suite_layer_cases(model_cases, models_=LAYER_MODELS):
    """The layer rows of the named models, each at the input size of its row among
    model_cases (the suite's ModelCases: the first row of each builder)."""
    sizes = {}
    for case in model_cases:
        sizes.setdefault(getattr(case, "builder", None), tuple(case.input_shape[2:]))
    return [c for m in models_ for c in layer_cases(m, sizes[m])]
