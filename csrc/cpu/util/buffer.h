// A small 64-byte-aligned scratch buffer for packed panels (one per task).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

namespace cnnops {
namespace cpu {

template <typename T>
class AlignedBuffer {
 public:
  explicit AlignedBuffer(int64_t count) {
    size_t bytes = (static_cast<size_t>(count > 0 ? count : 1) * sizeof(T) + 63) / 64 * 64;
    data_ = static_cast<T*>(std::aligned_alloc(64, bytes));
    if (data_ == nullptr) throw std::bad_alloc();
  }
  ~AlignedBuffer() { std::free(data_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  T* get() const { return data_; }

 private:
  T* data_ = nullptr;
};

// The same alignment for a buffer that outlives its scope (packed filters kept
// across calls), owned by a shared_ptr.
inline std::shared_ptr<void> aligned_shared(size_t bytes) {
  void* p = std::aligned_alloc(64, (bytes > 0 ? bytes + 63 : 64) / 64 * 64);
  if (p == nullptr) throw std::bad_alloc();
  return std::shared_ptr<void>(p, std::free);
}

// Grain for at::parallel_for over `tasks` tasks of a problem of `flops`: tiny
// problems run on one thread (waking a second one costs more than it saves,
// and stalls when another process holds the other core).
constexpr double kSerialFlops = 4e6;
inline int64_t task_grain(int64_t tasks, double flops) {
  return flops < kSerialFlops ? (tasks > 1 ? tasks : 1) : 1;
}

// at::parallel_for's grain for tasks of `work` elements each (pooling passes):
// tasks of tiny problems share one thread (waking another costs more than it
// saves: a (1, 8, 8, 8) max-pool spent a quarter of its 5 us in OpenMP).
inline int64_t grain_for(int64_t work) {
  constexpr int64_t kMinWork = int64_t(1) << 15;
  return std::max<int64_t>(1, kMinWork / std::max<int64_t>(1, work));
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

}  // namespace cpu
}  // namespace cnnops
