// Plain-old-data parameter structs shared by the CPU and CUDA kernels.
//
// Kernels never see a tensor: the torch glue (csrc/torch) fills one of these
// structs and passes it by const reference (CPU) or by value (CUDA). Nothing
// here includes a torch header, so nvcc can compile csrc/cuda/**/*.cu anywhere.
//
// Every size and stride is in elements and int64_t. Tensor strides are given
// in logical NCHW (or KCRS) order whatever the memory layout, so contiguous
// NCHW, channels_last and arbitrary strided views all go through one struct.
#pragma once
#include <cstdint>

namespace cnnops {
namespace cpu {
class FilterCache;  // csrc/cpu/conv2d/filter_cache.h
}

enum class DType : int32_t { Float32 = 0, Float64 = 1, Float16 = 2, BFloat16 = 3 };

// The elementwise functions an inference output stage may apply (activation.h).
enum class Activation : int32_t { None = 0, ReLU, ReLU6, SiLU, Hardswish, Hardsigmoid, GELU, GELUTanh };

// A convolution forward's fused output stage (the inference ops conv2d_fprop_fused
// and depthwise_fprop_fused): each output element, once summed and biased, becomes
//   y = post(act(y) + residual)
// residual (optional) has y's shape and dtype, with its own NCHW-order strides.
// A kernel applies it to each block of its output right after the block's last
// write, while the block is still in cache. The default is the identity.
struct Epilogue {
  Activation act = Activation::None;
  const void* residual = nullptr;
  int64_t residual_strides[4] = {0, 0, 0, 0};  // n, k, p, q
  Activation post = Activation::None;
  bool identity() const { return act == Activation::None && residual == nullptr && post == Activation::None; }
};

// One 2-D convolution, always described in forward (fprop) terms:
//   y[N, K, P, Q] = sum_{c, r, s} x[N, g*C/G + c, p*stride_h - pad_h + r*dil_h,
//                                   q*stride_w - pad_w + s*dil_w] * w[K, c, r, s]
// where g = k / (K/G). The three kernels use the same struct with different roles:
//   fprop: reads x, w (and bias[K]),  writes y
//   dgrad: reads y, w (and bias[C]),  writes x      (also conv_transpose2d forward)
//   wgrad: reads x, y,                 writes w
// pad_h / pad_w are the top / left paddings; the bottom / right paddings are
// implied by P and Q (they may be negative: trailing input rows then go unused).
struct Conv2dParams {
  void* x;
  void* w;
  void* y;
  const void* bias;    // optional, nullptr when absent
  int64_t N, C, H, W;  // input
  int64_t K, R, S;     // filter: K output channels, C/groups input channels, R x S taps
  int64_t P, Q;        // output spatial size
  int64_t pad_h, pad_w, stride_h, stride_w, dil_h, dil_w, groups;
  int64_t x_strides[4];  // n, c, h, w
  int64_t w_strides[4];  // k, c, r, s
  int64_t y_strides[4];  // n, k, p, q
  DType dtype;
  bool allow_tf32;  // CUDA float32 only: use TF32 tensor cores (off unless asked for)
  // CPU fprop/dgrad only, optional: where packed forms of w outlive the call
  // (null: pack on every call).
  cpu::FilterCache* filter_cache;
  // fprop only (CPU conv2d and depthwise; CUDA after the kernel): the fused
  // output stage; the identity unless an inference op sets it.
  Epilogue epilogue;
};

// db[K] = sum over n, p, q of dy[n, k, p, q].
struct BiasGradParams {
  const void* dy;
  void* db;
  int64_t N, K, P, Q;
  int64_t dy_strides[4];  // n, k, p, q
  DType dtype;
};

// One 2-D max pooling over (N, C) planes, windows R x S:
//   y[n, c, p, q] = max over the valid taps h = p*stride_h - pad_h + r*dil_h,
//                   w = q*stride_w - pad_w + s*dil_w of x[n, c, h, w]
//   indices[n, c, p, q] = h*W + w of the winning tap (int64, within the plane)
// with torch's rules: NaN wins (the last NaN of the window, taps in row-major
// order), otherwise the first maximum; padding never wins. The backward pass
// uses the same struct: x is then grad_input (written), y grad_output (read).
// P and Q are given: ceil_mode and asymmetric ('same') padding only change them.
struct MaxPool2dParams {
  void* x;
  void* y;
  void* indices;  // int64_t, the shape of y; null in a CPU forward that needs no indices
  int64_t N, C, H, W;
  int64_t R, S;  // window
  int64_t P, Q;  // output spatial size
  int64_t pad_h, pad_w, stride_h, stride_w, dil_h, dil_w;
  int64_t x_strides[4];  // n, c, h, w
  int64_t y_strides[4];  // n, c, p, q
  int64_t i_strides[4];  // n, c, p, q
  DType dtype;
};

// One 2-D average pooling over (N, C) planes:
//   y[n, c, p, q] = sum of x[n, c, h, w] over the window rows(p) x cols(q),
//                   divided by divisor(p, q)
// Windows along each axis (avg_pool_window in shape.h) are either regular
// (R x S taps at stride, begin padding pad_top / pad_left; the padded input
// ends at H + pad_bottom, W + pad_right) or, with `adaptive`, torch's
// adaptive windows [floor(o*in/out), ceil((o+1)*in/out)). The divisor is
// divisor_override when it is nonzero, else count(p) * count(q) per axis,
// where a regular window's count includes its padded cells inside the padded
// input when count_include_pad (torch's rule), else only its input cells.
// The backward pass uses the same struct: x is then grad_input (written), y
// grad_output (read). P and Q are given: ceil_mode and 'same' only change them.
struct AvgPool2dParams {
  void* x;
  void* y;
  int64_t N, C, H, W;
  int64_t P, Q;  // output spatial size
  int64_t R, S;  // window (regular windows only)
  int64_t stride_h, stride_w;
  int64_t pad_top, pad_bottom, pad_left, pad_right;
  bool adaptive;
  bool count_include_pad;
  int64_t divisor_override;  // 0: none
  int64_t x_strides[4];      // n, c, h, w
  int64_t y_strides[4];      // n, c, p, q
  DType dtype;
};

}  // namespace cnnops
