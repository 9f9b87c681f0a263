// Depthwise input gradient on the CPU:
//   dx[n, c, h, w] = sum over m, r, s of dy[n, c*M + m, p, q] * w[c*M + m, r, s]
//   where h = p*stride_h - pad_h + r*dil_h and w = q*stride_w - pad_w + s*dil_w.
//   planes (any strides; NCHW the fast case): parallel over (n, c) planes; each
//     dx row is built in a padded row buffer by adding every (m, r, s) tap's dy
//     row at its offset (contiguous for stride 1, so it vectorises), in a fixed
//     order: deterministic.
//   channels_last (dx and dy channels-innermost): parallel over input rows,
//     each row as in depthwise_cl_rows.h (all channels at once); 3x3 stride 1
//     padding 1 runs in depthwise_cl3x3.cpp.
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "depthwise_cl_rows.h"
#include "depthwise.h"
#include "depthwise_kernels.h"
#include "../../common/shape.h"

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
        else
          for (int64_t x = 0; x < p.W; ++x) dxr[x * p.x_strides[3]] = src[x];
      }
    }
  });
}

template <typename T>
void dgrad_channels_last(const Conv2dParams& p) {
  const DgradRowsCL<T> rows(p);
  at::parallel_for(0, p.N * p.H, 1, [&](int64_t begin, int64_t end) {
    typename DgradRowsCL<T>::Scratch scratch(rows);
    for (int64_t line = begin; line < end; ++line) rows.row(line / p.H, line % p.H, scratch);
  });
}

template <typename T>
void dgrad(const Conv2dParams& p) {
  if (depthwise_channels_last(p)) dgrad_channels_last<T>(p);
  else dgrad_planes<T>(p);
}

}  // namespace

void depthwise_dgrad(const Conv2dParams& p) {
  if (depthwise_cl3x3_applies(p)) return depthwise_dgrad_cl3x3(p);
  if (depthwise_flat_applies(p)) return depthwise_dgrad_flat(p);
  if (p.dtype == DType::Float64) dgrad<double>(p);
  else dgrad<float>(p);
}

}  // namespace cpu
}  // namespace cnnops
