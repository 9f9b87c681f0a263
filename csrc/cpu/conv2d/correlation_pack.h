// Packing and addressing shared by the correlation's paths (conv_correlation.cpp:
// the im2col GEMMs; correlation_direct.cpp: the packing-free direct paths and the
// few-pixel path): the reduction cursor, filter and input panels, the cached
// filter form, bias padding and the tile store. Templates on the element type,
// for float and double.
#pragma once
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "../util/balanced_for.h"
#include "../util/buffer.h"
#include "../util/copy_row.h"
#include "../util/epilogue.h"
#include "../util/stream_stores.h"
#include "channels_last_copy.h"
#include "conv2d.h"
#include "conv_correlation.h"
#include "microkernel.h"

namespace cnnops {
namespace cpu {
namespace corr {
constexpr int64_t kKc = 256;         // reduction block
constexpr int64_t kBlockPanels = 8;  // pixel panels per task
constexpr int64_t kMinTasks = 8;     // split further when there are fewer tasks

enum class ReduceOrder { ChannelsOuter, TapsOuter };  // (ci, tr, ts) or (tr, ts, ci)

// A position in the reduction index, advanced one step at a time.
struct RedCursor {
  int64_t ci = 0, tr = 0, ts = 0;
  int64_t Ci, TR, TS;
  ReduceOrder order;
  RedCursor(int64_t Ci_, int64_t TR_, int64_t TS_, ReduceOrder o, int64_t idx)
      : Ci(Ci_), TR(TR_), TS(TS_), order(o) {
    if (order == ReduceOrder::ChannelsOuter) {
      ci = idx / (TR * TS);
      tr = idx / TS % TR;
      ts = idx % TS;
    } else {
      ci = idx % Ci;
      tr = idx / Ci / TS;
      ts = idx / Ci % TS;
    }
  }
  void advance() {
    if (order == ReduceOrder::ChannelsOuter) {
      if (++ts == TS) {
        ts = 0;
        if (++tr == TR) {
          tr = 0;
          ++ci;
        }
      }
    } else {
      if (++ci == Ci) {
        ci = 0;
        if (++ts == TS) {
          ts = 0;
          ++tr;
        }
      }
    }
  }
};

// Groups to split `panels` output-channel panels into, for `blocks` blocks of
// output on `threads` threads: the fewest groups, a divisor of panels (equal
// groups), that give the threads equal counts of tasks, else the most even
// shares any divisor gives. A function of the shape and the thread count only;
// each output element is still summed by one task in one order, so the results
// do not depend on it.
inline int64_t panel_splits(int64_t blocks, int64_t panels, int64_t threads) {
  int64_t best = 1;
  double best_share = 0;
  for (int64_t s = 1; s <= panels; ++s) {
    if (panels % s != 0) continue;
    const int64_t tasks = blocks * s;
    const double share = double(tasks) / double(ceil_div(tasks, threads) * threads);
    if (share > best_share + 1e-9) {
      best = s;
      best_share = share;
    }
    if (share >= 1.0 - 1e-9) break;
  }
  return best;
}

// Row blocks per image for the channels-last direct path: P output rows of
// qtiles tiles each, `outer` images x groups, on `threads` threads. A task
// copies the padded input rows its block reads (the block's rows plus the
// kernel's reach), so long blocks copy less twice: about 48 tiles a block
// where that leaves at least 8 tasks a thread, else 24, 16, then 8 tiles (the
// 64-channel 3x3 at 56x56, batch 16: 8 tiles, 2 rows, copied 4 rows a block;
// 48 tiles, 12 rows, copy 14). Blocks of equal row counts (14 rows: 7 + 7,
// not 8 + 6). A function of the shape and the thread count only.
inline int64_t direct_row_blocks(int64_t P, int64_t qtiles, int64_t outer, int64_t threads) {
  for (const int64_t tiles : {48, 24, 16}) {
    const int64_t blocks = ceil_div(P, std::max<int64_t>(1, tiles / qtiles));
    if (outer * blocks >= 8 * threads) return blocks;
  }
  return ceil_div(P, std::max<int64_t>(1, 8 / qtiles));
}

// Whether `rows` rows read side by side at a stride of `stride_bytes` crowd one
// L1 set: more of them on lines of one set of the 64 than it has ways (every x86
// L1 seen: 32-48 KiB, 8-12 ways, 64 sets of 64-byte lines). Rows of 1024 floats
// (4 KiB apart) all share a set: the channels-last 1x1 from 1024 or 2048 channels
// read its 14 A rows in place at 170 GFLOP/s on Zen 4 (8 ways) against 222 from
// 768 channels; rows of 512 (7 to a set) ran at 224.
inline bool rows_crowd_l1_set(int64_t stride_bytes, int64_t rows) {
  constexpr int64_t kSets = 64, kLine = 64, kMaxPerSet = 8;
  int64_t count[kSets] = {};
  for (int64_t i = 0; i < rows; ++i)
    if (++count[(i * stride_bytes / kLine) % kSets] > kMaxPerSet) return true;
  return false;
}

// Pixels per block for `items` pixels cut into panels of `width`, when `outer`
// (images x groups) tasks share each block index: whole panels, at most
// kBlockPanels of them, blocks equal to within one panel, and enough blocks for
// kMinTasks tasks when there are panels enough. at::parallel_for gives each
// thread an equal count of tasks, so equal tasks keep the threads equally busy
// (an output of 9 panels was one task of 8 and one of 1).
inline int64_t balanced_block(int64_t items, int64_t width, int64_t outer) {
  const int64_t panels = ceil_div(items, width);
  const int64_t blocks =
      std::max(ceil_div(panels, kBlockPanels), std::min(panels, ceil_div(kMinTasks, outer)));
  return ceil_div(panels, blocks) * width;
}

template <typename T>
int64_t reduction_size(const Correlation<T>& c) {
  return c.Ci * static_cast<int64_t>(c.hoff.size()) * static_cast<int64_t>(c.woff.size());
}

template <typename T>
double correlation_flops(const Correlation<T>& c) {
  return 2.0 * c.N * c.G * c.Ko * c.P * c.Q * reduction_size(c);
}

// Runs fn(d) on a copy d of correlation c in which an NCHW-like input and an
// NCHW-like output (unit pixel steps, channel strides of at most
// kMaxGatherStride) are channels-last buffers: the input copied in before, the
// output copied back after, by the ISA's transposing copies. A channels-last
// side is used as it is.
template <typename T, typename F>
void through_channels_last_copies(const Correlation<T>& c, const F& fn) {
  const int64_t C = c.G * c.Ci, K = c.G * c.Ko;
  const bool in_cl = c.in_strides[1] == 1, out_cl = c.out_strides[1] == 1;
  Correlation<T> d = c;
  AlignedBuffer<T> in(in_cl ? 0 : c.N * c.H * c.W * C), out(out_cl ? 0 : c.N * c.P * c.Q * K);
  if (!in_cl) {
    to_channels_last(c.in, c.in_strides, c.N, C, c.H, c.W, in.get(), d.in_strides);
    d.in = in.get();
  }
  if (!out_cl) {
    d.out = out.get();
    const int64_t cl[4] = {c.P * c.Q * K, 1, c.Q * K, K};
    std::copy(cl, cl + 4, d.out_strides);
  }
  fn(d);
  if (!out_cl) from_channels_last(out.get(), c.N, K, c.P, c.Q, c.out, c.out_strides);
}

// The tasks of this correlation on balanced_for_ranges (one thread if tiny):
// tasks a slow core has not started are taken by the other threads (on our
// shared 2-core VM: resnet50 at batch 1 under optimize_for_inference 13%
// faster, Xception 8.5%).
template <typename T, typename F>
void for_tasks(const Correlation<T>& c, int64_t tasks, const F& f) {
  balanced_for_ranges(tasks, task_grain(tasks, correlation_flops(c)), f);
}

// The reduction order in which the filter is contiguous (every tap, in order),
// or false.
template <typename T>
bool filter_in_place_order(const Correlation<T>& c, ReduceOrder* order) {
  const int64_t TR = c.hoff.size(), TS = c.woff.size();
  for (int64_t t = 0; t < TR; ++t)
    if (c.rtap[t] != c.rtap[0] + t) return false;
  for (int64_t t = 0; t < TS; ++t)
    if (c.stap[t] != c.stap[0] + t) return false;
  // Strides of axes of extent 1 do not matter.
  auto is = [](int64_t extent, int64_t stride, int64_t want) { return extent == 1 || stride == want; };
  if (is(TS, c.wt_s, 1) && is(TR, c.wt_r, TS) && is(c.Ci, c.wt_in, TR * TS)) {
    *order = ReduceOrder::ChannelsOuter;
    return true;
  }
  if (is(c.Ci, c.wt_in, 1) && is(TS, c.wt_s, c.Ci) && is(TR, c.wt_r, TS * c.Ci)) {
    *order = ReduceOrder::TapsOuter;
    return true;
  }
  return false;
}

// Filter micro-panels for every group and reduction block:
// dst[g][block][panel][kk][width], where block starts at kb0 and panel covers
// output channels panel*width .. +width (zero past Ko).
template <typename T>
void pack_filter(const Correlation<T>& c, ReduceOrder order, int64_t width, T* dst, int64_t block = kKc) {
  const int64_t red = reduction_size(c);
  const int64_t TR = c.hoff.size(), TS = c.woff.size();
  const int64_t kpad = round_up(c.Ko, width);
  const int64_t panels = kpad / width;
  ReduceOrder contiguous;
  const bool rows_contiguous = filter_in_place_order(c, &contiguous) && contiguous == order;
  const int64_t base = c.rtap[0] * c.wt_r + c.stap[0] * c.wt_s;
  // Output channels a few elements apart and taps adjacent (dgrad's view of a KCRS
  // filter): walk the filter in address order, (ci, channel, tap), and place each
  // value, rather than gather `width` channels per step across the whole filter.
  const bool source_order = !rows_contiguous && c.wt_out != 1 && c.wt_s == 1 && c.wt_out < c.wt_in;
  for_tasks(c, c.G * panels, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t g = task / panels, panel = task % panels;
      if (source_order) {
        const int64_t valid = std::max<int64_t>(0, std::min(width, c.Ko - panel * width));
        const T* wp = c.wt + g * c.wt_group + panel * width * c.wt_out;
        T* dg = dst + g * kpad * red;
        const bool one_block = red <= block;  // most filters: no division per element
        // A partial panel (the last one; the only one of a filter with few output
        // channels) is zeroed first, and only its valid channels are placed.
        if (valid < width)
          for (int64_t kb0 = 0; kb0 < red; kb0 += block) {
            const int64_t kc = std::min(block, red - kb0);
            std::fill_n(dg + kb0 * kpad + panel * kc * width, kc * width, T(0));
          }
        for (int64_t ci = 0; ci < c.Ci; ++ci)
          for (int64_t x = 0; x < valid; ++x)
            for (int64_t tr = 0; tr < TR; ++tr)
              for (int64_t ts = 0; ts < TS; ++ts) {
                const int64_t kk = order == ReduceOrder::ChannelsOuter ? (ci * TR + tr) * TS + ts
                                                                       : (tr * TS + ts) * c.Ci + ci;
                const T v = wp[x * c.wt_out + ci * c.wt_in + c.rtap[tr] * c.wt_r + c.stap[ts]];
                if (one_block) {
                  dg[(panel * red + kk) * width + x] = v;
                  continue;
                }
                const int64_t kb0 = kk / block * block, kc = std::min(block, red - kb0);
                dg[kb0 * kpad + panel * kc * width + (kk - kb0) * width + x] = v;
              }
        continue;
      }
      for (int64_t kb0 = 0; kb0 < red; kb0 += block) {
        const int64_t kc = std::min(block, red - kb0);
        // Steps outer, the panel's output channels inner: each step's `width` values
        // are written as whole cache lines.
        T* d = dst + g * kpad * red + kb0 * kpad + panel * kc * width;
        const int64_t valid = std::max<int64_t>(0, std::min(width, c.Ko - panel * width));
        const T* wp = c.wt + g * c.wt_group + panel * width * c.wt_out;
        if (rows_contiguous) {
          // Each output channel's reduction is one contiguous run of the filter:
          // read it 16 steps at a time (whole cache lines), write them transposed.
          for (int64_t k0 = 0; k0 < kc; k0 += 16) {
            const int64_t n = std::min<int64_t>(16, kc - k0);
            for (int64_t x = 0; x < width; ++x) {
              const T* src = wp + x * c.wt_out + base + kb0 + k0;
              T* dk = d + k0 * width + x;
              if (x < valid)
                for (int64_t t = 0; t < n; ++t) dk[t * width] = src[t];
              else
                for (int64_t t = 0; t < n; ++t) dk[t * width] = T(0);
            }
          }
          continue;
        }
        RedCursor cur(c.Ci, TR, TS, order, kb0);
        for (int64_t kk = 0; kk < kc; ++kk, cur.advance()) {
          const T* src = wp + cur.ci * c.wt_in + c.rtap[cur.tr] * c.wt_r + c.stap[cur.ts] * c.wt_s;
          T* dk = d + kk * width;
          for (int64_t x = 0; x < valid; ++x) dk[x] = src[x * c.wt_out];
          for (int64_t x = valid; x < width; ++x) dk[x] = T(0);
        }
      }
    }
  });
}

// The name of a packed filter form: everything pack_filter's output depends on.
template <typename T>
std::string filter_form_name(const Correlation<T>& c, ReduceOrder order, int64_t width, int64_t block) {
  std::string name = "correlation/" + std::to_string(sizeof(T)) + "/" +
                     std::to_string(static_cast<int>(order)) + "/" + std::to_string(width) + "/" +
                     std::to_string(block);
  for (int64_t v : {c.G, c.Ko, c.Ci, c.wt_group, c.wt_out, c.wt_in, c.wt_r, c.wt_s})
    name += "/" + std::to_string(v);
  for (const std::vector<int64_t>* taps : {&c.rtap, &c.stap}) {
    name += "/";
    for (int64_t t : *taps) name += std::to_string(t) + ",";
  }
  return name;
}

// pack_filter's output, from the filter cache when the call has one.
template <typename T>
std::shared_ptr<const T> packed_filter(const Correlation<T>& c, ReduceOrder order, int64_t width,
                                       int64_t block = kKc) {
  const size_t count = c.G * round_up(c.Ko, width) * reduction_size(c);
  // The name is built only when there is a cache to look it up in.
  const std::string name =
      c.filter_cache != nullptr ? filter_form_name(c, order, width, block) : std::string();
  return cached_pack<T>(c.filter_cache, name, count,
                        [&](T* dst) { pack_filter(c, order, width, dst, block); });
}

// Bias per group padded with zeros to a whole number of panels (or all zeros).
template <typename T>
std::vector<T> padded_bias(const Correlation<T>& c, int64_t width) {
  const int64_t kpad = round_up(c.Ko, width);
  std::vector<T> b(c.G * kpad, T(0));
  if (c.bias != nullptr)
    for (int64_t g = 0; g < c.G; ++g)
      for (int64_t ko = 0; ko < c.Ko; ++ko) b[g * kpad + ko] = c.bias[g * c.Ko + ko];
  return b;
}

// Pixels-on-vector im2col panels for image n, group g, reduction [kb0, kb0+kc)
// and flat output pixels [j0, j0+jn): dst[panel][kk][NR].
template <typename T>
void pack_input_pixel_panels(const Correlation<T>& c, int64_t n, int64_t g, int64_t kb0, int64_t kc,
                             int64_t j0, int64_t jn, int64_t nr, T* dst,
                             ReduceOrder order = ReduceOrder::ChannelsOuter) {
  const int64_t* s = c.in_strides;
  // The output rows each panel touches: (p, q, length, offset in the panel).
  struct Segment {
    int64_t p, q, len, at;
  };
  const int64_t panels = ceil_div(jn, nr);
  std::vector<Segment> segments;
  std::vector<int64_t> first(panels + 1);
  for (int64_t panel = 0; panel < panels; ++panel) {
    first[panel] = segments.size();
    const int64_t count = std::min(nr, jn - panel * nr), j = j0 + panel * nr;
    int64_t p = j / c.Q, q = j % c.Q;
    for (int64_t done = 0; done < count; p += 1, q = 0) {
      const int64_t len = std::min(count - done, c.Q - q);
      segments.push_back({p, q, len, done});
      done += len;
    }
  }
  first[panels] = segments.size();
  RedCursor cur(c.Ci, c.hoff.size(), c.woff.size(), order, kb0);
  for (int64_t kk = 0; kk < kc; ++kk, cur.advance()) {
    const T* plane = c.in + n * s[0] + (g * c.Ci + cur.ci) * s[1];
    const int64_t ho = c.hoff[cur.tr], wo = c.woff[cur.ts];
    for (int64_t panel = 0; panel < panels; ++panel) {
      T* d = dst + panel * kc * nr + kk * nr;
      int64_t filled = 0;
      for (int64_t i = first[panel]; i < first[panel + 1]; ++i) {
        const Segment& sg = segments[i];
        const int64_t h = sg.p * c.step_h + ho;
        if (h >= 0 && h < c.H) {
          copy_row_segment(plane + h * s[2], c.W, sg.q * c.step_w + wo, c.step_w, s[3], sg.len, d + sg.at, 1);
        } else {
          for (int64_t t = 0; t < sg.len; ++t) d[sg.at + t] = T(0);
        }
        filled = sg.at + sg.len;
      }
      for (int64_t t = filled; t < nr; ++t) d[t] = T(0);
    }
  }
}

// Channels-on-vector im2col panels for group g, reduction [kb0, kb0+kc) and
// flat pixels m0 .. m0+mn over (n, p, q): dst[panel][kk][MR], or with
// `rows_major` dst[panel][MR][kk] (the strided-A micro-kernels' rows).
template <typename T>
void pack_input_channel_panels(const Correlation<T>& c, int64_t g, int64_t kb0, int64_t kc, int64_t m0,
                               int64_t mn, int64_t mr, T* dst, bool rows_major = false) {
  const int64_t* s = c.in_strides;
  const int64_t TS = c.woff.size();
  const int64_t panels = ceil_div(mn, mr);
  const int64_t kstep = rows_major ? 1 : mr;
  for (int64_t panel = 0; panel < panels; ++panel) {
    for (int64_t ii = 0; ii < mr; ++ii) {
      T* d = dst + panel * kc * mr + (rows_major ? ii * kc : ii);
      const int64_t m = m0 + panel * mr + ii;
      if (panel * mr + ii >= mn) {
        for (int64_t kk = 0; kk < kc; ++kk) d[kk * kstep] = T(0);
        continue;
      }
      const int64_t n = m / (c.P * c.Q), p = m / c.Q % c.P, q = m % c.Q;
      const T* image = c.in + n * s[0] + g * c.Ci * s[1];
      RedCursor cur(c.Ci, c.hoff.size(), TS, ReduceOrder::TapsOuter, kb0);
      for (int64_t kk = 0; kk < kc;) {
        const int64_t run = std::min(c.Ci - cur.ci, kc - kk);
        const int64_t h = p * c.step_h + c.hoff[cur.tr];
        const int64_t w = q * c.step_w + c.woff[cur.ts];
        if (h >= 0 && h < c.H && w >= 0 && w < c.W) {
          const T* src = image + h * s[2] + w * s[3] + cur.ci * s[1];
          for (int64_t t = 0; t < run; ++t) d[(kk + t) * kstep] = src[t * s[1]];
        } else {
          for (int64_t t = 0; t < run; ++t) d[(kk + t) * kstep] = T(0);
        }
        kk += run;
        cur.ci = 0;
        if (++cur.ts == TS) {
          cur.ts = 0;
          ++cur.tr;
        }
      }
    }
  }
}

constexpr int64_t kMinColumnRun = 4;  // shorter runs of rows are stored element by element

// Writes (or, with `add`, adds) a rows x n tile (row stride ld) to
// out[row_off[i] + col_off[t]], reading tile column col_src[t]. The loop over
// whichever of rows and columns is contiguous in the output runs innermost;
// columns that become contiguous runs (NCHW-like outputs) take the active
// ISA's gathering store.
template <typename T>
void store_tile(const T* tile, int64_t ld, int64_t rows, const int64_t* row_off, int64_t n,
                const int64_t* col_src, const int64_t* col_off, T* out, bool add, bool columns_inner) {
  bool dense = n > 0;  // tile columns 0..n-1 to consecutive addresses: copy rows
  for (int64_t t = 0; t < n && dense; ++t) dense = col_src[t] == t && col_off[t] == col_off[0] + t;
  if (dense) {
    for (int64_t i = 0; i < rows; ++i) {
      const T* __restrict src = tile + i * ld;
      T* __restrict dst = out + row_off[i] + col_off[0];
      if (add)
        for (int64_t t = 0; t < n; ++t) dst[t] += src[t];
      else
        for (int64_t t = 0; t < n; ++t) dst[t] = src[t];
    }
  } else if (columns_inner) {
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t t = 0; t < n; ++t) {
        T& o = out[row_off[i] + col_off[t]];
        o = add ? o + tile[i * ld + col_src[t]] : tile[i * ld + col_src[t]];
      }
  } else {
    // Runs of rows at consecutive addresses (pixels of one NCHW plane: a tile of
    // flat pixels breaks only where it crosses an image) take the gathering store.
    for (int64_t i0 = 0, i1; i0 < rows; i0 = i1) {
      for (i1 = i0 + 1; i1 < rows && row_off[i1] == row_off[i0] + (i1 - i0);) ++i1;
      if (i1 - i0 >= kMinColumnRun) {
        active_microkernel<T>().store_columns(tile + i0 * ld, ld, i1 - i0, n, col_src, col_off, out + row_off[i0],
                                              add, false);
        continue;
      }
      for (int64_t t = 0; t < n; ++t)
        for (int64_t i = i0; i < i1; ++i) {
          T& o = out[row_off[i] + col_off[t]];
          o = add ? o + tile[i * ld + col_src[t]] : tile[i * ld + col_src[t]];
        }
    }
  }
}

