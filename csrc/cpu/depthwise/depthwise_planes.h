// Pieces shared by the plane (NCHW) depthwise kernels of depthwise_flat.cpp
// (padded copies) and depthwise_masked.cpp (masked reads in place): plane
// prefetching, the dgrad plane loop and the weight gradient's per-plane sums.
#pragma once
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "depthwise.h"

namespace cnnops {
namespace cpu {

// Asks for the cache lines of a plane with unit column stride (a later
// plane's: the loops below run two planes ahead, which keeps the memory busy
// while the stencils compute); `write` for a plane about to be stored to.
template <bool write = false, typename T>
void prefetch_plane(const T* src, int64_t H, int64_t W, int64_t sh, int64_t sw) {
  if (sw != 1) return;
  constexpr int64_t kLine = 64 / sizeof(T);
  const int64_t runs = sh == W ? 1 : H, len = sh == W ? H * W : W;
  for (int64_t i = 0; i < runs; ++i) {
    const T* row = src + i * sh;
    for (int64_t j = 0; j < len; j += kLine) __builtin_prefetch(row + j, write);
    __builtin_prefetch(row + len - 1, write);
  }
}

// The weight gradient's per-plane partial sums: (masked_)taps_dot gives each (n, k)
// plane's R*S sums in T; they are kept per plane, so the planes can go in
// memory order over the threads, and each filter is then summed over n in
// order, in double: the same bits whatever the threads.
template <typename T>
struct PlaneSums {
  const Conv2dParams& p;
  int64_t RS;
  std::vector<T> sums;  // (N, K, R*S)
  explicit PlaneSums(const Conv2dParams& p_)
      : p(p_), RS(p_.R * p_.S), sums(p_.N * p_.K * p_.R * p_.S, T(0)) {}
  T* at(int64_t n, int64_t k) { return sums.data() + (n * p.K + k) * RS; }
  void store() {
    at::parallel_for(0, p.K, 16, [&](int64_t begin, int64_t end) {
      std::vector<double> acc(RS);
      for (int64_t k = begin; k < end; ++k) {
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t n = 0; n < p.N; ++n)
          for (int64_t t = 0; t < RS; ++t) acc[t] += at(n, k)[t];
        store_depthwise_filters<T>(p, k, 1, acc.data(), RS, 1);
      }
    });
  }
};

// dx plane by plane over (n, c) in memory order, each thread with its own
// scratch: Planes has plane(n, c, Scratch&) and Planes::Scratch(const Planes&).
template <typename Planes>
void dgrad_by_planes(const Conv2dParams& p, const Planes& planes) {
  at::parallel_for(0, p.N * p.C, 1, [&](int64_t begin, int64_t end) {
    typename Planes::Scratch scratch(planes);
    for (int64_t plane = begin; plane < end; ++plane) planes.plane(plane / p.C, plane % p.C, scratch);
  });
}

}  // namespace cpu
}  // namespace cnnops
