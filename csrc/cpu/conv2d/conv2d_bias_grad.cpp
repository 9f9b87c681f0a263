// Bias gradient on the CPU: db[k] = sum over n, p, q of dy[n, k, p, q].
// Parallel over blocks of channels; each block sums in double (float64 input:
// double too) in a fixed order, so the result is deterministic. The inner loop
// runs along whichever of the channel or column axes is contiguous.
#include <ATen/Parallel.h>

#include <algorithm>

#include "conv2d.h"

namespace cnnops {
namespace cpu {
namespace {

constexpr int64_t kChannelBlock = 64;

template <typename T>
void bias_grad(const BiasGradParams& bp) {
  const T* dy = static_cast<const T*>(bp.dy);
  T* db = static_cast<T*>(bp.db);
  const int64_t* s = bp.dy_strides;
  const bool channels_inner = s[1] == 1 && s[3] != 1;
  at::parallel_for(0, (bp.K + kChannelBlock - 1) / kChannelBlock, 1, [&](int64_t begin, int64_t end) {
    for (int64_t blk = begin; blk < end; ++blk) {
      const int64_t k0 = blk * kChannelBlock, kn = std::min(kChannelBlock, bp.K - k0);
      double acc[kChannelBlock] = {};
      for (int64_t n = 0; n < bp.N; ++n) {
        for (int64_t p = 0; p < bp.P; ++p) {
          const T* row = dy + n * s[0] + p * s[2] + k0 * s[1];
          if (channels_inner) {
            for (int64_t q = 0; q < bp.Q; ++q)
              for (int64_t k = 0; k < kn; ++k) acc[k] += row[q * s[3] + k];
          } else {
            for (int64_t k = 0; k < kn; ++k) {
              double sum = 0.0;
              for (int64_t q = 0; q < bp.Q; ++q) sum += row[k * s[1] + q * s[3]];
              acc[k] += sum;
            }
          }
        }
      }
      for (int64_t k = 0; k < kn; ++k) db[k0 + k] = static_cast<T>(acc[k]);
    }
  });
}

}  // namespace

void conv2d_bias_grad(const BiasGradParams& p) {
  if (p.dtype == DType::Float64) bias_grad<double>(p);
  else bias_grad<float>(p);
}

}  // namespace cpu
}  // namespace cnnops
