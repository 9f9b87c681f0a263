// The fused output stage on the CPU (Epilogue in common/params.h): a kernel
// calls apply_epilogue on each rectangle of its output right after writing it
// for the last time, so the stage reads the block from L1/L2, not memory. The
// rectangle's contiguous axis (channels for channels_last, columns for NCHW)
// is walked in runs, in one call per rectangle of a function instantiated for
// the pair of activations and built per ISA (epilogue_simd.h), so the
// activations vectorise at the ISA's width. float and double.
#pragma once
#include <algorithm>
#include <cstdint>

#include "../../common/params.h"
#include "../isa/isa.h"

namespace cnnops {
namespace cpu {

// One rectangle's runs: y[i*ys] = B(A(y[i*ys]) + r[i*rs]) for i < n, in `runs`
// runs at steps run_y (and run_r); r may be null. One instantiation per pair
// (A, B) and ISA (epilogue_simd.h), looked up by active_finish_runs.
template <typename T>
using FinishRuns = void (*)(T* y, int64_t ys, int64_t run_y, const T* r, int64_t rs, int64_t run_r, int64_t n,
                            int64_t runs);

constexpr int kActivations = 8;  // Activation's values, 0 .. 7

template <typename T>
struct EpilogueRuns {
  FinishRuns<T> fn[kActivations][kActivations] = {};  // [act][post]
};
using EpilogueRunsSet = ByDtype<EpilogueRuns>;

// The per-ISA builds (epilogue_{avx512,avx2,generic}.cpp) and the active one.
bool epilogue_runs_avx512(EpilogueRunsSet* out);
bool epilogue_runs_avx2(EpilogueRunsSet* out);
bool epilogue_runs_generic(EpilogueRunsSet* out);
template <typename T>
FinishRuns<T> active_finish_runs(Activation act, Activation post);

// Applies e to y[n, k0:k1, p0:p1, q0:q1] of an output with NCHW-order strides ys.
template <typename T>
void apply_epilogue(const Epilogue& e, T* y, const int64_t* ys, int64_t n, int64_t p0, int64_t p1, int64_t q0,
                    int64_t q1, int64_t k0, int64_t k1) {
  if (e.identity() || p0 >= p1 || q0 >= q1 || k0 >= k1) return;
  const FinishRuns<T> finish = active_finish_runs<T>(e.act, e.post);
  const T* r = static_cast<const T*>(e.residual);
  const int64_t* rs = e.residual_strides;
  const int64_t zero[4] = {0, 0, 0, 0};
  if (r == nullptr) rs = zero;
  T* yb = y + n * ys[0] + k0 * ys[1] + p0 * ys[2] + q0 * ys[3];
  const T* rb = r == nullptr ? nullptr : r + n * rs[0] + k0 * rs[1] + p0 * rs[2] + q0 * rs[3];
  const int64_t kn = k1 - k0, qn = q1 - q0;
  if (ys[1] < ys[3]) {  // channels innermost: a run of kn per pixel
    // Pixels of a row one after the other with nothing between (dense
    // channels_last, all channels, residual alike): the row is one run.
    const bool merge = ys[1] == 1 && ys[3] == kn && (r == nullptr || (rs[1] == 1 && rs[3] == kn));
    for (int64_t p = 0; p < p1 - p0; ++p) {
      if (merge) finish(yb + p * ys[2], 1, 0, rb ? rb + p * rs[2] : nullptr, 1, 0, kn * qn, 1);
      else finish(yb + p * ys[2], ys[1], ys[3], rb ? rb + p * rs[2] : nullptr, rs[1], rs[3], kn, qn);
    }
  } else {  // columns innermost: a run of qn per channel row
    for (int64_t k = 0; k < kn; ++k)
      finish(yb + k * ys[1], ys[3], ys[2], rb ? rb + k * rs[1] : nullptr, rs[3], rs[2], qn, p1 - p0);
  }
}

// The same for the flat pixels [m0, m0 + mn) (m = (n*P + p)*Q + q) and
// channels [k0, k0 + kn): cut into rectangles along output rows.
template <typename T>
void apply_epilogue_pixels(const Epilogue& e, T* y, const int64_t* ys, int64_t P, int64_t Q, int64_t m0,
                           int64_t mn, int64_t k0, int64_t kn) {
  if (e.identity()) return;
  for (int64_t m = m0, end = m0 + mn; m < end;) {
    const int64_t n = m / (P * Q), p = m / Q % P, q = m % Q;
    if (q == 0 && end - m >= Q) {  // whole rows of one image at once
      const int64_t rows = std::min((end - m) / Q, P - p);
      apply_epilogue(e, y, ys, n, p, p + rows, 0, Q, k0, k0 + kn);
      m += rows * Q;
    } else {
      const int64_t q1 = std::min(Q, q + (end - m));
      apply_epilogue(e, y, ys, n, p, p + 1, q, q1, k0, k0 + kn);
      m += q1 - q;
    }
  }
}

// Brings the residual of output pixels [m0, m0 + mn) and channels [k0, k0 + kn)
// (flat m = (n*P + p)*Q + q) into L2 while a kernel computes that block, for a
// fused stage applied to the block after its last tile (apply_epilogue): at
// batch 16 a ResNet block's residual is tens of MB, and the hardware
// prefetchers, which stop at each 4 KiB page, left the stage reading it at a
// few GB/s. The lines go in the order the stage will read them, pixel by pixel.
// The caller spreads `steps` calls of step() over the block's work; they issue
// equal shares of the lines and are done by three quarters of the way. (A stage
// applied in registers fetches each tile's residual itself, TileStage in
// ../conv2d/microkernel.h.) Only residuals with contiguous channels
// (channels_last, the layout of cnnops.optimize_for_inference) are fetched;
// others are left to the hardware.
template <typename T>
class ResidualPrefetch {
 public:
  ResidualPrefetch(const Epilogue* e, int64_t P, int64_t Q, int64_t m0, int64_t mn, int64_t k0, int64_t kn,
                   int64_t steps)
      : P_(P), Q_(Q), m_(m0), mend_(m0 + mn), k0_(k0), kn_(kn) {
    if (e == nullptr || e->residual == nullptr || e->residual_strides[1] != 1 || mn <= 0 || kn <= 0) {
      m_ = mend_;
      return;
    }
    r_ = static_cast<const T*>(e->residual);
    rs_ = e->residual_strides;
    const int64_t lines = mn * (1 + (kn * int64_t(sizeof(T)) + 63) / 64);
    const int64_t spread = std::max<int64_t>(1, steps * 3 / 4);
    per_step_ = (lines + spread - 1) / spread;
    start_pixel();
  }
  void step() {
    for (int64_t i = 0; i < per_step_ && m_ < mend_; ++i) issue();
  }

 private:
  void issue() {
    __builtin_prefetch(line_, 0, 2);
    line_ += 64;
    if (line_ <= last_) return;
    ++m_;
    start_pixel();
  }
  void start_pixel() {
    if (m_ >= mend_) return;
    const int64_t n = m_ / (P_ * Q_), p = m_ / Q_ % P_, q = m_ % Q_;
    const T* run = r_ + n * rs_[0] + p * rs_[2] + q * rs_[3] + k0_;
    line_ = reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(run) & ~uintptr_t(63));
    last_ = reinterpret_cast<const char*>(run + kn_ - 1);
  }
  const T* r_ = nullptr;
  const int64_t* rs_ = nullptr;
  int64_t P_, Q_, m_, mend_, k0_, kn_, per_step_ = 0;
  const char* line_ = nullptr;
  const char* last_ = nullptr;
};

}  // namespace cpu
}  // namespace cnnops
