// When a CPU kernel writes its output with non-temporal (streaming) stores,
// and the fence that must follow them.
//   A plain store first reads the line it writes into the cache (read for
//   ownership) and writes it back later: two transfers per output line. A
//   non-temporal store sends the line to memory once, but a consumer then
//   reads it from memory, not from L2. So outputs stream only when they are
//   larger than the L2 caches of the threads that write them. Measured on our
//   2-core machine (2 MiB L2 per core) with a consumer reading y right after
//   the forward (benchmarks/results/cpu-2026-11-22T1945-adhoc-stream.md), the
//   pair took 23-35% longer streamed for outputs of 0.2-1.5 MB, 7% less at
//   3 MB and 15-27% less at 6-12 MB.
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

}  // namespace cpu
}  // namespace cnnops
