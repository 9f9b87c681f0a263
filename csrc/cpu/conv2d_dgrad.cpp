// conv2d input gradient (and conv_transpose2d forward) on the CPU.
//
// dx[n, c, h, w] gathers w[k, c, r, s] * dy[n, k, p, q] over the taps with
// p*stride - pad + r*dil == h. Splitting dx into stride_h x stride_w phases
// (h = a + i*stride_h, w = b + j*stride_w) turns each phase into a dense
// stride-1 correlation of dy with the taps that land on that phase, so no
// multiply is spent on the zeros of a dilated dy and no atomics are needed.
// Each phase is one call of the grouped correlation with the filter's two
// channel axes swapped; phases with no tap are filled with the bias (or 0).
#include "../kernels/shape.h"
#include "buffer.h"
#include "conv2d_cpu.h"
#include "conv_correlation.h"

namespace cnnops {
namespace cpu {
namespace {

template <typename T>
void dgrad(const Conv2dParams& p) {
  for (int64_t a = 0; a < p.stride_h && a < p.H; ++a) {
    for (int64_t b = 0; b < p.stride_w && b < p.W; ++b) {
      Correlation<T> c;
      c.in = static_cast<const T*>(p.y);
      c.H = p.P;
      c.W = p.Q;
      for (int i = 0; i < 4; ++i) c.in_strides[i] = p.y_strides[i];
      c.out = static_cast<T*>(p.x) + a * p.x_strides[2] + b * p.x_strides[3];
      c.P = ceil_div(p.H - a, p.stride_h);
      c.Q = ceil_div(p.W - b, p.stride_w);
      c.out_strides[0] = p.x_strides[0];
      c.out_strides[1] = p.x_strides[1];
      c.out_strides[2] = p.x_strides[2] * p.stride_h;
      c.out_strides[3] = p.x_strides[3] * p.stride_w;
      c.N = p.N;
      c.G = p.groups;
      c.Ci = p.K / p.groups;
      c.Ko = p.C / p.groups;
      c.wt = static_cast<const T*>(p.w);
      c.wt_group = c.Ci * p.w_strides[0];
      c.wt_out = p.w_strides[1];
      c.wt_in = p.w_strides[0];
      c.wt_r = p.w_strides[2];
      c.wt_s = p.w_strides[3];
      c.bias = static_cast<const T*>(p.bias);
      for (int64_t r = 0; r < p.R; ++r) {
        const int64_t t = a + p.pad_h - r * p.dil_h;
        if (t - floor_div(t, p.stride_h) * p.stride_h != 0) continue;
        c.hoff.push_back(floor_div(t, p.stride_h));
        c.rtap.push_back(r);
      }
      for (int64_t s = 0; s < p.S; ++s) {
        const int64_t t = b + p.pad_w - s * p.dil_w;
        if (t - floor_div(t, p.stride_w) * p.stride_w != 0) continue;
        c.woff.push_back(floor_div(t, p.stride_w));
        c.stap.push_back(s);
      }
      run_correlation(c);
    }
  }
}

}  // namespace

void conv2d_dgrad(const Conv2dParams& p) {
  if (p.dtype == DType::Float64) dgrad<double>(p);
  else dgrad<float>(p);
}

}  // namespace cpu
}  // namespace cnnops
