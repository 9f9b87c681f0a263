// Max pooling on the CPU, forward and backward, bit-for-bit as torch's.
//
// Forward, two paths (and plain loops for tiny problems, fwd_tiny/bwd_tiny); both
// run the ISA-dispatched vector kernel max_taps (max_pool2d_kernels.h), which keeps
// a block of (max, index) lanes over all the taps of a window:
//   planes (any strides, NCHW the fast case): parallel over (n, c) planes. The
//     lanes are an output row; each tap reads a contiguous phase row
//     (phase_rows.h, padding as -inf) and its index is base + q*stride_w.
//   channels_last (x, y and indices channels-innermost): parallel over output
//     pixels; the lanes are the channels, all taps of a pixel in one call.
// The update rule is torch's: take v when v > max or v is NaN, taps in
// row-major order; a window whose taps are all -inf keeps its first valid tap.
// Without indices (p.indices null: inference) both paths run max_values, which
// keeps only the maxima, by the same rule.
//
// Backward is a deterministic gather, not a scatter: each input element sums
// grad_output over the output windows that can contain it and whose index
// names it, in output order, which is the order torch's scatter adds in.
// Vector kernels do it: for channels_last, gather_pixel takes all windows of
// one input pixel at once and vectorises over the channels (parallel over
// input rows); it stores dx with non-temporal stores when dx is larger than
// the threads' L2 caches (stream_stores.h), since no pass reads dx back. For
// planes, gather_grad vectorises over the input columns of one stride phase,
// whose windows sit at consecutive output columns (parallel over planes).
// Indices outside [0, H*W) are reported, not followed; the check runs with
// the vector kernel in_range, per plane (fused) or per output pixel.
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "max_pool2d.h"
#include "max_pool2d_kernels.h"
#include "../util/buffer.h"
#include "../util/phase_rows.h"
#include "../util/stream_stores.h"
#include "../../common/shape.h"

