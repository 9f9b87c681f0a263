// Portable build of depthwise's vector kernels (depthwise_simd.h):
// any CPU, any compiler; the compiler may auto-vectorise with the baseline ISA.
#include "depthwise_kernels.h"
#include "../isa/generic.h"
#include "depthwise_simd.h"

namespace cnnops {
namespace cpu {

bool depthwise_kernels_generic(DepthwiseKernelSet* out) {
  out->f32 = make_depthwise_kernels<ScalarTraits<float>>();
  out->f64 = make_depthwise_kernels<ScalarTraits<double>>();
  return true;
}

}  // namespace cpu
}  // namespace cnnops
