"""Runs the suite: for each case x layout x mode, one correctness check and one
interleaved cnnops/torch timing, into rows of plain data (see report.py for output). A
case with a run_row of its own (the inference rows, inference_cases.py: four variants of
a model) makes its row itself, in the layouts its plan_layouts picks.
"""
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field, replace

import torch
import torch.nn.functional as F
from torch._prims_common import suggest_memory_format

import cnnops

from . import check, flops, history, machine, sweep, timing
from .cases import LAYOUTS
from .progress import Progress

SCHEMA = "cnnops-benchmarks/1"
DTYPES = {"float32": torch.float32, "float64": torch.float64,
          "float16": torch.float16, "bfloat16": torch.bfloat16}
DEFAULT_BUDGET = timing.Budget(seconds=5.0, min_reps=5, max_reps=200, warmup=2)
QUICK_BUDGET = timing.Budget(seconds=0.5, min_reps=3, max_reps=50, warmup=1)


@dataclass
class Settings:
    device: str = "cpu"
    dtype: str = "float32"
    layouts: tuple = tuple(LAYOUTS)
    modes: tuple = flops.MODES
    budget: timing.Budget = field(default_factory=lambda: DEFAULT_BUDGET)
    threads: int = None
    progress: bool = True
    malloc: str = "as the process found it"  # allocator.apply's description of what was set
    sweep: bool = False      # then the batch sweep (sweep.py), after the rows
    inference_compile: bool = True  # inference rows: time torch.compile too (inference_cases.py)


def resolve_device(name):
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch.cuda.is_available() is False on this machine")
    return name


def validate(settings):
    if settings.dtype not in DTYPES:
        raise SystemExit(f"unknown dtype {settings.dtype!r}, expected one of {list(DTYPES)}")
    if settings.device == "cpu" and DTYPES[settings.dtype] in check.HALF_TYPES:
        raise SystemExit(f"--dtype {settings.dtype} runs only on CUDA (cnnops CPU kernels are "
                         "float32/float64)")


def configure_backends(device):
    """Same conditions on both sides: on CUDA, cuDNN picks its best algorithm and TF32
    is off, so torch's float32 is true float32 as cnnops' is."""
    if device != "cuda":
        return
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


class Workload:
    """One case in one layout and mode: its tensors, and a step per library that
    returns the outputs to check (y; and dx, dw for fwd+bwd).

    Each library's steps run on its own copy of the inputs (so its own .grad) and
    keep their outputs until that library's next step, so every side reuses the
    memory of its own last outputs, as in a loop of that library alone. (When the
    sides shared them, one side's next output took the block the other just freed:
    the cache state a side found depended on how the other had written it, e.g.
    non-temporal stores leave their lines in memory, not cache.)"""

    def __init__(self, case, mode, inputs, dy=None):
        self.case, self.mode, self.inputs, self.dy = case, mode, tuple(inputs), dy
        grads = getattr(case, "grad_names", ("grad_input", "grad_weight"))
        self.names = ("output",) if mode == "fwd" else ("output",) + tuple(grads)
        self._own_inputs = {}  # library name -> its copy of the inputs

    @classmethod
    def create(cls, case, layout, mode, device, dtype):
        inputs = case.make_inputs(device, dtype, layout)
        dy = None
        if mode == "fwd+bwd":
            with torch.no_grad():
                y = case.call(F, *inputs)
            gen = torch.Generator().manual_seed(1)
            dy = torch.randn(y.shape, generator=gen).to(
                device=device, dtype=dtype, memory_format=suggest_memory_format(y))
            for t in inputs:
                t.requires_grad_(True)
        return cls(case, mode, inputs, dy)

    def cast(self, dtype, contiguous=False):
        """The same values in another dtype (for the float32 reference of half types);
        contiguous: in NCHW whatever the row's layout (values, not layouts, are compared)."""
        fmt = torch.contiguous_format if contiguous else torch.preserve_format
        inputs = [t.detach().to(dtype, memory_format=fmt) for t in self.inputs]
        if self.mode == "fwd+bwd":
            for t in inputs:
                t.requires_grad_(True)
        return Workload(self.case, self.mode, inputs,
                        None if self.dy is None else self.dy.to(dtype))

    def inputs_of(self, lib):
        """lib's own copy of the inputs: the same values, strides and requires_grad."""
        if lib.__name__ not in self._own_inputs:
            self._own_inputs[lib.__name__] = tuple(_same_strides_copy(t) for t in self.inputs)
        return self._own_inputs[lib.__name__]

    def step(self, lib):
        inputs = self.inputs_of(lib)
        kept = []  # this library's outputs of its last step, released by its next one

        def forward():
            kept.clear()
            with torch.no_grad():
                kept.append(self.case.call(lib, *inputs))
            return tuple(kept)

        def forward_backward():
            kept.clear()
            for t in inputs:
                t.grad = None
            y = self.case.call(lib, *inputs)
            y.backward(self.dy)
            kept.extend((y,) + tuple(t.grad for t in inputs))
            return tuple(kept)
        return forward if self.mode == "fwd" else forward_backward


