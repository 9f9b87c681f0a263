"""The inference fast path: cnnops.optimize_for_inference(model) folds BatchNorms into the
convolutions and fuses activations and residual adds into conv2d_fused calls.

    optimize.py       optimize_for_inference: copy, eval, trace (or fall back), fuse, wrap
    tracing.py        the fx tracer that keeps torch.nn / cnnops.nn layers whole
    graph_fusion.py   conv -> bn -> act -> add -> act chains on a traced graph
    identities.py     removing eval-mode identities (Dropout, stochastic depth) first
    module_fusion.py  conv -> bn -> act runs in an untraceable nn.Sequential
    activations.py    which modules, functions and adds the fused op can absorb
    folding.py        what may be fused, BatchNorm folding, building fused modules
    fused.py          FusedConv2d, FusedSeparableConv2d
    freeze.py         _freeze_weight: filter pre-packing when the extension offers it
    layout.py         InferenceModel: channels_last entry and exit
    report.py         InferenceReport: what was fused, what was left and why
"""
from .freeze import _freeze_weight
from .fused import FusedConv2d, FusedSeparableConv2d
from .layout import InferenceModel
from .optimize import optimize_for_inference
from .report import InferenceReport

__all__ = ["optimize_for_inference", "FusedConv2d", "FusedSeparableConv2d", "InferenceModel",
           "InferenceReport", "_freeze_weight"]
