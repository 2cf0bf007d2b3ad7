#include "engine/selfcheck.hpp"

#include <chrono>
#include <cmath>
#include <functional>

#include "engine/context.hpp"
#include "engine/ops/fill.hpp"
#include "engine/program.hpp"

namespace vkm {

namespace {

using Check = std::function<std::string(Context&)>;

void run(Context& ctx, const std::function<void(Program&)>& record) {
  Program p(ctx, "selfcheck");
  record(p);
  ctx.wait(ctx.submit(p));
}

// "" when every |got - want| <= tol * max(1, |want|), else the first mismatch.
std::string compare(const std::vector<float>& got, const std::vector<float>& want, float tol) {
  if (got.size() != want.size()) return "size " + std::to_string(got.size()) + " != " + std::to_string(want.size());
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(got[i] - want[i]) <= tol * std::max(1.0f, std::fabs(want[i]))))
      return "element " + std::to_string(i) + ": got " + std::to_string(got[i]) + ", want " + std::to_string(want[i]);
  return "";
}

std::vector<float> ramp(size_t n, float scale = 0.01f) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * float(int(i % 97) - 48) + 0.003f;
  return v;
}

std::string check_fill(Context& ctx) {
  Arena a(ctx, "selfcheck", MemoryKind::device, 1 << 20);
  Tensor t = a.alloc(DType::f32, {1000});
  Tensor h = a.alloc(DType::f16, {1001});
  run(ctx, [&](Program& p) {
    ops::fill(p, t, 2.5);
    if (ctx.info().storage_16bit) ops::fill(p, h, -1.5);
  });
  std::string e = compare(ctx.read<float>(t), std::vector<float>(1000, 2.5f), 0);
  if (e.empty() && ctx.info().storage_16bit) {
    std::vector<float> got;
    for (uint16_t x : ctx.read<uint16_t>(h)) got.push_back(f16_to_f32(x));
    e = compare(got, std::vector<float>(1001, -1.5f), 0);
  }
  return e;
}

const std::vector<std::pair<const char*, Check>>& checks() {
  static const std::vector<std::pair<const char*, Check>> all = {
      {"fill", check_fill},
  };
  return all;
}

}  // namespace

std::vector<CheckResult> selfcheck(Context& ctx) {
  std::vector<CheckResult> out;
  for (auto& [name, check] : checks()) {
    auto t0 = std::chrono::steady_clock::now();
    CheckResult r{name, "", 0};
    try {
      r.failure = check(ctx);
    } catch (const std::exception& e) {
      r.failure = e.what();
    }
    r.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    out.push_back(r);
  }
  return out;
}

}  // namespace vkm
