// The GEMM micro-kernel of the active ISA: one table of the three builds
// (microkernel_{avx512,avx2,generic}.cpp), indexed by isa/isa.h's choice.
#include "microkernel.h"

#include "../isa/isa.h"
#include "conv2d.h"

namespace cnnops {
namespace cpu {
namespace {

const MicroKernelSet& active_set() {
  static const PerIsa<MicroKernelSet> sets(microkernels_avx512, microkernels_avx2,
                                           microkernels_generic);
  return sets.active();
}

}  // namespace

template <>
const MicroKernel<float>& active_microkernel<float>() {
  return active_set().f32;
}
template <>
const MicroKernel<double>& active_microkernel<double>() {
  return active_set().f64;
}

void microkernel_tile(bool float64, int64_t* mr, int64_t* nr) {
  *mr = float64 ? active_set().f64.mr : active_set().f32.mr;
  *nr = float64 ? active_set().f64.nr : active_set().f32.nr;
}

}  // namespace cpu
}  // namespace cnnops
