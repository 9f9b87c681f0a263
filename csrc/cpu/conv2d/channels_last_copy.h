// Copies between NCHW-like tensors (any strides) and channels-last buffers, by
// the ISA's transposing copy (gather_columns) where it applies: the
// convolutions' paths that want channels along the vectors (wgrad of NCHW
// inputs, Winograd, strided dgrad into NCHW) make and read back these copies.
#pragma once
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>

#include "../util/buffer.h"
#include "microkernel.h"

namespace cnnops {
namespace cpu {

// Pixels per transposing gather when an image's rows follow each other (plane
// stride h = W): runs of up to 1024 pixels read each channel as one long stream,
// 3-5% of an NCHW wgrad's time faster than a row at a time (50x50 images of 128
// channels: 128 streams of 200 bytes per row), cut finer so every thread gets
// several runs.
inline int64_t pixels_per_run(int64_t N, int64_t pixels) {
  const int64_t want = ceil_div(N * pixels, 4 * int64_t(at::get_num_threads()));
  return std::clamp<int64_t>(want, 64, 1024);
}

// A channels-last (n, h, w, c) contiguous copy of a 4-D tensor given in NCHW
// order with any strides; fills strides[] for it.
template <typename T>
void to_channels_last(const T* src, const int64_t* s, int64_t N, int64_t C, int64_t H, int64_t W, T* dst,
                      int64_t* strides) {
  strides[0] = H * W * C;
  strides[1] = 1;
  strides[2] = W * C;
  strides[3] = C;
  const int64_t grain = task_grain(N * H, 16.0 * N * C * H * W);
  // Unit-step rows: each (n, h) row of channels is one transposing gather (the ISA's
  // vector gathers and stores; 3x3 layers of 128-256 channels 3-5% faster than the
  // element-wise tiles below).
  const auto gather = active_microkernel<T>().gather_columns;
  if (s[3] == 1 && gather != nullptr && s[1] <= kMaxGatherStride) {
    if (s[2] == W) {
      const int64_t pixels = H * W, run = pixels_per_run(N, pixels), runs = ceil_div(pixels, run);
      at::parallel_for(0, N * runs, task_grain(N * runs, 16.0 * N * C * H * W), [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const int64_t n = i / runs, m0 = i % runs * run;
          gather(src + n * s[0] + m0, s[1], C, std::min(run, pixels - m0), dst + (n * pixels + m0) * C, C);
        }
      });
      return;
    }
    at::parallel_for(0, N * H, grain, [&](int64_t begin, int64_t end) {
      for (int64_t nh = begin; nh < end; ++nh)
        gather(src + nh / H * s[0] + nh % H * s[2], s[1], C, W, dst + nh * W * C, C);
    });
    return;
  }
  at::parallel_for(0, N * H, grain, [&](int64_t begin, int64_t end) {
    constexpr int64_t B = 16;  // 16 x 16 tiles: both sides touch whole cache lines
    for (int64_t nh = begin; nh < end; ++nh) {
      const T* in = src + nh / H * s[0] + nh % H * s[2];
      T* out = dst + nh * W * C;
      for (int64_t c0 = 0; c0 < C; c0 += B)
        for (int64_t w0 = 0; w0 < W; w0 += B) {
          const int64_t c1 = std::min(C, c0 + B), w1 = std::min(W, w0 + B);
          for (int64_t w = w0; w < w1; ++w)
            for (int64_t c = c0; c < c1; ++c) out[w * C + c] = in[c * s[1] + w * s[3]];
        }
    }
  });
}

// The reverse: dst[n, c, h, w] (strides d; unit w step, channel stride at most
// kMaxGatherStride) = src[n, h, w, c], a channels-last
// contiguous buffer, by runs of pixels (rows when dst's rows are apart).
template <typename T>
void from_channels_last(const T* src, int64_t N, int64_t C, int64_t H, int64_t W, T* dst, const int64_t* d) {
  const auto gather = active_microkernel<T>().gather_columns;
  if (d[2] == W) {
    const int64_t pixels = H * W, run = pixels_per_run(N, pixels), runs = ceil_div(pixels, run);
    at::parallel_for(0, N * runs, task_grain(N * runs, 4.0 * N * C * H * W), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t n = i / runs, m0 = i % runs * run;
        gather(src + (n * pixels + m0) * C, C, std::min(run, pixels - m0), C, dst + n * d[0] + m0, d[1]);
      }
    });
    return;
  }
  at::parallel_for(0, N * H, task_grain(N * H, 4.0 * N * C * H * W), [&](int64_t begin, int64_t end) {
    for (int64_t nh = begin; nh < end; ++nh)
      gather(src + nh * W * C, C, W, C, dst + nh / H * d[0] + nh % H * d[2], d[1]);
  });
}

}  // namespace cpu
}  // namespace cnnops
