// balanced_for(count, body): body(u) for every work unit u in [0, count), on
// ATen's threads, with the units a thread finishes early taken from the others.
//   Each thread starts on its own consecutive share of the units (as
//   at::parallel_for would give it: a unit's neighbours, which read the rows
//   next to its own, run on the same core) and takes them from the front.
//   A thread whose share is done takes units from the back of the other
//   shares, one at a time. On a shared machine one core can run slower than
//   the other for a whole call (another tenant's work, the kernel's memory
//   daemon); with fixed shares the call waits for that core.
//   Which thread runs a unit varies from call to call; what a unit computes
//   must not depend on it (per-unit partial sums, summed in unit order).
// A share's front and back live in one 64-bit atomic (front in the high half),
// so a take is one compare-and-swap. Counts of 2^31 or more, one thread, a
// call from inside a parallel region, or set_balanced_for(false) (for A/B
// timings) run at::parallel_for's fixed shares.
#pragma once
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>

namespace cnnops {
namespace cpu {

// Whether balanced_for takes units from other threads' shares (default: yes).
void set_balanced_for(bool enabled);
bool balanced_for_enabled();

namespace balanced_detail {

inline uint64_t pack(int64_t front, int64_t back) { return (uint64_t(front) << 32) | uint64_t(back); }

// The next unit of a share, from its front (FromBack false) or back; -1 when empty.
template <bool FromBack>
int64_t take(std::atomic<uint64_t>& share) {
  uint64_t cur = share.load(std::memory_order_relaxed);
  for (;;) {
    const int64_t front = int64_t(cur >> 32), back = int64_t(cur & 0xffffffffu);
    if (front >= back) return -1;
    const uint64_t next = FromBack ? pack(front, back - 1) : pack(front + 1, back);
    if (share.compare_exchange_weak(cur, next, std::memory_order_relaxed)) return FromBack ? back - 1 : front;
  }
}

// The next n units (or fewer) from a share's front: [*begin, return value).
inline int64_t take_front(std::atomic<uint64_t>& share, int64_t n, int64_t* begin) {
  uint64_t cur = share.load(std::memory_order_relaxed);
  for (;;) {
    const int64_t front = int64_t(cur >> 32), back = int64_t(cur & 0xffffffffu);
    if (front >= back) return *begin = front;
    const int64_t end = std::min(back, front + n);
    if (share.compare_exchange_weak(cur, pack(end, back), std::memory_order_relaxed)) {
      *begin = front;
      return end;
    }
  }
}

// Thread t's share of `count` units: [t * count / threads, (t + 1) * count / threads).
inline std::unique_ptr<std::atomic<uint64_t>[]> even_shares(int64_t count, int64_t threads) {
  std::unique_ptr<std::atomic<uint64_t>[]> shares(new std::atomic<uint64_t>[threads]);
  for (int64_t t = 0; t < threads; ++t) shares[t].store(pack(t * count / threads, (t + 1) * count / threads));
  return shares;
}

}  // namespace balanced_detail

template <typename F>
void balanced_for(int64_t count, const F& body) {
  const int64_t threads = std::min<int64_t>(at::get_num_threads(), count);
  if (!balanced_for_enabled() || threads <= 1 || count >= (int64_t(1) << 31) || at::in_parallel_region()) {
    at::parallel_for(0, count, 1, [&](int64_t begin, int64_t end) {
      for (int64_t u = begin; u < end; ++u) body(u);
    });
    return;
  }
  const auto shares = balanced_detail::even_shares(count, threads);
  at::parallel_for(0, threads, 1, [&](int64_t first, int64_t last) {
    for (int64_t t = first; t < last; ++t) {
      int64_t u;
      while ((u = balanced_detail::take<false>(shares[t])) >= 0) body(u);
      for (int64_t other = 1; other < threads; ++other)
        while ((u = balanced_detail::take<true>(shares[(t + other) % threads])) >= 0) body(u);
    }
  });
}

// balanced_for for bodies that take ranges, body(begin, end), as
// at::parallel_for's do (a body sets up its scratch once per call): a thread
// takes its own share from the front a quarter at a time, then single units
// from the back of the others' shares. A grain of at least `count` (a tiny
// problem) runs body(0, count) on the calling thread.
template <typename F>
void balanced_for_ranges(int64_t count, int64_t grain, const F& body) {
  const int64_t threads = std::min<int64_t>(at::get_num_threads(), count);
  if (count <= 0) return;
  if (grain >= count || threads <= 1 || !balanced_for_enabled() || count >= (int64_t(1) << 31) ||
      at::in_parallel_region()) {
    at::parallel_for(0, count, grain, body);
    return;
  }
  const auto shares = balanced_detail::even_shares(count, threads);
  at::parallel_for(0, threads, 1, [&](int64_t first, int64_t last) {
    for (int64_t t = first; t < last; ++t) {
      const int64_t chunk = std::max<int64_t>(1, ((t + 1) * count / threads - t * count / threads) / 4);
      int64_t begin, end;
      while ((end = balanced_detail::take_front(shares[t], chunk, &begin)) > begin) body(begin, end);
      for (int64_t other = 1; other < threads; ++other) {
        int64_t u;
        while ((u = balanced_detail::take<true>(shares[(t + other) % threads])) >= 0) body(u, u + 1);
      }
    }
  });
}

}  // namespace cpu
}  // namespace cnnops
