"""Training cnnops.models models: the command `python -m cnnops.train` and its parts: the
driver (cli: main, run), its options and their defaults (options), data sets (data),
train/eval passes, metrics and epoch records (loop), checkpoints and transfer learning
(checkpoint, modeling), curves (plot), DistributedDataParallel (distributed)."""
from .cli import main, run
from .loop import confusion_matrix, iou_per_class, mean_iou

__all__ = ["main", "run", "confusion_matrix", "iou_per_class", "mean_iou"]