def _same_strides_copy(t):
    copy = torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=t.device)
    with torch.no_grad():
        copy.copy_(t)
    return copy.requires_grad_(t.requires_grad)


def correctness(workload, dtype):
    ours, theirs = workload.step(cnnops)(), workload.step(F)()
    if dtype in check.HALF_TYPES:
        nchw = getattr(workload.case, "nchw_reference", False)
        ref = workload.cast(torch.float32, contiguous=nchw).step(F)()
        return check.half_check(ours, theirs, ref, workload.names)
    if getattr(workload.case, "deep", False) and dtype == torch.float32:
        ref = workload.cast(torch.float64).step(F)()
        return check.deep_check(ours, theirs, ref, workload.names)
    return check.same_dtype_check(ours, theirs, workload.names, dtype)


def side_stats(times_ms, flop, nbytes):
    stats = timing.summarize(times_ms)
    return dict(stats, gflops=flop / (stats["median_ms"] * 1e6),
                gbs=nbytes / (stats["median_ms"] * 1e6), peak_fraction=None,
                times_ms=list(times_ms))


def set_peak_fractions(rows, limits):
    """peak_fraction: of the measured FMA peak, or of the measured copy bandwidth for
    memory-bound rows (max pooling, depthwise convolution)."""
    for row in rows:
        for side in ("cnnops", "torch"):
            if side not in row:
                continue
            if row.get("memory_bound"):
                if limits.get("mem_bw_gbs"):
                    row[side]["peak_fraction"] = row[side]["gbs"] / limits["mem_bw_gbs"]
            elif limits.get("peak_gflops"):
                row[side]["peak_fraction"] = row[side]["gflops"] / limits["peak_gflops"]


def run_row(case, layout, mode, settings):
    if hasattr(case, "run_row"):  # a case that times its own variants (inference_cases.py)
        return case.run_row(layout, mode, settings)
    dtype = DTYPES[settings.dtype]
    problem = case.problem()
    row = dict(case=case.name, op=case.op, layout=layout, mode=mode, dtype=settings.dtype,
               device=settings.device, params=case.describe(),
               problem=None if problem is None else asdict(problem),
               flop=case.flop(mode) if hasattr(case, "flop") else flops.flop(problem, mode))
    elem = torch.empty((), dtype=dtype).element_size()
    row["bytes"] = (case.bytes_moved(mode, elem) if hasattr(case, "bytes_moved")
                    else flops.bytes_moved(problem, mode, elem))
    row["arithmetic_intensity"] = row["flop"] / row["bytes"]
    row["memory_bound"] = bool(getattr(case, "memory_bound", False))
    try:
        workload = Workload.create(case, layout, mode, settings.device, dtype)
        row["check"] = correctness(workload, dtype)
        budget = row_budget(case, settings.budget)
        times_c, times_t = timing.interleaved(workload.step(cnnops), workload.step(F),
                                              timing.timer_for(settings.device), budget)
    except Exception as exc:  # one failing row must not lose the others
        row.update(error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(),
                   passed=False)
        return row
    row["cnnops"] = side_stats(times_c, row["flop"], row["bytes"])
    row["torch"] = side_stats(times_t, row["flop"], row["bytes"])
    row["speedup"] = row["torch"]["median_ms"] / row["cnnops"]["median_ms"]
    row["time_ratio"] = 1.0 / row["speedup"]
    row["speedup_paired"] = timing.summarize(timing.paired_ratios(times_t, times_c), suffix="")
    row["error"] = None
    row["passed"] = row["check"]["passed"]
    return row


