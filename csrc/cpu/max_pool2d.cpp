// Max pooling on the CPU, forward and backward, bit-for-bit as torch's.
//
// Forward, two paths:
//   planes (any strides, NCHW the fast case): parallel over (n, c) planes. Each
//     output row is the running max over the R*S taps; each tap reads a
//     contiguous phase row (csrc/cpu/phase_rows.h, padding as -inf), so the
//     update loop vectorises along the output row. The winner is tracked as an
//     int32 tap id beside the value (same lane width) and turned into the flat
//     index h*W + w at the end.
//   channels_last (x, y and indices channels-innermost): parallel over output
//     pixels; the update loop vectorises along the channels.
// The update rule is torch's: take v when v > max or v is NaN, taps in
// row-major order; a window whose taps are all -inf keeps its first valid tap.
//
// Backward is a deterministic gather, not a scatter: each input element sums
// grad_output over the (few) output windows that can contain it and whose
// index names it, in output order, which is the order torch's scatter adds in.
// Parallel over planes (NCHW) or input pixels (channels_last). Indices outside
// [0, H*W) are reported, not followed.
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <vector>

#include "max_pool2d_cpu.h"
#include "phase_rows.h"
#include "../kernels/shape.h"

namespace cnnops {
namespace cpu {
namespace {

bool channels_inner(const int64_t* s, int64_t C) { return C > 1 && s[1] == 1; }

template <typename T>
void fwd_planes(const MaxPool2dParams& p) {
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  int64_t* ind = static_cast<int64_t*>(p.indices);
  const int64_t sw = p.stride_w, ew = effective_kernel(p.S, p.dil_w);
  const int64_t len = phase_len(p.Q, ew, sw);
  const T neg_inf = -std::numeric_limits<T>::infinity();
  std::vector<int64_t> wfirst(p.Q);
  for (int64_t q = 0; q < p.Q; ++q) wfirst[q] = pool_first_valid(q * sw - p.pad_w, p.dil_w);
  at::parallel_for(0, p.N * p.C, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> phases(sw * len), mv(p.Q);
    std::vector<int32_t> tap(p.Q);
    std::vector<int64_t> tab(p.R * p.S);
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t n = plane / p.C, c = plane % p.C;
      const T* xp = x + n * p.x_strides[0] + c * p.x_strides[1];
      T* yp = y + n * p.y_strides[0] + c * p.y_strides[1];
      int64_t* ip = ind + n * p.i_strides[0] + c * p.i_strides[1];
      for (int64_t pp = 0; pp < p.P; ++pp) {
        const int64_t hs = pp * p.stride_h - p.pad_h;
        T* __restrict m = mv.data();
        int32_t* __restrict t = tap.data();
        for (int64_t q = 0; q < p.Q; ++q) { m[q] = neg_inf; t[q] = -1; }
        for (int64_t r = 0; r < p.R; ++r) {
          const int64_t h = hs + r * p.dil_h;
          if (h < 0 || h >= p.H) continue;
          split_phases(xp + h * p.x_strides[2], p.W, p.x_strides[3], p.pad_w, sw, len, neg_inf,
                       phases.data());
          for (int64_t s = 0; s < p.S; ++s) {
            const int64_t o = s * p.dil_w;
            const T* __restrict src = phases.data() + (o % sw) * len + o / sw;
            const int32_t id = static_cast<int32_t>(r * p.S + s);
            tab[id] = h * p.W + o - p.pad_w;
            for (int64_t q = 0; q < p.Q; ++q) {
              const T v = src[q];
              const bool take = (v > m[q]) | (v != v);
              m[q] = take ? v : m[q];
              t[q] = take ? id : t[q];
            }
          }
        }
        const int64_t hf = pool_first_valid(hs, p.dil_h);
        T* yr = yp + pp * p.y_strides[2];
        int64_t* ir = ip + pp * p.i_strides[2];
        for (int64_t q = 0; q < p.Q; ++q) {
          yr[q * p.y_strides[3]] = m[q];
          ir[q * p.i_strides[3]] = t[q] < 0 ? hf * p.W + wfirst[q] : tab[t[q]] + q * sw;
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
  const int64_t C = p.C;
  const T neg_inf = -std::numeric_limits<T>::infinity();
  const int64_t grain = std::max<int64_t>(1, 4096 / C);
  at::parallel_for(0, p.N * p.P * p.Q, grain, [&](int64_t begin, int64_t end) {
    std::vector<T> mv(C);
    std::vector<int32_t> tap(C);
    std::vector<int64_t> tab(p.R * p.S);
    for (int64_t pix = begin; pix < end; ++pix) {
      const int64_t n = pix / (p.P * p.Q), pp = pix / p.Q % p.P, q = pix % p.Q;
      const int64_t hs = pp * p.stride_h - p.pad_h, ws = q * p.stride_w - p.pad_w;
      T* __restrict m = mv.data();
      int32_t* __restrict t = tap.data();
      for (int64_t c = 0; c < C; ++c) { m[c] = neg_inf; t[c] = -1; }
      for (int64_t r = 0; r < p.R; ++r) {
        const int64_t h = hs + r * p.dil_h;
        if (h < 0 || h >= p.H) continue;
        for (int64_t s = 0; s < p.S; ++s) {
          const int64_t w = ws + s * p.dil_w;
          if (w < 0 || w >= p.W) continue;
          const int32_t id = static_cast<int32_t>(r * p.S + s);
          tab[id] = h * p.W + w;
          const T* __restrict xr = x + n * p.x_strides[0] + h * p.x_strides[2] + w * p.x_strides[3];
          for (int64_t c = 0; c < C; ++c) {
            const T v = xr[c];
            const bool take = (v > m[c]) | (v != v);
            m[c] = take ? v : m[c];
            t[c] = take ? id : t[c];
          }
        }
      }
      const int64_t first = pool_first_valid(hs, p.dil_h) * p.W + pool_first_valid(ws, p.dil_w);
      T* yr = y + n * p.y_strides[0] + pp * p.y_strides[2] + q * p.y_strides[3];
      int64_t* ir = ind + n * p.i_strides[0] + pp * p.i_strides[2] + q * p.i_strides[3];
      std::copy(m, m + C, yr);
      for (int64_t c = 0; c < C; ++c) ir[c] = t[c] < 0 ? first : tab[t[c]];
    }
  });
}

// Whether every index lies in [0, H*W). Windows with no input position are
// exempt: torch's forward gives them -inf and an index past their first tap
// (which can lie outside the plane), and they pass no gradient back.
bool indices_valid(const MaxPool2dParams& p) {
  const int64_t* ind = static_cast<const int64_t*>(p.indices);
  const int64_t HW = p.H * p.W;
  const int64_t* s = p.i_strides;
  std::vector<char> empty_row(p.P), empty_col(p.Q);
  for (int64_t pp = 0; pp < p.P; ++pp)
    empty_row[pp] = pool_window_empty(pp * p.stride_h - p.pad_h, p.R, p.dil_h, p.H);
  for (int64_t q = 0; q < p.Q; ++q)
    empty_col[q] = pool_window_empty(q * p.stride_w - p.pad_w, p.S, p.dil_w, p.W);
  std::atomic<bool> ok{true};
  at::parallel_for(0, p.N * p.P, 1, [&](int64_t begin, int64_t end) {
    bool good = true;
    for (int64_t row = begin; row < end; ++row) {
      if (empty_row[row % p.P]) continue;
      const int64_t* ir = ind + (row / p.P) * s[0] + (row % p.P) * s[2];
      for (int64_t c = 0; c < p.C; ++c)
        for (int64_t q = 0; q < p.Q; ++q) {
          const int64_t i = ir[c * s[1] + q * s[3]];
          good &= empty_col[q] | ((i >= 0) & (i < HW));
        }
    }
    if (!good) ok = false;
  });
  return ok;
}

// Output windows along one axis that can contain input position i: [lo, hi].
inline void window_range(int64_t i, int64_t pad, int64_t stride, int64_t extent, int64_t out,
                         int64_t* lo, int64_t* hi) {
  const int64_t a = i + pad - extent + 1;  // window start >= a
  *lo = std::max<int64_t>(0, a <= 0 ? 0 : (a + stride - 1) / stride);
  *hi = std::min<int64_t>(out - 1, floor_div(i + pad, stride));
}

template <typename T>
void bwd_planes(const MaxPool2dParams& p) {
  T* dx = static_cast<T*>(p.x);
  const T* dy = static_cast<const T*>(p.y);
  const int64_t* ind = static_cast<const int64_t*>(p.indices);
  const int64_t eh = effective_kernel(p.R, p.dil_h), ew = effective_kernel(p.S, p.dil_w);
  std::vector<int64_t> qlo(p.W), qhi(p.W);
  for (int64_t w = 0; w < p.W; ++w) window_range(w, p.pad_w, p.stride_w, ew, p.Q, &qlo[w], &qhi[w]);
  at::parallel_for(0, p.N * p.C, 1, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t n = plane / p.C, c = plane % p.C;
      const T* dyp = dy + n * p.y_strides[0] + c * p.y_strides[1];
      const int64_t* ip = ind + n * p.i_strides[0] + c * p.i_strides[1];
      T* dxp = dx + n * p.x_strides[0] + c * p.x_strides[1];
      for (int64_t h = 0; h < p.H; ++h) {
        int64_t plo, phi;
        window_range(h, p.pad_h, p.stride_h, eh, p.P, &plo, &phi);
        T* dxr = dxp + h * p.x_strides[2];
        for (int64_t w = 0; w < p.W; ++w) {
          const int64_t target = h * p.W + w;
          T sum = T(0);
          for (int64_t pp = plo; pp <= phi; ++pp) {
            const int64_t* ir = ip + pp * p.i_strides[2];
            const T* dyr = dyp + pp * p.y_strides[2];
            for (int64_t q = qlo[w]; q <= qhi[w]; ++q)
              if (ir[q * p.i_strides[3]] == target) sum += dyr[q * p.y_strides[3]];
          }
          dxr[w * p.x_strides[3]] = sum;
        }
      }
    }
  });
}

template <typename T>
void bwd_channels_last(const MaxPool2dParams& p) {
  T* dx = static_cast<T*>(p.x);
  const T* dy = static_cast<const T*>(p.y);
  const int64_t* ind = static_cast<const int64_t*>(p.indices);
  const int64_t C = p.C;
  const int64_t eh = effective_kernel(p.R, p.dil_h), ew = effective_kernel(p.S, p.dil_w);
  const int64_t grain = std::max<int64_t>(1, 4096 / C);
  at::parallel_for(0, p.N * p.H * p.W, grain, [&](int64_t begin, int64_t end) {
    for (int64_t pix = begin; pix < end; ++pix) {
      const int64_t n = pix / (p.H * p.W), h = pix / p.W % p.H, w = pix % p.W;
      const int64_t target = h * p.W + w;
      T* __restrict dxr = dx + n * p.x_strides[0] + h * p.x_strides[2] + w * p.x_strides[3];
      for (int64_t c = 0; c < C; ++c) dxr[c] = T(0);
      int64_t plo, phi, qlo, qhi;
      window_range(h, p.pad_h, p.stride_h, eh, p.P, &plo, &phi);
      window_range(w, p.pad_w, p.stride_w, ew, p.Q, &qlo, &qhi);
      for (int64_t pp = plo; pp <= phi; ++pp)
        for (int64_t q = qlo; q <= qhi; ++q) {
          const int64_t off = n * p.y_strides[0] + pp * p.y_strides[2] + q * p.y_strides[3];
          const T* __restrict dyr = dy + off;
          const int64_t* __restrict ir =
              ind + n * p.i_strides[0] + pp * p.i_strides[2] + q * p.i_strides[3];
          for (int64_t c = 0; c < C; ++c) dxr[c] += ir[c] == target ? dyr[c] : T(0);
        }
    }
  });
}

template <typename T>
void fwd(const MaxPool2dParams& p) {
  if (channels_inner(p.x_strides, p.C) && channels_inner(p.y_strides, p.C) &&
      channels_inner(p.i_strides, p.C))
    fwd_channels_last<T>(p);
  else
    fwd_planes<T>(p);
}

template <typename T>
void bwd(const MaxPool2dParams& p) {
  if (channels_inner(p.x_strides, p.C) && channels_inner(p.y_strides, p.C) &&
      channels_inner(p.i_strides, p.C))
    bwd_channels_last<T>(p);
  else
    bwd_planes<T>(p);
}

}  // namespace

void max_pool2d_fwd(const MaxPool2dParams& p) {
  if (p.dtype == DType::Float64) fwd<double>(p);
  else fwd<float>(p);
}

bool max_pool2d_bwd(const MaxPool2dParams& p) {
  if (!indices_valid(p)) return false;
  if (p.dtype == DType::Float64) bwd<double>(p);
  else bwd<float>(p);
  return true;
}

}  // namespace cpu
}  // namespace cnnops
