// AVX2+FMA build of avg_pool2d's vector kernels (avg_pool2d_simd.h).
// The whole unit is compiled for AVX2+FMA via the target pragma; the
// functions it fills in run only after the run-time check (isa.cpp) that
// the CPU supports AVX2 and FMA.
#include "../isa/isa.h"

#if CNNOPS_CPU_X86_UNITS
#pragma GCC target("avx2,fma")
#include "../isa/avx2.h"
#include "avg_pool2d_simd.h"

namespace cnnops {
namespace cpu {

bool avg_pool_kernels_avx2(AvgPoolKernelSet* out) {
  out->f32 = make_avg_pool_kernels<Avx2F32>();
  out->f64 = make_avg_pool_kernels<Avx2F64>();
  return true;
}

}  // namespace cpu
}  // namespace cnnops

#else
#include "avg_pool2d_kernels.h"
namespace cnnops {
namespace cpu {
bool avg_pool_kernels_avx2(AvgPoolKernelSet*) { return false; }
}  // namespace cpu
}  // namespace cnnops
#endif
