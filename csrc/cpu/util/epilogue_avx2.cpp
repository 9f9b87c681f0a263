// AVX2+FMA build of the fused output stage's runs (epilogue_simd.h). The whole
// unit is compiled for AVX2+FMA via the target pragma; the functions it fills in
// run only after the run-time check (isa.cpp) that the CPU supports it.
#include "../isa/isa.h"

#if CNNOPS_CPU_X86_UNITS
#pragma GCC target("avx2,fma")
#include "../isa/avx2.h"
#include "epilogue_simd.h"

namespace cnnops {
namespace cpu {

bool epilogue_runs_avx2(EpilogueRunsSet* out) {
  out->f32 = make_epilogue_runs<Avx2F32>();
  out->f64 = make_epilogue_runs<Avx2F64>();
  return true;
}

}  // namespace cpu
}  // namespace cnnops

#else
#include "epilogue.h"
namespace cnnops {
namespace cpu {
bool epilogue_runs_avx2(EpilogueRunsSet*) { return false; }
}  // namespace cpu
}  // namespace cnnops
#endif
