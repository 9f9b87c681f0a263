// Implicit-GEMM grouped correlation (see conv_correlation.h) for float and double.
//
// Two GEMM orientations, chosen by the output layout so the micro-kernel's vector
// dimension is the contiguous one in memory:
//  - pixels-on-vector (NCHW-like outputs): per (image, group, block of pixels),
//    C[Ko x pixels] = Wpacked[Ko x red] * im2col[red x pixels], red = (ci, tr, ts);
//  - channels-on-vector (channels_last outputs, or few pixels per image): per
//    (group, block of pixels over all images), C[pixels x Ko] = im2col * Wpacked,
//    red = (tr, ts, ci), so each tap reads a contiguous run of input channels.
// The filter is packed once into micro-panels for all reduction blocks (and kept
// across calls when the glue passes a filter cache); each task packs its own
// slice of the input (zero-filling padding) per reduction block of kKc and runs
// the micro-kernel over it, except that a 1x1 convolution without padding reads
// its input in place (in one reduction block of up to 2048).
// Tasks run on at::parallel_for. Full tiles of a flat output
// are written in place; edge tiles and strided outputs go through a tile buffer.
// run_correlation picks the path; the packing-free ones (direct, few pixels)
// are in correlation_direct.cpp, what the paths share in correlation_pack.h.
#include <atomic>

#include "correlation_pack.h"

