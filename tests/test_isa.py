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
    # vector_kernels_template.h is compiled once per ISA unit. A helper there that is a
    # template on T alone (not on the unit's traits V) becomes one weak symbol shared by
    # all units; the linker may keep the AVX-512 unit's copy and run it on any CPU.
    out = subprocess.run(["nm", "-C", cnnops._C.__file__], capture_output=True, text=True,
                         check=True).stdout
    shared = [line for line in out.splitlines()
              if line.split(" ", 2)[1:2] in (["W"], ["V"]) and "cnnops::cpu::vk_impl::" in line]
    assert not shared, shared
