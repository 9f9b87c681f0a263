// What the CPU average-pooling paths share (internal to this folder): the
// window tables of a call, built once from AvgPool2dParams, and the paths'
// entry points (avg_pool2d.cpp: NCHW planes and dispatch;
// avg_pool2d_channels_last.cpp: channels_last and the global pool).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "../../common/params.h"
#include "../../common/shape.h"
#include "../util/buffer.h"

namespace cnnops {
namespace cpu {
namespace avg_pool {

// Windows along both axes (avg_pool_window, avg_pool_outputs in shape.h), and
// the factor each output's sum is multiplied by: 1 / divisor (in double, then
// rounded to T), 0 for a window without inputs.
template <typename T>
struct Windows {
  std::vector<int64_t> hlo, hhi, wlo, whi;            // output row / column p, q: inputs [lo, hi)
  std::vector<int64_t> pfirst, plast, qfirst, qlast;  // input row / column: outputs [first, last]
  std::vector<T> scale;                               // P x Q; empty with a divisor override
  T alpha = T(1);                                     // 1 / divisor_override
  int64_t most_rows = 0, most_cols = 0;               // inputs per window, at most
  int64_t most_outputs_h = 0, most_outputs_w = 0;     // windows per input row / column, at most
  // Regular windows along W (stencil paths): kw taps at stride sw after pad_l
  // padding. Adaptive windows are regular when W is a multiple of Q.
  bool regular_w = false;
  int64_t kw = 0, sw = 1, pad_l = 0;
  bool global = false;  // one window over the whole plane

  explicit Windows(const AvgPool2dParams& p)
      : hlo(p.P), hhi(p.P), wlo(p.Q), whi(p.Q), pfirst(p.H), plast(p.H), qfirst(p.W), qlast(p.W) {
    std::vector<int64_t> ch(p.P), cw(p.Q);
    for (int64_t o = 0; o < p.P; ++o) {
      avg_pool_window(o, p.H, p.P, p.R, p.stride_h, p.pad_top, p.pad_bottom, p.adaptive, p.count_include_pad,
                      &hlo[o], &hhi[o], &ch[o]);
      most_rows = std::max(most_rows, hhi[o] - hlo[o]);
    }
    for (int64_t o = 0; o < p.Q; ++o) {
      avg_pool_window(o, p.W, p.Q, p.S, p.stride_w, p.pad_left, p.pad_right, p.adaptive, p.count_include_pad,
                      &wlo[o], &whi[o], &cw[o]);
      most_cols = std::max(most_cols, whi[o] - wlo[o]);
    }
    for (int64_t i = 0; i < p.H; ++i) {
      avg_pool_outputs(i, p.H, p.P, p.R, p.stride_h, p.pad_top, p.adaptive, &pfirst[i], &plast[i]);
      most_outputs_h = std::max(most_outputs_h, plast[i] - pfirst[i] + 1);
    }
    for (int64_t i = 0; i < p.W; ++i) {
      avg_pool_outputs(i, p.W, p.Q, p.S, p.stride_w, p.pad_left, p.adaptive, &qfirst[i], &qlast[i]);
      most_outputs_w = std::max(most_outputs_w, qlast[i] - qfirst[i] + 1);
    }
    if (p.divisor_override != 0) {
      alpha = static_cast<T>(1.0 / static_cast<double>(p.divisor_override));
    } else {
      scale.resize(p.P * p.Q);
      for (int64_t pp = 0; pp < p.P; ++pp)
        for (int64_t q = 0; q < p.Q; ++q) {
          const bool empty = hhi[pp] <= hlo[pp] || whi[q] <= wlo[q];
          scale[pp * p.Q + q] = empty ? T(0) : static_cast<T>(1.0 / (double(ch[pp]) * double(cw[q])));
        }
    }
    if (!p.adaptive) {
      regular_w = true;
      kw = p.S;
      sw = p.stride_w;
      pad_l = p.pad_left;
    } else if (p.Q > 0 && p.W % p.Q == 0) {
      regular_w = true;
      kw = sw = p.W / p.Q;
    }
    global = p.P == 1 && p.Q == 1 && hlo[0] == 0 && hhi[0] == p.H && wlo[0] == 0 && whi[0] == p.W;
  }

  const T* scale_row(int64_t pp) const { return scale.empty() ? nullptr : scale.data() + pp * whi.size(); }
  T scale_at(int64_t pp, int64_t q) const { return scale.empty() ? alpha : scale[pp * whi.size() + q]; }
};

// Whether a tensor's channels are its innermost dimension (channels_last).
inline bool channels_inner(const int64_t* s, int64_t C) { return C > 1 && s[1] == 1; }

// The paths. global_* return false, doing nothing, unless the tensors are
// contiguous NCHW or channels_last planes (then the caller runs the others).
template <typename T>
void fwd_planes(const AvgPool2dParams& p, const Windows<T>& win);
template <typename T>
void bwd_planes(const AvgPool2dParams& p, const Windows<T>& win);
template <typename T>
void fwd_channels_last(const AvgPool2dParams& p, const Windows<T>& win);
template <typename T>
void bwd_channels_last(const AvgPool2dParams& p, const Windows<T>& win);
template <typename T>
bool fwd_global(const AvgPool2dParams& p, const Windows<T>& win);
template <typename T>
bool bwd_global(const AvgPool2dParams& p, const Windows<T>& win);

}  // namespace avg_pool
}  // namespace cpu
}  // namespace cnnops
