"""What the suite ran on, and the limits measured on it in the same run.

Limits are measured, not looked up: the peak FLOP rate (on the CPU the largest of
cnnops' FMA loop of the active ISA on all torch threads, the same loop on one thread
times the thread count, and a large torch.matmul; on CUDA a large matmul) and the
memory bandwidth (a large copy, counting read + write), each the best of a few tries.
"""
import datetime
import os
import pathlib
import platform
import subprocess
import time

import torch

import cnnops

_COPY_BYTES = 256 * 2**20


def describe(device):
    info = dict(
        date=datetime.datetime.now().isoformat(timespec="seconds"),
        hostname=platform.node(),
        platform=platform.platform(),
        python=platform.python_version(),
        cpu_model=_cpu_model(),
        cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        torch=torch.__version__,
        cuda=torch.version.cuda,
        cnnops=cnnops.__version__,
        commit=git_commit(),
        cnnops_build={k: _jsonable(v) for k, v in cnnops.build_info().items()},
        device=device,
    )
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_capability=f"{props.major}.{props.minor}",
                    gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    cudnn=torch.backends.cudnn.version())
    return info


def git_commit():
    """The checkout's commit (short hash, "+dirty" with uncommitted changes to tracked
    files), or None outside a git checkout."""
    repo = pathlib.Path(__file__).resolve().parents[1]
    try:
        def git(*args):
            return subprocess.run(["git", "-C", str(repo), *args], capture_output=True,
                                  text=True, check=True, timeout=10).stdout.strip()
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _jsonable(v):
    return list(v) if isinstance(v, tuple) else v


def measure_limits(device, dtype, tries=3):
    """Peak GFLOP/s and memory GB/s for this device and dtype, with how each was measured.

    On the CPU the peak is the largest of cnnops' FMA loop on all threads, the same
    loop on one thread times the thread count (on a shared machine another user's load
    on one core drags the all-thread loop down) and a large torch.matmul (a BLAS that
    beats the loop shows it under-reads). All three are kept in the record."""
    limits = dict(mem_bw_gbs=_copy_gbs(device, tries),
                  mem_bw_method=f"{_COPY_BYTES // 2**20} MiB tensor copy, read + write")
    if device == "cuda":
        limits.update(matmul_gflops=_matmul_gflops(device, dtype, tries, n=8192))
        limits.update(peak_gflops=limits["matmul_gflops"],
                      peak_method=f"torch.matmul 8192^3 {_name(dtype)}")
        return limits
    threads = torch.get_num_threads()
    fma_all = _fma_loop_gflops(dtype, tries)
    fma_one = _fma_loop_gflops(dtype, tries, threads=1) * threads
    matmul = _matmul_gflops(device, dtype, tries, n=3072)
    candidates = {f"{cnnops.build_info().get('cpu_isa')} FMA loop on {threads} threads": fma_all,
                  f"FMA loop on 1 thread x {threads}": fma_one, "torch.matmul 3072^3": matmul}
    method = max(candidates, key=candidates.get)
    limits.update(fma_loop_gflops=fma_all, fma_loop_1thread_x_threads_gflops=fma_one,
                  matmul_gflops=matmul, peak_gflops=candidates[method],
                  peak_method=f"{method}; of " + ", ".join(f"{k}: {v:.0f}"
                                                         for k, v in candidates.items()))
    return limits


_FIGURES = {"peak_gflops": "peak_method", "mem_bw_gbs": "mem_bw_method"}


def best_of(before, after):
    """The better measurement of each figure (with its method), both runs kept, and
    their drift: the largest relative difference, a sign of other load on the machine."""
    best = {}
    for figure, method in _FIGURES.items():
        winner = before if before[figure] >= after[figure] else after
        best.update({figure: winner[figure], method: winner[method]})
    drift = max(abs(before[f] - after[f]) / max(before[f], after[f]) for f in _FIGURES)
    return dict(best, drift=drift, before=before, after=after)


def _name(dtype):
    return str(dtype).replace("torch.", "")


def _fma_loop_gflops(dtype, tries, threads=None):
    saved = torch.get_num_threads()
    torch.set_num_threads(threads or saved)
    try:
        return max(cnnops._C.cpu_peak_gflops(dtype == torch.float64, 20_000_000)
                   for _ in range(tries))
    finally:
        torch.set_num_threads(saved)


def _copy_gbs(device, tries):
    src = torch.ones(_COPY_BYTES // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)  # first touch of dst's pages
    best = float("inf")
    for _ in range(tries + 2):
        _sync(device)
        start = time.perf_counter()
        dst.copy_(src)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * _COPY_BYTES / best / 1e9


def _matmul_gflops(device, dtype, tries, n):
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(tries):
        _sync(device)
        start = time.perf_counter()
        torch.matmul(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()
