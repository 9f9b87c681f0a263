// Implicit-GEMM grouped correlation (see conv_correlation.h) for float and double.
//
// Two GEMM orientations, chosen by the output layout so the micro-kernel's vector
// dimension is the contiguous one in memory:
//  - pixels-on-vector (NCHW-like outputs): per (image, group, block of pixels),
//    C[Ko x pixels] = Wpacked[Ko x red] * im2col[red x pixels], red = (ci, tr, ts);
//  - channels-on-vector (channels_last outputs, or few pixels per image): per
//    (group, block of pixels over all images), C[pixels x Ko] = im2col * Wpacked,
//    red = (tr, ts, ci), so each tap reads a contiguous run of input channels.
// The filter is packed once into micro-panels for all reduction blocks; each
// task packs its own slice of the input (zero-filling padding) per reduction
// block of kKc and runs the micro-kernel over it. Tasks run on at::parallel_for.
// Full tiles of a flat output are written in place; edge tiles and strided
// outputs go through a small tile buffer and a scatter.
#include "conv_correlation.h"

#include "conv2d.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <string>

#include "../util/buffer.h"
#include "../util/copy_row.h"
#include "microkernel.h"

namespace cnnops {
namespace cpu {
namespace {

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

template <typename T>
int64_t reduction_size(const Correlation<T>& c) {
  return c.Ci * static_cast<int64_t>(c.hoff.size()) * static_cast<int64_t>(c.woff.size());
}

template <typename T>
double correlation_flops(const Correlation<T>& c) {
  return 2.0 * c.N * c.G * c.Ko * c.P * c.Q * reduction_size(c);
}

// parallel_for over `tasks` tasks of this correlation (one thread if tiny).
template <typename T, typename F>
void for_tasks(const Correlation<T>& c, int64_t tasks, const F& f) {
  at::parallel_for(0, tasks, task_grain(tasks, correlation_flops(c)), f);
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
  for_tasks(c, c.G * panels, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t g = task / panels, panel = task % panels;
      for (int64_t kb0 = 0; kb0 < red; kb0 += block) {
        const int64_t kc = std::min(block, red - kb0);
        // Steps outer, the panel's output channels inner: each step's `width` values
        // are written as whole cache lines.
        T* d = dst + g * kpad * red + kb0 * kpad + panel * kc * width;
        const int64_t valid = std::max<int64_t>(0, std::min(width, c.Ko - panel * width));
        const T* wp = c.wt + g * c.wt_group + panel * width * c.wt_out;
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
  return cached_pack<T>(c.filter_cache, filter_form_name(c, order, width, block), count,
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
// flat pixels m0 .. m0+mn over (n, p, q): dst[panel][kk][MR].
template <typename T>
void pack_input_channel_panels(const Correlation<T>& c, int64_t g, int64_t kb0, int64_t kc, int64_t m0,
                               int64_t mn, int64_t mr, T* dst) {
  const int64_t* s = c.in_strides;
  const int64_t TS = c.woff.size();
  const int64_t panels = ceil_div(mn, mr);
  for (int64_t panel = 0; panel < panels; ++panel) {
    for (int64_t ii = 0; ii < mr; ++ii) {
      T* d = dst + panel * kc * mr + ii;
      const int64_t m = m0 + panel * mr + ii;
      if (panel * mr + ii >= mn) {
        for (int64_t kk = 0; kk < kc; ++kk) d[kk * mr] = T(0);
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
          for (int64_t t = 0; t < run; ++t) d[(kk + t) * mr] = src[t * s[1]];
        } else {
          for (int64_t t = 0; t < run; ++t) d[(kk + t) * mr] = T(0);
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

// Writes (or, with `add`, adds) a rows x n tile (row stride ld) to
// out[row_off[i] + col_off[t]], reading tile column col_src[t]. The loop over
// whichever of rows and columns is contiguous in the output runs innermost.
template <typename T>
void store_tile(const T* tile, int64_t ld, int64_t rows, const int64_t* row_off, int64_t n,
                const int64_t* col_src, const int64_t* col_off, T* out, bool add, bool columns_inner) {
  if (columns_inner) {
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t t = 0; t < n; ++t) {
        T& o = out[row_off[i] + col_off[t]];
        o = add ? o + tile[i * ld + col_src[t]] : tile[i * ld + col_src[t]];
      }
  } else {
    for (int64_t t = 0; t < n; ++t)
      for (int64_t i = 0; i < rows; ++i) {
        T& o = out[row_off[i] + col_off[t]];
        o = add ? o + tile[i * ld + col_src[t]] : tile[i * ld + col_src[t]];
      }
  }
}

template <typename T>
void fill_bias_or_zero(const Correlation<T>& c) {
  const int64_t* s = c.out_strides;
  const int64_t K = c.G * c.Ko;
  for_tasks(c, c.N * K, [&](int64_t begin, int64_t end) {
    for (int64_t nk = begin; nk < end; ++nk) {
      const int64_t n = nk / K, k = nk % K;
      const T v = c.bias != nullptr ? c.bias[k] : T(0);
      for (int64_t i = 0; i < c.P; ++i)
        for (int64_t j = 0; j < c.Q; ++j) c.out[n * s[0] + k * s[1] + i * s[2] + j * s[3]] = v;
    }
  });
}

// A single tap at offset 0 with unit steps and the output the input's size (a
// 1x1 convolution without padding): output pixel m reads input pixel m, so
// the GEMM can read the input where it lies instead of packing it.
template <typename T>
bool single_tap_in_place(const Correlation<T>& c) {
  return direct_paths_enabled() && c.hoff.size() == 1 && c.woff.size() == 1 && c.hoff[0] == 0 &&
         c.woff[0] == 0 && c.step_h == 1 && c.step_w == 1 && c.P == c.H && c.Q == c.W;
}

template <typename T>
void run_pixels_on_vector(const Correlation<T>& c, const MicroKernel<T>& uk) {
  const int64_t MR = uk.mr, NR = uk.nr;
  const int64_t red = reduction_size(c);
  const int64_t kpad = round_up(c.Ko, MR);
  const std::shared_ptr<const T> filter = packed_filter(c, ReduceOrder::ChannelsOuter, MR);
  const std::vector<T> bias = padded_bias(c, MR);
  const int64_t* os = c.out_strides;
  const bool flat = os[3] == 1 && os[2] == c.Q;
  const int64_t pixels = c.P * c.Q, block = kBlockPanels * NR;
  const int64_t blocks = ceil_div(pixels, block);
  const AccInit first = c.bias != nullptr ? AccInit::RowBias : AccInit::Zero;
  // Flat NCHW planes of a 1x1 convolution: each B row (one channel's NR pixels)
  // is read in place; only a plane's last, partial panel is packed.
  const int64_t* is = c.in_strides;
  const bool in_place = single_tap_in_place(c) && is[3] == 1 && is[2] == c.W;
  std::vector<int64_t> boff(kKc + kPrefetchSteps, 0);
  if (in_place)
    for (int64_t k = 0; k < kKc; ++k) boff[k] = k * is[1];

  for_tasks(c, c.N * c.G * blocks, [&](int64_t begin, int64_t end) {
    AlignedBuffer<T> panels(kKc * block);
    T tile[32 * 64];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / (c.G * blocks), g = task / blocks % c.G;
      const int64_t j0 = task % blocks * block, jn = std::min(block, pixels - j0);
      T* out_ng = c.out + n * os[0] + g * c.Ko * os[1];
      const int64_t full = in_place ? jn / NR : 0;  // panels read in place
      for (int64_t kb0 = 0; kb0 < red; kb0 += kKc) {
        const int64_t kc = std::min(kKc, red - kb0);
        if (full * NR < jn)
          pack_input_pixel_panels(c, n, g, kb0, kc, j0 + full * NR, jn - full * NR, NR, panels.get());
        const T* in_place_b = c.in + n * is[0] + (g * c.Ci + kb0) * is[1];
        // The B panel (kc x NR pixels) stays in L1 while the filter panels stream.
        for (int64_t np = 0; np < ceil_div(jn, NR); ++np) {
          const T* b = panels.get() + (np - full) * kc * NR;
          const int64_t cols = std::min(NR, jn - np * NR), j = j0 + np * NR;
          for (int64_t mp = 0; mp < kpad / MR; ++mp) {
            const T* a = filter.get() + g * kpad * red + kb0 * kpad + mp * kc * MR;
            const T* brow = bias.data() + g * kpad + mp * MR;
            const int64_t rows = std::min(MR, c.Ko - mp * MR);
            const AccInit init = kb0 == 0 ? first : AccInit::Load;
            if (np < full) {
              T* o = flat && rows == MR ? out_ng + mp * MR * os[1] + j : tile;
              uk.fn_boff(kc, a, in_place_b + j, boff.data(), o, o == tile ? NR : os[1],
                         o == tile && kb0 > 0 ? AccInit::Zero : init, brow);
              if (o != tile) continue;
            } else if (flat && rows == MR && cols == NR) {
              uk.fn(kc, a, b, out_ng + mp * MR * os[1] + j, os[1], init, brow);
              continue;
            } else {
              uk.fn(kc, a, b, tile, NR, kb0 == 0 ? first : AccInit::Zero, brow);
            }
            int64_t row_off[64], col_src[64], col_off[64];
            for (int64_t i = 0; i < rows; ++i) row_off[i] = i * os[1];
            for (int64_t jj = 0; jj < cols; ++jj) {
              col_src[jj] = jj;
              col_off[jj] = (j + jj) / c.Q * os[2] + (j + jj) % c.Q * os[3];
            }
            store_tile(tile, NR, rows, row_off, cols, col_src, col_off, out_ng + mp * MR * os[1], kb0 > 0,
                       os[3] < os[1]);
          }
        }
      }
    }
  });
}

template <typename T>
void run_channels_on_vector(const Correlation<T>& c, const MicroKernel<T>& uk) {
  const int64_t MR = uk.mr, NR = uk.nr;
  const int64_t red = reduction_size(c);
  const int64_t kpad = round_up(c.Ko, NR);
  const std::shared_ptr<const T> filter = packed_filter(c, ReduceOrder::TapsOuter, NR);
  const std::vector<T> bias = padded_bias(c, NR);
  const int64_t* os = c.out_strides;
  const bool flat = os[1] == 1 && os[2] == c.Q * os[3] && os[0] == c.P * c.Q * os[3];
  const int64_t pixels = c.N * c.P * c.Q, block = kBlockPanels * MR;
  const int64_t blocks = ceil_div(pixels, block);
  const AccInit first = c.bias != nullptr ? AccInit::ColBias : AccInit::Zero;
  // Few pixels (deep layers at small batch) give few pixel blocks: split the
  // output-channel panels too, so every thread has work (each output element is
  // still summed by one task in one order).
  const int64_t npanels = kpad / NR;
  const int64_t splits = std::min(npanels, ceil_div(kMinTasks, c.G * blocks));
  const int64_t split_panels = ceil_div(npanels, splits);

  // Flat channels-last pixels of a 1x1 convolution: each A row (one pixel's
  // channels) is read in place; only the last, partial tile is packed.
  const int64_t* is = c.in_strides;
  const bool in_place =
      single_tap_in_place(c) && is[1] == 1 && is[2] == c.W * is[3] && (c.N == 1 || is[0] == c.H * is[2]);
  const int64_t zero_offset = 0;

  for_tasks(c, c.G * blocks * splits, [&](int64_t begin, int64_t end) {
    AlignedBuffer<T> panels(kKc * block);
    T tile[32 * 64];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t g = task / (blocks * splits), blk = task / splits % blocks;
      const int64_t np0 = task % splits * split_panels;
      const int64_t np1 = std::min(npanels, np0 + split_panels);
      const int64_t m0 = blk * block, mn = std::min(block, pixels - m0);
      T* out_g = c.out + g * c.Ko * os[1];
      if (np0 >= np1) continue;
      const int64_t full = in_place ? mn / MR : 0;  // tiles read in place
      for (int64_t kb0 = 0; kb0 < red; kb0 += kKc) {
        const int64_t kc = std::min(kKc, red - kb0);
        if (full * MR < mn)
          pack_input_channel_panels(c, g, kb0, kc, m0 + full * MR, mn - full * MR, MR, panels.get());
        for (int64_t np = np0; np < np1; ++np) {
          const T* b = filter.get() + g * kpad * red + kb0 * kpad + np * kc * NR;
          const T* bcol = bias.data() + g * kpad + np * NR;
          const int64_t cols = std::min(NR, c.Ko - np * NR);
          for (int64_t mp = 0; mp < ceil_div(mn, MR); ++mp) {
            const T* a = panels.get() + (mp - full) * kc * MR;
            const int64_t rows = std::min(MR, mn - mp * MR), m = m0 + mp * MR;
            if (mp < full) {
              const T* arow = c.in + m * is[3] + (g * c.Ci + kb0) * is[1];
              const AccInit init = kb0 == 0 ? first : AccInit::Load;
              if (flat && cols == NR) {
                uk.fn_arows(1, kc, &zero_offset, arow, is[3], b, out_g + m * os[3] + np * NR, os[3], init,
                            bcol);
                continue;
              }
              uk.fn_arows(1, kc, &zero_offset, arow, is[3], b, tile, NR, kb0 == 0 ? first : AccInit::Zero,
                          bcol);
            } else if (flat && rows == MR && cols == NR) {
              uk.fn(kc, a, b, out_g + m * os[3] + np * NR, os[3], kb0 == 0 ? first : AccInit::Load, bcol);
              continue;
            } else {
              uk.fn(kc, a, b, tile, NR, kb0 == 0 ? first : AccInit::Zero, bcol);
            }
            int64_t row_off[64], col_src[64], col_off[64];
            for (int64_t i = 0; i < rows; ++i)
              row_off[i] =
                  (m + i) / (c.P * c.Q) * os[0] + (m + i) / c.Q % c.P * os[2] + (m + i) % c.Q * os[3];
            for (int64_t jj = 0; jj < cols; ++jj) {
              col_src[jj] = jj;
              col_off[jj] = jj * os[1];
            }
            store_tile(tile, NR, rows, row_off, cols, col_src, col_off, out_g + np * NR * os[1], kb0 > 0,
                       os[1] < os[3]);
          }
        }
      }
    }
  });
}

// ----------------------------------------------------------------------------
// Direct paths: the input is copied once into a zero-padded buffer that covers
// every tap of every output pixel, and the micro-kernel reads it in place, so
// there is no im2col packing at all.

constexpr double kMinTileUse = 0.75;  // below this fraction of useful lanes: im2col path
constexpr int64_t kMaxPadBytes = int64_t(1) << 30;

// The padded extent along one axis: padded index i' holds input index i' + lo.
struct PadAxis {
  int64_t lo = 0, size = 0;
};

inline PadAxis pad_axis(const std::vector<int64_t>& off, int64_t out, int64_t step) {
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
  const int64_t flat = c.P * pw.size, block = kBlockPanels * NR, blocks = ceil_div(flat, block);
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
          uk.fn_boff(red, filter.get() + g * kpad * red + mp * red * MR, in_ng + j, koff.data(), tile, NR,
                     init, bias.data() + g * kpad + mp * MR);
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
      }
    }
  });
  return true;
}

// Channels-last (any steps): one (image, H', W', C) padded copy; a tile is MR
// consecutive output pixels of one output row, whose taps are rows of the copy
// at a fixed stride, read in place by the micro-kernel's strided-A variant.
template <typename T>
bool run_channels_direct(const Correlation<T>& c, const MicroKernel<T>& uk) {
  const int64_t MR = uk.mr, NR = uk.nr, C = c.G * c.Ci, TR = c.hoff.size(), TS = c.woff.size();
  if (double(c.Q) / round_up(c.Q, MR) < kMinTileUse) return false;
  const PadAxis ph = pad_axis(c.hoff, c.P, c.step_h), pw = pad_axis(c.woff, c.Q, c.step_w);
  const int64_t row = pw.size * C, image = ph.size * row, slack = (MR * c.step_w + pw.size) * C;
  if ((c.N * image + slack) * int64_t(sizeof(T)) > kMaxPadBytes) return false;

  AlignedBuffer<T> xpad(c.N * image + slack);
  std::fill(xpad.get() + c.N * image, xpad.get() + c.N * image + slack, T(0));
  const int64_t* s = c.in_strides;
  for_tasks(c, c.N * ph.size, [&](int64_t begin, int64_t end) {
    for (int64_t nh = begin; nh < end; ++nh) {
      const int64_t n = nh / ph.size, h = nh % ph.size + ph.lo;
      T* dst = xpad.get() + nh * row;
      for (int64_t wp = 0; wp < pw.size; ++wp) {
        const int64_t w = wp + pw.lo;
        T* d = dst + wp * C;
        if (h < 0 || h >= c.H || w < 0 || w >= c.W) {
          std::fill(d, d + C, T(0));
          continue;
        }
        const T* src = c.in + n * s[0] + h * s[2] + w * s[3];
        if (s[1] == 1) std::copy(src, src + C, d);
        else
          for (int64_t ch = 0; ch < C; ++ch) d[ch] = src[ch * s[1]];
      }
    }
  });

  const int64_t red = reduction_size(c), kpad = round_up(c.Ko, NR);
  const std::shared_ptr<const T> filter = packed_filter(c, ReduceOrder::TapsOuter, NR, red);
  const std::vector<T> bias = padded_bias(c, NR);
  std::vector<int64_t> toff;
  for (int64_t tr = 0; tr < TR; ++tr)
    for (int64_t ts = 0; ts < TS; ++ts) toff.push_back((c.hoff[tr] - ph.lo) * row + (c.woff[ts] - pw.lo) * C);

  const int64_t* os = c.out_strides;
  const bool direct_store = os[1] == 1;
  const int64_t qtiles = ceil_div(c.Q, MR);
  const int64_t rows_per_task = std::max<int64_t>(1, 8 / qtiles);
  const int64_t row_blocks = ceil_div(c.P, rows_per_task);
  const AccInit init = c.bias != nullptr ? AccInit::ColBias : AccInit::Zero;
  for_tasks(c, c.N * c.G * row_blocks, [&](int64_t begin, int64_t end) {
    T tile[32 * 64];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / (c.G * row_blocks), g = task / row_blocks % c.G;
      const int64_t p0 = task % row_blocks * rows_per_task, p1 = std::min(c.P, p0 + rows_per_task);
      for (int64_t np = 0; np < kpad / NR; ++np) {
        const T* b = filter.get() + g * kpad * red + np * red * NR;
        const T* bcol = bias.data() + g * kpad + np * NR;
        const int64_t cols = std::min(NR, c.Ko - np * NR);
        for (int64_t p = p0; p < p1; ++p) {
          for (int64_t qt = 0; qt < qtiles; ++qt) {
            const int64_t q0 = qt * MR, rows = std::min(MR, c.Q - q0);
            const T* a = xpad.get() + n * image + p * c.step_h * row + q0 * c.step_w * C + g * c.Ci;
            T* o = c.out + n * os[0] + p * os[2] + q0 * os[3] + (g * c.Ko + np * NR) * os[1];
            if (direct_store && rows == MR && cols == NR) {
              uk.fn_arows(TR * TS, c.Ci, toff.data(), a, c.step_w * C, b, o, os[3], init, bcol);
              continue;
            }
            uk.fn_arows(TR * TS, c.Ci, toff.data(), a, c.step_w * C, b, tile, NR, init, bcol);
            int64_t row_off[64], col_src[64], col_off[64];
            for (int64_t i = 0; i < rows; ++i) row_off[i] = i * os[3];
            for (int64_t jj = 0; jj < cols; ++jj) {
              col_src[jj] = jj;
              col_off[jj] = jj * os[1];
            }
            store_tile(tile, NR, rows, row_off, cols, col_src, col_off, o, false, os[1] < os[3]);
          }
        }
      }
    }
  });
  return true;
}

// ----------------------------------------------------------------------------
// Few output pixels (deep layers at small batch): the filter is the big
// operand, so it is read once, where it lies, and never packed. Each task takes
// a block of output channels (rows of the filter, read in place by the
// strided-A micro-kernel along the reduction) and runs it against every
// column of an im2col of all the pixels, packed once in the filter's own
// reduction order. The narrow tile is used when it wastes fewer columns.

constexpr int64_t kFewPixels = 128;  // at most this many output pixels (N*P*Q)

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

template <typename T>
bool run_filter_in_place(const Correlation<T>& c, const MicroKernel<T>& uk) {
  const int64_t M = c.N * c.P * c.Q;
  ReduceOrder order;
  if (M > kFewPixels || !filter_in_place_order(c, &order)) return false;
  const bool narrow = round_up(M, uk.narrow_nr) < round_up(M, uk.nr);
  const int64_t MR = narrow ? uk.narrow_mr : uk.mr, NR = narrow ? uk.narrow_nr : uk.nr;
  const MicroKernelArowsFn<T> kernel = narrow ? uk.narrow_arows : uk.fn_arows;
  const int64_t red = reduction_size(c), panels = ceil_div(M, NR);
  const int64_t base = c.rtap[0] * c.wt_r + c.stap[0] * c.wt_s;

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
      const T* a = c.wt + g * c.wt_group + k0 * c.wt_out + base;
      int64_t lda = c.wt_out;
      // The last block's missing rows read zeros, not the next group's filter.
      std::vector<T> tail;
      if (rows < MR) {
        tail.assign(MR * red, T(0));
        for (int64_t i = 0; i < rows; ++i) std::copy(a + i * lda, a + i * lda + red, tail.data() + i * red);
        a = tail.data();
        lda = red;
      }
      for (int64_t panel = 0; panel < panels; ++panel) {
        kernel(1, red, &zero_offset, a, lda, cols.get() + (g * panels + panel) * red * NR, tile, NR, init,
               bias.data() + g * round_up(c.Ko, MR) + k0);
        const int64_t m0 = panel * NR, mn = std::min(NR, M - m0);
        int64_t row_off[64], col_src[64], col_off[64];
        for (int64_t i = 0; i < rows; ++i) row_off[i] = i * os[1];
        for (int64_t jj = 0; jj < mn; ++jj) {
          const int64_t m = m0 + jj;
          col_src[jj] = jj;
          col_off[jj] = m / (c.P * c.Q) * os[0] + m / c.Q % c.P * os[2] + m % c.Q * os[3];
        }
        store_tile(tile, NR, rows, row_off, mn, col_src, col_off, c.out + (g * c.Ko + k0) * os[1], false,
                   os[3] < os[1]);
      }
    }
  });
  return true;
}

