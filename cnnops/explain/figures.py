"""PNG figures with matplotlib's Agg backend: grids of tiles and heatmap overlays."""
import math
import pathlib

import numpy as np


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _show(ax, image, cmap=None):
    """Draws a (H, W) array (scaled to its range with cmap) or an RGB (H, W, 3) array with
    values in [0, 1]; a (H, W, 1) array is drawn grey."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        ax.imshow(image[:, :, 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    elif image.ndim == 3:
        ax.imshow(np.clip(image, 0, 1), interpolation="nearest")
    else:
        ax.imshow(image, cmap=cmap, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _save(fig, path, title):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=80)
    _pyplot().close(fig)
    return path


def save_grid(tiles, path, labels=None, title=None, cmap="viridis", ncols=8, tile_inches=1.2):
    """A PNG grid of tiles (each (H, W): scaled to its own range with cmap; or (H, W, 3)
    RGB / (H, W, 1) grey in [0, 1]), labelled. Returns the path."""
    plt = _pyplot()
    n = len(tiles)
    if n == 0:
        raise ValueError("save_grid: no tiles")
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False,
                             figsize=(tile_inches * ncols, tile_inches * nrows + 0.4))
    for i, ax in enumerate(axes.flat):
        if i < n:
            _show(ax, tiles[i], cmap)
            if labels is not None:
                ax.set_title(labels[i], fontsize=7)
        else:
            ax.axis("off")
    fig.tight_layout(rect=(0, 0, 1, 0.94 if title else 1))
    return _save(fig, path, title)


def save_overlays(images, heatmaps, path, labels=None, title=None, alpha=0.5, tile_inches=1.8):
    """A PNG with one column per image (H, W, 3) or (H, W, 1) in [0, 1] and its heatmap
    (H, W) in [0, 1]: the image above, the heatmap (jet) laid over the image below, its
    peak marked (+). Returns the path."""
    plt = _pyplot()
    n = len(images)
    fig, axes = plt.subplots(2, n, squeeze=False, figsize=(tile_inches * n, 2 * tile_inches + 0.4))
    for i in range(n):
        image, heat = np.asarray(images[i]), np.asarray(heatmaps[i])
        _show(axes[0, i], image)
        _show(axes[1, i], image)
        axes[1, i].imshow(heat, cmap="jet", alpha=alpha, vmin=0, vmax=1, interpolation="bilinear")
        py, px = np.unravel_index(np.argmax(heat), heat.shape)
        axes[1, i].plot([px], [py], "w+", markersize=10, markeredgewidth=2)
        if labels is not None:
            axes[0, i].set_title(labels[i], fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.92 if title else 1))
    return _save(fig, path, title)


def to_display(x):
    """(C, H, W) tensor with values in [0, 1] -> (H, W, C) numpy array for the figures."""
    return x.detach().float().cpu().permute(1, 2, 0).numpy()
