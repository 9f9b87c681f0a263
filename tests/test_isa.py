"""The CPU ISA machinery shared by every family: cnnops.set_cpu_isa's refusals and the
per-ISA compilation units' symbols. (Each family's tests run under every ISA in
test_<family>_cpu_paths.py.)"""
import shutil
import subprocess

import pytest

import cnnops


def test_set_cpu_isa_refuses_unknown():
    with pytest.raises(ValueError, match=r"'sse9'.*expected 'auto' or one of"):
        cnnops.set_cpu_isa("sse9")
    assert cnnops.build_info()["cpu_isa"] in cnnops.build_info()["cpu_isas"].split(",")


@pytest.mark.skipif(shutil.which("nm") is None, reason="needs binutils' nm")
def test_vector_kernel_helpers_stay_in_their_isa_unit():
    # Each family's SIMD templates (csrc/cpu/*/..._simd.h, microkernel_template.h,
    # depthwise_span3x3.h, isa/fma_probe.h) are compiled once per ISA unit, in namespace
    # cnnops::cpu::simd (see csrc/cpu/isa/isa.h). A helper there that is a template on T
    # alone (not on the unit's traits V) becomes one weak symbol shared by all units; the
    # linker may keep the AVX-512 unit's copy and run it on any CPU.
    out = subprocess.run(["nm", "-C", cnnops._C.__file__], capture_output=True, text=True,
                         check=True).stdout
    simd = [line for line in out.splitlines() if "cnnops::cpu::simd::" in line]
    # The namespace is where the kernels are: without local instances of them the
    # check below would pass vacuously (e.g. after a rename).
    for kernel in ("microkernel<", "stencil_row<", "span3x3_fprop<", "max_taps<", "avg_sum_rows<",
                   "fma_probe<"):
        assert any(f"cnnops::cpu::simd::{kernel}" in line for line in simd), kernel
    shared = [line for line in simd if line.split(" ", 2)[1:2] in (["W"], ["V"])]
    assert not shared, shared
