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
  static Reg sub(Reg a, Reg b) { return _mm512_sub_ps(a, b); }
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
  // The 16 x 16 transpose of r[0..15] (rows in, columns out), in registers: pairs,
  // then quads interleaved, then 128-bit lanes in two shuffle rounds.
  static constexpr bool kTranspose = true;
  static void transpose(Reg (&r)[kWidth]) {
    Reg t[kWidth];
    for (int i = 0; i < 16; i += 2) {
      t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    auto pd = [](Reg x) { return _mm512_castps_pd(x); };
    for (int i = 0; i < 16; i += 4) {
      r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(t[i]), pd(t[i + 2])));
      r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(t[i]), pd(t[i + 2])));
      r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(t[i + 1]), pd(t[i + 3])));
      r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(t[i + 1]), pd(t[i + 3])));
    }
    for (int h = 0; h < 16; h += 8)
      for (int i = 0; i < 4; ++i) {
        t[h + i] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0x88);
        t[h + i + 4] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0xdd);
      }
    for (int i = 0; i < 8; ++i) {
      r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
      r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
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
  static Reg sub(Reg a, Reg b) { return _mm512_sub_pd(a, b); }
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
  // The 8 x 8 transpose of r[0..7] in registers (as Avx512F32's, one round fewer).
  static constexpr bool kTranspose = true;
  static void transpose(Reg (&r)[kWidth]) {
    Reg t[kWidth];
    for (int i = 0; i < 8; i += 2) {
      t[i] = _mm512_unpacklo_pd(r[i], r[i + 1]);
      t[i + 1] = _mm512_unpackhi_pd(r[i], r[i + 1]);
    }
    for (int h = 0; h < 8; h += 4)
      for (int i = 0; i < 2; ++i) {
        r[h + i] = _mm512_shuffle_f64x2(t[h + i], t[h + i + 2], 0x88);
        r[h + i + 2] = _mm512_shuffle_f64x2(t[h + i], t[h + i + 2], 0xdd);
      }
    for (int i = 0; i < 4; ++i) {
      t[i] = _mm512_shuffle_f64x2(r[i], r[i + 4], 0x88);
      t[i + 4] = _mm512_shuffle_f64x2(r[i], r[i + 4], 0xdd);
    }
    for (int i = 0; i < 8; ++i) r[i] = t[i];
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
