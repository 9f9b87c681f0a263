// The packed-filter store behind filter_cache_for (see filter_cache.h).
#include "filter_cache.h"

#include <ATen/Parallel.h>
#include <c10/util/intrusive_ptr.h>

#include <cstring>

#include "../cpu/isa/isa.h"

#if CNNOPS_CPU_X86_UNITS
#include <immintrin.h>
#endif

#include <algorithm>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace cnnops {
namespace {

constexpr int64_t kDefaultLimit = int64_t(256) << 20;
constexpr int64_t kMinCachedElements = 4096;

struct TensorKey {
  c10::StorageImpl* storage = nullptr;
  const void* data = nullptr;
  int64_t offset = 0;
  std::vector<int64_t> sizes, strides;
  at::ScalarType dtype = at::kFloat;
  uint64_t content = 0;  // hash of the bytes the tensor spans

  bool same_tensor(const TensorKey& o) const {
    return storage == o.storage && offset == o.offset && sizes == o.sizes && strides == o.strides &&
           dtype == o.dtype;
  }
};

struct Entry {
  Entry(TensorKey k, c10::weak_intrusive_ptr<c10::StorageImpl> a) : key(std::move(k)), alive(std::move(a)) {}
  TensorKey key;
  c10::weak_intrusive_ptr<c10::StorageImpl> alive;
  std::map<std::string, std::shared_ptr<void>> forms;
  int64_t bytes = 0;
  uint64_t last_use = 0;
};

class Store {
 public:
  std::shared_ptr<const void> get(const TensorKey& key, const c10::Storage& storage, const std::string& name,
                                  size_t bytes, const std::function<void(void*)>& fill) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      Entry* e = find(key);
      if (e != nullptr) {
        auto it = e->forms.find(name);
        if (it != e->forms.end()) {
          e->last_use = ++clock_;
          ++hits_;
          return it->second;
        }
      }
      ++misses_;
    }
    // Pack outside the lock: packing runs on the thread pool and may be slow.
    std::shared_ptr<void> form = cpu::aligned_shared(bytes);
    fill(form.get());
    std::lock_guard<std::mutex> lock(mutex_);
    if (static_cast<int64_t>(bytes) > limit_) return form;  // never fits: use it once
    Entry* e = find(key);
    if (e == nullptr) {
      entries_.emplace_back(key, storage.getWeakStorageImpl());
      e = &entries_.back();
    }
    if (e->forms.emplace(name, form).second) {
      e->bytes += bytes;
      total_ += bytes;
    }
    e->last_use = ++clock_;
    evict(e);
    return form;
  }

  FilterCacheStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    FilterCacheStats s;
    s.entries = entries_.size();
    for (const Entry& e : entries_) s.forms += e.forms.size();
    s.bytes = total_;
    s.limit = limit_;
    s.hits = hits_;
    s.misses = misses_;
    return s;
  }

  int64_t limit() {
    std::lock_guard<std::mutex> lock(mutex_);
    return limit_;
  }

  void set_limit(int64_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    limit_ = bytes;
    evict(nullptr);
  }

  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.clear();
    frozen_.clear();
    total_ = 0;
    hits_ = misses_ = 0;
  }

  // Records that key's tensor (its content hash in key) is frozen at `version`.
  void freeze(const TensorKey& key, int64_t version, c10::weak_intrusive_ptr<c10::StorageImpl> alive) {
    std::lock_guard<std::mutex> lock(mutex_);
    frozen_.remove_if([&](const Frozen& f) { return f.alive.expired() || f.key.same_tensor(key); });
    frozen_.push_back(Frozen{key, version, std::move(alive)});
  }

  // The content hash of key's tensor if it is frozen and unchanged since (same
  // data pointer and version counter); a changed one is unfrozen.
  bool frozen_content(const TensorKey& key, int64_t version, uint64_t* content) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = frozen_.begin(); it != frozen_.end(); ++it) {
      if (!it->key.same_tensor(key) || it->alive.expired()) continue;
      if (it->key.data == key.data && it->version == version) {
        *content = it->key.content;
        return true;
      }
      frozen_.erase(it);
      return false;
    }
    return false;
  }

 private:
  // The live entry of key's tensor, its forms emptied if the tensor changed since.
  Entry* find(const TensorKey& key) {
    for (Entry& e : entries_) {
      if (!e.key.same_tensor(key) || e.alive.expired()) continue;
      if (e.key.content != key.content || e.key.data != key.data) {
        total_ -= e.bytes;
        e.forms.clear();
        e.bytes = 0;
        e.key = key;
      }
      return &e;
    }
    return nullptr;
  }

  // Drops the entries of freed tensors, then the least recently used ones other
  // than `keep` until the total is within the limit.
  void evict(const Entry* keep) {
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (&*it != keep && (it->alive.expired() || it->forms.empty())) {
        total_ -= it->bytes;
        it = entries_.erase(it);
      } else {
        ++it;
      }
    }
    while (total_ > limit_) {
      auto victim = entries_.end();
      for (auto it = entries_.begin(); it != entries_.end(); ++it)
        if (&*it != keep && (victim == entries_.end() || it->last_use < victim->last_use)) victim = it;
      if (victim == entries_.end()) break;
      total_ -= victim->bytes;
      entries_.erase(victim);
    }
    if (total_ > limit_ && keep != nullptr) {  // only possible when the limit shrank
      for (auto it = entries_.begin(); it != entries_.end(); ++it)
        if (&*it == keep) {
          total_ -= it->bytes;
          entries_.erase(it);
          break;
        }
    }
  }

  struct Frozen {
    TensorKey key;
    int64_t version;
    c10::weak_intrusive_ptr<c10::StorageImpl> alive;
  };

  std::mutex mutex_;
  std::list<Entry> entries_;  // stable addresses; few entries (one per filter)
  std::list<Frozen> frozen_;  // filters whose hash is trusted while their version holds
  int64_t total_ = 0, limit_ = kDefaultLimit, hits_ = 0, misses_ = 0;
  uint64_t clock_ = 0;
};

