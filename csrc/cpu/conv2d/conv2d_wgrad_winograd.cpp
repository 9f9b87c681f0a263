// conv2d's filter gradient by Winograd's F(2x2, 3x3) for 3x3 layers at unit
// stride and dilation, one group, channels-last x and dy, float and double.
// The forward computes a 2x2 output tile y = A^T [(G w G^T) . (B^T d B)] A from
// its 4x4 input patch d (correlation_winograd.cpp); differentiating that,
//   dw = G^T [ sum over tiles (A g A^T) . (B^T d B) ] G
// with g the tile's 2x2 output gradient: per transformed position, one GEMM
// M[pos] (K x C) = sum over tiles of gt[pos][tile][k] * v[pos][tile][c], 16
// products per channel pair and tile instead of the direct path's 36.
//
// Parallelism: tiles are taken in blocks (of 128 to 1024), in order. For each
// block all threads transform its input patches and gradients (the ISA's
// winograd_input and winograd_grad along channels; tasks: tiles), then run its
// GEMMs (tasks: a position and a panel of MR output channels, which packs its
// gradient rows into the micro-kernel's A panel and runs it against every
// column panel of v, read in place through per-tile offsets). Each task owns
// its rows of M and adds the blocks in order, so results do not depend on the
// thread count. Last, G^T M G per (k, c) into dw (tasks: output channels).
//
// Accuracy: the transforms add and subtract (coefficients 0 and +-1) and the
// last one halves; float32 sums run over blocks of tiles as the direct path's
// run over pixels. Tests compare against float64 references.
#include "conv2d_wgrad_winograd.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "../util/buffer.h"
#include "conv2d.h"
#include "microkernel.h"

