// AVX-512 build of the FMA peak probe (fma_probe.h).
// The whole unit is compiled for AVX-512 via the target pragma; the
// functions it fills in run only after the run-time check (isa.cpp) that
// the CPU supports AVX-512F/DQ/VL.
#include "isa.h"

#if CNNOPS_CPU_X86_UNITS
#pragma GCC target("avx512f,avx512dq,avx512vl,avx2,fma")
#include "avx512.h"
#include "fma_probe.h"

namespace cnnops {
namespace cpu {

bool fma_probes_avx512(FmaProbes* out) {
  out->f32 = &simd::fma_probe<Avx512F32>;
  out->f64 = &simd::fma_probe<Avx512F64>;
  return true;
}

}  // namespace cpu
}  // namespace cnnops

#else
namespace cnnops {
namespace cpu {
bool fma_probes_avx512(FmaProbes*) { return false; }
}  // namespace cpu
}  // namespace cnnops
#endif
