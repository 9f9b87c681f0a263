"""The model side of `python -m cnnops.infer`: optimising a model for inference, its class
probabilities for a batch of images, the top-k classes, and the median time of one
image's forward pass, the optimised and the unoptimised model taking turns."""
import statistics
import time

import torch

import cnnops

from ..explain.gradcam import class_scores


def optimize(model, example):
    """(cnnops.optimize_for_inference(model, example_inputs=(example,)), seconds taken);
    RuntimeError when this cnnops has no optimize_for_inference."""
    optimize_for_inference = getattr(cnnops, "optimize_for_inference", None)
    if optimize_for_inference is None:
        raise RuntimeError("this cnnops has no optimize_for_inference (cnnops/inference has "
                           "not landed); run with --no-optimize")
    start = time.perf_counter()
    optimized = optimize_for_inference(model, example_inputs=(example,))
    return optimized, time.perf_counter() - start


def probabilities(model, x):
    """Softmax of the model's class scores for the batch x: (N, classes)."""
    with torch.inference_mode():
        return class_scores(model(x)).float().softmax(1)


def top_k(probs, k, class_names):
    """[(class name, probability)] of the k most probable classes of one image, best first."""
    values, indices = probs.topk(min(k, probs.numel()))
    return [(class_names[int(i)], float(v)) for v, i in zip(values, indices)]


def median_times_ms(models, x, repeats):
    """{name: median ms of one forward pass of x} for each of models ({name: model}): one
    untimed call each, then `repeats` timed rounds in which the models take turns."""
    times = {name: [] for name in models}
    with torch.inference_mode():
        for model in models.values():
            model(x)
        for _ in range(repeats):
            for name, model in models.items():
                start = time.perf_counter()
                model(x)
                times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}
