// Depthwise input gradient on the CPU:
//   dx[n, c, h, w] = sum over m, r, s of dy[n, c*M + m, p, q] * w[c*M + m, r, s]
//   where h = p*stride_h - pad_h + r*dil_h and w = q*stride_w - pad_w + s*dil_w.
//   planes (any strides; NCHW the fast case): parallel over (n, c) planes; each
//     dx row is built in a padded row buffer by adding every (m, r, s) tap's dy
//     row at its offset (contiguous for stride 1, so it vectorises), in a fixed
//     order: deterministic.
//   channels_last (dx and dy channels-innermost): parallel over input pixels,
//     gathering the taps that reach each pixel; the channel loop vectorises.
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

template <typename T>
void dgrad_channels_last(const Conv2dParams& p) {
  T* dx = static_cast<T*>(p.x);
  const T* dy = static_cast<const T*>(p.y);
  const int64_t C = p.C, K = p.K, M = K / C, RS = p.R * p.S;
  const std::vector<T> wt = depthwise_filter_taps_major<T>(p);  // (r, s, k)
  const int64_t grain = std::max<int64_t>(1, 2048 / (K * RS));
  const VectorKernels<T>& vk = active_vector_kernels<T>();
  at::parallel_for(0, p.N * p.H * p.W, grain, [&](int64_t begin, int64_t end) {
    std::vector<T> acc(C);
    std::vector<const T*> rows(RS);
    for (int64_t pix = begin; pix < end; ++pix) {
      const int64_t n = pix / (p.H * p.W), h = pix / p.W % p.H, wc = pix % p.W;
      if (M == 1) {  // dx's channels over all taps in registers (vector kernel)
        for (int64_t r = 0; r < p.R; ++r) {
          const int64_t th = h + p.pad_h - r * p.dil_h;
          const bool row_ok = th >= 0 && th % p.stride_h == 0 && th / p.stride_h < p.P;
          for (int64_t s = 0; s < p.S; ++s) {
            const int64_t tw = wc + p.pad_w - s * p.dil_w;
            const bool ok = row_ok && tw >= 0 && tw % p.stride_w == 0 && tw / p.stride_w < p.Q;
            rows[r * p.S + s] = ok ? dy + n * p.y_strides[0] + (th / p.stride_h) * p.y_strides[2] +
                                         (tw / p.stride_w) * p.y_strides[3]
                                   : nullptr;
          }
        }
        vk.taps_madd(C, RS, rows.data(), wt.data(), nullptr,
                     dx + n * p.x_strides[0] + h * p.x_strides[2] + wc * p.x_strides[3]);
        continue;
      }
      T* __restrict a = acc.data();
      std::fill(a, a + C, T(0));
      for (int64_t r = 0; r < p.R; ++r) {
        const int64_t th = h + p.pad_h - r * p.dil_h;
        if (th < 0 || th % p.stride_h != 0 || th / p.stride_h >= p.P) continue;
        for (int64_t s = 0; s < p.S; ++s) {
          const int64_t tw = wc + p.pad_w - s * p.dil_w;
          if (tw < 0 || tw % p.stride_w != 0 || tw / p.stride_w >= p.Q) continue;
          const T* __restrict dyr = dy + n * p.y_strides[0] + (th / p.stride_h) * p.y_strides[2] +
                                    (tw / p.stride_w) * p.y_strides[3];
          const T* __restrict wr = wt.data() + (r * p.S + s) * K;
          if (M == 1) {
            for (int64_t c = 0; c < C; ++c) a[c] += dyr[c] * wr[c];
          } else {
            for (int64_t c = 0; c < C; ++c)
              for (int64_t m = 0; m < M; ++m) a[c] += dyr[c * M + m] * wr[c * M + m];
          }
        }
      }
      T* dxr = dx + n * p.x_strides[0] + h * p.x_strides[2] + wc * p.x_strides[3];
      std::copy(a, a + C, dxr);
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
  if (p.dtype == DType::Float64) dgrad<double>(p);
  else dgrad<float>(p);
}

}  // namespace cpu
}  // namespace cnnops
