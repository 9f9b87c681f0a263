// The activations of the fused output stage (Epilogue in params.h), one scalar
// function for the CPU and CUDA kernels alike, with torch's definitions: NaN
// passes through ReLU and ReLU6 as it does in torch; GELU is the erf form,
// GELUTanh torch's approximate='tanh'. Float or double (CUDA's half types are
// widened to float by the caller).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "params.h"

// Always inlined: the CPU's per-ISA units (cpu/util/epilogue_*.cpp) compile
// these under different target pragmas, and a shared out-of-line copy could
// run one unit's instructions on a CPU without them (see cpu/isa/isa.h).
#ifdef __CUDACC__
#define CNNOPS_ACTIVATION __host__ __device__ __forceinline__
#else
#define CNNOPS_ACTIVATION inline __attribute__((always_inline))
#endif

namespace cnnops {

template <typename T>
CNNOPS_ACTIVATION T clamp_0_6(T v) {
  return v < T(0) ? T(0) : (v > T(6) ? T(6) : v);  // NaN compares false both ways: kept
}

// e^x for float in straight-line arithmetic that the CPU compilers vectorise
// (std::exp is a call per element): x = n ln2 + r with |r| <= ln2/2 (ln2 in
// two parts, so r is exact), e^r by its degree-6 Taylor polynomial (relative
// error below 1.3e-7, about one float ulp) and 2^n written into the exponent.
// Out of range, the result is replaced afterwards (0 below -87.33, where e^x is
// no longer a normal float; inf above 88.72). Clamping x first instead made
// the compiler also evaluate every lane at the clamp value, in denormals,
// which the CPU handles a hundred times slower.
CNNOPS_ACTIVATION float exp_vectorisable(float x) {
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float t = x * 1.44269504088896341f + shifter;
  const float n = t - shifter;
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-06f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const uint32_t bits = (static_cast<uint32_t>(static_cast<int32_t>(n)) + 127u) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  float e = p * scale;
  e = x < -87.33f ? 0.0f : e;
  e = x > 88.72f ? HUGE_VALF : e;
  return e;
}

// 1 + erf(x) for float, vectorisable, as GELU needs it: erfc(|x|) by the
// Chebyshev fit of Numerical Recipes' erfcc (relative error below 1.2e-7 for
// every x), so the negative side, where 1 + erf(x) = erfc(-x) is small, keeps
// its relative accuracy instead of cancelling.
CNNOPS_ACTIVATION float one_plus_erf_vectorisable(float x) {
  const float z = x < 0.0f ? -x : x;
  const float t = 1.0f / (1.0f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  const float erfc = t * exp_vectorisable(p - z * z);
  return x < 0.0f ? erfc : 2.0f - erfc;
}

// tanh(x) = 1 - 2 / (1 + e^(2x)) for float, vectorisable (absolute error about
// one float ulp of 1, which is what 1 + tanh in GELU's tanh form sees).
CNNOPS_ACTIVATION float tanh_vectorisable(float x) {
  return 1.0f - 2.0f / (1.0f + exp_vectorisable(2.0f * x));
}

// The CPU's float activations use the forms above; double, and CUDA, the
// library's functions.
template <typename T>
CNNOPS_ACTIVATION T exp_for_activation(T x) {
#ifndef __CUDA_ARCH__
  if constexpr (sizeof(T) == sizeof(float)) return exp_vectorisable(x);
#endif
  return std::exp(x);
}
template <typename T>
CNNOPS_ACTIVATION T one_plus_erf_for_activation(T x) {
#ifndef __CUDA_ARCH__
  if constexpr (sizeof(T) == sizeof(float)) return one_plus_erf_vectorisable(x);
#endif
  return T(1) + std::erf(x);
}
template <typename T>
CNNOPS_ACTIVATION T tanh_for_activation(T x) {
#ifndef __CUDA_ARCH__
  if constexpr (sizeof(T) == sizeof(float)) return tanh_vectorisable(x);
#endif
  return std::tanh(x);
}

template <Activation A, typename T>
CNNOPS_ACTIVATION T activate(T v) {
  if constexpr (A == Activation::ReLU) return v < T(0) ? T(0) : v;
  else if constexpr (A == Activation::ReLU6) return clamp_0_6(v);
  else if constexpr (A == Activation::SiLU) return v / (T(1) + exp_for_activation(-v));
  else if constexpr (A == Activation::Hardswish) return v * clamp_0_6(v + T(3)) / T(6);
  else if constexpr (A == Activation::Hardsigmoid) return clamp_0_6(v + T(3)) / T(6);
  else if constexpr (A == Activation::GELU)
    return T(0.5) * v * one_plus_erf_for_activation(v * T(0.70710678118654752440));
  else if constexpr (A == Activation::GELUTanh) {
    const T inner = T(0.79788456080286535588) * (v + T(0.044715) * v * v * v);  // sqrt(2/pi)
    return T(0.5) * v * (T(1) + tanh_for_activation(inner));
  } else {
    return v;
  }
}

// activate<a>(v) for a run-time a (a switch per call: for scalar code; loops
// switch once outside, see cpu/util/epilogue.h).
template <typename T>
CNNOPS_ACTIVATION T activate(Activation a, T v) {
  switch (a) {
    case Activation::ReLU:
      return activate<Activation::ReLU>(v);
    case Activation::ReLU6:
      return activate<Activation::ReLU6>(v);
    case Activation::SiLU:
      return activate<Activation::SiLU>(v);
    case Activation::Hardswish:
      return activate<Activation::Hardswish>(v);
    case Activation::Hardsigmoid:
      return activate<Activation::Hardsigmoid>(v);
    case Activation::GELU:
      return activate<Activation::GELU>(v);
    case Activation::GELUTanh:
      return activate<Activation::GELUTanh>(v);
    default:
      return v;
  }
}

}  // namespace cnnops