namespace cnnops {
namespace cpu {
namespace {

bool channels_inner(const int64_t* s, int64_t C) { return C > 1 && s[1] == 1; }

bool all_channels_inner(const MaxPool2dParams& p) {
  return channels_inner(p.x_strides, p.C) && channels_inner(p.y_strides, p.C) &&
         (p.indices == nullptr || channels_inner(p.i_strides, p.C));
}

// Tiny problems (a few thousand taps in all: batch-1 layers of small models): one
// plain loop over every output and tap, any strides, on the calling thread. The
// planes path's per-row calls, phase rows and buffers cost more there than the
// arithmetic; so does the channels_last gather of the backward (its forward's
// vectors do not, and keep it). Same rule and first-valid-tap start as the
// vector kernels.
constexpr int64_t kTinyTaps = 8192;

bool tiny(const MaxPool2dParams& p, bool cl) { return !cl && p.N * p.C * p.P * p.Q * p.R * p.S <= kTinyTaps; }

// The taps [*lo, *hi) of a window starting at `start` that fall inside [0, size).
inline void valid_taps(int64_t start, int64_t k, int64_t dil, int64_t size, int64_t* lo, int64_t* hi) {
  *lo = start >= 0 ? 0 : (-start + dil - 1) / dil;
  *hi = start + (k - 1) * dil < size ? k : start >= size ? 0 : (size - 1 - start) / dil + 1;
  *hi = std::max(*hi, *lo);
}

// The update is written as selects, not branches: on a few thousand random
// taps a mispredicted branch per tap was most of the call.
template <typename T, bool kIndices>
void fwd_tiny_impl(const MaxPool2dParams& p) {
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  int64_t* ind = static_cast<int64_t*>(p.indices);
  const int64_t xsh = p.x_strides[2], xsw = p.x_strides[3];
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t c = 0; c < p.C; ++c) {
      const T* xp = x + n * p.x_strides[0] + c * p.x_strides[1];
      T* yp = y + n * p.y_strides[0] + c * p.y_strides[1];
      int64_t* ip = kIndices ? ind + n * p.i_strides[0] + c * p.i_strides[1] : nullptr;
      for (int64_t pp = 0; pp < p.P; ++pp) {
        const int64_t hs = pp * p.stride_h - p.pad_h;
        int64_t r0, r1;
        valid_taps(hs, p.R, p.dil_h, p.H, &r0, &r1);
        for (int64_t q = 0; q < p.Q; ++q) {
          const int64_t ws = q * p.stride_w - p.pad_w;
          int64_t s0, s1;
          valid_taps(ws, p.S, p.dil_w, p.W, &s0, &s1);
          T best = -std::numeric_limits<T>::infinity();
          int64_t tap = pool_first_valid(hs, p.dil_h) * p.W + pool_first_valid(ws, p.dil_w);
          for (int64_t r = r0; r < r1; ++r) {
            const int64_t h = hs + r * p.dil_h;
            const T* row = xp + h * xsh;
            for (int64_t s = s0; s < s1; ++s) {
              const int64_t w = ws + s * p.dil_w;
              const T v = row[w * xsw];
              const bool take = v > best || v != v;
              best = take ? v : best;
              if (kIndices) tap = take ? h * p.W + w : tap;
            }
          }
          yp[pp * p.y_strides[2] + q * p.y_strides[3]] = best;
          if (kIndices) ip[pp * p.i_strides[2] + q * p.i_strides[3]] = tap;
        }
      }
    }
}

template <typename T>
void fwd_tiny(const MaxPool2dParams& p) {
  if (p.indices != nullptr) fwd_tiny_impl<T, true>(p);
  else fwd_tiny_impl<T, false>(p);
}

// Whether a tensor of sizes (N, C, H, W) with these strides fills its span with
// no gaps, in NCHW or channels-last order (what at::empty gives dx).
bool dense_nchw_or_cl(const int64_t* s, int64_t N, int64_t C, int64_t H, int64_t W) {
  const bool nchw = s[3] == 1 && s[2] == W && s[1] == H * W && (N == 1 || s[0] == C * H * W);
  const bool cl = s[1] == 1 && s[3] == C && s[2] == W * C && (N == 1 || s[0] == H * W * C);
  return nchw || cl;
}

// The backward of fwd_tiny's problems: a scatter in output order, which is the
// order the gather below sums in, with its rules: an index counts only for an
// input position inside its window's extent, and one outside [0, H*W) fails the
// call unless its window has no input position. A dense dx is cleared in one
// memset (element by element at the channels-last strides, and an index split
// by a 64-bit division, were most of a (1, 8, 8, 8) call's 1 us).
template <typename T>
bool bwd_tiny(const MaxPool2dParams& p) {
  T* dx = static_cast<T*>(p.x);
  const T* dy = static_cast<const T*>(p.y);
  const int64_t* ind = static_cast<const int64_t*>(p.indices);
  const int64_t eh = effective_kernel(p.R, p.dil_h), ew = effective_kernel(p.S, p.dil_w), HW = p.H * p.W;
  const bool dense = dense_nchw_or_cl(p.x_strides, p.N, p.C, p.H, p.W);
  // H*W below 2^32 (the tiny problems' planes, nearly always): a 32-bit division.
  const bool small_plane = HW <= int64_t(UINT32_MAX);
  const uint32_t W32 = uint32_t(p.W);
  if (dense) std::memset(dx, 0, size_t(p.N * p.C * HW) * sizeof(T));
  bool ok = true;
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t c = 0; c < p.C; ++c) {
      T* dxp = dx + n * p.x_strides[0] + c * p.x_strides[1];
      if (!dense)
        for (int64_t h = 0; h < p.H; ++h)
          for (int64_t w = 0; w < p.W; ++w) dxp[h * p.x_strides[2] + w * p.x_strides[3]] = T(0);
      for (int64_t pp = 0; pp < p.P; ++pp) {
        const int64_t hs = pp * p.stride_h - p.pad_h;
        const bool row_empty = pool_window_empty(hs, p.R, p.dil_h, p.H);
        for (int64_t q = 0; q < p.Q; ++q) {
          const int64_t ws = q * p.stride_w - p.pad_w;
          const int64_t i = ind[n * p.i_strides[0] + c * p.i_strides[1] + pp * p.i_strides[2] + q * p.i_strides[3]];
          if (i < 0 || i >= HW) {
            ok &= row_empty || pool_window_empty(ws, p.S, p.dil_w, p.W);
            continue;
          }
          const int64_t h = small_plane ? int64_t(uint32_t(i) / W32) : i / p.W, w = i - h * p.W;
          if (h >= hs && h < hs + eh && w >= ws && w < ws + ew)
            dxp[h * p.x_strides[2] + w * p.x_strides[3]] +=
                dy[n * p.y_strides[0] + c * p.y_strides[1] + pp * p.y_strides[2] + q * p.y_strides[3]];
        }
      }
    }
  return ok;
}

// Output rows are done in bands; each input row a band needs is split into
// its phase rows once (kept in `phases`, about 256 KiB), then every window of
// the band reads them.
template <typename T>
void fwd_planes(const MaxPool2dParams& p) {
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  int64_t* ind = static_cast<int64_t*>(p.indices);
  const int64_t sw = p.stride_w, RS = p.R * p.S, eh = effective_kernel(p.R, p.dil_h);
  const int64_t len = phase_len(p.Q, effective_kernel(p.S, p.dil_w), sw), row_len = sw * len;
  const int64_t band =
      std::clamp<int64_t>(((256 << 10) / (row_len * int64_t(sizeof(T))) - eh) / p.stride_h + 1, 1, p.P);
  const int64_t band_rows = (band - 1) * p.stride_h + eh;
  const T neg_inf = -std::numeric_limits<T>::infinity();
  const bool direct = p.y_strides[3] == 1 && (ind == nullptr || p.i_strides[3] == 1);
  std::vector<int64_t> wfirst(p.Q);
  for (int64_t q = 0; q < p.Q; ++q) wfirst[q] = pool_first_valid(q * sw - p.pad_w, p.dil_w);
  const PoolKernels<T>& vk = active_pool_kernels<T>();
  at::parallel_for(0, p.N * p.C, grain_for(p.H * p.W + p.P * p.Q), [&](int64_t begin, int64_t end) {
    std::vector<T> phases(band_rows * row_len), ybuf(direct ? 0 : p.Q);
    std::vector<int64_t> ibuf(direct ? 0 : p.Q), init(p.Q), base(RS);
    std::vector<const T*> rows(RS);
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t n = plane / p.C, c = plane % p.C;
      const T* xp = x + n * p.x_strides[0] + c * p.x_strides[1];
      for (int64_t p0 = 0; p0 < p.P; p0 += band) {
        const int64_t p1 = std::min(p.P, p0 + band), h0 = p0 * p.stride_h - p.pad_h;
        const int64_t hlo = std::max<int64_t>(h0, 0);
        const int64_t hhi = std::min(p.H, (p1 - 1) * p.stride_h - p.pad_h + eh);
        for (int64_t h = hlo; h < hhi; ++h)
          vk.split_row(xp + h * p.x_strides[2], p.W, p.x_strides[3], p.pad_w, sw, len, neg_inf,
                       phases.data() + (h - h0) * row_len);
        for (int64_t pp = p0; pp < p1; ++pp) {
          const int64_t hs = pp * p.stride_h - p.pad_h;
          for (int64_t r = 0; r < p.R; ++r) {
            const int64_t h = hs + r * p.dil_h;
            const T* ph = phases.data() + (h - h0) * row_len;
            for (int64_t s = 0; s < p.S; ++s) {
              const int64_t o = s * p.dil_w;
              rows[r * p.S + s] = h >= 0 && h < p.H ? ph + (o % sw) * len + o / sw : nullptr;
              base[r * p.S + s] = h * p.W + o - p.pad_w;
            }
          }
          T* yr = y + n * p.y_strides[0] + c * p.y_strides[1] + pp * p.y_strides[2];
          if (ind == nullptr) {
            vk.max_values(p.Q, RS, rows.data(), direct ? yr : ybuf.data());
            if (!direct)
              for (int64_t q = 0; q < p.Q; ++q) yr[q * p.y_strides[3]] = ybuf[q];
            continue;
          }
          const int64_t hf = pool_first_valid(hs, p.dil_h) * p.W;
          for (int64_t q = 0; q < p.Q; ++q) init[q] = hf + wfirst[q];
          int64_t* ir = ind + n * p.i_strides[0] + c * p.i_strides[1] + pp * p.i_strides[2];
          vk.max_taps(p.Q, RS, rows.data(), base.data(), sw, init.data(), direct ? yr : ybuf.data(),
                      direct ? ir : ibuf.data());
          if (!direct) {
            for (int64_t q = 0; q < p.Q; ++q) {
              yr[q * p.y_strides[3]] = ybuf[q];
              ir[q * p.i_strides[3]] = ibuf[q];
            }
          }
        }
      }
    }
  });
}

