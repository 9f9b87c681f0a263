// The vector kernels of the active ISA: one table of the three builds
// (depthwise_{avx512,avx2,generic}.cpp), indexed by ../isa/isa.h's choice.
#include "depthwise_kernels.h"

#include "../isa/isa.h"

namespace cnnops {
namespace cpu {
namespace {

const DepthwiseKernelSet& active_set() {
  static const PerIsa<DepthwiseKernelSet> sets(depthwise_kernels_avx512, depthwise_kernels_avx2,
                                               depthwise_kernels_generic);
  return sets.active();
}

}  // namespace

template <typename T>
const DepthwiseKernels<T>& active_depthwise_kernels() {
  return active_set().get<T>();
}
template const DepthwiseKernels<float>& active_depthwise_kernels<float>();
template const DepthwiseKernels<double>& active_depthwise_kernels<double>();

}  // namespace cpu
}  // namespace cnnops
