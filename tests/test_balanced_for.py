"""balanced_for and balanced_for_ranges (csrc/cpu/util/balanced_for.h; the second runs the
convolutions' tasks): every unit runs exactly once; a thread that finishes its share takes
units from the back of a slow thread's share; with the switch off, the shares stay fixed. The kernels' bits with and without it are compared in
test_depthwise_cpu_paths.py (test_depthwise_cl3x3_bands_and_spans_every_isa)."""
import pytest
import torch

import cnnops

trace = cnnops._C._balanced_for_trace


@pytest.fixture
def two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)
    cnnops._C.set_balanced_for(True)


@pytest.mark.parametrize("ranges", [False, True])
@pytest.mark.parametrize("count", [1, 2, 7, 40, 333])
@pytest.mark.parametrize("slow_us", [0, 200])
def test_every_unit_runs_once(two_threads, count, slow_us, ranges):
    runs, thread = trace(count, slow_us, ranges)
    assert runs == [1] * count
    assert set(thread) <= {0, 1}


@pytest.mark.parametrize("ranges", [False, True])
def test_fast_thread_takes_units_from_the_back_of_the_slow_share(two_threads, ranges):
    # Thread 0 sleeps 2 ms per unit: thread 1 runs its own half, then takes
    # thread 0's units from the back; thread 0's units are a run from the front
    # of its share (with ranges, a quarter of it at a time).
    count = 40
    runs, thread = trace(count, 2000, ranges)
    assert runs == [1] * count
    first_half = thread[:count // 2]
    assert thread[count // 2:] == [1] * (count // 2)
    assert first_half.count(1) >= count // 4
    ran_by_0 = [u for u in range(count // 2) if first_half[u] == 0]
    assert ran_by_0 == list(range(len(ran_by_0)))


@pytest.mark.parametrize("ranges", [False, True])
def test_switched_off_keeps_fixed_shares(two_threads, ranges):
    cnnops._C.set_balanced_for(False)
    count = 40
    runs, thread = trace(count, 300, ranges)
    assert runs == [1] * count
    assert thread == [0] * (count // 2) + [1] * (count // 2)


def test_one_thread_runs_everything_in_order():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runs, thread = trace(9, 0)
    finally:
        torch.set_num_threads(threads)
    assert runs == [1] * 9 and thread == [0] * 9
