// AVX2+FMA build of the FMA peak probe (fma_probe.h).
// The whole unit is compiled for AVX2+FMA via the target pragma; the
// functions it fills in run only after the run-time check (isa.cpp) that
// the CPU supports AVX2 and FMA.
#include "isa.h"

#if CNNOPS_CPU_X86_UNITS
#pragma GCC target("avx2,fma")
#include "avx2.h"
#include "fma_probe.h"

namespace cnnops {
namespace cpu {

bool fma_probes_avx2(FmaProbes* out) {
  out->f32 = &simd::fma_probe<Avx2F32>;
  out->f64 = &simd::fma_probe<Avx2F64>;
  return true;
}

}  // namespace cpu
}  // namespace cnnops

#else
namespace cnnops {
namespace cpu {
bool fma_probes_avx2(FmaProbes*) { return false; }
}  // namespace cpu
}  // namespace cnnops
#endif
