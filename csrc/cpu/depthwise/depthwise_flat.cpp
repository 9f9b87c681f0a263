// Depthwise convolution with stride 1 on planes (NCHW, any strides, any
// dilation and depth multiplier), forward and both gradients, as "flat plane"
// stencils:
//   Each (n, c) plane is copied once into a zero-padded buffer of width Wp.
//   Output (p, q) then reads the buffer at p*Wp + q + offset(r, s) with one
//   offset per tap, so the whole plane is a single run of P*Wp lanes (the
//   columns q >= Q are computed and dropped). The ISA-dispatched kernels
//   taps_scale (fprop, dgrad: every tap's weight times its shifted run, in
//   registers) and taps_dot (wgrad: one dot product per tap) do the work.
//   Small contiguous planes whose output has the input's size skip the
//   copies: the entry points hand them to depthwise_masked.cpp.
//   All parallel over (n, c) planes in memory order. wgrad keeps each plane's
//   sums (in T) and adds them per filter over n in order, in double: the same
//   bits whatever the threads. The fused backward (dgrad and wgrad from one
//   padded copy of each dy plane) does both per plane. float32 and float64.
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "depthwise.h"
#include "depthwise_planes.h"
#include "depthwise_kernels.h"
#include "../../common/shape.h"

namespace cnnops {
namespace cpu {
namespace {

// A zero-padded copy of a plane: buf[(i + top) * Wp + (j + left)] = src[i, j]
// where that lands inside Hp x Wp (top, left may be negative); the rest is 0.
// The buffer has slack past Hp*Wp: ew - 1 lanes for the last taps' reads and
// kCopyRowsSlack for copy_rows' margin stores.
template <typename T>
void pad_plane(const T* src, int64_t H, int64_t W, int64_t sh, int64_t sw, int64_t top, int64_t left,
               int64_t Hp, int64_t Wp, T* buf, int64_t buf_len, const DepthwiseKernels<T>& vk) {
  const int64_t j0 = std::max<int64_t>(0, -left), j1 = std::max(j0, std::min(W, Wp - left));
  const int64_t i0 = std::max<int64_t>(0, -top), i1 = std::max(i0, std::min(H, Hp - top));
  const int64_t b0 = (i0 + top) * Wp, b1 = (i1 + top) * Wp;  // rows copied: [b0, b1)
  std::fill(buf, buf + b0, T(0));
  std::fill(buf + b1, buf + buf_len, T(0));
  const int64_t lead = left + j0, trail = Wp - lead - (j1 - j0);
  if (sw == 1) {
    vk.copy_rows(i1 - i0, j1 - j0, src + i0 * sh + j0, sh, buf + b0, Wp, lead, trail);
    return;
  }
  std::fill(buf + b0, buf + b1, T(0));
  for (int64_t i = i0; i < i1; ++i)
    for (int64_t j = j0; j < j1; ++j) buf[(i + top) * Wp + j + left] = src[i * sh + j * sw];
}

// Copies rows of Q values out of a flat run of width Wp into a strided plane.
template <typename T>
void store_rows(const T* flat, int64_t rows, int64_t Q, int64_t Wp, T* dst, int64_t s_row, int64_t s_col,
                const DepthwiseKernels<T>& vk) {
  if (s_col == 1) return vk.copy_rows(rows, Q, flat, Wp, dst, s_row, 0, 0);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t q = 0; q < Q; ++q) dst[i * s_row + q * s_col] = flat[i * Wp + q];
}

struct FlatGeometry {
  int64_t eh, ew, Hp, Wp, len;
  FlatGeometry(const Conv2dParams& p, int64_t rows_out, int64_t cols_out)
      : eh(effective_kernel(p.R, p.dil_h)),
        ew(effective_kernel(p.S, p.dil_w)),
        Hp(rows_out + eh - 1),
        Wp(cols_out + ew - 1),
        len(Hp * Wp + ew + kCopyRowsSlack) {}

