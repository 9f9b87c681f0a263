"""python -m cnnops.explain: what a model trained by `python -m cnnops.train` learned.

    python -m cnnops.explain layers      --checkpoint runs/R                  # names, shapes
    python -m cnnops.explain activations --checkpoint runs/R --image test:0 --layer conv1
    python -m cnnops.explain filters     --checkpoint runs/R --layer layer2 --channels 16
    python -m cnnops.explain gradcam     --checkpoint runs/R --image test:0 sklearn:china.jpg
    python -m cnnops.explain localise    --checkpoint runs/R          # shapes_cls: pointing game

Images (--image, one or more): an image file, sklearn:china.jpg / sklearn:flower.jpg
(scikit-learn's sample photographs), or test:N, image N of the run's test set. Photographs
are cut to their centre square, resized to the run's image size and channel count, and
standardised as the run's training images were. The PNGs go to --out (default: the run's
directory/explain); the last line printed is a JSON summary.
"""
import argparse
import json
import pathlib

import torch

from ..train import checkpoint
from ..train import cli as train_cli
from .activations import activations, save_activation_grid
from .gradcam import class_scores, grad_cam, save_gradcam_overlay
from .images import fit_image, load_image, tag
from .layers import feature_maps, last_feature_map, map_layers
from .localisation import localisation_rate
from .patterns import filter_patterns, save_pattern_grid

PROG = "python -m cnnops.explain"
COMMANDS = ("layers", "activations", "filters", "gradcam", "localise")


class UsageError(Exception):
    """A bad command line: reported like argparse's errors (exit status 2)."""


def make_parser():
    p = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="What a convnet trained by python -m cnnops.train learned: activations, "
                    "filter patterns and Grad-CAM heatmaps as PNGs.",
        epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("command", choices=COMMANDS,
                   help="layers: list the layers and their output shapes; activations: a grid "
                        "of a layer's channels per image; filters: inputs that maximise "
                        "channels; gradcam: heatmaps over the images; localise: how often "
                        "Grad-CAM's peak is on the object (test set with masks: shapes_cls)")
    p.add_argument("--checkpoint", required=True, metavar="PATH",
                   help="checkpoint.pt of python -m cnnops.train, or its run directory")
    p.add_argument("--image", nargs="+", default=None, metavar="SPEC",
                   help="file, sklearn:china.jpg, sklearn:flower.jpg or test:N (activations, "
                        "gradcam; default test:0)")
    p.add_argument("--layer", action="append", default=None, metavar="NAME",
                   help="a name from model.named_modules() (see the layers command); repeat "
                        "for several. Default for gradcam, filters and localise: the last "
                        "feature map of at least 7x7 (else the last larger than 1x1); for "
                        "activations: the first feature map and that one")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="where the PNGs go (default: the checkpoint's directory/explain)")
    g = p.add_argument_group("activations")
    g.add_argument("--max-channels", type=int, default=32, metavar="N",
                   help="channels drawn per layer (default 32)")
    g = p.add_argument_group("filters")
    g.add_argument("--channels", type=int, default=16, metavar="N",
                   help="the first N channels of each layer (default 16)")
    g.add_argument("--size", type=int, default=None, metavar="PX",
                   help="pattern size (default: the run's image size)")
    g.add_argument("--steps", type=int, default=40, help="gradient-ascent steps (default 40)")
    g.add_argument("--lr", type=float, default=0.1,
                   help="step length per normalised gradient (default 0.1)")
    g.add_argument("--seed", type=int, default=0, help="of the random start (default 0)")
    g = p.add_argument_group("gradcam, localise")
    g.add_argument("--target", default=None, metavar="CLASS",
                   help="gradcam: the class explained, a name or an index (default: each "
                        "image's top class)")
    g.add_argument("--predicted", action="store_true",
                   help="localise: explain the predicted class (default: the true class)")
    g.add_argument("--test-size", type=int, default=None, metavar="N",
                   help="localise: the first N test images (default all)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch.set_num_threads(N)")
    return p


