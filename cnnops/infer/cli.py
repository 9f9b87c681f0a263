"""python -m cnnops.infer: classify images with a model trained by `python -m cnnops.train`,
optimised by cnnops.optimize_for_inference, and time it against the unoptimised model.

    python -m cnnops.infer --checkpoint runs/R --image test:0 sklearn:china.jpg photo.png
    python -m cnnops.infer --checkpoint runs/R --test-set 20 --top-k 3
    python -m cnnops.infer --checkpoint runs/R --test-set 20 --no-optimize

Images, as for python -m cnnops.explain (--image, one or more): an image file,
sklearn:china.jpg / sklearn:flower.jpg (scikit-learn's sample photographs), or test:N,
image N of the run's test set; --test-set K adds the first K test images (default, with
neither: test:0). Per image: the top-k classes and their probabilities, the true class
when known (test images), and the time of one image's forward pass of the optimised and
the unoptimised model (median of --repeats timed runs, the two taking turns). Then the
accuracy over the labelled images, whether the two models agree, and a JSON summary as
the last line.
"""
import argparse
import json
import statistics

import torch

from ..explain.cli import Run, UsageError
from ..train import modeling
from . import predict

PROG = "python -m cnnops.infer"
OPTIMIZED, UNOPTIMIZED = "optimized", "unoptimized"   # the summary's keys
SAID = {OPTIMIZED: "optimised", UNOPTIMIZED: "unoptimised"}  # and in the printed lines


def make_parser():
    p = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Classify images with a model trained by python -m cnnops.train, "
                    "optimised by cnnops.optimize_for_inference, timed against the "
                    "unoptimised model.",
        epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--checkpoint", required=True, metavar="PATH",
                   help="checkpoint.pt of python -m cnnops.train, or its run directory")
    p.add_argument("--image", nargs="+", default=None, metavar="SPEC",
                   help="file, sklearn:china.jpg, sklearn:flower.jpg or test:N")
    p.add_argument("--test-set", type=int, default=None, metavar="K",
                   help="also the first K images of the run's test set")
    p.add_argument("--top-k", type=int, default=3, metavar="K",
                   help="classes printed per image (default 3)")
    p.add_argument("--repeats", type=int, default=5, metavar="N",
                   help="timed forward passes per image and model (default 5; the median "
                        "is printed)")
    p.add_argument("--no-optimize", action="store_true",
                   help="the unoptimised model only (no cnnops.optimize_for_inference)")
    p.add_argument("--report", action="store_true",
                   help="print the optimised model's inference_report (what was fused)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch.set_num_threads(N)")
    return p


def check_options(opts):
    """UsageError for counts below 1."""
    for key in ("test_set", "top_k", "repeats", "threads"):
        value = getattr(opts, key)
        if value is not None and value < 1:
            raise UsageError(f"--{key.replace('_', '-')} must be at least 1, got {value}")


def image_specs(opts, run):
    """The --image specs, then test:0 .. test:K-1 for --test-set K (default: test:0)."""
    specs = list(opts.image or [])
    if opts.test_set:
        size = len(run.test_set)
        if opts.test_set > size:
            raise UsageError(f"--test-set {opts.test_set}: the test set has {size} images")
        specs += [f"test:{i}" for i in range(opts.test_set)]
    return specs or ["test:0"]


def true_label(run, spec):
    """The class index of a test:N image (run.image has checked N), else None."""
    if not spec.startswith("test:"):
        return None
    return int(run.test_set.targets[int(spec[len("test:"):])])


def load_models(run, opts, example):
    """({name: model}, optimize seconds or None, inference report or None), the optimised
    model first."""
    models = {}
    seconds = report = None
    if not opts.no_optimize:
        try:
            models[OPTIMIZED], seconds = predict.optimize(run.model, example)
        except RuntimeError as e:
            raise UsageError(str(e)) from None
        report = getattr(models[OPTIMIZED], "inference_report", None)
    models[UNOPTIMIZED] = run.model
    return models, seconds, report


def image_line(spec, width, top, label, times, class_names):
    """An image's printed line: its spec, top-k classes, true class and times."""
    truth = "" if label is None else f"true {class_names[label]}" + (
        " (ok)" if top[0][0] == class_names[label] else " (wrong)")
    classes = ", ".join(f"{name} {p:.3f}" for name, p in top)
    timing = ", ".join(f"{SAID[name]} {ms:.2f} ms" for name, ms in times.items())
    if len(times) == 2:
        timing += f" (speedup {times[UNOPTIMIZED] / times[OPTIMIZED]:.2f}x)"
    return f"{spec:<{width}}  top-{len(top)}: {classes}  {truth:<14}  {timing}"


