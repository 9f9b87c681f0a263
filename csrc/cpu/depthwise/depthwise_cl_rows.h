// One row of the channels_last depthwise gradients, shared by depthwise_dgrad /
// depthwise_wgrad (channels_last) and the fused backward (depthwise_backward.cpp),
// which runs a dx row and a dw row together while the dy rows they share are in
// cache; the same order of sums in both, so the same bits. x, dx and dy
// channels-innermost; float32 and float64.
#pragma once
#include <algorithm>
#include <vector>

#include "depthwise.h"
#include "depthwise_kernels.h"
#include "../../common/shape.h"

namespace cnnops {
namespace cpu {

// Filters per block of the channels_last weight gradient (their sums stay in
// registers and L1 along a row).
constexpr int64_t kDepthwiseChannelBlock = 64;

// The channels_last weight gradient sums its dy rows (n, p) in fixed chunks of
// consecutive rows, each into its own partial sums, then the chunks in order:
// the work splits over whole rows and the bits do not depend on the threads.
struct RowChunks {
  static constexpr int64_t kMax = 16;
  int64_t rows, count;
  explicit RowChunks(int64_t rows_) : rows(rows_), count(std::min(rows_, kMax)) {}
  int64_t begin(int64_t c) const { return c * rows / count; }
};

// The taps that reach dx pixel (h, w): dy[(h + pad_h - r*dil_h) / stride_h,
// (w + pad_w - s*dil_w) / stride_w] where those divide exactly and land inside.
template <typename T>
void dgrad_pixel_taps(const Conv2dParams& p, const T* dyn, int64_t h, int64_t wc, const T** rows) {
  for (int64_t r = 0; r < p.R; ++r) {
    const int64_t th = h + p.pad_h - r * p.dil_h;
    const bool row_ok = th >= 0 && th % p.stride_h == 0 && th / p.stride_h < p.P;
    for (int64_t s = 0; s < p.S; ++s) {
      const int64_t tw = wc + p.pad_w - s * p.dil_w;
      const bool ok = row_ok && tw >= 0 && tw % p.stride_w == 0 && tw / p.stride_w < p.Q;
      rows[r * p.S + s] =
          ok ? dyn + (th / p.stride_h) * p.y_strides[2] + (tw / p.stride_w) * p.y_strides[3] : nullptr;
    }
  }
}

// dx rows, p in dgrad roles (p.x = dx, p.y = dy). With stride 1 and multiplier
// 1, the columns w whose taps w + pad_w - s*dil_w all lie in [0, Q) form the
// interior, run by stencil_row (weights in registers across pixels); the other
// pixels gather their taps (taps_madd, or a plain loop for multiplier > 1).
template <typename T>
class DgradRowsCL {
 public:
  explicit DgradRowsCL(const Conv2dParams& p)
      : p_(p),
        M_(p.K / p.C),
        RS_(p.R * p.S),
        wt_(depthwise_filter_taps_major<T>(p)),
        vk_(active_depthwise_kernels<T>()) {
    const bool rows_fast = M_ == 1 && p.stride_w == 1 && p.stride_h == 1;
    const int64_t ew = effective_kernel(p.S, p.dil_w);
    wa_ = rows_fast ? std::min(p.W, std::max<int64_t>(0, ew - 1 - p.pad_w)) : 0;
    wb_ = rows_fast ? std::max(wa_, std::min(p.W, p.Q - p.pad_w)) : 0;
  }

  struct Scratch {
    std::vector<T> acc;
    std::vector<const T*> rows, wts;
    explicit Scratch(const DgradRowsCL& d) : acc(d.p_.C), rows(d.RS_), wts(d.RS_) {}
  };