// A 64-bit hash of `bytes` bytes: each 64 KiB chunk hashed on its own (chunks in
// parallel), the chunk hashes combined in order. Any write to the tensor changes it,
// however it was made (the version counter misses writes through `tensor.data`,
// which gradcheck and older training code use).
// One step of the final mixing: multiplying carries every bit of v upwards, the shift
// brings the high bits back down (without it, a change in a float's exponent would
// only ever reach the hash's top bits).
uint64_t mix(uint64_t h, uint64_t v) {
  h = (h ^ v) * 0x9E3779B97F4A7C15ull;
  return h ^ (h >> 29);
}

// One chunk, in eight 64-bit lanes (one word of each 64-byte block each). A lane adds,
// per block, its word plus the product of the low and high halves of the word xor-ed
// with a key that depends on the lane and the block's position, so a changed or moved
// word changes the sum. Only the additions chain from block to block, so with vector
// units a block costs one 32x32->64-bit multiply (the full mix per word, a chain of
// 64-bit multiplies, ran at a third of memory speed and cost more than the packing it
// saves for a deep layer at batch 1). Three builds of the same arithmetic, so the
// hash does not depend on the CPU: AVX-512, AVX2 and plain C++.
constexpr uint64_t kHashStep = 0xC2B2AE3D27D4EB4Full;
constexpr uint64_t kHashSeed[8] = {0x243F6A8885A308D3ull, 0x13198A2E03707344ull, 0xA4093822299F31D0ull,
                                   0x082EFA98EC4E6C89ull, 0x452821E638D01377ull, 0xBE5466CF34E90C6Cull,
                                   0xC0AC29B7C97C50DDull, 0x3F84D5B5B5470917ull};

void hash_blocks_scalar(const unsigned char* p, int64_t blocks, uint64_t* lane) {
  for (int64_t b = 0; b < blocks; ++b) {
    uint64_t v[8];
    std::memcpy(v, p + b * 64, 64);
    const uint64_t position = static_cast<uint64_t>(b) * kHashStep;
    for (int j = 0; j < 8; ++j) {
      const uint64_t k = v[j] ^ (kHashSeed[j] + position);
      lane[j] += v[j] + (k & 0xFFFFFFFFull) * (k >> 32);
    }
  }
}

#if CNNOPS_CPU_X86_UNITS
// GCC 12 warns that the undefined-value operands it passes inside these intrinsics
// may be uninitialised; they are never read.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f"))) void hash_blocks_avx512(const unsigned char* p, int64_t blocks,
                                                          uint64_t* lane) {
  __m512i acc = _mm512_loadu_si512(lane);
  const __m512i seed = _mm512_loadu_si512(kHashSeed);
  for (int64_t b = 0; b < blocks; ++b) {
    const __m512i v = _mm512_loadu_si512(p + b * 64);
    const __m512i key = _mm512_add_epi64(seed, _mm512_set1_epi64(static_cast<int64_t>(b * kHashStep)));
    const __m512i k = _mm512_xor_si512(v, key);
    acc = _mm512_add_epi64(acc, _mm512_add_epi64(v, _mm512_mul_epu32(k, _mm512_srli_epi64(k, 32))));
  }
  _mm512_storeu_si512(lane, acc);
}

__attribute__((target("avx2"))) void hash_blocks_avx2(const unsigned char* p, int64_t blocks, uint64_t* lane) {
  __m256i acc[2], seed[2];
  for (int h = 0; h < 2; ++h) {
    acc[h] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lane + 4 * h));
    seed[h] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kHashSeed + 4 * h));
  }
  for (int64_t b = 0; b < blocks; ++b) {
    const __m256i position = _mm256_set1_epi64x(static_cast<int64_t>(b * kHashStep));
    for (int h = 0; h < 2; ++h) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + b * 64 + 32 * h));
      const __m256i k = _mm256_xor_si256(v, _mm256_add_epi64(seed[h], position));
      acc[h] = _mm256_add_epi64(acc[h], _mm256_add_epi64(v, _mm256_mul_epu32(k, _mm256_srli_epi64(k, 32))));
    }
  }
  for (int h = 0; h < 2; ++h) _mm256_storeu_si256(reinterpret_cast<__m256i*>(lane + 4 * h), acc[h]);
}
#pragma GCC diagnostic pop
#endif