// The fused output stage, if any, on flat output pixels [m0, m0 + mn) (over all
// images) and global output channels [k0, k0 + kn): called by each path right
// after the block's last write.
template <typename T>
inline void finish_pixels(const Correlation<T>& c, int64_t m0, int64_t mn, int64_t k0, int64_t kn) {
  if (c.epilogue != nullptr)
    apply_epilogue_pixels(*c.epilogue, c.out, c.out_strides, c.P, c.Q, m0, mn, k0, kn);
}

// The correlation's fused stage as a TileStage (microkernel.h), when it has that
// form (act and post each none, ReLU or ReLU6; the residual, if any, with
// contiguous channels) and is not the identity; else false. `flat_pixels`: the
// tiles run over flat pixels that may cross output rows and images (the 1x1
// GEMM), so the residual's pixels must be at one step as well.
template <typename T>
bool tile_stage_form(const Correlation<T>& c, bool flat_pixels, TileStage<T>* s) {
  const Epilogue* e = c.epilogue;
  if (e == nullptr || e->identity()) return false;
  auto clamp_of = [](Activation a, bool* on, T* lo, T* hi) {
    *on = a != Activation::None;
    *lo = T(0);
    *hi = a == Activation::ReLU6 ? T(6) : std::numeric_limits<T>::infinity();
    return a == Activation::None || a == Activation::ReLU || a == Activation::ReLU6;
  };
  if (!clamp_of(e->act, &s->act, &s->act_lo, &s->act_hi) || !clamp_of(e->post, &s->post, &s->post_lo, &s->post_hi))
    return false;
  if (e->residual != nullptr) {
    const int64_t* rs = e->residual_strides;
    if (rs[1] != 1) return false;
    if (flat_pixels && (rs[2] != c.Q * rs[3] || (c.N > 1 && rs[0] != c.P * rs[2]))) return false;
    s->ldr = rs[3];
  }
  return true;
}

