// The streaming-store threshold and fence of stream_stores.h.
#include "stream_stores.h"

#include <ATen/Parallel.h>
#include <unistd.h>

#include <atomic>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace cnnops {
namespace cpu {
namespace {

std::atomic<int64_t> g_stream_min_bytes{-1};  // < 0: automatic

int64_t l2_bytes_per_core() {
#ifdef _SC_LEVEL2_CACHE_SIZE
  const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
  if (l2 > 0) return l2;
#endif
  return int64_t(1) << 20;  // unknown: assume 1 MiB
}

}  // namespace

int64_t stream_min_bytes() {
  const int64_t fixed = g_stream_min_bytes.load();
  if (fixed >= 0) return fixed;
  static const int64_t l2 = l2_bytes_per_core();
  return l2 * at::get_num_threads();
}

void set_stream_min_bytes(int64_t n) { g_stream_min_bytes.store(n < 0 ? -1 : n); }

void stream_fence() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_sfence();
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

}  // namespace cpu
}  // namespace cnnops
