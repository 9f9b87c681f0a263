// The correlation's paths that pack no input (see conv_correlation.h): the direct
// paths read a zero-padded copy of the input in place (NCHW planes at unit steps
// through per-step offsets; channels-last rows at any steps through the strided-A
// micro-kernel, copied from any input layout: NCHW channel rows are transposed
// into them with vector gathers), and the few-pixel path reads the filter in place. Each is a
// parallel loop over its own tasks on at::parallel_for; float and double.
#include <algorithm>
#include <vector>

#include "correlation_pack.h"

namespace cnnops {
namespace cpu {
namespace corr {
// ----------------------------------------------------------------------------
// Direct paths: the input is copied once into a zero-padded buffer that covers
// every tap of every output pixel, and the micro-kernel reads it in place, so
// there is no im2col packing at all.

constexpr double kMinTileUse = 0.75;  // below this fraction of useful lanes: im2col path
constexpr double kTinyFlops = 5e5;    // ...unless the whole problem is smaller than this
constexpr int64_t kMaxPadBytes = int64_t(1) << 30;

// The padded extent along one axis: padded index i' holds input index i' + lo.
struct PadAxis {
  int64_t lo = 0, size = 0;
};

PadAxis pad_axis(const std::vector<int64_t>& off, int64_t out, int64_t step) {
  const int64_t lo = *std::min_element(off.begin(), off.end());
  const int64_t hi = *std::max_element(off.begin(), off.end());
  return {lo, (out - 1) * step + hi - lo + 1};
}

// NCHW, unit steps: planes of Hp x Wp per (image, channel), flat. Output pixel
// (p, q) is computed at flat index j' = p*Wp + q; columns q >= Q are computed
// and thrown away, so every tap is a constant offset from j'.
template <typename T>
bool run_pixels_direct(const Correlation<T>& c, const MicroKernel<T>& uk) {
  if (c.step_h != 1 || c.step_w != 1) return false;
  const PadAxis ph = pad_axis(c.hoff, c.P, 1), pw = pad_axis(c.woff, c.Q, 1);
  if (double(c.Q) / pw.size < kMinTileUse) return false;
  const int64_t MR = uk.mr, NR = uk.nr, C = c.G * c.Ci, TR = c.hoff.size(), TS = c.woff.size();
  const int64_t plane = ph.size * pw.size, slack = pw.size + 2 * NR;
  if ((c.N * C * plane + slack) * int64_t(sizeof(T)) > kMaxPadBytes) return false;

  AlignedBuffer<T> xpad(c.N * C * plane + slack);
  std::fill(xpad.get() + c.N * C * plane, xpad.get() + c.N * C * plane + slack, T(0));
  const int64_t* s = c.in_strides;
  for_tasks(c, c.N * C, [&](int64_t begin, int64_t end) {
    for (int64_t nc = begin; nc < end; ++nc) {
      const T* src = c.in + nc / C * s[0] + nc % C * s[1];
      T* dst = xpad.get() + nc * plane;
      for (int64_t hp = 0; hp < ph.size; ++hp) {
        const int64_t h = hp + ph.lo;
        if (h >= 0 && h < c.H)
          copy_row_segment(src + h * s[2], c.W, pw.lo, 1, s[3], pw.size, dst + hp * pw.size, 1);
        else std::fill(dst + hp * pw.size, dst + (hp + 1) * pw.size, T(0));
      }
    }
  });

  const int64_t red = reduction_size(c), kpad = round_up(c.Ko, MR);
  const std::shared_ptr<const T> filter = packed_filter(c, ReduceOrder::ChannelsOuter, MR, red);
  const std::vector<T> bias = padded_bias(c, MR);
  std::vector<int64_t> koff(red + kPrefetchSteps, 0);
  RedCursor cur(c.Ci, TR, TS, ReduceOrder::ChannelsOuter, 0);
  for (int64_t k = 0; k < red; ++k, cur.advance())
    koff[k] = cur.ci * plane + (c.hoff[cur.tr] - ph.lo) * pw.size + (c.woff[cur.ts] - pw.lo);

  const int64_t* os = c.out_strides;
  const int64_t flat = c.P * pw.size, block = balanced_block(flat, NR, c.N * c.G);
  const int64_t blocks = ceil_div(flat, block);
  const AccInit init = c.bias != nullptr ? AccInit::RowBias : AccInit::Zero;
  for_tasks(c, c.N * c.G * blocks, [&](int64_t begin, int64_t end) {
    T tile[32 * 64];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / (c.G * blocks), g = task / blocks % c.G;
      const int64_t j0 = task % blocks * block, jn = std::min(block, flat - j0);
      const T* in_ng = xpad.get() + (n * C + g * c.Ci) * plane;
      T* out_ng = c.out + n * os[0] + g * c.Ko * os[1];
      for (int64_t np = 0; np < ceil_div(jn, NR); ++np) {
        const int64_t j = j0 + np * NR, cols = std::min(NR, jn - np * NR);
        for (int64_t mp = 0; mp < kpad / MR; ++mp) {
          const int64_t rows = std::min(MR, c.Ko - mp * MR);
          row_panel_kernels(uk, rows).fn_boff(red, filter.get() + g * kpad * red + mp * red * MR, in_ng + j,
                                              koff.data(), tile, NR, init, bias.data() + g * kpad + mp * MR);
          // Columns q >= Q of the padded rows were computed only to keep taps at fixed offsets.
          int64_t p = j / pw.size, q = j % pw.size, n_valid = 0;
          int64_t row_off[64], col_src[64], col_off[64];
          for (int64_t i = 0; i < rows; ++i) row_off[i] = i * os[1];
          for (int64_t jj = 0; jj < cols; ++jj) {
            if (q < c.Q) {
              col_src[n_valid] = jj;
              col_off[n_valid++] = p * os[2] + q * os[3];
            }
            if (++q == pw.size) {
              q = 0;
              ++p;
            }
          }
          store_tile(tile, NR, rows, row_off, n_valid, col_src, col_off, out_ng + mp * MR * os[1], false,
                     os[3] < os[1]);
        }
        // The output pixels of padded positions [j, j + cols).
        const int64_t lo = j / pw.size * c.Q + std::min(j % pw.size, c.Q);
        const int64_t hi = (j + cols) / pw.size * c.Q + std::min((j + cols) % pw.size, c.Q);
        finish_pixels(c, n * c.P * c.Q + lo, hi - lo, g * c.Ko, c.Ko);
      }
    }
  });
  return true;
}

// Padded row hp (input row hp + ph.lo, zeros outside the input) of image n in
// channels-last order: pw.size pixels of C channels.
template <typename T>
void copy_padded_row(const Correlation<T>& c, int64_t n, int64_t hp, const PadAxis& ph, const PadAxis& pw,
                     int64_t C, T* dst) {
  const int64_t* s = c.in_strides;
  const int64_t h = hp + ph.lo;
  // Padded columns [wa, wb) lie inside the input; the rest are zeros.
  const int64_t wa = std::min(pw.size, std::max<int64_t>(0, -pw.lo));
  const int64_t wb = std::max(wa, std::min(pw.size, c.W - pw.lo));
  if (h < 0 || h >= c.H || wa == wb) {
    std::fill(dst, dst + pw.size * C, T(0));
    return;
  }
  std::fill(dst, dst + wa * C, T(0));
  std::fill(dst + wb * C, dst + pw.size * C, T(0));
  const T* src = c.in + n * s[0] + h * s[2] + (wa + pw.lo) * s[3];
  if (s[1] == 1 && s[3] == C) {  // dense channels_last: the row is one run (3-channel stems)
    std::copy(src, src + (wb - wa) * C, dst + wa * C);
    return;
  }
  if (s[3] == 1 && s[1] != 1 && s[1] < kMaxGatherStride) {  // NCHW-like: each channel's row is contiguous
    active_microkernel<T>().gather_columns(src, s[1], C, wb - wa, dst + wa * C, C);
    return;
  }
  for (int64_t wp = wa; wp < wb; ++wp, src += s[3]) {
    T* d = dst + wp * C;
    if (s[1] == 1) std::copy(src, src + C, d);
    else
      for (int64_t ch = 0; ch < C; ++ch) d[ch] = src[ch * s[1]];
  }
}

// A shorter tile's speed per useful lane against the main tile's (measured in
// L1 on AVX-512: 12 and 10 of 14 rows as fast, 8 rows 0.92-1.0; smaller tiles
// read the filter panel more often per FMA), and the gain in useful lanes it
// must bring to be taken. (Tiles of 7 rows for rows of 7 pixels ran at
// 0.95-0.98x the im2col path: deep reductions, whose filter panels then stream
// from L2.)
inline double short_tile_speed(int64_t mr, int64_t main_mr) { return mr * 10 >= main_mr * 7 ? 1.0 : 0.95; }
constexpr double kShortTileGain = 0.02;

// The tile height for `rows` rows: the short tile whose tiles leave fewest lanes
// empty (weighed by its speed), or the main one (-1) unless a short one does
// better by kShortTileGain; *use (when given) gets the chosen tile's lane use.
// With `not_taller`, no tile taller than the rows.
template <typename T>
int best_short_tile(const MicroKernel<T>& uk, int64_t rows, bool not_taller, double* use = nullptr) {
  const double main_use = double(rows) / round_up(rows, uk.mr);
  int best = -1;
  double best_use = main_use;
  for (int i = 0; i < MicroKernel<T>::kShortTiles && uk.short_mr[i] > 0; ++i) {
    const int64_t mr = uk.short_mr[i];
    if (not_taller && mr > rows) continue;
    const double u = double(rows) / round_up(rows, mr) * short_tile_speed(mr, uk.mr);
    if (u > best_use && u > main_use + kShortTileGain) {
      best_use = u;
      best = i;
    }
  }
  if (use != nullptr) *use = best_use;
  return best;
}
constexpr int64_t kTilesOuterBytes = int64_t(512) << 10;

// Channels-last (any steps): the input zero-padded in channels-last order; a
// tile is MR consecutive output pixels of one output row, whose taps are rows
// of the padded input at a fixed stride, read in place by the micro-kernel's
// strided-A variant. With one group each task copies just the padded rows its
// output rows read, into a buffer of its own that stays in cache (one copy of
// the whole input was a pass through memory at batch 16, and the tiles then
// read it back from memory); with groups, one copy of the whole input is made
// first. When no tap reaches the padding (a strided 1x1, ResNet's
// downsampling) and the input is dense channels_last, the input itself is read
// that way, without a copy, provided every tile is full (Q a multiple of MR: a
// partial tile reads its missing rows, which past the last pixel would leave
// the tensor). Rows that the main tile height divides badly (8, 12, 16, 24, 32
// or 48 pixels) take a shorter tile of the same width (MicroKernel::short_mr).
template <typename T>
bool run_channels_direct(const Correlation<T>& c, const MicroKernel<T>& uk) {
  // Few output channels (8, 16: small models' layers) take the narrow tile when it
  // wastes fewer columns, as the 1x1 path does.
  const bool narrow = round_up(c.Ko, uk.narrow_nr) < round_up(c.Ko, uk.nr);
  int64_t MR = narrow ? uk.narrow_mr : uk.mr;
  const int64_t NR = narrow ? uk.narrow_nr : uk.nr;
  MicroKernelArowsFn<T> arows = narrow ? uk.narrow_arows : uk.fn_arows;
  // The tile height whose tiles leave fewest lanes empty along a row; none taller
  // than a row (one part-empty tile per row, rows of 7 in 8: the im2col path does
  // better).
  double row_use = double(c.Q) / round_up(c.Q, MR);
  if (!narrow) {
    const int i = best_short_tile(uk, c.Q, true, &row_use);
    if (i >= 0) {
      MR = uk.short_mr[i];
      arows = uk.short_arows[i];
    }
  }
  const int64_t qtiles = ceil_div(c.Q, MR);
  // A row of main tiles and a part-full last one: the shortest tile that covers
  // the rest, if shorter (rows of 25: 14 + 12 lanes, not 14 + 14).
  int64_t tail_mr = MR;
  MicroKernelArowsFn<T> tail_arows = arows;
  if (!narrow && qtiles > 1 && c.Q % MR != 0) {
    const int64_t rest = c.Q - (qtiles - 1) * MR;
    for (int i = 0; i < MicroKernel<T>::kShortTiles && uk.short_mr[i] > 0; ++i)
      if (uk.short_mr[i] >= rest && uk.short_mr[i] < tail_mr) {
        tail_mr = uk.short_mr[i];
        tail_arows = uk.short_arows[i];
      }
    row_use = double(c.Q) / ((qtiles - 1) * MR + tail_mr);
  }
  // Every tile full: no tile reads rows past the end of its output row.
  const bool full_tiles = (qtiles - 1) * MR + tail_mr == c.Q;
  const int64_t C = c.G * c.Ci, TR = c.hoff.size(), TS = c.woff.size();
  // Tiles mostly empty (short rows) waste FMAs; a tiny problem has few to waste, and
  // the im2col path's packing costs it more (a (1, 8, 8, 8) 3x3 on the dispatcher's
  // typed call: 15.4 us against 7.7).
  const PadAxis ph = pad_axis(c.hoff, c.P, c.step_h), pw = pad_axis(c.woff, c.Q, c.step_w);
  if (row_use < kMinTileUse && correlation_flops(c) >= kTinyFlops) return false;
  const int64_t* s = c.in_strides;
  const bool in_place = s[1] == 1 && s[3] == C && s[2] == c.W * C && (c.N == 1 || s[0] == c.H * c.W * C) &&
                        ph.lo >= 0 && pw.lo >= 0 && ph.lo + ph.size <= c.H && pw.lo + pw.size <= c.W &&
                        full_tiles;
  const bool per_task = !in_place && c.G == 1;
  const int64_t row = (in_place ? c.W : pw.size) * C, image = (in_place ? c.H * row : ph.size * row);
  const int64_t slack = in_place ? 0 : (MR * c.step_w + pw.size) * C;
  if (!in_place && !per_task && (c.N * image + slack) * int64_t(sizeof(T)) > kMaxPadBytes) return false;

  AlignedBuffer<T> xpad(in_place || per_task ? 0 : c.N * image + slack);
  const T* base = in_place ? c.in + ph.lo * row + pw.lo * C : xpad.get();  // input pixel (ph.lo, pw.lo)
  if (!in_place && !per_task) {
    std::fill(xpad.get() + c.N * image, xpad.get() + c.N * image + slack, T(0));
    for_tasks(c, c.N * ph.size, [&](int64_t begin, int64_t end) {
      for (int64_t nh = begin; nh < end; ++nh)
        copy_padded_row(c, nh / ph.size, nh % ph.size, ph, pw, C, xpad.get() + nh * row);
    });
  }

  const int64_t red = reduction_size(c), kpad = round_up(c.Ko, NR);
  const std::shared_ptr<const T> filter = packed_filter(c, ReduceOrder::TapsOuter, NR, red);
  const std::vector<T> bias = padded_bias(c, NR);
  // The reduction as runs of run_len steps at offsets toff: one run per tap of
  // Ci channels, or, with one group and adjacent column taps (no dilation),
  // one run per kernel row of TS*Ci (the stem's 3 channels: 7 runs of 21, not
  // 49 of 3; the packed filter's (tr, ts, ci) order is the same).
  bool row_runs = c.G == 1;
  for (int64_t ts = 1; ts < TS; ++ts) row_runs = row_runs && c.woff[ts] == c.woff[0] + ts;
  const int64_t runs = row_runs ? TR : TR * TS, run_len = row_runs ? TS * c.Ci : c.Ci;
  std::vector<int64_t> toff;
  for (int64_t tr = 0; tr < TR; ++tr)
    for (int64_t ts = 0; ts < (row_runs ? 1 : TS); ++ts)
      toff.push_back((c.hoff[tr] - ph.lo) * row + (c.woff[ts] - pw.lo) * C);

  const int64_t* os = c.out_strides;
  const bool direct_store = os[1] == 1;
  // NCHW-like outputs (the strided stem): a whole output row of tiles goes to a
  // buffer, and then each channel's row is written as one run; per tile, each of
  // NR channel planes got a run of MR pixels, on as many pages.
  const bool row_store = !direct_store && os[3] == 1;
  // Row blocks of equal row counts (direct_row_blocks), and the output-channel
  // panels split where that evens out the threads' shares (28 rows at batch 1
  // make 7 blocks: 4 and 3 on two threads, 7 and 7 split in two).
  const int64_t row_blocks = direct_row_blocks(c.P, qtiles, c.N * c.G, at::get_num_threads());
  const int64_t rows_per_task = ceil_div(c.P, row_blocks);
  const int64_t npanels = kpad / NR;
  const int64_t splits = panel_splits(c.N * c.G * row_blocks, npanels, at::get_num_threads());
  const int64_t split_panels = npanels / splits;
  const AccInit init = c.bias != nullptr ? AccInit::ColBias : AccInit::Zero;
  // A task's padded rows: its output rows' taps (the padded extent of one output
  // row, hext, plus step_h per further row).
  const int64_t hext = ph.size - (c.P - 1) * c.step_h;
  const int64_t task_rows = (rows_per_task - 1) * c.step_h + hext;
  // The fused stage in registers on full tiles stored in place (a large output
  // also streams there); other tiles get it right after their store.
  const TileStores<T> stores = tile_stores(c, false);
  // Rows of a large NCHW output go out non-temporally where aligned, unless the
  // fused stage reads them back right after (the stem at batch 8: a 26 MB output).
  const bool stream_rows = row_store && stores.stage.stream && !stores.staged;
  // Tiles outermost (each tile against all of the task's panels, its input rows
  // staying in L1) when those panels fit in half of a 1 MiB L2; else panels
  // outermost (each panel's tiles in a row, the panel staying in L2). Layers
  // alone ran 1-5% faster at batch 16 and 3-17% at batch 1 (1x1s most, whose
  // short reductions re-read their input rows per panel); whole models were
  // unchanged (their layers' inputs come from the layer before, not L1).
  const bool tiles_outer = direct_store && split_panels * red * NR * int64_t(sizeof(T)) <= kTilesOuterBytes;
  for_tasks(c, c.N * c.G * row_blocks * splits, [&](int64_t begin, int64_t end) {
    T tile[32 * 64];
    AlignedBuffer<T> rows_buf(per_task ? task_rows * row + slack : 0);
    AlignedBuffer<T> out_row(row_store ? qtiles * MR * NR : 0);
    int64_t col_src[64], col_off[64];
    for (int64_t jj = 0; jj < NR; ++jj) {
      col_src[jj] = jj;
      col_off[jj] = jj * os[1];
    }
    if (per_task) std::fill(rows_buf.get() + task_rows * row, rows_buf.get() + task_rows * row + slack, T(0));
    for (int64_t task = begin; task < end; ++task) {
      // Panel groups outermost: consecutive tasks (one thread's share) use the
      // same filter panels, which then stay in that thread's L2.
      const int64_t blk = task % (c.N * c.G * row_blocks), np0 = task / (c.N * c.G * row_blocks) * split_panels;
      const int64_t n = blk / (c.G * row_blocks), g = blk / row_blocks % c.G;
      const int64_t p0 = blk % row_blocks * rows_per_task, p1 = std::min(c.P, p0 + rows_per_task);
      // Output row p's padded rows start at (p - p0) * step_h in the task's copy,
      // at n * image + p * step_h * row in the whole copy or the input itself.
      const T* rows_base = base + n * image + p0 * c.step_h * row;
      if (per_task) {
        for (int64_t r = 0; r < (p1 - p0 - 1) * c.step_h + hext; ++r)
          copy_padded_row(c, n, p0 * c.step_h + r, ph, pw, C, rows_buf.get() + r * row);
        rows_base = rows_buf.get();
      }
      const int64_t kn = std::min(c.Ko, (np0 + split_panels) * NR) - np0 * NR;
      ResidualPrefetch<T> prefetch(stores.staged ? nullptr : c.epilogue, c.P, c.Q, (n * c.P + p0) * c.Q,
                                   (p1 - p0) * c.Q, g * c.Ko + np0 * NR, kn, split_panels * (p1 - p0) * qtiles);
      // Tile qt of output row p against panel np, stored (and staged) in place or
      // through the tile buffer.
      auto tile_at = [&](int64_t np, int64_t p, int64_t qt) {
        prefetch.step();
        const T* b = filter.get() + g * kpad * red + np * red * NR;
        const T* bcol = bias.data() + g * kpad + np * NR;
        const int64_t cols = std::min(NR, c.Ko - np * NR);
        const int64_t q0 = qt * MR, rows = std::min(MR, c.Q - q0);
        const bool last = qt == qtiles - 1;
        const MicroKernelArowsFn<T> kernel = last ? tail_arows : arows;
        const T* a = rows_base + (p - p0) * c.step_h * row + q0 * c.step_w * C + g * c.Ci;
        T* o = c.out + n * os[0] + p * os[2] + q0 * os[3] + (g * c.Ko + np * NR) * os[1];
        const int64_t m = (n * c.P + p) * c.Q + q0;
        if (direct_store && rows == (last ? tail_mr : MR) && cols == NR) {
          TileStage<T> at;
          kernel(runs, run_len, toff.data(), a, c.step_w * C, b, o, os[3], init, bcol,
                 stores.at(c, m, g * c.Ko + np * NR, &at));
          return;
        }
        kernel(runs, run_len, toff.data(), a, c.step_w * C, b, tile, NR, init, bcol, nullptr);
        int64_t row_off[64];
        for (int64_t i = 0; i < rows; ++i) row_off[i] = i * os[3];
        store_tile(tile, NR, rows, row_off, cols, col_src, col_off, o, false, os[1] < os[3]);
        if (stores.staged) finish_pixels(c, m, rows, g * c.Ko + np * NR, cols);
      };
      if (tiles_outer) {
        for (int64_t p = p0; p < p1; ++p)
          for (int64_t qt = 0; qt < qtiles; ++qt)
            for (int64_t np = np0; np < np0 + split_panels; ++np) tile_at(np, p, qt);
      } else if (!row_store) {
        for (int64_t np = np0; np < np0 + split_panels; ++np)
          for (int64_t p = p0; p < p1; ++p)
            for (int64_t qt = 0; qt < qtiles; ++qt) tile_at(np, p, qt);
      } else {
        for (int64_t np = np0; np < np0 + split_panels; ++np) {
          const T* b = filter.get() + g * kpad * red + np * red * NR;
          const T* bcol = bias.data() + g * kpad + np * NR;
          const int64_t cols = std::min(NR, c.Ko - np * NR);
          for (int64_t p = p0; p < p1; ++p) {
            for (int64_t qt = 0; qt < qtiles; ++qt, prefetch.step()) {
              const T* a = rows_base + (p - p0) * c.step_h * row + qt * MR * c.step_w * C + g * c.Ci;
              (qt == qtiles - 1 ? tail_arows : arows)(runs, run_len, toff.data(), a, c.step_w * C, b,
                                                      out_row.get() + qt * MR * NR, NR, init, bcol, nullptr);
            }
            uk.store_columns(out_row.get(), NR, c.Q, cols, col_src, col_off,
                             c.out + n * os[0] + p * os[2] + (g * c.Ko + np * NR) * os[1], false,
                             stream_rows);
            if (stores.staged) finish_pixels(c, (n * c.P + p) * c.Q, c.Q, g * c.Ko + np * NR, cols);
          }
        }
      }
      if (!stores.staged) finish_pixels(c, (n * c.P + p0) * c.Q, (p1 - p0) * c.Q, g * c.Ko + np0 * NR, kn);
    }
    if (stores.stage.stream) stream_fence();
  });
  return true;
}

// ----------------------------------------------------------------------------
// Few output pixels (deep layers at small batch): the filter is the big
// operand, so it is read once, where it lies, and never packed (fprop and
// dgrad alike, in whatever layout). Each task takes
// a block of output channels (rows of the filter, read in place by the
// strided-A micro-kernel along the reduction) and runs it against every
// column of an im2col of all the pixels, packed once in the filter's own
// reduction order. The narrow tile is used when it wastes fewer columns. Only
// for filters packed per call (training, or too small for the cache): a cached
// packed form costs nothing per call, and the packed paths' wider tiles win.

constexpr int64_t kFewPixels = 128;  // at most this many output pixels (N*P*Q)
// and a filter of at least this many elements (a small one is cheap to pack, and
// the packed paths have less set-up per call)
constexpr int64_t kFewPixelsMinFilter = 16384;
// What a lane of the narrow tile costs, in lanes of the wide one (see below).
constexpr double kNarrowLaneCost = 1.4;

template <typename T>
bool run_filter_in_place(const Correlation<T>& c, const MicroKernel<T>& uk) {
  const int64_t M = c.N * c.P * c.Q;
  if (M > kFewPixels || c.G * c.Ko * reduction_size(c) < kFewPixelsMinFilter) return false;
  // A filter with a cache keeps its packed form across calls: the packed path's
  // wider tiles then win (728 -> 728 channels at 10x10, channels_last, batch 1:
  // 1.15 ms in place, 0.60 packed, hash of the filter included, on Zen 4), unless
  // the pixels fill at most one narrow tile and the lookup hashes the filter: the
  // layer is then bound by reading the filter, which the hash reads a second time
  // (512 -> 2048 channels at 4x4, batch 1, Xeon: 0.18 ms in place, 0.22 hashed and
  // packed, 0.14 packed when frozen).
  if (c.filter_cache != nullptr && !(M <= uk.narrow_nr && c.filter_cache->lookup_reads_filter())) return false;
  // Filter row i (output channel) along the reduction, as runs of `klen` steps:
  // step kk reads a[i * wt_out + toff[kk / klen] + kk % klen]. One run when the
  // whole reduction is contiguous (fprop's KCRS or KRSC filters); one run of the
  // taps per channel when only the taps are (dgrad's view of a KCRS filter).
  const int64_t TR = c.hoff.size(), TS = c.woff.size(), red = reduction_size(c);
  ReduceOrder order = ReduceOrder::ChannelsOuter;
  int64_t klen = 1;
  std::vector<int64_t> toff;
  bool taps_run = c.wt_s == 1 && (TR == 1 || c.wt_r == TS);
  for (int64_t t = 1; t < TS; ++t) taps_run = taps_run && c.stap[t] == c.stap[0] + t;
  for (int64_t t = 1; t < TR; ++t) taps_run = taps_run && c.rtap[t] == c.rtap[0] + t;
  if (filter_in_place_order(c, &order)) {
    klen = red;
    toff.push_back(c.rtap[0] * c.wt_r + c.stap[0] * c.wt_s);
  } else if (taps_run) {
    klen = TR * TS;
    for (int64_t ci = 0; ci < c.Ci; ++ci) toff.push_back(ci * c.wt_in + c.rtap[0] * c.wt_r + c.stap[0]);
  } else {
    return false;  // single steps scattered over the filter: packing it reads better
  }
  const int64_t ntaps = red / klen;
  // The narrow tile (one vector of pixels) broadcasts as many filter elements per
  // step as the wide one (two vectors) for half the FMAs, so it pays only where it
  // saves a large share of the lanes: 728 -> 728 channels at 10x10, batch 1, filter
  // not cached (Zen 4, 2 threads): 112 lanes narrow 1.0-1.2 ms, 128 lanes wide
  // 0.82-0.94 (fprop; dgrad 1.1-1.24 -> 0.8-1.0).
  const bool narrow = double(round_up(M, uk.narrow_nr)) * kNarrowLaneCost < double(round_up(M, uk.nr));
  const int64_t MR = narrow ? uk.narrow_mr : uk.mr, NR = narrow ? uk.narrow_nr : uk.nr;
  const MicroKernelArowsFn<T> kernel = narrow ? uk.narrow_arows : uk.fn_arows;
  const int64_t panels = ceil_div(M, NR);

  // im2col of every pixel: [g][panel][red][NR], pixels flat over (n, p, q);
  // tasks are (group, panel, reduction block), so even one panel packs in parallel.
  AlignedBuffer<T> cols(c.G * panels * red * NR);
  const int64_t kblocks = ceil_div(red, kKc);
  for_tasks(c, c.G * panels * kblocks, [&](int64_t begin, int64_t end) {
    AlignedBuffer<T> part(kKc * NR);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t gp = t / kblocks, kb0 = t % kblocks * kKc, kc = std::min(kKc, red - kb0);
      const int64_t g = gp / panels, m0 = gp % panels * NR, mn = std::min(NR, M - m0);
      T* dst = cols.get() + gp * red * NR + kb0 * NR;
      const int64_t first_len = std::min(mn, c.P * c.Q - m0 % (c.P * c.Q));
      if (first_len == mn) {  // one image: pack in place (zero past mn)
        pack_input_pixel_panels(c, m0 / (c.P * c.Q), g, kb0, kc, m0 % (c.P * c.Q), mn, NR, dst, order);
        continue;
      }
      // The panel spans images: pack each image's run, then place it.
      for (int64_t k = 0; k < kc; ++k) std::fill(dst + k * NR, dst + (k + 1) * NR, T(0));
      for (int64_t done = 0; done < mn;) {
        const int64_t m = m0 + done, n = m / (c.P * c.Q), j = m % (c.P * c.Q);
        const int64_t len = std::min(mn - done, c.P * c.Q - j);
        pack_input_pixel_panels(c, n, g, kb0, kc, j, len, NR, part.get(), order);
        for (int64_t k = 0; k < kc; ++k)
          std::copy(part.get() + k * NR, part.get() + k * NR + len, dst + k * NR + done);
        done += len;
      }
    }
  });