// How the channels-last paths store a full tile in place on its last reduction
// block: through `stage` in registers when the fused stage has a TileStage form
// (`staged`; otherwise the caller applies it after each block, finish_pixels),
// and with non-temporal stores (stage.stream, ../util/stream_stores.h) when the
// output is larger than the threads' L2 caches and no stage is left to apply
// after the block (it would read the output back).
template <typename T>
struct TileStores {
  TileStage<T> stage;
  bool staged = false;
  bool in_registers = false;  // staged or streamed: full tiles store through `stage`

  // The stage of the full tile whose element (0, 0) is flat output pixel m,
  // channel k (its residual pointer filled in), in *buf; null: plain stores.
  const TileStage<T>* at(const Correlation<T>& c, int64_t m, int64_t k, TileStage<T>* buf) const {
    if (!in_registers) return nullptr;
    *buf = stage;
    if (c.epilogue != nullptr && c.epilogue->residual != nullptr) {
      const int64_t* rs = c.epilogue->residual_strides;
      const int64_t n = m / (c.P * c.Q), p = m / c.Q % c.P, q = m % c.Q;
      buf->residual = static_cast<const T*>(c.epilogue->residual) + n * rs[0] + p * rs[2] + q * rs[3] + k;
    }
    return buf;
  }
};

