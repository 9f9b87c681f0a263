// The fused output stage on the CPU (Epilogue in common/params.h): a kernel
// calls apply_epilogue on each rectangle of its output right after writing it
// for the last time, so the stage reads the block from L1/L2, not memory. The
// rectangle's contiguous axis (channels for channels_last, columns for NCHW)
// is walked in runs; each run is activated, added to and activated again with
// the switch on the activation outside the loop, so the simple ones vectorise.
// Strided runs go through a small buffer. float and double.
#pragma once
#include <algorithm>
#include <cstdint>

#include "../../common/activation.h"
#include "../../common/params.h"

namespace cnnops {
namespace cpu {

namespace epilogue_detail {

template <Activation A, typename T>
void activate_run(T* __restrict v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) v[i] = activate<A>(v[i]);
}

template <typename T>
void activate_run(Activation a, T* v, int64_t n) {
  switch (a) {
    case Activation::None:
      return;
    case Activation::ReLU:
      return activate_run<Activation::ReLU>(v, n);
    case Activation::ReLU6:
      return activate_run<Activation::ReLU6>(v, n);
    case Activation::SiLU:
      return activate_run<Activation::SiLU>(v, n);
    case Activation::Hardswish:
      return activate_run<Activation::Hardswish>(v, n);
    case Activation::Hardsigmoid:
      return activate_run<Activation::Hardsigmoid>(v, n);
    case Activation::GELU:
      return activate_run<Activation::GELU>(v, n);
    case Activation::GELUTanh:
      return activate_run<Activation::GELUTanh>(v, n);
  }
}

// y[i*ys] = post(act(y[i*ys]) + r[i*rs]) for i < n (r may be null).
template <typename T>
void finish_run(const Epilogue& e, T* y, int64_t ys, const T* r, int64_t rs, int64_t n) {
  constexpr int64_t kChunk = 256;
  T buf[kChunk];
  for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
    const int64_t len = std::min(kChunk, n - i0);
    T* v = ys == 1 ? y + i0 : buf;
    if (ys != 1)
      for (int64_t i = 0; i < len; ++i) buf[i] = y[(i0 + i) * ys];
    activate_run(e.act, v, len);
    if (r != nullptr) {
      const T* __restrict ri = r + i0 * rs;
      if (rs == 1)
        for (int64_t i = 0; i < len; ++i) v[i] += ri[i];
      else
        for (int64_t i = 0; i < len; ++i) v[i] += ri[i * rs];
    }
    activate_run(e.post, v, len);
    if (ys != 1)
      for (int64_t i = 0; i < len; ++i) y[(i0 + i) * ys] = buf[i];
  }
}

}  // namespace epilogue_detail

// Applies e to y[n, k0:k1, p0:p1, q0:q1] of an output with NCHW-order strides ys.
template <typename T>
void apply_epilogue(const Epilogue& e, T* y, const int64_t* ys, int64_t n, int64_t p0, int64_t p1, int64_t q0,
                    int64_t q1, int64_t k0, int64_t k1) {
  if (e.identity() || p0 >= p1 || q0 >= q1 || k0 >= k1) return;
  const T* r = static_cast<const T*>(e.residual);
  const int64_t* rs = e.residual_strides;
  auto yat = [&](int64_t k, int64_t p, int64_t q) {
    return y + n * ys[0] + k * ys[1] + p * ys[2] + q * ys[3];
  };
  auto rat = [&](int64_t k, int64_t p, int64_t q) {
    return r == nullptr ? nullptr : r + n * rs[0] + k * rs[1] + p * rs[2] + q * rs[3];
  };
  if (ys[1] < ys[3]) {  // channels innermost: a run per pixel
    for (int64_t p = p0; p < p1; ++p)
      for (int64_t q = q0; q < q1; ++q)
        epilogue_detail::finish_run(e, yat(k0, p, q), ys[1], rat(k0, p, q), rs[1], k1 - k0);
  } else {  // columns innermost: a run per channel row
    for (int64_t k = k0; k < k1; ++k)
      for (int64_t p = p0; p < p1; ++p)
        epilogue_detail::finish_run(e, yat(k, p, q0), ys[3], rat(k, p, q0), rs[3], q1 - q0);
  }
}

// The same for the flat pixels [m0, m0 + mn) (m = (n*P + p)*Q + q) and
// channels [k0, k0 + kn): cut into rectangles along output rows.
template <typename T>
void apply_epilogue_pixels(const Epilogue& e, T* y, const int64_t* ys, int64_t P, int64_t Q, int64_t m0,
                           int64_t mn, int64_t k0, int64_t kn) {
  if (e.identity()) return;
  for (int64_t m = m0, end = m0 + mn; m < end;) {
    const int64_t n = m / (P * Q), p = m / Q % P, q = m % Q;
    if (q == 0 && end - m >= Q) {  // whole rows of one image at once
      const int64_t rows = std::min((end - m) / Q, P - p);
      apply_epilogue(e, y, ys, n, p, p + rows, 0, Q, k0, k0 + kn);
      m += rows * Q;
    } else {
      const int64_t q1 = std::min(Q, q + (end - m));
      apply_epilogue(e, y, ys, n, p, p + 1, q, q1, k0, k0 + kn);
      m += q1 - q;
    }
  }
}

}  // namespace cpu
}  // namespace cnnops
