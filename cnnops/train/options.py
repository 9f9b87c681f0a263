"""The options of python -m cnnops.train: the parser, the defaults (per data set and
optimizer), and resolve, which fills them in (from the checkpoint when resuming) and
checks the combination. Problems raise UsageError, which the command reports like argparse.
"""
import argparse
import pathlib

import torch

from . import checkpoint, modeling

PROG = "python -m cnnops.train"

# Defaults that depend on the data set (see --help), chosen on a 2-core CPU: with them
# resnet18 and mini_xception reach 99% test accuracy on the digits, segmentation_fcn a
# mean IoU of 0.86 on the shapes, mini_xception 99% on shapes_cls (3 minutes, 1 thread).
DATASET_DEFAULTS = {
    "digits": dict(model="resnet18", image_size=16, epochs=8, batch_size=32, lr=None,
                   train_size=None, test_size=None),
    "shapes": dict(model="segmentation_fcn", image_size=64, epochs=6, batch_size=16, lr=None,
                   train_size=1000, test_size=200),
    "shapes_cls": dict(model="mini_xception", image_size=32, epochs=10, batch_size=32,
                       lr=None, train_size=2000, test_size=400),
}
# Data sets of generated RGB shapes (3 input channels).
SHAPE_DATASETS = ("shapes", "shapes_cls")
LR_DEFAULTS = {"sgd": 0.05, "adamw": 2e-3}
WEIGHT_DECAY_DEFAULTS = {"sgd": 5e-4, "adamw": 0.05}
DEFAULTS = dict(optimizer="adamw", warmup_epochs=1.0, label_smoothing=0.0,
                seed=0, data_seed=0, finetune_epochs=0, freeze_base=False, no_augment=False,
                weights=None, max_steps=None, in_channels=None, dropout=None,
                bn_momentum=0.1, finetune_lr=None)
# Options that change the results: a resumed run takes them from the checkpoint, and
# giving a different value is an error. --epochs and --finetune-epochs may be changed
# (to extend a run); the rest (--threads, --device, --out, --no-progress) are free.
RESULT_OPTIONS = ("model", "dataset", "image_size", "in_channels", "batch_size", "lr",
                  "optimizer", "weight_decay", "warmup_epochs", "label_smoothing", "seed",
                  "data_seed", "train_size", "test_size", "max_steps", "weights",
                  "freeze_base", "finetune_lr", "no_augment", "dropout", "bn_momentum")
EXTENDABLE = ("epochs", "finetune_epochs")


class UsageError(Exception):
    """A bad command line or a combination of options that cannot work."""


def _defaults_text():
    per_set = "; ".join(f"{name}: " + " ".join(f"--{k.replace('_', '-')} {v}"
                                               for k, v in d.items() if v is not None)
                        for name, d in DATASET_DEFAULTS.items())
    return (f"Defaults per data set: {per_set}. --lr: "
            + ", ".join(f"{v} for {k}" for k, v in LR_DEFAULTS.items())
            + ".\nUnder torchrun every process joins a DistributedDataParallel run (gloo on "
              "cpu, nccl on cuda); --batch-size is per process.")