template <typename T>
TileStores<T> tile_stores(const Correlation<T>& c, bool flat_pixels) {
  TileStores<T> t;
  t.staged = tile_stage_form(c, flat_pixels, &t.stage);
  const bool identity = c.epilogue == nullptr || c.epilogue->identity();
  t.stage.stream = (t.staged || identity) && stream_output(c.N * c.G * c.Ko * c.P * c.Q * int64_t(sizeof(T)));
  t.in_registers = t.staged || t.stage.stream;
  return t;
}

// store_tile for the channels-on-vector orientation: tile rows are the flat
// output pixels m .. m + rows - 1 (over all images), columns `cols` channels
// from out's channel 0.
// off[i] = the offset (strides s: n, -, p, q) of flat output pixel m + i, for i <
// count: divisions for the first pixel only, then a walk along q, p, n (dividing
// per pixel cost more than storing a narrow tile: a 1x1 to 3 channels, 3x slower).
inline void pixel_offsets(int64_t m, int64_t count, int64_t P, int64_t Q, const int64_t* s, int64_t* off) {
  int64_t n = m / (P * Q), p = m / Q % P, q = m % Q;
  for (int64_t i = 0; i < count; ++i) {
    off[i] = n * s[0] + p * s[2] + q * s[3];
    if (++q == Q) {
      q = 0;
      if (++p == P) {
        p = 0;
        ++n;
      }
    }
  }
}

