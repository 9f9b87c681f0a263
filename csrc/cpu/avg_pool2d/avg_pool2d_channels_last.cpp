// Average pooling on the CPU: the channels_last path and the global pool,
// forward and backward (the planes path and the dispatch: avg_pool2d.cpp).
//
// channels_last (x and y channels-innermost), vectorised over the channels.
// Forward: parallel over output rows (n, p); the window's input rows are
// summed into one row of W pixels (one pass over W*C lanes when the pixels are
// packed), then each output pixel sums its window's columns and multiplies by
// 1 / divisor; windows that do not overlap along W (stride >= kernel) sum
// their pixels straight from x instead.
// Backward, a gather: parallel over input rows (n, h); the output rows whose
// windows hold h are summed per output pixel, each weighted by its
// 1 / divisor, then each input pixel sums the output columns whose windows
// hold it; dx goes out with non-temporal stores when it is larger than the
// threads' L2 caches (stream_stores.h), since no pass reads it back.
//
// Global pool (one window over the whole plane: adaptive 1x1, or a kernel as
// large as the input), for contiguous planes only. NCHW: parallel over
// planes, each one contiguous run summed in registers, the lanes then added
// as a tree. channels_last:
// parallel over (image, block of channels); every pixel's block is added in
// registers, reading the image once. The backward broadcasts dy / divisor
// (streamed like the above).
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "avg_pool2d_kernels.h"
#include "avg_pool2d_windows.h"
#include "../util/stream_stores.h"

