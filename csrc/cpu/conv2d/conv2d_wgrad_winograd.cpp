// conv2d's filter gradient by Winograd's F(2x2, 3x3) for 3x3 layers at unit
// stride and dilation, one group, channels-last x and dy, float and double.
// The forward computes a 2x2 output tile y = A^T [(G w G^T) . (B^T d B)] A from
// its 4x4 input patch d (correlation_winograd.cpp); differentiating that,
//   dw = G^T [ sum over tiles (A g A^T) . (B^T d B) ] G
// with g the tile's 2x2 output gradient: per transformed position, one GEMM
// M[pos] (K x C) = sum over tiles of gt[pos][tile][k] * v[pos][tile][c], 16
// products per channel pair and tile instead of the direct path's 36.
//
// Parallelism: tasks are the 16 positions (times groups of MR-row panels of
// K when threads outnumber positions). Each thread runs through all tiles in
// chunks, in order; per chunk it transforms its positions of the chunk's input
// patches and gradients (the ISA's wgrad_input and wgrad_grad along channels,
// only the rows of positions it owns) into its own buffers, about 256 KiB, and
// runs their GEMMs at once: each of its panels of gradient rows is packed into
// the micro-kernel's A panel and run against every column panel of the patches,
// read in place through per-tile offsets, adding into its rows of M. So the
// transformed data stays in the core's L2 between the two steps, and no cache
// line is written by one core and read by another. (Blocks of tiles shared by
// all threads, transformed by all then multiplied by all, ran 2x slower
// whenever this VM's two vCPUs sat far apart: 13 ms instead of 6.5 at 64
// channels, 56x56, batch 8, for minutes at a time.) Each element of M is a sum
// over tiles in order, whichever thread owns it, so results do not depend on
// the thread count. Last, G^T M G per (k, c) into dw (tasks: output channels).
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
constexpr int64_t kMinTiles = 64;      // fewer: short GEMMs, little to save
constexpr int64_t kMaxSumsBytes = int64_t(64) << 20;  // the 16 K x C sums (1024 x 1024 floats)
// A thread's transformed patches and gradients per chunk of tiles: half the
// smallest L2 seen (Zen 4's 1 MiB; 64 to 1024 KiB ran within 5% of each other
// on 64- to 512-channel layers), 32 to 512 tiles (the GEMMs' reduction).
constexpr int64_t kChunkBytes = int64_t(256) << 10;
constexpr int64_t kMinChunk = 32, kMaxChunk = 512;

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

// The 4x4 patch of tile t (pixels inside x: bits of `valid`) and its 2x2
// output gradient (pixels inside dy: bits of `gvalid`).
template <typename T>
struct TileAt {
  const T* x;
  const T* dy;
  uint32_t valid, gvalid;
};
template <typename T>
TileAt<T> tile_at(const Conv2dParams& p, int64_t TH, int64_t TW, int64_t t) {
  const int64_t n = t / (TH * TW), th = t / TW % TH, tw = t % TW;
  const int64_t p0 = 2 * th, q0 = 2 * tw, h0 = p0 - p.pad_h, w0 = q0 - p.pad_w;
  uint32_t valid = 0;
  for (int r = 0; r < 4; ++r)
    for (int s = 0; s < 4; ++s)
      if (h0 + r >= 0 && h0 + r < p.H && w0 + s >= 0 && w0 + s < p.W) valid |= uint32_t(1) << (4 * r + s);
  uint32_t gvalid = 1;
  if (q0 + 1 < p.Q) gvalid |= 2;
  if (p0 + 1 < p.P) gvalid |= 4 | (q0 + 1 < p.Q ? 8 : 0);
  const int64_t* xs = p.x_strides;
  const int64_t* ys = p.y_strides;
  return {static_cast<const T*>(p.x) + n * xs[0] + h0 * xs[2] + w0 * xs[3],
          static_cast<const T*>(p.y) + n * ys[0] + p0 * ys[2] + q0 * ys[3], valid, gvalid};
}

// The shape's tiles and GEMM sizes (K rows and C columns padded to the tile).
struct Sizes {
  int64_t TH, TW, tiles, MR, NR, kpad, cpad, kpanels, cpanels, Kld;
};

// Rows [0, rows) of A panel kp's tile rows from the transformed gradients g
// (tile t's K values at g + t*Kld), MR wide, zeros past rows.
template <typename T>
void pack_panel(const T* g, int64_t Kld, int64_t kp, int64_t MR, int64_t rows, int64_t tn, T* a) {
  for (int64_t t = 0; t < tn; ++t) {
    std::copy(g + t * Kld + kp * MR, g + t * Kld + kp * MR + rows, a + t * MR);
    std::fill(a + t * MR + rows, a + (t + 1) * MR, T(0));
  }
}

