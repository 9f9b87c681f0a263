"""One pass over a data set, training or evaluating, its metrics, and an epoch's record.

Classification reports loss and accuracy; segmentation reports loss, pixel accuracy and
the mean over classes of the intersection over union, from a confusion matrix summed over
the whole set (and over processes). Sums, not means, are all-reduced, so the metrics of a
distributed pass are those of the combined data.
"""
import math
import sys

import torch
import torch.nn.functional as F

from . import distributed

try:
    from tqdm import tqdm
except ImportError:  # pragma: no cover - tqdm is a dependency of the command
    tqdm = None


def confusion_matrix(pred, target, num_classes):
    """(num_classes, num_classes) int64 counts: row = true class, column = predicted."""
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    counts = torch.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def iou_per_class(confusion):
    """IoU of each class: TP / (TP + FP + FN); NaN for a class absent from both the targets
    and the predictions (its IoU is undefined, and mean_iou leaves it out)."""
    confusion = confusion.double()
    tp = confusion.diagonal()
    union = confusion.sum(0) + confusion.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, math.nan))


def mean_iou(confusion):
    """Mean IoU over the classes present in the targets or the predictions."""
    iou = iou_per_class(confusion)
    present = ~iou.isnan()
    return iou[present].mean().item() if present.any() else math.nan


class Meter:
    """Running sums of a pass: loss * samples, correct predictions (samples or pixels),
    predictions counted, samples, and for segmentation the confusion matrix."""

    def __init__(self, task, num_classes):
        self.task, self.num_classes = task, num_classes
        self.sums = torch.zeros(4, dtype=torch.float64)  # loss*samples, correct, counted, samples
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64) \
            if task == "segmentation" else None

    def update(self, loss, logits, target):
        pred = logits.argmax(1)
        n = target.shape[0]
        self.sums += torch.tensor([loss * n, (pred == target).sum().item(), target.numel(), n],
                                  dtype=torch.float64)
        if self.confusion is not None:
            self.confusion += confusion_matrix(pred, target, self.num_classes).cpu()

    def all_reduce(self):
        """Sums over the processes (no-op on one)."""
        self.sums = distributed.all_reduce_sum(self.sums)
        if self.confusion is not None:
            self.confusion = distributed.all_reduce_sum(self.confusion)
        return self

    def running(self):
        loss_sum, correct, counted, samples = self.sums.tolist()
        return loss_sum / max(samples, 1), correct / max(counted, 1)

    def result(self):
        loss, acc = self.running()
        out = {"loss": loss, "acc": acc, "samples": int(self.sums[3].item())}
        if self.confusion is not None:
            out["miou"] = mean_iou(self.confusion)
            out["iou"] = [None if math.isnan(v) else v
                          for v in iou_per_class(self.confusion).tolist()]
        return out


def batches(indices, batch_size, drop_last):
    """Consecutive slices of `indices` of batch_size (the last one shorter unless drop_last)."""
    stop = len(indices) - len(indices) % batch_size if drop_last else len(indices)
    return [indices[i:i + batch_size] for i in range(0, stop, batch_size)]


def progress_bar(total, desc, enabled):
    if not enabled or tqdm is None:
        return None
    return tqdm(total=total, desc=desc, file=sys.stderr, dynamic_ncols=True, leave=False)


def train_epoch(model, data, indices, batch_size, optimizer, scheduler, device, *,
                augmentation=None, max_steps=None, label_smoothing=0.0, progress=False,
                desc="train", dtype=torch.float32):
    """One epoch of training on the samples `indices` (this process's share) in that order,
    in full batches (images as `dtype`); the scheduler steps per batch. Returns the
    all-reduced metrics."""
    steps = batches(indices, batch_size, drop_last=True)
    if max_steps is not None:
        steps = steps[:max_steps]
    meter = Meter(data.task, data.num_classes)
    bar = progress_bar(len(steps), desc, progress)
    for idx in steps:
        x, y = data.batch(idx, augmentation)
        x, y = x.to(device, dtype, non_blocking=True), y.to(device, non_blocking=True)
        logits = model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        meter.update(loss.item(), logits.detach(), y)
        if bar is not None:
            loss_avg, acc = meter.running()
            bar.set_postfix(loss=f"{loss_avg:.4f}", acc=f"{acc:.4f}", refresh=False)
            bar.update(1)
    if bar is not None:
        bar.close()
    return meter.all_reduce().result()


@torch.no_grad()
def evaluate(model, data, indices, batch_size, device, *, progress=False, desc="test",
             dtype=torch.float32):
    """Loss and metrics of `model` (in eval mode) on the samples `indices` (this process's
    share), all-reduced over the processes."""
    was_training = model.training
    model.eval()
    meter = Meter(data.task, data.num_classes)
    steps = batches(indices, batch_size, drop_last=False)
    bar = progress_bar(len(steps), desc, progress)
    for idx in steps:
        x, y = data.batch(idx)
        x, y = x.to(device, dtype, non_blocking=True), y.to(device, non_blocking=True)
        logits = model(x)
        meter.update(F.cross_entropy(logits, y).item(), logits, y)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    model.train(was_training)
    return meter.all_reduce().result()


def epoch_metrics(train, test):
    """The history fields of one epoch from train_epoch's and evaluate's results:
    train_/test_ loss, acc and (segmentation) miou, then test_iou (per class)."""
    record = {}
    for split, m in (("train", train), ("test", test)):
        for key in ("loss", "acc", "miou"):
            if key in m:
                record[f"{split}_{key}"] = m[key]
    if "iou" in test:
        record["test_iou"] = test["iou"]
    return record


def epoch_line(r, total):
    """The line printed after an epoch, from its history record."""
    def split(name):
        s = f"{name} loss {r[f'{name}_loss']:.4f} acc {r[f'{name}_acc']:.4f}"
        return s + (f" mIoU {r[f'{name}_miou']:.4f}" if f"{name}_miou" in r else "")
    tag = " [finetune]" if r["phase"] == "finetune" else ""
    return (f"epoch {r['epoch']}/{total}{tag} lr {r['lr']:.3g} | {split('train')} | "
            f"{split('test')} | {r['seconds']:.1f} s")
