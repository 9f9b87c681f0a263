// AVX-512 build of avg_pool2d's vector kernels (avg_pool2d_simd.h).
// The whole unit is compiled for AVX-512 via the target pragma; the
// functions it fills in run only after the run-time check (isa.cpp) that
// the CPU supports AVX-512F/DQ/VL.
#include "../isa/isa.h"

#if CNNOPS_CPU_X86_UNITS
#pragma GCC target("avx512f,avx512dq,avx512vl,avx2,fma")
#include "../isa/avx512.h"
#include "avg_pool2d_simd.h"

namespace cnnops {
namespace cpu {

bool avg_pool_kernels_avx512(AvgPoolKernelSet* out) {
  out->f32 = make_avg_pool_kernels<Avx512F32>();
  out->f64 = make_avg_pool_kernels<Avx512F64>();
  return true;
}

}  // namespace cpu
}  // namespace cnnops

#else
#include "avg_pool2d_kernels.h"
namespace cnnops {
namespace cpu {
bool avg_pool_kernels_avx512(AvgPoolKernelSet*) { return false; }
}  // namespace cpu
}  // namespace cnnops
#endif
