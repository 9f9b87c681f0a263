"""Model zoo on cnnops layers: every convolution, transposed convolution, max pool and average
pool is a cnnops.nn module; BatchNorm, ReLU, Linear and Dropout are torch.nn's.

Each model class names its final classification layer in the class attribute HEAD, which
replace_head, base_parameters and head_parameters use (fine-tuning, freezing).
"""
import torch

from .. import nn as cnn
from .mini_xception import mini_xception
from .resnet import resnet18, resnet34, resnet50, resnet101, resnet152
from .segmentation_fcn import segmentation_fcn
from .simple_cnn import simple_cnn
from .xception import xception

MODELS = {f.__name__: f for f in (resnet18, resnet34, resnet50, resnet101, resnet152, xception,
                                  mini_xception, simple_cnn, segmentation_fcn)}


def get_model(name, **kwargs):
    """MODELS[name](**kwargs), with a clear error for an unknown name."""
    if name not in MODELS:
        raise ValueError(f"cnnops.models: unknown model {name!r}; expected one of "
                         f"{', '.join(sorted(MODELS))}")
    return MODELS[name](**kwargs)


def _head_name(model):
    name = getattr(type(model), "HEAD", None)
    if name is None:
        raise TypeError(f"cnnops.models: {type(model).__name__} has no HEAD attribute naming "
                        f"its classification layer")
    return name


def replace_head(model, num_classes):
    """Swaps model's head (a Linear or a Conv2d) in place for a freshly initialised one with
    the same input size and num_classes outputs, on the same device and dtype. Returns it."""
    name = _head_name(model)
    old = getattr(model, name)
    factory = dict(device=old.weight.device, dtype=old.weight.dtype)
    if isinstance(old, torch.nn.Linear):
        new = torch.nn.Linear(old.in_features, num_classes, old.bias is not None, **factory)
    elif isinstance(old, torch.nn.Conv2d):
        new = cnn.Conv2d(old.in_channels, num_classes, old.kernel_size, old.stride, old.padding,
                         old.dilation, old.groups, old.bias is not None, old.padding_mode,
                         **factory)
    else:
        raise TypeError(f"cnnops.models.replace_head: expected the head {name!r} to be a "
                        f"Linear or a Conv2d, got {type(old).__name__}")
    setattr(model, name, new.train(old.training))
    return new


def head_parameters(model):
    """The parameters of model's head (e.g. to train them alone)."""
    return list(getattr(model, _head_name(model)).parameters())


def base_parameters(model):
    """Every parameter of model that is not in its head (e.g. to freeze them)."""
    head = {id(p) for p in head_parameters(model)}
    return [p for p in model.parameters() if id(p) not in head]


__all__ = ["MODELS", "get_model", "replace_head", "head_parameters", "base_parameters",
           *MODELS]
