// The Python extension module cnnops._C: importing it registers the ops
// (torch.ops.cnnops.*) and exposes build information and the CPU ISA switch.
#include <torch/extension.h>

#include "../cpu/microkernel.h"

namespace {

py::dict build_info() {
  py::dict info;
  info["cpu_isas"] = cnnops::cpu::supported_cpu_isas();
  info["cpu_isa"] = cnnops::cpu::active_microkernels().isa;
  const auto& mk = cnnops::cpu::active_microkernels();
  info["cpu_microkernel_f32"] = py::make_tuple(mk.f32.mr, mk.f32.nr);
  info["cpu_microkernel_f64"] = py::make_tuple(mk.f64.mr, mk.f64.nr);
#ifdef CNNOPS_WITH_CUDA
  info["cuda"] = true;
  info["cuda_archs"] = CNNOPS_CUDA_ARCHS;
#else
  info["cuda"] = false;
  info["cuda_archs"] = "";
#endif
  return info;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "cnnops kernels (ops are registered under torch.ops.cnnops)";
  m.def("build_info", &build_info, "What this build of cnnops contains");
  m.def(
      "set_cpu_isa",
      [](const std::string& name) {
        if (!cnnops::cpu::set_cpu_isa(name.c_str()))
          throw py::value_error("cnnops.set_cpu_isa: '" + name +
                                "' is not available; expected 'auto' or one of: " +
                                cnnops::cpu::supported_cpu_isas());
      },
      "Force the CPU micro-kernel ISA ('auto', 'avx512', 'avx2', 'generic')");
}
