// Depthwise convolution with stride 1 on contiguous planes whose output has
// the input's size ('same' padding), forward and both gradients, reading the
// planes in place: output lane i = p*W + q reads tap (dr, ds)'s neighbour at
// i + dr*W + ds, and a lane mask per tap and register zeroes the reads that
// fall outside the plane (those memory cells are never touched). No padded
// copies in, no row copies out: the stencils are the ISA-dispatched
// masked_taps_scale (fprop, dgrad) and masked_taps_dot (wgrad). The masks of
// one plane serve all planes. Parallel over (n, c) planes in memory order
// (the forward prefetches two planes ahead); wgrad keeps per-plane sums (PlaneSums), so the
// bits do not depend on the threads, and the fused backward gives the bits of
// the separate kernels. Small planes only (kMaskedPlaneLanes), where the
// copies cost most. float32 and float64.
#include <ATen/Parallel.h>

#include <vector>

#include "depthwise.h"
#include "depthwise_planes.h"
#include "depthwise_kernels.h"

namespace cnnops {
namespace cpu {
namespace {

// Lanes per plane up to which the masks (4 bytes per register and tap) are
// built; larger planes take the padded path of depthwise_flat.cpp.
constexpr int64_t kMaskedPlaneLanes = 4096;

// A plane's taps: offsets in lanes and masks, for forward-facing taps
// (fprop and wgrad: (r*dil_h - pad_h, s*dil_w - pad_w)) or flipped ones
// (dgrad: (pad_h - r*dil_h, pad_w - s*dil_w)); dgrad's R*S taps come once per
// filter of the input channel (`copies` = M), each copy on its own dy plane.
struct PlaneTaps {
  int64_t per_copy, ntaps;
  std::vector<int64_t> offset;  // (ntaps)
  std::vector<uint32_t> masks;  // (registers, ntaps)

  PlaneTaps(const Conv2dParams& p, bool flipped, int64_t copies, int lanes)
      : per_copy(p.R * p.S), ntaps(copies * p.R * p.S) {
    std::vector<int64_t> dr, ds;
    for (int64_t m = 0; m < copies; ++m)
      for (int64_t r = 0; r < p.R; ++r)
        for (int64_t s = 0; s < p.S; ++s) {
          const int64_t a = r * p.dil_h - p.pad_h, b = s * p.dil_w - p.pad_w;
          dr.push_back(flipped ? -a : a);
          ds.push_back(flipped ? -b : b);
          offset.push_back(dr.back() * p.W + ds.back());
        }
    const int64_t n = p.H * p.W;
    masks.assign((n + lanes - 1) / lanes * ntaps, 0);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t h = i / p.W, w = i % p.W;
      for (int64_t t = 0; t < ntaps; ++t) {
        const int64_t hh = h + dr[t], ww = w + ds[t];
        if (hh >= 0 && hh < p.H && ww >= 0 && ww < p.W)
          masks[(i / lanes) * ntaps + t] |= uint32_t(1) << (i % lanes);
      }
    }
  }

  // Each tap's read of the planes at `plane` (copy m at plane + m*copy_step).
  // A tap's pointer may lie outside its plane; the masks keep those lanes unread.
  template <typename T>
  void point(const T* plane, int64_t copy_step, const T** taps) const {
    for (int64_t t = 0; t < ntaps; ++t) taps[t] = plane + (t / per_copy) * copy_step + offset[t];
  }
};

// Both x and y contiguous planes of the same size (for p in any role).
bool same_size_planes(const Conv2dParams& p) {
  return p.stride_h == 1 && p.stride_w == 1 && p.P == p.H && p.Q == p.W && p.H * p.W > 0 &&
         p.H * p.W <= kMaskedPlaneLanes && p.x_strides[3] == 1 && p.x_strides[2] == p.W &&
         p.y_strides[3] == 1 && p.y_strides[2] == p.Q && !depthwise_channels_last(p);
}

template <typename T>
void fprop(const Conv2dParams& p) {
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  const T* bias = static_cast<const T*>(p.bias);
  const int64_t M = p.K / p.C, RS = p.R * p.S, n = p.H * p.W;
  const DepthwiseKernels<T>& vk = active_depthwise_kernels<T>();
  const PlaneTaps taps(p, false, 1, vk.lanes);
  at::parallel_for(0, p.N * p.C, 1, [&](int64_t begin, int64_t end) {
    std::vector<const T*> reads(RS);
    std::vector<T> wts(RS);
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t b = plane / p.C, c = plane % p.C;
      if (plane + 2 < end) {
        const int64_t b2 = (plane + 2) / p.C, c2 = (plane + 2) % p.C;
        prefetch_plane(x + b2 * p.x_strides[0] + c2 * p.x_strides[1], p.H, p.W, p.W, 1);
        for (int64_t m = 0; m < M; ++m)
          prefetch_plane<true>(y + b2 * p.y_strides[0] + (c2 * M + m) * p.y_strides[1], p.P, p.Q, p.Q, 1);
      }
      taps.point(x + b * p.x_strides[0] + c * p.x_strides[1], 0, reads.data());
      for (int64_t m = 0; m < M; ++m) {
        const int64_t k = c * M + m;
        depthwise_filter(p, k, wts.data());
        vk.masked_taps_scale(n, RS, reads.data(), taps.masks.data(), wts.data(), bias ? bias[k] : T(0),
                             y + b * p.y_strides[0] + k * p.y_strides[1]);
        depthwise_finish<T>(p, b, 0, p.P, 0, p.Q, k, k + 1);
      }
    }
  });
}

// dx planes, p in dgrad roles (p.x = dx, p.y = dy): dx[h, w] = sum over m, r, s
// of dy_m[h + pad_h - r*dil_h, w + pad_w - s*dil_w] * w[m, r, s], in that
// order. Used by dgrad and by the fused backward.
template <typename T>
struct DgradPlanes {
  const Conv2dParams& p;
  const int64_t M, RS;
  const DepthwiseKernels<T>& vk;
  const PlaneTaps taps;
  explicit DgradPlanes(const Conv2dParams& p_)
      : p(p_),
        M(p_.K / p_.C),
        RS(p_.R * p_.S),
        vk(active_depthwise_kernels<T>()),
        taps(p_, true, p_.K / p_.C, vk.lanes) {}

