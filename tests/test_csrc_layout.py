"""The layout rules of csrc/ (see csrc/cpu/isa/isa.h and each family header): kernel
sources live in their family's folder, families do not include each other, the shared
layers (common/, cpu/isa/, cpu/util/, cuda/common.cuh) include no family, and no source
file grows past 700 lines. setup.py and tests/test_cuda_compile.py find sources
recursively, so a file in any of these folders is built and compile-checked."""
import pathlib
import re

import pytest

CSRC = pathlib.Path(__file__).resolve().parents[1] / "csrc"
FAMILIES = ("conv2d", "depthwise", "max_pool2d", "avg_pool2d")
SOURCES = sorted(p for p in CSRC.rglob("*") if p.suffix in {".h", ".cpp", ".cu", ".cuh"})
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.MULTILINE)


def _includes(path):
    """The csrc files a source includes, resolved relative to it."""
    return [(path.parent / name).resolve() for name in INCLUDE.findall(path.read_text())]


def test_no_kernel_source_loose_at_the_top():
    assert sorted(p.name for p in (CSRC / "cpu").iterdir() if p.is_file()) == []
    assert sorted(p.name for p in (CSRC / "cuda").iterdir() if p.is_file()) == ["common.cuh"]


@pytest.mark.parametrize("side", ["cpu", "cuda"])
def test_families_do_not_include_each_other(side):
    offenders = []
    for family in FAMILIES:
        for src in sorted((CSRC / side / family).rglob("*")):
            for inc in _includes(src):
                for other in FAMILIES:
                    if other != family and (CSRC / side / other) in inc.parents:
                        offenders.append(f"{src.relative_to(CSRC)} -> {inc.relative_to(CSRC)}")
    assert not offenders, offenders


def test_shared_layers_include_no_family():
    shared = [CSRC / "common", CSRC / "cpu" / "isa", CSRC / "cpu" / "util"]
    offenders = []
    for src in SOURCES:
        if not (any(d in src.parents for d in shared) or src == CSRC / "cuda" / "common.cuh"):
            continue
        for inc in _includes(src):
            if any((CSRC / side / f) in inc.parents for side in ("cpu", "cuda") for f in FAMILIES):
                offenders.append(f"{src.relative_to(CSRC)} -> {inc.relative_to(CSRC)}")
    assert not offenders, offenders


def test_every_include_exists():
    missing = [f"{src.relative_to(CSRC)} -> {inc}" for src in SOURCES for inc in _includes(src)
               if not inc.exists()]
    assert not missing, missing


def test_no_source_over_700_lines():
    long = {str(p.relative_to(CSRC)): n for p in SOURCES
            if (n := len(p.read_text().splitlines())) > 700}
    assert not long, long