  // dx row (n, h), all channels.
  void row(int64_t n, int64_t h, Scratch& s) const {
    const Conv2dParams& p = p_;
    const int64_t M = M_, K = p.K, C = p.C;
    const T* wt = wt_.data();
    const T* dyn = static_cast<const T*>(p.y) + n * p.y_strides[0];
    T* dxr = static_cast<T*>(p.x) + n * p.x_strides[0] + h * p.x_strides[2];
    for (int64_t wc = 0; wc < p.W; ++wc) {
      if (wc == wa_ && wb_ > wa_) {
        int64_t nt = 0;
        for (int64_t r = 0; r < p.R; ++r) {
          const int64_t th = h + p.pad_h - r * p.dil_h;
          if (th < 0 || th >= p.P) continue;
          for (int64_t t = 0; t < p.S; ++t, ++nt) {
            s.rows[nt] = dyn + th * p.y_strides[2] + (wa_ + p.pad_w - t * p.dil_w) * p.y_strides[3];
            s.wts[nt] = wt + (r * p.S + t) * K;
          }
        }
        vk_.stencil_row(wb_ - wa_, C, nt, s.rows.data(), p.y_strides[3], s.wts.data(), nullptr,
                        dxr + wa_ * p.x_strides[3], p.x_strides[3]);
        wc = wb_ - 1;
        continue;
      }
      dgrad_pixel_taps(p, dyn, h, wc, s.rows.data());
      if (M == 1) {  // dx's channels over all taps in registers (vector kernel)
        vk_.taps_madd(C, RS_, s.rows.data(), wt, nullptr, dxr + wc * p.x_strides[3]);
        continue;
      }
      T* __restrict a = s.acc.data();
      std::fill(a, a + C, T(0));
      for (int64_t t = 0; t < RS_; ++t) {
        if (s.rows[t] == nullptr) continue;
        const T* __restrict dyr = s.rows[t];
        const T* __restrict wr = wt + t * K;
        for (int64_t c = 0; c < C; ++c)
          for (int64_t m = 0; m < M; ++m) a[c] += dyr[c * M + m] * wr[c * M + m];
      }
      std::copy(a, a + C, dxr + wc * p.x_strides[3]);
    }
  }

 private:
  const Conv2dParams& p_;
  int64_t M_, RS_, wa_ = 0, wb_ = 0;
  std::vector<T> wt_;  // the filters taps-major, (R*S, K), so channels are contiguous
  const DepthwiseKernels<T>& vk_;
};

// dw rows, p in wgrad roles (p.x = x, p.y = dy, p.w = dw). With multiplier 1
// a row's interior runs in stencil_row_dot (the taps' sums in registers).
template <typename T>
class WgradRowsCL {
 public:
  explicit WgradRowsCL(const Conv2dParams& p)
      : p_(p),
        M_(p.K / p.C),
        RS_(p.R * p.S),
        blocks_((p.K + kDepthwiseChannelBlock - 1) / kDepthwiseChannelBlock),
        vk_(active_depthwise_kernels<T>()) {
    interior_columns(p.Q, p.W, p.stride_w, p.pad_w, effective_kernel(p.S, p.dil_w), &qa_, &qb_);
  }

  struct Scratch {
    std::vector<T> row;
    std::vector<const T*> xs;
    std::vector<T*> accs;
    explicit Scratch(const WgradRowsCL& d) : row(d.RS_ * kDepthwiseChannelBlock), xs(d.RS_), accs(d.RS_) {}
  };

  // Doubles in one chunk's partial sums: per block of kDepthwiseChannelBlock
  // filters, (R*S, kDepthwiseChannelBlock).
  int64_t acc_size() const { return blocks_ * RS_ * kDepthwiseChannelBlock; }

  // Adds dy row (n, pp)'s share of every filter's gradient to a chunk's sums.
  void add_row(int64_t n, int64_t pp, Scratch& s, double* acc) const {
    constexpr int64_t B = kDepthwiseChannelBlock;
    for (int64_t b = 0; b < blocks_; ++b)
      block_row(n, pp, b * B, std::min(B, p_.K - b * B), s, acc + b * RS_ * B);
  }

