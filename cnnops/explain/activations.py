"""What each layer outputs for an image: activations() and a PNG grid of one layer's
channels."""
import torch

from .figures import save_grid
from .layers import capture, eval_mode


def activations(model, x, layers):
    """{name: output} of each named layer (a name or a list of names of
    model.named_modules()) for the batch x, the model in eval mode, without gradients.
    The outputs are copies: in-place ops later in the forward do not change them."""
    names = [layers] if isinstance(layers, str) else list(layers)
    with eval_mode(model), torch.no_grad():
        outputs, _ = capture(model, x, names)
    return {name: outputs[name] for name in names}


def save_activation_grid(acts, path, image_index=0, max_channels=32, title=None, ncols=8):
    """A PNG of the first max_channels channels of one layer's output acts (N, C, H, W),
    for image `image_index`, one tile per channel (each scaled to its own range, viridis;
    the tile's title is its channel and maximum). Returns the path."""
    if not isinstance(acts, torch.Tensor) or acts.dim() != 4:
        shape = tuple(acts.shape) if isinstance(acts, torch.Tensor) else type(acts).__name__
        raise ValueError(f"save_activation_grid: expected a feature map (N, C, H, W), got {shape}")
    maps = acts[image_index, :max_channels].detach().float().cpu()
    tiles = [m.numpy() for m in maps]
    labels = [f"{c}: max {m.max().item():.2g}" for c, m in enumerate(maps)]
    if title is None:
        title = f"activations {tuple(acts.shape[1:])}, image {image_index}"
        if acts.shape[1] > len(tiles):
            title += f", first {len(tiles)} channels"
    return save_grid(tiles, path, labels=labels, title=title, cmap="viridis", ncols=ncols)
