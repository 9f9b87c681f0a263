// The GEMM micro-kernel of the active ISA: one table of the three builds
// (microkernel_{avx512,avx2,generic}.cpp), indexed by isa/isa.h's choice.
#include "microkernel.h"

#include "../isa/isa.h"
#include "conv2d.h"

namespace cnnops {
namespace cpu {
namespace {

const MicroKernelSet& active_set() {
  static const PerIsa<MicroKernelSet> sets(microkernels_avx512, microkernels_avx2, microkernels_generic);
  return sets.active();
}

}  // namespace

template <typename T>
const MicroKernel<T>& active_microkernel() {
  return active_set().get<T>();
}
template const MicroKernel<float>& active_microkernel<float>();
template const MicroKernel<double>& active_microkernel<double>();

void microkernel_tile(bool float64, int64_t* mr, int64_t* nr) {
  *mr = float64 ? active_microkernel<double>().mr : active_microkernel<float>().mr;
  *nr = float64 ? active_microkernel<double>().nr : active_microkernel<float>().nr;
}

}  // namespace cpu
}  // namespace cnnops