def make_parser():
    p = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a cnnops.models model: classification on scikit-learn's digits "
                    "or of generated shapes (one per image), or segmentation of generated "
                    "shapes.",
        epilog=_defaults_text())
    g = p.add_argument_group("what to train")
    g.add_argument("--model", default=None, metavar="NAME",
                   help="a cnnops.models name (default: resnet18 for digits, "
                        "segmentation_fcn for shapes, mini_xception for shapes_cls)")
    g.add_argument("--dataset", choices=("digits", "shapes", "shapes_cls"), default=None,
                   help="digits; shapes (segmentation); shapes_cls (classification: which shape "
                        "is in the image). Default: shapes for a segmentation model, else digits")
    g.add_argument("--image-size", type=int, default=None, metavar="PX",
                   help="images are PX x PX (digits are resized bilinearly)")
    g.add_argument("--in-channels", type=int, default=None, metavar="C",
                   help="input channels of the model (default: the model's own; grey digits "
                        "are replicated to C channels)")
    g.add_argument("--train-size", type=int, default=None, metavar="N",
                   help="shapes(_cls): images generated for training; digits: a stratified subset "
                        "of the training split (default all 1437)")
    g.add_argument("--test-size", type=int, default=None, metavar="N",
                   help="the same for the test set (digits: default all 360)")
    g.add_argument("--data-seed", type=int, default=None,
                   help="seed of the digits split and of the shapes generation (default 0)")
    g.add_argument("--dropout", type=float, default=None, metavar="P",
                   help="set every dropout layer's probability to P (default: the model's)")
    g.add_argument("--bn-momentum", type=float, default=None, metavar="M",
                   help="set every BatchNorm's momentum (torch's sense: the weight of the new "
                        "batch) to M; default 0.1, torch's. Keras-style models (xception, "
                        "mini_xception) are built with 0.01, whose test-time statistics take "
                        "thousands of steps to settle; 0 keeps the model's own")

    g = p.add_argument_group("how to train")
    g.add_argument("--epochs", type=int, default=None,
                   help="epochs (of the frozen phase with --freeze-base)")
    g.add_argument("--batch-size", type=int, default=None, metavar="B")
    g.add_argument("--lr", type=float, default=None,
                   help="peak learning rate: linear warm-up, then a cosine to 0, per step")
    g.add_argument("--optimizer", choices=("sgd", "adamw"), default=None,
                   help="adamw (default) or sgd (Nesterov momentum 0.9)")
    g.add_argument("--weight-decay", type=float, default=None,
                   help="on weights, not on biases/BatchNorm (default 0.05 for adamw, "
                        "5e-4 for sgd)")
    g.add_argument("--warmup-epochs", type=float, default=None, help="default 1")
    g.add_argument("--label-smoothing", type=float, default=None, help="default 0")
    g.add_argument("--no-augment", action="store_true", default=None,
                   help="no training augmentation (digits: random shifts of up to "
                        "image-size/16 px; shapes: random flips)")
    g.add_argument("--seed", type=int, default=None,
                   help="initialisation, shuffling and augmentation (default 0)")
    g.add_argument("--max-steps", type=int, default=None, metavar="N",
                   help="at most N training batches per epoch (smoke tests)")

    g = p.add_argument_group("transfer learning")
    g.add_argument("--weights", default=None, metavar="PATH",
                   help="start from a checkpoint or state_dict: every tensor whose name and "
                        "shape match is loaded; the head is replaced when the class count "
                        "differs")
    g.add_argument("--freeze-base", action="store_true", default=None,
                   help="train only the head for --epochs (BatchNorm statistics frozen too)")
    g.add_argument("--finetune-epochs", type=int, default=None, metavar="N",
                   help="then train everything for N more epochs at --finetune-lr")
    g.add_argument("--finetune-lr", type=float, default=None,
                   help="peak learning rate of the fine-tuning phase (default --lr / 10)")

    g = p.add_argument_group("running")
    g.add_argument("--out", default=None, metavar="DIR",
                   help="checkpoint.pt, metrics.json and curves.png (default runs/MODEL-DATASET)")
    g.add_argument("--resume", nargs="?", const="", default=None, metavar="PATH",
                   help="continue from the checkpoint in --out (or at PATH, a file or "
                        "directory), at the epoch after the last one saved")
    g.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    g.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch.set_num_threads(N) (default: torch's)")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def resolve(args):
    """Fills the defaults (from the checkpoint when resuming) and checks the combination.
    Returns (args, resume checkpoint or None). Raises UsageError."""
    ckpt = None
    if args.resume is not None:
        ckpt = _load_resume(args)
        saved = ckpt["args"]
        for key in RESULT_OPTIONS:
            given = getattr(args, key)
            if given is not None and given != saved.get(key):
                raise UsageError(f"--{key.replace('_', '-')} {given} differs from the "
                                 f"checkpoint's {saved.get(key)}; resume with the options of the "
                                 f"run (or leave them out)")
            setattr(args, key, saved.get(key))
        for key in EXTENDABLE:
            if getattr(args, key) is None:
                setattr(args, key, saved.get(key))
    _fill_defaults(args)
    _check(args, resuming=ckpt is not None)
    return args, ckpt


def _load_resume(args):
    if args.resume:
        path = checkpoint.resolve(args.resume)
        if args.out is None:
            args.out = str(path.parent)
    else:
        model = args.model or DATASET_DEFAULTS[args.dataset or "digits"]["model"]
        path = checkpoint.resolve(args.out or _default_out(model, args.dataset))
    if not path.is_file():
        raise UsageError(f"--resume: no checkpoint at {path}")
    ckpt = checkpoint.load(path)
    if ckpt.get("format") != checkpoint.FORMAT or "args" not in ckpt:
        raise UsageError(f"--resume: {path} is not a checkpoint of this command")
    return ckpt


def _default_dataset(model):
    return "shapes" if model in modeling.SEGMENTATION_MODELS else "digits"


def _default_out(model, dataset):
    if dataset is None:
        dataset = _default_dataset(model)
    return str(pathlib.Path("runs") / f"{model}-{dataset}")


def _fill_defaults(args):
    names = modeling.model_names()
    if args.model is not None and args.model not in names:
        raise UsageError(f"--model: unknown model {args.model!r}; expected one of "
                         f"{', '.join(names)}")
    if args.dataset is None:
        args.dataset = _default_dataset(args.model)
    for key, value in DATASET_DEFAULTS[args.dataset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for key, value in DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.lr is None:
        args.lr = LR_DEFAULTS[args.optimizer]
    if args.weight_decay is None:
        args.weight_decay = WEIGHT_DECAY_DEFAULTS[args.optimizer]
    if args.finetune_lr is None and args.finetune_epochs:
        args.finetune_lr = args.lr / 10
    if args.in_channels is None:
        args.in_channels = 3 if args.dataset in SHAPE_DATASETS else \
            modeling.default_in_channels(args.model)
    if args.out is None:
        args.out = _default_out(args.model, args.dataset)


def _check(args, resuming=False):
    task = modeling.task_of(args.model)
    wanted = "segmentation" if args.dataset == "shapes" else "classification"
    if task != wanted:
        raise UsageError(f"--model {args.model} is a {task} model but --dataset {args.dataset} "
                         f"is a {wanted} task" + (" (use --dataset shapes)"
                                                  if task == "segmentation" else ""))
    positive = dict(epochs=args.epochs, batch_size=args.batch_size, image_size=args.image_size,
                    in_channels=args.in_channels, threads=args.threads,
                    max_steps=args.max_steps, train_size=args.train_size,
                    test_size=args.test_size)
    for key, value in positive.items():
        if value is not None and value < 1:
            raise UsageError(f"--{key.replace('_', '-')} must be at least 1, got {value}")
    for key in ("lr", "finetune_lr"):
        value = getattr(args, key)
        if value is not None and not value > 0:
            raise UsageError(f"--{key.replace('_', '-')} must be positive, got {value}")
    for key in ("weight_decay", "warmup_epochs", "label_smoothing"):
        if getattr(args, key) < 0:
            raise UsageError(f"--{key.replace('_', '-')} must be >= 0, got {getattr(args, key)}")
    if args.finetune_epochs < 0:
        raise UsageError(f"--finetune-epochs must be >= 0, got {args.finetune_epochs}")
    if args.finetune_lr is not None and not args.finetune_epochs:
        raise UsageError("--finetune-lr needs --finetune-epochs N (the fine-tuning phase)")
    if args.dropout is not None and not 0 <= args.dropout < 1:
        raise UsageError(f"--dropout must be in [0, 1), got {args.dropout}")
    if not 0 <= args.bn_momentum <= 1:
        raise UsageError(f"--bn-momentum must be in [0, 1], got {args.bn_momentum}")
    if args.dataset in SHAPE_DATASETS and args.in_channels != 3:
        raise UsageError(f"--in-channels must be 3 for the RGB shapes, got {args.in_channels}")
    if args.dataset == "shapes":
        if args.image_size % 8:
            raise UsageError(f"--image-size must be a multiple of 8 for {args.model} "
                             f"(it downsamples 8x), got {args.image_size}")
    elif args.dataset == "shapes_cls":
        if args.image_size < 16:
            raise UsageError(f"--image-size must be at least 16 for shapes_cls (smaller shapes "
                             f"would be a few pixels across), got {args.image_size}")
    elif args.image_size < 8:
        raise UsageError(f"--image-size must be at least 8 (the digits are 8x8), "
                         f"got {args.image_size}")
    if args.weights is not None and not resuming and not pathlib.Path(args.weights).is_file():
        raise UsageError(f"--weights: no file {args.weights}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device cuda: torch {torch.__version__} sees no CUDA device")
