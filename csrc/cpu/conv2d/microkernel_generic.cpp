// Portable build of the micro-kernel (any CPU, any compiler): 4 x 8 scalars per
// call, written so the compiler may auto-vectorise with the baseline ISA.
#include "microkernel_template.h"
#include "vector_kernels_template.h"

namespace cnnops {
namespace cpu {
namespace {

template <typename Scalar>
struct ScalarTraits {
  using T = Scalar;
  using Reg = Scalar;
  static constexpr int kWidth = 1;
  static Reg zero() { return Scalar(0); }
  static Reg set1(T x) { return x; }
  static Reg load(const T* p) { return *p; }
  static void store(T* p, Reg x) { *p = x; }
  static void stream(T* p, Reg x) { *p = x; }  // no non-temporal store here
  static Reg fma(Reg a, Reg b, Reg c) { return a * b + c; }
  static Reg load_masked(const T* p, uint32_t bits) { return (bits & 1) ? *p : Scalar(0); }
  static void store_masked(T* p, Reg x, uint32_t bits) {
    if (bits & 1) *p = x;
  }
  static void max_update(Reg v, Reg t, Reg& m, Reg& tap) {
    if (v > m || v != v) {
      m = v;
      tap = t;
    }
  }
};

}  // namespace

bool microkernels_generic(MicroKernelSet* out) {
  out->isa = "generic";
  out->f32 = make_microkernel<ScalarTraits<float>, 4, 8>();
  out->f64 = make_microkernel<ScalarTraits<double>, 4, 8>();
  out->vf32 = make_vector_kernels<ScalarTraits<float>>();
  out->vf64 = make_vector_kernels<ScalarTraits<double>>();
  out->fma_probe_f32 = &fma_probe<ScalarTraits<float>>;
  out->fma_probe_f64 = &fma_probe<ScalarTraits<double>>;
  return true;
}

}  // namespace cpu
}  // namespace cnnops
