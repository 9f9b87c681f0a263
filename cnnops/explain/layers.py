"""Finding a model's layers by name and catching their outputs with forward hooks.

A layer is any module of model.named_modules(), named as there ("layer2", "features.3",
"layer1.0.conv1"), so this works with cnnops.models, torch.nn models and converted ones
alike. A module that runs more than once in a forward (a shared ReLU) gives the output of
its first call.
"""
import contextlib
import difflib

import torch


class _Stop(Exception):
    """Raised by a hook to end a forward once every wanted output is caught."""


def find_module(model, name):
    """model's submodule called `name` in model.named_modules(); a KeyError naming close
    matches otherwise."""
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        close = difflib.get_close_matches(name, [n for n in modules if n], n=5, cutoff=0.5)
        hint = f"; close names: {', '.join(close)}" if close else ""
        raise KeyError(f"{type(model).__name__} has no layer {name!r}{hint} "
                       f"(see `python -m cnnops.explain layers`)")
    return modules[name]


@contextlib.contextmanager
def eval_mode(model):
    """model.eval() inside the block, its previous training flags restored afterwards
    (explanations use the inference behaviour: BatchNorm's running statistics, no dropout)."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in flags:
            m.training = training


def capture(model, x, names, *, keep_graph=False, stop_early=False):
    """Runs model(x) and catches the output of each layer in `names`.

    Returns (outputs {name: tensor}, model output, or None when stopped early).
    keep_graph=False: the outputs are detached copies. keep_graph=True: they are the
    tensors in the autograd graph (for gradients with respect to them); the rest of the
    forward then sees a copy, so an in-place op downstream (ReLU(inplace=True)) does not
    change them. stop_early: the forward ends as soon as every output is caught (layers
    after them, such as a head built for another input size, never run)."""
    names = list(dict.fromkeys(names))
    modules = {name: find_module(model, name) for name in names}
    outputs = {}

    def hook_for(name):
        def hook(module, inputs, output):
            if name in outputs:
                return None
            if not isinstance(output, torch.Tensor):
                raise TypeError(f"layer {name!r} ({type(module).__name__}) outputs a "
                                f"{type(output).__name__}, not a tensor; choose another layer")
            outputs[name] = output if keep_graph else output.detach().clone()
            if stop_early and len(outputs) == len(names):
                raise _Stop
            return output.clone() if keep_graph else None
        return hook

    handles = [modules[name].register_forward_hook(hook_for(name)) for name in names]
    result = None
    try:
        result = model(x)
    except _Stop:
        pass
    finally:
        for h in handles:
            h.remove()
    missing = [n for n in names if n not in outputs]
    if missing:
        raise RuntimeError(f"layer(s) {', '.join(map(repr, missing))} did not run in the forward")
    return outputs, result


def map_layers(model, x):
    """[(name, module type, output shape)] of every named module that outputs a tensor, in
    the order their forwards finish for input x (the model in eval mode, no gradients)."""
    order, seen = [], set()

    def hook_for(name):
        def hook(module, inputs, output):
            if isinstance(output, torch.Tensor) and name not in seen:
                seen.add(name)
                order.append((name, type(module).__name__, tuple(output.shape)))
        return hook

    handles = [m.register_forward_hook(hook_for(n)) for n, m in model.named_modules() if n]
    try:
        with eval_mode(model), torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return order


def feature_maps(model, x):
    """The names of the layers whose output for x is a feature map larger than 1x1
    ((N, C, H, W) with H * W > 1), in the order their forwards finish."""
    return [name for name, _, shape in map_layers(model, x)
            if len(shape) == 4 and shape[2] * shape[3] > 1]


def last_feature_map(model, x, min_side=7):
    """The default Grad-CAM layer: the last layer to finish whose output is a feature map of
    at least min_side x min_side (a ResNet's layer4 at 224 x 224, 7 x 7, as in the
    Grad-CAM paper; coarser maps cannot place a small object); when none is that large,
    the last feature map larger than 1x1."""
    maps = [(name, shape) for name, _, shape in map_layers(model, x)
            if len(shape) == 4 and shape[2] * shape[3] > 1]
    if not maps:
        raise ValueError(f"{type(model).__name__} has no layer with a feature map larger than "
                         f"1x1 for an input of shape {tuple(x.shape)}")
    fine = [name for name, shape in maps if min(shape[2:]) >= min_side]
    return fine[-1] if fine else maps[-1][0]
