// conv2d filter gradient on the CPU, as an implicit GEMM per group:
//   dw[k, col] = sum_{pixels} dy[n, k, p, q] * x[n, c, p*stride - pad + r*dil, ...]
// with rows k (the micro-kernel's broadcast side), columns col = (c, r, s), or
// (r, s, c) when x is channels_last, on the vector side, and the reduction over
// all output pixels (n, p, q).
//
// With channels_last x and channels per group a multiple of the micro-kernel's
// NR, the B side is read in place (tap_pixel_offsets); otherwise it is packed.
// NCHW inputs are mostly first transposed into channels-last copies (see
// transpose_nchw): im2col panels need one pixel per step, which is a contiguous
// copy in channels-last but a transpose of every im2col element (R*S times more
// work) in NCHW. With very few pixels that im2col is small and NCHW is packed as
// it is.
//
// Parallelism: tasks are (group, block of columns, chunk of pixels, and, when
// that makes too few, block of rows). The number of pixel chunks depends only on
// the problem size, each chunk accumulates into
// its own zero-padded partial buffer, and the partials are summed in chunk order,
// so results do not depend on scheduling (no atomics).
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "../util/balanced_for.h"
#include "../util/buffer.h"
#include "../util/copy_row.h"
#include "channels_last_copy.h"
#include "conv2d.h"
#include "conv2d_wgrad_few_columns.h"
#include "conv2d_wgrad_winograd.h"
#include "microkernel.h"

