// The fused output stage on CUDA: one grid-stride pass over the output after
// the convolution kernel, one thread per element in the output's memory order
// (the innermost stride varies fastest, so reads and writes coalesce for NCHW
// and channels_last alike). Elements are widened to float (double for
// float64), passed through common/activation.h's functions, and rounded back.
#include "../common.cuh"
#include "../../common/activation.h"
#include "epilogue_cuda.h"

namespace cnnops {
namespace cuda {
namespace {

using detail::acc_t;

// The output's dims in memory order, outermost first (sizes and both tensors'
// strides permuted alike), so the innermost index varies fastest.
struct Layout {
  int64_t size[4];
  int64_t ys[4];  // y strides
  int64_t rs[4];  // residual strides
};

template <typename T>
__global__ void epilogue_kernel(T* y, const T* residual, Layout l, int64_t total, Activation act,
                                Activation post) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t rest = i, yo = 0, ro = 0;
#pragma unroll
    for (int d = 3; d >= 0; --d) {
      int64_t idx;
      detail::divmod(rest, l.size[d], rest, idx);
      yo += idx * l.ys[d];
      ro += idx * l.rs[d];
    }
    acc_t<T> v = activate(act, detail::to_acc(y[yo]));
    if (residual != nullptr) v += detail::to_acc(residual[ro]);
    y[yo] = detail::from_acc<T>(activate(post, v));
  }
}

}  // namespace

cudaError_t apply_epilogue(const Conv2dParams& p, cudaStream_t stream) {
  const Epilogue& e = p.epilogue;
  const int64_t total = p.N * p.K * p.P * p.Q;
  if (e.identity() || total == 0) return cudaSuccess;
  const int64_t size[4] = {p.N, p.K, p.P, p.Q};
  int order[4] = {0, 1, 2, 3};  // by decreasing y stride (ties keep NCHW order)
  for (int a = 1; a < 4; ++a)
    for (int b = a; b > 0 && p.y_strides[order[b]] > p.y_strides[order[b - 1]]; --b) {
      const int t = order[b];
      order[b] = order[b - 1];
      order[b - 1] = t;
    }
  Layout l;
  for (int d = 0; d < 4; ++d) {
    l.size[d] = size[order[d]];
    l.ys[d] = p.y_strides[order[d]];
    l.rs[d] = e.residual_strides[order[d]];
  }
  constexpr int kThreads = 256;
  const unsigned blocks = detail::grid_stride_blocks(total, kThreads);
  return detail::with_dtype(p.dtype, cudaErrorInvalidValue, [&](auto tag) {
    using T = typename decltype(tag)::type;
    epilogue_kernel<T><<<blocks, kThreads, 0, stream>>>(
        static_cast<T*>(p.y), static_cast<const T*>(e.residual), l, total, e.act, e.post);
    return cudaGetLastError();
  });
}

}  // namespace cuda
}  // namespace cnnops
