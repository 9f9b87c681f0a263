// AVX2+FMA build of conv2d's GEMM micro-kernel (microkernel_template.h):
// 6 x 16 floats and 6 x 8 doubles per call (12 ymm accumulators); the
// narrow tile (few-pixel GEMMs) is 12 x 8 floats or 12 x 4 doubles; shorter
// tiles of 5 and 4 rows serve the direct path's rows of 5, 10, 4 or 8 pixels.
// The whole unit is compiled for AVX2+FMA via the target pragma; the
// functions it fills in run only after the run-time check (isa.cpp) that
// the CPU supports AVX2 and FMA.
#include "../isa/isa.h"

#if CNNOPS_CPU_X86_UNITS
#pragma GCC target("avx2,fma")
#include "../isa/avx2.h"
#include "microkernel_template.h"

namespace cnnops {
namespace cpu {

bool microkernels_avx2(MicroKernelSet* out) {
  out->f32 = make_microkernel<Avx2F32, 6, 2, 12, 1, 3, 4>();
  out->f64 = make_microkernel<Avx2F64, 6, 2, 12, 1, 3, 4>();
  add_short_tiles<Avx2F32, 6, 2, 5, 4>(&out->f32);
  add_short_tiles<Avx2F64, 6, 2, 5, 4>(&out->f64);
  return true;
}

}  // namespace cpu
}  // namespace cnnops

#else
#include "microkernel.h"
namespace cnnops {
namespace cpu {
bool microkernels_avx2(MicroKernelSet*) { return false; }
}  // namespace cpu
}  // namespace cnnops
#endif