namespace cnnops {
namespace cpu {
namespace {

constexpr int64_t kKc = 256;               // pixels per reduction block
constexpr int64_t kPixelsPerChunk = 2048;  // target pixels per partial sum
constexpr int64_t kMaxChunks = 32;
constexpr int64_t kPanelsPerBlock = 16;  // column panels per task (dy is packed once per block)
constexpr int64_t kOneBlockBytes = int64_t(5) << 18;  // dw tiles of one column block at most (1.25 MiB)
constexpr int64_t kMinTasks = 8;         // split pixels into chunks until there are this many tasks
// Whether an NCHW problem is first copied into channels-last buffers (then x is read
// in place, and dy's rows are contiguous) rather than packed as it is. A 1x1 always
// is (its im2col is x itself, and both orders of dw's columns agree). Otherwise
// the channels-last columns (r, s, c) are not dw's (c, r, s), so dw is summed in a
// partial buffer and reordered: worth it once there are at least half as many
// output pixels as output channels per group (the packing it saves grows with the
// pixels, the reorder with dw). Measured on 3x3 layers: 256 channels at 14x14 and
// 8x8 (batch 1, 2) 1.13-1.25x faster; 512 at 7x7, batch 1 and 4, 0.65x and 0.97x.
bool transpose_nchw(const Conv2dParams& p) {
  const int64_t pixels = p.N * p.P * p.Q;
  return p.R * p.S == 1 || 2 * pixels >= p.K / p.groups;
}

// What column `col` of the GEMM reads: input channel and tap offsets.
struct Column {
  int64_t c, hoff, woff, dw_offset;
};

// A panels: dy[n, k0 + k, p, q] for k < kpad (zero past Kg), one pixel per step:
// dst[k / MR][t][k % MR] for pixels kb0 .. kb0+kc.
template <typename T>
void pack_dy_panels(const Conv2dParams& p, const T* dy, int64_t k0, int64_t Kg, int64_t kpad, int64_t MR,
                    int64_t kb0, int64_t kc, T* dst) {
  const int64_t* ys = p.y_strides;
  if (ys[1] == 1) {  // channels contiguous: each pixel gives MR contiguous values per panel
    int64_t t = 0;
    for_each_row_run(kb0, kb0 + kc, p.P, p.Q, [&](int64_t n, int64_t pp, int64_t q0, int64_t len) {
      for (int64_t u = 0; u < len; ++u, ++t) {
        const T* src = dy + n * ys[0] + pp * ys[2] + (q0 + u) * ys[3] + k0;
        for (int64_t panel = 0; panel < kpad / MR; ++panel) {
          T* d = dst + panel * kc * MR + t * MR;
          const int64_t valid = std::max<int64_t>(0, std::min(MR, Kg - panel * MR));
          if (valid == MR) {  // one copy of MR values (2-3% of a 64-channel wgrad's time)
            std::memcpy(d, src + panel * MR, MR * sizeof(T));
            continue;
          }
          for (int64_t i = 0; i < valid; ++i) d[i] = src[panel * MR + i];
          for (int64_t i = valid; i < MR; ++i) d[i] = T(0);
        }
      }
    });
    return;
  }
  for (int64_t k = 0; k < kpad; ++k) {
    T* d = dst + k / MR * kc * MR + k % MR;
    if (k >= Kg) {
      for (int64_t t = 0; t < kc; ++t) d[t * MR] = T(0);
      continue;
    }
    const T* plane = dy + (k0 + k) * ys[1];
    int64_t t = 0;
    for_each_row_run(kb0, kb0 + kc, p.P, p.Q, [&](int64_t n, int64_t pp, int64_t q0, int64_t len) {
      copy_row_segment(plane + n * ys[0] + pp * ys[2], p.Q, q0, 1, ys[3], len, d + t * MR, MR);
      t += len;
    });
  }
}

// B panels: the im2col of x for columns col0 .. col0+ncols (zero past the last
// column), one pixel per step: dst[j / NR][t][j % NR].
template <typename T>
void pack_x_panels(const Conv2dParams& p, const T* x, int64_t c0, const std::vector<Column>& column,
                   int64_t col0, int64_t ncols, int64_t NR, int64_t kb0, int64_t kc, bool channels_last,
                   T* dst) {
  const int64_t* xs = p.x_strides;
  const int64_t cols = column.size();
  if (channels_last) {
    // Columns (r, s, c): split each panel into runs of columns with the same tap,
    // which read contiguous channels of one input pixel.
    struct Run {
      int64_t at, len, hoff, woff, c;
    };
    std::vector<Run> runs;
    for (int64_t j = 0; j < ncols;) {
      const int64_t col = col0 + j;
      int64_t len = 1;
      if (col < cols) {
        while (j + len < ncols && (j + len) % NR != 0 && col + len < cols &&
               column[col + len].hoff == column[col].hoff && column[col + len].woff == column[col].woff &&
               column[col + len].c == column[col].c + len)
          ++len;
        runs.push_back({j, len, column[col].hoff, column[col].woff, column[col].c});
      } else {
        while (j + len < ncols && (j + len) % NR != 0) ++len;
        runs.push_back({j, len, 0, 0, -1});  // zero padding past the last column
      }
      j += len;
    }
    int64_t t = 0;
    for_each_row_run(kb0, kb0 + kc, p.P, p.Q, [&](int64_t n, int64_t pp, int64_t q0, int64_t len) {
      const T* image = x + n * xs[0] + c0 * xs[1];
      for (int64_t u = 0; u < len; ++u, ++t) {
        const int64_t hbase = pp * p.stride_h, wbase = (q0 + u) * p.stride_w;
        for (const Run& run : runs) {
          T* d = dst + run.at / NR * kc * NR + t * NR + run.at % NR;
          const int64_t h = hbase + run.hoff, w = wbase + run.woff;
          if (run.c >= 0 && h >= 0 && h < p.H && w >= 0 && w < p.W) {
            const T* src = image + h * xs[2] + w * xs[3] + run.c * xs[1];
            for (int64_t i = 0; i < run.len; ++i) d[i] = src[i * xs[1]];
          } else {
            for (int64_t i = 0; i < run.len; ++i) d[i] = T(0);
          }
        }
      }
    });
    return;
  }
  for (int64_t j = 0; j < ncols; ++j) {
    const int64_t col = col0 + j;
    T* d = dst + j / NR * kc * NR + j % NR;
    if (col >= cols) {
      for (int64_t t = 0; t < kc; ++t) d[t * NR] = T(0);
      continue;
    }
    const Column& cc = column[col];
    const T* plane = x + (c0 + cc.c) * xs[1];
    int64_t t = 0;
    for_each_row_run(kb0, kb0 + kc, p.P, p.Q, [&](int64_t n, int64_t pp, int64_t q0, int64_t len) {
      const int64_t h = pp * p.stride_h + cc.hoff;
      if (h >= 0 && h < p.H) {
        copy_row_segment(plane + n * xs[0] + h * xs[2], p.W, q0 * p.stride_w + cc.woff, p.stride_w, xs[3],
                         len, d + t * NR, NR);
      } else {
        for (int64_t u = 0; u < len; ++u) d[(t + u) * NR] = T(0);
      }
      t += len;
    });
  }
}

// Direct B rows (channels_last, channels per group a multiple of NR): a panel's
// NR columns are NR consecutive channels of one tap, i.e. NR contiguous values
// of one input pixel, which the micro-kernel reads in place through per-pixel
// offsets (fn_boff). The offsets are the tap's: pixel (n, h, w)'s channel 0 in
// x, or zero_off for a pixel in the padding; a panel reads from x + its first
// channel at them, so all panels of a tap share one set (3x3 layers of 64-256
// channels 1-3% faster than a set per panel), and a padding pixel reads from
// x + zero_off + that channel: a zero buffer C + NR long. boff gets
// kc + kFarSteps entries: past the block, those of the pixels that follow it
// up to pixel `end` (the chunk's end; the prefetches' lead), then the last.
template <typename T>
void tap_pixel_offsets(const Conv2dParams& p, int64_t hoff, int64_t woff, int64_t kb0, int64_t kc, int64_t end,
                       int64_t zero_off, int64_t* boff) {
  const int64_t* xs = p.x_strides;
  const int64_t filled = std::min(kc + kFarSteps, end - kb0);
  int64_t t = 0;
  for_each_row_run(kb0, kb0 + filled, p.P, p.Q, [&](int64_t n, int64_t pp, int64_t q0, int64_t len) {
    const int64_t h = pp * p.stride_h + hoff;
    const int64_t row = n * xs[0] + h * xs[2];
    const bool row_in = h >= 0 && h < p.H;
    for (int64_t u = 0; u < len; ++u, ++t) {
      const int64_t w = (q0 + u) * p.stride_w + woff;
      boff[t] = row_in && w >= 0 && w < p.W ? row + w * xs[3] : zero_off;
    }
  });
  for (int64_t k = filled; k < kc + kFarSteps; ++k) boff[k] = boff[filled - 1];
}

// NCHW 1x1 without padding or stride, large images: dw[k, c] = sum over images and pixels of
// dy[n, k, m] * x[n, c, m], where both operands run along contiguous pixel rows.
// That is a grid of dot products (the micro-kernel's dot tile), read in place:
// no transpose, no packing. Tasks are (group, block of k, block of c); each sums
// its block over every image and pixel chunk in order, so results do not depend
// on the thread count.
// Pixels per chunk: each dot call loads and stores its tile's lane sums once,
// so long chunks pay that less often (interleaved A/B on Zen 4 against chunks of
// 256, whose c rows stayed in L1: 256 -> 64 channels at 56x56, batch 8, 5.66 ->
// 4.91 ms; 128 -> 512 at 28x28, batch 16, 12.2 -> 10.4; 1.08-1.17x throughout).
constexpr int64_t kDotPixels = 4096;
constexpr int64_t kDotMinPixels = 512;  // smaller images: short rows, the packed path wins

template <typename T>
bool wgrad_nchw_1x1(const Conv2dParams& p) {
  const int64_t* xs = p.x_strides;
  const int64_t* ys = p.y_strides;
  if (!direct_paths_enabled() || p.R != 1 || p.S != 1 || p.stride_h != 1 || p.stride_w != 1 || p.pad_h != 0 ||
      p.pad_w != 0 || p.P != p.H || p.Q != p.W || xs[3] != 1 || xs[2] != p.W || ys[3] != 1 || ys[2] != p.Q ||
      p.P * p.Q < kDotMinPixels)
    return false;
  const MicroKernel<T>& uk = active_microkernel<T>();
  const int64_t DM = uk.dot_mr, DN = uk.dot_nr, DW = uk.dot_width, tile = DM * DN * DW;
  const int64_t G = p.groups, Kg = p.K / G, Cg = p.C / G, pixels = p.P * p.Q;
  const int64_t kblk = DM * 8, cblk = DN * 4;
  const int64_t kblocks = ceil_div(Kg, kblk), cblocks = ceil_div(Cg, cblk);
  const T* x = static_cast<const T*>(p.x);
  const T* dy = static_cast<const T*>(p.y);
  T* dw = static_cast<T*>(p.w);
  const int64_t* ws = p.w_strides;
  const int64_t tasks = G * kblocks * cblocks;
  balanced_for_ranges(tasks, task_grain(tasks, 2.0 * p.K * Cg * pixels * p.N),
                      [&](int64_t begin, int64_t end) {
    // Lane sums of every tile of the block, [k tile][c tile][DM*DN registers].
    AlignedBuffer<T> sums(8 * 8 * tile);
    // Edge tiles (fewer than DM rows or DN columns left) read zero-padded copies.
    AlignedBuffer<T> arows(DM * kDotPixels), brows(DN * kDotPixels);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t g = task / (kblocks * cblocks), kb = task / cblocks % kblocks, cb = task % cblocks;
      const int64_t k0 = kb * kblk, kn = std::min(kblk, Kg - k0);
      const int64_t c0 = cb * cblk, cn = std::min(cblk, Cg - c0);
      bool first = true;
      for (int64_t n = 0; n < p.N; ++n)
        for (int64_t m0 = 0; m0 < pixels; m0 += kDotPixels, first = false) {
          const int64_t len = std::min(kDotPixels, pixels - m0);
          const T* a = dy + n * ys[0] + (g * Kg + k0) * ys[1] + m0;
          const T* b = x + n * xs[0] + (g * Cg + c0) * xs[1] + m0;
          for (int64_t i = 0; i < kn; i += DM)
            for (int64_t j = 0; j < cn; j += DN) {
              const T* ap = a + i * ys[1];
              const T* bp = b + j * xs[1];
              int64_t lda = ys[1], ldb = xs[1];
              // Edge tiles: the rows that exist, copied, then zero rows up to the tile.
              auto pad_rows = [len](const T*& rows, int64_t& ld, int64_t have, int64_t want, T* buf) {
                std::fill(buf, buf + want * len, T(0));
                for (int64_t r = 0; r < have; ++r)
                  std::copy(rows + r * ld, rows + r * ld + len, buf + r * len);
                rows = buf;
                ld = len;
              };
              if (kn - i < DM) pad_rows(ap, lda, kn - i, DM, arows.get());
              if (cn - j < DN) pad_rows(bp, ldb, cn - j, DN, brows.get());
              uk.dot(len, ap, lda, bp, ldb, sums.get() + (i / DM * 8 + j / DN) * tile, !first);
            }
        }
      for (int64_t k = 0; k < kn; ++k)
        for (int64_t c = 0; c < cn; ++c) {
          const T* lanes = sums.get() + (k / DM * 8 + c / DN) * tile + (k % DM * DN + c % DN) * DW;
          T sum = T(0);
          for (int64_t l = 0; l < DW; ++l) sum += lanes[l];
          dw[(g * Kg + k0 + k) * ws[0] + (c0 + c) * ws[1]] = sum;
        }
    }
  });
  return true;
}

template <typename T>
void wgrad_impl(const Conv2dParams& p);

template <typename T>
void wgrad(const Conv2dParams& p) {
  if (wgrad_nchw_1x1<T>(p)) return;
  // channels_last x, or few pixels (the im2col of NCHW planes is then small, and
  // its columns (c, r, s) are dw's own order, so the tiles go straight into dw).
  if ((p.x_strides[1] == 1 && p.x_strides[3] != 1) || !transpose_nchw(p)) {
    wgrad_impl<T>(p);
    return;
  }
  Conv2dParams q = p;
  // A strided 1x1 without padding reads only the input pixels (p*stride_h,
  // q*stride_w): those alone are copied, as a stride-1 problem (ResNet's and
  // Xception's downsampling 1x1s copied 4x what they read).
  int64_t xs[4] = {p.x_strides[0], p.x_strides[1], p.x_strides[2], p.x_strides[3]};
  if (p.R == 1 && p.S == 1 && p.pad_h == 0 && p.pad_w == 0) {
    xs[2] *= p.stride_h;
    xs[3] *= p.stride_w;
    q.H = p.P;
    q.W = p.Q;
    q.stride_h = q.stride_w = 1;
  }
  AlignedBuffer<T> x(q.N * q.C * q.H * q.W), dy(p.N * p.K * p.P * p.Q);
  to_channels_last(static_cast<const T*>(p.x), xs, q.N, q.C, q.H, q.W, x.get(), q.x_strides);
  to_channels_last(static_cast<const T*>(p.y), p.y_strides, p.N, p.K, p.P, p.Q, dy.get(), q.y_strides);
  q.x = x.get();
  q.y = dy.get();
  wgrad_impl<T>(q);
}

template <typename T>
void wgrad_impl(const Conv2dParams& p) {
  if (conv2d_wgrad_winograd<T>(p)) return;
  const MicroKernel<T>& uk = active_microkernel<T>();
  const int64_t MR = uk.mr, NR = uk.nr;
  const int64_t G = p.groups, Kg = p.K / G, Cg = p.C / G;
  // x read in place: channels_last with channels per group a multiple of NR.
  const int64_t* xs = p.x_strides;
  const bool channels_last = xs[1] == 1 && xs[3] != 1;
  const bool direct_b = channels_last && Cg % NR == 0;
  // Otherwise, with fewer than 8 input channels (the first layer), dy is read in
  // place instead (conv2d_wgrad_few_columns.cpp).
  if (!direct_b && conv2d_wgrad_few_columns(p)) return;
  const int64_t cols = Cg * p.R * p.S;
  const int64_t kpad = round_up(Kg, MR), npad = round_up(cols, NR);
  const int64_t pixels = p.N * p.P * p.Q;
  const T* x = static_cast<const T*>(p.x);
  const T* dy = static_cast<const T*>(p.y);
  T* dw = static_cast<T*>(p.w);
  const int64_t* ws = p.w_strides;

  std::vector<Column> column(cols);
  for (int64_t col = 0; col < cols; ++col) {
    int64_t c, r, s;
    if (channels_last) {
      c = col % Cg;
      s = col / Cg % p.S;
      r = col / Cg / p.S;
    } else {
      s = col % p.S;
      r = col / p.S % p.R;
      c = col / p.S / p.R;
    }
    column[col] = {c, r * p.dil_h - p.pad_h, s * p.dil_w - p.pad_w, c * ws[1] + r * ws[2] + s * ws[3]};
  }

  // Chunks depend on the problem size only, so results do not depend on threads.
  // Column blocks of (nearly) equal size: 18 panels are 9 + 9, not 16 + 2. One
  // block when x is read in place (no B panels to pack per block) and a task's
  // tiles (all of dw, summed in L2) fit kOneBlockBytes: each column block packs
  // its chunk's dy again, and two blocks repacked it for 6-11% of the time (3x3
  // 64 -> 64 at 56x56, batch 8: 1.11-1.15x faster in one block; 128 -> 128 at
  // 28x28, batch 16: 1.08x). Tiles a little past a 1 MiB L2 still gain (Zen 4:
  // 1x1 1024 -> 256 at 14x14, 1.09 MiB, 1.12-1.19x; the 3x3 stride-2 128 -> 256
  // at 50x50 of conv_transpose2d's backward, 1.23 MiB, 1.10-1.13x).
  const bool one_block = direct_b && kpad * npad * int64_t(sizeof(T)) <= kOneBlockBytes;
  const int64_t col_blocks = one_block ? 1 : ceil_div(npad / NR, kPanelsPerBlock);
  const int64_t block_panels = ceil_div(npad / NR, col_blocks);
  const int64_t wanted = std::max(pixels / kPixelsPerChunk, ceil_div(kMinTasks, G * col_blocks));
  const int64_t chunks = std::max<int64_t>(1, std::min({kMaxChunks, wanted, ceil_div(pixels, kKc)}));
  const int64_t chunk_len = ceil_div(pixels, chunks);
  std::vector<int64_t> offset(cols);
  bool in_order = true;
  for (int64_t col = 0; col < cols; ++col) {
    offset[col] = column[col].dw_offset;
    in_order = in_order && offset[col] == col;
  }
  // One chunk and dw's rows in column order: the tiles go straight into dw.
  const bool direct_dw = chunks == 1 && in_order;
  AlignedBuffer<T> partial(direct_dw ? 0 : chunks * G * kpad * npad);

  // Few pixels give few chunks (a 1x1 of 512 -> 2048 channels at 4x4, batch 16: one
  // task): the rows of dw (output channels) are then split too.
  const int64_t row_panels = kpad / MR;
  const int64_t wanted_rows = std::min(row_panels, std::max<int64_t>(1, ceil_div(kMinTasks, G * col_blocks * chunks)));
  const int64_t block_rows = ceil_div(row_panels, wanted_rows), row_blocks = ceil_div(row_panels, block_rows);
  const int64_t tasks = G * col_blocks * chunks * row_blocks;

  balanced_for_ranges(tasks, task_grain(tasks, 2.0 * p.K * cols * pixels), [&](int64_t begin, int64_t end) {
    AlignedBuffer<T> a_panels(kpad * kKc);
    AlignedBuffer<T> b_panels(direct_b ? 0 : kKc * block_panels * NR);
    AlignedBuffer<T> zeros(direct_b ? p.C + NR : 0);
    std::vector<int64_t> slot(block_panels);  // each panel's set of offsets in boff
    // The x offsets of the block's taps for the chunk's pixels, kKc + kFarSteps apiece.
    const int64_t boff_step = kKc + kFarSteps;
    std::vector<int64_t> boff(direct_b ? block_panels * boff_step : 0);
    if (direct_b) std::fill(zeros.get(), zeros.get() + p.C + NR, T(0));
    // The zero row as an offset from x (both in this process's flat address space).
    const int64_t zero_off = direct_b ? zeros.get() - x : 0;
    T tile[32 * 64];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t rb = task % row_blocks, t = task / row_blocks;
      const int64_t g = t / (col_blocks * chunks);
      const int64_t cb = t / chunks % col_blocks, chunk = t % chunks;
      const int64_t mp0 = rb * block_rows, mp1 = std::min(row_panels, mp0 + block_rows);
      const int64_t panel0 = cb * block_panels;
      const int64_t panels = std::min(block_panels, npad / NR - panel0);
      const int64_t m_begin = chunk * chunk_len, m_end = std::min(pixels, m_begin + chunk_len);
      const int64_t ldc = direct_dw ? ws[0] : npad;
      T* c_block = direct_dw ? dw + g * Kg * ws[0] + panel0 * NR
                             : partial.get() + (chunk * G + g) * kpad * npad + panel0 * NR;
      // Runs one tile (row panel mp's kernels: a short tile for a last panel of
      // few rows): in place, or (dw's edge: rows past Kg, columns past cols)
      // through `tile`, of which only the valid part is kept.
      auto run = [&](int64_t mp, int64_t np, AccInit init, const auto& kernel) {
        const RowPanelKernels<T> k = row_panel_kernels(uk, Kg - mp * MR);
        T* c = c_block + mp * MR * ldc + np * NR;
        const int64_t rows = direct_dw ? std::min(k.mr, Kg - mp * MR) : k.mr;
        const int64_t n = direct_dw ? std::min(NR, cols - (panel0 + np) * NR) : NR;
        if (rows == k.mr && n == NR) {
          kernel(k, c, ldc, init);
          return;
        }
        kernel(k, tile, NR, AccInit::Zero);
        for (int64_t i = 0; i < rows; ++i)
          for (int64_t j = 0; j < n; ++j)
            c[i * ldc + j] = init == AccInit::Load ? c[i * ldc + j] + tile[i * NR + j] : tile[i * NR + j];
      };
      if (m_begin >= m_end) {
        for (int64_t k = mp0 * MR; k < mp1 * MR; ++k)
          for (int64_t j = 0; j < panels * NR; ++j) c_block[k * npad + j] = T(0);
        continue;
      }
      for (int64_t kb0 = m_begin; kb0 < m_end; kb0 += kKc) {
        const int64_t kc = std::min(kKc, m_end - kb0);
        pack_dy_panels(p, dy, g * Kg + mp0 * MR, Kg - mp0 * MR, (mp1 - mp0) * MR, MR, kb0, kc, a_panels.get());
        const AccInit init = kb0 == m_begin ? AccInit::Zero : AccInit::Load;
        if (direct_b) {
          // One set of x offsets per tap (slot[np]: panel np's set).
          int64_t slots = 0;
          for (int64_t np = 0; np < panels; ++np) {
            const Column& cc = column[(panel0 + np) * NR];
            if (np > 0 && column[(panel0 + np - 1) * NR].hoff == cc.hoff &&
                column[(panel0 + np - 1) * NR].woff == cc.woff) {
              slot[np] = slot[np - 1];
              continue;
            }
            slot[np] = slots++;
            tap_pixel_offsets<T>(p, cc.hoff, cc.woff, kb0, kc, m_end, zero_off, boff.data() + slot[np] * boff_step);
          }
          // Row panels outer: a task's A panel (14 KB) stays in L1 while the x rows
          // of its column panels stream past (the other order kept the x rows and
          // re-read the A panels: 3x3 layers of 128-256 channels 5-6% slower).
          // The first row panel brings the block's x rows from memory, with the
          // far prefetch (fn_boff_far); the others find them in L2.
          for (int64_t mp = mp0; mp < mp1; ++mp)
            for (int64_t np = 0; np < panels; ++np)
              run(mp, np, init, [&](const RowPanelKernels<T>& k, T* c, int64_t ld, AccInit in) {
                const T* b = x + g * Cg + column[(panel0 + np) * NR].c;  // x's channel stride is 1
                const bool far = mp == mp0 && k.mr == MR;
                (far ? uk.fn_boff_far : k.fn_boff)(kc, a_panels.get() + (mp - mp0) * kc * MR, b,
                                                   boff.data() + slot[np] * boff_step, c, ld, in, nullptr);
              });
          continue;
        }
        pack_x_panels(p, x, g * Cg, column, panel0 * NR, panels * NR, NR, kb0, kc, channels_last,
                      b_panels.get());
        for (int64_t np = 0; np < panels; ++np)
          for (int64_t mp = mp0; mp < mp1; ++mp)
            run(mp, np, init, [&](const RowPanelKernels<T>& k, T* c, int64_t ld, AccInit in) {
              k.fn(kc, a_panels.get() + (mp - mp0) * kc * MR, b_panels.get() + np * kc * NR, c, ld, in, nullptr);
            });
      }
    }
  });

