"""What a channel responds to: inputs that maximise its mean activation, found by gradient
ascent on the input (Erhan et al. 2009; Chollet, "Deep Learning with Python", 5.4.2).

From a seeded random start x0 ~ N(0, 0.1^2) (in the model's standardised input space),
each step moves every image along its gradient normalised to unit RMS:
    x <- x + lr * g / (sqrt(mean(g^2)) + 1e-8),   g = d mean(A_c(x)) / dx
so the step size does not depend on the gradient's scale.
"""
from typing import NamedTuple

import torch

from .figures import save_grid, to_display
from .layers import capture, eval_mode


class FilterPatterns(NamedTuple):
    images: torch.Tensor        # (K, C, size, size): the inputs found, one per channel
    values: torch.Tensor        # (K,): each channel's mean activation for its input
    start_values: torch.Tensor  # (K,): the same for the random start
    channels: list              # the K channel indices


def _channel_means(model, x, layer, channels):
    """Mean activation of channel channels[k] of `layer` for image k of x; the forward stops
    at the layer."""
    outputs, _ = capture(model, x, [layer], keep_graph=True, stop_early=True)
    a = outputs[layer]
    if a.dim() != 4:
        raise ValueError(f"filter_patterns: layer {layer!r} outputs shape {tuple(a.shape)}, "
                         f"not a feature map (N, C, H, W)")
    if max(channels) >= a.shape[1] or min(channels) < 0:
        raise ValueError(f"filter_patterns: layer {layer!r} has {a.shape[1]} channels, "
                         f"asked for {channels}")
    index = torch.as_tensor(channels, device=a.device)
    return a[torch.arange(len(channels), device=a.device), index].flatten(1).mean(1)


def filter_patterns(model, layer, channels=16, size=64, steps=40, lr=0.1, seed=0,
                    in_channels=None):
    """Inputs (in_channels x size x size) that maximise each channel's mean activation at
    `layer`, by `steps` normalised gradient-ascent steps of `lr` from a random start drawn
    with `seed`. channels: an int n (the first n channels) or a list of channel indices.
    in_channels: the model's input channels (default: found from its first convolution).
    Returns FilterPatterns(images, values, start_values, channels); the model runs in eval
    mode up to the layer only, so the input size may differ from the training images'."""
    channels = list(range(channels)) if isinstance(channels, int) else [int(c) for c in channels]
    if not channels:
        raise ValueError("filter_patterns: no channels")
    if in_channels is None:
        in_channels = input_channels(model)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    g = torch.Generator().manual_seed(seed)
    x = (0.1 * torch.randn(len(channels), in_channels, size, size, generator=g)).to(device, dtype)
    with eval_mode(model), torch.enable_grad():
        start = None
        for _ in range(steps):
            x.requires_grad_(True)
            value = _channel_means(model, x, layer, channels)
            if start is None:
                start = value.detach()
            (grad,) = torch.autograd.grad(value.sum(), x)
            rms = grad.pow(2).flatten(1).mean(1).sqrt().reshape(-1, 1, 1, 1)
            x = (x + lr * grad / (rms + 1e-8)).detach()
        with torch.no_grad():
            value = _channel_means(model, x, layer, channels)
    if start is None:
        start = value
    return FilterPatterns(x, value.detach(), start, channels)


def input_channels(model):
    """The input channel count of model: that of its first convolution in registration
    order (a torch.nn ConvNd, or another layer with an in_channels attribute; the model's
    own attributes are not read: a ResNet's in_channels is a construction counter)."""
    modules = list(model.modules())
    convs = [m for m in modules if isinstance(m, torch.nn.modules.conv._ConvNd)]
    others = [m for m in modules[1:] if isinstance(getattr(m, "in_channels", None), int)]
    for m in convs[:1] or others[:1]:
        return m.in_channels
    raise ValueError(f"{type(model).__name__}: cannot tell its input channels; pass in_channels")


def deprocess(x):
    """A pattern (C, H, W) made viewable in [0, 1]: centred, scaled to 0.15 per standard
    deviation around 0.5 (Chollet's display), clipped."""
    x = x.detach().float()
    x = (x - x.mean()) / (x.std() + 1e-8)
    return (0.5 + 0.15 * x).clamp(0, 1)


def save_pattern_grid(patterns, path, title=None, ncols=8):
    """A PNG grid of the FilterPatterns' images (deprocessed; 3 channels as RGB, others
    as grey), each titled with its channel and mean activation. Returns the path."""
    tiles = []
    for image in patterns.images:
        image = deprocess(image)
        if image.shape[0] != 3:
            image = image.mean(0, keepdim=True)
        tiles.append(to_display(image))
    labels = [f"{c}: {v:.3g}" for c, v in zip(patterns.channels, patterns.values.tolist())]
    return save_grid(tiles, path, labels=labels, title=title, ncols=ncols)
