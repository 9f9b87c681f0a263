// Run-time choice of the CPU ISA (isa.h): the widest one compiled in that the
// CPU supports, unless the environment variable CNNOPS_CPU_ISA or
// set_cpu_isa() asks for another. Also the FMA probe's per-ISA table.
#include "isa.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

namespace cnnops {
namespace cpu {
namespace {

struct IsaEntry {
  CpuIsa isa;
  const char* name;
  bool compiled_in;
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

// Best first, in CpuIsa order.
const IsaEntry kIsas[kCpuIsaCount] = {
    {CpuIsa::Avx512, "avx512", CNNOPS_CPU_X86_UNITS != 0, cpu_has_avx512},
    {CpuIsa::Avx2, "avx2", CNNOPS_CPU_X86_UNITS != 0, cpu_has_avx2},
    {CpuIsa::Generic, "generic", true, always},
};

// The usable ISAs, found once.
struct Registry {
  CpuIsa usable[kCpuIsaCount];
  int count = 0;
  std::string names;
  Registry() {
    for (const IsaEntry& e : kIsas) {
      if (e.compiled_in && e.cpu_has()) {
        usable[count++] = e.isa;
        if (!names.empty()) names += ",";
        names += e.name;
      }
    }
  }
  // Index into kIsas of a usable ISA by name, or -1.
  int find(const char* name) const {
    for (int i = 0; i < count; ++i)
      if (std::strcmp(kIsas[static_cast<int>(usable[i])].name, name) == 0) return static_cast<int>(usable[i]);
    return -1;
  }
  int best() const { return static_cast<int>(usable[0]); }
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
  return registry().best();
}

std::atomic<int>& active_index() {
  static std::atomic<int> index{initial_choice()};
  return index;
}

}  // namespace

const char* cpu_isa_name(CpuIsa isa) { return kIsas[static_cast<int>(isa)].name; }

CpuIsa active_cpu_isa() { return static_cast<CpuIsa>(active_index().load()); }

bool set_cpu_isa(const char* name) {
  if (std::strcmp(name, "auto") == 0) {
    active_index().store(registry().best());
    return true;
  }
  int i = registry().find(name);
  if (i < 0) return false;
  active_index().store(i);
  return true;
}

const char* supported_cpu_isas() { return registry().names.c_str(); }

CpuIsa best_cpu_isa() { return static_cast<CpuIsa>(registry().best()); }

FmaProbeFn active_fma_probe(bool float64) {
  static const PerIsa<FmaProbes> probes(fma_probes_avx512, fma_probes_avx2, fma_probes_generic);
  const FmaProbes& p = probes.active();
  return float64 ? p.f64 : p.f32;
}

}  // namespace cpu
}  // namespace cnnops
