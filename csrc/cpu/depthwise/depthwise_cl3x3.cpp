// Channels_last depthwise 3x3 with stride 1, padding 1 and multiplier 1 (the
// MobileNet / Xception layer) on the CPU: y, dx and dw.
//   Work units are (image n, band of about kBandRows rows, span of output
//   columns), run by balanced_for (../util/balanced_for.h: each thread starts
//   on its own run of consecutive units; one that finishes early takes units
//   from the back of the others'; the fixed shares of at::parallel_for left
//   one core idle whenever the other ran slow). A unit walks its
//   span down its band, two output rows per step (the span kernels of
//   depthwise_span3x3.h, all channels; the two rows share their middle input or
//   dy rows) and one for a band's odd last row. A span is the whole row where
//   kSpanBytes allow it (up to 64 KiB of pixels), so each step reads its new
//   input rows as contiguous runs that the hardware prefetchers stream, and
//   the rows before them come from L2.
//   (Spans of 8 columns, which kept a step's rows in L1 but fetched the new
//   row in 5 KiB pieces 28 KiB apart, were slower; software prefetch of the
//   next row did not help either kind.) A thread's own units are consecutive,
//   so a band mostly starts on
//   rows its predecessor just read.
//   The image's first and last columns (taps in the padding) run per pixel
//   (taps_madd, mul_add) in the units of the first and last spans.
//   Outputs (y, dx) larger than the threads' L2 caches go out with
//   non-temporal stores (../util/stream_stores.h): this pass never reads them back,
//   and a plain store would first fetch each line it writes.
//   dw: each unit sums its products in T, taken by input row: a step's dy rows
//   i+1, i, i-1 meet its input row i, so each input row is read once and the
//   dy rows serve dx too (faster than pairing dy row i with input rows
//   i-1..i+1). The units' sums are added in double in unit order. The units depend on the shape and
//   dtype only, so the bits do not depend on the threads or on which thread ran
//   a unit, and the backward gives the same dw with or without dx (and the
//   same dx).
// x and y (dx and dy) channels-innermost with the same pixel step; float32 and
// float64.
#include <algorithm>
#include <vector>

#include "../util/balanced_for.h"
#include "depthwise.h"
#include "depthwise_kernels.h"
#include "../util/stream_stores.h"