template <typename T>
void fwd_channels_last(const MaxPool2dParams& p) {
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  int64_t* ind = static_cast<int64_t*>(p.indices);
  const int64_t C = p.C, RS = p.R * p.S;
  const int64_t grain = std::max<int64_t>(1, 4096 / C);
  const PoolKernels<T>& vk = active_pool_kernels<T>();
  at::parallel_for(0, p.N * p.P * p.Q, grain, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> init(C, -1), base(RS);
    std::vector<const T*> rows(RS);
    for (int64_t pix = begin; pix < end; ++pix) {
      const int64_t n = pix / (p.P * p.Q), pp = pix / p.Q % p.P, q = pix % p.Q;
      const int64_t hs = pp * p.stride_h - p.pad_h, ws = q * p.stride_w - p.pad_w;
      for (int64_t r = 0; r < p.R; ++r) {
        const int64_t h = hs + r * p.dil_h;
        for (int64_t s = 0; s < p.S; ++s) {
          const int64_t w = ws + s * p.dil_w;
          const bool inside = h >= 0 && h < p.H && w >= 0 && w < p.W;
          rows[r * p.S + s] =
              inside ? x + n * p.x_strides[0] + h * p.x_strides[2] + w * p.x_strides[3] : nullptr;
          base[r * p.S + s] = h * p.W + w;
        }
      }
      T* yp = y + n * p.y_strides[0] + pp * p.y_strides[2] + q * p.y_strides[3];
      if (ind == nullptr) {
        vk.max_values(C, RS, rows.data(), yp);
        continue;
      }
      const int64_t first = pool_first_valid(hs, p.dil_h) * p.W + pool_first_valid(ws, p.dil_w);
      if (init[0] != first) std::fill(init.begin(), init.end(), first);
      vk.max_taps(C, RS, rows.data(), base.data(), 0, init.data(), yp,
                  ind + n * p.i_strides[0] + pp * p.i_strides[2] + q * p.i_strides[3]);
    }
  });
}