def row_budget(case, budget):
    """The run's budget as a case trims it: budget_seconds caps its seconds (models: few
    long repetitions), budget_fraction scales them, budget_min_reps caps the minimum
    count (layer and sweep rows: many rows in little time) and budget_warmup the warm-up
    (inference rows: calls of a second)."""
    if getattr(case, "budget_seconds", None):
        budget = replace(budget, seconds=min(budget.seconds, case.budget_seconds))
    if getattr(case, "budget_fraction", None):
        budget = replace(budget, seconds=budget.seconds * case.budget_fraction)
    if getattr(case, "budget_min_reps", None):
        budget = replace(budget, min_reps=min(budget.min_reps, case.budget_min_reps))
    if getattr(case, "budget_warmup", None) is not None:
        budget = replace(budget, warmup=min(budget.warmup, case.budget_warmup))
    return budget


def row_label(row):
    return f"{row['case']} {row['layout']} {row['mode']}"


def run_suite(cases, settings, limits=None):
    """The whole run as one JSON-ready dict: machine, limits, settings and rows.

    limits (peak_gflops, ...) are measured here unless given: before and after the
    rows, keeping the better of each figure, since other load on a shared machine
    can only make a measurement read low."""
    started = time.perf_counter()
    validate(settings)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    configure_backends(settings.device)
    info = machine.describe(settings.device)
    before = machine.measure_limits(settings.device, DTYPES[settings.dtype]) if limits is None \
        else None
    plan = [(c, lay, m) for c in cases for lay in _layouts_of(c, settings.layouts)
            for m in settings.modes if m in getattr(c, "modes", flops.MODES)]
    sweep_plan = sweep.plan(settings.layouts) if settings.sweep else []
    progress = Progress(len(plan) + len(sweep_plan), settings.progress)
    rows = []
    for case, layout, mode in plan + sweep_plan:
        progress.start(f"{case.name} {layout} {mode}")
        row_started = time.perf_counter()
        rows.append(run_row(case, layout, mode, settings))
        rows[-1]["wall_s"] = time.perf_counter() - row_started  # check, warm-up and timing
        _report_failure(rows[-1], progress)
        progress.step()
    progress.close()
    rows, sweep_rows = rows[:len(plan)], rows[len(plan):]
    if limits is None:
        limits = machine.best_of(before, machine.measure_limits(settings.device,
                                                                DTYPES[settings.dtype]))
        if limits["drift"] > 0.25:
            print(f"warning: the measured limits moved by up to {100 * limits['drift']:.0f}% "
                  "between the start and the end of the run: the machine is busy, "
                  "expect noisy times", file=sys.stderr)
    set_peak_fractions(rows + sweep_rows, limits)
    result = dict(schema=SCHEMA, machine=info, limits=limits, settings=_settings_record(settings),
                  rows=rows, summary=_summary(rows, time.perf_counter() - started))
    if settings.sweep:
        result["sweep"] = sweep.record(sweep_rows, limits)
        result["summary"]["sweep_failed"] = result["sweep"]["failed"]
    return result


def _layouts_of(case, layouts):
    """The run's layouts, or those the case picks from them (plan_layouts: an inference
    row runs once, its torch variants timing both layouts)."""
    pick = getattr(case, "plan_layouts", None)
    return layouts if pick is None else pick(layouts)


def _settings_record(settings):
    record = asdict(settings)
    record.pop("progress")
    record["threads"] = torch.get_num_threads()
    return record


def _report_failure(row, progress):
    if row.get("compile_error"):  # an inference row without its torch.compile column
        progress.write(f"note  {row_label(row)}: torch.compile failed: "
                       f"{row['compile_error'].splitlines()[0]}")
    if row["error"]:
        progress.write(f"ERROR {row_label(row)}: {row['error']}")
    elif not row["passed"]:
        c = row["check"]
        progress.write(f"FAIL  {row_label(row)}: max rel err {c['max_rel_err']:.2e} "
                       f"> tolerance {c['tolerance']:.0e}")


def _summary(rows, runtime_s):
    """Counts, run time, and the geomean speedup of each family and of dense_conv."""
    return dict(rows=len(rows), failed=sum(1 for r in rows if not r["passed"]),
                errors=sum(1 for r in rows if r["error"]), runtime_s=runtime_s,
                geomean_speedup=history.geomeans(rows))
