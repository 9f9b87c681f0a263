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
  if (s[3] == 1 && gather != nullptr && s[1] <= (int64_t(1) << 31) / 64) {
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

// The reverse: dst[n, c, h, w] (strides d; unit w step, channel stride below
// 2^31 / 64 for the gathers' int32 offsets) = src[n, h, w, c], a channels-last
// contiguous buffer, one row of pixels at a time.
template <typename T>
void from_channels_last(const T* src, int64_t N, int64_t C, int64_t H, int64_t W, T* dst, const int64_t* d) {
  const auto gather = active_microkernel<T>().gather_columns;
  at::parallel_for(0, N * H, task_grain(N * H, 4.0 * N * C * H * W), [&](int64_t begin, int64_t end) {
    for (int64_t nh = begin; nh < end; ++nh)
      gather(src + nh * W * C, C, W, C, dst + nh / H * d[0] + nh % H * d[2], d[1]);
  });
}

}  // namespace cpu
}  // namespace cnnops
