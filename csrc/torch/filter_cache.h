// The process-wide store of packed convolution filters (see
// csrc/cpu/conv2d/filter_cache.h for why). Entries are keyed on the filter
// tensor's storage (held weakly), offset, shape, strides and dtype; each call
// hashes the filter's bytes (one read of the filter, much cheaper than packing
// it) and an entry's forms are dropped as soon as the hash or the data pointer
// differs, so no write goes unseen: not even one through `tensor.data`, which
// the version counter misses. Entries of freed tensors are dropped at the next
// insertion, and the total stays under a byte limit (least recently used first).
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <memory>

#include "../cpu/conv2d/filter_cache.h"

namespace cnnops {

// The cache for filter w of a CPU convolution, or null when caching is off.
std::unique_ptr<cpu::FilterCache> filter_cache_for(const at::Tensor& w);

// While one is alive, filter_cache_for returns null on this thread. The autograd
// kernels (conv2d_autograd.cpp) hold one when a call trains its filter (a graph
// is recorded and the filter requires grad) and in that filter's backward: a
// trained filter changes every step, so keeping its packed forms would only add
// a hash, a copy and memory to each call.
class NoFilterCacheGuard {
 public:
  explicit NoFilterCacheGuard(bool active = true);
  ~NoFilterCacheGuard();
  NoFilterCacheGuard(const NoFilterCacheGuard&) = delete;
  NoFilterCacheGuard& operator=(const NoFilterCacheGuard&) = delete;

 private:
  bool previous_;
};

struct FilterCacheStats {
  int64_t entries = 0, forms = 0, bytes = 0, limit = 0, hits = 0, misses = 0;
};
// Freezes w: until its version counter or data pointer changes, calls trust the
// content hash taken now instead of hashing w again (an inference model's
// weights: cnnops.optimize_for_inference freezes its private copies). A write
// through `tensor.data`, which skips the version counter, then goes unseen.
// Returns false (and does nothing) for a filter the cache would not keep or an
// inference tensor (no version counter).
bool freeze_filter(const at::Tensor& w);

FilterCacheStats filter_cache_stats();
void set_filter_cache_limit(int64_t bytes);  // 0 turns caching off and empties the cache
void clear_filter_cache();

}  // namespace cnnops
