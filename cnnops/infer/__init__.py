"""Classifying images with a model trained by `python -m cnnops.train`, optimised by
cnnops.optimize_for_inference: the command `python -m cnnops.infer`.

    predict   the model side: optimising, class probabilities, top-k, per-image timing
    cli       the command: checkpoint and images (through cnnops.explain's loaders), output
"""
from .cli import main

__all__ = ["main"]
