// conv2d filter gradient on the CPU, as an implicit GEMM per group:
//   dw[k, col] = sum_{pixels} dy[n, k, p, q] * x[n, c, p*stride - pad + r*dil, ...]
// with rows k (the micro-kernel's broadcast side), columns col = (c, r, s), or
// (r, s, c) when x is channels_last, on the vector side, and the reduction over
// all output pixels (n, p, q).
//
// Parallelism: tasks are (group, block of columns, chunk of pixels). The number
// of pixel chunks depends only on the problem size, each chunk accumulates into
// its own zero-padded partial buffer, and the partials are summed in chunk order,
// so results do not depend on scheduling (no atomics).
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "buffer.h"
#include "conv2d_cpu.h"
#include "copy_row.h"
#include "microkernel.h"

namespace cnnops {
namespace cpu {
namespace {

constexpr int64_t kKc = 256;              // pixels per reduction block
constexpr int64_t kPixelsPerChunk = 2048;  // target pixels per partial sum
constexpr int64_t kMaxChunks = 32;
constexpr int64_t kPanelsPerBlock = 4;    // column panels per task

// What column `col` of the GEMM reads: input channel and tap offsets.
struct Column {
  int64_t c, hoff, woff, dw_offset;
};

// Calls fn(n, p, q0, len) for each run of pixels [begin, end) that stays in
// one output row (flat pixel index over n, p, q).
template <typename Fn>
void for_each_row_run(int64_t begin, int64_t end, int64_t P, int64_t Q, Fn fn) {
  int64_t m = begin;
  while (m < end) {
    const int64_t q0 = m % Q, len = std::min(Q - q0, end - m);
    fn(m / (P * Q), m / Q % P, q0, len);
    m += len;
  }
}

template <typename T>
void wgrad(const Conv2dParams& p) {
  const MicroKernel<T>& uk = active_microkernel<T>();
  const int64_t MR = uk.mr, NR = uk.nr;
  const int64_t G = p.groups, Kg = p.K / G, Cg = p.C / G;
  const int64_t cols = Cg * p.R * p.S;
  const int64_t kpad = round_up(Kg, MR), npad = round_up(cols, NR);
  const int64_t pixels = p.N * p.P * p.Q;
  const T* x = static_cast<const T*>(p.x);
  const T* dy = static_cast<const T*>(p.y);
  T* dw = static_cast<T*>(p.w);
  const int64_t* xs = p.x_strides;
  const int64_t* ys = p.y_strides;
  const int64_t* ws = p.w_strides;

  const bool channels_last = xs[1] == 1 && xs[3] != 1;
  std::vector<Column> column(cols);
  for (int64_t col = 0; col < cols; ++col) {
    int64_t c, r, s;
    if (channels_last) {
      c = col % Cg; s = col / Cg % p.S; r = col / Cg / p.S;
    } else {
      s = col % p.S; r = col / p.S % p.R; c = col / p.S / p.R;
    }
    column[col] = {c, r * p.dil_h - p.pad_h, s * p.dil_w - p.pad_w,
                   c * ws[1] + r * ws[2] + s * ws[3]};
  }

  const int64_t chunks = std::max<int64_t>(1, std::min(kMaxChunks, pixels / kPixelsPerChunk));
  const int64_t chunk_len = ceil_div(pixels, chunks);
  const int64_t col_blocks = ceil_div(npad / NR, kPanelsPerBlock);
  AlignedBuffer<T> partial(chunks * G * kpad * npad);

  at::parallel_for(0, G * col_blocks * chunks, 1, [&](int64_t begin, int64_t end) {
    AlignedBuffer<T> a_panels(kpad * kKc);
    AlignedBuffer<T> b_panels(kKc * kPanelsPerBlock * NR);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t g = task / (col_blocks * chunks);
      const int64_t cb = task / chunks % col_blocks, chunk = task % chunks;
      const int64_t panel0 = cb * kPanelsPerBlock;
      const int64_t panels = std::min(kPanelsPerBlock, npad / NR - panel0);
      const int64_t m_begin = chunk * chunk_len, m_end = std::min(pixels, m_begin + chunk_len);
      T* c_block = partial.get() + (chunk * G + g) * kpad * npad + panel0 * NR;
      if (m_begin >= m_end) {
        for (int64_t k = 0; k < kpad; ++k)
          for (int64_t j = 0; j < panels * NR; ++j) c_block[k * npad + j] = T(0);
        continue;
      }
      for (int64_t kb0 = m_begin; kb0 < m_end; kb0 += kKc) {
        const int64_t kc = std::min(kKc, m_end - kb0);
        // A: dy rows k (MR per panel), one pixel per step.
        for (int64_t k = 0; k < kpad; ++k) {
          T* d = a_panels.get() + k / MR * kc * MR + k % MR;
          if (k >= Kg) {
            for (int64_t t = 0; t < kc; ++t) d[t * MR] = T(0);
            continue;
          }
          const T* plane = dy + (g * Kg + k) * ys[1];
          int64_t t = 0;
          for_each_row_run(kb0, kb0 + kc, p.P, p.Q, [&](int64_t n, int64_t pp, int64_t q0, int64_t len) {
            copy_row_segment(plane + n * ys[0] + pp * ys[2], p.Q, q0, 1, ys[3], len, d + t * MR, MR);
            t += len;
          });
        }
        // B: im2col of x, NR columns per panel, one pixel per step.
        for (int64_t jj = 0; jj < panels * NR; ++jj) {
          const int64_t col = panel0 * NR + jj;
          T* d = b_panels.get() + jj / NR * kc * NR + jj % NR;
          if (col >= cols) {
            for (int64_t t = 0; t < kc; ++t) d[t * NR] = T(0);
            continue;
          }
          const Column& cc = column[col];
          const T* plane = x + (g * Cg + cc.c) * xs[1];
          int64_t t = 0;
          for_each_row_run(kb0, kb0 + kc, p.P, p.Q, [&](int64_t n, int64_t pp, int64_t q0, int64_t len) {
            const int64_t h = pp * p.stride_h + cc.hoff;
            if (h >= 0 && h < p.H) {
              copy_row_segment(plane + n * xs[0] + h * xs[2], p.W, q0 * p.stride_w + cc.woff,
                               p.stride_w, xs[3], len, d + t * NR, NR);
            } else {
              for (int64_t u = 0; u < len; ++u) d[(t + u) * NR] = T(0);
            }
            t += len;
          });
        }
        const AccInit init = kb0 == m_begin ? AccInit::Zero : AccInit::Load;
        for (int64_t np = 0; np < panels; ++np)
          for (int64_t mp = 0; mp < kpad / MR; ++mp)
            uk.fn(kc, a_panels.get() + mp * kc * MR, b_panels.get() + np * kc * NR,
                  c_block + mp * MR * npad + np * NR, npad, init, nullptr);
      }
    }
  });

  // Sum the partials in chunk order into dw (any strides).
  at::parallel_for(0, G * Kg, 1, [&](int64_t begin, int64_t end) {
    for (int64_t gk = begin; gk < end; ++gk) {
      const int64_t g = gk / Kg, k = gk % Kg;
      T* dw_k = dw + gk * ws[0];
      for (int64_t col = 0; col < cols; ++col) {
        T sum = T(0);
        for (int64_t chunk = 0; chunk < chunks; ++chunk)
          sum += partial.get()[((chunk * G + g) * kpad + k) * npad + col];
        dw_k[column[col].dw_offset] = sum;
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
