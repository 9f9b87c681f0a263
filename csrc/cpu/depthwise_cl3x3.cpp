// Channels_last depthwise 3x3 with stride 1, padding 1 and multiplier 1 (the
// MobileNet / Xception layer) on the CPU: y, dx and dw.
//   Work units are (image n, span of kSpan output columns), at::parallel_for
//   over units. A unit walks its span down the image, one output row per step
//   (the span kernels of vector_span3x3.h, all channels), so the three input
//   rows a step reads were read by the two steps before and are still in
//   cache (L1 up to about 128 float channels: a span's row is 10 pixels): each
//   input pixel comes from memory about once (plus the spans' 2-column halo),
//   where passes row by row fetch every input row three times from L2.
//   (Blocks of 128 channels per unit kept rows in L1 for more channels but
//   made (8,728,19,19) slower: the unit then reads 512-byte pieces of pixels.)
//   The image's first and last columns (taps in the padding) run per pixel
//   (taps_madd, mul_add) in the units of the first and last spans.
//   Outputs (y, dx) larger than the threads' L2 caches go out with
//   non-temporal stores (stream_stores.h): this pass never reads them back,
//   and a plain store would first fetch each line it writes.
//   dw: each unit sums its pixels' products in T; the units' sums are added in
//   double in unit order, so the bits do not depend on the threads, and the
//   backward gives the same dw with or without dx (and the same dx).
// x and y (dx and dy) channels-innermost with the same pixel step; float32 and
// float64.
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "depthwise_cpu.h"
#include "microkernel.h"
#include "stream_stores.h"