  // The start of tap (r, s)'s run in a padded buffer: buf + r*dil_h*Wp + s*dil_w,
  // or, flipped (dgrad), buf + (eh-1 - r*dil_h)*Wp + (ew-1 - s*dil_w).
  template <typename T>
  void tap_rows(const Conv2dParams& p, const T* buf, bool flipped, const T** rows) const {
    for (int64_t r = 0; r < p.R; ++r)
      for (int64_t s = 0; s < p.S; ++s) {
        const int64_t dr = r * p.dil_h, ds = s * p.dil_w;
        rows[r * p.S + s] = flipped ? buf + (eh - 1 - dr) * Wp + (ew - 1 - ds) : buf + dr * Wp + ds;
      }
  }
};

template <typename T>
void fprop(const Conv2dParams& p) {
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  const T* bias = static_cast<const T*>(p.bias);
  const int64_t M = p.K / p.C, RS = p.R * p.S;
  const FlatGeometry g(p, p.P, p.Q);
  const DepthwiseKernels<T>& vk = active_depthwise_kernels<T>();
  at::parallel_for(0, p.N * p.C, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> buf(g.len), out(p.P * g.Wp), wts(RS);
    std::vector<const T*> rows(RS);
    g.tap_rows(p, buf.data(), false, rows.data());
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t n = plane / p.C, c = plane % p.C;
      if (plane + 2 < end) {
        const int64_t n2 = (plane + 2) / p.C, c2 = (plane + 2) % p.C;
        prefetch_plane(x + n2 * p.x_strides[0] + c2 * p.x_strides[1], p.H, p.W, p.x_strides[2],
                       p.x_strides[3]);
        for (int64_t m = 0; m < M; ++m)
          prefetch_plane<true>(y + n2 * p.y_strides[0] + (c2 * M + m) * p.y_strides[1], p.P, p.Q,
                               p.y_strides[2], p.y_strides[3]);
      }
      pad_plane(x + n * p.x_strides[0] + c * p.x_strides[1], p.H, p.W, p.x_strides[2], p.x_strides[3],
                p.pad_h, p.pad_w, g.Hp, g.Wp, buf.data(), g.len, vk);
      for (int64_t m = 0; m < M; ++m) {
        const int64_t k = c * M + m;
        depthwise_filter(p, k, wts.data());
        vk.taps_scale(p.P * g.Wp, RS, rows.data(), wts.data(), bias ? bias[k] : T(0), out.data());
        store_rows(out.data(), p.P, p.Q, g.Wp, y + n * p.y_strides[0] + k * p.y_strides[1], p.y_strides[2],
                   p.y_strides[3], vk);
        depthwise_finish<T>(p, n, 0, p.P, 0, p.Q, k, k + 1);
      }
    }
  });
}

// dx[h, w] = sum over m, r, s of dy_m[h + pad_h - r*dil_h, w + pad_w - s*dil_w]
// * w[m, r, s]: dy padded so that tap (r, s) sits at offset
// (eh-1 - r*dil_h)*Wp + (ew-1 - s*dil_w). One dx plane at a time, each thread
// with its own Scratch; used by dgrad and by the fused backward.
template <typename T>
struct DgradPlanes {
  const Conv2dParams& p;
  const FlatGeometry g;
  const int64_t M, RS, top, left;  // dy's place in its padded buffer
  const DepthwiseKernels<T>& vk;
  explicit DgradPlanes(const Conv2dParams& p_)
      : p(p_),
        g(p_, p_.H, p_.W),
        M(p_.K / p_.C),
        RS(p_.R * p_.S),
        top(g.eh - 1 - p_.pad_h),
        left(g.ew - 1 - p_.pad_w),
        vk(active_depthwise_kernels<T>()) {}

  struct Scratch {
    std::vector<T> dyb, out, wts;  // M padded dy planes, the flat result, M filters
    std::vector<const T*> taps;
    explicit Scratch(const DgradPlanes& d)
        : dyb(d.M * d.g.len), out(d.p.H * d.g.Wp), wts(d.M * d.RS), taps(d.M * d.RS) {
      for (int64_t m = 0; m < d.M; ++m)
        d.g.tap_rows(d.p, dyb.data() + m * d.g.len, true, taps.data() + m * d.RS);
    }
    // dy plane m in the buffer: row p at p*Wp, zeros in the columns past Q.
    const T* dy_run(const DgradPlanes& d, int64_t m) const {
      return dyb.data() + m * d.g.len + d.top * d.g.Wp + d.left;
    }
  };

  void plane(int64_t n, int64_t c, Scratch& s) const {
    const T* dy = static_cast<const T*>(p.y);
    T* dx = static_cast<T*>(p.x);
    for (int64_t m = 0; m < M; ++m) {
      const int64_t k = c * M + m;
      pad_plane(dy + n * p.y_strides[0] + k * p.y_strides[1], p.P, p.Q, p.y_strides[2], p.y_strides[3], top,
                left, g.Hp, g.Wp, s.dyb.data() + m * g.len, g.len, vk);
      depthwise_filter(p, k, s.wts.data() + m * RS);
    }
    vk.taps_scale(p.H * g.Wp, M * RS, s.taps.data(), s.wts.data(), T(0), s.out.data());
    store_rows(s.out.data(), p.H, p.W, g.Wp, dx + n * p.x_strides[0] + c * p.x_strides[1], p.x_strides[2],
               p.x_strides[3], vk);
  }
};

template <typename T>
void dgrad(const Conv2dParams& p) {
  dgrad_by_planes(p, DgradPlanes<T>(p));
}

