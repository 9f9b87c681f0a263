// Portable vector traits (see isa.h): one scalar per "register", for any CPU
// and compiler; the compiler may auto-vectorise with the baseline ISA. In an
// anonymous namespace, so each unit that includes this header has its own
// (see isa.h).
#pragma once
#include <cstdint>

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
  static Reg add(Reg a, Reg b) { return a + b; }
  static Reg sub(Reg a, Reg b) { return a - b; }
  static Reg clamp(Reg x, Reg lo, Reg hi) { return x < lo ? lo : (x > hi ? hi : x); }  // NaN kept
  static Reg load_masked(const T* p, uint32_t bits) { return (bits & 1) ? *p : Scalar(0); }
  static void store_masked(T* p, Reg x, uint32_t bits) {
    if (bits & 1) *p = x;
  }
  static Reg gather(const T* p, int32_t, uint32_t bits) { return (bits & 1) ? *p : Scalar(0); }
  static void max_update(Reg v, Reg t, Reg& m, Reg& tap) {
    if (v > m || v != v) {
      m = v;
      tap = t;
    }
  }
};

}  // namespace
}  // namespace cpu
}  // namespace cnnops
