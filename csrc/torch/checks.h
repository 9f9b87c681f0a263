// Argument checks shared by every registered op. Each failure raises a Python
// ValueError / TypeError whose message names the op, the argument, the value
// received and what was expected.
#pragma once
#include <ATen/ATen.h>

#ifdef CNNOPS_WITH_CUDA
#include <cuda_runtime.h>
#endif

#include "../common/params.h"

#include <string>
#include <utility>
#include <vector>

namespace cnnops {

// "[1, 2, 3]" for messages.
std::string to_string(at::IntArrayRef v);

// Concrete ints from a SymInt[] argument (ops run on real tensors here).
std::vector<int64_t> concrete(c10::SymIntArrayRef v, const char* op, const char* arg);

// input.dim() == dim, else "<op>: expected <arg> to be <dim>-D (<layout>), got ...".
void check_rank(const at::Tensor& t, int64_t dim, const char* op, const char* arg, const char* layout);

// Floating dtype supported on t's device (CPU: float32/float64; CUDA: also
// float16/bfloat16), and the same dtype and device as `ref`.
void check_float_tensor(const at::Tensor& t, const char* op, const char* arg);
// t on the CPU, or on a CUDA device when this build has the CUDA kernels.
void check_device(const at::Tensor& t, const char* op, const char* arg);
void check_same_dtype_device(const at::Tensor& t, const at::Tensor& ref, const char* op, const char* arg,
                             const char* ref_arg);

// Every element of v is >= minimum (size must be `count`).
void check_list(at::IntArrayRef v, size_t count, int64_t minimum, const char* op, const char* arg,
                const char* expected);

// Non-empty C, H, W (the batch may be empty).
void check_nonempty_feature_dims(const at::Tensor& t, const char* op, const char* arg);

// Output memory format under torch's rule: channels_last if either tensor
// suggests it, except that an empty batch gives a contiguous result.
at::MemoryFormat output_memory_format(const at::Tensor& a, const at::Tensor& b, int64_t batch);
// The same for the convolution ops (conv2d fprop/dgrad/wgrad), with torch's CUDA
// exception: float64 CUDA convolutions always give contiguous outputs.
at::MemoryFormat conv_output_memory_format(const at::Tensor& a, const at::Tensor& b, int64_t batch);

// Output sizes {P, Q} of a convolution, computed without int64 overflow:
// raises (naming the op) when the dilated kernel is larger than the padded
// input, or when a size does not fit in int64. pad = (top, bottom, left, right).
std::pair<int64_t, int64_t> conv_output_size_checked(int64_t H, int64_t W, int64_t R, int64_t S,
                                                     const std::vector<int64_t>& pad, at::IntArrayRef stride,
                                                     at::IntArrayRef dilation, const char* op);

// The kernels' dtype tag for a (checked) floating tensor.
DType dtype_of(const at::Tensor& t);

// A Conv2dParams with the fields every convolution op shares (steps, begin padding,
// groups, like's dtype; TF32 off); the caller sets tensors and sizes.
Conv2dParams conv_params(at::IntArrayRef stride, int64_t pad_h, int64_t pad_w, at::IntArrayRef dilation,
                         int64_t groups, const at::Tensor& like);

// t's four strides, in logical (NCHW / KCRS) order, into dst.
void copy_strides(int64_t dst[4], const at::Tensor& t);

// Product of sizes, raising instead of overflowing int64.
int64_t checked_numel(at::IntArrayRef sizes, const char* op);

#ifdef CNNOPS_WITH_CUDA
// Raises unless a CUDA launcher (csrc/cuda/*/*_cuda.h) returned cudaSuccess.
void check_cuda_launch(cudaError_t err);
#endif

}  // namespace cnnops
