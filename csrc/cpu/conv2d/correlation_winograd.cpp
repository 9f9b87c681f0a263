// Winograd's F(2x2, RxS) for the correlation's unit-step cases whose taps run
// over R and S consecutive input offsets (1 to 3 each, not 1x1) over
// channels-last input and output, one group: conv2d's fprop of 3x3, 2x2, 1x3
// and 3x1 filters, and dgrad at stride 1 (so conv_transpose2d at stride 1 too)
// and at stride 2, whose stride phases of a 3x3 filter have 2x2 taps (and 2x1,
// 1x2 and 1x1 ones, left to the direct paths). A 2x2 output tile costs (R+1)(S+1) products per channel pair
// instead of 4RS: 16 instead of 36 for 3x3 (2.25x fewer FLOPs in the GEMMs,
// which are most of the work once channels are many), 9 instead of 16 for 2x2.
//
// Parallelism: tasks are blocks of TB output tiles (flat over images, tile rows
// and tile columns; TB a multiple of the micro-kernel's MR), split by output
// channels when there are too few blocks for the threads, each computed by one
// thread in three steps that keep its buffers in L2:
//   1. input transform (the ISA's adds and subtracts along channels,
//      winograd_template.h): each tile's (R+1)x(S+1) input patch, zeros in the
//      padding, becomes (R+1)(S+1) positions x C values, v[pos][tile][C];
//   2. one GEMM per position, m[pos] (TB x K) = v[pos] (TB x C) * u[pos] (C x K),
//      by the strided-A micro-kernel reading v's tile rows in place; u is the
//      transformed filter, packed once into the micro-kernel's panels (cached
//      with the filter like the other packed forms);
//   3. output transform of each tile's positions x K sums into its 2x2 pixels (+ bias,
//      the last row and column dropped past the output's edge), with the fused
//      stage applied there when it has a register form (else after the block,
//      finish_pixels).
// Every output is written once by one task, in a fixed order: results do not
// depend on the thread count. float and double.
//
// Accuracy: the data transforms add and subtract (coefficients 0 and +-1); the
// filter's (coefficients 0, +-1/2, 1) is computed in double. Tests compare
// against float64 references at the direct paths' tolerances.
#include <algorithm>

#include "correlation_pack.h"
#include "winograd_template.h"

