"""Builds the extension cnnops._C with torch.utils.cpp_extension.

The CUDA kernels (csrc/cuda/**/*.cu) are built when torch has CUDA, or when
FORCE_CUDA=1; otherwise the package is CPU-only and cnnops.build_info() says so.
Target GPUs: TORCH_CUDA_ARCH_LIST (default "8.0;9.0"), e.g.
    TORCH_CUDA_ARCH_LIST="8.6;8.9" pip install --no-build-isolation .
"""
import glob
import os
import sys

import torch
from setuptools import setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

ROOT = os.path.dirname(os.path.abspath(__file__))


def sources(pattern):
    """Files matching pattern under ROOT, searched recursively (** spans folders), so
    a source moved into a subfolder cannot silently drop out of the build."""
    return sorted(os.path.relpath(p, ROOT)
                  for p in glob.glob(os.path.join(ROOT, pattern), recursive=True))


def use_cuda():
    if os.environ.get("FORCE_CUDA") == "1":
        return True
    return torch.version.cuda is not None and torch.cuda.is_available() and CUDA_HOME is not None


def extension():
    # -fopenmp: at::parallel_for expands an inline `omp parallel`; without it every
    # kernel would silently run on one thread. libgomp is torch's own (same SONAME).
    # -fno-trapping-math: no kernel relies on floating-point exceptions; it lets the
    # compiler if-convert clamps, so the fused output stage's activations vectorise.
    cxx = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fopenmp"]
    link = ["-fopenmp"]
    if sys.platform.startswith("linux"):
        # The C++ runtime must be the shared libstdc++ that torch uses. Some toolchains
        # (the GPU image's /opt/gcc wrapper: its -B folder holds only libstdc++.a) link
        # it statically, and that second copy crashes in iostreams (every error message
        # with a number segfaulted). Naming the shared library first resolves the
        # runtime from it, so the static archive contributes nothing.
        link.append("-l:libstdc++.so.6")
    srcs = sources("csrc/cpu/**/*.cpp") + sources("csrc/torch/**/*.cpp")
    if not use_cuda():
        return CppExtension("cnnops._C", srcs, extra_compile_args={"cxx": cxx}, extra_link_args=link)
    archs = os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;9.0")
    # A shell-safe token (ninja runs the compilers through sh): "8.0;9.0+PTX" -> 80_90PTX;
    # module.cpp turns it back into a string.
    token = "_".join("".join(ch for ch in a if ch.isalnum()) for a in archs.replace(";", " ").split())
    define = ["-DCNNOPS_WITH_CUDA", f"-DCNNOPS_CUDA_ARCHS={token}"]
    return CUDAExtension(
        "cnnops._C",
        srcs + sources("csrc/cuda/**/*.cu"),
        extra_compile_args={"cxx": cxx + define,
                            "nvcc": ["-O3", "-lineinfo"] + define},
        extra_link_args=link,
    )


# Metadata, dependencies and packages are in pyproject.toml; this file only builds the
# extension, whose sources and flags depend on the torch found at build time.
setup(
    ext_modules=[extension()],
    cmdclass={"build_ext": BuildExtension},
)
