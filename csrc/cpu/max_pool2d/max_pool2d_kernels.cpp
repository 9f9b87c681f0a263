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

template <>
const PoolKernels<float>& active_pool_kernels<float>() {
  return active_set().f32;
}
template <>
const PoolKernels<double>& active_pool_kernels<double>() {
  return active_set().f64;
}

}  // namespace cpu
}  // namespace cnnops
