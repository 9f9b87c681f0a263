// Packed filters that outlive a call.
//
// Packing a filter into micro-panels reads every weight once with large strides;
// for a deep layer at batch 1 that costs more than the convolution itself. The
// glue (csrc/torch/filter_cache.cpp) hands a kernel one FilterCache per call,
// tied to the filter tensor (its storage, offset, shape, strides, dtype and
// version counter), so the packed forms are reused while the tensor is unchanged:
// inference packs once, training once per optimizer step. A kernel asks for a
// form by a name that says everything the packing depends on, and fills it when
// the cache does not hold it. Without a cache (null) every call packs.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "../util/buffer.h"

namespace cnnops {
namespace cpu {

class FilterCache {
 public:
  virtual ~FilterCache() = default;
  // A 64-byte-aligned buffer of `bytes` holding the packed form `name`, written by
  // `fill` if the cache does not hold it. Valid while the returned pointer lives.
  virtual std::shared_ptr<const void> get(const std::string& name, size_t bytes,
                                          const std::function<void(void*)>& fill) = 0;
  // Whether a lookup first reads the whole filter (to hash it): then a path that
  // reads the filter once in place can cost less than the lookup plus the read of
  // the packed form.
  virtual bool lookup_reads_filter() const { return false; }
};

// The packed form `name` from `cache`, or packed now into a buffer of this call
// when there is no cache.
template <typename T>
std::shared_ptr<const T> cached_pack(FilterCache* cache, const std::string& name, size_t count,
                                     const std::function<void(T*)>& pack) {
  const size_t bytes = count * sizeof(T);
  auto fill = [&](void* dst) { pack(static_cast<T*>(dst)); };
  std::shared_ptr<const void> form;
  if (cache != nullptr) {
    form = cache->get(name, bytes, fill);
  } else {
    std::shared_ptr<void> buf = aligned_shared(bytes);
    fill(buf.get());
    form = buf;
  }
  return std::static_pointer_cast<const T>(form);
}

}  // namespace cpu
}  // namespace cnnops
