// AVX-512 vector traits (see isa.h): 16 floats or 8 doubles per zmm register,
// lane masks in k registers. Include only in a unit compiled for AVX-512, after
//   #pragma GCC target("avx512f,avx512dq,avx512vl,avx2,fma")
// and only call that unit's code after the run-time check (isa.cpp) that the
// CPU supports AVX-512F/DQ/VL. The structs are in an anonymous namespace, so
// each unit that includes this header has its own (see isa.h).
#pragma once
#include <immintrin.h>

#include <cstdint>

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
  static Reg add(Reg a, Reg b) { return _mm512_add_ps(a, b); }
  // lo where x < lo, hi where x > hi, else x (NaN kept: max/min return their
  // second operand when either is NaN).
  static Reg clamp(Reg x, Reg lo, Reg hi) { return _mm512_min_ps(hi, _mm512_max_ps(lo, x)); }
  // Lanes whose bit is set in `bits`; the others read as 0 and are not touched.
  static Reg load_masked(const T* p, uint32_t bits) { return _mm512_maskz_loadu_ps(__mmask16(bits), p); }
  static void store_masked(T* p, Reg x, uint32_t bits) { _mm512_mask_storeu_ps(p, __mmask16(bits), x); }
  // Lane i = p[i * step] where bit i of `bits` is set (else 0, not read).
  static Reg gather(const T* p, int32_t step, uint32_t bits) {
    const __m512i index = _mm512_mullo_epi32(_mm512_set1_epi32(step),
                                             _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), __mmask16(bits), index, p, sizeof(T));
  }
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
  static Reg add(Reg a, Reg b) { return _mm512_add_pd(a, b); }
  // lo where x < lo, hi where x > hi, else x (NaN kept: max/min return their
  // second operand when either is NaN).
  static Reg clamp(Reg x, Reg lo, Reg hi) { return _mm512_min_pd(hi, _mm512_max_pd(lo, x)); }
  // Lanes whose bit is set in `bits`; the others read as 0 and are not touched.
  static Reg load_masked(const T* p, uint32_t bits) { return _mm512_maskz_loadu_pd(__mmask8(bits), p); }
  static void store_masked(T* p, Reg x, uint32_t bits) { _mm512_mask_storeu_pd(p, __mmask8(bits), x); }
  // Lane i = p[i * step] where bit i of `bits` is set (else 0, not read).
  static Reg gather(const T* p, int32_t step, uint32_t bits) {
    const __m256i index = _mm256_mullo_epi32(_mm256_set1_epi32(step), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return _mm512_mask_i32gather_pd(_mm512_setzero_pd(), __mmask8(bits), index, p, sizeof(T));
  }
  // Where v > m or v is NaN (torch's max-pool rule): m = v, tap = t.
  static void max_update(Reg v, Reg t, Reg& m, Reg& tap) {
    const auto take = _mm512_cmp_pd_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q);
    m = _mm512_mask_blend_pd(take, m, v);
    tap = _mm512_mask_blend_pd(take, tap, t);
  }
};

}  // namespace
}  // namespace cpu
}  // namespace cnnops
