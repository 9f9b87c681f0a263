"""The C allocator's share of a CPU timing, held steady.

With glibc's defaults, a freed block of a few MB is often handed back to the OS (the
heap is trimmed, or the block was a fresh mmap), and the next allocation of that size
page-faults on every 4 KiB page it touches. On our 2-core machine that costs about
0.2 ms per MB: more than a depthwise or max-pool kernel spends on the same bytes. Which
side of an A/B pair pays it depends on the order of frees and allocations, so rows
swing between runs (torch's NCHW depthwise read 2 or 10-20 ms for the same call).

steady() tells glibc to keep freed memory in the process (no mmap for large blocks, no
trimming): outputs and temporaries of both libraries then reuse warm pages and timed
calls measure the kernels. `python -m benchmarks --malloc system` keeps the defaults.
"""
import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1   # mallopt parameters (malloc.h)
M_MMAP_MAX = -4


_steady = None  # what steady() set in this process (it cannot be undone), else None


def steady():
    """Applies the steady settings; returns what the run used, for its record."""
    global _steady
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        version = libc.gnu_get_libc_version
    except (OSError, AttributeError, TypeError):
        return "system (not glibc: left as it is)"
    version.restype = ctypes.c_char_p
    no_mmap = libc.mallopt(M_MMAP_MAX, 0) == 1
    no_trim = no_mmap and libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1
    if not no_trim:
        return ("system (glibc refused mallopt)" if not no_mmap else
                f"partly steady (glibc {version().decode()}: no mmap, but trim refused)")
    _steady = f"steady (glibc {version().decode()}: freed memory kept in the process, no mmap, no trim)"
    return _steady


def apply(mode, device="cpu"):
    """mode 'steady' or 'system' for a run on `device`; returns the description for the
    run's record. Only CPU runs are affected: CUDA memory has torch's caching allocator."""
    if device != "cpu":
        return f"not applied ({device}: torch's caching allocator)"
    if mode == "steady":
        return steady()
    if _steady is not None:
        return f"{_steady}, set earlier in this process (system asked for)"
    return "system (the C library's defaults: glibc gives large freed blocks back to the OS)"
