"""Command line: run the suite (the default), the batch sweep alone, or compare two results.

    python -m benchmarks [--device auto] [--dtype float32] [--layout both] [--mode both]
                         [--filter SUBSTRING] [--threads N] [--quick] [--budget S]
                         [--out DIR | --canonical] [--malloc steady|system]
                         [--layers | --no-layers] [--sweep | --no-sweep]
                         [--inference | --no-inference] [--no-compile]
                         [--inference-size PX] [--inference-max-batch N]
    python -m benchmarks sweep [the same options]
    python -m benchmarks compare OLD.json NEW.json

The CPU suite ends with the per-layer rows of resnet50 and xception (layer_*; --no-layers
leaves them out, --layers adds them on CUDA; --filter layer_ runs them alone), then the
inference rows (infer_*: whole classifiers in eval mode, torch eager, torch.compile with
freezing and cnnops.optimize_for_inference; --no-inference leaves them out, --inference
adds them on CUDA, --no-compile leaves out their torch.compile column; --filter infer_
runs them alone), and an unfiltered run with the batch sweep (sweep.py; --no-sweep
leaves it out).

A run writes <device>-<date>.json, .md and .png (and -sweep.png) to benchmarks/runs/
(ignored by git), or to --out DIR. --canonical writes them to benchmarks/results/ instead, deletes the
files of the previous canonical run of the same device there, and appends the run's
summary line (date, machine, commit, peak, geomean speedup per op family) to
benchmarks/results/history.jsonl; commit the folder afterwards.

Exits non-zero when a row fails its correctness check or errors (run), or when a row
regressed beyond noise (compare).
"""
import argparse
import pathlib
import sys
from dataclasses import replace

import torch  # noqa: F401  (before cnnops: its extension links against torch's libraries)

from . import allocator, compare, report, runner
from .cases import LAYOUTS, cases_for, select
from .flops import MODES

DEFAULT_OUT = report.RUNS_DIR


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks",
                                description="cnnops vs torch.nn.functional: time and check.",
                                epilog="python -m benchmarks compare OLD.json NEW.json: "
                                       "per-row changes and regressions; python -m benchmarks "
                                       "sweep [options]: the batch sweep alone")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto")
    p.add_argument("--dtype", choices=tuple(runner.DTYPES), default="float32",
                   help="float16/bfloat16 only on CUDA")
    p.add_argument("--layout", choices=(*LAYOUTS, "both"), default="both")
    p.add_argument("--mode", choices=(*MODES, "both"), default="both")
    p.add_argument("--filter", default=None, help="run only cases whose name contains this")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N)")
    p.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds of timed repetitions per row (default 5, --quick 0.5)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT,
                     help="directory for the JSON, Markdown and PNG (default benchmarks/runs, "
                          "ignored by git)")
    out.add_argument("--canonical", action="store_true",
                     help="a run to keep: write to benchmarks/results, replacing the previous "
                          "canonical run of this device there, and append its summary line to "
                          "benchmarks/results/history.jsonl (not with --filter)")
    p.add_argument("--malloc", choices=("steady", "system"), default="steady",
                   help="steady (default): glibc keeps freed memory, so timed calls do not "
                        "page-fault; system: glibc's defaults (see benchmarks/allocator.py)")
    p.add_argument("--layers", action=argparse.BooleanOptionalAction, default=None,
                   help="the per-layer rows of resnet50 and xception (layer_*; default: on the "
                        "CPU, not on CUDA)")
    p.add_argument("--sweep", action=argparse.BooleanOptionalAction, default=None,
                   help="the batch sweep after the rows (default: when no --filter is given); "
                        "'python -m benchmarks sweep' runs it alone")
    p.add_argument("--inference", action=argparse.BooleanOptionalAction, default=None,
                   help="the inference rows (infer_*: resnet50, mobilenet_v2, efficientnet_b0, "
                        "xception in eval mode: torch eager, torch.compile, cnnops optimised; "
                        "default: on the CPU, not on CUDA)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                   help="the inference rows' torch.compile (freezing) column; --no-compile "
                        "leaves it out (each compile takes a minute or more)")
    p.add_argument("--inference-size", type=int, default=None, metavar="PX",
                   help="smoke runs: every inference row's input PX x PX (default: the "
                        "models' own, 224 or 299)")
    p.add_argument("--inference-max-batch", type=int, default=None, metavar="N",
                   help="smoke runs: every inference row's batch at most N")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def settings_from(args):
    budget = runner.QUICK_BUDGET if args.quick else runner.DEFAULT_BUDGET
    if args.budget is not None:
        budget = replace(budget, seconds=args.budget)
    device = runner.resolve_device(args.device)
    return runner.Settings(
        device=device, dtype=args.dtype,
        layouts=tuple(LAYOUTS) if args.layout == "both" else (args.layout,),
        modes=MODES if args.mode == "both" else (args.mode,),
        budget=budget, threads=args.threads, progress=not args.no_progress,
        malloc=allocator.apply(args.malloc, device),
        sweep=args.sweep if args.sweep is not None else not args.filter,
        inference_compile=args.compile)


def run(argv, sweep_only=False):
    args = parse_args(argv)
    if args.canonical and (args.filter or sweep_only or args.inference_size
                           or args.inference_max_batch):
        raise SystemExit("--canonical keeps whole runs only: drop --filter, --inference-size, "
                         "--inference-max-batch (and 'sweep')")
    if sweep_only:
        args.sweep = True
    settings = settings_from(args)
    if sweep_only:
        cases = []
    else:
        all_cases = cases_for(settings.device, layers=args.layers, inference=args.inference)
        if args.inference_size or args.inference_max_batch:
            from .inference_cases import resized
            all_cases = resized(all_cases, args.inference_size, args.inference_max_batch)
        cases = select(all_cases, args.filter)
        if not cases:
            raise SystemExit(f"--filter {args.filter!r} matches no case; cases: "
                             + ", ".join(c.name for c in all_cases))
    result = runner.run_suite(cases, settings)
    print(report.table(result))
    if args.canonical:
        paths = report.write_canonical(result, report.RESULTS_DIR)
        for path in paths.pop("removed"):
            print(f"removed the previous run's {path}")
        paths["history"] = f"{paths['history']} (one line appended)"
    else:
        paths = report.write_outputs(result, args.out)
    for kind, path in paths.items():
        print(f"wrote {kind}: {path}")
    return 1 if result["summary"]["failed"] or result["summary"].get("sweep_failed") else 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["compare"]:
        return compare.main(argv[1:])
    if argv[:1] == ["sweep"]:
        return run(argv[1:], sweep_only=True)
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
