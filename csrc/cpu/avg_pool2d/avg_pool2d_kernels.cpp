// The vector kernels of the active ISA: one table of the three builds
// (avg_pool2d_{avx512,avx2,generic}.cpp), indexed by ../isa/isa.h's choice.
#include "avg_pool2d_kernels.h"

#include "../isa/isa.h"

namespace cnnops {
namespace cpu {
namespace {

const AvgPoolKernelSet& active_set() {
  static const PerIsa<AvgPoolKernelSet> sets(avg_pool_kernels_avx512, avg_pool_kernels_avx2,
                                             avg_pool_kernels_generic);
  return sets.active();
}

}  // namespace

template <typename T>
const AvgPoolKernels<T>& active_avg_pool_kernels() {
  return active_set().get<T>();
}
template const AvgPoolKernels<float>& active_avg_pool_kernels<float>();
template const AvgPoolKernels<double>& active_avg_pool_kernels<double>();

}  // namespace cpu
}  // namespace cnnops