  // Sums the chunks' partial sums in chunk order and writes dw.
  void store(const double* acc, int64_t chunks) const {
    constexpr int64_t B = kDepthwiseChannelBlock;
    std::vector<double> sum(RS_ * B);
    for (int64_t b = 0; b < blocks_; ++b) {
      std::fill(sum.begin(), sum.end(), 0.0);
      for (int64_t c = 0; c < chunks; ++c) {
        const double* part = acc + c * acc_size() + b * RS_ * B;
        for (int64_t i = 0; i < RS_ * B; ++i) sum[i] += part[i];
      }
      store_depthwise_filters<T>(p_, b * B, std::min(B, p_.K - b * B), sum.data(), 1, B);
    }
  }

 private:
  // Filters [k0, k0 + kn) (kn <= kDepthwiseChannelBlock) of row (n, pp), added to
  // acc[t * kDepthwiseChannelBlock + k]: summed over the row in T, then in double.
  void block_row(int64_t n, int64_t pp, int64_t k0, int64_t kn, Scratch& s, double* acc) const {
    const Conv2dParams& p = p_;
    const int64_t M = M_;
    constexpr int64_t B = kDepthwiseChannelBlock;
    const T* x = static_cast<const T*>(p.x);
    const T* dy = static_cast<const T*>(p.y);
    std::fill(s.row.begin(), s.row.end(), T(0));
    const bool rows_fast = M == 1 && qb_ > qa_;
    if (rows_fast) {  // the interior: all column taps inside
      int64_t nt = 0;
      for (int64_t r = 0; r < p.R; ++r) {
        const int64_t h = pp * p.stride_h - p.pad_h + r * p.dil_h;
        if (h < 0 || h >= p.H) continue;
        for (int64_t t = 0; t < p.S; ++t, ++nt) {
          s.xs[nt] = x + n * p.x_strides[0] + h * p.x_strides[2] +
                     (qa_ * p.stride_w - p.pad_w + t * p.dil_w) * p.x_strides[3] + k0;
          s.accs[nt] = s.row.data() + (r * p.S + t) * B;
        }
      }
      vk_.stencil_row_dot(qb_ - qa_, kn, nt, s.xs.data(), p.stride_w * p.x_strides[3],
                          dy + n * p.y_strides[0] + pp * p.y_strides[2] + qa_ * p.y_strides[3] + k0,
                          p.y_strides[3], s.accs.data());
    }
    for (int64_t q = 0; q < p.Q; ++q) {
      if (rows_fast && q == qa_) q = qb_;
      if (q >= p.Q) break;
      const T* __restrict dyr = dy + n * p.y_strides[0] + pp * p.y_strides[2] + q * p.y_strides[3] + k0;
      for (int64_t r = 0; r < p.R; ++r) {
        const int64_t h = pp * p.stride_h - p.pad_h + r * p.dil_h;
        if (h < 0 || h >= p.H) continue;
        for (int64_t t = 0; t < p.S; ++t) {
          const int64_t wc = q * p.stride_w - p.pad_w + t * p.dil_w;
          if (wc < 0 || wc >= p.W) continue;
          const T* __restrict xr = x + n * p.x_strides[0] + h * p.x_strides[2] + wc * p.x_strides[3];
          T* __restrict a = s.row.data() + (r * p.S + t) * B;
          if (M == 1) {
            vk_.mul_add(kn, dyr, xr + k0, a);
          } else {
            for (int64_t k = 0; k < kn; ++k) a[k] += dyr[k] * xr[(k0 + k) / M];
          }
        }
      }
    }
    vk_.add_widened(RS_ * B, s.row.data(), acc);
  }

  const Conv2dParams& p_;
  int64_t M_, RS_, blocks_, qa_ = 0, qb_ = 0;
  const DepthwiseKernels<T>& vk_;
};

}  // namespace cpu
}  // namespace cnnops
