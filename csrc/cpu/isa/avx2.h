// AVX2+FMA vector traits (see isa.h): 8 floats or 4 doubles per ymm register;
// lane masks become vector masks for maskload/maskstore. Include only in a unit
// compiled for AVX2, after
//   #pragma GCC target("avx2,fma")
// and only call that unit's code after the run-time check (isa.cpp) that the
// CPU supports AVX2 and FMA. The structs are in an anonymous namespace, so each
// unit that includes this header has its own (see isa.h).
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace cnnops {
namespace cpu {
namespace {

struct Avx2F32 {
  using T = float;
  using Reg = __m256;
  static constexpr int kWidth = 8;
  static Reg zero() { return _mm256_setzero_ps(); }
  static Reg set1(T x) { return _mm256_set1_ps(x); }
  static Reg load(const T* p) { return _mm256_loadu_ps(p); }
  static void store(T* p, Reg x) { _mm256_storeu_ps(p, x); }
  // Non-temporal store (p 32-byte aligned): the line goes to memory, not into the caches.
  static void stream(T* p, Reg x) { _mm256_stream_ps(p, x); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
  static Reg add(Reg a, Reg b) { return _mm256_add_ps(a, b); }
  static Reg sub(Reg a, Reg b) { return _mm256_sub_ps(a, b); }
  // lo where x < lo, hi where x > hi, else x (NaN kept: max/min return their
  // second operand when either is NaN).
  static Reg clamp(Reg x, Reg lo, Reg hi) { return _mm256_min_ps(hi, _mm256_max_ps(lo, x)); }
  // Lanes whose bit is set in `bits`; the others read as 0 and are not touched.
  static __m256i lanes(uint32_t bits) {
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(int(bits)), bit), bit);
  }
  static Reg load_masked(const T* p, uint32_t bits) { return _mm256_maskload_ps(p, lanes(bits)); }
  static void store_masked(T* p, Reg x, uint32_t bits) { _mm256_maskstore_ps(p, lanes(bits), x); }
  // Lane i = p[i * step] where bit i of `bits` is set (else 0, not read).
  static Reg gather(const T* p, int32_t step, uint32_t bits) {
    const __m256i index = _mm256_mullo_epi32(_mm256_set1_epi32(step), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return _mm256_mask_i32gather_ps(_mm256_setzero_ps(), p, index, _mm256_castsi256_ps(lanes(bits)), sizeof(T));
  }
  // Where v > m or v is NaN (torch's max-pool rule): m = v, tap = t.
  static void max_update(Reg v, Reg t, Reg& m, Reg& tap) {
    const Reg take = _mm256_or_ps(_mm256_cmp_ps(v, m, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    m = _mm256_blendv_ps(m, v, take);
    tap = _mm256_blendv_ps(tap, t, take);
  }
};

struct Avx2F64 {
  using T = double;
  using Reg = __m256d;
  static constexpr int kWidth = 4;
  static Reg zero() { return _mm256_setzero_pd(); }
  static Reg set1(T x) { return _mm256_set1_pd(x); }
  static Reg load(const T* p) { return _mm256_loadu_pd(p); }
  static void store(T* p, Reg x) { _mm256_storeu_pd(p, x); }
  static void stream(T* p, Reg x) { _mm256_stream_pd(p, x); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_pd(a, b, c); }
  static Reg add(Reg a, Reg b) { return _mm256_add_pd(a, b); }
  static Reg sub(Reg a, Reg b) { return _mm256_sub_pd(a, b); }
  // lo where x < lo, hi where x > hi, else x (NaN kept: max/min return their
  // second operand when either is NaN).
  static Reg clamp(Reg x, Reg lo, Reg hi) { return _mm256_min_pd(hi, _mm256_max_pd(lo, x)); }
  // Lanes whose bit is set in `bits`; the others read as 0 and are not touched.
  static __m256i lanes(uint32_t bits) {
    const __m256i bit = _mm256_setr_epi64x(1, 2, 4, 8);
    return _mm256_cmpeq_epi64(_mm256_and_si256(_mm256_set1_epi64x(bits), bit), bit);
  }
  static Reg load_masked(const T* p, uint32_t bits) { return _mm256_maskload_pd(p, lanes(bits)); }
  static void store_masked(T* p, Reg x, uint32_t bits) { _mm256_maskstore_pd(p, lanes(bits), x); }
  // Lane i = p[i * step] where bit i of `bits` is set (else 0, not read).
  static Reg gather(const T* p, int32_t step, uint32_t bits) {
    const __m128i index = _mm_mullo_epi32(_mm_set1_epi32(step), _mm_setr_epi32(0, 1, 2, 3));
    return _mm256_mask_i32gather_pd(_mm256_setzero_pd(), p, index, _mm256_castsi256_pd(lanes(bits)), sizeof(T));
  }
  // Where v > m or v is NaN (torch's max-pool rule): m = v, tap = t.
  static void max_update(Reg v, Reg t, Reg& m, Reg& tap) {
    const Reg take = _mm256_or_pd(_mm256_cmp_pd(v, m, _CMP_GT_OQ), _mm256_cmp_pd(v, v, _CMP_UNORD_Q));
    m = _mm256_blendv_pd(m, v, take);
    tap = _mm256_blendv_pd(tap, t, take);
  }
};

}  // namespace
}  // namespace cpu
}  // namespace cnnops
