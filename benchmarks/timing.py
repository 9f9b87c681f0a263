"""Interleaved A/B timing: a cnnops run and a torch run alternate every repetition,
so drift in the machine's load (other users, clocks, heat) hits both sides alike.

Each timed call directly follows an untimed call of the same side (a, A, b, B, ...
for the timed A and B), so it finds the caches as its own previous call left them,
as in a loop of that library alone: not the other side's dirty lines to write back,
nor the lines the other side kept clean (non-temporal stores). The order within a
pair alternates too (AB, BA, AB, ...). Repetitions continue until both a minimum
count and a time budget are reached, or a maximum count is.
"""
import gc
import statistics
import time
from dataclasses import dataclass

import torch


class CpuTimer:
    """Wall time of one call, in ms."""

    def __call__(self, fn):
        start = time.perf_counter()
        fn()
        return (time.perf_counter() - start) * 1e3


class CudaTimer:
    """GPU time of one call, in ms, with CUDA events after draining the stream."""

    def __init__(self):
        self.start = torch.cuda.Event(enable_timing=True)
        self.end = torch.cuda.Event(enable_timing=True)

    def __call__(self, fn):
        torch.cuda.synchronize()
        self.start.record()
        fn()
        self.end.record()
        self.end.synchronize()
        return self.start.elapsed_time(self.end)


def timer_for(device):
    return CudaTimer() if device == "cuda" else CpuTimer()


@dataclass(frozen=True)
class Budget:
    seconds: float = 3.0   # timed repetitions stop after this, once min_reps are done
    min_reps: int = 5
    max_reps: int = 200
    warmup: int = 2        # untimed pairs before the first timed one


def interleaved(fn_a, fn_b, timer, budget: Budget):
    """(times_a, times_b) in ms, one entry per repetition, taken alternately."""
    for _ in range(budget.warmup):
        fn_a()
        fn_b()
    times_a, times_b = [], []
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection in the middle of one side's run is noise
    try:
        start = time.perf_counter()
        while _more(len(times_a), time.perf_counter() - start, budget):
            if len(times_a) % 2 == 0:
                times_a.append(_after_itself(fn_a, timer))
                times_b.append(_after_itself(fn_b, timer))
            else:
                times_b.append(_after_itself(fn_b, timer))
                times_a.append(_after_itself(fn_a, timer))
    finally:
        if gc_was_enabled:
            gc.enable()
    return times_a, times_b


def _after_itself(fn, timer):
    """The time of fn's second call of two in a row."""
    fn()
    return timer(fn)


def _more(reps, elapsed_s, budget):
    if reps >= budget.max_reps:
        return False
    return reps < budget.min_reps or elapsed_s < budget.seconds


def summarize(values, suffix="_ms"):
    """Median and spread of a series (times in ms by default; suffix="" for ratios)."""
    ordered = sorted(values)
    if len(ordered) >= 2:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = ordered[0]
    median = statistics.median(ordered)
    stats = dict(median=median, min=ordered[0], max=ordered[-1], q1=q1, q3=q3)
    return dict({k + suffix: v for k, v in stats.items()},
                iqr_rel=(q3 - q1) / median if median > 0 else 0.0, reps=len(ordered))


def paired_ratios(times_num, times_den):
    """Per-repetition ratios of two interleaved series: robust to slow drift in load."""
    return [a / b for a, b in zip(times_num, times_den) if b > 0]
