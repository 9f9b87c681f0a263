// Portable build of avg_pool2d's vector kernels (avg_pool2d_simd.h):
// any CPU, any compiler; the compiler may auto-vectorise with the baseline ISA.
#include "avg_pool2d_kernels.h"
#include "../isa/generic.h"
#include "avg_pool2d_simd.h"

namespace cnnops {
namespace cpu {

bool avg_pool_kernels_generic(AvgPoolKernelSet* out) {
  out->f32 = make_avg_pool_kernels<ScalarTraits<float>>();
  out->f64 = make_avg_pool_kernels<ScalarTraits<double>>();
  return true;
}

}  // namespace cpu
}  // namespace cnnops