// Windows with no input position are exempt from the index check: torch's
// forward gives them -inf and an index past their first tap (which can lie
// outside the plane), and they pass no gradient back.
struct EmptyWindows {
  std::vector<char> row, col;
  bool any_col = false;
  explicit EmptyWindows(const MaxPool2dParams& p) : row(p.P), col(p.Q) {
    for (int64_t pp = 0; pp < p.P; ++pp)
      row[pp] = pool_window_empty(pp * p.stride_h - p.pad_h, p.R, p.dil_h, p.H);
    for (int64_t q = 0; q < p.Q; ++q) {
      col[q] = pool_window_empty(q * p.stride_w - p.pad_w, p.S, p.dil_w, p.W);
      any_col |= col[q] != 0;
    }
  }
};

// Whether the Q (contiguous) indices of output row pp lie in [0, H*W), windows
// with no input position exempt.
template <typename T>
bool row_indices_valid(const MaxPool2dParams& p, const EmptyWindows& empty, int64_t pp, const int64_t* ir,
                       const PoolKernels<T>& vk) {
  const int64_t HW = p.H * p.W;
  if (empty.row[pp]) return true;
  if (!empty.any_col) return vk.in_range(p.Q, ir, HW);
  bool ok = true;
  for (int64_t q = 0; q < p.Q; ++q) ok &= empty.col[q] | ((ir[q] >= 0) & (ir[q] < HW));
  return ok;
}