namespace cnnops {
namespace cpu {
namespace {

constexpr int kPos = 16;               // 4 x 4 transformed positions
constexpr int64_t kMinChannels = 64;   // fewer: the transforms cost about what the GEMMs save (32: 0.84-1.03x)
constexpr int64_t kMinTiles = 64;      // fewer: one block of few tiles, little to save
constexpr int64_t kMaxSumsBytes = int64_t(64) << 20;  // the 16 K x C sums (1024 x 1024 floats)
// Tiles per block (each GEMM's reduction): their transformed patches and
// gradients within 4 MiB, 128 to 1024 tiles (Zen 4, 2 threads, batch 8: 512 for
// 64 channels, 256 for 128, 128 for 256 and 512; 1024 for 32 at batch 16; the
// blocks' two parallel passes cost more than their buffers' cache misses).
constexpr int64_t kBlockBytes = int64_t(4) << 20;
constexpr int64_t kMinTileBlock = 128, kMaxTileBlock = 1024;

// dw[k][c][r][s] = (G^T M G)[r][s] for each channel pair, G^T = [1 1/2 1/2 0;
// 0 1/2 -1/2 0; 0 1/2 1/2 1], M's 16 positions at m + pos * pos_stride.
template <typename T>
void transform_back(const T* m, int64_t pos_stride, int64_t K, int64_t C, int64_t ldm, T* dw,
                    const int64_t* ws) {
  at::parallel_for(0, K, task_grain(K, 40.0 * K * C), [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k)
      for (int64_t c = 0; c < C; ++c) {
        T s[3][4];
        for (int b = 0; b < 4; ++b) {
          const T m0 = m[(0 + b) * pos_stride + k * ldm + c], m1 = m[(4 + b) * pos_stride + k * ldm + c];
          const T m2 = m[(8 + b) * pos_stride + k * ldm + c], m3 = m[(12 + b) * pos_stride + k * ldm + c];
          s[0][b] = m0 + T(0.5) * (m1 + m2);
          s[1][b] = T(0.5) * (m1 - m2);
          s[2][b] = T(0.5) * (m1 + m2) + m3;
        }
        T* o = dw + k * ws[0] + c * ws[1];
        for (int r = 0; r < 3; ++r) {
          o[r * ws[2]] = s[r][0] + T(0.5) * (s[r][1] + s[r][2]);
          o[r * ws[2] + ws[3]] = T(0.5) * (s[r][1] - s[r][2]);
          o[r * ws[2] + 2 * ws[3]] = T(0.5) * (s[r][1] + s[r][2]) + s[r][3];
        }
      }
  });
}

}  // namespace

template <typename T>
bool conv2d_wgrad_winograd(const Conv2dParams& p) {
  const MicroKernel<T>& uk = active_microkernel<T>();
  if (!direct_paths_enabled() || !winograd_enabled() || uk.winograd_input[2][2] == nullptr ||
      uk.winograd_grad == nullptr || uk.fn_boff == nullptr)
    return false;
  if (p.groups != 1 || p.R != 3 || p.S != 3 || p.stride_h != 1 || p.stride_w != 1 || p.dil_h != 1 ||
      p.dil_w != 1)
    return false;
  const int64_t* xs = p.x_strides;
  const int64_t* ys = p.y_strides;
  if (xs[1] != 1 || ys[1] != 1 || p.C < kMinChannels || p.K < kMinChannels) return false;
  const int64_t TH = ceil_div(p.P, 2), TW = ceil_div(p.Q, 2), tiles = p.N * TH * TW;
  if (tiles < kMinTiles) return false;

  const int64_t MR = uk.mr, NR = uk.nr;
  const int64_t kpad = round_up(p.K, MR), cpad = round_up(p.C, NR), kpanels = kpad / MR, cpanels = cpad / NR;
  if (kPos * kpad * cpad * int64_t(sizeof(T)) > kMaxSumsBytes) return false;
  const int64_t Kld = round_up(p.K, 16);
  const int64_t TB = std::min(tiles, std::clamp<int64_t>(kBlockBytes / (kPos * (cpad + Kld) * int64_t(sizeof(T))),
                                                         kMinTileBlock, kMaxTileBlock));
  const T* x = static_cast<const T*>(p.x);
  const T* dy = static_cast<const T*>(p.y);
  // v: transformed patches [pos][tile][cpad]; gt: transformed gradients
  // [pos][tile][Kld]; a: gt as A panels [pos][kpanel][tile][MR]; m: [pos][kpad][cpad].
  // Lanes of v past C and rows of a past K feed only sums that are never read;
  // they are zeroed once (no stale denormals in the FMAs) and never written.
  // Positions a line further apart than their tiles: at a power-of-two stride
  // (512 tiles of 64 channels: 128 KiB) a tile's 16 positions, and v's and gt's,
  // fell on one set of L1 and L2 (the 64-channel layer at 56x56 ran 2x slower
  // whenever the heap placed the two buffers so).
  const int64_t vstride = TB * cpad + 64 / int64_t(sizeof(T)), gstride = TB * Kld + 64 / int64_t(sizeof(T));
  AlignedBuffer<T> v(kPos * vstride), gt(kPos * gstride), a(kPos * kpanels * TB * MR), m(kPos * kpad * cpad);
  if (cpad > p.C)
    for (int pos = 0; pos < kPos; ++pos)
      for (int64_t t = 0; t < TB; ++t) {
        T* row = v.get() + pos * vstride + t * cpad;
        std::fill(row + p.C, row + cpad, T(0));
      }
  if (kpad > p.K)
    for (int pos = 0; pos < kPos; ++pos) {
      T* last = a.get() + (pos * kpanels + kpanels - 1) * TB * MR;
      std::fill(last, last + TB * MR, T(0));
    }
  std::vector<int64_t> boff(TB + kPrefetchSteps, 0);
  for (int64_t t = 0; t < TB; ++t) boff[t] = t * cpad;
  const double block_flops = 2.0 * kPos * TB * kpad * cpad;

  for (int64_t t0 = 0; t0 < tiles; t0 += TB) {
    const int64_t tn = std::min(TB, tiles - t0);
    at::parallel_for(0, tn, task_grain(tn, block_flops), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t t = t0 + i, n = t / (TH * TW), th = t / TW % TH, tw = t % TW;
        const int64_t p0 = 2 * th, q0 = 2 * tw, h0 = p0 - p.pad_h, w0 = q0 - p.pad_w;
        uint32_t valid = 0;  // the patch's pixels inside x (the rest is padding: zeros)
        for (int r = 0; r < 4; ++r)
          for (int s = 0; s < 4; ++s)
            if (h0 + r >= 0 && h0 + r < p.H && w0 + s >= 0 && w0 + s < p.W) valid |= uint32_t(1) << (4 * r + s);
        uk.winograd_input[2][2](x + n * xs[0] + h0 * xs[2] + w0 * xs[3], xs[2], xs[3], valid, p.C, v.get() + i * cpad,
                          vstride);
        uint32_t gvalid = 1;  // the tile's pixels inside dy
        if (q0 + 1 < p.Q) gvalid |= 2;
        if (p0 + 1 < p.P) gvalid |= 4 | (q0 + 1 < p.Q ? 8 : 0);
        uk.winograd_grad(dy + n * ys[0] + p0 * ys[2] + q0 * ys[3], ys[2], ys[3], gvalid, p.K, gt.get() + i * Kld,
                         gstride);
      }
    });
    const AccInit init = t0 == 0 ? AccInit::Zero : AccInit::Load;
    at::parallel_for(0, kPos * kpanels, task_grain(kPos * kpanels, block_flops), [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t pos = task / kpanels, kp = task % kpanels, rows = std::min(MR, p.K - kp * MR);
        T* ap = a.get() + task * TB * MR;
        const T* g = gt.get() + pos * gstride + kp * MR;
        for (int64_t t = 0; t < tn; ++t) std::copy(g + t * Kld, g + t * Kld + rows, ap + t * MR);
        for (int64_t cp = 0; cp < cpanels; ++cp)
          uk.fn_boff(tn, ap, v.get() + pos * vstride + cp * NR, boff.data(),
                     m.get() + pos * kpad * cpad + kp * MR * cpad + cp * NR, cpad, init, nullptr);
      }
    });
  }
  transform_back(m.get(), kpad * cpad, p.K, p.C, cpad, static_cast<T*>(p.w), p.w_strides);
  return true;
}

template bool conv2d_wgrad_winograd<float>(const Conv2dParams&);
template bool conv2d_wgrad_winograd<double>(const Conv2dParams&);

}  // namespace cpu
}  // namespace cnnops