// The GEMMs of positions [begin, end) / kgroups (see Parallelism above) into m.
template <typename T>
void owned_positions(const Conv2dParams& p, const MicroKernel<T>& uk, const Sizes& z, T* m) {
  const int64_t threads = at::get_num_threads();
  const int64_t kgroups = std::min(z.kpanels, ceil_div(threads, kPos)), tasks = kPos * kgroups;
  const double flops = 2.0 * kPos * z.tiles * z.kpad * z.cpad;
  at::parallel_for(0, tasks, task_grain(tasks, flops), [&](int64_t begin, int64_t end) {
    const int p0 = int(begin / kgroups), p1 = int((end - 1) / kgroups) + 1, np = p1 - p0;
    const int64_t TB = std::min(
        z.tiles, std::clamp<int64_t>(kChunkBytes / (np * (z.cpad + z.Kld) * int64_t(sizeof(T))), kMinChunk, kMaxChunk));
    const int64_t vld = TB * z.cpad + 64 / int64_t(sizeof(T)), gld = TB * z.Kld + 64 / int64_t(sizeof(T));
    AlignedBuffer<T> v(np * vld), g(np * gld), a(TB * z.MR);
    if (z.cpad > p.C)  // lanes the GEMMs read but the transforms never write
      for (int64_t i = 0; i < np * TB; ++i) {
        T* row = v.get() + i / TB * vld + i % TB * z.cpad;
        std::fill(row + p.C, row + z.cpad, T(0));
      }
    std::vector<int64_t> boff(TB + kPrefetchSteps, 0);
    for (int64_t t = 0; t < TB; ++t) boff[t] = t * z.cpad;
    for (int64_t t0 = 0; t0 < z.tiles; t0 += TB) {
      const int64_t tn = std::min(TB, z.tiles - t0);
      for (int64_t i = 0; i < tn; ++i) {
        const TileAt<T> tile = tile_at<T>(p, z.TH, z.TW, t0 + i);
        uk.wgrad_input(tile.x, p.x_strides[2], p.x_strides[3], tile.valid, p.C, p0, p1, v.get() + i * z.cpad, vld);
        uk.wgrad_grad(tile.dy, p.y_strides[2], p.y_strides[3], tile.gvalid, p.K, p0, p1, g.get() + i * z.Kld, gld);
      }
      const AccInit init = t0 == 0 ? AccInit::Zero : AccInit::Load;
      for (int64_t task = begin; task < end; ++task) {
        const int64_t pos = task / kgroups, kg = task % kgroups;
        for (int64_t kp = kg * z.kpanels / kgroups; kp < (kg + 1) * z.kpanels / kgroups; ++kp) {
          pack_panel(g.get() + (pos - p0) * gld, z.Kld, kp, z.MR, std::min(z.MR, p.K - kp * z.MR), tn, a.get());
          for (int64_t cp = 0; cp < z.cpanels; ++cp)
            uk.fn_boff(tn, a.get(), v.get() + (pos - p0) * vld + cp * z.NR, boff.data(),
                       m + pos * z.kpad * z.cpad + kp * z.MR * z.cpad + cp * z.NR, z.cpad, init, nullptr);
        }
      }
    }
  });
}

}  // namespace

template <typename T>
bool conv2d_wgrad_winograd(const Conv2dParams& p) {
  const MicroKernel<T>& uk = active_microkernel<T>();
  if (!direct_paths_enabled() || !winograd_enabled() || uk.wgrad_input == nullptr || uk.wgrad_grad == nullptr ||
      uk.fn_boff == nullptr)
    return false;
  if (p.groups != 1 || p.R != 3 || p.S != 3 || p.stride_h != 1 || p.stride_w != 1 || p.dil_h != 1 ||
      p.dil_w != 1)
    return false;
  if (p.x_strides[1] != 1 || p.y_strides[1] != 1 || p.C < kMinChannels || p.K < kMinChannels) return false;
  Sizes z;
  z.TH = ceil_div(p.P, 2), z.TW = ceil_div(p.Q, 2), z.tiles = p.N * z.TH * z.TW;
  if (z.tiles < kMinTiles) return false;
  z.MR = uk.mr, z.NR = uk.nr;
  z.kpad = round_up(p.K, z.MR), z.cpad = round_up(p.C, z.NR), z.kpanels = z.kpad / z.MR, z.cpanels = z.cpad / z.NR;
  z.Kld = round_up(p.K, 16);
  const int64_t sums_bytes = kPos * z.kpad * z.cpad * int64_t(sizeof(T));  // m: [pos][kpad][cpad]
  if (sums_bytes > kMaxSumsBytes) return false;
  AlignedBuffer<T> m(kPos * z.kpad * z.cpad);
  owned_positions<T>(p, uk, z, m.get());
  transform_back(m.get(), z.kpad * z.cpad, p.K, p.C, z.cpad, static_cast<T*>(p.w), p.w_strides);
  return true;
}

template bool conv2d_wgrad_winograd<float>(const Conv2dParams&);
template bool conv2d_wgrad_winograd<double>(const Conv2dParams&);

}  // namespace cpu
}  // namespace cnnops
