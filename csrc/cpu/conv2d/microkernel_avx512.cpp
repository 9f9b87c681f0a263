// AVX-512 build of conv2d's GEMM micro-kernel (microkernel_template.h):
// 14 x 32 floats (28 zmm accumulators) and 14 x 16 doubles per call; the
// narrow tile (few-pixel GEMMs; its rows are filter rows streamed from memory,
// and more than about a dozen such streams outrun the prefetchers) is 12 x 16
// floats or 12 x 8 doubles; shorter tiles of the main width (12, 10 and 8
// rows) serve the direct path's rows of 12, 10 or 8 pixels and their multiples.
// The whole unit is compiled for AVX-512 via the target pragma; the
// functions it fills in run only after the run-time check (isa.cpp) that
// the CPU supports AVX-512F/DQ/VL.
#include "../isa/isa.h"

#if CNNOPS_CPU_X86_UNITS
#pragma GCC target("avx512f,avx512dq,avx512vl,avx2,fma")
#include "../isa/avx512.h"
#include "microkernel_template.h"

namespace cnnops {
namespace cpu {

bool microkernels_avx512(MicroKernelSet* out) {
  out->f32 = make_microkernel<Avx512F32, 14, 2, 12, 1, 4, 6>();
  out->f64 = make_microkernel<Avx512F64, 14, 2, 12, 1, 4, 6>();
  add_short_tiles<Avx512F32, 14, 2, 12, 10, 8>(&out->f32);
  add_short_tiles<Avx512F64, 14, 2, 12, 10, 8>(&out->f64);
  return true;
}

}  // namespace cpu
}  // namespace cnnops

#else
#include "microkernel.h"
namespace cnnops {
namespace cpu {
bool microkernels_avx512(MicroKernelSet*) { return false; }
}  // namespace cpu
}  // namespace cnnops
#endif
