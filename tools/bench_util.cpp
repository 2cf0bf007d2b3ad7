#include "tools/bench_util.hpp"

#include <algorithm>
#include <random>

namespace vkm::tools {

std::vector<float> random_values(size_t n, uint32_t seed, DType t, float scale) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = t == DType::f16 ? f16_to_f32(f32_to_f16(dist(rng))) : dist(rng);
  return v;
}

void write_values(Context& ctx, const Tensor& t, const std::vector<float>& v) {
  if (t.dtype == DType::f32) return ctx.write(t, v);
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) h[i] = f32_to_f16(v[i]);
  ctx.write(t, h);
}

std::vector<float> read_values(Context& ctx, const Tensor& t) {
  if (t.dtype == DType::f32) return ctx.read<float>(t);
  std::vector<float> v;
  for (uint16_t h : ctx.read<uint16_t>(t)) v.push_back(f16_to_f32(h));
  return v;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double since_ms(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace vkm::tools