namespace cnnops {
namespace cpu {
namespace corr {
namespace {

constexpr int64_t kGroupPanels = 8;  // pixel panels each filter panel runs over in turn
// Output channels per group from which grouped NCHW-like problems take the
// channels-on-vector direct path (4 per group ran at 0.66x the pixels path).
constexpr int64_t kMinGroupLanes = 16;
// Longest reduction block of a 1x1 convolution read in place (a channels-last
// tile's 14 rows of A, or an NCHW tile's filter panel, are then at most 112 KiB,
// in L2).
constexpr int64_t kInPlaceKc = 2048;
// NCHW correlations with fewer output pixels per image than this (and rows of
// them that fill no whole number of vectors, or a batch of at most this many
// pixels), and at least kChannelsLastWidth output channels and reduction steps,
// run through channels-last copies (see through_channels_last).
constexpr int64_t kChannelsLastPixels = 128;
constexpr int64_t kChannelsLastWidth = 256;

// The reduction block of a GEMM path: a 1x1 read in place sums its whole
// reduction (up to kInPlaceKc; longer ones in equal blocks) in one block and so
// stores each output tile once (blocks of kKc loaded and stored every tile once
// per block, with cold lines: a 1x1 layer's output is rarely in cache).
inline int64_t reduction_block(int64_t red, bool in_place) {
  return in_place ? ceil_div(red, ceil_div(red, kInPlaceKc)) : kKc;
}

template <typename T>
void run_pixels_on_vector(const Correlation<T>& c, const MicroKernel<T>& uk) {
  const int64_t MR = uk.mr, NR = uk.nr;
  const int64_t red = reduction_size(c);
  const int64_t kpad = round_up(c.Ko, MR);
  // Flat NCHW planes of a 1x1 convolution: each B row (one channel's NR pixels)
  // is read in place; only a plane's last, partial panel is packed.
  const int64_t* is = c.in_strides;
  const bool in_place = single_tap_in_place(c) && is[3] == 1 && is[2] == c.W;
  const int64_t kc_block = reduction_block(red, in_place);
  const std::shared_ptr<const T> filter = packed_filter(c, ReduceOrder::ChannelsOuter, MR, kc_block);
  const std::vector<T> bias = padded_bias(c, MR);
  const int64_t* os = c.out_strides;
  const bool flat = os[3] == 1 && os[2] == c.Q;
  const int64_t pixels = c.P * c.Q, block = balanced_block(pixels, NR, c.N * c.G);
  const int64_t blocks = ceil_div(pixels, block);
  const AccInit first = c.bias != nullptr ? AccInit::RowBias : AccInit::Zero;
  std::vector<int64_t> boff(kc_block + kPrefetchSteps, 0);
  if (in_place)
    for (int64_t k = 0; k < kc_block; ++k) boff[k] = k * is[1];

  for_tasks(c, c.N * c.G * blocks, [&](int64_t begin, int64_t end) {
    AlignedBuffer<T> panels(kc_block * block);
    T tile[32 * 64];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / (c.G * blocks), g = task / blocks % c.G;
      const int64_t j0 = task % blocks * block, jn = std::min(block, pixels - j0);
      T* out_ng = c.out + n * os[0] + g * c.Ko * os[1];
      const int64_t full = in_place ? jn / NR : 0;  // panels read in place
      for (int64_t kb0 = 0; kb0 < red; kb0 += kc_block) {
        const int64_t kc = std::min(kc_block, red - kb0);
        if (full * NR < jn)
          pack_input_pixel_panels(c, n, g, kb0, kc, j0 + full * NR, jn - full * NR, NR, panels.get());
        const T* in_place_b = c.in + n * is[0] + (g * c.Ci + kb0) * is[1];
        // One tile: filter panel mp over pixel panel np.
        auto run_tile = [&](int64_t mp, int64_t np) {
          const T* b = panels.get() + (np - full) * kc * NR;
          const int64_t cols = std::min(NR, jn - np * NR), j = j0 + np * NR;
          const T* a = filter.get() + g * kpad * red + kb0 * kpad + mp * kc * MR;
          const T* brow = bias.data() + g * kpad + mp * MR;
          const int64_t rows = std::min(MR, c.Ko - mp * MR);
          const RowPanelKernels<T> k = row_panel_kernels(uk, rows);  // a short tile for a last panel of few rows
          const AccInit init = kb0 == 0 ? first : AccInit::Load;
          if (np < full) {
            T* o = flat && rows == k.mr ? out_ng + mp * MR * os[1] + j : tile;
            k.fn_boff(kc, a, in_place_b + j, boff.data(), o, o == tile ? NR : os[1],
                      o == tile && kb0 > 0 ? AccInit::Zero : init, brow);
            if (o != tile) return;
          } else if (flat && rows == k.mr && cols == NR) {
            k.fn(kc, a, b, out_ng + mp * MR * os[1] + j, os[1], init, brow);
            return;
          } else {
            k.fn(kc, a, b, tile, NR, kb0 == 0 ? first : AccInit::Zero, brow);
          }
          int64_t row_off[64], col_src[64], col_off[64];
          for (int64_t i = 0; i < rows; ++i) row_off[i] = i * os[1];
          for (int64_t jj = 0; jj < cols; ++jj) {
            col_src[jj] = jj;
            col_off[jj] = (j + jj) / c.Q * os[2] + (j + jj) % c.Q * os[3];
          }
          store_tile(tile, NR, rows, row_off, cols, col_src, col_off, out_ng + mp * MR * os[1], kb0 > 0,
                     os[3] < os[1]);
        };
        // Groups of kGroupPanels B panels (kc x NR pixels each) stay in cache while
        // each filter panel runs over them: an NCHW output is then written as runs
        // of the group's pixels in each of MR planes, rather than NR pixels in each
        // of Ko planes (as many write streams, each line a miss).
        const int64_t npanels = ceil_div(jn, NR);
        for (int64_t g0 = 0; g0 < npanels; g0 += kGroupPanels) {
          const int64_t g1 = std::min(npanels, g0 + kGroupPanels);
          for (int64_t mp = 0; mp < kpad / MR; ++mp)
            for (int64_t np = g0; np < g1; ++np) run_tile(mp, np);
          if (kb0 + kc == red)
            finish_pixels(c, n * pixels + j0 + g0 * NR, std::min(jn, g1 * NR) - g0 * NR, g * c.Ko, c.Ko);
        }
      }
    }
  });
}

template <typename T>
void run_channels_on_vector(const Correlation<T>& c, const MicroKernel<T>& uk) {
  // Flat channels-last pixels of a 1x1 convolution: each A row (one pixel's
  // channels) is read in place; only the last, partial tile is packed. A strided
  // 1x1 of a channels-last input (ResNet's downsampling) reads its rows the same
  // way, a tile's rows copied first (see copy_rows).
  const int64_t* is = c.in_strides;
  const bool in_place =
      single_tap_in_place(c) && is[1] == 1 && is[2] == c.W * is[3] && (c.N == 1 || is[0] == c.H * is[2]);
  const bool strided_rows = !in_place && strided_single_tap(c) && is[1] == 1;
  const bool rows_read = in_place || strided_rows;  // A rows from the input, not packed panels
  // Input row of output pixel m at reduction offset kb0 of group g.
  auto pixel_row = [&](int64_t m, int64_t g, int64_t kb0) {
    const int64_t offset = in_place ? m * is[3]
                                    : m / (c.P * c.Q) * is[0] + m / c.Q % c.P * c.step_h * is[2] +
                                          m % c.Q * c.step_w * is[3];
    return c.in + offset + (g * c.Ci + kb0) * is[1];
  };
  // Few output channels (MobileNet's 1x1 layers of 16 or 24): the narrow tile
  // when it wastes fewer columns (reads A rows as they lie, so only with rows_read).
  const bool narrow = rows_read && round_up(c.Ko, uk.narrow_nr) < round_up(c.Ko, uk.nr);
  const int64_t MR = narrow ? uk.narrow_mr : uk.mr, NR = narrow ? uk.narrow_nr : uk.nr;
  const MicroKernelArowsFn<T> arows = narrow ? uk.narrow_arows : uk.fn_arows;
  const int64_t red = reduction_size(c);
  const int64_t kc_block = reduction_block(red, rows_read);
  const int64_t kpad = round_up(c.Ko, NR);
  const std::shared_ptr<const T> filter = packed_filter(c, ReduceOrder::TapsOuter, NR, kc_block);
  const std::vector<T> bias = padded_bias(c, NR);
  const int64_t* os = c.out_strides;
  const bool flat = os[1] == 1 && os[2] == c.Q * os[3] && os[0] == c.P * c.Q * os[3];
  const int64_t pixels = c.N * c.P * c.Q, block = balanced_block(pixels, MR, c.G);
  const int64_t blocks = ceil_div(pixels, block);
  const AccInit first = c.bias != nullptr ? AccInit::ColBias : AccInit::Zero;
  // Few pixels (deep layers at small batch) give few pixel blocks: split the
  // output-channel panels too, so every thread has work (each output element is
  // still summed by one task in one order).
  const int64_t npanels = kpad / NR;
  const int64_t splits = std::min(npanels, ceil_div(kMinTasks, c.G * blocks));
  const int64_t split_panels = ceil_div(npanels, splits);
  const int64_t zero_offset = 0;
  // The fused stage in registers where it can be (tiles stored in place on the
  // last reduction block; a large output also streams there); the other tiles
  // get it right after their store.
  const TileStores<T> stores = tile_stores(c, true);
  // Panels per chunk: a chunk's packed filter for one reduction block stays
  // within kChunkBytes (of L2).
  constexpr int64_t kChunkBytes = int64_t(512) << 10;
  const int64_t chunk =
      std::max<int64_t>(1, kChunkBytes / (std::min(kc_block, red) * NR * int64_t(sizeof(T))));
  // A tile's rows read in place whose lines would crowd one L1 set (rows of 1024
  // or 2048 floats) are copied first into rows a line longer than the reduction
  // block; the copy serves the chunk's panels (1024 -> 256 channels at 14x14,
  // batch 16: 170 -> 201 GFLOP/s on Zen 4; copied a 16 KiB piece at a time, each
  // piece run against all the chunk's panels, 191). A strided 1x1's rows are
  // always copied: read in place, 14 rows 2 pixels apart of 512 channels crowd
  // one set too, and their stride varies from row to row of the output (512 ->
  // 1024 channels from 28x28 at stride 2, batch 16: 19.4 -> 15.3 ms; the
  // channels-last direct path read them in place).
  const bool copy_rows = strided_rows || (in_place && rows_crowd_l1_set(is[3] * int64_t(sizeof(T)), MR));
  const int64_t copy_ld = round_up(kc_block, int64_t(64 / sizeof(T))) + 64 / int64_t(sizeof(T));

  for_tasks(c, c.G * blocks * splits, [&](int64_t begin, int64_t end) {
    AlignedBuffer<T> panels(kc_block * block), rows_copy(copy_rows ? MR * copy_ld : 0);
    T tile[32 * 64];
    for (int64_t task = begin; task < end; ++task) {
      // Panel groups outermost: consecutive tasks (one thread's share) use the
      // same filter panels, which then stay in that thread's L2.
      const int64_t g = task / (blocks * splits), blk = task % blocks;
      const int64_t np0 = task / blocks % splits * split_panels;
      const int64_t np1 = std::min(npanels, np0 + split_panels);
      const int64_t m0 = blk * block, mn = std::min(block, pixels - m0);
      T* out_g = c.out + g * c.Ko * os[1];
      if (np0 >= np1) continue;
      const int64_t full = rows_read ? mn / MR : 0;  // tiles whose rows are read (not packed)
      const int64_t kn = std::min(c.Ko, np1 * NR) - np0 * NR;
      ResidualPrefetch<T> prefetch(stores.staged ? nullptr : c.epilogue, c.P, c.Q, m0, mn, g * c.Ko + np0 * NR, kn,
                                   ceil_div(red, kc_block) * (np1 - np0) * ceil_div(mn, MR));
      for (int64_t kb0 = 0; kb0 < red; kb0 += kc_block) {
        const int64_t kc = std::min(kc_block, red - kb0);
        const bool last = kb0 + kc == red;
        if (narrow && full * MR < mn) {  // the partial tile's rows, row-major, zero-filled
          const int64_t rows = mn - full * MR;
          std::fill(panels.get(), panels.get() + MR * kc, T(0));
          for (int64_t i = 0; i < rows; ++i) {
            const T* src = pixel_row(m0 + full * MR + i, g, kb0);
            std::copy(src, src + kc, panels.get() + i * kc);
          }
        } else if (full * MR < mn) {
          pack_input_channel_panels(c, g, kb0, kc, m0 + full * MR, mn - full * MR, MR, panels.get());
        }
        // Tiles in pixel order, each across a chunk of panels: the output is
        // written as consecutive runs (the hardware prefetchers follow them; a
        // panel at a time wrote 32-channel pieces at the pixel stride), while
        // the chunk's packed filter stays in L2 and the tile's A rows in L1.
        for (int64_t pc = np0; pc < np1; pc += chunk) {
          const int64_t pc1 = std::min(np1, pc + chunk);
          for (int64_t mp = 0; mp < ceil_div(mn, MR); ++mp) {
            const T* a = panels.get() + (mp - full) * kc * MR;
            const int64_t rows = std::min(MR, mn - mp * MR), m = m0 + mp * MR;
            const T* arow = rows_read ? pixel_row(m, g, kb0) : nullptr;  // when read, not packed
            int64_t lda = is[3];
            if (copy_rows && mp < full) {
              for (int64_t i = 0; i < MR; ++i) {
                const T* src = in_place ? arow + i * is[3] : pixel_row(m + i, g, kb0);
                std::copy(src, src + kc, rows_copy.get() + i * copy_ld);
              }
              arow = rows_copy.get();
              lda = copy_ld;
            }
            // The chunk's first panel also fetches the next tile's rows (in place).
            const T* next = in_place && mp + 1 < full ? pixel_row(m + MR, g, kb0) : nullptr;
            for (int64_t np = pc; np < pc1; ++np) {
              prefetch.step();
              const T* b = filter.get() + g * kpad * red + kb0 * kpad + np * kc * NR;
              const T* bcol = bias.data() + g * kpad + np * NR;
              const int64_t cols = std::min(NR, c.Ko - np * NR);
              if (mp < full) {
                const AccInit init = kb0 == 0 ? first : AccInit::Load;
                if (flat && cols == NR) {
                  TileStage<T> at;
                  const TileStage<T>* stage = last ? stores.at(c, m, g * c.Ko + np * NR, &at) : nullptr;
                  if (!narrow && np == pc && uk.fn_arows_next != nullptr)
                    uk.fn_arows_next(kc, arow, lda, b, out_g + m * os[3] + np * NR, os[3], init, bcol, stage, next);
                  else
                    arows(1, kc, &zero_offset, arow, lda, b, out_g + m * os[3] + np * NR, os[3], init, bcol, stage);
                  continue;
                }
                arows(1, kc, &zero_offset, arow, lda, b, tile, NR, kb0 == 0 ? first : AccInit::Zero, bcol,
                      nullptr);
              } else if (narrow) {
                arows(1, kc, &zero_offset, panels.get(), kc, b, tile, NR, kb0 == 0 ? first : AccInit::Zero,
                      bcol, nullptr);
              } else if (flat && rows == MR && cols == NR) {
                uk.fn(kc, a, b, out_g + m * os[3] + np * NR, os[3], kb0 == 0 ? first : AccInit::Load, bcol);
                if (stores.staged && last) finish_pixels(c, m, rows, g * c.Ko + np * NR, cols);
                continue;
              } else {
                row_panel_kernels(uk, rows).fn(kc, a, b, tile, NR, kb0 == 0 ? first : AccInit::Zero, bcol);
              }
              store_pixel_rows_tile(c, tile, NR, m, rows, cols, out_g + np * NR * os[1], kb0 > 0);
              if (stores.staged && last) finish_pixels(c, m, rows, g * c.Ko + np * NR, cols);
            }
          }
        }
      }
      // Otherwise the task's whole block at once: with all channels of a dense
      // channels_last output, each output row's part is one long run.
      if (!stores.staged) finish_pixels(c, m0, mn, g * c.Ko + np0 * NR, kn);
    }
    if (stores.stage.stream) stream_fence();
  });
}

std::atomic<bool> g_direct_paths{true};
std::atomic<bool> g_winograd{true};

}  // namespace
}  // namespace corr

void set_direct_paths(bool enabled) { corr::g_direct_paths.store(enabled); }
void set_winograd(bool enabled) { corr::g_winograd.store(enabled); }
bool winograd_enabled() { return corr::g_winograd.load(); }
int64_t conv_balanced_block(int64_t items, int64_t width, int64_t outer) {
  return corr::balanced_block(items, width, outer);
}
int64_t conv_panel_splits(int64_t blocks, int64_t panels, int64_t threads) {
  return corr::panel_splits(blocks, panels, threads);
}
int64_t conv_direct_row_blocks(int64_t P, int64_t qtiles, int64_t outer, int64_t threads) {
  return corr::direct_row_blocks(P, qtiles, outer, threads);
}
bool direct_paths_enabled() { return corr::g_direct_paths.load(); }

// NCHW input and output with few pixels per image (deep layers): the paths
// they take would gather each pixel's channels across the input's planes into
// their panels (the channels-on-vector paths, below a vector's lanes of pixels)
// or run vectors along rows of 7 to 10 pixels; instead the input is copied into
// a channels-last buffer, the correlation runs into a channels-last buffer,
// and that is copied into the output. The copies are small next to the work
// of these layers, whose channels are many (a 1x1 from 128 channels at 12x12
// ran 1.5x slower so). Measured on Zen 4 (2 threads, cached filters), ms:
// 512 -> 512 3x3 stride 2 to 4x4, batch 16, 7.93 -> 7.22; 1x1 2048 -> 512 at
// 4x4, batch 16, 3.43 -> 2.98; 1536 -> 2048 at 5x5, batch 16, 16.1 -> 14.0;
// 1024 -> 512 at 8x8, batch 1, 0.56 -> 0.49; 728 -> 1024 at 10x10, batch 16,
// 14.5 -> 12.6. (At 14x14 it was mixed: 1024 -> 256 1.07x faster, a stride-2
// 1x1 to 14x14 1.07x slower.)
template <typename T>
bool through_channels_last(const Correlation<T>& c, const MicroKernel<T>& uk) {
  using namespace corr;
  const int64_t* is = c.in_strides;
  const int64_t* os = c.out_strides;
  if (is[3] != 1 || is[1] == 1 || os[3] != 1 || os[1] == 1 || os[1] > kMaxGatherStride) return false;
  const int64_t pixels = c.P * c.Q;
  if (pixels < uk.nr) return true;
  // Rows of pixels that fill whole vectors are the NCHW path's own best case,
  // unless the batch is so small that the few-pixel paths take them (1x1s of
  // 256 -> 1024 and 1024 -> 512 at 8x8, batch 16: 1.2x slower through copies).
  const bool wide = c.G * c.Ko >= kChannelsLastWidth && reduction_size(c) >= kChannelsLastWidth;
  return wide && pixels < kChannelsLastPixels && (pixels % uk.nr != 0 || c.N * pixels <= kChannelsLastPixels);
}

template <typename T>
void run_correlation(const Correlation<T>& c) {
  using namespace corr;
  if (c.N == 0 || c.P == 0 || c.Q == 0 || c.G * c.Ko == 0) return;
  if (reduction_size(c) == 0) {
    fill_bias_or_zero(c);
    return;
  }
  const MicroKernel<T>& uk = active_microkernel<T>();
  // Winograd first: with its transformed filter cached it beat the few-pixel paths
  // too (3x3 512 -> 512 at 7x7, batch 1: 1.17x; 256 channels at 10x10 2.9x).
  if (run_winograd(c, uk)) return;
  if (through_channels_last(c, uk)) {
    through_channels_last_copies(c, [](const Correlation<T>& d) { run_correlation(d); });
    return;
  }
  if (direct_paths_enabled() && (run_filter_in_place(c, uk) || run_packed_few_pixels(c, uk))) return;
  // One output channel is both layouts: with a channels-last input it goes the
  // channels-last way (a 1x1 to 1 channel from 32: 0.76 -> 0.2 ms at 96x96, batch 2).
  const bool channels_contiguous = (c.out_strides[1] == 1 && c.out_strides[3] != 1) ||
                                   (c.G * c.Ko == 1 && c.in_strides[1] == 1 && c.in_strides[3] != 1);
  // A single tap at unit steps is a plain GEMM whose packing is a memcpy: the
  // direct paths' padded copy would only add a pass over the input.
  const bool plain_gemm = c.hoff.size() * c.woff.size() == 1 && c.step_h == 1 && c.step_w == 1;
  const bool direct = direct_paths_enabled() && !plain_gemm;
  if (channels_contiguous || c.P * c.Q < uk.nr) {
    // A strided 1x1 of a channels-last input whose tile rows would crowd one L1
    // set, or whose output rows the tiles do not divide (the direct path would
    // then copy whole padded input rows, twice the pixels it reads): its rows
    // copied tile by tile (see run_channels_on_vector). Rows 2 KiB apart in full
    // tiles (256 channels at stride 2 to 28x28) stay read in place by the direct
    // path: ResNet-50's at batch 16 ran 1.13x faster so than copied.
    const bool strided_rows = strided_single_tap(c) && c.in_strides[1] == 1 &&
                              (c.Q % uk.mr != 0 ||
                               rows_crowd_l1_set(c.step_w * c.in_strides[3] * int64_t(sizeof(T)), uk.mr));
    if (!direct || strided_rows || !run_channels_direct(c, uk)) run_channels_on_vector(c, uk);
  } else if (c.step_h == 1 && c.step_w == 1) {
    // NCHW-like at unit steps: the channels-last direct path, fed by a transposing
    // copy of its padded rows, beats the pixels-on-vector one wherever its rows fill
    // tiles, except with few output channels per group (their lanes mostly empty).
    const bool channel_lanes = c.G == 1 || c.Ko >= kMinGroupLanes;
    if (direct && channel_lanes && run_channels_direct(c, uk)) return;
    if (!direct || !run_pixels_direct(c, uk)) run_pixels_on_vector(c, uk);
  } else {  // strided NCHW (the stem): the channels-last copy serves any layout,
    // except for a single tap (a strided 1x1), whose im2col is a plain gather
    const bool one_tap = c.hoff.size() * c.woff.size() == 1;
    if (!direct || one_tap || !run_channels_direct(c, uk)) run_pixels_on_vector(c, uk);
  }
}

template void run_correlation<float>(const Correlation<float>&);
template void run_correlation<double>(const Correlation<double>&);

}  // namespace cpu
}  // namespace cnnops
