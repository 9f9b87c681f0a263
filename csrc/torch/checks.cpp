// The argument checks of checks.h, and the one check of a CUDA launcher's result.
#include "checks.h"

#include <c10/util/safe_numerics.h>

#include <sstream>

namespace cnnops {

std::string to_string(at::IntArrayRef v) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
  os << "]";
  return os.str();
}

std::vector<int64_t> concrete(c10::SymIntArrayRef v, const char* op, const char* arg) {
  std::vector<int64_t> out;
  for (const c10::SymInt& s : v) {
    auto i = s.maybe_as_int();
    TORCH_CHECK_VALUE(i.has_value(), op, ": ", arg, " must be concrete integers on this device");
    out.push_back(*i);
  }
  return out;
}

void check_rank(const at::Tensor& t, int64_t dim, const char* op, const char* arg, const char* layout) {
  TORCH_CHECK_VALUE(t.dim() == dim, op, ": expected ", arg, " to be ", dim, "-D (", layout, "), got a ",
                    t.dim(), "-D tensor of shape ", to_string(t.sizes()));
}

void check_float_tensor(const at::Tensor& t, const char* op, const char* arg) {
  const auto st = t.scalar_type();
  const bool cpu_ok = st == at::kFloat || st == at::kDouble;
  const bool cuda_ok = cpu_ok || st == at::kHalf || st == at::kBFloat16;
  if (t.is_cuda()) {
    TORCH_CHECK_TYPE(cuda_ok, op, ": expected ", arg,
                     " to be float32, float64, float16 or bfloat16 on CUDA, got ", st);
  } else {
    TORCH_CHECK_VALUE(t.device().is_cpu() || t.is_cuda(), op, ": ", arg, " is on an unsupported device ",
                      t.device());
    TORCH_CHECK_TYPE(cpu_ok, op, ": expected ", arg, " to be float32 or float64 on the CPU, got ", st);
  }
}

void check_same_dtype_device(const at::Tensor& t, const at::Tensor& ref, const char* op, const char* arg,
                             const char* ref_arg) {
  TORCH_CHECK_TYPE(t.scalar_type() == ref.scalar_type(), op, ": expected ", arg,
                   " to have the same dtype as ", ref_arg, " (", ref.scalar_type(), "), got ",
                   t.scalar_type());
  TORCH_CHECK_VALUE(t.device() == ref.device(), op, ": expected ", arg, " to be on the same device as ",
                    ref_arg, " (", ref.device(), "), got ", t.device());
}

void check_list(at::IntArrayRef v, size_t count, int64_t minimum, const char* op, const char* arg,
                const char* expected) {
  TORCH_CHECK_VALUE(v.size() == count, op, ": expected ", arg, " to have ", count, " elements, got ",
                    to_string(v));
  for (int64_t x : v)
    TORCH_CHECK_VALUE(x >= minimum, op, ": expected ", arg, " to be ", expected, ", got ", to_string(v));
}

void check_nonempty_feature_dims(const at::Tensor& t, const char* op, const char* arg) {
  TORCH_CHECK_VALUE(t.size(1) > 0 && t.size(2) > 0 && t.size(3) > 0, op, ": expected ", arg,
                    " to have non-zero channel and spatial sizes (only the batch may be empty), "
                    "got shape ",
                    to_string(t.sizes()));
}

void check_device(const at::Tensor& t, const char* op, const char* arg) {
#ifdef CNNOPS_WITH_CUDA
  TORCH_CHECK_VALUE(t.device().is_cpu() || t.is_cuda(), op, ": expected ", arg,
                    " on the CPU or a CUDA device, got ", t.device());
#else
  TORCH_CHECK_VALUE(t.device().is_cpu(), op, ": expected ", arg,
                    " on the CPU (this cnnops build has no CUDA kernels: torch had no CUDA "
                    "when it was built), got ",
                    t.device());
#endif
}

