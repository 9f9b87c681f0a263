// The FMA peak probe (isa.h's active_fma_probe), written once over the vector
// traits V and built per ISA (fma_probe_*.cpp): kChains independent FMA chains
// on registers, enough to cover the FMA latency on every port, so the loop
// runs at the ISA's peak FMA rate. Include only after the unit's target pragma.
#pragma once
#include <cstdint>

namespace cnnops {
namespace cpu {
namespace simd {

// kChains independent FMA chains, enough to cover the FMA latency on every port.
template <typename V>
double fma_probe(int64_t iters) {
  constexpr int kChains = 12;
  typename V::Reg acc[kChains];
  const typename V::Reg m = V::set1(typename V::T(0.999999)), a = V::set1(typename V::T(1e-7));
  for (int i = 0; i < kChains; ++i) acc[i] = V::set1(typename V::T(i));
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = V::fma(acc[i], m, a);
  }
  typename V::T sink[V::kWidth];
  typename V::T total = 0;
  for (int i = 0; i < kChains; ++i) {
    V::store(sink, acc[i]);
    total += sink[0];
  }
  volatile typename V::T keep = total;  // keeps the loop from being optimised away
  (void)keep;
  return 2.0 * kChains * V::kWidth * static_cast<double>(iters);
}

}  // namespace simd
}  // namespace cpu
}  // namespace cnnops