std::atomic<bool> g_direct_paths{true};

}  // namespace

void set_direct_paths(bool enabled) { g_direct_paths.store(enabled); }
bool direct_paths_enabled() { return g_direct_paths.load(); }

template <typename T>
void run_correlation(const Correlation<T>& c) {
  if (c.N == 0 || c.P == 0 || c.Q == 0 || c.G * c.Ko == 0) return;
  if (reduction_size(c) == 0) {
    fill_bias_or_zero(c);
    return;
  }
  const MicroKernel<T>& uk = active_microkernel<T>();
  if (direct_paths_enabled() && run_filter_in_place(c, uk)) return;
  const bool channels_contiguous = c.out_strides[1] == 1 && c.out_strides[3] != 1;
  // A single tap at unit steps is a plain GEMM whose packing is a memcpy: the
  // direct paths' padded copy would only add a pass over the input.
  const bool plain_gemm = c.hoff.size() * c.woff.size() == 1 && c.step_h == 1 && c.step_w == 1;
  const bool direct = direct_paths_enabled() && !plain_gemm;
  if (channels_contiguous || c.P * c.Q < uk.nr) {
    if (!direct || !run_channels_direct(c, uk)) run_channels_on_vector(c, uk);
  } else if (c.step_h == 1 && c.step_w == 1) {
    if (!direct || !run_pixels_direct(c, uk)) run_pixels_on_vector(c, uk);
  } else {  // strided NCHW (the stem): the channels-last copy serves any layout
    if (!direct || !run_channels_direct(c, uk)) run_pixels_on_vector(c, uk);
  }
}

template void run_correlation<float>(const Correlation<float>&);
template void run_correlation<double>(const Correlation<double>&);

}  // namespace cpu
}  // namespace cnnops
