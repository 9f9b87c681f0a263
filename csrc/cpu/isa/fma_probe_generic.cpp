// Portable build of the FMA peak probe (fma_probe.h):
// any CPU, any compiler; the compiler may auto-vectorise with the baseline ISA.
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
