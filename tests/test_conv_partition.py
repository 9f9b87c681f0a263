"""The CPU conv paths' work partitions (csrc/cpu/conv2d/correlation_pack.h) as pure
functions of shape and thread count, for 1..64 threads on ResNet-50's layers at batch 1
and 16: balanced_block cuts pixels into equal blocks of whole panels; panel_splits picks
the output-channel groups that even out the threads' task counts; direct_row_blocks cuts
the channels-last direct path's output rows into long blocks where the threads have tasks
enough. (The results do not
depend on either: each output element is summed by one task in one order; the kernels'
thread-count independence is checked in test_conv2d_cpu_paths.py.)"""
import math

import pytest

import cnnops

block_of = cnnops._C._conv_balanced_block
splits_of = cnnops._C._conv_panel_splits
row_blocks_of = cnnops._C._conv_direct_row_blocks

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
        rows = row_blocks_of(size, math.ceil(size / MR), batch, threads)  # row blocks per image
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


@pytest.mark.parametrize("threads", range(1, 65))
@pytest.mark.parametrize("batch", [1, 16])
def test_direct_row_blocks_are_long_where_tasks_allow(threads, batch):
    for size, _ in LAYERS + [(147, 64), (19, 728)]:  # and Xception's entry and middle flows
        qtiles = math.ceil(size / MR)
        blocks = row_blocks_of(size, qtiles, batch, threads)
        rows = math.ceil(size / blocks)
        assert 1 <= blocks <= size
        assert (blocks - 1) * rows < size  # every block has rows
        tiles = rows * qtiles
        if batch * blocks < 8 * threads:  # few tasks: the short blocks of about 8 tiles
            assert blocks == math.ceil(size / max(1, 8 // qtiles))
        else:  # long blocks, up to about 48 tiles
            assert tiles <= max(48, qtiles)
            for longer in (48, 24, 16):  # any longer blocks would leave too few tasks
                if max(1, longer // qtiles) > rows and math.ceil(size / max(1, longer // qtiles)) < blocks:
                    assert batch * math.ceil(size / max(1, longer // qtiles)) < 8 * threads
