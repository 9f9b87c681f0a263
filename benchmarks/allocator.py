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


def steady():
    """Applies the steady settings; returns what the run used, for its record."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        version = libc.gnu_get_libc_version
    except (OSError, AttributeError, TypeError):
        return "system (not glibc: left as it is)"
    version.restype = ctypes.c_char_p
    ok = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1
    if not ok:
        return "system (glibc refused mallopt)"
    return f"steady (glibc {version().decode()}: freed memory kept in the process, no mmap, no trim)"


def apply(mode):
    """mode 'steady' or 'system'; returns the description for the run's record."""
    if mode == "steady":
        return steady()
    return "system (glibc defaults: large freed blocks go back to the OS)"
