// Portable build of max_pool2d's vector kernels (max_pool2d_simd.h):
// any CPU, any compiler; the compiler may auto-vectorise with the baseline ISA.
#include "max_pool2d_kernels.h"
#include "../isa/generic.h"
#include "max_pool2d_simd.h"

namespace cnnops {
namespace cpu {

bool pool_kernels_generic(PoolKernelSet* out) {
  out->f32 = make_pool_kernels<ScalarTraits<float>>();
  out->f64 = make_pool_kernels<ScalarTraits<double>>();
  return true;
}

}  // namespace cpu
}  // namespace cnnops