def classify(run, opts, specs, models):
    """Prints one line per image; returns the per-image records and the probabilities per
    model ({name: (N, classes)})."""
    x, _ = run.images(specs)
    probs = {name: predict.probabilities(m, x) for name, m in models.items()}
    main_probs = next(iter(probs.values()))
    names = run.class_names
    width = max(len(s) for s in specs)
    records = []
    for i, spec in enumerate(specs):
        top = predict.top_k(main_probs[i], opts.top_k, names)
        label = true_label(run, spec)
        times = predict.median_times_ms(models, x[i:i + 1], opts.repeats)
        print(image_line(spec, width, top, label, times, names), flush=True)
        records.append({"image": spec, "label": None if label is None else names[label],
                        "top": [[n, round(p, 6)] for n, p in top],
                        "top1": {k: names[int(p[i].argmax())] for k, p in probs.items()},
                        "ms": {k: round(v, 4) for k, v in times.items()}})
    return records, probs


def totals(records, probs):
    """Accuracy per model over the labelled images, agreement of the two models, the
    median over images of the per-image times."""
    labelled = [r for r in records if r["label"] is not None]
    out = {"labelled": len(labelled),
           "accuracy": {k: sum(r["top1"][k] == r["label"] for r in labelled) / len(labelled)
                        for k in probs} if labelled else None,
           "median_ms": {k: statistics.median(r["ms"][k] for r in records) for k in probs}}
    if len(probs) == 2:
        out["agree"] = sum(r["top1"][OPTIMIZED] == r["top1"][UNOPTIMIZED] for r in records)
        out["max_probability_difference"] = (probs[OPTIMIZED] - probs[UNOPTIMIZED]).abs().max().item()
    return out


def print_totals(t, images, optimize_s):
    """The lines after the images': accuracy, agreement, median times."""
    if t["accuracy"] is not None:
        print(f"accuracy over {t['labelled']} labelled image(s): " + ", ".join(
            f"{SAID[k]} {v:.3f}" for k, v in t["accuracy"].items()))
    med = t["median_ms"]
    line = "median time per image: " + ", ".join(
        f"{SAID[k]} {v:.2f} ms" for k, v in med.items())
    if "agree" in t:
        line += (f" (speedup {med[UNOPTIMIZED] / med[OPTIMIZED]:.2f}x; optimize_for_inference "
                 f"took {optimize_s:.2f} s)")
        print(f"optimised and unoptimised agree on the top class of {t['agree']} of {images} "
              f"image(s); max probability difference {t['max_probability_difference']:.1e}")
    print(line)


def main(argv=None):
    """The command: returns the summary dict (also printed as JSON, last line). Bad options
    exit with status 2 and an 'error:' line, like argparse."""
    parser = make_parser()
    opts = parser.parse_args(argv)
    try:
        check_options(opts)
        if opts.threads:
            torch.set_num_threads(opts.threads)
        run = Run(opts.checkpoint)
        if modeling.task_of(run.args.model) != "classification":
            raise UsageError(f"--checkpoint {opts.checkpoint}: {run.args.model} is a "
                             f"segmentation model; {PROG} classifies images")
        specs = image_specs(opts, run)
        models, optimize_s, report = load_models(run, opts, run.images(specs[:1])[0])
        if opts.report and report is not None:
            print(report)
        print(f"{run.args.model} on {run.args.dataset}, {len(run.class_names)} classes, "
              f"input {run.channels}x{run.size}x{run.size}; times: one image, median of "
              f"{opts.repeats}", flush=True)
        records, probs = classify(run, opts, specs, models)
    except UsageError as e:
        parser.error(str(e))
    t = totals(records, probs)
    print_totals(t, len(records), optimize_s)
    summary = {"checkpoint": str(run.path), "model": run.args.model,
               "dataset": run.args.dataset, "optimized": not opts.no_optimize,
               "optimize_s": optimize_s, "repeats": opts.repeats, "images": records, **t}
    print(json.dumps(summary), flush=True)
    return summary