// dw[m, r, s] = sum over n of the dot product of dy_m (laid out with width Wp,
// zeros in the dropped columns) with the padded x run at tap offset (r, s).
template <typename T>
void wgrad(const Conv2dParams& p) {
  const T* x = static_cast<const T*>(p.x);
  const T* dy = static_cast<const T*>(p.y);
  const int64_t M = p.K / p.C, RS = p.R * p.S;
  const FlatGeometry g(p, p.P, p.Q);
  const DepthwiseKernels<T>& vk = active_depthwise_kernels<T>();
  PlaneSums<T> sums(p);
  at::parallel_for(0, p.N * p.C, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> buf(g.len), dyb(p.P * g.Wp + kCopyRowsSlack);
    std::vector<const T*> rows(RS);
    g.tap_rows(p, buf.data(), false, rows.data());
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t n = plane / p.C, c = plane % p.C;
      pad_plane(x + n * p.x_strides[0] + c * p.x_strides[1], p.H, p.W, p.x_strides[2], p.x_strides[3],
                p.pad_h, p.pad_w, g.Hp, g.Wp, buf.data(), g.len, vk);
      for (int64_t m = 0; m < M; ++m) {
        const int64_t k = c * M + m;
        pad_plane(dy + n * p.y_strides[0] + k * p.y_strides[1], p.P, p.Q, p.y_strides[2], p.y_strides[3], 0,
                  0, p.P, g.Wp, dyb.data(), dyb.size(), vk);
        vk.taps_dot(p.P * g.Wp, RS, dyb.data(), rows.data(), sums.at(n, k));
      }
    }
  });
  sums.store();
}

// dgrad and wgrad in one pass over dy, when dy has x's size ('same' padding,
// pad <= extent - 1): each dy plane, padded once in dgrad's geometry, is the
// dgrad stencil's input and, at offset (top, left), the zero-extended run the
// wgrad dot products read; fprop's and dgrad's buffers then have one width.
// Parallel over (n, c) planes in memory order, with wgrad's per-plane sums:
// the same buffers and sums as the separate kernels, so the same bits.
template <typename T>
void backward(const Conv2dParams& dp, const Conv2dParams& wp) {
  const T* x = static_cast<const T*>(wp.x);
  const int64_t M = dp.K / dp.C, RS = dp.R * dp.S;
  const DgradPlanes<T> dx_planes(dp);
  const FlatGeometry gx(wp, wp.P, wp.Q);
  const DepthwiseKernels<T>& vk = active_depthwise_kernels<T>();
  PlaneSums<T> sums(wp);
  at::parallel_for(0, dp.N * dp.C, 1, [&](int64_t begin, int64_t end) {
    typename DgradPlanes<T>::Scratch scratch(dx_planes);
    std::vector<T> xb(gx.len);
    std::vector<const T*> x_taps(RS);
    gx.tap_rows(wp, xb.data(), false, x_taps.data());
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t n = plane / dp.C, c = plane % dp.C;
      dx_planes.plane(n, c, scratch);
      pad_plane(x + n * wp.x_strides[0] + c * wp.x_strides[1], wp.H, wp.W, wp.x_strides[2], wp.x_strides[3],
                wp.pad_h, wp.pad_w, gx.Hp, gx.Wp, xb.data(), gx.len, vk);
      for (int64_t m = 0; m < M; ++m)
        vk.taps_dot(wp.P * gx.Wp, RS, scratch.dy_run(dx_planes, m), x_taps.data(), sums.at(n, c * M + m));
    }
  });
  sums.store();
}

}  // namespace

bool depthwise_flat_applies(const Conv2dParams& p) {
  return p.stride_h == 1 && p.stride_w == 1 && !depthwise_channels_last(p) && p.P > 0 && p.Q > 0;
}

void depthwise_fprop_flat(const Conv2dParams& p) {
  if (depthwise_masked_applies(p)) return depthwise_fprop_masked(p);
  if (p.dtype == DType::Float64) fprop<double>(p);
  else fprop<float>(p);
}

void depthwise_dgrad_flat(const Conv2dParams& p) {
  if (depthwise_masked_applies(p)) return depthwise_dgrad_masked(p);
  if (p.dtype == DType::Float64) dgrad<double>(p);
  else dgrad<float>(p);
}

void depthwise_wgrad_flat(const Conv2dParams& p) {
  if (depthwise_masked_applies(p)) return depthwise_wgrad_masked(p);
  if (p.dtype == DType::Float64) wgrad<double>(p);
  else wgrad<float>(p);
}

bool depthwise_backward_flat_applies(const Conv2dParams& dgrad_p, const Conv2dParams& wgrad_p) {
  const Conv2dParams& p = dgrad_p;
  // The masked wgrad groups its sums unlike the padded one, so where it
  // applies the fused pass must be the masked one, which needs dgrad masked too.
  const bool same_dw_path = depthwise_masked_applies(dgrad_p) || !depthwise_masked_applies(wgrad_p);
  return depthwise_flat_applies(p) && depthwise_flat_applies(wgrad_p) && p.P == p.H && p.Q == p.W &&
         p.pad_h <= effective_kernel(p.R, p.dil_h) - 1 && p.pad_w <= effective_kernel(p.S, p.dil_w) - 1 &&
         same_dw_path;
}

void depthwise_backward_flat(const Conv2dParams& dgrad_p, const Conv2dParams& wgrad_p) {
  if (depthwise_masked_applies(wgrad_p)) return depthwise_backward_masked(dgrad_p, wgrad_p);
  if (dgrad_p.dtype == DType::Float64) backward<double>(dgrad_p, wgrad_p);
  else backward<float>(dgrad_p, wgrad_p);
}

}  // namespace cpu
}  // namespace cnnops
