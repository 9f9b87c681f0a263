// Depthwise weight gradient on the CPU:
//   dw[k, 0, r, s] = sum over n, p, q of dy[n, k, p, q] * x[n, k / M, h, w]
//   (h, w as in fprop). Deterministic: each filter element is summed by one
//   thread in a fixed order, per output row in T and across rows in double.
//   planes (any strides; NCHW the fast case): parallel over input channels c
//     (each owning its M filters); each tap is a dot product of a dy row with a
//     contiguous phase row of x (phase_rows.h), with 8 partial sums so it
//     vectorises without reassociation flags.
//   channels_last (x and dy channels-innermost): parallel over fixed chunks of
//     dy rows (depthwise_cl_rows.h), each with its own partial sums, added in
//     chunk order: per pixel, every tap adds dy[k] * x[k / M] along the channels.
//     3x3 stride 1 padding 1 runs in depthwise_cl3x3.cpp (its own fixed order).
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "depthwise_cl_rows.h"
#include "depthwise.h"
#include "depthwise_kernels.h"
#include "../util/phase_rows.h"
#include "../../common/shape.h"

namespace cnnops {
namespace cpu {
namespace {

template <typename T>
inline T dot(const T* __restrict a, const T* __restrict b, int64_t n) {
  T part[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) part[j] += a[i + j] * b[i + j];
  T sum = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

template <typename T>
void wgrad_planes(const Conv2dParams& p) {
  const T* x = static_cast<const T*>(p.x);
  const T* dy = static_cast<const T*>(p.y);
  const int64_t M = p.K / p.C, sw = p.stride_w, RS = p.R * p.S;
  const int64_t len = phase_len(p.Q, effective_kernel(p.S, p.dil_w), sw);
  at::parallel_for(0, p.C, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> phases(sw * len), dyrow(p.Q);
    std::vector<double> acc(M * RS);
    for (int64_t c = begin; c < end; ++c) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t n = 0; n < p.N; ++n) {
        const T* xp = x + n * p.x_strides[0] + c * p.x_strides[1];
        for (int64_t pp = 0; pp < p.P; ++pp) {
          for (int64_t r = 0; r < p.R; ++r) {
            const int64_t h = pp * p.stride_h - p.pad_h + r * p.dil_h;
            if (h < 0 || h >= p.H) continue;
            split_phases(xp + h * p.x_strides[2], p.W, p.x_strides[3], p.pad_w, sw, len, T(0), phases.data());
            for (int64_t m = 0; m < M; ++m) {
              const int64_t k = c * M + m;
              const T* dyr = dy + n * p.y_strides[0] + k * p.y_strides[1] + pp * p.y_strides[2];
              if (p.y_strides[3] != 1) {
                for (int64_t q = 0; q < p.Q; ++q) dyrow[q] = dyr[q * p.y_strides[3]];
                dyr = dyrow.data();
              }
              for (int64_t s = 0; s < p.S; ++s) {
                const int64_t o = s * p.dil_w;
                acc[m * RS + r * p.S + s] += dot(dyr, phases.data() + (o % sw) * len + o / sw, p.Q);
              }
            }
          }
        }
      }
      store_depthwise_filters<T>(p, c * M, M, acc.data(), RS, 1);
    }
  });
}

template <typename T>
void wgrad_channels_last(const Conv2dParams& p) {
  const WgradRowsCL<T> rows(p);
  const RowChunks chunks(p.N * p.P);
  std::vector<double> acc(chunks.count * rows.acc_size(), 0.0);
  at::parallel_for(0, chunks.count, 1, [&](int64_t begin, int64_t end) {
    typename WgradRowsCL<T>::Scratch scratch(rows);
    for (int64_t c = begin; c < end; ++c)
      for (int64_t line = chunks.begin(c); line < chunks.begin(c + 1); ++line)
        rows.add_row(line / p.P, line % p.P, scratch, acc.data() + c * rows.acc_size());
  });
  rows.store(acc.data(), chunks.count);
}

template <typename T>
void wgrad(const Conv2dParams& p) {
  if (depthwise_channels_last(p)) wgrad_channels_last<T>(p);
  else wgrad_planes<T>(p);
}

}  // namespace

void depthwise_wgrad(const Conv2dParams& p) {
  if (depthwise_cl3x3_applies(p)) return depthwise_wgrad_cl3x3(p);
  if (depthwise_flat_applies(p)) return depthwise_wgrad_flat(p);
  if (p.dtype == DType::Float64) wgrad<double>(p);
  else wgrad<float>(p);
}

}  // namespace cpu
}  // namespace cnnops
