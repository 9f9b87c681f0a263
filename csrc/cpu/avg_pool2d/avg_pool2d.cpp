// Average pooling on the CPU: the dispatch between the paths, and the planes
// path (NCHW and any other strides), forward and backward.
//
// Planes: parallel over (n, c) planes on at::parallel_for, each plane done by
// one thread in a fixed order. Forward, per output row: the window's input
// rows are summed into one row (vectorised over the row), then its columns:
// where the windows along W are regular (avg_pool2d; adaptive when W is a
// multiple of Q) the kw taps are kw vectorised passes over the row sum
// (stride 1: the row sum itself between zero padding; stride s: its s phase
// rows, phase_rows.h), else each output sums its columns. Then the row is
// multiplied by 1 / divisor.
// Backward, the transpose, as a gather (no atomics): grad_output is first
// multiplied by 1 / divisor, then per input row the output rows whose windows
// hold it are summed, then per input column the output columns: regular
// windows as taps over that sum by stride phase (the columns of one phase meet
// the outputs at consecutive offsets), else one column at a time.
// Strided inputs and outputs are copied to and from contiguous rows.
#include "avg_pool2d.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "avg_pool2d_kernels.h"
#include "avg_pool2d_windows.h"
#include "../util/phase_rows.h"
#include "../util/stream_stores.h"