// Output windows along one axis that can contain input position i: [lo, hi].
inline void window_range(int64_t i, int64_t pad, int64_t stride, int64_t extent, int64_t out, int64_t* lo,
                         int64_t* hi) {
  const int64_t a = i + pad - extent + 1;  // window start >= a
  *lo = std::max<int64_t>(0, a <= 0 ? 0 : (a + stride - 1) / stride);
  *hi = std::min<int64_t>(out - 1, floor_div(i + pad, stride));
}

// Copies a plane's P x Q values (any strides) into a contiguous buffer.
template <typename U>
const U* contiguous_plane(const U* src, int64_t P, int64_t Q, int64_t sp, int64_t sq, U* buf) {
  if (sq == 1 && sp == Q) return src;
  for (int64_t pp = 0; pp < P; ++pp)
    for (int64_t q = 0; q < Q; ++q) buf[pp * Q + q] = src[pp * sp + q * sq];
  return buf;
}

// Input columns w = phase + j*sw, j < count, meet output column q = j + c for
// c in [c_lo, c_hi] (ascending c is ascending q: torch's order).
template <typename T>
bool bwd_planes(const MaxPool2dParams& p) {
  T* dx = static_cast<T*>(p.x);
  const T* dy = static_cast<const T*>(p.y);
  const int64_t* ind = static_cast<const int64_t*>(p.indices);
  const int64_t sw = p.stride_w, PQ = p.P * p.Q;
  const int64_t eh = effective_kernel(p.R, p.dil_h), ew = effective_kernel(p.S, p.dil_w);
  const int64_t nphase_max = (p.W + sw - 1) / sw;
  const EmptyWindows empty(p);
  const PoolKernels<T>& vk = active_pool_kernels<T>();
  std::atomic<bool> ok{true};
  at::parallel_for(0, p.N * p.C, grain_for(p.H * p.W + p.P * p.Q), [&](int64_t begin, int64_t end) {
    std::vector<T> acc(sw * nphase_max), dybuf(PQ);
    std::vector<int64_t> ibuf(PQ);
    bool good = true;
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t n = plane / p.C, c = plane % p.C;
      const T* dyp = contiguous_plane(dy + n * p.y_strides[0] + c * p.y_strides[1], p.P, p.Q, p.y_strides[2],
                                      p.y_strides[3], dybuf.data());
      const int64_t* ip = contiguous_plane(ind + n * p.i_strides[0] + c * p.i_strides[1], p.P, p.Q,
                                           p.i_strides[2], p.i_strides[3], ibuf.data());
      for (int64_t pp = 0; pp < p.P; ++pp) good &= row_indices_valid(p, empty, pp, ip + pp * p.Q, vk);
      T* dxp = dx + n * p.x_strides[0] + c * p.x_strides[1];
      for (int64_t h = 0; h < p.H; ++h) {
        int64_t plo, phi;
        window_range(h, p.pad_h, p.stride_h, eh, p.P, &plo, &phi);
        std::fill(acc.begin(), acc.end(), T(0));
        for (int64_t phase = 0; phase < sw && phase < p.W; ++phase) {
          const int64_t count = (p.W - phase + sw - 1) / sw;
          const int64_t c_lo = -floor_div(-(phase + p.pad_w - ew + 1), sw);
          const int64_t c_hi = floor_div(phase + p.pad_w, sw);
          T* a = acc.data() + phase * nphase_max;
          for (int64_t pp = plo; pp <= phi; ++pp)
            for (int64_t cq = c_lo; cq <= c_hi; ++cq) {
              const int64_t jlo = std::max<int64_t>(0, -cq), jhi = std::min(count, p.Q - cq);
              if (jlo >= jhi) continue;
              const int64_t o = pp * p.Q + jlo + cq;
              vk.gather_grad(jhi - jlo, ip + o, h * p.W + phase + jlo * sw, sw, dyp + o, a + jlo);
            }
        }
        vk.merge_row(acc.data(), p.W, sw, nphase_max, dxp + h * p.x_strides[2], p.x_strides[3]);
      }
    }
    if (!good) ok = false;
  });
  return ok;
}