namespace cnnops {
namespace cpu {
namespace avg_pool {
namespace {

// Packed pixels: a row of W pixels is one contiguous run of W*C values.
bool packed_rows(const int64_t* s, int64_t C) { return s[1] == 1 && s[3] == C; }

// Contiguous NCHW planes, or channels_last pixels packed row after row.
bool nchw_planes(const int64_t* s, int64_t W) { return s[3] == 1 && s[2] == W; }
bool nhwc_planes(const int64_t* s, int64_t C, int64_t W) { return packed_rows(s, C) && s[2] == W * C; }

}  // namespace

template <typename T>
void fwd_channels_last(const AvgPool2dParams& p, const Windows<T>& win) {
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  const AvgPoolKernels<T>& vk = active_avg_pool_kernels<T>();
  const int64_t C = p.C;
  const bool packed = packed_rows(p.x_strides, C);
  // Windows that do not overlap along W share no column sums: each output then
  // sums its window's pixels straight from x.
  const bool direct = win.regular_w && win.sw >= win.kw;
  at::parallel_for(0, p.N * p.P, grain_for((win.most_rows + 1) * p.W * C), [&](int64_t begin, int64_t end) {
    std::vector<T> vs(direct ? 0 : p.W * C);
    std::vector<const T*> rows(std::max<int64_t>(win.most_rows, 1));
    std::vector<const T*> taps(std::max<int64_t>(win.most_cols * (direct ? win.most_rows : 1), 1));
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / p.P, pp = task % p.P;
      const int64_t nr = std::max<int64_t>(0, win.hhi[pp] - win.hlo[pp]);
      const T* xn = x + n * p.x_strides[0] + win.hlo[pp] * p.x_strides[2];
      T* yr = y + n * p.y_strides[0] + pp * p.y_strides[2];
      if (direct) {
        for (int64_t q = 0; q < p.Q; ++q) {
          int64_t nt = 0;
          for (int64_t r = 0; r < nr; ++r)
            for (int64_t w = win.wlo[q]; w < win.whi[q]; ++w)
              taps[nt++] = xn + r * p.x_strides[2] + w * p.x_strides[3];
          vk.sum_rows(C, nt, taps.data(), nullptr, win.scale_at(pp, q), yr + q * p.y_strides[3], false);
        }
        continue;
      }
      if (packed) {
        for (int64_t r = 0; r < nr; ++r) rows[r] = xn + r * p.x_strides[2];
        vk.sum_rows(p.W * C, nr, rows.data(), nullptr, T(1), vs.data(), false);
      } else {
        for (int64_t w = 0; w < p.W; ++w) {
          for (int64_t r = 0; r < nr; ++r) rows[r] = xn + r * p.x_strides[2] + w * p.x_strides[3];
          vk.sum_rows(C, nr, rows.data(), nullptr, T(1), vs.data() + w * C, false);
        }
      }
      for (int64_t q = 0; q < p.Q; ++q) {
        const int64_t nw = std::max<int64_t>(0, win.whi[q] - win.wlo[q]);
        for (int64_t k = 0; k < nw; ++k) taps[k] = vs.data() + (win.wlo[q] + k) * C;
        vk.sum_rows(C, nw, taps.data(), nullptr, win.scale_at(pp, q), yr + q * p.y_strides[3], false);
      }
    }
  });
}

template <typename T>
void bwd_channels_last(const AvgPool2dParams& p, const Windows<T>& win) {
  T* dx = static_cast<T*>(p.x);
  const T* dy = static_cast<const T*>(p.y);
  const AvgPoolKernels<T>& vk = active_avg_pool_kernels<T>();
  const int64_t C = p.C;
  const bool stream = stream_output(p.N * p.H * p.W * C * int64_t(sizeof(T)));
  const int64_t work = (win.most_outputs_h * p.Q + win.most_outputs_w * p.W) * C;
  at::parallel_for(0, p.N * p.H, grain_for(work), [&](int64_t begin, int64_t end) {
    std::vector<T> t(p.Q * C), weights(std::max<int64_t>(win.most_outputs_h, 1));
    std::vector<const T*> rows(weights.size()), taps(std::max<int64_t>(win.most_outputs_w, 1));
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / p.H, h = task % p.H;
      const int64_t pf = win.pfirst[h], nr = std::max<int64_t>(0, win.plast[h] - pf + 1);
      const T* dyn = dy + n * p.y_strides[0];
      for (int64_t q = 0; q < p.Q; ++q) {
        for (int64_t r = 0; r < nr; ++r) {
          rows[r] = dyn + (pf + r) * p.y_strides[2] + q * p.y_strides[3];
          weights[r] = win.scale_at(pf + r, q);
        }
        vk.weighted_rows(C, nr, rows.data(), weights.data(), t.data() + q * C);
      }
      T* dxr = dx + n * p.x_strides[0] + h * p.x_strides[2];
      for (int64_t w = 0; w < p.W; ++w) {
        const int64_t qf = win.qfirst[w], nq = std::max<int64_t>(0, win.qlast[w] - qf + 1);
        for (int64_t k = 0; k < nq; ++k) taps[k] = t.data() + (qf + k) * C;
        vk.sum_rows(C, nq, taps.data(), nullptr, T(1), dxr + w * p.x_strides[3], stream);
      }
    }
    if (stream) stream_fence();
  });
}

template <typename T>
bool fwd_global(const AvgPool2dParams& p, const Windows<T>& win) {
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  const AvgPoolKernels<T>& vk = active_avg_pool_kernels<T>();
  const int64_t HW = p.H * p.W, C = p.C;
  const T scale = win.scale_at(0, 0);
  if (nhwc_planes(p.x_strides, C, p.W) && C > 1) {
    constexpr int64_t kBlock = 256;  // channels per task
    const int64_t blocks = (C + kBlock - 1) / kBlock;
    at::parallel_for(0, p.N * blocks, grain_for(HW * std::min(C, kBlock)), [&](int64_t begin, int64_t end) {
      std::vector<T> buf(p.y_strides[1] == 1 ? 0 : kBlock);
      for (int64_t task = begin; task < end; ++task) {
        const int64_t n = task / blocks, c0 = task % blocks * kBlock, nc = std::min(kBlock, C - c0);
        T* yn = y + n * p.y_strides[0] + c0 * p.y_strides[1];
        vk.sum_strided(nc, HW, x + n * p.x_strides[0] + c0, C, scale, buf.empty() ? yn : buf.data());
        if (!buf.empty())
          for (int64_t c = 0; c < nc; ++c) yn[c * p.y_strides[1]] = buf[c];
      }
    });
    return true;
  }
  if (nchw_planes(p.x_strides, p.W)) {
    at::parallel_for(0, p.N * C, grain_for(HW), [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end;) {  // runs of planes within one image
        const int64_t n = plane / C, c = plane % C, count = std::min(end - plane, C - c);
        vk.sum_planes(count, HW, x + n * p.x_strides[0] + c * p.x_strides[1], p.x_strides[1], scale,
                      y + n * p.y_strides[0] + c * p.y_strides[1], p.y_strides[1]);
        plane += count;
      }
    });
    return true;
  }
  return false;
}

