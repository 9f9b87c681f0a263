"""The model side of the command: building a cnnops.models model for a data set, starting
it from other weights (transfer learning), freezing its base, and its optimizer and
learning-rate schedule."""
import inspect
import math

import torch

from .. import models
from . import checkpoint

# Models whose output is a per-pixel map (N, classes, H, W); the rest are classifiers.
SEGMENTATION_MODELS = frozenset({"segmentation_fcn"})


def model_names():
    return sorted(models.MODELS)


def task_of(name):
    return "segmentation" if name in SEGMENTATION_MODELS else "classification"


def _signature(name):
    return inspect.signature(models.MODELS[name]).parameters


def default_in_channels(name):
    """The channel count the model is built for by default (every model takes in_channels)."""
    return _signature(name)["in_channels"].default


def build(name, num_classes, in_channels, image_size):
    """cnnops.models.get_model(name, ...) for `num_classes` outputs and images of
    in_channels x image_size x image_size (passed as input_size where the model takes it)."""
    kwargs = dict(num_classes=num_classes, in_channels=in_channels)
    if "input_size" in _signature(name):
        kwargs["input_size"] = image_size
    return models.get_model(name, **kwargs)


def set_dropout(model, p):
    """Sets the probability of every torch.nn dropout layer of `model` to p."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.dropout._DropoutNd):
            m.p = p


def set_bn_momentum(model, momentum):
    """Sets the momentum of every torch.nn BatchNorm layer of `model` (torch's sense)."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = momentum


def _head_classes(model, state_dict):
    """The class count of the head stored in state_dict (None when it has no head tensor)."""
    head = models._head_name(model)
    for key in (f"{head}.bias", f"{head}.weight"):
        if key in state_dict:
            return int(state_dict[key].shape[0])
    return None


def build_from_weights(name, num_classes, in_channels, image_size, weights):
    """The model started from `weights` (a path: training checkpoint or state_dict).

    Every tensor whose name and shape match is loaded. When the stored head has another
    class count, its tensors do not match and the model keeps its fresh head for
    num_classes. Returns (model, report): report has loaded (count), total, skipped
    ({name: reason}, the replaced head left out), head_replaced (source class count or
    None)."""
    try:
        obj = checkpoint.load(weights)
    except Exception as e:  # not a torch file, or pickled objects beyond tensors and dicts
        raise ValueError(f"torch.load(weights_only=True) cannot read it: {e}") from None
    stored = checkpoint.state_dict_of(obj)
    model = build(name, num_classes, in_channels, image_size)
    source_classes = _head_classes(model, stored)
    replaced = source_classes if source_classes not in (None, num_classes) else None
    loaded, skipped = checkpoint.load_matching(model, stored)
    if not loaded:
        raise ValueError(f"no tensor matches a {name} by name and shape (is it a checkpoint "
                         f"of another architecture?)")
    if replaced is not None:
        head = models._head_name(model) + "."
        skipped = {k: v for k, v in skipped.items() if not k.startswith(head)}
    return model, {"loaded": len(loaded), "total": len(model.state_dict()), "skipped": skipped,
                   "head_replaced": replaced}


def freeze_base(model, frozen):
    """requires_grad False on every parameter outside the head (True everywhere when not
    frozen)."""
    model.requires_grad_(True)
    if frozen:
        for p in models.base_parameters(model):
            p.requires_grad_(False)


def train_mode(model, frozen):
    """model.train(), except that with a frozen base its BatchNorm layers stay in eval
    mode: they normalise with their stored statistics and do not update them, so the
    frozen base computes exactly what it did (Keras's trainable=False behaviour)."""
    model.train()
    if frozen:
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and \
                    not any(p.requires_grad for p in m.parameters(recurse=False)):
                m.eval()


def optimizer(model, name, lr, weight_decay, momentum=0.9):
    """SGD (Nesterov momentum) or AdamW over the parameters that require grad; no weight
    decay on biases and normalisation parameters (1-D tensors)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay},
              {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=True)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}; expected 'sgd' or 'adamw'")


def warmup_cosine(warmup_steps, total_steps):
    """lr factor per step: linear warm-up to 1 over warmup_steps, then a cosine to 0 at
    total_steps."""
    def factor(step):
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        span = max(total_steps - warmup_steps, 1)
        return 0.5 * (1 + math.cos(math.pi * min(step - warmup_steps, span) / span))
    return factor


def scheduler(opt, warmup_steps, total_steps):
    return torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(warmup_steps, total_steps))
