// The switch of balanced_for.h.
#include "balanced_for.h"

namespace cnnops {
namespace cpu {
namespace {
std::atomic<bool> g_balanced{true};
}  // namespace

void set_balanced_for(bool enabled) { g_balanced.store(enabled); }
bool balanced_for_enabled() { return g_balanced.load(); }

}  // namespace cpu
}  // namespace cnnops