class Run:
    """A trained model with what the commands need: its options, its data sets (loaded on
    first use) and the input shape."""

    def __init__(self, path):
        try:
            self.model, self.args, ckpt = train_cli.load_trained(path)
        except (OSError, ValueError, RuntimeError) as e:
            raise UsageError(f"--checkpoint {path}: {e}") from None
        self.path = checkpoint.resolve(path)
        self.size, self.channels = self.args.image_size, self.args.in_channels
        self._data = None

    @property
    def data(self):
        if self._data is None:
            self._data = train_cli.load_data(self.args)
        return self._data

    @property
    def test_set(self):
        return self.data[1]

    @property
    def class_names(self):
        return self.test_set.class_names

    def blank(self):
        return torch.zeros(1, self.channels, self.size, self.size)

    def image(self, spec):
        """(model input (C, S, S), pixels in [0, 1] (C, S, S)) for an image spec."""
        test = self.test_set
        if spec.startswith("test:"):
            try:
                index = int(spec[len("test:"):])
            except ValueError:
                raise UsageError(f"--image {spec}: expected test:N with N an integer") from None
            if not 0 <= index < len(test):
                raise UsageError(f"--image {spec}: the test set has {len(test)} images")
            x, _ = test.batch(torch.tensor([index]))
            return x[0], test.to_pixels(x[0])
        try:
            pixels = fit_image(load_image(spec), self.size, self.channels)
        except ValueError as e:
            raise UsageError(f"--image {e}") from None
        return test.to_input(pixels), pixels

    def images(self, specs):
        pairs = [self.image(s) for s in specs]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


def _layers(run, opts, default):
    names = opts.layer or default
    known = dict(run.model.named_modules())
    for name in names:
        if name not in known or not name:
            raise UsageError(f"--layer {name!r}: no such layer in {run.args.model} (the "
                             f"layers command lists them)")
    return names


def _layers_command(run, opts, out):
    rows = map_layers(run.model, run.blank())
    width = max(len(n) for n, _, _ in rows)
    for name, kind, shape in rows:
        print(f"{name:<{width}}  {kind:<20} {tuple(shape[1:])}")
    return {"layers": len(rows), "default_layer": last_feature_map(run.model, run.blank())}


def _activations_command(run, opts, out):
    first = feature_maps(run.model, run.blank())[0]
    last = last_feature_map(run.model, run.blank())
    names = _layers(run, opts, list(dict.fromkeys([first, last])))
    specs = opts.image or ["test:0"]
    x, _ = run.images(specs)
    acts = activations(run.model, x, names)
    files = []
    for name in names:
        if acts[name].dim() != 4:
            raise UsageError(f"--layer {name}: its output {tuple(acts[name].shape)} is not a "
                             f"feature map (N, C, H, W)")
        for i, spec in enumerate(specs):
            path = out / f"activations-{tag(spec)}-{name}.png"
            save_activation_grid(acts[name], path, image_index=i, max_channels=opts.max_channels,
                                 title=f"{name} on {spec}: {tuple(acts[name].shape[1:])}")
            files.append(str(path))
    return {"layers": names, "files": files}


def _filters_command(run, opts, out):
    names = _layers(run, opts, [last_feature_map(run.model, run.blank())])
    files, gains = [], {}
    size = opts.size or run.size
    for name in names:
        channels = min(opts.channels, _channel_count(run, name))
        patterns = filter_patterns(run.model, name, channels, size=size, steps=opts.steps,
                                   lr=opts.lr, seed=opts.seed, in_channels=run.channels)
        path = out / f"filters-{name}.png"
        save_pattern_grid(patterns, path, title=f"{run.args.model} {name}: inputs maximising "
                                                f"each channel's mean ({opts.steps} steps)")
        files.append(str(path))
        gains[name] = {"mean_value": patterns.values.mean().item(),
                       "mean_start_value": patterns.start_values.mean().item()}
    return {"layers": names, "files": files, "activation": gains}