template <typename T>
bool bwd_global(const AvgPool2dParams& p, const Windows<T>& win) {
  T* dx = static_cast<T*>(p.x);
  const T* dy = static_cast<const T*>(p.y);
  const AvgPoolKernels<T>& vk = active_avg_pool_kernels<T>();
  const int64_t HW = p.H * p.W, C = p.C;
  const T scale = win.scale_at(0, 0);
  const bool stream = stream_output(p.N * C * HW * int64_t(sizeof(T)));
  if (nhwc_planes(p.x_strides, C, p.W) && C > 1) {
    // Tasks are (image, input row): the row's pixels each get the image's dy / divisor.
    at::parallel_for(0, p.N * p.H, grain_for(p.W * C), [&](int64_t begin, int64_t end) {
      std::vector<T> g(C), dyn(p.y_strides[1] == 1 ? 0 : C);
      int64_t g_image = -1;
      for (int64_t task = begin; task < end; ++task) {
        const int64_t n = task / p.H, h = task % p.H;
        if (n != g_image) {
          const T* src = dy + n * p.y_strides[0];
          if (!dyn.empty()) {
            for (int64_t c = 0; c < C; ++c) dyn[c] = src[c * p.y_strides[1]];
            src = dyn.data();
          }
          vk.sum_rows(C, 1, &src, nullptr, scale, g.data(), false);
          g_image = n;
        }
        const T* gp = g.data();
        T* dxr = dx + n * p.x_strides[0] + h * p.x_strides[2];
        for (int64_t w = 0; w < p.W; ++w) vk.sum_rows(C, 1, &gp, nullptr, T(1), dxr + w * C, stream);
      }
      if (stream) stream_fence();
    });
    return true;
  }
  if (nchw_planes(p.x_strides, p.W)) {
    at::parallel_for(0, p.N * C, grain_for(HW), [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane) {
        const int64_t n = plane / C, c = plane % C;
        const T g = dy[n * p.y_strides[0] + c * p.y_strides[1]] * scale;
        vk.fill(HW, g, dx + n * p.x_strides[0] + c * p.x_strides[1], stream);
      }
      if (stream) stream_fence();
    });
    return true;
  }
  return false;
}

#define CNNOPS_AVG_POOL_PATHS(T)                                                 \
  template void fwd_channels_last<T>(const AvgPool2dParams&, const Windows<T>&); \
  template void bwd_channels_last<T>(const AvgPool2dParams&, const Windows<T>&); \
  template bool fwd_global<T>(const AvgPool2dParams&, const Windows<T>&);        \
  template bool bwd_global<T>(const AvgPool2dParams&, const Windows<T>&);
CNNOPS_AVG_POOL_PATHS(float)
CNNOPS_AVG_POOL_PATHS(double)
#undef CNNOPS_AVG_POOL_PATHS

}  // namespace avg_pool
}  // namespace cpu
}  // namespace cnnops
