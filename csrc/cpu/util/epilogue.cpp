// The fused output stage's runs of the active ISA: one table of the three
// builds (epilogue_{avx512,avx2,generic}.cpp), indexed by isa/isa.h's choice.
#include "epilogue.h"

namespace cnnops {
namespace cpu {

template <typename T>
FinishRuns<T> active_finish_runs(Activation act, Activation post) {
  static const PerIsa<EpilogueRunsSet> sets(epilogue_runs_avx512, epilogue_runs_avx2, epilogue_runs_generic);
  return sets.active().get<T>().fn[int(act)][int(post)];
}
template FinishRuns<float> active_finish_runs<float>(Activation, Activation);
template FinishRuns<double> active_finish_runs<double>(Activation, Activation);

}  // namespace cpu
}  // namespace cnnops
