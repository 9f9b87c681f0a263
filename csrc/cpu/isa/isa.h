// The CPU instruction sets (ISAs) the SIMD kernels are built for, and which
// one runs. Op-agnostic: every kernel family with SIMD code (conv2d's GEMM
// micro-kernel, depthwise, max_pool2d) keeps its own table of function
// pointers per ISA (a PerIsa below) and looks up the active entry.
//
// How a family is built per ISA: its SIMD code is written once as templates
// on a vector-traits type V (avx512.h, avx2.h, generic.h):
//   V::T, V::Reg, V::kWidth (elements per register), zero/set1/load/store/
//   stream/fma/add/sub, load_masked/store_masked (lanes by bit mask) and max_update
//   (NaN-propagating max with a payload register).
// One .cpp per ISA and family sets the ISA's `#pragma GCC target(...)`,
// includes the traits header and the family's templates, and fills the
// family's table. The traits structs live in an anonymous namespace and every
// SIMD helper is a template on V (or in an anonymous namespace), so each ISA
// unit gets its own copy: a shared inline definition could be merged across
// units by the linker and run AVX-512 code on a CPU without it
// (tests/test_isa.py checks the symbols of namespace cnnops::cpu::simd).
#pragma once
#include <cstdint>
#include <type_traits>

// Whether the x86 ISA units (AVX-512, AVX2) are compiled in: GCC on x86 (the
// units rely on its target pragma). Elsewhere only the generic build exists.
#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
#define CNNOPS_CPU_X86_UNITS 1
#else
#define CNNOPS_CPU_X86_UNITS 0
#endif

namespace cnnops {
namespace cpu {

// Best first; the values index PerIsa's tables.
enum class CpuIsa : int { Avx512 = 0, Avx2 = 1, Generic = 2 };
constexpr int kCpuIsaCount = 3;

// "avx512", "avx2" or "generic".
const char* cpu_isa_name(CpuIsa isa);

// The ISA in use: the widest that is compiled in and that this CPU supports,
// unless the environment variable CNNOPS_CPU_ISA or set_cpu_isa() chose another.
CpuIsa active_cpu_isa();

// Select an ISA by name ("avx512", "avx2", "generic", or "auto"); returns false
// if that ISA is not compiled in or not supported by this CPU. Takes effect for
// every family at the next kernel call.
bool set_cpu_isa(const char* name);
// Comma-separated ISAs compiled in and supported by this CPU, best first.
const char* supported_cpu_isas();
// The best of those, whatever set_cpu_isa chose (for code whose result does not
// depend on the ISA, such as the filter cache's hash).
CpuIsa best_cpu_isa();

// A family's kernels of one ISA build for both dtypes of the CPU kernels
// (Kernels<T>: a struct of function pointers).
template <template <typename> class Kernels>
struct ByDtype {
  Kernels<float> f32;
  Kernels<double> f64;
  template <typename T>
  const Kernels<T>& get() const {
    if constexpr (std::is_same_v<T, float>) return f32;
    else return f64;
  }
};

// A family's kernel set (Set) for each ISA, filled once by the family's per-ISA
// functions (each returns false, leaving the set empty, when its unit is not
// compiled in: that ISA is then never active).
template <typename Set>
class PerIsa {
 public:
  using Make = bool (*)(Set*);
  PerIsa(Make avx512, Make avx2, Make generic) {
    const Make make[kCpuIsaCount] = {avx512, avx2, generic};
    for (int i = 0; i < kCpuIsaCount; ++i) make[i](&sets_[i]);
  }
  const Set& active() const { return sets_[static_cast<int>(active_cpu_isa())]; }

 private:
  Set sets_[kCpuIsaCount];
};

// Peak-throughput probe of the active ISA for the benchmark suite: `iters`
// rounds of independent FMAs on registers; returns the FLOPs done (2 per lane
// per FMA). Fetch it once per measurement, then call it on each thread.
using FmaProbeFn = double (*)(int64_t iters);
FmaProbeFn active_fma_probe(bool float64);

// The per-ISA units of the probe (fma_probe_*.cpp).
struct FmaProbes {
  FmaProbeFn f32 = nullptr;
  FmaProbeFn f64 = nullptr;
};
bool fma_probes_avx512(FmaProbes* out);
bool fma_probes_avx2(FmaProbes* out);
bool fma_probes_generic(FmaProbes* out);

}  // namespace cpu
}  // namespace cnnops