  struct Scratch {
    std::vector<const T*> reads;
    std::vector<T> wts;
    explicit Scratch(const DgradPlanes& d) : reads(d.taps.ntaps), wts(d.taps.ntaps) {}
  };

  void plane(int64_t b, int64_t c, Scratch& s) const {
    const T* dy = static_cast<const T*>(p.y);
    T* dx = static_cast<T*>(p.x);
    taps.point(dy + b * p.y_strides[0] + c * M * p.y_strides[1], p.y_strides[1], s.reads.data());
    for (int64_t m = 0; m < M; ++m) depthwise_filter(p, c * M + m, s.wts.data() + m * RS);
    vk.masked_taps_scale(p.H * p.W, taps.ntaps, s.reads.data(), taps.masks.data(), s.wts.data(), T(0),
                         dx + b * p.x_strides[0] + c * p.x_strides[1]);
  }
};

template <typename T>
void dgrad(const Conv2dParams& p) {
  dgrad_by_planes(p, DgradPlanes<T>(p));
}

// dw[m, r, s] += sum over lanes of dy_m times x read at tap (r, s), p in wgrad
// roles (p.x = x, p.y = dy), for input plane (b, c).
template <typename T>
void wgrad_plane(const Conv2dParams& p, const PlaneTaps& taps, int64_t b, int64_t c,
                 const DepthwiseKernels<T>& vk, const T** reads, PlaneSums<T>& sums) {
  const T* x = static_cast<const T*>(p.x);
  const T* dy = static_cast<const T*>(p.y);
  const int64_t M = p.K / p.C;
  taps.point(x + b * p.x_strides[0] + c * p.x_strides[1], 0, reads);
  for (int64_t m = 0; m < M; ++m) {
    const int64_t k = c * M + m;
    vk.masked_taps_dot(p.H * p.W, taps.ntaps, dy + b * p.y_strides[0] + k * p.y_strides[1], reads,
                       taps.masks.data(), sums.at(b, k));
  }
}

template <typename T>
void wgrad(const Conv2dParams& p) {
  const DepthwiseKernels<T>& vk = active_depthwise_kernels<T>();
  const PlaneTaps taps(p, false, 1, vk.lanes);
  PlaneSums<T> sums(p);
  at::parallel_for(0, p.N * p.C, 1, [&](int64_t begin, int64_t end) {
    std::vector<const T*> reads(taps.ntaps);
    for (int64_t plane = begin; plane < end; ++plane)
      wgrad_plane(p, taps, plane / p.C, plane % p.C, vk, reads.data(), sums);
  });
  sums.store();
}

// Both gradients, plane by plane: dx plane (b, c), then dw's sums from the
// same dy planes while they are in cache.
template <typename T>
void backward(const Conv2dParams& dp, const Conv2dParams& wp) {
  const DgradPlanes<T> dx_planes(dp);
  const DepthwiseKernels<T>& vk = active_depthwise_kernels<T>();
  const PlaneTaps x_taps(wp, false, 1, vk.lanes);
  PlaneSums<T> sums(wp);
  at::parallel_for(0, dp.N * dp.C, 1, [&](int64_t begin, int64_t end) {
    typename DgradPlanes<T>::Scratch scratch(dx_planes);
    std::vector<const T*> reads(x_taps.ntaps);
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t b = plane / dp.C, c = plane % dp.C;
      dx_planes.plane(b, c, scratch);
      wgrad_plane(wp, x_taps, b, c, vk, reads.data(), sums);
    }
  });
  sums.store();
}

}  // namespace

bool depthwise_masked_applies(const Conv2dParams& p) { return same_size_planes(p); }

void depthwise_fprop_masked(const Conv2dParams& p) {
  if (p.dtype == DType::Float64) fprop<double>(p);
  else fprop<float>(p);
}

void depthwise_dgrad_masked(const Conv2dParams& p) {
  if (p.dtype == DType::Float64) dgrad<double>(p);
  else dgrad<float>(p);
}

void depthwise_wgrad_masked(const Conv2dParams& p) {
  if (p.dtype == DType::Float64) wgrad<double>(p);
  else wgrad<float>(p);
}

void depthwise_backward_masked(const Conv2dParams& dgrad_p, const Conv2dParams& wgrad_p) {
  if (dgrad_p.dtype == DType::Float64) backward<double>(dgrad_p, wgrad_p);
  else backward<float>(dgrad_p, wgrad_p);
}

}  // namespace cpu
}  // namespace cnnops
