"""Images for the explanations: photographs from files or scikit-learn's samples, fitted to
a model's input (centre square, resized, channels), and how to name them in file names."""
import pathlib
import re

import numpy as np
import torch

SKLEARN = "sklearn:"
SKLEARN_IMAGES = ("china.jpg", "flower.jpg")


def load_image(spec):
    """An RGB image as a uint8 tensor (3, H, W): spec is an image file's path or
    'sklearn:NAME' for one of scikit-learn's sample photographs (china.jpg, flower.jpg)."""
    if spec.startswith(SKLEARN):
        from sklearn.datasets import load_sample_image
        name = spec[len(SKLEARN):]
        if name not in SKLEARN_IMAGES:
            raise ValueError(f"{spec}: scikit-learn's sample images are "
                             f"{', '.join(SKLEARN + n for n in SKLEARN_IMAGES)}")
        array = load_sample_image(name)
    else:
        from PIL import Image
        path = pathlib.Path(spec)
        if not path.is_file():
            raise ValueError(f"{spec}: no such image file")
        try:
            with Image.open(path) as im:
                array = np.asarray(im.convert("RGB"))
        except OSError as e:  # PIL's UnidentifiedImageError is an OSError
            raise ValueError(f"{spec}: not an image PIL can read ({e})") from None
    return torch.from_numpy(np.array(array, dtype=np.uint8)).permute(2, 0, 1)


def fit_image(image, size, channels):
    """A uint8 RGB image (3, H, W) as a float (channels, size, size) image in [0, 1]: its
    centre square, resized with PIL's antialiasing bilinear filter; one channel is the
    luminance (PIL's "L"), other counts than 3 repeat it."""
    from PIL import Image
    h, w = image.shape[1:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    pil = Image.fromarray(image.permute(1, 2, 0).numpy()).crop((left, top, left + side, top + side))
    if channels != 3:
        pil = pil.convert("L")
    pil = pil.resize((size, size), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255)
    if channels == 3:
        return x.permute(2, 0, 1).contiguous()
    return x[None].expand(channels, -1, -1).contiguous()


def tag(spec):
    """A short file-name-safe name for an image spec: 'sklearn:china.jpg' -> 'china',
    'test:3' -> 'test3', 'photos/cat.png' -> 'cat'."""
    if spec.startswith(SKLEARN):
        spec = spec[len(SKLEARN):]
    name = pathlib.Path(spec).stem if not spec.startswith("test:") else spec.replace(":", "")
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "image"