namespace cnnops {
namespace cpu {
namespace {

// A unit's span is as wide as kSpanBytes of a row allows (at least
// kMinSpan pixels); its band is about kBandRows rows, or fewer (down to
// kMinBandRows) where that would leave under kMinUnits units: balanced_for
// needs pieces to move, so (8,728,19,19) gets 4 bands of 4-5 rows per image,
// not one of 19. The partition depends on the shape and dtype only, never on
// the threads.
constexpr int64_t kSpanBytes = 64 * 1024, kMinSpan = 8, kBandRows = 16;
constexpr int64_t kMinUnits = 32, kMinBandRows = 4;

// The work units of an N x H x W image batch with pixels of pixel_bytes:
// (image n, band of rows, span of interior columns [1, W-1)), unit u being
// span u % spans of band (u / spans) % bands of image u / (spans * bands).
// A thread's own units are consecutive, so its next band starts on the rows
// its last one just read (in L2). At least one span, so the border columns have
// a unit even with no interior (the span is then empty).
struct Units {
  int64_t N, H, W, spans, bands;
  Units(int64_t N_, int64_t H_, int64_t W_, int64_t pixel_bytes) : N(N_), H(H_), W(W_) {
    const int64_t widest = std::max(kMinSpan, kSpanBytes / std::max<int64_t>(1, pixel_bytes));
    spans = std::max<int64_t>(1, (interior() + widest - 1) / widest);
    const int64_t by_rows = (H + kBandRows / 2) / kBandRows;
    const int64_t for_balance = (kMinUnits + N * spans - 1) / std::max<int64_t>(1, N * spans);
    bands = std::max<int64_t>(1, std::max(by_rows, std::min(for_balance, H / kMinBandRows)));
  }
  int64_t interior() const { return std::max<int64_t>(0, W - 2); }
  int64_t count() const { return N * bands * spans; }
  int64_t image(int64_t u) const { return u / (spans * bands); }
  int64_t band(int64_t u) const { return u / spans % bands; }
  int64_t span(int64_t u) const { return u % spans; }
  int64_t row_begin(int64_t b) const { return b * H / bands; }
  int64_t col_begin(int64_t s) const { return 1 + s * interior() / spans; }
  int64_t col_end(int64_t s) const { return 1 + (s + 1) * interior() / spans; }
  // The border columns span s runs: column 0 with the first span, W-1 with the last.
  int64_t borders(int64_t s, int64_t* cols) const {
    int64_t nb = 0;
    if (s == 0) cols[nb++] = 0;
    if (s == spans - 1 && W > 1) cols[nb++] = W - 1;
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

// Rows first + dir*r, r = 0 .. n-1, at column q (nullptr outside the image;
// an empty span may start past the last column and is never read).
template <typename T>
void span_rows(const Image<T>& im, int64_t first, int64_t n, int64_t q, int dir, const T** rows) {
  for (int64_t r = 0; r < n; ++r) rows[r] = im.at(first + dir * r, q);
}

// Whether an image-shaped output of N x H x W x K elements is streamed.
template <typename T>
bool stream_image_output(int64_t N, int64_t H, int64_t W, int64_t K) {
  return stream_output(N * H * W * K * int64_t(sizeof(T)));
}

template <typename T>
void fprop(const Conv2dParams& p) {
  const Units units(p.N, p.P, p.Q, p.K * int64_t(sizeof(T)));
  const std::vector<T> wt = depthwise_filter_taps_major<T>(p);  // (9, K)
  const T* bias = static_cast<const T*>(p.bias);
  const DepthwiseKernels<T>& vk = active_depthwise_kernels<T>();
  // The fused output stage reads each row back: stores that bypass the cache would defeat it.
  const bool stream = p.epilogue.identity() && stream_image_output<T>(p.N, p.P, p.Q, p.K);
  balanced_for(units.count(), [&](int64_t u) {
    const T* taps[9];
    const T* rows[4];
    T* outs[2];
    int64_t cols[2];
    const int64_t n = units.image(u), s = units.span(u), band = units.band(u);
    const Image<T> x = image_of<T>(p.x, p.x_strides, n, p.H, p.W);
    const Image<T> y = image_of<T>(p.y, p.y_strides, n, p.P, p.Q);
    const int64_t b = units.col_begin(s), nb = units.borders(s, cols);
    const int64_t end_row = units.row_begin(band + 1);
    for (int64_t i = units.row_begin(band); i < end_row;) {
      const int64_t nout = std::min<int64_t>(end_row - i, 2);
      span_rows(x, i - 1, nout + 2, b, 1, rows);  // input rows i-1 .. i+nout
      for (int64_t r = 0; r < nout; ++r) outs[r] = y.base + (i + r) * y.row + b * y.step;
      vk.span3x3_fprop(units.col_end(s) - b, p.K, nout, rows, x.step, wt.data(), bias, outs, stream);
      for (int64_t r = 0; r < nout; ++r, ++i)
        for (int64_t c = 0; c < nb; ++c) {
          pixel_taps(x, i, cols[c], 1, taps);
          vk.taps_madd(p.K, 9, taps, wt.data(), bias, y.at(i, cols[c]));
        }
      depthwise_finish<T>(p, n, i - nout, i, b, units.col_end(s), 0, p.K);
      for (int64_t c = 0; c < nb; ++c) depthwise_finish<T>(p, n, i - nout, i, cols[c], cols[c] + 1, 0, p.K);
    }
    if (stream) stream_fence();
  });
}

// dx (dp in dgrad roles: dp.x = dx, dp.y = dy) and/or dw (wp in wgrad roles:
// wp.x = x, wp.y = dy, wp.w = dw); a null one is not computed.
template <typename T>
void backward(const Conv2dParams* dp, const Conv2dParams* wp) {
  const Conv2dParams& p = dp != nullptr ? *dp : *wp;
  const Units units(p.N, p.H, p.W, p.K * int64_t(sizeof(T)));
  const std::vector<T> wt = dp != nullptr ? depthwise_filter_taps_major<T>(*dp) : std::vector<T>();
  const DepthwiseKernels<T>& vk = active_depthwise_kernels<T>();
  std::vector<T> partial(wp != nullptr ? units.count() * 9 * p.K : 0, T(0));  // (9, K) per unit
  const bool stream = dp != nullptr && stream_image_output<T>(p.N, p.H, p.W, p.C);
  balanced_for(units.count(), [&](int64_t u) {
    const T* taps[9];
    const T* dys[4];
    const T* x_rows[2];
    T* dx_rows[2];
    int64_t cols[2];
    const int64_t n = units.image(u), s = units.span(u), band = units.band(u);
    const Image<T> dy = image_of<T>(p.y, p.y_strides, n, p.P, p.Q);
    const Image<T> dx = dp ? image_of<T>(dp->x, dp->x_strides, n, p.H, p.W) : Image<T>{};
    const Image<T> x = wp ? image_of<T>(wp->x, wp->x_strides, n, p.H, p.W) : Image<T>{};
    T* acc = wp ? partial.data() + u * 9 * p.K : nullptr;
    const int64_t b = units.col_begin(s), nb = units.borders(s, cols);
    const int64_t end_row = units.row_begin(band + 1);
    for (int64_t i = units.row_begin(band); i < end_row;) {
      const int64_t nout = std::min<int64_t>(end_row - i, 2);
      span_rows(dy, i + nout, nout + 2, b, -1, dys);  // dy rows i+nout .. i-1
      for (int64_t o = 0; o < nout; ++o) {
        x_rows[o] = wp ? x.base + (i + o) * x.row + b * x.step : nullptr;
        dx_rows[o] = dp ? dx.base + (i + o) * dx.row + b * dx.step : nullptr;
      }
      vk.span3x3_backward(units.col_end(s) - b, p.K, nout, dys, x_rows, dy.step, wt.data(),
                          dp ? dx_rows : nullptr, acc, stream);
      for (int64_t end = i + nout; i < end; ++i)
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
    if (stream) stream_fence();
  });
  if (wp == nullptr) return;
  std::vector<double> sum(9 * p.K, 0.0);
  for (int64_t u = 0; u < units.count(); ++u)
    vk.add_widened(9 * p.K, partial.data() + u * 9 * p.K, sum.data());
  store_depthwise_filters<T>(*wp, 0, p.K, sum.data(), 1, p.K);
}

}  // namespace

bool depthwise_cl3x3_applies(const Conv2dParams& p) {
  return depthwise_channels_last(p) && p.K == p.C && p.R == 3 && p.S == 3 && p.stride_h == 1 &&
         p.stride_w == 1 && p.dil_h == 1 && p.dil_w == 1 && p.pad_h == 1 && p.pad_w == 1 && p.P == p.H &&
         p.Q == p.W && p.x_strides[3] == p.y_strides[3];
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