namespace cnnops {
namespace cpu {
namespace corr {
namespace {

constexpr int64_t kMinChannels = 16;                // fewer input or output channels: transforms dominate
constexpr int64_t kMinTiles = 16;                   // fewer: one tile panel per GEMM, half empty
// Stride 2 (see applies): channels-last, and through NCHW copies.
constexpr int64_t kMinStride2Channels = 64, kMinStride2Tiles = 48;
constexpr int64_t kMinStride2CopyChannels = 128, kMinStride2CopyTiles = 512;
// Flops a filter's transform must save per (input, output) channel pair when it
// is made per call (no filter cache: training): about its cost, 9-10 ns per pair
// on two threads (the 3x3 512-channel layer at 7x7 broke even at batch 4, 1480).
constexpr int64_t kUncachedSavedFlops = 1536;
// A task's v and m: half of the smallest L2 seen (Zen 4's 1 MiB; 1 MiB blocks
// there ran ResNet's 64- and 128-channel layers at batch 16 6-10% slower).
constexpr int64_t kBlockBytes = int64_t(512) << 10;
constexpr int64_t kMaxBlockPanels = 8;
constexpr int64_t kMaxFilterBytes = int64_t(64) << 20;  // the transformed filter (1024 x 1024 floats)
constexpr int64_t kTasksPerThread = 4;

// The 1 to 3 taps of one axis at consecutive input offsets lo, lo+1, ... (in
// either order: dgrad's run backwards), as the filter index of each offset.
struct TapRun {
  int n = 0;
  int64_t lo = 0, filter[3] = {0, 0, 0};
};

bool consecutive_taps(const std::vector<int64_t>& off, const std::vector<int64_t>& tap, TapRun* t) {
  if (off.empty() || off.size() > 3) return false;
  t->n = static_cast<int>(off.size());
  t->lo = *std::min_element(off.begin(), off.end());
  bool seen[3] = {false, false, false};
  for (int i = 0; i < t->n; ++i) {
    const int64_t d = off[i] - t->lo;
    if (d >= t->n || seen[d]) return false;
    seen[d] = true;
    t->filter[d] = tap[i];
  }
  return true;
}

// The transformed filter, u[pos][panel][ci][NR] (output channels past Ko zero):
// U = G_R g G_S^T for each R x S filter g (rows and columns in input-offset
// order), in double. One item is a panel's NR output channels at one input
// channel: their taps are gathered into lane-contiguous rows so the transform
// runs along the lanes and each position's NR values are stored as one run (per
// filter, 15 ns as scalar code, 2-3 ns so). The tap counts are template
// arguments, so G's zero coefficients drop out of the unrolled sums and no
// buffer is cleared per item (a trained filter is transformed on every call:
// 512 -> 512 channels, 3x3, at 4x4, batch 16, channels-last: the forward with
// a graph took 10.0 ms with runtime counts and cleared sums, 7.9 so).
template <int RN, int SN, typename T>
void transform_filter_taps(const Correlation<T>& c, const TapRun& rows, const TapRun& cols, int64_t NR, T* dst) {
  constexpr int64_t kMaxLanes = 64;
  constexpr int AH = RN + 1, AW = SN + 1;
  using GR = simd::F2<RN>;
  using GS = simd::F2<SN>;
  const int64_t kpad = round_up(c.Ko, NR), panels = kpad / NR;
  // A block of input channels of a panel is first transposed (lanes
  // contiguous) by the ISA's gather_columns from runs of the filter's rows:
  // with channels along the rows (a channels-last filter), one run per tap;
  // with the taps of each channel contiguous (NCHW), one run for the block.
  // Otherwise each item gathers its values one by one (a transposed filter:
  // dgrad's). The same layer's forward with a graph: 7.9 ms with every item's
  // values gathered one by one, 6.4 so (3.6-3.9 with the transform cached).
  const auto gather = active_microkernel<T>().gather_columns;
  int64_t tap_off[RN][SN], max_off = 0;
  for (int r = 0; r < RN; ++r)
    for (int s = 0; s < SN; ++s) {
      tap_off[r][s] = rows.filter[r] * c.wt_r + cols.filter[s] * c.wt_s;
      max_off = std::max(max_off, tap_off[r][s]);
    }
  const bool gathers = gather != nullptr && c.wt_out <= kMaxGatherStride && c.wt_r >= 0 && c.wt_s >= 0;
  const bool per_tap = gathers && c.wt_in == 1;
  const bool per_block = gathers && !per_tap && c.wt_s == 1 && max_off < c.wt_in && c.wt_in <= 16;
  constexpr int64_t kBlock = 64;  // input channels per task
  const int64_t blocks = ceil_div(c.Ci, kBlock);
  for_tasks(c, panels * blocks, [&](int64_t begin, int64_t end) {
    double g[RN][SN][kMaxLanes], gg[AH][SN][kMaxLanes];
    const int64_t buf_size = per_tap ? RN * SN * kBlock * NR : per_block ? kBlock * c.wt_in * NR : 0;
    AlignedBuffer<T> buf(buf_size);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t panel = task / blocks, ci0 = task % blocks * kBlock, cn = std::min(kBlock, c.Ci - ci0);
      const int64_t lanes = std::min(NR, c.Ko - panel * NR);
      const T* wp = c.wt + panel * NR * c.wt_out;
      if (lanes < NR) std::fill(buf.get(), buf.get() + buf_size, T(0));
      if (per_tap) {
        for (int r = 0; r < RN; ++r)
          for (int s = 0; s < SN; ++s)
            gather(wp + tap_off[r][s] + ci0, c.wt_out, lanes, cn, buf.get() + (r * SN + s) * kBlock * NR, NR);
      } else if (per_block) {
        gather(wp + ci0 * c.wt_in, c.wt_out, lanes, cn * c.wt_in, buf.get(), NR);
      }
      for (int64_t ci = ci0; ci < ci0 + cn; ++ci) {
        for (int r = 0; r < RN; ++r)
          for (int s = 0; s < SN; ++s) {
            const T* src = per_tap     ? buf.get() + ((r * SN + s) * kBlock + ci - ci0) * NR
                           : per_block ? buf.get() + ((ci - ci0) * c.wt_in + tap_off[r][s]) * NR
                                       : nullptr;
            if (src != nullptr) {
              for (int64_t j = 0; j < NR; ++j) g[r][s][j] = src[j];
              continue;
            }
            src = wp + ci * c.wt_in + tap_off[r][s];
            for (int64_t j = 0; j < lanes; ++j) g[r][s][j] = src[j * c.wt_out];
            for (int64_t j = lanes; j < NR; ++j) g[r][s][j] = 0;
          }
#pragma GCC unroll 4
        for (int a = 0; a < AH; ++a)  // gg = G_R g
#pragma GCC unroll 3
          for (int s = 0; s < SN; ++s)
            for (int64_t j = 0; j < NR; ++j) {
              double v = 0;
#pragma GCC unroll 3
              for (int r = 0; r < RN; ++r)
                if (GR::g(a, r) != 0) v += GR::g(a, r) * g[r][s][j];
              gg[a][s][j] = v;
            }
#pragma GCC unroll 4
        for (int a = 0; a < AH; ++a)  // u = gg G_S^T
#pragma GCC unroll 4
          for (int b = 0; b < AW; ++b) {
            T* out = dst + ((AW * a + b) * panels + panel) * c.Ci * NR + ci * NR;
            for (int64_t j = 0; j < NR; ++j) {
              double v = 0;
#pragma GCC unroll 3
              for (int s = 0; s < SN; ++s)
                if (GS::g(b, s) != 0) v += GS::g(b, s) * gg[a][s][j];
              out[j] = static_cast<T>(v);
            }
          }
      }
    }
  });
}

template <int RN, typename T>
void transform_filter_rows(const Correlation<T>& c, const TapRun& rows, const TapRun& cols, int64_t NR, T* dst) {
  if (cols.n == 3) transform_filter_taps<RN, 3>(c, rows, cols, NR, dst);
  else if (cols.n == 2) transform_filter_taps<RN, 2>(c, rows, cols, NR, dst);
  else transform_filter_taps<RN, 1>(c, rows, cols, NR, dst);
}

template <typename T>
void transform_filter(const Correlation<T>& c, const TapRun& rows, const TapRun& cols, int64_t NR, T* dst) {
  if (rows.n == 3) transform_filter_rows<3>(c, rows, cols, NR, dst);
  else if (rows.n == 2) transform_filter_rows<2>(c, rows, cols, NR, dst);
  else transform_filter_rows<1>(c, rows, cols, NR, dst);
}

// One transform of a Winograd plan: taps along rows and columns (input offsets
// in steps of the plan's `step` pixels, from the tile's first input row and
// column plus h_first, w_first) and where its positions start.
struct Phase {
  TapRun rows, cols;
  int64_t h_first = 0, w_first = 0;
  int pos0 = 0;
  int positions() const { return (rows.n + 1) * (cols.n + 1); }
};

// What a correlation runs as: one phase at unit steps, or the four stride
// phases of a stride-2 3x3 (rows and columns at even offsets from the first
// tap: taps 0 and 2, 2 of them; at odd offsets: tap 1), each a unit-step
// F(2x2, RxS) over every other input pixel, their outputs summed.
struct Plan {
  int nphases = 0, npos = 0;
  int64_t step = 1;
  Phase phase[4];
};

// Phase taps of one axis of a stride-2 run of 3 taps: even offsets (parity 0,
// taps at lo and lo + 2) or odd (parity 1, the tap at lo + 1).
TapRun stride2_taps(const TapRun& t, int parity) {
  TapRun p;
  p.lo = t.lo + parity;
  p.n = parity == 0 ? 2 : 1;
  p.filter[0] = t.filter[parity];
  p.filter[1] = parity == 0 ? t.filter[2] : 0;
  return p;
}

template <typename T>
bool applies(const Correlation<T>& c, const MicroKernel<T>& uk, Plan* plan) {
  if (uk.fn_arows == nullptr || uk.nr > 64 || c.G != 1) return false;
  TapRun rows, cols;
  if (!consecutive_taps(c.hoff, c.rtap, &rows) || !consecutive_taps(c.woff, c.stap, &cols)) return false;
  const bool unit = c.step_h == 1 && c.step_w == 1;
  const bool stride2 = c.step_h == 2 && c.step_w == 2 && rows.n == 3 && cols.n == 3;
  if (!unit && !stride2) return false;
  if (unit) {
    if (!winograd_fits(rows.n, cols.n, c.Ci, c.Ko) || uk.winograd_input[rows.n - 1][cols.n - 1] == nullptr)
      return false;
    plan->nphases = 1;
    plan->step = 1;
    plan->phase[0] = Phase{rows, cols, rows.lo, cols.lo, 0};
  } else {
    if (!winograd_fits(3, 3, c.Ci, c.Ko) || uk.winograd_output_stride2 == nullptr ||
        uk.winograd_input[0][0] == nullptr)
      return false;
    plan->nphases = 4;
    plan->step = 2;
    int pos = 0;
    for (int i = 0; i < 4; ++i) {  // (even, even), (even, odd), (odd, even), (odd, odd): the output's order
      Phase& p = plan->phase[i];
      p.rows = stride2_taps(rows, i / 2);
      p.cols = stride2_taps(cols, i % 2);
      p.h_first = p.rows.lo;
      p.w_first = p.cols.lo;
      p.pos0 = pos;
      pos += p.positions();
    }
  }
  plan->npos = 0;
  for (int i = 0; i < plan->nphases; ++i) plan->npos += plan->phase[i].positions();
  // Channels-last in and out, or NCHW-like (unit pixel steps) through copies.
  const int64_t* is = c.in_strides;
  const int64_t* os = c.out_strides;
  if (is[1] != 1 && (is[3] != 1 || is[1] >= kMaxGatherStride || uk.gather_columns == nullptr)) return false;
  if (os[1] != 1 && (os[3] != 1 || os[1] >= kMaxGatherStride || uk.gather_columns == nullptr)) return false;
  if (plan->npos * c.Ci * round_up(c.Ko, uk.nr) * int64_t(sizeof(T)) > kMaxFilterBytes) return false;
  const int64_t tiles = c.N * ceil_div(c.P, 2) * ceil_div(c.Q, 2);
  if (tiles < kMinTiles) return false;
  // Stride 2 saves at most 31% of the products, and its transformed filter is
  // 25/9 of the filter: it needs more tiles and channels to pay. Interleaved A/B
  // against the direct path on Zen 4, channels-last: 8x8 outputs of 256 channels
  // at batch 1 0.83x, of 512 at batch 2 0.86x, 32 channels 0.91x; 64-256
  // channels from 64 tiles on 1.1-1.3x. NCHW (whole-tensor copies, where the
  // direct path copies rows in cache): 0.88-0.98x at batch 1 (128 channels at
  // 16x16, 256 at 14x14) and with 64 channels at 56x56, 1.05-1.27x from 128
  // channels and 512 tiles.
  if (plan->step == 2) {
    const bool copies = is[1] != 1 || os[1] != 1;
    const int64_t channels = std::min(c.Ci, c.Ko);
    if (channels < kMinStride2Channels || tiles < kMinStride2Tiles) return false;
    if (copies && (channels < kMinStride2CopyChannels || tiles < kMinStride2CopyTiles)) return false;
  }
  // Products saved per channel pair: at least a quarter of the direct path's (a
  // fifth at stride 2, whose most is 31%: outputs of odd size save 23-28%), and
  // with a transform made per call (training), kUncachedSavedFlops.
  const int64_t direct = rows.n * cols.n * c.N * c.P * c.Q, saved = direct - plan->npos * tiles;
  if ((plan->step == 2 ? 5 : 4) * saved < direct) return false;
  return c.filter_cache != nullptr || 2 * saved >= kUncachedSavedFlops;
}

template <typename T>
void winograd(const Correlation<T>& c, const MicroKernel<T>& uk, const Plan& plan, bool into_output) {
  const int64_t MR = uk.mr, NR = uk.nr;
  const int npos = plan.npos;
  const int64_t step = plan.step;
  WinogradInputFn<T> inputs[4];
  for (int i = 0; i < plan.nphases; ++i)
    inputs[i] = uk.winograd_input[plan.phase[i].rows.n - 1][plan.phase[i].cols.n - 1];
  const WinogradOutputFn<T> output =
      plan.nphases == 1 ? uk.winograd_output[plan.phase[0].rows.n - 1][plan.phase[0].cols.n - 1]
                        : uk.winograd_output_stride2;
  const int64_t TH = ceil_div(c.P, 2), TW = ceil_div(c.Q, 2), tiles = c.N * TH * TW;
  const int64_t Cld = round_up(c.Ci, int64_t(16)), kpad = round_up(c.Ko, NR);
  // Tiles per task: v and m within kBlockBytes, and enough tasks for the threads.
  const int64_t panel_bytes = npos * MR * (Cld + kpad) * int64_t(sizeof(T));
  int64_t block_panels = std::clamp<int64_t>(kBlockBytes / panel_bytes, 1, kMaxBlockPanels);
  const int64_t threads = at::get_num_threads();
  while (block_panels > 1 && ceil_div(tiles, block_panels * MR) < kTasksPerThread * threads) --block_panels;
  const int64_t TB = block_panels * MR, blocks = ceil_div(tiles, TB);
  // Still too few blocks (batch 1 on many threads: 49 tiles of ResNet's 14x14
  // layers are 4 blocks): each block's output-channel panels are split too, each
  // split transforming the block's patches again for its panels' GEMMs.
  const int64_t kpanels = kpad / NR;
  const int64_t splits = std::min(kpanels, ceil_div(kTasksPerThread * threads, blocks));
  const int64_t split_panels = ceil_div(kpanels, splits), tasks = blocks * splits;
  // Positions a line further apart than their tiles (at a power-of-two stride a
  // tile's positions all fall on one cache set).
  const int64_t vstride = TB * Cld + 64 / int64_t(sizeof(T)), mstride = TB * kpad + 64 / int64_t(sizeof(T));

  const std::string name = c.filter_cache != nullptr
                               ? (step == 1 ? "winograd2x2/" : "winograd2x2s2/") +
                                     filter_form_name(c, ReduceOrder::TapsOuter, NR, 0)
                               : std::string();
  const std::shared_ptr<const T> u =
      cached_pack<T>(c.filter_cache, name, size_t(npos) * kpad * c.Ci, [&](T* dst) {
        for (int i = 0; i < plan.nphases; ++i) {
          const Phase& p = plan.phase[i];
          transform_filter(c, p.rows, p.cols, NR, dst + int64_t(p.pos0) * kpad * c.Ci);
        }
      });
  const int64_t* is = c.in_strides;
  const int64_t* os = c.out_strides;
  const int64_t zero_offset = 0;
  // The fused stage in the output transform where it has a register form (a
  // separate pass over the output cost ResNet-50's 3x3 layers at batch 16 about
  // 10%); non-temporal stores for a large output, unless it is a copy read back.
  TileStores<T> stores = tile_stores(c, false);
  stores.stage.stream = stores.stage.stream && into_output;
  const bool staged = stores.staged || stores.stage.stream;
  const T* residual = c.epilogue != nullptr ? static_cast<const T*>(c.epilogue->residual) : nullptr;
  const int64_t* rs = c.epilogue != nullptr ? c.epilogue->residual_strides : nullptr;
  for_tasks(c, tasks, [&](int64_t begin, int64_t end) {
    AlignedBuffer<T> v(npos * vstride), m(npos * mstride);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t t0 = task / splits * TB, tn = std::min(TB, tiles - t0), rows = round_up(tn, MR);
      const int64_t np0 = task % splits * split_panels, np1 = std::min(kpanels, np0 + split_panels);
      if (np0 >= np1) continue;
      const int64_t k0 = np0 * NR, kn = std::min(c.Ko, np1 * NR) - k0;
      for (int64_t i = 0; i < tn; ++i) {
        const int64_t t = t0 + i, n = t / (TH * TW), th = t / TW % TH, tw = t % TW;
        for (int ph = 0; ph < plan.nphases; ++ph) {
          // The phase's patch: AH x AW input pixels `step` apart from (h0, w0).
          const Phase& p = plan.phase[ph];
          const int AH = p.rows.n + 1, AW = p.cols.n + 1;
          const int64_t h0 = 2 * step * th + p.h_first, w0 = 2 * step * tw + p.w_first;
          uint32_t valid = 0;
          for (int a = 0; a < AH; ++a)
            for (int b = 0; b < AW; ++b) {
              const int64_t h = h0 + step * a, w = w0 + step * b;
              if (h >= 0 && h < c.H && w >= 0 && w < c.W) valid |= uint32_t(1) << (AW * a + b);
            }
          // The patch's corner may lie in the padding: only valid pixels are read.
          const T* in = c.in + n * is[0] + h0 * is[2] + w0 * is[3];
          inputs[ph](in, step * is[2], step * is[3], valid, c.Ci, v.get() + p.pos0 * vstride + i * Cld, vstride);
        }
      }
      for (int pos = 0; pos < npos; ++pos)  // rows of the last panel past the last tile
        std::fill(v.get() + pos * vstride + tn * Cld, v.get() + pos * vstride + rows * Cld, T(0));
      for (int pos = 0; pos < npos; ++pos)
        for (int64_t np = np0; np < np1; ++np) {
          const T* b = u.get() + (pos * kpanels + np) * c.Ci * NR;
          for (int64_t tp = 0; tp < rows / MR; ++tp)
            uk.fn_arows(1, c.Ci, &zero_offset, v.get() + pos * vstride + tp * MR * Cld, Cld, b,
                        m.get() + pos * mstride + tp * MR * kpad + np * NR, kpad, AccInit::Zero, nullptr, nullptr);
        }
      for (int64_t i = 0; i < tn; ++i) {
        const int64_t t = t0 + i, n = t / (TH * TW), th = t / TW % TH, tw = t % TW;
        const int64_t p0 = 2 * th, q0 = 2 * tw;
        uint32_t valid = 1;
        if (q0 + 1 < c.Q) valid |= 2;
        if (p0 + 1 < c.P) valid |= 4 | (q0 + 1 < c.Q ? 8 : 0);
        TileStage<T> stage = stores.stage;
        if (stores.staged && residual != nullptr)
          stage.residual = residual + n * rs[0] + p0 * rs[2] + q0 * rs[3] + k0;
        output(m.get() + i * kpad + k0, mstride, c.bias != nullptr ? c.bias + k0 : nullptr, kn, valid,
               c.out + n * os[0] + p0 * os[2] + q0 * os[3] + k0 * os[1], os[2], os[3], staged ? &stage : nullptr,
               rs != nullptr ? rs[2] : 0);
      }
      if (c.epilogue != nullptr && !stores.staged) {
        // The block's pixels, as runs along output rows: tiles of one tile row
        // in a run cover 2 output rows.
        for (int64_t i = 0; i < tn;) {
          const int64_t t = t0 + i, n = t / (TH * TW), th = t / TW % TH, tw = t % TW;
          const int64_t len = std::min(tn - i, TW - tw);
          const int64_t q0 = 2 * tw, qn = std::min(c.Q, 2 * (tw + len)) - q0;
          for (int64_t p = 2 * th; p < std::min(c.P, 2 * th + 2); ++p)
            finish_pixels(c, (n * c.P + p) * c.Q + q0, qn, k0, kn);
          i += len;
        }
      }
    }
    if (stores.stage.stream) stream_fence();
  });
}

}  // namespace
}  // namespace corr

bool winograd_fits(int64_t taps_h, int64_t taps_w, int64_t Ci, int64_t Ko) {
  // 1x2 and 2x1 (6 products for 8) gained nothing over their transforms.
  return direct_paths_enabled() && winograd_enabled() && taps_h >= 1 && taps_h <= 3 && taps_w >= 1 &&
         taps_w <= 3 && taps_h * taps_w >= 3 && Ci >= corr::kMinChannels && Ko >= corr::kMinChannels;
}

namespace corr {

template <typename T>
bool run_winograd(const Correlation<T>& c, const MicroKernel<T>& uk) {
  Plan plan;
  if (!applies(c, uk, &plan)) return false;
  if (c.in_strides[1] == 1 && c.out_strides[1] == 1) {
    winograd(c, uk, plan, true);
    return true;
  }
  // NCHW-like input or output (unit pixel step, checked in applies).
  through_channels_last_copies(c, [&](const Correlation<T>& d) { winograd(d, uk, plan, false); });
  return true;
}

template bool run_winograd<float>(const Correlation<float>&, const MicroKernel<float>&);
template bool run_winograd<double>(const Correlation<double>&, const MicroKernel<double>&);

}  // namespace corr
}  // namespace cpu
}  // namespace cnnops
