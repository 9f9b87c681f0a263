// The vector kernels of the active ISA: one table of the three builds
// (max_pool2d_{avx512,avx2,generic}.cpp), indexed by ../isa/isa.h's choice.
#include "max_pool2d_kernels.h"

#include "../isa/isa.h"

namespace cnnops {
namespace cpu {
namespace {

const PoolKernelSet& active_set() {
  static const PerIsa<PoolKernelSet> sets(pool_kernels_avx512, pool_kernels_avx2, pool_kernels_generic);
  return sets.active();
}

}  // namespace

template <typename T>
const PoolKernels<T>& active_pool_kernels() {
  return active_set().get<T>();
}
template const PoolKernels<float>& active_pool_kernels<float>();
template const PoolKernels<double>& active_pool_kernels<double>();

}  // namespace cpu
}  // namespace cnnops
