"""Data sets for the training command, held in memory and deterministic from a seed.

digits: scikit-learn's 1797 handwritten 8x8 digits (values 0..16), resized bilinearly to
    image_size, replicated to the model's channel count, standardised with the training
    split's mean and std; a stratified 80/20 train/test split.
shapes: generated images of circles, squares and triangles of random colours on a noisy
    background, with per-pixel masks (0 = background, 1 = circle, 2 = square,
    3 = triangle); later shapes cover earlier ones.
shapes_cls: the same generator with one shape per image; the class is the shape (0 =
    circle, 1 = square, 2 = triangle) and the mask is kept (for localisation checks).

Augmentation is keyed by sample index and epoch (not by batch position), so a sample is
augmented the same way whatever the batch size, the number of processes or a resume.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

SHAPE_CLASSES = ("background", "circle", "square", "triangle")
SHAPE_CLS_CLASSES = SHAPE_CLASSES[1:]
SHAPE_CLS_SIZES = (0.12, 0.25)  # half-sizes of shapes_cls' shapes (a fraction of the image)
DIGIT_CLASSES = tuple(str(d) for d in range(10))


class TensorData:
    """An in-memory data set. images: (N, C, H, W), float32 already standardised or uint8
    (standardised per batch with mean/std); targets: (N,) class ids or (N, H, W) masks.
    task: 'classification' or 'segmentation'. pixel_stats: (mean, std) that turn images
    with values in [0, 1] into model inputs (default: mean, std; see to_input). masks:
    optional (N, H, W) object masks of a classification set, kept for evaluation."""

    def __init__(self, images, targets, class_names, task, mean=0.0, std=1.0, max_shift=0,
                 flips=False, fill=None, pixel_stats=None, masks=None):
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} targets")
        if max_shift > 0 and targets.dim() == 3:
            raise ValueError("shift augmentation of segmentation masks is not supported")
        self.images, self.targets = images, targets
        self.class_names, self.task = tuple(class_names), task
        self.mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)
        self.std = torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1)
        self.max_shift, self.flips = max_shift, flips
        # what a shift brings in: the standardised value of a zero (background) pixel
        self.fill = (-self.mean / self.std).reshape(-1) if fill is None else fill
        pixel_mean, pixel_std = (mean, std) if pixel_stats is None else pixel_stats
        self.pixel_mean = torch.as_tensor(pixel_mean, dtype=torch.float32).reshape(-1, 1, 1)
        self.pixel_std = torch.as_tensor(pixel_std, dtype=torch.float32).reshape(-1, 1, 1)
        self.masks = masks

    def __len__(self):
        return len(self.images)

    @property
    def num_classes(self):
        return len(self.class_names)

    def augmentation(self, seed, epoch):
        """The random choices of one epoch for every sample (see Augmentation)."""
        return Augmentation(len(self), seed, epoch, self.max_shift, self.flips)

    def batch(self, indices, augmentation=None):
        """(images float32 standardised, targets int64) for the samples `indices`."""
        x = self.images[indices]
        y = self.targets[indices].long()
        if x.dtype == torch.uint8:
            x = (x.float() / 255 - self.mean) / self.std
        if augmentation is not None:
            x, y = augmentation.apply(x, y, indices, fill=self.fill)
        return x, y


    def to_input(self, pixels):
        """Model inputs from images (N, C, H, W) with values in [0, 1], standardised as the
        samples of this set are."""
        return (pixels - self.pixel_mean) / self.pixel_std

    def to_pixels(self, x):
        """The inverse of to_input, clipped to [0, 1] (for display)."""
        return (x * self.pixel_std + self.pixel_mean).clamp(0, 1)


class Augmentation:
    """Per-sample random choices drawn once per epoch from (seed, epoch): integer shifts in
    [-max_shift, max_shift] (the image moves, uncovered pixels take the background value)
    and horizontal / vertical flips (images and masks together)."""

    def __init__(self, n, seed, epoch, max_shift=0, flips=False):
        g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch) + 1)
        self.max_shift, self.flips = max_shift, flips
        self.shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=g)
        self.flip = torch.rand((n, 2), generator=g) < 0.5

    def apply(self, x, y, indices, fill):
        indices = torch.as_tensor(indices)
        if self.max_shift > 0:
            x = shift(x, self.shifts[indices], fill)
        if self.flips:  # out of place: x and y may be views of the data set
            for dim, flip in ((-1, self.flip[indices, 0]), (-2, self.flip[indices, 1])):
                if flip.any():
                    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(dim), x)
                    if y.dim() == 3:
                        y = torch.where(flip.view(-1, 1, 1), y.flip(dim), y)
        return x, y


def shift(x, shifts, fill):
    """Moves image n of x (N, C, H, W) by shifts[n] = (dy, dx) pixels; `fill` (C,) enters."""
    n, c, h, w = x.shape
    s = int(shifts.abs().max()) if len(shifts) else 0
    if s == 0:
        return x
    fill = torch.as_tensor(fill, dtype=x.dtype).reshape(-1).expand(c)
    padded = fill.reshape(1, c, 1, 1).repeat(n, 1, h + 2 * s, w + 2 * s)
    padded[:, :, s:s + h, s:s + w] = x
    rows = (torch.arange(h) + s - shifts[:, 0:1])[:, :, None]        # (N, H, 1)
    cols = (torch.arange(w) + s - shifts[:, 1:2])[:, None, :]        # (N, 1, W)
    out = padded[torch.arange(n)[:, None, None], :, rows, cols]      # (N, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


def _subset(x, y, size, seed, what):
    """A stratified subset of `size` samples (all when size is None)."""
    from sklearn.model_selection import train_test_split
    if size is None or size == len(y):
        return x, y
    if size > len(y):
        raise ValueError(f"{what} is {size} but the split has only {len(y)} samples")
    classes = len(np.unique(y))
    stratify = y if min(size, len(y) - size) >= classes else None
    keep, _ = train_test_split(np.arange(len(y)), train_size=size, random_state=seed,
                               stratify=stratify)
    keep = np.sort(keep)
    return x[keep], y[keep]


def digits(image_size=32, channels=1, seed=0, test_fraction=0.2, train_size=None,
           test_size=None, max_shift=None):
    """(train, test) TensorData of the scikit-learn digits, split stratified with `seed`.

    max_shift: the training shift augmentation in pixels (default image_size // 16: 2 at
    32x32, about a quarter of a stroke); 0 turns it off. train_size / test_size take a
    stratified subset of each split (smoke tests)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    bunch = load_digits()
    images = bunch.images.astype(np.float32) / 16.0                 # (1797, 8, 8) in [0, 1]
    labels = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(images, labels, test_size=test_fraction,
                                              random_state=seed, stratify=labels)
    x_tr, y_tr = _subset(x_tr, y_tr, train_size, seed, "--train-size")
    x_te, y_te = _subset(x_te, y_te, test_size, seed, "--test-size")

    def prepare(x):
        t = torch.from_numpy(x)[:, None]
        if t.shape[-1] != image_size:
            t = F.interpolate(t, size=(image_size, image_size), mode="bilinear",
                              align_corners=False)
        return t

    x_tr, x_te = prepare(x_tr), prepare(x_te)
    mean, std = x_tr.mean().item(), x_tr.std().item()
    x_tr, x_te = ((t - mean) / std for t in (x_tr, x_te))
    x_tr, x_te = (t.expand(-1, channels, -1, -1).contiguous() for t in (x_tr, x_te))
    shift_px = image_size // 16 if max_shift is None else max_shift
    fill = torch.full((channels,), -mean / std)  # images are standardised in advance
    stats = (mean, std)  # of pixels in [0, 1]: the digits' values / 16
    train = TensorData(x_tr, torch.from_numpy(y_tr), DIGIT_CLASSES, "classification",
                       max_shift=shift_px, fill=fill, pixel_stats=stats)
    test = TensorData(x_te, torch.from_numpy(y_te), DIGIT_CLASSES, "classification", fill=fill,
                      pixel_stats=stats)
    return train, test


