// conv2d input gradient (and conv_transpose2d forward) on the CPU.
//
// dx[n, c, h, w] gathers w[k, c, r, s] * dy[n, k, p, q] over the taps with
// p*stride - pad + r*dil == h. Splitting dx into stride_h x stride_w phases
// (h = a + i*stride_h, w = b + j*stride_w) turns each phase into a dense
// stride-1 correlation of dy with the taps that land on that phase, so no
// multiply is spent on the zeros of a dilated dy and no atomics are needed.
// Each phase is one call of the grouped correlation with the filter's two
// channel axes swapped; phases with no tap are filled with the bias (or 0).
//
// When a group has few input channels (the 3-channel stem), the correlation's
// tiles would be mostly empty; then dgrad runs as a GEMM into columns,
// cols[(c, r, s), pixels] = w^T * dy, followed by a scatter-add (col2im), with
// one task per (image, group) so every element of dx has a single writer.
#include <ATen/Parallel.h>

#include <algorithm>
#include <memory>
#include <string>

#include "../../common/shape.h"
#include "../util/balanced_for.h"
#include "../util/buffer.h"
#include "../util/copy_row.h"
#include "channels_last_copy.h"
#include "conv2d.h"
#include "conv_correlation.h"
#include "microkernel.h"

namespace cnnops {
namespace cpu {
namespace {

constexpr int64_t kFewChannels = 8;  // below this many dx channels per group: GEMM + col2im
constexpr int64_t kKc = 256;
constexpr int64_t kPixelPanels = 8;

template <typename T>
void dgrad_col2im(const Conv2dParams& p) {
  const MicroKernel<T>& uk = active_microkernel<T>();
  const int64_t MR = uk.mr, NR = uk.nr;
  const int64_t G = p.groups, Kg = p.K / G, Cg = p.C / G;
  const int64_t rows = Cg * p.R * p.S, rpad = round_up(rows, MR);
  const int64_t pixels = p.P * p.Q, block = kPixelPanels * NR;
  const T* w = static_cast<const T*>(p.w);
  const T* dy = static_cast<const T*>(p.y);
  const T* bias = static_cast<const T*>(p.bias);
  T* dx = static_cast<T*>(p.x);
  const int64_t* ws = p.w_strides;
  const int64_t* ys = p.y_strides;
  const int64_t* xs = p.x_strides;

  // A = w^T per group: rows (c, r, s), reduction k; panels [g][kblock][panel][k][MR].
  std::string name;  // only looked up when there is a cache
  if (p.filter_cache != nullptr) {
    name = "col2im/" + std::to_string(sizeof(T)) + "/" + std::to_string(MR);
    for (int64_t v : {G, p.K, p.C, p.R, p.S, ws[0], ws[1], ws[2], ws[3]}) name += "/" + std::to_string(v);
  }
  const std::shared_ptr<const T> a = cached_pack<T>(p.filter_cache, name, G * rpad * Kg, [&](T* dst) {
    for (int64_t g = 0; g < G; ++g)
      for (int64_t kb0 = 0; kb0 < Kg; kb0 += kKc) {
        const int64_t kc = std::min(kKc, Kg - kb0);
        for (int64_t row = 0; row < rpad; ++row) {
          T* d = dst + g * rpad * Kg + kb0 * rpad + row / MR * kc * MR + row % MR;
          const int64_t c = row / (p.R * p.S), r = row / p.S % p.R, s = row % p.S;
          for (int64_t k = 0; k < kc; ++k)
            d[k * MR] = row < rows ? w[(g * Kg + kb0 + k) * ws[0] + c * ws[1] + r * ws[2] + s * ws[3]] : T(0);
        }
      }
  });

  balanced_for_ranges(p.N * G, task_grain(p.N * G, 2.0 * p.N * p.K * rows * pixels),
                      [&](int64_t begin, int64_t end) {
    AlignedBuffer<T> b(kKc * block);
    AlignedBuffer<T> cols(rpad * block);
    AlignedBuffer<T> row(block);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / G, g = task % G;
      for (int64_t c = 0; c < Cg; ++c) {
        const T v = bias != nullptr ? bias[g * Cg + c] : T(0);
        T* plane = dx + n * xs[0] + (g * Cg + c) * xs[1];
        for (int64_t h = 0; h < p.H; ++h)
          for (int64_t x = 0; x < p.W; ++x) plane[h * xs[2] + x * xs[3]] = v;
      }
      for (int64_t j0 = 0; j0 < pixels; j0 += block) {
        const int64_t jn = std::min(block, pixels - j0), panels = ceil_div(jn, NR);
        for (int64_t kb0 = 0; kb0 < Kg; kb0 += kKc) {
          const int64_t kc = std::min(kKc, Kg - kb0);
          // B = dy[k][pixels] panels, through one contiguous row of the block.
          for (int64_t k = 0; k < kc; ++k) {
            const T* src = dy + n * ys[0] + (g * Kg + kb0 + k) * ys[1];
            int64_t jj = 0;
            for_each_row_run(j0, j0 + jn, p.P, p.Q, [&](int64_t, int64_t pp, int64_t q0, int64_t len) {
              copy_row_segment(src + pp * ys[2], p.Q, q0, 1, ys[3], len, row.get() + jj, 1);
              jj += len;
            });
            for (; jj < panels * NR; ++jj) row.get()[jj] = T(0);
            for (int64_t np = 0; np < panels; ++np)
              std::copy(row.get() + np * NR, row.get() + (np + 1) * NR, b.get() + np * kc * NR + k * NR);
          }
          for (int64_t np = 0; np < panels; ++np)
            for (int64_t mp = 0; mp < rpad / MR; ++mp)
              row_panel_kernels(uk, rows - mp * MR).fn(kc, a.get() + g * rpad * Kg + kb0 * rpad + mp * kc * MR, b.get() + np * kc * NR,
                    cols.get() + mp * MR * block + np * NR, block, kb0 == 0 ? AccInit::Zero : AccInit::Load,
                    nullptr);
        }
        // col2im: add each column entry to the input pixel its tap reads.
        for (int64_t row = 0; row < rows; ++row) {
          const int64_t c = row / (p.R * p.S), r = row / p.S % p.R, s = row % p.S;
          T* plane = dx + n * xs[0] + (g * Cg + c) * xs[1];
          const T* src = cols.get() + row * block;
          int64_t jj = 0;
          for_each_row_run(j0, j0 + jn, p.P, p.Q, [&](int64_t, int64_t pp, int64_t q0, int64_t len) {
            const int64_t h = pp * p.stride_h - p.pad_h + r * p.dil_h;
            if (h >= 0 && h < p.H)
              add_row_segment(plane + h * xs[2], p.W, q0 * p.stride_w - p.pad_w + s * p.dil_w, p.stride_w,
                              xs[3], len, src + jj);
            jj += len;
          });
        }
      }
    }
  });
}

// One correlation per stride phase of dx (see the top of this file).
template <typename T>
void dgrad_phases(const Conv2dParams& p) {
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
      c.filter_cache = p.filter_cache;
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

// A strided dgrad into an NCHW-like dx (unit w step) with long rows: each phase's
// output pixels are stride_w apart in dx's rows, so the correlation would store
// them one at a time; instead the phases write a channels-last buffer (whole
// channel vectors per pixel), which is then transposed into dx by the ISA's
// transposing copy, a row of pixels at a time. Measured at batch 2, stride 2:
// 64 -> 32 channels to 96x96 (a segmentation decoder's conv_transpose2d) 1.64 ->
// 1.08 ms, 64 channels to 96x96 3.1 -> 1.9 ms; rows of 48 or fewer pixels
// (128-256 channels at 24x24 and 48x48) were 7-14% slower this way, so they keep
// the strided stores.
// Phases of 2x2 taps or more (a 3x3 filter at stride 2) take Winograd
// (correlation_winograd.cpp) over channels-last data: then rows of any length
// go this way, with an NCHW-like dy copied channels-last once (not once per
// phase): conv_transpose2d 256 -> 128 channels to 50x50, batch 8, NCHW, 16.9 ->
// 14.1 ms on Zen 4 (channels_last 14.6 -> 12.2 from Winograd alone).
constexpr int64_t kChannelsLastMinRow = 64;
bool phases_take_winograd(const Conv2dParams& p) {  // the phase with the most taps
  return p.groups == 1 && p.dil_h == 1 && p.dil_w == 1 &&
         winograd_fits(ceil_div(p.R, p.stride_h), ceil_div(p.S, p.stride_w), p.K, p.C);
}

template <typename T>
bool dgrad_via_channels_last(const Conv2dParams& p) {
  const int64_t* xs = p.x_strides;
  const auto transpose = active_microkernel<T>().gather_columns;
  const bool winograd = phases_take_winograd(p);
  if (p.stride_h * p.stride_w == 1 || (p.W < kChannelsLastMinRow && !winograd) || xs[3] != 1 || xs[1] == 1 ||
      transpose == nullptr || p.C > kMaxGatherStride)
    return false;
  AlignedBuffer<T> buffer(p.N * p.H * p.W * p.C);
  Conv2dParams q = p;
  const int64_t* ys = p.y_strides;
  const bool copy_dy = winograd && ys[3] == 1 && ys[1] != 1;
  AlignedBuffer<T> dy_copy(copy_dy ? p.N * p.P * p.Q * p.K : 0);
  if (copy_dy) {
    to_channels_last(static_cast<const T*>(p.y), ys, p.N, p.K, p.P, p.Q, dy_copy.get(), q.y_strides);
    q.y = dy_copy.get();
  }
  q.x = buffer.get();
  q.x_strides[0] = p.H * p.W * p.C;
  q.x_strides[1] = 1;
  q.x_strides[2] = p.W * p.C;
  q.x_strides[3] = p.C;
  dgrad_phases<T>(q);
  from_channels_last(buffer.get(), p.N, p.C, p.H, p.W, static_cast<T*>(p.x), xs);  // dx[n, c, h, w] = buffer[n, h, w, c]
  return true;
}

template <typename T>
void dgrad(const Conv2dParams& p) {
  if (p.C / p.groups < kFewChannels) dgrad_col2im<T>(p);
  else if (!dgrad_via_channels_last<T>(p)) dgrad_phases<T>(p);
}

}  // namespace

void conv2d_dgrad(const Conv2dParams& p) {
  if (p.dtype == DType::Float64) dgrad<double>(p);
  else dgrad<float>(p);
}

}  // namespace cpu
}  // namespace cnnops
