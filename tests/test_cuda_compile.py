"""Compile-check the CUDA kernels with nvcc; no GPU and no CUDA build of torch needed.

Every csrc/cuda/**/*.cu (found recursively, so a moved file cannot drop out) is
compiled for sm_90 (one test per file, two nvcc processes at a time). The kernels
must stay torch-free, which the last test enforces.
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


def _name(src: pathlib.Path) -> str:
    """The test id: the path under csrc/cuda, e.g. "conv2d/conv2d_fprop.cu"."""
    return src.relative_to(CUDA_DIR).as_posix()


def _compile(src: pathlib.Path, out_dir: pathlib.Path) -> subprocess.CompletedProcess:
    cmd = [NVCC, "-std=c++17", "-O2", "-arch=sm_90", "-c", str(src),
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


_TORCH_INCLUDE = re.compile(r'^\s*#\s*include\s*[<"](torch|ATen|c10)/', re.MULTILINE)


def test_cuda_sources_are_torch_free():
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted(CUDA_DIR.rglob("*"))
        if path.suffix in {".cu", ".cuh", ".h", ".hpp"}
        and _TORCH_INCLUDE.search(path.read_text())
    ]
    assert not offenders, f"torch/ATen/c10 headers included by: {offenders}"
