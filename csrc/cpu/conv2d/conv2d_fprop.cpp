// conv2d forward on the CPU: a single grouped correlation (conv_correlation.cpp)
// with taps at r*dil - pad and the output stride as the input step.
#include "conv2d.h"
#include "conv_correlation.h"

namespace cnnops {
namespace cpu {
namespace {

template <typename T>
void fprop(const Conv2dParams& p) {
  Correlation<T> c;
  c.in = static_cast<const T*>(p.x);
  c.H = p.H;
  c.W = p.W;
  c.out = static_cast<T*>(p.y);
  c.P = p.P;
  c.Q = p.Q;
  for (int i = 0; i < 4; ++i) {
    c.in_strides[i] = p.x_strides[i];
    c.out_strides[i] = p.y_strides[i];
  }
  c.N = p.N;
  c.G = p.groups;
  c.Ci = p.C / p.groups;
  c.Ko = p.K / p.groups;
  c.wt = static_cast<const T*>(p.w);
  c.wt_group = c.Ko * p.w_strides[0];
  c.wt_out = p.w_strides[0];
  c.wt_in = p.w_strides[1];
  c.wt_r = p.w_strides[2];
  c.wt_s = p.w_strides[3];
  c.bias = static_cast<const T*>(p.bias);
  c.step_h = p.stride_h;
  c.step_w = p.stride_w;
  c.filter_cache = p.filter_cache;
  if (!p.epilogue.identity()) c.epilogue = &p.epilogue;
  for (int64_t r = 0; r < p.R; ++r) {
    c.hoff.push_back(r * p.dil_h - p.pad_h);
    c.rtap.push_back(r);
  }
  for (int64_t s = 0; s < p.S; ++s) {
    c.woff.push_back(s * p.dil_w - p.pad_w);
    c.stap.push_back(s);
  }
  run_correlation(c);
}

}  // namespace

void conv2d_fprop(const Conv2dParams& p) {
  if (p.dtype == DType::Float64) fprop<double>(p);
  else fprop<float>(p);
}

}  // namespace cpu
}  // namespace cnnops
