// Depthwise input gradient on the CPU:
//   dx[n, c, h, w] = sum over m, r, s of dy[n, c*M + m, p, q] * w[c*M + m, r, s]
//   where h = p*stride_h - pad_h + r*dil_h and w = q*stride_w - pad_w + s*dil_w.
//   planes (any strides; NCHW the fast case): parallel over (n, c) planes; each
//     dx row is built in a padded row buffer by adding every (m, r, s) tap's dy
//     row at its offset (contiguous for stride 1, so it vectorises), in a fixed
//     order: deterministic.
//   channels_last (dx and dy channels-innermost): parallel over input rows,
//     gathering the taps that reach each pixel; the channel loop vectorises
//     (taps_madd), and with stride 1 and multiplier 1 a row's interior runs in
//     stencil_row (weights in registers across pixels).
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "depthwise_cpu.h"
#include "microkernel.h"
#include "../kernels/shape.h"

namespace cnnops {
namespace cpu {
namespace {

template <typename T>
void dgrad_planes(const Conv2dParams& p) {
  T* dx = static_cast<T*>(p.x);
  const T* w = static_cast<const T*>(p.w);
  const T* dy = static_cast<const T*>(p.y);
  const int64_t M = p.K / p.C, sw = p.stride_w;
  const int64_t ew = effective_kernel(p.S, p.dil_w);
  const int64_t len = std::max(p.pad_w + p.W, (p.Q - 1) * sw + ew);
  at::parallel_for(0, p.N * p.C, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> row(len), dyrow(p.Q);
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t n = plane / p.C, c = plane % p.C;
      for (int64_t h = 0; h < p.H; ++h) {
        std::fill(row.begin(), row.end(), T(0));
        for (int64_t m = 0; m < M; ++m) {
          const int64_t k = c * M + m;
          for (int64_t r = 0; r < p.R; ++r) {
            const int64_t t = h + p.pad_h - r * p.dil_h;
            if (t < 0 || t % p.stride_h != 0 || t / p.stride_h >= p.P) continue;
            const T* dyr = dy + n * p.y_strides[0] + k * p.y_strides[1] + (t / p.stride_h) * p.y_strides[2];
            if (p.y_strides[3] != 1) {
              for (int64_t q = 0; q < p.Q; ++q) dyrow[q] = dyr[q * p.y_strides[3]];
              dyr = dyrow.data();
            }
            const T* wk = w + k * p.w_strides[0] + r * p.w_strides[2];
            for (int64_t s = 0; s < p.S; ++s) {
              const T wv = wk[s * p.w_strides[3]];
              T* __restrict dst = row.data() + s * p.dil_w;
              const T* __restrict src = dyr;
              if (sw == 1) {
                for (int64_t q = 0; q < p.Q; ++q) dst[q] += wv * src[q];
              } else {
                for (int64_t q = 0; q < p.Q; ++q) dst[q * sw] += wv * src[q];
              }
            }
          }
        }
        T* dxr = dx + n * p.x_strides[0] + c * p.x_strides[1] + h * p.x_strides[2];
        const T* src = row.data() + p.pad_w;
        if (p.x_strides[3] == 1) std::copy(src, src + p.W, dxr);
        else for (int64_t x = 0; x < p.W; ++x) dxr[x * p.x_strides[3]] = src[x];
      }
    }
  });
}

// The taps that reach dx pixel (h, w): dy[(h + pad_h - r*dil_h) / stride_h,
// (w + pad_w - s*dil_w) / stride_w] where those divide exactly and land inside.
template <typename T>
void dgrad_pixel_taps(const Conv2dParams& p, const T* dyn, int64_t h, int64_t wc,
                      std::vector<const T*>& rows) {
  for (int64_t r = 0; r < p.R; ++r) {
    const int64_t th = h + p.pad_h - r * p.dil_h;
    const bool row_ok = th >= 0 && th % p.stride_h == 0 && th / p.stride_h < p.P;
    for (int64_t s = 0; s < p.S; ++s) {
      const int64_t tw = wc + p.pad_w - s * p.dil_w;
      const bool ok = row_ok && tw >= 0 && tw % p.stride_w == 0 && tw / p.stride_w < p.Q;
      rows[r * p.S + s] =
          ok ? dyn + (th / p.stride_h) * p.y_strides[2] + (tw / p.stride_w) * p.y_strides[3] : nullptr;
    }
  }
}

template <typename T>
void dgrad_channels_last(const Conv2dParams& p) {
  T* dx = static_cast<T*>(p.x);
  const T* dy = static_cast<const T*>(p.y);
  const int64_t C = p.C, K = p.K, M = K / C, RS = p.R * p.S;
  const std::vector<T> wt = depthwise_filter_taps_major<T>(p);  // (r, s, k)
  const VectorKernels<T>& vk = active_vector_kernels<T>();
  // Stride 1, multiplier 1: columns w whose taps w + pad_w - s*dil_w all lie in
  // [0, Q) form the interior, run by stencil_row over the row's valid taps.
  const bool rows_fast = M == 1 && p.stride_w == 1 && p.stride_h == 1;
  const int64_t ew = effective_kernel(p.S, p.dil_w);
  const int64_t wa = rows_fast ? std::min(p.W, std::max<int64_t>(0, ew - 1 - p.pad_w)) : 0;
  const int64_t wb = rows_fast ? std::max(wa, std::min(p.W, p.Q - p.pad_w)) : 0;
  at::parallel_for(0, p.N * p.H, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> acc(C);
    std::vector<const T*> rows(RS), wts(RS);
    for (int64_t line = begin; line < end; ++line) {
      const int64_t n = line / p.H, h = line % p.H;
      const T* dyn = dy + n * p.y_strides[0];
      T* dxr = dx + n * p.x_strides[0] + h * p.x_strides[2];
      for (int64_t wc = 0; wc < p.W; ++wc) {
        if (wc == wa && wb > wa) {
          int64_t nt = 0;
          for (int64_t r = 0; r < p.R; ++r) {
            const int64_t th = h + p.pad_h - r * p.dil_h;
            if (th < 0 || th >= p.P) continue;
            for (int64_t s = 0; s < p.S; ++s, ++nt) {
              rows[nt] = dyn + th * p.y_strides[2] + (wa + p.pad_w - s * p.dil_w) * p.y_strides[3];
              wts[nt] = wt.data() + (r * p.S + s) * K;
            }
          }
          vk.stencil_row(wb - wa, C, nt, rows.data(), p.y_strides[3], wts.data(), nullptr,
                         dxr + wa * p.x_strides[3], p.x_strides[3]);
          wc = wb - 1;
          continue;
        }
        dgrad_pixel_taps(p, dyn, h, wc, rows);
        if (M == 1) {  // dx's channels over all taps in registers (vector kernel)
          vk.taps_madd(C, RS, rows.data(), wt.data(), nullptr, dxr + wc * p.x_strides[3]);
          continue;
        }
        T* __restrict a = acc.data();
        std::fill(a, a + C, T(0));
        for (int64_t t = 0; t < RS; ++t) {
          if (rows[t] == nullptr) continue;
          const T* __restrict dyr = rows[t];
          const T* __restrict wr = wt.data() + t * K;
          for (int64_t c = 0; c < C; ++c)
            for (int64_t m = 0; m < M; ++m) a[c] += dyr[c * M + m] * wr[c * M + m];
        }
        std::copy(a, a + C, dxr + wc * p.x_strides[3]);
      }
    }
  });
}

template <typename T>
void dgrad(const Conv2dParams& p) {
  if (depthwise_channels_last(p)) dgrad_channels_last<T>(p);
  else dgrad_planes<T>(p);
}

}  // namespace

void depthwise_dgrad(const Conv2dParams& p) {
  if (depthwise_flat_applies(p)) return depthwise_dgrad_flat(p);
  if (p.dtype == DType::Float64) dgrad<double>(p);
  else dgrad<float>(p);
}

}  // namespace cpu
}  // namespace cnnops