  const std::vector<T> bias = padded_bias(c, MR);
  const int64_t mblocks = ceil_div(c.Ko, MR);
  const int64_t* os = c.out_strides;
  const AccInit init = c.bias != nullptr ? AccInit::RowBias : AccInit::Zero;
  const int64_t zero_offset = 0;
  for_tasks(c, c.G * mblocks, [&](int64_t begin, int64_t end) {
    T tile[32 * 64];
    for (int64_t t = begin; t < end; ++t) {
      const int64_t g = t / mblocks, mb = t % mblocks;
      const int64_t k0 = mb * MR, rows = std::min(MR, c.Ko - k0);
      const T* a = c.wt + g * c.wt_group + k0 * c.wt_out;
      int64_t lda = c.wt_out, runs = ntaps, run_len = klen;
      const int64_t* offsets = toff.data();
      // The last block's missing rows read zeros, not the next group's filter.
      std::vector<T> tail;
      if (rows < MR) {
        tail.assign(MR * red, T(0));
        for (int64_t i = 0; i < rows; ++i)
          for (int64_t kk = 0; kk < red; ++kk) tail[i * red + kk] = a[i * lda + toff[kk / klen] + kk % klen];
        a = tail.data();
        lda = red;
        runs = 1;
        run_len = red;
        offsets = &zero_offset;
      }
      for (int64_t panel = 0; panel < panels; ++panel) {
        kernel(runs, run_len, offsets, a, lda, cols.get() + (g * panels + panel) * red * NR, tile, NR, init,
               bias.data() + g * round_up(c.Ko, MR) + k0, nullptr);
        const int64_t m0 = panel * NR, mn = std::min(NR, M - m0);
        int64_t row_off[64], col_src[64], col_off[64];
        for (int64_t i = 0; i < rows; ++i) row_off[i] = i * os[1];
        pixel_offsets(m0, mn, c.P, c.Q, os, col_off);
        for (int64_t jj = 0; jj < mn; ++jj) col_src[jj] = jj;
        store_tile(tile, NR, rows, row_off, mn, col_src, col_off, c.out + (g * c.Ko + k0) * os[1], false,
                   os[3] < os[1]);
      }
      finish_pixels(c, 0, M, g * c.Ko + k0, rows);
    }
  });
  return true;
}

// Few output pixels with a filter that is packed anyway (frozen: its packed form
// costs nothing per call; or one the in-place path cannot read well): every
// pixel's im2col is packed once, and each task takes a group of output-channel
// panels across all the pixel tiles, so each block of the packed filter is read
// from memory once and used by every tile while in L1. (The im2col path's tasks
// are pixel blocks, each streaming the whole filter: four times over for 49
// pixels.) The tile orientation is the channels-on-vector one: pixels on rows.
// The tile height is the one that leaves fewest rows empty (49 pixels: 5 tiles
// of 10 rows rather than 4 of 14 on AVX-512); a short tile has the strided-A
// form only, and reads a row-major pack.
template <typename T>
bool run_packed_few_pixels(const Correlation<T>& c, const MicroKernel<T>& uk) {
  const int64_t M = c.N * c.P * c.Q, red = reduction_size(c);
  if (M > kFewPixels || c.G * c.Ko * red < kFewPixelsMinFilter) return false;
  const int short_tile = best_short_tile(uk, M, false);
  const int64_t MR = short_tile >= 0 ? uk.short_mr[short_tile] : uk.mr;
  const int64_t NR = uk.nr, kpad = round_up(c.Ko, NR), npanels = kpad / NR;
  const int64_t tiles = ceil_div(M, MR), kblocks = ceil_div(red, kKc), tile_block = tiles * MR * kKc;
  const std::shared_ptr<const T> filter = packed_filter(c, ReduceOrder::TapsOuter, NR);
  const std::vector<T> bias = padded_bias(c, NR);
  AlignedBuffer<T> apack(c.G * kblocks * tile_block);  // [g][kb][tile][kc][MR]
  for_tasks(c, c.G * kblocks, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t kb0 = t % kblocks * kKc;
      pack_input_channel_panels(c, t / kblocks, kb0, std::min(kKc, red - kb0), 0, M, MR,
                                apack.get() + t * tile_block, short_tile >= 0);
    }
  });
  const int64_t* os = c.out_strides;
  const bool flat = os[1] == 1 && os[2] == c.Q * os[3] && os[0] == c.P * c.Q * os[3];
  const AccInit first = c.bias != nullptr ? AccInit::ColBias : AccInit::Zero;
  const int64_t splits = panel_splits(c.G, npanels, at::get_num_threads());
  const int64_t split_panels = npanels / splits;
  const int64_t zero_offset = 0;
  for_tasks(c, c.G * splits, [&](int64_t begin, int64_t end) {
    T tile[32 * 64];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t g = task / splits, np0 = task % splits * split_panels;
      T* out_g = c.out + g * c.Ko * os[1];
      for (int64_t kb0 = 0; kb0 < red; kb0 += kKc) {
        const int64_t kc = std::min(kKc, red - kb0);
        const T* a_kb = apack.get() + (g * kblocks + kb0 / kKc) * tile_block;
        for (int64_t np = np0; np < np0 + split_panels; ++np) {
          const T* b = filter.get() + g * kpad * red + kb0 * kpad + np * kc * NR;
          const T* bcol = bias.data() + g * kpad + np * NR;
          const int64_t cols = std::min(NR, c.Ko - np * NR);
          auto run_tile = [&](const T* a, T* o, int64_t ldo, AccInit init) {
            if (short_tile >= 0)
              uk.short_arows[short_tile](1, kc, &zero_offset, a, kc, b, o, ldo, init, bcol, nullptr);
            else
              uk.fn(kc, a, b, o, ldo, init, bcol);
          };
          for (int64_t mp = 0; mp < tiles; ++mp) {
            const T* a = a_kb + mp * kc * MR;
            const int64_t rows = std::min(MR, M - mp * MR), m = mp * MR;
            if (flat && rows == MR && cols == NR) {
              run_tile(a, out_g + m * os[3] + np * NR, os[3], kb0 == 0 ? first : AccInit::Load);
              continue;
            }
            run_tile(a, tile, NR, kb0 == 0 ? first : AccInit::Zero);
            store_pixel_rows_tile(c, tile, NR, m, rows, cols, out_g + np * NR * os[1], kb0 > 0);
          }
        }
      }
      finish_pixels(c, 0, M, g * c.Ko + np0 * NR, std::min(c.Ko, (np0 + split_panels) * NR) - np0 * NR);
    }
  });
  return true;
}

template bool run_pixels_direct<float>(const Correlation<float>&, const MicroKernel<float>&);
template bool run_pixels_direct<double>(const Correlation<double>&, const MicroKernel<double>&);
template bool run_channels_direct<float>(const Correlation<float>&, const MicroKernel<float>&);
template bool run_channels_direct<double>(const Correlation<double>&, const MicroKernel<double>&);
template bool run_filter_in_place<float>(const Correlation<float>&, const MicroKernel<float>&);
template bool run_filter_in_place<double>(const Correlation<double>&, const MicroKernel<double>&);
template bool run_packed_few_pixels<float>(const Correlation<float>&, const MicroKernel<float>&);
template bool run_packed_few_pixels<double>(const Correlation<double>&, const MicroKernel<double>&);

}  // namespace corr
}  // namespace cpu
}  // namespace cnnops