template <typename T>
bool bwd_channels_last(const MaxPool2dParams& p) {
  T* dx = static_cast<T*>(p.x);
  const T* dy = static_cast<const T*>(p.y);
  const int64_t* ind = static_cast<const int64_t*>(p.indices);
  const int64_t C = p.C;
  const int64_t eh = effective_kernel(p.R, p.dil_h), ew = effective_kernel(p.S, p.dil_w);
  const EmptyWindows empty(p);
  const PoolKernels<T>& vk = active_pool_kernels<T>();
  std::atomic<bool> ok{true};
  at::parallel_for(0, p.N * p.P, grain_for(p.Q * C), [&](int64_t begin, int64_t end) {  // index check
    bool good = true;
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / p.P, pp = row % p.P;
      const int64_t* ir = ind + n * p.i_strides[0] + pp * p.i_strides[2];
      if (empty.row[pp]) continue;
      if (p.i_strides[3] == C && !empty.any_col) {
        good &= vk.in_range(p.Q * C, ir, p.H * p.W);
        continue;
      }
      for (int64_t q = 0; q < p.Q; ++q)
        if (!empty.col[q]) good &= vk.in_range(C, ir + q * p.i_strides[3], p.H * p.W);
    }
    if (!good) ok = false;
  });
  if (!ok) return false;
  std::vector<int64_t> qlo(p.W), qhi(p.W);
  int64_t most_cols = 0, most_rows = 0;  // windows over one input column / row, at most
  for (int64_t w = 0; w < p.W; ++w) {
    window_range(w, p.pad_w, p.stride_w, ew, p.Q, &qlo[w], &qhi[w]);
    most_cols = std::max(most_cols, qhi[w] - qlo[w] + 1);
  }
  for (int64_t h = 0; h < p.H; ++h) {
    int64_t plo, phi;
    window_range(h, p.pad_h, p.stride_h, eh, p.P, &plo, &phi);
    most_rows = std::max(most_rows, phi - plo + 1);
  }
  const bool stream = stream_output(p.N * p.H * p.W * C * int64_t(sizeof(T)));
  at::parallel_for(0, p.N * p.H, grain_for(p.W * C), [&](int64_t begin, int64_t end) {
    std::vector<const int64_t*> win_idx(most_rows * most_cols);  // one input pixel's windows
    std::vector<const T*> win_dy(most_rows * most_cols);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / p.H, h = row % p.H;
      int64_t plo, phi;
      window_range(h, p.pad_h, p.stride_h, eh, p.P, &plo, &phi);
      const T* dyn = dy + n * p.y_strides[0];
      const int64_t* in = ind + n * p.i_strides[0];
      for (int64_t w = 0; w < p.W; ++w) {
        int64_t nwin = 0;
        for (int64_t pp = plo; pp <= phi; ++pp)
          for (int64_t q = qlo[w]; q <= qhi[w]; ++q) {
            win_idx[nwin] = in + pp * p.i_strides[2] + q * p.i_strides[3];
            win_dy[nwin++] = dyn + pp * p.y_strides[2] + q * p.y_strides[3];
          }
        vk.gather_pixel(C, nwin, win_idx.data(), win_dy.data(), h * p.W + w,
                        dx + n * p.x_strides[0] + h * p.x_strides[2] + w * p.x_strides[3], stream);
      }
    }
    if (stream) stream_fence();
  });
  return true;
}

}  // namespace

void max_pool2d_fwd(const MaxPool2dParams& p) {
  const bool cl = all_channels_inner(p);
  if (tiny(p, cl)) {
    if (p.dtype == DType::Float64) fwd_tiny<double>(p);
    else fwd_tiny<float>(p);
    return;
  }
  if (p.dtype == DType::Float64) cl ? fwd_channels_last<double>(p) : fwd_planes<double>(p);
  else cl ? fwd_channels_last<float>(p) : fwd_planes<float>(p);
}

bool max_pool2d_bwd(const MaxPool2dParams& p) {
  const bool cl = all_channels_inner(p);
  if (tiny(p, false)) return p.dtype == DType::Float64 ? bwd_tiny<double>(p) : bwd_tiny<float>(p);
  if (p.dtype == DType::Float64) return cl ? bwd_channels_last<double>(p) : bwd_planes<double>(p);
  return cl ? bwd_channels_last<float>(p) : bwd_planes<float>(p);
}

}  // namespace cpu
}  // namespace cnnops