using HashBlocks = void (*)(const unsigned char*, int64_t, uint64_t*);
HashBlocks pick_hash_blocks() {
#if CNNOPS_CPU_X86_UNITS
  switch (cpu::best_cpu_isa()) {
    case cpu::CpuIsa::Avx512: return hash_blocks_avx512;
    case cpu::CpuIsa::Avx2: return hash_blocks_avx2;
    default: break;
  }
#endif
  return hash_blocks_scalar;
}

uint64_t hash_chunk(const unsigned char* p, int64_t n) {
  static const HashBlocks hash_blocks = pick_hash_blocks();
  uint64_t lane[8];
  std::memcpy(lane, kHashSeed, sizeof(lane));
  const int64_t blocks = n / 64;
  hash_blocks(p, blocks, lane);
  uint64_t tail = 0;
  for (int64_t i = blocks * 64; i < n; ++i) tail = mix(tail, p[i]);
  uint64_t r = mix(static_cast<uint64_t>(n), tail);
  for (int j = 0; j < 8; ++j) r = mix(r, lane[j]);
  return r;
}

uint64_t hash_bytes(const unsigned char* data, int64_t bytes) {
  constexpr int64_t kChunk = int64_t(1) << 16;
  const int64_t chunks = (bytes + kChunk - 1) / kChunk;
  std::vector<uint64_t> h(chunks);
  // Four chunks (256 KiB, about 10 us) or more per task: less is not worth a wake-up.
  at::parallel_for(0, chunks, 4, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) h[c] = hash_chunk(data + c * kChunk, std::min(kChunk, bytes - c * kChunk));
  });
  uint64_t r = static_cast<uint64_t>(bytes);
  for (uint64_t v : h) r = mix(r, v);
  return r;
}

// The hash of the storage bytes from w's first to its last element.
uint64_t content_hash(const at::Tensor& w) {
  int64_t last = 0;
  for (int64_t d = 0; d < w.dim(); ++d) last += (w.size(d) - 1) * w.stride(d);
  return hash_bytes(static_cast<const unsigned char*>(w.const_data_ptr()), (last + 1) * w.element_size());
}

Store& store() {
  static Store* s = new Store();  // never destroyed: kernels may run during exit
  return *s;
}

class TensorFilterCache final : public cpu::FilterCache {
 public:
  TensorFilterCache(TensorKey key, at::Tensor w, bool frozen = false)
      : key_(std::move(key)), w_(std::move(w)), hashed_(frozen) {}
  std::shared_ptr<const void> get(const std::string& name, size_t bytes,
                                  const std::function<void(void*)>& fill) override {
    // Hashed on first use: paths that read the filter in place never pay for it.
    if (!hashed_) key_.content = content_hash(w_);
    hashed_ = true;
    return store().get(key_, w_.storage(), name, bytes, fill);
  }
  bool lookup_reads_filter() const override { return !hashed_; }

 private:
  TensorKey key_;
  at::Tensor w_;
  bool hashed_;
};

thread_local bool t_no_cache = false;

bool cacheable(const at::Tensor& w) {
  // A filter of a few thousand elements packs in less time than a lookup takes.
  return w.is_cpu() && w.has_storage() && w.numel() >= kMinCachedElements && store().limit() > 0;
}

TensorKey key_of(const at::Tensor& w) {
  TensorKey key;
  key.storage = w.storage().unsafeGetStorageImpl();
  key.data = w.const_data_ptr();
  key.offset = w.storage_offset();
  key.sizes = w.sizes().vec();
  key.strides = w.strides().vec();
  key.dtype = w.scalar_type();
  return key;
}

}  // namespace

NoFilterCacheGuard::NoFilterCacheGuard(bool active) : previous_(t_no_cache) {
  t_no_cache = t_no_cache || active;
}
NoFilterCacheGuard::~NoFilterCacheGuard() { t_no_cache = previous_; }

std::unique_ptr<cpu::FilterCache> filter_cache_for(const at::Tensor& w) {
  if (t_no_cache || !cacheable(w)) return nullptr;
  TensorKey key = key_of(w);
  // A frozen filter unchanged since it was frozen needs no hash.
  if (!w.is_inference() && store().frozen_content(key, w._version(), &key.content))
    return std::make_unique<TensorFilterCache>(std::move(key), w, true);
  return std::make_unique<TensorFilterCache>(std::move(key), w);
}

bool freeze_filter(const at::Tensor& w) {
  // An inference tensor has no version counter to watch: it stays hashed per call.
  if (!cacheable(w) || w.is_inference()) return false;
  TensorKey key = key_of(w);
  key.content = content_hash(w);
  store().freeze(key, w._version(), w.storage().getWeakStorageImpl());
  return true;
}

FilterCacheStats filter_cache_stats() { return store().stats(); }
void set_filter_cache_limit(int64_t bytes) { store().set_limit(bytes < 0 ? 0 : bytes); }
void clear_filter_cache() { store().clear(); }

}  // namespace cnnops