def _channel_count(run, name):
    for layer, _, shape in map_layers(run.model, run.blank()):
        if layer == name:
            if len(shape) != 4:
                raise UsageError(f"--layer {name}: its output {shape} is not a feature map")
            return shape[1]
    raise UsageError(f"--layer {name}: it does not run in the forward")


def _target(run, target):
    if target is None:
        return None
    names = list(run.class_names)
    if target in names:
        return names.index(target)
    try:
        index = int(target)
    except ValueError:
        index = -1
    if not 0 <= index < len(names):
        raise UsageError(f"--target {target}: expected a class name ({', '.join(names)}) or "
                         f"an index below {len(names)}")
    return index


def _gradcam_command(run, opts, out):
    default = last_feature_map(run.model, run.blank())
    names = _layers(run, opts, [default])
    specs = opts.image or ["test:0"]
    x, pixels = run.images(specs)
    target = _target(run, opts.target)
    with torch.no_grad():
        probs = class_scores(run.model(x)).softmax(1)
    top = probs.argmax(1)
    explained = top if target is None else torch.full_like(top, target)
    classes = run.class_names
    labels = [f"{tag(s)}: {classes[int(t)]} {p[int(t)]:.2f}" for s, t, p in zip(specs, top, probs)]
    files = []
    for name in names:
        cams = grad_cam(run.model, x, name, explained)
        path = out / f"gradcam-{name}.png"
        what = "top class" if target is None else f"class {classes[target]}"
        save_gradcam_overlay(pixels, cams, path, labels=labels,
                             title=f"{run.args.model} {name}, {what}")
        files.append(str(path))
    predictions = [{"image": s, "top": classes[int(t)], "probability": round(p[int(t)].item(), 4),
                    "explained": classes[int(e)]} for s, t, p, e in zip(specs, top, probs, explained)]
    return {"layers": names, "files": files, "predictions": predictions}


def _localise_command(run, opts, out):
    test = run.test_set
    if test.masks is None:
        raise UsageError(f"localise needs a test set with object masks (--dataset shapes_cls); "
                         f"this run's is {run.args.dataset}")
    n = len(test) if opts.test_size is None else min(opts.test_size, len(test))
    x, y = test.batch(torch.arange(n))
    results = []
    for name in _layers(run, opts, [last_feature_map(run.model, run.blank())]):
        r = localisation_rate(run.model, x, test.masks[:n], name,
                              targets=None if opts.predicted else y)
        print(f"{name}: Grad-CAM peak on the object in {r['hits']} of {r['images']} test images "
              f"({r['rate']:.3f}; chance {r['chance']:.3f})")
        results.append(r)
    return {"localisation": results, "explained": "predicted" if opts.predicted else "true"}


COMMAND_FUNCTIONS = {"layers": _layers_command, "activations": _activations_command,
                     "filters": _filters_command, "gradcam": _gradcam_command,
                     "localise": _localise_command}


def main(argv=None):
    """The command: returns the summary dict (also printed as JSON, last line). Bad options
    exit with status 2 and an 'error:' line, like argparse."""
    parser = make_parser()
    opts = parser.parse_args(argv)
    try:
        for key in ("max_channels", "channels", "size", "steps", "threads", "test_size"):
            value = getattr(opts, key)
            if value is not None and value < 1:
                raise UsageError(f"--{key.replace('_', '-')} must be at least 1, got {value}")
        if opts.threads:
            torch.set_num_threads(opts.threads)
        run = Run(opts.checkpoint)
        out = pathlib.Path(opts.out) if opts.out else run.path.parent / "explain"
        summary = {"command": opts.command, "checkpoint": str(run.path), "model": run.args.model,
                   "dataset": run.args.dataset}
        summary.update(COMMAND_FUNCTIONS[opts.command](run, opts, out))
    except UsageError as e:
        parser.error(str(e))
    print(json.dumps(summary), flush=True)
    return summary
