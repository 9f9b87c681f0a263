"""The CPU packed-filter cache (csrc/torch/filter_cache.cpp): conv2d and conv_transpose2d
reuse a filter's packed forms while the tensor is unchanged, and never a stale one.

Each test checks results against torch, so a stale form (an update the cache missed) fails
the comparison, and checks the cache's counters, so a cache that never hits fails too.
"""
import copy
import gc

import pytest
import torch
import torch.nn.functional as F

import cnnops
from conftest import supported_isas

pytestmark = pytest.mark.conv2d


@pytest.fixture(autouse=True)
def fresh_cache():
    limit = cnnops.weight_cache_info()["limit"]
    cnnops.clear_weight_cache()
    yield
    cnnops.set_weight_cache_limit(limit)
    cnnops.clear_weight_cache()


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def _x(channels_last=False, n=2, c=16, h=13):
    x = torch.randn(n, c, h, h)
    return x.to(memory_format=torch.channels_last) if channels_last else x


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "cl"])
@pytest.mark.parametrize("padding", [1, 0])
def test_reused_while_unchanged(channels_last, padding):
    x, w, b = _x(channels_last), torch.randn(32, 16, 3, 3), torch.randn(32)
    for _ in range(3):
        _close(cnnops.conv2d(x, w, b, padding=padding), F.conv2d(x, w, b, padding=padding))
    info = cnnops.weight_cache_info()
    assert info["entries"] == 1 and info["misses"] == 1 and info["hits"] == 2
    assert info["bytes"] >= w.numel() * 4


def test_in_place_update_repacks():
    x, w = _x(), torch.randn(32, 16, 3, 3)
    _close(cnnops.conv2d(x, w, padding=1), F.conv2d(x, w, padding=1))
    w.mul_(-2).add_(1)  # bumps the version counter
    _close(cnnops.conv2d(x, w, padding=1), F.conv2d(x, w, padding=1))
    w[3, 2, 1, 1] = 100.0
    _close(cnnops.conv2d(x, w, padding=1), F.conv2d(x, w, padding=1))
    assert cnnops.weight_cache_info()["entries"] == 1


def test_update_through_a_view_repacks():
    base = torch.randn(2, 32, 16, 3, 3)
    w = base[1]
    x = _x()
    _close(cnnops.conv2d(x, w, padding=1), F.conv2d(x, w, padding=1))
    base[1, :4].zero_()  # views share the version counter
    _close(cnnops.conv2d(x, w, padding=1), F.conv2d(x, w, padding=1))
    # Another view of the same storage is another filter.
    w0 = base[0]
    _close(cnnops.conv2d(x, w0, padding=1), F.conv2d(x, w0, padding=1))
    wt = base[1].transpose(2, 3)
    _close(cnnops.conv2d(x, wt, padding=1), F.conv2d(x, wt, padding=1))


def test_transpose_and_dgrad_forms():
    x = torch.randn(2, 32, 13, 13)  # enough pixels for the packed paths
    w = torch.randn(32, 16, 3, 3)
    for _ in range(2):
        _close(cnnops.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1),
               F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1))
    hits = cnnops.weight_cache_info()["hits"]
    assert hits > 0
    with torch.no_grad():
        w.neg_()
    _close(cnnops.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1),
           F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1))


def test_training_steps_match_torch():
    torch.manual_seed(0)
    ref = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(16, 4, 3, stride=2, padding=1))
    ours = cnnops.convert(copy.deepcopy(ref))
    opt_ref = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    opt_ours = torch.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(4, 8, 10, 10)
    for _ in range(4):
        for model, opt in ((ref, opt_ref), (ours, opt_ours)):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
    for p, q in zip(ref.parameters(), ours.parameters()):
        _close(q, p)
    _close(ours(x), ref(x))


def test_freed_filters_leave_the_cache():
    x = _x()
    for _ in range(5):
        w = torch.randn(32, 16, 3, 3)
        cnnops.conv2d(x, w, padding=1)
        del w
        gc.collect()
    assert cnnops.weight_cache_info()["entries"] <= 1


def test_limit_bounds_memory_and_zero_turns_it_off():
    x = _x()
    ws = [torch.randn(32, 16, 3, 3) for _ in range(6)]
    cnnops.set_weight_cache_limit(0)
    cnnops.set_weight_cache_limit(1 << 30)
    _close(cnnops.conv2d(x, ws[0], padding=1), F.conv2d(x, ws[0], padding=1))
    one = cnnops.weight_cache_info()["bytes"]  # one filter's packed forms (path-dependent)
    assert one > 0
    cnnops.set_weight_cache_limit(3 * one)
    for w in ws[1:]:
        _close(cnnops.conv2d(x, w, padding=1), F.conv2d(x, w, padding=1))
    info = cnnops.weight_cache_info()
    assert 0 < info["bytes"] <= info["limit"] and info["entries"] <= 3
    cnnops.set_weight_cache_limit(0)
    assert cnnops.weight_cache_info()["entries"] == 0
    _close(cnnops.conv2d(x, ws[0], padding=1), F.conv2d(x, ws[0], padding=1))
    assert cnnops.weight_cache_info()["entries"] == 0