def make_shapes(n, image_size=64, seed=0, max_shapes=3, noise=0.08, sizes=(0.08, 0.2)):
    """n generated images, uint8 (n, 3, S, S), and masks, uint8 (n, S, S).

    Each image: a random background colour plus Gaussian noise, 1..max_shapes shapes (circle,
    axis-aligned square, equilateral triangle at a random rotation) with a half-size of
    sizes[0] to sizes[1] of the image (8% to 20%), each of a random colour at least 0.35
    (RGB distance, 0..1 scale) from the background. Deterministic from (seed, n, image_size,
    sizes)."""
    rng = np.random.default_rng(seed)
    s = image_size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) + 0.5
    images = np.empty((n, s, s, 3), np.uint8)
    masks = np.zeros((n, s, s), np.uint8)
    for i in range(n):
        background = rng.uniform(0.0, 1.0, 3)
        image = np.empty((s, s, 3), np.float32)
        image[:] = background
        mask = masks[i]
        for _ in range(rng.integers(1, max_shapes + 1)):
            cls = int(rng.integers(1, len(SHAPE_CLASSES)))
            r = rng.uniform(*sizes) * s
            cy, cx = rng.uniform(r, s - r, 2)
            for _ in range(100):
                colour = rng.uniform(0.0, 1.0, 3)
                if np.linalg.norm(colour - background) >= 0.35:
                    break
            if cls == 1:
                inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
            elif cls == 2:
                inside = (np.abs(xx - cx) <= r) & (np.abs(yy - cy) <= r)
            else:
                inside = _triangle(xx, yy, cx, cy, 1.3 * r, rng.uniform(0, 2 * math.pi))
            image[inside] = colour
            mask[inside] = cls
        image += rng.normal(0.0, noise, image.shape).astype(np.float32)
        images[i] = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(masks)


