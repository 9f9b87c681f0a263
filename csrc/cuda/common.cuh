// The pieces every CUDA kernel family shares (conv2d/, depthwise/,
// max_pool2d/): the dtype traits (accumulate in float, or double for double;
// convert back with round-to-nearest), 64-bit index arithmetic with a 32-bit
// fast path, and the block count of a grid-stride launch. Torch-free, like
// every file under csrc/cuda (tests/test_cuda_compile.py checks it).
#pragma once

#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <cstdint>

#include "../common/params.h"

namespace cnnops {
namespace cuda {
namespace detail {

// ---------------------------------------------------------------------------
// dtype helpers
// ---------------------------------------------------------------------------

// Accumulator type: float for the 16- and 32-bit types, double for double.
template <typename T>
struct AccType {
  using type = float;
};
template <>
struct AccType<double> {
  using type = double;
};
template <typename T>
using acc_t = typename AccType<T>::type;

__device__ __forceinline__ float to_acc(float v) { return v; }
__device__ __forceinline__ double to_acc(double v) { return v; }
__device__ __forceinline__ float to_acc(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_acc(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
struct Convert;
template <>
struct Convert<float> {
  __device__ __forceinline__ static float from_acc(float v) { return v; }
};
template <>
struct Convert<double> {
  __device__ __forceinline__ static double from_acc(double v) { return v; }
};
template <>
struct Convert<__half> {
  __device__ __forceinline__ static __half from_acc(float v) { return __float2half_rn(v); }
};
template <>
struct Convert<__nv_bfloat16> {
  __device__ __forceinline__ static __nv_bfloat16 from_acc(float v) { return __float2bfloat16_rn(v); }
};

template <typename T>
__device__ __forceinline__ T from_acc(acc_t<T> v) {
  return Convert<T>::from_acc(v);
}
template <typename T>
__device__ __forceinline__ T zero_val() {
  return Convert<T>::from_acc(acc_t<T>(0));
}

// The one switch from the params' DType to a kernel's element type: calls
// f(TypeTag<T>{}) for T = float, double, __half or __nv_bfloat16 and returns its
// result, or `invalid` for a value outside the enum.
template <typename T>
struct TypeTag {
  using type = T;
};

template <typename R, typename F>
R with_dtype(DType dtype, R invalid, F&& f) {
  switch (dtype) {
    case DType::Float32:
      return f(TypeTag<float>{});
    case DType::Float64:
      return f(TypeTag<double>{});
    case DType::Float16:
      return f(TypeTag<__half>{});
    case DType::BFloat16:
      return f(TypeTag<__nv_bfloat16>{});
  }
  return invalid;
}

// ---------------------------------------------------------------------------
// Index arithmetic
// ---------------------------------------------------------------------------

__host__ __device__ __forceinline__ int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
__host__ __device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
__host__ __device__ __forceinline__ int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// a / b for a >= 0, b > 0; 32-bit division when both fit (the common case).
__device__ __forceinline__ int64_t div_nonneg(int64_t a, int64_t b) {
  if (((a | b) >> 31) == 0) return static_cast<int64_t>(static_cast<uint32_t>(a) / static_cast<uint32_t>(b));
  return a / b;
}

// q = a / b, r = a % b for a >= 0, b > 0 (32-bit division when both fit):
// how the flat-index kernels split an index into its coordinates.
__device__ __forceinline__ void divmod(int64_t a, int64_t b, int64_t& q, int64_t& r) {
  q = div_nonneg(a, b);
  r = a - q * b;
}

// ---------------------------------------------------------------------------
// Launching
// ---------------------------------------------------------------------------

// Blocks of a grid-stride launch over `items` work items, `per_block` per
// block: enough to cover them, but at most max_blocks (the kernels loop over
// the rest, so the grid stays within limits for any problem size).
constexpr int64_t kMaxGridStrideBlocks = int64_t(1) << 22;
inline unsigned grid_stride_blocks(int64_t items, int64_t per_block,
                                   int64_t max_blocks = kMaxGridStrideBlocks) {
  return static_cast<unsigned>(min64(ceil_div(items, per_block), max_blocks));
}

}  // namespace detail
}  // namespace cuda
}  // namespace cnnops