  // Sum the partials in chunk order into dw (any strides): whole rows at a time,
  // then placed by each column's offset, in dw's address order.
  if (direct_dw) return;
  std::vector<int64_t> order(cols);
  for (int64_t col = 0; col < cols; ++col) order[col] = col;
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return offset[a] < offset[b]; });
  const int64_t chunk_stride = G * kpad * npad;
  at::parallel_for(0, G * Kg, task_grain(G * Kg, 2.0 * p.K * cols * pixels), [&](int64_t begin, int64_t end) {
    std::vector<T> row(in_order ? 0 : cols);
    for (int64_t gk = begin; gk < end; ++gk) {
      const int64_t g = gk / Kg, k = gk % Kg;
      T* dst = in_order ? dw + gk * ws[0] : row.data();
      const T* src = partial.get() + (g * kpad + k) * npad;
      std::copy(src, src + cols, dst);
      for (int64_t chunk = 1; chunk < chunks; ++chunk) {
        const T* part = src + chunk * chunk_stride;
        for (int64_t col = 0; col < cols; ++col) dst[col] += part[col];
      }
      if (!in_order) {
        T* dw_k = dw + gk * ws[0];
        for (int64_t col : order) dw_k[offset[col]] = row[col];
      }
    }
  });
}

}  // namespace

void conv2d_wgrad(const Conv2dParams& p) {
  if (p.dtype == DType::Float64) wgrad<double>(p);
  else wgrad<float>(p);
}

}  // namespace cpu
}  // namespace cnnops