namespace cnnops {
namespace cpu {
namespace {

constexpr int64_t kSpan = 8;

// The spans of an image W columns wide: interior columns [1, W-1) in runs of
// kSpan (the last may be shorter); at least one span, so the border columns
// have a unit even when there is no interior (the span is then empty). Work
// unit u is span u % count of image u / count: a thread's next unit reads the
// halo its last one just read.
struct Spans {
  int64_t W, count;
  explicit Spans(int64_t W_) : W(W_), count(std::max<int64_t>(1, (W_ - 2 + kSpan - 1) / kSpan)) {}
  int64_t begin(int64_t s) const { return 1 + s * kSpan; }
  int64_t end(int64_t s) const { return std::max(begin(s), std::min(W - 1, begin(s) + kSpan)); }
  // The border columns span s runs: column 0 with the first span, W-1 with the last.
  int64_t borders(int64_t s, int64_t* cols) const {
    int64_t nb = 0;
    if (s == 0) cols[nb++] = 0;
    if (s == count - 1 && W > 1) cols[nb++] = W - 1;
    return nb;
  }
};

// One image's channels-innermost tensor: pixel (h, w) at base + h*row + w*step.
template <typename T>
struct Image {
  T* base;
  int64_t H, W, row, step;
  T* at(int64_t h, int64_t w) const {
    return h >= 0 && h < H && w >= 0 && w < W ? base + h * row + w * step : nullptr;
  }
};

template <typename T>
Image<T> image_of(const void* data, const int64_t* strides, int64_t n, int64_t H, int64_t W) {
  return {const_cast<T*>(static_cast<const T*>(data)) + n * strides[0], H, W, strides[2], strides[3]};
}

// The 3x3 taps of pixel (i, q), tap (r, s) at (i + dir*(r-1), q + dir*(s-1));
// nullptr where it lies in the padding. dir = +1: x for y and dw; -1: dy for dx.
template <typename T>
void pixel_taps(const Image<T>& im, int64_t i, int64_t q, int dir, const T** taps) {
  for (int r = 0; r < 3; ++r)
    for (int s = 0; s < 3; ++s) taps[3 * r + s] = im.at(i + dir * (r - 1), q + dir * (s - 1));
}

// Rows i + dir*(r-1), r = 0..2, at column q (nullptr outside the image; an
// empty span may start past the last column and is never read).
template <typename T>
void span_rows(const Image<T>& im, int64_t i, int64_t q, int dir, const T** rows) {
  for (int r = 0; r < 3; ++r) rows[r] = im.at(i + dir * (r - 1), q);
}

// Whether an image-shaped output of N x H x W x K elements is streamed.
template <typename T>
bool stream_image_output(int64_t N, int64_t H, int64_t W, int64_t K) {
  return stream_output(N * H * W * K * int64_t(sizeof(T)));
}

template <typename T>
void fprop(const Conv2dParams& p) {
  const Spans spans(p.W);
  const std::vector<T> wt = depthwise_filter_taps_major<T>(p);  // (9, K)
  const T* bias = static_cast<const T*>(p.bias);
  const VectorKernels<T>& vk = active_vector_kernels<T>();
  const bool stream = stream_image_output<T>(p.N, p.P, p.Q, p.K);
  at::parallel_for(0, p.N * spans.count, 1, [&](int64_t begin, int64_t end) {
    const T* taps[9];
    const T* rows[3];
    int64_t cols[2];
    for (int64_t u = begin; u < end; ++u) {
      const int64_t n = u / spans.count, s = u % spans.count;
      const Image<T> x = image_of<T>(p.x, p.x_strides, n, p.H, p.W);
      const Image<T> y = image_of<T>(p.y, p.y_strides, n, p.P, p.Q);
      const int64_t b = spans.begin(s), nb = spans.borders(s, cols);
      for (int64_t i = 0; i < p.P; ++i) {
        span_rows(x, i, b, 1, rows);
        vk.span3x3_fprop(spans.end(s) - b, p.K, rows, x.step, wt.data(), bias,
                         y.base + i * y.row + b * y.step, stream);
        for (int64_t c = 0; c < nb; ++c) {
          pixel_taps(x, i, cols[c], 1, taps);
          vk.taps_madd(p.K, 9, taps, wt.data(), bias, y.at(i, cols[c]));
        }
      }
    }
    if (stream) stream_fence();
  });
}

// dx (dp in dgrad roles: dp.x = dx, dp.y = dy) and/or dw (wp in wgrad roles:
// wp.x = x, wp.y = dy, wp.w = dw); a null one is not computed.
template <typename T>
void backward(const Conv2dParams* dp, const Conv2dParams* wp) {
  const Conv2dParams& p = dp != nullptr ? *dp : *wp;
  const Spans spans(p.W);
  const std::vector<T> wt = dp != nullptr ? depthwise_filter_taps_major<T>(*dp) : std::vector<T>();
  const VectorKernels<T>& vk = active_vector_kernels<T>();
  const int64_t units = p.N * spans.count;
  std::vector<T> partial(wp != nullptr ? units * 9 * p.K : 0, T(0));  // (9, K) per unit
  const bool stream = dp != nullptr && stream_image_output<T>(p.N, p.H, p.W, p.C);
  at::parallel_for(0, units, 1, [&](int64_t begin, int64_t end) {
    const T* taps[9];
    const T* dys[3];
    const T* xs[3] = {nullptr, nullptr, nullptr};
    int64_t cols[2];
    for (int64_t u = begin; u < end; ++u) {
      const int64_t n = u / spans.count, s = u % spans.count;
      const Image<T> dy = image_of<T>(p.y, p.y_strides, n, p.P, p.Q);
      const Image<T> dx = dp ? image_of<T>(dp->x, dp->x_strides, n, p.H, p.W) : Image<T>{};
      const Image<T> x = wp ? image_of<T>(wp->x, wp->x_strides, n, p.H, p.W) : Image<T>{};
      T* acc = wp ? partial.data() + u * 9 * p.K : nullptr;
      const int64_t b = spans.begin(s), nb = spans.borders(s, cols);
      for (int64_t i = 0; i < p.H; ++i) {
        span_rows(dy, i, b, -1, dys);
        if (wp) span_rows(x, i, b, 1, xs);
        vk.span3x3_backward(spans.end(s) - b, p.K, dys, xs, dy.step, wt.data(),
                            dp ? dx.base + i * dx.row + b * dx.step : nullptr, acc, stream);
        for (int64_t c = 0; c < nb; ++c) {
          const int64_t q = cols[c];
          if (dp) {
            pixel_taps(dy, i, q, -1, taps);
            vk.taps_madd(p.K, 9, taps, wt.data(), nullptr, dx.at(i, q));
          }
          if (wp) {
            pixel_taps(x, i, q, 1, taps);
            for (int t = 0; t < 9; ++t)
              if (taps[t] != nullptr) vk.mul_add(p.K, dy.at(i, q), taps[t], acc + t * p.K);
          }
        }
      }
    }
    if (stream) stream_fence();
  });
  if (wp == nullptr) return;
  std::vector<double> sum(9 * p.K, 0.0);
  for (int64_t u = 0; u < units; ++u) vk.add_widened(9 * p.K, partial.data() + u * 9 * p.K, sum.data());
  store_depthwise_filters<T>(*wp, 0, p.K, sum.data(), 1, p.K);
}

}  // namespace

bool depthwise_cl3x3_applies(const Conv2dParams& p) {
  return depthwise_channels_last(p) && p.K == p.C && p.R == 3 && p.S == 3 && p.stride_h == 1 &&
         p.stride_w == 1 && p.dil_h == 1 && p.dil_w == 1 && p.pad_h == 1 && p.pad_w == 1 &&
         p.P == p.H && p.Q == p.W && p.x_strides[3] == p.y_strides[3];
}

void depthwise_fprop_cl3x3(const Conv2dParams& p) {
  if (p.dtype == DType::Float64) fprop<double>(p);
  else fprop<float>(p);
}

void depthwise_dgrad_cl3x3(const Conv2dParams& p) {
  if (p.dtype == DType::Float64) backward<double>(&p, nullptr);
  else backward<float>(&p, nullptr);
}

void depthwise_wgrad_cl3x3(const Conv2dParams& p) {
  if (p.dtype == DType::Float64) backward<double>(nullptr, &p);
  else backward<float>(nullptr, &p);
}

void depthwise_backward_cl3x3(const Conv2dParams& dgrad_p, const Conv2dParams& wgrad_p) {
  if (dgrad_p.dtype == DType::Float64) backward<double>(&dgrad_p, &wgrad_p);
  else backward<float>(&dgrad_p, &wgrad_p);
}

}  // namespace cpu
}  // namespace cnnops
