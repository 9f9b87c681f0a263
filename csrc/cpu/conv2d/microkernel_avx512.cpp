// AVX-512 build of the micro-kernel: 14 x 32 floats (28 zmm accumulators) and
// 14 x 16 doubles. The whole file is compiled for AVX-512 via a target pragma;
// it is only called after a run-time check that the CPU supports AVX-512F.
#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
#pragma GCC target("avx512f,avx512dq,avx512vl,avx2,fma")
#include <immintrin.h>

#include "microkernel_template.h"
#include "vector_kernels_template.h"

namespace cnnops {
namespace cpu {
namespace {

struct Avx512F32 {
  using T = float;
  using Reg = __m512;
  static constexpr int kWidth = 16;
  static Reg zero() { return _mm512_setzero_ps(); }
  static Reg set1(T x) { return _mm512_set1_ps(x); }
  static Reg load(const T* p) { return _mm512_loadu_ps(p); }
  static void store(T* p, Reg x) { _mm512_storeu_ps(p, x); }
  // Non-temporal store (p 64-byte aligned): the line goes to memory, not into the caches.
  static void stream(T* p, Reg x) { _mm512_stream_ps(p, x); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
  // Lanes whose bit is set in `bits`; the others read as 0 and are not touched.
  static Reg load_masked(const T* p, uint32_t bits) { return _mm512_maskz_loadu_ps(__mmask16(bits), p); }
  static void store_masked(T* p, Reg x, uint32_t bits) { _mm512_mask_storeu_ps(p, __mmask16(bits), x); }
  // Where v > m or v is NaN (torch's max-pool rule): m = v, tap = t.
  static void max_update(Reg v, Reg t, Reg& m, Reg& tap) {
    const auto take = _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    m = _mm512_mask_blend_ps(take, m, v);
    tap = _mm512_mask_blend_ps(take, tap, t);
  }
};

struct Avx512F64 {
  using T = double;
  using Reg = __m512d;
  static constexpr int kWidth = 8;
  static Reg zero() { return _mm512_setzero_pd(); }
  static Reg set1(T x) { return _mm512_set1_pd(x); }
  static Reg load(const T* p) { return _mm512_loadu_pd(p); }
  static void store(T* p, Reg x) { _mm512_storeu_pd(p, x); }
  static void stream(T* p, Reg x) { _mm512_stream_pd(p, x); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_pd(a, b, c); }
  // Lanes whose bit is set in `bits`; the others read as 0 and are not touched.
  static Reg load_masked(const T* p, uint32_t bits) { return _mm512_maskz_loadu_pd(__mmask8(bits), p); }
  static void store_masked(T* p, Reg x, uint32_t bits) { _mm512_mask_storeu_pd(p, __mmask8(bits), x); }
  // Where v > m or v is NaN (torch's max-pool rule): m = v, tap = t.
  static void max_update(Reg v, Reg t, Reg& m, Reg& tap) {
    const auto take = _mm512_cmp_pd_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q);
    m = _mm512_mask_blend_pd(take, m, v);
    tap = _mm512_mask_blend_pd(take, tap, t);
  }
};

}  // namespace

bool microkernels_avx512(MicroKernelSet* out) {
  out->isa = "avx512";
  out->f32 = make_microkernel<Avx512F32, 14, 2>();
  out->f64 = make_microkernel<Avx512F64, 14, 2>();
  out->vf32 = make_vector_kernels<Avx512F32>();
  out->vf64 = make_vector_kernels<Avx512F64>();
  out->fma_probe_f32 = &fma_probe<Avx512F32>;
  out->fma_probe_f64 = &fma_probe<Avx512F64>;
  return true;
}

}  // namespace cpu
}  // namespace cnnops

#else
#include "microkernel.h"
namespace cnnops { namespace cpu {
bool microkernels_avx512(MicroKernelSet*) { return false; }
}}  // namespace cnnops::cpu
#endif
