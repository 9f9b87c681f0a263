"""Interleaved A/B timing in blocks: cnnops and torch take turns, a block of calls
each, so drift in the machine's load (other users, clocks, heat) hits both sides
alike, while each timed call runs as in a loop of that library alone.

A side's block is n untimed calls, then n timed ones (aaaAAAbbbBBB..., the order
of the sides alternating between pairs of blocks: AB, BA, AB, ...). The untimed
calls let the side settle after the other's turn: a timed call finds the caches
as its own previous call left them, not the other side's dirty lines to write
back nor the lines it kept clean (non-temporal stores), and several calls in a
row are needed before a side's time stops falling (on our CPU, torch's channels_last
depthwise forward+backward went from 5.7 to 4.2 ms over 8 calls after a switch;
ours from 4.7 to 3.0 over 4). n fills about block_ms with calls (at most
max_block, at least 1), measured in the warm-up. Blocks continue until both a
minimum count of timed calls per side and a time budget are reached, or a maximum
count is.
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
    warmup: int = 2        # untimed pairs before the first block (they set the block length)
    block_ms: float = 30.0  # a block's untimed calls, and its timed ones, each fill about this
    max_block: int = 8


def interleaved(fn_a, fn_b, timer, budget: Budget):
    """(times_a, times_b) in ms, one entry per timed call, taken in alternating blocks."""
    times_a, times_b = interleaved_sides((fn_a, fn_b), timer, budget)
    return times_a, times_b


def interleaved_sides(fns, timer, budget: Budget):
    """interleaved() for any number of sides (the inference rows time four): a list of
    times in ms per side. Each round runs one block per side, in the order of fns, then
    in reverse order on the next round (AB, BA, ... for two sides)."""
    call_ms = 0.0
    for _ in range(budget.warmup):
        call_ms = max([call_ms] + [timer(fn) for fn in fns])
    n = block_length(call_ms, budget)
    times = [[] for _ in fns]
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection in the middle of one side's run is noise
    try:
        start = time.perf_counter()
        while _more(len(times[0]), time.perf_counter() - start, budget):
            timed = min(n, budget.max_reps - len(times[0]))
            sides = list(zip(fns, times))
            if len(times[0]) // n % 2 == 1:
                sides.reverse()
            for fn, side_times in sides:
                side_times.extend(_block(fn, timer, n, timed))
    finally:
        if gc_was_enabled:
            gc.enable()
    return times


def block_length(call_ms, budget):
    """Calls per half block: about block_ms of calls of call_ms (1 if unknown)."""
    if call_ms <= 0:
        return 1
    return max(1, min(budget.max_block, int(budget.block_ms / call_ms)))


def _block(fn, timer, settle, timed):
    """fn called `settle` times untimed, then the times of `timed` more calls."""
    for _ in range(settle):
        fn()
    return [timer(fn) for _ in range(timed)]


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