def _triangle(xx, yy, cx, cy, radius, angle):
    """Pixels inside the equilateral triangle of circumradius `radius` centred at (cx, cy)."""
    corners = [(cx + radius * math.cos(angle + k * 2 * math.pi / 3),
                cy + radius * math.sin(angle + k * 2 * math.pi / 3)) for k in range(3)]
    inside = np.ones(xx.shape, bool)
    for (x0, y0), (x1, y1) in zip(corners, corners[1:] + corners[:1]):
        # counter-clockwise corners: the inside is left of every edge
        inside &= (x1 - x0) * (yy - y0) - (y1 - y0) * (xx - x0) >= 0
    return inside


def shapes(image_size=64, seed=0, train_size=2000, test_size=400, flips=True):
    """(train, test) TensorData of generated shapes; the two sets come from independent
    streams of `seed`, so the test set does not depend on train_size."""
    x_tr, m_tr = make_shapes(train_size, image_size, seed=[seed, 0])
    x_te, m_te = make_shapes(test_size, image_size, seed=[seed, 1])
    mean = (x_tr.float() / 255).mean(dim=(0, 2, 3))
    std = (x_tr.float() / 255).std(dim=(0, 2, 3))
    train = TensorData(x_tr, m_tr, SHAPE_CLASSES, "segmentation", mean, std, flips=flips)
    test = TensorData(x_te, m_te, SHAPE_CLASSES, "segmentation", mean, std)
    return train, test


def shapes_cls(image_size=32, seed=0, train_size=2000, test_size=400, flips=True,
               sizes=SHAPE_CLS_SIZES):
    """(train, test) TensorData for classification: make_shapes images with one shape each,
    labelled by the shape (SHAPE_CLS_CLASSES); each set keeps the shapes' masks (N, H, W),
    bool, in .masks. Streams independent of shapes'; the test set does not depend on
    train_size."""
    sets = []
    for n, stream in ((train_size, 2), (test_size, 3)):
        images, masks = make_shapes(n, image_size, seed=[seed, stream], max_shapes=1,
                                    sizes=sizes)
        labels = masks.flatten(1).amax(1).long() - 1
        if (labels < 0).any():
            raise ValueError(f"--image-size {image_size} is too small: some shapes cover no "
                             f"pixel (use 16 or more)")
        sets.append((images, labels, masks > 0))
    (x_tr, y_tr, m_tr), (x_te, y_te, m_te) = sets
    mean = (x_tr.float() / 255).mean(dim=(0, 2, 3))
    std = (x_tr.float() / 255).std(dim=(0, 2, 3))
    train = TensorData(x_tr, y_tr, SHAPE_CLS_CLASSES, "classification", mean, std, flips=flips,
                       masks=m_tr)
    test = TensorData(x_te, y_te, SHAPE_CLS_CLASSES, "classification", mean, std, masks=m_te)
    return train, test
