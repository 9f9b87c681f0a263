// Depthwise backward on the CPU, both gradients at once (dx and dw):
//   NCHW, stride 1, dy the size of x: the plane kernels, dx plane then dw's
//     sums from the same dy planes (depthwise_masked.cpp read in place for
//     small planes, else depthwise_flat.cpp, one padded copy of each dy plane
//     feeding both).
//   channels_last 3x3, stride 1, padding 1, multiplier 1: depthwise_cl3x3.cpp
//     (dx and dw of a span of pixels together, walked down a band of rows).
//   other channels_last, stride 1, dx rows = dy rows: parallel over wgrad's fixed
//     chunks of rows; row i runs dx row i, then dw row i (depthwise_cl_rows.h),
//     so the dy rows dx row i read are still in cache when dw reads row i.
//   anything else: depthwise_dgrad, then depthwise_wgrad.
// All give the same bits as the separate kernels. float32 and float64.
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "depthwise_cl_rows.h"
#include "depthwise.h"

namespace cnnops {
namespace cpu {
namespace {

bool fused_channels_last_applies(const Conv2dParams& dp, const Conv2dParams& wp) {
  return depthwise_channels_last(dp) && depthwise_channels_last(wp) && dp.stride_h == 1 && dp.stride_w == 1 &&
         dp.H == dp.P;
}

template <typename T>
void backward_channels_last(const Conv2dParams& dp, const Conv2dParams& wp) {
  const DgradRowsCL<T> dx_rows(dp);
  const WgradRowsCL<T> dw_rows(wp);
  const RowChunks chunks(wp.N * wp.P);
  std::vector<double> acc(chunks.count * dw_rows.acc_size(), 0.0);
  at::parallel_for(0, chunks.count, 1, [&](int64_t begin, int64_t end) {
    typename DgradRowsCL<T>::Scratch dx_scratch(dx_rows);
    typename WgradRowsCL<T>::Scratch dw_scratch(dw_rows);
    for (int64_t c = begin; c < end; ++c)
      for (int64_t line = chunks.begin(c); line < chunks.begin(c + 1); ++line) {
        const int64_t n = line / wp.P, i = line % wp.P;
        dx_rows.row(n, i, dx_scratch);
        dw_rows.add_row(n, i, dw_scratch, acc.data() + c * dw_rows.acc_size());
      }
  });
  dw_rows.store(acc.data(), chunks.count);
}

}  // namespace

void depthwise_backward(const Conv2dParams& dgrad_p, const Conv2dParams& wgrad_p) {
  if (depthwise_cl3x3_applies(dgrad_p) && depthwise_cl3x3_applies(wgrad_p))
    return depthwise_backward_cl3x3(dgrad_p, wgrad_p);
  if (depthwise_backward_flat_applies(dgrad_p, wgrad_p)) return depthwise_backward_flat(dgrad_p, wgrad_p);
  if (fused_channels_last_applies(dgrad_p, wgrad_p)) {
    if (dgrad_p.dtype == DType::Float64) backward_channels_last<double>(dgrad_p, wgrad_p);
    else backward_channels_last<float>(dgrad_p, wgrad_p);
    return;
  }
  depthwise_dgrad(dgrad_p);
  depthwise_wgrad(wgrad_p);
}

}  // namespace cpu
}  // namespace cnnops