namespace cnnops {
namespace cpu {
namespace avg_pool {

template <typename T>
void fwd_planes(const AvgPool2dParams& p, const Windows<T>& win) {
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  const AvgPoolKernels<T>& vk = active_avg_pool_kernels<T>();
  const bool x_rows = p.x_strides[3] == 1, y_rows = p.y_strides[3] == 1;
  const int64_t kw = win.kw, sw = win.sw, pad_l = win.pad_l;
  const bool stencil1 = win.regular_w && sw == 1;  // taps read the padded row sum in place
  const int64_t len = win.regular_w ? phase_len(p.Q, kw, sw) : 0;
  const int64_t vlen = stencil1 ? std::max(pad_l + p.W, p.Q + kw - 1) : p.W;
  at::parallel_for(0, p.N * p.C, grain_for(p.H * p.W + p.P * p.Q), [&](int64_t begin, int64_t end) {
    std::vector<T> plane(x_rows ? 0 : p.H * p.W), vsum(vlen, T(0)), ybuf(y_rows ? 0 : p.Q);
    std::vector<T> phases(win.regular_w && sw > 1 ? sw * len : 0);
    std::vector<const T*> rows(std::max<int64_t>(win.most_rows, 1)), taps(std::max<int64_t>(kw, 1));
    T* vs = vsum.data() + (stencil1 ? pad_l : 0);
    for (int64_t j = 0; j < kw; ++j)
      taps[j] = stencil1 ? vsum.data() + j : phases.data() + (j % sw) * len + j / sw;
    for (int64_t plane_id = begin; plane_id < end; ++plane_id) {
      const int64_t n = plane_id / p.C, c = plane_id % p.C;
      const T* xp = x + n * p.x_strides[0] + c * p.x_strides[1];
      int64_t row_stride = p.x_strides[2];
      if (!x_rows) {
        for (int64_t h = 0; h < p.H; ++h)
          for (int64_t w = 0; w < p.W; ++w) plane[h * p.W + w] = xp[h * p.x_strides[2] + w * p.x_strides[3]];
        xp = plane.data();
        row_stride = p.W;
      }
      for (int64_t pp = 0; pp < p.P; ++pp) {
        const int64_t nr = std::max<int64_t>(0, win.hhi[pp] - win.hlo[pp]);
        for (int64_t r = 0; r < nr; ++r) rows[r] = xp + (win.hlo[pp] + r) * row_stride;
        vk.sum_rows(p.W, nr, rows.data(), nullptr, T(1), vs, false);
        T* yr = y + n * p.y_strides[0] + c * p.y_strides[1] + pp * p.y_strides[2];
        T* dst = y_rows ? yr : ybuf.data();
        if (win.regular_w) {
          if (sw > 1) vk.split_row(vs, p.W, pad_l, sw, len, phases.data());
          vk.sum_rows(p.Q, kw, taps.data(), win.scale_row(pp), win.alpha, dst, false);
        } else {
          for (int64_t q = 0; q < p.Q; ++q) {
            T s = T(0);
            for (int64_t w = win.wlo[q]; w < win.whi[q]; ++w) s += vs[w];
            dst[q] = s * win.scale_at(pp, q);
          }
        }
        if (!y_rows)
          for (int64_t q = 0; q < p.Q; ++q) yr[q * p.y_strides[3]] = ybuf[q];
      }
    }
  });
}

// Input columns w = phase + m*sw (m < count) lie in the windows of output
// columns m + c for c in [c_lo, c_hi]: the same offsets for every column of
// the phase, so each offset is one vectorised pass over the column sums t.
template <typename T>
void bwd_planes(const AvgPool2dParams& p, const Windows<T>& win) {
  T* dx = static_cast<T*>(p.x);
  const T* dy = static_cast<const T*>(p.y);
  const AvgPoolKernels<T>& vk = active_avg_pool_kernels<T>();
  const bool dx_rows = p.x_strides[3] == 1, dy_rows = p.y_strides[3] == 1;
  const int64_t kw = win.kw, sw = win.sw, pad_l = win.pad_l;
  const bool direct = win.regular_w && sw == 1 && dx_rows;  // one phase, written in place
  const bool stream = direct && stream_output(p.N * p.C * p.H * p.W * int64_t(sizeof(T)));
  const int64_t nphase = (p.W + sw - 1) / sw;
  // t: the column sums of one input row between zeros, so that every offset
  // of every phase reads inside it (columns before 0 and from Q on are zeros).
  const int64_t toff = win.regular_w ? (kw - 1) / sw + 1 : 0;
  const int64_t tlen = toff + std::max(p.Q, (p.W - 1 + pad_l) / sw + 1) + 1;
  at::parallel_for(0, p.N * p.C, grain_for(p.H * p.W + p.P * p.Q), [&](int64_t begin, int64_t end) {
    std::vector<T> z(p.P * p.Q), t(tlen, T(0)), acc(direct ? 0 : sw * nphase), dybuf(dy_rows ? 0 : p.Q);
    std::vector<const T*> rows(std::max<int64_t>(win.most_outputs_h, 1)), taps(std::max<int64_t>(kw, 1));
    T* tq = t.data() + toff;
    for (int64_t plane_id = begin; plane_id < end; ++plane_id) {
      const int64_t n = plane_id / p.C, c = plane_id % p.C;
      const T* dyp = dy + n * p.y_strides[0] + c * p.y_strides[1];
      for (int64_t pp = 0; pp < p.P; ++pp) {
        const T* src = dyp + pp * p.y_strides[2];
        if (!dy_rows) {
          for (int64_t q = 0; q < p.Q; ++q) dybuf[q] = src[q * p.y_strides[3]];
          src = dybuf.data();
        }
        vk.sum_rows(p.Q, 1, &src, win.scale_row(pp), win.alpha, z.data() + pp * p.Q, false);
      }
      T* dxp = dx + n * p.x_strides[0] + c * p.x_strides[1];
      for (int64_t h = 0; h < p.H; ++h) {
        const int64_t nr = std::max<int64_t>(0, win.plast[h] - win.pfirst[h] + 1);
        for (int64_t r = 0; r < nr; ++r) rows[r] = z.data() + (win.pfirst[h] + r) * p.Q;
        vk.sum_rows(p.Q, nr, rows.data(), nullptr, T(1), tq, false);
        T* dxr = dxp + h * p.x_strides[2];
        if (!win.regular_w) {
          for (int64_t w = 0; w < p.W; ++w) {
            T s = T(0);
            for (int64_t q = win.qfirst[w]; q <= win.qlast[w]; ++q) s += tq[q];
            dxr[w * p.x_strides[3]] = s;
          }
          continue;
        }
        for (int64_t phase = 0; phase < sw && phase < p.W; ++phase) {
          const int64_t count = (p.W - phase + sw - 1) / sw;
          const int64_t c_lo = -floor_div(-(phase + pad_l - kw + 1), sw), c_hi = (phase + pad_l) / sw;
          for (int64_t k = c_lo; k <= c_hi; ++k) taps[k - c_lo] = tq + k;
          vk.sum_rows(count, c_hi - c_lo + 1, taps.data(), nullptr, T(1),
                      direct ? dxr : acc.data() + phase * nphase, stream);
        }
        if (!direct)
          for (int64_t phase = 0; phase < sw && phase < p.W; ++phase) {
            const T* a = acc.data() + phase * nphase;
            for (int64_t w = phase, m = 0; w < p.W; w += sw, ++m) dxr[w * p.x_strides[3]] = a[m];
          }
      }
    }
    if (stream) stream_fence();
  });
}

template <typename T>
void forward(const AvgPool2dParams& p) {
  const Windows<T> win(p);
  if (win.global && fwd_global(p, win)) return;
  if (channels_inner(p.x_strides, p.C) && channels_inner(p.y_strides, p.C)) fwd_channels_last(p, win);
  else fwd_planes(p, win);
}

template <typename T>
void backward(const AvgPool2dParams& p) {
  const Windows<T> win(p);
  if (win.global && bwd_global(p, win)) return;
  if (channels_inner(p.x_strides, p.C) && channels_inner(p.y_strides, p.C)) bwd_channels_last(p, win);
  else bwd_planes(p, win);
}

}  // namespace avg_pool

void avg_pool2d_fwd(const AvgPool2dParams& p) {
  if (p.dtype == DType::Float64) avg_pool::forward<double>(p);
  else avg_pool::forward<float>(p);
}

void avg_pool2d_bwd(const AvgPool2dParams& p) {
  if (p.dtype == DType::Float64) avg_pool::backward<double>(p);
  else avg_pool::backward<float>(p);
}

}  // namespace cpu
}  // namespace cnnops
