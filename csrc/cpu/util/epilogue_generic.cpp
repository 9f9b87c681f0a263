// Portable build of the fused output stage's runs (epilogue_simd.h): any CPU,
// any compiler; the compiler vectorises with the baseline ISA.
#include "../isa/generic.h"
#include "epilogue_simd.h"

namespace cnnops {
namespace cpu {

bool epilogue_runs_generic(EpilogueRunsSet* out) {
  out->f32 = make_epilogue_runs<ScalarTraits<float>>();
  out->f64 = make_epilogue_runs<ScalarTraits<double>>();
  return true;
}

}  // namespace cpu
}  // namespace cnnops
