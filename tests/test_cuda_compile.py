"""Compile-check the CUDA kernels with nvcc; no GPU and no CUDA build of torch needed.

Every csrc/cuda/**/*.cu (found recursively, so a moved file cannot drop out) is
compiled for sm_80 and sm_90, the archs the extension is built for by default (one
test per file, two nvcc processes at a time), with ptxas's resource report (-Xptxas -v):
the tensor-core conv kernels must not spill registers to local memory. The kernels must
stay torch-free, which the last test enforces.
"""
import pathlib
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CUDA_DIR = ROOT / "csrc" / "cuda"
CU_FILES = sorted(CUDA_DIR.rglob("*.cu"))
NVCC = shutil.which("nvcc")
TIMEOUT_S = 600
ARCH_FLAGS = ["-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=sm_90"]


def _name(src: pathlib.Path) -> str:
    """The test id: the path under csrc/cuda, e.g. "conv2d/conv2d_fprop.cu"."""
    return src.relative_to(CUDA_DIR).as_posix()


def _compile(src: pathlib.Path, out_dir: pathlib.Path) -> subprocess.CompletedProcess:
    cmd = [NVCC, "-std=c++17", "-O2", "-Xptxas", "-v", *ARCH_FLAGS, "-c", str(src),
           "-o", str(out_dir / (_name(src).replace("/", "_") + ".o"))]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)


@pytest.fixture(scope="module")
def compile_jobs(tmp_path_factory):
    """Starts every compile at once (2 workers); each test waits for its own."""
    if NVCC is None:
        pytest.skip("nvcc not on PATH")
    out_dir = tmp_path_factory.mktemp("cuda_objs")
    pool = ThreadPoolExecutor(max_workers=2)
    jobs = {_name(src): pool.submit(_compile, src, out_dir) for src in CU_FILES}
    yield jobs
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize("name", [_name(src) for src in CU_FILES])
def test_nvcc_compiles(name, compile_jobs):
    result = compile_jobs[name].result(timeout=TIMEOUT_S)
    assert result.returncode == 0, f"nvcc failed on csrc/cuda/{name}:\n{result.stderr}"


def ptxas_resources(report: str):
    """(mangled kernel, arch, registers, spill-store bytes) per kernel in ptxas -v output."""
    rows, current = [], None
    for line in report.splitlines():
        m = re.search(r"Compiling entry function '(\S+)' for 'sm_(\d+)'", line)
        if m:
            current = [m.group(1), int(m.group(2)), 0, 0]
            rows.append(current)
        elif current is not None:
            if (m := re.search(r"(\d+) bytes spill stores", line)):
                current[3] = int(m.group(1))
            if (m := re.search(r"Used (\d+) registers", line)):
                current[2] = int(m.group(1))
    return [tuple(r) for r in rows]


def test_ptxas_report_is_parsed():
    report = ("ptxas info    : Compiling entry function '_Z1kv' for 'sm_90'\n"
              "ptxas info    : Function properties for _Z1kv\n"
              "    8 bytes stack frame, 8 bytes spill stores, 8 bytes spill loads\n"
              "ptxas info    : Used 128 registers, used 1 barriers\n")
    assert ptxas_resources(report) == [("_Z1kv", 90, 128, 8)]


@pytest.mark.parametrize("name", [_name(src) for src in CU_FILES if src.parent.name == "conv2d"])
def test_tensor_core_conv_kernels_do_not_spill(name, compile_jobs):
    result = compile_jobs[name].result(timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    rows = ptxas_resources(result.stderr)
    mma = [r for r in rows if "MmaPolicy" in r[0]]
    if not mma:
        pytest.skip(f"{name} has no tensor-core kernel")
    assert {r[1] for r in mma} == {80, 90}, rows
    spilling = [r for r in mma if r[3] > 0]
    assert not spilling, f"tensor-core kernels spill (kernel, arch, registers, spill bytes): {spilling}"


_TORCH_INCLUDE = re.compile(r'^\s*#\s*include\s*[<"](torch|ATen|c10)/', re.MULTILINE)


def test_cuda_sources_are_torch_free():
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted(CUDA_DIR.rglob("*"))
        if path.suffix in {".cu", ".cuh", ".h", ".hpp"}
        and _TORCH_INCLUDE.search(path.read_text())
    ]
    assert not offenders, f"torch/ATen/c10 headers included by: {offenders}"
