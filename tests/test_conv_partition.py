"""The CPU conv paths' work partitions (csrc/cpu/conv2d/correlation_pack.h) as pure
functions of shape and thread count, for 1..64 threads on ResNet-50's layers at batch 1
and 16: balanced_block cuts pixels into equal blocks of whole panels; panel_splits picks
the output-channel groups that even out the threads' task counts. (The results do not
depend on either: each output element is summed by one task in one order; the kernels'
thread-count independence is checked in test_conv2d_cpu_paths.py.)"""
import math

import pytest

import cnnops

block_of = cnnops._C._conv_balanced_block
splits_of = cnnops._C._conv_panel_splits

# ResNet-50 at 224: (output size, output channels) of its 3x3 and 1x1 layers
LAYERS = [(112, 64), (56, 64), (56, 256), (28, 128), (28, 512), (14, 256), (14, 1024),
          (7, 512), (7, 2048)]
MR, NR = 14, 32  # the AVX-512 tile


def share(tasks, threads):
    """The busiest thread's count over the mean: at::parallel_for's even shares."""
    return tasks / (math.ceil(tasks / threads) * threads)


@pytest.mark.parametrize("threads", range(1, 65))
@pytest.mark.parametrize("batch", [1, 16])
def test_panel_splits_are_the_best_equal_groups(threads, batch):
    for size, channels in LAYERS:
        panels = math.ceil(channels / NR)
        rows = math.ceil(size / max(1, 8 // math.ceil(size / MR)))  # row blocks per image
        blocks = batch * rows
        s = splits_of(blocks, panels, threads)
        assert panels % s == 0
        best = max(share(blocks * d, threads) for d in range(1, panels + 1) if panels % d == 0)
        assert share(blocks * s, threads) == pytest.approx(best)
        if blocks % threads == 0:
            assert s == 1  # nothing to even out: no extra split
        # the fewest groups with that share
        assert all(share(blocks * d, threads) < best - 1e-9
                   for d in range(1, s) if panels % d == 0)


@pytest.mark.parametrize("outer", [1, 2, 16])
def test_balanced_block_gives_equal_whole_panels(outer):
    for size, _ in LAYERS:
        for batch in (1, 16):
            items = batch * size * size
            block = block_of(items, MR, outer)
            assert block % MR == 0
            blocks = math.ceil(items / block)
            panels = math.ceil(items / MR)
            assert block // MR <= 8  # at most kBlockPanels panels
            assert 0 < items - (blocks - 1) * block <= block  # the last block takes the rest
            if outer == 1:  # about 8 tasks where there are panels enough (the paths split
                assert blocks >= min(panels, 8) // 2  # output channels when fewer)
