// Portable build of the FMA peak probe (fma_probe.h), for any CPU and compiler.
#include "isa.h"
#include "generic.h"
#include "fma_probe.h"

namespace cnnops {
namespace cpu {

bool fma_probes_generic(FmaProbes* out) {
  out->f32 = &simd::fma_probe<ScalarTraits<float>>;
  out->f64 = &simd::fma_probe<ScalarTraits<double>>;
  return true;
}

}  // namespace cpu
}  // namespace cnnops