template <typename T>
void store_pixel_rows_tile(const Correlation<T>& c, const T* tile, int64_t ld, int64_t m, int64_t rows,
                           int64_t cols, T* out, bool add) {
  const int64_t* os = c.out_strides;
  int64_t row_off[64], col_src[64], col_off[64];
  pixel_offsets(m, rows, c.P, c.Q, os, row_off);
  for (int64_t jj = 0; jj < cols; ++jj) {
    col_src[jj] = jj;
    col_off[jj] = jj * os[1];
  }
  store_tile(tile, ld, rows, row_off, cols, col_src, col_off, out, add, os[1] < os[3]);
}

template <typename T>
void fill_bias_or_zero(const Correlation<T>& c) {
  const int64_t* s = c.out_strides;
  const int64_t K = c.G * c.Ko;
  // A bandwidth pass (a strided dgrad's phases without taps): grains by elements,
  // not by the correlation's FLOPs, which are none.
  if (s[1] < s[3]) {  // channels inner (channels_last): pixel by pixel, in address order
    at::parallel_for(0, c.N * c.P, grain_for(c.Q * K), [&](int64_t begin, int64_t end) {
      for (int64_t np = begin; np < end; ++np) {
        T* row = c.out + np / c.P * s[0] + np % c.P * s[2];
        for (int64_t j = 0; j < c.Q; ++j)
          for (int64_t k = 0; k < K; ++k) row[j * s[3] + k * s[1]] = c.bias != nullptr ? c.bias[k] : T(0);
        finish_pixels(c, np * c.Q, c.Q, 0, K);
      }
    });
    return;
  }
  at::parallel_for(0, c.N * K, grain_for(c.P * c.Q), [&](int64_t begin, int64_t end) {
    for (int64_t nk = begin; nk < end; ++nk) {
      const int64_t n = nk / K, k = nk % K;
      const T v = c.bias != nullptr ? c.bias[k] : T(0);
      for (int64_t i = 0; i < c.P; ++i)
        for (int64_t j = 0; j < c.Q; ++j) c.out[n * s[0] + k * s[1] + i * s[2] + j * s[3]] = v;
      finish_pixels(c, n * c.P * c.Q, c.P * c.Q, k, 1);
    }
  });
}