at::MemoryFormat output_memory_format(const at::Tensor& a, const at::Tensor& b, int64_t batch) {
  if (batch == 0) return at::MemoryFormat::Contiguous;
  const bool cl = a.suggest_memory_format() == at::MemoryFormat::ChannelsLast ||
                  b.suggest_memory_format() == at::MemoryFormat::ChannelsLast;
  return cl ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
}

at::MemoryFormat conv_output_memory_format(const at::Tensor& a, const at::Tensor& b, int64_t batch) {
  // torch runs float64 CUDA convolutions outside cuDNN, always in contiguous format.
  if (a.is_cuda() && a.scalar_type() == at::kDouble) return at::MemoryFormat::Contiguous;
  return output_memory_format(a, b, batch);
}

namespace {
std::string int128_to_string(__int128 v) {
  if (v == 0) return "0";
  const bool negative = v < 0;
  std::string digits;
  for (; v != 0; v /= 10) digits.insert(digits.begin(), char('0' + int(negative ? -(v % 10) : v % 10)));
  return negative ? "-" + digits : digits;
}
}  // namespace

std::pair<int64_t, int64_t> conv_output_size_checked(int64_t H, int64_t W, int64_t R, int64_t S,
                                                     const std::vector<int64_t>& pad, at::IntArrayRef stride,
                                                     at::IntArrayRef dilation, const char* op) {
  const __int128 ph = __int128(H) + pad[0] + pad[1], pw = __int128(W) + pad[2] + pad[3];
  const __int128 eh = __int128(dilation[0]) * (R - 1) + 1, ew = __int128(dilation[1]) * (S - 1) + 1;
  TORCH_CHECK_VALUE(ph >= eh && pw >= ew, op, ": the dilated kernel (", int128_to_string(eh), " x ",
                    int128_to_string(ew), ") is larger than the padded input (", int128_to_string(ph), " x ",
                    int128_to_string(pw), "); expected the padded input to be at least the kernel size");
  const __int128 P = (ph - eh) / stride[0] + 1, Q = (pw - ew) / stride[1] + 1;
  TORCH_CHECK_VALUE(P <= INT64_MAX && Q <= INT64_MAX, op, ": the output size (", int128_to_string(P), " x ",
                    int128_to_string(Q), ") does not fit in int64");
  return {static_cast<int64_t>(P), static_cast<int64_t>(Q)};
}

DType dtype_of(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kDouble:
      return DType::Float64;
    case at::kHalf:
      return DType::Float16;
    case at::kBFloat16:
      return DType::BFloat16;
    default:
      return DType::Float32;
  }
}

Conv2dParams conv_params(at::IntArrayRef stride, int64_t pad_h, int64_t pad_w, at::IntArrayRef dilation,
                         int64_t groups, const at::Tensor& like) {
  Conv2dParams p{};
  p.stride_h = stride[0];
  p.stride_w = stride[1];
  p.pad_h = pad_h;
  p.pad_w = pad_w;
  p.dil_h = dilation[0];
  p.dil_w = dilation[1];
  p.groups = groups;
  p.dtype = dtype_of(like);
  p.allow_tf32 = false;
  return p;
}

void copy_strides(int64_t dst[4], const at::Tensor& t) {
  for (int i = 0; i < 4; ++i) dst[i] = t.stride(i);
}

int64_t checked_numel(at::IntArrayRef sizes, const char* op) {
  uint64_t n = 1;
  TORCH_CHECK_VALUE(!c10::safe_multiplies_u64(sizes, &n) && n <= uint64_t(INT64_MAX), op,
                    ": output of shape ", to_string(sizes), " has too many elements");
  return static_cast<int64_t>(n);
}

#ifdef CNNOPS_WITH_CUDA
void check_cuda_launch(cudaError_t err) {
  TORCH_CHECK(err == cudaSuccess, "cnnops: CUDA kernel launch failed: ", cudaGetErrorString(err));
}
#endif

}  // namespace cnnops
