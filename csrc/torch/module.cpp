// The Python extension module cnnops._C: importing it registers the ops
// (torch.ops.cnnops.*) and exposes build information and the CPU ISA switch.
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "../cpu/conv2d/conv2d.h"
#include "../cpu/isa/isa.h"
#include "../cpu/util/balanced_for.h"
#include "../cpu/util/stream_stores.h"
#include "filter_cache.h"

namespace {

#define CNNOPS_STRINGIFY_(...) #__VA_ARGS__
#define CNNOPS_STRINGIFY(...) CNNOPS_STRINGIFY_(__VA_ARGS__)

py::dict build_info() {
  py::dict info;
  info["cpu_isas"] = cnnops::cpu::supported_cpu_isas();
  info["cpu_isa"] = cnnops::cpu::cpu_isa_name(cnnops::cpu::active_cpu_isa());
  info["cpu_stream_min_bytes"] = cnnops::cpu::stream_min_bytes();
  for (bool float64 : {false, true}) {
    int64_t mr = 0, nr = 0;
    cnnops::cpu::microkernel_tile(float64, &mr, &nr);
    info[float64 ? "cpu_microkernel_f64" : "cpu_microkernel_f32"] = py::make_tuple(mr, nr);
  }
#ifdef CNNOPS_WITH_CUDA
  info["cuda"] = true;
  info["cuda_archs"] = CNNOPS_STRINGIFY(CNNOPS_CUDA_ARCHS);  // e.g. "80_90"
#else
  info["cuda"] = false;
  info["cuda_archs"] = "";
#endif
  return info;
}

// Peak FMA throughput of the active ISA on all torch threads, in GFLOP/s.
double cpu_peak_gflops(bool float64, int64_t iters) {
  const cnnops::cpu::FmaProbeFn probe = cnnops::cpu::active_fma_probe(float64);
  const int64_t threads = at::get_num_threads();
  std::vector<double> flops(threads, 0.0);
  const auto start = std::chrono::steady_clock::now();
  at::parallel_for(0, threads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) flops[t] = probe(iters);
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double total = 0;
  for (double f : flops) total += f;
  return total / seconds * 1e-9;
}

// For the scheduler's tests: runs balanced_for (or, with `ranges`,
// balanced_for_ranges with a grain of 1) over `count` units, thread 0 sleeping
// `slow_us` in each of its units; returns (times each unit ran, the thread that
// ran it).
py::tuple balanced_for_trace(int64_t count, int64_t slow_us, bool ranges) {
  std::vector<std::atomic<int64_t>> runs(count);
  std::vector<int64_t> thread(count, -1);
  auto unit = [&](int64_t u) {
    const int t = at::get_thread_num();
    if (t == 0 && slow_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(slow_us));
    runs[u].fetch_add(1);
    thread[u] = t;
  };
  if (ranges) {
    cnnops::cpu::balanced_for_ranges(count, 1, [&](int64_t begin, int64_t end) {
      for (int64_t u = begin; u < end; ++u) unit(u);
    });
  } else {
    cnnops::cpu::balanced_for(count, unit);
  }
  std::vector<int64_t> run_counts(count);
  for (int64_t u = 0; u < count; ++u) run_counts[u] = runs[u].load();
  return py::make_tuple(run_counts, thread);
}

}  // namespace

namespace cnnops {
void bind_direct_calls(pybind11::module& m);  // direct_calls.cpp
}  // namespace cnnops

PYBIND11_MODULE(_C, m) {
  cnnops::bind_direct_calls(m);
  m.doc() = "cnnops kernels (ops are registered under torch.ops.cnnops)";
  m.def("build_info", &build_info, "What this build of cnnops contains");
  m.def("cpu_peak_gflops", &cpu_peak_gflops, py::arg("float64") = false, py::arg("iters") = 20000000,
        "Measured peak FMA throughput (GFLOP/s) of the active CPU ISA on all torch threads");
  m.def("set_direct_paths", &cnnops::cpu::set_direct_paths, py::arg("enabled"),
        "Allow (default) or forbid the packing-free direct CPU conv paths");
  m.def("direct_paths_enabled", &cnnops::cpu::direct_paths_enabled);
  m.def("set_winograd", &cnnops::cpu::set_winograd, py::arg("enabled"),
        "Allow (default) or forbid Winograd F(2x2, 3x3) for 3x3 unit-step CPU convolutions");
  m.def("winograd_enabled", &cnnops::cpu::winograd_enabled);
  m.def("set_balanced_for", &cnnops::cpu::set_balanced_for, py::arg("enabled"),
        "Let threads that finish early take work units from the others (default) or keep "
        "at::parallel_for's fixed shares (kernels that use balanced_for.h)");
  m.def("_balanced_for_trace", &balanced_for_trace, py::arg("count"), py::arg("slow_us"),
        py::arg("ranges") = false);
  m.def("_conv_balanced_block", &cnnops::cpu::conv_balanced_block, py::arg("items"), py::arg("width"),
        py::arg("outer"));
  m.def("_conv_panel_splits", &cnnops::cpu::conv_panel_splits, py::arg("blocks"), py::arg("panels"),
        py::arg("threads"));
  m.def("_conv_direct_row_blocks", &cnnops::cpu::conv_direct_row_blocks, py::arg("P"), py::arg("qtiles"),
        py::arg("outer"), py::arg("threads"));
  m.def("set_stream_min_bytes", &cnnops::cpu::set_stream_min_bytes, py::arg("bytes"),
        "Outputs of at least `bytes` use non-temporal stores where a kernel can (0: all); "
        "a negative value restores the automatic threshold (L2 per core x threads)");
  m.def("filter_cache_info", [] {
    const cnnops::FilterCacheStats s = cnnops::filter_cache_stats();
    py::dict d;
    d["entries"] = s.entries;
    d["forms"] = s.forms;
    d["bytes"] = s.bytes;
    d["limit"] = s.limit;
    d["hits"] = s.hits;
    d["misses"] = s.misses;
    return d;
  }, "The packed-filter cache: filters held, packed forms, bytes, limit, hits and misses");
  m.def("freeze_filter", &cnnops::freeze_filter, py::arg("weight"),
        "Trust weight's packed forms until its version counter changes (no per-call hash); "
        "False when the cache would not keep it");
  m.def("set_filter_cache_limit", &cnnops::set_filter_cache_limit, py::arg("bytes"),
        "Most bytes of packed CPU conv filters kept across calls (0: keep none)");
  m.def("clear_filter_cache", &cnnops::clear_filter_cache,
        "Drop every packed filter (after writing a weight through tensor.data, which the "
        "version counter does not see)");
  m.def("set_cpu_isa", [](const std::string& name) {
    if (!cnnops::cpu::set_cpu_isa(name.c_str()))
      throw py::value_error(
          "cnnops.set_cpu_isa: '" + name +
          "' is not available; expected 'auto' or one of: " + cnnops::cpu::supported_cpu_isas());
  }, "Force the CPU micro-kernel ISA ('auto', 'avx512', 'avx2', 'generic')");
}
