// The fused output stage's runs (FinishRuns in epilogue.h), written once as
// scalar loops with the activations of common/activation.h and compiled per
// ISA: each unit (epilogue_{avx512,avx2,generic}.cpp) sets its target pragma
// and includes this header, and the compiler vectorises the loops at that
// width. Templates on the ISA's traits type V (only for V::T and to give each
// unit its own copy, see isa/isa.h); the activations are always inlined.
#pragma once
#include <cstdint>

#include "../../common/activation.h"
#include "epilogue.h"

namespace cnnops {
namespace cpu {
namespace simd {

template <typename V, Activation A, Activation B>
void finish_runs(typename V::T* y, int64_t ys, int64_t run_y, const typename V::T* r, int64_t rs,
                 int64_t run_r, int64_t n, int64_t runs) {
  using T = typename V::T;
  for (int64_t t = 0; t < runs; ++t) {
    T* __restrict yt = y + t * run_y;
    const T* __restrict rt = r == nullptr ? nullptr : r + t * run_r;
    if (ys == 1 && rt == nullptr) {
      for (int64_t i = 0; i < n; ++i) yt[i] = activate<B>(activate<A>(yt[i]));
    } else if (ys == 1 && rs == 1) {
      for (int64_t i = 0; i < n; ++i) yt[i] = activate<B>(activate<A>(yt[i]) + rt[i]);
    } else {
      for (int64_t i = 0; i < n; ++i)
        yt[i * ys] = activate<B>(activate<A>(yt[i * ys]) + (rt == nullptr ? T(0) : rt[i * rs]));
    }
  }
}

template <typename V, Activation A>
void fill_post(FinishRuns<typename V::T>* row) {
  row[int(Activation::None)] = &finish_runs<V, A, Activation::None>;
  row[int(Activation::ReLU)] = &finish_runs<V, A, Activation::ReLU>;
  row[int(Activation::ReLU6)] = &finish_runs<V, A, Activation::ReLU6>;
  row[int(Activation::SiLU)] = &finish_runs<V, A, Activation::SiLU>;
  row[int(Activation::Hardswish)] = &finish_runs<V, A, Activation::Hardswish>;
  row[int(Activation::Hardsigmoid)] = &finish_runs<V, A, Activation::Hardsigmoid>;
  row[int(Activation::GELU)] = &finish_runs<V, A, Activation::GELU>;
  row[int(Activation::GELUTanh)] = &finish_runs<V, A, Activation::GELUTanh>;
}

}  // namespace simd

template <typename V>
EpilogueRuns<typename V::T> make_epilogue_runs() {
  EpilogueRuns<typename V::T> e;
  simd::fill_post<V, Activation::None>(e.fn[int(Activation::None)]);
  simd::fill_post<V, Activation::ReLU>(e.fn[int(Activation::ReLU)]);
  simd::fill_post<V, Activation::ReLU6>(e.fn[int(Activation::ReLU6)]);
  simd::fill_post<V, Activation::SiLU>(e.fn[int(Activation::SiLU)]);
  simd::fill_post<V, Activation::Hardswish>(e.fn[int(Activation::Hardswish)]);
  simd::fill_post<V, Activation::Hardsigmoid>(e.fn[int(Activation::Hardsigmoid)]);
  simd::fill_post<V, Activation::GELU>(e.fn[int(Activation::GELU)]);
  simd::fill_post<V, Activation::GELUTanh>(e.fn[int(Activation::GELUTanh)]);
  return e;
}

}  // namespace cpu
}  // namespace cnnops
