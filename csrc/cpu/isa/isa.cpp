// Run-time choice of the micro-kernel ISA: the widest the CPU supports, unless
// the environment variable CNNOPS_CPU_ISA or set_cpu_isa() asks for another.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "microkernel.h"

namespace cnnops {
namespace cpu {
namespace {

struct IsaEntry {
  const char* name;
  bool (*make)(MicroKernelSet*);
  bool (*cpu_has)();
};

bool cpu_has_avx512() {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl");
#else
  return false;
#endif
}

bool cpu_has_avx2() {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

bool always() { return true; }

const IsaEntry kIsas[] = {
    {"avx512", microkernels_avx512, cpu_has_avx512},
    {"avx2", microkernels_avx2, cpu_has_avx2},
    {"generic", microkernels_generic, always},
};

// All usable sets, filled once; index into it selects the active one.
struct Registry {
  MicroKernelSet sets[3];
  int count = 0;
  std::string names;
  Registry() {
    for (const IsaEntry& e : kIsas) {
      MicroKernelSet s;
      if (e.cpu_has() && e.make(&s)) {
        sets[count++] = s;
        if (!names.empty()) names += ",";
        names += e.name;
      }
    }
  }
  int find(const char* name) const {
    for (int i = 0; i < count; ++i)
      if (std::strcmp(sets[i].isa, name) == 0) return i;
    return -1;
  }
};

const Registry& registry() {
  static const Registry r;
  return r;
}

int initial_choice() {
  const char* env = std::getenv("CNNOPS_CPU_ISA");
  if (env != nullptr && *env != '\0') {
    int i = registry().find(env);
    if (i >= 0) return i;
  }
  return 0;
}

std::atomic<int>& active_index() {
  static std::atomic<int> index{initial_choice()};
  return index;
}

}  // namespace

const MicroKernelSet& active_microkernels() { return registry().sets[active_index().load()]; }

template <>
const MicroKernel<float>& active_microkernel<float>() {
  return active_microkernels().f32;
}
template <>
const MicroKernel<double>& active_microkernel<double>() {
  return active_microkernels().f64;
}

template <>
const VectorKernels<float>& active_vector_kernels<float>() {
  return active_microkernels().vf32;
}
template <>
const VectorKernels<double>& active_vector_kernels<double>() {
  return active_microkernels().vf64;
}

bool set_cpu_isa(const char* name) {
  if (std::strcmp(name, "auto") == 0) {
    active_index().store(0);
    return true;
  }
  int i = registry().find(name);
  if (i < 0) return false;
  active_index().store(i);
  return true;
}

const char* supported_cpu_isas() { return registry().names.c_str(); }

}  // namespace cpu
}  // namespace cnnops
