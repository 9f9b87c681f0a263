"""Fusion without a graph: conv [-> BatchNorm2d] [-> activation] runs of consecutive
children of an nn.Sequential, for containers whose forward cannot be traced.

In a Sequential each child's output feeds only the next child, so a run's intermediate
values have no other use. The fused module takes the conv's place and the absorbed
children become nn.Identity, so the other children keep their indices (a caller that
indexes the Sequential still finds them).
"""
from torch import nn

from .activations import module_kind
from .folding import bn_refusal, build_fused, conv_refusal, is_conv, pattern_name


def is_plain_sequential(module):
    """An nn.Sequential (or subclass) whose forward is Sequential's: children run in order."""
    return isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward


def _run_at(children, i, prefix, report):
    """(bn, activation kind, index after the run) of the run starting at conv children[i]."""
    names, modules = children
    conv, j, bn, kind = modules[i], i + 1, None, None
    if j < len(modules) and type(modules[j]) is nn.BatchNorm2d:
        reason = bn_refusal(modules[j], conv)
        if reason is not None:
            report.add_left(prefix + names[j], reason + ": not folded")
            return None, None, j
        bn, j = modules[j], j + 1
    if j < len(modules) and module_kind(modules[j]) is not None:
        if modules[j].training:
            report.add_left(prefix + names[j], f"{type(modules[j]).__name__} in train mode")
        else:
            kind, j = module_kind(modules[j]), j + 1
    return bn, kind, j


def fuse_sequential(seq, prefix, report, channels_last):
    """Fuses the conv runs among seq's children in place (names reported with `prefix`)."""
    names, modules = list(seq._modules), list(seq._modules.values())
    i = 0
    while i < len(modules):
        conv = modules[i]
        if not is_conv(conv):
            i += 1
            continue
        reason = conv_refusal(conv)
        if reason is not None:
            report.add_left(prefix + names[i], reason)
            i += 1
            continue
        bn, kind, end = _run_at((names, modules), i, prefix, report)
        setattr(seq, names[i], build_fused(conv, bn, kind, None, channels_last))
        for k in range(i + 1, end):
            setattr(seq, names[k], nn.Identity())
        steps = [prefix + names[i]] + ([names[i + 1]] if bn is not None else []) + \
            ([kind] if kind else [])
        report.add_fused("+".join(steps), pattern_name(conv, bn, kind, False, None))
        i = end
