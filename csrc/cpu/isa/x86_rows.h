// Broadcast loads and prefetches of A rows at a run-time stride, addressed as
// x86 can address them: row J (0..4) of a group of five at base + J*L, with L
// (the stride in bytes) and L3 = 3*L in two registers: base, base+L*1,
// base+L*2, base+L3*1, base+L*4. MR rows then need ceil(MR/5) base pointers
// and two strides. Written as the plain load, the compiler kept one pointer per
// row, which for 14 rows spilled to the stack inside the FMA loop: the
// channels-last direct path's micro-kernel ran at 84% of the packed one's speed
// (with these, 91%). Include only in x86 units compiled for AVX2 or AVX-512;
// Reg is that unit's vector register type (ymm or zmm operand).
#pragma once
#include <cstdint>

namespace cnnops {
namespace cpu {
namespace x86 {

// Reg with every lane = the T at base + J*L bytes.
template <typename Reg, typename T, int J>
__attribute__((always_inline)) inline Reg broadcast_row(const T* base, int64_t L, int64_t L3) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "float or double");
  static_assert(J >= 0 && J < 5, "five rows per base");
  Reg r;
#define CNNOPS_BROADCAST(ADDR, ...)                                        \
  if constexpr (sizeof(T) == 4) asm("vbroadcastss " ADDR ", %0" : "=v"(r) : __VA_ARGS__); \
  else asm("vbroadcastsd " ADDR ", %0" : "=v"(r) : __VA_ARGS__);
  if constexpr (J == 0) {
    CNNOPS_BROADCAST("(%1)", "r"(base))
  } else if constexpr (J == 1) {
    CNNOPS_BROADCAST("(%1,%2,1)", "r"(base), "r"(L))
  } else if constexpr (J == 2) {
    CNNOPS_BROADCAST("(%1,%2,2)", "r"(base), "r"(L))
  } else if constexpr (J == 3) {
    CNNOPS_BROADCAST("(%1,%2,1)", "r"(base), "r"(L3))
  } else {
    CNNOPS_BROADCAST("(%1,%2,4)", "r"(base), "r"(L))
  }
#undef CNNOPS_BROADCAST
  return r;
}

// Prefetch (into L1) the line two lines past base + J*L bytes.
template <int J>
__attribute__((always_inline)) inline void prefetch_row(const void* base, int64_t L, int64_t L3) {
  if constexpr (J == 0) asm volatile("prefetcht0 128(%0)" : : "r"(base));
  else if constexpr (J == 1) asm volatile("prefetcht0 128(%0,%1,1)" : : "r"(base), "r"(L));
  else if constexpr (J == 2) asm volatile("prefetcht0 128(%0,%1,2)" : : "r"(base), "r"(L));
  else if constexpr (J == 3) asm volatile("prefetcht0 128(%0,%1,1)" : : "r"(base), "r"(L3));
  else asm volatile("prefetcht0 128(%0,%1,4)" : : "r"(base), "r"(L));
}

}  // namespace x86
}  // namespace cpu
}  // namespace cnnops
