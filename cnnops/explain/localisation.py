"""Does Grad-CAM point at the object? The "pointing game" on images with object masks:
a hit when the heatmap's peak pixel lies inside the mask."""
import torch

from .gradcam import grad_cam


def peak_hits(heatmaps, masks):
    """(N,) bool: whether the peak (first maximum) of each heatmap (N, H, W) lies inside
    its mask (N, H, W). An all-zero heatmap (no evidence anywhere) is a miss."""
    flat = heatmaps.flatten(1)
    peak = flat.argmax(1)
    inside = masks.flatten(1).bool().gather(1, peak[:, None])[:, 0]
    return inside & (flat.amax(1) > 0)


def localisation_rate(model, images, masks, layer, targets=None, batch_size=64):
    """The share of images whose Grad-CAM peak at `layer` falls inside the object's mask.

    images: (N, C, H, W) model inputs; masks: (N, H, W), nonzero on the object; targets:
    the classes explained (N,) (e.g. the true labels), None for each image's top class.
    Returns {"rate", "chance", "hits", "images", "layer"}: chance is the mean mask area
    fraction, the rate of a peak placed at random."""
    hits = []
    for start in range(0, len(images), batch_size):
        end = start + batch_size
        target = None if targets is None else targets[start:end]
        cams = grad_cam(model, images[start:end], layer, target)
        hits.append(peak_hits(cams, masks[start:end].to(cams.device)))
    hits = torch.cat(hits)
    return {"rate": hits.float().mean().item(),
            "chance": masks.flatten(1).bool().float().mean().item(),
            "hits": int(hits.sum()), "images": len(hits), "layer": layer}
