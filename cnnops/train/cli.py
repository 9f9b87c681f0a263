"""python -m cnnops.train: train a cnnops.models model on the digits or a shapes data set.

    python -m cnnops.train --model resnet18 --dataset digits --out runs/r18
    python -m cnnops.train --model segmentation_fcn --dataset shapes
    python -m cnnops.train --model mini_xception --dataset shapes_cls  # which shape
    python -m cnnops.train --out runs/r18 --resume                   # continue a run
    python -m cnnops.train --model resnet18 --dataset digits --weights other.pt \\
        --freeze-base --epochs 3 --finetune-epochs 5                 # transfer learning
    torchrun --nproc_per_node=2 -m cnnops.train ...                  # DistributedDataParallel

After every epoch the out directory gets checkpoint.pt (everything --resume needs),
metrics.json (summary and per-epoch history) and curves.png. The last line printed is a
JSON summary.

This module is the driver: main parses (the options and their defaults and checks are in
options), run builds the data and the model, resumes from a checkpoint, and runs the
phases' epochs (one epoch's passes and metrics are in loop), saving after each.
load_trained gives back a trained model and its data from a checkpoint (cnnops.explain).
"""
import argparse
import json
import pathlib
import sys
import time

import torch

from . import checkpoint, data, distributed, loop, modeling
from .options import PROG, UsageError, make_parser, resolve
from .plot import plot_history

__all__ = ["main", "run", "load_trained", "load_data", "make_parser", "resolve", "UsageError"]


def say(*parts, **kwargs):
    """print on rank 0 only."""
    if distributed.is_main():
        print(*parts, flush=True, **kwargs)


def warn(message):
    if distributed.is_main():
        print(f"{PROG}: warning: {message}", file=sys.stderr, flush=True)


def load_data(args):
    try:
        if args.dataset == "digits":
            return data.digits(args.image_size, args.in_channels, seed=args.data_seed,
                               train_size=args.train_size, test_size=args.test_size,
                               max_shift=0 if args.no_augment else None)
        if args.dataset == "shapes_cls":
            return data.shapes_cls(args.image_size, seed=args.data_seed,
                                   train_size=args.train_size, test_size=args.test_size,
                                   flips=not args.no_augment)
        return data.shapes(args.image_size, seed=args.data_seed, train_size=args.train_size,
                           test_size=args.test_size, flips=not args.no_augment)
    except ValueError as e:  # a size the split cannot give
        raise UsageError(str(e)) from None


def build_model(args, num_classes, ckpt):
    """The model, seeded; from --weights unless resuming (the checkpoint has them)."""
    torch.manual_seed(args.seed)
    if args.weights is not None and ckpt is None:
        try:
            model, report = modeling.build_from_weights(args.model, num_classes,
                                                        args.in_channels, args.image_size,
                                                        args.weights)
        except ValueError as e:  # nothing matches, or not a state_dict
            raise UsageError(f"--weights {args.weights}: {e}") from None
        note = f"; new head for {num_classes} classes (the weights had " \
               f"{report['head_replaced']})" if report["head_replaced"] is not None else ""
        say(f"weights: loaded {report['loaded']} of {report['total']} tensors from "
            f"{args.weights}{note}")
        for name, reason in list(report["skipped"].items())[:8]:
            say(f"  not loaded: {name} ({reason})")
        if len(report["skipped"]) > 8:
            say(f"  ... and {len(report['skipped']) - 8} more not loaded")
    else:
        model = modeling.build(args.model, num_classes, args.in_channels, args.image_size)
    if args.dropout is not None:
        modeling.set_dropout(model, args.dropout)
    if args.bn_momentum:
        modeling.set_bn_momentum(model, args.bn_momentum)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
    return model


