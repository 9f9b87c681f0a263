// Depthwise forward on the CPU.
//   planes (any strides; NCHW the fast case): parallel over (n, c) input planes,
//     each producing its M output planes. An output row accumulates R*S shifted
//     input rows; each tap reads a contiguous phase row (phase_rows.h, zero
//     padding), so the multiply-add loop vectorises along the row.
//   channels_last (x and y channels-innermost): parallel over output rows;
//     the filter is transposed once to (R*S, K) so the loop over channels is
//     contiguous in x, w and y. The inner loops are the ISA-dispatched vector
//     kernels (depthwise_kernels.h): with depth multiplier 1, stencil_row runs the
//     row's interior (weights held in registers across its pixels) and
//     taps_madd the border pixels; axpy runs the NCHW row updates. Stride 1
//     on planes goes to the flat-plane stencils (depthwise_flat.cpp), and
//     channels_last 3x3 stride 1 padding 1 to depthwise_cl3x3.cpp.
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "depthwise.h"
#include "depthwise_kernels.h"
#include "../util/phase_rows.h"
#include "../../common/shape.h"

namespace cnnops {
namespace cpu {
namespace {

template <typename T>
void fprop_planes(const Conv2dParams& p) {
  const T* x = static_cast<const T*>(p.x);
  const T* w = static_cast<const T*>(p.w);
  T* y = static_cast<T*>(p.y);
  const T* bias = static_cast<const T*>(p.bias);
  const int64_t M = p.K / p.C, sw = p.stride_w;
  const int64_t len = phase_len(p.Q, effective_kernel(p.S, p.dil_w), sw);
  const DepthwiseKernels<T>& vk = active_depthwise_kernels<T>();
  at::parallel_for(0, p.N * p.C, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> phases(sw * len), acc(M * p.Q);
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t n = plane / p.C, c = plane % p.C;
      const T* xp = x + n * p.x_strides[0] + c * p.x_strides[1];
      for (int64_t pp = 0; pp < p.P; ++pp) {
        for (int64_t m = 0; m < M; ++m)
          std::fill(acc.begin() + m * p.Q, acc.begin() + (m + 1) * p.Q, bias ? bias[c * M + m] : T(0));
        for (int64_t r = 0; r < p.R; ++r) {
          const int64_t h = pp * p.stride_h - p.pad_h + r * p.dil_h;
          if (h < 0 || h >= p.H) continue;
          split_phases(xp + h * p.x_strides[2], p.W, p.x_strides[3], p.pad_w, sw, len, T(0), phases.data());
          for (int64_t m = 0; m < M; ++m) {
            const T* wk = w + (c * M + m) * p.w_strides[0] + r * p.w_strides[2];
            T* __restrict a = acc.data() + m * p.Q;
            for (int64_t s = 0; s < p.S; ++s) {
              const int64_t o = s * p.dil_w;
              const T* __restrict src = phases.data() + (o % sw) * len + o / sw;
              vk.axpy(p.Q, wk[s * p.w_strides[3]], src, a);
            }
          }
        }
        for (int64_t m = 0; m < M; ++m) {
          T* yr = y + n * p.y_strides[0] + (c * M + m) * p.y_strides[1] + pp * p.y_strides[2];
          const T* a = acc.data() + m * p.Q;
          if (p.y_strides[3] == 1) std::copy(a, a + p.Q, yr);
          else
            for (int64_t q = 0; q < p.Q; ++q) yr[q * p.y_strides[3]] = a[q];
        }
      }
      depthwise_finish<T>(p, n, 0, p.P, 0, p.Q, c * M, (c + 1) * M);
    }
  });
}

template <typename T>
void fprop_channels_last(const Conv2dParams& p) {
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  const T* bias = static_cast<const T*>(p.bias);
  const int64_t K = p.K, M = K / p.C, RS = p.R * p.S;
  const std::vector<T> wt = depthwise_filter_taps_major<T>(p);  // (r, s, k)
  const DepthwiseKernels<T>& vk = active_depthwise_kernels<T>();
  const bool rows_fast = M == 1;
  int64_t qa = 0, qb = 0;
  if (rows_fast) interior_columns(p.Q, p.W, p.stride_w, p.pad_w, effective_kernel(p.S, p.dil_w), &qa, &qb);
  at::parallel_for(0, p.N * p.P, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> acc(K);
    std::vector<const T*> rows(RS), wts(RS);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / p.P, pp = row % p.P;
      const T* xn = x + n * p.x_strides[0];
      T* yr = y + n * p.y_strides[0] + pp * p.y_strides[2];
      for (int64_t q = 0; q < p.Q; ++q) {
        if (q == qa && qb > qa) {  // the interior: all column taps inside
          int64_t nt = 0;
          for (int64_t r = 0; r < p.R; ++r) {
            const int64_t h = pp * p.stride_h - p.pad_h + r * p.dil_h;
            if (h < 0 || h >= p.H) continue;
            for (int64_t s = 0; s < p.S; ++s, ++nt) {
              rows[nt] = xn + h * p.x_strides[2] + (qa * p.stride_w - p.pad_w + s * p.dil_w) * p.x_strides[3];
              wts[nt] = wt.data() + (r * p.S + s) * K;
            }
          }
          vk.stencil_row(qb - qa, K, nt, rows.data(), p.stride_w * p.x_strides[3], wts.data(), bias,
                         yr + qa * p.y_strides[3], p.y_strides[3]);
          q = qb - 1;
          continue;
        }
        if (M == 1) {
          for (int64_t r = 0; r < p.R; ++r) {
            const int64_t h = pp * p.stride_h - p.pad_h + r * p.dil_h;
            for (int64_t s = 0; s < p.S; ++s) {
              const int64_t wc = q * p.stride_w - p.pad_w + s * p.dil_w;
              const bool inside = h >= 0 && h < p.H && wc >= 0 && wc < p.W;
              rows[r * p.S + s] = inside ? xn + h * p.x_strides[2] + wc * p.x_strides[3] : nullptr;
            }
          }
          vk.taps_madd(K, RS, rows.data(), wt.data(), bias, yr + q * p.y_strides[3]);
          continue;
        }
        T* __restrict a = acc.data();
        for (int64_t k = 0; k < K; ++k) a[k] = bias ? bias[k] : T(0);
        for (int64_t r = 0; r < p.R; ++r) {
          const int64_t h = pp * p.stride_h - p.pad_h + r * p.dil_h;
          if (h < 0 || h >= p.H) continue;
          for (int64_t s = 0; s < p.S; ++s) {
            const int64_t wc = q * p.stride_w - p.pad_w + s * p.dil_w;
            if (wc < 0 || wc >= p.W) continue;
            const T* __restrict xr = xn + h * p.x_strides[2] + wc * p.x_strides[3];
            const T* __restrict wr = wt.data() + (r * p.S + s) * K;
            for (int64_t k = 0; k < K; ++k) a[k] += xr[k / M] * wr[k];
          }
        }
        std::copy(a, a + K, yr + q * p.y_strides[3]);
      }
      depthwise_finish<T>(p, n, pp, pp + 1, 0, p.Q, 0, K);
    }
  });
}

template <typename T>
void fprop(const Conv2dParams& p) {
  if (depthwise_channels_last(p)) fprop_channels_last<T>(p);
  else fprop_planes<T>(p);
}

}  // namespace

void depthwise_fprop(const Conv2dParams& p) {
  if (depthwise_cl3x3_applies(p)) return depthwise_fprop_cl3x3(p);
  if (depthwise_flat_applies(p)) return depthwise_fprop_flat(p);
  if (p.dtype == DType::Float64) fprop<double>(p);
  else fprop<float>(p);
}

}  // namespace cpu
}  // namespace cnnops