def test_inference_tensors():
    with torch.inference_mode():
        x, w = _x(), torch.randn(32, 16, 3, 3)
        _close(cnnops.conv2d(x, w, padding=1), F.conv2d(x, w, padding=1))
        w.add_(1)  # inference tensors have no version counter
        _close(cnnops.conv2d(x, w, padding=1), F.conv2d(x, w, padding=1))


@pytest.mark.parametrize("how", ["data", "numpy", "tiny", "swap"])
def test_writes_the_version_counter_misses(how):
    """gradcheck and older training code write through `.data`; numpy shares the memory; a
    permutation of the output channels moves words without changing any value."""
    x, w = torch.randn(2, 16, 9, 9, dtype=torch.float64), torch.randn(32, 16, 3, 3, dtype=torch.float64)
    for _ in range(2):
        _close(cnnops.conv2d(x, w, padding=1), F.conv2d(x, w, padding=1))
    version = w._version
    if how == "data":
        w.data.add_(1)
    elif how == "numpy":
        w.numpy()[5, 3, 2, 1] = 7.0
    elif how == "tiny":  # the last bit of one element, as a finite difference does
        w.data[23, 15, 2, 2] += 1e-12
    else:
        w.data[[3, 7, 20]] = w.data[[20, 3, 7]].clone()
    assert w._version == version
    torch.testing.assert_close(cnnops.conv2d(x, w, padding=1), F.conv2d(x, w, padding=1), rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_one_filter_across_isas(dtype):
    """Forms depend on the micro-kernel's tile, which the ISA switch changes mid-process."""
    x, w = _x(c=20).to(dtype), torch.randn(30, 20, 3, 3, dtype=dtype)
    xt = torch.randn(2, 30, 5, 5, dtype=dtype)
    try:
        for isa in supported_isas() * 2:
            cnnops.set_cpu_isa(isa)
            _close(cnnops.conv2d(x, w, padding=1), F.conv2d(x, w, padding=1))
            _close(cnnops.conv_transpose2d(xt, w, stride=2), F.conv_transpose2d(xt, w, stride=2))
    finally:
        cnnops.set_cpu_isa("auto")
    assert cnnops.weight_cache_info()["hits"] > 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_one_hot_filters_in_turn(dtype):
    """What gradcheck feeds a backward: one tensor, rewritten through `.data` as each basis
    vector in turn (changes confined to a float's exponent bits, in every position)."""
    x = torch.randn(2, 64, 13, 13, dtype=dtype)
    w = torch.zeros(64, 16, 3, 2, dtype=dtype)  # groups=4: 6144 elements, large enough to cache
    for i in range(w.numel()):
        w.data.zero_()
        w.data.view(-1)[i] = 1.0 if i % 2 else -2.0
        _close(cnnops.conv2d(x, w, groups=4, padding=1), F.conv2d(x, w, groups=4, padding=1))
        if i % 61 == 0:
            _close(cnnops.conv_transpose2d(x, w, groups=4), F.conv_transpose2d(x, w, groups=4))
    assert cnnops.weight_cache_info()["misses"] >= w.numel()


def test_training_calls_pack_per_call():
    """A call that records a graph (and its backward) does not fill the cache: the filter
    changes every step, so keeping packed forms would only add work; no_grad calls do."""
    x = _x().requires_grad_()
    w = torch.randn(32, 16, 3, 3, requires_grad=True)
    for _ in range(2):
        cnnops.conv2d(x, w, padding=1).square().sum().backward()
        cnnops.conv_transpose2d(cnnops.conv2d(x, w, padding=1), w, padding=1).sum().backward()
    assert cnnops.weight_cache_info()["entries"] == 0
    with torch.no_grad():
        for _ in range(2):
            _close(cnnops.conv2d(x, w, padding=1), F.conv2d(x, w, padding=1))
    info = cnnops.weight_cache_info()
    assert info["entries"] == 1 and info["hits"] == 1
    frozen = w.detach()  # a frozen layer inside a trained model still uses it
    cnnops.conv2d(x, frozen, padding=1).sum().backward()
    assert cnnops.weight_cache_info()["hits"] == 2


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "cl"])
@pytest.mark.parametrize("kernel", [1, 3])
def test_few_pixels_read_a_hashed_filter_in_place(channels_last, kernel):
    """A layer whose pixels fill one narrow tile is bound by reading its filter: an
    unfrozen filter (hashed per lookup) is read once in place, not hashed and then read
    packed; a frozen one (no hash) keeps its packed form."""
    from cnnops import _C
    x = _x(channels_last, n=1, c=96, h=3)
    w = torch.randn(192, 96, kernel, kernel)  # 18432 and more elements: the few-pixel paths
    with torch.no_grad():
        for _ in range(2):
            _close(cnnops.conv2d(x, w, padding=kernel // 2), F.conv2d(x, w, padding=kernel // 2))
        assert cnnops.weight_cache_info()["entries"] == 0
        assert _C.freeze_filter(w)
        for _ in range(2):
            _close(cnnops.conv2d(x, w, padding=kernel // 2), F.conv2d(x, w, padding=kernel // 2))
        info = cnnops.weight_cache_info()
        assert info["entries"] == 1 and info["hits"] >= 1