def load_trained(path):
    """A model trained by this command, from its checkpoint (a file, or the run's directory):
    (model on the CPU in eval mode, the run's options as an argparse.Namespace, the
    checkpoint dict). load_data(args) gives the run's data sets (images, class names, and
    TensorData.to_input: how raw pixels become this model's input)."""
    path = checkpoint.resolve(path)
    if not path.is_file():
        raise ValueError(f"no checkpoint at {path}")
    try:
        ckpt = checkpoint.load(path)
    except Exception as e:  # not a torch file, or pickled objects beyond tensors and dicts
        raise ValueError(f"torch.load(weights_only=True) cannot read {path}: {e}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != checkpoint.FORMAT or \
            "args" not in ckpt or "model_name" not in ckpt:
        raise ValueError(f"{path} is not a checkpoint of {PROG}")
    args = argparse.Namespace(**ckpt["args"])
    with torch.random.fork_rng(devices=[]):  # build_model seeds the global generator
        model = build_model(args, ckpt["num_classes"], ckpt)
    return model.eval(), args, ckpt


def phases(args):
    """[(name, first epoch, end epoch, peak lr, frozen base)] of the run."""
    out = [("train", 0, args.epochs, args.lr, bool(args.freeze_base))]
    if args.finetune_epochs:
        out.append(("finetune", args.epochs, args.epochs + args.finetune_epochs,
                    args.finetune_lr, False))
    return out


def run(args, ckpt=None):
    """Trains as `args` (resolved) say; returns the summary dict (also printed and written
    to OUT/metrics.json by rank 0)."""
    started = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = distributed.setup(args.device)
    world = distributed.world_size()
    train_set, test_set = load_data(args)
    model = build_model(args, train_set.num_classes, ckpt).to(device)
    out = pathlib.Path(args.out)
    history = list(ckpt["history"]) if ckpt else []
    start = int(ckpt["epoch"]) if ckpt else 0
    total = args.epochs + args.finetune_epochs
    if ckpt is not None:
        if ckpt.get("world_size", 1) != world:
            warn(f"the checkpoint was written by {ckpt.get('world_size', 1)} process(es), this "
                 f"run has {world}: batches differ from an uninterrupted run")
        say(f"resuming {out / checkpoint.FILENAME} at epoch {start + 1} of {total}"
            if start < total else f"{out / checkpoint.FILENAME} has all {total} epochs")
    elif (out / checkpoint.FILENAME).exists():
        warn(f"{out / checkpoint.FILENAME} exists and will be overwritten (--resume continues it)")
    if args.freeze_base and args.weights is None:
        warn("--freeze-base without --weights trains the head on a randomly initialised base")

    per_process = len(train_set) // world
    steps = per_process // args.batch_size
    if steps == 0:
        raise UsageError(f"--batch-size {args.batch_size} is larger than the {per_process} "
                         f"training samples per process")
    if args.max_steps is not None:
        steps = min(steps, args.max_steps)
    test_indices = distributed.shard(torch.arange(len(test_set)))
    progress = not args.no_progress and distributed.is_main()
    say(f"{args.model} on {args.dataset}: {len(train_set)} train / {len(test_set)} test images "
        f"{args.in_channels}x{args.image_size}x{args.image_size}, {train_set.num_classes} "
        f"classes; {total} epochs of {steps} steps, batch {args.batch_size}"
        f"{f' x {world} processes' if world > 1 else ''}, {args.optimizer} lr {args.lr}, "
        f"{device}, {torch.get_num_threads()} threads")

    if ckpt is not None:  # the random state after the saved epoch, this rank's
        checkpoint.set_rng_state(ckpt["rng"][min(distributed.rank(), len(ckpt["rng"]) - 1)])
    for phase, first, end, lr, frozen in phases(args):
        if end <= start:
            continue
        modeling.freeze_base(model, frozen)
        net = distributed.wrap(model, device)
        opt = modeling.optimizer(model, args.optimizer, lr, args.weight_decay)
        warmup = round(args.warmup_epochs * steps)
        sched = modeling.scheduler(opt, min(warmup, (end - first) * steps // 2),
                                   (end - first) * steps)
        if ckpt is not None and ckpt.get("phase") == phase and start > first:
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
        for epoch in range(max(first, start), end):
            t0 = time.perf_counter()
            modeling.train_mode(model, frozen)
            indices = distributed.train_indices(len(train_set), args.seed, epoch)
            aug = None if args.no_augment else train_set.augmentation(args.seed, epoch)
            lr_now = opt.param_groups[0]["lr"]
            desc = f"epoch {epoch + 1}/{total}"
            tr = loop.train_epoch(net, train_set, indices, args.batch_size, opt, sched, device,
                                  augmentation=aug, max_steps=steps,
                                  label_smoothing=args.label_smoothing, progress=progress,
                                  desc=desc)
            te = loop.evaluate(model, test_set, test_indices, 2 * args.batch_size, device,
                               progress=progress, desc=f"{desc} test")
            record = {"epoch": epoch + 1, "phase": phase, "lr": lr_now,
                      "seconds": time.perf_counter() - t0, **loop.epoch_metrics(tr, te)}
            history.append(record)
            say(loop.epoch_line(record, total))
            rng = distributed.all_gather_object(checkpoint.rng_state())
            if distributed.is_main():
                checkpoint.save(out / checkpoint.FILENAME, {
                    "format": checkpoint.FORMAT, "model": model.state_dict(),
                    "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "epoch": epoch + 1, "phase": phase, "history": history, "args": vars(args),
                    "rng": rng, "num_classes": train_set.num_classes, "model_name": args.model,
                    "world_size": world})
                _write_metrics(out, args, history, None)
                plot_history(history, out / "curves.png",
                             f"{args.model} on {args.dataset}")
            distributed.barrier()

    summary = _summary(args, history, time.perf_counter() - started, world, device, test_set)
    if distributed.is_main():
        _write_metrics(out, args, history, summary)
    metric = "mean IoU" if "test_miou" in summary else "accuracy"
    value = summary.get("test_miou", summary.get("test_acc"))
    say(f"final test {metric} {value:.4f} after {summary['epochs']} epochs in "
        f"{summary['seconds']:.1f} s ({out})")
    say(json.dumps(summary))
    return summary


def _summary(args, history, seconds, world, device, test_set):
    last = history[-1] if history else {}
    summary = {"model": args.model, "dataset": args.dataset, "epochs": len(history),
               "test_samples": len(test_set)}
    for key in ("test_acc", "test_miou", "test_loss", "train_acc", "train_miou", "train_loss"):
        if key in last:
            summary[key] = round(last[key], 6)
    summary.update(seconds=round(seconds, 2),
                   train_seconds=round(sum(h["seconds"] for h in history), 2),
                   processes=world, device=str(device), threads=torch.get_num_threads(),
                   out=str(args.out))
    return summary


def _write_metrics(out, args, history, summary):
    checkpoint.write_text_atomic(out / "metrics.json", json.dumps(
        {"summary": summary, "args": vars(args), "history": history}, indent=1) + "\n")


def main(argv=None):
    """The command: parses argv (sys.argv[1:] by default), trains, returns the summary.
    Bad options exit with status 2 and an 'error:' line, like argparse."""
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        args, ckpt = resolve(args)
        summary = run(args, ckpt)
    except UsageError as e:
        distributed.cleanup(wait_for_peers=False)
        parser.error(str(e))
    except BaseException:
        distributed.cleanup(wait_for_peers=False)
        raise
    distributed.cleanup()
    return summary
