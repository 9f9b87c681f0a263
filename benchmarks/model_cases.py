"""Whole models: a cnnops.models network against its twin on torch.nn layers
(cnnops.to_torch), with the same parameters, in eval mode (batch-norm running
statistics, no dropout) so both sides compute the same function. FLOPs are counted
once, with forward hooks, over the convolution, separable and linear layers; fwd+bwd
counts 3x (every layer's dgrad and wgrad)."""
import functools
from dataclasses import dataclass

import torch

import cnnops
from cnnops import models

from .layouts import LAYOUTS

_BUILT = {}    # (case name, device, dtype, layout) -> (cnnops model, torch twin)
_CURRENT = {}  # case name -> the key of its latest inputs


def _layer_flop(module, inputs, output):
    if isinstance(module, cnnops.nn.SeparableConv2d):
        n, c, h, w = output.shape
        mid = module.depthwise_weight.shape[0]
        return 2 * n * h * w * (mid * module.depthwise_weight[0].numel() + c * mid)
    if isinstance(module, torch.nn.ConvTranspose2d):
        x = inputs[0]
        return 2 * x.numel() * module.weight.shape[1] * module.weight[0, 0].numel()
    if isinstance(module, torch.nn.Conv2d):
        return 2 * output.numel() * module.weight[0].numel()
    if isinstance(module, torch.nn.Linear):
        return 2 * output.numel() * module.in_features
    return 0


@dataclass(frozen=True)
class ModelCase:
    name: str
    builder: str             # a name in cnnops.models.MODELS
    input_shape: tuple       # N, C, H, W
    num_classes: int = 1000
    op: str = "model"
    grad_names = ("grad_input",)
    deep = True             # float32 checked against a float64 reference (check.py)
    budget_seconds = 3.0    # fewer timed repetitions: each is long

    def models(self, device, dtype, layout):
        key = (self.name, device, dtype, layout)
        if key not in _BUILT:
            torch.manual_seed(0)
            net = models.get_model(self.builder, num_classes=self.num_classes)
            net = net.to(device=device, dtype=dtype, memory_format=LAYOUTS[layout]).eval()
            twin = cnnops.to_torch(net).eval()
            if len(_BUILT) >= 2:  # a few model pairs at a time: they can be large
                _BUILT.clear()
            _BUILT[key] = (net, twin)
        return _BUILT[key]

    def make_inputs(self, device, dtype, layout, seed=0):
        self.models(device, dtype, layout)
        _CURRENT[self.name] = (device, dtype, layout)
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(self.input_shape, generator=gen)
        return (x.to(device=device, dtype=dtype, memory_format=LAYOUTS[layout]),)

    def call(self, lib, x):
        device, _, layout = _CURRENT[self.name]
        net, twin = self.models(device, x.dtype, layout)
        model = net if lib.__name__ == "cnnops" else twin
        if torch.is_grad_enabled():
            model.zero_grad(set_to_none=True)
        return model(x)

    def problem(self):
        return None

    def flop(self, mode):
        """Per-sample forward FLOPs (exactly linear in N) times N; x3 for fwd+bwd."""
        per_sample, _ = _counts(self.builder, self.num_classes, tuple(self.input_shape[1:]))
        return per_sample * self.input_shape[0] * (1 if mode == "fwd" else 3)

    def bytes_moved(self, mode, elem_size):
        """Parameters and input read once per pass (a lower bound: activations not counted)."""
        _, params = _counts(self.builder, self.num_classes, tuple(self.input_shape[1:]))
        return (1 if mode == "fwd" else 3) * (params + torch.Size(self.input_shape).numel()) * elem_size

    def describe(self):
        return dict(builder=self.builder, input_shape=self.input_shape,
                    num_classes=self.num_classes)


@functools.lru_cache(maxsize=None)
def _counts(builder, num_classes, sample_shape):
    """(forward FLOPs of one sample of shape (C, H, W), parameter count) of a model."""
    net = models.get_model(builder, num_classes=num_classes).eval()
    total = []
    hooks = [m.register_forward_hook(lambda m, i, o: total.append(_layer_flop(m, i, o)))
             for m in net.modules()]
    with torch.no_grad():
        net(torch.zeros((1,) + sample_shape))
    for h in hooks:
        h.remove()
    return sum(total), sum(p.numel() for p in net.parameters())