// One tap at input offset (0, 0) (a 1x1 convolution without padding), with the
// direct paths on: each output pixel reads one input pixel, which the GEMM can
// read where it lies instead of packing it.
template <typename T>
bool single_tap_at_origin(const Correlation<T>& c) {
  return direct_paths_enabled() && c.hoff.size() == 1 && c.woff.size() == 1 && c.hoff[0] == 0 && c.woff[0] == 0;
}

// ...at unit steps, the output the input's size: output pixel m reads input pixel m.
template <typename T>
bool single_tap_in_place(const Correlation<T>& c) {
  return single_tap_at_origin(c) && c.step_h == 1 && c.step_w == 1 && c.P == c.H && c.Q == c.W;
}

// ...at steps other than 1 (a strided 1x1), every pixel read inside the image.
template <typename T>
bool strided_single_tap(const Correlation<T>& c) {
  return single_tap_at_origin(c) && (c.step_h != 1 || c.step_w != 1) && (c.P - 1) * c.step_h < c.H &&
         (c.Q - 1) * c.step_w < c.W;
}

// The paths of correlation_direct.cpp; each returns false when it does not apply.
template <typename T>
bool run_pixels_direct(const Correlation<T>& c, const MicroKernel<T>& uk);
template <typename T>
bool run_channels_direct(const Correlation<T>& c, const MicroKernel<T>& uk);
template <typename T>
bool run_filter_in_place(const Correlation<T>& c, const MicroKernel<T>& uk);
template <typename T>
bool run_packed_few_pixels(const Correlation<T>& c, const MicroKernel<T>& uk);
// correlation_winograd.cpp: unit-step cases of 1-3 consecutive taps each way, or false.
template <typename T>
bool run_winograd(const Correlation<T>& c, const MicroKernel<T>& uk);

}  // namespace corr
}  // namespace cpu
}  // namespace cnnops
