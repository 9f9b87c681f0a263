// Portable build of conv2d's GEMM micro-kernel (microkernel_template.h), for
// any CPU and compiler: 4 x 8 scalars per call (narrow tile 8 x 4), written so the compiler may
// auto-vectorise with the baseline ISA.
#include "microkernel.h"
#include "../isa/generic.h"
#include "microkernel_template.h"

namespace cnnops {
namespace cpu {

bool microkernels_generic(MicroKernelSet* out) {
  out->f32 = make_microkernel<ScalarTraits<float>, 4, 8, 8, 4, 4, 4>();
  out->f64 = make_microkernel<ScalarTraits<double>, 4, 8, 8, 4, 4, 4>();
  return true;
}

}  // namespace cpu
}  // namespace cnnops
