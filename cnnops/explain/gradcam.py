"""Grad-CAM (Selvaraju et al., 2017): where in the image the evidence for a class is.

For image n and a layer's output A (C, h, w), with score y the class's logit:
    alpha_k = mean over (i, j) of dy / dA_k[i, j]
    cam     = ReLU(sum_k alpha_k A_k), divided by its maximum (left at 0 when that is 0),
              upsampled bilinearly (align_corners=False) to the input's H x W.
"""
import torch
import torch.nn.functional as F

from .figures import save_overlays, to_display
from .layers import capture, eval_mode


def class_scores(output):
    """(N, classes) scores from a model output: a classifier's logits as they are; a
    per-pixel map (N, classes, H, W) is averaged over its pixels."""
    return output if output.dim() == 2 else output.flatten(2).mean(2)


def grad_cam(model, x, layer, target=None):
    """Grad-CAM heatmaps (N, H, W) in [0, 1] for the batch x (N, C, H, W) at the layer named
    `layer` (a name of model.named_modules() whose output is (N, K, h, w)).

    target: the class explained, an int for every image or a per-image tensor of N class
    ids; None explains each image's top class. The model runs in eval mode (images do not
    interact through BatchNorm); its parameters get no gradients."""
    with eval_mode(model), torch.enable_grad():
        x = x.detach()
        outputs, logits = capture(model, x, [layer], keep_graph=True)
        a = outputs[layer]
        if a.dim() != 4:
            raise ValueError(f"grad_cam: layer {layer!r} outputs shape {tuple(a.shape)}, "
                             f"not a feature map (N, C, H, W)")
        scores = class_scores(logits)
        n = scores.shape[0]
        if target is None:
            target = scores.argmax(1)
        target = torch.as_tensor(target, device=scores.device).long().expand(n)
        chosen = scores.gather(1, target[:, None]).sum()
        (grad,) = torch.autograd.grad(chosen, a)
    alpha = grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((alpha * a.detach()).sum(1))                        # (N, h, w)
    peak = cam.flatten(1).amax(1).reshape(n, 1, 1)
    cam = torch.where(peak > 0, cam / torch.where(peak > 0, peak, torch.ones_like(peak)), 0.0)
    cam = F.interpolate(cam[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)
    return cam[:, 0]


def save_gradcam_overlay(images, heatmaps, path, labels=None, title=None):
    """A PNG of each image (N, C, H, W) with values in [0, 1] next to its Grad-CAM heatmap
    (N, H, W) laid over it, the heatmap's peak marked. Returns the path."""
    return save_overlays([to_display(im) for im in images],
                         [h.detach().float().cpu().numpy() for h in heatmaps], path,
                         labels=labels, title=title)
