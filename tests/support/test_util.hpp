#pragma once
// Helpers every suite shares: one device context per test process, seeded inputs, NaN poisoning, and
// the relative L2 error the tolerances are stated in.
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "engine/context.hpp"
#include "engine/program.hpp"

namespace vkm::test {

// The process-wide context (device chosen as vkmind would: VKMIND_DEVICE or the best one).
Context& ctx();

// Seeded uniform values in [lo, hi), none of them zero.
std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f);

// ‖got − want‖ / ‖want‖ (‖got − want‖ alone when want is zero), over the places where want is finite;
// infinity if got holds a NaN or infinity that want does not have at that place. Signs of zero are not
// compared: where they matter (casts), compare bits.
double rel_l2(const std::vector<double>& got, const std::vector<double>& want);
template <class T>
std::vector<double> to_double(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

// Fills the tensor's bytes with 0xFF (a NaN in every float type) so unwritten outputs show.
void poison(const Tensor& t);

// Builds a program from `record`, runs it once and waits.
template <class F>
void run(F&& record, const char* name = "test") {
  Program p(ctx(), name);
  record(p);
  ctx().wait(ctx().submit(p));
}

}  // namespace vkm::test
