#pragma once
// What the bench commands share: seeded inputs in f32 or f16 tensors, medians, wall-clock time.
#include <chrono>
#include <cstdint>
#include <vector>

#include "engine/context.hpp"

namespace vkm::tools {

// Seeded values in [-scale, scale), rounded to f16 when that is the storage.
std::vector<float> random_values(size_t n, uint32_t seed, DType t, float scale = 1.0f);
// Host values into and out of a tensor of f32 or f16 (for f16, values it holds exactly).
void write_values(Context& ctx, const Tensor& t, const std::vector<float>& v);
std::vector<float> read_values(Context& ctx, const Tensor& t);

double median(std::vector<double> v);
double since_ms(std::chrono::steady_clock::time_point t0);

}  // namespace vkm::tools
