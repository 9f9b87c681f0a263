// A grouped 2-D correlation with arbitrary tap offsets: the common core of
// conv2d fprop (one call) and dgrad (one call per stride phase).
//
//   out[n, g*Ko + ko, i, j] = bias[g*Ko + ko]
//       + sum_{ci < Ci, tr, ts} in[n, g*Ci + ci, i*step_h + hoff[tr], j*step_w + woff[ts]]
//                               * weight(g, ko, ci, rtap[tr], stap[ts])
//
// Input taps outside [0,H) x [0,W) read as zero. weight(g, ko, ci, r, s) is at
// wt + g*wt_group + ko*wt_out + ci*wt_in + r*wt_r + s*wt_s, which lets dgrad read
// the same filter tensor with the roles of its two channel axes swapped. An
// epilogue, when given, is applied to out after the sum (see Epilogue).
#pragma once
#include <cstdint>
#include <vector>

#include "../../common/params.h"
#include "filter_cache.h"

namespace cnnops {
namespace cpu {

template <typename T>
struct Correlation {
  const T* in = nullptr;
  int64_t in_strides[4] = {0, 0, 0, 0};  // n, c, h, w
  int64_t H = 0, W = 0;
  T* out = nullptr;
  int64_t out_strides[4] = {0, 0, 0, 0};  // n, c, i, j
  int64_t P = 0, Q = 0;
  const T* wt = nullptr;
  int64_t wt_group = 0, wt_out = 0, wt_in = 0, wt_r = 0, wt_s = 0;
  const T* bias = nullptr;  // indexed by global output channel; may be null
  int64_t N = 0, G = 1, Ci = 0, Ko = 0;
  int64_t step_h = 1, step_w = 1;
  std::vector<int64_t> hoff, woff;      // input offset of each tap
  std::vector<int64_t> rtap, stap;      // filter index of each tap
  FilterCache* filter_cache = nullptr;  // keeps the packed filter across calls (optional)
  const Epilogue* epilogue = nullptr;   // fused output stage (fprop only; optional)
};

// Whether Winograd (correlation_winograd.cpp) takes a unit-step correlation with
// runs of taps_h x taps_w consecutive taps and Ci -> Ko channels, one group (its
// tile count and filter size aside): the strided dgrad asks it of its phases.
bool winograd_fits(int64_t taps_h, int64_t taps_w, int64_t Ci, int64_t Ko);

// Runs the correlation with the active micro-kernel, parallel over tasks with
// at::parallel_for. Writes every element of out.
template <typename T>
void run_correlation(const Correlation<T>& c);

}  // namespace cpu
}  // namespace cnnops
