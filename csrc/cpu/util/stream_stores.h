// When a CPU kernel writes its output with non-temporal (streaming) stores,
// and the fence that must follow them.
//   A plain store first reads the line it writes into the cache (read for
//   ownership) and writes it back later: two transfers per output line. A
//   non-temporal store sends the line to memory once, but a consumer then
//   reads it from memory, not from L2. So outputs stream only when they are
//   larger than the L2 caches of the threads that write them: below that a
//   consumer reading y right after the forward is slower, above it faster
//   (measured in an ad-hoc run kept in git history:
//   git show 69b2c6c:benchmarks/results/cpu-2026-11-22T1945-adhoc-stream.md).
// store_or_stream is the per-register store of the SIMD kernels (depthwise,
// max_pool2d) that write so.
#pragma once
#include <cstdint>

namespace cnnops {
namespace cpu {

// Outputs of at least this many bytes are streamed: the L2 size per core
// times at::get_num_threads(), or what set_stream_min_bytes set.
int64_t stream_min_bytes();
// n >= 0 fixes the threshold (0: stream every output that can); n < 0 goes
// back to the automatic one. For tests and measurements.
void set_stream_min_bytes(int64_t n);

inline bool stream_output(int64_t bytes) { return bytes >= stream_min_bytes(); }

// Orders a thread's non-temporal stores before its later stores (the end of
// a parallel region signals the other threads with plain ones); call it in
// each thread that streamed, after its last streaming store.
void stream_fence();

// A whole output register of a SIMD kernel (vector traits V, ../isa/): streamed
// (non-temporal) when asked and aligned, else stored. A template on V, so each
// ISA unit has its own copy (see ../isa/isa.h).
template <typename V>
__attribute__((always_inline)) inline void store_or_stream(typename V::T* p, typename V::Reg x, bool stream) {
  if (stream && reinterpret_cast<uintptr_t>(p) % sizeof(typename V::Reg) == 0) V::stream(p, x);
  else V::store(p, x);
}

}  // namespace cpu
}  // namespace cnnops
